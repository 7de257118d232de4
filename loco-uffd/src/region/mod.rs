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
use loco_rdma::{Access, Finish, MemoryRegion, NodeId, RegionId, Transport};
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
use batch::Batch;

mod batch;
mod consistency;
mod faults;
mod fresh;
mod homes;
mod migration;
mod tracking;

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

/// Pages per bit of `Inner::tracked` (256 KiB): small enough that a scan
/// skips most of the pages nobody watches, large enough that watched
/// pages come in few stretches (one ioctl each).
const TRACKED_CHUNK: usize = 64;

/// Most pages one remote fault fetches in a long sequential scan (the
/// window starts at `RegionOptions::read_ahead` and doubles as the scan
/// goes on: `read_ahead` in faults.rs).
const MAX_READ_AHEAD: usize = 256;

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
    /// Pages one remote fault fetches when it continues a sequential scan,
    /// to begin with: the window doubles as the scan goes on, up to
    /// `MAX_READ_AHEAD` (1: no read-ahead).
    pub read_ahead: usize,
    /// An acquire drops only the cached pages other nodes' write notices
    /// name (notices.rs); false: every cached page, as before.
    pub selective_invalidation: bool,
    /// First-touch pages move their home to the node that keeps writing
    /// them (migrate.rs; needs selective invalidation).
    pub home_migration: bool,
    /// Find written pages with `UFFD_FEATURE_WP_ASYNC` and PAGEMAP_SCAN
    /// (the kernel unprotects a page on its first write without a fault
    /// message; each release scans for them) where the kernel has it
    /// (Linux 6.8: WP_ASYNC and UFFDIO_MOVE); false, or an older kernel:
    /// a write-protect fault per page per interval, resolved by a handler.
    pub async_write_tracking: bool,
    /// For tests: how long a fetched page stays installed (present) before
    /// it is listed as cached, or a home page mapped as zeros before it is
    /// HOME, to widen those windows in race tests. Zero in real runs.
    pub hold_install: Duration,
    /// For tests: how long a node that becomes home to pages (home
    /// migration) waits before it reads them from their old home, to
    /// widen the window in which the old home holds them for it. Zero in
    /// real runs.
    pub hold_move_in: Duration,
    /// A fault on a page nobody has written maps zeros instead of reading
    /// its home (fresh.rs; with selective invalidation only).
    pub zero_fill_fresh: bool,
    /// Write-back sends every changed byte in runs of whole words with a
    /// mask of the changed bytes, where the transport applies such runs
    /// itself (tcp); false: byte-exact runs of marked or changed bytes
    /// (what RDMA does).
    pub masked_write_back: bool,
    /// What home pages live in (see [`HomeMemory`]).
    pub home_memory: HomeMemory,
    /// For tests: make every page of the transport's view of a shared
    /// file present at start, before any fault thread runs, as pinning it
    /// for a NIC (`ibv_reg_mr`) does. Ignored for anonymous memory.
    pub populate_home_view: bool,
}

/// What home pages live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeMemory {
    /// The region's own anonymous memory. The transport reaches it through
    /// a serving thread, which makes a page present first
    /// (`prepare_home`) and keeps track of who reads and writes it (write
    /// notices, untouched pages): what the tcp transport does.
    Anonymous,
    /// A shared file (memfd) mapped twice: as the region, where this
    /// node's threads take minor faults on home pages they have not
    /// mapped yet (UFFDIO_CONTINUE), and as a second view, registered with
    /// the transport, that nothing faults in. A NIC can register that view
    /// (pinning it touches no page of the region) and read and write home
    /// pages at any time without this node's CPU. Nothing is told of
    /// those accesses: readers mark what they read in the home's export
    /// map, which keeps write notices, but there are no zero-filled
    /// pages and no home migration.
    SharedFile,
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
            async_write_tracking: true,
            hold_install: Duration::ZERO,
            hold_move_in: Duration::ZERO,
            zero_fill_fresh: true,
            masked_write_back: true,
            home_memory: HomeMemory::Anonymous,
            populate_home_view: false,
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
    /// Pages nobody has written are mapped as zeros, not fetched (fresh.rs).
    fresh_pages: bool,
    /// Write-back sends masked runs (`collect_masked`): the transport
    /// applies them in one operation.
    masked_write_back: bool,
    /// This node's touched map (one byte per page, registered as
    /// `touched_region`), and per page whether a reader was told it is
    /// untouched (`promised`); per other home's page what this node knows
    /// (`fresh`), valid in acquire epoch `fresh_epoch`.
    touched_map: Arc<MemoryRegion>,
    touched_region: RegionId,
    promised: Mapping,
    fresh: Mapping,
    fresh_epoch: AtomicU64,
    /// Never unmapped (see `Drop for Inner`).
    map: std::mem::ManuallyDrop<Mapping>,
    /// With `HomeMemory::SharedFile`: the file behind `map`, and a view
    /// of all of it (never unmapped either), of which only `served` is
    /// registered with the transport; an invalidation reads cached pages
    /// of other homes through the rest (`detach`).
    file: Option<sys::SharedFile>,
    home_view: Option<std::mem::ManuallyDrop<Mapping>>,
    /// With home memory in a file and selective invalidation: per page,
    /// whether this node has told its home it reads it (`announced`), and
    /// this node's export map, where other nodes mark the home pages they
    /// read (one byte a page, registered; `discover_exports`).
    announced: Mapping,
    export_map: Option<(Arc<MemoryRegion>, RegionId)>,
    /// The offsets of the region registered with the transport as `data`:
    /// the whole region (anonymous home memory) or the part that can be
    /// home here (`Layout::home_span`; empty: none is).
    served: std::ops::Range<u64>,
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
    /// Signalled (with `cached`'s mutex) when eviction has made room.
    room: Condvar,
    /// Per page: set when it is written while cached, or fetched again
    /// soon after it was evicted; the eviction CLOCK spares it once.
    referenced: Mapping,
    /// Per page: `evictions` when it was last evicted, + 1 (0: never).
    evicted_at: Mapping,
    /// Pages installed by fetches so far, and per page that count when it
    /// was installed: read-ahead follows a scan only behind a page fetched
    /// recently (`read_ahead`), not any page that happens to be cached.
    fetch_seq: AtomicU64,
    fetched_at: Mapping,
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
    /// See `RegionOptions::hold_install`.
    hold_install: Duration,
    /// See `RegionOptions::hold_move_in`.
    hold_move_in: Duration,
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
    /// Written pages are found by PAGEMAP_SCAN at each release (WP_ASYNC:
    /// no write-protect fault reaches a handler); see `scan_writes`.
    async_wp: bool,
    /// With `async_wp`: where an invalidation moves its pages (`invalidate`).
    scratch: Option<Mapping>,
    scanner: Option<sys::WrittenScanner>,
    /// With `async_wp`: one bit per `TRACKED_CHUNK` pages, set once one of
    /// them is cached or exported; a scan covers only those chunks (it
    /// costs a few nanoseconds per present page it walks).
    tracked: Mapping,
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
    pages_carried: AtomicU64,
    pages_zero_filled: AtomicU64,
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
        if config.transport == loco_cluster::TransportKind::Verbs
            && options.home_memory == HomeMemory::Anonymous
            && config.num_nodes() > 1
        {
            // Registering it would pin (touch) pages only fault handlers
            // may map, and the NIC would bypass `prepare_home`.
            return Err(HeapError::Invalid(
                "an RDMA NIC cannot serve home pages in anonymous memory: use HomeMemory::SharedFile with the verbs transport".into(),
            ));
        }
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
        let file = match options.home_memory {
            HomeMemory::Anonymous => {
                map.commit(size)
                    .map_err(|e| map_error("shared region", e))?;
                None
            }
            HomeMemory::SharedFile => {
                let file = sys::SharedFile::create("loco-region", size)
                    .map_err(|e| map_error("shared region's file (memfd)", e))?;
                file.map_over(&map)
                    .map_err(|e| map_error("shared region's file", e))?;
                Some(file)
            }
        };
        map.no_huge_pages();
        let open_uffd = |features: FeatureFlags| {
            UffdBuilder::new()
                .close_on_exec(true)
                .non_blocking(true)
                .user_mode_only(false)
                .require_features(features)
                .create()
        };
        let async_features = FeatureFlags::PAGEFAULT_FLAG_WP
            | FeatureFlags::from_bits_retain(sys::UFFD_FEATURE_WP_ASYNC | sys::UFFD_FEATURE_MOVE);
        // Shared memory needs missing, minor and write-protect faults on it.
        let (base_features, needs) = match file {
            None => (FeatureFlags::PAGEFAULT_FLAG_WP, "Linux 5.7"),
            Some(_) => (
                FeatureFlags::PAGEFAULT_FLAG_WP
                    | FeatureFlags::MISSING_SHMEM
                    | FeatureFlags::from_bits_retain(
                        sys::UFFD_FEATURE_MINOR_SHMEM | sys::UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
                    ),
                "Linux 5.19 for home memory in a shared file",
            ),
        };
        // A kernel without WP_ASYNC or MOVE refuses them (EINVAL): then
        // write-protect faults it is.
        let (uffd, async_wp) = match (options.async_write_tracking && layout.nodes > 1)
            .then(|| open_uffd(async_features | base_features).ok())
            .flatten()
        {
            Some(uffd) => (uffd, true),
            None => (open_uffd(base_features)
            .map_err(|e| HeapError::Userfaultfd(format!(
                "cannot open userfaultfd with write-protect support: {e} \
                 (LOCO needs {needs} or newer; a user other than root needs read and write access to /dev/userfaultfd on Linux 6.1 and newer, vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE before)"
            )))?, false),
        };
        // A cluster of one is home to every page: no page is ever fetched,
        // cached or exported, so nothing needs a fault handler, and the
        // kernel's own page faults (one per page, no hand-off to a handler
        // thread) fill the region as they fill any anonymous memory.
        let demand_paged = layout.nodes > 1;
        if demand_paged {
            // Minor faults: pages of the file not mapped here yet (home
            // pages another node wrote through the transport's view).
            let minor = if file.is_some() {
                RegisterMode::MINOR
            } else {
                RegisterMode::empty()
            };
            uffd.register_with_mode(
                map.ptr().cast(),
                size,
                RegisterMode::MISSING | RegisterMode::WRITE_PROTECT | minor,
            )
            .map_err(|e| HeapError::Userfaultfd(format!("cannot register the region: {e}")))?;
        }
        // With WP_ASYNC, an invalidation moves its pages here (UFFDIO_MOVE,
        // which needs a destination registered with the same userfaultfd)
        // to take them out of the program's reach at once, then reads them.
        // (A shared file needs none: an invalidation unmaps its pages from
        // the region and reads them from the file, see `detach`.)
        let scratch = if async_wp && file.is_none() {
            let scratch =
                Mapping::anywhere(size).map_err(|e| map_error("invalidation scratch", e))?;
            scratch.no_huge_pages();
            uffd.register_with_mode(
                scratch.ptr().cast(),
                size,
                RegisterMode::MISSING | RegisterMode::WRITE_PROTECT,
            )
            .map_err(|e| {
                HeapError::Userfaultfd(format!("cannot register the invalidation scratch: {e}"))
            })?;
            Some(scratch)
        } else {
            None
        };
        let scanner = if async_wp {
            Some(sys::WrittenScanner::open().map_err(|e| {
                HeapError::Userfaultfd(format!("cannot open /proc/self/pagemap: {e}"))
            })?)
        } else {
            None
        };
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
        // The part of the file's view the transport is given: only what
        // can be home here (a NIC pins what is registered: the whole view
        // would be the whole cluster's memory on every node). Every node
        // addresses a page at its home only (`home_of`: fetches, write-back
        // scatters, atomics), so nothing reaches past it.
        // Anonymous home memory is served whole: it is not pinned, and
        // `prepare_home` is told of every access.
        let served = match &file {
            Some(_) => layout.home_span(rank),
            None => 0..layout.size,
        };
        let home_view = match &file {
            Some(file) => {
                let view = file
                    .view()
                    .map_err(|e| map_error("the transport's view of the region's file", e))?;
                if options.populate_home_view {
                    // Not registered with the userfaultfd: nothing faults,
                    // no handler is needed (none runs yet). What pinning
                    // does: the served part only.
                    view.populate(served.start as usize, (served.end - served.start) as usize)
                        .map_err(|e| map_error("populating the transport's view", e))?;
                }
                Some(std::mem::ManuallyDrop::new(view))
            }
            None => None,
        };
        let exposed = match &home_view {
            // A transport region cannot be empty, and registration is
            // collective (every node registers one, under the same id):
            // a node that homes nothing registers one anonymous page, at
            // offsets past the region's end, so that every access to its
            // part of the region is refused (none is made: nothing is
            // home here) and no page of the file is pinned.
            Some(_) if served.is_empty() => MemoryRegion::anonymous(layout.page_size as usize)
                .map_err(|e| map_error("the transport's stand-in for no home pages", e))?
                .starting_at(layout.size),
            // SAFETY: the view is ours, lives as long as the process (it
            // is never unmapped) and covers the file's `size` bytes;
            // `served` (a home span) lies inside 0..size, so the pointer
            // and the `served.end - served.start` bytes after it do too.
            Some(view) => unsafe {
                MemoryRegion::from_raw(
                    std::ptr::NonNull::new(view.ptr().add(served.start as usize)).expect("mapped"),
                    (served.end - served.start) as usize,
                )
            }
            .starting_at(served.start),
            // SAFETY: the mapping is ours, lives as long as the process (it
            // is never unmapped, see Drop), and covers exactly
            // base..base+size.
            None => unsafe {
                MemoryRegion::from_raw(std::ptr::NonNull::new(map.ptr()).expect("mapped"), size)
            }
            .with_prepare(prepare),
        }
        // Program threads store into home pages directly, also into the
        // other bytes of words that atomics update at the home: those
        // atomics must be the home CPU's, not a NIC's.
        .shared_with_cpu_stores();
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
        let touched_map = {
            let this = this.clone();
            let hook = Box::new(move |offset: u64, len: usize, _: Access| {
                let inner = this.get().and_then(Weak::upgrade)?;
                inner.promise_untouched(offset as usize, len);
                None
            });
            Arc::new(
                MemoryRegion::anonymous(pages)
                    .map_err(|e| HeapError::Map {
                        base: 0,
                        size: pages as u64,
                        why: format!("touched map: {e}"),
                    })?
                    .with_prepare(hook),
            )
        };
        let touched_region = transport
            .register(touched_map.clone())
            .map_err(HeapError::Transport)?;
        let notices = NoticeLog::new(&*transport)?;
        // Write notices of home pages need the home to know which of its
        // pages other nodes read: anonymous home memory learns it in
        // `prepare_home` (tcp's serving threads see every access); home
        // memory in a file, which a NIC serves unseen, from the readers,
        // who mark what they are about to read in its export map
        // (`read_from_home`, `discover_exports`). Anonymous home memory
        // under verbs is refused above.
        let selective = options.selective_invalidation;
        // Registered by every node (registration is collective; the file
        // is the same choice everywhere), written only by other nodes.
        let export_map = match &file {
            Some(_) => {
                let map = Arc::new(MemoryRegion::anonymous(pages).map_err(|e| HeapError::Map {
                    base: 0,
                    size: pages as u64,
                    why: format!("export map: {e}"),
                })?);
                let id = transport
                    .register(map.clone())
                    .map_err(HeapError::Transport)?;
                Some((map, id))
            }
            None => None,
        };
        let inner = Arc::new(Inner {
            notices,
            selective,
            // Both rest on `prepare_home` seeing every access.
            fresh_pages: selective && file.is_none() && options.zero_fill_fresh && layout.nodes > 1,
            masked_write_back: options.masked_write_back && transport.has_scatter_masked(),
            touched_map,
            touched_region,
            promised: aux(pages)?,
            fresh: aux(pages * 8)?,
            fresh_epoch: AtomicU64::new(1),
            migration: selective
                && file.is_none()
                && options.home_migration
                && layout.placement == Placement::FirstTouch
                && layout.nodes > 1,
            candidates: Mutex::new(Vec::new()),
            write_streaks: aux(pages * 8)?,
            moves: aux(pages)?,
            left: aux(pages)?,
            exported: aux(pages)?,
            protected: aux(pages)?,
            async_wp,
            scratch,
            scanner,
            tracked: aux(pages.div_ceil(TRACKED_CHUNK).div_ceil(64) * 8)?,
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
            room: Condvar::new(),
            referenced: aux(pages)?,
            evicted_at: aux(pages * 8)?,
            fetch_seq: AtomicU64::new(0),
            fetched_at: aux(pages * 8)?,
            layout,
            rank,
            transport,
            data,
            directory,
            map: std::mem::ManuallyDrop::new(map),
            file,
            home_view,
            announced: aux(pages)?,
            export_map,
            served,
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
            hold_install: options.hold_install,
            hold_move_in: options.hold_move_in,
        });
        let _ = this.set(Arc::downgrade(&inner));
        let mut threads = Vec::new();
        // A cluster of one takes no userfaultfd events and caches nothing:
        // it needs neither fault handlers nor an evictor.
        let handlers = if demand_paged {
            options.fault_threads.max(1)
        } else {
            0
        };
        for i in 0..handlers {
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
        if demand_paged {
            let evictor = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("loco-evict".into())
                    .spawn(move || evictor.evict_loop())
                    .map_err(|e| {
                        HeapError::Userfaultfd(format!("cannot start the evictor: {e}"))
                    })?,
            );
        }
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

    /// Whether written pages are found by scans (WP_ASYNC) rather than by
    /// write-protect faults (`RegionOptions::async_write_tracking`).
    pub fn async_write_tracking(&self) -> bool {
        self.inner.async_wp
    }

    pub fn base(&self) -> u64 {
        self.inner.layout.base
    }

    /// Where the memory registered with the transport for this node's home
    /// pages lies, and how long it is: the whole region itself (anonymous
    /// home memory), or, in the second view of the region's file, the
    /// part of the region that can be home on this node
    /// ([`Layout::home_span`]: under allocating-node placement its arena,
    /// node 0's with the prefix before it). Length 0 where no page can be
    /// home here (a compute node among memory nodes; the transport holds a
    /// page outside the region for it, see `new`).
    pub fn served_memory(&self) -> (u64, usize) {
        let served = &self.inner.served;
        match &self.inner.home_view {
            Some(view) => (
                view.ptr() as u64 + served.start,
                (served.end - served.start) as usize,
            ),
            None => (self.inner.layout.base, (served.end - served.start) as usize),
        }
    }

    /// The transport region `served_memory` is registered as (the same
    /// id on every node): other nodes read and write this node's home
    /// pages there, at their offsets in the region.
    pub fn served_region(&self) -> RegionId {
        self.inner.data
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
    /// The page of the region holding `addr`, if it is in the region.
    pub fn page_index(&self, addr: u64) -> Option<u32> {
        self.contains(addr, 1).then(|| {
            self.inner
                .layout
                .page_of_offset(addr - self.inner.layout.base) as u32
        })
    }

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
                    // Not mapped as zeros again: this node's next read
                    // must see what it just wrote.
                    inner.forget_fresh(page);
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

    /// A copy of the home page holding `addr`, for another node to install
    /// with [`SharedRegion::accept_copy`] instead of fetching it (a fork
    /// carries the pages its arguments point to). None unless the page is
    /// home here and present. The page is exported first, as another
    /// node's read of it would be, so this node's later writes to it are
    /// noticed (and the copy invalidated at that node's next acquire).
    pub fn home_page_copy(&self, addr: u64) -> Option<(u32, Vec<u8>)> {
        let inner = &self.inner;
        if !inner.demand_paged || !self.contains(addr, 1) {
            return None;
        }
        let page = inner.layout.page_of_offset(addr - inner.layout.base);
        if inner.state(page).load(Ordering::Acquire) != HOME {
            return None;
        }
        if inner.selective {
            inner.export(page);
        }
        let mut bytes = vec![0u8; inner.page_size()];
        // SAFETY: the page is HOME here, so present (home pages are never
        // dropped, and a move away happens only in a barrier, which the
        // caller, about to start one, is not in); a concurrent write by a
        // serving thread makes this a snapshot, as a fetch's read is.
        unsafe { sys::copy_bytes(inner.page_ptr(page), bytes.as_mut_ptr(), bytes.len()) };
        Some((page as u32, bytes))
    }

    /// Installs `bytes` as this node's cached copy of `page`, whose home is
    /// `from`, unless this node has the page already (or a fetch of it is
    /// under way). `bytes` must be what `from`'s
    /// [`SharedRegion::home_page_copy`] gave before a release this node has
    /// since acquired: then they are at least as new as anything this node
    /// may see, as a fetch's would be. True if installed.
    pub fn accept_copy(&self, from: NodeId, page: u32, bytes: &[u8]) -> Result<bool, HeapError> {
        let inner = &self.inner;
        let page = page as usize;
        if bytes.len() != inner.page_size() || page >= inner.layout.pages() {
            return Err(HeapError::Invalid(format!(
                "a copy of page {page} with {} bytes",
                bytes.len()
            )));
        }
        if !inner.demand_paged || inner.home_if_known(page) != Some(from) || from == inner.rank {
            return Ok(false);
        }
        let gate = inner.fetch_gate.read().unwrap();
        if inner
            .state(page)
            .compare_exchange(MISSING, FETCHING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(false);
        }
        // Only into free room: a fork does not wait for the evictor.
        if !inner.cached.lock().unwrap().reserve(1, inner.cache_limit) {
            inner.state(page).store(MISSING, Ordering::Release);
            inner.wake(page);
            return Ok(false);
        }
        // SAFETY: the twin of a page this thread has claimed (FETCHING):
        // nothing else touches it until the page is CACHED.
        unsafe { sys::copy_bytes(bytes.as_ptr(), inner.twin_ptr(page), bytes.len()) };
        inner.forget_fresh(page);
        if let Err(e) = inner.install_copies(page, 1, gate) {
            inner.cached.lock().unwrap().unreserve(1);
            inner.state(page).store(MISSING, Ordering::Release);
            inner.wake(page);
            return Err(e);
        }
        inner.stats.pages_carried.fetch_add(1, Ordering::Relaxed);
        Ok(true)
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
            pages_carried: l(&c.pages_carried),
            pages_zero_filled: l(&c.pages_zero_filled),
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

/// Pages an invalidation has taken out of the program's reach, and their
/// modifications, gathered for home (`detach`, `finish_detached`).
struct Detached {
    victims: Vec<usize>,
    batch: Batch,
}

/// An acquire whose invalidation failed: the pages it had to drop (kept,
/// with their unsent bytes) and why.
struct FailedInvalidation {
    pages: Vec<u32>,
    error: HeapError,
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

    /// Drops the region's pages at `ptr .. ptr+len` (whole pages of the
    /// region, not home here) so that the next touch faults as missing:
    /// from the file too where there is one (a page left in it would
    /// fault as minor and show its old bytes).
    fn discard_pages(&self, ptr: *mut u8, len: usize) -> std::io::Result<()> {
        let offset = ptr as usize - self.map.ptr() as usize;
        match &self.file {
            Some(file) => file.punch(offset, len),
            None => self.map.discard(offset, len),
        }
    }

    fn twin_ptr(&self, page: usize) -> *mut u8 {
        // SAFETY: as page_ptr, for the twin mapping of the same size.
        unsafe { self.twins.ptr().add(page * self.page_size()) }
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
