; PASSES: loco,loco
; Running the pass twice instruments once.
define void @f(ptr %p) {
  store i8 1, ptr %p
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: loco.mark:
; CHECK-NOT: loco.mark{{[0-9]}}:
; CHECK: !loco.instrumented
