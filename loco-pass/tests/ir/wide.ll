; A 16-byte vector store aligned to 16 covers two whole, aligned bitmap
; bytes: one i16 OR sets them; misaligned, it takes the slow path. A
; 24-byte aggregate store always goes to the runtime.
define void @f(ptr %p, <4 x i32> %v, ptr %q, { i64, i64, i64 } %s) {
  store <4 x i32> %v, ptr %p
  store { i64, i64, i64 } %s, ptr %q
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store <4 x i32> %v, ptr %p
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: [[A:%.*]] = ptrtoint ptr %p to i64
; CHECK: icmp ult i64 {{%.*}}, %loco.span
; CHECK: loco.mark{{[0-9]*}}:
; CHECK: [[MIS:%.*]] = and i64 [[A]], 15
; CHECK: icmp eq i64 [[MIS]], 0
; CHECK: loco.mark.bits{{[0-9]*}}:
; CHECK: atomicrmw or ptr {{%.*}}, i16 -1 release
; CHECK: loco.mark.slow{{[0-9]*}}:
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 16)
; CHECK: store atomic i8 1, ptr {{%.*}} release
; CHECK: store { i64, i64, i64 } %s, ptr %q
; CHECK: call void @loco_mark_dirty(ptr %q, i64 24)
; CHECK-NOT: atomicrmw or ptr {{%.*}}, i192
