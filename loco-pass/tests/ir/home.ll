; The home test after a store (ABI.md): one home byte when the store cannot
; cross a 4 KiB boundary (a power of two at most 4096, aligned to its
; size), the home bytes of its first and last byte ANDed otherwise; none
; for a volatile store, which always reaches its loco_volatile_store call.
define void @f(ptr %aligned, ptr %unaligned, ptr %odd, ptr %vol, i64 %v, { i32, i32, i32 } %s) {
  store i64 %v, ptr %aligned, align 8
  store i64 %v, ptr %unaligned, align 4
  store { i32, i32, i32 } %s, ptr %odd, align 4
  store volatile i64 %v, ptr %vol, align 8
  ret void
}
; CHECK-LABEL: define void @f
; CHECK: store i64 %v, ptr %aligned, align 8
; CHECK: loco.home{{[0-9]*}}:
; CHECK-NEXT: [[P:%.*]] = lshr i64 [[A:%.*]], 12
; CHECK-NEXT: [[H:%.*]] = add i64 [[P]], 68719476736
; CHECK-NEXT: [[HP:%.*]] = inttoptr i64 [[H]] to ptr
; CHECK-NEXT: [[B:%.*]] = load atomic i8, ptr [[HP]] monotonic, align 1
; CHECK-NEXT: icmp eq i8 [[B]], 0
; CHECK: store i64 %v, ptr %unaligned, align 4
; CHECK: loco.home{{[0-9]*}}:
; CHECK: [[LAST:%.*]] = add i64 [[U:%.*]], 7
; CHECK: [[B1:%.*]] = load atomic i8, ptr {{%.*}} monotonic, align 1
; CHECK: lshr i64 [[LAST]], 12
; CHECK: [[B2:%.*]] = load atomic i8, ptr {{%.*}} monotonic, align 1
; CHECK-NEXT: [[BOTH:%.*]] = and i8 [[B1]], [[B2]]
; CHECK-NEXT: icmp eq i8 [[BOTH]], 0
; CHECK: store { i32, i32, i32 } %s, ptr %odd, align 4
; CHECK: loco.home{{[0-9]*}}:
; CHECK: add i64 {{%.*}}, 11
; CHECK: and i8
; CHECK: call void @loco_mark_dirty(ptr %odd, i64 12)
; CHECK: store volatile i64 %v, ptr %vol, align 8
; CHECK-NOT: loco.home
; CHECK: call void @loco_volatile_store(ptr %vol, i64 8)
