; Not the program's main: a declaration, or a module-local function named
; main, is left alone.
define internal i32 @main() {
  ret i32 0
}
define i32 @f() {
  %r = call i32 @main()
  ret i32 %r
}
; CHECK-LABEL: define internal i32 @main()
; CHECK-NOT: loco_main
