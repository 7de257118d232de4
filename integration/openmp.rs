//! The OpenMP suite: small C (and C++) programs (integration/openmp/), one construct
//! family each, compiled with native `clang-16 -fopenmp` and with
//! `loco-cc -fopenmp`. The LOCO build runs under `loco-daemon run -n N` as
//! one team of M = N x T threads spread over the N nodes (OMP_NUM_THREADS=M)
//! and must print exactly what the native build prints with
//! OMP_NUM_THREADS=M. Every program prints the same for any team size, so a
//! wrong team size shows too.
//!
//! -O2 runs (N, T) in (1,1) (1,2) (2,1) (2,2) (4,1) (4,2) with the default
//! (first-touch) page placement, plus (2,2) interleaved, (4,1)
//! allocating-node, and (2,2) beside 2 memory nodes (`--memory-nodes 2`:
//! every page homed on the memory nodes, which take part in no barrier);
//! -O0 runs the one- and two-node configurations (2x2 interleaved) and 4x1,
//! to keep the suite within a few minutes on a small machine. A test stops at its first failing configuration.
//!
//! A program whose first line is `// loco-expect-error: TEXT` uses a
//! construct LOCO does not support: loco-cc must refuse it at compile time
//! with a message containing TEXT (never compile it into wrong answers).
//!
//! `cargo test -p loco-integration --test openmp [-- FILTER]`
//! (FILTER matches test names such as `omp_locks-O0`).

use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

use loco_integration::{run_with_deadline, scratch, tool};

/// What one compile may take.
const COMPILE_DEADLINE: Duration = Duration::from_secs(120);
/// What loco-daemon is told (it kills the run itself)...
const RUN_TIMEOUT_S: u64 = 60;
/// ...and, in case it does not, when the harness kills it.
const RUN_DEADLINE: Duration = Duration::from_secs(RUN_TIMEOUT_S + 30);

/// How the LOCO build runs: `nodes` compute nodes with `per_node` threads
/// each, page placement `placement` (`None`: the cluster's default), and
/// `memory_nodes` memory nodes besides (`--memory-nodes`).
#[derive(Clone, Copy)]
struct Config {
    nodes: usize,
    per_node: usize,
    placement: Option<&'static str>,
    memory_nodes: usize,
}

const fn on(nodes: usize, per_node: usize, placement: &'static str) -> Config {
    Config {
        nodes,
        per_node,
        placement: Some(placement),
        memory_nodes: 0,
    }
}

/// `nodes` compute nodes and `memory_nodes` memory nodes, default placement
/// (pages interleaved over the memory nodes).
const fn disaggregated(nodes: usize, per_node: usize, memory_nodes: usize) -> Config {
    Config {
        nodes,
        per_node,
        placement: None,
        memory_nodes,
    }
}

const CONFIGS_O2: &[Config] = &[
    on(1, 1, "first-touch"),
    on(1, 2, "first-touch"),
    on(2, 1, "first-touch"),
    on(2, 2, "first-touch"),
    on(4, 1, "first-touch"),
    on(4, 2, "first-touch"),
    // Another placement changes which node serves which page: the results
    // must not change.
    on(2, 2, "interleaved"),
    on(4, 1, "allocating-node"),
    // Memory nodes home every page (heap, globals) and take part in no
    // barrier: the compute nodes alone must still get it right.
    disaggregated(2, 2, 2),
];
const CONFIGS_O0: &[Config] = &[
    on(1, 1, "first-touch"),
    on(1, 2, "first-touch"),
    on(2, 1, "first-touch"),
    on(2, 2, "interleaved"),
    on(4, 1, "first-touch"),
];

/// OpenMP settings that would change what either build does; both run without them.
const CLEARED_ENV: &[&str] = &[
    "OMP_SCHEDULE",
    "OMP_DYNAMIC",
    "OMP_NESTED",
    "OMP_MAX_ACTIVE_LEVELS",
    "OMP_THREAD_LIMIT",
    "OMP_WAIT_POLICY",
    "KMP_LIBRARY",
];

fn main() -> ExitCode {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("openmp");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("integration/openmp")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c" || e == "cpp"))
        .collect();
    sources.sort();
    // Resolved once: a tool that goes stale while the suite runs (someone
    // editing its sources) does not fail the tests after that point.
    let tools = match (tool("loco-cc"), tool("loco-cxx"), tool("loco-daemon")) {
        (Ok(cc), Ok(cxx), Ok(daemon)) => Tools { cc, cxx, daemon },
        (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => {
            println!("openmp: cannot run: {why}");
            return ExitCode::FAILURE;
        }
    };
    let work = scratch("openmp");
    let start = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for src in &sources {
        let name = src.file_stem().unwrap().to_string_lossy().to_string();
        for (opt, configs) in [("-O2", CONFIGS_O2), ("-O0", CONFIGS_O0)] {
            let test = format!("{name}{opt}");
            if filter.as_ref().is_some_and(|f| !test.contains(f.as_str())) {
                continue;
            }
            let t = Instant::now();
            match check(&tools, src, opt, configs, &work) {
                Ok(()) => {
                    println!(
                        "test {test} ... ok ({} configurations, {:.1}s)",
                        configs.len(),
                        t.elapsed().as_secs_f64()
                    );
                    passed += 1;
                }
                Err(why) => {
                    println!(
                        "test {test} ... FAILED ({:.1}s)\n{}",
                        t.elapsed().as_secs_f64(),
                        indent(&why)
                    );
                    failed += 1;
                }
            }
        }
    }
    if failed == 0 {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("(builds kept in {})", work.display());
    }
    println!(
        "openmp: {passed} passed, {failed} failed ({:.0}s)",
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

struct Tools {
    cc: PathBuf,
    cxx: PathBuf,
    daemon: PathBuf,
}

impl Tools {
    /// (native compiler, LOCO compiler) for a source file.
    fn compilers(&self, src: &Path) -> (&Path, &Path) {
        if src.extension().is_some_and(|e| e == "cpp") {
            (Path::new("clang++-16"), &self.cxx)
        } else {
            (Path::new("clang-16"), &self.cc)
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn compile(compiler: &Path, src: &Path, opt: &str, out: &Path) -> Result<(), String> {
    let flags = ["-fopenmp".to_string(), opt.to_string()];
    loco_integration::compile(compiler, &flags, src, out, COMPILE_DEADLINE)
}

/// Runs `cmd` with a team of `threads`; its stdout, or why it failed.
fn run(cmd: &mut Command, threads: usize, what: &str) -> Result<String, String> {
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let o = run_with_deadline(
        cmd.env("OMP_NUM_THREADS", threads.to_string()),
        RUN_DEADLINE,
    )?;
    if !o.status.success() {
        return Err(format!(
            "{what} failed ({})\n{}",
            o.status,
            tails(&o, String::from_utf8_lossy(&o.stdout).as_ref())
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The last lines of a run's stdout and stderr, for failure messages.
fn tails(o: &Output, stdout: &str) -> String {
    fn tail(text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        let mut s = String::new();
        if from > 0 {
            s.push_str(&format!("[{from} lines before]\n"));
        }
        for l in &lines[from..] {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
    format!(
        "--- stdout (tail) ---\n{}--- stderr (tail) ---\n{}",
        tail(stdout, 10),
        tail(&String::from_utf8_lossy(&o.stderr), 20)
    )
}

fn check(
    tools: &Tools,
    src: &Path,
    opt: &str,
    configs: &[Config],
    work: &Path,
) -> Result<(), String> {
    let stem = src.file_stem().unwrap().to_string_lossy();
    let native = work.join(format!("{stem}{opt}.native"));
    let loco = work.join(format!("{stem}{opt}.loco"));
    let (native_cc, loco_cc) = tools.compilers(src);
    compile(native_cc, src, opt, &native)?;
    if let Some(message) = expected_error(src) {
        return match compile(loco_cc, src, opt, &loco) {
            Ok(()) => Err(format!(
                "loco-cc compiled a program it should refuse (expected an error containing {message:?})"
            )),
            Err(why) if why.contains(&message) => Ok(()),
            Err(why) => Err(format!(
                "loco-cc refused the program, but not with {message:?}:\n{why}"
            )),
        };
    }
    compile(loco_cc, src, opt, &loco)?;
    // The native output for each team size used, computed once.
    let mut expected: HashMap<usize, String> = HashMap::new();
    for config in configs {
        let Config {
            nodes,
            per_node,
            placement,
            memory_nodes,
        } = *config;
        let threads = nodes * per_node;
        if let Entry::Vacant(slot) = expected.entry(threads) {
            slot.insert(run(
                &mut Command::new(&native),
                threads,
                &format!("the native build with OMP_NUM_THREADS={threads}"),
            )?);
        }
        let mut cmd = Command::new(&tools.daemon);
        cmd.args(["run", "-n", &nodes.to_string()]);
        let mut shown = format!("loco-daemon run -n {nodes}");
        if memory_nodes > 0 {
            cmd.args(["--memory-nodes", &memory_nodes.to_string()]);
            shown += &format!(" --memory-nodes {memory_nodes}");
        }
        if let Some(placement) = placement {
            cmd.args(["--placement", placement]);
            shown += &format!(" --placement {placement}");
        }
        let what = format!("{shown} with OMP_NUM_THREADS={threads} ({per_node} per compute node)");
        cmd.args(["--no-prefix", "--timeout"])
            .arg(RUN_TIMEOUT_S.to_string())
            .arg("--")
            .arg(&loco);
        let got = run(&mut cmd, threads, &what)?;
        compare(&expected[&threads], &got, &what)?;
    }
    Ok(())
}

/// The compile error a program expects (`// loco-expect-error: TEXT` on its first line).
fn expected_error(src: &Path) -> Option<String> {
    let text = std::fs::read_to_string(src).ok()?;
    text.lines()
        .next()?
        .strip_prefix("// loco-expect-error:")
        .map(|m| m.trim().to_string())
}

/// Ok if the outputs are equal, else the first line where they differ.
fn compare(expected: &str, got: &str, what: &str) -> Result<(), String> {
    if expected == got {
        return Ok(());
    }
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let line = e
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(e.len().min(g.len()));
    let show = |v: &[&str]| {
        v.get(line)
            .map_or("<no line>".to_string(), |l| format!("`{l}`"))
    };
    Err(format!(
        "{what}: output differs from the native build at line {} ({} vs {} lines)\n  native: {}\n  loco:   {}",
        line + 1,
        e.len(),
        g.len(),
        show(&e),
        show(&g)
    ))
}
