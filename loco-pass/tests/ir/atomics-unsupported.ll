; STDERR: loco-pass: warning: atomics.c: in f: atomicrmw of a size other than 1, 2, 4, 8
; STDERR: loco-pass: warning: atomics.c: in f: atomicrmw uinc_wrap is not in the LOCO runtime's ABI
; STDERR: loco-pass: warning: atomics.c: in f: cmpxchg of a size other than 1, 2, 4, 8
; STDERR: loco-pass: warning: atomics.c: in f: atomic store of a size other than 1, 2, 4, 8
; STDERR: loco-pass: warning: atomics.c: in f: atomic load of a size other than 1, 2, 4, 8
; Atomics the runtime does not take stay CPU atomics, with a warning; what
; they write is still marked.
source_filename = "atomics.c"

define void @f(ptr %p, i128 %v) {
  %a = atomicrmw add ptr %p, i128 %v seq_cst
  %b = atomicrmw uinc_wrap ptr %p, i32 9 seq_cst
  %c = cmpxchg ptr %p, i128 0, i128 %v seq_cst seq_cst
  store atomic i128 %v, ptr %p release, align 16
  %d = load atomic i128, ptr %p acquire, align 16
  ret void
}
; CHECK-LABEL: define void @f
; CHECK-NEXT: %a = atomicrmw add ptr %p, i128 %v seq_cst
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 16)
; CHECK-NEXT: %b = atomicrmw uinc_wrap ptr %p, i32 9 seq_cst
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 4)
; CHECK-NEXT: %c = cmpxchg ptr %p, i128 0, i128 %v seq_cst seq_cst
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 16)
; CHECK-NEXT: store atomic i128 %v, ptr %p release, align 16
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 16)
; CHECK-NEXT: %d = load atomic i128, ptr %p acquire, align 16
; CHECK-NEXT: ret void
; CHECK-NOT: loco_atomic
