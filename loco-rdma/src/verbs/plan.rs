//! The verbs backend's pure logic: how transfers are cut into work requests,
//! bounds checks against a peer's region, who does an atomic on it, and the
//! control-plane messages. Nothing here touches the device, so all of it is
//! unit-tested.

use super::ffi::Endpoint;
use crate::memory::window_start;
use crate::MemoryRegion;

/// A contiguous range of the target region to transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    /// Offset in the target region.
    pub remote: u64,
    pub len: usize,
}

/// What one batch of work requests may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Bytes of the staging (bounce) buffer.
    pub staging: usize,
    /// Largest message one work request may carry (the port's max_msg_sz).
    pub max_piece: usize,
    /// Work requests the send queue holds (the queue pair's max_send_wr).
    pub max_wrs: usize,
}

/// One work request: `len` bytes between `staging` in the bounce buffer and
/// `remote` in the target region; it is bytes `seg_off..seg_off+len` of
/// segment `seg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    pub seg: usize,
    pub seg_off: usize,
    pub remote: u64,
    pub staging: usize,
    pub len: usize,
}

impl Piece {
    fn remote_end(&self) -> u64 {
        self.remote + self.len as u64
    }
}

/// Cuts segments into batches of pieces. Within a batch the pieces' staging
/// ranges are disjoint and fit the buffer, there are at most `max_wrs` of
/// them, and their remote ranges do not overlap, so the batch can be posted
/// as one chain with only the last request signaled. Batches are executed
/// one after the other (each waits for its completion), which keeps the
/// order of overlapping writes: a later segment wins.
///
/// A segment is split only where it is larger than a piece may be; one that
/// merely does not fit in what is left of the buffer starts the next batch.
/// Empty segments produce nothing.
pub(super) struct Planner<'a> {
    segs: &'a [Segment],
    limits: Limits,
    seg: usize,
    off: usize,
}

impl<'a> Planner<'a> {
    pub fn new(segs: &'a [Segment], limits: Limits) -> Self {
        let limits = Limits {
            staging: limits.staging.max(1),
            max_piece: limits.max_piece.clamp(1, limits.staging.max(1)),
            max_wrs: limits.max_wrs.max(1),
        };
        Planner {
            segs,
            limits,
            seg: 0,
            off: 0,
        }
    }

    /// Whether every byte has been planned (the batch just returned was the last).
    pub fn finished(&self) -> bool {
        match self.segs.get(self.seg) {
            None => true,
            Some(s) => self.off >= s.len && self.segs[self.seg + 1..].iter().all(|s| s.len == 0),
        }
    }

    /// Fills `batch` with the next batch; false once everything is planned.
    pub fn next_batch(&mut self, batch: &mut Vec<Piece>) -> bool {
        batch.clear();
        let Limits {
            staging,
            max_piece,
            max_wrs,
        } = self.limits;
        let mut used = 0;
        // The end of the furthest remote range so far: a piece starting at or
        // after it cannot overlap (the common case of ascending runs).
        let mut max_end = 0u64;
        while let Some(s) = self.segs.get(self.seg) {
            if self.off >= s.len {
                self.seg += 1;
                self.off = 0;
                continue;
            }
            if batch.len() == max_wrs {
                break;
            }
            let len = (s.len - self.off).min(max_piece);
            if len > staging - used {
                break;
            }
            let piece = Piece {
                seg: self.seg,
                seg_off: self.off,
                remote: s.remote + self.off as u64,
                staging: used,
                len,
            };
            if piece.remote < max_end
                && batch
                    .iter()
                    .any(|p| p.remote < piece.remote_end() && piece.remote < p.remote_end())
            {
                break;
            }
            max_end = max_end.max(piece.remote_end());
            batch.push(piece);
            used += len;
            self.off += len;
        }
        !batch.is_empty()
    }
}

/// A registered region as a peer sees it: where it is and how to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RegionInfo {
    /// Where the registered memory starts in the owner's address space.
    pub addr: u64,
    pub len: u64,
    /// The region offset `addr` holds (`MemoryRegion::starting_at`): the
    /// memory holds offsets `first .. first+len`.
    pub first: u64,
    pub rkey: u32,
    /// The owner's code stores into the region directly
    /// (`MemoryRegion::shared_with_cpu_stores`).
    pub cpu_stores: bool,
}

/// Who does a `fetch_add` or `compare_swap` on a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AtomicPath {
    /// An RDMA atomic, by the NIC (the loopback queue pair for this
    /// node's own memory).
    Nic,
    /// A CPU atomic by the target: its serving thread, asked through the
    /// tcp control plane (this node itself: the calling thread).
    TargetCpu,
}

/// How atomics on `target` are done. A NIC atomic is atomic only with
/// respect to other NIC atomics: where the owner's code stores into the
/// region itself, a store between the NIC's read and write of a word
/// (to any byte of it) would be lost, so the owner's CPU does them all.
/// Elsewhere every update of the words goes through the transport, and
/// the NIC does them without a round trip through the owner's CPU.
pub(super) fn atomic_path(target: &RegionInfo) -> AtomicPath {
    if target.cpu_stores {
        AtomicPath::TargetCpu
    } else {
        AtomicPath::Nic
    }
}

const REGION_INFO_LEN: usize = 29;
const ENDPOINT_LEN: usize = 30;
/// Bit of a region description's flags byte: `cpu_stores`.
const FLAG_CPU_STORES: u8 = 1;

impl RegionInfo {
    /// How this node describes `region`, registered at `addr` with `rkey`.
    pub fn of(region: &MemoryRegion, addr: u64, rkey: u32) -> RegionInfo {
        RegionInfo {
            addr,
            len: region.len() as u64,
            first: region.first(),
            rkey,
            cpu_stores: region.is_shared_with_cpu_stores(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REGION_INFO_LEN);
        out.extend_from_slice(&self.addr.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.first.to_le_bytes());
        out.extend_from_slice(&self.rkey.to_le_bytes());
        out.push(if self.cpu_stores { FLAG_CPU_STORES } else { 0 });
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<RegionInfo, String> {
        if bytes.len() != REGION_INFO_LEN {
            return Err(format!(
                "region description of {} bytes, expected {REGION_INFO_LEN}",
                bytes.len()
            ));
        }
        let flags = bytes[REGION_INFO_LEN - 1];
        if flags & !FLAG_CPU_STORES != 0 {
            return Err(format!(
                "region description with unknown flags {flags:#04x}"
            ));
        }
        Ok(RegionInfo {
            addr: u64_at(bytes, 0),
            len: u64_at(bytes, 8),
            first: u64_at(bytes, 16),
            rkey: u32_at(bytes, 24),
            cpu_stores: flags & FLAG_CPU_STORES != 0,
        })
    }

    /// The remote address of `len` bytes at `offset`, if they lie inside
    /// the window the region holds (`first .. first+len`). The check and
    /// its wording are `MemoryRegion`'s own.
    pub fn address_of(&self, offset: u64, len: usize) -> Result<u64, String> {
        window_start(self.first, self.len, offset, len)?;
        self.addr.checked_add(offset - self.first).ok_or_else(|| {
            format!(
                "the region's address {:#x} + {} bytes overflows",
                self.addr,
                offset - self.first
            )
        })
    }

    /// `address_of` for an offset already checked by it (a piece of a
    /// checked segment).
    pub fn checked_address(&self, offset: u64) -> u64 {
        debug_assert!(offset >= self.first && offset - self.first <= self.len);
        self.addr + (offset - self.first)
    }
}

impl Endpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENDPOINT_LEN);
        out.extend_from_slice(&self.qp_num.to_le_bytes());
        out.extend_from_slice(&self.lid.to_le_bytes());
        out.extend_from_slice(&self.psn.to_le_bytes());
        out.extend_from_slice(&self.mtu.to_le_bytes());
        out.extend_from_slice(&self.gid);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Endpoint, String> {
        if bytes.len() != ENDPOINT_LEN {
            return Err(format!(
                "queue pair description of {} bytes, expected {ENDPOINT_LEN}",
                bytes.len()
            ));
        }
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&bytes[14..30]);
        Ok(Endpoint {
            qp_num: u32_at(bytes, 0),
            lid: u16::from_le_bytes([bytes[4], bytes[5]]),
            psn: u32_at(bytes, 6),
            mtu: u32_at(bytes, 10),
            gid,
        })
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// A random 24-bit initial packet sequence number.
pub(super) fn random_psn() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    h.write_u64(nanos);
    (h.finish() as u32) & 0x00ff_ffff
}
