; Atomics on memory that may be shared go to the runtime (done at the home
; node), with the operation, size and ordering numbers of ABI.md.
define i32 @f(ptr %p, ptr %q, ptr %r, double %d) {
  %old = atomicrmw add ptr %p, i32 3 seq_cst
  %pair = cmpxchg ptr %q, i64 5, i64 7 acq_rel monotonic
  %ok = extractvalue { i64, i1 } %pair, 1
  %v = load atomic i32, ptr %p acquire, align 4
  store atomic i32 %v, ptr %p release, align 4
  %f = atomicrmw fadd ptr %r, double %d monotonic
  %local = alloca i32
  %l = atomicrmw add ptr %local, i32 1 monotonic
  ret i32 %old
}
; CHECK-LABEL: define i32 @f
; CHECK: [[OLD:%.*]] = call i64 @loco_atomic_rmw(ptr %p, i64 3, i32 1, i32 4, i32 7)
; CHECK: trunc i64 [[OLD]] to i32
; CHECK: [[FOUND:%.*]] = call i64 @loco_atomic_cmpxchg(ptr %q, i64 5, i64 7, i32 8, i32 6)
; CHECK: icmp eq i64 [[FOUND]], 5
; CHECK: insertvalue { i64, i1 }
; CHECK: call i64 @loco_atomic_load(ptr %p, i32 4, i32 4)
; CHECK: call void @loco_atomic_store(ptr %p, i64 {{.*}}, i32 4, i32 5)
; CHECK: bitcast double %d to i64
; CHECK: call i64 @loco_atomic_rmw(ptr %r, i64 {{.*}}, i32 11, i32 8, i32 2)
; CHECK: atomicrmw add ptr %local, i32 1 monotonic
; CHECK-NOT: cmpxchg ptr %q
