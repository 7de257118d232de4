; PASSES: loco,loco
; A second run neither wraps main again nor renames the shared globals
; again.
@n = internal global i32 1
define dso_local i32 @main() {
  %v = load i32, ptr @n
  ret i32 %v
}
; CHECK: @n.loco.{{[0-9a-f]+}} = global i32 1, section "loco_data"
; CHECK-NOT: .loco.{{[0-9a-f]+}}.loco.
; CHECK-LABEL: define dso_local i32 @__loco_user_main()
; CHECK-LABEL: define i32 @main(i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: entry:
; CHECK-NEXT: call i32 @loco_main(ptr @__loco_user_main,
; CHECK-NOT: define
; CHECK-NOT: __loco_user_main.
