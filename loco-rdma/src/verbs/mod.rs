//! The RDMA verbs backend: one-sided operations done by the NIC.
//!
//! Each node opens one RDMA device (cluster.toml's `rdma_device`, or the
//! first one), allocates one protection domain, and creates one reliable
//! connected (RC) queue pair, with its own completion queue and a registered
//! staging buffer, for every node of the cluster, itself included: the
//! loopback queue pair reaches the node's own memory the way the others do.
//!
//! - read / write: RDMA READ / WRITE through the staging buffer, cut into
//!   pieces no larger than the buffer and the port's message limit.
//! - scatter: one RDMA WRITE per run, chained, only the last request of a
//!   chain signaled; as many runs per chain as the staging buffer and the
//!   send queue hold (see `plan::Planner`).
//! - write and scatter end their last chain with a 1-byte RDMA READ of the
//!   target (the usual "flush"): a WRITE's completion only says the target's
//!   NIC has the data, while the READ's response cannot overtake the
//!   WRITEs' placement in the target's memory, so once it completes the
//!   bytes are visible there, as the `Transport` contract promises.
//! - fetch_add / compare_swap: IBV_WR_ATOMIC_FETCH_AND_ADD / CMP_AND_SWP into
//!   the first 8 bytes of the staging buffer, on the node's own memory too
//!   (through the loopback queue pair). A NIC atomic is a read and a write
//!   over PCIe, atomic only with respect to other NIC atomics: a CPU store
//!   to the word in between, to any of its bytes, is lost. So a region
//!   whose owner's code stores into it (`MemoryRegion::shared_with_cpu_stores`:
//!   the shared heap, where a program thread writes `a[1]` while another
//!   node's `omp atomic` updates `a[0]`) has its atomics done by the
//!   owner's CPU instead, through the control plane (its serving thread, or
//!   the calling thread for this node's own), which registered every region
//!   under the same id; `plan::atomic_path` decides. A word of any other
//!   region must be updated through the transport only, by its owner too
//!   (whose CPU may still load it).
//! - compare_swap_run: one compare_swap per word, or one control-plane
//!   request where the owner's CPU does them.
//!
//! Each queue pair is behind a mutex; the calling thread posts its requests
//! and busy-polls the queue pair's completion queue itself (no hand-off to
//! another thread), for at most cluster.toml's `op_timeout_ms`. A queue pair
//! whose request failed or timed out is in an unknown state (an RC queue pair
//! goes to the error state on any failure), so it is taken out of service and
//! later operations on that node fail at once with `NodeFailed`.
//!
//! The tcp backend is the control plane: it brings the nodes up (checking
//! they share one cluster.toml), carries the queue pair and region
//! descriptions through two services, and provides the barrier. Every
//! operation is checked locally against the target's region (the offsets
//! it holds, learnt at registration) before anything is posted.

#![deny(clippy::undocumented_unsafe_blocks)]

mod ffi;
mod plan;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use loco_cluster::ClusterConfig;
use rdma_sys::{
    atomic_t, ibv_atomic_cap, ibv_port_state, ibv_send_flags, ibv_send_wr, ibv_sge, ibv_wc,
    ibv_wc_status, ibv_wr_opcode, rdma_t,
};

use crate::tcp::TcpTransport;
use crate::{
    check_atomic_offset, check_node, compare_swap_each, MemoryRegion, NodeId, RegionId, Result,
    Run, StatCounters, Transport, TransportError, TransportStats,
};

use ffi::{
    access_local, access_remote, port_state_text, wc_status_text, zeroed_send_wr, CompletionQueue,
    Context, Endpoint, LocalPort, MemoryRegistration, ProtectionDomain, QueuePair,
    LINK_LAYER_ETHERNET,
};
use plan::{atomic_path, random_psn, AtomicPath, Limits, Piece, Planner, RegionInfo, Segment};

/// Control-plane service: "describe your queue pair for me" (reply: [`Endpoint`]).
const SERVICE_ENDPOINT: u32 = 0x7662_0001;
/// Control-plane service: "describe your region N" (request: u32 id; reply: [`RegionInfo`]).
const SERVICE_REGION: u32 = 0x7662_0002;

/// Bytes of each queue pair's registered staging buffer.
const STAGING_LEN: usize = 1 << 20;
/// The end of the buffer is kept for the flushing READ's byte.
const FLUSH_SLOT: usize = STAGING_LEN - 64;
/// What transfers may use of the staging buffer.
const STAGING_DATA: usize = FLUSH_SLOT;
/// Send queue depth asked for (the most work requests one chain may have).
const SEND_DEPTH: u32 = 256;
/// Outstanding RDMA READs/atomics per queue pair, if the device allows as many.
const MAX_RD_ATOMIC: u8 = 16;
/// Empty polls between two looks at the clock.
const POLLS_PER_CLOCK_CHECK: u32 = 256;
/// After this long without a completion the poller yields the CPU between polls
/// (a slow peer should not starve the node's other threads).
const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(50);

/// A node of a cluster whose nodes reach each other's memory over RDMA.
pub struct VerbsTransport {
    // Verbs objects, in teardown order (see Drop).
    /// One per node, indexed by node; `links[rank]` is the loopback.
    links: Vec<Mutex<Link>>,
    /// The registrations of the regions passed to `register`, in id order.
    registrations: Mutex<Vec<MemoryRegistration>>,
    pd: Arc<ProtectionDomain>,
    ctx: Arc<Context>,

    /// This node's regions as peers see them (served to them by SERVICE_REGION).
    local_regions: Arc<RwLock<Vec<RegionInfo>>>,
    /// Every node's description of each region: `[region][node]`.
    remote_regions: RwLock<Vec<Option<Vec<RegionInfo>>>>,
    /// Registration is collective and ordered; this keeps our ids in step with
    /// the control plane's even if two threads register at once.
    register_lock: Mutex<()>,
    control: TcpTransport,
    rank: NodeId,
    nodes: usize,
    op_timeout: Duration,
    closed: AtomicBool,
    stats: StatCounters,
}

/// The connection to one node.
struct Link {
    qp: QueuePair,
    staging: MemoryRegistration,
    limits: Limits,
    next_wr_id: u64,
    /// Why the queue pair is out of service, once it is.
    broken: Option<String>,
    /// Scratch space reused by every operation.
    batch: Vec<Piece>,
    requests: WorkRequests,
}

/// Scratch work requests and their scatter/gather entries.
struct WorkRequests {
    wrs: Vec<ibv_send_wr>,
    sges: Vec<ibv_sge>,
}

// SAFETY: the raw pointers inside the stored work requests (`next`, `sg_list`)
// are only meaningful during `QueuePair::post_send`, which rewrites them
// before every post; between operations they are stale values that nothing
// dereferences, so moving the vectors to another thread is harmless.
unsafe impl Send for WorkRequests {}

/// Which way a transfer's bytes go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// RDMA READ: target -> staging -> caller's buffer.
    Read,
    /// RDMA WRITE: caller's data -> staging -> target.
    Write,
}

/// One batch of READs or WRITEs to post as a chain.
struct Chain<'a> {
    direction: Direction,
    target: &'a RegionInfo,
    batch: &'a [Piece],
    /// End with a flushing READ (the last chain of a write or scatter).
    flush: bool,
}

/// One RDMA atomic.
struct AtomicRequest {
    op: &'static str,
    opcode: ibv_wr_opcode::Type,
    remote_addr: u64,
    rkey: u32,
    compare_add: u64,
    swap: u64,
}

fn refused(node: NodeId, op: &'static str, why: String) -> TransportError {
    TransportError::Refused { node, op, why }
}

/// A staging copy failed: the planner guarantees the ranges, so this is a bug
/// worth a clear error rather than a panic.
fn staging_error(op: &'static str, why: String) -> TransportError {
    TransportError::Verbs(format!("{op}: staging buffer access failed: {why}"))
}

/// The error a failed work completion becomes: the peer is gone (retries
/// exhausted, queue pair flushed) or the RDMA stack refused the request.
fn completion_error(node: NodeId, status: ibv_wc_status::Type, why: String) -> TransportError {
    match status {
        ibv_wc_status::IBV_WC_RETRY_EXC_ERR
        | ibv_wc_status::IBV_WC_RNR_RETRY_EXC_ERR
        | ibv_wc_status::IBV_WC_RESP_TIMEOUT_ERR
        | ibv_wc_status::IBV_WC_WR_FLUSH_ERR => TransportError::NodeFailed { node, why },
        _ => TransportError::Verbs(format!("node {node}: {why}")),
    }
}

fn describe_completion(op: &str, wc: &ibv_wc) -> String {
    format!(
        "{op} failed: {} (work completion status {}, vendor error {:#x})",
        wc_status_text(wc.status),
        wc.status,
        wc.vendor_err
    )
}

/// The device's limit on outstanding RDMA READs/atomics, capped at what we ask.
fn rd_atomic_depth(device_max: i32) -> u8 {
    u8::try_from(device_max.clamp(1, i32::from(MAX_RD_ATOMIC))).unwrap_or(1)
}

impl Link {
    fn usable(&self, node: NodeId) -> Result<()> {
        match &self.broken {
            None => Ok(()),
            Some(why) => Err(TransportError::NodeFailed {
                node,
                why: format!("the queue pair to node {node} is out of service: {why}"),
            }),
        }
    }

    fn take_wr_id(&mut self) -> u64 {
        self.next_wr_id = self.next_wr_id.wrapping_add(1);
        self.next_wr_id
    }

    /// Posts one batch as a chain of RDMA READs or WRITEs between the staging
    /// buffer and `target`, and waits for it. With `flush`, the chain ends
    /// with a 1-byte READ that completes only once the WRITEs are placed.
    fn post_batch(
        &mut self,
        node: NodeId,
        op: &'static str,
        chain: Chain<'_>,
        timeout: Duration,
    ) -> Result<()> {
        let Chain {
            direction,
            target,
            batch,
            flush,
        } = chain;
        let wr_id = self.take_wr_id();
        let opcode = match direction {
            Direction::Read => ibv_wr_opcode::IBV_WR_RDMA_READ,
            Direction::Write => ibv_wr_opcode::IBV_WR_RDMA_WRITE,
        };
        let (base, lkey) = (self.staging.addr(), self.staging.lkey());
        let WorkRequests { wrs, sges } = &mut self.requests;
        wrs.clear();
        sges.clear();
        let last = batch.len().saturating_sub(1);
        for (i, piece) in batch.iter().enumerate() {
            let length = u32::try_from(piece.len)
                .map_err(|_| staging_error(op, format!("a piece of {} bytes", piece.len)))?;
            sges.push(ibv_sge {
                addr: base + piece.staging as u64,
                length,
                lkey,
            });
            let mut wr = zeroed_send_wr();
            wr.wr_id = wr_id;
            wr.opcode = opcode;
            wr.send_flags = if i == last && !flush {
                ibv_send_flags::IBV_SEND_SIGNALED.0
            } else {
                0
            };
            wr.wr.rdma = rdma_t {
                remote_addr: target.checked_address(piece.remote),
                rkey: target.rkey,
            };
            wrs.push(wr);
        }
        if let (true, Some(piece)) = (flush, batch.last()) {
            sges.push(ibv_sge {
                addr: base + FLUSH_SLOT as u64,
                length: 1,
                lkey,
            });
            let mut wr = zeroed_send_wr();
            wr.wr_id = wr_id;
            wr.opcode = ibv_wr_opcode::IBV_WR_RDMA_READ;
            wr.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
            wr.wr.rdma = rdma_t {
                remote_addr: target.checked_address(piece.remote),
                rkey: target.rkey,
            };
            wrs.push(wr);
        }
        self.post_and_wait(node, op, wr_id, timeout)
    }

    /// Does one RDMA atomic; returns the value found at the target.
    fn atomic(&mut self, node: NodeId, req: &AtomicRequest, timeout: Duration) -> Result<u64> {
        let wr_id = self.take_wr_id();
        let (base, lkey) = (self.staging.addr(), self.staging.lkey());
        let WorkRequests { wrs, sges } = &mut self.requests;
        wrs.clear();
        sges.clear();
        // The staging buffer is page-aligned, so its first 8 bytes are an
        // aligned home for the returned value.
        sges.push(ibv_sge {
            addr: base,
            length: 8,
            lkey,
        });
        let mut wr = zeroed_send_wr();
        wr.wr_id = wr_id;
        wr.opcode = req.opcode;
        wr.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
        wr.wr.atomic = atomic_t {
            remote_addr: req.remote_addr,
            compare_add: req.compare_add,
            swap: req.swap,
            rkey: req.rkey,
        };
        wrs.push(wr);
        self.post_and_wait(node, req.op, wr_id, timeout)?;
        let mut old = [0u8; 8];
        self.staging
            .memory()
            .read(0, &mut old)
            .map_err(|why| staging_error(req.op, why))?;
        // The old value arrives in host byte order: devices that report atomic
        // support (checked at connect) reply that way; mlx5, for one, reports
        // IBV_ATOMIC_NONE when it cannot.
        Ok(u64::from_ne_bytes(old))
    }

    fn post_and_wait(
        &mut self,
        node: NodeId,
        op: &'static str,
        wr_id: u64,
        timeout: Duration,
    ) -> Result<()> {
        let WorkRequests { wrs, sges } = &mut self.requests;
        if let Err(e) = self.qp.post_send(wrs, sges) {
            // Some requests of the chain may have been posted: the queue pair's
            // state is unknown from here on.
            let why = format!("ibv_post_send failed during {op}: {e}");
            self.broken = Some(why.clone());
            return Err(TransportError::Verbs(format!("node {node}: {why}")));
        }
        self.wait(node, op, wr_id, timeout)
    }

    /// Busy-polls the completion queue for the completion of `wr_id`.
    fn wait(
        &mut self,
        node: NodeId,
        op: &'static str,
        wr_id: u64,
        timeout: Duration,
    ) -> Result<()> {
        let start = Instant::now();
        let mut polls: u32 = 0;
        loop {
            match self.qp.cq().poll() {
                Err(e) => {
                    self.broken = Some(e.to_string());
                    return Err(e);
                }
                Ok(Some(wc)) if wc.status != ibv_wc_status::IBV_WC_SUCCESS => {
                    let why = describe_completion(op, &wc);
                    self.broken = Some(why.clone());
                    return Err(completion_error(node, wc.status, why));
                }
                Ok(Some(wc)) if wc.wr_id == wr_id => return Ok(()),
                // Only the last request of a chain is signaled and every
                // operation waits for its own, so nothing else can be queued;
                // should a stray completion turn up, it is not ours to report.
                Ok(Some(_)) => {}
                Ok(None) => {
                    polls = polls.wrapping_add(1);
                    if !polls.is_multiple_of(POLLS_PER_CLOCK_CHECK) {
                        std::hint::spin_loop();
                        continue;
                    }
                    let waited = start.elapsed();
                    if waited >= timeout {
                        // The request may still complete later, into the staging
                        // buffer: never use this queue pair again.
                        self.broken = Some(format!("{op} had no completion within {timeout:?}"));
                        return Err(TransportError::Timeout { node, timeout, op });
                    }
                    if waited >= SPIN_BEFORE_YIELD {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }
}

impl VerbsTransport {
    /// Joins the cluster as node `rank` over RDMA: opens the device (failing
    /// with [`TransportError::NoDevice`] before touching the network when this
    /// machine has none), brings up the tcp control plane, and connects a
    /// queue pair to every node, itself included.
    pub fn connect(config: &ClusterConfig, rank: NodeId) -> Result<Self> {
        let nodes = config.num_nodes();
        check_node(nodes, rank)?;
        let me = &config.nodes[rank];
        let port = me.rdma_port;

        let ctx = Context::open(me.rdma_device.as_deref())?;
        let device = ctx.query_device()?;
        if device.atomic_cap == ibv_atomic_cap::IBV_ATOMIC_NONE {
            return Err(TransportError::Verbs(format!(
                "RDMA device {} does not support atomic operations, which LOCO's remote \
                 atomics need",
                ctx.name()
            )));
        }
        let port_attr = ctx.query_port(port)?;
        if port_attr.state != ibv_port_state::IBV_PORT_ACTIVE
            && port_attr.state != ibv_port_state::IBV_PORT_ACTIVE_DEFER
        {
            return Err(TransportError::NoDevice(format!(
                "port {port} of RDMA device {} is not active ({}); check the link, or \
                 rdma_port in the cluster description",
                ctx.name(),
                port_state_text(port_attr.state)
            )));
        }
        let global = port_attr.link_layer == LINK_LAYER_ETHERNET;
        let gid = if i32::from(me.gid_index) < port_attr.gid_tbl_len {
            ctx.query_gid(port, me.gid_index)?
        } else if global {
            return Err(TransportError::Verbs(format!(
                "gid_index {} is outside the GID table of {} port {port} ({} entries)",
                me.gid_index,
                ctx.name(),
                port_attr.gid_tbl_len
            )));
        } else {
            [0; 16]
        };
        if global && gid == [0; 16] {
            return Err(TransportError::Verbs(format!(
                "GID {} of {} port {port} is empty; RoCE needs gid_index to name the GID of \
                 the interface's address (see /sys/class/infiniband/{}/ports/{port}/gids/)",
                me.gid_index,
                ctx.name(),
                ctx.name()
            )));
        }
        let local = LocalPort {
            port,
            gid_index: me.gid_index,
            global,
            max_rd_atomic: rd_atomic_depth(device.max_qp_init_rd_atom),
            max_dest_rd_atomic: rd_atomic_depth(device.max_qp_rd_atom),
        };
        // At least two: a chain of one WRITE and its flushing READ.
        let depth = SEND_DEPTH
            .min(u32::try_from(device.max_qp_wr).unwrap_or(2))
            .max(2);
        // Room for a completion per outstanding request (a failed chain
        // flushes them all), within the device's limit.
        let cq_entries =
            (2 * depth).min(u32::try_from(device.max_cqe).unwrap_or(u32::MAX).max(depth));
        let max_piece = match usize::try_from(port_attr.max_msg_sz) {
            Ok(0) | Err(_) => STAGING_DATA,
            Ok(m) => m.min(STAGING_DATA),
        };

        let pd = ProtectionDomain::alloc(&ctx)?;
        let mut links = Vec::with_capacity(nodes);
        let mut endpoints = Vec::with_capacity(nodes);
        for peer in 0..nodes {
            let cq = CompletionQueue::create(&ctx, cq_entries)?;
            let qp = QueuePair::create_rc(&pd, cq, depth)?;
            qp.to_init(port, peer)?;
            let memory =
                MemoryRegion::anonymous(STAGING_LEN).map_err(|source| TransportError::Io {
                    what: "cannot allocate an RDMA staging buffer".into(),
                    source,
                })?;
            let staging = MemoryRegistration::new(&pd, Arc::new(memory), access_local())?;
            endpoints.push(Endpoint {
                qp_num: qp.qp_num(),
                lid: port_attr.lid,
                psn: random_psn(),
                mtu: port_attr.active_mtu,
                gid,
            });
            // One slot of the send queue is kept for the flushing READ.
            let max_wrs = (depth.min(qp.max_send_wr()) as usize)
                .saturating_sub(1)
                .max(1);
            links.push(Link {
                qp,
                staging,
                limits: Limits {
                    staging: STAGING_DATA,
                    max_piece,
                    max_wrs,
                },
                next_wr_id: 0,
                broken: None,
                batch: Vec::new(),
                requests: WorkRequests {
                    wrs: Vec::with_capacity(max_wrs + 1),
                    sges: Vec::with_capacity(max_wrs + 1),
                },
            });
        }

        let control = TcpTransport::connect(config, rank)?;
        let endpoints = Arc::new(endpoints);
        {
            let endpoints = endpoints.clone();
            control.add_service(
                SERVICE_ENDPOINT,
                Arc::new(move |caller, _request| {
                    endpoints
                        .get(caller)
                        .map(Endpoint::encode)
                        .ok_or_else(|| format!("node {caller} is not in this cluster"))
                }),
            );
        }
        let local_regions: Arc<RwLock<Vec<RegionInfo>>> = Arc::default();
        {
            let regions = local_regions.clone();
            control.add_service(
                SERVICE_REGION,
                Arc::new(move |_caller, request| {
                    let id = <[u8; 4]>::try_from(request)
                        .map(u32::from_le_bytes)
                        .map_err(|_| format!("a region request of {} bytes", request.len()))?;
                    regions
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(id as usize)
                        .map(RegionInfo::encode)
                        .ok_or_else(|| format!("region {id} is not registered"))
                }),
            );
        }
        // Every node's services are in place once everyone is through here.
        control.barrier()?;
        for (peer, link) in links.iter().enumerate() {
            let remote = if peer == rank {
                endpoints[rank]
            } else {
                let reply = control.call(peer, SERVICE_ENDPOINT, &[])?;
                Endpoint::decode(&reply)
                    .map_err(|why| TransportError::Mismatch { node: peer, why })?
            };
            link.qp
                .to_rtr(&local, port_attr.active_mtu, &remote, peer)?;
            link.qp.to_rts(&local, endpoints[peer].psn, peer)?;
        }
        // No request is sent before every queue pair can receive.
        control.barrier()?;

        Ok(VerbsTransport {
            links: links.into_iter().map(Mutex::new).collect(),
            registrations: Mutex::new(Vec::new()),
            pd,
            ctx,
            local_regions,
            remote_regions: RwLock::new(Vec::new()),
            register_lock: Mutex::new(()),
            control,
            rank,
            nodes,
            op_timeout: config.op_timeout,
            closed: AtomicBool::new(false),
            stats: StatCounters::default(),
        })
    }

    /// The RDMA device this node uses.
    pub fn device_name(&self) -> &str {
        self.ctx.name()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Invalid(
                "the transport has been shut down".into(),
            ));
        }
        Ok(())
    }

    /// How `node` described `region` when it was registered.
    fn target(&self, node: NodeId, region: RegionId, op: &'static str) -> Result<RegionInfo> {
        self.check_open()?;
        let table = self
            .remote_regions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        table
            .get(region.0 as usize)
            .and_then(Option::as_ref)
            .and_then(|per_node| per_node.get(node).copied())
            .ok_or_else(|| refused(node, op, format!("region {} is not registered", region.0)))
    }

    fn link(&self, node: NodeId) -> Result<MutexGuard<'_, Link>> {
        let link = self.links[node].lock().map_err(|_| {
            TransportError::Verbs(format!(
                "the queue pair to node {node} is unusable: a thread panicked while using it"
            ))
        })?;
        link.usable(node)?;
        Ok(link)
    }

    /// Moves the bytes of `segs` between the caller and `target` on `node`
    /// through the staging buffer. `copy` moves one piece between the caller's
    /// memory and the staging buffer: before posting for writes, after the
    /// completion for reads. The segments must have been bounds-checked.
    fn transfer(
        &self,
        node: NodeId,
        op: &'static str,
        direction: Direction,
        target: &RegionInfo,
        segs: &[Segment],
        mut copy: impl FnMut(&MemoryRegion, &Piece) -> Result<(), String>,
    ) -> Result<()> {
        let mut guard = self.link(node)?;
        let link = &mut *guard;
        let mut planner = Planner::new(segs, link.limits);
        let mut batch = std::mem::take(&mut link.batch);
        while planner.next_batch(&mut batch) {
            if direction == Direction::Write {
                for piece in &batch {
                    copy(link.staging.memory(), piece).map_err(|why| staging_error(op, why))?;
                }
            }
            let flush = direction == Direction::Write && planner.finished();
            let chain = Chain {
                direction,
                target,
                batch: &batch,
                flush,
            };
            link.post_batch(node, op, chain, self.op_timeout)?;
            if direction == Direction::Read {
                for piece in &batch {
                    copy(link.staging.memory(), piece).map_err(|why| staging_error(op, why))?;
                }
            }
        }
        link.batch = batch;
        Ok(())
    }

    fn atomic(
        &self,
        node: NodeId,
        region: RegionId,
        offset: u64,
        op: &'static str,
        opcode: ibv_wr_opcode::Type,
        (compare_add, swap): (u64, u64),
    ) -> Result<u64> {
        check_node(self.nodes, node)?;
        check_atomic_offset(offset)?;
        self.stats.atomic();
        let target = self.target(node, region, op)?;
        if atomic_path(&target) == AtomicPath::TargetCpu {
            // The control plane knows the region by the same id (`register`).
            return if opcode == ibv_wr_opcode::IBV_WR_ATOMIC_FETCH_AND_ADD {
                self.control.fetch_add(node, region, offset, compare_add)
            } else {
                self.control
                    .compare_swap(node, region, offset, compare_add, swap)
            };
        }
        let remote_addr = target
            .address_of(offset, 8)
            .map_err(|why| refused(node, op, why))?;
        if remote_addr % 8 != 0 {
            return Err(refused(
                node,
                op,
                format!("atomic at remote address {remote_addr:#x} is not 8-byte aligned"),
            ));
        }
        let request = AtomicRequest {
            op,
            opcode,
            remote_addr,
            rkey: target.rkey,
            compare_add,
            swap,
        };
        self.link(node)?.atomic(node, &request, self.op_timeout)
    }
}

impl Transport for VerbsTransport {
    fn rank(&self) -> NodeId {
        self.rank
    }

    fn num_nodes(&self) -> usize {
        self.nodes
    }

    fn register(&self, region: Arc<MemoryRegion>) -> Result<RegionId> {
        self.check_open()?;
        let _serial = self
            .register_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let registration = MemoryRegistration::new(&self.pd, region.clone(), access_remote())?;
        let info = RegionInfo::of(&region, registration.addr(), registration.rkey());
        // Published before the control plane's barrier, so every peer can ask
        // for it once the collective registration is through.
        let index = {
            let mut local = self
                .local_regions
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            local.push(info);
            local.len() - 1
        };
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(registration);
        // The same region under the same id: atomics the owner's CPU must
        // do (`plan::atomic_path`) go to it through the control plane.
        let id = self.control.register(region)?;
        if id.0 as usize != index {
            return Err(TransportError::Verbs(format!(
                "region ids out of step with the control plane (verbs {index}, tcp {})",
                id.0
            )));
        }
        let mut per_node = Vec::with_capacity(self.nodes);
        for node in 0..self.nodes {
            if node == self.rank {
                per_node.push(info);
                continue;
            }
            let reply = self
                .control
                .call(node, SERVICE_REGION, &id.0.to_le_bytes())?;
            per_node.push(
                RegionInfo::decode(&reply).map_err(|why| TransportError::Mismatch { node, why })?,
            );
        }
        let mut table = self
            .remote_regions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if table.len() <= index {
            table.resize(index + 1, None);
        }
        table[index] = Some(per_node);
        Ok(id)
    }

    fn read(&self, node: NodeId, region: RegionId, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_node(self.nodes, node)?;
        self.stats.read(buf.len());
        let target = self.target(node, region, "read")?;
        target
            .address_of(offset, buf.len())
            .map_err(|why| refused(node, "read", why))?;
        let segs = [Segment {
            remote: offset,
            len: buf.len(),
        }];
        self.transfer(
            node,
            "read",
            Direction::Read,
            &target,
            &segs,
            |staging, p| staging.read(p.staging as u64, &mut buf[p.seg_off..p.seg_off + p.len]),
        )
    }

    fn write(&self, node: NodeId, region: RegionId, offset: u64, data: &[u8]) -> Result<()> {
        check_node(self.nodes, node)?;
        self.stats.write(data.len());
        let target = self.target(node, region, "write")?;
        target
            .address_of(offset, data.len())
            .map_err(|why| refused(node, "write", why))?;
        let segs = [Segment {
            remote: offset,
            len: data.len(),
        }];
        self.transfer(
            node,
            "write",
            Direction::Write,
            &target,
            &segs,
            |staging, p| staging.write(p.staging as u64, &data[p.seg_off..p.seg_off + p.len]),
        )
    }

    fn scatter(&self, node: NodeId, region: RegionId, runs: &[Run<'_>]) -> Result<()> {
        check_node(self.nodes, node)?;
        self.stats.scatter(runs.iter().map(|r| r.data.len()));
        let target = self.target(node, region, "scatter")?;
        // All or nothing: every run is checked before any is posted.
        for run in runs {
            target
                .address_of(run.offset, run.data.len())
                .map_err(|why| refused(node, "scatter", why))?;
        }
        let segs: Vec<Segment> = runs
            .iter()
            .map(|r| Segment {
                remote: r.offset,
                len: r.data.len(),
            })
            .collect();
        self.transfer(
            node,
            "scatter",
            Direction::Write,
            &target,
            &segs,
            |staging, p| {
                staging.write(
                    p.staging as u64,
                    &runs[p.seg].data[p.seg_off..p.seg_off + p.len],
                )
            },
        )
    }

    fn fetch_add(&self, node: NodeId, region: RegionId, offset: u64, delta: u64) -> Result<u64> {
        self.atomic(
            node,
            region,
            offset,
            "fetch_add",
            ibv_wr_opcode::IBV_WR_ATOMIC_FETCH_AND_ADD,
            (delta, 0),
        )
    }

    fn compare_swap(
        &self,
        node: NodeId,
        region: RegionId,
        offset: u64,
        expected: u64,
        new: u64,
    ) -> Result<u64> {
        self.atomic(
            node,
            region,
            offset,
            "compare_swap",
            ibv_wr_opcode::IBV_WR_ATOMIC_CMP_AND_SWP,
            (expected, new),
        )
    }

    fn compare_swap_run(
        &self,
        node: NodeId,
        region: RegionId,
        offset: u64,
        count: u32,
        expected: u64,
        new: u64,
    ) -> Result<Vec<u64>> {
        check_node(self.nodes, node)?;
        check_atomic_offset(offset)?;
        let target = self.target(node, region, "compare_swap_run")?;
        if atomic_path(&target) == AtomicPath::TargetCpu {
            self.stats.atomic();
            return self
                .control
                .compare_swap_run(node, region, offset, count, expected, new);
        }
        compare_swap_each(self, node, region, offset, count, expected, new)
    }

    fn barrier(&self) -> Result<()> {
        self.stats.barrier();
        self.control.barrier()
    }

    fn barrier_all(&self) -> Result<()> {
        self.stats.barrier();
        self.control.barrier_all()
    }

    fn narrow_barriers(&self) {
        self.control.narrow_barriers()
    }

    fn is_memory_node(&self, node: NodeId) -> bool {
        self.control.is_memory_node(node)
    }

    fn offer(&self, number: u32, service: crate::Service) -> Result<()> {
        self.control.add_service(number, service);
        Ok(())
    }

    fn call(&self, node: NodeId, number: u32, request: &[u8]) -> Result<Vec<u8>> {
        TcpTransport::call(&self.control, node, number, request)
    }

    fn stats(&self) -> TransportStats {
        self.stats.snapshot()
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.control.shutdown();
    }

    fn on_node_failure(&self, hook: crate::FailureHook) {
        // Node deaths are seen by the tcp control plane's liveness connections.
        self.control.on_node_failure(hook);
    }
}

impl Drop for VerbsTransport {
    /// Tears the verbs objects down in the order libibverbs needs: queue pairs
    /// (each followed by its completion queue and staging registration), then
    /// the regions' registrations; the protection domain and the device
    /// follow as the fields `pd` and `ctx` drop (each child held an `Arc` of
    /// its parent, so the parents outlive every child whatever happens).
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.links.clear();
        self.registrations
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests;
