//! Running as the tasks of a Slurm job step:
//!
//!     srun -N 2 -n 8 loco-daemon node -- ./prog args
//!
//! Each Slurm task runs `loco-daemon node` and becomes one LOCO node.
//!
//! - Rank and size: SLURM_PROCID and SLURM_NTASKS.
//! - Hosts: the step's node list (SLURM_STEP_NODELIST, a Slurm hostlist
//!   such as `node[01-03,7],gpu5`, expanded by [`expand_hostlist`]) and
//!   the number of tasks on each of its nodes (SLURM_STEP_TASKS_PER_NODE,
//!   such as `2(x3),1`), laid out over the nodes as Slurm lays tasks out
//!   (SLURM_DISTRIBUTION: block, the default, cyclic or plane). Every task
//!   checks that layout against what Slurm says about the task itself
//!   (SLURMD_NODENAME, SLURM_LOCALID, SLURM_GTIDS): a placement LOCO cannot
//!   reproduce (`--distribution=arbitrary`) is an error, never a wrong
//!   cluster. The hosts are Slurm's node names, which must resolve on every
//!   machine to an address the other machines reach it at.
//! - Who runs the show: the task of rank 0 is the run's launcher, exactly
//!   as `loco-daemon run` is (see launch.rs): it starts node 0 itself,
//!   prints every node's output (prefixed by node), ends with node 0's exit
//!   code, and when a node fails names it and stops the others. Every other
//!   task connects to rank 0's task, checks in (its job and step, its rank,
//!   its host and the port its node will listen on) and then serves its node
//!   for rank 0 over that connection as `loco-daemon serve` does: it starts
//!   the program when rank 0 sends the start request (carrying the
//!   cluster.toml rank 0 built from the check-ins), streams its output back
//!   and reports how it ended. So srun's output is rank 0's, and srun's exit
//!   code (the highest of its tasks') is rank 0's: the other tasks print
//!   nothing themselves and exit 0 once their node's end is reported.
//! - Ports: each task picks its own node's port, one the kernel hands out on
//!   its host, and keeps it bound (not listening: a node that connects
//!   early is refused and tries again) from before its check-in until its
//!   node starts, so tasks sharing a machine never pick the same port and
//!   the race with other programs lasts a few milliseconds. The one port every task
//!   must know beforehand is the one rank 0 takes check-ins on: 20000 plus a
//!   hash of "JOB.STEP" modulo 12000 (below Linux's ephemeral ports; steps
//!   sharing a machine seldom meet, and when they do the second rank 0
//!   cannot listen and says so, and a task that reaches another step's rank
//!   0 is turned away), or LOCO_SLURM_PORT. Where Slurm reserves ports for
//!   the step (`srun --resv-ports` with `MpiParams=ports=LO-HI` in
//!   slurm.conf: SLURM_STEP_RESV_PORTS, which no other step on the same
//!   nodes gets), those are used instead: the task with local id i listens
//!   on the i-th, and rank 0 takes check-ins on the one after its machine's
//!   tasks: ask for one more port than the most tasks on a machine
//!   (`srun --resv-ports=K`; given no count, Slurm 22.05 did not always
//!   reserve any).
//! - Roles: with `--memory-nodes M` the step's last M ranks are memory
//!   nodes (the cluster.toml rank 0 builds says `role = "memory"` for them,
//!   through the same code as `run -n C --memory-nodes M`); M must leave
//!   rank 0 a compute node, which every task checks before checking in.
//! - Failures: a node that dies is named by rank 0 as by `run` ("node 2 was
//!   killed by signal 9 (SIGKILL)"); a task that dies takes its node with it
//!   and is "node 2: lost contact with its Slurm task on HOST"; if rank 0's
//!   task dies, the others kill their nodes and end (srun names task 0).
//!
//! `loco-daemon run --slurm` inside an allocation (sbatch, salloc) runs
//! `srun loco-daemon node` with the same options (`-n C --memory-nodes M`:
//! C + M tasks, the last M memory nodes).

use std::cell::Cell;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use loco_cluster::Launch;

use crate::launch::{self, Plan};
use crate::proto::{self, CheckIn};
use crate::serve;

/// How long the tasks of a step have to find rank 0's task.
const CHECK_IN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a task waits for its start request after checking in: rank 0
/// sends it once every task has checked in.
const START_WAIT: Duration = Duration::from_secs(90);
/// How long a connection to rank 0's check-in port has to say what it is.
const CHECK_IN_READ: Duration = Duration::from_secs(5);
/// The range rank 0's check-in port is derived in: [BASE, BASE + COUNT).
const DERIVED_PORT_BASE: u16 = 20000;
const DERIVED_PORT_COUNT: u16 = 12000;
/// The most hosts (or ports) one list may expand to: a typo such as
/// `node[1-99999999]` is an error, not an allocation.
const MAX_EXPANSION: u64 = 1 << 20;

const NOT_A_TASK: &str = "`loco-daemon node` runs as the tasks of a Slurm job step: start \
     it with srun (srun -n 4 loco-daemon node -- ./prog), or inside an allocation with \
     `loco-daemon run --slurm -- ./prog`";

/// How Slurm spreads a step's tasks over its nodes (SLURM_DISTRIBUTION's
/// first part: how tasks go to nodes; the rest is about sockets and cores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Consecutive ranks fill a node before the next.
    Block,
    /// One task per node in turn, skipping nodes that have all theirs.
    Cyclic,
    /// Blocks of this many consecutive ranks per node in turn.
    Plane(usize),
}

/// This task's step, as the environment Slurm gives each task describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub job: String,
    pub step: String,
    /// This task's rank (SLURM_PROCID).
    pub rank: usize,
    /// The Slurm node each rank's task runs on.
    pub hosts: Vec<String>,
    /// Each rank's index among the tasks on its node (SLURM_LOCALID).
    pub local_ids: Vec<usize>,
    /// How many of the step's tasks run on each rank's node.
    pub tasks_on_node: Vec<usize>,
    /// The ports Slurm reserved for the step (SLURM_STEP_RESV_PORTS).
    pub reserved_ports: Option<Vec<u16>>,
    /// LOCO_SLURM_PORT: rank 0's check-in port, instead of the derived one.
    pub port_override: Option<u16>,
}

impl Step {
    /// Reads the step from Slurm's variables (`env` looks one up).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Step, String> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let first = |names: &[&'static str]| names.iter().find_map(|n| var(n).map(|v| (*n, v)));
        let need = |names: &[&'static str]| {
            first(names).ok_or_else(|| format!("{} is not set: {NOT_A_TASK}", names[0]))
        };
        let number = |(name, v): (&str, String)| {
            v.parse::<usize>()
                .map_err(|_| format!("{name}={v:?} is not a number"))
        };
        let (_, job) = need(&["SLURM_JOB_ID", "SLURM_JOBID"])?;
        let (_, step) = need(&["SLURM_STEP_ID", "SLURM_STEPID"])?;
        let rank = number(need(&["SLURM_PROCID"])?)?;
        let size = number(need(&[
            "SLURM_NTASKS",
            "SLURM_STEP_NUM_TASKS",
            "SLURM_NPROCS",
        ])?)?;
        if rank >= size {
            return Err(format!(
                "SLURM_PROCID={rank} but the step has {size} tasks (SLURM_NTASKS)"
            ));
        }
        let (list_var, list) = need(&[
            "SLURM_STEP_NODELIST",
            "SLURM_JOB_NODELIST",
            "SLURM_NODELIST",
        ])?;
        let nodes = expand_hostlist(&list).map_err(|e| format!("{list_var}: {e}"))?;
        let (counts_var, counts) = need(&["SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"])?;
        let counts = parse_tasks_per_node(&counts).map_err(|e| format!("{counts_var}: {e}"))?;
        if counts.len() != nodes.len() {
            return Err(format!(
                "{counts_var} gives task counts for {} nodes but {list_var} names {} nodes",
                counts.len(),
                nodes.len()
            ));
        }
        let total: usize = counts.iter().sum();
        if total != size {
            return Err(format!(
                "{counts_var} adds up to {total} tasks but SLURM_NTASKS is {size}"
            ));
        }
        let dist = match var("SLURM_DISTRIBUTION") {
            None => Distribution::Block,
            Some(d) => parse_distribution(&d, var("SLURM_DIST_PLANESIZE").as_deref())?,
        };
        let node_of = layout(&counts, dist);
        let mut local_ids = vec![0; size];
        let mut seen = vec![0; nodes.len()];
        for (r, &i) in node_of.iter().enumerate() {
            local_ids[r] = seen[i];
            seen[i] += 1;
        }
        let hosts: Vec<String> = node_of.iter().map(|&i| nodes[i].clone()).collect();
        let tasks_on_node = node_of.iter().map(|&i| counts[i]).collect();

        // What Slurm says about this task must match the layout.
        let mine = node_of[rank];
        let ranks_here: Vec<usize> = (0..size).filter(|&r| node_of[r] == mine).collect();
        let mismatch = |what: String| {
            Err(format!(
                "{what}, but laying out {counts_var}={:?} over {list_var}={list:?} with \
                 distribution {dist:?} puts rank {rank} on {} with local id {} (ranks {ranks_here:?} \
                 there): LOCO cannot tell where this step's tasks run; start it with \
                 srun --distribution=block (or cyclic, or plane=N)",
                var(counts_var).unwrap_or_default(),
                hosts[rank],
                local_ids[rank],
            ))
        };
        if let Some(name) = var("SLURMD_NODENAME") {
            if name != hosts[rank] {
                return mismatch(format!("Slurm runs rank {rank} on {name}"));
            }
        }
        if let Some(l) = var("SLURM_LOCALID") {
            if number(("SLURM_LOCALID", l.clone()))? != local_ids[rank] {
                return mismatch(format!("Slurm gives rank {rank} local id {l}"));
            }
        }
        if let Some(g) = var("SLURM_GTIDS") {
            let mut gtids = g
                .split(',')
                .map(|t| number(("SLURM_GTIDS", t.trim().to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            gtids.sort_unstable();
            if gtids != ranks_here {
                return mismatch(format!("Slurm runs ranks {g} on rank {rank}'s node"));
            }
        }
        let reserved_ports = match var("SLURM_STEP_RESV_PORTS") {
            None => None,
            Some(p) => Some(parse_ports(&p).map_err(|e| format!("SLURM_STEP_RESV_PORTS: {e}"))?),
        };
        let port_override = match var("LOCO_SLURM_PORT") {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("LOCO_SLURM_PORT={p:?} is not a port (1..=65535)"))?,
            ),
        };
        Ok(Step {
            job,
            step,
            rank,
            hosts,
            local_ids,
            tasks_on_node,
            reserved_ports,
            port_override,
        })
    }

    /// "JOB.STEP", as Slurm writes a step.
    pub fn id(&self) -> String {
        format!("{}.{}", self.job, self.step)
    }

    /// The port rank 0's task takes check-ins on (see the module comment).
    pub fn check_in_port(&self) -> Result<u16, String> {
        if let Some(ports) = &self.reserved_ports {
            let needed = self.tasks_on_node[0] + 1;
            return ports.get(needed - 1).copied().ok_or_else(|| {
                format!(
                    "Slurm reserved {} ports for step {} (SLURM_STEP_RESV_PORTS), but node 0's \
                     machine runs {} tasks and LOCO needs one more port there than tasks: \
                     srun --resv-ports={needed} (or more)",
                    ports.len(),
                    self.id(),
                    self.tasks_on_node[0]
                )
            });
        }
        if let Some(p) = self.port_override {
            return Ok(p);
        }
        // FNV-1a: the same in every task, whatever its build.
        let hash = self.id().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Ok(DERIVED_PORT_BASE + (hash % u64::from(DERIVED_PORT_COUNT)) as u16)
    }

    /// Where rank 0's task takes check-ins, as "HOST:PORT".
    fn check_in_address(&self) -> Result<(String, u16), String> {
        Ok((self.hosts[0].clone(), self.check_in_port()?))
    }

    /// Where the port `rank`'s node listens on comes from (the task of
    /// `rank` calls it): Slurm's reservation, or a port bound now on its
    /// host and held until the node starts.
    fn hold_port(&self, rank: usize) -> Result<(u16, Option<HeldPort>), String> {
        if let Some(ports) = &self.reserved_ports {
            let i = self.local_ids[rank];
            let port = ports.get(i).copied().ok_or_else(|| {
                format!(
                    "Slurm reserved {} ports for step {} (SLURM_STEP_RESV_PORTS), too few for \
                     task {rank} (local id {i})",
                    ports.len(),
                    self.id()
                )
            })?;
            return Ok((port, None));
        }
        let host = &self.hosts[rank];
        let addr = resolve(host, 0)?;
        let (held, port) = HeldPort::bind(addr)
            .map_err(|e| format!("cannot find a free port on {host} ({addr}): {e}"))?;
        Ok((port, Some(held)))
    }
}

/// A TCP port bound but not listening: nobody else gets it, and a node
/// that connects to it early is refused (and tries again) instead of being
/// accepted into a backlog that is then dropped, as with a listener.
struct HeldPort {
    /// Kept open only so the port stays ours; dropped when the node starts.
    _socket: OwnedFd,
}

impl HeldPort {
    /// Binds `addr` (port 0: one the kernel picks); returns the port.
    fn bind(addr: SocketAddr) -> std::io::Result<(HeldPort, u16)> {
        use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
        let bound: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
        let port = bound
            .as_sockaddr_in()
            .map(|a| a.port())
            .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
            .ok_or_else(|| std::io::Error::other("the socket is bound to no internet address"))?;
        Ok((HeldPort { _socket: fd }, port))
    }
}

/// `loco-daemon node`: this task's part of the step.
pub fn node(plan: Plan) -> Result<u8, String> {
    let step = Step::from_env(&|name| std::env::var(name).ok())?;
    let whose = format!("Slurm step {}", step.id());
    if let Err(e) = check_memory_nodes(step.hosts.len(), plan.memory_nodes, &whose) {
        // Every task finds the same: rank 0's says so, once for the job,
        // and the others end as quietly as they run.
        return if step.rank == 0 { Err(e) } else { Ok(2) };
    }
    if step.rank == 0 {
        lead(&plan, &step)
    } else {
        follow(&step).map(|()| 0)
    }
}

/// `--memory-nodes M` over `tasks` tasks (those of `whose`, e.g. "Slurm
/// step 7.0"): the last M become memory nodes, which must leave at least
/// one compute node, rank 0 (it runs main).
fn check_memory_nodes(tasks: usize, memory_nodes: usize, whose: &str) -> Result<(), String> {
    if memory_nodes < tasks {
        return Ok(());
    }
    let fix = if tasks == 1 {
        "one task has no room for memory nodes: run more tasks".to_string()
    } else {
        format!(
            "give --memory-nodes {} or fewer, or run more tasks",
            tasks - 1
        )
    };
    Err(format!(
        "--memory-nodes {memory_nodes}: {whose} has {tasks} task{} and the last \
         {memory_nodes} would be memory nodes, leaving no compute node; node 0 (the task of \
         rank 0) runs main and must be a compute node: {fix}",
        if tasks == 1 { "" } else { "s" },
    ))
}

/// `loco-daemon run --slurm`: the srun command that runs `loco-daemon
/// node` in every task of the allocation, with the run's options; this
/// process becomes it. `nodes` (`-n`) asks for that many tasks instead, or
/// with `--memory-nodes M` for that many compute nodes and M memory nodes
/// after them (N + M tasks), as `run -n N --memory-nodes M` runs them.
pub fn exec_srun(plan: &Plan, nodes: Option<usize>) -> Result<u8, String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set("SLURM_JOB_ID") && !set("SLURM_JOBID") {
        return Err(
            "--slurm: not inside a Slurm allocation (SLURM_JOB_ID is not set): run \
                    it from an sbatch script or under salloc, or start the tasks yourself \
                    with srun -n N loco-daemon node -- PROGRAM"
                .into(),
        );
    }
    if set("SLURM_STEP_ID") || set("SLURM_STEPID") {
        return Err(
            "--slurm: this is already a task of a job step (SLURM_STEP_ID is set): \
                    run `loco-daemon node -- PROGRAM` as the step's command instead"
                .into(),
        );
    }
    let memory_nodes = plan.memory_nodes;
    let tasks = match nodes {
        Some(0) if memory_nodes > 0 => return Err(launch::no_compute_node(memory_nodes)),
        Some(0) => return Err("-n must be at least 1".into()),
        Some(n) => Some(
            n.checked_add(memory_nodes)
                .ok_or("-n and --memory-nodes: too many nodes")?,
        ),
        None => {
            // srun runs the allocation's tasks: say now, once, what every
            // task would find.
            let allocated = ["SLURM_NTASKS", "SLURM_NPROCS"]
                .iter()
                .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok());
            if let Some(allocated) = allocated {
                check_memory_nodes(allocated, memory_nodes, "the allocation (SLURM_NTASKS)")
                    .map_err(|e| {
                        format!("{e} (or -n C: C compute nodes besides the memory nodes)")
                    })?;
            }
            None
        }
    };
    let me = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let mut cmd = std::process::Command::new("srun");
    if let Some(n) = tasks {
        cmd.arg(format!("--ntasks={n}"));
    }
    cmd.arg(me).arg("node");
    if memory_nodes > 0 {
        cmd.arg(format!("--memory-nodes={memory_nodes}"));
    }
    if let Some(p) = plan.placement {
        cmd.args(["--placement", p.name()]);
    }
    if let Some(m) = plan.memory {
        cmd.arg("--memory").arg(m.to_string());
    }
    if let Some(c) = plan.cache {
        cmd.arg("--cache").arg(c.to_string());
    }
    if plan.stats {
        cmd.arg("--stats");
    }
    if let Some(f) = &plan.stats_json {
        // Written by rank 0's task, wherever that runs: make it absolute.
        cmd.arg("--stats-json")
            .arg(std::path::absolute(f).unwrap_or_else(|_| f.clone()));
    }
    if let Some(t) = plan.timeout {
        cmd.arg(format!("--timeout={}", t.as_secs()));
    }
    if !plan.prefix {
        cmd.arg("--no-prefix");
    }
    if plan.progress {
        cmd.arg("--progress");
    }
    if let Some(f) = &plan.progress_log {
        // Written by rank 0's task, as --stats-json.
        cmd.arg("--progress-log")
            .arg(std::path::absolute(f).unwrap_or_else(|_| f.clone()));
    }
    cmd.arg("--").args(&plan.program);
    // Only returns if srun could not be started.
    let e = cmd.exec();
    Err(format!("--slurm: cannot run srun: {e}"))
}

/// Rank 0's task: takes every other task's check-in, then runs the cluster
/// as `loco-daemon run` does, node 0 here and the others through their
/// tasks.
fn lead(plan: &Plan, step: &Step) -> Result<u8, String> {
    let n = step.hosts.len();
    let (own_port, own_hold) = step.hold_port(0)?;
    let mut ports = vec![0; n];
    ports[0] = own_port;
    let mut links: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    if n > 1 {
        gather(step, &mut ports, &mut links)?;
    }
    let nodes: Vec<(String, u16)> = step.hosts.iter().cloned().zip(ports).collect();
    // The last `plan.memory_nodes` tasks are memory nodes, as `run -n C
    // --memory-nodes M` makes the last M of its nodes.
    let mut config = launch::described_cluster(&nodes, plan, &format!("Slurm step {}", step.id()))?;
    config.nodes[0].launch = Some(Launch::Local);
    // Node 0 listens on this port from now on.
    drop(own_hold);
    launch::run_cluster(plan, &config, links)
}

/// Waits for the check-ins of ranks 1.. on rank 0's check-in port.
fn gather(step: &Step, ports: &mut [u16], links: &mut [Option<TcpStream>]) -> Result<(), String> {
    let (host, port) = step.check_in_address()?;
    let addr = resolve(&host, port)?;
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = if step.reserved_ports.is_some() {
            ""
        } else if step.port_override.is_some() {
            " (LOCO_SLURM_PORT: choose a port free on that machine)"
        } else {
            " (derived from the job and step ids: another program or step holds it; \
             set LOCO_SLURM_PORT to a free port, or reserve ports with srun --resv-ports=K)"
        };
        format!("node 0 cannot take the other tasks' check-ins on {host}:{port}{hint}: {e}")
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let deadline = Instant::now() + CHECK_IN_TIMEOUT;
    while links[1..].iter().any(Option::is_none) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Some((rank, node_port)) = check_in(step, &stream, peer, links)? {
                    ports[rank] = node_port;
                    links[rank] = Some(stream);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let missing: Vec<String> = (1..links.len())
                        .filter(|&r| links[r].is_none())
                        .map(|r| format!("{r} ({})", step.hosts[r]))
                        .collect();
                    return Err(format!(
                        "node{} {} of Slurm step {} did not check in with node 0 at \
                         {host}:{port} within {CHECK_IN_TIMEOUT:?}: every task of the step \
                         must run `loco-daemon node` (srun ... loco-daemon node -- PROGRAM), \
                         and reach node 0's machine",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", "),
                        step.id()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("taking check-ins on {host}:{port}: {e}")),
        }
    }
    Ok(())
}

/// Reads and checks one check-in: `Some((rank, port))` for a task of this
/// step, `None` for a connection turned away (not a LOCO task, or one of
/// another step that derived the same port).
fn check_in(
    step: &Step,
    stream: &TcpStream,
    peer: SocketAddr,
    links: &[Option<TcpStream>],
) -> Result<Option<(usize, u16)>, String> {
    let mut s = stream;
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(CHECK_IN_READ));
    let turn_away = |why: String| {
        let _ = proto::write_frame(&mut &*stream, proto::ERROR, why.as_bytes());
        eprintln!("loco-daemon: turned away a connection from {peer}: {why}");
        Ok(None)
    };
    let c = match proto::read_frame(&mut s) {
        Ok(Some((proto::CHECK_IN, payload))) => match CheckIn::decode(&payload) {
            Ok(c) => c,
            Err(e) => return turn_away(e),
        },
        Ok(_) => return turn_away("not a LOCO check-in".into()),
        Err(e) => return turn_away(format!("no check-in: {e}")),
    };
    if c.step != step.id() {
        return turn_away(format!(
            "this is the check-in port of Slurm step {}, not of step {} (two steps on one \
             machine derived the same port: set LOCO_SLURM_PORT, or use srun --resv-ports=K)",
            step.id(),
            c.step
        ));
    }
    let rank = c.rank as usize;
    let n = step.hosts.len();
    if rank == 0 || rank >= n {
        return Err(format!(
            "a task of step {} checked in as rank {rank}, but the step has ranks 0..{n} \
             and this is rank 0",
            step.id()
        ));
    }
    if links[rank].is_some() {
        return Err(format!(
            "two tasks of step {} checked in as rank {rank} (the second from {peer})",
            step.id()
        ));
    }
    if c.host != step.hosts[rank] {
        return Err(format!(
            "rank {rank} checked in from Slurm node {}, but the step's layout puts it on {}",
            c.host, step.hosts[rank]
        ));
    }
    if c.port == 0 {
        return Err(format!("rank {rank} checked in without a port"));
    }
    let _ = s.set_read_timeout(None);
    Ok(Some((rank, c.port)))
}

/// A task of rank > 0: checks in with rank 0's task and serves its node
/// for it.
fn follow(step: &Step) -> Result<(), String> {
    serve::quiet();
    let rank = step.rank;
    let (port, hold) = step.hold_port(rank)?;
    let (host, check_in_port) = step.check_in_address()?;
    let stream =
        connect_until(&host, check_in_port, Instant::now() + CHECK_IN_TIMEOUT).map_err(|e| {
            format!(
                "rank {rank}: cannot reach node 0's loco-daemon (the task of rank 0 of Slurm \
                 step {}) at {host}:{check_in_port} within {CHECK_IN_TIMEOUT:?}: {e}",
                step.id()
            )
        })?;
    let me = CheckIn {
        step: step.id(),
        rank: rank as u32,
        host: step.hosts[rank].clone(),
        port,
    };
    proto::write_frame(&mut &stream, proto::CHECK_IN, &me.encode())
        .map_err(|e| format!("rank {rank}: checking in with node 0 at {host}: {e}"))?;
    let started = Cell::new(false);
    let result = serve::serve_connection(
        stream,
        &format!("node 0 at {host}:{check_in_port}"),
        START_WAIT,
        || {
            // The node listens on the port from now on.
            drop(hold);
            started.set(true);
        },
    );
    match result {
        // Once the node was asked for, node 0's launcher reports what
        // became of it (a failure to start it was sent there).
        Err(_) if started.get() => Ok(()),
        Err(e) => Err(format!("rank {rank}: {e}")),
        Ok(()) => Ok(()),
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// Connects to `host:port`, trying again until `deadline` (rank 0's task
/// may start later than this one).
fn connect_until(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    loop {
        let last = match (host, port).to_socket_addrs() {
            Ok(addrs) => {
                let mut last = format!("{host} resolves to no address");
                for a in addrs {
                    match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
                        Ok(s) => return Ok(s),
                        Err(e) => last = e.to_string(),
                    }
                }
                last
            }
            Err(e) => format!("cannot resolve {host}: {e}"),
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Expands a Slurm hostlist: comma-separated names, each with bracketed
/// lists of numbers and ranges (`node[01-03,7],gpu5` is node01, node02,
/// node03, node7, gpu5; a range keeps the digits of its first number:
/// `n[8-10]` is n8, n9, n10, `n[08-10]` n08, n09, n10). Several brackets in
/// one name expand to every combination, in order (`r[1-2]n[1-2]`: r1n1,
/// r1n2, r2n1, r2n2).
pub fn expand_hostlist(list: &str) -> Result<Vec<String>, String> {
    let err = |why: &str| Err(format!("hostlist {list:?}: {why}"));
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' if depth > 0 => return err("'[' inside brackets"),
            '[' => depth = 1,
            ']' if depth == 0 => return err("']' without '['"),
            ']' => depth = 0,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return err("'[' without ']'");
    }
    items.push(&list[start..]);
    let mut hosts: Vec<String> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            return err("an empty name");
        }
        let mut names = vec![String::new()];
        let mut rest = item;
        while let Some(open) = rest.find('[') {
            let close = open + rest[open..].find(']').expect("brackets are balanced");
            let values = expand_ranges(&rest[open + 1..close])
                .map_err(|e| format!("hostlist {list:?}: {item}: {e}"))?;
            let total = (hosts.len() + names.len()) as u64 * values.len() as u64;
            if total > MAX_EXPANSION {
                return err(&format!("more than {MAX_EXPANSION} hosts"));
            }
            let prefix = &rest[..open];
            names = names
                .iter()
                .flat_map(|n| values.iter().map(move |v| format!("{n}{prefix}{v}")))
                .collect();
            rest = &rest[close + 1..];
        }
        if item.contains(char::is_whitespace) {
            return err(&format!("{item:?} contains a space"));
        }
        hosts.extend(names.into_iter().map(|n| n + rest));
    }
    Ok(hosts)
}

/// The inside of one pair of brackets: `01-03,7` -> 01, 02, 03, 7.
fn expand_ranges(spec: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!(
                    "[{spec}]: {part:?} is not a number or a range LOW-HIGH"
                ))
            } else {
                Ok(s.parse::<u64>().expect("at most 18 digits"))
            }
        };
        let (a, b) = (parse(lo)?, parse(hi)?);
        if b < a {
            return Err(format!("[{spec}]: the range {part} runs backwards"));
        }
        if b - a >= MAX_EXPANSION || out.len() as u64 + (b - a) >= MAX_EXPANSION {
            return Err(format!("[{spec}]: more than {MAX_EXPANSION} values"));
        }
        let width = lo.len();
        out.extend((a..=b).map(|v| format!("{v:0width$}")));
    }
    Ok(out)
}

/// SLURM_STEP_TASKS_PER_NODE: `2(x3),1` is 2, 2, 2, 1.
pub fn parse_tasks_per_node(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let bad = || format!("{text:?}: {part:?} is not COUNT or COUNT(xREPEAT)");
        let (count, repeat) = match part.split_once('(') {
            None => (part, "1"),
            Some((c, r)) => (
                c,
                r.strip_prefix('x')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?,
            ),
        };
        let count: usize = count.parse().map_err(|_| bad())?;
        let repeat: usize = repeat.parse().map_err(|_| bad())?;
        if count == 0 || repeat == 0 {
            return Err(bad());
        }
        if (out.len() + repeat) as u64 > MAX_EXPANSION {
            return Err(format!("{text:?}: more than {MAX_EXPANSION} nodes"));
        }
        out.extend(std::iter::repeat_n(count, repeat));
    }
    Ok(out)
}

/// SLURM_STEP_RESV_PORTS: `21001-21003,21010`.
fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    expand_ranges(text)?
        .iter()
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("{text:?}: {p} is not a port"))
        })
        .collect()
}

/// SLURM_DISTRIBUTION (and SLURM_DIST_PLANESIZE for plane).
fn parse_distribution(text: &str, plane_size: Option<&str>) -> Result<Distribution, String> {
    let first = text.split([':', ',']).next().unwrap_or("").trim();
    match first {
        "" | "*" | "block" => Ok(Distribution::Block),
        "cyclic" => Ok(Distribution::Cyclic),
        p if p == "plane" || p.starts_with("plane=") => {
            let size = p.strip_prefix("plane=").or(plane_size).ok_or_else(|| {
                format!(
                    "SLURM_DISTRIBUTION={text}: the plane size (SLURM_DIST_PLANESIZE) is not set"
                )
            })?;
            size.trim()
                .parse::<usize>()
                .ok()
                .filter(|&s| s > 0)
                .map(Distribution::Plane)
                .ok_or_else(|| {
                    format!(
                        "SLURM_DISTRIBUTION={text}: plane size {size:?} is not a positive number"
                    )
                })
        }
        other => Err(format!(
            "SLURM_DISTRIBUTION={text}: LOCO cannot tell where a step's tasks run with the \
             {other:?} distribution; use srun --distribution=block (the default), cyclic or plane=N"
        )),
    }
}

/// The node (index into the node list) of each rank, when `counts[i]`
/// tasks run on node i, laid out as Slurm lays them out.
pub fn layout(counts: &[usize], dist: Distribution) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let per_turn = match dist {
        Distribution::Block => usize::MAX,
        Distribution::Cyclic => 1,
        Distribution::Plane(p) => p,
    };
    let mut given = vec![0; counts.len()];
    let mut node_of = Vec::with_capacity(total);
    while node_of.len() < total {
        for (i, &count) in counts.iter().enumerate() {
            let take = (count - given[i]).min(per_turn);
            node_of.extend(std::iter::repeat_n(i, take));
            given[i] += take;
        }
    }
    node_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hosts(list: &str) -> Vec<String> {
        expand_hostlist(list).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn hostlists_expand_as_slurm_writes_them() {
        assert_eq!(hosts("localhost"), ["localhost"]);
        assert_eq!(
            hosts("node[01-03,7],gpu5"),
            ["node01", "node02", "node03", "node7", "gpu5"]
        );
        assert_eq!(hosts("n[8-10]"), ["n8", "n9", "n10"]);
        assert_eq!(hosts("n[008-010]"), ["n008", "n009", "n010"]);
        assert_eq!(hosts("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert_eq!(
            hosts("a[1,3]-ib,b.cluster"),
            ["a1-ib", "a3-ib", "b.cluster"]
        );
        assert_eq!(hosts("[2-3]x"), ["2x", "3x"]);
        for bad in [
            "",
            "a,,b",
            "n[3-1]",
            "n[1-2",
            "n]1",
            "n[a-b]",
            "n[1-]",
            "n[]",
            "n[[1]]",
            "a b",
            "n[1-99999999999]",
        ] {
            assert!(expand_hostlist(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn task_counts_and_reserved_ports_parse() {
        assert_eq!(parse_tasks_per_node("2(x3),1").unwrap(), [2, 2, 2, 1]);
        assert_eq!(parse_tasks_per_node("4").unwrap(), [4]);
        for bad in ["", "x", "2(3)", "2(x0)", "0", "2(x3", "-1"] {
            assert!(parse_tasks_per_node(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse_ports("21001-21003,21010").unwrap(),
            [21001, 21002, 21003, 21010]
        );
        assert!(parse_ports("0-2").is_err());
        assert!(parse_ports("65535-65536").is_err());
    }

    #[test]
    fn tasks_are_laid_out_as_slurm_lays_them_out() {
        assert_eq!(layout(&[2, 2, 1], Distribution::Block), [0, 0, 1, 1, 2]);
        assert_eq!(layout(&[2, 2, 1], Distribution::Cyclic), [0, 1, 2, 0, 1]);
        assert_eq!(layout(&[3, 2], Distribution::Plane(2)), [0, 0, 1, 1, 0]);
        assert_eq!(layout(&[4], Distribution::Cyclic), [0, 0, 0, 0]);
        assert_eq!(
            parse_distribution("cyclic:block", None),
            Ok(Distribution::Cyclic)
        );
        assert_eq!(
            parse_distribution("block:cyclic,Pack", None),
            Ok(Distribution::Block)
        );
        assert_eq!(
            parse_distribution("plane", Some("4")),
            Ok(Distribution::Plane(4))
        );
        assert!(parse_distribution("plane", None).is_err());
        assert!(parse_distribution("arbitrary", None)
            .unwrap_err()
            .contains("--distribution=block"));
    }

    #[test]
    fn a_held_port_is_taken_but_refuses_connections() {
        let (held, port) = HeldPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(port, 0);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(TcpListener::bind(addr).is_err(), "port {port} was not held");
        drop(held);
        TcpListener::bind(addr).expect("the port is free once let go");
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const TWO_NODES_CYCLIC: [(&str, &str); 10] = [
        ("SLURM_JOB_ID", "4711"),
        ("SLURM_STEP_ID", "2"),
        ("SLURM_PROCID", "3"),
        ("SLURM_NTASKS", "4"),
        ("SLURM_STEP_NODELIST", "n[1-2]"),
        ("SLURM_STEP_TASKS_PER_NODE", "2(x2)"),
        ("SLURM_DISTRIBUTION", "cyclic"),
        ("SLURMD_NODENAME", "n2"),
        ("SLURM_LOCALID", "1"),
        ("SLURM_GTIDS", "1,3"),
    ];

    #[test]
    fn a_step_is_read_from_slurms_variables_and_checked() {
        let step = Step::from_env(&env(&TWO_NODES_CYCLIC)).unwrap();
        assert_eq!(step.rank, 3);
        assert_eq!(step.hosts, ["n1", "n2", "n1", "n2"]);
        assert_eq!(step.local_ids, [0, 0, 1, 1]);
        assert_eq!(step.id(), "4711.2");
        let port = step.check_in_port().unwrap();
        assert!((DERIVED_PORT_BASE..DERIVED_PORT_BASE + DERIVED_PORT_COUNT).contains(&port));
        assert_eq!(step.check_in_port(), Ok(port), "not deterministic");

        let with = |changes: &[(&'static str, &'static str)]| {
            let mut vars: Vec<(&str, &str)> = TWO_NODES_CYCLIC
                .iter()
                .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
                .copied()
                .collect();
            vars.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
            Step::from_env(&env(&vars))
        };
        let other_step = with(&[("SLURM_STEP_ID", "3")]).unwrap();
        assert_ne!(other_step.check_in_port(), Ok(port));
        assert_eq!(
            with(&[("LOCO_SLURM_PORT", "7000")])
                .unwrap()
                .check_in_port(),
            Ok(7000)
        );
        // Ports Slurm reserved: one per task on a node, and one more.
        let reserved = with(&[("SLURM_STEP_RESV_PORTS", "21001-21003")]).unwrap();
        assert_eq!(reserved.check_in_port(), Ok(21003));
        let (port, held) = reserved.hold_port(3).unwrap();
        assert_eq!((port, held.is_none()), (21002, true));
        let few = with(&[("SLURM_STEP_RESV_PORTS", "21001-21002")]).unwrap();
        assert!(few.check_in_port().unwrap_err().contains("--resv-ports=3"));

        // Missing or inconsistent variables say what is wrong.
        let e = with(&[("SLURM_PROCID", "")]).unwrap_err();
        assert!(
            e.contains("SLURM_PROCID is not set") && e.contains("srun"),
            "{e}"
        );
        let e = with(&[("SLURM_STEP_ID", "")]).unwrap_err();
        assert!(e.contains("SLURM_STEP_ID is not set"), "{e}");
        let e = with(&[("SLURM_NTASKS", "5")]).unwrap_err();
        assert!(e.contains("adds up to 4"), "{e}");
        let e = with(&[("SLURM_PROCID", "4")]).unwrap_err();
        assert!(e.contains("SLURM_PROCID=4"), "{e}");
        let e = with(&[("SLURM_STEP_NODELIST", "n[1-3]")]).unwrap_err();
        assert!(e.contains("names 3 nodes"), "{e}");
        let e = with(&[("SLURM_PROCID", "x")]).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        // A layout that does not match where Slurm put the task.
        let e = with(&[("SLURM_DISTRIBUTION", "block")]).unwrap_err();
        assert!(e.contains("Slurm runs ranks 1,3 on rank 3's node"), "{e}");
        let e = with(&[("SLURMD_NODENAME", "n1")]).unwrap_err();
        assert!(e.contains("Slurm runs rank 3 on n1"), "{e}");
        let e = with(&[("SLURM_LOCALID", "0")]).unwrap_err();
        assert!(e.contains("local id 0"), "{e}");
        let e = with(&[("SLURM_GTIDS", "2,3")]).unwrap_err();
        assert!(e.contains("Slurm runs ranks 2,3"), "{e}");
        // Without SLURMD_NODENAME and friends the layout is trusted.
        let bare = with(&[
            ("SLURMD_NODENAME", ""),
            ("SLURM_LOCALID", ""),
            ("SLURM_GTIDS", ""),
            ("SLURM_DISTRIBUTION", ""),
        ])
        .unwrap();
        assert_eq!(bare.hosts, ["n1", "n1", "n2", "n2"]);
    }
}
