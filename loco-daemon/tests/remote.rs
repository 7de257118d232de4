//! Nodes started elsewhere: through `loco-daemon serve` processes this test
//! starts on free loopback ports, and through `launch = "ssh"` with a fake
//! ssh that runs `loco-daemon serve --stdio` here. Everything is on
//! 127.0.0.1; every process has a deadline and is killed at the end.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{
    assert_no_node_left, daemon, finish, launcher, node_script, run, text, wait_for_nodes,
};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("remote", name)
}

/// `loco-daemon run --config CONFIG -- sh -c SCRIPT`.
fn run_script(config: &Path, script: &str) -> Command {
    launcher(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ])
}

/// Runs `sh -c SCRIPT` on every node of CONFIG to the end (or the deadline).
fn run_script_to_end(config: &Path, script: &str) -> Output {
    let child = run_script(config, script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    finish(
        child,
        &format!("loco-daemon run --config {config:?} -- sh -c {script:?}"),
    )
}

/// A `loco-daemon serve` on a free loopback port, killed when dropped (and
/// when this test's thread ends, whatever happens: PR_SET_PDEATHSIG).
struct Serve {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let port = loco_cluster::free_loopback_ports(1).unwrap()[0];
        let log = dir.join(format!("serve-{port}.log"));
        let mut cmd = daemon();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
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
        let child = cmd.spawn().unwrap();
        let serve = Serve { child, port, log };
        let start = Instant::now();
        while !std::fs::read_to_string(&serve.log)
            .unwrap()
            .contains("listening on")
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        serve
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake ssh: drops the host argument and runs the rest here.
fn fake_ssh(dir: &Path) -> PathBuf {
    let path = dir.join("fake-ssh");
    std::fs::write(&path, "#!/bin/sh\nshift\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// How each node of a test cluster is started.
enum How<'a> {
    Local,
    Daemon(&'a Serve),
    Ssh,
}

/// A cluster.toml for nodes on 127.0.0.1 started as `how` says.
fn cluster(dir: &Path, how: &[How]) -> PathBuf {
    let ports = loco_cluster::free_loopback_ports(how.len()).unwrap();
    let mut t = String::new();
    for (h, port) in how.iter().zip(ports) {
        t.push_str(&format!("[[node]]\nhost = \"127.0.0.1\"\nport = {port}\n"));
        match h {
            How::Local => {}
            How::Daemon(s) => t.push_str(&format!("daemon = \"{}\"\n", s.addr())),
            How::Ssh => t.push_str("launch = \"ssh\"\n"),
        }
    }
    t.push_str(&format!(
        "[launch]\nssh = [\"{}\"]\nremote_daemon = \"{}\"\n",
        fake_ssh(dir).display(),
        env!("CARGO_BIN_EXE_loco-daemon")
    ));
    let path = dir.join("cluster.toml");
    std::fs::write(&path, t).unwrap();
    path
}

#[test]
fn nodes_through_serve_and_local_nodes_run_together() {
    let dir = temp_dir("mixed");
    let (a, b) = (Serve::start(&dir), Serve::start(&dir));
    let config = cluster(
        &dir,
        &[How::Daemon(&a), How::Local, How::Daemon(&b), How::Local],
    );
    let o = run_script_to_end(
        &config,
        "echo hello from $LOCO_RANK; echo to stderr $LOCO_RANK >&2; \
         grep -q 'daemon = ' \"$LOCO_CLUSTER\" || exit 99; [ $LOCO_RANK = 0 ] && exit 7; exit 0",
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(7), "{out}{err}");
    for k in 0..4 {
        assert!(
            out.contains(&format!("[node {k}] hello from {k}\n")),
            "{out}"
        );
        assert!(
            err.contains(&format!("[node {k}] to stderr {k}\n")),
            "{err}"
        );
    }
    assert!(err.contains("node 0 exited with code 7"), "{err}");
    // The daemons keep serving after their nodes end.
    let o = run_script_to_end(&config, "echo again $LOCO_RANK");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("[node 2] again 2"));
    drop((a, b));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ssh_nodes_run_through_serve_stdio_with_their_environment_and_statistics() {
    let dir = temp_dir("ssh");
    let serve = Serve::start(&dir);
    let config = cluster(&dir, &[How::Ssh, How::Local, How::Ssh, How::Daemon(&serve)]);
    let json = dir.join("stats.json");
    let child = launcher(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--stats-json",
        json.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo rank $LOCO_RANK threads $OMP_NUM_THREADS; \
         echo \"{\\\"node\\\": $LOCO_RANK}\" > \"$LOCO_STATS_JSON.node$LOCO_RANK\"; \
         [ $LOCO_RANK = 0 ] && exit 9; exit 0",
    ])
    .env("OMP_NUM_THREADS", "12")
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let o = finish(child, "loco-daemon run over fake ssh");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(9), "{out}{err}");
    for k in 0..4 {
        assert!(
            out.contains(&format!("[node {k}] rank {k} threads 12")),
            "{out}"
        );
    }
    let gathered = std::fs::read_to_string(&json).unwrap();
    for k in 0..4 {
        assert!(
            gathered.contains(&format!("{{\"node\": {k}}}")),
            "{gathered}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_remote_node_that_crashes_ends_the_run_naming_it() {
    let dir = temp_dir("crash");
    let serve = Serve::start(&dir);
    let config = cluster(&dir, &[How::Local, How::Daemon(&serve), How::Ssh]);
    let script = node_script(&dir, "[ $LOCO_RANK = 1 ] && kill -SEGV $$; sleep 60 & wait");
    let t = Instant::now();
    let o = run_script_to_end(&config, &script);
    let err = text(&o.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("loco-daemon: node 1 was killed by signal 11 (SIGSEGV)"),
        "{err}"
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_daemon_that_dies_is_reported_as_lost_contact() {
    let dir = temp_dir("lost");
    let mut serve = Serve::start(&dir);
    let config = cluster(&dir, &[How::Local, How::Daemon(&serve)]);
    let script = node_script(&dir, "sleep 60");
    let child = run_script(&config, &script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_nodes(&dir, 2);
    serve.child.kill().unwrap();
    let o = finish(child, "the launcher");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "node 1: lost contact with its daemon at {}",
            serve.addr()
        )),
        "{err}"
    );
    assert_no_node_left(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn when_the_launcher_is_killed_or_interrupted_serve_kills_its_nodes() {
    let dir = temp_dir("orphan");
    let mut serve = Serve::start(&dir);
    let config = cluster(&dir, &[How::Daemon(&serve), How::Ssh, How::Daemon(&serve)]);
    let script = node_script(&dir, "sleep 60 & wait");

    // Ctrl-C: the launcher stops every node and says so.
    let child = run_script(&config, &script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_nodes(&dir, 3);
    // SAFETY: sends SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = finish(child, "the interrupted launcher");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("interrupted"));
    assert_no_node_left(&dir);

    // SIGKILL: nobody asks, but the connections (and ssh's stdin) close.
    std::fs::remove_dir_all(dir.join("pids")).unwrap();
    std::fs::create_dir(dir.join("pids")).unwrap();
    let mut child = run_script(&config, &script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_nodes(&dir, 3);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_node_left(&dir);
    assert!(serve.running(), "serve must outlive its nodes' launcher");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_program_missing_on_the_daemons_machine_is_a_clear_error() {
    let dir = temp_dir("missing");
    let serve = Serve::start(&dir);
    for how in [How::Daemon(&serve), How::Ssh] {
        let config = cluster(&dir, &[how]);
        let o = run(&[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--",
            "/no/such/loco-prog",
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("node 0 (127.0.0.1): /no/such/loco-prog: no such program"),
            "{err}"
        );
    }
    // A daemon that is not there.
    let port = loco_cluster::free_loopback_ports(1).unwrap()[0];
    let gone = dir.join("gone.toml");
    std::fs::write(
        &gone,
        format!("[[node]]\nhost = \"127.0.0.1\"\nport = 7000\ndaemon = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let o = run(&["run", "--config", gone.to_str().unwrap(), "--", "true"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach loco-daemon serve at 127.0.0.1:{port}"
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_refuses_a_non_loopback_address_without_an_explicit_opt_in() {
    // Refused before binding anything.
    let child = daemon()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = finish(child, "loco-daemon serve");
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-remote"),
        "{err}"
    );
}
