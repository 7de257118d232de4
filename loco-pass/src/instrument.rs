//! The rewrite itself. loco-pass/ABI.md is the contract with libloco; the
//! comments here say how, that document says what.

use llvm_sys::{LLVMAtomicOrdering, LLVMIntPredicate, LLVMOpcode, LLVMTypeKind};

use std::collections::HashMap;

use crate::ir::{Ir, MarkDecision, Type, Value};
use crate::{entry, globals, openmp, reduce};

/// Start of the shared window and its size (ABI.md).
pub const REGION_BASE: u64 = 0x4000_0000_0000;
pub const REGION_SPAN: u64 = 1 << 44;

/// The home byte of `addr` is at `(addr >> 12) + HOME_SHADOW_OFFSET`: 1
/// while this node is home to that page, whose stores need no mark (ABI.md).
pub const HOME_SHADOW_OFFSET: u64 = 1 << 36;

/// libloco.so's `uint64_t __loco_mark_span`: the span of the window
/// stores are marked in, REGION_SPAN, or 0 on a one-node cluster (every
/// page is home there): tested first, it rules out every mark at once
/// there, and then bounds the window test (ABI.md).
pub const MARK_SPAN: &str = "__loco_mark_span";

/// Named metadata marking a module as rewritten, so that running the pass
/// again (a second `loco` in a pipeline, or `opt` on loco-cc's output)
/// changes nothing.
pub const MARKER: &str = "loco.instrumented";

/// Heap functions whose declarations get the `loco_` prefix (ABI.md).
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
    // pthread mutexes (std::mutex too): a mutex in shared memory must
    // exclude threads on every node, and its holder must see the writes
    // made under it (the runtime makes it a distributed lock).
    "pthread_mutex_lock",
    "pthread_mutex_trylock",
    "pthread_mutex_unlock",
];

/// libc functions that write through a pointer, and how many of their
/// leading arguments their `loco_after_NAME` hook takes (ABI.md).
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

/// `atomicrmw` operations by LLVM's name, numbered as LLVM's AtomicRMWBinOp
/// (ABI.md). uinc_wrap and udec_wrap (new in LLVM 16) are not in the ABI.
const RMW_OPERATIONS: &[&str] = &[
    "xchg", "add", "sub", "and", "nand", "or", "xor", "max", "min", "umax", "umin", "fadd", "fsub",
    "fmax", "fmin",
];

/// What the pass did to a module (printed with `LOCO_PASS_VERBOSE=1`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub renamed: usize,
    /// Stores marked after themselves (merged marks included).
    pub stores: usize,
    pub stores_skipped: usize,
    /// Marks after loops (ABI.md, "Fewer marks"), those of them that mark
    /// blocks at a stride, and the stores they cover.
    pub loop_marks: usize,
    pub strided_marks: usize,
    pub stores_lifted: usize,
    /// Merged marks of adjacent stores of a block, and the stores they cover.
    pub merged_marks: usize,
    pub stores_merged: usize,
    pub mem_intrinsics: usize,
    pub atomics: usize,
    /// Volatile loads and stores that tell the runtime (ABI.md).
    pub volatiles: usize,
    pub hooks: usize,
    pub warnings: usize,
    /// Global variable definitions moved to the shared sections.
    pub shared_globals: usize,
    /// Global variable declarations now reached through the GOT.
    pub extern_globals: usize,
    /// Whether `main` now runs through `loco_main`.
    pub wrapped_main: bool,
    /// `copyin` arguments of forks copied through the forking thread's stack.
    pub copyin: usize,
    /// Reduce calls given their variables' sizes (`loco_reduce*`), and
    /// those left to the runtime's lock-based `__kmpc_reduce*`.
    pub reductions: usize,
    pub reductions_kept: usize,
}

/// Rewrites the module, once: a module that carries the marker is left alone.
pub fn run(ir: &Ir) -> Summary {
    let mut summary = Summary::default();
    if ir.has_named_metadata(MARKER) {
        return summary;
    }
    let mut errors = openmp::unsupported(ir);
    let wrapped = if errors.is_empty() {
        ir.add_named_metadata(MARKER);
        summary.copyin = openmp::copyin_through_the_stack(ir);
        (summary.reductions, summary.reductions_kept) = reduce::rewrite_all(ir);
        rename_heap_functions(ir, &mut summary);
        for f in ir.functions() {
            if !ir.is_declaration(f) {
                instrument_function(ir, f, &mut summary);
            }
        }
        let shared = globals::share(ir);
        summary.shared_globals = shared.definitions;
        summary.extern_globals = shared.declarations;
        // Last, so the new main is not instrumented (it stores nothing).
        entry::wrap_main(ir)
    } else {
        Ok(false)
    };
    match wrapped {
        Ok(w) => summary.wrapped_main = w,
        Err(what) => {
            let at = ir
                .function(entry::USER_MAIN)
                .or_else(|| ir.function("main"));
            let place = at
                .and_then(|f| ir.function_location(f))
                .unwrap_or_else(|| format!("{}: in main", ir.source_file_name()));
            errors.push(format!("{place}: error: {what}"));
        }
    }
    if !errors.is_empty() {
        fail(&errors);
    }
    summary
}

/// Ends the compilation with these errors. LLVM 16's C API cannot report
/// an error through the compiler's diagnostics (LLVMContext::emitError is
/// C++ only), so the process exits with status 1, as clang does after an
/// error, once LLVM has removed the temporary files it would remove on a
/// signal (clang's unfinished output file among them): no object file is
/// left behind.
fn fail(errors: &[String]) -> ! {
    for e in errors {
        eprintln!("{e}");
    }
    let n = errors.len();
    eprintln!(
        "{n} error{} generated by loco-pass.",
        if n == 1 { "" } else { "s" }
    );
    crate::ir::remove_temporary_files();
    std::process::exit(1)
}

/// Prints a compile-time warning naming where in the source `at` is.
fn warn(ir: &Ir, at: Value, summary: &mut Summary, what: &str) {
    let place = ir.source_location(at).unwrap_or_else(|| {
        let function = ir.name(ir.function_of(at));
        format!("{}: in {function}", ir.source_file_name())
    });
    eprintln!("loco-pass: warning: {place}: {what}");
    summary.warnings += 1;
}

fn rename_heap_functions(ir: &Ir, summary: &mut Summary) {
    for name in HEAP_FUNCTIONS {
        let Some(f) = ir.function(name) else { continue };
        if !ir.is_declaration(f) {
            continue; // the program defines its own: leave it alone
        }
        let renamed = format!("loco_{name}");
        match ir.function(&renamed) {
            // Both names declared (a program calling loco_malloc itself):
            // one declaration is enough.
            Some(existing) => {
                ir.replace_all_uses(f, existing);
                ir.delete_function(f);
            }
            None => ir.rename(f, &renamed),
        }
        summary.renamed += 1;
    }
}

/// Whether a pointer provably points into the stack or a thread-local
/// variable: every object it may be based on (through GEPs, casts, phis,
/// selects, up to a small budget) is an `alloca` or a thread-local global.
/// Other globals may be shared (ABI.md, "Shared globals").
fn provably_private(ir: &Ir, pointer: Value) -> bool {
    const BUDGET: usize = 16;
    let mut seen = Vec::new();
    let mut pending = vec![pointer];
    while let Some(v) = pending.pop() {
        let base = ir.strip_pointer_offsets(v);
        if seen.contains(&base) {
            continue;
        }
        if seen.len() == BUDGET {
            return false;
        }
        seen.push(base);
        if ir.is_alloca(base) || (ir.is_global_variable(base) && ir.is_thread_local(base)) {
            continue;
        }
        match ir.pointer_sources(base) {
            Some(sources) => pending.extend(sources),
            None => return false,
        }
    }
    true
}

/// Whether writes through `pointer` need no marking: the shared region is
/// in address space 0, and the stack and thread-locals are never in it.
fn needs_no_marking(ir: &Ir, pointer: Value) -> bool {
    ir.address_space(pointer) != 0 || provably_private(ir, pointer)
}

fn instrument_function(ir: &Ir, f: Value, summary: &mut Summary) {
    // Splitting after a store moves the rest of its block (Ir::split_after),
    // which is sound with indirectbr too; but functions with a computed
    // goto are rare enough to take the simplest path: a call per store.
    let indirect_branch = ir
        .blocks(f)
        .into_iter()
        .flat_map(|b| ir.instructions(b))
        .find(|&i| ir.opcode(i) == LLVMOpcode::LLVMIndirectBr);
    let inline_checks = indirect_branch.is_none();
    if let Some(at) = indirect_branch {
        warn(
            ir,
            at,
            summary,
            "function uses indirectbr (computed goto): its stores are marked by \
             calls to loco_mark_dirty, not inline",
        );
    }
    let atomic = |i| ir.ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic;
    // First atomics and calls, in order (so warnings come in source order).
    // None of these rewrites moves other instructions.
    for i in instructions_of(ir, f, false) {
        ir.take_location_of(i);
        match ir.opcode(i) {
            LLVMOpcode::LLVMStore if atomic(i) => atomic_store(ir, i, summary),
            LLVMOpcode::LLVMLoad if atomic(i) => atomic_load(ir, i, summary),
            LLVMOpcode::LLVMLoad if ir.is_volatile(i) => volatile_load(ir, i, summary),
            LLVMOpcode::LLVMAtomicRMW => atomic_rmw(ir, i, summary),
            LLVMOpcode::LLVMFence => fence(ir, i, summary),
            LLVMOpcode::LLVMAtomicCmpXchg => cmpxchg(ir, i, summary),
            LLVMOpcode::LLVMCall | LLVMOpcode::LLVMInvoke | LLVMOpcode::LLVMCallBr => {
                call_site(ir, i, summary)
            }
            _ => {}
        }
    }
    // Then fewer marks where possible: after loops, merged in blocks. The
    // atomics and volatile loads are runtime calls by now, which keep
    // stores of their loops marked one by one.
    let plan = if inline_checks {
        plan_marks(ir, f, summary)
    } else {
        HashMap::new()
    };
    // Then the plain stores, each block backwards: splitting after a store
    // moves the instructions up to the next store (already split off), so
    // each instruction moves once, not once per store before it.
    for i in instructions_of(ir, f, true) {
        if ir.opcode(i) == LLVMOpcode::LLVMStore && !atomic(i) {
            ir.take_location_of(i);
            let decision = plan.get(&i).copied().unwrap_or_default();
            plain_store(ir, i, inline_checks, decision, summary);
        }
    }
}

/// The bytes a plain store writes, if it must be marked: not provably
/// private, of a size known at compile time.
fn marked_len(ir: &Ir, store: Value) -> Option<u64> {
    if needs_no_marking(ir, ir.operand(store, 1)) {
        return None;
    }
    let stored_type = ir.type_of(ir.operand(store, 0));
    if ir.kind(stored_type) == LLVMTypeKind::LLVMScalableVectorTypeKind {
        return None;
    }
    Some(ir.store_size(stored_type)).filter(|&len| len > 0)
}

/// Hands the stores of `f` that need marks (plain, not volatile) to
/// cpp/marks.cc, which emits marks after loops for those it can cover
/// there and merges adjacent ones of a block (ABI.md, "Fewer marks").
fn plan_marks(ir: &Ir, f: Value, summary: &mut Summary) -> HashMap<Value, MarkDecision> {
    let stores: Vec<Value> = instructions_of(ir, f, false)
        .into_iter()
        .filter(|&i| {
            ir.opcode(i) == LLVMOpcode::LLVMStore
                && ir.ordering(i) == LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic
                && !ir.is_volatile(i)
                && marked_len(ir, i).is_some()
        })
        .collect();
    if stores.is_empty() {
        return HashMap::new();
    }
    let (mark_dirty, _) = mark_dirty_fn(ir);
    let abi = (REGION_BASE, HOME_SHADOW_OFFSET, ir.i64_global(MARK_SPAN));
    let (decisions, plan) = ir.plan_marks(f, &stores, mark_dirty, abi);
    summary.loop_marks += plan.loop_marks as usize;
    summary.strided_marks += plan.strided_marks as usize;
    summary.stores_lifted += plan.lifted_stores as usize;
    summary.merged_marks += plan.merged_marks as usize;
    summary.stores_merged += plan.merged_stores as usize;
    stores
        .into_iter()
        .zip(decisions)
        .filter(|(_, d)| d.kind != MarkDecision::KEEP)
        .collect()
}

/// The instructions of `f`, each block's backwards if `backwards`, without
/// phis: splitting blocks rebuilds phis, so a phi handle could dangle.
fn instructions_of(ir: &Ir, f: Value, backwards: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for b in ir.blocks(f) {
        let mut block = ir.instructions(b);
        block.retain(|&i| ir.opcode(i) != LLVMOpcode::LLVMPHI);
        if backwards {
            block.reverse();
        }
        out.extend(block);
    }
    out
}

fn mark_dirty_fn(ir: &Ir) -> (Value, Type) {
    ir.declare("loco_mark_dirty", ir.void(), &[ir.ptr(), ir.i64()])
}

/// `call void @loco_volatile_load(ptr p, i64 len)` before a volatile load
/// that may read shared memory (ABI.md): the runtime drops a cached copy
/// of another node's page there, so the load sees the home's bytes.
fn volatile_load(ir: &Ir, load: Value, summary: &mut Summary) {
    let pointer = ir.operand(load, 0);
    if needs_no_marking(ir, pointer) {
        return;
    }
    let t = ir.type_of(load);
    if ir.kind(t) == LLVMTypeKind::LLVMScalableVectorTypeKind {
        return;
    }
    let len = ir.store_size(t);
    if len == 0 {
        return;
    }
    ir.position_before(load);
    ir.call(
        volatile_fn(ir, "loco_volatile_load"),
        &[pointer, ir.const_i64(len)],
    );
    summary.volatiles += 1;
}

fn volatile_fn(ir: &Ir, name: &str) -> (Value, Type) {
    ir.declare(name, ir.void(), &[ir.ptr(), ir.i64()])
}

fn plain_store(
    ir: &Ir,
    store: Value,
    inline_checks: bool,
    decision: MarkDecision,
    summary: &mut Summary,
) {
    let pointer = ir.operand(store, 1);
    if needs_no_marking(ir, pointer) {
        summary.stores_skipped += 1;
        return;
    }
    if decision.kind == MarkDecision::COVERED {
        return; // counted by plan_marks
    }
    let stored_type = ir.type_of(ir.operand(store, 0));
    if ir.kind(stored_type) == LLVMTypeKind::LLVMScalableVectorTypeKind {
        warn(
            ir,
            store,
            summary,
            "store of a scalable vector: its size is unknown at compile time, so it is not marked",
        );
        return;
    }
    let len = ir.store_size(stored_type);
    if len == 0 {
        return;
    }
    let volatile = ir.is_volatile(store);
    if inline_checks {
        let range = if decision.kind == MarkDecision::MERGED {
            Range {
                offset: decision.offset,
                len: decision.len as u64,
                within_a_granule: false,
            }
        } else {
            // An aligned power-of-two store within a granule cannot cross into the next.
            let aligned = len.is_power_of_two() && len <= 4096 && ir.alignment(store) >= len;
            Range {
                offset: 0,
                len,
                within_a_granule: aligned,
            }
        };
        inline_check_and_mark(ir, store, range, volatile);
    } else {
        ir.position_after(store);
        ir.call(mark_dirty_fn(ir), &[pointer, ir.const_i64(len)]);
        if volatile {
            ir.call(
                volatile_fn(ir, "loco_volatile_store"),
                &[pointer, ir.const_i64(len)],
            );
        }
    }
    summary.stores += 1;
    if volatile {
        summary.volatiles += 1;
    }
}

/// The bytes marked after a store: `len` from its address + `offset`
/// (more than its own when stores merged into it), and whether they are
/// known to lie in one 4 KiB granule (one home byte).
struct Range {
    offset: i64,
    len: u64,
    within_a_granule: bool,
}

/// After a plain store, the inline check and marking of ABI.md for the
/// `len` bytes at `p` (the store's address + `offset`):
///
/// ```text
/// head:        store v, p0 ; span = load @__loco_mark_span ; br span != 0, window, cont
/// window:      [p = gep i8 p0, offset] ; a = ptrtoint p ; br (a - BASE) <u span, home, cont
/// home:        h = load atomic i8 ((a >> 12) + HOME_SHADOW_OFFSET) monotonic
///              [unless within one granule:
///               h &= load atomic i8 (((a + len - 1) >> 12) + HOME_SHADOW_OFFSET) monotonic]
///              br h == 0, mark, cont
/// mark:        len <= 8:         br (a & 7) + len <= 8, mark.bits, mark.slow
///              len 16, 32, 64:   br (a & (len - 1)) == 0, mark.bits, mark.slow
///              other:            call loco_mark_dirty(p, len) ; then as mark.page
/// mark.bits:   len <= 8: atomicrmw or (a >> 3), ((1 << len) - 1) << (a & 7) release
///              wider:    atomicrmw or (a >> 3), all ones (i16, i32, i64) release
///              br mark.page
/// mark.slow:   call loco_mark_dirty(p, len) ; br mark.page
/// mark.page:   store atomic i8 1, (a >> 12) release
///              [volatile store: call loco_volatile_store(p, len)] ; br cont
/// cont:        the rest of the original block
/// ```
///
/// Vectorised loops store 16 to 64 bytes at a time; aligned to their size,
/// their bits are whole, aligned bitmap bytes, set by one OR of that width.
///
/// A volatile store skips the `home` test: its `loco_volatile_store` call
/// comes whatever the page. So does a range longer than a granule (it may
/// span more than two): `loco_mark_dirty` marks it, skipping home granules.
fn inline_check_and_mark(ir: &Ir, store: Value, range: Range, volatile: bool) {
    let len = range.len;
    let head = ir.block_of(store);
    let cont = ir.split_after(store);
    let mark = ir.block_after(head, c"loco.mark");

    ir.position_at_end(head);
    // First whether anything is marked at all (nothing is on one node):
    // the address is computed only past this test.
    let span = ir.load_invariant_i64(ir.i64_global(MARK_SPAN));
    let marking = ir.icmp(LLVMIntPredicate::LLVMIntNE, span, ir.const_i64(0));
    let window = ir.block_after(head, c"loco.window");
    ir.cond_br(marking, window, cont);
    ir.position_at_end(window);
    // Read after the split, which may have rebuilt a phi the pointer was.
    let pointer = ir.byte_offset(ir.operand(store, 1), range.offset);
    let addr = ir.ptr_to_int(pointer, c"loco.addr");
    let offset = ir.sub(addr, ir.const_i64(REGION_BASE), c"loco.off");
    let in_region = ir.icmp(LLVMIntPredicate::LLVMIntULT, offset, span);
    if volatile || len > 4096 {
        ir.cond_br(in_region, mark, cont);
    } else {
        let home = ir.block_after(window, c"loco.home");
        ir.cond_br(in_region, home, cont);
        ir.position_at_end(home);
        let last = (!range.within_a_granule).then(|| ir.add(addr, ir.const_i64(len - 1)));
        let not_home = not_home_here(ir, addr, last);
        ir.cond_br(not_home, mark, cont);
    }

    ir.position_at_end(mark);
    let page = if matches!(len, 1..=8 | 16 | 32 | 64) {
        let bits = ir.block_after(mark, c"loco.mark.bits");
        let slow = ir.block_after(bits, c"loco.mark.slow");
        let page = ir.block_after(slow, c"loco.mark.page");
        let first_bit = ir.and(addr, ir.const_i64(7));
        let fits = if len <= 8 {
            let end_bit = ir.add(first_bit, ir.const_i64(len));
            ir.icmp(LLVMIntPredicate::LLVMIntULE, end_bit, ir.const_i64(8))
        } else {
            let misalignment = ir.and(addr, ir.const_i64(len - 1));
            ir.icmp(LLVMIntPredicate::LLVMIntEQ, misalignment, ir.const_i64(0))
        };
        ir.cond_br(fits, bits, slow);

        ir.position_at_end(bits);
        let bitmap_byte = ir.int_to_ptr(ir.lshr(addr, ir.const_i64(3)), ir.ptr());
        let mask = if len <= 8 {
            let mask = ir.shl(ir.const_i64((1u64 << len) - 1), first_bit);
            ir.zext_or_trunc(mask, ir.i8())
        } else {
            ir.all_ones(ir.int(len as u32))
        };
        ir.atomic_or_release(bitmap_byte, mask);
        ir.br(page);

        ir.position_at_end(slow);
        ir.call(mark_dirty_fn(ir), &[pointer, ir.const_i64(len)]);
        ir.br(page);
        page
    } else {
        ir.call(mark_dirty_fn(ir), &[pointer, ir.const_i64(len)]);
        mark
    };

    ir.position_at_end(page);
    let summary_byte = ir.int_to_ptr(ir.lshr(addr, ir.const_i64(12)), ir.ptr());
    ir.store_byte_release(ir.const_i8(1), summary_byte);
    if volatile {
        // A volatile store publishes itself (ABI.md): the runtime sends this
        // node's writes to the page home now, not at the next release.
        ir.call(
            volatile_fn(ir, "loco_volatile_store"),
            &[pointer, ir.const_i64(len)],
        );
    }
    ir.br(cont);
}

/// `load atomic i8 ((addr >> 12) + HOME_SHADOW_OFFSET) monotonic == 0`
/// (and the same of `last`, if given: ANDed): whether this node is not
/// home to the page of `addr` (an `i64` in the shared window), or of
/// `last`, so that a store there must be marked. Read after the store: a
/// page can only become home here by a fault of that store (a missing page
/// installed as home) or inside a barrier.
fn not_home_here(ir: &Ir, addr: Value, last: Option<Value>) -> Value {
    let home_byte = |a: Value| {
        let page = ir.lshr(a, ir.const_i64(12));
        let at = ir.add(page, ir.const_i64(HOME_SHADOW_OFFSET));
        ir.load_byte_monotonic(ir.int_to_ptr(at, ir.ptr()))
    };
    let mut home = home_byte(addr);
    if let Some(last) = last {
        home = ir.and(home, home_byte(last));
    }
    ir.icmp(LLVMIntPredicate::LLVMIntEQ, home, ir.const_i8(0))
}

fn call_site(ir: &Ir, call: Value, summary: &mut Summary) {
    if let Some(constraints) = ir.inline_asm_constraints(call) {
        if asm_may_write_memory(&constraints) {
            warn(
                ir,
                call,
                summary,
                "inline assembly may write memory; loco-pass cannot mark what it writes \
                 (the runtime's write-protection tracking finds it unless LOCO_TRACK=0)",
            );
        }
        return;
    }
    let Some(callee) = ir.direct_callee(call) else {
        return;
    };
    let name = ir.name(callee);
    if ["llvm.memcpy", "llvm.memmove", "llvm.memset"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        mem_intrinsic(ir, call, summary);
    } else if let Some(&(_, k)) = KNOWN_WRITERS.iter().find(|(n, _)| *n == name) {
        // A program's own function of that name is not libc's.
        if ir.is_declaration(callee) {
            libc_writer_hook(ir, call, &name, k, summary);
        }
    }
}

/// Whether an inline-asm constraint string lets the assembly write memory:
/// a `memory` clobber, or an indirect (`=*m`-style) output.
fn asm_may_write_memory(constraints: &str) -> bool {
    constraints
        .split(',')
        .any(|c| c == "~{memory}" || c.starts_with("=*") || c.starts_with("=&*"))
}

/// `llvm.memcpy`/`memmove`/`memset` (and their inline and element-wise
/// variants: all have the destination first and the length third).
fn mem_intrinsic(ir: &Ir, call: Value, summary: &mut Summary) {
    let args = ir.call_args(call);
    let (dst, len) = (args[0], args[2]);
    if needs_no_marking(ir, dst) {
        return;
    }
    ir.position_after(call);
    let len = ir.zext_or_trunc(len, ir.i64());
    ir.call(mark_dirty_fn(ir), &[dst, len]);
    summary.mem_intrinsics += 1;
}

/// `call void @loco_after_NAME(<the first k arguments>, <the result>)`
/// right after the call returns.
fn libc_writer_hook(ir: &Ir, call: Value, name: &str, k: usize, summary: &mut Summary) {
    let args = ir.call_args(call);
    if args.len() < k {
        return; // an unprototyped call with too few arguments
    }
    let mut hook_args = args[..k].to_vec();
    if ir.kind(ir.type_of(call)) != LLVMTypeKind::LLVMVoidTypeKind {
        hook_args.push(call);
    }
    let types: Vec<Type> = hook_args.iter().map(|&a| ir.type_of(a)).collect();
    match ir.opcode(call) {
        LLVMOpcode::LLVMInvoke => ir.position_after_invoke(call),
        LLVMOpcode::LLVMCall => ir.position_after(call),
        _ => return, // callbr: only inline asm uses it
    }
    let hook = ir.declare(&format!("loco_after_{name}"), ir.void(), &types);
    ir.call(hook, &hook_args);
    summary.hooks += 1;
}

// ---------------------------------------------------------------- atomics

/// Bytes of an atomic's value type if the runtime takes it: 1, 2, 4 or 8
/// bytes of integer, floating point or pointer.
fn atomic_size(ir: &Ir, t: Type) -> Option<u32> {
    let scalar = matches!(
        ir.kind(t),
        LLVMTypeKind::LLVMIntegerTypeKind
            | LLVMTypeKind::LLVMPointerTypeKind
            | LLVMTypeKind::LLVMHalfTypeKind
            | LLVMTypeKind::LLVMBFloatTypeKind
            | LLVMTypeKind::LLVMFloatTypeKind
            | LLVMTypeKind::LLVMDoubleTypeKind
    );
    let size = ir.store_size(t);
    (scalar && matches!(size, 1 | 2 | 4 | 8)).then_some(size as u32)
}

/// A value as the i64 the runtime takes: its low `size` bytes, zero-extended.
fn to_i64(ir: &Ir, v: Value, size: u32) -> Value {
    let as_int = match ir.kind(ir.type_of(v)) {
        LLVMTypeKind::LLVMPointerTypeKind => return ir.ptr_to_int(v, c""),
        LLVMTypeKind::LLVMIntegerTypeKind => v,
        _ => ir.bitcast(v, ir.int(size * 8)),
    };
    ir.zext_or_trunc(as_int, ir.i64())
}

/// The runtime's i64 (its low `size` bytes) as a value of type `t`.
fn from_i64(ir: &Ir, v: Value, t: Type, size: u32) -> Value {
    match ir.kind(t) {
        LLVMTypeKind::LLVMPointerTypeKind => ir.int_to_ptr(v, t),
        LLVMTypeKind::LLVMIntegerTypeKind => ir.zext_or_trunc(v, t),
        _ => ir.bitcast(ir.zext_or_trunc(v, ir.int(size * 8)), t),
    }
}

/// An ordering as ABI.md numbers it. `unordered` (1) is not in the ABI; it
/// is weaker than monotonic, so monotonic serves.
fn ordering_arg(ir: &Ir, o: LLVMAtomicOrdering) -> Value {
    let o = match o {
        LLVMAtomicOrdering::LLVMAtomicOrderingUnordered => {
            LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic
        }
        o => o,
    };
    ir.const_i32(o as u32)
}

/// Replaces instruction `old` by `new` everywhere, `new` taking its name.
fn replace(ir: &Ir, old: Value, new: Value) {
    let name = ir.name(old);
    ir.replace_all_uses(old, new);
    ir.erase(old);
    if !name.is_empty() && ir.is_instruction(new) {
        ir.rename(new, &name);
    }
}

/// Leaves an atomic the runtime does not take as a CPU atomic, with a
/// warning. If it writes `written` (its value type), the bytes are still
/// marked after it, so that the next release sends them.
fn unsupported_atomic(ir: &Ir, i: Value, written: Option<Type>, what: &str, summary: &mut Summary) {
    warn(
        ir,
        i,
        summary,
        &format!("{what}: left as a CPU atomic, not atomic across nodes"),
    );
    if let Some(t) = written {
        let pointer = ir.operand(
            i,
            if ir.opcode(i) == LLVMOpcode::LLVMStore {
                1
            } else {
                0
            },
        );
        ir.position_after(i);
        ir.call(
            mark_dirty_fn(ir),
            &[pointer, ir.const_i64(ir.store_size(t))],
        );
    }
}

fn atomic_rmw(ir: &Ir, i: Value, summary: &mut Summary) {
    let (pointer, value) = (ir.operand(i, 0), ir.operand(i, 1));
    if needs_no_marking(ir, pointer) {
        return;
    }
    let operation = ir.rmw_operation(i);
    let Some(op) = RMW_OPERATIONS.iter().position(|o| *o == operation) else {
        let what = format!("atomicrmw {operation} is not in the LOCO runtime's ABI");
        return unsupported_atomic(ir, i, Some(ir.type_of(value)), &what, summary);
    };
    let t = ir.type_of(value);
    let Some(size) = atomic_size(ir, t) else {
        return unsupported_atomic(
            ir,
            i,
            Some(t),
            "atomicrmw of a size other than 1, 2, 4, 8",
            summary,
        );
    };
    ir.position_before(i);
    let rmw = ir.declare(
        "loco_atomic_rmw",
        ir.i64(),
        &[ir.ptr(), ir.i64(), ir.i32(), ir.i32(), ir.i32()],
    );
    let old = ir.call(
        rmw,
        &[
            pointer,
            to_i64(ir, value, size),
            ir.const_i32(op as u32),
            ir.const_i32(size),
            ordering_arg(ir, ir.ordering(i)),
        ],
    );
    replace(ir, i, from_i64(ir, old, t, size));
    summary.atomics += 1;
}

/// A thread fence (C11 `atomic_thread_fence`, C++ `std::atomic_thread_fence`,
/// `__sync_synchronize`): `loco_fence(ordering)` first, which releases
/// and/or acquires the node's shared memory as the ordering asks (ABI.md),
/// so that plain data published with relaxed atomics and fences reaches
/// threads on other nodes. The fence stays for the threads of this node.
/// A signal fence (`syncscope("singlethread")`) orders nothing between
/// threads and is left alone.
fn fence(ir: &Ir, i: Value, summary: &mut Summary) {
    // Read from the printed instruction (`fence [syncscope("..")]
    // <ordering>`): LLVM 16's LLVMGetOrdering does not know fences.
    let text = ir.instruction_text(i);
    if text.contains("syncscope(\"singlethread\")") {
        return;
    }
    let ordering = match text.split_whitespace().last() {
        Some("acquire") => LLVMAtomicOrdering::LLVMAtomicOrderingAcquire,
        Some("release") => LLVMAtomicOrdering::LLVMAtomicOrderingRelease,
        Some("acq_rel") => LLVMAtomicOrdering::LLVMAtomicOrderingAcquireRelease,
        _ => LLVMAtomicOrdering::LLVMAtomicOrderingSequentiallyConsistent,
    };
    ir.position_before(i);
    let f = ir.declare("loco_fence", ir.void(), &[ir.i32()]);
    ir.call(f, &[ordering_arg(ir, ordering)]);
    summary.atomics += 1;
}

fn cmpxchg(ir: &Ir, i: Value, summary: &mut Summary) {
    let pointer = ir.operand(i, 0);
    let (expected, desired) = (ir.operand(i, 1), ir.operand(i, 2));
    if needs_no_marking(ir, pointer) {
        return;
    }
    let t = ir.type_of(expected);
    let Some(size) = atomic_size(ir, t) else {
        return unsupported_atomic(
            ir,
            i,
            Some(t),
            "cmpxchg of a size other than 1, 2, 4, 8",
            summary,
        );
    };
    ir.position_before(i);
    let cas = ir.declare(
        "loco_atomic_cmpxchg",
        ir.i64(),
        &[ir.ptr(), ir.i64(), ir.i64(), ir.i32(), ir.i32()],
    );
    let expected64 = to_i64(ir, expected, size);
    let found64 = ir.call(
        cas,
        &[
            pointer,
            expected64,
            to_i64(ir, desired, size),
            ir.const_i32(size),
            ordering_arg(ir, ir.cmpxchg_success_ordering(i)),
        ],
    );
    // Success compares the low `size` bytes only (ABI.md).
    let low = ir.int(size * 8);
    let succeeded = ir.icmp(
        LLVMIntPredicate::LLVMIntEQ,
        ir.zext_or_trunc(found64, low),
        ir.zext_or_trunc(expected64, low),
    );
    // cmpxchg yields { T, i1 }: the value found and whether it was swapped.
    let result = ir.poison(ir.type_of(i));
    let result = ir.insert_value(result, from_i64(ir, found64, t, size), 0);
    let result = ir.insert_value(result, succeeded, 1);
    replace(ir, i, result);
    summary.atomics += 1;
}

fn atomic_load(ir: &Ir, i: Value, summary: &mut Summary) {
    let pointer = ir.operand(i, 0);
    if needs_no_marking(ir, pointer) {
        return;
    }
    let t = ir.type_of(i);
    let Some(size) = atomic_size(ir, t) else {
        return unsupported_atomic(
            ir,
            i,
            None,
            "atomic load of a size other than 1, 2, 4, 8",
            summary,
        );
    };
    ir.position_before(i);
    let load = ir.declare(
        "loco_atomic_load",
        ir.i64(),
        &[ir.ptr(), ir.i32(), ir.i32()],
    );
    let v = ir.call(
        load,
        &[
            pointer,
            ir.const_i32(size),
            ordering_arg(ir, ir.ordering(i)),
        ],
    );
    replace(ir, i, from_i64(ir, v, t, size));
    summary.atomics += 1;
}

fn atomic_store(ir: &Ir, i: Value, summary: &mut Summary) {
    let (value, pointer) = (ir.operand(i, 0), ir.operand(i, 1));
    if needs_no_marking(ir, pointer) {
        return;
    }
    let Some(size) = atomic_size(ir, ir.type_of(value)) else {
        return unsupported_atomic(
            ir,
            i,
            Some(ir.type_of(value)),
            "atomic store of a size other than 1, 2, 4, 8",
            summary,
        );
    };
    ir.position_before(i);
    let store = ir.declare(
        "loco_atomic_store",
        ir.void(),
        &[ir.ptr(), ir.i64(), ir.i32(), ir.i32()],
    );
    ir.call(
        store,
        &[
            pointer,
            to_i64(ir, value, size),
            ir.const_i32(size),
            ordering_arg(ir, ir.ordering(i)),
        ],
    );
    ir.erase(i);
    summary.atomics += 1;
}

#[cfg(test)]
mod tests {
    use super::asm_may_write_memory;

    #[test]
    fn asm_constraints_that_write_memory() {
        assert!(asm_may_write_memory("r,~{memory}"));
        assert!(asm_may_write_memory("=*m,r"));
        assert!(asm_may_write_memory("=&*m,r,~{dirflag}"));
        assert!(!asm_may_write_memory("=r,r,~{dirflag},~{fpsr},~{flags}"));
        assert!(!asm_may_write_memory("*m,r")); // an indirect input is a read
    }
}
