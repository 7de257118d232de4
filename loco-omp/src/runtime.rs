//! Joining the cluster at program start, leaving it at exit.
//!
//! The launcher (`loco-daemon run`) starts the same binary on every node
//! with LOCO_RANK and LOCO_CLUSTER (a cluster.toml) set. Without them the
//! program runs as a cluster of one node. The runtime's constructor runs
//! before the program's: it connects the transport, maps the shared region
//! and sets up the heap. Node 0 then returns and runs `main`; every other
//! node stays in the constructor serving its share of the memory until
//! node 0 exits, then exits itself.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use loco_cluster::{ByteSize, ClusterConfig, DEFAULT_REGION_BASE};
use loco_rdma::Transport;
use loco_uffd::{RegionOptions, SharedHeap, SharedRegion};

/// The shared region's address compiled code assumes (loco-pass/ABI.md).
pub const ABI_REGION_BASE: u64 = 0x4000_0000_0000;
const SINGLE_NODE_MEMORY: u64 = 4 << 30;

pub struct Runtime {
    pub heap: SharedHeap,
    pub transport: Arc<dyn Transport>,
    pub rank: usize,
    pub nodes: usize,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    pub fn region(&self) -> &SharedRegion {
        self.heap.region()
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
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot find a free port: {e}"))?
                .port();
            let mut config =
                ClusterConfig::localhost_with_ports(&[port]).map_err(|e| e.to_string())?;
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
    if config.region_base != ABI_REGION_BASE {
        return Err(format!(
            "cluster.toml puts the shared region at {:#x}, but code compiled by loco-cc expects {ABI_REGION_BASE:#x}: \
             remove memory.region_base from cluster.toml",
            config.region_base
        ));
    }
    debug_assert_eq!(ABI_REGION_BASE, DEFAULT_REGION_BASE);
    let transport =
        loco_rdma::connect(&config, rank).map_err(|e| format!("joining the cluster: {e}"))?;
    let options = RegionOptions {
        // Writes by code loco-cc did not compile (prebuilt libraries) are found
        // by write-protecting cached pages, unless the user says none happen.
        track_uninstrumented: std::env::var("LOCO_TRACK").map_or(true, |v| v != "0"),
        ..RegionOptions::default()
    };
    let region =
        SharedRegion::new(&config, transport.clone(), options).map_err(|e| e.to_string())?;
    let heap = SharedHeap::new(region).map_err(|e| e.to_string())?;
    Ok(Runtime {
        heap,
        transport,
        rank,
        nodes: config.num_nodes(),
    })
}

/// Runs before `main` (from .init_array): joins the cluster; nodes other
/// than 0 never return from here.
extern "C" fn on_load() {
    let rt = get();
    if rt.rank == 0 {
        // SAFETY: registers a plain extern "C" function to run at exit.
        unsafe { libc::atexit(on_exit) };
        return;
    }
    // Serve this node's memory until node 0 reaches its exit.
    let outcome = rt.transport.barrier();
    report_stats(rt);
    match outcome {
        Ok(()) => {
            rt.transport.shutdown();
            // SAFETY: ends the process without running the program's exit path.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fatal(&format!("the run ended abnormally: {e}")),
    }
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

/// Node 0's exit: its last writes go home, then every node is let go.
extern "C" fn on_exit() {
    let Some(rt) = try_get() else { return };
    if let Err(e) = rt.region().release() {
        eprintln!("loco: node 0: final release failed: {e}");
    }
    let outcome = rt.transport.barrier();
    report_stats(rt);
    match outcome {
        Ok(()) => rt.transport.shutdown(),
        Err(e) => eprintln!("loco: node 0: another node failed before the end: {e}"),
    }
}

/// With LOCO_STATS=1, one block per node on stderr at exit.
fn report_stats(rt: &Runtime) {
    if std::env::var("LOCO_STATS").map_or(true, |v| v == "0") {
        return;
    }
    let r = rt.region().stats();
    let h = rt.heap.stats();
    let t = rt.transport.stats();
    eprintln!(
        "loco: node {} stats: page faults {} remote + {} home ({} fetched), write-protect faults {}, \
         releases {} ({} in {} runs), acquires {} ({} pages dropped, {} evicted), \
         allocations {} frees {} (arena {}), network: {} reads {} writes {} scatters {} atomics {} barriers",
        rt.rank,
        r.remote_faults,
        r.home_faults,
        ByteSize(r.bytes_fetched),
        r.write_faults,
        r.releases,
        ByteSize(r.bytes_released),
        r.runs_released,
        r.acquires,
        r.pages_invalidated,
        r.evictions,
        h.allocations,
        h.frees,
        ByteSize(h.arena_bytes),
        t.reads,
        t.writes,
        t.scatters,
        t.atomics,
        t.barriers,
    );
}
