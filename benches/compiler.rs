//! The cost of loco-cc's store instrumentation: store-heavy kernels
//! (benches/kernels/: STREAM-like triad, a 5-point stencil, a hash-table
//! insert loop) compiled with native clang-16 -O2 and with loco-cc -O2, run
//! on one node, alternating, several times each; the table gives the median
//! kernel time of each build and their ratio, measured side by side.
//!
//! `cargo bench -p loco-benches --bench compiler` (needs the workspace
//! built: loco-cc, libloco.so and libloco_pass.so next to the bench;
//! LOCO_BENCH_ROUNDS sets the repetitions, default 5).

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

fn main() {
    let rounds = rounds(5);
    let loco_cc = build_dir().join("loco-cc");
    require_built(&[&loco_cc]);
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let work = std::env::temp_dir().join(format!("loco-compiler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    println!("loco-cc -O2 vs clang-16 -O2, one node, median of {rounds} alternating runs");
    println!(
        "{:<10} {:>12} {:>12} {:>10}",
        "kernel", "native s", "loco-cc s", "slowdown"
    );
    for name in ["triad", "stencil", "hash"] {
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
        println!("{name:<10} {n:>12.4} {l:>12.4} {:>9.2}x", l / n);
    }
    let _ = std::fs::remove_dir_all(&work);
}
