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
/// range, so the owner can make it present first (the shared heap installs
/// home pages that were never touched, rather than let a serving thread
/// fault on them) and keep track of who reads and who writes it. What it
/// returns runs once the access is over (the owner may keep the range
/// writable until then).
pub type Prepare = Box<dyn Fn(u64, usize, Access) -> Option<Finish> + Send + Sync>;

/// Run when an access that [`Prepare`] prepared is over.
pub type Finish = Box<dyn FnOnce() + Send>;

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
    prepare: Option<Prepare>,
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
        write!(f, "MemoryRegion({:p}, {} bytes)", self.ptr, self.len)
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
            prepare: None,
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
            prepare: None,
            _mapping: None,
        }
    }

    /// Runs `prepare` before every access through the transport.
    pub fn with_prepare(mut self, prepare: Prepare) -> Self {
        self.prepare = Some(prepare);
        self
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

    /// Checks that `offset..offset+len` lies inside the region, and has the
    /// owner prepare it for access.
    pub fn check_range(&self, offset: u64, len: usize, access: Access) -> Result<usize, String> {
        self.prepared(offset, len, access)
            .map(|(start, _served)| start)
    }

    /// `check_range`, keeping the owner's preparation until the returned
    /// guard is dropped (after the access).
    fn prepared(&self, offset: u64, len: usize, access: Access) -> Result<(usize, Served), String> {
        let start = usize::try_from(offset).map_err(|_| format!("offset {offset} is too large"))?;
        match start.checked_add(len) {
            Some(end) if end <= self.len => {
                let finish = match (&self.prepare, len > 0) {
                    (Some(prepare), true) => prepare(offset, len, access),
                    _ => None,
                };
                Ok((start, Served(finish)))
            }
            _ => Err(format!(
                "range {offset}..{} is outside the region of {} bytes",
                offset as u128 + len as u128,
                self.len
            )),
        }
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
