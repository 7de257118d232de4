//! One OpenMP team spanning every node: forking a parallel region, the
//! threads that run it, its barriers, and the worker nodes' loop.
//!
//! A team of M threads is spread over the N compute nodes in contiguous
//! blocks: the compute node of index r runs thread ids `ceil(r*M/N) ..
//! ceil((r+1)*M/N)` (node 0 always at least one, the master); memory nodes
//! run none and take part in nothing below (`runtime::serve_memory`). The
//! fork protocol, all through the transport:
//!
//! 1. node 0 releases (its serial writes go home), clears the worksharing
//!    slots, writes a fork descriptor (microtask address, captured
//!    arguments, team size) into every other node's control block, and
//!    enters a global barrier: the "go";
//! 2. every node acquires, then runs its block of threads; the executable
//!    is linked at a fixed address (loco-cc links without PIE), so the
//!    microtask and the captured pointers (into the shared region: globals,
//!    main's stack, the heap) mean the same on every node;
//! 3. the implicit barrier at the end: each node waits for its own threads,
//!    releases, and enters the "join" barrier; node 0 then acquires and
//!    goes on with the serial code, the others wait for the next go.
//!
//! A team barrier is a node-local barrier whose last arriving thread
//! releases, crosses the global barrier, and acquires (docs/memory-model.md:
//! a barrier is release + global barrier + acquire). A node that got no
//! thread of the team still takes part in the team's global barriers until
//! node 0 marks the region's end in its control block.
//!
//! Inside a node nothing blocks at once: the local barrier, the join, the
//! pool's wait for the next region and the local step of a reduction are
//! counters on atomics that waiting threads spin on for the spin time and
//! then sleep on (wait.rs). A team on one node (every team of a cluster
//! with one compute node) does no consistency work, and its worksharing
//! words, in node 0's own control block, are reached with plain atomics
//! (`ws_plain_atomics`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use loco_rdma::{MemoryRegion, RegionId};

use super::sched::Schedule;
use super::{stats, variadic};
use crate::runtime::{self, fatal, Runtime};

// The control block every node registers (same layout everywhere; the
// worksharing slots and lock table are used at node 0 only).
/// Node 0 writes the exit here, in every worker's block.
const DESC: u64 = 0;
/// Node 0 keeps the current fork's descriptor here, in its own block.
const FORK_DESC: u64 = 2048;
const DESC_WORDS: usize = 9;
const KIND_FORK: u64 = 1;
const KIND_EXIT: u64 = 2;
/// Where node 0 tells nodes without threads which global barrier ends the
/// region: `seq << 32 | barrier`. Outside the descriptor, so that the next
/// descriptor (or the exit) cannot overwrite it before they have read it.
const REGION_END: u64 = 1024;
/// Where the thread that ran a `single copyprivate` leaves the address of
/// its staged variables, at node 0, for the team's other threads
/// (copyprivate.rs). Between that construct's two barriers, so the next
/// one cannot overwrite it before every thread has read it.
pub const COPYPRIVATE: u64 = 1536;
pub const WS_BASE: u64 = 4096;
/// Worksharing constructs per barrier interval before an internal barrier.
pub const WS_SLOTS: u64 = 1024;
pub const WS_SLOT_BYTES: u64 = 64;
const WS_SET_BYTES: u64 = WS_SLOTS * WS_SLOT_BYTES;
pub const LOCK_BASE: u64 = WS_BASE + 2 * WS_SET_BYTES;
pub const LOCK_ENTRIES: u64 = 4096;
const CONTROL_BYTES: u64 = LOCK_BASE + LOCK_ENTRIES * 16;
/// Node 0 only, after the rest: one area of `REDUCE_AREA` bytes per other
/// node, where that node leaves its part of each reduction (reduce.rs):
/// `REDUCE_FLAGS` flag words, then `REDUCE_DATA` bytes of variables. The
/// other nodes' blocks end before it.
pub const REDUCE_BASE: u64 = CONTROL_BYTES.next_multiple_of(4096);
/// Reductions between two barriers that have a flag of their own (the
/// flags are apart from the variables, so no variable's bytes, left from
/// an earlier reduction, can pass for a flag that is set).
pub const REDUCE_FLAGS: u64 = 64;
/// The bytes the variables of one node's parts of the reductions between
/// two barriers may take at node 0.
pub const REDUCE_DATA: u64 = 256 << 10;
pub const REDUCE_AREA: u64 = REDUCE_FLAGS * 8 + REDUCE_DATA;

/// The OpenMP side of the runtime on this node.
pub struct Omp {
    pub control: RegionId,
    control_mem: Arc<MemoryRegion>,
    pool: Pool,
    pub icv: Icv,
    seq: AtomicU64,
    pub locks: super::locks::Locks,
    /// Node 0: how many slots of each worksharing set have been handed out
    /// since the set was last cleared (only those are cleared).
    ws_used: [AtomicU64; 2],
}

/// Internal control variables of the initial (serial) thread.
pub struct Icv {
    pub nthreads: AtomicU32,
    pub max_active_levels: AtomicU32,
    pub dynamic: AtomicU32,
    pub schedule: Mutex<Schedule>,
}

static OMP: std::sync::OnceLock<Omp> = std::sync::OnceLock::new();

/// The size of the whole team a parallel region gets: `OMP_NUM_THREADS`
/// (its first level), else, like libomp's one thread per core, that many
/// on every one of the `nodes` compute nodes.
pub(crate) fn requested_team_size(nodes: usize) -> Result<u32, String> {
    match std::env::var("OMP_NUM_THREADS") {
        Ok(v) => {
            let first = v.split(',').next().unwrap_or("").trim();
            first
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("OMP_NUM_THREADS={v:?} is not a positive number of threads"))
        }
        Err(_) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            Ok(cores * nodes as u32)
        }
    }
}

/// Registers the control block. Collective: every node calls it once, at
/// the same point of start-up (`nodes` in all, `compute` of them compute
/// nodes).
pub fn init(
    transport: &Arc<dyn loco_rdma::Transport>,
    nodes: usize,
    compute: usize,
) -> Result<(), String> {
    // Registered sizes may differ between nodes: only node 0 holds the
    // reduction areas.
    let bytes = if transport.rank() == 0 && nodes > 1 {
        REDUCE_BASE + (nodes as u64 - 1) * REDUCE_AREA
    } else {
        CONTROL_BYTES
    };
    let mem = Arc::new(
        MemoryRegion::anonymous(bytes as usize)
            .map_err(|e| format!("OpenMP control block: {e}"))?,
    );
    // Offered before the registration's barrier: no node asks another for
    // a lock before every node can answer.
    if nodes > 1 {
        transport
            .offer(super::locks::SERVICE_LOCKS, Arc::new(super::locks::serve))
            .map_err(|e| format!("the lock service: {e}"))?;
    }
    let control = transport
        .register(mem.clone())
        .map_err(|e| format!("OpenMP control block: {e}"))?;
    let nthreads = requested_team_size(compute)?;
    let omp = Omp {
        control,
        control_mem: mem,
        pool: Pool::default(),
        icv: Icv {
            nthreads: AtomicU32::new(nthreads),
            max_active_levels: AtomicU32::new(1),
            dynamic: AtomicU32::new(0),
            schedule: Mutex::new(Schedule::from_env()?),
        },
        seq: AtomicU64::new(0),
        locks: super::locks::Locks::new(),
        ws_used: [AtomicU64::new(0), AtomicU64::new(0)],
    };
    OMP.set(omp)
        .map_err(|_| "OpenMP runtime started twice".to_string())
}

impl Omp {
    /// This node's control block, for words other nodes write into it
    /// (node 0's reduction areas, reduce.rs).
    pub fn control_mem(&self) -> &MemoryRegion {
        &self.control_mem
    }
}

pub fn omp() -> &'static Omp {
    OMP.get().unwrap_or_else(|| {
        // The constructor sets it up before any program code runs.
        runtime::get();
        OMP.get().expect("the OpenMP runtime is set up at start-up")
    })
}

/// The threads of one parallel region that run on this node.
pub struct Team {
    pub size: u32,
    /// First thread id on this node.
    pub first: u32,
    /// Threads on this node.
    pub local: u32,
    /// Spans several nodes: barriers and worksharing go through node 0.
    pub distributed: bool,
    /// Nesting level of this team (1 for the outermost parallel region).
    pub level: u32,
    /// Levels with more than one thread, this one included.
    pub active_level: u32,
    /// nthreads-var inside the region (omp_get_max_threads).
    pub max_threads: u32,
    pub schedule: Schedule,
    microtask: usize,
    args: Vec<usize>,
    /// What this node's threads sleep on when they wait for each other
    /// (barrier, join, reduction, ordered turns, queued tasks), past the spin.
    pub signal: super::wait::Signal,
    barrier: LocalBarrier,
    reduction: LocalReduction,
    /// Explicit tasks queued for this node's threads (tasks.rs).
    pub tasks: super::tasks::TaskQueue,
    /// Dynamic loops' chunks claimed for this node (sched.rs).
    pub loops: super::sched::NodeLoops,
    /// Threads of this node still running the region (the join).
    running: AtomicU32,
    /// `single` constructs of this node taken so far (see `claim_single`).
    singles: AtomicU64,
    /// Tids of the enclosing teams, outermost first (omp_get_ancestor_thread_num).
    pub ancestors: Vec<(u32, u32)>,
    /// Team barriers this node has passed in the region.
    passed: AtomicU64,
    /// A team on one node: the copy list the thread that ran a `single
    /// copyprivate` publishes to the others (copyprivate.rs).
    pub copyprivate: AtomicUsize,
}

/// What one thread knows about where it is.
pub struct Ctx {
    pub team: Arc<Team>,
    pub tid: u32,
    /// Worksharing constructs met since the last barrier.
    pub ws_instance: u64,
    /// Barriers passed in this region (selects the slot set).
    pub epoch: u64,
    /// Reductions met since the last barrier, and the bytes of variables
    /// they take in a node's reduction area at node 0 (`next_reduce_slot`).
    reduce_count: u64,
    reduce_used: u64,
    /// `single` constructs this thread has met in the region.
    singles: u64,
    pub dispatch: Option<super::sched::Dispatch>,
    /// nthreads-var of this thread (omp_set_num_threads inside a region).
    pub nthreads: Option<u32>,
    outer: Option<Box<Ctx>>,
}

thread_local! {
    static CTX: RefCell<Option<Box<Ctx>>> = const { RefCell::new(None) };
    static PUSHED_THREADS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with this thread's context, if it is in a parallel region.
pub fn with_ctx<R>(f: impl FnOnce(Option<&mut Ctx>) -> R) -> R {
    CTX.with(|c| f(c.borrow_mut().as_deref_mut()))
}

/// Whether the calling thread's team spans several nodes.
pub fn distributed() -> bool {
    with_ctx(|c| c.is_some_and(|c| c.team.distributed))
}

/// (thread id, team size) of the calling thread; (0, 1) outside regions.
pub fn whoami() -> (u32, u32) {
    with_ctx(|c| c.map_or((0, 1), |c| (c.tid, c.team.size)))
}

fn enter(team: Arc<Team>, tid: u32) {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        let outer = c.take();
        *c = Some(Box::new(Ctx {
            team,
            tid,
            ws_instance: 0,
            epoch: 0,
            reduce_count: 0,
            reduce_used: 0,
            singles: 0,
            dispatch: None,
            nthreads: None,
            outer,
        }));
    });
}

fn leave() {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        let outer = c.take().and_then(|ctx| ctx.outer);
        *c = outer;
    });
}

/// `if(0)` and other serialized parallel regions: the calling thread runs
/// the region as a team of one (`__kmpc_serialized_parallel`).
pub fn enter_serialized() {
    let omp = omp();
    PUSHED_THREADS.with(|p| p.set(0));
    let (level, active, ancestors, max_threads, schedule) = with_ctx(|c| match c {
        Some(c) => {
            let mut anc = c.team.ancestors.clone();
            anc.push((c.tid, c.team.size));
            (
                c.team.level,
                c.team.active_level,
                anc,
                c.nthreads.unwrap_or(c.team.max_threads),
                c.team.schedule,
            )
        }
        None => (
            0,
            0,
            Vec::new(),
            omp.icv.nthreads.load(Ordering::Relaxed),
            *omp.icv.schedule.lock().unwrap(),
        ),
    });
    let team = Arc::new(Team::new(
        1,
        0,
        1,
        false,
        level + 1,
        active,
        max_threads,
        schedule,
        0,
        &[],
        ancestors,
    ));
    enter(team, 0);
}

/// `__kmpc_end_serialized_parallel`.
pub fn leave_serialized() {
    leave();
}

/// `num_threads(n)` for the next parallel region of this thread.
pub fn push_num_threads(n: i32) {
    PUSHED_THREADS.with(|p| p.set(n.max(0) as u32));
}

/// The share of `size` threads over `nodes` nodes of the node of index
/// `rank` among them: (first, count).
pub fn block(size: u32, nodes: usize, rank: usize) -> (u32, u32) {
    let bound = |r: usize| ((r as u64 * size as u64).div_ceil(nodes as u64)) as u32;
    let first = bound(rank);
    (first, bound(rank + 1) - first)
}

/// Node `rank`'s share of a team of `size` threads: its block among the
/// compute nodes; none for a memory node.
pub fn share(rt: &Runtime, size: u32, rank: usize) -> (u32, u32) {
    match rt.compute_index(rank) {
        Some(index) => block(size, rt.compute.len(), index),
        None => (0, 0),
    }
}

/// The fork: `__kmpc_fork_call` lands here on whichever node runs it.
pub fn fork(microtask: usize, args: &[usize]) {
    let rt = runtime::get();
    let omp = omp();
    let pushed = PUSHED_THREADS.with(|p| p.replace(0));
    let (outer_level, outer_active, ancestors, requested, max_threads) = with_ctx(|c| match c {
        Some(c) => {
            let mut anc = c.team.ancestors.clone();
            anc.push((c.tid, c.team.size));
            let nthreads = c.nthreads.unwrap_or(c.team.max_threads);
            (c.team.level, c.team.active_level, anc, nthreads, nthreads)
        }
        None => {
            let n = omp.icv.nthreads.load(Ordering::Relaxed);
            (0, 0, Vec::new(), n, n)
        }
    });
    let requested = if pushed > 0 { pushed } else { requested }.max(1);
    // Only the outermost region gets more than one thread (max-active-levels
    // is 1, as libomp's default): nested regions run as teams of one.
    let nested = outer_active >= omp.icv.max_active_levels.load(Ordering::Relaxed);
    let size = if nested { 1 } else { requested };
    let schedule = *omp.icv.schedule.lock().unwrap();
    let level = outer_level + 1;
    let active_level = outer_active + u32::from(size > 1);
    if size == 1 || rt.compute.len() == 1 {
        // A team on this node only: one thread (a nested region, which
        // `nested` makes a team of one, or num_threads(1)), or any team
        // of a cluster with one compute node.
        let team = Arc::new(Team::new(
            size,
            0,
            size,
            false,
            level,
            active_level,
            max_threads,
            schedule,
            microtask,
            args,
            ancestors,
        ));
        if size > 1 {
            clear_worksharing(omp);
        }
        run_local(rt, omp, &team);
        return;
    }
    // The whole cluster: only node 0's initial thread gets here (no active
    // region encloses it, possibly inactive ones such as if(0) regions).
    debug_assert_eq!(rt.rank, 0);
    stats::count(&stats::get().forks, 1);
    // (The barrier below releases this node's writes.)
    clear_worksharing(omp);
    let seq = omp.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let sched_word = schedule.encode();
    let mut desc = vec![
        KIND_FORK,
        seq,
        microtask as u64,
        args.len() as u64,
        size as u64,
        max_threads as u64,
        sched_word,
        level as u64,
        0,
    ];
    desc.extend(args.iter().map(|&a| a as u64));
    let bytes: Vec<u8> = desc.iter().flat_map(|w| w.to_le_bytes()).collect();
    // The workers' first touch of the shared variables the arguments point
    // to (on main's stack, which lives here) would each fetch a page that
    // this thread has just written: the pages travel with the fork.
    let carried = carried_pages(rt, args);
    // The descriptor rides on the barrier that starts the workers (one
    // exchange per node). It is also left in node 0's own block, for a
    // transport whose barriers carry no bytes: after the go, every worker
    // reads it at once. Node 0 cannot overwrite it before they have: the
    // next fork follows the join.
    omp.control_mem
        .write(FORK_DESC, &bytes)
        .unwrap_or_else(|e| fatal(&format!("writing the fork descriptor: {e}")));
    // A gathering region barrier: the workers' acquire learns every
    // node's write notices from it too, with no read of their logs.
    if let Err(e) = rt.region().barrier_carrying(&[bytes, carried].concat()) {
        fatal(&format!("barrier: {e}"));
    }
    let (first, local) = share(rt, size, 0);
    let team = Arc::new(Team::new(
        size,
        first,
        local,
        true,
        level,
        active_level,
        max_threads,
        schedule,
        microtask,
        args,
        ancestors,
    ));
    run_local(rt, omp, &team);
    // Nodes without a thread of this team are told which of the global
    // barriers they take is the join: the one after the team's barriers.
    // (A count, not a flag: an idle node may look after a team barrier
    // that node 0 has already left.)
    let join = (seq << 32) | (team.passed.load(Ordering::Relaxed) + 1);
    for &node in &rt.compute[1..] {
        if share(rt, size, node).1 == 0 {
            if let Err(e) = rt
                .transport
                .write(node, omp.control, REGION_END, &join.to_le_bytes())
            {
                fatal(&format!("ending a parallel region on node {node}: {e}"));
            }
        }
    }
    // The join: a gathering barrier of every node, as a team barrier is
    // (write notices travel with it, and pages may change homes there).
    region_barrier(rt);
}

/// Release, global barrier, acquire, with the write notices gathered in
/// the barrier (`SharedRegion::barrier`). Every node takes it at the same
/// points: team barriers and joins, including nodes without a thread in
/// the team.
fn region_barrier(rt: &Runtime) {
    flush_stdio();
    if let Err(e) = rt.region().barrier() {
        fatal(&format!("barrier: {e}"));
    }
}

impl Team {
    #[allow(clippy::too_many_arguments)]
    fn new(
        size: u32,
        first: u32,
        local: u32,
        distributed: bool,
        level: u32,
        active_level: u32,
        max_threads: u32,
        schedule: Schedule,
        microtask: usize,
        args: &[usize],
        ancestors: Vec<(u32, u32)>,
    ) -> Team {
        Team {
            size,
            first,
            local,
            distributed,
            level,
            active_level,
            max_threads,
            schedule,
            microtask,
            args: args.to_vec(),
            signal: super::wait::Signal::default(),
            barrier: LocalBarrier::default(),
            reduction: LocalReduction::new(local),
            tasks: super::tasks::TaskQueue::default(),
            loops: super::sched::NodeLoops::default(),
            running: AtomicU32::new(local),
            singles: AtomicU64::new(0),
            ancestors,
            passed: AtomicU64::new(0),
            copyprivate: AtomicUsize::new(0),
        }
    }
}

impl Team {
    /// Wakes this node's threads waiting in a barrier, to run new tasks or
    /// to see that the last ones are done.
    pub fn wake_helpers(&self) {
        self.signal.notify();
    }

    /// Whether the calling thread, meeting its next `single` construct, is
    /// the first of this node to get there (libomp's scheme: every thread
    /// meets the same constructs in the same order, so the node's count
    /// only grows, and the thread that moves it to its own count wins).
    pub fn claim_single(&self) -> bool {
        let mine = with_ctx(|c| {
            let c = c.expect("single inside a parallel region");
            c.singles += 1;
            c.singles
        });
        let seen = self.singles.load(Ordering::Acquire);
        seen < mine
            && self
                .singles
                .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// Runs this node's threads of `team` (the calling thread is the first of
/// them) and waits for all of them to finish.
fn run_local(rt: &Runtime, omp: &Omp, team: &Arc<Team>) {
    let _ = rt;
    if team.local > 1 {
        omp.pool.start(team.clone());
    }
    run_thread(team.clone(), team.first);
    super::wait::wait_until(&team.signal, || team.running.load(Ordering::Acquire) == 0);
}

/// One thread of the team: runs the microtask as thread `tid`.
fn run_thread(team: Arc<Team>, tid: u32) {
    stats::count(&stats::get().threads, 1);
    let microtask = team.microtask;
    let args = team.args.clone();
    enter(team.clone(), tid);
    super::tasks::reset_implicit_task();
    // SAFETY: microtask and args are what compiled code passed to
    // __kmpc_fork_call (on this node or, unchanged, on node 0).
    unsafe { variadic::invoke(microtask, tid as i32, &args) };
    super::tasks::drain(&team);
    super::tasks::reset_implicit_task();
    leave();
    if team.running.fetch_sub(1, Ordering::AcqRel) == 1 {
        team.signal.notify();
    }
}

/// Threads of this node beyond the first, kept between regions. Between
/// regions they spin on `generation` for the spin time, then sleep.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    /// A copy of `state.generation`, for spinning on.
    generation: AtomicU32,
    signal: super::wait::Signal,
}

#[derive(Default)]
struct PoolState {
    team: Option<Arc<Team>>,
    generation: u32,
    threads: u32,
}

impl Pool {
    fn start(&self, team: Arc<Team>) {
        let mut s = self.state.lock().unwrap();
        while s.threads < team.local - 1 {
            let index = s.threads;
            std::thread::Builder::new()
                .name(format!("loco-openmp-{}", index + 1))
                .stack_size(thread_stack_size())
                .spawn(move || pool_thread(index + 1))
                .unwrap_or_else(|e| fatal(&format!("cannot start an OpenMP thread: {e}")));
            s.threads += 1;
        }
        s.team = Some(team);
        s.generation = s.generation.wrapping_add(1);
        self.generation.store(s.generation, Ordering::Release);
        drop(s);
        self.signal.notify();
    }
}

/// Stack size of the team's threads: OMP_STACKSIZE (`N[B|K|M|G]`, K when
/// no unit is given, as OpenMP says), else 8 MiB.
fn thread_stack_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let default = 8 << 20;
        let Ok(text) = std::env::var("OMP_STACKSIZE") else {
            return default;
        };
        let text = text.trim().to_ascii_uppercase();
        let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text.as_str(), "K"),
        };
        let shift = match unit {
            "B" => 0,
            "K" | "KB" => 10,
            "M" | "MB" => 20,
            "G" | "GB" => 30,
            _ => fatal(&format!(
                "OMP_STACKSIZE={text:?}: expected a size such as 512K, 16M or 1G"
            )),
        };
        match digits.parse::<usize>() {
            Ok(n) if n > 0 => (n << shift).max(64 << 10),
            _ => fatal(&format!(
                "OMP_STACKSIZE={text:?}: expected a size such as 512K, 16M or 1G"
            )),
        }
    })
}

/// Pool thread `index` (its local index in a team: the team's first tid + index).
fn pool_thread(index: u32) {
    let pool = &omp().pool;
    let mut seen = 0;
    loop {
        super::wait::wait_until(&pool.signal, || {
            pool.generation.load(Ordering::Acquire) != seen
        });
        let team = {
            // The generation and its team together: a thread outside the
            // last team may have missed generations, and must not run one
            // team twice.
            let s = pool.state.lock().unwrap();
            seen = s.generation;
            s.team.clone()
        };
        if let Some(team) = team {
            if index < team.local {
                let tid = team.first + index;
                run_thread(team, tid);
            }
        }
    }
}

/// A barrier among the threads of one node: an arrival count and a
/// generation the last thread bumps, both atomics; waiters spin, then sleep
/// on the team's signal (wait.rs).
#[derive(Default)]
struct LocalBarrier {
    arrived: AtomicU32,
    generation: AtomicU32,
}

impl LocalBarrier {
    /// Waits for `count` threads; the last to arrive runs `last` before
    /// letting the others go. Waiting threads run `team`'s queued tasks
    /// (a barrier is a task scheduling point), and the last one lets the
    /// barrier go only once no task is queued or running.
    fn wait(&self, count: u32, team: &Team, last: impl FnOnce()) {
        // Read before arriving: it cannot move on until this thread has.
        let generation = self.generation.load(Ordering::Acquire);
        // AcqRel: the last arrival sees every thread's writes before the
        // barrier; its Release bump below hands them all to the waiters.
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == count {
            super::wait::wait_until(&team.signal, || {
                if team.tasks.any() {
                    super::tasks::help_once(team);
                }
                !team.tasks.any()
            });
            last();
            // Before the bump: a thread that sees the new generation and
            // arrives at the next barrier must count from zero.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            team.signal.notify();
            return;
        }
        super::wait::wait_until(&team.signal, || {
            if self.generation.load(Ordering::Acquire) != generation {
                return true;
            }
            if team.tasks.any() {
                super::tasks::help_once(team);
            }
            self.generation.load(Ordering::Acquire) != generation
        });
    }
}

/// A reduction's first step inside one node: the threads of the node leave
/// their partial results' addresses in their slots, and the last of them to
/// arrive folds them all into its own with the compiler's combiner (in
/// thread order); only that thread then carries the node's result on
/// (reduce.rs: to node 0, or into the shared variable under the
/// reduction's lock).
struct LocalReduction {
    /// Per local thread: the address of its reduce_data.
    slots: Box<[AtomicUsize]>,
    arrived: AtomicU32,
    /// Bumped when a fold is done.
    generation: AtomicU32,
}

impl LocalReduction {
    fn new(local: u32) -> LocalReduction {
        LocalReduction {
            slots: (0..local).map(|_| AtomicUsize::new(0)).collect(),
            arrived: AtomicU32::new(0),
            generation: AtomicU32::new(0),
        }
    }
}

/// The compiler's combiner: folds the partial results `rhs` into `lhs`
/// (each an array of pointers to one thread's private copies).
pub type Combiner = unsafe extern "C" fn(*mut std::ffi::c_void, *mut std::ffi::c_void);

/// Joins this node's part of a reduction with the calling thread's partial
/// results at `data`. Returns true for the one thread per node that now
/// holds the node's result (and carries it on); the others return false,
/// at once if `wait_for_fold` is false (the caller then keeps `data` alive
/// until that thread has passed a barrier with it: `__kmpc_reduce`), else
/// once their results have been taken (their `data` is not read
/// afterwards).
///
/// # Safety
/// `data` is the compiler's reduce_data of the calling thread and
/// `combine` the compiler's combiner for it, as `__kmpc_reduce` receives them.
pub unsafe fn reduce_locally(
    data: *mut std::ffi::c_void,
    combine: Combiner,
    wait_for_fold: bool,
) -> bool {
    let Some((team, tid)) = with_ctx(|c| c.map(|c| (c.team.clone(), c.tid))) else {
        return true;
    };
    if team.local <= 1 {
        return true;
    }
    let r = &team.reduction;
    let me = (tid - team.first) as usize;
    let generation = r.generation.load(Ordering::Acquire);
    r.slots[me].store(data as usize, Ordering::Relaxed);
    // AcqRel: the last arrival sees every slot (and the private copies
    // behind them) written before the others arrived.
    if r.arrived.fetch_add(1, Ordering::AcqRel) + 1 == team.local {
        for (k, slot) in r.slots.iter().enumerate() {
            if k != me {
                let other = slot.load(Ordering::Relaxed) as *mut std::ffi::c_void;
                // SAFETY: `other` is the reduce_data of a thread of this
                // node that keeps its private copies alive until this fold
                // is done (it waits below, or in a barrier this thread has
                // yet to reach); `combine` is the compiler's combiner for
                // this reduction (every thread passed the same one).
                unsafe { combine(data, other) };
            }
        }
        r.arrived.store(0, Ordering::Relaxed);
        r.generation
            .store(generation.wrapping_add(1), Ordering::Release);
        team.signal.notify();
        return true;
    }
    if wait_for_fold {
        super::wait::wait_until(&team.signal, || {
            r.generation.load(Ordering::Acquire) != generation
        });
    }
    false
}

/// What this node printed before a release comes out before what other
/// nodes print after their matching acquire, as it would from one process
/// (stdout is block-buffered into the launcher's pipe).
fn flush_stdio() {
    // SAFETY: fflush(NULL) flushes every stdio output stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

pub fn release(rt: &Runtime) {
    if rt.nodes > 1 {
        flush_stdio();
        if let Err(e) = rt.region().release() {
            fatal(&format!("release: {e}"));
        }
    }
}

pub fn acquire(rt: &Runtime) {
    if rt.nodes > 1 {
        if let Err(e) = rt.region().acquire() {
            fatal(&format!("acquire: {e}"));
        }
    }
}

/// Zeroes the used slots of both worksharing sets (node 0, between regions).
fn clear_worksharing(omp: &Omp) {
    clear_set(omp, 0);
    clear_set(omp, 1);
}

/// Zeroes the slots of worksharing set `set` handed out since it was last
/// cleared (node 0; most barrier intervals use none).
fn clear_set(omp: &Omp, set: u64) {
    let used = omp.ws_used[set as usize].swap(0, Ordering::Relaxed);
    if used == 0 {
        return;
    }
    // The slots are this node's own memory; remote nodes only reach them
    // with atomics, and none is using these slots now (see `barrier`).
    let zeros = vec![0u8; (used * WS_SLOT_BYTES) as usize];
    if let Err(e) = omp.control_mem.write(WS_BASE + set * WS_SET_BYTES, &zeros) {
        fatal(&format!("clearing worksharing slots: {e}"));
    }
}

/// A team barrier (`#pragma omp barrier`, and the implicit ones).
pub fn barrier() {
    let rt = runtime::get();
    let omp = omp();
    let Some((team, epoch)) = with_ctx(|c| c.map(|c| (c.team.clone(), c.epoch))) else {
        // Outside any region: a barrier of one thread is a flush.
        flush();
        return;
    };
    let t = std::time::Instant::now();
    if team.size > 1 {
        team.barrier.wait(team.local, &team, || {
            team.passed.fetch_add(1, Ordering::Relaxed);
            stats::count(&stats::get().barriers, 1);
            if team.distributed {
                region_barrier(rt);
            }
            if rt.rank == 0 {
                // Nobody uses this interval's slots any more, and nobody
                // can start the interval that reuses them before node 0
                // reaches the next barrier.
                clear_set(omp, epoch % 2);
            }
        });
    }
    with_ctx(|c| {
        if let Some(c) = c {
            c.epoch += 1;
            c.ws_instance = 0;
            c.reduce_count = 0;
            c.reduce_used = 0;
        }
    });
    // Time waited, summed over this node's threads (the count is one per
    // team barrier, taken by the node's last thread to arrive).
    stats::count(&stats::get().barrier_ns, t.elapsed().as_nanos() as u64);
}

/// `#pragma omp flush`: release and acquire.
pub fn flush() {
    let rt = runtime::get();
    release(rt);
    acquire(rt);
}

/// The control-block offset of the calling thread's next worksharing
/// construct (single, dynamic loop, ordered), at node 0.
pub fn next_ws_slot() -> u64 {
    let need_barrier = with_ctx(|c| c.is_some_and(|c| c.ws_instance >= WS_SLOTS));
    if need_barrier {
        // Every thread meets the same constructs in the same order, so all
        // of them take this extra barrier at the same construct.
        barrier();
    }
    let (set, instance) = with_ctx(|c| {
        let c = c.expect("worksharing inside a parallel region");
        let at = (c.epoch % 2, c.ws_instance);
        c.ws_instance += 1;
        at
    });
    if runtime::get().rank == 0 {
        // Node 0 holds the slots; every node meets the same constructs,
        // so node 0's threads know all that are used.
        let used = &omp().ws_used[set as usize];
        if used.load(Ordering::Relaxed) <= instance {
            used.fetch_max(instance + 1, Ordering::Relaxed);
        }
    }
    WS_BASE + set * WS_SET_BYTES + instance * WS_SLOT_BYTES
}

/// Where the calling thread's reduction with `bytes` of variables (at
/// most `REDUCE_DATA`) is in each node's reduction area at node 0: (its
/// flag, the offset of its variables) (reduce.rs). The reductions between
/// two barriers take consecutive flags and ranges, so that a nowait
/// reduction never overwrites one node 0 has yet to read: node 0 reads
/// every part of a reduction before it leaves it, and so before the next
/// barrier. One that does not fit after the others first takes a barrier,
/// as `next_ws_slot` does: every thread meets the same reductions in the
/// same order, so all of them take it at the same one.
pub fn next_reduce_slot(bytes: u64) -> (u64, u64) {
    debug_assert!(bytes <= REDUCE_DATA);
    let full = with_ctx(|c| {
        c.is_some_and(|c| c.reduce_count >= REDUCE_FLAGS || c.reduce_used + bytes > REDUCE_DATA)
    });
    if full {
        barrier();
    }
    with_ctx(|c| {
        let c = c.expect("a reduction inside a parallel region");
        let at = (c.reduce_count, c.reduce_used);
        c.reduce_count += 1;
        c.reduce_used += bytes;
        at
    })
}

/// Whether this node updates the worksharing words with plain CPU atomics
/// on its own memory: node 0 when it is the only compute node, so that
/// every team is on it and no other node reaches the words. Otherwise
/// other nodes update them with transport atomics, which over RDMA are
/// atomic only with respect to each other, so node 0 goes through the
/// transport too (its local path: a CPU atomic over tcp, a NIC atomic
/// through the loopback queue pair over verbs). Node 0 still loads them
/// directly (`ws_load`): a NIC atomic writes the whole word at once.
fn ws_plain_atomics(rt: &Runtime) -> bool {
    rt.rank == 0 && rt.compute.len() == 1
}

/// Adds `delta` to the worksharing word at `offset` of node 0's control
/// block and returns what it held (see `ws_plain_atomics`).
pub fn ws_fetch_add(what: &str, offset: u64, delta: u64) -> u64 {
    let rt = runtime::get();
    let omp = omp();
    let r = if ws_plain_atomics(rt) {
        omp.control_mem.fetch_add(offset, delta)
    } else {
        rt.transport
            .fetch_add(0, omp.control, offset, delta)
            .map_err(|e| e.to_string())
    };
    r.unwrap_or_else(|e| fatal(&format!("{what}: {e}")))
}

/// Compare-and-swap on a worksharing word at node 0 (as `ws_fetch_add`);
/// returns the value found.
pub fn ws_compare_swap(what: &str, offset: u64, expected: u64, new: u64) -> u64 {
    let rt = runtime::get();
    let omp = omp();
    let r = if ws_plain_atomics(rt) {
        omp.control_mem.compare_swap(offset, expected, new)
    } else {
        rt.transport
            .compare_swap(0, omp.control, offset, expected, new)
            .map_err(|e| e.to_string())
    };
    r.unwrap_or_else(|e| fatal(&format!("{what}: {e}")))
}

/// Reads a worksharing word at node 0: directly on node 0, an atomic
/// read (adding zero) elsewhere.
pub fn ws_load(what: &str, offset: u64) -> u64 {
    if runtime::get().rank == 0 {
        return omp()
            .control_mem
            .load_u64(offset)
            .unwrap_or_else(|e| fatal(&format!("{what}: {e}")));
    }
    ws_fetch_add(what, offset, 0)
}

/// Worker nodes (compute nodes other than 0): run parallel regions as
/// node 0 forks them, until node 0 exits. Never returns.
pub fn worker_loop(rt: &Runtime) -> ! {
    let omp = omp();
    loop {
        // A fork's descriptor comes with the barrier (node 0's part), as
        // do the write notices the acquire in it needs.
        let gathered = rt
            .region()
            .barrier_carrying(&[])
            .unwrap_or_else(|e| fatal(&format!("barrier: {e}")));
        // The exit is written into this node's block before the last
        // barrier (node 0 leaves right after it).
        let mut kind = [0u8; 8];
        omp.control_mem
            .read(DESC, &mut kind)
            .unwrap_or_else(|e| fatal(&format!("reading the exit word: {e}")));
        if u64::from_le_bytes(kind) == KIND_EXIT {
            runtime::finish_worker(rt);
        }
        let mut bytes = match gathered {
            Some(mut parts) if parts[0].len() >= DESC_WORDS * 8 => {
                let mut bytes = std::mem::take(&mut parts[0]);
                accept_carried_pages(rt, &mut bytes);
                bytes
            }
            _ => {
                let mut bytes = vec![0u8; (DESC_WORDS + variadic::MAX_ARGS) * 8];
                rt.transport
                    .read(0, omp.control, FORK_DESC, &mut bytes)
                    .unwrap_or_else(|e| {
                        fatal(&format!("reading the fork descriptor from node 0: {e}"))
                    });
                bytes
            }
        };
        bytes.resize((DESC_WORDS + variadic::MAX_ARGS) * 8, 0);
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        if word(0) != KIND_FORK {
            fatal(&format!(
                "corrupt fork descriptor (kind {}) from node 0",
                word(0)
            ));
        }
        let argc = (word(3) as usize).min(variadic::MAX_ARGS);
        let args: Vec<usize> = (0..argc).map(|i| word(DESC_WORDS + i) as usize).collect();
        let size = word(4) as u32;
        let (first, local) = share(rt, size, rt.rank);
        if local == 0 {
            // Take part in the team's barriers until node 0 says which one
            // was the join.
            let mut passed = 0u64;
            loop {
                region_barrier(rt);
                passed += 1;
                let mut end = [0u8; 8];
                let _ = omp.control_mem.read(REGION_END, &mut end);
                if u64::from_le_bytes(end) == (word(1) << 32) | passed {
                    break;
                }
            }
        } else {
            // Levels above this one are inactive regions of node 0's
            // initial thread: teams of one, thread 0.
            let level = (word(7) as u32).max(1);
            let team = Arc::new(Team::new(
                size,
                first,
                local,
                true,
                level,
                1,
                word(5) as u32,
                Schedule::decode(word(6)),
                word(2) as usize,
                &args,
                vec![(0, 1); level as usize - 1],
            ));
            run_local(rt, omp, &team);
            region_barrier(rt);
        }
        // Output written inside the region reaches the terminal now, not
        // at exit.
        // SAFETY: fflush(NULL) flushes every stdio output stream.
        unsafe { libc::fflush(std::ptr::null_mut()) };
    }
}

/// Most pages a fork carries (see `carried_pages`).
const MAX_CARRIED: usize = 4;

/// The home pages the fork's arguments point into, as
/// `[count, (page, len, bytes)...]` words and bytes to append to the
/// descriptor: copies taken before the fork's release, which the workers
/// install once they have acquired (`accept_carried_pages`).
fn carried_pages(rt: &Runtime, args: &[usize]) -> Vec<u8> {
    let region = rt.region();
    let mut pages: Vec<(u32, Vec<u8>)> = Vec::new();
    for &arg in args {
        if pages.len() == MAX_CARRIED {
            break;
        }
        // A pointer argument, or a scalar that looks like one (then a page
        // travels for nothing).
        let page = region.page_index(arg as u64);
        if page.is_none() || pages.iter().any(|(p, _)| Some(*p) == page) {
            continue;
        }
        if let Some(copy) = region.home_page_copy(arg as u64) {
            pages.push(copy);
        }
    }
    let mut out = (pages.len() as u64).to_le_bytes().to_vec();
    for (page, bytes) in pages {
        out.extend((page as u64).to_le_bytes());
        out.extend((bytes.len() as u64).to_le_bytes());
        out.extend(bytes);
    }
    out
}

/// A worker: installs the pages node 0's fork descriptor carries (after
/// the descriptor and its arguments) and cuts them off the descriptor.
fn accept_carried_pages(rt: &Runtime, bytes: &mut Vec<u8>) {
    let word = |b: &[u8], i: usize| {
        b.get(i..i + 8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()) as usize)
    };
    let argc = word(bytes, 3 * 8).unwrap_or(0).min(variadic::MAX_ARGS);
    let mut at = (DESC_WORDS + argc) * 8;
    let count = word(bytes, at).unwrap_or(0);
    at += 8;
    for _ in 0..count {
        let (Some(page), Some(len)) = (word(bytes, at), word(bytes, at + 8)) else {
            fatal("a fork descriptor's carried pages are cut short");
        };
        let Some(copy) = bytes.get(at + 16..at + 16 + len) else {
            fatal("a fork descriptor's carried pages are cut short");
        };
        if let Err(e) = rt.region().accept_copy(0, page as u32, copy) {
            fatal(&format!("installing a page the fork carried: {e}"));
        }
        at += 16 + len;
    }
    bytes.truncate((DESC_WORDS + argc) * 8);
}

/// Node 0 at exit: tells every worker node to finish (they are waiting for
/// the next fork) and lets them go, then the memory nodes.
pub fn finish_cluster(rt: &Runtime) -> Result<(), String> {
    let omp = omp();
    let mut desc = vec![0u8; DESC_WORDS * 8];
    desc[..8].copy_from_slice(&KIND_EXIT.to_le_bytes());
    for &node in &rt.compute[1..] {
        rt.transport
            .write(node, omp.control, DESC, &desc)
            .map_err(|e| format!("telling node {node} to finish: {e}"))?;
    }
    // The gathering barrier the workers wait in for a fork: what they
    // acquire in it comes with it, so no worker reads from node 0 after
    // it (node 0 leaves right after).
    rt.region()
        .barrier_carrying(&[])
        .map_err(|e| e.to_string())?;
    if rt.has_memory_nodes() {
        // The barrier the memory nodes wait in from start-up on; the
        // worker nodes take it too (`runtime::finish_worker`).
        rt.transport.barrier_all().map_err(|e| e.to_string())?;
    }
    Ok(())
}
