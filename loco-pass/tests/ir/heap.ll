; Declarations of heap functions get the loco_ prefix, so every call and
; every address-taken use reaches the shared heap; a program's own
; definition of such a name is left alone.
@table = global [2 x ptr] [ptr @malloc, ptr @_ZdaPv]

define ptr @f(i64 %n) {
  %p = call ptr @malloc(i64 %n)
  %q = call ptr @_Znwm(i64 16)
  call void @_ZdlPv(ptr %q)
  %a = call ptr @_Znam(i64 32)
  call void @_ZdaPv(ptr %a)
  %nt = call ptr @_ZnwmRKSt9nothrow_t(i64 8, ptr null)
  call void @_ZdlPvm(ptr %nt, i64 8)
  %al = call ptr @_ZnwmSt11align_val_t(i64 64, i64 64)
  call void @_ZdlPvSt11align_val_t(ptr %al, i64 64)
  %r = call ptr @realloc(ptr %p, i64 64)
  %s = call ptr @strdup(ptr %r)
  %rc = call i32 @posix_memalign(ptr null, i64 64, i64 64)
  %v = call ptr @valloc(i64 4096)
  call void @free(ptr %r)
  ret ptr @calloc
}

; The program's own valloc: not a declaration, not renamed.
define ptr @valloc(i64 %n) {
  ret ptr null
}

; pthread mutexes go to the runtime too (libstdc++ declares them extern_weak).
define i32 @m(ptr %mu) {
  %a = call i32 @pthread_mutex_lock(ptr %mu)
  %b = call i32 @pthread_mutex_trylock(ptr %mu)
  %c = call i32 @pthread_mutex_unlock(ptr %mu)
  ret i32 %a
}
declare extern_weak i32 @pthread_mutex_lock(ptr)
declare i32 @pthread_mutex_trylock(ptr)
declare extern_weak i32 @pthread_mutex_unlock(ptr)

declare ptr @malloc(i64)
declare ptr @realloc(ptr, i64)
declare ptr @calloc(i64, i64)
declare void @free(ptr)
declare ptr @strdup(ptr)
declare i32 @posix_memalign(ptr, i64, i64)
declare ptr @_Znwm(i64)
declare ptr @_Znam(i64)
declare ptr @_ZnwmRKSt9nothrow_t(i64, ptr)
declare ptr @_ZnwmSt11align_val_t(i64, i64)
declare void @_ZdlPv(ptr)
declare void @_ZdaPv(ptr)
declare void @_ZdlPvm(ptr, i64)
declare void @_ZdlPvSt11align_val_t(ptr, i64)

; CHECK: @table = global [2 x ptr] [ptr @loco_malloc, ptr @loco__ZdaPv]
; CHECK-LABEL: define ptr @f
; CHECK: call ptr @loco_malloc(i64 %n)
; CHECK: call ptr @loco__Znwm(i64 16)
; CHECK: call void @loco__ZdlPv(ptr %q)
; CHECK: call ptr @loco__Znam(i64 32)
; CHECK: call void @loco__ZdaPv(ptr %a)
; CHECK: call ptr @loco__ZnwmRKSt9nothrow_t(i64 8, ptr null)
; CHECK: call void @loco__ZdlPvm(ptr %nt, i64 8)
; CHECK: call ptr @loco__ZnwmSt11align_val_t(i64 64, i64 64)
; CHECK: call void @loco__ZdlPvSt11align_val_t(ptr %al, i64 64)
; CHECK: call ptr @loco_realloc(ptr %p, i64 64)
; CHECK: call ptr @loco_strdup(ptr %r)
; CHECK: call i32 @loco_posix_memalign(
; CHECK: call ptr @valloc(i64 4096)
; CHECK: call void @loco_free(ptr %r)
; CHECK: ret ptr @loco_calloc
; CHECK: define ptr @valloc(i64 %n)
; CHECK-NOT: declare {{.*}} @malloc(
; CHECK-NOT: declare {{.*}} @free(
; CHECK-NOT: declare {{.*}} @_Znwm(
; CHECK-LABEL: define i32 @m
; CHECK: call i32 @loco_pthread_mutex_lock(ptr %mu)
; CHECK: call i32 @loco_pthread_mutex_trylock(ptr %mu)
; CHECK: call i32 @loco_pthread_mutex_unlock(ptr %mu)
; CHECK: declare extern_weak i32 @loco_pthread_mutex_lock(ptr)
