//! The cost of loco-cc's store instrumentation: store-heavy kernels
//! (benches/kernels/, see `KERNELS`) compiled with native clang-16 -O2 and
//! with loco-cc -O2, run on one node (a loco-cc program started directly is
//! a one-node cluster), alternating, several times each; the table gives
//! the median kernel time of each build and their ratio (loco-cc / native),
//! measured side by side, and the geometric mean of the ratios.
//!
//! `cargo bench -p loco-benches --bench compiler` (needs the workspace
//! built: loco-cc, libloco.so and libloco_pass.so next to the bench;
//! LOCO_BENCH_ROUNDS sets the repetitions, default 5; LOCO_BENCH_KERNELS,
//! a comma-separated list of names, runs only those).

use std::path::Path;
use std::process::Command;

use loco_benches::{build_dir, compile_kernel, median_of, require_built, rounds};

/// Runs a kernel; returns (its stdout, its kernel seconds).
fn run(exe: &Path) -> (String, f64) {
    let out = Command::new(exe)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let secs = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kernel-seconds "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{} printed no kernel-seconds line: {stderr}", exe.display()));
    (String::from_utf8_lossy(&out.stdout).into_owned(), secs)
}

/// The kernels, each benches/kernels/NAME.c, and the store pattern it stands for.
const KERNELS: &[(&str, &str)] = &[
    ("triad", "streaming stores, a[i] = b[i] + s * c[i]"),
    ("stencil", "5-point Jacobi, grids swapped each sweep"),
    ("hash", "open-addressing inserts, two fields of a slot"),
    ("structs", "5 fields of a 32-byte struct per element"),
    ("transpose", "2048 x 2048, stores walk down columns"),
    ("histogram", "scattered increments of a global array"),
    ("strings", "text built byte by byte"),
    ("stencil_ro", "5-point stencil from a read-only input"),
];

/// The geometric mean of some positive ratios.
fn geometric_mean(ratios: &[f64]) -> f64 {
    (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp()
}

fn main() {
    let rounds = rounds(5);
    let loco_cc = build_dir().join("loco-cc");
    require_built(&[&loco_cc]);
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let work = std::env::temp_dir().join(format!("loco-compiler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    println!("loco-cc -O2 vs clang-16 -O2, one node, median of {rounds} alternating runs");
    let only: Option<Vec<String>> = std::env::var("LOCO_BENCH_KERNELS")
        .ok()
        .map(|v| v.split(',').map(|k| k.trim().to_string()).collect());
    println!(
        "{:<11} {:>10} {:>10} {:>14}   pattern",
        "kernel", "native s", "loco-cc s", "loco-cc/native"
    );
    let mut ratios = Vec::new();
    for &(name, pattern) in KERNELS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|k| k == name)) {
            continue;
        }
        let src = kernels.join(format!("{name}.c"));
        let native = work.join(format!("{name}.native"));
        let loco = work.join(format!("{name}.loco"));
        compile_kernel(Path::new("clang-16"), &["-O2"], &src, &native);
        compile_kernel(&loco_cc, &["-O2"], &src, &loco);
        let (mut tn, mut tl) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (out_n, n) = run(&native);
            let (out_l, l) = run(&loco);
            assert_eq!(
                out_n, out_l,
                "{name}: the loco-cc build computed something else"
            );
            tn.push(n);
            tl.push(l);
        }
        let (n, l) = (median_of(tn), median_of(tl));
        println!(
            "{name:<11} {n:>10.4} {l:>10.4} {:>13.2}x   {pattern}",
            l / n
        );
        ratios.push(l / n);
    }
    if !ratios.is_empty() {
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<11} {:>10} {:>10} {:>13.2}x   (worst {worst:.2}x)",
            "geomean",
            "",
            "",
            geometric_mean(&ratios)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
