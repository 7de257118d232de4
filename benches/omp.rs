//! The cost of each OpenMP construct, side by side in one run: native
//! libomp, LOCO on one node (the binary run directly, and under `loco-daemon
//! run -n 1`), LOCO on 2 and 4 nodes (one thread per node), LOCO on 2
//! compute nodes beside 2 memory nodes (`--memory-nodes 2`: every page
//! homed on the memory nodes, which take part in no barrier), with a raw
//! TCP round trip between two processes (both pinned to one CPU, and
//! pinned to two) as the floor for anything that crosses nodes.
//!
//! Constructs come from benches/kernels/omp_sync.c (EPCC syncbench's
//! definition of overhead: time per construct around a short delay, minus
//! the delay); whole programs (omp_dynamic: an uneven dynamic loop,
//! omp_scan: remote page reads) follow in the same columns. The kernels are
//! compiled with native `clang-16 -fopenmp -O2` and `loco-cc -fopenmp -O2`;
//! rounds alternate over every configuration, so a change in the machine's
//! load affects them all alike, and each figure is the median over rounds.
//!
//! Goals: one node within 2x native + 1 µs; two nodes: a barrier
//! within 2x one round trip, other constructs within 3x (the round trip
//! across CPUs: the node processes are not pinned); memory nodes add
//! nothing to a barrier of the compute nodes (within 10% + 2 µs of the
//! same 2 nodes without them).
//!
//! `cargo bench -p loco-benches --bench omp` (needs the workspace built:
//! loco-cc, loco-daemon, libloco.so and libloco_pass.so next to the bench;
//! LOCO_BENCH_ROUNDS sets the repetitions, default 3; LOCO_SPIN_US, if set,
//! reaches the LOCO runs).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use loco_benches::{build_dir, compile_kernel, median_of, require_built, rounds, run_kernel};
use loco_testkit::{free_ports, run_nodes, this_executable};

/// The constructs omp_sync measures, in its order.
const CONSTRUCTS: &[&str] = &[
    "parallel",
    "for",
    "barrier",
    "single",
    "critical",
    "lock",
    "ordered",
    "atomic",
    "reduction",
    "dynamic",
];

/// Whole programs: (kernel, argument).
const PROGRAMS: &[(&str, &str)] = &[("omp_dynamic", "20000"), ("omp_scan", "16")];

/// How a kernel is run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Setup {
    /// The clang-16 build, `threads` threads.
    Native(usize),
    /// The loco-cc build run directly: a cluster of one, `threads` threads.
    Direct(usize),
    /// The loco-cc build under `loco-daemon run -n NODES`, `threads` in all.
    Daemon(usize, usize),
    /// As `Daemon`, with `--memory-nodes MEMORY` (the first field).
    Memory(usize, usize, usize),
}

/// The columns, left to right.
const SETUPS: &[(Setup, &str)] = &[
    (Setup::Native(2), "native M=2"),
    (Setup::Direct(2), "1 node"),
    (Setup::Daemon(1, 2), "1 node -n 1"),
    (Setup::Daemon(2, 2), "2 nodes"),
    (Setup::Memory(2, 2, 2), "2 nodes+2mem"),
    (Setup::Native(4), "native M=4"),
    (Setup::Daemon(4, 4), "4 nodes"),
];

const DEADLINE: Duration = Duration::from_secs(300);

/// Round trips each ping-pong times.
const PINGS: usize = 20_000;

/// Runs `cmd` with a team of `threads` (killed at the deadline); returns its
/// stdout and stderr, or ends the bench.
fn run(cmd: Command, threads: usize) -> (String, String) {
    run_kernel(cmd, threads, DEADLINE).unwrap_or_else(|why| {
        eprintln!("{why}");
        std::process::exit(1)
    })
}

/// The `result NAME VALUE UNIT` lines (omp_sync) or the one `result VALUE
/// UNIT` line (the programs, named `program`) of a kernel's stderr.
fn results(stderr: &str, program: &str) -> Vec<(String, f64, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.strip_prefix("result ")?.split_whitespace().collect();
            match w.as_slice() {
                [name, v, unit] => Some((name.to_string(), v.parse().ok()?, unit.to_string())),
                [v, unit] => Some((program.to_string(), v.parse().ok()?, unit.to_string())),
                _ => None,
            }
        })
        .collect()
}

fn command(setup: Setup, native: &Path, loco: &Path, daemon: &Path) -> (Command, usize) {
    match setup {
        Setup::Native(m) => (Command::new(native), m),
        Setup::Direct(m) => (Command::new(loco), m),
        Setup::Daemon(nodes, m) | Setup::Memory(nodes, _, m) => {
            let mut cmd = Command::new(daemon);
            cmd.args(["run", "-n", &nodes.to_string(), "--no-prefix", "--timeout"])
                .arg(DEADLINE.as_secs().saturating_sub(10).to_string());
            if let Setup::Memory(_, memory, _) = setup {
                cmd.args(["--memory-nodes", &memory.to_string()]);
            }
            cmd.arg("--").arg(loco);
            (cmd, m)
        }
    }
}

fn main() {
    if let Some(role) = std::env::var_os("LOCO_BENCH_PING") {
        ping_role(&role.to_string_lossy());
        return;
    }
    let rounds = rounds(3);
    let dir = build_dir();
    let (loco_cc, daemon) = (dir.join("loco-cc"), dir.join("loco-daemon"));
    require_built(&[&loco_cc, &daemon, &dir.join("libloco.so")]);
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let work = std::env::temp_dir().join(format!("loco-openmp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();

    let mut jobs: Vec<(&str, Vec<String>)> = vec![("omp_sync", vec![])];
    jobs.extend(PROGRAMS.iter().map(|&(k, a)| (k, vec![a.to_string()])));
    let mut builds = HashMap::new();
    for (name, _) in &jobs {
        let src = kernels.join(format!("{name}.c"));
        let native = work.join(format!("{name}.native"));
        let loco = work.join(format!("{name}.loco"));
        compile_kernel(Path::new("clang-16"), &["-fopenmp", "-O2"], &src, &native);
        compile_kernel(&loco_cc, &["-fopenmp", "-O2"], &src, &loco);
        builds.insert(*name, (native, loco));
    }

    // (row, setup) -> samples; row -> unit.
    let mut samples: HashMap<(String, Setup), Vec<f64>> = HashMap::new();
    let mut units: HashMap<String, String> = HashMap::new();
    let mut rtt: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for (label, cpus) in [("1 cpu", (0, 0)), ("2 cpus", (0, 1))] {
            if let Some(us) = ping_pong(cpus) {
                rtt.entry(label).or_default().push(us);
            }
        }
        for (name, args) in &jobs {
            let (native, loco) = &builds[name];
            let mut expected: HashMap<usize, String> = HashMap::new();
            for &(setup, _) in SETUPS {
                let (mut cmd, threads) = command(setup, native, loco, &daemon);
                cmd.args(args);
                let (out, err) = run(cmd, threads);
                match setup {
                    Setup::Native(m) => {
                        expected.insert(m, out);
                    }
                    _ => assert_eq!(
                        Some(&out),
                        expected.get(&threads),
                        "{name}: the loco build ({setup:?}) computed something else than native"
                    ),
                }
                for (row, v, unit) in results(&err, name) {
                    units.insert(row.clone(), unit);
                    samples.entry((row, setup)).or_default().push(v);
                }
            }
        }
    }
    let rtt: HashMap<&str, f64> = rtt.into_iter().map(|(k, v)| (k, median_of(v))).collect();

    println!(
        "OpenMP constructs (omp_sync, µs per construct, EPCC syncbench's overhead) and programs, \
         -O2, median of {rounds}; N nodes run one thread each"
    );
    let floor = rtt.get("2 cpus").or(rtt.get("1 cpu")).copied();
    let mut header = format!("{:<22}", "");
    for (_, label) in SETUPS {
        header += &format!(" {label:>12}");
    }
    header += &format!(
        " {:>16} {:>16} {:>16}",
        "goal 1 node", "goal 2 nodes", "goal +2 mem"
    );
    println!("{header}");
    let rows: Vec<String> = CONSTRUCTS
        .iter()
        .map(|s| s.to_string())
        .chain(PROGRAMS.iter().map(|(k, _)| k.to_string()))
        .collect();
    for row in &rows {
        let unit = units.get(row).cloned().unwrap_or_default();
        let med = |setup: Setup| {
            samples
                .get(&(row.clone(), setup))
                .map(|v| median_of(v.clone()))
        };
        let mut line = format!("{:<22}", format!("{row} ({unit})"));
        for &(setup, _) in SETUPS {
            line += &match med(setup) {
                Some(v) => format!(" {v:>12.2}"),
                None => format!(" {:>12}", "-"),
            };
        }
        let is_construct = CONSTRUCTS.contains(&row.as_str());
        // Both one-node columns against the goal: the worse of them.
        let one = med(Setup::Direct(2)).zip(med(Setup::Daemon(1, 2)));
        if let (true, Some(native), Some((direct, daemon))) =
            (is_construct, med(Setup::Native(2)), one)
        {
            let (goal, one) = (2.0 * native.max(0.0) + 1.0, direct.max(daemon));
            line += &format!(" {:>16}", verdict(one, goal));
        } else {
            line += &format!(" {:>16}", "");
        }
        if let (true, Some(floor), Some(two)) = (is_construct, floor, med(Setup::Daemon(2, 2))) {
            let factor = if row == "barrier" { 2.0 } else { 3.0 };
            line += &format!(" {:>16}", verdict(two, factor * floor));
        } else {
            line += &format!(" {:>16}", "");
        }
        // Memory nodes take no part in the compute nodes' barriers.
        if let (true, Some(two), Some(with_memory)) = (
            row == "barrier",
            med(Setup::Daemon(2, 2)),
            med(Setup::Memory(2, 2, 2)),
        ) {
            line += &format!(" {:>16}", verdict(with_memory, 1.1 * two + 2.0));
        }
        println!("{line}");
    }
    for (label, key) in [("tcp rtt 1 cpu", "1 cpu"), ("tcp rtt 2 cpus", "2 cpus")] {
        let value = rtt
            .get(key)
            .map_or("n/a".to_string(), |v| format!("{v:.2}"));
        // The floor of what crosses nodes: under the 2-node column.
        println!(
            "{:<22} {:>12} {:>12} {:>12} {:>12}",
            format!("{label} (us)"),
            "",
            "",
            "",
            value
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// "<=GOAL ok" or "<=GOAL MISS" for a figure against its goal.
fn verdict(value: f64, goal: f64) -> String {
    format!("<={goal:.1} {}", if value <= goal { "ok" } else { "MISS" })
}

/// Median round trip in µs of 8-byte messages over loopback TCP between two
/// processes pinned to CPUs `cpus`; None if the machine lacks the CPUs.
fn ping_pong(cpus: (usize, usize)) -> Option<f64> {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus.0.max(cpus.1) >= available {
        return None;
    }
    let port = free_ports(1)[0];
    let outcomes = run_nodes(2, Duration::from_secs(60), |rank| {
        let cpu = if rank == 0 { cpus.0 } else { cpus.1 };
        this_executable(&[("LOCO_BENCH_PING", format!("{rank},{port},{cpu}"))])
    });
    for o in &outcomes {
        if !o.success() {
            eprintln!("ping-pong failed: {}", o.describe());
            std::process::exit(1);
        }
    }
    outcomes[1].stdout.trim().parse().ok()
}

/// A ping-pong process: `rank,port,cpu`. Rank 0 echoes, rank 1 times the
/// round trips and prints their median in µs.
fn ping_role(role: &str) {
    let parts: Vec<usize> = role.split(',').map(|p| p.parse().expect("role")).collect();
    let [rank, port, cpu] = parts[..] else {
        panic!("LOCO_BENCH_PING={role}")
    };
    pin_to(cpu);
    let address = format!("127.0.0.1:{port}");
    let mut buf = [0u8; 8];
    if rank == 0 {
        let listener = TcpListener::bind(&address).expect("bind");
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).unwrap();
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).expect("echo");
        }
        return;
    }
    let started = Instant::now();
    let mut s = loop {
        match TcpStream::connect(&address) {
            Ok(s) => break s,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("connect {address}: {e}"),
        }
    };
    s.set_nodelay(true).unwrap();
    let mut times = Vec::with_capacity(PINGS);
    for i in 0..PINGS + 1000 {
        let t = Instant::now();
        s.write_all(&(i as u64).to_le_bytes()).expect("ping");
        s.read_exact(&mut buf).expect("pong");
        if i >= 1000 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!("{}", median_of(times));
}

/// Pins the calling process to one CPU.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only read and write the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            panic!("sched_setaffinity to CPU {cpu} failed");
        }
    }
}
