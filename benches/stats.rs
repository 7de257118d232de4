//! Shared pieces of LOCO's benchmarks: node processes, latency samples
//! summarised as percentiles, printed as aligned tables.

use std::time::{Duration, Instant};

use loco_testkit::{free_ports, run_nodes, this_executable, NodeOutcome};

/// The role this benchmark process plays: `Some((rank, ports))` in a node
/// process started by [`run_nodes_of_this_bench`], `None` in the parent.
pub fn node_role() -> Option<(usize, Vec<u16>)> {
    let rank = std::env::var("LOCO_BENCH_RANK").ok()?.parse().ok()?;
    let ports = std::env::var("LOCO_BENCH_PORTS")
        .ok()?
        .split(',')
        .map(|p| p.parse().expect("port"))
        .collect();
    Some((rank, ports))
}

/// Runs this benchmark executable as `n` node processes (with `ports_needed`
/// free ports and `env` passed on) and returns node `reporter`'s output.
/// Exits the process if any node fails.
pub fn run_nodes_of_this_bench(
    n: usize,
    ports_needed: usize,
    env: &[(&str, String)],
    reporter: usize,
) -> String {
    let outcomes = node_outcomes_of_this_bench(n, ports_needed, env, Duration::from_secs(600));
    for o in &outcomes {
        if !o.success() {
            eprintln!("{}", o.describe());
            std::process::exit(1);
        }
    }
    outcomes[reporter].stdout.clone()
}

/// Runs this benchmark executable as `n` node processes, as
/// [`run_nodes_of_this_bench`] does, killed at `deadline`, and returns how
/// every node ended (its output too), failed or not.
pub fn node_outcomes_of_this_bench(
    n: usize,
    ports_needed: usize,
    env: &[(&str, String)],
    deadline: Duration,
) -> Vec<NodeOutcome> {
    let ports = free_ports(ports_needed)
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    run_nodes(n, deadline, |rank| {
        let mut all = vec![
            ("LOCO_BENCH_RANK", rank.to_string()),
            ("LOCO_BENCH_PORTS", ports.clone()),
        ];
        all.extend(env.iter().cloned());
        this_executable(&all)
    })
}

/// The workspace's build directory this bench runs from (target/<profile>).
pub fn build_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Compiles a C kernel with `compiler` and `flags` (the -O level among
/// them) into `out`; panics with the compiler's name when it fails.
pub fn compile_kernel(
    compiler: &std::path::Path,
    flags: &[&str],
    src: &std::path::Path,
    out: &std::path::Path,
) {
    let status = std::process::Command::new(compiler)
        .args(flags)
        .arg("-o")
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

/// The median of some measurements (the upper one of an even count).
pub fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Rounds of a whole-program benchmark: LOCO_BENCH_ROUNDS, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("LOCO_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// Exits with a message unless every one of `files` (tools, libraries) is built.
pub fn require_built(files: &[&std::path::Path]) {
    for f in files {
        if !f.exists() {
            eprintln!(
                "{} is missing: run `cargo build --workspace --release` (or `just build`) first",
                f.display()
            );
            std::process::exit(1);
        }
    }
}

/// LOCO_BENCH_SAMPLES, or `default`.
pub fn sample_count(default: usize) -> usize {
    std::env::var("LOCO_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Latency samples of one operation.
pub struct Samples {
    pub name: String,
    nanos: Vec<u64>,
}

impl Samples {
    /// Times `op` `count` times after `warmup` untimed calls.
    pub fn measure<E: std::fmt::Debug>(
        name: &str,
        warmup: usize,
        count: usize,
        mut op: impl FnMut() -> Result<(), E>,
    ) -> Samples {
        for _ in 0..warmup {
            op().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        let mut nanos = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            op().unwrap_or_else(|e| panic!("{name}: {e:?}"));
            nanos.push(t.elapsed().as_nanos() as u64);
        }
        nanos.sort_unstable();
        Samples {
            name: name.to_string(),
            nanos,
        }
    }

    /// Samples timed by the caller.
    pub fn from_durations(name: &str, samples: &[Duration]) -> Samples {
        let mut nanos: Vec<u64> = samples.iter().map(|d| d.as_nanos() as u64).collect();
        nanos.sort_unstable();
        Samples {
            name: name.to_string(),
            nanos,
        }
    }

    /// The value below which `p` percent of the samples fall.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.nanos.len() - 1) as f64 * p / 100.0).round() as usize;
        Duration::from_nanos(self.nanos[i])
    }

    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }
}

/// Prints samples as a table of microseconds: median, p10, p90, p99, count.
pub fn print_table(title: &str, rows: &[Samples]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(9);
    println!("{title}");
    println!(
        "{:<width$}  {:>10}  {:>10}  {:>10}  {:>10}  {:>7}",
        "operation", "median µs", "p10 µs", "p90 µs", "p99 µs", "samples"
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for r in rows {
        println!(
            "{:<width$}  {:>10.1}  {:>10.1}  {:>10.1}  {:>10.1}  {:>7}",
            r.name,
            us(r.median()),
            us(r.percentile(10.0)),
            us(r.percentile(90.0)),
            us(r.percentile(99.0)),
            r.len()
        );
    }
}

/// Runs a kernel (`cmd`) as one process with a team of `threads`, the
/// OpenMP and LOCO settings that would change what it does cleared, killed
/// at `deadline`; returns its stdout and stderr, or what went wrong.
pub fn run_kernel(
    mut cmd: std::process::Command,
    threads: usize,
    deadline: Duration,
) -> Result<(String, String), String> {
    for var in [
        "OMP_SCHEDULE",
        "OMP_DYNAMIC",
        "OMP_WAIT_POLICY",
        "KMP_BLOCKTIME",
        "LOCO_CLUSTER",
        "LOCO_RANK",
        "LOCO_STATS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OMP_NUM_THREADS", threads.to_string());
    let shown = format!("{cmd:?}");
    let taken = std::sync::Mutex::new(Some(cmd));
    let out = run_nodes(1, deadline, |_| {
        taken.lock().unwrap().take().expect("started once")
    })
    .pop()
    .expect("one outcome");
    if out.success() {
        Ok((out.stdout, out.stderr))
    } else {
        Err(format!("{shown} failed:\n{}", out.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let mut k = 0u64;
        let s = Samples::measure::<()>("x", 0, 101, || {
            k += 1;
            Ok(())
        });
        assert_eq!(s.len(), 101);
        assert!(s.percentile(0.0) <= s.median() && s.median() <= s.percentile(100.0));
    }
}
