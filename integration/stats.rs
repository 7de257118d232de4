//! `loco-daemon run --stats --stats-json` on a real program: every node
//! reports, on stderr and in one JSON file, and the numbers say what the
//! program did (node 0 allocated and faulted in pages homed elsewhere,
//! interleaved placement).

use std::process::Command;

use loco_integration::{
    assert_memory_nodes_served, loco_compile, loco_compile_with, scratch, stats_field as field,
    stats_node_lines as node_lines, tool,
};

#[test]
fn statistics_reach_the_terminal_and_the_json_file() {
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("stats");
    let exe = work.join("list");
    loco_compile("programs/linked_list.c", &exe);
    let json = work.join("stats.json");
    let out = Command::new(&daemon)
        .args([
            "run",
            "-n",
            "3",
            "--timeout",
            "120",
            "--stats",
            // Pages spread over the nodes, so that node 0's allocations
            // fault in pages homed elsewhere (under first-touch they would
            // all be its own).
            "--placement",
            "interleaved",
            "--stats-json",
        ])
        .arg(&json)
        .arg("--")
        .arg(&exe)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for k in 0..3 {
        assert!(
            err.contains(&format!("[node {k}] loco: node {k} stats: page faults")),
            "{err}"
        );
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let nodes: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"node\""))
        .collect();
    assert_eq!(nodes.len(), 3, "{text}");
    assert_eq!(field(nodes[0], "node"), 0);
    assert!(field(nodes[0], "allocations") >= 200_000, "{}", nodes[0]);
    assert!(field(nodes[0], "page_faults_remote") > 0, "{}", nodes[0]);
    assert!(field(nodes[1], "page_faults_home") > 0, "{}", nodes[1]);
    assert_eq!(field(nodes[2], "allocations"), 0);
    std::fs::remove_dir_all(&work).unwrap();
}

/// A fork carries the pages its arguments point to (the shared variables
/// on main's stack, which node 0 writes before every region): the other
/// node installs them instead of faulting on them in every region.
#[test]
fn a_fork_carries_the_pages_its_arguments_point_to() {
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("fork-args");
    let exe = work.join("fork_args");
    loco_compile_with("programs/fork_args.c", &["-fopenmp"], &exe);
    let json = work.join("stats.json");
    let out = Command::new(&daemon)
        .args(["run", "-n", "2", "--timeout", "120", "--stats-json"])
        .arg(&json)
        .arg("--")
        .arg(&exe)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("200 regions"), "{stdout}{err}");
    let text = std::fs::read_to_string(&json).unwrap();
    let nodes: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"node\""))
        .collect();
    assert_eq!(nodes.len(), 2, "{text}");
    let carried = field(nodes[1], "pages_carried");
    let faults = field(nodes[1], "page_faults_remote");
    // 200 regions: one carried page each. Node 1 still faults once a
    // region on the page of `out` both nodes write; without the carried
    // pages it would also fault on main's stack page in every region.
    assert!(carried >= 200, "{}", nodes[1]);
    assert!(faults < 300, "{}", nodes[1]);
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn progress_lines_show_what_the_nodes_have_done_so_far() {
    // An OpenMP team that synchronises until stopped: `--progress` prints a
    // line of totals every two seconds while it runs.
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("progress");
    let exe = work.join("team");
    loco_integration::loco_compile_with("failures/team.c", &["-fopenmp"], &exe);
    let out = Command::new(&daemon)
        .args(["run", "-n", "2", "--progress", "--timeout", "5", "--"])
        .arg(&exe)
        .env("OMP_NUM_THREADS", "4")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("nodes reporting"))
        .collect();
    assert!(lines.len() >= 2, "{err}");
    let last = lines.last().unwrap();
    assert!(last.contains("2 of 2 nodes reporting"), "{last}");
    // The team has crossed barriers and taken locks by then.
    let count = |what: &str| -> u64 {
        let at = last
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {last}"));
        last[..at]
            .trim_end()
            .rsplit([' ', '('])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(count(" barriers") > 0, "{last}");
    assert!(count(" lock takes") > 0, "{last}");
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn memory_nodes_run_no_thread_take_no_barrier_and_serve_every_page() {
    // 2 compute nodes and 2 memory nodes, the cache at 64 KiB: an OpenMP
    // program of barriers over heap and global arrays (omp_barriers.c),
    // and a serial one (linked_list.c), whose memory nodes must count the
    // same barriers: those of start-up and the end, none of the program's.
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("memory-nodes");
    let team = work.join("barriers");
    loco_integration::loco_compile_with("openmp/omp_barriers.c", &["-fopenmp"], &team);
    let serial = work.join("list");
    loco_compile("programs/linked_list.c", &serial);
    let run = |exe: &std::path::Path, json: &std::path::Path| {
        let out = Command::new(&daemon)
            .args(["run", "-n", "2", "--memory-nodes", "2", "--cache", "64KiB"])
            .args(["--timeout", "120", "--stats", "--stats-json"])
            .arg(json)
            .arg("--")
            .arg(exe)
            .env("OMP_NUM_THREADS", "4")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        for k in [2, 3] {
            assert!(
                err.contains(&format!("[node {k}] loco: node {k} (memory node) stats:")),
                "{err}"
            );
        }
        let nodes = node_lines(json);
        assert_eq!(nodes.len(), 4, "{nodes:?}");
        nodes
    };
    let nodes = run(&team, &work.join("team.json"));
    for (k, node) in nodes.iter().enumerate() {
        assert_eq!(field(node, "node"), k as u64);
        assert_eq!(field(node, "memory_node"), u64::from(k >= 2), "{node}");
        // --cache reached every node.
        assert_eq!(field(node, "cache_size"), 64 << 10, "{node}");
    }
    for compute in &nodes[..2] {
        // Each compute node ran its 2 of the 4 threads in every region and
        // took the team's barriers.
        assert!(field(compute, "omp_threads") >= 2, "{compute}");
        assert!(field(compute, "omp_barriers") >= 30, "{compute}");
        assert!(field(compute, "page_faults_remote") > 0, "{compute}");
        // A 64 KiB cache holds 16 pages: the arrays do not fit.
        assert!(field(compute, "evictions") > 0, "{compute}");
    }
    assert_eq!(
        field(&nodes[0], "omp_threads"),
        field(&nodes[1], "omp_threads")
    );
    // Everything the program touches lives on the memory nodes: node 1
    // homes no page at all (node 0 only main's stack).
    assert_eq!(field(&nodes[1], "page_faults_home"), 0, "{}", nodes[1]);
    // They served the pages: their home pages were made present for the
    // compute nodes' reads and writes (the program's arrays are small:
    // they may all lie in one run of pages, on one memory node).
    assert_memory_nodes_served(
        &nodes[2..],
        &[
            "omp_forks",
            "omp_threads",
            "omp_barriers",
            "omp_lock_takes",
            "releases",
            "acquires",
            "page_faults_remote",
            "allocations",
        ],
    );
    let serial_nodes = run(&serial, &work.join("serial.json"));
    for k in [2, 3] {
        let (with_team, alone) = (
            field(&nodes[k], "net_barriers"),
            field(&serial_nodes[k], "net_barriers"),
        );
        assert_eq!(
            with_team, alone,
            "memory node {k} took {with_team} barriers beside a team, {alone} beside a serial program"
        );
        assert!(
            with_team + field(&nodes[1], "omp_barriers") <= field(&nodes[1], "net_barriers"),
            "{}\n{}",
            nodes[k],
            nodes[1]
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}
