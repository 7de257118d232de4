//! Starting the nodes of a run on this machine and supervising them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loco_cluster::ClusterConfig;

/// How long the other nodes get to notice a failed node and exit on their own.
const GRACE: Duration = Duration::from_secs(3);

pub struct Plan {
    pub nodes: Option<usize>,
    pub config: Option<PathBuf>,
    /// `--placement` (with -n), as cluster.toml spells it.
    pub placement: Option<String>,
    /// `--memory` (with -n): each node's share of the heap.
    pub memory: Option<String>,
    pub stats: bool,
    pub stats_json: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub prefix: bool,
    pub program: Vec<String>,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

struct Node {
    rank: usize,
    child: Child,
    status: Option<ExitStatus>,
    forwarders: Vec<JoinHandle<()>>,
}

/// Kills the process group of every node still running when dropped, so
/// that no node outlives the launcher, whatever path it leaves by.
struct Nodes(Vec<Node>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.0 {
            if n.status.is_none() {
                kill_group(&mut n.child);
            }
        }
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) on the process group the child leads (process_group(0)
    // at spawn); it touches no memory of ours.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
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
        (Some(path), _) => ClusterConfig::load(path).map_err(|e| e.to_string())?,
        (None, Some(0)) => return Err("-n must be at least 1".into()),
        (None, Some(n)) => {
            // Free ports picked now, so that runs side by side never collide.
            let ports = loco_cluster::free_loopback_ports(n)
                .map_err(|e| format!("cannot find free ports on 127.0.0.1: {e}"))?;
            let mut config =
                ClusterConfig::localhost_with_ports(&ports).map_err(|e| e.to_string())?;
            if let Some(p) = &plan.placement {
                config.placement = match p.as_str() {
                    "interleaved" => loco_cluster::Placement::Interleaved,
                    "first-touch" => loco_cluster::Placement::FirstTouch,
                    "allocating-node" => loco_cluster::Placement::AllocatingNode,
                    other => return Err(format!(
                        "--placement {other}: expected interleaved, first-touch or allocating-node"
                    )),
                };
            }
            if let Some(m) = &plan.memory {
                let bytes = loco_cluster::parse_size(m).map_err(|e| format!("--memory: {e}"))?;
                for node in &mut config.nodes {
                    node.memory = bytes;
                }
            }
            config
                .validate("the command line")
                .map_err(|e| e.to_string())?;
            config
        }
        (None, None) => {
            return Err("say how many nodes (-n N) or which cluster (--config FILE)".into())
        }
    };
    for (i, node) in config.nodes.iter().enumerate() {
        let local = node.host.eq_ignore_ascii_case("localhost")
            || node.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !local {
            return Err(format!(
                "node {i} is on {}: starting nodes on other machines is not supported yet; \
                 every node must be on this machine (127.0.0.1)",
                node.host
            ));
        }
    }
    Ok(config)
}

/// The program as a path the nodes can execute.
fn program_path(name: &str) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name}: no such program"))
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

/// Runs the plan; returns the exit code the launcher should exit with.
pub fn run(plan: Plan) -> Result<u8, String> {
    let config = cluster(&plan)?;
    let program = program_path(&plan.program[0])?;
    let dir = std::env::temp_dir().join(format!("loco-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cluster_file = dir.join("cluster.toml");
    std::fs::write(&cluster_file, config.to_toml())
        .map_err(|e| format!("{}: {e}", cluster_file.display()))?;
    let result = supervise(&plan, &config, &program, &cluster_file, &dir.join("stats"));
    if let (Some(out), Ok(_)) = (&plan.stats_json, &result) {
        gather_stats(&dir.join("stats"), config.num_nodes(), out)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Writes the nodes' statistics files as one JSON document; a node that
/// wrote none (it died) appears as null.
fn gather_stats(prefix: &Path, nodes: usize, out: &Path) -> Result<(), String> {
    let parts: Vec<String> = (0..nodes)
        .map(|k| {
            let file = format!("{}.node{k}", prefix.display());
            std::fs::read_to_string(file)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "null".into())
        })
        .collect();
    std::fs::write(
        out,
        format!("{{\"nodes\": [\n  {}\n]}}\n", parts.join(",\n  ")),
    )
    .map_err(|e| format!("cannot write {}: {e}", out.display()))
}

fn supervise(
    plan: &Plan,
    config: &ClusterConfig,
    program: &Path,
    cluster_file: &Path,
    stats_prefix: &Path,
) -> Result<u8, String> {
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let n = config.num_nodes();
    let mut nodes = Nodes(Vec::with_capacity(n));
    for rank in 0..n {
        let mut cmd = Command::new(program);
        cmd.args(&plan.program[1..])
            .env("LOCO_RANK", rank.to_string())
            .env("LOCO_CLUSTER", cluster_file)
            .stdin(if rank == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // Every node must load the program and its libraries at the same
        // addresses: pointers to them (function pointers, `FILE *`, C++
        // vtables) travel between nodes inside shared data.
        // SAFETY: personality(2) only changes this child's execution domain
        // flags before exec; it is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let current = libc::personality(0xffff_ffff);
                if current == -1
                    || libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if plan.stats {
            cmd.env("LOCO_STATS", "1");
        }
        if plan.stats_json.is_some() {
            cmd.env("LOCO_STATS_JSON", stats_prefix);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node {rank} ({}): {e}", program.display()))?;
        let mut forwarders = Vec::new();
        if let Some(out) = child.stdout.take() {
            forwarders.push(forward(rank, out, false, plan.prefix));
        }
        if let Some(err) = child.stderr.take() {
            forwarders.push(forward(rank, err, true, plan.prefix));
        }
        nodes.0.push(Node {
            rank,
            child,
            status: None,
            forwarders,
        });
    }
    let start = Instant::now();
    let mut first_failure: Option<(usize, ExitStatus)> = None;
    // Every failure in the order seen, and the nodes the launcher killed itself.
    let mut failures: Vec<(usize, ExitStatus)> = Vec::new();
    let mut killed_by_us: Vec<usize> = Vec::new();
    let mut give_up_at: Option<Instant> = None;
    let mut why_killed: Option<String> = None;
    loop {
        let mut running = 0;
        let mut failed_now: Vec<(usize, ExitStatus)> = Vec::new();
        for node in &mut nodes.0 {
            if node.status.is_some() {
                continue;
            }
            match node.child.try_wait() {
                Ok(Some(status)) => {
                    node.status = Some(status);
                    if !status.success() {
                        failed_now.push((node.rank, status));
                    }
                }
                Ok(None) => running += 1,
                Err(e) => return Err(format!("cannot wait for node {}: {e}", node.rank)),
            }
        }
        // Nodes found dead in the same sweep: a node killed by a signal is
        // the cause more likely than nodes that exited reporting its death.
        failed_now.sort_by_key(|(rank, status)| (status.signal().is_none(), *rank));
        failures.extend(failed_now.iter().copied());
        if let (None, Some(&first)) = (first_failure, failed_now.first()) {
            first_failure = Some(first);
            give_up_at = Some(Instant::now() + GRACE);
        }
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
            let (rank, _) = first_failure.unwrap();
            why_killed = Some(format!(
                "the other nodes did not stop within {GRACE:?} of node {rank}'s failure: killed them"
            ));
        }
        if why_killed.is_some() {
            for node in &mut nodes.0 {
                if node.status.is_none() {
                    kill_group(&mut node.child);
                    node.status = node.child.try_wait().ok().flatten();
                    killed_by_us.push(node.rank);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
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
    // kill), even if the nodes that noticed its death were seen exiting first.
    let cause = failures
        .iter()
        .find(|(rank, status)| status.signal().is_some() && !killed_by_us.contains(rank))
        .or(failures.first())
        .copied();
    match cause {
        None => Ok(nodes.0[0].status.map_or(1, exit_code)),
        Some((rank, status)) => {
            eprintln!("loco-daemon: node {rank} {}", describe(status));
            for node in &nodes.0 {
                if let Some(s) = node.status {
                    if node.rank != rank && !s.success() {
                        eprintln!("loco-daemon: node {} then {}", node.rank, describe(s));
                    }
                }
            }
            // The program's own failure code when node 0 reports it; otherwise a generic one.
            Ok(match nodes.0[0].status {
                Some(s) if rank == 0 => exit_code(s),
                _ => 1,
            })
        }
    }
}
