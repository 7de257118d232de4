; Code compiled without PIC in the medium code model (what loco-cc asks for
; unless told otherwise) reaches data by 64-bit absolute address: the shared
; globals and the declarations that may name one are dso_local, wherever
; they lie. Module-local ones still become external under a unique name,
; and hidden visibility still goes. Thread-locals and __loco* stay as they are.
source_filename = "abs.c"

@zero = dso_local global i32 0, align 4
@one = dso_local global i32 1, align 4
@counter = internal global [4 x i32] zeroinitializer, align 4
@hid = hidden global i32 2, align 4
@tls = thread_local global i32 0
@ext = external global i32
@extk = external hidden constant i32

define i32 @f(i32 %v) {
  %a = load i32, ptr @ext
  %b = load i32, ptr @extk
  %c = load i32, ptr @counter
  ret i32 %a
}

!llvm.module.flags = !{!0}
!0 = !{i32 1, !"Code Model", i32 3}

; CHECK: @tls = thread_local global i32 0
; CHECK: @ext = external dso_local global i32
; CHECK: @extk = external hidden constant i32
; CHECK: @zero = dso_local global i32 0, section ".llvm.linkonce.b.loco_bss", align 4
; CHECK: @one = dso_local global i32 1, section "loco_data", align 4
; CHECK: @counter.loco.{{[0-9a-f]+}} = dso_local global [4 x i32] zeroinitializer, section ".llvm.linkonce.b.loco_bss", align 4
; CHECK: @hid = dso_local global i32 2, section "loco_data", align 4
