//! Write-back batches: the bytes a release, an acquire or an eviction
//! sends home, gathered per home node, then one scatter per home.

use loco_rdma::{MaskedRun, NodeId, RegionId, Run, Transport};

use crate::dirty::changed_byte_masks;
use crate::sys;
use crate::HeapError;

/// Modifications bound for each home node, gathered before sending.
pub(super) struct Batch {
    per_node: Vec<NodeBatch>,
    /// Runs carry masks of the bytes to write (`push_masked_from`), sent
    /// with `Transport::scatter_masked`; else plain runs.
    masked: bool,
    /// Bytes the runs write (masked runs: the bytes their masks name).
    changed: u64,
}

/// The bytes and masks for one home node, and its runs as (region
/// offset, start in `data`, length, start in `masks`).
#[derive(Default)]
struct NodeBatch {
    data: Vec<u8>,
    masks: Vec<u8>,
    runs: Vec<(u64, usize, usize, usize)>,
}

impl Batch {
    pub(super) fn new(nodes: usize, masked: bool) -> Batch {
        Batch {
            per_node: (0..nodes).map(|_| NodeBatch::default()).collect(),
            masked,
            changed: 0,
        }
    }

    /// Whether runs carry masks (`push_masked`), rather than `push_from`'s
    /// plain runs.
    pub(super) fn masked(&self) -> bool {
        self.masked
    }

    /// Adds the `len` bytes at `src` as a run for `home` at `offset`.
    ///
    /// # Safety
    /// `src` must be readable for `len` bytes (a page that other threads
    /// may be writing: what is copied is a snapshot).
    pub(super) unsafe fn push_from(
        &mut self,
        home: NodeId,
        offset: u64,
        src: *const u8,
        len: usize,
    ) {
        let b = &mut self.per_node[home];
        b.runs.push((offset, b.data.len(), len, b.masks.len()));
        let at = b.data.len();
        b.data.resize(at + len, 0);
        // SAFETY: `src` is readable for `len` bytes (the caller's
        // contract) and `data[at..]` was just made that long.
        unsafe { sys::copy_bytes(src, b.data.as_mut_ptr().add(at), len) };
        self.changed += len as u64;
    }

    /// Adds the bytes of `page` (at region offset `base`) that differ from
    /// `twin` as masked runs for `home`: runs of whole words that take in
    /// up to `gap_words` unchanged words rather than end, each with the
    /// mask of its changed bytes (bit j of a mask byte: byte j of its
    /// word). The page is read once, into the batch: the masks and the
    /// bytes sent come from that one snapshot, so a byte a mask leaves out
    /// equals the twin (which takes whole runs once they are sent), even
    /// if another thread writes the page meanwhile.
    pub(super) fn push_changed_page(
        &mut self,
        home: NodeId,
        base: u64,
        page: &[u8],
        twin: &[u8],
        gap_words: usize,
    ) {
        let b = &mut self.per_node[home];
        let at = b.data.len();
        b.data.extend_from_slice(page);
        let mask_at = b.masks.len();
        b.masks.extend(changed_byte_masks(&b.data[at..], twin));
        let masks = &b.masks[mask_at..];
        let words = masks.len();
        let mut k = 0;
        while k < words {
            if masks[k] == 0 {
                k += 1;
                continue;
            }
            let start = k;
            let mut end = k + 1;
            loop {
                let mut j = end;
                while j < words && masks[j] == 0 && j - end < gap_words {
                    j += 1;
                }
                if j < words && masks[j] != 0 {
                    end = j + 1;
                } else {
                    break;
                }
            }
            b.runs.push((
                base + 8 * start as u64,
                at + 8 * start,
                8 * (end - start),
                mask_at + start,
            ));
            self.changed += masks[start..end]
                .iter()
                .map(|m| u64::from(m.count_ones()))
                .sum::<u64>();
            k = end;
        }
    }

    /// Runs collected so far, for every home.
    pub(super) fn run_count(&self) -> usize {
        self.per_node.iter().map(|b| b.runs.len()).sum()
    }

    /// Bytes collected so far (runs' lengths), for every home.
    pub(super) fn bytes(&self) -> usize {
        self.per_node.iter().map(|b| b.data.len()).sum()
    }

    /// Every run, as (region offset, bytes). A masked run's bytes that
    /// its mask does not name are the twin's (what the home has).
    pub(super) fn runs(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.per_node.iter().flat_map(|b| {
            b.runs
                .iter()
                .map(move |&(offset, start, len, _)| (offset, &b.data[start..start + len]))
        })
    }

    /// One scatter per home node. Returns (bytes written, runs) sent.
    pub(super) fn send(
        &self,
        transport: &dyn Transport,
        region: RegionId,
    ) -> Result<(u64, u64), HeapError> {
        let mut count = 0;
        for (node, b) in self.per_node.iter().enumerate() {
            if b.runs.is_empty() {
                continue;
            }
            let sent = if self.masked {
                let runs: Vec<MaskedRun> = b
                    .runs
                    .iter()
                    .map(|&(offset, start, len, m)| MaskedRun {
                        offset,
                        data: &b.data[start..start + len],
                        mask: &b.masks[m..m + len.div_ceil(8)],
                    })
                    .collect();
                transport.scatter_masked(node, region, &runs)
            } else {
                let runs: Vec<Run> = b
                    .runs
                    .iter()
                    .map(|&(offset, start, len, _)| Run {
                        offset,
                        data: &b.data[start..start + len],
                    })
                    .collect();
                transport.scatter(node, region, &runs)
            };
            sent.map_err(HeapError::Transport)?;
            count += b.runs.len() as u64;
        }
        Ok((self.changed, count))
    }
}
