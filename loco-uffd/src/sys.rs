//! The unsafe edge of loco-uffd: anonymous mappings, madvise, and the one
//! userfaultfd ioctl the `userfaultfd` crate does not offer (UFFDIO_COPY
//! with write-protection, which installs a page and protects it atomically).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicU8};

/// An anonymous private mapping, unmapped on drop. `MAP_NORESERVE`: only
/// the pages touched cost memory, so maps as large as the region are cheap.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; every access goes through atomics or
// raw-pointer copies whose callers follow the DSM's rules.
unsafe impl Send for Mapping {}
// SAFETY: see Send.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Anywhere the kernel likes.
    pub fn anywhere(len: usize) -> io::Result<Mapping> {
        Self::map(std::ptr::null_mut(), len, 0)
    }

    /// Reserves `len` bytes exactly at `addr`, inaccessible until
    /// [`Mapping::commit`]ted, failing (EEXIST) rather than replacing
    /// anything already mapped there.
    pub fn reserve(addr: u64, len: usize) -> io::Result<Mapping> {
        let m = Self::map_with(
            addr as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_FIXED_NOREPLACE,
        )?;
        if m.ptr as u64 != addr {
            // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat it as a hint.
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        Ok(m)
    }

    /// Makes the first `len` bytes of a reservation readable and writable.
    pub fn commit(&self, len: usize) -> io::Result<()> {
        assert!(len <= self.len, "commit beyond the reservation");
        // SAFETY: the range is the start of our own mapping.
        let r = unsafe { libc::mprotect(self.ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn map(addr: *mut libc::c_void, len: usize, extra: i32) -> io::Result<Mapping> {
        Self::map_with(addr, len, libc::PROT_READ | libc::PROT_WRITE, extra)
    }

    fn map_with(addr: *mut libc::c_void, len: usize, prot: i32, extra: i32) -> io::Result<Mapping> {
        // SAFETY: an anonymous mapping request; with MAP_FIXED_NOREPLACE the
        // kernel refuses instead of clobbering an existing mapping.
        let p = unsafe {
            libc::mmap(
                addr,
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | extra,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: p.cast(), len })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Drops the pages of `offset .. offset+len`: they read as zero (or, in a
    /// userfaultfd-registered range, fault as missing) on the next touch.
    pub fn discard(&self, offset: usize, len: usize) -> io::Result<()> {
        self.advise(offset, len, libc::MADV_DONTNEED)
    }

    /// Lets the kernel take back the memory of `offset .. offset+len` when
    /// it needs it (MADV_FREE); until then the pages stay, and a later
    /// write to them takes no fault and no zeroing. Their contents are
    /// undefined (the old bytes or zeros) until written: for scratch
    /// memory that is always written in full before it is read.
    pub fn release_lazily(&self, offset: usize, len: usize) -> io::Result<()> {
        self.advise(offset, len, libc::MADV_FREE)
    }

    /// madvise(`advice`) over `offset .. offset+len` of this mapping.
    fn advise(&self, offset: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
        assert!(offset + len <= self.len, "madvise outside the mapping");
        // SAFETY: the range lies inside this mapping (asserted above); after
        // MADV_DONTNEED, MADV_FREE or MADV_POPULATE_WRITE it stays mapped
        // and valid to touch.
        let r = unsafe { libc::madvise(self.ptr.add(offset).cast(), len, advice) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes every page of `offset .. offset+len` of the mapping present
    /// and writable at once (MADV_POPULATE_WRITE, Linux 5.14): what
    /// pinning it for a NIC (`ibv_reg_mr`) does to its pages.
    pub fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        self.advise(offset, len, libc::MADV_POPULATE_WRITE)
    }

    /// Asks the kernel to keep 4 KB pages here (userfaultfd resolves faults per page).
    pub fn no_huge_pages(&self) {
        // SAFETY: advisory only, on our own mapping.
        unsafe { libc::madvise(self.ptr.cast(), self.len, libc::MADV_NOHUGEPAGE) };
    }

    /// The first `len` bytes (committed, for a reservation) as atomic words.
    pub fn atomic_u64(&self, len: usize) -> &[AtomicU64] {
        assert!(len <= self.len);
        // SAFETY: mmap returns page-aligned memory, valid and zero-initialised
        // for `len` bytes for as long as `self` lives (callers pass only the
        // committed part of a reservation); AtomicU64 has the size and
        // alignment of u64 and any bit pattern is valid.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<AtomicU64>(), len / 8) }
    }

    /// The first `len` bytes as atomic bytes.
    pub fn atomic_u8(&self, len: usize) -> &[AtomicU8] {
        assert!(len <= self.len);
        // SAFETY: as for atomic_u64; AtomicU8 has alignment 1.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<AtomicU8>(), len) }
    }

    /// The whole mapping viewed as `len / 8` atomic words.
    pub fn as_atomic_u64(&self) -> &[AtomicU64] {
        self.atomic_u64(self.len)
    }

    /// The whole mapping viewed as atomic bytes.
    pub fn as_atomic_u8(&self) -> &[AtomicU8] {
        self.atomic_u8(self.len)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and nothing refers to it past drop.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Shared memory with a file descriptor (a memfd), so that the same pages
/// can be mapped twice: once where the program sees them (the region,
/// registered with userfaultfd) and once where nothing faults (the view a
/// NIC registers and serves without the home's CPU). Sparse: only pages
/// written or populated cost memory.
pub struct SharedFile {
    fd: std::os::fd::OwnedFd,
    len: usize,
}

/// The descriptor a system call just returned, owned from now on, or the
/// call's error (a negative return).
///
/// # Safety
/// `fd` must be negative or a descriptor nothing else owns (one the
/// kernel has just returned).
unsafe fn owned_fd(fd: libc::c_int) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: owned by no one else (the caller's contract).
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `UFFD_FEATURE_MINOR_SHMEM` (Linux 5.14): minor faults (page in the
/// file, not mapped here) on shared memory, resolved by UFFDIO_CONTINUE.
pub const UFFD_FEATURE_MINOR_SHMEM: u64 = 1 << 10;
/// `UFFD_FEATURE_WP_HUGETLBFS_SHMEM` (Linux 5.19): write-protect mode on
/// shared memory.
pub const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;

impl SharedFile {
    /// A new memfd of `len` bytes, all holes.
    pub fn create(name: &str, len: usize) -> io::Result<SharedFile> {
        let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
        // SAFETY: a valid C string and plain flags; the descriptor
        // memfd_create returns is new, so owned by no one else.
        let fd = unsafe { owned_fd(libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC)) }?;
        // SAFETY: a descriptor we own; ftruncate only sets the size.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedFile { fd, len })
    }

    /// Maps the whole file over the start of `reservation` (which must be
    /// at least as long), shared: what is written there is in the file.
    pub fn map_over(&self, reservation: &Mapping) -> io::Result<()> {
        assert!(
            self.len <= reservation.len,
            "the file is longer than the reservation"
        );
        // SAFETY: MAP_FIXED replaces only the start of our own reservation
        // (nothing in it is in use yet).
        unsafe { self.map_at(reservation.ptr.cast(), libc::MAP_FIXED) }.map(|_| ())
    }

    /// A second mapping of the whole file, anywhere, shared.
    pub fn view(&self) -> io::Result<Mapping> {
        // SAFETY: no address asked for: the kernel picks a free one.
        let ptr = unsafe { self.map_at(std::ptr::null_mut(), 0) }?;
        Ok(Mapping { ptr, len: self.len })
    }

    /// mmap of the whole file, shared, readable and writable, at `addr`
    /// with `extra` flags.
    ///
    /// # Safety
    /// With MAP_FIXED, `addr .. addr+len` must be memory nothing uses.
    unsafe fn map_at(&self, addr: *mut libc::c_void, extra: i32) -> io::Result<*mut u8> {
        // SAFETY: the descriptor is ours; the caller vouches for `addr`.
        let p = unsafe {
            libc::mmap(
                addr,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | extra,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(p.cast())
    }

    /// Frees `offset .. offset+len` of the file (a hole again): every
    /// mapping of those pages is dropped, so in a userfaultfd-registered
    /// one the next touch faults as missing (not minor).
    pub fn punch(&self, offset: usize, len: usize) -> io::Result<()> {
        assert!(offset + len <= self.len, "punch outside the file");
        // SAFETY: a descriptor we own; fallocate only frees file pages.
        let r = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Copies `len` bytes between two raw addresses (page contents, twins).
///
/// # Safety
/// Both ranges must be mapped and must not overlap.
pub unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller guarantees both ranges are valid and disjoint.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
}

// From linux/userfaultfd.h: _IOWR(0xAA, 0x03, struct uffdio_copy).
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFDIO_COPY_MODE_DONTWAKE: u64 = 1 << 0;
const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

/// UFFDIO_COPY that leaves the faulting threads asleep (the caller wakes
/// them once its bookkeeping says the page is there) and, with `protect`,
/// installs the page already write-protected, so no write can slip in
/// between install and protect. On failure returns the errno and how many
/// bytes from the start were installed before it: the kernel copies page
/// by page, and a copy that stops part-way (at a page already present,
/// say) fails with EAGAIN and that count, while one that stops at its
/// first page fails with that page's own error (EEXIST: already present).
///
/// # Safety
/// `src` must be readable for `len` bytes; `dst..dst+len` must lie in a range
/// registered with `uffd` in write-protect mode.
pub unsafe fn uffd_copy_quiet(
    uffd: &impl AsRawFd,
    src: *const u8,
    dst: u64,
    len: usize,
    protect: bool,
) -> Result<(), (i32, usize)> {
    let fd: RawFd = uffd.as_raw_fd();
    let mut arg = UffdioCopy {
        dst,
        src: src as u64,
        len: len as u64,
        mode: UFFDIO_COPY_MODE_DONTWAKE | if protect { UFFDIO_COPY_MODE_WP } else { 0 },
        copy: 0,
    };
    // SAFETY: the argument struct matches the kernel's uffdio_copy layout and
    // outlives the call; the caller guarantees the ranges.
    let r = unsafe { libc::ioctl(fd, UFFDIO_COPY, &mut arg as *mut UffdioCopy) };
    if r == 0 {
        Ok(())
    } else {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        Err((errno, arg.copy.max(0) as usize))
    }
}

/// Installs `len` bytes from `src` at `dst` (whole pages of `page_size`)
/// with [`uffd_copy_quiet`]: either every page ends up present holding
/// exactly those bytes, or (on error) none of them is present. A page found
/// already present (EEXIST, or a copy stopping part-way at it) holds bytes
/// the caller did not put there: it is dropped and installed again, never
/// taken for the caller's copy. `discard` drops pages so that they fault
/// as missing again ([`Mapping::discard`] for anonymous memory; a file
/// must lose them from its page cache too, or they fault as minor).
///
/// # Safety
/// As [`uffd_copy_quiet`]; and no other thread installs or drops these
/// pages meanwhile.
pub unsafe fn uffd_install(
    uffd: &impl AsRawFd,
    src: *const u8,
    dst: *mut u8,
    len: usize,
    page_size: usize,
    protect: bool,
    discard: &dyn Fn(*mut u8, usize) -> io::Result<()>,
) -> io::Result<()> {
    let drop_pages = |offset: usize, n: usize| {
        // SAFETY: callers pass offsets inside dst..dst+len.
        let at = unsafe { dst.add(offset) };
        discard(at, n)
    };
    let mut done = 0;
    let mut stray = 0;
    while done < len {
        // SAFETY: the caller's contract, for the rest of the range.
        let copied = unsafe {
            uffd_copy_quiet(
                uffd,
                src.add(done),
                dst as u64 + done as u64,
                len - done,
                protect,
            )
        };
        match copied {
            Ok(()) => done = len,
            Err((libc::EAGAIN, n)) if n > 0 => done += n,
            Err((libc::EEXIST, _)) | Err((libc::EAGAIN, _)) if stray < 4 => {
                stray += 1;
                drop_pages(done, page_size)?;
            }
            Err((e, _)) => {
                // Nothing may stay present that the caller thinks missing.
                if done > 0 {
                    drop_pages(0, done)?;
                }
                return Err(io::Error::from_raw_os_error(e));
            }
        }
    }
    Ok(())
}

// From linux/userfaultfd.h (Linux 6.7 and 6.8; Debian 12's headers lack them).
/// Write-protect faults are resolved by the kernel itself: the first write
/// to a protected page unprotects it without a message to a handler, and
/// PAGEMAP_SCAN tells which pages were written.
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// The UFFDIO_MOVE ioctl.
pub const UFFD_FEATURE_MOVE: u64 = 1 << 16;
// _IOWR(0xAA, 0x05, struct uffdio_move).
const UFFDIO_MOVE: libc::c_ulong = 0xc028_aa05;
const UFFDIO_MOVE_MODE_DONTWAKE: u64 = 1 << 0;
const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u64 = 1 << 1;

#[repr(C)]
struct UffdioMove {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    moved: i64,
}

/// Moves the pages of `src..src+len` to `dst..dst+len` (UFFDIO_MOVE): each
/// page's mapping leaves `src` atomically, so a thread that touches it
/// afterwards faults as missing, and it keeps its contents and its
/// write-protect state at `dst`. Holes in `src` are skipped. Retries while
/// the kernel reports a page busy (pinned for an I/O under way, say).
///
/// # Safety
/// `dst..dst+len` must lie in an anonymous range registered with `uffd`
/// with nothing present in it; `src..src+len` in an anonymous range with
/// the same protection; nothing may rely on the pages staying at `src`.
pub unsafe fn uffd_move(
    uffd: &impl AsRawFd,
    src: *mut u8,
    dst: *mut u8,
    len: usize,
) -> io::Result<()> {
    let fd: RawFd = uffd.as_raw_fd();
    let mut done = 0usize;
    let mut busy = 0u32;
    while done < len {
        let mut arg = UffdioMove {
            dst: dst as u64 + done as u64,
            src: src as u64 + done as u64,
            len: (len - done) as u64,
            mode: UFFDIO_MOVE_MODE_DONTWAKE | UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
            moved: 0,
        };
        // SAFETY: the argument matches the kernel's struct uffdio_move and
        // outlives the call; the caller guarantees the ranges.
        let r = unsafe { libc::ioctl(fd, UFFDIO_MOVE, &mut arg as *mut UffdioMove) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Part of the range moved: go on after it.
            Some(libc::EAGAIN) if arg.moved > 0 => done += arg.moved as usize,
            Some(libc::EAGAIN) | Some(libc::EBUSY) if busy < 1_000_000 => {
                busy += 1;
                std::thread::yield_now();
            }
            // The kernel (6.18 at least) may move a page and still report
            // EEXIST for it: having moved it, an internal retry finds the
            // destination taken. Page by page, a page gone from `src` and
            // present at `dst` is taken as moved.
            Some(libc::EEXIST) => {
                let page = 4096;
                // SAFETY: as for the whole range (the caller's contract).
                let (from, to) = unsafe { (src.add(done), dst.add(done)) };
                match (resident(from)?, resident(to)?) {
                    (false, true) => done += page,
                    (true, false) => {
                        // SAFETY: as for the whole range, one page of it.
                        unsafe { uffd_move(uffd, from, to, page) }?;
                        done += page;
                    }
                    _ => return Err(err),
                }
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

/// Whether the page at `addr` (page-aligned) is present (mincore).
fn resident(addr: *mut u8) -> io::Result<bool> {
    let mut v = 0u8;
    // SAFETY: mincore only reads the page tables for one page of a mapped
    // range and writes one byte to `v`.
    let r = unsafe { libc::mincore(addr.cast(), 4096, &mut v) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v & 1 != 0)
}

// From linux/fs.h (Linux 6.7): _IOWR('f', 16, struct pm_scan_arg).
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;
const PAGE_IS_PRESENT: u64 = 1 << 3;

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// PAGEMAP_SCAN on this process's /proc/self/pagemap, for a userfaultfd
/// with WP_ASYNC: the present pages of a range written since their
/// write protection came on (or never protected), protected again in the
/// same walk of the page tables.
pub struct WrittenScanner {
    pagemap: std::fs::File,
}

impl WrittenScanner {
    pub fn open() -> io::Result<WrittenScanner> {
        Ok(WrittenScanner {
            pagemap: std::fs::File::open("/proc/self/pagemap")?,
        })
    }

    /// Appends to `out` the address ranges `[start, end)` within
    /// `from..from+len` whose pages are present and unprotected, and
    /// protects them: each page's protection comes on under the page
    /// table lock as it is reported, so a write either lands before (and
    /// is in the page when the caller reads it) or unprotects it again
    /// (and the next scan reports it). Missing pages are left alone.
    pub fn take_written(
        &self,
        from: *const u8,
        len: usize,
        out: &mut Vec<(u64, u64)>,
    ) -> io::Result<()> {
        let mut regions = [PageRegion::default(); 256];
        let end = from as u64 + len as u64;
        let mut at = from as u64;
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: at,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: the argument matches the kernel's struct pm_scan_arg,
            // and `vec` points at `vec_len` page_region entries, both living
            // across the call; the protection it applies is what the
            // caller asks for (the range is its userfaultfd's).
            let n = unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&self.pagemap),
                    PAGEMAP_SCAN,
                    &mut arg as *mut PmScanArg,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            out.extend(regions[..n as usize].iter().map(|r| (r.start, r.end)));
            if arg.walk_end <= at {
                return Err(io::Error::other("PAGEMAP_SCAN made no progress"));
            }
            at = arg.walk_end;
        }
        Ok(())
    }
}

/// An eventfd used to wake the fault handlers out of poll(2) at shutdown.
pub struct Wakeup(RawFd);

impl Wakeup {
    pub fn new() -> io::Result<Wakeup> {
        // SAFETY: plain syscall creating a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Wakeup(fd))
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our own eventfd.
        unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.0
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// One thread's wait for a descriptor that several threads wait on (the
/// userfaultfd), or for a stop signal. Each waiter has an epoll instance
/// holding the shared descriptor with EPOLLEXCLUSIVE, so an event wakes
/// one idle waiter, not all of them: with `poll` every fault woke every
/// fault thread, and on one CPU the ones with nothing to do cost the
/// faulting thread about 5 µs (the region bench's cold fault, pinned).
/// An event that finds every waiter busy stays ready for the first to
/// come back.
pub struct ExclusiveWait {
    epoll: std::os::fd::OwnedFd,
}

impl ExclusiveWait {
    pub fn new(shared: RawFd, stop: RawFd) -> io::Result<ExclusiveWait> {
        // SAFETY: plain system call; the descriptor it returns is new, so
        // owned by no one else.
        let epoll = unsafe { owned_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC)) }?;
        for (target, flags, tag) in [
            (shared, libc::EPOLLIN | libc::EPOLLEXCLUSIVE, 0u64),
            (stop, libc::EPOLLIN, 1u64),
        ] {
            let mut event = libc::epoll_event {
                events: flags as u32,
                u64: tag,
            };
            // SAFETY: both descriptors are open (the caller's); the event
            // is a valid epoll_event for the call's duration.
            let r = unsafe {
                libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, target, &mut event)
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(ExclusiveWait { epoll })
    }

    /// Waits until the shared descriptor or the stop descriptor is
    /// readable. Returns which: (shared, stop).
    pub fn wait(&self) -> io::Result<(bool, bool)> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: `events` has room for the 2 events asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 2, -1) };
            if n >= 0 {
                let got = &events[..n as usize];
                return Ok((
                    got.iter().any(|e| e.u64 == 0),
                    got.iter().any(|e| e.u64 == 1),
                ));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uffdio_copy_number_matches_the_kernel_layout() {
        // _IOWR(type 0xAA, nr 0x03, size 40): dir 3 << 30 | size << 16 | type << 8 | nr.
        let expected =
            (3u64 << 30) | ((std::mem::size_of::<UffdioCopy>() as u64) << 16) | (0xAA << 8) | 0x03;
        assert_eq!(std::mem::size_of::<UffdioCopy>(), 40);
        let number: u64 = UFFDIO_COPY;
        assert_eq!(number, expected);
    }

    #[test]
    fn reservation_refuses_to_replace_and_commits_its_start() {
        let a = Mapping::anywhere(1 << 16).unwrap();
        let e = Mapping::reserve(a.ptr() as u64, 1 << 16)
            .err()
            .expect("must refuse");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        let hint = a.ptr() as u64;
        drop(a);
        let r = Mapping::reserve(hint, 1 << 16).unwrap();
        r.commit(4096).unwrap();
        r.atomic_u8(4096)[4095].store(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn discard_zeroes_anonymous_pages() {
        let m = Mapping::anywhere(8192).unwrap();
        let bytes = m.as_atomic_u8();
        bytes[5].store(7, std::sync::atomic::Ordering::Relaxed);
        m.discard(0, 4096).unwrap();
        assert_eq!(bytes[5].load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// A read-ahead install over pages of which one is already present
    /// (with other bytes): every page must end up with the fetched bytes.
    #[test]
    fn install_replaces_a_page_found_present() {
        use userfaultfd::{RegisterMode, UffdBuilder};
        const PAGE: usize = 4096;
        let uffd = UffdBuilder::new()
            .close_on_exec(true)
            .non_blocking(true)
            .user_mode_only(false)
            .create()
            .expect("userfaultfd");
        let m = Mapping::anywhere(4 * PAGE).unwrap();
        uffd.register_with_mode(m.ptr().cast(), 4 * PAGE, RegisterMode::MISSING)
            .unwrap();
        // SAFETY: page 1 of our registered mapping, not present yet.
        unsafe { uffd.zeropage(m.ptr().add(PAGE).cast(), PAGE, true) }.unwrap();
        let fetched = vec![0xabu8; 4 * PAGE];
        install_at_start(&uffd, &m, &fetched, false);
        let bytes = m.as_atomic_u8();
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(
                b.load(std::sync::atomic::Ordering::Relaxed),
                0xab,
                "byte {i}"
            );
        }
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_layouts() {
        assert_eq!(std::mem::size_of::<UffdioMove>(), 40);
        assert_eq!(UFFDIO_MOVE, (3 << 30) | (40 << 16) | (0xAA << 8) | 0x05);
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
        assert_eq!(
            PAGEMAP_SCAN,
            (3 << 30) | (96 << 16) | ((b'f' as libc::c_ulong) << 8) | 16
        );
    }

    /// Installs `src` at the start of `m` (registered with `uffd`, those
    /// pages not present), protected or not, with [`uffd_install`].
    fn install_at_start(uffd: &userfaultfd::Uffd, m: &Mapping, src: &[u8], protect: bool) {
        assert!(src.len() <= m.len);
        // SAFETY: the range is the start of `m`, registered with `uffd`
        // by the caller, and no other thread touches it.
        unsafe {
            uffd_install(
                uffd,
                src.as_ptr(),
                m.ptr(),
                src.len(),
                4096,
                protect,
                &|p, n| m.discard(p as usize - m.ptr() as usize, n),
            )
        }
        .expect("install");
    }

    /// An event on a descriptor two threads wait on wakes one of them;
    /// the stop signal wakes both.
    #[test]
    fn an_event_wakes_one_exclusive_waiter_and_stop_wakes_all() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use std::sync::Arc;
        let shared = Arc::new(Wakeup::new().unwrap());
        let stop = Arc::new(Wakeup::new().unwrap());
        let woken = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (shared, stop) = (shared.clone(), stop.clone());
                let (woken, stopped) = (woken.clone(), stopped.clone());
                std::thread::spawn(move || {
                    let waiter = ExclusiveWait::new(shared.fd(), stop.fd()).unwrap();
                    loop {
                        let (event, end) = waiter.wait().unwrap();
                        if end {
                            stopped.fetch_add(1, SeqCst);
                            return;
                        }
                        if event {
                            woken.fetch_add(1, SeqCst);
                            // Busy with it for a while, as a fault thread is.
                            std::thread::sleep(std::time::Duration::from_millis(300));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        shared.signal();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(woken.load(SeqCst), 1, "one event woke both waiters");
        stop.signal();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(stopped.load(SeqCst), 2);
    }

    /// The next page fault on `uffd` (non-blocking), within 10 s.
    fn next_fault(uffd: &userfaultfd::Uffd) -> (userfaultfd::FaultKind, usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(userfaultfd::Event::Pagefault { kind, addr, .. })) = uffd.read_event() {
                return (kind, addr as usize);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("no page fault within 10 s");
    }

    /// What home memory in a shared file rests on. Populating (as pinning
    /// for a NIC does) the second view of a file whose first mapping is
    /// registered with a userfaultfd needs no fault handler; the first
    /// mapping then takes a minor fault on that page, and UFFDIO_CONTINUE
    /// maps the bytes written through the view; once the page is punched
    /// out of the file, a touch faults as missing and the view reads zeros.
    #[test]
    fn a_files_second_view_fills_without_a_handler_and_the_first_faults_minor() {
        use std::sync::atomic::Ordering::SeqCst;
        use userfaultfd::{FaultKind, FeatureFlags, RegisterMode, UffdBuilder};
        const PAGE: usize = 4096;
        let uffd = UffdBuilder::new()
            .close_on_exec(true)
            .non_blocking(true)
            .user_mode_only(false)
            .require_features(
                FeatureFlags::MISSING_SHMEM
                    | FeatureFlags::from_bits_retain(UFFD_FEATURE_MINOR_SHMEM),
            )
            .create()
            .expect("userfaultfd with minor faults on shared memory (Linux 5.14)");
        let file = SharedFile::create("loco-test", 2 * PAGE).unwrap();
        let region = Mapping::anywhere(2 * PAGE).unwrap();
        file.map_over(&region).unwrap();
        uffd.register_with_mode(
            region.ptr().cast(),
            2 * PAGE,
            RegisterMode::MISSING | RegisterMode::MINOR,
        )
        .unwrap();
        let view = file.view().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            view.populate(0, view.len).unwrap();
            view.as_atomic_u8()[5].store(42, SeqCst);
            tx.send(view).unwrap();
        });
        let view = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("populating the second view waited for a fault handler");
        let at = region.ptr() as usize;
        let read = move || {
            // SAFETY: `region` outlives the readers (joined before it is
            // dropped) and its first page is mapped.
            unsafe { std::ptr::read_volatile((at + 5) as *const u8) }
        };
        let reader = std::thread::spawn(read);
        let (kind, addr) = next_fault(&uffd);
        assert!(matches!(kind, FaultKind::Minor), "{kind:?}");
        assert_eq!(addr & !(PAGE - 1), at);
        uffd.r#continue(at as *mut libc::c_void, PAGE, true)
            .unwrap();
        assert_eq!(reader.join().unwrap(), 42);
        file.punch(0, PAGE).unwrap();
        let reader = std::thread::spawn(read);
        let (kind, _) = next_fault(&uffd);
        assert!(matches!(kind, FaultKind::Missing), "{kind:?}");
        // SAFETY: the first page of our registered mapping, not present.
        unsafe { uffd.zeropage(at as *mut libc::c_void, PAGE, true) }.unwrap();
        assert_eq!(reader.join().unwrap(), 0);
        // The zeros are the file's page: the view sees what the region writes.
        // SAFETY: mapped now, and no other thread touches it.
        unsafe { std::ptr::write_volatile((at + 5) as *mut u8, 7) };
        assert_eq!(view.as_atomic_u8()[5].load(SeqCst), 7);
    }

    /// A userfaultfd with WP_ASYNC and MOVE over `pages` pages, or None on
    /// a kernel without them (older than 6.8).
    fn async_uffd(pages: usize) -> Option<(userfaultfd::Uffd, Mapping)> {
        use userfaultfd::{FeatureFlags, RegisterMode, UffdBuilder};
        let uffd = UffdBuilder::new()
            .close_on_exec(true)
            .non_blocking(true)
            .user_mode_only(false)
            .require_features(
                FeatureFlags::PAGEFAULT_FLAG_WP
                    | FeatureFlags::from_bits_retain(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_MOVE),
            )
            .create()
            .ok()?;
        let m = Mapping::anywhere(pages * 4096).unwrap();
        m.no_huge_pages();
        uffd.register_with_mode(
            m.ptr().cast(),
            pages * 4096,
            RegisterMode::MISSING | RegisterMode::WRITE_PROTECT,
        )
        .unwrap();
        Some((uffd, m))
    }

    /// The pages a scan reports, as page numbers from `m`'s start.
    fn written_pages(scanner: &WrittenScanner, m: &Mapping, pages: usize) -> Vec<usize> {
        let mut ranges = Vec::new();
        scanner
            .take_written(m.ptr(), pages * 4096, &mut ranges)
            .unwrap();
        let base = m.ptr() as u64;
        ranges
            .into_iter()
            .flat_map(|(a, b)| ((a - base) / 4096) as usize..((b - base) / 4096) as usize)
            .collect()
    }

    /// What the release consistency of WP_ASYNC rests on: a scan reports
    /// exactly the written present pages (missing ones never), and
    /// protects them again, so the next scan reports only pages written
    /// after it.
    #[test]
    fn scan_reports_exactly_the_pages_written_since_the_last_scan() {
        let Some((uffd, m)) = async_uffd(16) else {
            eprintln!("skipped: this kernel has no UFFD_FEATURE_WP_ASYNC/MOVE");
            return;
        };
        let scanner = WrittenScanner::open().unwrap();
        let fill = vec![1u8; 8 * 4096];
        install_at_start(&uffd, &m, &fill, true);
        assert_eq!(written_pages(&scanner, &m, 16), Vec::<usize>::new());
        let bytes = m.as_atomic_u8();
        bytes[2 * 4096 + 7].store(9, std::sync::atomic::Ordering::Relaxed);
        bytes[5 * 4096].store(9, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(written_pages(&scanner, &m, 16), vec![2, 5]);
        assert_eq!(written_pages(&scanner, &m, 16), Vec::<usize>::new());
        bytes[5 * 4096 + 1].store(3, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(written_pages(&scanner, &m, 16), vec![5]);
    }

    /// An invalidation under WP_ASYNC moves pages out: the destination gets
    /// their bytes, the source holes are skipped, and a moved-back page
    /// returns with its bytes.
    #[test]
    fn move_takes_pages_out_and_back() {
        let Some((uffd, m)) = async_uffd(8) else {
            eprintln!("skipped: this kernel has no UFFD_FEATURE_WP_ASYNC/MOVE");
            return;
        };
        let scratch = Mapping::anywhere(8 * 4096).unwrap();
        scratch.no_huge_pages();
        uffd.register_with_mode(
            scratch.ptr().cast(),
            8 * 4096,
            userfaultfd::RegisterMode::MISSING | userfaultfd::RegisterMode::WRITE_PROTECT,
        )
        .unwrap();
        let fill: Vec<u8> = (0..4 * 4096).map(|i| (i / 4096 + 1) as u8).collect();
        install_at_start(&uffd, &m, &fill, true);
        // Pages 0..6, of which 4 and 5 are holes.
        // SAFETY: both ranges are ours and registered; scratch is empty.
        unsafe { uffd_move(&uffd, m.ptr(), scratch.ptr(), 6 * 4096) }.unwrap();
        let moved = scratch.as_atomic_u8();
        for page in 0..4 {
            assert_eq!(
                moved[page * 4096 + 100].load(std::sync::atomic::Ordering::Relaxed),
                page as u8 + 1
            );
        }
        // The source pages are gone: installing there again succeeds.
        let again = vec![0xeeu8; 4096];
        // SAFETY: page 3 of the registered mapping, moved away (missing).
        unsafe {
            uffd_copy_quiet(
                &uffd,
                again.as_ptr(),
                m.ptr() as u64 + 3 * 4096,
                4096,
                false,
            )
        }
        .expect("the moved page's place is empty");
        // SAFETY: page 1 back from scratch into its empty place.
        unsafe { uffd_move(&uffd, scratch.ptr().add(4096), m.ptr().add(4096), 4096) }.unwrap();
        let bytes = m.as_atomic_u8();
        assert_eq!(
            bytes[4096 + 5].load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        assert_eq!(
            bytes[3 * 4096 + 5].load(std::sync::atomic::Ordering::Relaxed),
            0xee
        );
    }
}
