; memcpy/memmove/memset intrinsics into memory that may be shared (a global
; included) are followed by loco_mark_dirty(dst, len); into the stack or a
; thread-local not.
@g = global [64 x i8] zeroinitializer
@tls = thread_local global [64 x i8] zeroinitializer
define void @f(ptr %dst, ptr %src, i64 %n) {
  %buf = alloca [64 x i8]
  call void @llvm.memcpy.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
  call void @llvm.memmove.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
  call void @llvm.memset.p0.i32(ptr %dst, i8 0, i32 12, i1 false)
  call void @llvm.memcpy.p0.p0.i64(ptr %buf, ptr %src, i64 64, i1 false)
  call void @llvm.memset.p0.i64(ptr @g, i8 0, i64 64, i1 false)
  call void @llvm.memset.p0.i64(ptr @tls, i8 0, i64 64, i1 false)
  ret void
}
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i32(ptr, i8, i32, i1)
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
; CHECK-LABEL: define void @f
; CHECK: call void @llvm.memcpy.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
; CHECK-NEXT: call void @loco_mark_dirty(ptr %dst, i64 %n)
; CHECK-NEXT: call void @llvm.memmove.p0.p0.i64(ptr %dst, ptr %src, i64 %n, i1 false)
; CHECK-NEXT: call void @loco_mark_dirty(ptr %dst, i64 %n)
; CHECK-NEXT: call void @llvm.memset.p0.i32(ptr %dst, i8 0, i32 12, i1 false)
; CHECK-NEXT: call void @loco_mark_dirty(ptr %dst, i64 12)
; CHECK-NEXT: call void @llvm.memcpy.p0.p0.i64(ptr %buf
; CHECK-NEXT: call void @llvm.memset.p0.i64(ptr @g
; CHECK-NEXT: call void @loco_mark_dirty(ptr @g, i64 64)
; CHECK-NEXT: call void @llvm.memset.p0.i64(ptr @tls
; CHECK-NEXT: ret void
