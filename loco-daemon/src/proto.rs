//! The launcher <-> `loco-daemon serve` protocol: one connection (or one
//! `serve --stdio` pipe pair) runs one node.
//!
//! Every message is a frame: one byte of kind, a big-endian u32 payload
//! length, the payload. The launcher sends START once, then possibly KILL;
//! the daemon answers STARTED or ERROR, then STDOUT/STDERR chunks as the node
//! writes them, then (stats JSON asked for) STATS, then EXIT with the raw
//! wait status. A connection that closes before EXIT is a lost node on the
//! launcher's side and a kill request on the daemon's.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Launcher -> daemon: what to run (payload: [`Start`]).
pub const START: u8 = 1;
/// Launcher -> daemon: kill the node's process group now (empty payload).
pub const KILL: u8 = 2;
/// Daemon -> launcher: the node is running (payload: its pid, u32).
pub const STARTED: u8 = 16;
/// Daemon -> launcher: bytes the node wrote to stdout.
pub const STDOUT: u8 = 17;
/// Daemon -> launcher: bytes the node wrote to stderr.
pub const STDERR: u8 = 18;
/// Daemon -> launcher: the node's statistics file (JSON), sent before EXIT.
pub const STATS: u8 = 19;
/// Daemon -> launcher: the node's raw wait status (i32); the last frame.
pub const EXIT: u8 = 20;
/// Daemon -> launcher: the node could not be started (UTF-8 message); the last frame.
pub const ERROR: u8 = 21;
/// Slurm task -> node 0's launcher: the first frame on a connection a
/// `loco-daemon node` task opens (payload: [`CheckIn`]); the rest of the
/// connection is this protocol, with the task as the daemon.
pub const CHECK_IN: u8 = 22;

/// The first bytes of a START payload: a version check, and a guard against
/// something that is not a LOCO launcher talking to the port.
const MAGIC: &[u8] = b"LOCO-NODE-1\0";
/// The first bytes of a CHECK_IN payload.
const CHECK_IN_MAGIC: &[u8] = b"LOCO-SLURM-1\0";
/// No frame is larger: a bad length is a broken peer, not an allocation.
const MAX_FRAME: usize = 64 << 20;

/// The start request: everything the daemon needs to run one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub rank: u32,
    /// Print statistics at exit (LOCO_STATS=1).
    pub stats: bool,
    /// Write statistics as JSON and send them back in a STATS frame.
    pub stats_json: bool,
    /// The program: a path (same path as on the launcher's machine) or a name looked up in PATH.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The launcher's working directory, used if it exists on the daemon's machine.
    pub cwd: OsString,
    /// The cluster.toml the node is to read.
    pub cluster_toml: String,
    /// Environment variables the launcher passes on (OMP_*, LOCO_*, ...).
    pub env: Vec<(OsString, OsString)>,
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    // One write per frame, so that frames from several threads sharing a
    // writer (under a lock) never interleave.
    let mut whole = Vec::with_capacity(5 + payload.len());
    whole.push(kind);
    whole.extend_from_slice(&len.to_be_bytes());
    whole.extend_from_slice(payload);
    w.write_all(&whole)?;
    w.flush()
}

/// The next frame, or `None` at a clean end of stream (between frames).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes: not a LOCO peer?"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("truncated message (a start request or check-in)".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn os(&mut self) -> Result<OsString, String> {
        Ok(OsString::from_vec(self.bytes()?))
    }
}

impl Start {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.rank.to_be_bytes());
        out.push(u8::from(self.stats) | (u8::from(self.stats_json) << 1));
        put_bytes(&mut out, self.program.as_bytes());
        put_bytes(&mut out, self.cwd.as_bytes());
        put_bytes(&mut out, self.cluster_toml.as_bytes());
        out.extend_from_slice(&(self.args.len() as u32).to_be_bytes());
        for a in &self.args {
            put_bytes(&mut out, a.as_bytes());
        }
        out.extend_from_slice(&(self.env.len() as u32).to_be_bytes());
        for (k, v) in &self.env {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        out
    }

    pub fn decode(payload: &[u8]) -> Result<Start, String> {
        let rest = payload
            .strip_prefix(MAGIC)
            .ok_or("not a LOCO start request (another version of loco-daemon?)")?;
        let mut c = Cursor(rest);
        let rank = c.u32()?;
        let flags = c.take(1)?[0];
        let program = c.os()?;
        let cwd = c.os()?;
        let cluster_toml =
            String::from_utf8(c.bytes()?).map_err(|_| "the cluster.toml is not UTF-8")?;
        let nargs = c.u32()?;
        let args = (0..nargs).map(|_| c.os()).collect::<Result<_, _>>()?;
        let nenv = c.u32()?;
        let env = (0..nenv)
            .map(|_| Ok((c.os()?, c.os()?)))
            .collect::<Result<_, String>>()?;
        if !c.0.is_empty() {
            return Err("trailing bytes after the start request".into());
        }
        Ok(Start {
            rank,
            stats: flags & 1 != 0,
            stats_json: flags & 2 != 0,
            program,
            args,
            cwd,
            cluster_toml,
            env,
        })
    }
}

/// A Slurm task reporting to node 0's launcher: which step and rank it is,
/// and where its node will listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// "JOB.STEP": a task of another step that reached this port is refused.
    pub step: String,
    pub rank: u32,
    /// The Slurm node the task runs on (SLURMD_NODENAME).
    pub host: String,
    /// The port its node will listen on.
    pub port: u16,
}

impl CheckIn {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = CHECK_IN_MAGIC.to_vec();
        put_bytes(&mut out, self.step.as_bytes());
        out.extend_from_slice(&self.rank.to_be_bytes());
        put_bytes(&mut out, self.host.as_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        out
    }

    pub fn decode(payload: &[u8]) -> Result<CheckIn, String> {
        let rest = payload
            .strip_prefix(CHECK_IN_MAGIC)
            .ok_or("not a LOCO check-in (another version of loco-daemon?)")?;
        let mut c = Cursor(rest);
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| "a check-in field is not UTF-8");
        let step = text(c.bytes()?)?;
        let rank = c.u32()?;
        let host = text(c.bytes()?)?;
        let port = c.take(2)?;
        let port = u16::from_be_bytes([port[0], port[1]]);
        if !c.0.is_empty() {
            return Err("trailing bytes after the check-in".into());
        }
        Ok(CheckIn {
            step,
            rank,
            host,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_requests_round_trip_and_garbage_is_refused() {
        let s = Start {
            rank: 3,
            stats: false,
            stats_json: true,
            program: "/usr/bin/prog".into(),
            args: vec!["a b".into(), OsString::from_vec(vec![0xff, 0])],
            cwd: "/home/x".into(),
            cluster_toml: "[[node]]\n".into(),
            env: vec![("OMP_NUM_THREADS".into(), "8".into())],
        };
        assert_eq!(Start::decode(&s.encode()), Ok(s.clone()));
        let enc = s.encode();
        assert!(Start::decode(&enc[..enc.len() - 1]).is_err());
        assert!(Start::decode(b"GET / HTTP/1.1\r\n").is_err());

        let mut wire = Vec::new();
        write_frame(&mut wire, START, &enc).unwrap();
        write_frame(&mut wire, KILL, &[]).unwrap();
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((START, enc)));
        assert_eq!(read_frame(&mut r).unwrap(), Some((KILL, vec![])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut cut = &wire[..3];
        assert!(read_frame(&mut cut).is_err());
        let mut huge = &[STDOUT, 0xff, 0xff, 0xff, 0xff][..];
        assert!(read_frame(&mut huge).is_err());
    }

    #[test]
    fn check_ins_round_trip_and_garbage_is_refused() {
        let c = CheckIn {
            step: "4711.2".into(),
            rank: 3,
            host: "node07".into(),
            port: 21003,
        };
        let enc = c.encode();
        assert_eq!(CheckIn::decode(&enc), Ok(c.clone()));
        assert!(CheckIn::decode(&enc[..enc.len() - 1]).is_err());
        assert!(CheckIn::decode(&[enc.clone(), vec![0]].concat()).is_err());
        // A start request is not a check-in, nor the other way round.
        let start = Start {
            rank: 3,
            stats: false,
            stats_json: false,
            program: "p".into(),
            args: vec![],
            cwd: "/".into(),
            cluster_toml: String::new(),
            env: vec![],
        };
        assert!(CheckIn::decode(&start.encode()).is_err());
        assert!(Start::decode(&enc).is_err());
    }
}
