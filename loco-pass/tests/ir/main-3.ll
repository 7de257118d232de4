; int main(int, char **, char **); a recursive call stays a call to the
; program's main, not to the wrapper.
define dso_local i32 @main(i32 %argc, ptr %argv, ptr %envp) {
  %again = icmp sgt i32 %argc, 5
  br i1 %again, label %rec, label %done
rec:
  %n = sub i32 %argc, 1
  %r = call i32 @main(i32 %n, ptr %argv, ptr %envp)
  ret i32 %r
done:
  ret i32 0
}
; CHECK-LABEL: define dso_local i32 @__loco_user_main(i32 %argc, ptr %argv, ptr %envp)
; CHECK: call i32 @__loco_user_main(i32 %n, ptr %argv, ptr %envp)
; CHECK-LABEL: define i32 @main(i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: entry:
; CHECK-NEXT: %3 = call i32 @loco_main(ptr @__loco_user_main, i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: ret i32 %3
