//! `single copyprivate` across nodes (ABI.md, "copyprivate").
//!
//! clang calls `__kmpc_copyprivate(loc, gtid, cpy_size, cpy_data, cpy_func,
//! didit)`: `cpy_data` lists pointers to the calling thread's private
//! copies, and `cpy_func(dst_list, src_list)` copies each variable. libomp
//! hands the other threads the executing thread's list, but those pointers
//! are into its stack, which other nodes cannot read. The runtime instead
//! copies the variables' bytes into shared memory and hands the other
//! threads a list of pointers into that copy, for which it needs each
//! variable's size: only `cpy_func` knows them. So each call whose copy
//! function merely copies bytes becomes a call to `loco_copyprivate` with a
//! constant array of the sizes, found here by reading what the copy function
//! reads through each source pointer. A copy function that does anything
//! else with a source (calls `operator=`, follows a pointer stored in the
//! variable) cannot be served from a byte copy: that call is refused.

use llvm_sys::{LLVMOpcode, LLVMTypeKind};

use crate::ir::{Ir, Value};

/// What clang calls.
pub const ENTRY: &str = "__kmpc_copyprivate";
/// What the pass calls instead: `ENTRY`'s arguments and `const i64 *sizes`.
pub const LOCO_ENTRY: &str = "loco_copyprivate";
/// The sizes arrays' name.
const SIZES: &str = "__loco.copyprivate.sizes";

const REFUSED: &str = "LOCO does not support OpenMP single copyprivate";

/// Copy functions already read (one may serve several calls): what reading
/// each found, and its sizes array once made.
#[derive(Default)]
pub struct Analyses(Vec<Analysis>);

struct Analysis {
    copy: Value,
    sizes: Result<Vec<u64>, String>,
    table: Option<Value>,
}

/// Replaces one call to `ENTRY` by a call to `LOCO_ENTRY` with the sizes of
/// its variables; the error (a whole sentence) if it cannot.
pub fn rewrite(ir: &Ir, call: Value, analyses: &mut Analyses) -> Result<(), String> {
    if ir.opcode(call) != LLVMOpcode::LLVMCall {
        return Err(format!("{REFUSED} reached through an invoke yet"));
    }
    let args = ir.call_args(call);
    let kinds: Vec<LLVMTypeKind> = args.iter().map(|&a| ir.kind(ir.type_of(a))).collect();
    let expected = [
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
    ];
    if kinds != expected || ir.int_width(ir.type_of(args[2])) != 64 {
        return Err(format!("{REFUSED} with this {ENTRY} signature"));
    }
    let copy = args[4];
    let count = match ir.const_int_value(args[2]) {
        Some(bytes) if bytes >= 0 && bytes % 8 == 0 => bytes as usize / 8,
        _ => {
            return Err(format!(
                "{REFUSED} with a list size not known at compile time"
            ))
        }
    };
    if !ir.is_function(copy) || ir.is_declaration(copy) {
        return Err(format!(
            "{REFUSED} with a copy function defined outside this module yet"
        ));
    }
    let known = analyses.0.iter().position(|a| a.copy == copy);
    let analysis = match known {
        Some(k) => &mut analyses.0[k],
        None => {
            analyses.0.push(Analysis {
                copy,
                sizes: source_sizes(ir, copy, count),
                table: None,
            });
            analyses.0.last_mut().expect("just pushed")
        }
    };
    let sizes = analysis.sizes.as_ref().map_err(Clone::clone)?;
    if sizes.len() != count {
        // The same copy function called with another list size.
        return Err(format!(
            "{REFUSED} with a list size its copy function does not expect"
        ));
    }
    let table = *analysis
        .table
        .get_or_insert_with(|| ir.constant_i64_array(SIZES, sizes));
    let (i32t, i64t, ptr) = (ir.i32(), ir.i64(), ir.ptr());
    let entry = ir.declare(
        LOCO_ENTRY,
        ir.void(),
        &[ptr, i32t, i64t, ptr, ptr, i32t, ptr],
    );
    ir.take_location_of(call);
    ir.position_before(call);
    let mut new_args = args;
    new_args.push(table);
    ir.call(entry, &new_args);
    ir.erase(call);
    Ok(())
}

/// What a value inside the copy function is, as far as the sources go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracked {
    /// The list of source pointers (`src_list` + offset).
    List,
    /// The `k`th source variable (its pointer + offset).
    Variable(usize),
}

/// The bytes the copy function `copy` reads from each of its `count`
/// source variables (0 for one it never reads), or why they cannot be known.
fn source_sizes(ir: &Ir, copy: Value, count: usize) -> Result<Vec<u64>, String> {
    let params = ir.params(copy);
    if params.len() != 2 {
        return Err(format!("{REFUSED} with this copy function"));
    }
    let mut walk = Walk {
        ir,
        count,
        sizes: vec![0; count],
        loaded: Vec::new(),
        slots: Vec::new(),
    };
    walk.follow(params[1], Tracked::List, 0)?;
    walk.check_loaded_values()?;
    Ok(walk.sizes)
}

struct Walk<'a> {
    ir: &'a Ir,
    count: usize,
    sizes: Vec<u64>,
    /// Values the copy function read from source variables.
    loaded: Vec<Value>,
    /// Stack slots the list or a source pointer was stored into (-O0).
    slots: Vec<Value>,
}

impl Walk<'_> {
    /// Follows every use of `v`, which is `what` plus `offset` bytes.
    fn follow(&mut self, v: Value, what: Tracked, offset: i64) -> Result<(), String> {
        let ir = self.ir;
        if offset < 0 {
            return Err(unfollowed("reads before a copied variable"));
        }
        for user in ir.users(v) {
            let Some(op) = ir.opcode_if_instruction(user) else {
                return Err(unfollowed("uses a copied variable's address in a constant"));
            };
            match op {
                LLVMOpcode::LLVMGetElementPtr if ir.operand(user, 0) == v => {
                    let step = ir.constant_gep_offset(user).ok_or_else(|| {
                        unfollowed("reads a copied variable at an offset computed at run time")
                    })?;
                    self.follow(user, what, offset + step)?;
                }
                LLVMOpcode::LLVMBitCast | LLVMOpcode::LLVMAddrSpaceCast => {
                    self.follow(user, what, offset)?;
                }
                LLVMOpcode::LLVMLoad => self.load(user, what, offset)?,
                // -O0 keeps the copy function's arguments (and nothing else
                // of ours) in stack slots: follow what is loaded back.
                LLVMOpcode::LLVMStore
                    if ir.operand(user, 0) == v
                        && ir.operand(user, 1) != v
                        && ir.is_alloca(ir.operand(user, 1)) =>
                {
                    self.slot(ir.operand(user, 1), v, what, offset)?;
                }
                LLVMOpcode::LLVMStore => {
                    return Err(unfollowed("writes into a copied variable"));
                }
                LLVMOpcode::LLVMCall | LLVMOpcode::LLVMInvoke => {
                    self.call(user, v, what, offset)?;
                }
                _ => {
                    return Err(unfollowed(
                        "uses a copied variable's address for something other than reading it",
                    ))
                }
            }
        }
        Ok(())
    }

    fn load(&mut self, load: Value, what: Tracked, offset: i64) -> Result<(), String> {
        let ir = self.ir;
        let t = ir.type_of(load);
        match what {
            Tracked::List => {
                let k = (offset / 8) as usize;
                if ir.kind(t) != LLVMTypeKind::LLVMPointerTypeKind
                    || offset % 8 != 0
                    || k >= self.count
                {
                    return Err(unfollowed("reads its list of variables unexpectedly"));
                }
                self.follow(load, Tracked::Variable(k), 0)
            }
            Tracked::Variable(k) => {
                let end = offset as u64 + ir.store_size(t);
                self.sizes[k] = self.sizes[k].max(end);
                self.loaded.push(load);
                Ok(())
            }
        }
    }

    /// A call with `v` (`what` + `offset`) among its operands: only
    /// `llvm.memcpy`/`llvm.memmove` of a constant length from it is a read.
    fn call(&mut self, call: Value, v: Value, what: Tracked, offset: i64) -> Result<(), String> {
        let ir = self.ir;
        let Some(callee) = ir.direct_callee(call) else {
            return Err(unfollowed(
                "passes a copied variable to a call through a pointer",
            ));
        };
        let name = ir.name(callee);
        let is_copy = name.starts_with("llvm.memcpy") || name.starts_with("llvm.memmove");
        if !name.starts_with("llvm.") {
            return Err(nontrivial(&name));
        }
        let args = ir.call_args(call);
        let only_source = is_copy && args[1] == v && args[0] != v && args[2] != v;
        let (Tracked::Variable(k), true) = (what, only_source) else {
            return Err(unfollowed(&format!("passes a copied variable to {name}")));
        };
        let len = ir
            .const_int_value(args[2])
            .filter(|&n| n >= 0)
            .ok_or_else(|| unfollowed("copies a number of bytes known only at run time"))?;
        self.sizes[k] = self.sizes[k].max((offset + len) as u64);
        Ok(())
    }

    /// `v` (`what` + `offset`) stored into the stack slot `slot`: every use
    /// of the slot must be storing `v` or loading it back.
    fn slot(&mut self, slot: Value, v: Value, what: Tracked, offset: i64) -> Result<(), String> {
        let ir = self.ir;
        if self.slots.contains(&slot) {
            return Err(unfollowed("keeps two values in one stack slot"));
        }
        self.slots.push(slot);
        for user in ir.users(slot) {
            match ir.opcode_if_instruction(user) {
                Some(LLVMOpcode::LLVMStore)
                    if ir.operand(user, 0) == v && ir.operand(user, 1) == slot => {}
                Some(LLVMOpcode::LLVMLoad)
                    if ir.kind(ir.type_of(user)) == LLVMTypeKind::LLVMPointerTypeKind =>
                {
                    self.follow(user, what, offset)?;
                }
                _ => return Err(unfollowed("keeps a copied variable's address in memory")),
            }
        }
        Ok(())
    }

    /// What the copy function read from the sources must only be stored or
    /// computed with, never used as an address: a pointer inside a copied
    /// variable may point into the executing thread's private memory,
    /// which the staged bytes do not carry (a `std::string`'s own buffer).
    fn check_loaded_values(&mut self) -> Result<(), String> {
        let ir = self.ir;
        let mut tainted = std::mem::take(&mut self.loaded);
        let mut next = 0;
        while next < tainted.len() {
            let v = tainted[next];
            next += 1;
            for user in ir.users(v) {
                let Some(op) = ir.opcode_if_instruction(user) else {
                    return Err(unfollowed("uses a copied value in a constant"));
                };
                let propagates = match op {
                    // Stored (or swapped in) as a value: fine; as the address: not.
                    LLVMOpcode::LLVMStore if ir.operand(user, 1) != v => false,
                    LLVMOpcode::LLVMAtomicRMW | LLVMOpcode::LLVMAtomicCmpXchg
                        if ir.operand(user, 0) != v =>
                    {
                        false
                    }
                    LLVMOpcode::LLVMStore
                    | LLVMOpcode::LLVMAtomicRMW
                    | LLVMOpcode::LLVMAtomicCmpXchg => return Err(follows_pointer()),
                    LLVMOpcode::LLVMLoad => return Err(follows_pointer()),
                    LLVMOpcode::LLVMCall | LLVMOpcode::LLVMInvoke => {
                        let name = ir.direct_callee(user).map(|f| ir.name(f));
                        match name {
                            Some(name) if !name.starts_with("llvm.") => {
                                return Err(nontrivial(&name))
                            }
                            // A pure intrinsic on numbers (llvm.bswap,
                            // llvm.smax, ...); a pointer may be followed.
                            Some(name)
                                if ir.kind(ir.type_of(v)) != LLVMTypeKind::LLVMPointerTypeKind
                                    && !name.starts_with("llvm.mem") =>
                            {
                                ir.kind(ir.type_of(user)) != LLVMTypeKind::LLVMVoidTypeKind
                            }
                            _ => return Err(follows_pointer()),
                        }
                    }
                    LLVMOpcode::LLVMRet | LLVMOpcode::LLVMBr | LLVMOpcode::LLVMSwitch => false,
                    // Arithmetic, casts, comparisons, GEPs, selects, phis,
                    // vector and aggregate operations: their results carry
                    // the value on.
                    _ => true,
                };
                if propagates && !tainted.contains(&user) {
                    tainted.push(user);
                }
            }
        }
        Ok(())
    }
}

fn nontrivial(callee: &str) -> String {
    format!(
        "{REFUSED} of a C++ object with a non-trivial copy assignment yet (its copy calls {callee})"
    )
}

fn follows_pointer() -> String {
    format!(
        "{REFUSED} of a variable whose copy follows a pointer stored in it yet \
         (a non-trivial copy assignment)"
    )
}

fn unfollowed(why: &str) -> String {
    format!("{REFUSED} here yet: its copy function {why}")
}
