//! Locks for critical sections, omp locks, reductions and atomics that fall
//! back to a lock: a global lock word at node 0 plus a lock per node.
//!
//! A lock is named by an address (the omp_lock_t, the critical section's
//! name variable): the same on every node, because the executable is not
//! position independent and its globals and main's stack are in the shared
//! region. Node 0 keeps a table of (address, word) entries, claimed with
//! compare-and-swap; the word holds 0 or the owning node + 1.
//!
//! A node that holds the global word hands the lock from thread to thread
//! locally, with no network traffic and no release/acquire (the threads
//! share the memory), up to `LOCAL_STREAK` times in a row while local
//! threads wait; then it releases and gives the word back, so other nodes
//! are not starved. Taking the word is followed by an acquire; giving it
//! back is preceded by a release (docs/memory-model.md: a critical section
//! or omp lock is a global lock word plus an acquire and a release).
//!
//! A thread waiting for a lock its node holds spins for the spin time and
//! then sleeps (wait.rs); each thread keeps the locks it has used in a
//! small cache of its own, so a lock's fast path takes no shared table lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::stats;
use super::team::{self, omp, LOCK_BASE, LOCK_ENTRIES};
use super::wait::{self, Signal};
use crate::runtime::{self, fatal};

/// Local hand-overs in a row before the lock goes back to the cluster.
const LOCAL_STREAK: u32 = 16;

#[derive(Default)]
struct LockState {
    /// This node holds the global word.
    node_owns: bool,
    /// A thread of this node is taking the global word.
    taking: bool,
    /// The thread (see `thread_id`) holding the lock, if any.
    holder: Option<u64>,
    /// Nest count of a nest lock.
    depth: u32,
    waiting: u32,
    streak: u32,
}

#[derive(Default)]
struct NodeLock {
    state: Mutex<LockState>,
    /// Notified at every change of `state` a waiter may wait for.
    signal: Signal,
}

pub struct Locks {
    /// Lock address -> this node's side of it and its table entry (kept
    /// for the life of the process, as the table entry at node 0 is).
    local: Mutex<HashMap<u64, (&'static NodeLock, u64)>>,
}

/// Locks a thread used last: (address, its node lock, its table entry).
const THREAD_CACHE: usize = 8;

thread_local! {
    static CACHE: RefCell<Vec<(u64, &'static NodeLock, u64)>> =
        const { RefCell::new(Vec::new()) };
}

fn thread_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id)
}

impl Locks {
    pub fn new() -> Locks {
        Locks {
            local: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: u64) -> (&'static NodeLock, u64) {
        let cached = CACHE.with(|c| {
            c.borrow()
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|&(_, node, entry)| (node, entry))
        });
        if let Some(found) = cached {
            return found;
        }
        let found = self.get_shared(key);
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() == THREAD_CACHE {
                c.remove(0);
            }
            c.push((key, found.0, found.1));
        });
        found
    }

    fn get_shared(&self, key: u64) -> (&'static NodeLock, u64) {
        if let Some(&found) = self.local.lock().unwrap().get(&key) {
            return found;
        }
        let entry = table_entry(key);
        *self
            .local
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| (Box::leak(Box::default()), entry))
    }
}

impl Default for Locks {
    fn default() -> Self {
        Locks::new()
    }
}

/// The offset of `key`'s entry in node 0's lock table, claiming one if needed.
fn table_entry(key: u64) -> u64 {
    let rt = runtime::get();
    let control = omp().control;
    let start = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52;
    for probe in 0..LOCK_ENTRIES {
        let entry = LOCK_BASE + ((start + probe) % LOCK_ENTRIES) * 16;
        let found = rt
            .transport
            .compare_swap(0, control, entry, 0, key)
            .unwrap_or_else(|e| fatal(&format!("lock table: {e}")));
        if found == 0 || found == key {
            return entry + 8;
        }
    }
    fatal(&format!(
        "more than {LOCK_ENTRIES} distinct locks and critical sections are in use"
    ))
}

fn take_global(word: u64, wait: bool) -> bool {
    let rt = runtime::get();
    if rt.nodes == 1 {
        return true;
    }
    let control = omp().control;
    let me = rt.rank as u64 + 1;
    let mut attempts = 0u32;
    loop {
        let found = rt
            .transport
            .compare_swap(0, control, word, 0, me)
            .unwrap_or_else(|e| fatal(&format!("lock: {e}")));
        if found == 0 {
            stats::count(&stats::get().lock_remote_takes, 1);
            team::acquire(rt);
            return true;
        }
        if !wait {
            return false;
        }
        // A remote attempt is a network round trip, pause enough; node 0's
        // own attempts are memory operations, so it yields first and then
        // sleeps, leaving the core to the holder. (A sleep costs at least
        // the kernel's timer slack, ~50 µs: too long for a hand-over.)
        attempts += 1;
        if rt.rank == 0 || attempts > 256 {
            if attempts < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

fn give_global(word: u64) {
    let rt = runtime::get();
    if rt.nodes == 1 {
        return;
    }
    team::release(rt);
    let me = rt.rank as u64 + 1;
    let found = rt
        .transport
        .compare_swap(0, omp().control, word, me, 0)
        .unwrap_or_else(|e| fatal(&format!("unlock: {e}")));
    if found != me {
        fatal(&format!(
            "lock word at node 0 holds {found}, expected this node ({me}): corrupted lock state"
        ));
    }
}

/// Takes the lock named `key`; with `nest`, again by its holder (nest lock).
/// With `wait` false, gives up instead of waiting. Returns whether it has it.
pub fn lock(key: u64, nest: bool, wait: bool) -> bool {
    let t = Instant::now();
    let (node, word) = omp().locks.get(key);
    let me = thread_id();
    let mut s = node.state.lock().unwrap();
    if nest && s.holder == Some(me) {
        s.depth += 1;
        return true;
    }
    s.waiting += 1;
    loop {
        if s.node_owns && s.holder.is_none() {
            break;
        }
        if !s.node_owns && !s.taking {
            s.taking = true;
            drop(s);
            let got = take_global(word, wait);
            s = node.state.lock().unwrap();
            s.taking = false;
            if got {
                s.node_owns = true;
                s.streak = 0;
                break;
            }
            node.signal.notify();
        }
        if !wait {
            s.waiting -= 1;
            return false;
        }
        // Every change this waits for is made under the state's mutex and
        // notified after: one made after this point changes the count.
        let seen = node.signal.seq();
        drop(s);
        wait::wait_until(&node.signal, || node.signal.seq() != seen);
        s = node.state.lock().unwrap();
    }
    s.waiting -= 1;
    s.holder = Some(me);
    s.depth = 1;
    drop(s);
    let st = stats::get();
    stats::count(&st.lock_takes, 1);
    stats::count(&st.lock_wait_ns, t.elapsed().as_nanos() as u64);
    true
}

/// Lets go of the lock named `key` (one level of a nest lock). Returns the
/// remaining nest depth.
pub fn unlock(key: u64, nest: bool) -> u32 {
    let (node, word) = omp().locks.get(key);
    let me = thread_id();
    let mut s = node.state.lock().unwrap();
    if s.holder != Some(me) {
        fatal(&format!(
            "unlocking lock {key:#x}, which this thread does not hold"
        ));
    }
    if nest && s.depth > 1 {
        s.depth -= 1;
        return s.depth;
    }
    s.holder = None;
    s.depth = 0;
    if s.waiting > 0 && s.streak < LOCAL_STREAK {
        // Hand over inside this node: same memory, nothing to send.
        s.streak += 1;
        drop(s);
        node.signal.notify();
        return 0;
    }
    if runtime::get().nodes > 1 {
        give_global(word);
        s.node_owns = false;
    }
    s.streak = 0;
    let waiting = s.waiting > 0;
    drop(s);
    if waiting {
        node.signal.notify();
    }
    0
}

/// Whether the calling thread holds the nest lock `key`, and how deep.
pub fn nest_depth_if_held(key: u64) -> Option<u32> {
    let (node, _) = omp().locks.get(key);
    let s = node.state.lock().unwrap();
    (s.holder == Some(thread_id())).then_some(s.depth)
}
