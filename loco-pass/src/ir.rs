//! A small safe surface over the LLVM-C calls the pass needs (inkwell does
//! not wrap moving instructions between blocks, rebuilding phis, debug
//! locations, store sizes, or atomic orderings as numbers). All raw FFI of
//! the crate lives here.
//!
//! Every handle used here (module, context, builder, value, block, type)
//! comes from the module the pass is running on, which LLVM's pass manager
//! keeps alive for the whole run; `Ir` does not outlive that run. That is the
//! invariant each `unsafe` block below relies on ("handle invariant").

use std::ffi::{CStr, CString};

use llvm_sys::comdat::{LLVMGetComdat, LLVMSetComdat};
use llvm_sys::core::*;
use llvm_sys::debuginfo::{
    LLVMDIFileGetFilename, LLVMDIScopeGetFile, LLVMDISubprogramGetLine, LLVMGetSubprogram,
    LLVMInstructionGetDebugLoc,
};
use llvm_sys::prelude::*;
use llvm_sys::target::{
    LLVMABISizeOfType, LLVMGetModuleDataLayout, LLVMOffsetOfElement, LLVMStoreSizeOfType,
    LLVMTargetDataRef,
};
use llvm_sys::{
    LLVMAtomicOrdering, LLVMAtomicRMWBinOp, LLVMIntPredicate, LLVMLinkage, LLVMOpcode, LLVMTypeKind,
};

/// An instruction, constant, function or other value of the module.
pub type Value = LLVMValueRef;
pub type Block = LLVMBasicBlockRef;
pub type Type = LLVMTypeRef;

fn cstr(s: &str) -> CString {
    // Names come from LLVM or from this crate; neither has NUL bytes.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// The module being rewritten, with a builder and the module's data layout.
pub struct Ir {
    module: LLVMModuleRef,
    ctx: LLVMContextRef,
    builder: LLVMBuilderRef,
    layout: LLVMTargetDataRef,
}

impl Drop for Ir {
    fn drop(&mut self) {
        // SAFETY: the builder was created in `new`, is owned by `self` and
        // is not used after this.
        unsafe { LLVMDisposeBuilder(self.builder) };
    }
}

impl Ir {
    /// # Safety
    /// `module` must be a live module that outlives the returned value, and
    /// nothing else may modify it while the returned value is in use.
    pub unsafe fn new(module: LLVMModuleRef) -> Ir {
        // SAFETY: the caller guarantees the module is live.
        unsafe {
            let ctx = LLVMGetModuleContext(module);
            Ir {
                module,
                ctx,
                builder: LLVMCreateBuilderInContext(ctx),
                layout: LLVMGetModuleDataLayout(module),
            }
        }
    }

    // ------------------------------------------------------------ module

    pub fn has_named_metadata(&self, name: &str) -> bool {
        let n = cstr(name);
        // SAFETY: handle invariant; `n` outlives the call.
        unsafe { !LLVMGetNamedMetadata(self.module, n.as_ptr(), name.len()).is_null() }
    }

    /// Adds an empty node to the named metadata `name`, creating it: a marker.
    pub fn add_named_metadata(&self, name: &str) {
        let n = cstr(name);
        // SAFETY: handle invariant; an empty MDNode needs no operand array.
        unsafe {
            let node = LLVMMDNodeInContext2(self.ctx, std::ptr::null_mut(), 0);
            let v = LLVMMetadataAsValue(self.ctx, node);
            LLVMAddNamedMetadataOperand(self.module, n.as_ptr(), v);
        }
    }

    /// The source file name the module was compiled from.
    pub fn source_file_name(&self) -> String {
        let mut len = 0;
        // SAFETY: handle invariant; LLVM returns a pointer/length pair into
        // the module's own string.
        unsafe {
            let p = LLVMGetSourceFileName(self.module, &mut len);
            if p.is_null() {
                return String::new();
            }
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len)).into_owned()
        }
    }

    pub fn function(&self, name: &str) -> Option<Value> {
        let n = cstr(name);
        // SAFETY: handle invariant; `n` outlives the call.
        let f = unsafe { LLVMGetNamedFunction(self.module, n.as_ptr()) };
        (!f.is_null()).then_some(f)
    }

    pub fn functions(&self) -> Vec<Value> {
        let mut out = Vec::new();
        // SAFETY: handle invariant; the walk only reads the function list.
        unsafe {
            let mut f = LLVMGetFirstFunction(self.module);
            while !f.is_null() {
                out.push(f);
                f = LLVMGetNextFunction(f);
            }
        }
        out
    }

    pub fn is_declaration(&self, global: Value) -> bool {
        // SAFETY: handle invariant; `global` is a global value.
        unsafe { LLVMIsDeclaration(global) != 0 }
    }

    pub fn name(&self, v: Value) -> String {
        let mut len = 0;
        // SAFETY: handle invariant; LLVM returns a pointer/length pair into
        // the value's name, copied here before anything can rename it.
        unsafe {
            let p = LLVMGetValueName2(v, &mut len);
            if p.is_null() {
                return String::new();
            }
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len)).into_owned()
        }
    }

    pub fn rename(&self, v: Value, name: &str) {
        // SAFETY: handle invariant; LLVM copies the name.
        unsafe { LLVMSetValueName2(v, name.as_ptr().cast(), name.len()) };
    }

    pub fn replace_all_uses(&self, old: Value, new: Value) {
        // SAFETY: handle invariant; callers pass values of the same type.
        unsafe { LLVMReplaceAllUsesWith(old, new) };
    }

    pub fn delete_function(&self, f: Value) {
        // SAFETY: handle invariant; callers replaced every use first.
        unsafe { LLVMDeleteFunction(f) };
    }

    /// Finds or declares the function `name` with the given signature, and
    /// returns it with the type its calls use.
    pub fn declare(&self, name: &str, ret: Type, params: &[Type]) -> (Value, Type) {
        let mut params = params.to_vec();
        // SAFETY: handle invariant; `params` outlives the call.
        unsafe {
            let ty = LLVMFunctionType(ret, params.as_mut_ptr(), params.len() as u32, 0);
            let f = match self.function(name) {
                Some(f) => f,
                None => {
                    let n = cstr(name);
                    LLVMAddFunction(self.module, n.as_ptr(), ty)
                }
            };
            (f, ty)
        }
    }

    /// The module's identifier (clang: the source file as given).
    pub fn module_identifier(&self) -> String {
        let mut len = 0;
        // SAFETY: handle invariant; LLVM returns a pointer/length pair into
        // the module's own string, copied at once.
        unsafe {
            let p = LLVMGetModuleIdentifier(self.module, &mut len);
            if p.is_null() {
                return String::new();
            }
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len)).into_owned()
        }
    }

    /// The global variables of the module, definitions and declarations.
    pub fn globals(&self) -> Vec<Value> {
        let mut out = Vec::new();
        // SAFETY: handle invariant; the walk only reads the global list.
        unsafe {
            let mut g = LLVMGetFirstGlobal(self.module);
            while !g.is_null() {
                out.push(g);
                g = LLVMGetNextGlobal(g);
            }
        }
        out
    }

    pub fn is_thread_local(&self, global: Value) -> bool {
        // SAFETY: handle invariant; `global` is a global variable.
        unsafe { LLVMIsThreadLocal(global) != 0 }
    }

    pub fn is_global_constant(&self, global: Value) -> bool {
        // SAFETY: handle invariant; `global` is a global variable.
        unsafe { LLVMIsGlobalConstant(global) != 0 }
    }

    pub fn linkage(&self, global: Value) -> LLVMLinkage {
        // SAFETY: handle invariant; `global` is a global value.
        unsafe { LLVMGetLinkage(global) }
    }

    pub fn set_linkage(&self, global: Value, linkage: LLVMLinkage) {
        // SAFETY: handle invariant; callers pass a linkage valid for the
        // global (a definition keeps a definition's linkage).
        unsafe { LLVMSetLinkage(global, linkage) }
    }

    /// The explicit section of a global, if it has one.
    pub fn section(&self, global: Value) -> Option<String> {
        // SAFETY: handle invariant; LLVM returns a NUL-terminated string
        // owned by the global (or null), copied at once.
        unsafe {
            let p = LLVMGetSection(global);
            if p.is_null() {
                return None;
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            (!s.is_empty()).then_some(s)
        }
    }

    pub fn set_section(&self, global: Value, section: &str) {
        let s = cstr(section);
        // SAFETY: handle invariant; LLVM copies the string.
        unsafe { LLVMSetSection(global, s.as_ptr()) }
    }

    /// The type of the value a global holds.
    pub fn value_type(&self, global: Value) -> Type {
        // SAFETY: handle invariant; `global` is a global value.
        unsafe { LLVMGlobalGetValueType(global) }
    }

    /// Bytes a value of type `t` takes in memory (its alloc size). `t` must
    /// be sized.
    pub fn alloc_size(&self, t: Type) -> u64 {
        // SAFETY: handle invariant; the layout belongs to the module.
        unsafe { LLVMABISizeOfType(self.layout, t) }
    }

    /// The initializer of a global variable definition.
    pub fn initializer(&self, global: Value) -> Option<Value> {
        // SAFETY: handle invariant; `global` is a global variable.
        let init = unsafe { LLVMGetInitializer(global) };
        (!init.is_null()).then_some(init)
    }

    /// Whether a constant is the null value of its type (zero, null,
    /// zeroinitializer).
    pub fn is_null(&self, constant: Value) -> bool {
        // SAFETY: handle invariant; `constant` is a constant.
        unsafe { LLVMIsNull(constant) != 0 }
    }

    /// Replaces a global variable by an equal one that is not `dso_local`
    /// and has default visibility, named `name`, with `linkage` (which must
    /// not be a local one: LLVM makes locals `dso_local`); returns the new
    /// one. Every
    /// use (instructions, constants, metadata) moves to it, and the old one
    /// is deleted.
    ///
    /// LLVM 16's C API can neither clear `dso_local` nor read it; a new
    /// global starts without it. Carried over: type, initializer,
    /// constness, thread-local mode, externally_initialized, alignment, section, unnamed_addr, comdat, DLL storage class and the
    /// metadata attachments (one per kind: the C API cannot add a second
    /// `!dbg`). Not carried over, for want of a C API: global attributes
    /// (`#pragma clang section`), partition and sanitizer metadata.
    pub fn recreate_global(&self, old: Value, name: &str, linkage: LLVMLinkage) -> Value {
        // SAFETY: handle invariant. The new global has the old one's type
        // and address space, so every use of the old one can take it; the
        // old one has no use left when it is deleted. The metadata entries
        // are read before being disposed of.
        unsafe {
            let ty = LLVMGlobalGetValueType(old);
            let space = LLVMGetPointerAddressSpace(LLVMTypeOf(old));
            // Free the name first, so the new global gets it exactly.
            LLVMSetValueName2(old, c"".as_ptr(), 0);
            let n = cstr(name);
            let new = LLVMAddGlobalInAddressSpace(self.module, ty, n.as_ptr(), space);
            let init = LLVMGetInitializer(old);
            if !init.is_null() {
                LLVMSetInitializer(new, init);
            }
            LLVMSetGlobalConstant(new, LLVMIsGlobalConstant(old));
            LLVMSetThreadLocalMode(new, LLVMGetThreadLocalMode(old));
            LLVMSetExternallyInitialized(new, LLVMIsExternallyInitialized(old));
            LLVMSetLinkage(new, linkage);
            LLVMSetAlignment(new, LLVMGetAlignment(old));
            let section = LLVMGetSection(old);
            if !section.is_null() && *section != 0 {
                LLVMSetSection(new, section);
            }
            LLVMSetUnnamedAddress(new, LLVMGetUnnamedAddress(old));
            let comdat = LLVMGetComdat(old);
            if !comdat.is_null() {
                LLVMSetComdat(new, comdat);
            }
            LLVMSetDLLStorageClass(new, LLVMGetDLLStorageClass(old));
            let mut count = 0;
            let entries = LLVMGlobalCopyAllMetadata(old, &mut count);
            if !entries.is_null() {
                for k in 0..count as u32 {
                    let kind = LLVMValueMetadataEntriesGetKind(entries, k);
                    let md = LLVMValueMetadataEntriesGetMetadata(entries, k);
                    LLVMGlobalSetMetadata(new, kind, md);
                }
                LLVMDisposeValueMetadataEntries(entries);
            }
            LLVMReplaceAllUsesWith(old, new);
            LLVMDeleteGlobal(old);
            new
        }
    }

    /// Adds a function `name` of type `ty` (with that exact name: callers
    /// make sure it is free).
    pub fn add_function(&self, name: &str, ty: Type) -> Value {
        let n = cstr(name);
        // SAFETY: handle invariant; `n` outlives the call.
        unsafe { LLVMAddFunction(self.module, n.as_ptr(), ty) }
    }

    /// The function type of a function.
    pub fn function_type(&self, f: Value) -> Type {
        // SAFETY: handle invariant; `f` is a function.
        unsafe { LLVMGlobalGetValueType(f) }
    }

    pub fn return_type(&self, fn_type: Type) -> Type {
        // SAFETY: handle invariant; `fn_type` is a function type.
        unsafe { LLVMGetReturnType(fn_type) }
    }

    pub fn param_types(&self, fn_type: Type) -> Vec<Type> {
        // SAFETY: handle invariant; the vector has room for every parameter.
        unsafe {
            let n = LLVMCountParamTypes(fn_type) as usize;
            let mut out = vec![std::ptr::null_mut(); n];
            LLVMGetParamTypes(fn_type, out.as_mut_ptr());
            out
        }
    }

    pub fn is_var_arg(&self, fn_type: Type) -> bool {
        // SAFETY: handle invariant; `fn_type` is a function type.
        unsafe { LLVMIsFunctionVarArg(fn_type) != 0 }
    }

    pub fn params(&self, f: Value) -> Vec<Value> {
        // SAFETY: handle invariant; `f` is a function.
        unsafe {
            (0..LLVMCountParams(f))
                .map(|k| LLVMGetParam(f, k))
                .collect()
        }
    }

    pub fn function_type_of(&self, ret: Type, params: &[Type]) -> Type {
        let mut params = params.to_vec();
        // SAFETY: handle invariant; `params` outlives the call.
        unsafe { LLVMFunctionType(ret, params.as_mut_ptr(), params.len() as u32, 0) }
    }

    /// Gives `to` the string attributes (target-cpu, frame-pointer, ...)
    /// and the `uwtable` attribute `from` has, so that code generated for
    /// both matches.
    pub fn copy_codegen_attributes(&self, from: Value, to: Value) {
        // SAFETY: handle invariant; the attribute array has room for the
        // count LLVM reports, and attributes belong to the same context.
        unsafe {
            let index = llvm_sys::LLVMAttributeFunctionIndex;
            let n = LLVMGetAttributeCountAtIndex(from, index) as usize;
            let mut attributes = vec![std::ptr::null_mut(); n];
            LLVMGetAttributesAtIndex(from, index, attributes.as_mut_ptr());
            let uwtable = LLVMGetEnumAttributeKindForName(c"uwtable".as_ptr(), 7);
            for a in attributes {
                let wanted = LLVMIsStringAttribute(a) != 0
                    || (LLVMIsEnumAttribute(a) != 0 && LLVMGetEnumAttributeKind(a) == uwtable);
                if wanted {
                    LLVMAddAttributeAtIndex(to, index, a);
                }
            }
        }
    }

    /// A new block at the end of function `f`.
    pub fn append_block(&self, f: Value, name: &CStr) -> Block {
        // SAFETY: handle invariant; `name` outlives the call.
        unsafe { LLVMAppendBasicBlockInContext(self.ctx, f, name.as_ptr()) }
    }

    // ------------------------------------------------------------ types

    pub fn i8(&self) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMInt8TypeInContext(self.ctx) }
    }

    pub fn i32(&self) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMInt32TypeInContext(self.ctx) }
    }

    pub fn i64(&self) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMInt64TypeInContext(self.ctx) }
    }

    /// The all-ones constant of integer type `t`.
    pub fn all_ones(&self, t: Type) -> Value {
        // SAFETY: handle invariant; t is an integer type.
        unsafe { LLVMConstAllOnes(t) }
    }

    pub fn int(&self, bits: u32) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMIntTypeInContext(self.ctx, bits) }
    }

    /// `ptr` in address space 0, where the shared region lives.
    pub fn ptr(&self) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMPointerTypeInContext(self.ctx, 0) }
    }

    pub fn void(&self) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMVoidTypeInContext(self.ctx) }
    }

    /// The width of an integer type.
    pub fn int_width(&self, t: Type) -> u32 {
        // SAFETY: handle invariant; `t` is an integer type.
        unsafe { LLVMGetIntTypeWidth(t) }
    }

    pub fn type_of(&self, v: Value) -> Type {
        // SAFETY: handle invariant.
        unsafe { LLVMTypeOf(v) }
    }

    pub fn kind(&self, t: Type) -> LLVMTypeKind {
        // SAFETY: handle invariant.
        unsafe { LLVMGetTypeKind(t) }
    }

    /// The address space of a pointer-typed value.
    pub fn address_space(&self, pointer: Value) -> u32 {
        // SAFETY: handle invariant; callers pass pointer-typed values.
        unsafe { LLVMGetPointerAddressSpace(LLVMTypeOf(pointer)) }
    }

    /// Bytes a store of `t` writes (its store size in the module's layout).
    /// `t` must be sized and not a scalable vector.
    pub fn store_size(&self, t: Type) -> u64 {
        // SAFETY: handle invariant; the layout belongs to the module.
        unsafe { LLVMStoreSizeOfType(self.layout, t) }
    }

    /// The type an `alloca` allocates (one element of it: see
    /// `alloca_count`).
    pub fn allocated_type(&self, alloca: Value) -> Type {
        // SAFETY: handle invariant; callers pass an alloca (`is_alloca`).
        unsafe { LLVMGetAllocatedType(alloca) }
    }

    /// How many elements of its type an `alloca` allocates, when that is a
    /// constant (`alloca i32, i64 %n`, a VLA, has none).
    pub fn alloca_count(&self, alloca: Value) -> Option<u64> {
        // SAFETY: handle invariant; operand 0 of an alloca is its count.
        let count = unsafe { LLVMGetOperand(alloca, 0) };
        self.const_int_value(count)
            .and_then(|n| u64::try_from(n).ok())
    }

    /// Whether values of type `t` have a size (no opaque struct, no
    /// scalable vector inside).
    pub fn is_sized(&self, t: Type) -> bool {
        // SAFETY: handle invariant.
        unsafe {
            LLVMTypeIsSized(t) != 0
                && LLVMGetTypeKind(t) != LLVMTypeKind::LLVMScalableVectorTypeKind
        }
    }

    /// Whether a value of type `t` holds a pointer anywhere inside it
    /// (through struct fields, array and vector elements); types other than
    /// numbers, pointers and those aggregates count as holding one.
    pub fn holds_pointer(&self, t: Type) -> bool {
        // SAFETY: handle invariant; element types are read only from
        // aggregates of the kind that has them, at indices they have.
        unsafe {
            match LLVMGetTypeKind(t) {
                LLVMTypeKind::LLVMIntegerTypeKind
                | LLVMTypeKind::LLVMHalfTypeKind
                | LLVMTypeKind::LLVMBFloatTypeKind
                | LLVMTypeKind::LLVMFloatTypeKind
                | LLVMTypeKind::LLVMDoubleTypeKind
                | LLVMTypeKind::LLVMX86_FP80TypeKind
                | LLVMTypeKind::LLVMFP128TypeKind
                | LLVMTypeKind::LLVMPPC_FP128TypeKind => false,
                LLVMTypeKind::LLVMArrayTypeKind | LLVMTypeKind::LLVMVectorTypeKind => {
                    self.holds_pointer(LLVMGetElementType(t))
                }
                LLVMTypeKind::LLVMStructTypeKind => (0..LLVMCountStructElementTypes(t))
                    .any(|k| self.holds_pointer(LLVMStructGetTypeAtIndex(t, k))),
                _ => true,
            }
        }
    }

    pub fn const_i32(&self, v: u32) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMConstInt(self.i32(), v.into(), 0) }
    }

    pub fn const_i64(&self, v: u64) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMConstInt(self.i64(), v, 0) }
    }

    pub fn const_i8(&self, v: u8) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMConstInt(self.i8(), v.into(), 0) }
    }

    pub fn poison(&self, t: Type) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMGetPoison(t) }
    }

    // ------------------------------------------------------------ walking

    pub fn blocks(&self, f: Value) -> Vec<Block> {
        let mut out = Vec::new();
        // SAFETY: handle invariant; `f` is a function.
        unsafe {
            let mut b = LLVMGetFirstBasicBlock(f);
            while !b.is_null() {
                out.push(b);
                b = LLVMGetNextBasicBlock(b);
            }
        }
        out
    }

    pub fn instructions(&self, b: Block) -> Vec<Value> {
        let mut out = Vec::new();
        // SAFETY: handle invariant.
        unsafe {
            let mut i = LLVMGetFirstInstruction(b);
            while !i.is_null() {
                out.push(i);
                i = LLVMGetNextInstruction(i);
            }
        }
        out
    }

    pub fn opcode(&self, i: Value) -> LLVMOpcode {
        // SAFETY: handle invariant; `i` is an instruction.
        unsafe { LLVMGetInstructionOpcode(i) }
    }

    pub fn operand(&self, i: Value, k: u32) -> Value {
        // SAFETY: handle invariant; callers pass valid operand indices.
        unsafe { LLVMGetOperand(i, k) }
    }

    /// Whether a load or store is volatile.
    pub fn is_volatile(&self, i: Value) -> bool {
        // SAFETY: handle invariant; `i` is a load or store.
        unsafe { LLVMGetVolatile(i) != 0 }
    }

    /// The ordering of an atomic load, store or atomicrmw.
    pub fn ordering(&self, i: Value) -> LLVMAtomicOrdering {
        // SAFETY: handle invariant; `i` is a load, store or atomicrmw.
        unsafe { LLVMGetOrdering(i) }
    }

    pub fn cmpxchg_success_ordering(&self, i: Value) -> LLVMAtomicOrdering {
        // SAFETY: handle invariant; `i` is a cmpxchg.
        unsafe { LLVMGetCmpXchgSuccessOrdering(i) }
    }

    /// The operation of an atomicrmw, as LLVM writes it (`add`, `fadd`,
    /// `uinc_wrap`, ...). Read from the printed instruction because
    /// LLVMGetAtomicRMWBinOp is undefined behaviour for the operations
    /// LLVM 16's C API does not list (uinc_wrap, udec_wrap).
    pub fn rmw_operation(&self, i: Value) -> String {
        let text = self.instruction_text(i);
        let after = text.split_once("atomicrmw ").map_or("", |(_, rest)| rest);
        let mut words = after.split_whitespace().filter(|w| *w != "volatile");
        words.next().unwrap_or_default().to_string()
    }

    /// Instruction `i` as LLVM prints it.
    pub fn instruction_text(&self, i: Value) -> String {
        // SAFETY: handle invariant. The clone is detached, so printing it
        // does not number the whole function; it is deleted (dropping its
        // operand uses) before returning, and the printed string is freed.
        unsafe {
            let clone = LLVMInstructionClone(i);
            let s = LLVMPrintValueToString(clone);
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            LLVMDisposeMessage(s);
            LLVMDeleteInstruction(clone);
            text
        }
    }

    /// The function a call or invoke calls directly, if any.
    pub fn direct_callee(&self, call: Value) -> Option<Value> {
        // SAFETY: handle invariant; `call` is a call, invoke or callbr.
        unsafe {
            let c = LLVMGetCalledValue(call);
            (!c.is_null() && !LLVMIsAFunction(c).is_null()).then_some(c)
        }
    }

    /// The constraint string of the inline assembly a call runs (such as
    /// `=*m,r,~{memory}`), if it calls inline assembly.
    pub fn inline_asm_constraints(&self, call: Value) -> Option<String> {
        // SAFETY: handle invariant; the printed string is freed below.
        let text = unsafe {
            let c = LLVMGetCalledValue(call);
            if c.is_null() || LLVMIsAInlineAsm(c).is_null() {
                return None;
            }
            let s = LLVMPrintValueToString(c);
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            LLVMDisposeMessage(s);
            text
        };
        // Printed as `ptr asm [flags] "<asm>", "<constraints>"`; quotes
        // inside either string are escaped as \22, so the last `", "`
        // separates them.
        let (_, constraints) = text.rsplit_once("\", \"")?;
        Some(constraints.trim_end().trim_end_matches('"').to_string())
    }

    pub fn call_args(&self, call: Value) -> Vec<Value> {
        // SAFETY: handle invariant; a call's arguments are its first
        // LLVMGetNumArgOperands operands.
        unsafe {
            let n = LLVMGetNumArgOperands(call);
            (0..n).map(|k| LLVMGetOperand(call, k)).collect()
        }
    }

    /// The opcode of `v` if it is an instruction.
    pub fn opcode_if_instruction(&self, v: Value) -> Option<LLVMOpcode> {
        self.is_instruction(v).then(|| self.opcode(v))
    }

    pub fn is_instruction(&self, v: Value) -> bool {
        // SAFETY: handle invariant.
        unsafe { !LLVMIsAInstruction(v).is_null() }
    }

    pub fn is_alloca(&self, v: Value) -> bool {
        // SAFETY: handle invariant.
        unsafe { !LLVMIsAAllocaInst(v).is_null() }
    }

    pub fn is_global_variable(&self, v: Value) -> bool {
        // SAFETY: handle invariant.
        unsafe { !LLVMIsAGlobalVariable(v).is_null() }
    }

    /// The values a pointer may come from, one step up: the incoming values
    /// of a phi, the two arms of a select, the variable of a
    /// `llvm.threadlocal.address` call. None for anything else.
    pub fn pointer_sources(&self, v: Value) -> Option<Vec<Value>> {
        // SAFETY: handle invariant; only operands of the recognised kinds
        // are read, at indices those kinds have.
        unsafe {
            if !LLVMIsAPHINode(v).is_null() {
                return Some(
                    (0..LLVMCountIncoming(v))
                        .map(|k| LLVMGetIncomingValue(v, k))
                        .collect(),
                );
            }
            if !LLVMIsASelectInst(v).is_null() {
                return Some(vec![LLVMGetOperand(v, 1), LLVMGetOperand(v, 2)]);
            }
            if !LLVMIsACallInst(v).is_null() {
                let callee = self.direct_callee(v)?;
                if self.name(callee).starts_with("llvm.threadlocal.address") {
                    return Some(vec![LLVMGetOperand(v, 0)]);
                }
            }
            None
        }
    }

    /// Strips GEPs, bitcasts and addrspacecasts (instructions and constant
    /// expressions) off a pointer, like LLVM's getUnderlyingObject.
    pub fn strip_pointer_offsets(&self, mut v: Value) -> Value {
        for _ in 0..64 {
            // SAFETY: handle invariant; only operand 0 of GEPs and casts is read.
            let base = unsafe {
                let inst = !LLVMIsAGetElementPtrInst(v).is_null()
                    || !LLVMIsABitCastInst(v).is_null()
                    || !LLVMIsAAddrSpaceCastInst(v).is_null();
                let cexpr = !LLVMIsAConstantExpr(v).is_null()
                    && matches!(
                        LLVMGetConstOpcode(v),
                        LLVMOpcode::LLVMGetElementPtr
                            | LLVMOpcode::LLVMBitCast
                            | LLVMOpcode::LLVMAddrSpaceCast
                    );
                if !(inst || cexpr) {
                    return v;
                }
                LLVMGetOperand(v, 0)
            };
            v = base;
        }
        v
    }

    /// `file:line` of an instruction's debug location, if it has one.
    pub fn source_location(&self, i: Value) -> Option<String> {
        // SAFETY: handle invariant; the filename pointer/length pair points
        // into the debug info and is copied at once.
        unsafe {
            let mut len = 0u32;
            let f = LLVMGetDebugLocFilename(i, &mut len);
            if f.is_null() || len == 0 {
                return None;
            }
            let bytes = std::slice::from_raw_parts(f.cast(), len as usize);
            let file = String::from_utf8_lossy(bytes).into_owned();
            Some(format!("{file}:{}", LLVMGetDebugLocLine(i)))
        }
    }

    /// `file:line` of a function's definition, from its debug info.
    pub fn function_location(&self, f: Value) -> Option<String> {
        // SAFETY: handle invariant; the subprogram and file are the
        // function's own debug info, and the name is copied at once.
        unsafe {
            let sp = LLVMGetSubprogram(f);
            if sp.is_null() {
                return None;
            }
            let file = LLVMDIScopeGetFile(sp);
            if file.is_null() {
                return None;
            }
            let mut len = 0u32;
            let name = LLVMDIFileGetFilename(file, &mut len);
            if name.is_null() || len == 0 {
                return None;
            }
            let bytes = std::slice::from_raw_parts(name.cast(), len as usize);
            let name = String::from_utf8_lossy(bytes).into_owned();
            Some(format!("{name}:{}", LLVMDISubprogramGetLine(sp)))
        }
    }

    pub fn function_of(&self, i: Value) -> Value {
        // SAFETY: handle invariant; `i` is an instruction inside a function.
        unsafe { LLVMGetBasicBlockParent(LLVMGetInstructionParent(i)) }
    }

    pub fn block_of(&self, i: Value) -> Block {
        // SAFETY: handle invariant.
        unsafe { LLVMGetInstructionParent(i) }
    }

    // ------------------------------------------------------------ uses and constants

    /// Every user of `v` (instructions and constants), once each.
    pub fn users(&self, v: Value) -> Vec<Value> {
        let mut out = Vec::new();
        // SAFETY: handle invariant; the walk only reads `v`'s use list.
        unsafe {
            let mut u = LLVMGetFirstUse(v);
            while !u.is_null() {
                let user = LLVMGetUser(u);
                if !out.contains(&user) {
                    out.push(user);
                }
                u = LLVMGetNextUse(u);
            }
        }
        out
    }

    /// Whether `v` is a function (a definition or a declaration).
    pub fn is_function(&self, v: Value) -> bool {
        // SAFETY: handle invariant.
        unsafe { !LLVMIsAFunction(v).is_null() }
    }

    /// The value of an integer constant (sign-extended), if `v` is one of
    /// at most 64 bits.
    pub fn const_int_value(&self, v: Value) -> Option<i64> {
        // SAFETY: handle invariant; only integer constants are read, and
        // LLVMConstIntGetSExtValue needs them to fit in 64 bits.
        unsafe {
            if LLVMIsAConstantInt(v).is_null() || LLVMGetIntTypeWidth(LLVMTypeOf(v)) > 64 {
                return None;
            }
            Some(LLVMConstIntGetSExtValue(v))
        }
    }

    /// The bytes a `getelementptr` adds to its base pointer, when every
    /// index is a constant (what LLVM's accumulateConstantOffset computes);
    /// None for other indices, vectors of pointers or an overflow.
    pub fn constant_gep_offset(&self, gep: Value) -> Option<i64> {
        // SAFETY: handle invariant; `gep` is a GEP, so its operands are the
        // base pointer and then the indices, walked over the source element
        // type as LLVM does (struct indices are in range: the IR is valid).
        unsafe {
            if LLVMGetTypeKind(LLVMTypeOf(gep)) != LLVMTypeKind::LLVMPointerTypeKind {
                return None;
            }
            let mut ty = LLVMGetGEPSourceElementType(gep);
            let mut offset: i64 = 0;
            for k in 1..LLVMGetNumOperands(gep) as u32 {
                let index = self.const_int_value(LLVMGetOperand(gep, k))?;
                let step = if k == 1 {
                    index.checked_mul(self.alloc_size(ty).try_into().ok()?)?
                } else {
                    match LLVMGetTypeKind(ty) {
                        LLVMTypeKind::LLVMStructTypeKind => {
                            let field = u32::try_from(index).ok()?;
                            let at = LLVMOffsetOfElement(self.layout, ty, field);
                            ty = LLVMStructGetTypeAtIndex(ty, field);
                            at.try_into().ok()?
                        }
                        LLVMTypeKind::LLVMArrayTypeKind | LLVMTypeKind::LLVMVectorTypeKind => {
                            ty = LLVMGetElementType(ty);
                            index.checked_mul(self.alloc_size(ty).try_into().ok()?)?
                        }
                        _ => return None,
                    }
                };
                offset = offset.checked_add(step)?;
            }
            Some(offset)
        }
    }

    /// A new private `unnamed_addr constant [N x i64]` global holding
    /// `values`, named `name` (or `name` with a number added).
    pub fn constant_i64_array(&self, name: &str, values: &[u64]) -> Value {
        let n = cstr(name);
        // SAFETY: handle invariant; the element array outlives the call and
        // every element is an i64 constant, as the array type says.
        unsafe {
            let mut elements: Vec<Value> = values
                .iter()
                .map(|&v| LLVMConstInt(self.i64(), v, 0))
                .collect();
            let init = LLVMConstArray(self.i64(), elements.as_mut_ptr(), elements.len() as u32);
            let g = LLVMAddGlobal(self.module, LLVMTypeOf(init), n.as_ptr());
            LLVMSetInitializer(g, init);
            LLVMSetGlobalConstant(g, 1);
            LLVMSetLinkage(g, LLVMLinkage::LLVMPrivateLinkage);
            LLVMSetUnnamedAddress(g, llvm_sys::LLVMUnnamedAddr::LLVMGlobalUnnamedAddr);
            LLVMSetAlignment(g, 8);
            g
        }
    }

    // ------------------------------------------------------------ building

    /// New instructions get no debug location (for code in functions
    /// without debug info).
    pub fn clear_location(&self) {
        // SAFETY: handle invariant; a null location clears it.
        unsafe { LLVMSetCurrentDebugLocation2(self.builder, std::ptr::null_mut()) };
    }

    pub fn ret(&self, v: Option<Value>) {
        // SAFETY: handle invariant; callers return a value of the function's
        // return type, or nothing from a void function.
        unsafe {
            match v {
                Some(v) => LLVMBuildRet(self.builder, v),
                None => LLVMBuildRetVoid(self.builder),
            };
        }
    }

    /// New instructions get `i`'s debug location (calls in functions with
    /// debug info must have one, or the verifier rejects the module).
    pub fn take_location_of(&self, i: Value) {
        // SAFETY: handle invariant; a null location clears it.
        unsafe { LLVMSetCurrentDebugLocation2(self.builder, LLVMInstructionGetDebugLoc(i)) };
    }

    pub fn position_before(&self, i: Value) {
        // SAFETY: handle invariant.
        unsafe { LLVMPositionBuilderBefore(self.builder, i) };
    }

    pub fn position_at_end(&self, b: Block) {
        // SAFETY: handle invariant.
        unsafe { LLVMPositionBuilderAtEnd(self.builder, b) };
    }

    /// Positions the builder right after `i`, which must not be a terminator.
    pub fn position_after(&self, i: Value) {
        // SAFETY: handle invariant; a non-terminator always has a successor
        // instruction in a well-formed block.
        unsafe { LLVMPositionBuilderBefore(self.builder, LLVMGetNextInstruction(i)) };
    }

    pub fn call(&self, f: (Value, Type), args: &[Value]) -> Value {
        let mut args = args.to_vec();
        // SAFETY: handle invariant; `f.1` is `f.0`'s function type and the
        // callers build arguments of its parameter types.
        unsafe {
            LLVMBuildCall2(
                self.builder,
                f.1,
                f.0,
                args.as_mut_ptr(),
                args.len() as u32,
                c"".as_ptr(),
            )
        }
    }

    /// A new `alloca` of `t` at the start of `f`'s entry block.
    pub fn alloca_at_entry(&self, f: Value, t: Type) -> Value {
        // SAFETY: handle invariant; a defined function has an entry block,
        // and the builder is repositioned by whoever builds next.
        unsafe {
            let entry = LLVMGetEntryBasicBlock(f);
            let first = LLVMGetFirstInstruction(entry);
            if first.is_null() {
                LLVMPositionBuilderAtEnd(self.builder, entry);
            } else {
                LLVMPositionBuilderBefore(self.builder, first);
            }
            LLVMBuildAlloca(self.builder, t, c"loco.copyin".as_ptr())
        }
    }

    /// `llvm.memcpy(dst, src, len)` at the builder's position.
    pub fn memcpy(&self, dst: Value, src: Value, len: u64, align: u32) {
        // SAFETY: handle invariant; both pointers are valid for `len` bytes
        // in the code the callers rewrite.
        unsafe {
            LLVMBuildMemCpy(
                self.builder,
                dst,
                align,
                src,
                align,
                LLVMConstInt(self.i64(), len, 0),
            );
        }
    }

    /// Replaces operand `k` of instruction `i` with `v`.
    pub fn set_operand(&self, i: Value, k: u32, v: Value) {
        // SAFETY: handle invariant; callers pass an existing operand index
        // and a value of the operand's type.
        unsafe { LLVMSetOperand(i, k, v) }
    }

    pub fn ptr_to_int(&self, v: Value, name: &CStr) -> Value {
        // SAFETY: handle invariant; `name` outlives the call.
        unsafe { LLVMBuildPtrToInt(self.builder, v, self.i64(), name.as_ptr()) }
    }

    pub fn int_to_ptr(&self, v: Value, t: Type) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildIntToPtr(self.builder, v, t, c"".as_ptr()) }
    }

    pub fn sub(&self, a: Value, b: Value, name: &CStr) -> Value {
        // SAFETY: handle invariant; `name` outlives the call.
        unsafe { LLVMBuildSub(self.builder, a, b, name.as_ptr()) }
    }

    pub fn add(&self, a: Value, b: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildAdd(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn and(&self, a: Value, b: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildAnd(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn shl(&self, a: Value, b: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildShl(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn lshr(&self, a: Value, b: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildLShr(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn icmp(&self, pred: LLVMIntPredicate, a: Value, b: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildICmp(self.builder, pred, a, b, c"".as_ptr()) }
    }

    /// Zero-extends or truncates an integer to the integer type `t`.
    pub fn zext_or_trunc(&self, v: Value, t: Type) -> Value {
        // SAFETY: handle invariant; both types are integer types.
        unsafe {
            let (from, to) = (LLVMGetIntTypeWidth(LLVMTypeOf(v)), LLVMGetIntTypeWidth(t));
            if from < to {
                LLVMBuildZExt(self.builder, v, t, c"".as_ptr())
            } else if from > to {
                LLVMBuildTrunc(self.builder, v, t, c"".as_ptr())
            } else {
                v
            }
        }
    }

    pub fn bitcast(&self, v: Value, t: Type) -> Value {
        // SAFETY: handle invariant; callers cast between same-sized types.
        unsafe { LLVMBuildBitCast(self.builder, v, t, c"".as_ptr()) }
    }

    /// `atomicrmw or ptr, mask release`.
    pub fn atomic_or_release(&self, ptr: Value, mask: Value) -> Value {
        // SAFETY: handle invariant.
        unsafe {
            LLVMBuildAtomicRMW(
                self.builder,
                LLVMAtomicRMWBinOp::LLVMAtomicRMWBinOpOr,
                ptr,
                mask,
                LLVMAtomicOrdering::LLVMAtomicOrderingRelease,
                0,
            )
        }
    }

    /// `store atomic i8 v, ptr monotonic, align 1`.
    /// `store atomic i8 v, ptr release`: after the bits, for every reader
    /// that sees it (a plain byte store on x86).
    pub fn store_byte_release(&self, v: Value, ptr: Value) {
        // SAFETY: handle invariant; atomic stores need an explicit alignment.
        unsafe {
            let s = LLVMBuildStore(self.builder, v, ptr);
            LLVMSetOrdering(s, LLVMAtomicOrdering::LLVMAtomicOrderingRelease);
            LLVMSetAlignment(s, 1);
        }
    }

    /// Whether the module's code reaches data by 64-bit absolute addresses
    /// (no PIC or PIE level, medium or large code model: `-fno-pic
    /// -mcmodel=medium`), so that a `dso_local` global may lie anywhere.
    pub fn absolute_data(&self) -> bool {
        // SAFETY: handle invariant; the call only reads the module's flags.
        unsafe { loco_absolute_data(self.module) != 0 }
    }

    /// Marks a global `dso_local`.
    pub fn set_dso_local(&self, global: Value) {
        // SAFETY: handle invariant; `global` is a global value of the module.
        unsafe { loco_set_dso_local(global) }
    }

    /// The global variable `name` of type `i64`, declared (external, not
    /// `dso_local`) if the module does not have it yet.
    pub fn i64_global(&self, name: &str) -> Value {
        let n = cstr(name);
        // SAFETY: handle invariant; `n` outlives the calls. A new global
        // starts as an external declaration, not dso_local.
        unsafe {
            let g = LLVMGetNamedGlobal(self.module, n.as_ptr());
            if !g.is_null() {
                return g;
            }
            LLVMAddGlobal(self.module, self.i64(), n.as_ptr())
        }
    }

    /// `load i64, ptr p, align 8, !invariant.load !{}`: a value that does
    /// not change while the code runs, so code generation may load it once.
    pub fn load_invariant_i64(&self, p: Value) -> Value {
        // SAFETY: handle invariant; the metadata kind name outlives the
        // call, and an empty MDNode needs no operand array.
        unsafe {
            let l = LLVMBuildLoad2(self.builder, self.i64(), p, c"loco.span".as_ptr());
            LLVMSetAlignment(l, 8);
            let kind = c"invariant.load";
            let id = LLVMGetMDKindIDInContext(self.ctx, kind.as_ptr(), kind.count_bytes() as u32);
            let empty = LLVMMDNodeInContext2(self.ctx, std::ptr::null_mut(), 0);
            LLVMSetMetadata(l, id, LLVMMetadataAsValue(self.ctx, empty));
            l
        }
    }

    /// `load atomic i8, ptr monotonic, align 1` (a plain byte load on x86).
    pub fn load_byte_monotonic(&self, ptr: Value) -> Value {
        // SAFETY: handle invariant; atomic loads need an explicit alignment.
        unsafe {
            let l = LLVMBuildLoad2(self.builder, self.i8(), ptr, c"".as_ptr());
            LLVMSetOrdering(l, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
            LLVMSetAlignment(l, 1);
            l
        }
    }

    pub fn cond_br(&self, cond: Value, then: Block, otherwise: Block) {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildCondBr(self.builder, cond, then, otherwise) };
    }

    pub fn br(&self, to: Block) {
        // SAFETY: handle invariant.
        unsafe { LLVMBuildBr(self.builder, to) };
    }

    pub fn insert_value(&self, agg: Value, v: Value, index: u32) -> Value {
        // SAFETY: handle invariant; callers pass valid field indices.
        unsafe { LLVMBuildInsertValue(self.builder, agg, v, index, c"".as_ptr()) }
    }

    pub fn erase(&self, i: Value) {
        // SAFETY: handle invariant; callers replaced every use first.
        unsafe { LLVMInstructionEraseFromParent(i) };
    }

    /// A new empty block placed right after `after` in its function.
    pub fn block_after(&self, after: Block, name: &CStr) -> Block {
        // SAFETY: handle invariant; `name` outlives the calls.
        unsafe {
            let next = LLVMGetNextBasicBlock(after);
            if next.is_null() {
                let f = LLVMGetBasicBlockParent(after);
                LLVMAppendBasicBlockInContext(self.ctx, f, name.as_ptr())
            } else {
                LLVMInsertBasicBlockInContext(self.ctx, next, name.as_ptr())
            }
        }
    }

    /// Splits the block of `i` after `i`: every instruction after it moves,
    /// in order, to a new block right after (returned); the phis in the
    /// moved terminator's successors now name the new block; `i`'s block is
    /// left without a terminator for the caller to finish.
    ///
    /// Moving the tail (rather than moving the head and redirecting the old
    /// block's uses) keeps the old block the target of every branch and
    /// `blockaddress` that named it; only successor phis need fixing, a
    /// self-loop's included (the block is then its own successor).
    pub fn split_after(&self, i: Value) -> Block {
        // SAFETY: handle invariant. Each instruction is detached and then
        // re-inserted at the end of the new block, in order, so every use
        // is still dominated by its definition once the caller branches
        // from the old block to the new one.
        unsafe {
            let head = LLVMGetInstructionParent(i);
            let cont = self.block_after(head, c"loco.cont");
            let mut tail = Vec::new();
            let mut t = LLVMGetNextInstruction(i);
            while !t.is_null() {
                tail.push(t);
                t = LLVMGetNextInstruction(t);
            }
            // The builder would stamp its current debug location on what it
            // inserts: clear it so moved instructions keep their own.
            let location = LLVMGetCurrentDebugLocation2(self.builder);
            LLVMSetCurrentDebugLocation2(self.builder, std::ptr::null_mut());
            LLVMPositionBuilderAtEnd(self.builder, cont);
            for t in tail {
                // Re-inserting through the builder sets the name it is given.
                let name = cstr(&self.name(t));
                LLVMInstructionRemoveFromParent(t);
                LLVMInsertIntoBuilderWithName(self.builder, t, name.as_ptr());
            }
            let term = LLVMGetBasicBlockTerminator(cont);
            if !term.is_null() {
                let mut done = Vec::new();
                for k in 0..LLVMGetNumSuccessors(term) {
                    let s = LLVMGetSuccessor(term, k);
                    if !done.contains(&s) {
                        done.push(s);
                        self.retarget_phis(s, head, cont);
                    }
                }
            }
            LLVMSetCurrentDebugLocation2(self.builder, location);
            cont
        }
    }

    /// In block `s`, makes every phi that names `from` as a predecessor name
    /// `to` instead. The C API cannot change a phi's incoming block, so each
    /// such phi is rebuilt in place. The caller must have cleared the
    /// builder's debug location (phis carry none).
    fn retarget_phis(&self, s: Block, from: Block, to: Block) {
        // SAFETY: handle invariant; the rebuilt phi has the same type,
        // position and incoming values, and takes over every use of the old
        // one before the old one is erased.
        unsafe {
            let mut phis = Vec::new();
            let mut i = LLVMGetFirstInstruction(s);
            while !i.is_null() && !LLVMIsAPHINode(i).is_null() {
                phis.push(i);
                i = LLVMGetNextInstruction(i);
            }
            for phi in phis {
                let n = LLVMCountIncoming(phi);
                let incoming: Vec<(Value, Block)> = (0..n)
                    .map(|k| (LLVMGetIncomingValue(phi, k), LLVMGetIncomingBlock(phi, k)))
                    .collect();
                if !incoming.iter().any(|&(_, b)| b == from) {
                    continue;
                }
                let (mut values, mut blocks): (Vec<Value>, Vec<Block>) = incoming
                    .into_iter()
                    .map(|(v, b)| (v, if b == from { to } else { b }))
                    .unzip();
                LLVMPositionBuilderBefore(self.builder, phi);
                let name = self.name(phi);
                let new = LLVMBuildPhi(self.builder, LLVMTypeOf(phi), c"".as_ptr());
                LLVMAddIncoming(new, values.as_mut_ptr(), blocks.as_mut_ptr(), n);
                LLVMReplaceAllUsesWith(phi, new);
                LLVMInstructionEraseFromParent(phi);
                self.rename(new, &name);
            }
        }
    }

    /// Plans fewer marks for `stores` (plain stores of `f` that need marks),
    /// emitting the marks that go after loops (cpp/marks.cc): one decision
    /// per store, in order. `mark_dirty` is the declared `loco_mark_dirty`;
    /// `abi` is (region base, home shadow offset, the mark span global).
    pub fn plan_marks(
        &self,
        f: Value,
        stores: &[Value],
        mark_dirty: Value,
        abi: (u64, u64, Value),
    ) -> (Vec<MarkDecision>, MarkPlan) {
        let mut decisions = vec![MarkDecision::default(); stores.len()];
        let mut plan = MarkPlan::default();
        let abi = MarkAbi {
            region_base: abi.0,
            home_shadow_offset: abi.1,
            mark_span: abi.2,
        };
        // SAFETY: handle invariant: `f` is a defined function of the module,
        // each store an instruction of it, `mark_dirty` a function of the
        // module; the arrays hold `stores.len()` elements and outlive the
        // call, which writes exactly that many decisions. The builder is
        // not positioned in `f` across the call (it is repositioned before
        // every use).
        unsafe {
            loco_plan_marks(
                f,
                stores.as_ptr(),
                stores.len(),
                decisions.as_mut_ptr(),
                mark_dirty,
                &abi,
                &mut plan,
            )
        };
        (decisions, plan)
    }

    /// `getelementptr i8, ptr p, i64 offset`.
    pub fn byte_offset(&self, p: Value, offset: i64) -> Value {
        if offset == 0 {
            return p;
        }
        let mut index = [self.const_i64(offset as u64)];
        // SAFETY: handle invariant; one i64 index into i8.
        unsafe {
            LLVMBuildGEP2(
                self.builder,
                self.i8(),
                p,
                index.as_mut_ptr(),
                1,
                c"loco.range".as_ptr(),
            )
        }
    }

    /// The alignment of a load or store, in bytes.
    pub fn alignment(&self, i: Value) -> u64 {
        // SAFETY: handle invariant; `i` is a load or store.
        unsafe { LLVMGetAlignment(i).into() }
    }

    /// Places the builder where code runs right after an invoke returns
    /// normally: a new block on the invoke's normal edge (so the code runs
    /// only on that edge, whatever else reaches the normal destination).
    pub fn position_after_invoke(&self, invoke: Value) {
        // SAFETY: handle invariant; `invoke` is an invoke. The new block
        // branches to the old normal destination, whose phis are retargeted
        // from the invoke's block to the new block (the only edge moved).
        unsafe {
            let from = LLVMGetInstructionParent(invoke);
            let normal = LLVMGetNormalDest(invoke);
            let edge = self.block_after(from, c"loco.after");
            let location = LLVMGetCurrentDebugLocation2(self.builder);
            LLVMSetCurrentDebugLocation2(self.builder, std::ptr::null_mut());
            self.retarget_phis(normal, from, edge);
            LLVMSetCurrentDebugLocation2(self.builder, location);
            LLVMSetNormalDest(invoke, edge);
            LLVMPositionBuilderAtEnd(self.builder, edge);
            LLVMBuildBr(self.builder, normal);
            LLVMPositionBuilderBefore(self.builder, LLVMGetBasicBlockTerminator(edge));
        }
    }
}

/// What becomes of one store given to [`Ir::plan_marks`] (cpp/marks.cc).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkDecision {
    /// [`MarkDecision::KEEP`], [`MarkDecision::COVERED`] or [`MarkDecision::MERGED`].
    pub kind: i64,
    /// For MERGED: the marked range starts this many bytes from the store's address...
    pub offset: i64,
    /// ... and is this long.
    pub len: i64,
}

impl MarkDecision {
    /// Marked after itself.
    pub const KEEP: i64 = 0;
    /// Covered by a mark after its loop, or by a merged mark of its block.
    pub const COVERED: i64 = 1;
    /// Marked after itself for `len` bytes from its address + `offset`,
    /// covering the stores of its block merged into it.
    pub const MERGED: i64 = 2;
}

/// What [`Ir::plan_marks`] did to a function.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkPlan {
    /// Marks emitted after loops...
    pub loop_marks: u64,
    /// ... of which mark blocks at a stride...
    pub strided_marks: u64,
    /// ... covering these stores.
    pub lifted_stores: u64,
    /// Merged marks of adjacent stores of a block...
    pub merged_marks: u64,
    /// ... covering these stores (the marking ones included).
    pub merged_stores: u64,
}

/// The shared window and the home shadow, as cpp/marks.cc takes them.
#[repr(C)]
struct MarkAbi {
    region_base: u64,
    home_shadow_offset: u64,
    /// The `i64` global holding the span of the window to mark in.
    mark_span: LLVMValueRef,
}

extern "C" {
    /// cpp/marks.cc.
    fn loco_plan_marks(
        function: LLVMValueRef,
        stores: *const LLVMValueRef,
        count: usize,
        decisions: *mut MarkDecision,
        mark_dirty: LLVMValueRef,
        abi: *const MarkAbi,
        stats: *mut MarkPlan,
    );

    /// cpp/marks.cc.
    fn loco_absolute_data(module: LLVMModuleRef) -> std::ffi::c_int;
    /// cpp/marks.cc.
    fn loco_set_dso_local(global: LLVMValueRef);

    fn dlsym(
        handle: *mut std::ffi::c_void,
        symbol: *const std::ffi::c_char,
    ) -> *mut std::ffi::c_void;
}

/// Runs LLVM's interrupt handlers, as a signal would: every file the
/// compiler registered for removal on a signal (its temporary output files)
/// is removed. For a pass about to end the process. Found at run time, so
/// that the plugin still loads into a tool that lacks it.
pub fn remove_temporary_files() {
    // SAFETY: RTLD_DEFAULT (null on glibc) searches the process's global
    // symbols; the symbol, if found, is LLVM's
    // `void llvm::sys::RunInterruptHandlers()`, which takes no argument
    // and returns nothing, so calling it through an extern "C" fn() is the
    // same call on x86-64.
    unsafe {
        let f = dlsym(
            std::ptr::null_mut(),
            c"_ZN4llvm3sys20RunInterruptHandlersEv".as_ptr(),
        );
        if !f.is_null() {
            let f: extern "C" fn() = std::mem::transmute(f);
            f();
        }
    }
}
