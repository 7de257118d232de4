; Instrumentation carries the store's source location; the instructions
; moved into the continuation block keep their own.
define i32 @f(ptr %p, i32 %v) !dbg !5 {
  store i32 %v, ptr %p, !dbg !8
  %w = add i32 %v, 1, !dbg !9
  ret i32 %w, !dbg !10
}
!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3, !4}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "d.c", directory: "/tmp")
!3 = !{i32 7, !"Dwarf Version", i32 5}
!4 = !{i32 2, !"Debug Info Version", i32 3}
!5 = distinct !DISubprogram(name: "f", scope: !1, file: !1, line: 3, type: !6, scopeLine: 3, spFlags: DISPFlagDefinition, unit: !0)
!6 = !DISubroutineType(types: !7)
!7 = !{null}
!8 = !DILocation(line: 4, column: 3, scope: !5)
!9 = !DILocation(line: 5, column: 3, scope: !5)
!10 = !DILocation(line: 6, column: 3, scope: !5)
; CHECK-LABEL: define i32 @f
; CHECK: store i32 %v, ptr %p, align 4, !dbg [[STORE:![0-9]+]]
; CHECK-NEXT: load i64, ptr @__loco_mark_span, align 8, !dbg [[STORE]]
; CHECK: ptrtoint ptr %p to i64, !dbg [[STORE]]
; CHECK: call void @loco_mark_dirty(ptr %p, i64 4), !dbg [[STORE]]
; CHECK: loco.cont:
; CHECK-NEXT: %w = add i32 %v, 1, !dbg [[ADD:![0-9]+]]
; CHECK-NEXT: ret i32 %w, !dbg [[RET:![0-9]+]]
; CHECK-DAG: [[STORE]] = !DILocation(line: 4,
; CHECK-DAG: [[ADD]] = !DILocation(line: 5,
; CHECK-DAG: [[RET]] = !DILocation(line: 6,
