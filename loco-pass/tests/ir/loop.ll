; Stores in a single-block loop: splitting the block must keep the loop's
; own phi (a self-loop) and the exit block's phi naming the right
; predecessor (opt verifies the output). The call to an unknown function
; (which may synchronise) keeps the stores marked one by one, not after
; the loop.
declare void @unknown()

define i64 @fill(ptr %a, ptr %b, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %slot = getelementptr i64, ptr %a, i64 %i
  store i64 %i, ptr %slot
  %other = getelementptr i32, ptr %b, i64 %i
  store i32 1, ptr %other
  call void @unknown()
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  %last = phi i64 [ %next, %loop ]
  ret i64 %last
}
; CHECK-LABEL: define i64 @fill
; CHECK: loop:
; CHECK-NEXT: %i = phi i64 [ 0, %entry ], [ %next, %[[LATCH:loco.cont[0-9]*]] ]
; CHECK: store i64 %i, ptr %slot
; CHECK: br i1 {{%.*}}, label %loco.home{{[0-9]*}}, label %[[MID:loco.cont[0-9]*]]
; CHECK: [[MID]]:
; CHECK-NEXT: %other = getelementptr i32, ptr %b, i64 %i
; CHECK-NEXT: store i32 1, ptr %other
; CHECK: [[LATCH]]:
; CHECK-NEXT: call void @unknown()
; CHECK-NEXT: %next = add i64 %i, 1
; CHECK-NEXT: %done = icmp eq i64 %next, %n
; CHECK-NEXT: br i1 %done, label %exit, label %loop
; CHECK: exit:
; CHECK-NEXT: %last = phi i64 [ %next, %[[LATCH]] ]
