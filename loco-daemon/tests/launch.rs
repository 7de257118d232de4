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

#[test]
fn memory_nodes_and_the_cache_size_reach_every_nodes_cluster_description() {
    // 2 compute nodes, then 2 memory nodes; pages interleaved over the
    // memory nodes unless --placement says otherwise; --cache sets
    // memory.cache_size. Each node checks the file it was given.
    let check = "grep -c 'role = \"memory\"' \"$LOCO_CLUSTER\"; grep -c 'role = \"compute\"' \"$LOCO_CLUSTER\"; \
                 grep 'placement' \"$LOCO_CLUSTER\"; grep 'cache_size' \"$LOCO_CLUSTER\"; \
                 awk '/^\\[\\[node\\]\\]/ {k++} /role/ && k == ENVIRON[\"LOCO_RANK\"] + 1 {print \"mine:\", $3}' \"$LOCO_CLUSTER\"";
    let o = run(&[
        "run",
        "-n",
        "2",
        "--memory-nodes",
        "2",
        "--cache",
        "64MiB",
        "--",
        "sh",
        "-c",
        check,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for k in 0..4 {
        let role = if k < 2 { "compute" } else { "memory" };
        for line in [
            "2",
            "placement = \"interleaved\"",
            "cache_size = 67108864",
            &format!("mine: \"{role}\""),
        ] {
            assert!(out.contains(&format!("[node {k}] {line}")), "{line}: {out}");
        }
    }
    let o = run(&[
        "run",
        "-n",
        "1",
        "--memory-nodes",
        "1",
        "--placement",
        "first-touch",
        "--",
        "sh",
        "-c",
        "grep -q 'placement = \"first-touch\"' \"$LOCO_CLUSTER\"",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn memory_node_and_cache_options_are_checked() {
    let refused = |args: &[&str], needles: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        }
    };
    refused(
        &["run", "-n", "0", "--memory-nodes", "2", "--", "true"],
        &["needs at least one compute node"],
    );
    refused(
        &["run", "--memory-nodes", "2", "--", "true"],
        &["--memory-nodes <M>", "--nodes <NODES>"],
    );
    refused(
        &["run", "-n", "2", "--memory-nodes", "two", "--", "true"],
        &["invalid value 'two' for '--memory-nodes <M>'"],
    );
    refused(
        &["run", "-n", "2", "--cache", "lots", "--", "true"],
        &[
            "invalid value 'lots' for '--cache <SIZE>'",
            "does not start with a number",
        ],
    );
    refused(
        &["run", "-n", "2", "--cache", "100", "--", "true"],
        &["the command line: memory.cache_size 100 is smaller than one page"],
    );

    let dir = temp_dir("roles");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let memory_first = write(
        "memory-first.toml",
        "[[node]]\nhost = \"127.0.0.1\"\nport = 7000\nrole = \"memory\"\n\
         [[node]]\nhost = \"127.0.0.1\"\nport = 7001\n",
    );
    refused(
        &["run", "--config", &memory_first, "--", "true"],
        &["memory-first.toml: node 0 has role = \"memory\""],
    );
    let all_memory = write(
        "all-memory.toml",
        "[[node]]\nhost = \"127.0.0.1\"\nport = 7000\nrole = \"memory\"\n",
    );
    refused(
        &["run", "--config", &all_memory, "--", "true"],
        &["all-memory.toml: every node has role = \"memory\""],
    );
    refused(
        &[
            "run",
            "--config",
            &all_memory,
            "--memory-nodes",
            "1",
            "--",
            "true",
        ],
        &["--memory-nodes", "cannot be used with"],
    );
    let typo = write(
        "typo.toml",
        "[[node]]\nhost = \"127.0.0.1\"\nport = 7000\nrole = \"storage\"\n",
    );
    refused(
        &["run", "--config", &typo, "--", "true"],
        &["typo.toml", "storage", "compute", "memory"],
    );
    // --cache applies to a cluster.toml too.
    let ports = loco_testkit::free_ports(2);
    let two = write(
        "two.toml",
        &format!(
            "[[node]]\nhost = \"127.0.0.1\"\nport = {}\n[[node]]\nhost = \"127.0.0.1\"\nport = {}\nrole = \"memory\"\n",
            ports[0], ports[1]
        ),
    );
    let o = run(&[
        "run",
        "--config",
        &two,
        "--cache",
        "1MiB",
        "--",
        "sh",
        "-c",
        "grep -q 'cache_size = 1048576' \"$LOCO_CLUSTER\" && grep -q 'placement = \"interleaved\"' \"$LOCO_CLUSTER\"",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    refused(
        &["run", "--config", &two, "--cache", "1", "--", "true"],
        &["two.toml with --cache: memory.cache_size 1 is smaller than one page"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
