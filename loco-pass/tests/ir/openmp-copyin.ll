; copyin: the forking thread's threadprivate copy is passed by address, and
; other nodes cannot read thread-local storage: the pass copies it into a
; stack slot of the forking function just before the fork and passes that.
@counter = thread_local global i32 0, align 4
@plain = global i32 0, align 4
@scale = internal thread_local global [4 x i64] zeroinitializer, align 16

; At -O0 clang reaches some threadprivate variables through a wrapper.
define internal ptr @_ZTWL5scale() {
  %1 = call ptr @llvm.threadlocal.address.p0(ptr @scale)
  ret ptr %1
}

define void @g(ptr %loc, ptr %fn) {
  %w = call ptr @_ZTWL5scale()
  call void (ptr, i32, ptr, ...) @__kmpc_fork_call(ptr %loc, i32 1, ptr %fn, ptr %w)
  ret void
}

define void @f(ptr %loc, ptr %fn) {
  %tls = call ptr @llvm.threadlocal.address.p0(ptr @counter)
  call void (ptr, i32, ptr, ...) @__kmpc_fork_call(ptr %loc, i32 2, ptr %fn, ptr %tls, ptr @plain)
  ret void
}

declare ptr @llvm.threadlocal.address.p0(ptr)
declare void @__kmpc_fork_call(ptr, i32, ptr, ...)

; CHECK-LABEL: define void @g
; CHECK-NEXT: %loco.copyin = alloca [4 x i64]
; CHECK: %w = call ptr @_ZTWL5scale()
; CHECK-NEXT: call void @llvm.memcpy.p0.p0.i64(ptr align 1 %loco.copyin, ptr align 1 %w, i64 32, i1 false)
; CHECK-NEXT: call void (ptr, i32, ptr, ...) @__kmpc_fork_call(ptr %loc, i32 1, ptr %fn, ptr %loco.copyin)
; CHECK-LABEL: define void @f
; CHECK-NEXT: %loco.copyin = alloca i32
; CHECK: %tls = call ptr @llvm.threadlocal.address.p0(ptr @counter)
; CHECK-NEXT: call void @llvm.memcpy.p0.p0.i64(ptr align 1 %loco.copyin, ptr align 1 %tls, i64 4, i1 false)
; CHECK-NEXT: call void (ptr, i32, ptr, ...) @__kmpc_fork_call(ptr %loc, i32 2, ptr %fn, ptr %loco.copyin, ptr @plain)
