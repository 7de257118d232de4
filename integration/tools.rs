//! Finding and running LOCO's built tools from the end-to-end tests.
//!
//! The tests use what `cargo build --workspace` produced next to them
//! (target/<profile>/): loco-cc, loco-cxx, loco-daemon, libloco.so and
//! libloco_pass.so. `just test` builds them first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use loco_testkit::run_nodes;

/// target/<profile>/, where cargo puts binaries and cdylibs.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The crates each artifact the tests use is built from.
fn made_from(artifact: &str) -> &'static [&'static str] {
    match artifact {
        "libloco.so" => &["loco-runtime", "loco-uffd", "loco-rdma", "loco-cluster"],
        "loco-daemon" => &["loco-daemon", "loco-cluster"],
        _ => &["loco-pass"], // the plugin and the drivers
    }
}

/// A built tool, or a clear reason why the tests cannot run: missing, or
/// older than its sources (cargo test does not rebuild cdylibs or other
/// packages' binaries).
pub fn tool(name: &str) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = build_dir();
    for artifact in [name, "libloco.so", "libloco_pass.so"] {
        let sources: Vec<PathBuf> = made_from(artifact)
            .iter()
            .map(|c| root.join(c).join("src"))
            .collect();
        if let Some(why) = loco_testkit::stale_artifact(&dir.join(artifact), &sources) {
            return Err(why);
        }
    }
    Ok(dir.join(name))
}

/// Runs a command with a deadline (through loco_testkit::run_nodes, as a
/// one-node run: its process group is killed if it overruns).
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let taken = Mutex::new(Some(std::mem::replace(cmd, Command::new("true"))));
    let outcome = run_nodes(1, deadline, |_| {
        taken.lock().unwrap().take().expect("started once")
    })
    .pop()
    .expect("one outcome");
    match outcome.status {
        Some(status) => Ok(Output {
            status,
            stdout: outcome.stdout.into_bytes(),
            stderr: outcome.stderr.into_bytes(),
        }),
        None => Err(format!("{shown} did not finish within {deadline:?}")),
    }
}

/// A fresh scratch directory for one test (removed by the test when it passes).
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loco-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Compiles `src` (relative to integration/) with loco-cc -O2 into `out`, or panics saying why.
pub fn loco_compile(src: &str, out: &Path) {
    loco_compile_with(src, &[], out)
}

/// Compiles `src` into `out` with `compiler` and `flags`, within `deadline`;
/// the compiler's messages when it fails.
pub fn compile(
    compiler: &Path,
    flags: &[String],
    src: &Path,
    out: &Path,
    deadline: Duration,
) -> Result<(), String> {
    let o = run_with_deadline(
        Command::new(compiler)
            .args(flags)
            .arg(src)
            .arg("-o")
            .arg(out),
        deadline,
    )?;
    if !o.status.success() {
        return Err(format!(
            "{} failed to compile {}:\n{}",
            compiler.display(),
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(())
}

/// As [`loco_compile`], with extra compiler flags (e.g. `-fopenmp`).
pub fn loco_compile_with(src: &str, flags: &[&str], out: &Path) {
    let cc = tool("loco-cc").unwrap_or_else(|e| panic!("{e}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let o = Command::new(&cc)
        .arg("-O2")
        .args(flags)
        .arg(&src)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run loco-cc");
    assert!(
        o.status.success(),
        "loco-cc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every node's `--stats-json` object (one line each), in node order.
pub fn stats_node_lines(json: &Path) -> Vec<String> {
    std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("{}: {e}", json.display()))
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"node\""))
        .map(str::to_string)
        .collect()
}

/// Memory nodes' lines of `--stats-json`: each did none of `idle` (a
/// count of 0 in every one), and together they made home pages present
/// for the compute nodes (they served them).
pub fn assert_memory_nodes_served(memory: &[String], idle: &[&str]) {
    for node in memory {
        for field in idle {
            assert_eq!(stats_field(node, field), 0, "{field}: {node}");
        }
    }
    let served: u64 = memory
        .iter()
        .map(|m| stats_field(m, "page_faults_home"))
        .sum();
    assert!(served > 0, "{}", memory.join("\n"));
}

/// A number from one node's line of `--stats-json`.
pub fn stats_field(line: &str, name: &str) -> u64 {
    let at = line
        .find(&format!("\"{name}\": "))
        .unwrap_or_else(|| panic!("{name} missing in {line}"));
    line[at + name.len() + 4..]
        .split([',', '}'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
