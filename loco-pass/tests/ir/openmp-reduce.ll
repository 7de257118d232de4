; reductions: each call to __kmpc_reduce / __kmpc_reduce_nowait whose list
; is an alloca filled only with addresses of fixed-size stack variables
; holding no pointer becomes a call to loco_reduce / loco_reduce_nowait
; with a constant array of those variables' sizes (ABI.md, "reductions").
; Every other call stays as it is (the runtime's lock-based reduction).
; Calls with the same sizes share the array.
%struct.S = type { i64, i32, double, [5 x i8] } ; 32 bytes
%struct.P = type { ptr, i64 }

; -O0: the list filled through GEPs; a char, an int, a long, a float, a
; double, a 32-byte struct, a [4 x i64] array; two calls with that list.
define void @o0(ptr %loc, i32 %gtid, ptr %fn) !dbg !4 {
  %c = alloca i8, align 1
  %i = alloca i32, align 4
  %l = alloca i64, align 8
  %f = alloca float, align 4
  %d = alloca double, align 8
  %s = alloca %struct.S, align 8
  %a = alloca [4 x i64], align 16
  %list = alloca [7 x ptr], align 8
  %e0 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 0
  store ptr %c, ptr %e0, align 8
  %e1 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 1
  store ptr %i, ptr %e1, align 8
  %e2 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 2
  store ptr %l, ptr %e2, align 8
  %e3 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 3
  store ptr %f, ptr %e3, align 8
  %e4 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 4
  store ptr %d, ptr %e4, align 8
  %e5 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 5
  store ptr %s, ptr %e5, align 8
  %e6 = getelementptr inbounds [7 x ptr], ptr %list, i64 0, i64 6
  store ptr %a, ptr %e6, align 8
  %r = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 7, i64 56, ptr %list, ptr %fn, ptr @lock), !dbg !8
  %r2 = call i32 @__kmpc_reduce(ptr %loc, i32 %gtid, i32 7, i64 56, ptr %list, ptr %fn, ptr @lock), !dbg !9
  %sum = add i32 %r, %r2
  ret void
}

; -O2: entry 0 stored without a GEP, lifetime markers on the list; an
; array section starting 8 bytes into a [10 x i32] (32 bytes from there to
; its end), and an alloca of 3 i16 elements.
define i32 @o2(ptr %loc, i32 %gtid, ptr %fn) {
  %arr = alloca [10 x i32], align 16
  %h = alloca i16, i64 3, align 2
  %list = alloca [2 x ptr], align 8
  call void @llvm.lifetime.start.p0(i64 16, ptr %list)
  %sec = getelementptr inbounds [10 x i32], ptr %arr, i64 0, i64 2
  store ptr %sec, ptr %list, align 8
  %e1 = getelementptr inbounds ptr, ptr %list, i64 1
  store ptr %h, ptr %e1, align 8
  %r = call i32 @__kmpc_reduce(ptr %loc, i32 %gtid, i32 2, i64 16, ptr %list, ptr %fn, ptr @lock)
  call void @llvm.lifetime.end.p0(i64 16, ptr %list)
  ret i32 %r
}

; Kept: a VLA section (its private copy has a run-time length, and clang
; puts the length in the list as an integer).
define i32 @vla(ptr %loc, i32 %gtid, ptr %fn, i64 %n) {
  %v = alloca i64, i64 %n, align 16
  %list = alloca [2 x ptr], align 8
  store ptr %v, ptr %list, align 8
  %e1 = getelementptr inbounds [2 x ptr], ptr %list, i64 0, i64 1
  %len = inttoptr i64 %n to ptr
  store ptr %len, ptr %e1, align 8
  %r = call i32 @__kmpc_reduce(ptr %loc, i32 %gtid, i32 1, i64 16, ptr %list, ptr %fn, ptr @lock)
  ret i32 %r
}

; Kept: a variable holding a pointer (a byte copy would carry the address,
; not what it points to).
define i32 @pointer(ptr %loc, i32 %gtid, ptr %fn) {
  %p = alloca %struct.P, align 8
  %list = alloca [1 x ptr], align 8
  store ptr %p, ptr %list, align 8
  %r = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 1, i64 8, ptr %list, ptr %fn, ptr @lock)
  ret i32 %r
}

; Kept: the list escapes (another call could fill it), an entry is never
; stored, an entry is stored from an argument (not a stack variable), and
; two stores give one entry variables of different sizes.
define i32 @escapes(ptr %loc, i32 %gtid, ptr %fn, ptr %arg, i1 %which) {
  %x = alloca i64, align 8
  %y = alloca i32, align 4
  %list = alloca [1 x ptr], align 8
  store ptr %x, ptr %list, align 8
  call void @fill(ptr %list)
  %r1 = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 1, i64 8, ptr %list, ptr %fn, ptr @lock)
  %list2 = alloca [2 x ptr], align 8
  store ptr %x, ptr %list2, align 8
  %r2 = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 2, i64 16, ptr %list2, ptr %fn, ptr @lock)
  %list3 = alloca [1 x ptr], align 8
  store ptr %arg, ptr %list3, align 8
  %r3 = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 1, i64 8, ptr %list3, ptr %fn, ptr @lock)
  %list4 = alloca [1 x ptr], align 8
  br i1 %which, label %a, label %b
a:
  store ptr %x, ptr %list4, align 8
  br label %c
b:
  store ptr %y, ptr %list4, align 8
  br label %c
c:
  %r4 = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 1, i64 8, ptr %list4, ptr %fn, ptr @lock)
  %s1 = add i32 %r1, %r2
  %s2 = add i32 %s1, %r3
  %s3 = add i32 %s2, %r4
  ret i32 %s3
}

@lock = common global [8 x i32] zeroinitializer, align 8

declare i32 @__kmpc_reduce_nowait(ptr, i32, i32, i64, ptr, ptr, ptr)
declare i32 @__kmpc_reduce(ptr, i32, i32, i64, ptr, ptr, ptr)
declare void @fill(ptr)
declare void @llvm.lifetime.start.p0(i64, ptr)
declare void @llvm.lifetime.end.p0(i64, ptr)

!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "r.c", directory: "/tmp")
!3 = !{i32 2, !"Debug Info Version", i32 3}
!4 = distinct !DISubprogram(name: "o0", scope: !1, file: !1, line: 1, type: !5, scopeLine: 1, spFlags: DISPFlagDefinition, unit: !0)
!5 = !DISubroutineType(types: !6)
!6 = !{null}
!8 = !DILocation(line: 6, column: 9, scope: !4)
!9 = !DILocation(line: 9, column: 9, scope: !4)

; CHECK: @__loco.reduce.sizes = private unnamed_addr constant [7 x i64] [i64 1, i64 4, i64 8, i64 4, i64 8, i64 32, i64 32], align 8
; CHECK: @__loco.reduce.sizes.1 = private unnamed_addr constant [2 x i64] [i64 32, i64 6], align 8
; CHECK-NOT: @__loco.reduce.sizes.2
; CHECK-LABEL: define void @o0
; CHECK: %r = call i32 @loco_reduce_nowait(ptr %loc, i32 %gtid, i32 7, i64 56, ptr %list, ptr %fn, ptr @lock, ptr @__loco.reduce.sizes), !dbg ![[L6:[0-9]+]]
; CHECK-NEXT: %r2 = call i32 @loco_reduce(ptr %loc, i32 %gtid, i32 7, i64 56, ptr %list, ptr %fn, ptr @lock, ptr @__loco.reduce.sizes), !dbg ![[L9:[0-9]+]]
; CHECK-NEXT: %sum = add i32 %r, %r2
; CHECK-LABEL: define i32 @o2
; CHECK: %r = call i32 @loco_reduce(ptr %loc, i32 %gtid, i32 2, i64 16, ptr %list, ptr %fn, ptr @lock, ptr @__loco.reduce.sizes.1)
; CHECK-NEXT: call void @llvm.lifetime.end.p0(i64 16, ptr %list)
; CHECK-NEXT: ret i32 %r
; CHECK-LABEL: define i32 @vla
; CHECK: %r = call i32 @__kmpc_reduce(ptr %loc, i32 %gtid, i32 1, i64 16, ptr %list, ptr %fn, ptr @lock)
; CHECK-LABEL: define i32 @pointer
; CHECK: %r = call i32 @__kmpc_reduce_nowait(ptr %loc, i32 %gtid, i32 1, i64 8, ptr %list, ptr %fn, ptr @lock)
; CHECK-LABEL: define i32 @escapes
; CHECK: %r1 = call i32 @__kmpc_reduce_nowait(
; CHECK: %r2 = call i32 @__kmpc_reduce_nowait(
; CHECK: %r3 = call i32 @__kmpc_reduce_nowait(
; CHECK: %r4 = call i32 @__kmpc_reduce_nowait(
; CHECK-NOT: loco_reduce
; CHECK-DAG: declare i32 @loco_reduce_nowait(ptr, i32, i32, i64, ptr, ptr, ptr, ptr)
; CHECK-DAG: declare i32 @loco_reduce(ptr, i32, i32, i64, ptr, ptr, ptr, ptr)
; CHECK: ![[L6]] = !DILocation(line: 6,
; CHECK: ![[L9]] = !DILocation(line: 9,
