; C++ template static members (linkonce_odr, in a comdat) keep their
; comdat in the shared sections; debug info stays attached.
source_filename = "tmpl.cc"

$_ZN1SIiE1nE = comdat any
$_ZN1ZIlE1nE = comdat any

@_ZN1SIiE1nE = linkonce_odr dso_local global i32 7, comdat, align 4, !dbg !0
@_ZN1ZIlE1nE = linkonce_odr dso_local global i32 0, comdat, align 4

define i32 @use() {
  %n = load i32, ptr @_ZN1SIiE1nE
  ret i32 %n
}

!llvm.dbg.cu = !{!5}
!llvm.module.flags = !{!8}
!0 = !DIGlobalVariableExpression(var: !1, expr: !DIExpression())
!1 = distinct !DIGlobalVariable(name: "n", scope: !5, file: !6, line: 2, type: !7, isLocal: false, isDefinition: true)
!5 = distinct !DICompileUnit(language: DW_LANG_C_plus_plus_14, file: !6, producer: "clang", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug, globals: !9)
!6 = !DIFile(filename: "tmpl.cc", directory: "/tmp")
!7 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!8 = !{i32 2, !"Debug Info Version", i32 3}
!9 = !{!0}

; CHECK: @_ZN1SIiE1nE = linkonce_odr global i32 7, section "loco_data", comdat, align 4, !dbg ![[DBG:[0-9]+]]
; CHECK: @_ZN1ZIlE1nE = linkonce_odr global i32 0, section ".llvm.linkonce.b.loco_bss", comdat, align 4
; CHECK: load i32, ptr @_ZN1SIiE1nE
; CHECK: ![[DBG]] = !DIGlobalVariableExpression(
