//! The cost of OpenMP synchronisation when one team spans several nodes:
//! C kernels (benches/kernels/omp_*.c: empty barriers, contended critical
//! sections, a dynamic-schedule loop over uneven work) compiled with native
//! `clang-16 -fopenmp -O2` and `loco-cc -fopenmp -O2`, run natively with M
//! threads and under `loco-daemon run -n N` with M = N x T threads (T per
//! node), a few rounds alternating over all of them; the table gives each
//! configuration's median per-operation time and its ratio to the native
//! run with the same M.
//! Each kernel times itself with omp_get_wtime and prints
//! `result VALUE UNIT` on stderr.
//!
//! `cargo bench -p loco-benches --bench omp` (needs the workspace built:
//! loco-cc, loco-daemon, libloco.so and libloco_pass.so next to the bench;
//! LOCO_BENCH_ROUNDS sets the repetitions, default 3).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use loco_benches::{build_dir, compile_kernel, median_of, require_built, rounds};
use std::time::Duration;

use loco_testkit::run_nodes;

/// (kernel, its argument: how many operations).
const KERNELS: &[(&str, &str)] = &[
    ("omp_barrier", "2000"),
    ("omp_critical", "10000"),
    ("omp_dynamic", "20000"),
    ("omp_scan", "16"),
];

/// (nodes, threads per node) of the LOCO runs.
const CONFIGS: &[(usize, usize)] = &[(2, 1), (2, 2), (4, 1), (4, 2)];

const DEADLINE: Duration = Duration::from_secs(300);

/// Runs a kernel with a team of `threads` (killed at the deadline); returns
/// its stdout and its `result VALUE UNIT` line's value and unit.
fn run(mut cmd: Command, threads: usize) -> (String, f64, String) {
    for var in [
        "OMP_SCHEDULE",
        "OMP_DYNAMIC",
        "OMP_WAIT_POLICY",
        "KMP_BLOCKTIME",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OMP_NUM_THREADS", threads.to_string());
    let shown = format!("{cmd:?}");
    let taken = std::sync::Mutex::new(Some(cmd));
    let out = run_nodes(1, DEADLINE, |_| {
        taken.lock().unwrap().take().expect("started once")
    })
    .pop()
    .expect("one outcome");
    if !out.success() {
        eprintln!("{shown} failed:\n{}", out.describe());
        std::process::exit(1);
    }
    let (value, unit) = out
        .stderr
        .lines()
        .find_map(|l| {
            let mut w = l.strip_prefix("result ")?.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .unwrap_or_else(|| panic!("{shown} printed no result line: {}", out.stderr));
    (out.stdout, value, unit)
}

fn main() {
    let rounds = rounds(3);
    let dir = build_dir();
    let (loco_cc, daemon) = (dir.join("loco-cc"), dir.join("loco-daemon"));
    require_built(&[&loco_cc, &daemon, &dir.join("libloco.so")]);
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let work = std::env::temp_dir().join(format!("loco-omp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    println!("OpenMP kernels, -O2: native clang-16 vs loco-cc under loco-daemon (N nodes x T threads), median of {rounds}");
    println!(
        "{:<13} {:<22} {:>14} {:<12} {:>9}",
        "kernel", "configuration", "median", "unit", "vs native"
    );
    for &(name, arg) in KERNELS {
        let src = kernels.join(format!("{name}.c"));
        let native = work.join(format!("{name}.native"));
        let loco = work.join(format!("{name}.loco"));
        compile_kernel(Path::new("clang-16"), &["-fopenmp", "-O2"], &src, &native);
        compile_kernel(&loco_cc, &["-fopenmp", "-O2"], &src, &loco);
        let mut threads_used: Vec<usize> = CONFIGS.iter().map(|(n, t)| n * t).collect();
        threads_used.sort_unstable();
        threads_used.dedup();
        // Rounds alternate over every configuration, so a change in the
        // machine's load affects them all alike.
        let mut native_samples: HashMap<usize, Vec<f64>> = HashMap::new();
        let mut loco_samples: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
        let mut unit = String::new();
        let mut expected_out = None;
        for _ in 0..rounds {
            for &m in &threads_used {
                let mut cmd = Command::new(&native);
                cmd.arg(arg);
                let (out, v, u) = run(cmd, m);
                expected_out.get_or_insert(out);
                native_samples.entry(m).or_default().push(v);
                unit = u;
            }
            for &(nodes, per_node) in CONFIGS {
                let mut cmd = Command::new(&daemon);
                cmd.args(["run", "-n", &nodes.to_string(), "--no-prefix", "--timeout"])
                    .arg(DEADLINE.as_secs().saturating_sub(10).to_string())
                    .arg("--")
                    .arg(&loco)
                    .arg(arg);
                let (out, v, _) = run(cmd, nodes * per_node);
                assert_eq!(
                    Some(&out),
                    expected_out.as_ref(),
                    "{name}: the loco build on {nodes} nodes computed something else"
                );
                loco_samples.entry((nodes, per_node)).or_default().push(v);
            }
        }
        let mut native_median: HashMap<usize, f64> = HashMap::new();
        for &m in &threads_used {
            let med = median_of(native_samples.remove(&m).unwrap_or_default());
            native_median.insert(m, med);
            println!(
                "{name:<13} {:<22} {med:>14.1} {unit:<12} {:>9}",
                format!("native M={m}"),
                "1.00x"
            );
        }
        for &(nodes, per_node) in CONFIGS {
            let m = nodes * per_node;
            let med = median_of(loco_samples.remove(&(nodes, per_node)).unwrap_or_default());
            println!(
                "{name:<13} {:<22} {med:>14.1} {unit:<12} {:>8.2}x",
                format!("loco {nodes}x{per_node} (M={m})"),
                med / native_median[&m]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
