//! LOCO under a real Slurm. The test starts munged, slurmctld and slurmd
//! itself (this machine as the only node, named `localhost`, 4 CPUs,
//! everything on 127.0.0.1 and in a scratch directory), then runs a loco-cc
//! OpenMP program as `srun -n 2` and `srun -n 4` steps of `loco-daemon
//! node`, as `srun -n 4` with the last 2 tasks memory nodes (`--memory-nodes
//! 2`: they must run no thread and serve the program's pages), and in sbatch
//! jobs through `loco-daemon run --slurm` (with and without `--memory-nodes`),
//! each time comparing with the native clang-16 build; checks that node 0's
//! exit code is the job's and that memory nodes must leave a compute node;
//! and kills a node, then a whole Slurm task, mid-run: the job must end
//! within seconds naming node 2. Every daemon it started, and every
//! process of its jobs, is stopped at the end, pass or fail.
//!
//! Skipped, saying so, only where the Slurm packages are not installed
//! (scripts/setup.sh installs slurmctld, slurmd and munge) or the test does
//! not run as root (slurmd must).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loco_integration::{
    assert_memory_nodes_served, compile, loco_compile_with, run_with_deadline, scratch,
    stats_field, stats_node_lines, tool,
};

/// How long the daemons may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(40);
/// How long one job (srun, sbatch --wait) may take before it is killed.
const JOB_DEADLINE: Duration = Duration::from_secs(90);
/// How long a job may go on after one of its nodes was killed.
const FAILURE_DEADLINE: Duration = Duration::from_secs(20);

/// The Slurm commands the test runs, found in PATH or the sbin directories.
struct Tools {
    munged: PathBuf,
    slurmctld: PathBuf,
    slurmd: PathBuf,
    srun: PathBuf,
    sbatch: PathBuf,
    sinfo: PathBuf,
    scontrol: PathBuf,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tools, or why the test cannot run here.
fn tools() -> Result<Tools, String> {
    let get = |name: &str, package: &str| {
        find(name).ok_or_else(|| {
            format!(
                "slurm packages missing: no {name} (package {package}; scripts/setup.sh \
                 installs slurmctld, slurmd and munge)"
            )
        })
    };
    let tools = Tools {
        munged: get("munged", "munge")?,
        slurmctld: get("slurmctld", "slurmctld")?,
        slurmd: get("slurmd", "slurmd")?,
        srun: get("srun", "slurm-client")?,
        sbatch: get("sbatch", "slurm-client")?,
        sinfo: get("sinfo", "slurm-client")?,
        scontrol: get("scontrol", "slurm-client")?,
    };
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("slurmd must run as root, and this test does not".into());
    }
    Ok(tools)
}

/// Pids and names of the processes whose environment holds every one of
/// `vars` ("NAME=value").
fn processes_with(vars: &[&str]) -> Vec<(i32, String)> {
    loco_testkit::processes_by_environment()
        .into_iter()
        .filter(|(pid, env)| {
            vars.iter().all(|v| env.iter().any(|e| e == v)) && loco_testkit::process_running(*pid)
        })
        .map(|(pid, _)| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (pid, comm.trim().to_string())
        })
        .collect()
}

fn kill(pid: i32, signal: i32) {
    // SAFETY: kill(2) on a process this test started (directly or through
    // Slurm); it touches no memory.
    unsafe { libc::kill(pid, signal) };
}

/// The first of `n` consecutive ports that are free on 127.0.0.1 now, below
/// the kernel's ephemeral ports (where nothing else hands them out).
fn free_port_block(n: u16) -> u16 {
    let start = 12000 + (std::process::id() % 1000) as u16 * 16;
    (0..1000u16)
        .map(|i| 12000 + (start - 12000 + i * n) % 16000)
        .find(|&base| {
            let held: Vec<_> = (base..base + n)
                .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
                .collect();
            held.len() == n as usize
        })
        .expect("no block of free ports in 12000-28015")
}

/// A command talking to the cluster of `conf`, and to no Slurm the test
/// itself may run under.
fn cluster_command(conf: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("SLURM_") || k.starts_with("SRUN_") || k.starts_with("SBATCH_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("SLURM_CONF", conf);
    cmd
}

/// A one-machine Slurm cluster, stopped (with everything its jobs left)
/// when dropped.
struct Slurm {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

impl Slurm {
    fn start(tools: &Tools, dir: &Path) -> Slurm {
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::set_permissions(dir.join("munge"), PermissionsExt::from_mode(0o755)).unwrap();
        let mut key = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut r| r.read_exact(&mut key))
            .expect("random bytes for the munge key");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("munge/munge.key"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &key))
            .expect("write the munge key");
        let socket = dir.join("munge/munge.socket");
        let conf = dir.join("slurm.conf");
        // The guard exists before the first daemon, so that a failure from
        // here on stops whatever was started.
        let mut slurm = Slurm {
            dir: dir.to_path_buf(),
            conf: conf.clone(),
            daemons: Vec::new(),
        };
        let d = |p: &str| dir.join(p).display().to_string();
        slurm.spawn(
            "munged",
            Command::new(&tools.munged).args([
                "--foreground",
                "--force",
                &format!("--socket={}", socket.display()),
                &format!("--key-file={}", d("munge/munge.key")),
                &format!("--log-file={}", d("log/munged.log")),
                &format!("--pid-file={}", d("munge/munged.pid")),
                &format!("--seed-file={}", d("munge/munged.seed")),
            ]),
        );
        slurm.wait_until("munged to create its socket", || socket.exists());

        let ports = loco_testkit::free_ports(2);
        let reservable = free_port_block(16);
        let text = [
            "ClusterName=lococi".to_string(),
            "SlurmctldHost=localhost(127.0.0.1)".into(),
            format!("SlurmctldPort={}", ports[0]),
            format!("SlurmdPort={}", ports[1]),
            "SlurmUser=root".into(),
            "SlurmdUser=root".into(),
            "AuthType=auth/munge".into(),
            "CredType=cred/munge".into(),
            format!("AuthInfo=socket={}", socket.display()),
            format!("StateSaveLocation={}", d("state")),
            format!("SlurmdSpoolDir={}", d("spool")),
            format!("SlurmctldPidFile={}", d("slurmctld.pid")),
            format!("SlurmdPidFile={}", d("slurmd.pid")),
            format!("SlurmctldLogFile={}", d("log/slurmctld.log")),
            format!("SlurmdLogFile={}", d("log/slurmd.log")),
            "ProctrackType=proctrack/linuxproc".into(),
            "TaskPlugin=task/none".into(),
            "JobAcctGatherType=jobacct_gather/none".into(),
            "AccountingStorageType=accounting_storage/none".into(),
            "SwitchType=switch/none".into(),
            "MpiDefault=none".into(),
            // Ports srun --resv-ports hands out to a step.
            format!("MpiParams=ports={}-{}", reservable, reservable + 15),
            "ReturnToService=2".into(),
            "SchedulerType=sched/builtin".into(),
            "SelectType=select/cons_tres".into(),
            "SelectTypeParameters=CR_CPU".into(),
            // 4 CPUs declared whatever the machine has.
            "SlurmdParameters=config_overrides".into(),
            "KillWait=2".into(),
            "NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN".into(),
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP \
             OverSubscribe=FORCE"
                .into(),
        ]
        .join("\n");
        std::fs::write(&conf, text + "\n").unwrap();
        slurm.spawn(
            "slurmctld",
            cluster_command(&conf, &tools.slurmctld).args(["-D", "-i"]),
        );
        slurm.spawn(
            "slurmd",
            cluster_command(&conf, &tools.slurmd).args(["-D", "-N", "localhost"]),
        );
        slurm.wait_until("the node to be idle", || {
            // sinfo answers at once (or fails at once) while slurmctld runs.
            run_with_deadline(
                cluster_command(&conf, &tools.sinfo).args(["-h", "-o", "%t"]),
                Duration::from_secs(10),
            )
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        slurm
    }

    /// A command talking to this cluster.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        cluster_command(&self.conf, program)
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir.join(format!("log/{name}.out"))).unwrap();
        cmd.env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        // SAFETY: prctl only sets a flag of the child before exec: the
        // daemon dies with the test even if nothing else stops it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            let ended = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = ended {
                panic!(
                    "{name} ended ({status}) while waiting for {what}\n{}",
                    self.logs()
                );
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "waited {START_DEADLINE:?} for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of every daemon's log, for failure messages.
    fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.join("log"))
            .into_iter()
            .flatten()
        {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            all.push_str(&format!("--- {} ---\n", path.display()));
            for line in tail.into_iter().rev() {
                all.push_str(line);
                all.push('\n');
            }
        }
        all
    }

    /// Every process of this cluster still running: daemons, slurmstepd,
    /// job tasks and LOCO nodes all carry its SLURM_CONF.
    fn leftovers(&self) -> Vec<(i32, String)> {
        processes_with(&[&format!("SLURM_CONF={}", self.conf.display())])
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for (_, child) in &mut self.daemons {
            kill(child.id() as i32, libc::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.daemons {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            kill(-(child.id() as i32), libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
        // What the daemons left: slurmstepd, tasks and their nodes.
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.leftovers();
            if left.is_empty() || Instant::now() > until {
                break;
            }
            for (pid, _) in left {
                kill(pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A job started in the background (srun with piped output), killed with
/// its process group if the test ends before it does.
struct Job {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Job {
    fn start(cmd: &mut Command) -> Job {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start srun");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Job {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Waits until `deadline` for the job to end; its status and stderr.
    fn finish(mut self, deadline: Duration) -> (Option<std::process::ExitStatus>, String) {
        let start = Instant::now();
        let status = loop {
            match self.child.try_wait().unwrap() {
                Some(s) => break Some(s),
                None if start.elapsed() > deadline => break None,
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if status.is_none() {
            kill(-(self.child.id() as i32), libc::SIGKILL);
            let _ = self.child.wait();
        }
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        (status, stderr.unwrap_or_default())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill(-(self.child.id() as i32), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(what: &str, o: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// What is killed mid-run.
#[derive(Clone, Copy)]
enum Victim {
    /// Node 2's program.
    Node,
    /// The whole Slurm task of rank 2 (`loco-daemon node`; its node goes too).
    Task,
}

/// Runs the walker on 4 nodes, kills node 2 (or its task) once it runs, and
/// checks that the job ends within seconds saying `expected`, with every
/// node gone.
fn kill_mid_run(slurm: &Slurm, tools: &Tools, daemon: &Path, walker: &Path, victim: Victim) {
    let mark = format!(
        "LOCO_SLURM_TEST_MARK={}-{}",
        std::process::id(),
        victim as u8
    );
    let (k, v) = mark.split_once('=').unwrap();
    let job = Job::start(
        slurm
            .command(&tools.srun)
            .args(["-n", "4"])
            .arg(daemon)
            .args(["node", "--timeout", "80", "--"])
            .arg(walker)
            .env(k, v),
    );
    match job.lines.recv_timeout(JOB_DEADLINE) {
        Ok(line) => assert!(line.contains("walking"), "unexpected first line {line:?}"),
        Err(_) => {
            let (status, err) = job.finish(Duration::ZERO);
            panic!(
                "the walker never started ({status:?}):\n{err}\n{}",
                slurm.logs()
            );
        }
    }
    let nodes: Vec<(i32, String)> = processes_with(&[&mark, "LOCO_RANK=0"])
        .into_iter()
        .chain((1..4).flat_map(|r| processes_with(&[&mark, &format!("LOCO_RANK={r}")])))
        .collect();
    assert_eq!(nodes.len(), 4, "found nodes {nodes:?}");
    let (target, expected) = match victim {
        Victim::Node => (
            processes_with(&[&mark, "LOCO_RANK=2"]),
            "node 2 was killed by signal 9 (SIGKILL)",
        ),
        Victim::Task => (
            processes_with(&[&mark, "SLURM_PROCID=2"])
                .into_iter()
                .filter(|(_, comm)| comm == "loco-daemon")
                .collect(),
            "node 2: lost contact with its Slurm task on localhost",
        ),
    };
    assert_eq!(target.len(), 1, "what to kill: {target:?}");
    kill(target[0].0, libc::SIGKILL);
    let killed_at = Instant::now();
    let (status, err) = job.finish(FAILURE_DEADLINE);
    let status = status.unwrap_or_else(|| {
        panic!("the job did not end within {FAILURE_DEADLINE:?} of the kill:\n{err}")
    });
    assert!(!status.success(), "{err}");
    assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    assert!(
        err.contains("node 2 has failed"),
        "the survivors did not say which node failed:\n{err}"
    );
    eprintln!(
        "slurm: killing node 2's {} ended the job in {:?}",
        match victim {
            Victim::Node => "program",
            Victim::Task => "task",
        },
        killed_at.elapsed()
    );
    let until = Instant::now() + Duration::from_secs(10);
    for (pid, comm) in nodes {
        while loco_testkit::process_running(pid) {
            assert!(
                Instant::now() < until,
                "node process {pid} ({comm}) is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Submits `script` with sbatch and waits for the job to end (polling:
/// `sbatch --wait` looks only every few tens of seconds); its final state
/// and exit code as scontrol shows them ("COMPLETED", "0:0").
fn batch_job(slurm: &Slurm, tools: &Tools, script: &Path, dir: &Path) -> (String, String) {
    let o = run_with_deadline(
        slurm
            .command(&tools.sbatch)
            .arg("--parsable")
            .arg(script)
            .current_dir(dir),
        JOB_DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{}", describe("sbatch", &o));
    let id = text(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let start = Instant::now();
    loop {
        let o = run_with_deadline(
            slurm
                .command(&tools.scontrol)
                .args(["-o", "show", "job", &id]),
            JOB_DEADLINE,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = text(&o.stdout);
        let field = |name: &str| {
            shown
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or("")
                .to_string()
        };
        let state = field("JobState=");
        if !matches!(
            state.as_str(),
            "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING" | "SUSPENDED"
        ) {
            return (state, field("ExitCode="));
        }
        assert!(
            start.elapsed() < JOB_DEADLINE,
            "batch job {id} still {state} after {JOB_DEADLINE:?}\n{}",
            slurm.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn loco_programs_run_as_slurm_jobs() {
    let tools = match tools() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let t0 = Instant::now();
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("slurm");
    let (native, loco, walker) = (work.join("native"), work.join("loco"), work.join("walker"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/omp_threads.c");
    let flags = ["-O2".to_string(), "-fopenmp".to_string()];
    compile(Path::new("clang-16"), &flags, &src, &native, JOB_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    loco_compile_with("programs/omp_threads.c", &["-fopenmp"], &loco);
    loco_compile_with("failures/walker.c", &[], &walker);
    let expected = run_with_deadline(
        Command::new(&native).env("OMP_NUM_THREADS", "4"),
        JOB_DEADLINE,
    )
    .unwrap();
    assert!(
        expected.status.success(),
        "{}",
        describe("native", &expected)
    );
    let expected = text(&expected.stdout);

    let slurm = Slurm::start(&tools, &work.join("slurm"));
    eprintln!("slurm: built and started in {:?}", t0.elapsed());

    // One LOCO node per task of an srun step; the team of 4 threads spans them.
    for (n, prefix) in [(2, false), (4, true)] {
        let t = Instant::now();
        let mut cmd = slurm.command(&tools.srun);
        cmd.arg(format!("--ntasks={n}"))
            .arg(&daemon)
            .args(["node", "--timeout", "80"]);
        if !prefix {
            cmd.arg("--no-prefix");
        }
        cmd.arg("--")
            .arg(&loco)
            .current_dir(&work)
            .env("OMP_NUM_THREADS", "4");
        let got = run_with_deadline(&mut cmd, JOB_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
        let what = format!("srun -n {n} loco-daemon node");
        assert!(
            got.status.success(),
            "{}\n{}",
            describe(&what, &got),
            slurm.logs()
        );
        let want = if prefix {
            expected
                .lines()
                .map(|l| format!("[node 0] {l}\n"))
                .collect()
        } else {
            expected.clone()
        };
        assert_eq!(text(&got.stdout), want, "{}", describe(&what, &got));
        eprintln!("slurm: {what}: native output in {:?}", t.elapsed());
    }

    // Memory nodes: the last 2 of 4 tasks home the program's pages and serve
    // them; the team of 4 threads runs on the 2 compute nodes.
    let t = Instant::now();
    let json = work.join("memory-nodes.json");
    let what = "srun -n 4 loco-daemon node --memory-nodes 2";
    let got = run_with_deadline(
        slurm
            .command(&tools.srun)
            .args(["-n", "4"])
            .arg(&daemon)
            .args(["node", "--memory-nodes", "2", "--timeout", "80"])
            .args(["--stats", "--stats-json"])
            .arg(&json)
            .arg("--")
            .arg(&loco)
            .current_dir(&work)
            .env("OMP_NUM_THREADS", "4"),
        JOB_DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        got.status.success(),
        "{}\n{}",
        describe(what, &got),
        slurm.logs()
    );
    let want: String = expected
        .lines()
        .map(|l| format!("[node 0] {l}\n"))
        .collect();
    assert_eq!(text(&got.stdout), want, "{}", describe(what, &got));
    let err = text(&got.stderr);
    for k in 0..4 {
        let kind = if k < 2 { "" } else { " (memory node)" };
        let line = format!("[node {k}] loco: node {k}{kind} stats:");
        assert!(err.contains(&line), "no {line:?}: {}", describe(what, &got));
    }
    let nodes = stats_node_lines(&json);
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    for (k, node) in nodes.iter().enumerate() {
        assert_eq!(
            stats_field(node, "memory_node"),
            u64::from(k >= 2),
            "{node}"
        );
    }
    for compute in &nodes[..2] {
        assert!(stats_field(compute, "omp_threads") > 0, "{compute}");
    }
    // The heap is theirs (interleaved over them by default): they served it.
    assert_memory_nodes_served(
        &nodes[2..],
        &[
            "omp_threads",
            "omp_forks",
            "allocations",
            "page_faults_remote",
        ],
    );
    eprintln!("slurm: {what}: native output in {:?}", t.elapsed());

    // As many memory nodes as tasks leave no compute node: refused, once.
    let got = run_with_deadline(
        slurm
            .command(&tools.srun)
            .args(["-n", "2"])
            .arg(&daemon)
            .args(["node", "--memory-nodes", "2", "--"])
            .arg(&loco),
        JOB_DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let what = "srun -n 2 loco-daemon node --memory-nodes 2";
    assert_eq!(got.status.code(), Some(2), "{}", describe(what, &got));
    let err = text(&got.stderr);
    assert_eq!(
        err.matches("leaving no compute node").count(),
        1,
        "{}",
        describe(what, &got)
    );
    assert!(
        err.contains("--memory-nodes 2: Slurm step") && err.contains("has 2 tasks"),
        "{}",
        describe(what, &got)
    );

    // The job's exit code and output are node 0's; every node's output comes
    // through it, prefixed.
    let got = run_with_deadline(
        slurm
            .command(&tools.srun)
            .args(["-n", "3"])
            .arg(&daemon)
            .args(["node", "--", "sh", "-c"])
            .arg(
                "echo task $SLURM_PROCID is node $LOCO_RANK; [ $LOCO_RANK = 0 ] && exit 7; exit 0",
            ),
        JOB_DEADLINE,
    )
    .unwrap();
    assert_eq!(
        got.status.code(),
        Some(7),
        "{}",
        describe("exit code", &got)
    );
    for r in 0..3 {
        let line = format!("[node {r}] task {r} is node {r}");
        assert!(
            text(&got.stdout).contains(&line),
            "{}",
            describe("exit code", &got)
        );
    }
    assert!(
        text(&got.stderr).contains("node 0 exited with code 7"),
        "{}",
        describe("exit code", &got)
    );

    // With ports Slurm reserved for the step, the nodes listen on those (one
    // each; the third takes the check-ins).
    let got = run_with_deadline(
        slurm
            .command(&tools.srun)
            .args(["--resv-ports=3", "-n", "2"])
            .arg(&daemon)
            .args(["node", "--no-prefix", "--"])
            .args([
                "sh",
                "-c",
                "[ $LOCO_RANK = 0 ] || exit 0; echo $SLURM_STEP_RESV_PORTS; \
                 grep '^port' \"$LOCO_CLUSTER\"",
            ]),
        JOB_DEADLINE,
    )
    .unwrap();
    let what = "srun --resv-ports=3 -n 2";
    assert!(got.status.success(), "{}", describe(what, &got));
    let out = text(&got.stdout);
    let mut lines = out.lines();
    let (lo, hi) = lines
        .next()
        .and_then(|r| r.split_once('-'))
        .unwrap_or_else(|| panic!("{}", describe(what, &got)));
    let (lo, hi): (u16, u16) = (lo.parse().unwrap(), hi.parse().unwrap());
    let ports: Vec<u16> = lines
        .filter_map(|l| l.strip_prefix("port = ")?.parse().ok())
        .collect();
    assert_eq!(ports, [lo, lo + 1], "{}", describe(what, &got));
    assert_eq!(hi, lo + 2, "{}", describe(what, &got));

    // sbatch scripts: `loco-daemon run --slurm` runs the step itself; with
    // --memory-nodes 1 the last of the allocation's 3 tasks is a memory node.
    // (The second keeps the prefixes: without them node 0 writes straight to
    // the job's stderr, and its statistics line, written in pieces, may be
    // cut by another node's line.)
    for (name, options) in [
        ("job", "--no-prefix "),
        ("job-memory", "--memory-nodes 1 --stats "),
    ] {
        let t = Instant::now();
        let script = work.join(format!("{name}.sh"));
        let (out, err) = (
            work.join(format!("{name}.out")),
            work.join(format!("{name}.err")),
        );
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n#SBATCH --ntasks=3\n#SBATCH --output={out}\n#SBATCH --error={err}\n\
                 export OMP_NUM_THREADS=4\n\
                 exec {daemon} run --slurm {options}--timeout 80 -- {loco}\n",
                out = out.display(),
                err = err.display(),
                daemon = daemon.display(),
                loco = loco.display()
            ),
        )
        .unwrap();
        let (state, exit_code) = batch_job(&slurm, &tools, &script, &work);
        let job_err = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(
            state == "COMPLETED" && exit_code == "0:0",
            "the sbatch job {name} ended {state} with exit code {exit_code}\n\
             --- job's stderr ---\n{job_err}\n{}",
            slurm.logs()
        );
        let want: String = if options.contains("--no-prefix") {
            expected.clone()
        } else {
            expected
                .lines()
                .map(|l| format!("[node 0] {l}\n"))
                .collect()
        };
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            want,
            "sbatch job {name}'s output\n--- job's stderr ---\n{job_err}"
        );
        if options.contains("--memory-nodes") {
            for k in 0..3 {
                let kind = if k < 2 { "" } else { " (memory node)" };
                let line = format!("[node {k}] loco: node {k}{kind} stats:");
                assert!(job_err.contains(&line), "no {line:?} in:\n{job_err}");
            }
        }
        eprintln!(
            "slurm: sbatch job of 3 tasks (run --slurm {}): native output in {:?}",
            options.trim_end(),
            t.elapsed()
        );
    }

    // A node that dies, or a task that dies, ends the job naming it.
    kill_mid_run(&slurm, &tools, &daemon, &walker, Victim::Node);
    kill_mid_run(&slurm, &tools, &daemon, &walker, Victim::Task);

    let conf = slurm.conf.clone();
    drop(slurm);
    let left = processes_with(&[&format!("SLURM_CONF={}", conf.display())]);
    assert!(left.is_empty(), "left running: {left:?}");
    std::fs::remove_dir_all(&work).unwrap();
    eprintln!("slurm: passed in {:?}", t0.elapsed());
}
