//! Locks for critical sections, omp locks, reductions and atomics that fall
//! back to a lock: a global lock word at node 0 plus a lock per node.
//!
//! A lock is named by an address (the omp_lock_t, the critical section's
//! name variable): the same on every node, because the executable is not
//! position independent and its globals and main's stack are in the shared
//! region. Node 0 keeps a table of (address, word) entries, claimed with
//! compare-and-swap; the word holds 0 or the owning node + 1.
//!
//! The lock stays with the node that has it until another node asks for
//! it: a node takes and lets go of a lock it owns with no network traffic
//! and no release or acquire (its threads share the memory), and hands it
//! from thread to thread locally. Another node that wants it finds the
//! owner in the word (one compare-and-swap at node 0) and asks the owner
//! (one call, `SERVICE_LOCKS`): a lock free there goes over at once (the
//! owner releases, then sets the word to the asker); one in use puts the
//! asker in the owner's line, and the owner's unlock hands it over (after
//! `LOCAL_STREAK` local hand-overs in a row at most, so nodes are not
//! starved) with a `GRANT` call that also passes on the rest of the line.
//! A contended hand-over between nodes is thus the owner's release plus
//! two round trips (the word, the grant); taking a lock nobody else uses
//! costs nothing after the first time. Taking the word is followed by an
//! acquire; giving it away is preceded by a release
//! (docs/memory-model.md: a critical section or omp lock is a global lock
//! word plus an acquire and a release).
//!
//! A thread waiting for a lock its node holds spins for the spin time and
//! then sleeps (wait.rs); each thread keeps the locks it has used in a
//! small cache of its own, so a lock's fast path takes no shared table lock.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loco_rdma::NodeId;

use super::stats;
use super::team::{self, omp, LOCK_BASE, LOCK_ENTRIES};
use super::wait::{self, Signal};
use crate::runtime::{self, fatal};

/// Local hand-overs in a row before the lock goes back to the cluster.
const LOCAL_STREAK: u32 = 16;

/// The lock service's number (`Transport::offer`).
pub const SERVICE_LOCKS: u32 = loco_rdma::SERVICE_USER + 1;

// The service's requests: kind, then the lock's key and its word's offset;
// a grant then has the nodes still in line.
const ASK: u8 = 1;
const ASK_ONCE: u8 = 2;
const GRANT: u8 = 3;
// Answers to an ask.
const GRANTED: u8 = 1;
const QUEUED: u8 = 2;
const BUSY: u8 = 3;
const NOT_MINE: u8 = 4;

#[derive(Default)]
struct LockState {
    /// This node holds the global word.
    node_owns: bool,
    /// A thread of this node is taking the global word.
    taking: bool,
    /// This node is in the owner's line: a grant will come.
    queued: bool,
    /// Grants received (a thread that asked sees whether one came since).
    grants: u64,
    /// The word came with a grant: the thread that takes the lock next
    /// acquires first.
    granted: bool,
    /// Nodes that asked for the lock while this node had it in use, in order.
    line: VecDeque<NodeId>,
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

    /// This node's side of lock `key`, if it has met the lock.
    fn find(&self, key: u64) -> Option<(&'static NodeLock, u64)> {
        self.local.lock().unwrap().get(&key).copied()
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

/// How asking for the global word went.
enum Taken {
    /// This node has the word (and has acquired), and these nodes wait
    /// for it after this one.
    Yes(Vec<NodeId>),
    /// In the owner's line: a grant will come.
    Queued,
    /// Not now (a try that found it in use).
    No,
}

/// Takes the global word of lock `key`: from nobody (a compare-and-swap at
/// node 0), or from the node that has it (asking it).
fn take_global(key: u64, word: u64, wait: bool) -> Taken {
    let rt = runtime::get();
    if rt.nodes == 1 {
        return Taken::Yes(Vec::new());
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
            return Taken::Yes(Vec::new());
        }
        if found == me {
            // Handed over to this node already; its grant is on the way.
            return Taken::Queued;
        }
        let owner = (found - 1) as NodeId;
        let kind = if wait { ASK } else { ASK_ONCE };
        let answer = rt
            .transport
            .call(owner, SERVICE_LOCKS, &request(kind, key, word, &[]))
            .unwrap_or_else(|e| fatal(&format!("asking node {owner} for a lock: {e}")));
        match answer.first() {
            Some(&GRANTED) => {
                stats::count(&stats::get().lock_remote_takes, 1);
                team::acquire(rt);
                return Taken::Yes(nodes_in(&answer[1..]));
            }
            Some(&QUEUED) => return Taken::Queued,
            Some(&BUSY) => return Taken::No,
            // It moved on meanwhile: look at the word again.
            Some(&NOT_MINE) => {
                attempts += 1;
                if attempts > 64 {
                    std::thread::sleep(Duration::from_micros(20));
                } else {
                    std::thread::yield_now();
                }
            }
            _ => fatal(&format!(
                "node {owner} answered a lock request with {answer:?}"
            )),
        }
    }
}

/// The nodes of a line, as requests and answers carry them.
fn nodes_in(bytes: &[u8]) -> Vec<NodeId> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as NodeId)
        .collect()
}

fn request(kind: u8, key: u64, word: u64, line: &[NodeId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + 4 * line.len());
    out.push(kind);
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&word.to_le_bytes());
    for &n in line {
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    out
}

/// Gives the global word of a lock this node has and does not use to
/// `to`: this node's writes go home first. Caller holds the lock's state.
fn hand_over(s: &mut LockState, word: u64, to: NodeId) {
    let rt = runtime::get();
    team::release(rt);
    let me = rt.rank as u64 + 1;
    let found = rt
        .transport
        .compare_swap(0, omp().control, word, me, to as u64 + 1)
        .unwrap_or_else(|e| fatal(&format!("handing a lock over: {e}")));
    if found != me {
        fatal(&format!(
            "lock word at node 0 holds {found}, expected this node ({me}): corrupted lock state"
        ));
    }
    s.node_owns = false;
    s.streak = 0;
}

/// The lock service: another node asks for a lock this node may have, or
/// this node is granted one it asked for.
pub fn serve(caller: NodeId, req: &[u8]) -> Result<Vec<u8>, String> {
    let word_at = |at: usize| {
        req.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| format!("a lock request of {} bytes", req.len()))
    };
    let (kind, key, word) = (req.first().copied(), word_at(1)?, word_at(9)?);
    let Some((node, _)) = omp().locks.find(key) else {
        return match kind {
            Some(GRANT) => Err(format!(
                "granted lock {key:#x}, which this node never asked for"
            )),
            _ => Ok(vec![NOT_MINE]),
        };
    };
    let mut s = node.state.lock().unwrap();
    match kind {
        Some(ASK) | Some(ASK_ONCE) => {
            if !s.node_owns {
                return Ok(vec![NOT_MINE]);
            }
            if s.holder.is_none() && s.waiting == 0 && !s.granted {
                hand_over(&mut s, word, caller);
                // The nodes in line (if any) wait for the new owner.
                let mut answer = vec![GRANTED];
                for n in s.line.drain(..).filter(|&n| n != caller) {
                    answer.extend_from_slice(&(n as u32).to_le_bytes());
                }
                drop(s);
                node.signal.notify();
                return Ok(answer);
            }
            if kind == Some(ASK_ONCE) {
                return Ok(vec![BUSY]);
            }
            if !s.line.contains(&caller) {
                s.line.push_back(caller);
            }
            Ok(vec![QUEUED])
        }
        Some(GRANT) => {
            s.node_owns = true;
            s.granted = true;
            s.queued = false;
            s.grants += 1;
            for n in nodes_in(&req[17..]) {
                if !s.line.contains(&n) {
                    s.line.push_back(n);
                }
            }
            drop(s);
            node.signal.notify();
            Ok(vec![GRANTED])
        }
        _ => Err(format!("unknown lock request {kind:?}")),
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
        if !s.node_owns && !s.taking && !s.queued {
            s.taking = true;
            let grants = s.grants;
            drop(s);
            let got = take_global(key, word, wait);
            s = node.state.lock().unwrap();
            s.taking = false;
            match got {
                Taken::Yes(line) => {
                    s.node_owns = true;
                    s.streak = 0;
                    for n in line {
                        if !s.line.contains(&n) {
                            s.line.push_back(n);
                        }
                    }
                    break;
                }
                // Unless the grant came while the answer did.
                Taken::Queued => {
                    s.queued = s.grants == grants && !s.node_owns;
                    continue;
                }
                Taken::No => node.signal.notify(),
            }
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
    let granted = std::mem::take(&mut s.granted);
    drop(s);
    if granted {
        // The word came with a grant: what its last holders wrote.
        stats::count(&stats::get().lock_remote_takes, 1);
        team::acquire(runtime::get());
    }
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
    if s.waiting > 0 && (s.streak < LOCAL_STREAK || s.line.is_empty()) {
        // Hand over inside this node: same memory, nothing to send.
        s.streak += 1;
        drop(s);
        node.signal.notify();
        return 0;
    }
    s.streak = 0;
    let Some(next) = s.line.pop_front() else {
        // Nobody else asked: the lock stays here, for nothing, until someone does.
        return 0;
    };
    hand_over(&mut s, word, next);
    let line: Vec<NodeId> = s.line.drain(..).collect();
    drop(s);
    node.signal.notify();
    runtime::get()
        .transport
        .call(next, SERVICE_LOCKS, &request(GRANT, key, word, &line))
        .unwrap_or_else(|e| fatal(&format!("granting a lock to node {next}: {e}")));
    0
}

/// Whether the calling thread holds the nest lock `key`, and how deep.
pub fn nest_depth_if_held(key: u64) -> Option<u32> {
    let (node, _) = omp().locks.get(key);
    let s = node.state.lock().unwrap();
    (s.holder == Some(thread_id())).then_some(s.depth)
}
