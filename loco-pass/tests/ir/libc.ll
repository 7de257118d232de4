; Calls to known libc writers are followed by their hooks, which get the
; leading arguments and the result.
@fmt = constant [3 x i8] c"%d\00"
define void @f(ptr %dst, ptr %src, i64 %n) {
  %a = call ptr @strcpy(ptr %dst, ptr %src)
  %b = call i32 (ptr, i64, ptr, ...) @snprintf(ptr %dst, i64 %n, ptr @fmt, i32 42)
  call void @qsort(ptr %dst, i64 %n, i64 8, ptr null)
  ret void
}
declare ptr @strcpy(ptr, ptr)
declare i32 @snprintf(ptr, i64, ptr, ...)
declare void @qsort(ptr, i64, i64, ptr)
; CHECK-LABEL: define void @f
; CHECK: %a = call ptr @strcpy(ptr %dst, ptr %src)
; CHECK-NEXT: call void @loco_after_strcpy(ptr %dst, ptr %src, ptr %a)
; CHECK: %b = call i32 (ptr, i64, ptr, ...) @snprintf(
; CHECK-NEXT: call void @loco_after_snprintf(ptr %dst, i64 %n, ptr @fmt, i32 %b)
; CHECK: call void @qsort(
; CHECK-NEXT: call void @loco_after_qsort(ptr %dst, i64 %n, i64 8)
