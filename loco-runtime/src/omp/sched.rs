//! Loop scheduling: static schedules computed by each thread on its own,
//! dynamic and guided ones claimed from a counter at node 0 with remote
//! atomics (plain atomics on node 0 itself), and `ordered` over a second
//! counter beside it. In a team spread over nodes, a node with several of
//! its threads claims dynamic chunks for all of them at once (one each) and
//! hands them out itself ([`NodeLoops`]).
//!
//! clang normalises every worksharing loop to an iteration variable; the
//! runtime hands out ranges of it. Here a loop is its first value `lb`, its
//! increment and its trip count; ranges are iteration indices `[a, b)`,
//! turned back into bounds for the compiled code.

use std::sync::Mutex;
use std::time::Duration;

use super::stats;
use super::team::{self, with_ctx, Team};
use crate::runtime::{self, fatal};

// libomp's sched_type values (kmp.h).
const STATIC_CHUNKED: i32 = 33;
const STATIC: i32 = 34;
const DYNAMIC_CHUNKED: i32 = 35;
const GUIDED_CHUNKED: i32 = 36;
const RUNTIME: i32 = 37;
const AUTO: i32 = 38;
const TRAPEZOIDAL: i32 = 39;
const STATIC_GREEDY: i32 = 40;
const STATIC_BALANCED: i32 = 41;
const GUIDED_ITERATIVE: i32 = 42;
const GUIDED_ANALYTICAL: i32 = 43;
const STATIC_STEAL: i32 = 44;
const STATIC_BALANCED_CHUNKED: i32 = 45;
const ORD_LOWER: i32 = 64;
const ORD_UPPER: i32 = 72;
const DISTRIBUTE_CHUNKED: i32 = 91;
const DISTRIBUTE: i32 = 92;
/// The monotonic / nonmonotonic modifier bits.
const MODIFIERS: i32 = (1 << 29) | (1 << 30);

/// A schedule kind with its chunk (0: unspecified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Static(u64),
    Dynamic(u64),
    Guided(u64),
    Auto,
}

impl Schedule {
    /// run-sched-var from OMP_SCHEDULE (`kind[,chunk]`), static by default.
    pub fn from_env() -> Result<Schedule, String> {
        match std::env::var("OMP_SCHEDULE") {
            Ok(text) => Schedule::parse(&text)
                .ok_or_else(|| format!("OMP_SCHEDULE={text:?}: expected static, dynamic, guided or auto, optionally ',chunk'")),
            Err(_) => Ok(Schedule::Static(0)),
        }
    }

    pub fn parse(text: &str) -> Option<Schedule> {
        let text = text.trim().to_ascii_lowercase();
        let text = text
            .strip_prefix("monotonic:")
            .or_else(|| text.strip_prefix("nonmonotonic:"))
            .unwrap_or(&text);
        let (kind, chunk) = match text.split_once(',') {
            Some((k, c)) => (k.trim(), c.trim().parse::<u64>().ok().filter(|&c| c > 0)?),
            None => (text.trim(), 0),
        };
        Some(match kind {
            "static" => Schedule::Static(chunk),
            "dynamic" => Schedule::Dynamic(chunk),
            "guided" => Schedule::Guided(chunk),
            "auto" => Schedule::Auto,
            _ => return None,
        })
    }

    /// omp_sched_t kind (1 static, 2 dynamic, 3 guided, 4 auto) and chunk.
    pub fn to_omp(self) -> (i32, i32) {
        match self {
            Schedule::Static(c) => (1, c as i32),
            Schedule::Dynamic(c) => (2, c.max(1) as i32),
            Schedule::Guided(c) => (3, c.max(1) as i32),
            Schedule::Auto => (4, 0),
        }
    }

    pub fn from_omp(kind: i32, chunk: i32) -> Schedule {
        let c = chunk.max(0) as u64;
        match kind & !(1 << 31) {
            2 => Schedule::Dynamic(c),
            3 => Schedule::Guided(c),
            4 => Schedule::Auto,
            _ => Schedule::Static(c),
        }
    }

    pub fn encode(self) -> u64 {
        let (k, c) = self.to_omp();
        (k as u64) | ((c as u32 as u64) << 8)
    }

    pub fn decode(word: u64) -> Schedule {
        Schedule::from_omp((word & 0xff) as i32, (word >> 8) as u32 as i32)
    }
}

/// Iterations of a loop from `lb` to `ub` (inclusive) by `incr`.
fn trip_count(lb: i128, ub: i128, incr: i128) -> i128 {
    if incr > 0 {
        if ub < lb {
            0
        } else {
            (ub - lb) / incr + 1
        }
    } else if incr < 0 {
        if lb < ub {
            0
        } else {
            (lb - ub) / (-incr) + 1
        }
    } else {
        fatal("a worksharing loop with a zero increment")
    }
}

/// This thread's bounds for `schedule(static[, chunk])`:
/// (last-iteration flag, lower, upper, stride), in loop-variable values.
pub fn static_bounds(
    schedtype: i32,
    lb: i128,
    ub: i128,
    incr: i128,
    chunk: i128,
) -> (bool, i128, i128, i128) {
    let (tid, size) = team::whoami();
    let (tid, m) = (tid as i128, size as i128);
    let trip = trip_count(lb, ub, incr);
    let chunked = matches!(schedtype, STATIC_CHUNKED | DISTRIBUTE_CHUNKED) && chunk > 0;
    if trip == 0 {
        return (false, lb, lb - incr, incr);
    }
    if chunked {
        let lower = lb + tid * chunk * incr;
        let upper = lower + (chunk - 1) * incr;
        let last = tid == ((trip - 1) / chunk) % m;
        return (last, lower, upper, m * chunk * incr);
    }
    let (start, count) = balanced(trip, tid, m);
    let lower = lb + start * incr;
    if count == 0 {
        // An empty range: one past the end, then the last iteration.
        let past = lb + trip * incr;
        return (false, past, past - incr, trip * incr);
    }
    (
        start + count == trip,
        lower,
        lower + (count - 1) * incr,
        trip * incr,
    )
}

/// Thread `tid`'s block of `trip` iterations over `m` threads: the first
/// `trip % m` threads get one more (libomp's balanced split).
fn balanced(trip: i128, tid: i128, m: i128) -> (i128, i128) {
    let small = trip / m;
    let extras = trip % m;
    if tid < extras {
        (tid * (small + 1), small + 1)
    } else {
        (tid * small + extras, small)
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// This thread's own chunks (`chunk` 0: one balanced block).
    Static {
        chunk: i128,
        next: i128,
    },
    Dynamic {
        chunk: i128,
        /// This thread took the last chunk: nothing is left to ask for.
        exhausted: bool,
    },
    Guided {
        chunk: i128,
    },
}

/// A thread's state in a dynamically scheduled (or ordered) loop.
#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    kind: Kind,
    lb: i128,
    incr: i128,
    trip: i128,
    /// The loop's worksharing slot at node 0 (word 0: next chunk or
    /// iteration, word 1: next ordered iteration); unused in a team of one.
    slot: u64,
    /// The barrier interval the loop is in (with `slot`, names the loop).
    epoch: u64,
    ordered: bool,
    /// Ordered loops: the iteration being run, and whether its ordered
    /// region has passed.
    iteration: i128,
    ordered_done: bool,
}

/// `__kmpc_dispatch_init_*`.
pub fn dispatch_init(schedule: i32, lb: i128, ub: i128, incr: i128, chunk: i128) {
    let (_, size) = team::whoami();
    let mut sched = schedule & !MODIFIERS;
    let ordered = (ORD_LOWER..=ORD_UPPER).contains(&sched);
    if ordered {
        // kmp_ord_static_chunked (65) .. kmp_ord_auto (70) mirror 33 .. 38.
        sched -= 32;
    }
    let team_schedule = with_ctx(|c| c.map(|c| c.team.schedule)).unwrap_or(Schedule::Static(0));
    let chunk = chunk.max(0);
    let resolved = match sched {
        RUNTIME => team_schedule,
        AUTO | STATIC | STATIC_GREEDY | STATIC_BALANCED | STATIC_BALANCED_CHUNKED | DISTRIBUTE => {
            Schedule::Static(0)
        }
        STATIC_CHUNKED | DISTRIBUTE_CHUNKED => Schedule::Static(chunk as u64),
        DYNAMIC_CHUNKED | STATIC_STEAL => Schedule::Dynamic(chunk as u64),
        GUIDED_CHUNKED | TRAPEZOIDAL | GUIDED_ITERATIVE | GUIDED_ANALYTICAL => {
            Schedule::Guided(chunk as u64)
        }
        other => fatal(&format!("unknown loop schedule {other} from compiled code")),
    };
    let kind = match resolved {
        // A team of one runs the whole loop itself.
        _ if size == 1 => Kind::Static { chunk: 0, next: 0 },
        Schedule::Static(c) => Kind::Static {
            chunk: c as i128,
            next: 0,
        },
        Schedule::Auto => Kind::Static { chunk: 0, next: 0 },
        Schedule::Dynamic(c) => Kind::Dynamic {
            chunk: (c as i128).max(1),
            exhausted: false,
        },
        Schedule::Guided(c) => Kind::Guided {
            chunk: (c as i128).max(1),
        },
    };
    // Every thread of the team makes the same choice here, so all of them
    // take the same slot.
    let needs_slot = size > 1 && (ordered || !matches!(kind, Kind::Static { .. }));
    let slot = if needs_slot { team::next_ws_slot() } else { 0 };
    let epoch = with_ctx(|c| c.map_or(0, |c| c.epoch));
    let d = Dispatch {
        kind,
        lb,
        incr,
        trip: trip_count(lb, ub, incr),
        slot,
        epoch,
        ordered,
        iteration: 0,
        ordered_done: false,
    };
    with_ctx(|c| match c {
        Some(c) => c.dispatch = Some(d),
        None => fatal("a worksharing loop outside a parallel region"),
    });
}

/// `__kmpc_dispatch_next_*`: the next range as (last, lower, upper, stride),
/// or `None` when the loop is done for this thread.
pub fn dispatch_next() -> Option<(bool, i128, i128, i128)> {
    let (tid, size) = team::whoami();
    let (tid, m) = (tid as i128, size as i128);
    let Some(mut d) = with_ctx(|c| c.and_then(|c| c.dispatch)) else {
        fatal("__kmpc_dispatch_next without __kmpc_dispatch_init")
    };
    let range = match &mut d.kind {
        Kind::Static { chunk, next } => {
            if *chunk == 0 {
                let (start, count) = balanced(d.trip, tid, m);
                let first = *next == 0;
                *next = 1;
                (first && count > 0).then_some((start, start + count))
            } else {
                let index = tid + *next * m;
                *next += 1;
                let start = index * *chunk;
                (start < d.trip).then(|| (start, (start + *chunk).min(d.trip)))
            }
        }
        Kind::Dynamic { chunk, exhausted } => {
            let team = with_ctx(|c| c.map(|c| c.team.clone())).expect("a loop in a region");
            let chunks = (d.trip + *chunk - 1) / *chunk;
            let claimed = if *exhausted {
                None
            } else if team.distributed && team.local > 1 {
                team.loops.claim(&team, d.slot, d.epoch, chunks as u64)
            } else {
                stats::count(&stats::get().dispatches, 1);
                Some(team::ws_fetch_add("dynamic schedule", d.slot, 1))
            };
            // Whoever gets the last chunk knows that none is left (a claim
            // saved: a network round trip off node 0).
            *exhausted = claimed.is_none_or(|c| c as i128 + 1 >= chunks);
            claimed
                .map(|c| c as i128 * *chunk)
                .filter(|&start| start < d.trip)
                .map(|start| (start, (start + *chunk).min(d.trip)))
        }
        Kind::Guided { chunk } => {
            let mut current = team::ws_load("guided schedule", d.slot);
            loop {
                stats::count(&stats::get().dispatches, 1);
                let start = current as i128;
                if start >= d.trip {
                    break None;
                }
                let remaining = d.trip - start;
                let size = (*chunk).max((remaining + 2 * m - 1) / (2 * m));
                let end = (start + size).min(d.trip);
                let found = team::ws_compare_swap("guided schedule", d.slot, current, end as u64);
                if found == current {
                    break Some((start, end));
                }
                current = found;
            }
        }
    };
    if let Some((start, _)) = range {
        d.iteration = start;
        d.ordered_done = false;
    }
    with_ctx(|c| {
        if let Some(c) = c {
            c.dispatch = Some(d);
        }
    });
    range.map(|(a, b)| {
        (
            b == d.trip,
            d.lb + a * d.incr,
            d.lb + (b - 1) * d.incr,
            d.incr,
        )
    })
}

/// The dynamic loops of this node's part of a team spread over nodes: each
/// claim at node 0 takes one chunk per thread of the node; the claiming
/// thread runs the first, the node's others take the rest from here, and
/// once node 0 has none left nobody here asks again.
#[derive(Default)]
pub struct NodeLoops {
    state: Mutex<Vec<NodeLoop>>,
}

struct NodeLoop {
    slot: u64,
    epoch: u64,
    /// Chunks claimed and not handed out yet: `next..end`.
    next: u64,
    end: u64,
    /// A thread of this node is claiming more at node 0.
    claiming: bool,
    /// Node 0 has handed out every chunk.
    exhausted: bool,
}

impl NodeLoops {
    /// The next chunk of the loop at worksharing `slot` in barrier
    /// interval `epoch` (`chunks` chunks in all) for a thread of `team`'s
    /// node; None when there is none left.
    fn claim(&self, team: &Team, slot: u64, epoch: u64, chunks: u64) -> Option<u64> {
        let batch = u64::from(team.local);
        let mut s = self.state.lock().unwrap();
        // A thread in interval `epoch` has passed the barrier ending every
        // earlier one, with all of this node's threads: their loops are over.
        s.retain(|l| l.epoch >= epoch);
        loop {
            let at = match s.iter().position(|l| l.slot == slot && l.epoch == epoch) {
                Some(at) => at,
                None => {
                    s.push(NodeLoop {
                        slot,
                        epoch,
                        next: 0,
                        end: 0,
                        claiming: false,
                        exhausted: false,
                    });
                    s.len() - 1
                }
            };
            let l = &mut s[at];
            if l.next < l.end {
                l.next += 1;
                return Some(l.next - 1);
            }
            if l.exhausted {
                return None;
            }
            if !l.claiming {
                l.claiming = true;
                drop(s);
                stats::count(&stats::get().dispatches, 1);
                let first = team::ws_fetch_add("dynamic schedule", slot, batch);
                s = self.state.lock().unwrap();
                // Still there: only loops of earlier intervals are dropped.
                let l = s
                    .iter_mut()
                    .find(|l| l.slot == slot && l.epoch == epoch)
                    .expect("a loop being claimed stays listed");
                l.claiming = false;
                l.next = first.saturating_add(1).min(chunks);
                l.end = first.saturating_add(batch).min(chunks);
                l.exhausted = first.saturating_add(batch) >= chunks;
                drop(s);
                team.signal.notify();
                return (first < chunks).then_some(first);
            }
            // Another thread is claiming: wait for what it brings.
            let seen = team.signal.seq();
            drop(s);
            super::wait::wait_until(&team.signal, || team.signal.seq() != seen);
            s = self.state.lock().unwrap();
        }
    }
}

/// The ordered counter of the calling thread's loop, and its iteration.
fn ordered_state() -> Option<(u64, i128, bool)> {
    let (_, size) = team::whoami();
    if size == 1 {
        return None;
    }
    with_ctx(|c| {
        c.and_then(|c| c.dispatch)
            .filter(|d| d.ordered)
            .map(|d| (d.slot + 8, d.iteration, d.ordered_done))
    })
}

/// Whether it is `iteration`'s turn on `counter` now.
fn is_turn(counter: u64, iteration: i128) -> bool {
    let next = team::ws_load("ordered", counter) as i128;
    if next > iteration {
        fatal("ordered: this iteration's turn has already passed (an iteration ran two ordered regions?)");
    }
    next == iteration
}

/// Waits until every earlier iteration has passed its ordered region.
fn wait_turn(counter: u64, iteration: i128) {
    let Some(team) = with_ctx(|c| c.map(|c| c.team.clone())) else {
        return;
    };
    if !team.distributed {
        // Every turn is passed on this node, which notifies the team.
        super::wait::wait_until(&team.signal, || is_turn(counter, iteration));
        return;
    }
    // Turns passed on other nodes notify nobody here: poll, for the spin
    // time, then with naps growing to 200 µs.
    let start = std::time::Instant::now();
    let mut pause = 1u64;
    while !is_turn(counter, iteration) {
        if start.elapsed() < super::wait::spin_time() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(pause));
            pause = (pause * 2).min(200);
        }
    }
}

/// `__kmpc_ordered`: waits for this iteration's turn, then acquires.
pub fn ordered_begin() {
    if let Some((counter, iteration, _)) = ordered_state() {
        let t = std::time::Instant::now();
        wait_turn(counter, iteration);
        team::acquire(runtime::get());
        stats::count(&stats::get().ordered_wait_ns, t.elapsed().as_nanos() as u64);
    }
}

/// `__kmpc_end_ordered`: releases, then passes the turn on.
pub fn ordered_end() {
    if let Some((counter, _, _)) = ordered_state() {
        pass_turn(counter);
        with_ctx(|c| {
            if let Some(d) = c.and_then(|c| c.dispatch.as_mut()) {
                d.ordered_done = true;
            }
        });
    }
}

fn pass_turn(counter: u64) {
    team::release(runtime::get());
    team::ws_fetch_add("ordered", counter, 1);
    with_ctx(|c| {
        if let Some(c) = c {
            c.team.signal.notify();
        }
    });
}

/// `__kmpc_dispatch_fini_*`: the end of one iteration of an ordered loop.
/// An iteration that skipped its ordered region still takes its turn, so
/// that later iterations are not kept waiting.
pub fn dispatch_fini() {
    if let Some((counter, iteration, done)) = ordered_state() {
        if !done {
            wait_turn(counter, iteration);
            pass_turn(counter);
        }
    }
    with_ctx(|c| {
        if let Some(d) = c.and_then(|c| c.dispatch.as_mut()) {
            d.iteration += 1;
            d.ordered_done = false;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_split_covers_every_iteration_once() {
        for trip in 0..40 {
            for m in 1..9 {
                let mut next = 0;
                for tid in 0..m {
                    let (start, count) = balanced(trip, tid, m);
                    assert_eq!(start, next, "trip {trip} m {m} tid {tid}");
                    next += count;
                }
                assert_eq!(next, trip);
            }
        }
    }

    #[test]
    fn schedules_parse_like_omp_schedule() {
        assert_eq!(Schedule::parse("dynamic,4"), Some(Schedule::Dynamic(4)));
        assert_eq!(Schedule::parse(" Guided "), Some(Schedule::Guided(0)));
        assert_eq!(
            Schedule::parse("nonmonotonic:dynamic"),
            Some(Schedule::Dynamic(0))
        );
        assert_eq!(Schedule::parse("static,0"), None);
        assert_eq!(Schedule::parse("fast"), None);
        for s in [
            Schedule::Static(0),
            Schedule::Static(7),
            Schedule::Dynamic(3),
            Schedule::Guided(1),
            Schedule::Auto,
        ] {
            let back = Schedule::decode(s.encode());
            assert_eq!(back.to_omp(), s.to_omp());
        }
    }

    #[test]
    fn trip_counts_in_both_directions() {
        assert_eq!(trip_count(0, 9, 1), 10);
        assert_eq!(trip_count(0, 9, 3), 4);
        assert_eq!(trip_count(9, 0, -1), 10);
        assert_eq!(trip_count(5, 4, 1), 0);
        assert_eq!(trip_count(4, 5, -1), 0);
    }
}
