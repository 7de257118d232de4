; single copyprivate: each call to __kmpc_copyprivate whose copy function
; only copies bytes becomes a call to loco_copyprivate with a constant array
; of the bytes it reads from each source variable (ABI.md, "copyprivate").
; Calls sharing a copy function share the array.
%struct.P = type { i32, double }

; -O0: the lists go through stack slots; an int, a 24-byte struct copied
; with memcpy, a long double (10 bytes), a _Bool read as i8.
define internal void @copy_o0(ptr noundef %0, ptr noundef %1) {
  %3 = alloca ptr, align 8
  %4 = alloca ptr, align 8
  store ptr %0, ptr %3, align 8
  store ptr %1, ptr %4, align 8
  %5 = load ptr, ptr %3, align 8
  %6 = load ptr, ptr %4, align 8
  %7 = getelementptr inbounds [4 x ptr], ptr %5, i64 0, i64 0
  %8 = load ptr, ptr %7, align 8
  %9 = getelementptr inbounds [4 x ptr], ptr %6, i64 0, i64 0
  %10 = load ptr, ptr %9, align 8
  %11 = load i32, ptr %10, align 4
  store i32 %11, ptr %8, align 4
  %12 = getelementptr inbounds [4 x ptr], ptr %5, i64 0, i64 1
  %13 = load ptr, ptr %12, align 8
  %14 = getelementptr inbounds [4 x ptr], ptr %6, i64 0, i64 1
  %15 = load ptr, ptr %14, align 8
  call void @llvm.memcpy.p0.p0.i64(ptr align 8 %13, ptr align 8 %15, i64 24, i1 false)
  %16 = getelementptr inbounds [4 x ptr], ptr %5, i64 0, i64 2
  %17 = load ptr, ptr %16, align 8
  %18 = getelementptr inbounds [4 x ptr], ptr %6, i64 0, i64 2
  %19 = load ptr, ptr %18, align 8
  %20 = load x86_fp80, ptr %19, align 16
  store x86_fp80 %20, ptr %17, align 16
  %21 = getelementptr inbounds [4 x ptr], ptr %5, i64 0, i64 3
  %22 = load ptr, ptr %21, align 8
  %23 = getelementptr inbounds [4 x ptr], ptr %6, i64 0, i64 3
  %24 = load ptr, ptr %23, align 8
  %25 = load i8, ptr %24, align 1
  %26 = trunc i8 %25 to i1
  %27 = zext i1 %26 to i8
  store i8 %27, ptr %22, align 1
  ret void
}

; -O2: an array of three 16-byte structs copied element by element (the
; last read ends at 48), and a pointer copied as a value.
define internal void @copy_o2(ptr nocapture readonly %0, ptr nocapture readonly %1) {
  %3 = load ptr, ptr %0, align 8
  %4 = load ptr, ptr %1, align 8
  tail call void @llvm.memcpy.p0.p0.i64(ptr align 8 %3, ptr align 8 %4, i64 16, i1 false)
  %5 = getelementptr %struct.P, ptr %3, i64 2
  %6 = getelementptr %struct.P, ptr %4, i64 2
  tail call void @llvm.memmove.p0.p0.i64(ptr align 8 %5, ptr align 8 %6, i64 16, i1 false)
  %7 = getelementptr inbounds %struct.P, ptr %4, i64 1, i32 1
  %8 = load double, ptr %7, align 8
  %9 = getelementptr inbounds %struct.P, ptr %3, i64 1, i32 1
  store double %8, ptr %9, align 8
  %10 = getelementptr inbounds [2 x ptr], ptr %0, i64 0, i64 1
  %11 = load ptr, ptr %10, align 8
  %12 = getelementptr inbounds [2 x ptr], ptr %1, i64 0, i64 1
  %13 = load ptr, ptr %12, align 8
  %14 = load ptr, ptr %13, align 8
  store ptr %14, ptr %11, align 8
  ret void
}

define void @f(ptr %loc, i32 %gtid, ptr %list4, ptr %list2, i32 %didit) !dbg !4 {
  call void @__kmpc_copyprivate(ptr %loc, i32 %gtid, i64 32, ptr %list4, ptr @copy_o0, i32 %didit), !dbg !8
  call void @__kmpc_copyprivate(ptr %loc, i32 %gtid, i64 16, ptr %list2, ptr @copy_o2, i32 %didit), !dbg !9
  call void @__kmpc_copyprivate(ptr %loc, i32 %gtid, i64 32, ptr %list4, ptr @copy_o0, i32 %didit), !dbg !9
  ret void
}

declare void @__kmpc_copyprivate(ptr, i32, i64, ptr, ptr, i32)
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)

!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "cp.c", directory: "/tmp")
!3 = !{i32 2, !"Debug Info Version", i32 3}
!4 = distinct !DISubprogram(name: "f", scope: !1, file: !1, line: 1, type: !5, scopeLine: 1, spFlags: DISPFlagDefinition, unit: !0)
!5 = !DISubroutineType(types: !6)
!6 = !{null}
!8 = !DILocation(line: 6, column: 9, scope: !4)
!9 = !DILocation(line: 9, column: 9, scope: !4)

; CHECK: @__loco.copyprivate.sizes = private unnamed_addr constant [4 x i64] [i64 4, i64 24, i64 10, i64 1], align 8
; CHECK: @__loco.copyprivate.sizes.1 = private unnamed_addr constant [2 x i64] [i64 48, i64 8], align 8
; CHECK-LABEL: define void @f
; CHECK-NEXT: call void @loco_copyprivate(ptr %loc, i32 %gtid, i64 32, ptr %list4, ptr @copy_o0, i32 %didit, ptr @__loco.copyprivate.sizes), !dbg ![[L6:[0-9]+]]
; CHECK-NEXT: call void @loco_copyprivate(ptr %loc, i32 %gtid, i64 16, ptr %list2, ptr @copy_o2, i32 %didit, ptr @__loco.copyprivate.sizes.1), !dbg ![[L9:[0-9]+]]
; CHECK-NEXT: call void @loco_copyprivate(ptr %loc, i32 %gtid, i64 32, ptr %list4, ptr @copy_o0, i32 %didit, ptr @__loco.copyprivate.sizes), !dbg ![[L9]]
; CHECK-NEXT: ret void
; CHECK: declare void @loco_copyprivate(ptr, i32, i64, ptr, ptr, i32, ptr)
; CHECK: ![[L6]] = !DILocation(line: 6,
; CHECK: ![[L9]] = !DILocation(line: 9,
