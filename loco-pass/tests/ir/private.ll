; Stores whose pointer is provably the stack or a thread-local variable
; (through GEPs, casts, phis, selects, thread-local access) are not
; instrumented. Other globals may be shared: stores to them are.
@g = global i32 0
@tls = thread_local global i32 0
@tlsarr = thread_local global [8 x i64] zeroinitializer

define void @f(ptr %p, i32 %v, i1 %c, i64 %i) {
entry:
  %local = alloca [4 x i32]
  store i32 %v, ptr %local
  %field = getelementptr [4 x i32], ptr %local, i64 0, i64 2
  store i32 %v, ptr %field
  %elem = getelementptr [8 x i64], ptr @tlsarr, i64 0, i64 %i
  store i64 7, ptr %elem
  store i32 %v, ptr getelementptr (i8, ptr @tls, i64 0)
  %either = select i1 %c, ptr %local, ptr @tls
  store i32 %v, ptr %either
  %t = call ptr @llvm.threadlocal.address.p0(ptr @tls)
  store i32 %v, ptr %t
  br i1 %c, label %a, label %b
a:
  br label %join
b:
  br label %join
join:
  %joined = phi ptr [ %field, %a ], [ %t, %b ]
  store i32 %v, ptr %joined
  ; A global that is not thread-local: instrumented.
  store i32 %v, ptr @g
  ; One side unknown: instrumented.
  %maybe = select i1 %c, ptr %local, ptr %p
  store i32 %v, ptr %maybe
  ret void
}
declare ptr @llvm.threadlocal.address.p0(ptr)
; CHECK-LABEL: define void @f
; CHECK-NOT: ptrtoint
; CHECK: store i32 %v, ptr %joined
; CHECK-NEXT: store i32 %v, ptr @g
; CHECK-NEXT: [[SPAN:%.*]] = load i64, ptr @__loco_mark_span
; CHECK: icmp ult i64 sub (i64 ptrtoint (ptr @g to i64), i64 70368744177664), [[SPAN]]
; CHECK: store i32 %v, ptr %maybe
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: %loco.addr = ptrtoint ptr %maybe to i64
