; 16-byte vector stores mark two bitmap bytes with one i16 OR when aligned;
; a 24-byte aggregate store goes to the runtime.
define void @f(ptr %p, <4 x i32> %v, ptr %q, { i64, i64, i64 } %s) {
  store <4 x i32> %v, ptr %p
  store { i64, i64, i64 } %s, ptr %q
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store <4 x i32> %v, ptr %p
; CHECK: and i64 %loco.addr, 15
; CHECK: atomicrmw or ptr {{.*}}, i16 -1 release
; CHECK: call void @loco_mark_dirty(ptr %p, i64 16)
; CHECK: store { i64, i64, i64 } %s, ptr %q
; CHECK: call void @loco_mark_dirty(ptr %q, i64 24)
; CHECK-NOT: atomicrmw or ptr {{.*}}, i192
