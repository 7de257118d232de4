; STDERR: loco-pass: warning: asm.c:7: inline assembly may write memory
; STDERR: loco-pass: warning: asm.c:8: inline assembly may write memory
; Inline assembly that may write memory (a memory clobber, an indirect
; output) is reported at compile time with its source line; assembly that
; only reads registers is not (the Rust test counts the warnings).
define void @f(ptr %p) !dbg !5 {
  call void asm sideeffect "movl $$0, ($0)", "r,~{memory}"(ptr %p), !dbg !8
  call void asm "movl $$0, $0", "=*m"(ptr elementtype(i32) %p), !dbg !9
  %x = call i32 asm "movl $$1, $0", "=r"(), !dbg !10
  ret void, !dbg !10
}
!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3, !4}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "asm.c", directory: "/tmp")
!3 = !{i32 7, !"Dwarf Version", i32 5}
!4 = !{i32 2, !"Debug Info Version", i32 3}
!5 = distinct !DISubprogram(name: "f", scope: !1, file: !1, line: 3, type: !6, scopeLine: 3, spFlags: DISPFlagDefinition, unit: !0)
!6 = !DISubroutineType(types: !7)
!7 = !{null}
!8 = !DILocation(line: 7, column: 3, scope: !5)
!9 = !DILocation(line: 8, column: 3, scope: !5)
!10 = !DILocation(line: 9, column: 3, scope: !5)
; CHECK-LABEL: define void @f
; CHECK: call void asm sideeffect "movl $$0, ($0)", "r,~{memory}"(ptr %p)
