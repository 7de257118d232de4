//! The shared region: demand paging through userfaultfd, and release
//! consistency over the transport.
//!
//! Every node maps the region at the same address. A page is *home* on one
//! node (its master copy lives in that node's mapping, which the transport
//! exposes to the others) and may be *cached* on others.
//!
//! - Missing-page fault on a home page: it was never touched anywhere (every
//!   remote write reaches it through its home's mapping, faulting it in
//!   there first), so it is installed as zeros.
//! - Missing-page fault on another node's page: a handler thread reads the
//!   page from its home and installs it with UFFDIO_COPY; a *twin* (the
//!   page as fetched) is kept beside it. Threads faulting on a page that is
//!   already being fetched just wait for that one fetch.
//! - Writes: instrumented code marks the dirty bitmap (see `dirty.rs`). With
//!   `track_uninstrumented`, cached pages are installed write-protected; the
//!   first write through code that did not mark (libc, prebuilt libraries)
//!   faults once, flags the page as written and unprotects it.
//! - Release: for every cached page, the bytes marked in the bitmap, plus
//!   (for flagged pages, re-protected first) the bytes that differ from the
//!   twin, are scattered to the page's home, one message per home node. The
//!   twin takes the sent values.
//! - Acquire: every cached page is write-protected (so no write can land
//!   unseen), its remaining modifications are sent home as in a release,
//!   then it is dropped so that the next touch faults and fetches it afresh.
//!   Home pages stay. The twin comparison here also catches a store whose
//!   bitmap mark had not happened yet when the page was taken.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use loco_cluster::{ClusterConfig, Placement};
use loco_rdma::{Access, Finish, MemoryRegion, NodeId, RegionId, Run, Transport};
use userfaultfd::{Event, FaultKind, FeatureFlags, RegisterMode, Uffd, UffdBuilder};

use crate::cached::CachedPages;
use crate::dirty::{
    bridge_written_gaps, for_each_run, keep_differences, mark_differences, DirtyBitmap,
};
use crate::layout::Layout;
use crate::migrate::{self, Move};
use crate::notices::{Learned, NoticeLog};
use crate::sys::{self, Mapping, Wakeup};
use crate::{HeapError, RegionStats};

// Page states.
const MISSING: u8 = 0;
const FETCHING: u8 = 1;
const CACHED: u8 = 2;
const HOME: u8 = 3;
const INVALIDATING: u8 = 4;

/// `known_home` while this node asks the first-touch directory.
const CLAIMING: u64 = u64::MAX;

/// Most first-touch pages one directory request claims (see `home_of`):
/// pages another node would have touched first, at the edge of a node's
/// part of an array, may go to this one (and move later if that node keeps
/// writing them).
const CLAIM_AHEAD: usize = 32;

const PAGE_LOCK_STRIPES: usize = 1024;

/// The address window reserved for the shared region (16 TiB), whatever its
/// size: compiled code checks `addr - base < REGION_SPAN` (loco-pass/ABI.md).
pub const REGION_SPAN: u64 = 1 << 44;

/// How the region runs.
#[derive(Debug, Clone)]
pub struct RegionOptions {
    /// Write-protect cached pages so writes by code that does not mark the
    /// bitmap are found (one fault per page per release interval). Needed
    /// unless every writer marks (code compiled by loco-cc does, except for
    /// calls into unknown libraries).
    pub track_uninstrumented: bool,
    /// Threads reading the userfaultfd (each resolves its faults itself).
    pub fault_threads: usize,
    /// Microseconds a fault thread stays awake looking for the next fault
    /// (0: sleep at once). Costs CPU while faults keep coming; saves a wake-up each.
    pub linger_us: u64,
    /// Bytes at the start of the region that the heap never hands out (the
    /// program's globals and `main`'s stack). Rounded up to whole pages;
    /// must fit in node 0's memory.
    pub node0_prefix: u64,
    /// Bytes at the start of that prefix holding the program's globals:
    /// placed by the placement policy like the heap (see layout.rs); the
    /// rest of the prefix lives on node 0. Rounded up to whole pages.
    pub globals: u64,
    /// Most pages one remote fault fetches when it continues a sequential
    /// scan (1: no read-ahead).
    pub read_ahead: usize,
    /// An acquire drops only the cached pages other nodes' write notices
    /// name (notices.rs); false: every cached page, as before.
    pub selective_invalidation: bool,
    /// First-touch pages move their home to the node that keeps writing
    /// them (migrate.rs; needs selective invalidation).
    pub home_migration: bool,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions {
            track_uninstrumented: true,
            fault_threads: 2,
            linger_us: 0,
            node0_prefix: 0,
            globals: 0,
            read_ahead: 8,
            selective_invalidation: true,
            home_migration: true,
        }
    }
}

/// Runs `f`, adding the nanoseconds it took to `counter`.
fn timed<R>(counter: &AtomicU64, f: impl FnOnce() -> R) -> R {
    let t = std::time::Instant::now();
    let r = f();
    counter.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    r
}

/// This node's view of the shared region.
pub struct SharedRegion {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

struct Inner {
    layout: Layout,
    rank: NodeId,
    transport: Arc<dyn Transport>,
    /// The region as registered with the transport (home pages are read and
    /// written there by other nodes).
    data: RegionId,
    /// First-touch only: one u64 per page at node 0, 0 or (home + 1).
    directory: Option<RegionId>,
    /// Never unmapped (see `Drop for Inner`).
    map: std::mem::ManuallyDrop<Mapping>,
    twins: Mapping,
    bitmap: DirtyBitmap,
    state: Mapping,
    written: Mapping,
    home_cache: Mapping,
    uffd: Uffd,
    /// The region is registered with `uffd` (more than one node; see `new`).
    demand_paged: bool,
    track: bool,
    words_per_page: usize,
    page_locks: Vec<Mutex<()>>,
    /// Releases, acquires and evictions run one at a time: a release must not
    /// return while another still holds bytes this node wrote.
    consistency: Mutex<()>,
    cached: Mutex<CachedPages>,
    cache_limit: usize,
    invalidated: (Mutex<()>, Condvar),
    evict: (Mutex<bool>, Condvar),
    stopping: AtomicBool,
    wakeup: Wakeup,
    stats: Counters,
    /// Held (shared) by a fetch from before it reads the home until its page
    /// is in `cached`; an acquire takes it exclusively to take the list. A
    /// fetch that began before an acquire may have read the page before the
    /// release the acquire must see, so the acquire has to find and drop
    /// that copy; a fetch that begins after it reads the home afterwards.
    fetch_gate: std::sync::RwLock<()>,
    /// How long a fault thread keeps looking for the next fault before sleeping.
    linger_us: u64,
    /// Most pages a fault fetches in a sequential scan.
    read_ahead: usize,
    /// This node's write notices, and where it stands in the others'.
    notices: NoticeLog,
    selective: bool,
    /// Per home page: 1 once another node has read it (it may be cached
    /// there). Such a page is write-protected here after every release, so
    /// this node's next write to it is noticed (and logged at the release).
    exported: Mapping,
    /// Per home page: 1 while this node keeps it write-protected (set under
    /// the page lock after protecting, cleared after unprotecting). Lets a
    /// serving thread skip the unprotect ioctl for the second and later
    /// writes it serves to a page in one interval: a scatter of many
    /// short runs into one page would otherwise take an ioctl (and a TLB
    /// flush) per run.
    protected: Mapping,
    /// Exported home pages written since the last release (their
    /// `written` flag is set), to log and protect again at the next one.
    home_written: Mutex<Vec<u32>>,
    /// See `serving()`.
    serving: Mapping,
    /// See `handling()`.
    handling: Mapping,
    /// Write faults on home pages being resolved (`note_home_fault`).
    home_faults_active: AtomicU64,
    /// Releases that logged home writes, and per page its streak of them
    /// (`stays_unprotected`).
    home_intervals: AtomicU64,
    home_streaks: Mapping,
    /// Pages an acquire could not drop (its write-back failed): the next
    /// acquire drops them, whatever the notices say.
    stale: Mutex<Vec<u32>>,
    /// Home migration is on (migrate.rs).
    migration: bool,
    /// Per page of another home: the barrier intervals in a row in which
    /// this node wrote it and nobody else but its home did (`count_streaks`).
    write_streaks: Mapping,
    /// Pages this node asks to become home to at the next barrier.
    candidates: Mutex<Vec<u32>>,
    /// Per page: how many times its home has moved (the same on every node).
    moves: Mapping,
    /// Per page: its home before its last move, + 1 (0: never moved).
    left: Mapping,
}

#[derive(Default)]
struct Counters {
    remote_faults: AtomicU64,
    home_faults: AtomicU64,
    bytes_fetched: AtomicU64,
    write_faults: AtomicU64,
    releases: AtomicU64,
    acquires: AtomicU64,
    bytes_released: AtomicU64,
    runs_released: AtomicU64,
    pages_diffed: AtomicU64,
    pages_invalidated: AtomicU64,
    pages_read_ahead: AtomicU64,
    evictions: AtomicU64,
    fault_ns: AtomicU64,
    release_ns: AtomicU64,
    acquire_ns: AtomicU64,
    pages_migrated_in: AtomicU64,
    pages_migrated_out: AtomicU64,
}

impl SharedRegion {
    /// Maps the region at cluster.toml's address, registers it for demand
    /// paging and with the transport, and starts the fault handlers.
    /// Collective: every node calls it (it registers transport regions).
    pub fn new(
        config: &ClusterConfig,
        transport: Arc<dyn Transport>,
        options: RegionOptions,
    ) -> Result<SharedRegion, HeapError> {
        let prefix = options.node0_prefix.div_ceil(config.page_size) * config.page_size;
        if prefix > config.nodes[0].memory {
            return Err(HeapError::OutOfMemory {
                requested: prefix,
                why: format!(
                    "the program's globals and main's stack need {} on node 0, which contributes only {} \
                     (raise node 0's memory: --memory with loco-daemon run -n, memory in cluster.toml, or LOCO_MEMORY when running alone)",
                    loco_cluster::ByteSize(prefix),
                    loco_cluster::ByteSize(config.nodes[0].memory)
                ),
            });
        }
        let globals = options.globals.div_ceil(config.page_size) * config.page_size;
        let layout = Layout::with_prefix(config, globals, prefix);
        let rank = transport.rank();
        let size = layout.size as usize;
        let map_error = |what: &str, e: std::io::Error| HeapError::Map {
            base: layout.base,
            size: layout.size,
            why: if e.raw_os_error() == Some(libc::EEXIST) {
                format!(
                    "{what}: the range is already mapped in this process (something else was loaded where the shared window goes)"
                )
            } else {
                format!("{what}: {e}")
            },
        };
        if layout.size > REGION_SPAN || layout.base + REGION_SPAN > 1 << 47 {
            return Err(HeapError::Map {
                base: layout.base,
                size: layout.size,
                why: format!(
                    "the region must fit in a {REGION_SPAN:#x}-byte window that ends below 1 << 47 \
                     (lower memory.region_base or the nodes' memory)"
                ),
            });
        }
        // The whole window is reserved so that nothing else lands where
        // compiled code's range check would take it for shared memory.
        let map = Mapping::reserve(layout.base, REGION_SPAN as usize)
            .map_err(|e| map_error("shared window", e))?;
        map.commit(size)
            .map_err(|e| map_error("shared region", e))?;
        map.no_huge_pages();
        let uffd = UffdBuilder::new()
            .close_on_exec(true)
            .non_blocking(true)
            .user_mode_only(false)
            .require_features(FeatureFlags::PAGEFAULT_FLAG_WP)
            .create()
            .map_err(|e| HeapError::Userfaultfd(format!(
                "cannot open userfaultfd with write-protect support: {e} \
                 (LOCO needs Linux 5.7 or newer; a user other than root needs read and write access to /dev/userfaultfd on Linux 6.1 and newer, vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE before)"
            )))?;
        // A cluster of one is home to every page: no page is ever fetched,
        // cached or exported, so nothing needs a fault handler, and the
        // kernel's own page faults (one per page, no hand-off to a handler
        // thread) fill the region as they fill any anonymous memory.
        let demand_paged = layout.nodes > 1;
        if demand_paged {
            uffd.register_with_mode(
                map.ptr().cast(),
                size,
                RegisterMode::MISSING | RegisterMode::WRITE_PROTECT,
            )
            .map_err(|e| HeapError::Userfaultfd(format!("cannot register the region: {e}")))?;
        }
        let pages = layout.pages();
        let aux = |bytes: usize| {
            Mapping::anywhere(bytes.max(1)).map_err(|e| HeapError::Map {
                base: 0,
                size: bytes as u64,
                why: format!("bookkeeping memory: {e}"),
            })
        };
        // Serving threads make home pages present themselves instead of
        // faulting: a fault would need a handler thread, and handlers may all
        // be waiting on other nodes whose servers wait on ours.
        let this: Arc<OnceLock<Weak<Inner>>> = Arc::new(OnceLock::new());
        let prepare = {
            let this = this.clone();
            Box::new(move |offset: u64, len: usize, access: Access| {
                let inner = this.get().and_then(Weak::upgrade)?;
                inner.prepare_home(offset, len, access)
            })
        };
        // SAFETY: the mapping is ours, lives as long as the process (it is
        // never unmapped, see Drop), and covers exactly base..base+size.
        let exposed = unsafe {
            MemoryRegion::from_raw(std::ptr::NonNull::new(map.ptr()).expect("mapped"), size)
        }
        .with_prepare(prepare);
        let data = transport
            .register(Arc::new(exposed))
            .map_err(HeapError::Transport)?;
        let directory = match layout.placement {
            Placement::Interleaved | Placement::AllocatingNode => None,
            Placement::FirstTouch => {
                let len = if rank == 0 { pages * 8 } else { 8 };
                let mem = MemoryRegion::anonymous(len).map_err(|e| HeapError::Map {
                    base: 0,
                    size: len as u64,
                    why: format!("first-touch directory: {e}"),
                })?;
                Some(
                    transport
                        .register(Arc::new(mem))
                        .map_err(HeapError::Transport)?,
                )
            }
        };
        let notices = NoticeLog::new(&*transport)?;
        // A NIC reads home pages without the home's CPU, so nothing
        // would export them: write notices of home pages need the tcp
        // transport's serving threads until home memory gets a backing
        // the NIC can serve (then every cached page is dropped).
        let selective =
            options.selective_invalidation && config.transport == loco_cluster::TransportKind::Tcp;
        let inner = Arc::new(Inner {
            notices,
            selective,
            migration: selective
                && options.home_migration
                && layout.placement == Placement::FirstTouch
                && layout.nodes > 1,
            candidates: Mutex::new(Vec::new()),
            write_streaks: aux(pages * 8)?,
            moves: aux(pages)?,
            left: aux(pages)?,
            exported: aux(pages)?,
            protected: aux(pages)?,
            home_written: Mutex::new(Vec::new()),
            serving: aux(pages * 8)?,
            handling: aux(pages * 8)?,
            home_faults_active: AtomicU64::new(0),
            home_intervals: AtomicU64::new(0),
            home_streaks: aux(pages * 8)?,
            stale: Mutex::new(Vec::new()),
            words_per_page: (layout.page_size / 64) as usize,
            twins: aux(size)?,
            bitmap: DirtyBitmap::new(layout.base, layout.size, REGION_SPAN, layout.page_size)
                .map_err(|e| map_error("dirty bitmap shadow", e))?,
            state: aux(pages)?,
            written: aux(pages)?,
            home_cache: aux(pages * 8)?,
            cache_limit: ((config.cache_size / layout.page_size) as usize).max(1),
            layout,
            rank,
            transport,
            data,
            directory,
            map: std::mem::ManuallyDrop::new(map),
            uffd,
            demand_paged,
            track: options.track_uninstrumented,
            page_locks: (0..PAGE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            consistency: Mutex::new(()),
            cached: Mutex::new(CachedPages::new(pages).map_err(|e| HeapError::Map {
                base: 0,
                size: pages as u64 * 8,
                why: format!("bookkeeping memory: {e}"),
            })?),
            invalidated: (Mutex::new(()), Condvar::new()),
            evict: (Mutex::new(false), Condvar::new()),
            stopping: AtomicBool::new(false),
            wakeup: Wakeup::new().map_err(|e| HeapError::Userfaultfd(format!("eventfd: {e}")))?,
            stats: Counters::default(),
            fetch_gate: std::sync::RwLock::new(()),
            linger_us: options.linger_us,
            read_ahead: options.read_ahead.max(1),
        });
        let _ = this.set(Arc::downgrade(&inner));
        let mut threads = Vec::new();
        for i in 0..options.fault_threads.max(1) {
            let inner = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("loco-fault-{i}"))
                    .spawn(move || inner.fault_loop())
                    .map_err(|e| {
                        HeapError::Userfaultfd(format!("cannot start a fault thread: {e}"))
                    })?,
            );
        }
        let evictor = inner.clone();
        threads.push(
            std::thread::Builder::new()
                .name("loco-evict".into())
                .spawn(move || evictor.evict_loop())
                .map_err(|e| HeapError::Userfaultfd(format!("cannot start the evictor: {e}")))?,
        );
        let region = SharedRegion { inner, threads };
        // No node reaches another's pages before every node can serve them
        // as home: until `this` is set, a serving thread would read a page
        // without preparing it (installing it, and exporting it for write
        // notices).
        region
            .inner
            .transport
            .barrier()
            .map_err(HeapError::Transport)?;
        Ok(region)
    }

    pub fn base(&self) -> u64 {
        self.inner.layout.base
    }

    pub fn size(&self) -> u64 {
        self.inner.layout.size
    }

    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    pub fn rank(&self) -> NodeId {
        self.inner.rank
    }

    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// Whether `addr .. addr+len` is inside the shared region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.inner.layout.contains(addr, len)
    }

    /// Records that this node wrote `addr .. addr+len` (after writing it).
    /// Addresses outside the region are ignored.
    #[inline]
    pub fn mark_dirty(&self, addr: u64, len: u64) {
        // A cluster of one has no other home to send bytes to.
        if len > 0 && self.inner.demand_paged && self.contains(addr, len) {
            self.inner.bitmap.mark(addr - self.inner.layout.base, len);
        }
    }

    /// The bitmap's address, for compiled code that marks inline.
    pub fn bitmap_base(&self) -> *mut u8 {
        self.inner.bitmap.base_ptr()
    }

    /// Sends every byte this node wrote since its last release home.
    pub fn release(&self) -> Result<(), HeapError> {
        timed(&self.inner.stats.release_ns, || self.inner.release())
    }

    /// Drops cached copies of other nodes' pages (after sending their
    /// modifications home), so later reads see every release that happened
    /// before this acquire.
    pub fn acquire(&self) -> Result<(), HeapError> {
        timed(&self.inner.stats.acquire_ns, || self.inner.acquire())
    }

    /// Release, global barrier, acquire: what an OpenMP barrier needs.
    /// The acquire reads other nodes' write notices after the global
    /// barrier, so a node must not leave the cluster right after this one
    /// (end with the transport's own barrier).
    /// The write notices travel with the barrier itself where the
    /// transport can carry them, saving the acquire a read per node.
    pub fn barrier(&self) -> Result<(), HeapError> {
        self.barrier_carrying(&[]).map(|_| ())
    }

    /// `barrier`, also handing every node the bytes each node gives as
    /// `extra` (by rank; empty for a node that took a plain transport
    /// barrier), or `None` where the transport's barriers carry no bytes.
    pub fn barrier_carrying(&self, extra: &[u8]) -> Result<Option<Vec<Vec<u8>>>, HeapError> {
        self.release()?;
        let inner = &self.inner;
        if !inner.selective {
            let parts = inner
                .transport
                .barrier_gather(extra)
                .map_err(HeapError::Transport)?;
            self.acquire()?;
            return Ok(parts);
        }
        let mut mine = inner.notices.unsent();
        if inner.migration {
            migrate::encode(&inner.proposals(), &mut mine);
        }
        mine.extend_from_slice(extra);
        let gathered = inner
            .transport
            .barrier_gather(&mine)
            .map_err(HeapError::Transport)?;
        let Some(parts) = gathered else {
            timed(&inner.stats.acquire_ns, || inner.acquire())?;
            return Ok(None);
        };
        timed(&inner.stats.acquire_ns, || {
            inner.acquire_learning(|| inner.notices.learn_gathered(&*inner.transport, &parts))
        })?;
        if inner.migration {
            inner.migrate(&parts)?;
        }
        // What follows each part's notices (and proposals).
        let extras = parts
            .iter()
            .map(|part| {
                let mut at = NoticeLog::len_in(part);
                if inner.migration && at < part.len() {
                    at += migrate::encoded_len(&part[at..]);
                }
                part.get(at..).unwrap_or_default().to_vec()
            })
            .collect();
        Ok(Some(extras))
    }

    /// Atomically replaces the `size`-byte value at `addr` (1, 2, 4 or 8
    /// bytes, naturally aligned) at its home node with `f(old)`, or leaves it
    /// when `f` returns `None`; returns the old value. The update is a
    /// compare-and-swap of the enclosing 8-byte word at the home, so it is
    /// atomic against every other node's atomics. With `release`, this
    /// node's writes are released first; with `acquire`, cached pages are
    /// dropped afterwards (the ordering's memory-model effect).
    ///
    /// Whatever the ordering, program order on the location holds: this
    /// node's unreleased writes to the page go home before the atomic reads
    /// it there (a thread's own plain store, then its relaxed atomic), and
    /// the cached copy is dropped after a change, so this node's next read
    /// sees the new value and no later release sends the old one back.
    pub fn atomic_update(
        &self,
        addr: u64,
        size: u64,
        release: bool,
        acquire: bool,
        mut f: impl FnMut(u64) -> Option<u64>,
    ) -> Result<u64, HeapError> {
        if !matches!(size, 1 | 2 | 4 | 8) || !addr.is_multiple_of(size) {
            return Err(HeapError::Invalid(format!(
                "atomic access of {size} bytes at {addr:#x} is not naturally aligned"
            )));
        }
        if !self.contains(addr, size) {
            return Err(HeapError::NotShared(addr));
        }
        if release {
            self.release()?;
        }
        let inner = &self.inner;
        let offset = addr - inner.layout.base;
        let word = offset & !7;
        let shift = (offset & 7) * 8;
        let mask = if size == 8 {
            u64::MAX
        } else {
            ((1u64 << (size * 8)) - 1) << shift
        };
        let page = inner.layout.page_of_offset(offset);
        let home = inner.home_of(page)?;
        if home != inner.rank {
            // This node's writes to the page go home first. Under the
            // consistency lock: a release by another thread of this node
            // may have taken this thread's marks and still be sending them.
            inner.release_pages(vec![page as u32])?;
        }
        let t = &inner.transport;
        // An atomic read of the word: adding zero.
        let mut current = t.fetch_add(home, inner.data, word, 0)?;
        let old = loop {
            let old = (current & mask) >> shift;
            let Some(new) = f(old) else { break old };
            let replacement = (current & !mask) | ((new << shift) & mask);
            let found = t.compare_swap(home, inner.data, word, current, replacement)?;
            if found == current {
                // Other nodes' copies of the page are stale now.
                inner.notices.append([page as u32]);
                if home != inner.rank {
                    inner.refresh_page(page)?;
                }
                break old;
            }
            current = found;
        };
        if acquire {
            self.acquire()?;
        }
        Ok(old)
    }

    /// Before a volatile read of `addr .. addr+len`: cached copies of other
    /// nodes' pages there are dropped (this node's writes to them sent home
    /// first), so the read sees the home's current bytes. OpenMP reads a
    /// volatile object as if a flush of it came first; a spin-wait on a
    /// volatile flag set on another node must end. Nothing else is flushed.
    pub fn volatile_read(&self, addr: u64, len: u64) -> Result<(), HeapError> {
        for page in self.pages_of(addr, len) {
            self.inner.refresh_page(page)?;
        }
        Ok(())
    }

    /// After a volatile write to `addr .. addr+len` (and its marks): this
    /// node's writes to those pages go home now (a write to a volatile
    /// object as if a flush of it came after). Nothing else is flushed.
    pub fn volatile_write(&self, addr: u64, len: u64) -> Result<(), HeapError> {
        let pages: Vec<u32> = self.pages_of(addr, len).map(|p| p as u32).collect();
        if pages.is_empty() {
            return Ok(());
        }
        // Pages this node does not cache, or did not write, are skipped
        // there; but only once a release under way (which may hold this
        // write's marks) has finished.
        self.inner.release_pages(pages)
    }

    /// The pages `addr .. addr+len` touches, none if it is not all shared.
    fn pages_of(&self, addr: u64, len: u64) -> std::ops::Range<usize> {
        if len == 0 || !self.contains(addr, len) {
            return 0..0;
        }
        let offset = addr - self.inner.layout.base;
        self.inner.layout.page_of_offset(offset)
            ..self.inner.layout.page_of_offset(offset + len - 1) + 1
    }

    /// The node that holds the master copy of the page containing `addr`
    /// (deciding it now under first-touch placement).
    pub fn home_of(&self, addr: u64) -> Result<NodeId, HeapError> {
        if !self.contains(addr, 1) {
            return Err(HeapError::NotShared(addr));
        }
        let page = self
            .inner
            .layout
            .page_of_offset(addr - self.inner.layout.base);
        self.inner.home_of(page)
    }

    /// Number of other nodes' pages cached right now.
    pub fn cached_pages(&self) -> usize {
        self.inner.cached.lock().unwrap().len()
    }

    pub fn stats(&self) -> RegionStats {
        let c = &self.inner.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RegionStats {
            remote_faults: l(&c.remote_faults),
            home_faults: l(&c.home_faults),
            bytes_fetched: l(&c.bytes_fetched),
            write_faults: l(&c.write_faults),
            releases: l(&c.releases),
            acquires: l(&c.acquires),
            bytes_released: l(&c.bytes_released),
            runs_released: l(&c.runs_released),
            pages_diffed: l(&c.pages_diffed),
            pages_invalidated: l(&c.pages_invalidated),
            pages_read_ahead: l(&c.pages_read_ahead),
            evictions: l(&c.evictions),
            fault_ns: l(&c.fault_ns),
            release_ns: l(&c.release_ns),
            acquire_ns: l(&c.acquire_ns),
            pages_migrated_in: l(&c.pages_migrated_in),
            pages_migrated_out: l(&c.pages_migrated_out),
        }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wakeup.signal();
        self.inner.evict.1.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The transport may still serve other nodes from this memory (it holds
        // a raw view of it), so the region stays mapped for the life of the
        // process; unregistering makes later touches plain zero-fill faults
        // instead of waits for handlers that are gone.
        let _ = self
            .uffd
            .unregister(self.map.ptr().cast(), self.layout.size as usize);
    }
}

/// An acquire whose invalidation failed: the pages it had to drop (kept,
/// with their unsent bytes) and why.
struct FailedInvalidation {
    pages: Vec<u32>,
    error: HeapError,
}

/// Modifications bound for each home node, gathered before sending.
struct Batch {
    per_node: Vec<NodeBatch>,
}

/// The bytes for one home node, and its runs as (region offset, start in `data`, length).
type NodeBatch = (Vec<u8>, Vec<(u64, usize, usize)>);

impl Batch {
    fn new(nodes: usize) -> Batch {
        Batch {
            per_node: (0..nodes).map(|_| (Vec::new(), Vec::new())).collect(),
        }
    }

    fn push(&mut self, home: NodeId, offset: u64, bytes: &[u8]) {
        let (data, runs) = &mut self.per_node[home];
        runs.push((offset, data.len(), bytes.len()));
        data.extend_from_slice(bytes);
    }

    /// Every run, as (region offset, bytes).
    fn runs(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.per_node.iter().flat_map(|(data, runs)| {
            runs.iter()
                .map(move |&(offset, start, len)| (offset, &data[start..start + len]))
        })
    }

    /// One scatter per home node. Returns (bytes, runs) sent.
    fn send(&self, transport: &dyn Transport, region: RegionId) -> Result<(u64, u64), HeapError> {
        let (mut bytes, mut count) = (0, 0);
        for (node, (data, runs)) in self.per_node.iter().enumerate() {
            if runs.is_empty() {
                continue;
            }
            let runs: Vec<Run> = runs
                .iter()
                .map(|&(offset, start, len)| Run {
                    offset,
                    data: &data[start..start + len],
                })
                .collect();
            transport
                .scatter(node, region, &runs)
                .map_err(HeapError::Transport)?;
            bytes += data.len() as u64;
            count += runs.len() as u64;
        }
        Ok((bytes, count))
    }
}

impl Inner {
    fn page_size(&self) -> usize {
        self.layout.page_size as usize
    }

    fn state(&self, page: usize) -> &AtomicU8 {
        &self.state.as_atomic_u8()[page]
    }

    fn written(&self, page: usize) -> &AtomicU8 {
        &self.written.as_atomic_u8()[page]
    }

    fn lock_page(&self, page: usize) -> MutexGuard<'_, ()> {
        self.page_locks[page % PAGE_LOCK_STRIPES].lock().unwrap()
    }

    fn page_ptr(&self, page: usize) -> *mut u8 {
        // SAFETY: page < pages, so the offset is inside the mapping.
        unsafe { self.map.ptr().add(page * self.page_size()) }
    }

    fn twin_ptr(&self, page: usize) -> *mut u8 {
        // SAFETY: as page_ptr, for the twin mapping of the same size.
        unsafe { self.twins.ptr().add(page * self.page_size()) }
    }

    /// The page's home under first-touch placement, once known here: 0
    /// unknown, `CLAIMING` while a thread of this node asks the directory,
    /// else home + 1.
    fn known_home(&self, page: usize) -> &AtomicU64 {
        &self.home_cache.as_atomic_u64()[page]
    }

    fn home_of(&self, page: usize) -> Result<NodeId, HeapError> {
        if let Some(home) = self.layout.static_home(page) {
            return Ok(home);
        }
        let known = self.known_home(page);
        loop {
            match known.load(Ordering::Acquire) {
                0 => {}
                CLAIMING => {
                    std::thread::yield_now();
                    continue;
                }
                k => return Ok((k - 1) as NodeId),
            }
            // Announced before the directory is asked: once our claim wins,
            // other nodes may read the page from us before we record the
            // answer, and our serving threads must know to wait for it
            // (is_home) rather than take the page for someone else's.
            if known
                .compare_exchange(0, CLAIMING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let dir = self
                .directory
                .expect("first-touch placement has a directory");
            let me = self.rank as u64 + 1;
            let fail = |e: HeapError| {
                known.store(0, Ordering::Release);
                Err(e)
            };
            // After a page whose home is known (a loop walking an array),
            // the next pages' entries come in the same round trip: up to
            // CLAIM_AHEAD of them, first-touch pages only.
            let previous = if page > 0 {
                self.known_home(page - 1).load(Ordering::Acquire)
            } else {
                0
            };
            let run = if previous == 0 || previous == CLAIMING {
                1
            } else {
                (page + 1..self.layout.pages())
                    .take(CLAIM_AHEAD - 1)
                    .take_while(|&q| self.layout.static_home(q).is_none())
                    .count()
                    + 1
            };
            let found = if previous == me {
                // Initialising its own part: claim them all, until one is
                // someone's already.
                match self
                    .transport
                    .compare_swap_run(0, dir, page as u64 * 8, run as u32, 0, me)
                {
                    Ok(found) if !found.is_empty() => found,
                    Ok(_) => {
                        return fail(HeapError::Invalid(
                            "the first-touch directory answered nothing".into(),
                        ))
                    }
                    Err(e) => return fail(HeapError::Transport(e)),
                }
            } else {
                // Reading another node's data: learn the homes the next pages
                // already have (so faults can read ahead), claim only this one.
                let mut found = vec![0u64; run];
                if run > 1 {
                    let mut bytes = vec![0u8; run * 8];
                    // Entries only ever change one low byte (homes are node
                    // numbers + 1 < 256), so a word read while it is
                    // claimed reads as before or as after, never as a mix.
                    if let Err(e) = self.transport.read(0, dir, page as u64 * 8, &mut bytes) {
                        return fail(HeapError::Transport(e));
                    }
                    for (f, b) in found.iter_mut().zip(bytes.chunks_exact(8)) {
                        *f = u64::from_le_bytes(b.try_into().unwrap());
                    }
                    // Unclaimed pages after this one stay unknown.
                    if let Some(end) = found.iter().skip(1).position(|&f| f == 0) {
                        found.truncate(end + 1);
                    }
                }
                if found[0] == 0 {
                    match self.transport.compare_swap(0, dir, page as u64 * 8, 0, me) {
                        Ok(f) => found[0] = f,
                        Err(e) => return fail(HeapError::Transport(e)),
                    }
                }
                found
            };
            // The pages after it that the run claimed (or found taken) are
            // known now; a thread of ours claiming one of them meanwhile
            // finds the same answer in the directory.
            for (j, &f) in found.iter().enumerate().skip(1) {
                let value = if f == 0 { me } else { f };
                let _ = self.known_home(page + j).compare_exchange(
                    0,
                    value,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            let home = if found[0] == 0 {
                self.rank
            } else {
                (found[0] - 1) as NodeId
            };
            known.store(home as u64 + 1, Ordering::Release);
            return Ok(home);
        }
    }

    /// The page's home if this node knows it without asking anyone.
    fn home_if_known(&self, page: usize) -> Option<NodeId> {
        match self.layout.static_home(page) {
            Some(home) => Some(home),
            None => match self.known_home(page).load(Ordering::Acquire) {
                0 | CLAIMING => None,
                k => Some((k - 1) as NodeId),
            },
        }
    }

    /// Whether a page another node asks this node for (a serving thread's
    /// question) is home here. Nodes ask the home the directory named, so a
    /// first-touch page not yet known here is one a claim of ours has just
    /// won or lost: a single page being claimed (`CLAIMING`), or a page of a
    /// claim-ahead run, recorded here only after the directory answered.
    /// The directory says which, without waiting for the claimer (a serving
    /// thread that waited for it could wait for a node whose serving threads
    /// wait for ours). Serving a page of ours as someone else's would skip
    /// `export`, and this node's later writes to it would go unnoticed.
    fn is_home(&self, page: usize) -> bool {
        let me = self.rank as u64 + 1;
        if let Some(home) = self.layout.static_home(page) {
            return home == self.rank;
        }
        let known = self.known_home(page);
        match known.load(Ordering::Acquire) {
            0 | CLAIMING => {}
            k => return k == me,
        }
        let dir = self
            .directory
            .expect("first-touch placement has a directory");
        let mut entry = [0u8; 8];
        if let Err(e) = self.transport.read(0, dir, page as u64 * 8, &mut entry) {
            self.fatal(&format!(
                "cannot read the first-touch directory for a page another node asks for: {e}"
            ));
        }
        let entry = u64::from_le_bytes(entry);
        if entry == 0 {
            return false;
        }
        // Recorded for later questions; a claim of ours under way records
        // the same answer.
        let _ = known.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire);
        entry == me
    }

    /// Makes this node's home pages in `offset .. offset+len` present (as
    /// zeros if never touched), from the calling (serving) thread; then,
    /// for write notices, a page another node reads becomes exported and a
    /// write to an exported page is noted (see `export`, `note_home_write`).
    fn prepare_home(self: Arc<Self>, offset: u64, len: usize, access: Access) -> Option<Finish> {
        if !self.demand_paged {
            // Every page is home and filled by the kernel on first touch.
            return None;
        }
        let first = self.layout.page_of_offset(offset);
        let last = self.layout.page_of_offset(offset + len as u64 - 1);
        let mut serving = Vec::new();
        for page in first..=last {
            if !self.is_home(page) {
                continue;
            }
            loop {
                match self.state(page).load(Ordering::Acquire) {
                    MISSING => {
                        if self
                            .state(page)
                            .compare_exchange(
                                MISSING,
                                FETCHING,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_err()
                        {
                            continue;
                        }
                        // SAFETY: a page of our registered region.
                        let zeroed = unsafe {
                            self.uffd
                                .zeropage(self.page_ptr(page).cast(), self.page_size(), true)
                        };
                        match zeroed {
                            Ok(_) => {}
                            Err(userfaultfd::Error::ZeropageFailed(e))
                                if e as i32 == libc::EEXIST =>
                            {
                                self.wake(page)
                            }
                            Err(e) => {
                                // Leave it to the fault handlers.
                                eprintln!(
                                    "loco: node {}: UFFDIO_ZEROPAGE for a served page: {e}",
                                    self.rank
                                );
                                self.state(page).store(MISSING, Ordering::Release);
                                // Threads that faulted meanwhile saw FETCHING and
                                // wait for an install that will not come: wake
                                // them to fault again.
                                self.wake(page);
                                break;
                            }
                        }
                        self.bitmap.set_home(page, true);
                        self.state(page).store(HOME, Ordering::Release);
                        self.stats.home_faults.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    // A handler is installing it right now: a short wait.
                    FETCHING => std::thread::yield_now(),
                    _ => break,
                }
            }
            if self.selective && self.state(page).load(Ordering::Acquire) == HOME {
                match access {
                    Access::Read => self.export(page),
                    // Another node's write or atomic: that node logs it, but
                    // the page must not be write-protected under a serving
                    // thread (a fault there could wait on handlers that wait
                    // on other nodes). Taken as this node's write: one more
                    // notice at most.
                    Access::Write => {
                        self.note_home_write(page);
                        serving.push(page);
                    }
                }
            }
        }
        if serving.is_empty() {
            return None;
        }
        Some(Box::new(move || {
            for page in serving {
                self.serving(page).fetch_sub(1, Ordering::AcqRel);
            }
        }))
    }

    /// Per home page: accesses by serving threads that write it under way
    /// (counted by `note_home_write`). Protection must not come back on
    /// under one: a serving thread must never fault (it could wait for
    /// fault handlers that wait for other nodes that wait for it).
    fn serving(&self, page: usize) -> &AtomicU64 {
        &self.serving.as_atomic_u64()[page]
    }

    /// Takes `page`'s lock once no serving thread writes the page (none
    /// starts while the lock is held). The lock is not held while waiting:
    /// a serving thread that counts as writing the page may still have to
    /// take it (a scatter prepares all its runs, several of which may lie
    /// in the page, before it writes any), and would wait for the lock
    /// while the lock's holder waited for it.
    fn lock_unserved(&self, page: usize) -> MutexGuard<'_, ()> {
        loop {
            let g = self.lock_page(page);
            if self.serving(page).load(Ordering::Acquire) == 0 {
                return g;
            }
            drop(g);
            std::thread::yield_now();
        }
    }

    fn exported(&self, page: usize) -> &AtomicU8 {
        &self.exported.as_atomic_u8()[page]
    }

    /// See `Inner::protected`.
    fn protected(&self, page: usize) -> &AtomicU8 {
        &self.protected.as_atomic_u8()[page]
    }

    /// Another node is about to read home page `page`, so it may cache it:
    /// from now on this node's writes to it must be noticed. It is
    /// write-protected (before the read, so a write either lands before it
    /// and is read, or faults and is noted) unless it already was.
    fn export(&self, page: usize) {
        if self.exported(page).load(Ordering::Acquire) != 0 {
            return;
        }
        let _g = self.lock_unserved(page);
        if self.exported(page).load(Ordering::Acquire) != 0 {
            return;
        }
        if let Err(e) = self
            .uffd
            .write_protect(self.page_ptr(page).cast(), self.page_size())
        {
            self.fatal(&format!("cannot write-protect an exported home page: {e}"));
        }
        self.protected(page).store(1, Ordering::Release);
        self.exported(page).store(1, Ordering::Release);
    }

    /// A write fault on exported home page `page`: flagged and listed for
    /// the next release, then unprotected, then (if a release cleared the
    /// flag meanwhile) flagged and listed again, and only then is the
    /// faulting thread woken. Without the page lock: the thread holding it
    /// may be the one that faulted (a release protects the pages of the
    /// stack `main` runs on, which lives in the region, and that thread
    /// keeps using its stack). Counted in `handling`, so that a release
    /// neither takes the list nor clears and protects the page in the
    /// middle of this (another thread may write the page as soon as it is
    /// unprotected: the page must be on a list the release takes, or on
    /// the next one, by then).
    fn note_home_fault(&self, page: usize) {
        self.home_faults_active.fetch_add(1, Ordering::AcqRel);
        self.handling(page).fetch_add(1, Ordering::AcqRel);
        let flag = |me: &Self| {
            if me.written(page).swap(1, Ordering::AcqRel) == 0 {
                me.home_written.lock().unwrap().push(page as u32);
            }
        };
        flag(self);
        if let Err(e) =
            self.uffd
                .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), false)
        {
            self.fatal(&format!("cannot unprotect a written home page: {e}"));
        }
        // Before `handling` drops: a release that protects the page again
        // waits for that, so this cannot overwrite its 1.
        self.protected(page).store(0, Ordering::Release);
        flag(self);
        self.handling(page).fetch_sub(1, Ordering::AcqRel);
        self.home_faults_active.fetch_sub(1, Ordering::AcqRel);
        self.wake(page);
    }

    /// Per home page: write faults being resolved (`note_home_fault`).
    fn handling(&self, page: usize) -> &AtomicU64 {
        &self.handling.as_atomic_u64()[page]
    }

    /// Another node's write or atomic on home page `page`: counted as under
    /// way (see `serving`) and, if the page is exported, listed for the
    /// next release to log and protect again, and unprotected until then.
    fn note_home_write(&self, page: usize) {
        let _g = self.lock_page(page);
        self.serving(page).fetch_add(1, Ordering::AcqRel);
        if self.exported(page).load(Ordering::Acquire) == 0 {
            return;
        }
        if self.written(page).swap(1, Ordering::AcqRel) == 0 {
            self.home_written.lock().unwrap().push(page as u32);
        }
        // Every protection came on under the page lock, which this thread
        // holds, and was recorded before it was released; a 0 was stored
        // after the ioctl that lifted it.
        if self.protected(page).load(Ordering::Acquire) == 0 {
            return;
        }
        if let Err(e) =
            self.uffd
                .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), true)
        {
            self.fatal(&format!("cannot unprotect a written home page: {e}"));
        }
        self.protected(page).store(0, Ordering::Release);
    }

    /// At a release: the exported home pages written since the last one are
    /// protected again and logged. Caller holds `consistency`.
    fn log_home_writes(&self) -> Result<(), HeapError> {
        // Write faults being resolved finish listing their pages first.
        while self.home_faults_active.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
        }
        let pages = std::mem::take(&mut *self.home_written.lock().unwrap());
        if pages.is_empty() {
            return Ok(());
        }
        let interval = self.home_intervals.fetch_add(1, Ordering::Relaxed) + 1;
        let mut still_hot = Vec::new();
        for &page in &pages {
            let page = page as usize;
            let _g = self.lock_unserved(page);
            if self.state(page).load(Ordering::Acquire) != HOME {
                // Its home moved away (apply_moves) after it was listed.
                continue;
            }
            while self.handling(page).load(Ordering::Acquire) != 0 {
                std::thread::yield_now();
            }
            if self.stays_unprotected(page, interval) {
                // Written in every recent interval: listed (and logged) again
                // at the next release without a fault to find it.
                still_hot.push(page as u32);
                continue;
            }
            // Cleared before protecting: a write after this faults and
            // flags the page again for the next release.
            self.written(page).store(0, Ordering::Release);
            self.uffd
                .write_protect(self.page_ptr(page).cast(), self.page_size())
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
            self.protected(page).store(1, Ordering::Release);
        }
        self.home_written.lock().unwrap().extend(still_hot);
        self.notices.append(pages);
        Ok(())
    }

    /// Whether exported home page `page`, written in this release interval
    /// (`interval`), stays unprotected and listed for the next one. A page
    /// the home writes in interval after interval (data it updates every
    /// iteration, the stack `main` runs on) would otherwise cost a write
    /// fault each time; after `HOT_STREAK` intervals in a row it is taken
    /// as written in every interval (one notice each, no fault) and
    /// protected again every `HOT_RECHECK` intervals to see if it still is.
    fn stays_unprotected(&self, page: usize, interval: u64) -> bool {
        const HOT_STREAK: u64 = 3;
        const HOT_RECHECK: u64 = 32;
        // Per page: the last interval it was listed in (high bits) and
        // how many in a row (low 16 bits).
        let record = &self.home_streaks.as_atomic_u64()[page];
        let r = record.load(Ordering::Relaxed);
        let (last, streak) = (r >> 16, r & 0xffff);
        let streak = if last + 1 == interval {
            (streak + 1).min(0xffff)
        } else {
            1
        };
        record.store(interval << 16 | streak, Ordering::Relaxed);
        streak >= HOT_STREAK && streak % HOT_RECHECK != 0
    }

    // ------------------------------------------------------------ home migration

    /// How many times `page`'s home has moved.
    fn moves(&self, page: usize) -> &AtomicU8 {
        &self.moves.as_atomic_u8()[page]
    }

    /// At a gathering barrier: the pages of other homes this node asks to
    /// become home to (migrate.rs): those it found itself the only writer
    /// of, besides their home, at the last `threshold` barriers where it
    /// wrote them (`count_streaks`).
    fn proposals(&self) -> Vec<(u32, NodeId)> {
        let candidates = std::mem::take(&mut *self.candidates.lock().unwrap());
        candidates
            .into_iter()
            .filter_map(|page| {
                let home = self.home_if_known(page as usize)?;
                (home != self.rank).then_some((page, home))
            })
            .collect()
    }

    /// After a gathering barrier (every node's notices came with it): the
    /// intervals in which this node wrote a page of another home count up,
    /// and any interval in which a third node wrote it starts the count
    /// again. A page whose count reaches the threshold is a candidate for
    /// the next barrier's proposals.
    fn count_streaks(&self, written: &[Vec<u32>]) {
        let streaks = self.write_streaks.as_atomic_u64();
        for (n, pages) in written.iter().enumerate() {
            if n == self.rank {
                continue;
            }
            for &page in pages {
                let p = page as usize;
                if p < self.layout.pages()
                    && streaks[p].load(Ordering::Relaxed) != 0
                    && self.known_home(p).load(Ordering::Acquire) != n as u64 + 1
                {
                    streaks[p].store(0, Ordering::Relaxed);
                }
            }
        }
        let mut mine = written[self.rank].clone();
        mine.sort_unstable();
        mine.dedup();
        let others: Vec<Vec<u32>> = written
            .iter()
            .map(|w| {
                let mut w = w.clone();
                w.sort_unstable();
                w
            })
            .collect();
        let mut candidates = Vec::new();
        for page in mine {
            let p = page as usize;
            if p >= self.layout.pages() || self.layout.static_home(p).is_some() {
                continue;
            }
            let Some(home) = self.home_if_known(p) else {
                continue;
            };
            let moves = self.moves(p).load(Ordering::Relaxed);
            if home == self.rank || moves >= migrate::MAX_MOVES {
                continue;
            }
            let shared = others
                .iter()
                .enumerate()
                .any(|(n, w)| n != self.rank && n != home && w.binary_search(&page).is_ok());
            let streak = if shared {
                0
            } else {
                (streaks[p].load(Ordering::Relaxed) + 1).min(u16::MAX as u64)
            };
            streaks[p].store(streak, Ordering::Relaxed);
            if streak >= migrate::threshold(moves) {
                candidates.push(page);
            }
        }
        *self.candidates.lock().unwrap() = candidates;
    }

    /// After a gathering barrier's acquire: takes the decisions every node
    /// takes from the same contributions, applies them, and (if any page
    /// moved) waits until every node has.
    fn migrate(&self, parts: &[Vec<u8>]) -> Result<(), HeapError> {
        if parts.len() != self.layout.nodes {
            return Ok(());
        }
        let mut written = Vec::with_capacity(parts.len());
        let mut proposals = Vec::with_capacity(parts.len());
        for part in parts {
            // A node whose notices did not come whole: nobody knows all the
            // writers, so nothing moves this time (on every node alike).
            let Some((pages, end)) = NoticeLog::pages_in(part) else {
                return Ok(());
            };
            written.push(pages);
            proposals.push(migrate::decode(&part[end..]).unwrap_or_default());
        }
        let moves = migrate::decide(&written, &proposals);
        if !moves.is_empty() {
            self.apply_moves(&moves)?;
        }
        self.count_streaks(&written);
        if moves.is_empty() {
            return Ok(());
        }
        // Nobody asks a new home for a page before it has it.
        self.transport.barrier().map_err(HeapError::Transport)?;
        // Now that the new homes have read them, the old homes' copies go
        // too: no node caches a page that moved, so its new home need not
        // notice its own writes to it until another node reads it.
        let _c = self.consistency.lock().unwrap();
        let left: Vec<u32> = {
            let mut cached = self.cached.lock().unwrap();
            moves
                .iter()
                .filter(|m| m.from == self.rank)
                .map(|m| m.page)
                .filter(|&p| cached.remove(p))
                .collect()
        };
        self.invalidate(left)
    }

    /// Applies moves decided at a barrier. Every thread of every node that
    /// touches the region is inside that barrier (OpenMP threads are;
    /// serving threads only serve), so pages are neither faulted nor
    /// written here meanwhile; other nodes may already read the old homes.
    fn apply_moves(&self, moves: &[Move]) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        let me = self.rank;
        let incoming: Vec<Move> = moves.iter().copied().filter(|m| m.to == me).collect();
        // Every cached copy of a moving page goes (with anything unsent, to
        // the old home): here it may miss the old home's own writes, and
        // elsewhere its new home would have to notice its writes to it.
        // The old home's own copy goes once the new home has read it.
        let cached_here: Vec<u32> = {
            let mut cached = self.cached.lock().unwrap();
            moves
                .iter()
                .filter(|m| m.from != me)
                .map(|m| m.page)
                .filter(|&p| cached.remove(p))
                .collect()
        };
        self.invalidate(cached_here)?;
        let mut k = 0;
        while k < incoming.len() {
            let first = incoming[k];
            let run = incoming[k..]
                .iter()
                .enumerate()
                .take_while(|(i, m)| m.page == first.page + *i as u32 && m.from == first.from)
                .count();
            self.move_in(first.page as usize, run, first.from)?;
            k += run;
        }
        let mut left = Vec::new();
        for m in moves.iter().filter(|m| m.from == me) {
            if self.move_out(m.page as usize, m.to)? {
                left.push(m.page);
            }
        }
        if !left.is_empty() {
            self.home_written
                .lock()
                .unwrap()
                .retain(|p| !moves.iter().any(|m| m.page == *p && m.from == me));
            let mut cached = self.cached.lock().unwrap();
            for &p in &left {
                cached.push(p);
            }
        }
        for m in moves {
            let p = m.page as usize;
            if m.from != me && m.to != me {
                let known = self.known_home(p);
                loop {
                    match known.load(Ordering::Acquire) {
                        CLAIMING => std::thread::yield_now(),
                        0 => break,
                        _ => {
                            known.store(m.to as u64 + 1, Ordering::Release);
                            break;
                        }
                    }
                }
            }
            // A page going back to the node it last left is written by
            // both (each sees itself as the only writer besides the home:
            // the home cannot tell its own writes from those it serves):
            // it stays there from now on instead of bouncing until
            // MAX_MOVES (data each node updates in its own part moves once
            // and never comes back).
            let left = &self.left.as_atomic_u8()[p];
            let back = left.load(Ordering::Relaxed) == m.to as u8 + 1;
            left.store(m.from as u8 + 1, Ordering::Relaxed);
            let count = self.moves(p);
            count.store(
                if back {
                    migrate::MAX_MOVES
                } else {
                    count.load(Ordering::Relaxed).saturating_add(1)
                },
                Ordering::Relaxed,
            );
            self.write_streaks.as_atomic_u64()[p].store(0, Ordering::Relaxed);
            if me == 0 {
                // Nodes that have not met the page yet ask the directory.
                let dir = self
                    .directory
                    .expect("first-touch placement has a directory");
                self.transport
                    .compare_swap(0, dir, p as u64 * 8, m.from as u64 + 1, m.to as u64 + 1)
                    .map_err(HeapError::Transport)?;
            }
        }
        Ok(())
    }

    /// Becomes home to pages `first .. first+count` (not cached here),
    /// reading them from their old home `from`. No other node keeps a copy
    /// (`apply_moves`), so they are not exported: this node's writes need
    /// no notice until another node reads them.
    fn move_in(&self, first: usize, count: usize, from: NodeId) -> Result<(), HeapError> {
        let pages = first..first + count;
        for p in pages.clone() {
            loop {
                match self.state(p).load(Ordering::Acquire) {
                    MISSING => {
                        if self
                            .state(p)
                            .compare_exchange(
                                MISSING,
                                FETCHING,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        {
                            break;
                        }
                    }
                    FETCHING => std::thread::yield_now(),
                    INVALIDATING => self.wait_while_invalidating(p),
                    other => {
                        return Err(HeapError::Invalid(format!(
                            "home migration: page {p} is in state {other} here, not missing"
                        )))
                    }
                }
            }
        }
        let size = self.page_size();
        let mut bytes = vec![0u8; count * size];
        if let Err(e) =
            self.transport
                .read(from, self.data, self.layout.page_offset(first), &mut bytes)
        {
            for p in pages {
                self.state(p).store(MISSING, Ordering::Release);
            }
            return Err(HeapError::Transport(e));
        }
        let mut scratch = vec![0u64; self.words_per_page];
        for p in pages.clone() {
            self.known_home(p)
                .store(self.rank as u64 + 1, Ordering::Release);
            self.bitmap.take_page(p, &mut scratch);
            self.written(p).store(0, Ordering::Relaxed);
            self.home_streaks.as_atomic_u64()[p].store(0, Ordering::Relaxed);
            self.exported(p).store(0, Ordering::Release);
        }
        // SAFETY: `bytes` holds count pages; the destination pages are
        // pages of the region, registered with this userfaultfd, and
        // claimed (FETCHING) by this thread.
        unsafe {
            sys::uffd_install(
                &self.uffd,
                bytes.as_ptr(),
                self.page_ptr(first),
                bytes.len(),
                size,
                false,
            )
        }
        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_COPY: {e}")))?;
        for p in pages {
            self.bitmap.set_home(p, true);
            self.state(p).store(HOME, Ordering::Release);
        }
        let _ = self.uffd.wake(self.page_ptr(first).cast(), count * size);
        self.stats
            .pages_migrated_in
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Gives up home page `page` to node `to`: this node's copy becomes a
    /// cached copy of it (its twin the page as it is), which the new home
    /// reads and which is then dropped. True if it was present (the caller
    /// lists it as cached).
    fn move_out(&self, page: usize, to: NodeId) -> Result<bool, HeapError> {
        let _g = self.lock_page(page);
        let present = self.state(page).load(Ordering::Acquire) == HOME;
        if present {
            // This node's writes to it are marked from now on.
            self.bitmap.set_home(page, false);
            let size = self.page_size();
            // SAFETY: the page is present (HOME) and nothing writes it
            // during a barrier; its twin is a page of the twin mapping.
            unsafe { sys::copy_bytes(self.page_ptr(page), self.twin_ptr(page), size) };
            let mut scratch = vec![0u64; self.words_per_page];
            // Marks from its home days were never sent and must not be.
            self.bitmap.take_page(page, &mut scratch);
            self.written(page).store(0, Ordering::Relaxed);
            self.exported(page).store(0, Ordering::Relaxed);
            self.protected(page).store(0, Ordering::Relaxed);
            self.home_streaks.as_atomic_u64()[page].store(0, Ordering::Relaxed);
            let ptr = self.page_ptr(page).cast();
            if self.track {
                self.uffd.write_protect(ptr, size)
            } else {
                self.uffd.remove_write_protection(ptr, size, false)
            }
            .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
        }
        self.known_home(page)
            .store(to as u64 + 1, Ordering::Release);
        if present {
            self.state(page).store(CACHED, Ordering::Release);
            self.stats
                .pages_migrated_out
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(present)
    }

    // ------------------------------------------------------------ faults

    fn fault_loop(self: Arc<Self>) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.uffd);
        // After a fault, look for the next one for a short while before
        // sleeping: faults come in runs (a loop walking remote pages), and a
        // handler that is awake saves the wake-up that dominates their cost.
        let linger = Duration::from_micros(self.linger_us);
        let mut last_event = std::time::Instant::now() - linger;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            if last_event.elapsed() >= linger {
                match sys::poll2(fd, self.wakeup.fd()) {
                    Ok((_, true)) => return,
                    Ok((false, false)) => continue,
                    Ok((true, false)) => {}
                    Err(e) => self.fatal(&format!("poll on userfaultfd failed: {e}")),
                }
            }
            match self.uffd.read_event() {
                Ok(Some(Event::Pagefault { kind, addr, .. })) => {
                    let offset = addr as u64 - self.layout.base;
                    let page = self.layout.page_of_offset(offset);
                    let outcome = match kind {
                        FaultKind::Missing => self.resolve_missing(page),
                        FaultKind::WriteProtected => self.resolve_write_protect(page),
                    };
                    if let Err(e) = outcome {
                        self.fatal(&format!("cannot resolve the page fault at {addr:p}: {e}"));
                    }
                    last_event = std::time::Instant::now();
                }
                // Nothing yet (while lingering), another handler took the
                // event, or an event we did not ask for.
                Ok(_) => std::hint::spin_loop(),
                Err(e) => self.fatal(&format!("reading userfaultfd failed: {e}")),
            }
        }
    }

    /// A fault that cannot be resolved leaves the faulting thread stuck for
    /// ever; end the process with the reason instead (the launcher reports it).
    fn fatal(&self, why: &str) -> ! {
        eprintln!("loco: node {}: {why}", self.rank);
        // SAFETY: _exit ends the process at once, running nothing that could
        // touch the region and wait on a fault nobody will resolve.
        unsafe { libc::_exit(70) }
    }

    fn wait_while_invalidating(&self, page: usize) {
        let (lock, cv) = &self.invalidated;
        let mut g = lock.lock().unwrap();
        while self.state(page).load(Ordering::Acquire) == INVALIDATING {
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
        }
    }

    /// Wakes threads in `wait_while_invalidating` after pages left
    /// INVALIDATING. Taking the mutex first means a waiter is either before
    /// its check of the state (and sees the new one) or already asleep (and
    /// gets the notification): none can check, miss it, then sleep.
    fn notify_invalidated(&self) {
        drop(self.invalidated.0.lock().unwrap());
        self.invalidated.1.notify_all();
    }

    fn wake(&self, page: usize) {
        let _ = self.uffd.wake(self.page_ptr(page).cast(), self.page_size());
    }

    fn resolve_missing(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                MISSING => {
                    if self
                        .state(page)
                        .compare_exchange(MISSING, FETCHING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return timed(&self.stats.fault_ns, || self.fetch_and_install(page));
                    }
                }
                // Installing the page wakes every thread waiting on it.
                FETCHING => return Ok(()),
                INVALIDATING => self.wait_while_invalidating(page),
                _ => {
                    self.wake(page);
                    return Ok(());
                }
            }
        }
    }

    fn fetch_and_install(&self, page: usize) -> Result<(), HeapError> {
        let home = match self.home_of(page) {
            Ok(h) => h,
            Err(e) => {
                self.state(page).store(MISSING, Ordering::Release);
                return Err(e);
            }
        };
        let dst = self.page_ptr(page);
        let size = self.page_size();
        // Every install leaves the faulting threads asleep until the page's
        // bookkeeping is done: a woken thread may release at once, and its
        // release must already see the page as cached.
        if home == self.rank {
            let run = self.home_run(page);
            if let Err(e) = self.zero_pages(page, run) {
                for q in page..page + run {
                    self.state(q).store(MISSING, Ordering::Release);
                }
                let _ = self.uffd.wake(dst.cast(), run * size);
                return Err(e);
            }
            for q in page..page + run {
                self.bitmap.set_home(q, true);
                self.state(q).store(HOME, Ordering::Release);
            }
            self.stats.home_faults.fetch_add(1, Ordering::Relaxed);
            let _ = self.uffd.wake(dst.cast(), run * size);
            return Ok(());
        }
        let gate = self.fetch_gate.read().unwrap();
        // Pages after this one that come in the same read (see read_ahead).
        let run = self.read_ahead(page, home);
        let len = run * size;
        let pages = page..page + run;
        let give_up = |why: HeapError| {
            for q in pages.clone() {
                self.state(q).store(MISSING, Ordering::Release);
            }
            // Threads that faulted on the read-ahead pages retry and fetch them.
            for q in pages.clone().skip(1) {
                self.wake(q);
            }
            Err(why)
        };
        let twin = self.twin_ptr(page);
        // SAFETY: the twins of pages page..page+run are contiguous, and only
        // this thread, which moved those pages to FETCHING, touches them
        // until they are CACHED.
        let twin_slice = unsafe { std::slice::from_raw_parts_mut(twin, len) };
        let fetched =
            self.transport
                .read(home, self.data, self.layout.page_offset(page), twin_slice);
        if let Err(e) = fetched {
            return give_up(HeapError::Transport(e));
        }
        // Marks left from before the pages were last dropped were already covered.
        let mut scratch = vec![0u64; self.words_per_page];
        for q in pages.clone() {
            self.bitmap.take_page(q, &mut scratch);
            self.written(q).store(0, Ordering::Relaxed);
        }
        if let Err(e) = self.install(page, twin, len) {
            return give_up(e);
        }
        self.stats.remote_faults.fetch_add(1, Ordering::Relaxed);
        self.stats
            .pages_read_ahead
            .fetch_add(run as u64 - 1, Ordering::Relaxed);
        self.stats
            .bytes_fetched
            .fetch_add(len as u64, Ordering::Relaxed);
        let over = {
            let mut cached = self.cached.lock().unwrap();
            for q in pages.clone() {
                self.state(q).store(CACHED, Ordering::Release);
                cached.push(q as u32);
            }
            cached.len() > self.cache_limit
        };
        drop(gate);
        let _ = self.uffd.wake(dst.cast(), len);
        if over {
            let (flag, cv) = &self.evict;
            *flag.lock().unwrap() = true;
            cv.notify_one();
        }
        Ok(())
    }

    /// How many of this node's never-touched home pages from `page` on
    /// (which the caller claimed) to map at once: the next ones that are
    /// known to be home here and untouched, up to `CLAIM_AHEAD`, each
    /// claimed (MISSING -> FETCHING) here. A loop that writes its part of
    /// an array then faults once per run instead of once per page (the
    /// zero page costs no memory until written). Not in the prefix (the
    /// stack's guard page lies there).
    fn home_run(&self, page: usize) -> usize {
        if self.layout.page_offset(page) < self.layout.node0_prefix() {
            return 1;
        }
        let mine = |q: usize| self.home_if_known(q) == Some(self.rank);
        self.claim_following(page, CLAIM_AHEAD, self.layout.pages(), mine)
    }

    /// Claims (MISSING -> FETCHING) the pages after `page` (which the
    /// caller claimed) while `wanted` says so, up to `limit` pages in all
    /// and below page `end`; returns how many pages the run has.
    fn claim_following(
        &self,
        page: usize,
        limit: usize,
        end: usize,
        wanted: impl Fn(usize) -> bool,
    ) -> usize {
        let mut run = 1;
        while run < limit && page + run < end {
            let q = page + run;
            if !wanted(q)
                || self
                    .state(q)
                    .compare_exchange(MISSING, FETCHING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                break;
            }
            run += 1;
        }
        run
    }

    /// Maps the zero page at `count` home pages from `page` (claimed by
    /// the caller), leaving the threads that faulted on them asleep.
    fn zero_pages(&self, page: usize, count: usize) -> Result<(), HeapError> {
        let size = self.page_size();
        // SAFETY: the pages are pages of our registered region, claimed
        // (FETCHING) by this thread, so nothing else maps them meanwhile.
        let all = unsafe {
            self.uffd
                .zeropage(self.page_ptr(page).cast(), count * size, false)
        };
        let eexist = |e: &userfaultfd::Error| matches!(e, userfaultfd::Error::ZeropageFailed(e) if *e as i32 == libc::EEXIST);
        match all {
            Ok(_) => Ok(()),
            // One of them is mapped already (a write through another
            // mapping of it): the rest one by one.
            Err(e) if eexist(&e) => (page..page + count).try_for_each(|q| {
                // SAFETY: as above, for one page.
                match unsafe { self.uffd.zeropage(self.page_ptr(q).cast(), size, false) } {
                    Ok(_) => Ok(()),
                    Err(e) if eexist(&e) => Ok(()),
                    Err(e) => Err(HeapError::Userfaultfd(format!("UFFDIO_ZEROPAGE: {e}"))),
                }
            }),
            Err(e) => Err(HeapError::Userfaultfd(format!("UFFDIO_ZEROPAGE: {e}"))),
        }
    }

    /// Installs `len` bytes from `src` as the pages from `page` on (all
    /// claimed by this thread), write-protected in tracked mode, leaving the
    /// faulting threads asleep: all of them, or (on error) none.
    fn install(&self, page: usize, src: *const u8, len: usize) -> Result<(), HeapError> {
        // SAFETY: src holds `len` readable bytes; the destination pages are
        // pages of the region, registered (in write-protect mode too) with
        // this userfaultfd, and claimed (FETCHING) by this thread, so
        // nothing else installs or drops them meanwhile.
        unsafe {
            sys::uffd_install(
                &self.uffd,
                src,
                self.page_ptr(page),
                len,
                self.page_size(),
                self.track,
            )
        }
        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_COPY: {e}")))
    }

    /// How many pages from `page` on to fetch in one read: when the page
    /// before this one is cached (a sequential scan), up to `read_ahead`
    /// pages that live on the same home and nobody has yet, each claimed
    /// (MISSING -> FETCHING) here; otherwise just this one. Only pages
    /// whose home is already known count (read-ahead never claims a
    /// first-touch home).
    fn read_ahead(&self, page: usize, home: NodeId) -> usize {
        let sequential = page > 0 && self.state(page - 1).load(Ordering::Acquire) == CACHED;
        // In the prefix only over the globals: past them lie main's stack and
        // the guard page below it, which its home must never be asked to read.
        let end = if self.layout.page_offset(page) < self.layout.node0_prefix() {
            self.layout.page_of_offset(self.layout.globals())
        } else {
            self.layout.pages()
        };
        if !sequential || page >= end {
            return 1;
        }
        let limit = self.read_ahead.min(self.cache_limit / 4).max(1);
        self.claim_following(page, limit, end, |q| self.home_if_known(q) == Some(home))
    }

    fn resolve_write_protect(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                INVALIDATING => self.wait_while_invalidating(page),
                CACHED => {
                    let _g = self.lock_page(page);
                    if self.state(page).load(Ordering::Acquire) != CACHED {
                        continue;
                    }
                    self.written(page).store(1, Ordering::Release);
                    self.stats.write_faults.fetch_add(1, Ordering::Relaxed);
                    self.uffd
                        .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), true)
                        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
                    return Ok(());
                }
                // An exported home page (write notices): noted, unprotected.
                HOME => {
                    self.stats.write_faults.fetch_add(1, Ordering::Relaxed);
                    self.note_home_fault(page);
                    return Ok(());
                }
                // Dropped or being fetched: retrying the write faults as missing.
                _ => {
                    self.wake(page);
                    return Ok(());
                }
            }
        }
    }

    // ------------------------------------------------------------ consistency

    /// Gathers the modified bytes of `page` into `batch` and refreshes its
    /// twin. `diff` compares against the twin as well as reading the bitmap.
    fn collect(&self, page: usize, diff: bool, batch: &mut Batch) -> Result<(), HeapError> {
        let size = self.page_size();
        // Before taking the marks: an error here must leave them in place.
        let home = self.home_of(page)?;
        let mut bits = vec![0u64; self.words_per_page];
        self.bitmap.take_page(page, &mut bits);
        let (data, twin) = (self.page_ptr(page), self.twin_ptr(page));
        // SAFETY: the page is present (CACHED or INVALIDATING: only this
        // thread, holding `consistency`, drops pages) and so is its twin.
        // Other threads of this node may be writing the page right now; what
        // this reads is a snapshot, and any byte written after it is marked
        // (or differs from the twin) again for the next release.
        let (page_bytes, twin_bytes) = unsafe {
            (
                std::slice::from_raw_parts(data as *const u8, size),
                std::slice::from_raw_parts(twin as *const u8, size),
            )
        };
        if diff {
            mark_differences(page_bytes, twin_bytes, &mut bits);
            self.stats.pages_diffed.fetch_add(1, Ordering::Relaxed);
        }
        let written = bits.clone();
        keep_differences(page_bytes, twin_bytes, &mut bits);
        bridge_written_gaps(&mut bits, &written);
        if bits.iter().all(|&w| w == 0) {
            return Ok(());
        }
        let base = self.layout.page_offset(page);
        let mut snapshot = vec![0u8; size];
        for_each_run(&bits, |start, len| {
            let run = &mut snapshot[start..start + len];
            // SAFETY: start+len <= size; the source is the present page.
            unsafe { sys::copy_bytes(data.add(start), run.as_mut_ptr(), len) };
            batch.push(home, base + start as u64, run);
        });
        Ok(())
    }

    /// Sends a batch. Only once the homes have the bytes do the twins take
    /// them (the twin is what the home has); if the send fails, the bytes
    /// are marked again, so nothing collected is lost: the next release
    /// (or a restored page's diff against its unchanged twin) sends them.
    /// Caller holds `consistency` (no page of the batch is dropped meanwhile).
    fn send_batch(&self, batch: &Batch) -> Result<(u64, u64), HeapError> {
        match batch.send(&*self.transport, self.data) {
            Ok(sent) => {
                // The bytes are at their homes: other nodes may learn of them.
                let mut pages: Vec<u32> = batch
                    .runs()
                    .map(|(offset, _)| self.layout.page_of_offset(offset) as u32)
                    .collect();
                pages.dedup();
                self.notices.append(pages);
                for (offset, bytes) in batch.runs() {
                    // SAFETY: offset..offset+len lies in one page of the
                    // region, so in the twin mapping of the same size, and
                    // that page's twin is only written under `consistency`.
                    unsafe {
                        sys::copy_bytes(
                            bytes.as_ptr(),
                            self.twins.ptr().add(offset as usize),
                            bytes.len(),
                        )
                    };
                }
                Ok(sent)
            }
            Err(e) => {
                self.mark_again(batch);
                Err(e)
            }
        }
    }

    /// Marks a batch's bytes dirty again (it was not sent), so the next
    /// release sends them.
    fn mark_again(&self, batch: &Batch) {
        for (offset, bytes) in batch.runs() {
            self.bitmap.mark(offset, bytes.len() as u64);
        }
    }

    fn release(&self) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        let pages: Vec<u32> = self.cached.lock().unwrap().snapshot();
        self.release_pages_locked(pages)?;
        self.log_home_writes()?;
        self.stats.releases.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends this node's writes to `page` home and drops its cached copy
    /// (waiting for a fetch under way to finish first: it may have read the
    /// home before the change the caller must see), so the next access
    /// fetches the home's current bytes.
    fn refresh_page(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                CACHED => return self.drop_cached_page(page),
                FETCHING => std::thread::yield_now(),
                INVALIDATING => self.wait_while_invalidating(page),
                _ => return Ok(()),
            }
        }
    }

    /// Sends this node's writes to `pages` (cached copies) home; a release
    /// of all of them is `release`.
    fn release_pages(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        self.release_pages_locked(pages)
    }

    /// `release_pages`, for a caller holding `consistency`.
    fn release_pages_locked(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        // Pages written by unmarked code: clear the flag, then protect, then
        // compare, so that a write after the protection faults and flags the
        // page again. No page can be dropped meanwhile: that needs `consistency`.
        let mut work: Vec<(usize, bool)> = Vec::new();
        for page in pages {
            let page = page as usize;
            // Pages nobody wrote are skipped without a lock or a bitmap scan.
            if !self.bitmap.page_has_marks(page) && self.written(page).load(Ordering::Acquire) == 0
            {
                continue;
            }
            if self.state(page).load(Ordering::Acquire) != CACHED {
                continue;
            }
            let diff = self.track && self.written(page).swap(0, Ordering::AcqRel) != 0;
            work.push((page, diff));
        }
        let mut flagged: Vec<usize> = work.iter().filter(|w| w.1).map(|w| w.0).collect();
        flagged.sort_unstable();
        for (first, count) in contiguous(&flagged) {
            self.uffd
                .write_protect(self.page_ptr(first).cast(), count * self.page_size())
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
        }
        let mut batch = Batch::new(self.layout.nodes);
        for (page, diff) in work {
            let _g = self.lock_page(page);
            if let Err(e) = self.collect(page, diff, &mut batch) {
                self.mark_again(&batch);
                return Err(e);
            }
        }
        let (bytes, runs) = self.send_batch(&batch)?;
        self.stats
            .bytes_released
            .fetch_add(bytes, Ordering::Relaxed);
        self.stats.runs_released.fetch_add(runs, Ordering::Relaxed);
        Ok(())
    }

    fn acquire(&self) -> Result<(), HeapError> {
        self.acquire_learning(|| {
            if self.selective {
                self.notices.learn(&*self.transport)
            } else {
                Ok(Learned::Everything)
            }
        })
    }

    /// An acquire that learns what changed from `learn`.
    fn acquire_learning(
        &self,
        learn: impl FnOnce() -> Result<Learned, HeapError>,
    ) -> Result<(), HeapError> {
        let outcome = self.acquire_once(learn);
        if let Err(FailedInvalidation { pages, error }) = outcome {
            // The notices are spent: remember what they named.
            self.stale.lock().unwrap().extend(pages);
            return Err(error);
        }
        Ok(())
    }

    fn acquire_once(
        &self,
        learn: impl FnOnce() -> Result<Learned, HeapError>,
    ) -> Result<(), FailedInvalidation> {
        let _c = self.consistency.lock().unwrap();
        // What other nodes changed, learned after the synchronisation that
        // made their releases happen before this acquire.
        let learned = learn().map_err(|error| FailedInvalidation {
            pages: Vec::new(),
            error,
        })?;
        // Fetches under way finish (their pages join the list) first: one
        // may have read a page before the release this acquire must see.
        let pages: Vec<u32> = {
            let _gate = self.fetch_gate.write().unwrap();
            let mut cached = self.cached.lock().unwrap();
            // Pages an earlier acquire had to keep (its write-back failed)
            // are stale all the same.
            let mut noticed = std::mem::take(&mut *self.stale.lock().unwrap());
            match learned {
                Learned::Everything => cached.take_all(),
                Learned::Pages(more) => {
                    noticed.extend(more);
                    noticed
                        .into_iter()
                        .filter(|&page| cached.remove(page))
                        .collect()
                }
            }
        };
        if let Err(error) = self.invalidate(pages.clone()) {
            return Err(FailedInvalidation { pages, error });
        }
        self.stats.acquires.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends the pages' modifications home and drops them. Caller holds `consistency`.
    fn invalidate(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        let mut victims: Vec<usize> = Vec::with_capacity(pages.len());
        for page in pages {
            let page = page as usize;
            let _g = self.lock_page(page);
            if self.state(page).load(Ordering::Acquire) == CACHED {
                self.state(page).store(INVALIDATING, Ordering::Release);
                victims.push(page);
            }
        }
        victims.sort_unstable();
        let size = self.page_size();
        // From here on no write can land in these pages unseen: writers fault
        // and wait (resolve_write_protect) until the page is gone.
        for (first, count) in contiguous(&victims) {
            self.uffd
                .write_protect(self.page_ptr(first).cast(), count * size)
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
        }
        let mut batch = Batch::new(self.layout.nodes);
        let collected = victims
            .iter()
            // In tracked mode a page nobody wrote since it was last protected
            // has no write-fault flag (a write would have faulted and set
            // it, the protection is back on by now): its twin is its copy,
            // there is nothing to compare. Marks are still taken.
            .try_for_each(|&page| {
                let diff = !self.track || self.written(page).load(Ordering::Acquire) != 0;
                self.collect(page, diff, &mut batch)
            })
            .and_then(|()| self.send_batch(&batch));
        let (bytes, runs) = match collected {
            Ok(sent) => sent,
            Err(e) => {
                // Keep the pages (and their unsent bytes) rather than lose data.
                self.restore(&victims);
                return Err(e);
            }
        };
        for (first, count) in contiguous(&victims) {
            let offset = first * size;
            self.map
                .discard(offset, count * size)
                .and_then(|()| self.twins.discard(offset, count * size))
                .map_err(|e| HeapError::Userfaultfd(format!("madvise(MADV_DONTNEED): {e}")))?;
        }
        for &page in &victims {
            self.written(page).store(0, Ordering::Relaxed);
            self.state(page).store(MISSING, Ordering::Release);
        }
        self.notify_invalidated();
        self.stats
            .bytes_released
            .fetch_add(bytes, Ordering::Relaxed);
        self.stats.runs_released.fetch_add(runs, Ordering::Relaxed);
        self.stats
            .pages_invalidated
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Drops one cached page (after sending its modifications home).
    fn drop_cached_page(&self, page: usize) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        let present = { self.cached.lock().unwrap().remove(page as u32) };
        if present {
            self.invalidate(vec![page as u32])?;
        }
        Ok(())
    }

    /// Puts pages whose invalidation failed back in the cache, writable and flagged.
    fn restore(&self, pages: &[usize]) {
        for &page in pages {
            self.written(page).store(1, Ordering::Release);
            let _ = self.uffd.remove_write_protection(
                self.page_ptr(page).cast(),
                self.page_size(),
                true,
            );
            self.state(page).store(CACHED, Ordering::Release);
            self.cached.lock().unwrap().push(page as u32);
        }
        self.notify_invalidated();
    }

    fn evict_loop(self: Arc<Self>) {
        loop {
            {
                let (flag, cv) = &self.evict;
                let mut pending = flag.lock().unwrap();
                while !*pending && !self.stopping.load(Ordering::Acquire) {
                    pending = cv.wait(pending).unwrap();
                }
                *pending = false;
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let _c = self.consistency.lock().unwrap();
            // Down to 7/8 of the limit, oldest first, so eviction runs in batches.
            let victims: Vec<u32> = {
                let mut cached = self.cached.lock().unwrap();
                let keep = self.cache_limit - self.cache_limit / 8;
                let n = cached.len().saturating_sub(keep);
                cached.take_oldest(n)
            };
            let n = victims.len() as u64;
            if let Err(e) = self.invalidate(victims) {
                // The pages are back in the cache with their unsent bytes
                // (invalidate restores them), but a home that cannot take
                // writes means the run cannot go on correctly: end it,
                // naming the reason, rather than carry on without the data.
                self.fatal(&format!("writing back evicted pages failed: {e}"));
            }
            self.stats.evictions.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Runs of consecutive page numbers in a sorted list, as (first, count).
fn contiguous(pages: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &p in pages {
        match out.last_mut() {
            Some((first, count)) if *first + *count == p => *count += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::contiguous;

    #[test]
    fn contiguous_groups_neighbouring_pages() {
        assert_eq!(
            contiguous(&[1, 2, 3, 7, 9, 10]),
            vec![(1, 3), (7, 1), (9, 2)]
        );
        assert_eq!(contiguous(&[]), vec![]);
    }
}
