; PASSES: loco,loco
; Running the pass twice instruments once (the module is marked).
define void @f(ptr %p) {
  store i8 1, ptr %p
  %q = call ptr @malloc(i64 8)
  ret void
}
declare ptr @malloc(i64)
; CHECK-LABEL: define void @f
; CHECK: loco.mark:
; CHECK-NOT: loco.mark{{[0-9]}}:
; CHECK: call ptr @loco_malloc(i64 8)
; CHECK-NOT: loco_loco_
; CHECK: !loco.instrumented = !{
