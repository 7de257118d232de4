//! `loco-daemon serve`: runs nodes for launchers on other machines.
//!
//! Each connection (or, with `--stdio`, the one pipe pair) runs one node, as
//! the local launcher would: same environment, address randomisation off,
//! its own process group, stdin null. Its output is streamed back, then its
//! wait status. If the launcher asks, or the connection goes away, the
//! node's process group is killed.
//!
//! The daemon runs whatever program a connecting launcher names, as the
//! user the daemon runs as: it must only be reachable from a trusted
//! cluster network. It therefore listens on loopback unless told otherwise
//! with `--allow-remote`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::node;
use crate::proto::{self, Start};

/// A frame writer shared by the threads of one node (output, status).
type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// How long a new connection may take to send its start request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `--stdio` keeps quiet: its stderr is the node's, as the launcher shows it.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn log(line: std::fmt::Arguments) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("loco-daemon serve: {line}");
    }
}

fn send(sink: &Sink, kind: u8, payload: &[u8]) -> bool {
    let mut w = sink.lock().unwrap_or_else(|p| p.into_inner());
    proto::write_frame(&mut *w, kind, payload).is_ok()
}

/// `serve --listen ADDR`: accepts connections until killed, one thread each.
pub fn listen(addr: &str, allow_remote: bool) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| format!("--listen {addr}: {e}"))?
        .collect();
    if !allow_remote {
        if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "--listen {addr}: {} is not a loopback address. serve runs any program a \
                 connecting launcher names, so it must only be reachable from a trusted cluster \
                 network; add --allow-remote to listen there anyway",
                a.ip()
            ));
        }
    }
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| format!("--listen {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--listen {addr}: {e}"))?;
    eprintln!("loco-daemon serve: listening on {local}");
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("loco-daemon serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        std::thread::spawn(move || {
            let peer = conn
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            if let Err(e) = serve_tcp(conn, &peer) {
                eprintln!("loco-daemon serve: connection from {peer}: {e}");
            }
        });
    }
    Ok(())
}

fn serve_tcp(conn: TcpStream, peer: &str) -> Result<(), String> {
    serve_connection(conn, peer, START_TIMEOUT, || {})
}

/// Runs the one node a launcher asks for on `conn`, which must send its
/// start request within `start_timeout`; `on_start` runs once it has.
/// Returns when the node has ended and its status has been sent.
pub fn serve_connection(
    conn: TcpStream,
    peer: &str,
    start_timeout: Duration,
    on_start: impl FnOnce(),
) -> Result<(), String> {
    let _ = conn.set_nodelay(true);
    let input = conn.try_clone().map_err(|e| e.to_string())?;
    let output = conn.try_clone().map_err(|e| e.to_string())?;
    let _ = input.set_read_timeout(Some(start_timeout));
    let sink: Sink = Arc::new(Mutex::new(Box::new(output)));
    let result = serve_one(input, sink, peer, |input: &TcpStream| {
        let _ = input.set_read_timeout(None);
        on_start();
    });
    let _ = conn.shutdown(std::net::Shutdown::Both);
    result
}

/// No log lines of our own: the node's output is all the launcher shows.
pub fn quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// `serve --stdio`: one node, on stdin and stdout (run by a launcher over ssh).
pub fn stdio() -> Result<(), String> {
    quiet();
    let sink: Sink = Arc::new(Mutex::new(Box::new(std::io::stdout())));
    // A start failure has been sent to the launcher, which reports it.
    let _ = serve_one(std::io::stdin(), sink, "stdio", |_| {});
    Ok(())
}

/// Runs the node a start request on `input` asks for; returns when it has
/// ended and its status has been sent.
fn serve_one<R: Read + Send + 'static>(
    mut input: R,
    sink: Sink,
    peer: &str,
    started: impl FnOnce(&R),
) -> Result<(), String> {
    let start = match proto::read_frame(&mut input) {
        Ok(Some((proto::START, payload))) => Start::decode(&payload),
        // What node 0's launcher says to a Slurm task it turns away.
        Ok(Some((proto::ERROR, why))) => return Err(String::from_utf8_lossy(&why).into_owned()),
        Ok(Some((kind, _))) => Err(format!("expected a start request, got frame kind {kind}")),
        Ok(None) => return Ok(()),
        Err(e) => Err(format!("reading the start request: {e}")),
    };
    let start = match start {
        Ok(s) => s,
        Err(e) => {
            send(&sink, proto::ERROR, e.as_bytes());
            return Err(e);
        }
    };
    started(&input);
    let dir = match private_dir() {
        Ok(d) => d,
        Err(e) => {
            send(&sink, proto::ERROR, e.as_bytes());
            return Err(e);
        }
    };
    let result = run_node(&start, &dir, input, &sink, peer);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = &result {
        send(&sink, proto::ERROR, e.as_bytes());
    }
    result
}

/// A fresh directory only this user can read, for the node's cluster.toml
/// and statistics.
fn private_dir() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "loco-serve-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Streams a node's pipe back as frames of `kind`.
fn pump(mut pipe: impl Read + Send + 'static, sink: Sink, kind: u8) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // The launcher gone: keep draining so the node never blocks on a full pipe.
                    let _ = send(&sink, kind, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

/// Errors are start failures (sent as ERROR); once the node runs, its end is EXIT.
fn run_node<R: Read + Send + 'static>(
    start: &Start,
    dir: &Path,
    mut input: R,
    sink: &Sink,
    peer: &str,
) -> Result<(), String> {
    let rank = start.rank as usize;
    let program = node::find_program(Path::new(&start.program)).ok_or_else(|| {
        format!(
            "{}: no such program on this machine (every node runs the same path)",
            Path::new(&start.program).display()
        )
    })?;
    let cluster_file = dir.join("cluster.toml");
    std::fs::write(&cluster_file, &start.cluster_toml)
        .map_err(|e| format!("cannot write {}: {e}", cluster_file.display()))?;
    let stats_prefix = dir.join("stats");
    let mut cmd = node::command(
        &program,
        &start.args,
        &node::NodeEnv {
            rank,
            cluster_file: &cluster_file,
            stats: start.stats,
            stats_json: start.stats_json.then_some(&stats_prefix),
        },
    );
    cmd.stdin(Stdio::null()).envs(start.env.iter().cloned());
    // If the daemon dies (this thread, which waits for the node, with it),
    // the node is unsupervised: it goes too.
    node::die_with_parent(&mut cmd);
    let cwd = Path::new(&start.cwd);
    if cwd.is_dir() {
        cmd.current_dir(cwd);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    log(format_args!(
        "{peer}: node {rank}: started {} (pid {pid})",
        program.display()
    ));
    send(sink, proto::STARTED, &pid.to_be_bytes());
    let pumps = [
        pump(
            child.stdout.take().expect("piped"),
            sink.clone(),
            proto::STDOUT,
        ),
        pump(
            child.stderr.take().expect("piped"),
            sink.clone(),
            proto::STDERR,
        ),
    ];
    // Whether the node has been reaped: after that its pid (and group id)
    // may belong to someone else and must not be signalled.
    let reaped = Arc::new(Mutex::new(false));
    {
        let reaped = reaped.clone();
        std::thread::spawn(move || {
            // A kill request, the end of the connection, or a broken one: all
            // mean the launcher no longer wants this node.
            loop {
                match proto::read_frame(&mut input) {
                    Ok(Some((proto::KILL, _))) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
            let reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
            if !*reaped {
                node::kill_group(pid);
            }
        });
    }
    wait_unreaped(pid);
    // The node's main process has ended but is not reaped yet, so its group
    // id is still ours: whatever it left running in its group goes too (and
    // stops holding its output pipes open).
    node::kill_group(pid);
    let status = {
        let mut reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
        let status = child.wait().map_err(|e| format!("wait: {e}"));
        *reaped = true;
        status
    };
    for p in pumps {
        let _ = p.join();
    }
    let raw = match status {
        Ok(s) => std::os::unix::process::ExitStatusExt::into_raw(s),
        Err(e) => {
            // Cannot happen for our own child; report it as a failure rather than hang.
            log(format_args!("{peer}: node {rank}: {e}"));
            libc::SIGKILL
        }
    };
    if start.stats_json {
        if let Ok(json) = std::fs::read(format!("{}.node{rank}", stats_prefix.display())) {
            send(sink, proto::STATS, &json);
        }
    }
    send(sink, proto::EXIT, &raw.to_be_bytes());
    log(format_args!(
        "{peer}: node {rank}: ended (wait status {raw:#x})"
    ));
    Ok(())
}

/// Waits until process `pid` (our child) has ended, leaving it unreaped.
fn wait_unreaped(pid: u32) {
    loop {
        // SAFETY: waitid(2) with WNOWAIT writes only into `info`, a local
        // siginfo_t, and does not reap the child.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}
