//! Write notices: how an acquire learns which cached pages another node may
//! have changed, so that it drops only those (the cost model the memory model asks for: data
//! nobody wrote stays cached across barriers and locks).
//!
//! Every node keeps a log of the pages it changed at their homes: the pages
//! a release, an invalidation or an eviction sent bytes to, the pages its
//! remote atomics changed, and its own home pages that it wrote while other
//! nodes may hold copies. A page enters the log only after its bytes are at
//! the home (so a node that sees the notice and fetches the page again gets
//! them), and before the release that sent them returns. The log lives in
//! memory registered with the transport, and an acquire reads every other
//! node's log from where it last stopped, with one remote read per node
//! (more only when a node logged more than a read's worth since).
//!
//! Memory nodes (cluster.toml's `role = "memory"`) run no program code, so
//! they log nothing: nobody reads their logs, and their parts of a
//! gathering barrier (which they take no part in) are empty.
//!
//! That makes invalidation transitive with no vector clocks: whatever chain
//! of barriers and locks made a release happen before an acquire, the
//! release's notices were in its node's log before the chain began, and the
//! acquire reads every node's log after the chain ended.
//!
//! The log is a header word (the number of the next entry) and a ring of
//! `CAPACITY` entries; entry number `s` (from 1) sits in slot
//! `(s - 1) % CAPACITY` and holds `(s as u32) << 32 | page`. A reader
//! knows the next number it expects from each node: an entry with that
//! number is new, one with an older number means the writer has not got
//! that far, and one with a newer number means the writer lapped the reader
//! (more than `CAPACITY` notices since its last acquire): then the reader
//! drops every cached page, as if it knew nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use loco_rdma::{MemoryRegion, NodeId, RegionId, Transport};

use crate::HeapError;

/// Entries in each node's ring (8 bytes each, backed only once written).
pub const CAPACITY: u64 = 1 << 20;
/// Entries the first remote read of a node's log asks for (most acquires
/// find few or none), and the most any read asks for: each read that
/// comes back full doubles the next.
const FIRST_WINDOW: u64 = 32;
const WINDOW: u64 = 512;
/// Where the ring starts, after the header word (its own cache line).
const RING: u64 = 64;

/// What an acquire learned from the other nodes' logs.
pub enum Learned {
    /// The pages they changed since this node last looked (possibly with
    /// repeats, and possibly pages this node does not cache).
    Pages(Vec<u32>),
    /// Some node logged more than the ring holds since: assume everything changed.
    Everything,
}

pub struct NoticeLog {
    /// The other nodes that may log notices (every other node but the
    /// memory nodes): the logs an acquire reads.
    others: Vec<NodeId>,
    region: RegionId,
    mem: Arc<MemoryRegion>,
    /// Number of the next entry this node appends (from 1).
    next: Mutex<u64>,
    /// Per node, the number of the next entry this node has not read.
    seen: Mutex<Vec<u64>>,
    /// Number of the first entry this node has not yet given a gathering barrier.
    sent: Mutex<u64>,
}

fn entry(seq: u64, page: u32) -> u64 {
    ((seq as u32 as u64) << 32) | page as u64
}

/// How an entry found in a slot compares with the one expected there.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    Expected(u32),
    NotYetWritten,
    Overwritten,
}

fn classify(found: u64, expected: u64) -> Slot {
    let seq = (found >> 32) as u32;
    match seq.wrapping_sub(expected as u32) as i32 {
        0 => Slot::Expected(found as u32),
        d if d < 0 => Slot::NotYetWritten,
        _ => Slot::Overwritten,
    }
}

impl NoticeLog {
    /// Registers this node's log with the transport. Collective: every node
    /// calls it at the same point of its start-up (regions are numbered in
    /// the order they are registered).
    pub fn new(transport: &dyn Transport) -> Result<NoticeLog, HeapError> {
        let mem = Arc::new(
            MemoryRegion::anonymous((RING + CAPACITY * 8) as usize).map_err(|e| {
                HeapError::Map {
                    base: 0,
                    size: RING + CAPACITY * 8,
                    why: format!("write-notice log: {e}"),
                }
            })?,
        );
        let region = transport
            .register(mem.clone())
            .map_err(HeapError::Transport)?;
        let nodes = transport.num_nodes();
        let rank = transport.rank();
        Ok(NoticeLog {
            others: (0..nodes)
                .filter(|&n| n != rank && !transport.is_memory_node(n))
                .collect(),
            region,
            mem,
            next: Mutex::new(1),
            seen: Mutex::new(vec![1; nodes]),
            sent: Mutex::new(1),
        })
    }

    /// The header (index 0) or a ring slot (1 + slot), as an atomic word.
    fn word(&self, index: usize) -> &AtomicU64 {
        // SAFETY: the region is RING + CAPACITY * 8 bytes of page-aligned
        // memory owned by `mem`, which lives as long as `self`; callers pass
        // 0 or 1 + a slot < CAPACITY, so the word is inside it, aligned.
        unsafe { AtomicU64::from_ptr(self.mem.as_ptr().cast::<u64>().add(index)) }
    }

    fn slot(&self, seq: u64) -> &AtomicU64 {
        self.word((RING / 8) as usize + ((seq - 1) % CAPACITY) as usize)
    }

    /// Logs `pages` as changed at their homes. Call only once their bytes
    /// are there.
    pub fn append(&self, pages: impl IntoIterator<Item = u32>) {
        let mut next = self.next.lock().unwrap();
        for page in pages {
            // Release: a reader that sees the entry (a remote read of this
            // memory) sees it whole; the transport orders the rest.
            self.slot(*next)
                .store(entry(*next, page), Ordering::Release);
            *next += 1;
        }
        self.word(0).store(*next, Ordering::Release);
    }

    /// Reads every other node's new entries.
    pub fn learn(&self, transport: &dyn Transport) -> Result<Learned, HeapError> {
        let mut seen = self.seen.lock().unwrap();
        let mut pages = Vec::new();
        for &node in &self.others {
            if !self.read_log(transport, node, &mut seen, &mut pages)? {
                return self.lapped(transport, &mut seen);
            }
        }
        Ok(Learned::Pages(pages))
    }

    /// Reads `node`'s entries from `seen[node]` on into `pages`. False if
    /// the node lapped this one.
    fn read_log(
        &self,
        transport: &dyn Transport,
        node: NodeId,
        seen: &mut [u64],
        pages: &mut Vec<u32>,
    ) -> Result<bool, HeapError> {
        let mut buf = vec![0u8; (WINDOW * 8) as usize];
        let mut window = FIRST_WINDOW;
        loop {
            let first = (seen[node] - 1) % CAPACITY;
            let count = window.min(CAPACITY - first);
            window = (window * 2).min(WINDOW);
            let bytes = &mut buf[..(count * 8) as usize];
            transport
                .read(node, self.region, RING + first * 8, bytes)
                .map_err(HeapError::Transport)?;
            let mut got = 0;
            for chunk in bytes.chunks_exact(8) {
                let found = u64::from_le_bytes(chunk.try_into().unwrap());
                match classify(found, seen[node]) {
                    Slot::Expected(page) => {
                        pages.push(page);
                        seen[node] += 1;
                        got += 1;
                    }
                    Slot::NotYetWritten => break,
                    Slot::Overwritten => return Ok(false),
                }
            }
            if got < count {
                return Ok(true);
            }
        }
    }

    /// Some node logged more than its ring holds since this one last
    /// looked: skip what was missed (once this node has dropped everything
    /// it is up to date with every entry before each writer's current end).
    fn lapped(&self, transport: &dyn Transport, seen: &mut [u64]) -> Result<Learned, HeapError> {
        for &n in &self.others {
            let mut header = [0u8; 8];
            transport
                .read(n, self.region, 0, &mut header)
                .map_err(HeapError::Transport)?;
            seen[n] = u64::from_le_bytes(header).max(1);
        }
        Ok(Learned::Everything)
    }

    /// What this node gives a gathering barrier: the entries it appended
    /// since its last one, as (number of the first: u64, how many: u64,
    /// then a u32 page each); `u64::MAX` first if they no longer fit in the
    /// ring.
    pub fn unsent(&self) -> Vec<u8> {
        let next = *self.next.lock().unwrap();
        let mut sent = self.sent.lock().unwrap();
        let from = *sent;
        *sent = next;
        let count = next - from;
        if count > CAPACITY {
            return u64::MAX.to_le_bytes().to_vec();
        }
        let mut out = Vec::with_capacity(16 + 4 * count as usize);
        out.extend_from_slice(&from.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for seq in from..next {
            let entry = self.slot(seq).load(Ordering::Acquire);
            if classify(entry, seq) != Slot::Expected(entry as u32) {
                // Overwritten meanwhile by appends a ring ahead.
                return u64::MAX.to_le_bytes().to_vec();
            }
            out.extend_from_slice(&(entry as u32).to_le_bytes());
        }
        out
    }

    /// Every page a contribution to a gathering barrier (see `unsent`)
    /// names, and how many bytes of it the notices take (what follows is
    /// the node's own: see migrate.rs); `None` if it does not list them
    /// (its notices no longer fitted in the ring, or it is cut short). An
    /// empty part is a memory node's (the only nodes outside a gathering
    /// barrier): it names no pages, since memory nodes write nothing.
    pub fn pages_in(part: &[u8]) -> Option<(Vec<u32>, usize)> {
        if part.is_empty() {
            return Some((Vec::new(), 0));
        }
        let count = u64::from_le_bytes(part.get(8..16)?.try_into().ok()?);
        if u64::from_le_bytes(part.get(..8)?.try_into().ok()?) == u64::MAX {
            return None;
        }
        let end = 16usize.checked_add((count as usize).checked_mul(4)?)?;
        let pages = part
            .get(16..end)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Some((pages, end))
    }

    /// The bytes a contribution to a gathering barrier's notices take (0
    /// for one that gave none: a plain barrier).
    pub fn len_in(part: &[u8]) -> usize {
        let word = |at: usize| {
            part.get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        match (word(0), word(8)) {
            (Some(u64::MAX), _) => 8,
            (Some(_), Some(count)) => (16 + 4 * count as usize).min(part.len()),
            _ => 0,
        }
    }

    /// Learns from what every node gave a gathering barrier (see `unsent`);
    /// a node's entries this one has not seen and that did not come with
    /// it are read from its log as `learn` does.
    pub fn learn_gathered(
        &self,
        transport: &dyn Transport,
        parts: &[Vec<u8>],
    ) -> Result<Learned, HeapError> {
        let mut seen = self.seen.lock().unwrap();
        let mut pages = Vec::new();
        for &node in &self.others {
            let part = &parts[node];
            let word = |at: usize| {
                part.get(at..at + 8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            };
            let (Some(from), Some(count)) = (word(0), word(8)) else {
                if word(0) == Some(u64::MAX) {
                    return self.lapped(transport, &mut seen);
                }
                // Nothing usable came: read the log.
                if !self.read_log(transport, node, &mut seen, &mut pages)? {
                    return self.lapped(transport, &mut seen);
                }
                continue;
            };
            if from > seen[node] && !self.read_log(transport, node, &mut seen, &mut pages)? {
                return self.lapped(transport, &mut seen);
            }
            for (k, chunk) in part[16..].chunks_exact(4).take(count as usize).enumerate() {
                if from + k as u64 >= seen[node] {
                    pages.push(u32::from_le_bytes(chunk.try_into().unwrap()));
                }
            }
            seen[node] = seen[node].max(from + count);
        }
        Ok(Learned::Pages(pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_classified_against_the_expected_number() {
        assert_eq!(classify(entry(5, 9), 5), Slot::Expected(9));
        assert_eq!(classify(0, 1), Slot::NotYetWritten);
        assert_eq!(classify(entry(5, 9), 5 + CAPACITY), Slot::NotYetWritten);
        assert_eq!(classify(entry(5 + CAPACITY, 9), 5), Slot::Overwritten);
        // Numbers wrap at 2^32 without confusing old and new.
        let big = (1u64 << 32) + 3;
        assert_eq!(classify(entry(big, 1), big), Slot::Expected(1));
        assert_eq!(classify(entry(big - 1, 1), big), Slot::NotYetWritten);
    }
}
