; Fewer marks (ABI.md): stores made once in every iteration of a loop at
; addresses affine in the iteration, in a loop that leaves through its latch
; into its exit block, whose trip count is known and which holds nothing
; that may synchronise, are marked after the loop, exactly the bytes they
; wrote; adjacent stores of a block are marked once.
%struct.rec = type { double, double, i32, i32, i64 }

declare void @unknown()
declare double @llvm.sqrt.f64(double)

; One i64 per iteration, n iterations: the loop keeps no marking code and
; one range of 8 * n bytes from %a is marked after it: not at all when
; __loco_mark_span is 0 (one node), by loco_mark_dirty unless it is at most
; 4 KiB whose first and last granules are home here.
; CHECK-LABEL: define void @contiguous
; CHECK: loop:
; CHECK-NOT: @__loco_mark_span
; CHECK: br i1 %done, label %exit, label %loop
; CHECK: exit:
; CHECK-NEXT: [[LEN:%.*]] = shl i64 %n, 3
; CHECK-NEXT: [[SPAN:%.*]] = load i64, ptr @__loco_mark_span, align 8, !invariant.load
; CHECK-NEXT: [[ANY:%.*]] = icmp ne i64 [[SPAN]], 0
; CHECK-NEXT: br i1 [[ANY]], label %loco.range.window
; CHECK: loco.range.window:
; CHECK-NEXT: [[A:%.*]] = ptrtoint ptr %a to i64
; CHECK-NEXT: [[OFF:%.*]] = sub i64 [[A]], 70368744177664
; CHECK-NEXT: [[IN:%.*]] = icmp ult i64 [[OFF]], [[SPAN]]
; CHECK-NEXT: br i1 [[IN]], label %loco.range.shared
; CHECK: loco.range.shared:
; CHECK: load atomic i8, ptr {{%.*}} monotonic, align 1
; CHECK: load atomic i8, ptr {{%.*}} monotonic, align 1
; CHECK: icmp ule i64 [[LEN]], 4096
; CHECK: loco.range.mark:
; CHECK-NEXT: call void @loco_mark_dirty(ptr %a, i64 [[LEN]])
; CHECK: ret void
define void @contiguous(ptr %a, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %slot = getelementptr inbounds i64, ptr %a, i64 %i
  store i64 %i, ptr %slot, align 8
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; Five fields of a 32-byte struct per iteration: together they cover the
; struct, so one range of 32 * n bytes.
; CHECK-LABEL: define void @fields
; CHECK: loop:
; CHECK-NOT: @__loco_mark_span
; CHECK: exit:
; CHECK-NEXT: [[LEN:%.*]] = shl i64 %n, 5
; CHECK: call void @loco_mark_dirty(ptr %r, i64 [[LEN]])
; CHECK-NOT: loco_mark_dirty
; CHECK: ret void
define void @fields(ptr %r, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %x = getelementptr inbounds %struct.rec, ptr %r, i64 %i, i32 0
  store double 1.0, ptr %x, align 8
  %y = getelementptr inbounds %struct.rec, ptr %r, i64 %i, i32 1
  store double 2.0, ptr %y, align 8
  %id = getelementptr inbounds %struct.rec, ptr %r, i64 %i, i32 2
  store i32 3, ptr %id, align 8
  %fl = getelementptr inbounds %struct.rec, ptr %r, i64 %i, i32 3
  store i32 4, ptr %fl, align 4
  %st = getelementptr inbounds %struct.rec, ptr %r, i64 %i, i32 4
  store i64 5, ptr %st, align 8
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; Every other i64: n blocks of 8 bytes, 16 apart, each marked in a loop
; after the loop (never the bytes between them), which runs only when
; anything is marked at all (not on one node).
; CHECK-LABEL: define void @strided
; CHECK: loop:
; CHECK-NOT: @__loco_mark_span
; CHECK: exit:
; CHECK-NEXT: [[SPAN:%.*]] = load i64, ptr @__loco_mark_span
; CHECK-NEXT: [[ANY:%.*]] = icmp ne i64 [[SPAN]], 0
; CHECK-NEXT: br i1 [[ANY]], label %loco.range.window, label
; CHECK: loco.range.each:
; CHECK-NEXT: [[K:%.*]] = phi i64 [ 0, %loco.range.window ], [ [[NEXT:%.*]], {{%.*}} ]
; CHECK-NEXT: [[STEP:%.*]] = mul i64 [[K]], 16
; CHECK-NEXT: [[BLOCK:%.*]] = getelementptr i8, ptr %a, i64 [[STEP]]
; CHECK: call void @loco_mark_dirty(ptr [[BLOCK]], i64 8)
; CHECK: [[NEXT]] = add i64 [[K]], 1
; CHECK-NEXT: [[MORE:%.*]] = icmp ult i64 [[NEXT]], %n
; CHECK-NEXT: br i1 [[MORE]], label %loco.range.each, label %loco.range.done
define void @strided(ptr %a, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %k = shl nuw i64 %i, 1
  %slot = getelementptr inbounds i64, ptr %a, i64 %k
  store i64 %i, ptr %slot, align 8
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; A transpose's column writes: 64 blocks of 8 bytes, 512 apart, in the
; inner loop; the outer loop moves them by 8: one range of 32 KiB after
; both loops (more than two granules: loco_mark_dirty reads the home bytes).
; CHECK-LABEL: define void @transpose
; CHECK: inner:
; CHECK-NOT: @__loco_mark_span
; CHECK: exit:
; CHECK: loco.range.shared:
; CHECK-NEXT: call void @loco_mark_dirty(ptr %b, i64 32768)
define void @transpose(ptr %a, ptr %b) {
entry:
  br label %outer
outer:
  %i = phi i64 [ 0, %entry ], [ %inext, %outer.latch ]
  br label %inner
inner:
  %j = phi i64 [ 0, %outer ], [ %jnext, %inner ]
  %jrow = shl nuw nsw i64 %j, 6
  %at = add nuw nsw i64 %jrow, %i
  %dst = getelementptr inbounds double, ptr %b, i64 %at
  store double 1.0, ptr %dst, align 8
  %jnext = add nuw nsw i64 %j, 1
  %jdone = icmp eq i64 %jnext, 64
  br i1 %jdone, label %outer.latch, label %inner
outer.latch:
  %inext = add nuw nsw i64 %i, 1
  %idone = icmp eq i64 %inext, 64
  br i1 %idone, label %exit, label %outer
exit:
  ret void
}

; A store not made in every iteration is marked after itself.
; CHECK-LABEL: define void @conditional
; CHECK: then:
; CHECK: store i64 %i, ptr %slot, align 8
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: exit:
; CHECK-NEXT: ret void
define void @conditional(ptr %a, ptr %c, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %latch ]
  %cp = getelementptr inbounds i8, ptr %c, i64 %i
  %cv = load i8, ptr %cp, align 1
  %odd = icmp ne i8 %cv, 0
  br i1 %odd, label %then, label %latch
then:
  %slot = getelementptr inbounds i64, ptr %a, i64 %i
  store i64 %i, ptr %slot, align 8
  br label %latch
latch:
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; A call that does not synchronise (nosync, willreturn, nounwind) lets the
; mark move after the loop.
; CHECK-LABEL: define void @nosync_call
; CHECK: loop:
; CHECK-NOT: @__loco_mark_span
; CHECK: exit:
; CHECK: call void @loco_mark_dirty(ptr %a, i64 {{%.*}})
define void @nosync_call(ptr %a, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %f = uitofp i64 %i to double
  %s = call double @llvm.sqrt.f64(double %f)
  %slot = getelementptr inbounds double, ptr %a, i64 %i
  store double %s, ptr %slot, align 8
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; A loop walking down from a[n-1] to a[0]: 4 * n bytes from %a.
; CHECK-LABEL: define void @backwards
; CHECK: loop:
; CHECK-NOT: @__loco_mark_span
; CHECK: exit:
; CHECK-NEXT: [[LEN:%.*]] = shl i64 %n, 2
; CHECK: call void @loco_mark_dirty(ptr %a, i64 [[LEN]])
define void @backwards(ptr %a, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ %n, %entry ], [ %next, %loop ]
  %next = add i64 %i, -1
  %slot = getelementptr inbounds i32, ptr %a, i64 %next
  store i32 7, ptr %slot, align 4
  %done = icmp eq i64 %next, 0
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; The loop's exit block is reached from outside the loop too: the exit
; edge gets a block of its own for the mark.
; CHECK-LABEL: define void @shared_exit
; CHECK: br i1 %done, label %loco.exit, label %loop
; CHECK: loco.exit:
; CHECK: call void @loco_mark_dirty(ptr %a, i64 {{%.*}})
; CHECK: exit:
; CHECK-NEXT: ret void
define void @shared_exit(ptr %a, i64 %n, i1 %skip) {
entry:
  br i1 %skip, label %exit, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %slot = getelementptr inbounds i16, ptr %a, i64 %i
  store i16 1, ptr %slot, align 2
  %next = add nuw i64 %i, 1
  %done = icmp eq i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}

; Two adjacent stores of a block: one 16-byte mark after the second.
; CHECK-LABEL: define void @adjacent
; CHECK: store i64 %v, ptr %p, align 16
; CHECK-NEXT: %q = getelementptr inbounds i8, ptr %p, i64 8
; CHECK-NEXT: store i64 %v, ptr %q, align 8
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: %loco.range = getelementptr i8, ptr %q, i64 -8
; CHECK: atomicrmw or ptr {{%.*}}, i16 -1 release
; CHECK: call void @loco_mark_dirty(ptr %loco.range, i64 16)
; CHECK-NOT: @__loco_mark_span
; CHECK: ret void
define void @adjacent(ptr %p, i64 %v) {
  store i64 %v, ptr %p, align 16
  %q = getelementptr inbounds i8, ptr %p, i64 8
  store i64 %v, ptr %q, align 8
  ret void
}

; A call that may synchronise between them: each store is marked after
; itself, the first before the call.
; CHECK-LABEL: define void @apart
; CHECK: store i64 %v, ptr %p, align 16
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: call void @loco_mark_dirty(ptr %p, i64 8)
; CHECK: call void @unknown()
; CHECK: store i64 %v, ptr %q, align 8
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: call void @loco_mark_dirty(ptr %q, i64 8)
define void @apart(ptr %p, i64 %v) {
  store i64 %v, ptr %p, align 16
  call void @unknown()
  %q = getelementptr inbounds i8, ptr %p, i64 8
  store i64 %v, ptr %q, align 8
  ret void
}
