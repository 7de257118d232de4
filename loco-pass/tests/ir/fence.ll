; Thread fences tell the runtime (ABI.md): loco_fence with the fence's
; ordering (LLVMAtomicOrdering: 4 acquire, 5 release, 6 acq_rel, 7
; seq_cst) comes right before each one, which stays. A signal fence
; (syncscope "singlethread") orders nothing between threads: left alone.
define void @f() {
  fence acquire
  fence release
  fence acq_rel
  fence seq_cst
  fence syncscope("singlethread") seq_cst
  ret void
}
; CHECK-LABEL: define void @f
; CHECK-NEXT: call void @loco_fence(i32 4)
; CHECK-NEXT: fence acquire
; CHECK-NEXT: call void @loco_fence(i32 5)
; CHECK-NEXT: fence release
; CHECK-NEXT: call void @loco_fence(i32 6)
; CHECK-NEXT: fence acq_rel
; CHECK-NEXT: call void @loco_fence(i32 7)
; CHECK-NEXT: fence seq_cst
; CHECK-NEXT: fence syncscope("singlethread") seq_cst
; CHECK-NEXT: ret void
