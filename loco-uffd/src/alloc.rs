//! malloc/calloc/realloc/aligned_alloc/free over the shared region, callable
//! from any node and any thread.
//!
//! Each node carves its blocks out of its own arena (its slice of the
//! region); the arena's bump pointer is a word in a small transport region,
//! so a node whose arena is full takes chunks from another's with a remote
//! compare-and-swap. Small blocks come from size classes (16-byte steps up
//! to 256 bytes, then sixteen classes per power of two up to 64 KiB, so a
//! block is at most 1/16 larger than asked: arrays of rows allocated one
//! by one stay nearly as dense as glibc lays them out, which matters to
//! loops that stream over them), carved
//! from 64 KiB chunks; larger blocks are whole page spans. Free lists are
//! per node and per class, each with its own lock: no lock is global.
//!
//! Every block has a 16-byte header just before the pointer handed out,
//! kept in shared memory so that any node can free any block:
//! `magic: u32, class: u32, offset: u32 (pointer - block start), pages: u32`.
//! The magic says allocated or free, which is how a double free or a
//! pointer that never came from this heap is caught.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use loco_rdma::{MemoryRegion, NodeId, RegionId};

use crate::{HeapError, SharedRegion};

const HEADER: u64 = 16;
const MAGIC_ALLOCATED: u32 = 0x10c0_a110;
const MAGIC_FREE: u32 = 0x10c0_f4ee;
/// `class` value of a page-span block.
const LARGE: u32 = u32::MAX;
const CHUNK: u64 = 64 << 10;
const MAX_SMALL: u64 = 64 << 10;

/// Block sizes (header included) of the small classes.
fn class_sizes() -> Vec<u64> {
    let mut sizes: Vec<u64> = (2..=16).map(|k| k * 16).collect();
    let mut base = 256;
    while base < MAX_SMALL {
        for q in 1..=16 {
            sizes.push(base + base / 16 * q);
        }
        base *= 2;
    }
    sizes
}

/// What this node's heap did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub allocations: u64,
    pub frees: u64,
    /// Bytes of arena taken (chunks and spans), this node's and others'.
    pub arena_bytes: u64,
    /// Chunks or spans taken from another node's arena.
    pub borrowed: u64,
}

/// The shared heap of one node.
pub struct SharedHeap {
    region: SharedRegion,
    classes: Vec<u64>,
    free_small: Vec<Mutex<Vec<u64>>>,
    /// Free page spans: pages -> block addresses.
    free_large: Mutex<BTreeMap<u64, Vec<u64>>>,
    /// One u64 per node: the next free offset of its arena (relative to the arena start).
    bumps: RegionId,
    _bump_word: Arc<MemoryRegion>,
    allocations: AtomicU64,
    frees: AtomicU64,
    arena_bytes: AtomicU64,
    borrowed: AtomicU64,
}

impl SharedHeap {
    /// Sets the heap up over `region`. Collective: every node calls it.
    pub fn new(region: SharedRegion) -> Result<SharedHeap, HeapError> {
        let word = Arc::new(MemoryRegion::anonymous(8).map_err(|e| HeapError::Map {
            base: 0,
            size: 8,
            why: format!("arena pointer: {e}"),
        })?);
        let bumps = region.transport().register(word.clone())?;
        let classes = class_sizes();
        Ok(SharedHeap {
            free_small: classes.iter().map(|_| Mutex::new(Vec::new())).collect(),
            classes,
            free_large: Mutex::new(BTreeMap::new()),
            bumps,
            _bump_word: word,
            region,
            allocations: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            arena_bytes: AtomicU64::new(0),
            borrowed: AtomicU64::new(0),
        })
    }

    pub fn region(&self) -> &SharedRegion {
        &self.region
    }

    pub fn stats(&self) -> HeapStats {
        HeapStats {
            allocations: self.allocations.load(Ordering::Relaxed),
            frees: self.frees.load(Ordering::Relaxed),
            arena_bytes: self.arena_bytes.load(Ordering::Relaxed),
            borrowed: self.borrowed.load(Ordering::Relaxed),
        }
    }

    /// `size` bytes, 16-byte aligned. Returns the address.
    pub fn malloc(&self, size: u64) -> Result<u64, HeapError> {
        self.allocate(size, 16)
    }

    /// `count * size` zeroed bytes.
    pub fn calloc(&self, count: u64, size: u64) -> Result<u64, HeapError> {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| HeapError::OutOfMemory {
                requested: u64::MAX,
                why: format!("calloc({count}, {size}) overflows"),
            })?;
        let p = self.malloc(total)?;
        self.fill_zero(p, total);
        Ok(p)
    }

    /// `size` bytes at a multiple of `align` (a power of two).
    pub fn aligned_alloc(&self, align: u64, size: u64) -> Result<u64, HeapError> {
        if !align.is_power_of_two() {
            return Err(HeapError::Invalid(format!(
                "alignment {align} is not a power of two"
            )));
        }
        self.allocate(size, align.max(16))
    }

    /// Grows or shrinks the block at `addr` (0: a new block) to `size`,
    /// keeping its contents; may move it. `size` 0 frees and returns 0.
    pub fn realloc(&self, addr: u64, size: u64) -> Result<u64, HeapError> {
        if addr == 0 {
            return self.malloc(size);
        }
        if size == 0 {
            self.free(addr)?;
            return Ok(0);
        }
        let old = self.usable_size(addr)?;
        if size <= old && size >= old / 2 {
            return Ok(addr);
        }
        let new = self.malloc(size)?;
        let keep = old.min(size) as usize;
        // SAFETY: both blocks are live heap blocks of at least `keep` bytes in
        // the shared region (faults are served by the region's handlers) and
        // distinct allocations cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, new as *mut u8, keep) };
        self.region.mark_dirty(new, keep as u64);
        self.free(addr)?;
        Ok(new)
    }

    /// Returns the block at `addr` to the heap (0 is a no-op).
    pub fn free(&self, addr: u64) -> Result<(), HeapError> {
        if addr == 0 {
            return Ok(());
        }
        let h = self.header("free", addr)?;
        let block = addr - h.offset as u64;
        self.write_header(
            addr,
            Header {
                magic: MAGIC_FREE,
                ..h
            },
        );
        if h.class == LARGE {
            self.free_large
                .lock()
                .unwrap()
                .entry(h.pages as u64)
                .or_default()
                .push(block);
        } else {
            self.free_small[h.class as usize]
                .lock()
                .unwrap()
                .push(block);
        }
        self.frees.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes usable at `addr` (at least what was asked for).
    pub fn usable_size(&self, addr: u64) -> Result<u64, HeapError> {
        let h = self.header("usable_size", addr)?;
        let block_size = if h.class == LARGE {
            h.pages as u64 * self.page()
        } else {
            self.classes[h.class as usize]
        };
        Ok(block_size - h.offset as u64)
    }

    fn page(&self) -> u64 {
        self.region.layout().page_size
    }

    fn allocate(&self, size: u64, align: u64) -> Result<u64, HeapError> {
        // Room for the header, and for sliding the pointer up to `align`.
        let need = size
            .checked_add(HEADER + if align > 16 { align } else { 0 })
            .ok_or_else(|| HeapError::OutOfMemory {
                requested: size,
                why: "the size overflows".into(),
            })?;
        let (block, class, pages) = if need <= MAX_SMALL {
            let class = self.classes.partition_point(|&c| c < need);
            let block = self.small_block(class)?;
            (block, class as u32, 0)
        } else {
            let pages = need.div_ceil(self.page());
            if pages > u32::MAX as u64 {
                return Err(HeapError::OutOfMemory {
                    requested: size,
                    why: "larger than a block can be".into(),
                });
            }
            (self.large_block(pages, size)?, LARGE, pages as u32)
        };
        let addr = (block + HEADER).next_multiple_of(align);
        self.write_header(
            addr,
            Header {
                magic: MAGIC_ALLOCATED,
                class,
                offset: (addr - block) as u32,
                pages,
            },
        );
        self.allocations.fetch_add(1, Ordering::Relaxed);
        Ok(addr)
    }

    fn small_block(&self, class: usize) -> Result<u64, HeapError> {
        let mut list = self.free_small[class].lock().unwrap();
        if let Some(b) = list.pop() {
            return Ok(b);
        }
        let size = self.classes[class];
        let chunk = CHUNK.max(size * 4).next_multiple_of(self.page());
        let start = self.take_arena(chunk, size)?;
        // Hand out the first block; the rest go on the list, lowest address last
        // so that they are used in address order.
        let count = chunk / size;
        list.extend((1..count).rev().map(|i| start + i * size));
        Ok(start)
    }

    fn large_block(&self, pages: u64, size: u64) -> Result<u64, HeapError> {
        {
            let mut spans = self.free_large.lock().unwrap();
            let fit = spans.range(pages..).next().map(|(&p, _)| p);
            if let Some(have) = fit {
                let list = spans.get_mut(&have).expect("key just found");
                let block = list.pop().expect("lists are never left empty");
                if list.is_empty() {
                    spans.remove(&have);
                }
                if have > pages {
                    // The tail stays free as a span of its own.
                    spans
                        .entry(have - pages)
                        .or_default()
                        .push(block + pages * self.page());
                }
                return Ok(block);
            }
        }
        self.take_arena(pages * self.page(), size)
    }

    /// Takes `bytes` from this node's arena, or else from the first other
    /// node's arena with room. Returns the region address.
    fn take_arena(&self, bytes: u64, requested: u64) -> Result<u64, HeapError> {
        let layout = self.region.layout();
        let rank = self.region.rank();
        let order = (0..layout.nodes).map(|k| (rank + k) % layout.nodes);
        for node in order {
            if let Some(offset) = self.bump(node, bytes)? {
                if node != rank {
                    self.borrowed.fetch_add(1, Ordering::Relaxed);
                }
                self.arena_bytes.fetch_add(bytes, Ordering::Relaxed);
                return Ok(layout.base + layout.arena(node).start + offset);
            }
        }
        Err(HeapError::OutOfMemory {
            requested,
            why: format!(
                "every node's arena is full (the shared region is {} bytes; raise the nodes' memory in cluster.toml)",
                layout.size
            ),
        })
    }

    /// Advances `node`'s arena pointer by `bytes` if the arena has room.
    fn bump(&self, node: NodeId, bytes: u64) -> Result<Option<u64>, HeapError> {
        let t = self.region.transport();
        let len = self.region.layout().arena(node).end - self.region.layout().arena(node).start;
        let mut seen = t.fetch_add(node, self.bumps, 0, 0)?;
        loop {
            if seen.checked_add(bytes).is_none_or(|end| end > len) {
                return Ok(None);
            }
            let found = t.compare_swap(node, self.bumps, 0, seen, seen + bytes)?;
            if found == seen {
                return Ok(Some(seen));
            }
            seen = found;
        }
    }

    fn fill_zero(&self, addr: u64, len: u64) {
        // SAFETY: addr..addr+len is a live block just allocated by this heap.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, len as usize) };
        self.region.mark_dirty(addr, len);
    }

    fn header(&self, op: &'static str, addr: u64) -> Result<Header, HeapError> {
        let not = |why: &str| HeapError::NotAllocated {
            op,
            addr,
            why: why.into(),
        };
        let base = self.region.base();
        if !self.region.contains(addr, 1) || addr < base + HEADER {
            return Err(not("outside the shared region"));
        }
        if !addr.is_multiple_of(16) {
            return Err(not("not 16-byte aligned, so not a pointer malloc returned"));
        }
        let mut raw = [0u8; HEADER as usize];
        // SAFETY: the header lies inside the region (addr - 16 >= base);
        // reading may fault, which the region's handlers serve.
        unsafe {
            std::ptr::copy_nonoverlapping((addr - HEADER) as *const u8, raw.as_mut_ptr(), raw.len())
        };
        let h = Header::decode(&raw);
        match h.magic {
            MAGIC_ALLOCATED => {}
            MAGIC_FREE => return Err(HeapError::DoubleFree(addr)),
            _ => return Err(not("no block header in front of it")),
        }
        let valid = (h.class == LARGE || (h.class as usize) < self.classes.len())
            && h.offset as u64 >= HEADER
            && addr - base >= h.offset as u64;
        if !valid {
            return Err(not("its block header is corrupt"));
        }
        Ok(h)
    }

    fn write_header(&self, addr: u64, h: Header) {
        let raw = h.encode();
        // SAFETY: addr - 16 .. addr is the header slot of a block this heap
        // owns, inside the region.
        unsafe {
            std::ptr::copy_nonoverlapping(raw.as_ptr(), (addr - HEADER) as *mut u8, raw.len())
        };
        self.region.mark_dirty(addr - HEADER, HEADER);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    magic: u32,
    class: u32,
    offset: u32,
    pages: u32,
}

impl Header {
    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, v) in [self.magic, self.class, self.offset, self.pages]
            .into_iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8; 16]) -> Header {
        let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        Header {
            magic: w(0),
            class: w(1),
            offset: w(2),
            pages: w(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_grow_and_cover_every_small_size() {
        let c = class_sizes();
        assert_eq!(&c[..4], &[32, 48, 64, 80]);
        assert!(c.windows(2).all(|w| w[0] < w[1] && w[0] % 16 == 0));
        assert_eq!(*c.last().unwrap(), MAX_SMALL);
        // Waste is bounded: each class is at most 1/16 above the previous
        // one past 256 (16 bytes below).
        assert!(c
            .windows(2)
            .all(|w| w[1] - w[0] <= 16 || w[1] * 16 <= w[0] * 17));
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            magic: MAGIC_ALLOCATED,
            class: LARGE,
            offset: 4096,
            pages: 7,
        };
        assert_eq!(Header::decode(&h.encode()), h);
    }
}
