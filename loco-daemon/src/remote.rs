//! The launcher's side of a node on another machine: a connection to a
//! `loco-daemon serve`, or `ssh HOST loco-daemon serve --stdio`.
//!
//! A thread reads the daemon's frames: output goes into os pipes that the
//! launcher's usual line-prefixing forwarders read, statistics into the
//! file a local node would have written, and the exit status into the
//! shared state that [`Remote::poll`] looks at.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loco_cluster::{Launch, LaunchSettings, NodeConfig};

use crate::launch::Outcome;
use crate::node;
use crate::proto::{self, Start};

/// What the daemon has said so far.
#[derive(Default)]
struct State {
    started: bool,
    exit: Option<i32>,
    error: Option<String>,
    /// The connection is over (after EXIT or ERROR, or lost).
    ended: bool,
}

enum Link {
    Tcp(TcpStream),
    Ssh(Child),
}

pub struct Remote {
    rank: usize,
    host: String,
    /// "its daemon at HOST:PORT", "its daemon on HOST (over ssh)".
    via: String,
    link: Link,
    writer: Option<Box<dyn Write + Send>>,
    state: Arc<Mutex<State>>,
}

/// The node's output streams, each with whether it goes to stderr.
pub type Outputs = Vec<(Box<dyn Read + Send>, bool)>;

impl Remote {
    /// Connects (or runs ssh), sends the start request and starts reading
    /// the daemon's answers. Whether the node really started shows in
    /// [`Remote::poll`].
    pub fn start(
        rank: usize,
        entry: &NodeConfig,
        how: &Launch,
        settings: &LaunchSettings,
        connect_timeout: Duration,
        start: &Start,
        stats_file: Option<PathBuf>,
    ) -> Result<(Remote, Outputs), String> {
        let mut outputs: Outputs = Vec::new();
        let (link, input, writer, via): (Link, Box<dyn Read + Send>, Box<dyn Write + Send>, _) =
            match how {
                Launch::Daemon(addr) => {
                    let stream = connect(addr, connect_timeout).map_err(|e| {
                        format!(
                            "cannot start node {rank}: cannot reach loco-daemon serve at {addr}: {e}"
                        )
                    })?;
                    let _ = stream.set_nodelay(true);
                    let clone = |s: &TcpStream| {
                        s.try_clone()
                            .map_err(|e| format!("cannot start node {rank}: {e}"))
                    };
                    let (input, writer) = (clone(&stream)?, clone(&stream)?);
                    (
                        Link::Tcp(stream),
                        Box::new(input),
                        Box::new(writer),
                        format!("its daemon at {addr}"),
                    )
                }
                _ => {
                    let remote_daemon = match &settings.remote_daemon {
                        Some(d) => d.clone(),
                        None => std::env::current_exe()
                            .map_err(|e| format!("cannot find loco-daemon's own path: {e}"))?
                            .display()
                            .to_string(),
                    };
                    let mut child = Command::new(&settings.ssh[0])
                        .args(&settings.ssh[1..])
                        .arg(&entry.host)
                        .arg(&remote_daemon)
                        .args(["serve", "--stdio"])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        // Ctrl-C is the launcher's to handle, as for local nodes.
                        .process_group(0)
                        .spawn()
                        .map_err(|e| {
                            format!("cannot start node {rank}: {}: {e}", settings.ssh[0])
                        })?;
                    let input = child.stdout.take().expect("piped");
                    let writer = child.stdin.take().expect("piped");
                    // What ssh (or the remote shell) says is shown as the node's.
                    outputs.push((Box::new(child.stderr.take().expect("piped")), true));
                    (
                        Link::Ssh(child),
                        Box::new(input),
                        Box::new(writer),
                        format!("its daemon on {} (over {})", entry.host, settings.ssh[0]),
                    )
                }
            };
        Self::begin(
            rank,
            &entry.host,
            via,
            (link, input, writer),
            outputs,
            start,
            stats_file,
        )
    }

    /// A node whose daemon has already connected to the launcher: a
    /// `loco-daemon node` Slurm task that checked in on `stream`. As
    /// [`Remote::start`] from the start request on.
    pub fn adopt(
        rank: usize,
        host: &str,
        stream: TcpStream,
        start: &Start,
        stats_file: Option<PathBuf>,
    ) -> Result<(Remote, Outputs), String> {
        let _ = stream.set_nodelay(true);
        let clone = |s: &TcpStream| {
            s.try_clone()
                .map_err(|e| format!("cannot start node {rank}: {e}"))
        };
        let (input, writer) = (clone(&stream)?, clone(&stream)?);
        Self::begin(
            rank,
            host,
            format!("its Slurm task on {host}"),
            (Link::Tcp(stream), Box::new(input), Box::new(writer)),
            Vec::new(),
            start,
            stats_file,
        )
    }

    /// Sends the start request on a fresh link and starts reading answers.
    fn begin(
        rank: usize,
        host: &str,
        via: String,
        (link, input, writer): (Link, Box<dyn Read + Send>, Box<dyn Write + Send>),
        mut outputs: Outputs,
        start: &Start,
        stats_file: Option<PathBuf>,
    ) -> Result<(Remote, Outputs), String> {
        let mut remote = Remote {
            rank,
            host: host.to_string(),
            via,
            link,
            writer: Some(writer),
            state: Arc::new(Mutex::new(State::default())),
        };
        let pipe = |what| os_pipe().map_err(|e| format!("cannot start node {rank}: {what}: {e}"));
        let (out_r, out_w) = pipe("stdout pipe")?;
        let (err_r, err_w) = pipe("stderr pipe")?;
        outputs.insert(0, (Box::new(out_r), false));
        outputs.insert(1, (Box::new(err_r), true));
        if let Some(w) = &mut remote.writer {
            // A failure here shows as a lost connection: the reader sees it end.
            let _ = proto::write_frame(w, proto::START, &start.encode());
        }
        let state = remote.state.clone();
        std::thread::spawn(move || read_frames(input, out_w, err_w, stats_file, &state));
        Ok((remote, outputs))
    }

    /// `Ok(None)` while the node runs; `Err` if it could not be started.
    pub fn poll(&self) -> Result<Option<Outcome>, String> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &s.error {
            return Err(format!("node {} ({}): {e}", self.rank, self.host));
        }
        if let Some(raw) = s.exit {
            return Ok(Some(Outcome::Status(ExitStatus::from_raw(raw))));
        }
        if s.ended && !s.started {
            return Err(format!(
                "node {} ({}): {} ended the connection before starting it",
                self.rank, self.host, self.via
            )
            .replacen("its daemon", "the daemon", 1));
        }
        if s.ended {
            return Ok(Some(Outcome::Lost(format!(
                "lost contact with {}",
                self.via
            ))));
        }
        Ok(None)
    }

    /// Stops writing to the daemon (the node has ended).
    pub fn close_input(&mut self) {
        self.writer = None;
    }

    /// Asks the daemon to kill the node.
    pub fn request_kill(&mut self) {
        if let Some(w) = &mut self.writer {
            let _ = proto::write_frame(w, proto::KILL, &[]);
        }
    }

    /// Waits until `deadline` for the daemon to report the killed node's
    /// end, then closes the connection.
    pub fn finish_kill(&mut self, deadline: Instant) -> Option<Outcome> {
        while Instant::now() < deadline {
            {
                let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if s.exit.is_some() || s.ended {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let outcome = self.poll().ok().flatten();
        self.close();
        outcome.or_else(|| Some(Outcome::Lost(format!("no answer from {}", self.via))))
    }

    /// Ends the connection; the daemon kills the node if it still runs.
    fn close(&mut self) {
        self.writer = None;
        match &mut self.link {
            Link::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Link::Ssh(child) => {
                // With its stdin closed the remote side ends on its own; ssh
                // then exits. Give it a moment, then make sure.
                let until = Instant::now() + Duration::from_secs(1);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if matches!(child.try_wait(), Ok(None)) {
                    node::kill_group(child.id());
                    let _ = child.kill();
                }
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.close();
    }
}

/// An os pipe (read end, write end), close-on-exec.
fn os_pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2(2) writes two descriptors into `fds`, a local array of two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

fn connect(addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address found");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn read_frames(
    mut input: Box<dyn Read + Send>,
    mut out: File,
    mut err: File,
    stats_file: Option<PathBuf>,
    state: &Mutex<State>,
) {
    let set = |f: &dyn Fn(&mut State)| f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
    loop {
        match proto::read_frame(&mut input) {
            Ok(Some((proto::STARTED, _))) => set(&|s| s.started = true),
            Ok(Some((proto::STDOUT, data))) => {
                let _ = out.write_all(&data);
            }
            Ok(Some((proto::STDERR, data))) => {
                let _ = err.write_all(&data);
            }
            Ok(Some((proto::STATS, json))) => {
                if let Some(f) = &stats_file {
                    let _ = std::fs::write(f, json);
                }
            }
            Ok(Some((proto::EXIT, raw))) if raw.len() == 4 => {
                let raw = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
                set(&|s| s.exit = Some(raw));
                break;
            }
            Ok(Some((proto::ERROR, why))) => {
                let why = String::from_utf8_lossy(&why).into_owned();
                set(&|s| s.error = Some(why.clone()));
                break;
            }
            // Unknown frames (a newer daemon) are skipped.
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    // The forwarders see the end of the node's output.
    drop(out);
    drop(err);
    set(&|s| s.ended = true);
}
