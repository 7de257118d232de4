; STDERR: loco-pass: warning: goto.c: in f: function uses indirectbr
; A function with a computed goto: its stores are marked by a call each.
source_filename = "goto.c"

define void @f(ptr %p, ptr %target) {
entry:
  store i32 1, ptr %p
  indirectbr ptr %target, [label %a, label %b]
a:
  store i32 2, ptr %p
  br label %b
b:
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store i32 1, ptr %p
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 4)
; CHECK-NEXT: indirectbr ptr %target, [label %a, label %b]
; CHECK: store i32 2, ptr %p
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 4)
; CHECK-NEXT: br label %b
; CHECK-NOT: loco.mark
