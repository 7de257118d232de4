; A 4-byte store through an unknown pointer: the store first, then the
; test of libloco's __loco_mark_span (0 on one node: nothing to mark), the
; window check against it, the home byte (a page this node is home to takes no mark),
; the bitmap OR (or the slow path when the 4 bytes straddle a bitmap byte),
; and the page summary (ABI.md).
define void @f(ptr %p, i32 %v) {
  store i32 %v, ptr %p, align 4
  ret void
}
; CHECK: @__loco_mark_span = external global i64
; CHECK-LABEL: define void @f
; CHECK-NEXT: store i32 %v, ptr %p, align 4
; CHECK-NEXT: %loco.span = load i64, ptr @__loco_mark_span, align 8, !invariant.load [[EMPTY:![0-9]+]]
; CHECK-NEXT: [[ANY:%.*]] = icmp ne i64 %loco.span, 0
; CHECK-NEXT: br i1 [[ANY]], label %loco.window, label %loco.cont
; CHECK: loco.window:
; CHECK-NEXT: %loco.addr = ptrtoint ptr %p to i64
; CHECK-NEXT: %loco.off = sub i64 %loco.addr, 70368744177664
; CHECK-NEXT: [[IN:%.*]] = icmp ult i64 %loco.off, %loco.span
; CHECK-NEXT: br i1 [[IN]], label %loco.home, label %loco.cont
; CHECK: loco.home:
; CHECK-NEXT: [[PAGE:%.*]] = lshr i64 %loco.addr, 12
; CHECK-NEXT: [[AT:%.*]] = add i64 [[PAGE]], 68719476736
; CHECK-NEXT: [[HP:%.*]] = inttoptr i64 [[AT]] to ptr
; CHECK-NEXT: [[H:%.*]] = load atomic i8, ptr [[HP]] monotonic, align 1
; CHECK-NEXT: [[NOT:%.*]] = icmp eq i8 [[H]], 0
; CHECK-NEXT: br i1 [[NOT]], label %loco.mark, label %loco.cont
; CHECK: loco.mark:
; CHECK-NEXT: [[BIT:%.*]] = and i64 %loco.addr, 7
; CHECK-NEXT: [[END:%.*]] = add i64 [[BIT]], 4
; CHECK-NEXT: [[FITS:%.*]] = icmp ule i64 [[END]], 8
; CHECK-NEXT: br i1 [[FITS]], label %loco.mark.bits, label %loco.mark.slow
; CHECK: loco.mark.bits:
; CHECK-NEXT: [[IDX:%.*]] = lshr i64 %loco.addr, 3
; CHECK-NEXT: [[BM:%.*]] = inttoptr i64 [[IDX]] to ptr
; CHECK-NEXT: [[M64:%.*]] = shl i64 15, [[BIT]]
; CHECK-NEXT: [[MASK:%.*]] = trunc i64 [[M64]] to i8
; CHECK-NEXT: atomicrmw or ptr [[BM]], i8 [[MASK]] release
; CHECK-NEXT: br label %loco.mark.page
; CHECK: loco.mark.slow:
; CHECK-NEXT: call void @loco_mark_dirty(ptr %p, i64 4)
; CHECK-NEXT: br label %loco.mark.page
; CHECK: loco.mark.page:
; CHECK-NEXT: [[PG:%.*]] = lshr i64 %loco.addr, 12
; CHECK-NEXT: [[SUM:%.*]] = inttoptr i64 [[PG]] to ptr
; CHECK-NEXT: store atomic i8 1, ptr [[SUM]] release, align 1
; CHECK-NEXT: br label %loco.cont
; CHECK: loco.cont:
; CHECK-NEXT: ret void
; CHECK: declare void @loco_mark_dirty(ptr, i64)
; CHECK: [[EMPTY]] = !{}
