; Heap functions are renamed to the runtime's, wherever they are used.
define ptr @f(i64 %n) {
  %p = call ptr @malloc(i64 %n)
  %q = call ptr @_Znwm(i64 16)
  call void @_ZdlPv(ptr %q)
  %r = call ptr @realloc(ptr %p, i64 64)
  call void @free(ptr %r)
  %fp = bitcast ptr @calloc to ptr
  ret ptr %fp
}
declare ptr @malloc(i64)
declare ptr @realloc(ptr, i64)
declare ptr @calloc(i64, i64)
declare void @free(ptr)
declare ptr @_Znwm(i64)
declare void @_ZdlPv(ptr)
; CHECK-LABEL: define ptr @f
; CHECK: call ptr @loco_malloc(i64 %n)
; CHECK: call ptr @loco__Znwm(i64 16)
; CHECK: call void @loco__ZdlPv(
; CHECK: call ptr @loco_realloc(
; CHECK: call void @loco_free(
; CHECK: bitcast ptr @loco_calloc to ptr
; CHECK-NOT: declare ptr @malloc
