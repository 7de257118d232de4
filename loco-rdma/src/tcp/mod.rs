//! The tcp backend: for machines without RDMA.
//!
//! Each node listens on its cluster.toml address; a serving thread per
//! incoming connection performs reads, writes, scatters and atomics on the
//! node's registered memory. A caller takes an idle connection to the target
//! from a per-node pool (opening one if none is idle) and does the request
//! and response itself: no hand-off between threads on the fast path.
//!
//! Failure: every node holds one idle "liveness" connection to every other
//! node. When a process dies the kernel closes it, the peer's serving thread
//! sees the end without a goodbye and marks the node dead; node 0, which
//! coordinates barriers, then fails the barrier for everyone. Operations time
//! out after cluster.toml's `op_timeout_ms`.

mod server;

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loco_cluster::ClusterConfig;

use server::NodeState;
pub use server::Service;

use crate::wire::{
    self, Op, Purpose, Request, Response, Scope, Status, PROTOCOL_VERSION, RESPONSE_LEN,
};
use crate::{
    check_atomic_offset, check_node, MaskedRun, MemoryRegion, NodeId, RegionId, Result, Run,
    StatCounters, Transport, TransportError, TransportStats,
};

/// How long to wait between attempts to reach a node that is not up yet.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// A node of a cluster whose nodes talk plain TCP.
pub struct TcpTransport {
    node: Arc<NodeState>,
    peers: Vec<Peer>,
    op_timeout: Duration,
    /// Shared with the accepting thread; held here so shutdown can wake it.
    listener: Arc<TcpListener>,
    barriers: AtomicU64,
    /// `barrier` and `barrier_gather` wait for the compute nodes only
    /// (`Transport::narrow_barriers`).
    narrowed: AtomicBool,
    stats: StatCounters,
}

struct Peer {
    address: String,
    idle: Mutex<Vec<Connection>>,
    /// Never used after the handshake; see the module comment.
    liveness: Mutex<Option<TcpStream>>,
}

struct Connection {
    stream: TcpStream,
    scratch: Vec<u8>,
}

impl TcpTransport {
    /// Joins the cluster as node `rank`: listens on its address, reaches every
    /// other node (retrying until `connect_timeout`), checks they share this
    /// cluster.toml, and waits until all nodes have done the same.
    pub fn connect(config: &ClusterConfig, rank: NodeId) -> Result<Self> {
        let n = config.num_nodes();
        check_node(n, rank)?;
        let me = &config.nodes[rank];
        let bind_addr = resolve(&me.address()).map_err(|why| TransportError::Unreachable {
            node: rank,
            address: me.address(),
            why,
        })?;
        let listener = TcpListener::bind(bind_addr).map_err(|source| TransportError::Io {
            what: format!(
                "node {rank} cannot listen on {} (its address in the cluster description)",
                me.address()
            ),
            source,
        })?;
        let listener = Arc::new(listener);
        let memory = config
            .nodes
            .iter()
            .map(|n| n.role == loco_cluster::Role::Memory)
            .collect();
        let node = Arc::new(NodeState::new(rank, memory, config.fingerprint()));
        {
            let node = node.clone();
            let listener = listener.clone();
            std::thread::Builder::new()
                .name("loco-tcp-accept".into())
                .spawn(move || server::accept_loop(listener, node))
                .map_err(|source| TransportError::Io {
                    what: "cannot start the accepting thread".into(),
                    source,
                })?;
        }
        let transport = TcpTransport {
            node,
            peers: config
                .nodes
                .iter()
                .map(|n| Peer {
                    address: n.address(),
                    idle: Mutex::new(Vec::new()),
                    liveness: Mutex::new(None),
                })
                .collect(),
            op_timeout: config.op_timeout,
            listener,
            barriers: AtomicU64::new(0),
            narrowed: AtomicBool::new(false),
            stats: StatCounters::default(),
        };
        let deadline = Instant::now() + config.connect_timeout;
        for peer in (0..n).filter(|&p| p != rank) {
            let stream = transport.open(peer, Purpose::Liveness, Some(deadline))?;
            *transport.peers[peer].liveness.lock().unwrap() = Some(stream);
        }
        // Everyone is listening and reachable once everyone is through here.
        transport.barrier_all()?;
        Ok(transport)
    }

    /// Offers a service that peers invoke with [`TcpTransport::call`].
    pub fn add_service(&self, number: u32, service: Service) {
        self.node.services.write().unwrap().insert(number, service);
    }

    /// Calls service `number` on `node` with `request`; returns its reply.
    /// The control plane of backends built on this one (verbs connection set-up).
    pub fn call(&self, node: NodeId, number: u32, request: &[u8]) -> Result<Vec<u8>> {
        check_node(self.node.nodes, node)?;
        let req = Request::new(Op::Call, number, 0, request.len() as u64, 0);
        self.exchange(node, "call", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), request)?;
            let resp = read_response(&mut c.stream, false)?;
            match resp {
                Ok(r) => {
                    let mut reply = vec![0u8; usize::try_from(r.value).unwrap_or(usize::MAX)];
                    c.stream.read_exact(&mut reply)?;
                    Ok(Ok(reply))
                }
                Err(e) => Ok(Err(e)),
            }
        })
    }

    /// Opens a connection to `peer` and says hello. With a deadline, a refused
    /// connection is retried until then (the peer may not be up yet).
    fn open(&self, peer: NodeId, purpose: Purpose, deadline: Option<Instant>) -> Result<TcpStream> {
        let address = &self.peers[peer].address;
        let unreachable = |why: String| TransportError::Unreachable {
            node: peer,
            address: address.clone(),
            why,
        };
        let addr = resolve(address).map_err(unreachable)?;
        let mut stream = loop {
            match TcpStream::connect_timeout(&addr, self.op_timeout) {
                Ok(s) => break s,
                Err(e) => match deadline {
                    Some(d) if Instant::now() < d => std::thread::sleep(CONNECT_RETRY),
                    Some(_) => {
                        return Err(unreachable(format!(
                            "{e} (still no answer after the connect timeout)"
                        )))
                    }
                    None => return Err(self.lost(peer, &e, "connect")),
                },
            }
        };
        // At bootstrap a failed handshake means the node is not (yet) reachable;
        // later it means a node that was up has gone.
        let io_err = |e: io::Error| match deadline {
            Some(_) => unreachable(format!("handshake failed: {e}")),
            None => self.lost(peer, &e, "connect"),
        };
        stream.set_nodelay(true).map_err(io_err)?;
        stream
            .set_read_timeout(Some(self.op_timeout))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(self.op_timeout))
            .map_err(io_err)?;
        let hello = Request::new(
            Op::Hello,
            PROTOCOL_VERSION,
            self.node.fingerprint,
            self.node.rank as u64,
            purpose as u64,
        );
        std::io::Write::write_all(&mut stream, &hello.encode()).map_err(io_err)?;
        match read_response(&mut stream, false).map_err(io_err)? {
            Ok(_) => Ok(stream),
            Err(refusal) => Err(TransportError::Mismatch {
                node: peer,
                why: refusal.why,
            }),
        }
    }

    /// Runs one request/response on a connection to `node`, from the pool or new.
    /// `f` returns Ok(Err(..)) for a response that refused the operation: the
    /// connection is still in step and goes back to the pool.
    fn exchange<T>(
        &self,
        node: NodeId,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> io::Result<Result<T, Refusal>>,
    ) -> Result<T> {
        if let Some(why) = self.node.dead_reason(node) {
            return Err(TransportError::NodeFailed { node, why });
        }
        if self.node.closing.load(Ordering::Acquire) {
            return Err(TransportError::Invalid(
                "the transport has been shut down".into(),
            ));
        }
        let pooled = self.peers[node].idle.lock().unwrap().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => Connection {
                stream: self.open(node, Purpose::Data, None)?,
                scratch: Vec::new(),
            },
        };
        match f(&mut conn) {
            Ok(result) => {
                self.peers[node].idle.lock().unwrap().push(conn);
                result.map_err(|e| self.refused(node, op, e))
            }
            // The connection's state is unknown: drop it.
            Err(e) => Err(self.lost(node, &e, op)),
        }
    }

    fn refused(&self, node: NodeId, op: &'static str, refusal: Refusal) -> TransportError {
        match refusal.status {
            // A barrier failed: the coordinator names the node that died.
            Status::NodeFailed => TransportError::NodeFailed {
                node: refusal.aux as NodeId,
                why: refusal.why,
            },
            _ => TransportError::Refused {
                node,
                op,
                why: refusal.why,
            },
        }
    }

    /// Maps a broken connection to the error the caller sees.
    fn lost(&self, node: NodeId, e: &io::Error, op: &'static str) -> TransportError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::Timeout {
                node,
                timeout: self.op_timeout,
                op,
            },
            _ => TransportError::NodeFailed {
                node,
                why: match self.node.dead_reason(node) {
                    Some(why) => why,
                    None if e.kind() == io::ErrorKind::UnexpectedEof => {
                        format!("connection closed during {op}")
                    }
                    None => format!("{op} failed: {e}"),
                },
            },
        }
    }

    fn local_region(&self, region: RegionId) -> Result<Arc<MemoryRegion>> {
        self.node
            .region(region.0)
            .map_err(|why| TransportError::Refused {
                node: self.node.rank,
                op: "local access",
                why,
            })
    }

    fn local<T>(
        &self,
        region: RegionId,
        op: &'static str,
        f: impl FnOnce(&MemoryRegion) -> Result<T, String>,
    ) -> Result<T> {
        let r = self.local_region(region)?;
        f(&r).map_err(|why| TransportError::Refused {
            node: self.node.rank,
            op,
            why,
        })
    }

    /// Sends a scatter's payload (`Op::Scatter` or `Op::ScatterMasked`)
    /// and waits for the target to have applied it.
    fn send_scatter(
        &self,
        node: NodeId,
        region: RegionId,
        op: Op,
        payload: &[u8],
        runs: usize,
    ) -> Result<()> {
        let req = Request::new(op, region.0, 0, payload.len() as u64, runs as u64);
        self.exchange(node, "scatter", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), payload)?;
            Ok(read_response(&mut c.stream, false)?.map(|_| ()))
        })
    }

    fn simple_op(&self, node: NodeId, op: &'static str, req: Request) -> Result<u64> {
        self.exchange(node, op, |c| {
            c.stream.write_all_header(&req)?;
            Ok(read_response(&mut c.stream, false)?.map(|r| r.value))
        })
    }
}

trait WriteHeader {
    fn write_all_header(&mut self, req: &Request) -> io::Result<()>;
}

impl WriteHeader for TcpStream {
    fn write_all_header(&mut self, req: &Request) -> io::Result<()> {
        std::io::Write::write_all(self, &req.encode())
    }
}

/// A response that refused the operation (the connection stays usable).
struct Refusal {
    status: Status,
    aux: u32,
    why: String,
}

/// How long a thread waiting for a barrier's answer polls its socket
/// before it sleeps in `recv` (other answers are waited for asleep: a
/// fault thread polling for a page took the CPU the serving side needed,
/// and NAS MG and LULESH on 2 nodes got slower): `LOCO_POLL_US` if set, else what the runtime chose
/// (`set_default_poll_us`), else 50 µs; 0: never. An answer that comes
/// while it polls costs no wake-up through the scheduler (~40 µs on a
/// small VM, most of a round trip); one that takes longer costs at most
/// this much CPU in the waiting thread before it sleeps. Node 0's barrier
/// coordinator polls the same way for the last node's arrival.
pub(crate) fn poll_time() -> Duration {
    static FROM_ENV: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let us = FROM_ENV
        .get_or_init(|| {
            std::env::var("LOCO_POLL_US")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or_else(|| DEFAULT_POLL_US.load(Ordering::Relaxed));
    Duration::from_micros(us.min(MAX_POLL_US))
}

static DEFAULT_POLL_US: AtomicU64 = AtomicU64::new(50);
const MAX_POLL_US: u64 = 100_000;

/// Sets how long waits for answers poll when `LOCO_POLL_US` is not set.
/// Polling pays only where the waiting thread has a CPU of its own: the
/// runtime turns it off when this machine runs more busy threads (all its
/// nodes' OpenMP threads) than it has CPUs, where a polling thread would
/// take the CPU from the thread it waits for.
pub fn set_default_poll_us(us: u64) {
    DEFAULT_POLL_US.store(us, Ordering::Relaxed);
}

/// Polls `stream` until a byte can be read or `poll_time()` has passed
/// (then the caller's blocking read sleeps until it can).
fn poll_readable(stream: &TcpStream) {
    let limit = poll_time();
    if limit.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut byte = 0u8;
    loop {
        // SAFETY: recv on a socket we own into a one-byte buffer on our
        // stack; MSG_PEEK leaves the byte for the read that follows and
        // MSG_DONTWAIT keeps the call from sleeping.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // Data, end of stream or an error: the blocking read sees which.
        if n >= 0 || std::io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
            return;
        }
        if start.elapsed() >= limit {
            return;
        }
        std::hint::spin_loop();
    }
}

/// The answer to a request that reads `buf.len()` bytes (`what`): the
/// bytes into `buf`, or the target's refusal.
fn read_bytes_answer(
    stream: &mut TcpStream,
    buf: &mut [u8],
    what: &str,
) -> io::Result<Result<(), Refusal>> {
    match read_response(stream, false)? {
        Ok(r) if r.value == buf.len() as u64 => {
            stream.read_exact(buf)?;
            Ok(Ok(()))
        }
        Ok(r) => Err(wire::invalid(format!(
            "{what} answered {} bytes, asked {}",
            r.value,
            buf.len()
        ))),
        Err(e) => Ok(Err(e)),
    }
}

/// Reads a response header; a refusal's message is read too. With `patient`,
/// a read timeout before the first byte just means "keep waiting" (barriers).
fn read_response(stream: &mut TcpStream, patient: bool) -> io::Result<Result<Response, Refusal>> {
    if patient {
        poll_readable(stream);
    }
    let mut h = [0u8; RESPONSE_LEN];
    let mut got = 0;
    while got < RESPONSE_LEN {
        match stream.read(&mut h[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if patient
                    && got == 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
            Err(e) => return Err(e),
        }
    }
    let resp = Response::decode(&h)?;
    match resp.status {
        Status::Ok => Ok(Ok(resp)),
        status => Ok(Err(Refusal {
            status,
            aux: resp.aux,
            why: wire::read_message(stream, resp.value)?,
        })),
    }
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))
}

impl Transport for TcpTransport {
    fn rank(&self) -> NodeId {
        self.node.rank
    }

    fn num_nodes(&self) -> usize {
        self.node.nodes
    }

    fn register(&self, region: Arc<MemoryRegion>) -> Result<RegionId> {
        let id = {
            let mut regions = self.node.regions.write().unwrap();
            regions.push(region);
            RegionId((regions.len() - 1) as u32)
        };
        // Nobody touches the region before every node has registered its own.
        self.barrier_all()?;
        Ok(id)
    }

    fn read(&self, node: NodeId, region: RegionId, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_node(self.node.nodes, node)?;
        self.stats.read(buf.len());
        if node == self.node.rank {
            return self.local(region, "read", |r| r.read(offset, buf));
        }
        let req = Request::new(Op::Read, region.0, offset, buf.len() as u64, 0);
        self.exchange(node, "read", |c| {
            c.stream.write_all_header(&req)?;
            read_bytes_answer(&mut c.stream, buf, "read")
        })
    }

    fn write_then_read(
        &self,
        node: NodeId,
        write: (RegionId, u64, &[u8]),
        region: RegionId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        check_node(self.node.nodes, node)?;
        let (write_region, write_offset, data) = write;
        if node == self.node.rank {
            self.write(node, write_region, write_offset, data)?;
            return self.read(node, region, offset, buf);
        }
        self.stats.write(data.len());
        self.stats.read(buf.len());
        let req = Request::new(
            Op::WriteRead,
            region.0,
            offset,
            12 + data.len() as u64,
            buf.len() as u64,
        );
        let mut payload = Vec::with_capacity(12 + data.len());
        payload.extend_from_slice(&write_region.0.to_le_bytes());
        payload.extend_from_slice(&write_offset.to_le_bytes());
        payload.extend_from_slice(data);
        self.exchange(node, "write_then_read", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), &payload)?;
            read_bytes_answer(&mut c.stream, buf, "write_then_read")
        })
    }

    fn write(&self, node: NodeId, region: RegionId, offset: u64, data: &[u8]) -> Result<()> {
        check_node(self.node.nodes, node)?;
        self.stats.write(data.len());
        if node == self.node.rank {
            return self.local(region, "write", |r| r.write(offset, data));
        }
        let req = Request::new(Op::Write, region.0, offset, data.len() as u64, 0);
        self.exchange(node, "write", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), data)?;
            Ok(read_response(&mut c.stream, false)?.map(|_| ()))
        })
    }

    fn scatter(&self, node: NodeId, region: RegionId, runs: &[Run<'_>]) -> Result<()> {
        check_node(self.node.nodes, node)?;
        self.stats.scatter(runs.iter().map(|r| r.data.len()));
        if node == self.node.rank {
            return self.local(region, "scatter", |r| {
                let runs: Vec<(u64, &[u8])> =
                    runs.iter().map(|run| (run.offset, run.data)).collect();
                r.scatter(&runs)
            });
        }
        let mut payload = Vec::with_capacity(runs.iter().map(|r| r.data.len() + 12).sum());
        for run in runs {
            wire::push_run(&mut payload, run.offset, run.data).map_err(TransportError::Invalid)?;
        }
        self.send_scatter(node, region, Op::Scatter, &payload, runs.len())
    }

    fn has_scatter_masked(&self) -> bool {
        true
    }

    fn scatter_masked(&self, node: NodeId, region: RegionId, runs: &[MaskedRun<'_>]) -> Result<()> {
        check_node(self.node.nodes, node)?;
        self.stats.scatter(runs.iter().map(|r| r.data.len()));
        if node == self.node.rank {
            return self.local(region, "masked scatter", |r| {
                let runs: Vec<(u64, &[u8], &[u8])> = runs
                    .iter()
                    .map(|run| (run.offset, run.data, run.mask))
                    .collect();
                r.scatter_masked(&runs)
            });
        }
        let mut payload =
            Vec::with_capacity(runs.iter().map(|r| r.data.len() + r.mask.len() + 12).sum());
        for run in runs {
            wire::push_masked_run(&mut payload, run.offset, run.data, run.mask)
                .map_err(TransportError::Invalid)?;
        }
        self.send_scatter(node, region, Op::ScatterMasked, &payload, runs.len())
    }

    fn fetch_add(&self, node: NodeId, region: RegionId, offset: u64, delta: u64) -> Result<u64> {
        check_node(self.node.nodes, node)?;
        check_atomic_offset(offset)?;
        self.stats.atomic();
        if node == self.node.rank {
            return self.local(region, "fetch_add", |r| r.fetch_add(offset, delta));
        }
        self.simple_op(
            node,
            "fetch_add",
            Request::new(Op::FetchAdd, region.0, offset, delta, 0),
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
        check_node(self.node.nodes, node)?;
        check_atomic_offset(offset)?;
        self.stats.atomic();
        if node == self.node.rank {
            return self.local(region, "compare_swap", |r| {
                r.compare_swap(offset, expected, new)
            });
        }
        self.simple_op(
            node,
            "compare_swap",
            Request::new(Op::CompareSwap, region.0, offset, expected, new),
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
        check_node(self.node.nodes, node)?;
        check_atomic_offset(offset)?;
        self.stats.atomic();
        if node == self.node.rank {
            return self.local(region, "compare_swap_run", |r| {
                r.compare_swap_run(offset, count, expected, new)
            });
        }
        let payload: Vec<u8> = [expected, new, u64::from(count)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let req = Request::new(
            Op::CompareSwapRun,
            region.0,
            offset,
            payload.len() as u64,
            0,
        );
        self.exchange(node, "compare_swap_run", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), &payload)?;
            match read_response(&mut c.stream, false)? {
                Ok(r) if r.value % 8 == 0 && r.value <= 8 * u64::from(count) => {
                    let mut reply = vec![0u8; r.value as usize];
                    c.stream.read_exact(&mut reply)?;
                    Ok(Ok(reply
                        .chunks_exact(8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
                        .collect()))
                }
                Ok(r) => Err(wire::invalid(format!(
                    "a compare-and-swap run of {count} answered {} bytes",
                    r.value
                ))),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn barrier(&self) -> Result<()> {
        self.barrier_in(self.scope())
    }

    fn barrier_all(&self) -> Result<()> {
        self.barrier_in(Scope::All)
    }

    fn narrow_barriers(&self) {
        if !self.node.memory[self.node.rank] {
            self.narrowed.store(true, Ordering::Release);
        }
    }

    fn is_memory_node(&self, node: NodeId) -> bool {
        self.node.memory.get(node).copied().unwrap_or(false)
    }

    fn barrier_gather(&self, mine: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        self.stats.barrier();
        self.barriers.fetch_add(1, Ordering::Relaxed);
        let scope = self.scope();
        if self.node.rank == 0 {
            return self
                .node
                .coordinator(scope)
                .arrive_with(Some((0, mine.to_vec())))
                .map(|all| Some(all.as_ref().clone()))
                .map_err(|(node, why)| TransportError::NodeFailed { node, why });
        }
        let req = Request::new(Op::BarrierGather, 0, 0, mine.len() as u64, scope as u64);
        let nodes = self.node.nodes;
        self.exchange(0, "barrier", |c| {
            wire::send(&mut c.stream, &mut c.scratch, &req.encode(), mine)?;
            match read_response(&mut c.stream, true)? {
                Ok(r) => {
                    let mut reply = vec![0u8; usize::try_from(r.value).unwrap_or(usize::MAX)];
                    c.stream.read_exact(&mut reply)?;
                    let all = wire::decode_gathered(&reply, nodes).map_err(wire::invalid)?;
                    Ok(Ok(Some(all)))
                }
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn stats(&self) -> TransportStats {
        self.stats.snapshot()
    }

    fn offer(&self, number: u32, service: Service) -> Result<()> {
        self.add_service(number, service);
        Ok(())
    }

    fn call(&self, node: NodeId, number: u32, request: &[u8]) -> Result<Vec<u8>> {
        TcpTransport::call(self, node, number, request)
    }

    fn shutdown(&self) {
        self.close(true);
    }

    fn on_node_failure(&self, hook: crate::FailureHook) {
        *self.node.failure_hook.lock().unwrap() = Some(hook);
        // A node that died before the hook was set is reported now.
        let dead: Vec<(NodeId, String)> = (0..self.node.nodes)
            .filter_map(|n| self.node.dead_reason(n).map(|w| (n, w)))
            .collect();
        if let Some(hook) = &*self.node.failure_hook.lock().unwrap() {
            for (n, why) in dead {
                hook(n, &why);
            }
        }
    }
}

impl TcpTransport {
    /// Which nodes this node's `barrier` waits for now.
    fn scope(&self) -> Scope {
        if self.narrowed.load(Ordering::Acquire) {
            Scope::Compute
        } else {
            Scope::All
        }
    }

    /// A plain barrier of the nodes of `scope`.
    fn barrier_in(&self, scope: Scope) -> Result<()> {
        self.stats.barrier();
        let count = self.barriers.fetch_add(1, Ordering::Relaxed);
        if self.node.rank == 0 {
            return self
                .node
                .coordinator(scope)
                .arrive()
                .map_err(|(node, why)| TransportError::NodeFailed { node, why });
        }
        let req = Request::new(Op::Barrier, 0, 0, count, scope as u64);
        self.exchange(0, "barrier", |c| {
            c.stream.write_all_header(&req)?;
            Ok(read_response(&mut c.stream, true)?.map(|_| ()))
        })
    }

    /// Why `node` is known to have died, if it is.
    pub fn dead_reason(&self, node: NodeId) -> Option<String> {
        self.node.dead_reason(node)
    }

    /// Closes every connection and stops serving. With `goodbye`, peers are
    /// told first that this is an orderly exit; without, they see what a
    /// crash looks like and fail their barriers instead of waiting for us.
    fn close(&self, goodbye: bool) {
        if self.node.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        if goodbye {
            // Answers still being written (a final barrier's, at node 0) go out first.
            self.node.wait_answered(self.op_timeout);
        }
        let bye = Request::new(Op::Bye, 0, 0, 0, 0).encode();
        for peer in &self.peers {
            let liveness = peer.liveness.lock().unwrap().take();
            let idle = std::mem::take(&mut *peer.idle.lock().unwrap());
            for mut stream in liveness
                .into_iter()
                .chain(idle.into_iter().map(|c| c.stream))
            {
                if goodbye {
                    let _ = std::io::Write::write_all(&mut stream, &bye);
                }
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // SAFETY: the descriptor belongs to a listener this struct holds an Arc
        // of, so it is open for the whole call; shutdown(2) neither closes nor
        // frees it, it only makes the blocked accept(2) return.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

impl Drop for TcpTransport {
    /// Dropped without `shutdown()` (an error path): peers must not take this
    /// for an orderly exit, or they would wait for us at their next barrier.
    fn drop(&mut self) {
        self.close(false);
    }
}
