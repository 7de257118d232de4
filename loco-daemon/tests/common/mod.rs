//! Helpers the launcher's test files share: starting loco-daemon with a
//! deadline, node scripts that record their pids, and checking that no node
//! process outlives a run.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What any launcher run in these tests may take before it is killed.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn daemon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loco-daemon"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for one test, with `pids/` for its node scripts.
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loco-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("pids")).unwrap();
    d
}

/// Waits for `child` until the deadline, killing it past it.
pub fn finish(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The launcher with these arguments, stderr captured.
pub fn launcher(args: &[&str]) -> Command {
    let mut c = daemon();
    c.args(args).stderr(Stdio::piped());
    c
}

/// Runs the launcher to its end (or its deadline), capturing both outputs.
pub fn run(args: &[&str]) -> Output {
    let child = launcher(args).stdout(Stdio::piped()).spawn().unwrap();
    finish(child, &format!("loco-daemon {args:?}"))
}

/// A node script that records its pid in `dir`/pids and then runs `body`.
pub fn node_script(dir: &Path, body: &str) -> String {
    format!("echo $$ > {}/pids/$LOCO_RANK; {body}", dir.display())
}

pub fn node_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir.join("pids"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// Waits until `n` node scripts have recorded their pids.
pub fn wait_for_nodes(dir: &Path, n: usize) {
    let start = Instant::now();
    while node_pids(dir).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nodes did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every node process recorded has ended, within a few seconds.
pub fn assert_no_node_left(dir: &Path) {
    let start = Instant::now();
    for pid in node_pids(dir) {
        while loco_testkit::process_running(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "node process {pid} is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
