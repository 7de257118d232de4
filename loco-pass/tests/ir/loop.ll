; A store inside a single-block loop: splitting its block must keep the
; loop's phis right (opt verifies the output).
define void @fill(ptr %a, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %slot = getelementptr i64, ptr %a, i64 %i
  store i64 %i, ptr %slot
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}
; CHECK-LABEL: define void @fill
; CHECK: loop:
; CHECK-NEXT: %i = phi i64 [ 0, %entry ], [ %next, %loco.cont ]
; CHECK: store i64 %i, ptr %slot
; CHECK: loco.cont:
; CHECK-NEXT: %next = add i64 %i, 1
; CHECK: br i1 %done, label %exit, label %loop
