//! A small safe surface over the LLVM-C calls the pass needs and inkwell
//! does not wrap (moving instructions between blocks, rebuilding phis,
//! debug locations, store sizes). Every handle here comes from the module
//! the pass is running on and stays valid for the whole run; that is the
//! invariant each `unsafe` block below relies on.

use std::ffi::{CStr, CString};

use llvm_sys::core::*;
use llvm_sys::debuginfo::LLVMInstructionGetDebugLoc;
use llvm_sys::prelude::*;
use llvm_sys::target::{LLVMGetModuleDataLayout, LLVMStoreSizeOfType, LLVMTargetDataRef};
use llvm_sys::{
    LLVMAtomicOrdering, LLVMAtomicRMWBinOp, LLVMIntPredicate, LLVMOpcode, LLVMTypeKind,
};

/// An instruction, value, block or type handle of the module being rewritten.
pub type Value = LLVMValueRef;
pub type Block = LLVMBasicBlockRef;
pub type Type = LLVMTypeRef;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("names have no NUL bytes")
}

/// The module being rewritten, with a builder and its data layout.
pub struct Ir {
    pub module: LLVMModuleRef,
    ctx: LLVMContextRef,
    builder: LLVMBuilderRef,
    layout: LLVMTargetDataRef,
}

impl Drop for Ir {
    fn drop(&mut self) {
        // SAFETY: the builder was created in `new` and is not used after this.
        unsafe { LLVMDisposeBuilder(self.builder) };
    }
}

impl Ir {
    /// # Safety
    /// `module` must be a live module that outlives the returned value.
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

    // ---------------------------------------------------------------- module

    pub fn named_metadata_exists(&self, name: &str) -> bool {
        let n = cstr(name);
        // SAFETY: module handle invariant (see module docs).
        unsafe { !LLVMGetNamedMetadata(self.module, n.as_ptr(), name.len()).is_null() }
    }

    /// Adds an empty operand to named metadata `name` (creating it): a marker.
    pub fn add_named_metadata(&self, name: &str) {
        let n = cstr(name);
        // SAFETY: module handle invariant.
        unsafe {
            let node = LLVMMDNodeInContext2(self.ctx, std::ptr::null_mut(), 0);
            let v = LLVMMetadataAsValue(self.ctx, node);
            LLVMAddNamedMetadataOperand(self.module, n.as_ptr(), v);
        }
    }

    pub fn function(&self, name: &str) -> Option<Value> {
        let n = cstr(name);
        // SAFETY: module handle invariant.
        let f = unsafe { LLVMGetNamedFunction(self.module, n.as_ptr()) };
        (!f.is_null()).then_some(f)
    }

    pub fn functions(&self) -> Vec<Value> {
        let mut out = Vec::new();
        // SAFETY: module handle invariant; iteration only reads the list.
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
        // SAFETY: module handle invariant.
        unsafe { LLVMIsDeclaration(global) != 0 }
    }

    pub fn name(&self, v: Value) -> String {
        let mut len = 0;
        // SAFETY: module handle invariant; LLVM returns a pointer/length pair
        // into the value's name, valid until it is renamed.
        unsafe {
            let p = LLVMGetValueName2(v, &mut len);
            if p.is_null() {
                return String::new();
            }
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len)).into_owned()
        }
    }

    pub fn rename(&self, v: Value, name: &str) {
        // SAFETY: module handle invariant; LLVM copies the name.
        unsafe { LLVMSetValueName2(v, name.as_ptr().cast(), name.len()) };
    }

    pub fn replace_all_uses(&self, old: Value, new: Value) {
        // SAFETY: module handle invariant; both values have the same type.
        unsafe { LLVMReplaceAllUsesWith(old, new) };
    }

    pub fn delete_function(&self, f: Value) {
        // SAFETY: module handle invariant; the function has no uses left.
        unsafe { LLVMDeleteFunction(f) };
    }

    /// Declares (or finds) `name` with the given signature.
    pub fn declare(&self, name: &str, ret: Type, params: &[Type]) -> (Value, Type) {
        let mut params = params.to_vec();
        // SAFETY: module handle invariant; `params` outlives the call.
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

    // ---------------------------------------------------------------- types

    pub fn i8(&self) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMInt8TypeInContext(self.ctx) }
    }
    pub fn i32(&self) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMInt32TypeInContext(self.ctx) }
    }
    pub fn i64(&self) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMInt64TypeInContext(self.ctx) }
    }
    pub fn int(&self, bits: u32) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMIntTypeInContext(self.ctx, bits) }
    }
    pub fn ptr(&self) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMPointerTypeInContext(self.ctx, 0) }
    }
    pub fn void(&self) -> Type {
        // SAFETY: context handle invariant.
        unsafe { LLVMVoidTypeInContext(self.ctx) }
    }

    pub fn type_of(&self, v: Value) -> Type {
        // SAFETY: module handle invariant.
        unsafe { LLVMTypeOf(v) }
    }

    pub fn kind(&self, t: Type) -> LLVMTypeKind {
        // SAFETY: module handle invariant.
        unsafe { LLVMGetTypeKind(t) }
    }

    /// Bytes a store of `t` writes.
    pub fn store_size(&self, t: Type) -> u64 {
        // SAFETY: module handle invariant; the layout belongs to the module.
        unsafe { LLVMStoreSizeOfType(self.layout, t) }
    }

    pub fn const_i32(&self, v: i64) -> Value {
        // SAFETY: context handle invariant.
        unsafe { LLVMConstInt(self.i32(), v as u64, 1) }
    }
    pub fn const_i64(&self, v: u64) -> Value {
        // SAFETY: context handle invariant.
        unsafe { LLVMConstInt(self.i64(), v, 0) }
    }
    pub fn all_ones(&self, t: Type) -> Value {
        // SAFETY: context handle invariant; t is an integer type.
        unsafe { LLVMConstAllOnes(t) }
    }
    pub fn const_i8(&self, v: u8) -> Value {
        // SAFETY: context handle invariant.
        unsafe { LLVMConstInt(self.i8(), v as u64, 0) }
    }

    // ---------------------------------------------------------------- walking

    pub fn blocks(&self, f: Value) -> Vec<Block> {
        let mut out = Vec::new();
        // SAFETY: module handle invariant.
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
        // SAFETY: module handle invariant.
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
        // SAFETY: module handle invariant; i is an instruction.
        unsafe { LLVMGetInstructionOpcode(i) }
    }

    pub fn operand(&self, i: Value, k: u32) -> Value {
        // SAFETY: module handle invariant; callers pass valid operand indices.
        unsafe { LLVMGetOperand(i, k) }
    }

    pub fn ordering(&self, i: Value) -> LLVMAtomicOrdering {
        // SAFETY: module handle invariant; i is a load, store, RMW or fence.
        unsafe { LLVMGetOrdering(i) }
    }

    pub fn rmw_op(&self, i: Value) -> LLVMAtomicRMWBinOp {
        // SAFETY: module handle invariant; i is an atomicrmw.
        unsafe { LLVMGetAtomicRMWBinOp(i) }
    }

    pub fn cmpxchg_ordering(&self, i: Value) -> LLVMAtomicOrdering {
        // SAFETY: module handle invariant; i is a cmpxchg.
        unsafe { LLVMGetCmpXchgSuccessOrdering(i) }
    }

    /// The called function of a call, if it is a direct call of a function.
    pub fn callee(&self, call: Value) -> Option<Value> {
        // SAFETY: module handle invariant; call is a call instruction.
        unsafe {
            let c = LLVMGetCalledValue(call);
            (!c.is_null() && !LLVMIsAFunction(c).is_null()).then_some(c)
        }
    }

    /// The inline assembly a call runs, printed, if it calls inline assembly.
    pub fn inline_asm_text(&self, call: Value) -> Option<String> {
        // SAFETY: module handle invariant; the printed string is freed below.
        unsafe {
            let c = LLVMGetCalledValue(call);
            if c.is_null() || LLVMIsAInlineAsm(c).is_null() {
                return None;
            }
            let s = LLVMPrintValueToString(c);
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            LLVMDisposeMessage(s);
            Some(text)
        }
    }

    pub fn call_args(&self, call: Value) -> Vec<Value> {
        // SAFETY: module handle invariant; a call's arguments are its first
        // num_arg_operands operands.
        unsafe {
            let n = LLVMGetNumArgOperands(call);
            (0..n).map(|k| LLVMGetOperand(call, k)).collect()
        }
    }

    pub fn is_alloca(&self, v: Value) -> bool {
        // SAFETY: module handle invariant.
        unsafe { !LLVMIsAAllocaInst(v).is_null() }
    }

    pub fn is_global_variable(&self, v: Value) -> bool {
        // SAFETY: module handle invariant.
        unsafe { !LLVMIsAGlobalVariable(v).is_null() }
    }

    /// Strips GEPs and casts (instructions and constant expressions).
    pub fn underlying_object(&self, mut v: Value) -> Value {
        for _ in 0..32 {
            // SAFETY: module handle invariant; only reads operand 0 of GEPs and casts.
            let next = unsafe {
                let gep = !LLVMIsAGetElementPtrInst(v).is_null();
                let cast =
                    !LLVMIsABitCastInst(v).is_null() || !LLVMIsAAddrSpaceCastInst(v).is_null();
                let cexpr = !LLVMIsAConstantExpr(v).is_null()
                    && matches!(
                        LLVMGetConstOpcode(v),
                        LLVMOpcode::LLVMGetElementPtr
                            | LLVMOpcode::LLVMBitCast
                            | LLVMOpcode::LLVMAddrSpaceCast
                    );
                if gep || cast || cexpr {
                    LLVMGetOperand(v, 0)
                } else {
                    return v;
                }
            };
            v = next;
        }
        v
    }

    /// `file:line` of an instruction's debug location, if it has one.
    pub fn location(&self, i: Value) -> Option<String> {
        // SAFETY: module handle invariant; the filename pointer/length pair
        // points into the debug info, valid for the module's life.
        unsafe {
            let mut len = 0u32;
            let f = LLVMGetDebugLocFilename(i, &mut len);
            if f.is_null() || len == 0 {
                return None;
            }
            let file = String::from_utf8_lossy(std::slice::from_raw_parts(f.cast(), len as usize))
                .into_owned();
            Some(format!("{file}:{}", LLVMGetDebugLocLine(i)))
        }
    }

    pub fn function_has_indirect_branches(&self, f: Value) -> bool {
        self.blocks(f)
            .into_iter()
            .flat_map(|b| self.instructions(b))
            .any(|i| self.opcode(i) == LLVMOpcode::LLVMIndirectBr)
    }

    // ---------------------------------------------------------------- building

    /// New instructions get `i`'s debug location (calls in functions with
    /// debug info must have one, or code generation fails).
    pub fn take_location_of(&self, i: Value) {
        // SAFETY: module handle invariant; a null location clears it.
        unsafe { LLVMSetCurrentDebugLocation2(self.builder, LLVMInstructionGetDebugLoc(i)) };
    }

    pub fn position_before(&self, i: Value) {
        // SAFETY: module handle invariant.
        unsafe { LLVMPositionBuilderBefore(self.builder, i) };
    }

    pub fn position_at_end(&self, b: Block) {
        // SAFETY: module handle invariant.
        unsafe { LLVMPositionBuilderAtEnd(self.builder, b) };
    }

    /// Positions the builder right after `i` (before the next instruction).
    pub fn position_after(&self, i: Value) {
        // SAFETY: module handle invariant.
        unsafe {
            let next = LLVMGetNextInstruction(i);
            if next.is_null() {
                LLVMPositionBuilderAtEnd(self.builder, LLVMGetInstructionParent(i));
            } else {
                LLVMPositionBuilderBefore(self.builder, next);
            }
        }
    }

    pub fn call(&self, f: (Value, Type), args: &[Value]) -> Value {
        let mut args = args.to_vec();
        // SAFETY: module handle invariant; the argument types match the
        // declaration (the callers build them so).
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

    pub fn ptr_to_int(&self, v: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildPtrToInt(self.builder, v, self.i64(), c"loco.addr".as_ptr()) }
    }

    pub fn int_to_ptr(&self, v: Value, t: Type) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildIntToPtr(self.builder, v, t, c"".as_ptr()) }
    }

    pub fn sub(&self, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildSub(self.builder, a, b, c"loco.off".as_ptr()) }
    }

    pub fn add(&self, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildAdd(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn and(&self, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildAnd(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn shl(&self, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildShl(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn lshr(&self, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildLShr(self.builder, a, b, c"".as_ptr()) }
    }

    pub fn icmp(&self, pred: LLVMIntPredicate, a: Value, b: Value) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildICmp(self.builder, pred, a, b, c"".as_ptr()) }
    }

    pub fn trunc(&self, v: Value, t: Type) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildTrunc(self.builder, v, t, c"".as_ptr()) }
    }

    /// Widens (zero-extends) or narrows an integer to integer type `t`.
    pub fn zext_or_trunc(&self, v: Value, t: Type) -> Value {
        // SAFETY: module handle invariant; both are integer types.
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
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildBitCast(self.builder, v, t, c"".as_ptr()) }
    }

    pub fn atomic_or_release(&self, ptr: Value, mask: Value) -> Value {
        // SAFETY: module handle invariant.
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

    /// `store atomic i8 v, ptr monotonic` (a plain byte store the compiler keeps).
    pub fn store_byte_monotonic(&self, v: Value, ptr: Value) {
        // SAFETY: module handle invariant.
        unsafe {
            let s = LLVMBuildStore(self.builder, v, ptr);
            LLVMSetOrdering(s, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
            LLVMSetAlignment(s, 1);
        }
    }

    pub fn cond_br(&self, cond: Value, then: Block, otherwise: Block) {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildCondBr(self.builder, cond, then, otherwise) };
    }

    pub fn br(&self, to: Block) {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildBr(self.builder, to) };
    }

    pub fn insert_value(&self, agg: Value, v: Value, index: u32) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMBuildInsertValue(self.builder, agg, v, index, c"".as_ptr()) }
    }

    pub fn undef(&self, t: Type) -> Value {
        // SAFETY: module handle invariant.
        unsafe { LLVMGetUndef(t) }
    }

    pub fn erase(&self, i: Value) {
        // SAFETY: module handle invariant; callers replaced every use first.
        unsafe { LLVMInstructionEraseFromParent(i) };
    }

    /// Splits the block after `i`: everything following `i` moves to a new
    /// block (returned), the phis of the moved terminator's successors now
    /// name the new block, and `i`'s block is left without a terminator.
    pub fn split_after(&self, i: Value) -> Block {
        // SAFETY: module handle invariant. Instructions are detached and
        // re-inserted one at a time, in order, so every use stays dominated.
        unsafe {
            let b = LLVMGetInstructionParent(i);
            let f = LLVMGetBasicBlockParent(b);
            let next = LLVMGetNextBasicBlock(b);
            let cont = if next.is_null() {
                LLVMAppendBasicBlockInContext(self.ctx, f, c"loco.cont".as_ptr())
            } else {
                LLVMInsertBasicBlockInContext(self.ctx, next, c"loco.cont".as_ptr())
            };
            let mut tail = Vec::new();
            let mut t = LLVMGetNextInstruction(i);
            while !t.is_null() {
                tail.push(t);
                t = LLVMGetNextInstruction(t);
            }
            LLVMPositionBuilderAtEnd(self.builder, cont);
            for t in tail {
                // Keep the name: inserting through a builder would clear it.
                let name = CString::new(self.name(t)).unwrap_or_default();
                LLVMInstructionRemoveFromParent(t);
                LLVMInsertIntoBuilderWithName(self.builder, t, name.as_ptr());
            }
            let term = LLVMGetBasicBlockTerminator(cont);
            if !term.is_null() {
                let mut seen = Vec::new();
                for k in 0..LLVMGetNumSuccessors(term) {
                    let s = LLVMGetSuccessor(term, k);
                    if !seen.contains(&s) {
                        seen.push(s);
                        self.retarget_phis(s, b, cont);
                    }
                }
            }
            cont
        }
    }

    /// In block `s`, makes every phi that names `from` as a predecessor name
    /// `to` instead. The C API cannot change an incoming block, so each such
    /// phi is rebuilt.
    fn retarget_phis(&self, s: Block, from: Block, to: Block) {
        // SAFETY: module handle invariant; the rebuilt phi has the same type
        // and position, and replaces every use of the old one before it goes.
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
                if !incoming.iter().any(|&(_, blk)| blk == from) {
                    continue;
                }
                LLVMPositionBuilderBefore(self.builder, phi);
                let name = self.name(phi);
                let new = LLVMBuildPhi(self.builder, LLVMTypeOf(phi), c"".as_ptr());
                let (mut vals, mut blks): (Vec<Value>, Vec<Block>) = incoming
                    .into_iter()
                    .map(|(v, blk)| (v, if blk == from { to } else { blk }))
                    .unzip();
                LLVMAddIncoming(new, vals.as_mut_ptr(), blks.as_mut_ptr(), n);
                LLVMReplaceAllUsesWith(phi, new);
                LLVMInstructionEraseFromParent(phi);
                self.rename(new, &name);
            }
        }
    }

    pub fn append_block_after(&self, after: Block, name: &CStr) -> Block {
        // SAFETY: module handle invariant.
        unsafe {
            let next = LLVMGetNextBasicBlock(after);
            if next.is_null() {
                LLVMAppendBasicBlockInContext(
                    self.ctx,
                    LLVMGetBasicBlockParent(after),
                    name.as_ptr(),
                )
            } else {
                LLVMInsertBasicBlockInContext(self.ctx, next, name.as_ptr())
            }
        }
    }

    pub fn block_of(&self, i: Value) -> Block {
        // SAFETY: module handle invariant.
        unsafe { LLVMGetInstructionParent(i) }
    }
}
