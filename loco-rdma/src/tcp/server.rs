//! The serving half of the tcp backend: one thread per incoming connection
//! performs the peer's operations on this node's registered memory, so the
//! application's threads never take part (the operations stay one-sided).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::memory::MemoryRegion;
use crate::wire::{
    self, Op, Purpose, Request, Response, Scope, Status, PROTOCOL_VERSION, REQUEST_LEN,
};
use crate::NodeId;

/// A handler for [`Op::Call`]: gets the calling node and the request bytes,
/// returns the reply bytes or a refusal. Backends built on tcp (verbs) use
/// these for their connection set-up.
pub type Service = Arc<dyn Fn(NodeId, &[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// State the serving threads share with the node's own transport.
pub(crate) struct NodeState {
    pub rank: NodeId,
    pub nodes: usize,
    pub fingerprint: u64,
    pub regions: RwLock<Vec<Arc<MemoryRegion>>>,
    pub services: RwLock<HashMap<u32, Service>>,
    /// Only node 0 coordinates barriers (the others' coordinators stay
    /// unused): those of every node, and those of the compute nodes
    /// (`Transport::narrow_barriers`).
    pub barrier: BarrierCoordinator,
    pub compute_barrier: BarrierCoordinator,
    /// Per node: whether it is a memory node (cluster.toml's `role`).
    pub memory: Vec<bool>,
    /// Why each peer is known to be dead, if it is.
    pub dead: Mutex<Vec<Option<String>>>,
    pub closing: AtomicBool,
    /// Requests being served right now; shutdown waits for them to be answered
    /// (node 0 answers the final barrier after its own caller has moved on).
    in_flight: Mutex<usize>,
    answered: Condvar,
    pub failure_hook: Mutex<Option<crate::FailureHook>>,
}

impl NodeState {
    /// `memory`: per node, whether it is a memory node.
    pub fn new(rank: NodeId, memory: Vec<bool>, fingerprint: u64) -> Self {
        let nodes = memory.len();
        let compute = memory.iter().filter(|&&m| !m).count();
        NodeState {
            rank,
            nodes,
            fingerprint,
            regions: RwLock::new(Vec::new()),
            services: RwLock::new(HashMap::new()),
            barrier: BarrierCoordinator::new(nodes, nodes),
            compute_barrier: BarrierCoordinator::new(nodes, compute),
            memory,
            dead: Mutex::new(vec![None; nodes]),
            closing: AtomicBool::new(false),
            in_flight: Mutex::new(0),
            answered: Condvar::new(),
            failure_hook: Mutex::new(None),
        }
    }

    pub fn region(&self, id: u32) -> Result<Arc<MemoryRegion>, String> {
        self.regions
            .read()
            .unwrap()
            .get(id as usize)
            .cloned()
            .ok_or_else(|| format!("region {id} is not registered"))
    }

    /// The coordinator of the barriers of `scope` (node 0).
    pub fn coordinator(&self, scope: Scope) -> &BarrierCoordinator {
        match scope {
            Scope::All => &self.barrier,
            Scope::Compute => &self.compute_barrier,
        }
    }

    pub fn dead_reason(&self, node: NodeId) -> Option<String> {
        self.dead.lock().unwrap()[node].clone()
    }

    /// Waits until no request is being served, or `limit` has passed.
    pub fn wait_answered(&self, limit: std::time::Duration) {
        let guard = self.in_flight.lock().unwrap();
        let _ = self
            .answered
            .wait_timeout_while(guard, limit, |n| *n > 0)
            .unwrap();
    }

    fn begin_request(&self) {
        *self.in_flight.lock().unwrap() += 1;
    }

    fn end_request(&self) {
        let mut n = self.in_flight.lock().unwrap();
        *n -= 1;
        if *n == 0 {
            self.answered.notify_all();
        }
    }

    /// Records that `node` died; a barrier in progress fails instead of waiting for it.
    pub fn peer_failed(&self, node: NodeId, why: String) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        let first = {
            let mut dead = self.dead.lock().unwrap();
            let first = dead[node].is_none();
            if first {
                dead[node] = Some(why.clone());
            }
            first
        };
        if first {
            if let Some(hook) = &*self.failure_hook.lock().unwrap() {
                hook(node, &why);
            }
        }
        self.compute_barrier.fail(node, why.clone());
        self.barrier.fail(node, why);
    }
}

/// A central barrier: every member node reports to node 0's coordinator,
/// which answers all of them when the last arrives.
pub(crate) struct BarrierCoordinator {
    /// Nodes in the cluster (what gathered parts are indexed by).
    nodes: usize,
    /// Nodes that take part: a barrier completes when this many have arrived.
    members: usize,
    state: Mutex<BarrierState>,
    released: Condvar,
    /// `generation` as of the last completed barrier, and whether one
    /// failed: what a waiter polls before it sleeps on `released`.
    completed: AtomicU64,
    failing: AtomicBool,
}

struct BarrierState {
    generation: u64,
    arrived: usize,
    failed: Option<(NodeId, String)>,
    /// What each node gave this barrier (gathering barriers).
    gathered: Vec<Vec<u8>>,
    /// What the last barrier gathered: its waiters read it before any node
    /// can complete the next one (they all have to arrive there first).
    result: Arc<Vec<Vec<u8>>>,
}

impl BarrierCoordinator {
    fn new(nodes: usize, members: usize) -> Self {
        BarrierCoordinator {
            nodes,
            members,
            state: Mutex::new(BarrierState {
                generation: 0,
                arrived: 0,
                failed: None,
                gathered: vec![Vec::new(); nodes],
                result: Arc::new(Vec::new()),
            }),
            released: Condvar::new(),
            completed: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// Waits for the current barrier to fill; fails if a node is dead.
    pub fn arrive(&self) -> Result<(), (NodeId, String)> {
        self.arrive_with(None).map(|_| ())
    }

    /// `arrive`, giving this barrier `(rank, bytes)`; returns what every
    /// node gave (empty for nodes that gave nothing).
    pub fn arrive_with(
        &self,
        mine: Option<(NodeId, Vec<u8>)>,
    ) -> Result<Arc<Vec<Vec<u8>>>, (NodeId, String)> {
        let mut s = self.state.lock().unwrap();
        if let Some(f) = &s.failed {
            return Err(f.clone());
        }
        if let Some((rank, bytes)) = mine {
            s.gathered[rank] = bytes;
        }
        let generation = s.generation;
        s.arrived += 1;
        if s.arrived == self.members {
            s.arrived = 0;
            s.generation += 1;
            let all = std::mem::replace(&mut s.gathered, vec![Vec::new(); self.nodes]);
            s.result = Arc::new(all);
            self.completed.store(s.generation, Ordering::Release);
            self.released.notify_all();
            return Ok(s.result.clone());
        }
        // The last node's arrival usually comes within a round trip: poll
        // for it (super::poll_time) before sleeping, which saves a wake-up.
        drop(s);
        let start = std::time::Instant::now();
        let limit = super::poll_time();
        while self.completed.load(Ordering::Acquire) == generation
            && !self.failing.load(Ordering::Acquire)
            && start.elapsed() < limit
        {
            std::hint::spin_loop();
        }
        let mut s = self.state.lock().unwrap();
        while s.generation == generation && s.failed.is_none() {
            s = self.released.wait(s).unwrap();
        }
        match &s.failed {
            Some(f) if s.generation == generation => Err(f.clone()),
            _ => Ok(s.result.clone()),
        }
    }

    fn fail(&self, node: NodeId, why: String) {
        let mut s = self.state.lock().unwrap();
        if s.failed.is_none() {
            s.failed = Some((node, why));
        }
        self.failing.store(true, Ordering::Release);
        self.released.notify_all();
    }
}

/// Accepts connections until the listener is shut down.
pub(crate) fn accept_loop(listener: Arc<TcpListener>, node: Arc<NodeState>) {
    for stream in listener.incoming() {
        if node.closing.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else {
            // Transient (EMFILE, ECONNABORTED) or the listener was shut down.
            if node.closing.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        };
        let node = node.clone();
        let spawned = std::thread::Builder::new()
            .name("loco-tcp-serve".into())
            .spawn(move || serve_connection(stream, node));
        if let Err(e) = spawned {
            eprintln!("loco-rdma: cannot start a serving thread: {e}");
        }
    }
}

fn serve_connection(mut stream: TcpStream, node: Arc<NodeState>) {
    let _ = stream.set_nodelay(true);
    let mut scratch = Vec::new();
    let (peer, purpose) = match handshake(&mut stream, &node, &mut scratch) {
        Ok(Some(p)) => p,
        _ => return,
    };
    let mut payload = Vec::new();
    let ended = loop {
        let mut h = [0u8; REQUEST_LEN];
        if let Err(e) = stream.read_exact(&mut h) {
            break Err(e);
        }
        let req = match Request::decode(&h) {
            Ok(r) => r,
            Err(e) => break Err(wire::invalid(e)),
        };
        if req.op == Op::Bye {
            break Ok(());
        }
        node.begin_request();
        let served = serve_request(&mut stream, &node, peer, req, &mut payload, &mut scratch);
        node.end_request();
        if let Err(e) = served {
            break Err(e);
        }
    };
    if let (Err(e), Purpose::Liveness) = (ended, purpose) {
        let why = if e.kind() == io::ErrorKind::UnexpectedEof {
            "its connection closed without a goodbye (process exited or crashed)".to_string()
        } else {
            format!("its connection failed: {e}")
        };
        node.peer_failed(peer, why);
    }
}

/// Checks the peer's Hello: same protocol, same cluster.toml, a valid rank.
fn handshake(
    stream: &mut TcpStream,
    node: &NodeState,
    scratch: &mut Vec<u8>,
) -> io::Result<Option<(NodeId, Purpose)>> {
    let mut h = [0u8; REQUEST_LEN];
    stream.read_exact(&mut h)?;
    let req = Request::decode(&h).map_err(wire::invalid)?;
    let refuse = |stream: &mut TcpStream, scratch: &mut Vec<u8>, why: String| {
        wire::send_error(stream, scratch, Status::Refused, 0, &why).map(|_| None)
    };
    if req.op != Op::Hello {
        return refuse(stream, scratch, "the first message must be a hello".into());
    }
    if req.region != PROTOCOL_VERSION {
        return refuse(
            stream,
            scratch,
            format!(
                "protocol version {} differs from node {}'s version {PROTOCOL_VERSION} \
                 (nodes run different LOCO builds)",
                req.region, node.rank
            ),
        );
    }
    if req.offset != node.fingerprint {
        return refuse(
            stream,
            scratch,
            format!(
                "its cluster description differs from node {}'s (fingerprint {:#x} vs {:#x}): \
                 give every node the same cluster.toml",
                node.rank, req.offset, node.fingerprint
            ),
        );
    }
    let peer = match usize::try_from(req.a) {
        Ok(p) if p < node.nodes => p,
        _ => {
            return refuse(
                stream,
                scratch,
                format!("rank {} is not in the cluster", req.a),
            )
        }
    };
    let purpose = if req.b == Purpose::Liveness as u64 {
        Purpose::Liveness
    } else {
        Purpose::Data
    };
    stream.write_all(&Response::ok(0).encode())?;
    Ok(Some((peer, purpose)))
}

/// Writes `header`, then `len` bytes from `data`, to `stream` with
/// writev (as many calls as the socket takes).
///
/// # Safety
/// `data` must be readable for `len` bytes until this returns.
unsafe fn send_from_raw(
    stream: &TcpStream,
    header: &[u8],
    data: *const u8,
    len: usize,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (mut head, mut body) = (0usize, 0usize);
    while head < header.len() || body < len {
        let iov = [
            libc::iovec {
                iov_base: header[head..].as_ptr() as *mut libc::c_void,
                iov_len: header.len() - head,
            },
            libc::iovec {
                // SAFETY: body <= len: inside the caller's range.
                iov_base: unsafe { data.add(body) } as *mut libc::c_void,
                iov_len: len - body,
            },
        ];
        // SAFETY: both iovecs describe readable memory (the header slice
        // and the caller's range) for their lengths; writev only reads it.
        let n = unsafe { libc::writev(stream.as_raw_fd(), iov.as_ptr(), 2) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut n = n as usize;
        let from_head = n.min(header.len() - head);
        head += from_head;
        n -= from_head;
        body += n;
    }
    Ok(())
}

fn serve_request(
    stream: &mut TcpStream,
    node: &NodeState,
    peer: NodeId,
    req: Request,
    payload: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    // Requests that carry bytes are read in full first, so that a refusal
    // leaves the connection in step.
    let carried = match req.op {
        Op::Write
        | Op::Scatter
        | Op::ScatterMasked
        | Op::Call
        | Op::BarrierGather
        | Op::CompareSwapRun
        | Op::WriteRead => req.a,
        _ => 0,
    };
    let len = usize::try_from(carried).map_err(|_| wire::invalid("payload too large".into()))?;
    payload.resize(len, 0);
    stream.read_exact(payload)?;
    // The write first: the read is answered only once it is in place.
    if req.op == Op::WriteRead {
        let written = match payload.get(..12) {
            Some(at) => {
                let region = u32::from_le_bytes(at[..4].try_into().unwrap());
                let offset = u64::from_le_bytes(at[4..12].try_into().unwrap());
                node.region(region)
                    .and_then(|r| r.write(offset, &payload[12..]))
            }
            None => Err("a write-then-read needs a region and an offset to write".into()),
        };
        if let Err(why) = written {
            return wire::send_error(stream, scratch, Status::Refused, 0, &why);
        }
    }
    let outcome: Result<u64, String> = match req.op {
        Op::Read | Op::WriteRead => {
            let len = usize::try_from(if req.op == Op::Read { req.a } else { req.b })
                .unwrap_or(usize::MAX);
            let header = Response::ok(len as u64).encode();
            // Straight from the region to the socket: one system call, no
            // copy into a buffer (and no zeroing of one) first.
            let served = node.region(req.region).and_then(|r| {
                r.with_raw(req.offset, len, crate::Access::Read, |bytes| {
                    // SAFETY: `bytes` is readable for `len` bytes while
                    // the closure runs (`with_raw`).
                    unsafe { send_from_raw(stream, &header, bytes, len) }
                })
            });
            return match served {
                Ok(sent) => sent,
                Err(why) => wire::send_error(stream, scratch, Status::Refused, 0, &why),
            };
        }
        Op::Write => node
            .region(req.region)
            .and_then(|r| r.write(req.offset, payload))
            .map(|()| 0),
        Op::Scatter => node.region(req.region).and_then(|r| {
            r.scatter(&wire::parse_runs(payload, req.b)?)?;
            Ok(0)
        }),
        Op::ScatterMasked => node.region(req.region).and_then(|r| {
            r.scatter_masked(&wire::parse_masked_runs(payload, req.b)?)?;
            Ok(0)
        }),
        Op::FetchAdd => node
            .region(req.region)
            .and_then(|r| r.fetch_add(req.offset, req.a)),
        Op::CompareSwap => node
            .region(req.region)
            .and_then(|r| r.compare_swap(req.offset, req.a, req.b)),
        Op::CompareSwapRun => {
            let word = |i: usize| {
                payload
                    .get(i * 8..i * 8 + 8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            };
            let found = match (word(0), word(1), word(2)) {
                (Some(expected), Some(new), Some(count)) => node.region(req.region).and_then(|r| {
                    let count = u32::try_from(count).map_err(|_| "run too long".to_string())?;
                    r.compare_swap_run(req.offset, count, expected, new)
                }),
                _ => Err("a compare-and-swap run needs expected, new and count".into()),
            };
            return match found {
                Ok(values) => {
                    let reply: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    wire::send(
                        stream,
                        scratch,
                        &Response::ok(reply.len() as u64).encode(),
                        &reply,
                    )
                }
                Err(why) => wire::send_error(stream, scratch, Status::Refused, 0, &why),
            };
        }
        Op::Barrier | Op::BarrierGather => {
            let scope = Scope::from_u64(req.b);
            if node.rank != 0 {
                Err(format!(
                    "node {} does not coordinate barriers (node 0 does)",
                    node.rank
                ))
            } else if scope.is_none() {
                Err(format!(
                    "barrier scope {} is not one of this version's",
                    req.b
                ))
            } else if scope == Some(Scope::Compute) && node.memory[peer] {
                Err(format!(
                    "node {peer} is a memory node: it takes no part in the compute nodes' barriers"
                ))
            } else {
                let gathering = req.op == Op::BarrierGather;
                let mine = gathering.then(|| (peer, std::mem::take(payload)));
                match node.coordinator(scope.unwrap()).arrive_with(mine) {
                    Ok(all) if gathering => {
                        let reply = wire::encode_gathered(&all);
                        return wire::send(
                            stream,
                            scratch,
                            &Response::ok(reply.len() as u64).encode(),
                            &reply,
                        );
                    }
                    Ok(_) => Ok(0),
                    Err((failed, why)) => {
                        return wire::send_error(
                            stream,
                            scratch,
                            Status::NodeFailed,
                            failed as u32,
                            &why,
                        )
                    }
                }
            }
        }
        Op::Call => {
            let service = node.services.read().unwrap().get(&req.region).cloned();
            let reply = match service {
                Some(service) => service(peer, payload),
                None => Err(format!(
                    "node {} offers no service {}",
                    node.rank, req.region
                )),
            };
            return match reply {
                Ok(bytes) => wire::send(
                    stream,
                    scratch,
                    &Response::ok(bytes.len() as u64).encode(),
                    &bytes,
                ),
                Err(why) => wire::send_error(stream, scratch, Status::Refused, 0, &why),
            };
        }
        Op::Hello | Op::Bye => Err(format!(
            "unexpected {:?} in the middle of a connection",
            req.op
        )),
    };
    match outcome {
        Ok(value) => stream.write_all(&Response::ok(value).encode()),
        Err(why) => wire::send_error(stream, scratch, Status::Refused, 0, &why),
    }
}
