//! Joining the cluster at program start, leaving it at exit.
//!
//! The launcher (`loco-daemon run`) starts the same binary on every node
//! with LOCO_RANK and LOCO_CLUSTER (a cluster.toml) set. Without them the
//! program runs as a cluster of one node. The runtime's constructor runs
//! before the program's (libloco.so is the executable's first library, so
//! every other library is initialised before it): it moves the program's
//! globals aside, connects the transport, maps the shared region over them,
//! and sets up the heap and the OpenMP runtime. Node 0 then returns and runs
//! `main` (on a stack in the shared region, see `loco_main`); every other
//! compute node stays in the constructor serving its share of the memory and
//! running the parallel regions node 0 forks, until node 0 exits. A memory
//! node (cluster.toml's `role = "memory"`) stays there too, but only serves
//! its memory: it runs no OpenMP thread and takes no part in the compute
//! nodes' barriers, waiting in one barrier of every node that the compute
//! nodes take last, at exit.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use loco_cluster::{ByteSize, ClusterConfig, Role, TransportKind, DEFAULT_REGION_BASE};
use loco_rdma::Transport;
use loco_uffd::{HomeMemory, RegionOptions, SharedHeap, SharedRegion};

/// The shared region's address compiled code assumes (loco-pass/ABI.md).
pub const ABI_REGION_BASE: u64 = 0x4000_0000_0000;

/// The span of the window in which compiled code marks its stores
/// (loco-pass/ABI.md, the mark window): the whole shared window, or 0
/// once the region is up on a one-node cluster, where every page is home
/// and no store needs a mark. It only ever goes from the span to 0, and
/// both values are correct for one node, so code that read it earlier
/// (and keeps what it read) is still right.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static __loco_mark_span: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(loco_uffd::REGION_SPAN);
const SINGLE_NODE_MEMORY: u64 = 4 << 30;

pub struct Runtime {
    pub heap: SharedHeap,
    pub transport: Arc<dyn Transport>,
    pub rank: usize,
    /// Nodes in the cluster, memory nodes included.
    pub nodes: usize,
    /// The compute nodes' ranks, in order (node 0 first): the nodes that
    /// run OpenMP threads and take the team's barriers.
    pub compute: Vec<usize>,
    /// cluster.toml's `memory.cache_size` (for the statistics).
    pub cache_size: u64,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    pub fn region(&self) -> &SharedRegion {
        self.heap.region()
    }

    /// Whether this node is a memory node (it runs no program code).
    pub fn is_memory_node(&self) -> bool {
        self.compute_index(self.rank).is_none()
    }

    /// `rank`'s place among the compute nodes; `None` for a memory node.
    pub fn compute_index(&self, rank: usize) -> Option<usize> {
        self.compute.binary_search(&rank).ok()
    }

    /// Whether the cluster has memory nodes.
    pub fn has_memory_nodes(&self) -> bool {
        self.compute.len() < self.nodes
    }
}

/// The runtime, started on first use if the constructor has not run yet
/// (a program's own constructors may allocate).
pub fn get() -> &'static Runtime {
    RUNTIME.get_or_init(|| start().unwrap_or_else(|e| fatal(&e)))
}

/// The runtime if it is up, without starting it.
pub fn try_get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Ends the process with a message: for errors the program cannot go on from.
pub fn fatal(why: &str) -> ! {
    let rank = std::env::var("LOCO_RANK").unwrap_or_else(|_| "0".into());
    eprintln!("loco: node {rank}: {why}");
    // SAFETY: _exit ends the process at once; nothing after it runs.
    unsafe { libc::_exit(70) }
}

fn config() -> Result<(ClusterConfig, usize), String> {
    match std::env::var_os("LOCO_CLUSTER") {
        Some(path) => {
            let config = ClusterConfig::load(Path::new(&path)).map_err(|e| e.to_string())?;
            let rank: usize = std::env::var("LOCO_RANK")
                .map_err(|_| {
                    "LOCO_CLUSTER is set but LOCO_RANK is not (start programs with loco-daemon run)"
                        .to_string()
                })?
                .parse()
                .map_err(|_| "LOCO_RANK is not a number".to_string())?;
            if rank >= config.num_nodes() {
                return Err(format!(
                    "LOCO_RANK {rank} but the cluster has {} nodes",
                    config.num_nodes()
                ));
            }
            Ok((config, rank))
        }
        None => {
            // A cluster of one: this process, on a free loopback port.
            let ports = loco_cluster::free_loopback_ports(1)
                .map_err(|e| format!("cannot find a free port: {e}"))?;
            let mut config =
                ClusterConfig::localhost_with_ports(&ports).map_err(|e| e.to_string())?;
            config.nodes[0].memory = match std::env::var("LOCO_MEMORY") {
                Ok(text) => {
                    loco_cluster::parse_size(&text).map_err(|e| format!("LOCO_MEMORY: {e}"))?
                }
                Err(_) => SINGLE_NODE_MEMORY,
            };
            config.validate("LOCO_MEMORY").map_err(|e| e.to_string())?;
            Ok((config, 0))
        }
    }
}

fn start() -> Result<Runtime, String> {
    let (config, rank) = config()?;
    // Before anything maps memory: the executable's globals segment sits
    // where the shared region goes.
    let globals = crate::image::take_globals()?;
    let stack = crate::image::main_stack_size()?;
    if config.region_base != ABI_REGION_BASE {
        return Err(format!(
            "cluster.toml puts the shared region at {:#x}, but code compiled by loco-cc expects {ABI_REGION_BASE:#x}: \
             remove memory.region_base from cluster.toml",
            config.region_base
        ));
    }
    debug_assert_eq!(ABI_REGION_BASE, DEFAULT_REGION_BASE);
    loco_rdma::tcp::set_default_poll_us(network_poll_us(&config, rank));
    let transport =
        loco_rdma::connect(&config, rank).map_err(|e| format!("joining the cluster: {e}"))?;
    // A dead node takes its share of the shared memory with it: the run
    // cannot go on, so every node ends at once, saying which node failed,
    // even one that had nothing to ask of the dead node.
    transport.on_node_failure(Box::new(|node, why| {
        fatal(&format!("node {node} has failed: {why}"))
    }));
    check_same_program(&*transport, rank, config.num_nodes())?;
    let options = RegionOptions {
        // Writes by code loco-cc did not compile (prebuilt libraries) are found
        // by write-protecting cached pages, unless the user says none happen.
        track_uninstrumented: std::env::var("LOCO_TRACK").map_or(true, |v| v != "0"),
        // Written pages are found by page-table scans (WP_ASYNC) where the
        // kernel can, unless the user asks for write-protect faults
        // (LOCO_WP_ASYNC=0).
        async_write_tracking: std::env::var("LOCO_WP_ASYNC").map_or(true, |v| v != "0"),
        // Fault threads may stay awake between faults (LOCO_LINGER_US), trading CPU for latency.
        linger_us: std::env::var("LOCO_LINGER_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        node0_prefix: crate::image::prefix_size(globals.as_ref(), stack),
        // The globals are placed like the heap; main's stack stays on node 0.
        globals: globals.as_ref().map_or(0, |g| g.span),
        // Pages a fault fetches at once when a sequential scan starts (LOCO_READ_AHEAD, 1: off).
        read_ahead: std::env::var("LOCO_READ_AHEAD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8),
        // An acquire drops only pages other nodes' write notices name
        // (LOCO_SELECTIVE=0: every cached page, for comparison).
        selective_invalidation: std::env::var("LOCO_SELECTIVE").map_or(true, |v| v != "0"),
        // First-touch pages move to the node that keeps writing them
        // (LOCO_MIGRATE=0: they stay where they were first touched).
        home_migration: std::env::var("LOCO_MIGRATE").map_or(true, |v| v != "0"),
        // Pages nobody has written are mapped as zeros, not read
        // (LOCO_ZERO_FILL=0: read from their home like any other).
        zero_fill_fresh: std::env::var("LOCO_ZERO_FILL").map_or(true, |v| v != "0"),
        // Write-back in masked runs of whole words (LOCO_MASKED=0: exact
        // runs of the changed bytes, as over RDMA).
        masked_write_back: std::env::var("LOCO_MASKED").map_or(true, |v| v != "0"),
        home_memory: home_memory(&config)?,
        ..RegionOptions::default()
    };
    let region =
        SharedRegion::new(&config, transport.clone(), options).map_err(|e| e.to_string())?;
    if config.num_nodes() == 1 {
        __loco_mark_span.store(0, std::sync::atomic::Ordering::Release);
    }
    if rank == 0 {
        crate::image::install(globals.as_ref(), stack)?;
    }
    let heap = SharedHeap::new(region).map_err(|e| e.to_string())?;
    let compute = config.compute_nodes();
    crate::omp::team::init(&transport, config.num_nodes(), compute.len())?;
    // The last collective registration is behind us: from here on the
    // compute nodes' barriers (the team's) leave the memory nodes out.
    if compute.binary_search(&rank).is_ok() {
        transport.narrow_barriers();
    }
    Ok(Runtime {
        heap,
        transport,
        rank,
        nodes: config.num_nodes(),
        compute,
        cache_size: config.cache_size,
    })
}

/// How long waits for another node's answer poll before they sleep
/// (loco_rdma::tcp::set_default_poll_us; LOCO_POLL_US overrides it): 50 µs
/// where every busy thread on this machine (the OpenMP threads of every
/// node that shares its host) has a CPU of its own, else 0. Polling saves a
/// wake-up per answer (2 nodes, one thread each, on 2 CPUs: a barrier
/// 77 -> 25 µs), but a polling thread on a CPU another node's thread needs
/// delays that thread instead (4 nodes on 2 CPUs: 74 -> 214 µs).
fn network_poll_us(config: &ClusterConfig, rank: usize) -> u64 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Memory nodes run no OpenMP thread: only compute nodes count.
    let nodes = config.compute_nodes().len();
    let sharing = config
        .nodes
        .iter()
        .filter(|n| n.host == config.nodes[rank].host && n.role == Role::Compute)
        .count();
    // A bad OMP_NUM_THREADS ends the run when the team starts; until then
    // any guess will do.
    let team = crate::omp::team::requested_team_size(nodes).unwrap_or(1) as usize;
    if sharing * team.div_ceil(nodes) <= cpus {
        50
    } else {
        0
    }
}

/// A hash of this process's executable (FNV-1a over the file).
fn program_hash() -> Result<u64, String> {
    let bytes =
        std::fs::read("/proc/self/exe").map_err(|e| format!("cannot read /proc/self/exe: {e}"))?;
    Ok(fnv(0xcbf2_9ce4_8422_2325, &bytes))
}

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the libraries are loaded: pointers into them (a `FILE *`, a
/// function pointer, a C++ vtable) travel between nodes inside shared data,
/// so every node must have them at the same addresses.
fn layout_hash() -> u64 {
    let libc_fn = libc::malloc as *const () as u64;
    let ours = layout_hash as *const () as u64;
    fnv(0, &[libc_fn.to_le_bytes(), ours.to_le_bytes()].concat())
}

/// Every node must run the same binary: code addresses, the layout of
/// globals and the runtime's expectations all depend on it. Each node puts
/// its executable's hash in a slot at node 0 and compares them all.
fn check_same_program(transport: &dyn Transport, rank: usize, nodes: usize) -> Result<(), String> {
    let slots = Arc::new(
        loco_rdma::MemoryRegion::anonymous(if rank == 0 { 16 * nodes } else { 16 })
            .map_err(|e| format!("program check: {e}"))?,
    );
    let id = transport
        .register(slots)
        .map_err(|e| format!("program check: {e}"))?;
    let mine = program_hash()?;
    let layout = layout_hash();
    transport
        .write(
            0,
            id,
            16 * rank as u64,
            &[mine.to_le_bytes(), layout.to_le_bytes()].concat(),
        )
        .map_err(|e| format!("program check: {e}"))?;
    transport
        .barrier()
        .map_err(|e| format!("program check: {e}"))?;
    let mut all = vec![0u8; 16 * nodes];
    transport
        .read(0, id, 0, &mut all)
        .map_err(|e| format!("program check: {e}"))?;
    let words: Vec<u64> = all
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let hashes: Vec<u64> = words.iter().step_by(2).copied().collect();
    let layouts: Vec<u64> = words.iter().skip(1).step_by(2).copied().collect();
    // Nobody leaves before everyone has compared, so every node can say why.
    transport
        .barrier()
        .map_err(|e| format!("program check: {e}"))?;
    let other_layout = layouts.iter().position(|&l| l != layouts[0]);
    match hashes.iter().position(|&h| h != hashes[0]) {
        None => match other_layout {
            None => Ok(()),
            Some(other) => {
                transport.shutdown();
                Err(format!(
                    "node {other} has its libraries at other addresses than node 0 (address space \
                     randomisation): start programs with loco-daemon run, which turns it off"
                ))
            }
        },
        Some(other) => {
            // Leave in order (answers sent, goodbyes said), so that the other
            // nodes report the mismatch too, not this node's departure.
            transport.shutdown();
            Err(format!(
            "node {other} runs a different program than node 0 (executable hashes {:#x} and {:#x}): \
             every node must run the same binary",
            hashes[other], hashes[0]
            ))
        }
    }
}

/// Runs before `main` (from .init_array): joins the cluster; nodes other
/// than 0 never return from here.
extern "C" fn on_load() {
    let rt = get();
    start_progress_writer(rt);
    if rt.rank == 0 {
        // SAFETY: registers a plain extern "C" function to run at exit.
        unsafe { libc::atexit(on_exit) };
        return;
    }
    if rt.is_memory_node() {
        serve_memory(rt)
    }
    crate::omp::team::worker_loop(rt)
}

/// A memory node's whole run: its transport's serving threads answer the
/// compute nodes (pages, writes, atomics) while this thread waits in the
/// barrier of every node that the compute nodes take last, at exit
/// (`finish_cluster`, `finish_worker`). A node that dies meanwhile ends
/// this one through the failure hook, as on any node.
fn serve_memory(rt: &Runtime) -> ! {
    if let Err(e) = rt.transport.barrier_all() {
        fatal(&format!("waiting for the end of the run: {e}"));
    }
    report_stats(rt);
    rt.transport.shutdown();
    // SAFETY: fflush(NULL) flushes every stdio stream; _exit ends the
    // process without running the program's exit path (main never ran here).
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(0)
    }
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

/// A worker node's end, when node 0 has exited: statistics, goodbyes, exit.
pub fn finish_worker(rt: &Runtime) -> ! {
    report_stats(rt);
    if rt.has_memory_nodes() {
        // The memory nodes leave with everyone (see `serve_memory`).
        if let Err(e) = rt.transport.barrier_all() {
            fatal(&format!("letting the memory nodes go: {e}"));
        }
    }
    rt.transport.shutdown();
    // SAFETY: fflush(NULL) flushes every stdio stream; _exit ends the
    // process without running the program's exit path (main never ran here).
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(0)
    }
}

/// Node 0's exit: its last writes go home, then every node is let go.
extern "C" fn on_exit() {
    let Some(rt) = try_get() else { return };
    if let Err(e) = rt.region().release() {
        eprintln!("loco: node 0: final release failed: {e}");
    }
    let outcome = crate::omp::team::finish_cluster(rt);
    report_stats(rt);
    match outcome {
        Ok(()) => rt.transport.shutdown(),
        Err(e) => eprintln!("loco: node 0: another node failed before the end: {e}"),
    }
}

/// The program's `main` as loco-pass renamed it.
type UserMain = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

/// What `main_on_shared_stack` needs, reachable from the trampoline.
struct MainCall {
    main: UserMain,
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
    result: c_int,
}

static MAIN_CALL: std::sync::atomic::AtomicPtr<MainCall> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn main_trampoline() {
    let call = MAIN_CALL.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: loco_main stored a pointer to its live MainCall before
    // switching here, and waits (switched out) until this returns.
    unsafe { (*call).result = ((*call).main)((*call).argc, (*call).argv, (*call).envp) };
    // Returning resumes loco_main through uc_link.
}

/// Called by the `main` loco-pass generates: runs the program's own main on
/// node 0, on a stack inside the shared region, so that the addresses of
/// its locals (which parallel regions capture by reference) are valid on
/// every node.
///
/// # Safety
/// `main` is the program's main; argc/argv/envp are what libc passed.
#[no_mangle]
pub unsafe extern "C" fn loco_main(
    main: UserMain,
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
) -> c_int {
    get();
    let nested = !MAIN_CALL
        .load(std::sync::atomic::Ordering::Acquire)
        .is_null();
    let stack = crate::image::main_stack().filter(|_| !nested);
    let Some(stack) = stack else {
        // SAFETY: the caller's contract.
        return unsafe { main(argc, argv, envp) };
    };
    let mut call = MainCall {
        main,
        argc,
        argv,
        envp,
        result: 0,
    };
    MAIN_CALL.store(&mut call, std::sync::atomic::Ordering::Release);
    // SAFETY: both contexts are zeroed structs that getcontext/makecontext
    // fill in; the stack lies in the shared region's node-0 prefix, mapped
    // for the life of the process and used by nothing else; `caller` and
    // `call` outlive the switch (this frame waits for uc_link to resume it).
    unsafe {
        let mut caller: Box<libc::ucontext_t> = Box::new(std::mem::zeroed());
        let mut callee: Box<libc::ucontext_t> = Box::new(std::mem::zeroed());
        if libc::getcontext(&mut *callee) != 0 {
            fatal("getcontext failed");
        }
        callee.uc_stack.ss_sp = stack.base as *mut c_void;
        callee.uc_stack.ss_size = stack.size as usize;
        callee.uc_link = &mut *caller;
        libc::makecontext(&mut *callee, main_trampoline, 0);
        if libc::swapcontext(&mut *caller, &*callee) != 0 {
            fatal("cannot switch to main's stack in the shared region");
        }
    }
    call.result
}

/// This node's counters, as (name, value) pairs.
fn stats_fields(rt: &Runtime) -> Vec<(&'static str, u64)> {
    let r = rt.region().stats();
    let h = rt.heap.stats();
    let t = rt.transport.stats();
    vec![
        ("page_faults_remote", r.remote_faults),
        ("page_faults_home", r.home_faults),
        ("bytes_fetched", r.bytes_fetched),
        ("pages_read_ahead", r.pages_read_ahead),
        ("fault_ns", r.fault_ns),
        ("write_protect_faults", r.write_faults),
        ("releases", r.releases),
        ("bytes_released", r.bytes_released),
        ("runs_released", r.runs_released),
        ("release_ns", r.release_ns),
        ("acquires", r.acquires),
        ("pages_invalidated", r.pages_invalidated),
        ("acquire_ns", r.acquire_ns),
        ("pages_diffed", r.pages_diffed),
        ("evictions", r.evictions),
        ("pages_migrated_in", r.pages_migrated_in),
        ("pages_migrated_out", r.pages_migrated_out),
        ("pages_carried", r.pages_carried),
        ("pages_zero_filled", r.pages_zero_filled),
        ("allocations", h.allocations),
        ("frees", h.frees),
        ("arena_bytes", h.arena_bytes),
        ("net_reads", t.reads),
        ("net_bytes_read", t.bytes_read),
        ("net_writes", t.writes),
        ("net_scatters", t.scatters),
        ("net_bytes_written", t.bytes_written),
        ("net_atomics", t.atomics),
        ("net_barriers", t.barriers),
        ("memory_node", u64::from(rt.is_memory_node())),
        ("cache_size", rt.cache_size),
    ]
    .into_iter()
    .chain(crate::omp::entry::stats_fields())
    .collect()
}

/// With LOCO_STATS=1, one block per node on stderr at exit; with
/// LOCO_STATS_JSON=PATH, the same as JSON in PATH.node<rank> (loco-daemon
/// --stats-json gathers them).
/// This node's counters as one JSON object.
fn stats_json(rt: &Runtime) -> String {
    let body: Vec<String> = stats_fields(rt)
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("{{\"node\": {}, {}}}\n", rt.rank, body.join(", "))
}

/// With LOCO_PROGRESS=PREFIX (set by `loco-daemon run --progress`): every
/// second, this node's counters so far go to PREFIX.node<rank> (written
/// aside and renamed, so a reader never sees half a file).
fn start_progress_writer(rt: &'static Runtime) {
    let Ok(prefix) = std::env::var("LOCO_PROGRESS") else {
        return;
    };
    let file = format!("{prefix}.node{}", rt.rank);
    let partial = format!("{file}.partial");
    let _ = std::thread::Builder::new()
        .name("loco-progress".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if std::fs::write(&partial, stats_json(rt)).is_ok() {
                let _ = std::fs::rename(&partial, &file);
            }
        });
}

fn report_stats(rt: &Runtime) {
    let fields = stats_fields(rt);
    if let Ok(path) = std::env::var("LOCO_STATS_JSON") {
        let json = stats_json(rt);
        let file = format!("{path}.node{}", rt.rank);
        if let Err(e) = std::fs::write(&file, json) {
            eprintln!(
                "loco: node {}: cannot write statistics to {file}: {e}",
                rt.rank
            );
        }
    }
    if std::env::var("LOCO_STATS").map_or(true, |v| v == "0") {
        return;
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    };
    let ms = |name: &str| get(name) as f64 / 1e6;
    // One write: eprintln! writes a long line in pieces, and another
    // node's line forwarded to the same stderr could land between them.
    let line = format!(
        "loco: node {}{} stats: page faults {} remote ({}, {:.1} ms, {} pages read ahead, {} mapped as zeros) + {} home; written pages found {}; \
         releases {} ({} in {} runs, {:.1} ms); acquires {} ({} pages dropped, {:.1} ms); evictions {}; \
         home migration: {} pages in, {} out; \
         heap: {} allocations, {} frees, arena {}; network: {} reads, {} writes, {} scatters, {} atomics, {} barriers; \
         openmp: {} forks, {} threads run, {} barriers ({:.1} ms), {} lock takes ({} from another node, {:.1} ms waiting), {} dispatch operations",
        rt.rank,
        if rt.is_memory_node() {
            " (memory node)"
        } else {
            ""
        },
        get("page_faults_remote"),
        ByteSize(get("bytes_fetched")),
        ms("fault_ns"),
        get("pages_read_ahead"),
        get("pages_zero_filled"),
        get("page_faults_home"),
        get("write_protect_faults"),
        get("releases"),
        ByteSize(get("bytes_released")),
        get("runs_released"),
        ms("release_ns"),
        get("acquires"),
        get("pages_invalidated"),
        ms("acquire_ns"),
        get("evictions"),
        get("pages_migrated_in"),
        get("pages_migrated_out"),
        get("allocations"),
        get("frees"),
        ByteSize(get("arena_bytes")),
        get("net_reads"),
        get("net_writes"),
        get("net_scatters"),
        get("net_atomics"),
        get("net_barriers"),
        get("omp_forks"),
        get("omp_threads"),
        get("omp_barriers"),
        ms("omp_barrier_ns"),
        get("omp_lock_takes"),
        get("omp_lock_remote_takes"),
        ms("omp_lock_wait_ns"),
        get("omp_dispatches"),
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

/// What home pages live in: a shared file an RDMA NIC can serve under the
/// verbs transport, anonymous memory (which lets the tcp transport's
/// serving threads keep write notices) under tcp; LOCO_HOME_MEMORY=file
/// or anonymous chooses.
fn home_memory(config: &ClusterConfig) -> Result<HomeMemory, String> {
    match std::env::var("LOCO_HOME_MEMORY").as_deref() {
        Ok("file") => Ok(HomeMemory::SharedFile),
        Ok("anonymous") => Ok(HomeMemory::Anonymous),
        Ok(other) => Err(format!(
            "LOCO_HOME_MEMORY={other}: expected \"file\" or \"anonymous\""
        )),
        Err(_) => Ok(match config.transport {
            TransportKind::Verbs => HomeMemory::SharedFile,
            TransportKind::Tcp => HomeMemory::Anonymous,
        }),
    }
}
