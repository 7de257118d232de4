//! Starting the nodes of a run (here, through `loco-daemon serve`, or over
//! ssh) and supervising them.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loco_cluster::{ClusterConfig, Launch, NodeConfig, Placement, Role};

use crate::{json, node, proto, remote};

/// How long the other nodes get to notice a failed node and exit on their own.
const GRACE: Duration = Duration::from_secs(3);

/// `--placement`: which node is home to each page (cluster.toml's
/// `memory.placement`, spelt the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlacementArg {
    /// Page p lives on node p mod N (with memory nodes: runs of 256 pages take turns over them).
    Interleaved,
    /// A page lives on the first node that touches it (the default without memory nodes).
    FirstTouch,
    /// A page lives on the node whose allocator handed it out.
    AllocatingNode,
}

impl PlacementArg {
    /// The name on the command line (and in cluster.toml).
    pub fn name(self) -> &'static str {
        match self {
            PlacementArg::Interleaved => "interleaved",
            PlacementArg::FirstTouch => "first-touch",
            PlacementArg::AllocatingNode => "allocating-node",
        }
    }
}

impl From<PlacementArg> for Placement {
    fn from(p: PlacementArg) -> Placement {
        match p {
            PlacementArg::Interleaved => Placement::Interleaved,
            PlacementArg::FirstTouch => Placement::FirstTouch,
            PlacementArg::AllocatingNode => Placement::AllocatingNode,
        }
    }
}

pub struct Plan {
    /// `-n`: nodes on this machine (compute nodes, with `memory_nodes`).
    pub nodes: Option<usize>,
    /// `--memory-nodes`: memory nodes after the compute nodes (with -n,
    /// that many more nodes; in a Slurm step, the step's last tasks).
    pub memory_nodes: usize,
    pub config: Option<PathBuf>,
    /// `--placement` (with -n or --slurm).
    pub placement: Option<PlacementArg>,
    /// `--memory` (with -n or --slurm): each node's share of the heap, in bytes.
    pub memory: Option<u64>,
    /// `--cache`: cluster.toml's `memory.cache_size` for this run, in bytes.
    pub cache: Option<u64>,
    pub stats: bool,
    pub stats_json: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub prefix: bool,
    /// `--progress`: a line of totals every few seconds.
    pub progress: bool,
    /// `--progress-log`: every progress sample of the local nodes, kept.
    pub progress_log: Option<PathBuf>,
    pub program: Vec<String>,
    /// Local nodes are killed if the launcher dies (a Slurm task's launcher:
    /// nothing else would stop its node).
    pub nodes_die_with_launcher: bool,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// How long a node being killed may take to report its end.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// How a node ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Its wait status (from this machine, or sent by its daemon).
    Status(ExitStatus),
    /// Its daemon stopped answering before sending an exit status.
    Lost(String),
}

impl Outcome {
    fn success(&self) -> bool {
        matches!(self, Outcome::Status(s) if s.success())
    }

    /// Died of a signal or with its machine: more likely a cause than a node
    /// that exited reporting another's death.
    fn abrupt(&self) -> bool {
        match self {
            Outcome::Status(s) => s.signal().is_some(),
            Outcome::Lost(_) => true,
        }
    }

    /// What happened to it: "exited with code 3", "lost contact with ...".
    fn what(&self) -> String {
        match self {
            Outcome::Status(s) => describe(*s),
            Outcome::Lost(why) => why.clone(),
        }
    }

    /// "node K ..." as the launcher reports it.
    fn report(&self, rank: usize) -> String {
        match self {
            Outcome::Status(_) => format!("node {rank} {}", self.what()),
            Outcome::Lost(_) => format!("node {rank}: {}", self.what()),
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Outcome::Status(s) => exit_code(*s),
            Outcome::Lost(_) => 1,
        }
    }
}

/// A node's process: a child of ours, or one a daemon runs for us.
enum Proc {
    Local(Child),
    Remote(remote::Remote),
}

struct Node {
    rank: usize,
    proc: Proc,
    status: Option<Outcome>,
    forwarders: Vec<JoinHandle<()>>,
}

impl Node {
    /// `Ok(None)` while it runs; `Err` if it could not be started at all.
    fn poll(&mut self) -> Result<Option<Outcome>, String> {
        match &mut self.proc {
            Proc::Local(child) => match child.try_wait() {
                Ok(s) => Ok(s.map(Outcome::Status)),
                Err(e) => Err(format!("cannot wait for node {}: {e}", self.rank)),
            },
            Proc::Remote(r) => {
                let outcome = r.poll();
                if matches!(outcome, Ok(Some(_))) {
                    // Nothing more to say to its daemon (ssh may then exit).
                    r.close_input();
                }
                outcome
            }
        }
    }

    /// Asks for the node's end (at once for a local node).
    fn start_kill(&mut self) {
        match &mut self.proc {
            Proc::Local(child) => {
                node::kill_group(child.id());
                let _ = child.kill();
            }
            Proc::Remote(r) => r.request_kill(),
        }
    }

    /// Waits (until `deadline` for a remote node) for a node asked to end.
    fn finish_kill(&mut self, deadline: Instant) -> Option<Outcome> {
        match &mut self.proc {
            Proc::Local(child) => child.wait().ok().map(Outcome::Status),
            Proc::Remote(r) => r.finish_kill(deadline),
        }
    }
}

/// Kills the process group of every node still running when dropped, so
/// that no node outlives the launcher, whatever path it leaves by.
struct Nodes(Vec<Node>);

impl Nodes {
    /// Ends every node still running; returns the ranks it ended.
    fn kill_running(&mut self) -> Vec<usize> {
        let running = |n: &&mut Node| n.status.is_none();
        for n in self.0.iter_mut().filter(running) {
            n.start_kill();
        }
        let deadline = Instant::now() + KILL_WAIT;
        let mut killed = Vec::new();
        for n in self.0.iter_mut().filter(running) {
            n.status = n.finish_kill(deadline);
            killed.push(n.rank);
        }
        killed
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.kill_running();
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (_, Some(s)) => format!("was killed by signal {s} ({})", signal_name(s)),
        _ => status.to_string(),
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => "signal",
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (_, Some(s)) => 128 + s as u8,
        _ => 1,
    }
}

fn cluster(plan: &Plan) -> Result<ClusterConfig, String> {
    let config = match (&plan.config, plan.nodes) {
        (Some(path), _) => {
            let mut config = ClusterConfig::load(path).map_err(|e| e.to_string())?;
            if let Some(bytes) = plan.cache {
                config.cache_size = bytes;
                config
                    .validate(&format!("{} with --cache", path.display()))
                    .map_err(|e| e.to_string())?;
            }
            config
        }
        (None, Some(0)) if plan.memory_nodes > 0 => return Err(no_compute_node(plan.memory_nodes)),
        (None, Some(0)) => return Err("-n must be at least 1".into()),
        (None, Some(n)) => {
            // Free ports picked now, so that runs side by side never collide.
            let ports = loco_cluster::free_loopback_ports(n + plan.memory_nodes)
                .map_err(|e| format!("cannot find free ports on 127.0.0.1: {e}"))?;
            let nodes: Vec<(String, u16)> =
                ports.into_iter().map(|p| ("127.0.0.1".into(), p)).collect();
            described_cluster(&nodes, plan, "the command line")?
        }
        (None, None) => {
            return Err("say how many nodes (-n N) or which cluster (--config FILE)".into())
        }
    };
    Ok(config)
}

/// What `-n 0 --memory-nodes M` is told (with and without `--slurm`).
pub fn no_compute_node(memory_nodes: usize) -> String {
    format!(
        "-n 0 --memory-nodes {memory_nodes}: a run needs at least one compute node (-n counts \
         them; node 0, a compute node, runs main)"
    )
}

/// The cluster the command line (`-n`) or a Slurm step (`node`, `run
/// --slurm`) describes: a node at each `(host, port)` of `nodes`, in rank
/// order, the last `plan.memory_nodes` of them memory nodes (`role =
/// "memory"`), with `--placement`, `--memory` and `--cache` applied and
/// the checks every cluster passes; `origin` names the description in
/// errors. Callers say first, in their own terms, why a count of memory
/// nodes leaves no compute node.
pub fn described_cluster(
    nodes: &[(String, u16)],
    plan: &Plan,
    origin: &str,
) -> Result<ClusterConfig, String> {
    let compute = nodes
        .len()
        .checked_sub(plan.memory_nodes)
        .filter(|&c| c > 0)
        .ok_or_else(|| {
            format!(
                "{origin}: {} nodes, {} of them memory nodes: a run needs at least one compute \
                 node (node 0, which runs main)",
                nodes.len(),
                plan.memory_nodes
            )
        })?;
    // The defaults of one node, given to each: nodes on different hosts may
    // share a port, which a template of several loopback nodes could not.
    let template =
        ClusterConfig::localhost_with_ports(&[nodes[0].1]).map_err(|e| format!("{origin}: {e}"))?;
    let mut config = template.clone();
    config.nodes = nodes
        .iter()
        .enumerate()
        .map(|(rank, (host, port))| NodeConfig {
            host: host.clone(),
            port: *port,
            role: if rank < compute {
                Role::Compute
            } else {
                Role::Memory
            },
            ..template.nodes[0].clone()
        })
        .collect();
    apply_node_options(&mut config, plan, origin)?;
    Ok(config)
}

/// `--placement`, `--memory` and `--cache` (for clusters the command line
/// or Slurm describes; without `--placement`, the default for the nodes'
/// roles), then the checks every cluster passes; `origin` names the
/// description in errors.
fn apply_node_options(config: &mut ClusterConfig, plan: &Plan, origin: &str) -> Result<(), String> {
    config.placement = match plan.placement {
        Some(p) => p.into(),
        None => config.default_placement(),
    };
    if let Some(bytes) = plan.memory {
        for node in &mut config.nodes {
            node.memory = bytes;
        }
    }
    if let Some(bytes) = plan.cache {
        config.cache_size = bytes;
    }
    config.validate(origin).map_err(|e| e.to_string())
}

/// The program the nodes run: found here (a path made absolute, or a name
/// in PATH). When no node runs here it need not exist here: the daemons look
/// for the same path (or name) on their machines.
fn program_path(name: &str, any_local: bool) -> Result<PathBuf, String> {
    match node::find_program(Path::new(name)) {
        Some(p) => Ok(p),
        None if !any_local => Ok(std::path::absolute(name).unwrap_or_else(|_| name.into())),
        None => Err(format!("{name}: no such program")),
    }
}

fn forward(
    rank: usize,
    pipe: impl Read + Send + 'static,
    to_stderr: bool,
    prefix: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { break };
            // One write per line, prefix included, so that lines of stdout and
            // stderr (both on the terminal) never interleave mid-line.
            let mut whole = Vec::with_capacity(line.len() + 16);
            if prefix {
                whole.extend_from_slice(format!("[node {rank}] ").as_bytes());
            }
            whole.extend_from_slice(&line);
            whole.push(b'\n');
            let _ = if to_stderr {
                std::io::stderr().lock().write_all(&whole)
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&whole).and_then(|()| out.flush())
            };
        }
    })
}

const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the launcher looks for new samples for `--progress-log`
/// (nodes write one a second).
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Where local nodes write their counters for `--progress` (LOCO_PROGRESS).
fn progress_prefix(cluster_file: &Path) -> PathBuf {
    cluster_file.with_file_name("progress")
}

/// A node's latest progress sample (it rewrites the file once a second),
/// and when it was written; `None` if it has written none yet.
fn progress_sample(prefix: &Path, rank: usize) -> Option<(json::Counters, std::time::SystemTime)> {
    let file = format!("{}.node{rank}", prefix.display());
    let written = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    let text = std::fs::read_to_string(&file).ok()?;
    // The node writes the file aside and renames it: never half a sample.
    json::parse_node(&text).ok().map(|c| (c, written))
}

/// Totals over the nodes' latest counters (local nodes write them once a
/// second): one line for the terminal.
fn progress_line(prefix: &Path, nodes: usize) -> String {
    // Sums over nodes, and the largest value one node has (for counts
    // every node makes of the same events, such as barriers).
    let mut totals: std::collections::HashMap<String, u64> = Default::default();
    let mut largest: std::collections::HashMap<String, u64> = Default::default();
    let mut reporting = 0;
    for rank in 0..nodes {
        let Some((counters, _)) = progress_sample(prefix, rank) else {
            continue;
        };
        reporting += 1;
        for (k, v) in &counters {
            if let Some(v) = v.as_u64() {
                *totals.entry(k.clone()).or_default() += v;
                let m = largest.entry(k.clone()).or_default();
                *m = (*m).max(v);
            }
        }
    }
    if reporting == 0 {
        return "starting".into();
    }
    let get = |k: &str| totals.get(k).copied().unwrap_or(0);
    format!(
        "{reporting} of {nodes} nodes reporting: {} remote page faults ({} fetched), \
         {} released, {} parallel regions, {} barriers, {} lock takes ({} across nodes), {} remote atomics",
        get("page_faults_remote"),
        loco_cluster::ByteSize(get("bytes_fetched")),
        loco_cluster::ByteSize(get("bytes_released")),
        get("omp_forks"),
        largest.get("omp_barriers").copied().unwrap_or(0),
        get("omp_lock_takes"),
        get("omp_lock_remote_takes"),
        get("net_atomics"),
    )
}

/// `--progress-log`: every new sample of the local nodes, appended as it
/// is found, so that the file is useful even if the run is killed.
struct ProgressLog {
    file: std::fs::File,
    path: PathBuf,
    /// When the run started, for the samples' times.
    start: std::time::SystemTime,
    /// Per node, when the last sample logged was written.
    last: Vec<Option<std::time::SystemTime>>,
}

impl ProgressLog {
    fn create(path: &Path, nodes: usize) -> Result<ProgressLog, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("--progress-log: cannot create {}: {e}", path.display()))?;
        Ok(ProgressLog {
            file,
            path: path.to_path_buf(),
            start: std::time::SystemTime::now(),
            last: vec![None; nodes],
        })
    }

    /// Appends the samples written since the last call.
    fn sample(&mut self, prefix: &Path) -> Result<(), String> {
        let mut lines = String::new();
        for (rank, last) in self.last.iter_mut().enumerate() {
            let Some((counters, written)) = progress_sample(prefix, rank) else {
                continue;
            };
            if *last == Some(written) {
                continue;
            }
            *last = Some(written);
            let t = written
                .duration_since(self.start)
                .unwrap_or_default()
                .as_secs_f64();
            lines.push_str(&json::progress_sample(t, &counters));
        }
        self.file
            .write_all(lines.as_bytes())
            .map_err(|e| format!("--progress-log: cannot write {}: {e}", self.path.display()))
    }
}

/// Runs the plan; returns the exit code the launcher should exit with.
pub fn run(plan: Plan) -> Result<u8, String> {
    let config = cluster(&plan)?;
    run_cluster(&plan, &config, Vec::new())
}

/// Runs the plan on `config`. Nodes with a connection in `checked_in` (by
/// rank: Slurm tasks that reported to this launcher) are started through
/// it; the others as their cluster.toml entry says.
pub fn run_cluster(
    plan: &Plan,
    config: &ClusterConfig,
    mut checked_in: Vec<Option<TcpStream>>,
) -> Result<u8, String> {
    checked_in.resize_with(config.num_nodes(), || None);
    let any_local = config
        .nodes
        .iter()
        .any(|n| n.launch_method() == Launch::Local);
    let program = program_path(&plan.program[0], any_local)?;
    let dir = std::env::temp_dir().join(format!("loco-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cluster_file = dir.join("cluster.toml");
    std::fs::write(&cluster_file, config.to_toml())
        .map_err(|e| format!("{}: {e}", cluster_file.display()))?;
    let mut log = match &plan.progress_log {
        Some(path) => Some(ProgressLog::create(path, config.num_nodes())?),
        None => None,
    };
    let result = supervise(
        plan,
        config,
        &program,
        &cluster_file,
        &dir.join("stats"),
        checked_in,
        log.as_mut(),
    );
    if let (Some(out), Ok(_)) = (&plan.stats_json, &result) {
        gather_stats(&dir.join("stats"), config.num_nodes(), out)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Writes the nodes' statistics files as one JSON document; a node that
/// wrote none (it died), or wrote something that is not a JSON object,
/// appears as null (the second with a warning).
fn gather_stats(prefix: &Path, nodes: usize, out: &Path) -> Result<(), String> {
    let parts: Vec<Option<json::Counters>> = (0..nodes)
        .map(|k| {
            let file = format!("{}.node{k}", prefix.display());
            let text = std::fs::read_to_string(file).ok()?;
            json::parse_node(&text)
                .map_err(|e| eprintln!("loco-daemon: node {k}'s statistics are not usable: {e}"))
                .ok()
        })
        .collect();
    std::fs::write(out, json::stats_document(parts))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Environment variables a remote node gets from the launcher (a local node
/// inherits all of them): the OpenMP and LOCO settings every node must share.
fn passed_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            (k.starts_with("OMP_") || k.starts_with("KMP_") || k.starts_with("LOCO_"))
                && !matches!(&*k, "LOCO_RANK" | "LOCO_CLUSTER" | "LOCO_STATS_JSON")
        })
        .collect()
}

/// Starts node `rank`: through its task's connection if it checked in,
/// else as its cluster.toml entry says.
fn start_node(
    plan: &Plan,
    config: &ClusterConfig,
    rank: usize,
    program: &Path,
    cluster_file: &Path,
    stats_prefix: &Path,
    checked_in: Option<TcpStream>,
) -> Result<Node, String> {
    let entry = &config.nodes[rank];
    let how = match checked_in {
        Some(stream) => How::CheckedIn(stream),
        None => How::Launch(entry.launch_method()),
    };
    let (proc, outputs) = match how {
        How::Launch(Launch::Local) => {
            let mut cmd = node::command(
                program,
                &plan.program[1..],
                &node::NodeEnv {
                    rank,
                    cluster_file,
                    stats: plan.stats,
                    stats_json: plan.stats_json.as_ref().map(|_| stats_prefix),
                },
            );
            cmd.stdin(if rank == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
            if plan.progress || plan.progress_log.is_some() {
                cmd.env("LOCO_PROGRESS", progress_prefix(cluster_file));
            }
            if plan.nodes_die_with_launcher {
                node::die_with_parent(&mut cmd);
            }
            if !plan.prefix {
                // Unprefixed, local nodes write straight to the launcher's
                // stdout and stderr: what nodes print in an order the program
                // fixes (ordered regions, output around barriers) reaches
                // the file or terminal in that order, as from one process.
                cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot start node {rank} ({}): {e}", program.display()))?;
            let mut outputs: Vec<(Box<dyn Read + Send>, bool)> = Vec::new();
            if let Some(out) = child.stdout.take() {
                outputs.push((Box::new(out), false));
            }
            if let Some(err) = child.stderr.take() {
                outputs.push((Box::new(err), true));
            }
            (Proc::Local(child), outputs)
        }
        how => {
            let start = proto::Start {
                rank: rank as u32,
                stats: plan.stats,
                stats_json: plan.stats_json.is_some(),
                program: program.as_os_str().to_owned(),
                args: plan.program[1..].iter().map(OsString::from).collect(),
                cwd: std::env::current_dir()
                    .map(PathBuf::into_os_string)
                    .unwrap_or_default(),
                cluster_toml: config.to_toml(),
                env: passed_env(),
            };
            let stats_file = plan
                .stats_json
                .as_ref()
                .map(|_| PathBuf::from(format!("{}.node{rank}", stats_prefix.display())));
            let (r, outputs) = match how {
                How::CheckedIn(stream) => {
                    remote::Remote::adopt(rank, &entry.host, stream, &start, stats_file)?
                }
                How::Launch(how) => remote::Remote::start(
                    rank,
                    entry,
                    &how,
                    &config.launch,
                    config.connect_timeout,
                    &start,
                    stats_file,
                )?,
            };
            (Proc::Remote(r), outputs)
        }
    };
    let forwarders = outputs
        .into_iter()
        .map(|(pipe, to_stderr)| forward(rank, pipe, to_stderr, plan.prefix))
        .collect();
    Ok(Node {
        rank,
        proc,
        status: None,
        forwarders,
    })
}

/// Joins output forwarders that finish by `deadline`; leaves the others be.
fn join_by(handles: Vec<JoinHandle<()>>, deadline: Instant) {
    for h in handles {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// How a node is started.
enum How {
    /// As its cluster.toml entry says.
    Launch(Launch),
    /// Through the connection its Slurm task opened to this launcher.
    CheckedIn(TcpStream),
}

fn supervise(
    plan: &Plan,
    config: &ClusterConfig,
    program: &Path,
    cluster_file: &Path,
    stats_prefix: &Path,
    checked_in: Vec<Option<TcpStream>>,
    mut log: Option<&mut ProgressLog>,
) -> Result<u8, String> {
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let n = config.num_nodes();
    let mut nodes = Nodes(Vec::with_capacity(n));
    for (rank, link) in checked_in.into_iter().enumerate() {
        let node = start_node(
            plan,
            config,
            rank,
            program,
            cluster_file,
            stats_prefix,
            link,
        )?;
        nodes.0.push(node);
    }
    let start = Instant::now();
    let mut next_progress = start + PROGRESS_EVERY;
    let mut next_sample = start + SAMPLE_EVERY;
    let mut first_failure: Option<usize> = None;
    // Every failure in the order seen, and the nodes the launcher killed itself.
    let mut failures: Vec<(usize, Outcome)> = Vec::new();
    let mut killed_by_us: Vec<usize> = Vec::new();
    let mut give_up_at: Option<Instant> = None;
    let mut why_killed: Option<String> = None;
    loop {
        let mut running = 0;
        let mut failed_now: Vec<(usize, Outcome)> = Vec::new();
        for i in 0..nodes.0.len() {
            let node = &mut nodes.0[i];
            if node.status.is_some() {
                continue;
            }
            match node.poll() {
                Ok(Some(outcome)) => {
                    node.status = Some(outcome.clone());
                    if !outcome.success() {
                        failed_now.push((node.rank, outcome));
                    }
                }
                Ok(None) => running += 1,
                Err(e) => {
                    // A node that could not start: nothing to wait for. Its
                    // own output (ssh's complaint, say) is shown first.
                    let forwarders = std::mem::take(&mut node.forwarders);
                    nodes.kill_running();
                    join_by(forwarders, Instant::now() + Duration::from_secs(1));
                    return Err(e);
                }
            }
        }
        // Nodes found dead in the same sweep: a node killed by a signal (or
        // lost with its machine) is the cause more likely than nodes that
        // exited reporting its death.
        failed_now.sort_by_key(|(rank, outcome)| (!outcome.abrupt(), *rank));
        if let (None, Some((rank, _))) = (first_failure, failed_now.first()) {
            first_failure = Some(*rank);
            give_up_at = Some(Instant::now() + GRACE);
        }
        failures.extend(failed_now);
        if running == 0 {
            break;
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            why_killed = Some("interrupted: stopped every node".into());
        } else if plan.timeout.is_some_and(|t| start.elapsed() > t) {
            why_killed = Some(format!(
                "the run took longer than {:?}: stopped every node",
                plan.timeout.unwrap()
            ));
        } else if give_up_at.is_some_and(|t| Instant::now() > t) {
            let rank = first_failure.unwrap();
            why_killed = Some(format!(
                "the other nodes did not stop within {GRACE:?} of node {rank}'s failure: killed them"
            ));
        }
        if why_killed.is_some() {
            killed_by_us = nodes.kill_running();
            break;
        }
        if plan.progress && Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            eprintln!(
                "loco-daemon: {:.0} s: {}",
                start.elapsed().as_secs_f64(),
                progress_line(&progress_prefix(cluster_file), n)
            );
        }
        if let Some(log) = log.as_deref_mut() {
            if Instant::now() >= next_sample {
                next_sample += SAMPLE_EVERY;
                if let Err(e) = log.sample(&progress_prefix(cluster_file)) {
                    // The run goes on; its progress is not worth ending it for.
                    eprintln!("loco-daemon: {e}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The nodes' last samples, written after the launcher last looked.
    if let Some(log) = log {
        if let Err(e) = log.sample(&progress_prefix(cluster_file)) {
            eprintln!("loco-daemon: {e}");
        }
    }
    for node in &mut nodes.0 {
        for f in node.forwarders.drain(..) {
            let _ = f.join();
        }
    }
    if let Some(why) = &why_killed {
        eprintln!("loco-daemon: {why}");
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Ok(130);
    }
    if why_killed.is_some() && first_failure.is_none() {
        return Ok(124);
    }
    // The cause: a node that died of a signal nobody here sent (a crash, a
    // kill) or lost its daemon, even if the nodes that noticed its death
    // were seen exiting first.
    let cause = failures
        .iter()
        .find(|(rank, outcome)| outcome.abrupt() && !killed_by_us.contains(rank))
        .or(failures.first())
        .cloned();
    match cause {
        None => Ok(nodes.0[0].status.as_ref().map_or(1, Outcome::exit_code)),
        Some((rank, outcome)) => {
            eprintln!("loco-daemon: {}", outcome.report(rank));
            for node in &nodes.0 {
                if let Some(s) = &node.status {
                    if node.rank != rank && !s.success() {
                        eprintln!("loco-daemon: node {} then {}", node.rank, s.what());
                    }
                }
            }
            // The program's own failure code when node 0 reports it; otherwise a generic one.
            Ok(match &nodes.0[0].status {
                Some(s) if rank == 0 => s.exit_code(),
                _ => 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use loco_cluster::{Placement, Role};

    use super::{described_cluster, PlacementArg, Plan};

    fn plan(memory_nodes: usize, placement: Option<PlacementArg>) -> Plan {
        Plan {
            nodes: None,
            memory_nodes,
            config: None,
            placement,
            memory: None,
            cache: None,
            stats: false,
            stats_json: None,
            timeout: None,
            prefix: true,
            progress: false,
            progress_log: None,
            program: vec!["true".into()],
            nodes_die_with_launcher: false,
        }
    }

    #[test]
    fn the_last_nodes_of_a_described_cluster_are_its_memory_nodes() {
        // As a Slurm step lays them out: two machines, a port each may share.
        let nodes: Vec<(String, u16)> = ["n1", "n1", "n2", "n2"]
            .iter()
            .zip([7000, 7001, 7000, 7001])
            .map(|(h, p)| (h.to_string(), p))
            .collect();
        let c = described_cluster(&nodes, &plan(2, None), "test").unwrap();
        let roles: Vec<Role> = c.nodes.iter().map(|n| n.role).collect();
        assert_eq!(
            roles,
            [Role::Compute, Role::Compute, Role::Memory, Role::Memory]
        );
        assert_eq!(c.memory_nodes(), [2, 3]);
        assert_eq!(c.nodes[3].host, "n2");
        assert_eq!(c.nodes[3].port, 7001);
        // Without --placement, pages go to the memory nodes.
        assert_eq!(c.placement, Placement::Interleaved);
        let c = described_cluster(&nodes, &plan(1, Some(PlacementArg::FirstTouch)), "t").unwrap();
        assert_eq!(c.memory_nodes(), [3]);
        assert_eq!(c.placement, Placement::FirstTouch);
        let c = described_cluster(&nodes, &plan(0, None), "t").unwrap();
        assert!(c.memory_nodes().is_empty());
        assert_eq!(c.placement, loco_cluster::DEFAULT_PLACEMENT);
        for m in [4, 5] {
            let e = described_cluster(&nodes, &plan(m, None), "Slurm step 1.0").unwrap_err();
            assert!(
                e.starts_with("Slurm step 1.0: 4 nodes") && e.contains("at least one compute"),
                "{e}"
            );
        }
        assert!(described_cluster(&[], &plan(0, None), "t").is_err());
    }

    #[test]
    fn placement_names_are_the_command_lines_and_cluster_tomls() {
        for p in PlacementArg::value_variants() {
            let shown = p.to_possible_value().expect("no variant is hidden");
            assert_eq!(shown.get_name(), p.name());
            let text = format!(
                "[memory]\nplacement = \"{}\"\n[[node]]\nhost = \"127.0.0.1\"\nport = 7000\n",
                p.name()
            );
            let c = loco_cluster::ClusterConfig::from_toml_str(&text, "test").unwrap();
            assert_eq!(c.placement, loco_cluster::Placement::from(*p));
        }
    }
}
