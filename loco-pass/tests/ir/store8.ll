; 8-byte stores (which may be unaligned): the full-byte mask 255 when the
; address is 8-aligned, the slow path otherwise. Doubles and pointers too.
define void @f(ptr %p, i64 %v, ptr %q, double %d, ptr %r, ptr %w) {
  store i64 %v, ptr %p, align 1
  store double %d, ptr %q
  store ptr %w, ptr %r
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store i64 %v, ptr %p, align 1
; CHECK-NEXT: load i64, ptr @__loco_mark_span
; CHECK: %[[ADDR:loco.addr[0-9]*]] = ptrtoint ptr %p to i64
; CHECK: [[BIT:%.*]] = and i64 %[[ADDR]], 7
; CHECK-NEXT: [[END:%.*]] = add i64 [[BIT]], 8
; CHECK-NEXT: icmp ule i64 [[END]], 8
; CHECK: shl i64 255, [[BIT]]
; CHECK: atomicrmw or ptr {{%.*}}, i8 {{%.*}} release
; CHECK: call void @loco_mark_dirty(ptr %p, i64 8)
; CHECK: store atomic i8 1, ptr {{%.*}} release
; CHECK: store double %d, ptr %q
; CHECK: call void @loco_mark_dirty(ptr %q, i64 8)
; CHECK: store ptr %w, ptr %r
; CHECK: call void @loco_mark_dirty(ptr %r, i64 8)
