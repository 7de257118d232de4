//! The tcp backend's wire format: fixed-size little-endian headers, each
//! followed by the operation's bytes. One request, one response, in order,
//! on one connection; a connection is used by one thread at a time.

use std::io::{self, Read, Write};

/// Bumped whenever the format changes; nodes with another version are refused.
pub const PROTOCOL_VERSION: u32 = 6;
pub const REQUEST_LEN: usize = 32;
pub const RESPONSE_LEN: usize = 16;
/// Payloads up to this size are copied behind the header and sent in one
/// write (one TCP segment with TCP_NODELAY); larger ones are sent in place.
const COALESCE_LIMIT: usize = 16 << 10;
/// Longest error message a peer may send back.
pub const MAX_MESSAGE: u64 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// region = protocol version, offset = config fingerprint, a = sender rank, b = [`Purpose`].
    Hello = 1,
    /// a = length; response carries the bytes.
    Read = 2,
    /// a = length; request carries the bytes.
    Write = 3,
    /// a = payload length, b = run count; payload = (offset u64, len u32, bytes)*.
    Scatter = 4,
    /// a = delta; response value = old value.
    FetchAdd = 5,
    /// a = expected, b = new; response value = value found.
    CompareSwap = 6,
    /// a = the caller's barrier count (for a consistency check), b = its
    /// [`Scope`].
    Barrier = 7,
    /// region = service number, a = payload length; response value = reply length.
    Call = 8,
    /// The peer is leaving on purpose: its connections closing is no failure.
    Bye = 9,
    /// A barrier that gathers: a = payload length (this node's bytes), b =
    /// its [`Scope`]; response value = reply length, the reply every
    /// node's bytes ([`encode_gathered`]).
    BarrierGather = 10,
    /// a = payload length (24: expected, new and count, u64 each);
    /// response value = reply length, the reply the values found (u64 each).
    CompareSwapRun = 11,
    /// As `Scatter`, each run followed by its mask ([`push_masked_run`]):
    /// only the bytes the mask names are written.
    ScatterMasked = 12,
    /// A write, then a read (region, offset: where to read; b = bytes to
    /// read): a = payload length; payload = write region (u32), write
    /// offset (u64), the bytes to write; the response carries the bytes
    /// read, as `Read`'s.
    WriteRead = 13,
}

impl Op {
    pub fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Hello,
            2 => Op::Read,
            3 => Op::Write,
            4 => Op::Scatter,
            5 => Op::FetchAdd,
            6 => Op::CompareSwap,
            7 => Op::Barrier,
            8 => Op::Call,
            9 => Op::Bye,
            10 => Op::BarrierGather,
            11 => Op::CompareSwapRun,
            12 => Op::ScatterMasked,
            13 => Op::WriteRead,
            _ => return None,
        })
    }
}

/// Which nodes a barrier waits for (`b` of a barrier request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every node of the cluster.
    All = 0,
    /// The compute nodes (`Transport::narrow_barriers`).
    Compute = 1,
}

impl Scope {
    pub fn from_u64(v: u64) -> Option<Scope> {
        match v {
            0 => Some(Scope::All),
            1 => Some(Scope::Compute),
            _ => None,
        }
    }
}

/// What a connection is for, said in its Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Carries operations; may be closed by the client at any time.
    Data = 0,
    /// Held open for the life of the node, never used: its closing without a
    /// Bye tells the server the peer died.
    Liveness = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub region: u32,
    pub offset: u64,
    pub a: u64,
    pub b: u64,
}

impl Request {
    pub fn new(op: Op, region: u32, offset: u64, a: u64, b: u64) -> Self {
        Request {
            op,
            region,
            offset,
            a,
            b,
        }
    }

    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut h = [0u8; REQUEST_LEN];
        h[0] = self.op as u8;
        h[4..8].copy_from_slice(&self.region.to_le_bytes());
        h[8..16].copy_from_slice(&self.offset.to_le_bytes());
        h[16..24].copy_from_slice(&self.a.to_le_bytes());
        h[24..32].copy_from_slice(&self.b.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8; REQUEST_LEN]) -> Result<Request, String> {
        let op = Op::from_u8(h[0]).ok_or_else(|| format!("unknown operation code {}", h[0]))?;
        Ok(Request {
            op,
            region: u32::from_le_bytes(h[4..8].try_into().unwrap()),
            offset: u64::from_le_bytes(h[8..16].try_into().unwrap()),
            a: u64::from_le_bytes(h[16..24].try_into().unwrap()),
            b: u64::from_le_bytes(h[24..32].try_into().unwrap()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// value = the result (old value, reply length); Read's bytes follow.
    Ok = 0,
    /// value = message length; the message follows.
    Refused = 1,
    /// A node failed (aux = which); value = message length; the message follows.
    NodeFailed = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub aux: u32,
    pub value: u64,
}

impl Response {
    pub fn ok(value: u64) -> Self {
        Response {
            status: Status::Ok,
            aux: 0,
            value,
        }
    }

    pub fn encode(&self) -> [u8; RESPONSE_LEN] {
        let mut h = [0u8; RESPONSE_LEN];
        h[0] = self.status as u8;
        h[4..8].copy_from_slice(&self.aux.to_le_bytes());
        h[8..16].copy_from_slice(&self.value.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8; RESPONSE_LEN]) -> io::Result<Response> {
        let status = match h[0] {
            0 => Status::Ok,
            1 => Status::Refused,
            2 => Status::NodeFailed,
            s => return Err(invalid(format!("unknown response status {s}"))),
        };
        Ok(Response {
            status,
            aux: u32::from_le_bytes(h[4..8].try_into().unwrap()),
            value: u64::from_le_bytes(h[8..16].try_into().unwrap()),
        })
    }
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Sends a header and its payload, in one write when the payload is small.
pub fn send(
    stream: &mut impl Write,
    scratch: &mut Vec<u8>,
    header: &[u8],
    payload: &[u8],
) -> io::Result<()> {
    if payload.len() <= COALESCE_LIMIT {
        scratch.clear();
        scratch.extend_from_slice(header);
        scratch.extend_from_slice(payload);
        stream.write_all(scratch)
    } else {
        stream.write_all(header)?;
        stream.write_all(payload)
    }
}

/// Sends an error response carrying `message`.
pub fn send_error(
    stream: &mut impl Write,
    scratch: &mut Vec<u8>,
    status: Status,
    aux: u32,
    message: &str,
) -> io::Result<()> {
    let bytes = &message.as_bytes()[..message.len().min(MAX_MESSAGE as usize)];
    let header = Response {
        status,
        aux,
        value: bytes.len() as u64,
    }
    .encode();
    send(stream, scratch, &header, bytes)
}

/// Reads an error response's message.
pub fn read_message(stream: &mut impl Read, len: u64) -> io::Result<String> {
    if len > MAX_MESSAGE {
        return Err(invalid(format!("error message of {len} bytes is too long")));
    }
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Every node's bytes from a gathering barrier, as one reply: per node in
/// rank order, a u32 length and the bytes.
pub fn encode_gathered(all: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(all.iter().map(|b| b.len() + 4).sum());
    for bytes in all {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The inverse of [`encode_gathered`], for `nodes` nodes.
pub fn decode_gathered(mut reply: &[u8], nodes: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut all = Vec::with_capacity(nodes);
    for node in 0..nodes {
        if reply.len() < 4 {
            return Err(format!("gathered barrier reply ends before node {node}"));
        }
        let len = u32::from_le_bytes(reply[..4].try_into().unwrap()) as usize;
        reply = &reply[4..];
        if reply.len() < len {
            return Err(format!("node {node}'s gathered bytes are cut short"));
        }
        all.push(reply[..len].to_vec());
        reply = &reply[len..];
    }
    if !reply.is_empty() {
        return Err(format!(
            "{} bytes after the gathered barrier reply",
            reply.len()
        ));
    }
    Ok(all)
}

/// Appends one scatter run to a payload.
pub fn push_run(payload: &mut Vec<u8>, offset: u64, data: &[u8]) -> Result<(), String> {
    let len = u32::try_from(data.len())
        .map_err(|_| format!("a scatter run of {} bytes is over 4 GiB", data.len()))?;
    payload.extend_from_slice(&offset.to_le_bytes());
    payload.extend_from_slice(&len.to_le_bytes());
    payload.extend_from_slice(data);
    Ok(())
}

/// Appends a masked run: as [`push_run`], then its mask
/// (`data.len().div_ceil(8)` bytes; bit j of byte k: byte 8k+j is written).
pub fn push_masked_run(
    payload: &mut Vec<u8>,
    offset: u64,
    data: &[u8],
    mask: &[u8],
) -> Result<(), String> {
    if mask.len() != data.len().div_ceil(8) {
        return Err(format!(
            "a masked run of {} bytes has a mask of {} bytes",
            data.len(),
            mask.len()
        ));
    }
    push_run(payload, offset, data)?;
    payload.extend_from_slice(mask);
    Ok(())
}

/// Splits a masked scatter payload back into (offset, bytes, mask) runs.
pub fn parse_masked_runs(payload: &[u8], count: u64) -> Result<Vec<MaskedRunRef<'_>>, String> {
    let mut runs = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut rest = payload;
    for i in 0..count {
        let (offset, data, after) = split_run(rest, i)?;
        let m = data.len().div_ceil(8);
        if after.len() < m {
            return Err(format!("masked scatter run {i} ends inside its mask"));
        }
        runs.push((offset, data, &after[..m]));
        rest = &after[m..];
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last scatter run", rest.len()));
    }
    Ok(runs)
}

/// A masked run as parsed: (offset, bytes, mask).
pub type MaskedRunRef<'a> = (u64, &'a [u8], &'a [u8]);

/// The first run of a scatter payload: (offset, bytes, the rest).
fn split_run(rest: &[u8], i: u64) -> Result<(u64, &[u8], &[u8]), String> {
    if rest.len() < 12 {
        return Err(format!("scatter payload ends inside run {i}"));
    }
    let offset = u64::from_le_bytes(rest[..8].try_into().unwrap());
    let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
    let rest = &rest[12..];
    if rest.len() < len {
        return Err(format!(
            "scatter run {i} claims {len} bytes, {} remain",
            rest.len()
        ));
    }
    Ok((offset, &rest[..len], &rest[len..]))
}

/// Splits a scatter payload back into (offset, bytes) runs.
pub fn parse_runs(payload: &[u8], count: u64) -> Result<Vec<(u64, &[u8])>, String> {
    let mut runs = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut rest = payload;
    for i in 0..count {
        let (offset, data, after) = split_run(rest, i)?;
        runs.push((offset, data));
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last scatter run", rest.len()));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let r = Request::new(Op::CompareSwap, 7, 0x1234_5678_9abc, u64::MAX, 42);
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        let s = Response {
            status: Status::NodeFailed,
            aux: 3,
            value: 99,
        };
        assert_eq!(Response::decode(&s.encode()).unwrap(), s);
        assert!(Request::decode(&[0xee; REQUEST_LEN]).is_err());
    }

    #[test]
    fn runs_round_trip_and_truncation_is_caught() {
        let mut p = Vec::new();
        push_run(&mut p, 5, b"abc").unwrap();
        push_run(&mut p, 100, b"").unwrap();
        push_run(&mut p, 9, b"xy").unwrap();
        let runs = parse_runs(&p, 3).unwrap();
        assert_eq!(
            runs,
            vec![(5, &b"abc"[..]), (100, &b""[..]), (9, &b"xy"[..])]
        );
        assert!(parse_runs(&p[..p.len() - 1], 3).is_err());
        assert!(parse_runs(&p, 2).is_err());
        assert!(parse_runs(&p, 4).is_err());
    }
}
