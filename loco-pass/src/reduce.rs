//! `reduction` across nodes (ABI.md, "reductions").
//!
//! clang ends a construct with a reduction clause with
//! `__kmpc_reduce{,_nowait}(loc, gtid, num_vars, reduce_size, reduce_data,
//! reduce_func, lck)`: `reduce_data` is an array of `reduce_size / 8`
//! pointers to the calling thread's private copies, and
//! `reduce_func(lhs_list, rhs_list)` folds one such list into another. The
//! runtime gathers each node's partial results at node 0 in one message, by
//! copying the bytes behind those pointers, for which it needs their sizes:
//! nothing in the call says them. The code that fills the list does: each
//! entry is stored the address of a private copy, an `alloca` of a constant
//! size (or a constant offset into one, for an array section). So each call
//! whose list is an `alloca` that is only filled with such addresses (at
//! constant offsets, one known size per entry) becomes a call to
//! `loco_reduce{,_nowait}` with a constant array of the sizes. Any other
//! call is left alone: the runtime's own `__kmpc_reduce*` combine under a
//! lock, which is slower across nodes but right for any list (a VLA
//! section, whose length clang passes in the list itself; a private copy
//! holding pointers, whose targets a byte copy would not carry).

use llvm_sys::{LLVMOpcode, LLVMTypeKind};

use crate::ir::{Ir, Value};

/// What clang calls, and what each becomes: the same arguments and
/// `const i64 *sizes`.
const ENTRIES: [(&str, &str); 2] = [
    ("__kmpc_reduce", "loco_reduce"),
    ("__kmpc_reduce_nowait", "loco_reduce_nowait"),
];
/// The sizes arrays' name.
const SIZES: &str = "__loco.reduce.sizes";

/// Rewrites every call to a reduce entry whose variables' sizes can be
/// read; returns how many were rewritten and how many were left alone.
pub fn rewrite_all(ir: &Ir) -> (usize, usize) {
    let mut calls = Vec::new();
    for (entry, loco) in ENTRIES {
        let Some(f) = ir.function(entry) else {
            continue;
        };
        for user in ir.users(f) {
            let is_call = ir.opcode_if_instruction(user) == Some(LLVMOpcode::LLVMCall)
                || ir.opcode_if_instruction(user) == Some(LLVMOpcode::LLVMInvoke);
            if is_call && ir.direct_callee(user) == Some(f) {
                calls.push((user, loco));
            }
        }
    }
    let (mut rewritten, mut kept) = (0, 0);
    // Calls with the same sizes share one array.
    let mut tables: Vec<(Vec<u64>, Value)> = Vec::new();
    for (call, loco) in calls {
        let Some(sizes) = list_sizes(ir, call) else {
            kept += 1;
            continue;
        };
        let table = match tables.iter().find(|(s, _)| *s == sizes) {
            Some(&(_, table)) => table,
            None => {
                let table = ir.constant_i64_array(SIZES, &sizes);
                tables.push((sizes, table));
                table
            }
        };
        rewrite(ir, call, loco, table);
        rewritten += 1;
    }
    (rewritten, kept)
}

/// Replaces `call` by a call to `loco` with the same arguments and the
/// sizes array `table`.
fn rewrite(ir: &Ir, call: Value, loco: &str, table: Value) {
    let (i32t, i64t, ptr) = (ir.i32(), ir.i64(), ir.ptr());
    let entry = ir.declare(loco, i32t, &[ptr, i32t, i32t, i64t, ptr, ptr, ptr, ptr]);
    ir.take_location_of(call);
    ir.position_before(call);
    let mut args = ir.call_args(call);
    args.push(table);
    let new = ir.call(entry, &args);
    let name = ir.name(call);
    ir.replace_all_uses(call, new);
    ir.erase(call);
    ir.rename(new, &name);
}

/// The byte size of each variable of `call`'s list, if every one is known.
fn list_sizes(ir: &Ir, call: Value) -> Option<Vec<u64>> {
    // A plain call: an invoke has successors to keep, and clang emits none
    // for these nounwind entries.
    if ir.opcode(call) != LLVMOpcode::LLVMCall {
        return None;
    }
    let args = ir.call_args(call);
    let kinds: Vec<LLVMTypeKind> = args.iter().map(|&a| ir.kind(ir.type_of(a))).collect();
    let expected = [
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
    ];
    let ret = ir.type_of(call);
    if kinds != expected
        || ir.int_width(ir.type_of(args[1])) != 32
        || ir.int_width(ir.type_of(args[2])) != 32
        || ir.int_width(ir.type_of(args[3])) != 64
        || ir.kind(ret) != LLVMTypeKind::LLVMIntegerTypeKind
        || ir.int_width(ret) != 32
    {
        return None;
    }
    let count = match ir.const_int_value(args[3]) {
        Some(bytes) if bytes > 0 && bytes % 8 == 0 => bytes as usize / 8,
        _ => return None,
    };
    let list = args[4];
    if !ir.is_alloca(list) {
        return None;
    }
    let mut entries = vec![Vec::new(); count];
    fill(ir, list, list, 0, &mut entries)?;
    entries
        .iter()
        .map(|stored| {
            let first = object_size(ir, *stored.first()?)?;
            stored
                .iter()
                .all(|&v| object_size(ir, v) == Some(first))
                .then_some(first)
        })
        .collect()
}

/// Follows every use of `p`, the list plus `offset` bytes, collecting the
/// values stored into each entry; None if the list is used in any other
/// way than being filled, read, passed to the reduce entry as its list,
/// or marked alive or dead.
fn fill(ir: &Ir, list: Value, p: Value, offset: i64, entries: &mut [Vec<Value>]) -> Option<()> {
    for user in ir.users(p) {
        match ir.opcode_if_instruction(user)? {
            LLVMOpcode::LLVMGetElementPtr if ir.operand(user, 0) == p => {
                let step = ir.constant_gep_offset(user)?;
                fill(ir, list, user, offset.checked_add(step)?, entries)?;
            }
            LLVMOpcode::LLVMBitCast | LLVMOpcode::LLVMAddrSpaceCast => {
                fill(ir, list, user, offset, entries)?;
            }
            LLVMOpcode::LLVMLoad => {}
            LLVMOpcode::LLVMStore if ir.operand(user, 1) == p && ir.operand(user, 0) != p => {
                let value = ir.operand(user, 0);
                if ir.kind(ir.type_of(value)) != LLVMTypeKind::LLVMPointerTypeKind
                    || offset % 8 != 0
                {
                    return None;
                }
                let entry = entries.get_mut(usize::try_from(offset / 8).ok()?)?;
                entry.push(value);
            }
            LLVMOpcode::LLVMCall => {
                let callee = ir.direct_callee(user)?;
                let name = ir.name(callee);
                let args = ir.call_args(user);
                // The call being rewritten, or another reduce call with the
                // same list (rewritten already, or not yet).
                let as_list = p == list
                    && ENTRIES
                        .iter()
                        .any(|(entry, loco)| *entry == name || *loco == name)
                    && args.iter().enumerate().all(|(k, &a)| (a == p) == (k == 4));
                if !(as_list || name.starts_with("llvm.lifetime.")) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(())
}

/// The bytes from `v` to the end of the stack variable it points into,
/// when `v` is a constant offset into an `alloca` of a constant size whose
/// type holds no pointer (a byte copy of a pointer to the thread's own
/// memory would be useless on another node).
fn object_size(ir: &Ir, mut v: Value) -> Option<u64> {
    let mut offset: i64 = 0;
    for _ in 0..64 {
        match ir.opcode_if_instruction(v)? {
            LLVMOpcode::LLVMGetElementPtr => {
                offset = offset.checked_add(ir.constant_gep_offset(v)?)?;
                v = ir.operand(v, 0);
            }
            LLVMOpcode::LLVMBitCast | LLVMOpcode::LLVMAddrSpaceCast => v = ir.operand(v, 0),
            LLVMOpcode::LLVMAlloca => {
                let t = ir.allocated_type(v);
                if !ir.is_sized(t) || ir.holds_pointer(t) {
                    return None;
                }
                let total = ir.alloc_size(t).checked_mul(ir.alloca_count(v)?)?;
                let offset = u64::try_from(offset).ok()?;
                return (offset < total).then(|| total - offset);
            }
            _ => return None,
        }
    }
    None
}
