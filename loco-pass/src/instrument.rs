//! The rewrite itself (see loco-pass/ABI.md for the contract with libloco).

use llvm_sys::{
    LLVMAtomicOrdering, LLVMAtomicRMWBinOp, LLVMIntPredicate, LLVMOpcode, LLVMTypeKind,
};

use crate::ir::{Ir, Type, Value};

/// Start of the shared window and its size (loco-pass/ABI.md).
pub const REGION_BASE: u64 = 0x4000_0000_0000;
pub const REGION_SPAN: u64 = 1 << 44;
/// Marks a module as rewritten, so that running the pass twice changes nothing.
const DONE: &str = "loco.instrumented";

/// Heap functions whose declarations get the `loco_` prefix.
const HEAP_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "aligned_alloc",
    "posix_memalign",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "strdup",
    "strndup",
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
];

/// libc functions that write through a pointer, and how many of their
/// leading arguments their `loco_after_` hook takes.
const KNOWN_WRITERS: &[(&str, usize)] = &[
    ("memcpy", 3),
    ("memmove", 3),
    ("memset", 3),
    ("strcpy", 2),
    ("strcat", 2),
    ("strncpy", 3),
    ("strncat", 3),
    ("sprintf", 2),
    ("snprintf", 3),
    ("vsprintf", 3),
    ("vsnprintf", 4),
    ("fgets", 3),
    ("fread", 4),
    ("read", 3),
    ("pread", 3),
    ("qsort", 3),
    ("memccpy", 4),
    ("stpcpy", 2),
    ("getline", 2),
    ("getdelim", 2),
];

/// What the pass did to a module, for tests and `LOCO_PASS_VERBOSE`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub renamed: usize,
    pub stores: usize,
    pub stores_skipped: usize,
    pub mem_intrinsics: usize,
    pub atomics: usize,
    pub hooks: usize,
    pub warnings: usize,
}

pub fn run(ir: &Ir) -> Summary {
    let mut s = Summary::default();
    if ir.named_metadata_exists(DONE) {
        return s;
    }
    ir.add_named_metadata(DONE);
    rename_heap_functions(ir, &mut s);
    for f in ir.functions() {
        if ir.is_declaration(f) {
            continue;
        }
        instrument_function(ir, f, &mut s);
    }
    s
}

fn warn(ir: &Ir, at: Value, s: &mut Summary, what: &str) {
    let place = ir
        .location(at)
        .unwrap_or_else(|| "<no debug location>".into());
    eprintln!("loco-pass: warning: {place}: {what}");
    s.warnings += 1;
}

fn rename_heap_functions(ir: &Ir, s: &mut Summary) {
    for name in HEAP_FUNCTIONS {
        let Some(f) = ir.function(name) else { continue };
        if !ir.is_declaration(f) {
            continue; // the program defines its own: leave it alone
        }
        let target = format!("loco_{name}");
        match ir.function(&target) {
            Some(existing) => {
                ir.replace_all_uses(f, existing);
                ir.delete_function(f);
            }
            None => ir.rename(f, &target),
        }
        s.renamed += 1;
    }
}

/// Whether a store through `ptr` provably cannot reach the shared region.
fn provably_private(ir: &Ir, ptr: Value) -> bool {
    let base = ir.underlying_object(ptr);
    ir.is_alloca(base) || ir.is_global_variable(base)
}

fn instrument_function(ir: &Ir, f: Value, s: &mut Summary) {
    let splittable = !ir.function_has_indirect_branches(f);
    // Collected first, since the rewrites split blocks. Only the kinds acted
    // on: splitting rebuilds (erases) phis, so a phi handle would dangle.
    let work: Vec<Value> = ir
        .blocks(f)
        .into_iter()
        .flat_map(|b| ir.instructions(b))
        .filter(|&i| {
            matches!(
                ir.opcode(i),
                LLVMOpcode::LLVMStore
                    | LLVMOpcode::LLVMLoad
                    | LLVMOpcode::LLVMAtomicRMW
                    | LLVMOpcode::LLVMAtomicCmpXchg
                    | LLVMOpcode::LLVMCall
            )
        })
        .collect();
    let mut warned_indirect = false;
    for i in work {
        ir.take_location_of(i);
        match ir.opcode(i) {
            LLVMOpcode::LLVMStore => {
                if ir.ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
                    atomic_store(ir, i, s);
                } else if provably_private(ir, ir.operand(i, 1)) {
                    s.stores_skipped += 1;
                } else if splittable {
                    instrument_store(ir, i, s);
                } else {
                    // Without splitting, mark through the runtime after the store.
                    let ty = ir.type_of(ir.operand(i, 0));
                    let len = ir.store_size(ty);
                    ir.position_after(i);
                    let mark = ir.declare("loco_mark_dirty", ir.void(), &[ir.ptr(), ir.i64()]);
                    ir.call(mark, &[ir.operand(i, 1), ir.const_i64(len)]);
                    s.stores += 1;
                    if !warned_indirect {
                        warn(ir, i, s, "function uses indirect branches: its stores are marked by calls, not inline");
                        warned_indirect = true;
                    }
                }
            }
            LLVMOpcode::LLVMLoad
                if ir.ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic =>
            {
                atomic_load(ir, i, s)
            }
            LLVMOpcode::LLVMAtomicRMW => atomic_rmw(ir, i, s),
            LLVMOpcode::LLVMAtomicCmpXchg => cmpxchg(ir, i, s),
            LLVMOpcode::LLVMCall => call(ir, i, s),
            _ => {}
        }
    }
}

/// The inline check and marking after a plain store (loco-pass/ABI.md).
fn instrument_store(ir: &Ir, store: Value, s: &mut Summary) {
    let len = ir.store_size(ir.type_of(ir.operand(store, 0)));
    if len == 0 {
        return;
    }
    let head = ir.block_of(store);
    let cont = ir.split_after(store);
    // Read again: splitting may have rebuilt the phi the address came from.
    let ptr = ir.operand(store, 1);
    let mark = ir.append_block_after(head, c"loco.mark");
    ir.position_at_end(head);
    let addr = ir.ptr_to_int(ptr);
    let offset = ir.sub(addr, ir.const_i64(REGION_BASE));
    let shared = ir.icmp(
        LLVMIntPredicate::LLVMIntULT,
        offset,
        ir.const_i64(REGION_SPAN),
    );
    ir.cond_br(shared, mark, cont);

    ir.position_at_end(mark);
    let mark_fn = ir.declare("loco_mark_dirty", ir.void(), &[ir.ptr(), ir.i64()]);
    // Fast path: the store's bits lie in whole, naturally aligned bitmap
    // bytes: one atomic OR. Otherwise (unaligned, or odd sizes) the runtime marks.
    if matches!(len, 1..=8 | 16 | 32 | 64) {
        let fits = if len <= 8 {
            let bit = ir.and(addr, ir.const_i64(7));
            let end = ir.add(bit, ir.const_i64(len));
            ir.icmp(LLVMIntPredicate::LLVMIntULE, end, ir.const_i64(8))
        } else {
            let misalign = ir.and(addr, ir.const_i64(len - 1));
            ir.icmp(LLVMIntPredicate::LLVMIntEQ, misalign, ir.const_i64(0))
        };
        let fast = ir.append_block_after(mark, c"loco.mark.bits");
        let slow = ir.append_block_after(fast, c"loco.mark.slow");
        let summary = ir.append_block_after(slow, c"loco.mark.page");
        ir.cond_br(fits, fast, slow);

        ir.position_at_end(fast);
        let bitmap = ir.int_to_ptr(ir.lshr(addr, ir.const_i64(3)), ir.ptr());
        let mask = if len <= 8 {
            let bit = ir.and(addr, ir.const_i64(7));
            ir.trunc(ir.shl(ir.const_i64((1u64 << len) - 1), bit), ir.i8())
        } else {
            ir.all_ones(ir.int(len as u32 / 8 * 8))
        };
        ir.atomic_or_release(bitmap, mask);
        ir.br(summary);

        ir.position_at_end(slow);
        ir.call(mark_fn, &[ptr, ir.const_i64(len)]);
        ir.br(summary);

        ir.position_at_end(summary);
    } else {
        ir.call(mark_fn, &[ptr, ir.const_i64(len)]);
    }
    let summary_byte = ir.int_to_ptr(ir.lshr(addr, ir.const_i64(12)), ir.ptr());
    ir.store_byte_monotonic(ir.const_i8(1), summary_byte);
    ir.br(cont);
    s.stores += 1;
}

fn call(ir: &Ir, i: Value, s: &mut Summary) {
    if let Some(text) = ir.inline_asm_text(i) {
        if text.contains("~{memory}") || text.contains("=*m") {
            warn(
                ir,
                i,
                s,
                "inline assembly may write memory: loco-pass cannot mark those bytes \
                 (only write-protection tracking, LOCO_TRACK=1, finds such writes)",
            );
        }
        return;
    }
    let Some(callee) = ir.callee(i) else { return };
    let name = ir.name(callee);
    if name.starts_with("llvm.memcpy")
        || name.starts_with("llvm.memmove")
        || name.starts_with("llvm.memset")
    {
        let args = ir.call_args(i);
        if provably_private(ir, args[0]) {
            return;
        }
        ir.position_after(i);
        let len = ir.zext_or_trunc(args[2], ir.i64());
        let mark = ir.declare("loco_mark_dirty", ir.void(), &[ir.ptr(), ir.i64()]);
        ir.call(mark, &[args[0], len]);
        s.mem_intrinsics += 1;
        return;
    }
    let Some(&(_, k)) = KNOWN_WRITERS.iter().find(|(n, _)| *n == name) else {
        return;
    };
    let args = ir.call_args(i);
    if args.len() < k {
        return;
    }
    let mut hook_args: Vec<Value> = args[..k].to_vec();
    let ret_ty = ir.type_of(i);
    if ir.kind(ret_ty) != LLVMTypeKind::LLVMVoidTypeKind {
        hook_args.push(i);
    }
    let types: Vec<Type> = hook_args.iter().map(|&a| ir.type_of(a)).collect();
    ir.position_after(i);
    let hook = ir.declare(&format!("loco_after_{name}"), ir.void(), &types);
    ir.call(hook, &hook_args);
    s.hooks += 1;
}

// ---------------------------------------------------------------- atomics

/// Bytes of an atomic's value type, if the runtime handles it (1, 2, 4, 8
/// bytes of integer, float or pointer).
fn atomic_size(ir: &Ir, t: Type) -> Option<u64> {
    let ok = matches!(
        ir.kind(t),
        LLVMTypeKind::LLVMIntegerTypeKind
            | LLVMTypeKind::LLVMPointerTypeKind
            | LLVMTypeKind::LLVMFloatTypeKind
            | LLVMTypeKind::LLVMDoubleTypeKind
            | LLVMTypeKind::LLVMHalfTypeKind
    );
    let size = ir.store_size(t);
    (ok && matches!(size, 1 | 2 | 4 | 8)).then_some(size)
}

/// A value of type `t` as the i64 the runtime takes.
fn to_i64(ir: &Ir, v: Value, size: u64) -> Value {
    let t = ir.type_of(v);
    let as_int = match ir.kind(t) {
        LLVMTypeKind::LLVMPointerTypeKind => return ir.ptr_to_int(v),
        LLVMTypeKind::LLVMIntegerTypeKind => v,
        _ => ir.bitcast(v, ir.int(size as u32 * 8)),
    };
    ir.zext_or_trunc(as_int, ir.i64())
}

/// The runtime's i64 back as a value of type `t`.
fn from_i64(ir: &Ir, v: Value, t: Type, size: u64) -> Value {
    match ir.kind(t) {
        LLVMTypeKind::LLVMPointerTypeKind => ir.int_to_ptr(v, t),
        LLVMTypeKind::LLVMIntegerTypeKind => ir.zext_or_trunc(v, t),
        _ => ir.bitcast(ir.trunc(v, ir.int(size as u32 * 8)), t),
    }
}

fn ordering(ir: &Ir, o: LLVMAtomicOrdering) -> Value {
    ir.const_i32(o as i64)
}

fn atomic_rmw(ir: &Ir, i: Value, s: &mut Summary) {
    let (ptr, val) = (ir.operand(i, 0), ir.operand(i, 1));
    let t = ir.type_of(val);
    let op = ir.rmw_op(i);
    let supported = (op as i32) <= LLVMAtomicRMWBinOp::LLVMAtomicRMWBinOpFMin as i32;
    let Some(size) = atomic_size(ir, t).filter(|_| supported) else {
        warn(
            ir,
            i,
            s,
            "atomic operation of an unsupported type or kind: left as a local CPU atomic",
        );
        return;
    };
    if provably_private(ir, ptr) {
        return;
    }
    ir.position_before(i);
    let f = ir.declare(
        "loco_atomic_rmw",
        ir.i64(),
        &[ir.ptr(), ir.i64(), ir.i32(), ir.i32(), ir.i32()],
    );
    let old = ir.call(
        f,
        &[
            ptr,
            to_i64(ir, val, size),
            ir.const_i32(op as i64),
            ir.const_i32(size as i64),
            ordering(ir, ir.ordering(i)),
        ],
    );
    let result = from_i64(ir, old, t, size);
    ir.replace_all_uses(i, result);
    ir.erase(i);
    s.atomics += 1;
}

fn cmpxchg(ir: &Ir, i: Value, s: &mut Summary) {
    let (ptr, expected, desired) = (ir.operand(i, 0), ir.operand(i, 1), ir.operand(i, 2));
    let t = ir.type_of(expected);
    let Some(size) = atomic_size(ir, t) else {
        warn(
            ir,
            i,
            s,
            "compare-exchange of an unsupported type: left as a local CPU atomic",
        );
        return;
    };
    if provably_private(ir, ptr) {
        return;
    }
    ir.position_before(i);
    let f = ir.declare(
        "loco_atomic_cmpxchg",
        ir.i64(),
        &[ir.ptr(), ir.i64(), ir.i64(), ir.i32(), ir.i32()],
    );
    let exp64 = to_i64(ir, expected, size);
    let found64 = ir.call(
        f,
        &[
            ptr,
            exp64,
            to_i64(ir, desired, size),
            ir.const_i32(size as i64),
            ordering(ir, ir.cmpxchg_ordering(i)),
        ],
    );
    let found = from_i64(ir, found64, t, size);
    let ok = ir.icmp(LLVMIntPredicate::LLVMIntEQ, found64, exp64);
    let pair_ty = ir.type_of(i);
    let pair = ir.insert_value(ir.undef(pair_ty), found, 0);
    let pair = ir.insert_value(pair, ok, 1);
    ir.replace_all_uses(i, pair);
    ir.erase(i);
    s.atomics += 1;
}

fn atomic_load(ir: &Ir, i: Value, s: &mut Summary) {
    let ptr = ir.operand(i, 0);
    let t = ir.type_of(i);
    let Some(size) = atomic_size(ir, t) else {
        warn(
            ir,
            i,
            s,
            "atomic load of an unsupported type: left as a local CPU atomic",
        );
        return;
    };
    if provably_private(ir, ptr) {
        return;
    }
    ir.position_before(i);
    let f = ir.declare(
        "loco_atomic_load",
        ir.i64(),
        &[ir.ptr(), ir.i32(), ir.i32()],
    );
    let v = ir.call(
        f,
        &[ptr, ir.const_i32(size as i64), ordering(ir, ir.ordering(i))],
    );
    let result = from_i64(ir, v, t, size);
    ir.replace_all_uses(i, result);
    ir.erase(i);
    s.atomics += 1;
}

fn atomic_store(ir: &Ir, i: Value, s: &mut Summary) {
    let (val, ptr) = (ir.operand(i, 0), ir.operand(i, 1));
    let Some(size) = atomic_size(ir, ir.type_of(val)) else {
        warn(
            ir,
            i,
            s,
            "atomic store of an unsupported type: left as a local CPU atomic",
        );
        return;
    };
    if provably_private(ir, ptr) {
        return;
    }
    ir.position_before(i);
    let f = ir.declare(
        "loco_atomic_store",
        ir.void(),
        &[ir.ptr(), ir.i64(), ir.i32(), ir.i32()],
    );
    ir.call(
        f,
        &[
            ptr,
            to_i64(ir, val, size),
            ir.const_i32(size as i64),
            ordering(ir, ir.ordering(i)),
        ],
    );
    ir.erase(i);
    s.atomics += 1;
}
