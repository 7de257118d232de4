//! What the OpenMP side of this node did (LOCO_STATS prints it at exit).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct OmpStats {
    pub forks: AtomicU64,
    /// Implicit tasks this node ran: one per thread of this node per
    /// parallel region (teams of one included; serialized regions, such
    /// as `if(0)` ones, not).
    pub threads: AtomicU64,
    /// Team barriers this node took part in (once per barrier, not per thread).
    pub barriers: AtomicU64,
    /// Time this node's threads waited in them, summed over threads.
    pub barrier_ns: AtomicU64,
    pub lock_takes: AtomicU64,
    /// Times the lock word at node 0 had to be taken (the rest were
    /// hand-overs inside this node).
    pub lock_remote_takes: AtomicU64,
    pub lock_wait_ns: AtomicU64,
    /// Remote operations of dynamic and guided loops.
    pub dispatches: AtomicU64,
    pub ordered_wait_ns: AtomicU64,
    /// Reductions across nodes this node took part in: through node 0
    /// (reduce.rs), and under the reduction's lock (sizes unknown).
    pub reductions_gathered: AtomicU64,
    pub reductions_locked: AtomicU64,
}

static STATS: OmpStats = OmpStats {
    forks: AtomicU64::new(0),
    threads: AtomicU64::new(0),
    barriers: AtomicU64::new(0),
    barrier_ns: AtomicU64::new(0),
    lock_takes: AtomicU64::new(0),
    lock_remote_takes: AtomicU64::new(0),
    lock_wait_ns: AtomicU64::new(0),
    dispatches: AtomicU64::new(0),
    ordered_wait_ns: AtomicU64::new(0),
    reductions_gathered: AtomicU64::new(0),
    reductions_locked: AtomicU64::new(0),
};

pub fn get() -> &'static OmpStats {
    &STATS
}

pub fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
