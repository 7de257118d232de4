//! Memory that remote nodes may read, write and update atomically.
//!
//! A registered region is touched by remote nodes behind the back of this
//! process's threads, exactly as an RDMA NIC would touch it. It is therefore
//! never handed out as a Rust reference: every access goes through a raw
//! pointer here, bounds-checked first. Concurrent access to the same bytes
//! from two places without synchronisation is the program's race, as it is
//! on real RDMA hardware; the bytes involved may then hold either value but
//! nothing outside the region is ever touched.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Called with (offset, len, access) before the transport touches that
/// range (offsets as peers address them: see
/// [`MemoryRegion::starting_at`]), so the owner can make it present first
/// (the shared heap installs home pages that were never touched, rather
/// than let a serving thread fault on them) and keep track of who reads
/// and who writes it. What it
/// returns runs once the access is over (the owner may keep the range
/// writable until then).
pub type Prepare = Box<dyn Fn(u64, usize, Access) -> Option<Finish> + Send + Sync>;

/// Run when an access that [`Prepare`] prepared is over.
pub type Finish = Box<dyn FnOnce() + Send>;

/// Copies `n` (at most 8) bytes from `src` to `dst` in at most three
/// stores (of 4, 2 and 1 bytes), touching no byte outside `dst..dst+n`.
///
/// # Safety
/// `src..src+n` must be readable and `dst..dst+n` writable; they must not
/// overlap.
unsafe fn copy_short(src: *const u8, dst: *mut u8, n: usize) {
    debug_assert!(n <= 8);
    let mut at = 0;
    for size in [8usize, 4, 2, 1] {
        if n - at >= size {
            // SAFETY: `at + size <= n`: inside both ranges (the caller's
            // contract); unaligned accesses through read/write_unaligned.
            unsafe {
                match size {
                    8 => dst
                        .add(at)
                        .cast::<u64>()
                        .write_unaligned(src.add(at).cast::<u64>().read_unaligned()),
                    4 => dst
                        .add(at)
                        .cast::<u32>()
                        .write_unaligned(src.add(at).cast::<u32>().read_unaligned()),
                    2 => dst
                        .add(at)
                        .cast::<u16>()
                        .write_unaligned(src.add(at).cast::<u16>().read_unaligned()),
                    _ => *dst.add(at) = *src.add(at),
                }
            }
            at += size;
        }
    }
}

/// Where `offset..offset+len` starts in memory that holds offsets
/// `first..first+size`, or why it does not lie inside. The verbs backend
/// checks a peer's region with the same function (same wording).
pub(crate) fn window_start(
    first: u64,
    size: u64,
    offset: u64,
    len: usize,
) -> Result<usize, String> {
    let end = offset as u128 + len as u128;
    if offset >= first && end <= first as u128 + size as u128 {
        // At most `size`, which is the length of memory in this process
        // (or of a peer's, which is no larger than its address space).
        return usize::try_from(offset - first)
            .map_err(|_| format!("offset {offset} is too large"));
    }
    Err(if first == 0 {
        format!("range {offset}..{end} is outside the region of {size} bytes")
    } else {
        format!(
            "range {offset}..{end} is outside the region of {size} bytes at offsets {first}..{}",
            first as u128 + size as u128
        )
    })
}

/// Runs of a scatter this close or closer (in bytes) are prepared as one
/// span ([`MemoryRegion::scatter`]): less than a 4 KiB page, so a span
/// never takes in a whole page that no run writes.
pub const SCATTER_SPAN_GAP: u64 = 4096;

/// Runs a [`Finish`] when dropped: held for the length of one access.
struct Served(Option<Finish>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(finish) = self.0.take() {
            finish();
        }
    }
}

/// What the transport is about to do to a range of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Writes and atomics.
    Write,
}

/// A range of this process's memory made available to remote nodes.
pub struct MemoryRegion {
    ptr: NonNull<u8>,
    len: usize,
    /// The offset peers address the first byte at: the memory holds
    /// offsets `first .. first+len` (see [`MemoryRegion::starting_at`]).
    first: u64,
    prepare: Option<Prepare>,
    /// See [`MemoryRegion::shared_with_cpu_stores`].
    cpu_stores: bool,
    // Keeps an owned mapping alive for as long as the region exists.
    _mapping: Option<memmap2::MmapMut>,
}

// SAFETY: the region is plain memory addressed through a raw pointer; all
// accesses are bounds-checked copies or atomic operations, so sharing the
// pointer between threads is as safe as the RDMA NIC doing the same.
unsafe impl Send for MemoryRegion {}
// SAFETY: see `Send`: no method hands out references into the memory.
unsafe impl Sync for MemoryRegion {}

impl std::fmt::Debug for MemoryRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryRegion({:p}, {} bytes at offset {})",
            self.ptr, self.len, self.first
        )
    }
}

impl MemoryRegion {
    /// Fresh zero-filled anonymous memory of `len` bytes (page-aligned).
    pub fn anonymous(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a memory region cannot be empty",
            ));
        }
        let mut mapping = memmap2::MmapMut::map_anon(len)?;
        let ptr = NonNull::new(mapping.as_mut_ptr()).expect("mmap never returns null");
        Ok(MemoryRegion {
            ptr,
            len,
            first: 0,
            prepare: None,
            cpu_stores: false,
            _mapping: Some(mapping),
        })
    }

    /// Wraps memory this process already owns (the shared heap's home pages).
    ///
    /// # Safety
    /// `ptr..ptr+len` must be mapped, readable and writable for as long as the
    /// returned region (and any transport it is registered with) exists.
    pub unsafe fn from_raw(ptr: NonNull<u8>, len: usize) -> Self {
        MemoryRegion {
            ptr,
            len,
            first: 0,
            prepare: None,
            cpu_stores: false,
            _mapping: None,
        }
    }

    /// Makes the memory hold offsets `first .. first+len` of what peers
    /// address rather than `0 .. len`: a window of a larger region (the
    /// part of the shared region that can be home on this node), so that
    /// only that part is registered (and, over RDMA, pinned). Offset
    /// `first + i` is byte `i` of the memory; offsets outside the window
    /// are refused like offsets past the end.
    pub fn starting_at(mut self, first: u64) -> Self {
        self.first = first;
        self
    }

    /// The offset the memory's first byte is addressed at (0 unless
    /// [`MemoryRegion::starting_at`] said otherwise).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Runs `prepare` before every access through the transport.
    pub fn with_prepare(mut self, prepare: Prepare) -> Self {
        self.prepare = Some(prepare);
        self
    }

    /// Declares that this process's own code stores into the region
    /// directly (plain stores or CPU atomics, on or next to words that
    /// other nodes update with transport atomics), not only through the
    /// transport. An RDMA NIC's atomic is a read and a write over PCIe,
    /// atomic only with respect to other NIC atomics: a CPU store landing
    /// in between is lost, even one to another byte of the same 8-byte
    /// word. So the verbs backend has the target's CPU do every atomic on
    /// such a region (through its control plane: a round trip instead of
    /// a NIC atomic), and keeps NIC atomics for regions whose words only
    /// the transport updates. CPU loads need no declaration (a NIC atomic
    /// writes the whole aligned word: a load sees the old or the new
    /// value), and the tcp backend ignores it (its atomics are CPU
    /// atomics).
    pub fn shared_with_cpu_stores(mut self) -> Self {
        self.cpu_stores = true;
        self
    }

    /// Whether [`MemoryRegion::shared_with_cpu_stores`] was declared.
    pub fn is_shared_with_cpu_stores(&self) -> bool {
        self.cpu_stores
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks that `offset..offset+len` lies inside the region and has the
    /// owner prepare it for access, keeping the preparation until the
    /// returned guard is dropped (after the access).
    fn prepared(&self, offset: u64, len: usize, access: Access) -> Result<(usize, Served), String> {
        let start = self.bounds(offset, len)?;
        let finish = match (&self.prepare, len > 0) {
            (Some(prepare), true) => prepare(offset, len, access),
            _ => None,
        };
        Ok((start, Served(finish)))
    }

    /// Where `offset..offset+len` starts in the memory (bytes from
    /// `ptr`), if it lies inside the window the region holds.
    fn bounds(&self, offset: u64, len: usize) -> Result<usize, String> {
        window_start(self.first, self.len as u64, offset, len)
    }

    fn atomic_at(&self, offset: u64, access: Access) -> Result<(&AtomicU64, Served), String> {
        if !offset.is_multiple_of(8) {
            return Err(format!("atomic at offset {offset} is not 8-byte aligned"));
        }
        let (start, served) = self.prepared(offset, 8, access)?;
        // SAFETY: the range is inside the region (checked above), 8-byte aligned
        // (the region's base is page-aligned or, for from_raw, the caller's
        // memory; we check the address itself below), and AtomicU64 has the
        // size and alignment of u64. The reference lives no longer than &self.
        let p = unsafe { self.ptr.as_ptr().add(start) };
        if !(p as usize).is_multiple_of(8) {
            return Err(format!("atomic at address {p:p} is not 8-byte aligned"));
        }
        // SAFETY: as above; p is aligned and in bounds.
        Ok((unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }, served))
    }

    /// Runs `f` with a pointer to `offset..offset+len`, prepared by the
    /// owner for `access` for as long as `f` runs: for a system call that
    /// reads the bytes straight out of the region (a serving thread's
    /// reply), as a NIC would. No Rust reference to the bytes is made:
    /// other threads may be writing them meanwhile.
    pub fn with_raw<R>(
        &self,
        offset: u64,
        len: usize,
        access: Access,
        f: impl FnOnce(*const u8) -> R,
    ) -> Result<R, String> {
        let (start, _served) = self.prepared(offset, len, access)?;
        // SAFETY: start + len <= self.len (checked by `prepared`).
        Ok(f(unsafe { self.ptr.as_ptr().add(start) }.cast_const()))
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the region.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let (start, _served) = self.prepared(offset, buf.len(), Access::Read)?;
        // SAFETY: source range checked in bounds; `buf` is a distinct Rust
        // buffer, so the ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(start), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies `data` into the region at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        let (start, _served) = self.prepared(offset, data.len(), Access::Write)?;
        // SAFETY: destination range checked in bounds; `data` is a Rust slice
        // and never points into a registered region handed out by us, so the
        // ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(start), data.len())
        };
        Ok(())
    }

    /// Copies each `(offset, data)` run into the region: all are checked
    /// first (a bad run changes nothing). The owner prepares each span of
    /// runs at once rather than run by run: runs in ascending order less
    /// than `SCATTER_SPAN_GAP` bytes apart make one span, so no 4 KiB
    /// block inside a span is free of written bytes (a page the owner
    /// prepares for writing is one the scatter writes).
    pub fn scatter(&self, runs: &[(u64, &[u8])]) -> Result<(), String> {
        self.scatter_with(runs, |data, dst| {
            // SAFETY: `dst` is in bounds for `data.len()` bytes (checked by
            // `scatter_with`); `data` is a Rust slice (the request's
            // payload), never memory of a registered region, so the ranges
            // cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
        })
    }

    /// As [`MemoryRegion::scatter`], writing only the bytes each run's
    /// mask names (bit j of `mask[k]`: byte `8k + j`; `data.len().div_ceil(8)`
    /// mask bytes). The others are not touched at all, not even rewritten
    /// with their own value: another thread may be writing them.
    pub fn scatter_masked(&self, runs: &[(u64, &[u8], &[u8])]) -> Result<(), String> {
        for &(_, data, mask) in runs {
            if mask.len() != data.len().div_ceil(8) {
                return Err(format!(
                    "a masked run of {} bytes has a mask of {} bytes",
                    data.len(),
                    mask.len()
                ));
            }
        }
        let plain: Vec<(u64, &[u8])> = runs.iter().map(|&(o, d, _)| (o, d)).collect();
        let masks: Vec<&[u8]> = runs.iter().map(|&(_, _, m)| m).collect();
        let mut next = 0;
        self.scatter_with(&plain, |data, dst| {
            let mask = masks[next];
            next += 1;
            for (k, chunk) in data.chunks(8).enumerate() {
                let bits = mask[k];
                if bits == 0xff && chunk.len() == 8 {
                    // SAFETY: `dst..dst+data.len()` is in bounds
                    // (`scatter_with`) and `8k+8 <= data.len()`; `data` is
                    // the request's payload, never region memory.
                    unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst.add(8 * k), 8) };
                } else {
                    // Only the named bytes (a word-wide write would rewrite
                    // the others, which another thread may be writing):
                    // each stretch of them with at most three stores.
                    let mut left = bits;
                    while left != 0 {
                        let from = left.trailing_zeros() as usize;
                        let to = (from + (left >> from).trailing_ones() as usize).min(chunk.len());
                        left &= !(((1u16 << to) - 1) as u8);
                        if from >= to {
                            break;
                        }
                        // SAFETY: as above: `8k+to <= data.len()`.
                        unsafe {
                            copy_short(chunk[from..to].as_ptr(), dst.add(8 * k + from), to - from)
                        };
                    }
                }
            }
        })
    }

    /// A scatter applying each run with `apply(data, destination)`.
    fn scatter_with(
        &self,
        runs: &[(u64, &[u8])],
        mut apply: impl FnMut(&[u8], *mut u8),
    ) -> Result<(), String> {
        for &(offset, data) in runs {
            self.bounds(offset, data.len())?;
        }
        let mut rest = runs;
        while let Some(&(first, _)) = rest.first() {
            let mut end = first;
            let mut n = 0;
            for &(offset, data) in rest {
                if n > 0 && (offset < end || offset - end >= SCATTER_SPAN_GAP) {
                    break;
                }
                end = offset + data.len() as u64;
                n += 1;
            }
            let (span, after) = rest.split_at(n);
            let (_, _served) = self.prepared(first, (end - first) as usize, Access::Write)?;
            for &(offset, data) in span {
                // SAFETY: every run was checked in bounds above, so
                // `offset - self.first` is inside the memory.
                apply(data, unsafe {
                    self.ptr.as_ptr().add((offset - self.first) as usize)
                });
            }
            rest = after;
        }
        Ok(())
    }

    /// Atomically adds `delta` to the little-endian u64 at `offset`; returns the old value.
    pub fn fetch_add(&self, offset: u64, delta: u64) -> Result<u64, String> {
        // Adding zero is how an atomic read is done remotely: it writes nothing.
        let access = if delta == 0 {
            Access::Read
        } else {
            Access::Write
        };
        let (cell, _served) = self.atomic_at(offset, access)?;
        Ok(cell.fetch_add(delta, Ordering::AcqRel))
    }

    /// Atomically replaces the u64 at `offset` with `new` if it equals `expected`;
    /// returns the value found (equal to `expected` when the swap happened).
    pub fn compare_swap(&self, offset: u64, expected: u64, new: u64) -> Result<u64, String> {
        let (cell, _served) = self.atomic_at(offset, Access::Write)?;
        Ok(
            match cell.compare_exchange(expected, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(v) | Err(v) => v,
            },
        )
    }

    /// `compare_swap` on `count` words from `offset` until one is not
    /// `expected` (see `Transport::compare_swap_run`).
    pub fn compare_swap_run(
        &self,
        offset: u64,
        count: u32,
        expected: u64,
        new: u64,
    ) -> Result<Vec<u64>, String> {
        let mut found = Vec::with_capacity(count as usize);
        for i in 0..u64::from(count) {
            let v = self.compare_swap(offset + 8 * i, expected, new)?;
            found.push(v);
            if v != expected {
                break;
            }
        }
        Ok(found)
    }

    /// Atomically loads the u64 at `offset` (for polling a word remote nodes update).
    pub fn load_u64(&self, offset: u64) -> Result<u64, String> {
        let (cell, _served) = self.atomic_at(offset, Access::Read)?;
        Ok(cell.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The (offset, len) ranges a region prepared for writing.
    type Prepared = Arc<Mutex<Vec<(u64, usize)>>>;

    /// A region of `len` bytes recording every range it prepares for writing.
    fn recording(len: usize) -> (MemoryRegion, Prepared) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let region = MemoryRegion::anonymous(len).unwrap().with_prepare(Box::new(
            move |offset, len, access| {
                if access == Access::Write {
                    log.lock().unwrap().push((offset, len));
                }
                None
            },
        ));
        (region, seen)
    }

    #[test]
    fn a_scatter_prepares_close_runs_as_one_span_and_far_ones_apart() {
        let (region, seen) = recording(64 << 10);
        let runs: Vec<(u64, &[u8])> = vec![
            (10, b"ab"),
            (100, b"cd"),
            (4000, b"ef"),
            // 4096 or more bytes after the previous run's end: a new span.
            (4002 + 4096, b"gh"),
            // Out of order: a new span too.
            (20, b"ij"),
        ];
        region.scatter(&runs).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(10, 3992), (4002 + 4096, 2), (20, 2)]
        );
        let mut got = [0u8; 2];
        for (offset, data) in runs {
            region.read(offset, &mut got).unwrap();
            assert_eq!(&got, data);
        }
    }

    #[test]
    fn a_region_starting_at_an_offset_holds_only_its_window() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let first = 3 << 20;
        let region = MemoryRegion::anonymous(8192)
            .unwrap()
            .starting_at(first)
            .with_prepare(Box::new(move |offset, len, _| {
                log.lock().unwrap().push((offset, len));
                None
            }));
        assert_eq!((region.first(), region.len()), (first, 8192));
        // Offsets inside the window: translated to the memory's bytes.
        region.write(first + 100, b"abc").unwrap();
        region.scatter(&[(first + 8190, b"yz")]).unwrap();
        let mut got = [0u8; 3];
        region.read(first + 100, &mut got).unwrap();
        assert_eq!(&got, b"abc");
        // SAFETY: byte 100 of the memory, which nothing else touches now.
        assert_eq!(unsafe { *region.as_ptr().add(100) }, b'a');
        assert_eq!(region.fetch_add(first + 8, 5).unwrap(), 0);
        assert_eq!(region.compare_swap(first + 8, 5, 7).unwrap(), 5);
        assert_eq!(region.load_u64(first + 8).unwrap(), 7);
        let raw = region
            .with_raw(first + 101, 2, Access::Read, |p| {
                // SAFETY: two bytes in bounds for as long as `f` runs.
                unsafe { [*p, *p.add(1)] }
            })
            .unwrap();
        assert_eq!(&raw, b"bc");
        // The owner is told the offsets peers use, not the memory's.
        assert!(seen.lock().unwrap().contains(&(first + 100, 3)));
        // Below the window, across either edge, past it: refused.
        let mut buf = [0u8; 16];
        for (offset, len) in [(0, 8), (first - 8, 8), (first - 1, 2), (first + 8190, 4)] {
            let e = region.read(offset, &mut buf[..len]).unwrap_err();
            assert!(e.contains("outside the region"), "{e}");
            assert!(e.contains(&format!("{first}..{}", first + 8192)), "{e}");
        }
        assert!(region.write(u64::MAX - 3, &buf).is_err());
        assert!(region.fetch_add(first - 8, 1).is_err());
        assert!(region.compare_swap(first + 8192, 0, 1).is_err());
        assert!(region.load_u64(0).is_err());
        assert!(region.with_raw(first - 1, 1, Access::Read, |_| ()).is_err());
        // A scatter with one run outside writes none of them.
        assert!(region
            .scatter(&[(first, b"no"), (first - 2, b"no")])
            .is_err());
        region.read(first, &mut buf[..2]).unwrap();
        assert_eq!(&buf[..2], &[0, 0]);
    }

    #[test]
    fn a_scatter_with_a_run_outside_the_region_writes_nothing() {
        let (region, seen) = recording(8192);
        let runs: Vec<(u64, &[u8])> = vec![(0, b"ab"), (8191, b"cd")];
        assert!(region.scatter(&runs).is_err());
        let mut got = [9u8; 2];
        region.read(0, &mut got).unwrap();
        assert_eq!(got, [0, 0]);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_masked_scatter_writes_only_the_bytes_its_masks_name() {
        let (region, seen) = recording(8192);
        region.write(0, &[0xee; 32]).unwrap();
        // Word 0: bytes 0 and 2; word 1: all; word 2: none; then 3 bytes
        // of a last partial word, the middle one named.
        let data: Vec<u8> = (1..=27).collect();
        let mask = [0b0000_0101, 0xff, 0, 0b010];
        region.scatter_masked(&[(0, &data, &mask)]).unwrap();
        let mut got = [0u8; 32];
        region.read(0, &mut got).unwrap();
        let mut want = [0xee; 32];
        want[0] = 1;
        want[2] = 3;
        want[8..16].copy_from_slice(&data[8..16]);
        want[25] = 26;
        assert_eq!(got, want);
        assert!(seen.lock().unwrap().contains(&(0, 27)));
        // A mask of the wrong length is refused before anything is written.
        assert!(region.scatter_masked(&[(0, &data, &mask[..3])]).is_err());
    }

    #[test]
    fn masked_scatters_of_every_mask_touch_exactly_the_named_bytes() {
        let (region, _) = recording(4096);
        // Every mask of one word, at every length of a last partial word.
        for len in 1..=8usize {
            for bits in 0..=255u8 {
                let bits = if len == 8 {
                    bits
                } else {
                    bits & ((1u8 << len) - 1)
                };
                region.write(64, &[0xee; 16]).unwrap();
                let data: Vec<u8> = (1..=len as u8).collect();
                region.scatter_masked(&[(64, &data, &[bits])]).unwrap();
                let mut got = [0u8; 16];
                region.read(64, &mut got).unwrap();
                for (i, &g) in got.iter().enumerate() {
                    let want = if i < len && bits & (1 << i) != 0 {
                        data[i]
                    } else {
                        0xee
                    };
                    assert_eq!(g, want, "len {len} mask {bits:08b} byte {i}");
                }
            }
        }
    }
}
