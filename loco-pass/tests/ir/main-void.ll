; void main(void) (C allows it with a warning): an adapter returns 0.
define dso_local void @main() {
  ret void
}
; CHECK-LABEL: define dso_local void @__loco_user_main()
; CHECK-LABEL: define internal i32 @__loco_user_main.int(i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: entry:
; CHECK-NEXT: call void @__loco_user_main()
; CHECK-NEXT: ret i32 0
; CHECK-LABEL: define i32 @main(i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: entry:
; CHECK-NEXT: %3 = call i32 @loco_main(ptr @__loco_user_main.int, i32 %0, ptr %1, ptr %2)
