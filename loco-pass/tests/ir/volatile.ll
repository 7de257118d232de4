; Volatile loads and stores of memory that may be shared tell the runtime
; (ABI.md): a load is preceded by loco_volatile_load, a store is marked as
; any store and then published by loco_volatile_store inside the marking
; block (only for addresses in the shared window). Private ones are left alone.
define i32 @f(ptr %flag, ptr %data, i32 %v) {
  %local = alloca i32
  store volatile i32 %v, ptr %local
  %l = load volatile i32, ptr %local
  %x = load volatile i32, ptr %flag
  %y = load i32, ptr %data
  store volatile i32 %v, ptr %flag
  %s = add i32 %x, %y
  %t = add i32 %s, %l
  ret i32 %t
}
; CHECK-LABEL: define i32 @f
; CHECK: store volatile i32 %v, ptr %local
; CHECK-NEXT: %l = load volatile i32, ptr %local
; CHECK-NEXT: call void @loco_volatile_load(ptr %flag, i64 4)
; CHECK-NEXT: %x = load volatile i32, ptr %flag
; CHECK-NEXT: %y = load i32, ptr %data
; CHECK-NEXT: store volatile i32 %v, ptr %flag
; CHECK: loco.mark.page:
; CHECK: store atomic i8 1, ptr {{%.*}} release
; CHECK-NEXT: call void @loco_volatile_store(ptr %flag, i64 4)
; CHECK-NEXT: br label
; CHECK-NOT: loco_volatile
; CHECK: ret i32
