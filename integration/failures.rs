//! What a user sees when a node of a LOCO program dies mid-run: the run
//! ends within seconds, the launcher names the node and how it died, the
//! surviving nodes say which node failed, and no process is left behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loco_integration::{loco_compile, loco_compile_with, scratch, tool};

/// Pids of this run's node processes, by rank (found through their environment).
fn node_pids(cluster_file: &str) -> Vec<(usize, i32)> {
    let cluster = format!("LOCO_CLUSTER={cluster_file}");
    loco_testkit::processes_by_environment()
        .into_iter()
        .filter(|(_, vars)| vars.contains(&cluster))
        .filter_map(|(pid, vars)| {
            let rank = vars.iter().find_map(|v| v.strip_prefix("LOCO_RANK="))?;
            Some((rank.parse().unwrap(), pid))
        })
        .collect()
}

#[test]
fn a_node_killed_mid_run_ends_the_run_with_a_clear_message() {
    kill_a_node_mid_run("failures/walker.c", &[], &["-n", "4"], 2);
}

#[test]
fn a_node_killed_inside_a_parallel_region_ends_the_run_with_a_clear_message() {
    // Node 2 is killed while the team (2 threads on each node) is in a loop
    // of barriers and critical sections: nobody may wait for it forever.
    kill_a_node_mid_run("failures/team.c", &["-fopenmp"], &["-n", "4"], 2);
}

#[test]
fn a_memory_node_killed_mid_run_ends_the_run_with_a_clear_message() {
    // 2 compute nodes (4 threads each) synchronise in a loop while 2 memory
    // nodes serve; memory node 3 dies: its pages are gone, the run ends.
    kill_a_node_mid_run(
        "failures/team.c",
        &["-fopenmp"],
        &["-n", "2", "--memory-nodes", "2"],
        3,
    );
}

/// Runs `source` under `loco-daemon run NODES...` (4 node processes in
/// all) and kills node `victim` once the program has started.
fn kill_a_node_mid_run(source: &str, flags: &[&str], nodes: &[&str], victim_rank: usize) {
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let stem = Path::new(source).file_stem().unwrap().to_string_lossy();
    // Tests run side by side: each its own directory.
    let work = scratch(&format!("failures-{stem}{}", nodes.concat()));
    let exe = work.join("victim");
    loco_compile_with(source, flags, &exe);

    let mut run = Command::new(&daemon)
        .arg("run")
        .args(nodes)
        .args(["--timeout", "120", "--"])
        .arg(&exe)
        .env("OMP_NUM_THREADS", "8")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cluster_file = format!(
        "{}/loco-run-{}/cluster.toml",
        std::env::temp_dir().display(),
        run.id()
    );
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("walking"), "unexpected first line {line:?}");
    let pids = node_pids(&cluster_file);
    assert_eq!(pids.len(), 4, "found nodes {pids:?}");
    let victim = pids
        .iter()
        .find(|(rank, _)| *rank == victim_rank)
        .unwrap()
        .1;
    // SAFETY: kill(2) on a node process this test's launcher started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let killed_at = Instant::now();
    while run.try_wait().unwrap().is_none() {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the run did not end after a node died"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ended_after = killed_at.elapsed();
    let status = run.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "node {victim_rank} was killed by signal 9 (SIGKILL)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("node {victim_rank} has failed")),
        "the survivors did not say which node failed:\n{err}"
    );
    assert!(
        ended_after < Duration::from_secs(10),
        "took {ended_after:?}"
    );
    for (rank, pid) in pids {
        assert!(
            !loco_testkit::process_running(pid),
            "node {rank} (pid {pid}) is still running"
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn nodes_running_different_programs_are_refused() {
    let work = scratch("mismatch");
    let (a, b) = (work.join("a"), work.join("b"));
    loco_compile("programs/tree.c", &a);
    loco_compile("programs/linked_list.c", &b);
    let ports = loco_testkit::free_ports(2);
    let cluster = work.join("cluster.toml");
    std::fs::write(
        &cluster,
        format!(
            "[[node]]\nhost = \"127.0.0.1\"\nport = {}\n\n[[node]]\nhost = \"127.0.0.1\"\nport = {}\n",
            ports[0], ports[1]
        ),
    )
    .unwrap();
    let outcomes = loco_testkit::run_nodes(2, Duration::from_secs(60), |rank| {
        let mut c = Command::new(if rank == 0 { &a } else { &b });
        c.env("LOCO_RANK", rank.to_string())
            .env("LOCO_CLUSTER", &cluster);
        c
    });
    for o in &outcomes {
        assert!(!o.timed_out() && !o.success(), "{}", o.describe());
        assert!(
            o.stderr.contains("runs a different program than node 0"),
            "{}",
            o.describe()
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}
