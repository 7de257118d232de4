; The shared region is in address space 0: writes through pointers in
; other address spaces (x86 segment-relative %fs/%gs, GPU memories) are
; left alone.
define void @f(ptr addrspace(256) %seg, ptr addrspace(1) %g, i32 %v) {
  store i32 %v, ptr addrspace(256) %seg
  store i32 %v, ptr addrspace(1) %g
  %old = atomicrmw add ptr addrspace(1) %g, i32 1 seq_cst
  call void @llvm.memset.p1.i64(ptr addrspace(1) %g, i8 0, i64 8, i1 false)
  ret void
}
declare void @llvm.memset.p1.i64(ptr addrspace(1), i8, i64, i1)
; CHECK-LABEL: define void @f
; CHECK-NEXT: store i32 %v, ptr addrspace(256) %seg
; CHECK-NEXT: store i32 %v, ptr addrspace(1) %g
; CHECK-NEXT: atomicrmw add ptr addrspace(1) %g, i32 1 seq_cst
; CHECK-NEXT: call void @llvm.memset.p1.i64(
; CHECK-NEXT: ret void
