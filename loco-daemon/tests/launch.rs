//! The launcher's promises, with plain shell programs as nodes: output
//! reaches the terminal prefixed by node, the exit code is node 0's, a node
//! that fails ends the run with a message naming it, bad input is refused
//! clearly, and no node process is ever left behind.

mod common;

use std::time::{Duration, Instant};

use common::{assert_no_node_left, daemon, node_script, run, text, wait_for_nodes};

fn temp_dir(name: &str) -> std::path::PathBuf {
    common::temp_dir("launch", name)
}

#[test]
fn every_node_runs_and_output_is_prefixed_by_node() {
    let o = run(&[
        "run",
        "-n",
        "3",
        "--",
        "sh",
        "-c",
        "echo hello from $LOCO_RANK; test -f \"$LOCO_CLUSTER\"",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for k in 0..3 {
        assert!(out.contains(&format!("[node {k}] hello from {k}")), "{out}");
    }
}

#[test]
fn the_exit_code_is_node_zeros() {
    let o = run(&[
        "run",
        "-n",
        "2",
        "--",
        "sh",
        "-c",
        "[ $LOCO_RANK = 0 ] && exit 7; exit 0",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
}

#[test]
fn a_failing_node_ends_the_run_and_is_named() {
    let dir = temp_dir("fail");
    let script = node_script(&dir, "[ $LOCO_RANK = 1 ] && exit 3; sleep 60");
    let t = Instant::now();
    let o = run(&["run", "-n", "3", "--", "sh", "-c", &script]);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("node 1 exited with code 3"),
        "{}",
        text(&o.stderr)
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_node_ends_the_run_and_no_process_remains() {
    let dir = temp_dir("kill");
    let script = node_script(&dir, "[ $LOCO_RANK = 2 ] && kill -9 $$; sleep 60 & wait");
    let o = run(&["run", "-n", "4", "--", "sh", "-c", &script]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("node 2 was killed by signal 9 (SIGKILL)"),
        "{err}"
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_past_its_timeout_is_stopped() {
    let dir = temp_dir("timeout");
    let script = node_script(&dir, "sleep 60");
    let o = run(&[
        "run",
        "-n",
        "2",
        "--timeout",
        "1",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(o.status.code(), Some(124));
    assert!(
        text(&o.stderr).contains("longer than 1s"),
        "{}",
        text(&o.stderr)
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = temp_dir("bad");
    let bad = dir.join("cluster.toml");
    std::fs::write(
        &bad,
        "[[node]]\nhost = \"127.0.0.1\"\nport = 7000\nmemory = \"lots\"\n",
    )
    .unwrap();
    let o = run(&["run", "--config", bad.to_str().unwrap(), "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("cluster.toml") && err.contains("node 0: memory"),
        "{err}"
    );

    let method = dir.join("method.toml");
    std::fs::write(
        &method,
        "[[node]]\nhost = \"127.0.0.1\"\nport = 7000\nlaunch = \"rsh\"\n",
    )
    .unwrap();
    let o = run(&["run", "--config", method.to_str().unwrap(), "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("method.toml: node 0: launch \"rsh\" is not a launch method"),
        "{err}"
    );

    let o = run(&["run", "-n", "2", "--", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no such program"),
        "{}",
        text(&o.stderr)
    );

    let o = run(&["run", "-n", "0", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_tears_every_node_down() {
    let dir = temp_dir("sigint");
    let script = node_script(&dir, "sleep 60");
    let mut child = daemon()
        .args(["run", "-n", "3", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_nodes(&dir, 3);
    // SAFETY: sends SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "launcher ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    assert!(
        text(&o.stderr).contains("interrupted"),
        "{}",
        text(&o.stderr)
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn placement_and_memory_values_are_checked_with_the_choices_named() {
    let o = run(&["run", "-n", "2", "--placement", "random", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("invalid value 'random' for '--placement <POLICY>'")
            && err.contains("[possible values: interleaved, first-touch, allocating-node]"),
        "{err}"
    );
    let o = run(&["run", "-n", "2", "--memory", "lots", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("invalid value 'lots' for '--memory <SIZE>'")
            && err.contains("does not start with a number"),
        "{err}"
    );
    // A size that parses but is no whole number of pages: cluster.toml's check.
    let o = run(&["run", "-n", "2", "--memory", "1000", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("multiple of the page size"), "{err}");
    let o = run(&[
        "run",
        "-n",
        "2",
        "--placement",
        "allocating-node",
        "--memory",
        "64MiB",
        "--",
        "sh",
        "-c",
        "grep -q 'placement = \"allocating-node\"' \"$LOCO_CLUSTER\" && grep -q 'memory = 67108864' \"$LOCO_CLUSTER\"",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}
