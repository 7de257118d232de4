//! The coherence protocol on program shapes: what an acquire throws away,
//! where pages live, and what a release sends. Six C kernels
//! (benches/kernels/dsm_*.c: an XSBench-like read-mostly table, STREAM on
//! global arrays, a 2D Jacobi stencil, a CG-like sparse matrix-vector
//! product, LULESH-like many small regions, critical sections around a
//! small shared histogram) run natively (clang-16, OMP_NUM_THREADS=2) and
//! under `loco-daemon run -n 2` (loco-cc, OMP_NUM_THREADS=2: one thread per
//! node) in four configurations side by side:
//!
//! - `drop-all`: interleaved placement, `LOCO_SELECTIVE=0`: every acquire
//!   drops every cached page (the protocol before write notices);
//! - `interleaved`: interleaved placement; an acquire drops only the pages
//!   other nodes' write notices name;
//! - `first-touch`: first-touch placement, `LOCO_MIGRATE=0`: pages stay
//!   where they were first touched;
//! - `ft+migrate`: first-touch placement with home migration (pages move
//!   to the node that keeps writing them; the default placement);
//! - `ft+m faults`: the same with written pages found by a write-protect
//!   fault each (`LOCO_WP_ASYNC=0`, what kernels before 6.8 do) instead of
//!   page-table scans.
//!
//! Each kernel times only its iterations (`result MS ms`, `iterations N` on
//! stderr), says how many shared bytes an iteration stores (`modified B
//! bytes/iteration`) and prints a checksum on stdout, which must be the
//! same natively and under LOCO (the bench fails if not). For each
//! configuration the table shows the median time over rounds, its ratio to
//! native, and per iteration (summed over the nodes, from `--stats-json`):
//! remote page faults, pages they fetched (read-ahead fetches up to 8 per
//! fault), pages acquires invalidated, bytes written back (released to
//! remote homes) and those against the bytes the kernel stored. These are
//! the steady state: each LOCO run of N iterations is paired with one of
//! `WARMUP` iterations, and the figures are (N-run - WARMUP-run) /
//! (N - WARMUP), which leaves out setup, the cold first iteration and what
//! setup's writes cost in the iteration after it.
//!
//! `cargo bench -p loco-benches --bench coherence` (needs the workspace
//! built: loco-cc, loco-daemon, libloco.so and libloco_pass.so next to the
//! bench). LOCO_BENCH_ROUNDS sets the rounds (default 3); rounds alternate
//! over every configuration, so a change in the machine's load affects them
//! all alike. A configuration that fails or computes something else than
//! native is marked in the table and makes the bench exit with status 1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use loco_benches::{build_dir, compile_kernel, median_of, require_built, rounds};

/// A kernel and its arguments: size (argv[1]) and iterations (argv[2]).
struct Kernel {
    name: &'static str,
    size: &'static str,
    iterations: u32,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "dsm_table",
        size: "4",
        iterations: 20,
    },
    Kernel {
        name: "dsm_stream",
        size: "262144",
        iterations: 10,
    },
    Kernel {
        name: "dsm_stencil",
        size: "1024",
        iterations: 20,
    },
    Kernel {
        name: "dsm_spmv",
        size: "32768",
        iterations: 20,
    },
    Kernel {
        name: "dsm_regions",
        size: "32768",
        iterations: 300,
    },
    Kernel {
        name: "dsm_critical",
        size: "1000",
        iterations: 10,
    },
];

/// How a kernel is run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Setup {
    /// The clang-16 build.
    Native,
    /// LOCO, interleaved, every acquire dropping every cached page.
    DropAll,
    /// LOCO, interleaved placement, selective invalidation.
    Interleaved,
    /// LOCO, first-touch placement without home migration.
    FirstTouch,
    /// LOCO with first-touch placement and home migration.
    Default,
    /// The default, with written pages found by write-protect faults
    /// (`LOCO_WP_ASYNC=0`) instead of page-table scans.
    Faults,
}

/// The rows of each kernel, top to bottom.
const SETUPS: &[(Setup, &str)] = &[
    (Setup::Native, "native"),
    (Setup::DropAll, "drop-all"),
    (Setup::Interleaved, "interleaved"),
    (Setup::FirstTouch, "first-touch"),
    (Setup::Default, "ft+migrate"),
    (Setup::Faults, "ft+m faults"),
];

/// Threads in the team, natively and under LOCO (one per node).
const THREADS: usize = 2;
const NODES: usize = 2;

/// What one LOCO run's `--stats-json` says, summed over the nodes.
#[derive(Clone, Copy, Default, Debug)]
struct Totals {
    faults: f64,
    invalidated: f64,
    released: f64,
    fetched: f64,
}

impl Totals {
    /// `(self - base) / iterations`, each figure.
    fn per_iteration(self, base: Totals, iterations: f64) -> Totals {
        Totals {
            faults: (self.faults - base.faults) / iterations,
            invalidated: (self.invalidated - base.invalidated) / iterations,
            released: (self.released - base.released) / iterations,
            fetched: (self.fetched - base.fetched) / iterations,
        }
    }
}

/// What one run of a kernel reported.
struct Report {
    ms: f64,
    iterations: u32,
    modified: Option<f64>,
    checksum: String,
    totals: Option<Totals>,
}

/// Per (kernel, setup): what the rounds measured.
#[derive(Default)]
struct Cell {
    ms: Vec<f64>,
    per_iteration: Vec<Totals>,
    modified: Option<f64>,
    /// Why this configuration stopped being run, or what it got wrong.
    trouble: Option<String>,
}

/// Iterations of the run whose statistics each LOCO run's are taken from.
const WARMUP: u32 = 2;

/// Bytes in a page (for pages fetched).
const PAGE: f64 = 4096.0;

/// Seconds a LOCO run may take before loco-daemon stops it (ours is later).
const DAEMON_TIMEOUT: u64 = 45;
const DEADLINE: Duration = Duration::from_secs(DAEMON_TIMEOUT + 30);

/// Runs `cmd` with the team size set and other knobs cleared.
fn run(cmd: Command) -> Result<(String, String), String> {
    loco_benches::run_kernel(cmd, THREADS, DEADLINE)
}

/// The value of `key` (`result`, `iterations`, `modified`) on the kernel's
/// stderr: the first number after it.
fn reported(stderr: &str, key: &str) -> Option<f64> {
    stderr.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The sum over nodes of the numbers `"key": N` in a `--stats-json` file.
fn sum_of(json: &str, key: &str) -> f64 {
    let pattern = format!("\"{key}\":");
    json.match_indices(&pattern)
        .filter_map(|(at, _)| {
            let rest = json[at + pattern.len()..].trim_start();
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<f64>().ok()
        })
        .sum()
}

fn totals(json: &str) -> Totals {
    Totals {
        faults: sum_of(json, "page_faults_remote"),
        invalidated: sum_of(json, "pages_invalidated"),
        released: sum_of(json, "bytes_released"),
        fetched: sum_of(json, "bytes_fetched"),
    }
}

/// Runs `kernel` (native or loco build) in `setup` with `iterations`.
fn run_kernel(
    setup: Setup,
    kernel: &Kernel,
    iterations: u32,
    builds: &(PathBuf, PathBuf),
    daemon: &Path,
    stats: &Path,
) -> Result<Report, String> {
    let (native, loco) = builds;
    let mut cmd = match setup {
        Setup::Native => Command::new(native),
        _ => {
            let _ = std::fs::remove_file(stats);
            let mut cmd = Command::new(daemon);
            cmd.args(["run", "-n", &NODES.to_string(), "--no-prefix", "--timeout"])
                .arg(DAEMON_TIMEOUT.to_string())
                .arg("--stats-json")
                .arg(stats);
            if matches!(setup, Setup::DropAll | Setup::Interleaved) {
                cmd.args(["--placement", "interleaved"]);
            } else {
                cmd.args(["--placement", "first-touch"]);
            }
            cmd.arg("--").arg(loco);
            cmd
        }
    };
    cmd.args([kernel.size.to_string(), iterations.to_string()]);
    match setup {
        Setup::DropAll => cmd.env("LOCO_SELECTIVE", "0"),
        _ => cmd.env_remove("LOCO_SELECTIVE"),
    };
    match setup {
        Setup::FirstTouch => cmd.env("LOCO_MIGRATE", "0"),
        _ => cmd.env_remove("LOCO_MIGRATE"),
    };
    match setup {
        Setup::Faults => cmd.env("LOCO_WP_ASYNC", "0"),
        _ => cmd.env_remove("LOCO_WP_ASYNC"),
    };
    let (out, err) = run(cmd)?;
    let ms = reported(&err, "result")
        .ok_or_else(|| format!("{}: no 'result MS ms' on stderr:\n{err}", kernel.name))?;
    let done = reported(&err, "iterations").map_or(iterations, |v| v as u32);
    let totals = match setup {
        Setup::Native => None,
        _ => {
            let json = std::fs::read_to_string(stats)
                .map_err(|e| format!("{}: {}: {e}", kernel.name, stats.display()))?;
            Some(totals(&json))
        }
    };
    Ok(Report {
        ms,
        iterations: done,
        modified: reported(&err, "modified"),
        checksum: out,
        totals,
    })
}

fn main() {
    let rounds = rounds(3);
    let dir = build_dir();
    let (loco_cc, daemon) = (dir.join("loco-cc"), dir.join("loco-daemon"));
    require_built(&[
        &loco_cc,
        &daemon,
        &dir.join("libloco.so"),
        &dir.join("libloco_pass.so"),
    ]);
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let work = std::env::temp_dir().join(format!("loco-coherence-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let stats = work.join("stats.json");

    let mut builds = HashMap::new();
    for k in KERNELS {
        let src = sources.join(format!("{}.c", k.name));
        let native = work.join(format!("{}.native", k.name));
        let loco = work.join(format!("{}.loco", k.name));
        compile_kernel(Path::new("clang-16"), &["-fopenmp", "-O2"], &src, &native);
        compile_kernel(&loco_cc, &["-fopenmp", "-O2"], &src, &loco);
        builds.insert(k.name, (native, loco));
    }

    let mut cells: HashMap<(&str, Setup), Cell> = HashMap::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for k in KERNELS {
            let mut expected: Option<String> = None;
            for &(setup, label) in SETUPS {
                let cell = cells.entry((k.name, setup)).or_default();
                if cell.trouble.is_some() {
                    continue;
                }
                let full = run_kernel(setup, k, k.iterations, &builds[k.name], &daemon, &stats);
                let full = match full {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("{}, {label}: {e}", k.name);
                        cell.trouble = Some("FAILED".into());
                        continue;
                    }
                };
                match &expected {
                    None if setup == Setup::Native => expected = Some(full.checksum.clone()),
                    Some(want) if *want != full.checksum => {
                        eprintln!(
                            "{}, {label}: the loco build computed something else than native:\n\
                             native: {want}loco:   {}",
                            k.name, full.checksum
                        );
                        cell.trouble = Some("WRONG".into());
                    }
                    _ => {}
                }
                cell.ms.push(full.ms);
                cell.modified = full.modified;
                let Some(all) = full.totals else { continue };
                // The same run for WARMUP iterations: what to subtract.
                match run_kernel(setup, k, WARMUP, &builds[k.name], &daemon, &stats) {
                    Ok(Report {
                        totals: Some(warm),
                        iterations: WARMUP,
                        ..
                    }) if full.iterations > WARMUP => cell
                        .per_iteration
                        .push(all.per_iteration(warm, f64::from(full.iterations - WARMUP))),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("{}, {label} ({WARMUP} iterations): {e}", k.name);
                        cell.trouble = Some("FAILED".into());
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "Coherence protocol: {NODES} nodes x 1 thread (OMP_NUM_THREADS={THREADS}) vs native \
         {THREADS} threads, -O2, median of {rounds} rounds. Per iteration in the steady state \
         (iterations {} on), summed over nodes: remote page faults, pages fetched, pages \
         invalidated by acquires, bytes written back to remote homes (wb), bytes the kernel \
         stored in shared memory (mod).",
        WARMUP + 1
    );
    let header = [
        "ms",
        "x native",
        "faults/it",
        "pages in/it",
        "inval/it",
        "wb B/it",
        "mod B/it",
        "wb/mod",
    ];
    let widths = [10, 9, 10, 11, 10, 11, 11, 7];
    let mut line = format!("{:<22} {:<12}", "kernel", "config");
    for (h, w) in header.iter().zip(widths) {
        line += &format!(" {h:>w$}");
    }
    println!("{line}");
    let mut failed = false;
    for k in KERNELS {
        let native = cells
            .get(&(k.name, Setup::Native))
            .filter(|c| !c.ms.is_empty())
            .map(|c| median_of(c.ms.clone()));
        for (i, &(setup, label)) in SETUPS.iter().enumerate() {
            let cell = &cells[&(k.name, setup)];
            let ms = (!cell.ms.is_empty()).then(|| median_of(cell.ms.clone()));
            let med = |f: fn(&Totals) -> f64| {
                (!cell.per_iteration.is_empty())
                    .then(|| median_of(cell.per_iteration.iter().map(f).collect()).max(0.0))
            };
            let wb = med(|t| t.released);
            let modified = cell.modified.filter(|&m| m > 0.0);
            let figures = [
                ms.map(|v| format!("{v:.2}")),
                ms.zip(native.filter(|&n| n > 0.0))
                    .map(|(v, n)| format!("{:.2}", v / n)),
                med(|t| t.faults).map(|v| format!("{v:.1}")),
                med(|t| t.fetched).map(|v| format!("{:.1}", v / PAGE)),
                med(|t| t.invalidated).map(|v| format!("{v:.1}")),
                wb.map(|v| format!("{v:.0}")),
                modified.map(|v| format!("{v:.0}")),
                wb.zip(modified).map(|(w, m)| format!("{:.3}", w / m)),
            ];
            let name = if i == 0 {
                format!("{} ({} it)", k.name, k.iterations)
            } else {
                String::new()
            };
            let mut line = format!("{name:<22} {label:<12}");
            for (f, w) in figures.iter().zip(widths) {
                let blank = if setup == Setup::Native { "" } else { "-" };
                line += &format!(" {:>w$}", f.as_deref().unwrap_or(blank));
            }
            if let Some(t) = &cell.trouble {
                line += &format!("  {t}");
                failed = true;
            }
            println!("{}", line.trim_end());
        }
    }
    if failed {
        eprintln!("some configurations failed or computed something else than native (above)");
        std::process::exit(1);
    }
}
