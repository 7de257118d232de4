; Writable globals defined here go to the shared sections (zero-initialised
; to .llvm.linkonce.b.loco_bss, others to loco_data), lose dso_local and
; hidden visibility (so the code reaches them through the GOT), and
; module-local ones become external under a name unique to the module;
; common ones become weak. Declarations lose dso_local too. Constants,
; thread-locals, sectioned, empty, llvm.* and OpenMP critical-lock globals
; stay as they are.
source_filename = "globals.c"

@zero = dso_local global i32 0, align 4
@one = dso_local global i32 1, align 16
@px = dso_local global ptr @one, align 8
@counter = internal global [4 x i32] zeroinitializer, align 4
@priv = private global i32 5, align 4
@com = common dso_local global i64 0, align 8
@hid = hidden global i32 2, align 4
@tls = thread_local global i32 0
@k = dso_local constant i32 3
@sect = dso_local global i32 0, section "mine"
@empty = dso_local global [0 x i32] zeroinitializer
@.gomp_critical_user_.var = common global [8 x i32] zeroinitializer
@__loco_own = global i32 0
@ext = external dso_local global i32
@extk = external hidden constant i32
@exttls = external thread_local global i32
@llvm.used = appending global [1 x ptr] [ptr @counter], section "llvm.metadata"

define dso_local i32 @f(i32 %v) {
  store i32 %v, ptr @counter
  %a = load i32, ptr @ext
  %b = load i32, ptr @priv
  %c = load i32, ptr @extk
  %d = load i32, ptr @exttls
  ret i32 %a
}

; Kept, in their order:
; CHECK: @tls = thread_local global i32 0
; CHECK: @k = dso_local constant i32 3
; CHECK: @sect = dso_local global i32 0, section "mine"
; CHECK: @empty = dso_local global [0 x i32] zeroinitializer
; CHECK: @.gomp_critical_user_.var = common global [8 x i32] zeroinitializer
; CHECK: @__loco_own = global i32 0
; CHECK: @exttls = external thread_local global i32
; CHECK: @llvm.used = appending global [1 x ptr] [ptr @counter.loco.[[HASH:[0-9a-f]+]]], section "llvm.metadata"
; Shared (recreated at the end of the list):
; CHECK: @zero = global i32 0, section ".llvm.linkonce.b.loco_bss", align 4
; CHECK: @one = global i32 1, section "loco_data", align 16
; CHECK: @px = global ptr @one, section "loco_data", align 8
; CHECK: @counter.loco.[[HASH]] = global [4 x i32] zeroinitializer, section ".llvm.linkonce.b.loco_bss", align 4
; CHECK: @priv.loco.{{[0-9a-f]+}} = global i32 5, section "loco_data", align 4
; CHECK: @com = weak global i64 0, section ".llvm.linkonce.b.loco_bss", align 8
; CHECK: @hid = global i32 2, section "loco_data", align 4
; CHECK: @ext = external global i32
; CHECK: @extk = external constant i32
; CHECK-NOT: dso_local global
; CHECK-LABEL: define dso_local i32 @f
; CHECK-NEXT: store i32 %v, ptr @counter.loco.[[HASH]]
; CHECK-NEXT: [[SPAN:%.*]] = load i64, ptr @__loco_mark_span
; CHECK: icmp ult i64 sub (i64 ptrtoint (ptr @counter.loco.[[HASH]] to i64), i64 70368744177664), [[SPAN]]
; CHECK: load i32, ptr @ext
; CHECK-NEXT: load i32, ptr @priv.loco.
; CHECK-NEXT: load i32, ptr @extk
