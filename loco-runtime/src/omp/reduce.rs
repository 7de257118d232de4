//! Reductions: `__kmpc_reduce`, `__kmpc_reduce_nowait` and their ends,
//! and `loco_reduce{,_nowait}`, what loco-pass makes of the first two when
//! it can tell the variables' sizes (loco-pass/ABI.md, "reductions").
//!
//! clang's protocol: every thread of the team calls the entry with
//! `reduce_data`, a list of pointers to its private copies, and
//! `reduce_func(lhs_list, rhs_list)`, which folds one list into another;
//! a thread that gets 1 back then folds its private copies into the shared
//! ("original") variables itself and calls the end entry; one that gets 0
//! does nothing more. (2, atomics instead of a lock, is never returned.)
//!
//! - A team on one node (every team of a one-node cluster): every thread
//!   combines its own part under the reduction's lock, libomp's critical
//!   method (no thread waits for another).
//! - A team across nodes, sizes known (`loco_reduce*`): each node's
//!   threads fold their parts together first (team.rs, `reduce_locally`);
//!   the thread of each other node that did sends the node's result, the
//!   bytes behind each pointer, to node 0 in one message; node 0's folding
//!   thread waits for those, folds them into its own private copies in node
//!   order, and is the only thread of the team that gets 1. The original
//!   variables (usually on main's stack, homed at node 0) are combined
//!   into once, by one thread, with no lock: one network message per node
//!   and the barrier the construct has anyway.
//! - A team across nodes, sizes unknown (`__kmpc_reduce*` called by code
//!   loco-pass did not rewrite): each node's threads fold their parts
//!   together, then the thread that did takes the reduction's lock and
//!   gets 1; one lock hand-over, and the original's page, per node.
//!
//! The message: node 0 holds an area per other node (team.rs,
//! `REDUCE_BASE`): flag words, then room for variables. The reductions
//! between two barriers take consecutive flags and consecutive ranges of
//! the room (`team::next_reduce_slot`), each variable at a multiple of 64
//! bytes. A node writes its variables and then sets the reduction's flag,
//! as two runs of one scatter: the transport applies runs in order, and
//! each run as a write of its own (tcp: one serving thread copies them one
//! after the other; RDMA: writes on one queue pair are placed in order), so
//! node 0, once it reads the flag set (an acquire load), reads every byte
//! of the variables. Node 0 clears the flag once it has folded them. Flags
//! and variables never share bytes (a variable left from an earlier
//! reduction could read as a set flag), and both are written again only
//! after a barrier, which node 0 reaches after reading them.
//!
//! Why not a gathering barrier (`Transport::barrier_gather`) instead: it
//! costs a global barrier (benches/omp, 2 nodes over tcp: ~63 µs, the
//! `barrier` row) where the scatter costs one round trip (~16 µs, the
//! `atomic` row), on top of the barrier the construct takes anyway; and
//! nodes without a thread of the team, which take part in every global
//! barrier, would have to be told of it.

use std::cell::Cell;
use std::ffi::c_void;
use std::time::{Duration, Instant};

use loco_rdma::Run;

use super::team::{self, omp, whoami, Combiner};
use super::{locks, stats};
use crate::runtime::{self, fatal};

type Ident = *mut c_void;

/// Each variable's start in a node's room: no reduction variable needs
/// more alignment than a cache line (the widest vector loads a combiner
/// uses).
const VARIABLE_ALIGN: u64 = 64;
/// The flag of a reduction whose variables have arrived.
const FULL: u64 = 1;

thread_local! {
    /// Whether this thread holds a reduction's lock (taken in the reduce
    /// entry, given back in the end entry).
    static HOLDS_LOCK: Cell<bool> = const { Cell::new(false) };
}

// --- the lock-based reduction (libomp's ABI) ------------------------------

/// libomp's entry, for code loco-pass did not rewrite (see the module
/// comment).
///
/// # Safety
/// As libomp's: `data` lists the calling thread's private copies and
/// `combine` folds two such lists; every thread of the team calls it at
/// the same construct.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_reduce_nowait(
    _loc: Ident,
    _gtid: i32,
    _vars: i32,
    _size: usize,
    data: *mut c_void,
    combine: Option<Combiner>,
    lock: *mut c_void,
) -> i32 {
    if whoami().1 == 1 {
        return 1;
    }
    // SAFETY: the caller's contract, passed on.
    unsafe { under_lock(data, combine, lock, true) }
}

/// A reduction's entry in a team of more than one thread, combining under
/// the lock. Across nodes: the node's threads fold their parts together,
/// then the one that did takes the lock (returns 1); with `wait_for_fold`
/// false the others return 0 at once, and the caller then keeps `data`
/// alive until a barrier the folding thread takes part in. On one node:
/// takes the lock (returns 1).
///
/// # Safety
/// As `__kmpc_reduce_nowait`.
unsafe fn under_lock(
    data: *mut c_void,
    combine: Option<Combiner>,
    lock: *mut c_void,
    wait_for_fold: bool,
) -> i32 {
    let combine = combiner(combine);
    if team::distributed() {
        // SAFETY: data and combine are what the compiled code passed us.
        if !unsafe { team::reduce_locally(data, combine, wait_for_fold) } {
            return 0;
        }
        stats::count(&stats::get().reductions_locked, 1);
    }
    // The lock (one for every reduction, in clang) also keeps this combine
    // apart from that of an earlier nowait reduction.
    locks::lock(lock as u64, false, true);
    HOLDS_LOCK.with(|h| h.set(true));
    1
}

fn combiner(combine: Option<Combiner>) -> Combiner {
    combine.unwrap_or_else(|| fatal("__kmpc_reduce without a combiner"))
}

#[no_mangle]
pub extern "C" fn __kmpc_end_reduce_nowait(_loc: Ident, _gtid: i32, lock: *mut c_void) {
    if HOLDS_LOCK.with(|h| h.replace(false)) {
        locks::unlock(lock as u64, false);
    }
}

/// As `__kmpc_reduce_nowait`, followed by a barrier: threads that get 1
/// take it in `__kmpc_end_reduce`, the others here, straight away: their
/// private copies stay alive while they wait in it, until their node's
/// folding thread, which folds them first, arrives.
///
/// # Safety
/// As `__kmpc_reduce_nowait`.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_reduce(
    _loc: Ident,
    _gtid: i32,
    _vars: i32,
    _size: usize,
    data: *mut c_void,
    combine: Option<Combiner>,
    lock: *mut c_void,
) -> i32 {
    if whoami().1 == 1 {
        return 1;
    }
    // SAFETY: the caller's contract (the compiler's reduction arguments).
    let combiner = unsafe { under_lock(data, combine, lock, false) };
    if combiner == 0 {
        team::barrier();
    }
    combiner
}

#[no_mangle]
pub extern "C" fn __kmpc_end_reduce(loc: Ident, gtid: i32, lock: *mut c_void) {
    __kmpc_end_reduce_nowait(loc, gtid, lock);
    team::barrier();
}

// --- the gathered reduction (loco-pass's rewrite) --------------------------

/// Where each variable of a reduction goes in a node's room, from where
/// the reduction's range starts, and the bytes the range takes.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    sizes: Vec<u64>,
    offsets: Vec<u64>,
    bytes: u64,
}

/// The layout of variables of these sizes; None when they do not fit in
/// a node's room (the lock-based path then serves the reduction).
fn layout(sizes: &[u64]) -> Option<Layout> {
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut end = 0u64;
    for &size in sizes {
        offsets.push(end);
        end = end.checked_add(size.checked_next_multiple_of(VARIABLE_ALIGN)?)?;
    }
    (end <= team::REDUCE_DATA).then(|| Layout {
        sizes: sizes.to_vec(),
        offsets,
        bytes: end,
    })
}

/// The layout a gathered reduction of this call uses, if it is one: a team
/// spanning nodes, and variables that fit in a node's room at node 0.
///
/// # Safety
/// `sizes` is null or points to `list_bytes / 8` sizes.
unsafe fn gathered_layout(list_bytes: usize, sizes: *const i64) -> Option<Layout> {
    if sizes.is_null() || whoami().1 == 1 || !team::distributed() {
        return None;
    }
    let count = list_bytes / std::mem::size_of::<*mut c_void>();
    // SAFETY: loco-pass passes a constant array of one size per entry.
    let sizes = unsafe { std::slice::from_raw_parts(sizes, count) };
    let sizes: Option<Vec<u64>> = sizes.iter().map(|&s| u64::try_from(s).ok()).collect();
    layout(&sizes?)
}

/// `__kmpc_reduce_nowait` as loco-pass rewrites it: its arguments and
/// `sizes`, the bytes behind each pointer of `data`.
///
/// # Safety
/// As `__kmpc_reduce_nowait`; `sizes` points to `size / 8` sizes, entry k
/// the bytes of the variable `data[k]` points to.
#[no_mangle]
pub unsafe extern "C" fn loco_reduce_nowait(
    loc: Ident,
    gtid: i32,
    vars: i32,
    size: usize,
    data: *mut c_void,
    combine: Option<Combiner>,
    lock: *mut c_void,
    sizes: *const i64,
) -> i32 {
    // SAFETY: the caller's contract.
    match unsafe { gathered_layout(size, sizes) } {
        // SAFETY: the caller's contract.
        Some(layout) => unsafe { gather(data, combiner(combine), &layout, true) },
        // SAFETY: the caller's contract.
        None => unsafe { __kmpc_reduce_nowait(loc, gtid, vars, size, data, combine, lock) },
    }
}

/// `__kmpc_reduce` as loco-pass rewrites it (see `loco_reduce_nowait`).
///
/// # Safety
/// As `loco_reduce_nowait`.
#[no_mangle]
pub unsafe extern "C" fn loco_reduce(
    loc: Ident,
    gtid: i32,
    vars: i32,
    size: usize,
    data: *mut c_void,
    combine: Option<Combiner>,
    lock: *mut c_void,
    sizes: *const i64,
) -> i32 {
    // SAFETY: the caller's contract.
    match unsafe { gathered_layout(size, sizes) } {
        Some(layout) => {
            // SAFETY: the caller's contract.
            let last = unsafe { gather(data, combiner(combine), &layout, false) };
            if last == 0 {
                // The construct's barrier, which the thread that got 1
                // takes in __kmpc_end_reduce.
                team::barrier();
            }
            last
        }
        // SAFETY: the caller's contract.
        None => unsafe { __kmpc_reduce(loc, gtid, vars, size, data, combine, lock) },
    }
}

/// A reduction across nodes through node 0: returns 1 in node 0's folding
/// thread once it holds the team's result in its private copies, 0 in
/// every other thread. With `nowait` false, threads that get 0 must take a
/// barrier before their private copies go (their node's folding thread
/// reads them first).
///
/// # Safety
/// `data` lists the calling thread's private copies, entry k readable for
/// `layout.sizes[k]` bytes; `combine` folds two such lists.
unsafe fn gather(data: *mut c_void, combine: Combiner, layout: &Layout, nowait: bool) -> i32 {
    // Every thread, before the local fold: all of them count the reduction.
    let slot = Slot::next(layout);
    // SAFETY: the caller's contract.
    if !unsafe { team::reduce_locally(data, combine, nowait) } {
        return 0;
    }
    stats::count(&stats::get().reductions_gathered, 1);
    let rt = runtime::get();
    if rt.rank != 0 {
        // SAFETY: the caller's contract; this thread's copies hold the node's result.
        unsafe { send(rt, slot, data, layout) };
        return 0;
    }
    let team_size = whoami().1;
    for &node in &rt.compute[1..] {
        // Nodes without a thread of the team take no part.
        if team::share(rt, team_size, node).1 > 0 {
            // SAFETY: the caller's contract.
            unsafe { fold_from(node, slot, data, combine, layout) };
        }
    }
    1
}

/// Where a reduction's part from a node goes in node 0's control block.
#[derive(Clone, Copy)]
struct Slot {
    /// The reduction's flag and the start of its variables, in a node's area.
    flag: u64,
    variables: u64,
}

impl Slot {
    /// The calling thread's next reduction's slot (every thread of the team
    /// calls this at every gathered reduction).
    fn next(layout: &Layout) -> Slot {
        let (index, offset) = team::next_reduce_slot(layout.bytes);
        Slot {
            flag: index * 8,
            variables: team::REDUCE_FLAGS * 8 + offset,
        }
    }

    /// (flag, variables) of `node`'s part, as offsets of node 0's control block.
    fn of(self, node: usize) -> (u64, u64) {
        let area = team::REDUCE_BASE + (node as u64 - 1) * team::REDUCE_AREA;
        (area + self.flag, area + self.variables)
    }
}

/// Sends this node's result (the variables `data` lists) to its slot at
/// node 0: the variables, then the flag, in one scatter.
///
/// # Safety
/// As `gather`.
unsafe fn send(rt: &runtime::Runtime, slot: Slot, data: *mut c_void, layout: &Layout) {
    let mut bytes = vec![0u8; layout.bytes as usize];
    let variables = data.cast::<*const u8>();
    for (k, (&size, &offset)) in layout.sizes.iter().zip(&layout.offsets).enumerate() {
        let to = &mut bytes[offset as usize..(offset + size) as usize];
        // SAFETY: entry k of `data` points to a variable of `size` bytes
        // (the caller's contract); `to` is that many bytes of our buffer.
        unsafe {
            let from = variables.add(k).read();
            std::ptr::copy_nonoverlapping(from, to.as_mut_ptr(), to.len());
        }
    }
    let (flag, variables) = slot.of(rt.rank);
    let runs = [
        Run {
            offset: variables,
            data: &bytes,
        },
        Run {
            offset: flag,
            data: &FULL.to_le_bytes(),
        },
    ];
    rt.transport
        .scatter(0, omp().control, &runs)
        .unwrap_or_else(|e| fatal(&format!("reduction: sending this node's part: {e}")));
}

/// Node 0: waits for `node`'s part of the reduction in slot `slot`, folds
/// it into the variables `data` lists, and frees the slot.
///
/// # Safety
/// As `gather`.
unsafe fn fold_from(
    node: usize,
    slot: Slot,
    data: *mut c_void,
    combine: Combiner,
    layout: &Layout,
) {
    let mem = omp().control_mem();
    let (at, variables) = slot.of(node);
    let flag = || {
        mem.load_u64(at)
            .unwrap_or_else(|e| fatal(&format!("reduction: node {node}'s flag: {e}")))
    };
    // Other nodes' writes notify nobody here: poll, yielding the CPU for
    // the spin time, then with naps growing to 200 µs (as an ordered turn
    // passed on another node is waited for).
    let start = Instant::now();
    let mut pause = 1u64;
    while flag() != FULL {
        if start.elapsed() < super::wait::spin_time() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(pause));
            pause = (pause * 2).min(200);
        }
    }
    let base = mem.as_ptr() as usize + variables as usize;
    let mut sources: Vec<*mut c_void> = layout
        .offsets
        .iter()
        .map(|&offset| (base + offset as usize) as *mut c_void)
        .collect();
    // SAFETY: `sources` lists `node`'s variables in node 0's own control
    // block, each `layout.sizes[k]` bytes, all written before the flag that
    // was just read set (module comment), and not written again before
    // the next barrier; `data` and `combine` are the caller's.
    unsafe { combine(data, sources.as_mut_ptr().cast()) };
    // A CPU atomic on node 0's own memory: the other nodes only ever write
    // the flags (`send`), never update them with transport atomics, and
    // `node` writes this one again only after the next barrier.
    let found = mem
        .compare_swap(at, FULL, 0)
        .unwrap_or_else(|e| fatal(&format!("reduction: node {node}'s flag: {e}")));
    if found != FULL {
        fatal(&format!(
            "reduction: node {node}'s flag changed while node 0 read its part (to {found})"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::{layout, Layout};
    use crate::omp::team::REDUCE_DATA;

    #[test]
    fn variables_start_on_cache_lines() {
        assert_eq!(
            layout(&[1, 4, 8, 64, 65, 16]),
            Some(Layout {
                sizes: vec![1, 4, 8, 64, 65, 16],
                offsets: vec![0, 64, 128, 192, 256, 384],
                bytes: 448,
            })
        );
    }

    #[test]
    fn variables_too_large_for_the_room_take_the_lock() {
        assert!(layout(&[REDUCE_DATA]).is_some());
        assert_eq!(layout(&[REDUCE_DATA + 1]), None);
        assert!(layout(&[8, REDUCE_DATA - 64]).is_some());
        assert_eq!(layout(&[8, REDUCE_DATA - 63]), None);
        assert_eq!(layout(&[8, u64::MAX - 8]), None);
    }
}
