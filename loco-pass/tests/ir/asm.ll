; STDERR: inline assembly may write memory
; Inline assembly that may write memory is reported at compile time.
define void @f(ptr %p) {
  call void asm sideeffect "movl $$0, ($0)", "r,~{memory}"(ptr %p)
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: call void asm sideeffect
