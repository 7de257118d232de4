; int main(int argc, char **argv), with debug info: the new main has none
; (so its call needs no location) and the old keeps its own.
source_filename = "m.c"
define dso_local i32 @main(i32 noundef %argc, ptr noundef %argv) !dbg !4 {
  %r = call i32 @work(i32 %argc), !dbg !8
  ret i32 %r, !dbg !8
}
declare i32 @work(i32)
!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "m.c", directory: "/tmp")
!3 = !{i32 2, !"Debug Info Version", i32 3}
!4 = distinct !DISubprogram(name: "main", scope: !1, file: !1, line: 1, type: !5, scopeLine: 1, spFlags: DISPFlagDefinition, unit: !0)
!5 = !DISubroutineType(types: !6)
!6 = !{null}
!8 = !DILocation(line: 2, column: 3, scope: !4)
; CHECK-LABEL: define dso_local i32 @__loco_user_main(i32 noundef %argc, ptr noundef %argv) !dbg
; CHECK-LABEL: define i32 @main(i32 %0, ptr %1, ptr %2) {
; CHECK-NEXT: entry:
; CHECK-NEXT: %3 = call i32 @loco_main(ptr @__loco_user_main, i32 %0, ptr %1, ptr %2)
; CHECK-NOT: !dbg
; CHECK: ret i32 %3
