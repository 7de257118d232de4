; Atomics on memory that may be shared become runtime calls (done at the
; home node) with ABI.md's numbers: op (Add 1, Xchg 0, FAdd 11), size in
; bytes, ordering (Monotonic 2, Acquire 4, Release 5, AcqRel 6, SeqCst 7).
define i32 @f(ptr %p, ptr %q, ptr %r, double %d, ptr %s, ptr %w) {
  %old = atomicrmw add ptr %p, i32 3 seq_cst
  %pair = cmpxchg ptr %q, i64 5, i64 7 acq_rel monotonic
  %ok = extractvalue { i64, i1 } %pair, 1
  %v = load atomic i32, ptr %p acquire, align 4
  store atomic i32 %v, ptr %p release, align 4
  %f = atomicrmw fadd ptr %r, double %d monotonic
  %x = atomicrmw volatile xchg ptr %s, ptr %w acquire
  %b = load atomic i8, ptr %s unordered, align 1
  %pp = cmpxchg weak ptr %s, ptr null, ptr %w seq_cst seq_cst
  %fl = load atomic float, ptr %r seq_cst, align 4
  %local = alloca i32
  %l = atomicrmw add ptr %local, i32 1 monotonic
  ret i32 %old
}
; CHECK-LABEL: define i32 @f
; CHECK: [[OLD:%.*]] = call i64 @loco_atomic_rmw(ptr %p, i64 3, i32 1, i32 4, i32 7)
; CHECK-NEXT: %old = trunc i64 [[OLD]] to i32
; CHECK: [[FOUND:%.*]] = call i64 @loco_atomic_cmpxchg(ptr %q, i64 5, i64 7, i32 8, i32 6)
; CHECK-NEXT: [[OK:%.*]] = icmp eq i64 [[FOUND]], 5
; CHECK-NEXT: [[P0:%.*]] = insertvalue { i64, i1 } poison, i64 [[FOUND]], 0
; CHECK-NEXT: %pair = insertvalue { i64, i1 } [[P0]], i1 [[OK]], 1
; CHECK-NEXT: %ok = extractvalue { i64, i1 } %pair, 1
; CHECK-NEXT: [[V:%.*]] = call i64 @loco_atomic_load(ptr %p, i32 4, i32 4)
; CHECK-NEXT: %v = trunc i64 [[V]] to i32
; CHECK-NEXT: [[V64:%.*]] = zext i32 %v to i64
; CHECK-NEXT: call void @loco_atomic_store(ptr %p, i64 [[V64]], i32 4, i32 5)
; CHECK-NEXT: [[D:%.*]] = bitcast double %d to i64
; CHECK-NEXT: [[F:%.*]] = call i64 @loco_atomic_rmw(ptr %r, i64 [[D]], i32 11, i32 8, i32 2)
; CHECK-NEXT: %f = bitcast i64 [[F]] to double
; CHECK-NEXT: [[W:%.*]] = ptrtoint ptr %w to i64
; CHECK-NEXT: [[X:%.*]] = call i64 @loco_atomic_rmw(ptr %s, i64 [[W]], i32 0, i32 8, i32 4)
; CHECK-NEXT: %x = inttoptr i64 [[X]] to ptr
; Unordered is passed as monotonic.
; CHECK-NEXT: [[B:%.*]] = call i64 @loco_atomic_load(ptr %s, i32 1, i32 2)
; CHECK-NEXT: %b = trunc i64 [[B]] to i8
; CHECK: [[PF:%.*]] = call i64 @loco_atomic_cmpxchg(ptr %s, i64 0, i64 {{%.*}}, i32 8, i32 7)
; CHECK: inttoptr i64 [[PF]] to ptr
; CHECK: insertvalue { ptr, i1 } poison, ptr
; CHECK: [[FL:%.*]] = call i64 @loco_atomic_load(ptr %r, i32 4, i32 7)
; CHECK-NEXT: [[FL32:%.*]] = trunc i64 [[FL]] to i32
; CHECK-NEXT: %fl = bitcast i32 [[FL32]] to float
; The stack is never shared: a CPU atomic stays.
; CHECK: atomicrmw add ptr %local, i32 1 monotonic
; CHECK-NOT: cmpxchg ptr
; CHECK-DAG: declare i64 @loco_atomic_rmw(ptr, i64, i32, i32, i32)
; CHECK-DAG: declare i64 @loco_atomic_cmpxchg(ptr, i64, i64, i32, i32)
; CHECK-DAG: declare i64 @loco_atomic_load(ptr, i32, i32)
; CHECK-DAG: declare void @loco_atomic_store(ptr, i64, i32, i32)
