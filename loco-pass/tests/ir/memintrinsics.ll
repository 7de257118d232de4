; memcpy/memset intrinsics into unknown memory are followed by a marking
; call; into the stack they are not.
define void @f(ptr %dst, ptr %src, i64 %n) {
  %buf = alloca [64 x i8]
  call void @llvm.memcpy.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
  call void @llvm.memset.p0.i32(ptr %dst, i8 0, i32 12, i1 false)
  call void @llvm.memcpy.p0.p0.i64(ptr %buf, ptr %src, i64 64, i1 false)
  ret void
}
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i32(ptr, i8, i32, i1)
; CHECK-LABEL: define void @f
; CHECK: call void @llvm.memcpy.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
; CHECK-NEXT: call void @loco_mark_dirty(ptr %dst, i64 %n)
; CHECK: call void @llvm.memset.p0.i32(ptr %dst, i8 0, i32 12, i1 false)
; CHECK-NEXT: call void @loco_mark_dirty(ptr %dst, i64 12)
; CHECK: call void @llvm.memcpy.p0.p0.i64(ptr %buf
; CHECK-NEXT: ret void
