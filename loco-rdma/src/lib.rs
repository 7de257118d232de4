//! LOCO's transport: what the distributed shared memory needs from the network.
//!
//! Every node registers memory; any node can then read, write, scatter many
//! small runs into, and atomically update that memory on any other node
//! without the target's application threads taking part (one-sided), and all
//! nodes can meet at a barrier. [`Transport`] is the one interface; it has two
//! backends:
//!
//! - [`tcp::TcpTransport`]: each node serves the operations from its own
//!   server threads; works on any network (and on loopback for tests).
//! - `verbs::VerbsTransport` (feature `verbs`): RDMA RC queue pairs with real
//!   RDMA READ, WRITE and ATOMIC; connection setup and the barrier use the tcp
//!   backend as their control plane.
//!
//! Nodes find each other from the [`loco_cluster::ClusterConfig`] and check
//! that they were all given the same one.

pub mod memory;
pub mod tcp;
#[cfg(feature = "verbs")]
pub mod verbs;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use loco_cluster::{ClusterConfig, TransportKind};
pub use memory::{Access, Finish, MemoryRegion};
pub use tcp::Service;

/// The first service number free for users of `Transport::offer` (the
/// transports' own control services lie below it).
pub const SERVICE_USER: u32 = 0x1000;

/// A node's index in the cluster (its position in cluster.toml).
pub type NodeId = usize;

/// Names a registered region. Registration is collective, so the same id
/// names the corresponding region on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionId(pub u32);

/// One piece of a scatter write: `data` goes to `offset` in the target region.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub offset: u64,
    pub data: &'a [u8],
}

/// A run of a masked scatter: bit j of `mask[k]` says byte `8k + j` of
/// `data` is written (`mask` has `data.len().div_ceil(8)` bytes).
#[derive(Debug, Clone, Copy)]
pub struct MaskedRun<'a> {
    pub offset: u64,
    pub data: &'a [u8],
    pub mask: &'a [u8],
}

impl MaskedRun<'_> {
    /// Whether the mask has the run's length.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.mask.len() == self.data.len().div_ceil(8) {
            Ok(())
        } else {
            Err(format!(
                "a masked run of {} bytes has a mask of {} bytes",
                self.data.len(),
                self.mask.len()
            ))
        }
    }

    /// Calls `f(start, end)` for each stretch of bytes the mask names.
    pub fn for_each_stretch(&self, mut f: impl FnMut(usize, usize)) {
        let named = |i: usize| self.mask[i / 8] & (1 << (i % 8)) != 0;
        let mut i = 0;
        while i < self.data.len() {
            if !named(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < self.data.len() && named(i) {
                i += 1;
            }
            f(start, i);
        }
    }
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Bootstrap could not reach a node.
    #[error("node {node} ({address}) is unreachable: {why}")]
    Unreachable {
        node: NodeId,
        address: String,
        why: String,
    },
    /// A node died or closed its connections without saying goodbye.
    #[error("node {node} has failed: {why}")]
    NodeFailed { node: NodeId, why: String },
    /// A node did not answer an operation in time.
    #[error("node {node} did not answer within {timeout:?} ({op})")]
    Timeout {
        node: NodeId,
        timeout: Duration,
        op: &'static str,
    },
    /// The target refused the operation (bad region, out of bounds, misaligned atomic).
    #[error("node {node} refused {op}: {why}")]
    Refused {
        node: NodeId,
        op: &'static str,
        why: String,
    },
    /// The caller asked for something impossible before anything was sent.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The nodes disagree about the cluster (different cluster.toml, another protocol version).
    #[error("node {node} disagrees about the cluster: {why}")]
    Mismatch { node: NodeId, why: String },
    /// This machine has no usable RDMA device (only the verbs backend says this).
    #[error("no RDMA device: {0}")]
    NoDevice(String),
    /// The RDMA stack reported an error.
    #[error("RDMA: {0}")]
    Verbs(String),
    /// A local I/O error (binding the listen socket, for instance).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = TransportError> = std::result::Result<T, E>;

/// Counts of what a node asked of the network (for LOCO_STATS and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub reads: u64,
    pub bytes_read: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub scatters: u64,
    pub scatter_runs: u64,
    pub atomics: u64,
    pub barriers: u64,
}

/// The operations the DSM needs from the network.
///
/// All methods may be called from any thread at any time, concurrently.
/// Operations addressed to this node itself are served locally.
pub trait Transport: Send + Sync {
    /// This node's index.
    fn rank(&self) -> NodeId;

    /// How many nodes the cluster has.
    fn num_nodes(&self) -> usize;

    /// Makes `region` reachable from every node. Collective: every node calls
    /// it, in the same order, once per region; it returns when all have, and
    /// the returned id names this node's region on every node. Sizes may differ
    /// between nodes; each operation is checked against the target's size.
    fn register(&self, region: Arc<MemoryRegion>) -> Result<RegionId>;

    /// Reads `buf.len()` bytes at `offset` of `region` on `node`.
    fn read(&self, node: NodeId, region: RegionId, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes `data` at `offset` of `region` on `node`; done when it returns.
    fn write(&self, node: NodeId, region: RegionId, offset: u64, data: &[u8]) -> Result<()>;

    /// Writes `write`'s bytes (region, offset, bytes) on `node`, then
    /// reads `buf.len()` bytes at `offset` of `region` there: the write is
    /// in place at the target before the read begins (a reader telling a
    /// home what it is about to read). If the write is refused nothing is
    /// read. One round trip where the backend can; the default is a write,
    /// then a read. (Over RDMA one chain could carry both: an RC queue
    /// pair keeps a READ behind an earlier WRITE; not done yet.)
    fn write_then_read(
        &self,
        node: NodeId,
        write: (RegionId, u64, &[u8]),
        region: RegionId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let (write_region, write_offset, data) = write;
        self.write(node, write_region, write_offset, data)?;
        self.read(node, region, offset, buf)
    }

    /// Writes every run into `region` on `node`, as one network operation where
    /// the backend allows; done (all runs visible at the target) when it returns.
    /// Runs are applied in order, so a later run wins where runs overlap.
    fn scatter(&self, node: NodeId, region: RegionId, runs: &[Run<'_>]) -> Result<()>;

    /// Whether `scatter_masked` sends masked runs as they are (one network
    /// operation, the target applying the masks) rather than as the
    /// default's plain runs.
    fn has_scatter_masked(&self) -> bool {
        false
    }

    /// As `scatter`, writing only the bytes each run's mask names: a
    /// run may span bytes the caller must not write (another node's),
    /// which stay as they are at the target. The default sends each
    /// stretch of named bytes as a plain run (what a NIC can do).
    fn scatter_masked(&self, node: NodeId, region: RegionId, runs: &[MaskedRun<'_>]) -> Result<()> {
        let mut plain = Vec::new();
        for run in runs {
            run.check().map_err(TransportError::Invalid)?;
            run.for_each_stretch(|start, end| {
                plain.push(Run {
                    offset: run.offset + start as u64,
                    data: &run.data[start..end],
                })
            });
        }
        self.scatter(node, region, &plain)
    }

    /// Atomically adds `delta` to the u64 at `offset` (8-byte aligned); returns the old value.
    ///
    /// Transport atomics are atomic with respect to each other. With
    /// respect to the target's own CPU they are only where its region
    /// says that CPU stores into it ([`MemoryRegion::shared_with_cpu_stores`]);
    /// elsewhere every update of the word, the owner's own included, must
    /// go through the transport (its loads need not).
    fn fetch_add(&self, node: NodeId, region: RegionId, offset: u64, delta: u64) -> Result<u64>;

    /// Atomically sets the u64 at `offset` to `new` if it is `expected`;
    /// returns the value found (the swap happened if it equals `expected`).
    fn compare_swap(
        &self,
        node: NodeId,
        region: RegionId,
        offset: u64,
        expected: u64,
        new: u64,
    ) -> Result<u64>;

    /// `compare_swap` on the `count` u64s from `offset`, in order, until one
    /// is not `expected`: returns the values found, that one last (so
    /// every word before it was swapped). Each swap is atomic, the run is
    /// not. One round trip where the backend can; the default makes one
    /// `compare_swap` per word.
    fn compare_swap_run(
        &self,
        node: NodeId,
        region: RegionId,
        offset: u64,
        count: u32,
        expected: u64,
        new: u64,
    ) -> Result<Vec<u64>> {
        compare_swap_each(self, node, region, offset, count, expected, new)
    }

    /// Waits until every node that takes part in barriers has called
    /// `barrier` the same number of times: every node, or, once this node
    /// has called [`Transport::narrow_barriers`], the compute nodes. Fails,
    /// instead of waiting forever, once any node is known to have died.
    fn barrier(&self) -> Result<()>;

    /// A barrier of every node of the cluster, memory nodes included,
    /// whether or not this node's barriers were narrowed: what a memory
    /// node waits in for the end of a run, and what the compute nodes take
    /// last to let it go. [`Transport::register`] ends with one.
    fn barrier_all(&self) -> Result<()> {
        self.barrier()
    }

    /// From now on this node's `barrier` and `barrier_gather` wait for the
    /// compute nodes only (cluster.toml's `role`), so that memory nodes,
    /// which run no program code, take no part in them and cost them
    /// nothing. Every compute node calls it once, at the same point (after
    /// the last collective registration); a memory node never does. A
    /// gathering barrier still hands out one part per node, empty for the
    /// memory nodes. In a cluster without memory nodes it changes nothing.
    fn narrow_barriers(&self) {}

    /// Whether `node` is a memory node (cluster.toml's `role = "memory"`):
    /// it serves its memory to the others but runs no program code (so
    /// it writes nothing of its own) and, once barriers are narrowed,
    /// takes part in none.
    fn is_memory_node(&self, node: NodeId) -> bool {
        let _ = node;
        false
    }

    /// A barrier that also gathers: every node gives `mine`, and once all
    /// have arrived each gets every node's bytes, by rank (empty for the
    /// nodes outside the barrier: memory nodes once it is narrowed). `None` from a
    /// backend that cannot carry bytes with its barrier (then it was an
    /// ordinary barrier, and the caller fetches what it needs otherwise).
    fn barrier_gather(&self, mine: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        let _ = mine;
        self.barrier().map(|()| None)
    }

    /// Offers `service` under `number` (numbers from `SERVICE_USER` on are
    /// the caller's): peers invoke it with `call`, and it runs on a serving
    /// thread, with the calling node and the request bytes. Offer it on
    /// every node before any node calls it (before a barrier).
    fn offer(&self, number: u32, service: Service) -> Result<()> {
        let _ = (number, service);
        Err(TransportError::Invalid(
            "this transport offers no services".into(),
        ))
    }

    /// Calls service `number` on `node` with `request`; returns its reply.
    fn call(&self, node: NodeId, number: u32, request: &[u8]) -> Result<Vec<u8>> {
        let _ = (node, number, request);
        Err(TransportError::Invalid(
            "this transport offers no services".into(),
        ))
    }

    /// What this node has asked of the network so far.
    fn stats(&self) -> TransportStats;

    /// Says goodbye to every node so that their later failure detection does
    /// not count this node's exit as a crash. Call once every node is done
    /// (after a final barrier); further operations fail.
    fn shutdown(&self);

    /// Has `hook` called (from a transport thread) with the node and the
    /// reason as soon as any other node is known to have died, so that a
    /// node with nothing to ask of the dead one still learns of it.
    fn on_node_failure(&self, hook: FailureHook);
}

/// `Transport::compare_swap_run` as one `compare_swap` per word (the
/// default, and what a backend without a single operation for it does).
pub(crate) fn compare_swap_each<T: Transport + ?Sized>(
    transport: &T,
    node: NodeId,
    region: RegionId,
    offset: u64,
    count: u32,
    expected: u64,
    new: u64,
) -> Result<Vec<u64>> {
    let mut found = Vec::with_capacity(count as usize);
    for i in 0..u64::from(count) {
        let v = transport.compare_swap(node, region, offset + 8 * i, expected, new)?;
        found.push(v);
        if v != expected {
            break;
        }
    }
    Ok(found)
}

/// See [`Transport::on_node_failure`].
pub type FailureHook = Box<dyn Fn(NodeId, &str) + Send + Sync>;

/// Starts the backend cluster.toml names and joins the cluster as node `rank`.
/// Returns once every node is reachable and agrees on the configuration.
pub fn connect(config: &ClusterConfig, rank: NodeId) -> Result<Arc<dyn Transport>> {
    match config.transport {
        TransportKind::Tcp => Ok(Arc::new(tcp::TcpTransport::connect(config, rank)?)),
        #[cfg(feature = "verbs")]
        TransportKind::Verbs => Ok(Arc::new(verbs::VerbsTransport::connect(config, rank)?)),
        #[cfg(not(feature = "verbs"))]
        TransportKind::Verbs => Err(TransportError::Invalid(
            "cluster.toml asks for transport \"verbs\" but LOCO was built without the verbs feature"
                .into(),
        )),
    }
}

/// Checks the arguments every backend checks the same way before sending anything.
pub(crate) fn check_node(rank_count: usize, node: NodeId) -> Result<()> {
    if node >= rank_count {
        return Err(TransportError::Invalid(format!(
            "node {node} does not exist (the cluster has {rank_count} nodes)"
        )));
    }
    Ok(())
}

pub(crate) fn check_atomic_offset(offset: u64) -> Result<()> {
    if !offset.is_multiple_of(8) {
        return Err(TransportError::Invalid(format!(
            "atomic operations need an 8-byte aligned offset, got {offset}"
        )));
    }
    Ok(())
}

/// Lock-free counters behind [`TransportStats`].
#[derive(Default)]
pub(crate) struct StatCounters {
    reads: AtomicU64,
    bytes_read: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    scatters: AtomicU64,
    scatter_runs: AtomicU64,
    atomics: AtomicU64,
    barriers: AtomicU64,
}

impl StatCounters {
    pub(crate) fn read(&self, bytes: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn write(&self, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// A scatter of runs of these lengths.
    pub(crate) fn scatter(&self, runs: impl ExactSizeIterator<Item = usize>) {
        self.scatters.fetch_add(1, Ordering::Relaxed);
        self.scatter_runs
            .fetch_add(runs.len() as u64, Ordering::Relaxed);
        let bytes: usize = runs.sum();
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn atomic(&self) {
        self.atomics.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn barrier(&self) {
        self.barriers.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> TransportStats {
        TransportStats {
            reads: self.reads.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            scatters: self.scatters.load(Ordering::Relaxed),
            scatter_runs: self.scatter_runs.load(Ordering::Relaxed),
            atomics: self.atomics.load(Ordering::Relaxed),
            barriers: self.barriers.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MaskedRun;

    #[test]
    fn a_masked_run_names_its_stretches_of_bytes() {
        let data = [0u8; 20];
        let run = MaskedRun {
            offset: 0,
            data: &data,
            mask: &[0b1100_0011, 0b0000_0001, 0b1000],
        };
        run.check().unwrap();
        let mut stretches = Vec::new();
        run.for_each_stretch(|a, b| stretches.push((a, b)));
        assert_eq!(stretches, vec![(0, 2), (6, 9), (19, 20)]);
        let short = MaskedRun {
            mask: &[0xff],
            ..run
        };
        assert!(short.check().is_err());
    }
}
