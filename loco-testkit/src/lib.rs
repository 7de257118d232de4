//! Runs multi-process tests: N node processes on this machine, over
//! loopback, each with a deadline; whatever happens, no process outlives
//! the run (each node is the leader of its own process group, and the group
//! is killed on timeout, on a panic in the parent, and at the end).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How one node process ended.
#[derive(Debug)]
pub struct NodeOutcome {
    pub rank: usize,
    /// `None` if the process was still running at the deadline and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl NodeOutcome {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }

    /// One line saying how the node ended, for failure messages.
    pub fn describe(&self) -> String {
        let how = match self.status {
            None => "killed at the deadline (it hung)".to_string(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited with {c}"),
                (_, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
        };
        format!(
            "node {} {how}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.rank, self.stdout, self.stderr
        )
    }
}

/// Whether process `pid` is still running: gone, or a zombie waiting for
/// its parent (or init) to reap it, both count as not running.
pub fn process_running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    !matches!(state, None | Some("Z"))
}

/// Every process whose environment this one may read, other than this
/// one: its pid and its environment's "NAME=value" entries (for finding
/// the processes a test started by what it put in their environment).
pub fn processes_by_environment() -> Vec<(i32, Vec<String>)> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let env = std::fs::read(entry.path().join("environ")).ok()?;
            let vars = env
                .split(|&b| b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            (pid != me).then_some((pid, vars))
        })
        .collect()
}

/// `n` TCP ports on 127.0.0.1 that were free a moment ago
/// (see loco_cluster::free_loopback_ports).
pub fn free_ports(n: usize) -> Vec<u16> {
    loco_cluster::free_loopback_ports(n).expect("cannot bind a loopback port")
}

struct Running {
    rank: usize,
    child: Child,
    readers: Vec<JoinHandle<String>>,
    status: Option<ExitStatus>,
}

/// Kills every still-running node's process group when dropped.
struct Group(Vec<Running>);

impl Drop for Group {
    fn drop(&mut self) {
        for node in &mut self.0 {
            if node.status.is_none() {
                kill_group(&mut node.child);
            }
        }
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the process group the child
    // leads (set up by process_group(0) at spawn); it touches no memory.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `n` node processes, `command(rank)` each, and waits for all of them
/// until `deadline` after the start; those still running then are killed.
/// Output is captured per node.
pub fn run_nodes(
    n: usize,
    deadline: Duration,
    command: impl Fn(usize) -> Command,
) -> Vec<NodeOutcome> {
    let start = Instant::now();
    let mut group = Group(Vec::with_capacity(n));
    for rank in 0..n {
        let mut cmd = command(rank);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {rank}: {e}"));
        let readers = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|mut pipe| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = pipe.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        })
        .collect();
        group.0.push(Running {
            rank,
            child,
            readers,
            status: None,
        });
    }
    loop {
        let mut running = 0;
        for node in &mut group.0 {
            if node.status.is_none() {
                match node.child.try_wait() {
                    Ok(Some(status)) => node.status = Some(status),
                    Ok(None) => running += 1,
                    Err(e) => panic!("cannot wait for node {}: {e}", node.rank),
                }
            }
        }
        if running == 0 || start.elapsed() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for node in &mut group.0 {
        if node.status.is_none() {
            kill_group(&mut node.child);
        }
    }
    let nodes = std::mem::take(&mut group.0);
    nodes
        .into_iter()
        .map(|mut node| {
            let mut texts = node.readers.drain(..).map(|r| r.join().unwrap_or_default());
            NodeOutcome {
                rank: node.rank,
                status: node.status,
                stdout: texts.next().unwrap_or_default(),
                stderr: texts.next().unwrap_or_default(),
            }
        })
        .collect()
}

/// A command that runs this same executable again, for tests that play
/// every node themselves: the child sees `env` and decides its role from it.
pub fn this_executable(env: &[(&str, String)]) -> Command {
    let exe = std::env::current_exe().expect("the running test has a path");
    let mut cmd = Command::new(exe);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn collects_output_and_exit_codes() {
        let out = run_nodes(3, Duration::from_secs(10), |r| {
            sh(&format!("echo node{r}; exit {r}"))
        });
        assert_eq!(out.len(), 3);
        for (r, o) in out.iter().enumerate() {
            assert_eq!(o.stdout, format!("node{r}\n"));
            assert_eq!(o.status.unwrap().code(), Some(r as i32));
        }
        assert!(out[0].success() && !out[1].success());
    }

    #[test]
    fn a_hung_node_and_its_children_are_killed_at_the_deadline() {
        let t = Instant::now();
        // The child shell starts a grandchild; both must die with the group.
        let out = run_nodes(2, Duration::from_millis(500), |r| {
            if r == 0 {
                sh("exit 0")
            } else {
                sh("sleep 30 & echo $!; wait")
            }
        });
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(out[0].success());
        assert!(out[1].timed_out(), "{}", out[1].describe());
        let grandchild: i32 = out[1].stdout.trim().parse().expect("grandchild pid");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !process_running(grandchild),
            "the grandchild {grandchild} survived"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let p = free_ports(8);
        let mut q = p.clone();
        q.sort();
        q.dedup();
        assert_eq!(q.len(), 8);
    }
}

/// Multi-process test suites with their own `main` (`harness = false`):
/// every scenario runs as real node processes, for each variant (a backend,
/// a mode) and node count; the test executable plays every node itself.
/// SplitMix64: a small deterministic generator that every node of a test
/// or bench can replay from the same seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `0..n` shuffled (Fisher-Yates).
    pub fn permutation(&mut self, n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

pub mod suite {
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use super::{free_ports, run_nodes, this_executable, NodeOutcome};

    pub type Check = Result<(), String>;

    /// What a scenario's nodes are expected to do.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Expect {
        /// Every node exits 0.
        AllSucceed,
        /// The last node dies of SIGKILL; the others exit 0.
        LastNodeKilled,
        /// Every node exits 0 and at least one printed this line.
        SomeNodeSaid(&'static str),
    }

    pub struct Scenario {
        pub name: &'static str,
        pub expect: Expect,
        /// Runs in every node process.
        pub body: fn(&Node) -> Check,
    }

    /// What a node process knows about its run.
    pub struct Node {
        pub rank: usize,
        pub n: usize,
        /// One free loopback port per node.
        pub ports: Vec<u16>,
        pub variant: String,
    }

    /// A variant of the suite and, if it cannot run here, why.
    pub struct Variant {
        pub name: &'static str,
        pub unavailable: Option<String>,
    }

    const ENV_SCENARIO: &str = "LOCO_SUITE_SCENARIO";

    /// The suite's `main`: as a node process, runs its scenario; otherwise
    /// runs every (variant, node count, scenario) whose name contains the
    /// first free command-line argument, and prints `N passed, N failed, N skipped`.
    pub fn main(
        suite: &str,
        variants: &[Variant],
        node_counts: &[usize],
        scenarios: &[Scenario],
        deadline: Duration,
    ) -> ExitCode {
        if let Ok(name) = std::env::var(ENV_SCENARIO) {
            return node_main(&name, scenarios);
        }
        let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for variant in variants {
            if let Some(why) = &variant.unavailable {
                println!("{suite}: {} skipped: {why}", variant.name);
            }
            for &n in node_counts {
                for s in scenarios {
                    let test = format!("{}/{n}-nodes/{}", variant.name, s.name);
                    if filter.as_ref().is_some_and(|f| !test.contains(f.as_str())) {
                        continue;
                    }
                    if variant.unavailable.is_some() {
                        println!("test {test} ... skipped");
                        skipped += 1;
                        continue;
                    }
                    let t = Instant::now();
                    match run(variant.name, n, s, deadline) {
                        Ok(()) => {
                            println!("test {test} ... ok ({:.2}s)", t.elapsed().as_secs_f64());
                            passed += 1;
                        }
                        Err(why) => {
                            println!(
                                "test {test} ... FAILED ({:.2}s)\n{why}",
                                t.elapsed().as_secs_f64()
                            );
                            failed += 1;
                        }
                    }
                }
            }
        }
        println!("{suite}: {passed} passed, {failed} failed, {skipped} skipped");
        if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    fn run(variant: &str, n: usize, s: &Scenario, deadline: Duration) -> Check {
        let ports = free_ports(n);
        let ports_text = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let outcomes = run_nodes(n, deadline, |rank| {
            this_executable(&[
                (ENV_SCENARIO, s.name.to_string()),
                ("LOCO_SUITE_VARIANT", variant.to_string()),
                ("LOCO_SUITE_RANK", rank.to_string()),
                ("LOCO_SUITE_PORTS", ports_text.clone()),
            ])
        });
        let bad: Vec<&NodeOutcome> = outcomes
            .iter()
            .filter(|o| {
                let killed_on_purpose = s.expect == Expect::LastNodeKilled
                    && o.rank == n - 1
                    && o.signal() == Some(libc::SIGKILL);
                !(o.success() || killed_on_purpose)
            })
            .collect();
        if !bad.is_empty() {
            return Err(bad
                .iter()
                .map(|o| o.describe())
                .collect::<Vec<_>>()
                .join("\n"));
        }
        if let Expect::SomeNodeSaid(line) = s.expect {
            if !outcomes.iter().any(|o| o.stdout.lines().any(|l| l == line)) {
                let all: Vec<String> = outcomes.iter().map(|o| o.describe()).collect();
                return Err(format!("no node printed {line:?}\n{}", all.join("\n")));
            }
        }
        Ok(())
    }

    fn node_main(name: &str, scenarios: &[Scenario]) -> ExitCode {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        let ports: Vec<u16> = var("LOCO_SUITE_PORTS")
            .split(',')
            .map(|p| p.parse().expect("port"))
            .collect();
        let node = Node {
            rank: var("LOCO_SUITE_RANK").parse().expect("rank"),
            n: ports.len(),
            ports,
            variant: var("LOCO_SUITE_VARIANT"),
        };
        let scenario = scenarios
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("unknown scenario {name}"));
        match (scenario.body)(&node) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("node {}: {why}", node.rank);
                ExitCode::FAILURE
            }
        }
    }

    /// `Err(what())` unless `cond`.
    pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Check {
        if cond {
            Ok(())
        } else {
            Err(what())
        }
    }
}

/// Why a built artifact that a test runs (a cdylib cargo test does not
/// rebuild, a driver binary) cannot be trusted, if it cannot: missing, or
/// older than a source file under one of `sources` (directories).
pub fn stale_artifact(
    artifact: &std::path::Path,
    sources: &[std::path::PathBuf],
) -> Option<String> {
    fn newest(dir: &std::path::Path) -> Option<std::time::SystemTime> {
        let mut best = None;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let p = entry.path();
            let t = if p.is_dir() {
                newest(&p)
            } else {
                entry.metadata().ok().and_then(|m| m.modified().ok())
            };
            best = best.max(t);
        }
        best
    }
    let built = match std::fs::metadata(artifact).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => {
            return Some(format!(
                "{} is missing: run `cargo build --workspace` (or `just build`)",
                artifact.display()
            ))
        }
    };
    let source = sources.iter().filter_map(|d| newest(d)).max()?;
    (source > built).then(|| {
        format!(
            "{} is older than its sources: run `cargo build --workspace` (or `just build`) first",
            artifact.display()
        )
    })
}
