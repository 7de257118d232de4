; A module that already carries the marker (such as loco-cc -emit-llvm
; output) is left exactly as it is.
define void @f(ptr %p) {
  store i32 1, ptr %p
  %q = call ptr @malloc(i64 8)
  ret void
}
declare ptr @malloc(i64)
!loco.instrumented = !{!0}
!0 = !{}
; CHECK-LABEL: define void @f
; CHECK-NEXT: store i32 1, ptr %p
; CHECK-NEXT: call ptr @malloc(i64 8)
; CHECK-NEXT: ret void
; CHECK-NOT: loco_
