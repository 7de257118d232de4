; Calls to known libc writers are followed by loco_after_NAME, which gets
; the first K arguments and the result (ABI.md); after an invoke, on the
; normal edge. A program's own function of such a name gets no hook.
@fmt = constant [3 x i8] c"%d\00"
define void @f(ptr %dst, ptr %src, i64 %n, ptr %file) {
  %a = call ptr @strcpy(ptr %dst, ptr %src)
  %b = call i32 (ptr, i64, ptr, ...) @snprintf(ptr %dst, i64 %n, ptr @fmt, i32 42)
  call void @qsort(ptr %dst, i64 %n, i64 8, ptr null)
  %c = call i64 @fread(ptr %dst, i64 1, i64 %n, ptr %file)
  %d = call i32 @read(i32 0, ptr %dst, i64 %n)
  ret void
}
declare ptr @strcpy(ptr, ptr)
declare i32 @snprintf(ptr, i64, ptr, ...)
declare void @qsort(ptr, i64, i64, ptr)
declare i64 @fread(ptr, i64, i64, ptr)
; The program's own read().
define i32 @read(i32 %fd, ptr %buf, i64 %n) {
  ret i32 0
}
; CHECK-LABEL: define void @f
; CHECK: %a = call ptr @strcpy(ptr %dst, ptr %src)
; CHECK-NEXT: call void @loco_after_strcpy(ptr %dst, ptr %src, ptr %a)
; CHECK-NEXT: %b = call i32 (ptr, i64, ptr, ...) @snprintf(
; CHECK-NEXT: call void @loco_after_snprintf(ptr %dst, i64 %n, ptr @fmt, i32 %b)
; CHECK-NEXT: call void @qsort(
; CHECK-NEXT: call void @loco_after_qsort(ptr %dst, i64 %n, i64 8)
; CHECK-NEXT: %c = call i64 @fread(
; CHECK-NEXT: call void @loco_after_fread(ptr %dst, i64 1, i64 %n, ptr %file, i64 %c)
; CHECK-NEXT: %d = call i32 @read(
; CHECK-NEXT: ret void

define i32 @g(ptr %dst, i64 %n, ptr %file, i1 %c) personality ptr @__gxx_personality_v0 {
entry:
  br i1 %c, label %call, label %join
call:
  %got = invoke i64 @fread(ptr %dst, i64 1, i64 %n, ptr %file)
          to label %join unwind label %pad
join:
  %r = phi i64 [ 0, %entry ], [ %got, %call ]
  %t = trunc i64 %r to i32
  ret i32 %t
pad:
  %lp = landingpad { ptr, i32 } cleanup
  resume { ptr, i32 } %lp
}
declare i32 @__gxx_personality_v0(...)
; CHECK-LABEL: define i32 @g
; CHECK: %got = invoke i64 @fread(ptr %dst, i64 1, i64 %n, ptr %file)
; CHECK-NEXT: to label %loco.after unwind label %pad
; CHECK: loco.after:
; CHECK-NEXT: call void @loco_after_fread(ptr %dst, i64 1, i64 %n, ptr %file, i64 %got)
; CHECK-NEXT: br label %join
; CHECK: join:
; CHECK-NEXT: %r = phi i64 [ 0, %entry ], [ %got, %loco.after ]
; CHECK-DAG: declare void @loco_after_strcpy(ptr, ptr, ptr)
; CHECK-DAG: declare void @loco_after_snprintf(ptr, i64, ptr, i32)
; CHECK-DAG: declare void @loco_after_qsort(ptr, i64, i64)
; CHECK-DAG: declare void @loco_after_fread(ptr, i64, i64, ptr, i64)
