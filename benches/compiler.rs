//! The cost of loco-cc's store instrumentation: store-heavy kernels
//! (benches/kernels/: STREAM-like triad, a 5-point stencil, a hash-table
//! insert loop) compiled with native clang-16 -O2 and with loco-cc -O2, run
//! on one node, alternating, several times each; the table gives the median
//! kernel time of each build and their ratio, measured side by side.
//!
//! `cargo bench -p loco-benches --bench compiler` (needs the workspace
//! built: loco-cc, libloco.so and libloco_pass.so next to the bench;
//! LOCO_BENCH_ROUNDS sets the repetitions, default 5).

use std::path::{Path, PathBuf};
use std::process::Command;

fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

fn compile(compiler: &Path, src: &Path, out: &Path) {
    let status = Command::new(compiler)
        .args(["-O2", "-o"])
        .arg(out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", compiler.display()));
    assert!(
        status.success(),
        "{} failed on {}",
        compiler.display(),
        src.display()
    );
}

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("LOCO_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let loco_cc = build_dir().join("loco-cc");
    if !loco_cc.exists() {
        eprintln!(
            "{} is missing: run `cargo build --workspace` (or `just build`) first",
            loco_cc.display()
        );
        std::process::exit(1);
    }
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
        compile(Path::new("clang-16"), &src, &native);
        compile(&loco_cc, &src, &loco);
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
        let (n, l) = (median(tn), median(tl));
        println!("{name:<10} {n:>12.4} {l:>12.4} {:>9.2}x", l / n);
    }
    let _ = std::fs::remove_dir_all(&work);
}
