; int main(void) (C++: with attributes) runs through loco_main: the
; program's main is renamed, and the new main passes it argc, argv, envp.
; Only codegen attributes (string ones, uwtable) are copied to the new main.
define dso_local noundef i32 @main() #0 {
  ret i32 3
}
attributes #0 = { mustprogress noinline norecurse optnone uwtable "frame-pointer"="all" "target-cpu"="x86-64" }
; CHECK-LABEL: define dso_local noundef i32 @__loco_user_main() #0 {
; CHECK-NEXT: ret i32 3
; CHECK: define i32 @main(i32 %0, ptr %1, ptr %2) #[[ATTRS:[0-9]+]] {
; CHECK-NEXT: entry:
; CHECK-NEXT: %3 = call i32 @loco_main(ptr @__loco_user_main, i32 %0, ptr %1, ptr %2)
; CHECK-NEXT: ret i32 %3
; CHECK: declare i32 @loco_main(ptr, i32, ptr, ptr)
; CHECK: attributes #[[ATTRS]] = { uwtable "frame-pointer"="all" "target-cpu"="x86-64" }
