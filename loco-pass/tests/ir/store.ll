; A store through an unknown pointer gets the inline check and marking;
; stores to the stack and to globals do not.
@g = global i32 0
define void @f(ptr %p, i32 %v) {
  %local = alloca i32
  store i32 %v, ptr %local
  store i32 %v, ptr @g
  %field = getelementptr i8, ptr %local, i64 0
  store i32 %v, ptr %field
  store i32 %v, ptr %p
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store i32 %v, ptr %local
; CHECK-NEXT: store i32 %v, ptr @g
; CHECK-NEXT: %field = getelementptr
; CHECK-NEXT: store i32 %v, ptr %field
; CHECK-NEXT: store i32 %v, ptr %p
; CHECK-NEXT: %loco.addr = ptrtoint ptr %p to i64
; CHECK-NEXT: %loco.off = sub i64 %loco.addr, 70368744177664
; CHECK-NEXT: [[IN:%.*]] = icmp ult i64 %loco.off, 17592186044416
; CHECK-NEXT: br i1 [[IN]], label %loco.mark, label %loco.cont
; CHECK: loco.mark:
; CHECK: icmp ule i64 {{.*}}, 8
; CHECK: loco.mark.bits:
; CHECK: lshr i64 %loco.addr, 3
; CHECK: atomicrmw or ptr {{.*}}, i8 {{.*}} release
; CHECK: loco.mark.slow:
; CHECK: call void @loco_mark_dirty(ptr %p, i64 4)
; CHECK: loco.mark.page:
; CHECK: lshr i64 %loco.addr, 12
; CHECK: store atomic i8 1, ptr {{.*}} monotonic
; CHECK: br label %loco.cont
; CHECK: loco.cont:
; CHECK-NEXT: ret void
