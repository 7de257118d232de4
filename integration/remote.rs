//! A real LOCO program with nodes started through `loco-daemon serve` (and
//! through `launch = "ssh"` with a fake ssh that runs `serve --stdio` here):
//! it must print what the native build prints; and a hand-written
//! cluster.toml with `role = "memory"` nodes among its compute nodes. Everything on 127.0.0.1.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loco_integration::{
    compile, loco_compile, loco_compile_with, run_with_deadline, scratch, stats_field,
    stats_node_lines, tool,
};

const DEADLINE: Duration = Duration::from_secs(120);

/// `loco-daemon serve` on a free loopback port; killed when dropped, and
/// with the test's thread whatever happens (PR_SET_PDEATHSIG).
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(daemon: &Path, work: &Path) -> Serve {
        let addr = format!("127.0.0.1:{}", loco_testkit::free_ports(1)[0]);
        let log = work.join("serve.log");
        let mut cmd = Command::new(daemon);
        cmd.args(["serve", "--listen", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // SAFETY: prctl only sets a flag of the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start loco-daemon serve");
        let start = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cluster(work: &Path, name: &str, launch: [&str; 2], daemon: &Path) -> PathBuf {
    let ports = loco_testkit::free_ports(2);
    let ssh = work.join("fake-ssh");
    std::fs::write(&ssh, "#!/bin/sh\nshift\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut t = String::new();
    for (port, how) in ports.iter().zip(launch) {
        t.push_str(&format!(
            "[[node]]\nhost = \"127.0.0.1\"\nport = {port}\n{how}\n"
        ));
    }
    t.push_str(&format!(
        "[launch]\nssh = [\"{}\"]\nremote_daemon = \"{}\"\n",
        ssh.display(),
        daemon.display()
    ));
    let path = work.join(name);
    std::fs::write(&path, t).unwrap();
    path
}

#[test]
fn a_loco_program_runs_with_nodes_started_through_serve_and_ssh() {
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("remote");
    let (native, loco) = (work.join("native"), work.join("loco"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/linked_list.c");
    let o = Command::new("clang-16")
        .args(["-O2"])
        .arg(&src)
        .arg("-o")
        .arg(&native)
        .output()
        .expect("run clang-16");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    loco_compile("programs/linked_list.c", &loco);
    let expected = run_with_deadline(&mut Command::new(&native), DEADLINE).unwrap();
    assert!(expected.status.success());

    let serve = Serve::start(&daemon, &work);
    let daemon_node = format!("daemon = \"{}\"", serve.addr);
    for (name, launch) in [
        ("local-and-serve.toml", ["", daemon_node.as_str()]),
        (
            "ssh-and-serve.toml",
            ["launch = \"ssh\"", daemon_node.as_str()],
        ),
    ] {
        let config = cluster(&work, name, launch, &daemon);
        let got = run_with_deadline(
            Command::new(&daemon)
                .args(["run", "--no-prefix", "--timeout", "100", "--config"])
                .arg(&config)
                .arg("--")
                .arg(&loco),
            DEADLINE,
        )
        .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&got.stderr),
        );
        assert!(got.status.success(), "{name}: {err}");
        assert_eq!(
            out,
            String::from_utf8_lossy(&expected.stdout),
            "{name}: output differs from the native build\n{err}"
        );
    }
    drop(serve);
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_hand_written_cluster_toml_with_memory_nodes_runs_a_program() {
    // Memory nodes wherever the file puts them (here ranks 1 and 3, between
    // and after the compute nodes 0 and 2), one of them started through
    // `loco-daemon serve`: the team of 4 threads runs on the compute nodes
    // only, and the memory nodes home and serve the program's pages.
    let daemon = tool("loco-daemon").unwrap_or_else(|e| panic!("{e}"));
    let work = scratch("remote-memory");
    let (native, loco) = (work.join("native"), work.join("loco"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/omp_threads.c");
    let flags = ["-O2".to_string(), "-fopenmp".to_string()];
    compile(Path::new("clang-16"), &flags, &src, &native, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    loco_compile_with("programs/omp_threads.c", &["-fopenmp"], &loco);
    let expected =
        run_with_deadline(Command::new(&native).env("OMP_NUM_THREADS", "4"), DEADLINE).unwrap();
    assert!(expected.status.success());

    let serve = Serve::start(&daemon, &work);
    let ports = loco_testkit::free_ports(4);
    let extra = [
        "",
        &format!("role = \"memory\"\ndaemon = \"{}\"\n", serve.addr),
        "role = \"compute\"\n",
        "role = \"memory\"\n",
    ];
    let mut toml = String::new();
    for (port, extra) in ports.iter().zip(extra) {
        toml.push_str(&format!(
            "[[node]]\nhost = \"127.0.0.1\"\nport = {port}\n{extra}"
        ));
    }
    let config = work.join("memory-nodes.toml");
    std::fs::write(&config, toml).unwrap();
    let json = work.join("stats.json");
    let got = run_with_deadline(
        Command::new(&daemon)
            .args(["run", "--timeout", "100", "--stats", "--stats-json"])
            .arg(&json)
            .arg("--config")
            .arg(&config)
            .arg("--")
            .arg(&loco)
            .env("OMP_NUM_THREADS", "4"),
        DEADLINE,
    )
    .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&got.stderr),
    );
    assert!(got.status.success(), "{err}");
    let want: String = String::from_utf8_lossy(&expected.stdout)
        .lines()
        .map(|l| format!("[node 0] {l}\n"))
        .collect();
    assert_eq!(out, want, "output differs from the native build\n{err}");
    let memory = |k: usize| k % 2 == 1;
    for k in 0..4 {
        let kind = if memory(k) { " (memory node)" } else { "" };
        let line = format!("[node {k}] loco: node {k}{kind} stats:");
        assert!(err.contains(&line), "no {line:?} in:\n{err}");
    }
    let nodes = stats_node_lines(&json);
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    let mut served = 0;
    for (k, node) in nodes.iter().enumerate() {
        assert_eq!(
            stats_field(node, "memory_node"),
            u64::from(memory(k)),
            "{node}"
        );
        if memory(k) {
            for zero in [
                "omp_threads",
                "omp_forks",
                "allocations",
                "page_faults_remote",
            ] {
                assert_eq!(stats_field(node, zero), 0, "node {k}: {zero}: {node}");
            }
            served += stats_field(node, "page_faults_home");
        } else {
            // Each compute node runs 2 of the 4 threads of every region.
            assert!(stats_field(node, "omp_threads") > 0, "node {k}: {node}");
        }
    }
    assert_eq!(
        stats_field(&nodes[0], "omp_threads"),
        stats_field(&nodes[2], "omp_threads")
    );
    // Interleaved over the memory nodes (the default with them): the heap
    // is theirs, and compute node 2 homes nothing.
    assert!(served > 0, "{}\n{}", nodes[1], nodes[3]);
    assert_eq!(
        stats_field(&nodes[2], "page_faults_home"),
        0,
        "{}",
        nodes[2]
    );
    drop(serve);
    std::fs::remove_dir_all(&work).unwrap();
}
