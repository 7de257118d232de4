//! The shared region's contract, checked with real node processes over tcp
//! on loopback: demand paging from home nodes, byte-granular write-back,
//! no lost writes (false sharing, concurrent threads, uninstrumented
//! writers), invalidation at acquire, eviction, and every placement.
//!
//! Three variants: `tracked` write-protects cached pages to find writes
//! that do not mark the bitmap (found by page-table scans where the kernel
//! has WP_ASYNC); `tracked-faults` the same with write-protect faults, as
//! on older kernels; `marked` relies on every writer marking (what code
//! compiled by loco-cc does) and writes back exact runs of bytes (as over
//! RDMA) where the others send masked runs.
//!
//! `cargo test -p loco-uffd --test region [-- FILTER]`

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loco_cluster::{ClusterConfig, Placement};
use loco_testkit::suite::{self, ensure, Check, Expect, Node, Scenario, Variant};
use loco_uffd::{HomeMemory, RegionOptions, SharedRegion};

const NODE_MEMORY: u64 = 4 << 20;
const PAGE: u64 = 4096;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        &[$(Scenario { name: stringify!($name), expect: Expect::AllSucceed, body: $name }),*]
    };
}

const SCENARIOS: &[Scenario] = scenarios![
    pages_fault_in_from_their_home,
    false_sharing_disjoint_bytes_all_survive,
    uninstrumented_libc_writes_reach_home_at_release,
    threads_of_one_node_never_lose_each_others_bits,
    concurrent_faults_on_one_page_fetch_once,
    acquire_makes_other_nodes_releases_visible,
    eviction_keeps_every_write,
    writes_racing_an_eviction_are_kept,
    the_cache_limit_always_holds,
    a_write_to_a_page_just_fetched_is_released,
    first_touch_homes_pages_where_first_touched,
    allocating_node_homes_pages_in_the_arena,
    only_modified_bytes_travel,
    many_threads_fault_on_untouched_pages_everywhere,
    atomics_at_the_home_never_lose_updates,
    a_failed_write_back_loses_no_bytes,
    a_home_page_written_every_interval_stays_noticed,
    untouched_pages_map_as_zeros_and_later_writes_reach_them,
    a_page_home_wrote_after_serving_it_is_never_taken_for_untouched,
    an_atomic_on_a_page_mapped_as_zeros_is_seen_by_its_node,
    a_small_cache_takes_long_runs_of_untouched_pages,
    a_large_release_sends_every_piece_even_after_a_failed_one,
    a_home_page_mapped_during_a_release_scan_still_notices_its_writes,
    pages_one_node_keeps_writing_move_there,
    a_page_leaving_its_home_stays_there_until_the_new_home_has_read_it,
    memory_nodes_home_and_serve_every_page,
    first_touch_with_memory_nodes_homes_and_moves_pages_on_compute_nodes,
    home_memory_in_a_file_is_served_from_a_view_outside_the_region,
    home_memory_in_a_file_keeps_every_write_through_evictions_and_atomics,
    home_memory_in_a_file_serves_only_what_can_be_home_here,
    home_memory_in_a_file_on_compute_nodes_serves_nothing,
    an_rdma_nic_is_never_given_anonymous_home_memory,
    home_memory_in_a_file_keeps_write_notices_from_readers_marks,
    home_memory_in_a_file_keeps_write_notices_in_every_arena,
    a_home_write_to_any_page_of_a_read_ahead_window_is_noticed,
];

fn main() -> ExitCode {
    let variants = [
        Variant {
            name: "tracked",
            unavailable: None,
        },
        Variant {
            name: "marked",
            unavailable: None,
        },
        // Written pages found by write-protect faults, as on kernels
        // without WP_ASYNC (the others use it where the kernel has it).
        Variant {
            name: "tracked-faults",
            unavailable: None,
        },
    ];
    suite::main(
        "region",
        &variants,
        &[2, 4],
        SCENARIOS,
        Duration::from_secs(60),
    )
}

// ---------------------------------------------------------------- helpers

struct Run {
    region: SharedRegion,
    rank: usize,
    n: usize,
    tracked: bool,
}

fn config(node: &Node, placement: Placement, cache_size: u64) -> ClusterConfig {
    let mut c = ClusterConfig::localhost_with_ports(&node.ports).unwrap();
    for n in &mut c.nodes {
        n.memory = NODE_MEMORY;
    }
    c.placement = placement;
    c.cache_size = cache_size;
    c.connect_timeout = Duration::from_secs(20);
    c.op_timeout = Duration::from_secs(10);
    c
}

/// Whether the variant tracks uninstrumented writes, and its region options.
fn options(node: &Node) -> (bool, RegionOptions) {
    let tracked = node.variant.starts_with("tracked");
    let options = RegionOptions {
        track_uninstrumented: tracked,
        async_write_tracking: node.variant != "tracked-faults",
        // Exact runs of marked or changed bytes, as over RDMA; the
        // others send masked runs (tcp's default).
        masked_write_back: node.variant != "marked",
        ..RegionOptions::default()
    };
    (tracked, options)
}

fn start_with(node: &Node, placement: Placement, cache_size: u64) -> Result<Run, String> {
    let (tracked, options) = options(node);
    start_with_options(node, placement, cache_size, tracked, options)
}

fn start_with_options(
    node: &Node,
    placement: Placement,
    cache_size: u64,
    tracked: bool,
    options: RegionOptions,
) -> Result<Run, String> {
    let config = config(node, placement, cache_size);
    let transport = loco_rdma::connect(&config, node.rank).map_err(|e| format!("connect: {e}"))?;
    let region = SharedRegion::new(&config, transport, options).map_err(|e| e.to_string())?;
    Ok(Run {
        region,
        rank: node.rank,
        n: node.n,
        tracked,
    })
}

/// As `start_with`, with the second half of the nodes (node 1 of 2, nodes
/// 2 and 3 of 4) as memory nodes. A memory node only serves: it is
/// returned as `None` once the compute nodes have finished (`finish_compute`).
fn start_with_memory_nodes(node: &Node, placement: Placement) -> Result<Option<Run>, String> {
    let (tracked, options) = options(node);
    start_with_memory_nodes_and(node, placement, tracked, options)
}

/// `start_with_memory_nodes` with these options.
fn start_with_memory_nodes_and(
    node: &Node,
    placement: Placement,
    tracked: bool,
    options: RegionOptions,
) -> Result<Option<Run>, String> {
    let file = options.home_memory == HomeMemory::SharedFile;
    let mut config = config(node, placement, 1 << 30);
    for n in &mut config.nodes[node.n / 2..] {
        n.role = loco_cluster::Role::Memory;
    }
    let transport = loco_rdma::connect(&config, node.rank).map_err(|e| format!("connect: {e}"))?;
    let region =
        SharedRegion::new(&config, transport.clone(), options).map_err(|e| e.to_string())?;
    if node.rank >= node.n / 2 {
        // What a memory node does for a whole run: wait in one barrier of
        // every node while its serving threads answer the compute nodes.
        transport
            .barrier_all()
            .map_err(|e| format!("barrier_all: {e}"))?;
        let s = region.stats();
        ensure(
            s.releases == 0 && s.acquires == 0 && s.remote_faults == 0,
            || format!("a memory node did consistency work: {s:?}"),
        )?;
        // Interleaved pages are all theirs; first-touch ones never are.
        // Home memory in a file is served from its view: the memory
        // node's own threads never touch (fault on) a page.
        let homes = placement == Placement::Interleaved && !file;
        ensure((s.home_faults > 0) == homes, || {
            format!("a memory node made {} home pages present", s.home_faults)
        })?;
        transport.shutdown();
        return Ok(None);
    }
    transport.narrow_barriers();
    Ok(Some(Run {
        region,
        rank: node.rank,
        n: node.n / 2,
        tracked,
    }))
}

fn start(node: &Node) -> Result<Run, String> {
    start_with(node, Placement::Interleaved, 1 << 30)
}

impl Run {
    fn addr(&self, offset: u64) -> u64 {
        self.region.base() + offset
    }

    /// A write as compiled code does it: store, then mark.
    fn store(&self, offset: u64, bytes: &[u8]) {
        let addr = self.addr(offset);
        // SAFETY: the range is inside the shared region (tests stay within
        // NODE_MEMORY * n); faults are resolved by the region's handlers.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        self.region.mark_dirty(addr, bytes.len() as u64);
    }

    /// A write by code that does not mark (libc's memcpy). In the `marked`
    /// variant every writer marks, so the test marks too.
    fn store_unmarked(&self, offset: u64, bytes: &[u8]) {
        let addr = self.addr(offset);
        // SAFETY: as in `store`.
        unsafe {
            libc::memcpy(
                addr as *mut libc::c_void,
                bytes.as_ptr().cast(),
                bytes.len(),
            )
        };
        if !self.tracked {
            self.region.mark_dirty(addr, bytes.len() as u64);
        }
    }

    fn load(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        // SAFETY: as in `store`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.addr(offset) as *const u8, out.as_mut_ptr(), len)
        };
        out
    }

    fn barrier(&self) -> Check {
        self.region.barrier().map_err(|e| format!("barrier: {e}"))
    }

    /// The page offset of the `i`-th page homed at `node` (interleaved).
    fn page_of(&self, node: usize, i: u64) -> u64 {
        (i * self.n as u64 + node as u64) * PAGE
    }

    /// A compute node's end beside memory nodes: the compute nodes'
    /// barrier, then the barrier of every node that lets the memory nodes go.
    fn finish_compute(self) -> Check {
        self.barrier()?;
        let t = self.region.transport().clone();
        t.barrier_all().map_err(|e| e.to_string())?;
        t.shutdown();
        Ok(())
    }

    fn finish(self) -> Check {
        self.barrier()?;
        let t = self.region.transport().clone();
        t.barrier().map_err(|e| e.to_string())?;
        t.shutdown();
        Ok(())
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------- scenarios

/// Each node fills 3 pages homed at the next node; after a barrier every
/// node reads every page (from cache, home, or a fresh fetch) and checks it.
fn pages_fault_in_from_their_home(node: &Node) -> Check {
    let r = start(node)?;
    let next = (r.rank + 1) % r.n;
    for i in 0..3 {
        let off = r.page_of(next, r.rank as u64 * 3 + i);
        r.store(off, &pattern(off, PAGE as usize));
    }
    r.barrier()?;
    for writer in 0..r.n {
        let home = (writer + 1) % r.n;
        for i in 0..3 {
            let off = r.page_of(home, writer as u64 * 3 + i);
            ensure(
                r.load(off, PAGE as usize) == pattern(off, PAGE as usize),
                || format!("page at {off:#x} written by node {writer} is wrong"),
            )?;
            ensure(r.region.home_of(r.addr(off)).unwrap() == home, || {
                "wrong home".into()
            })?;
        }
    }
    let s = r.region.stats();
    ensure(s.remote_faults > 0 && s.home_faults > 0, || {
        format!("no faults counted: {s:?}")
    })?;
    r.finish()
}

/// Every node writes every n-th byte of the same 4 pages (interleaved
/// homes, so some are home here and some not); all bytes survive.
fn false_sharing_disjoint_bytes_all_survive(node: &Node) -> Check {
    let r = start(node)?;
    let len = 4 * PAGE as usize;
    for round in 1..=3u8 {
        for i in (r.rank..len).step_by(r.n) {
            r.store(i as u64, &[round.wrapping_mul(31).wrapping_add(i as u8)]);
        }
        r.barrier()?;
        let got = r.load(0, len);
        for (i, &b) in got.iter().enumerate() {
            ensure(b == round.wrapping_mul(31).wrapping_add(i as u8), || {
                format!(
                    "round {round}: byte {i} (written by node {}) is {b}",
                    i % r.n
                )
            })?;
        }
        r.barrier()?;
    }
    r.finish()
}

/// libc's memcpy writes a page homed elsewhere without marking; a release
/// alone (no acquire) must carry the bytes home.
fn uninstrumented_libc_writes_reach_home_at_release(node: &Node) -> Check {
    let r = start(node)?;
    let next = (r.rank + 1) % r.n;
    let off = r.page_of(next, 7 + r.rank as u64);
    // Fault the page in first, read-only, so the copy hits a cached page.
    r.load(off, 1);
    let data = pattern(off, 1000);
    r.store_unmarked(off + 100, &data);
    r.region.release().map_err(|e| e.to_string())?;
    r.region.transport().barrier().map_err(|e| e.to_string())?;
    // The home reads its own memory: no acquire was needed for that.
    let prev = (r.rank + r.n - 1) % r.n;
    let mine = r.page_of(r.rank, 7 + prev as u64);
    ensure(r.load(mine + 100, 1000) == pattern(mine, 1000), || {
        format!("node {prev}'s memcpy into my page {mine:#x} did not arrive")
    })?;
    if r.tracked {
        ensure(r.region.stats().write_faults > 0, || {
            "the write was not caught by write-protection".into()
        })?;
    }
    r.finish()
}

/// Four threads of each node write interleaved single bytes of the same
/// remote pages at the same time; none of their bytes is lost.
fn threads_of_one_node_never_lose_each_others_bits(node: &Node) -> Check {
    let r = start(node)?;
    let threads = 4;
    let stride = threads * r.n;
    // The same page at every home; every thread of every node writes the
    // bytes i with i % stride == its own index.
    let pages: Vec<u64> = (0..r.n).map(|home| r.page_of(home, 20)).collect();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (r, pages) = (&r, &pages);
            s.spawn(move || {
                for &off in pages {
                    for i in ((r.rank * threads + t)..PAGE as usize).step_by(stride) {
                        r.store(off + i as u64, &[(i % 251) as u8 + 1]);
                    }
                }
            });
        }
    });
    r.barrier()?;
    for &off in &pages {
        let got = r.load(off, PAGE as usize);
        if let Some(i) = (0..PAGE as usize).find(|&i| got[i] != (i % 251) as u8 + 1) {
            return Err(format!(
                "page {off:#x} byte {i} is {} (a thread's write was lost)",
                got[i]
            ));
        }
    }
    r.finish()
}

/// Eight threads touch the same remote page at once: one fetch.
fn concurrent_faults_on_one_page_fetch_once(node: &Node) -> Check {
    let r = start(node)?;
    let off = r.page_of((r.rank + 1) % r.n, 40);
    let sum = AtomicU64::new(0);
    let before = r.region.stats().remote_faults;
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (r, sum) = (&r, &sum);
            s.spawn(move || sum.fetch_add(r.load(off + 8, 1)[0] as u64, Ordering::Relaxed));
        }
    });
    let fetched = r.region.stats().remote_faults - before;
    ensure(fetched == 1, || format!("{fetched} fetches for one page"))?;
    ensure(sum.load(Ordering::Relaxed) == 0, || {
        "fresh page is not zero".into()
    })?;
    r.finish()
}

/// A node caches a page, another changes it and releases; the first sees
/// the change after its acquire.
fn acquire_makes_other_nodes_releases_visible(node: &Node) -> Check {
    // The page lives on the last node; node 0 reads it (a cached copy,
    // never the home) and node 1 writes it (the home on 2 nodes, another
    // cache on 4).
    let (reader, writer) = (0, 1);
    let r = start(node)?;
    let t = r.region.transport().clone();
    let off = r.page_of(r.n - 1, 50) + 16;
    if r.rank == writer {
        r.store(off, &[1]);
    }
    r.barrier()?;
    if r.rank == reader {
        ensure(r.load(off, 1) == [1], || {
            "first value not visible after barrier".into()
        })?;
        ensure(r.region.cached_pages() > 0, || {
            "the reader holds no cached copy to drop".into()
        })?;
    }
    t.barrier().map_err(|e| e.to_string())?;
    if r.rank == writer {
        r.store(off, &[2]);
        r.region.release().map_err(|e| e.to_string())?;
    }
    t.barrier().map_err(|e| e.to_string())?;
    if r.rank == reader {
        r.region.acquire().map_err(|e| e.to_string())?;
        let seen = r.load(off, 1)[0];
        ensure(seen == 2, || {
            format!("after acquire, read {seen}, not the released 2")
        })?;
    }
    r.finish()
}

/// A 16-page cache, 200 remote pages written: pages are evicted (their
/// bytes written home early) and nothing is lost.
fn eviction_keeps_every_write(node: &Node) -> Check {
    let r = start_with(node, Placement::Interleaved, 16 * PAGE)?;
    let next = (r.rank + 1) % r.n;
    for i in 0..200 {
        let off = r.page_of(next, 100 + r.rank as u64 * 200 + i);
        r.store(off + (i % 4000), &pattern(off, 64));
    }
    r.barrier()?;
    ensure(r.region.stats().evictions > 0, || {
        "nothing was evicted".into()
    })?;
    // The evictor trims the cache in the background (pages read since the
    // barrier stay cached: nobody wrote them), so give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while r.region.cached_pages() > 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    ensure(r.region.cached_pages() <= 16, || {
        format!("{} pages cached", r.region.cached_pages())
    })?;
    for writer in 0..r.n {
        for i in (0..200).step_by(7) {
            let off = r.page_of((writer + 1) % r.n, 100 + writer as u64 * 200 + i);
            ensure(r.load(off + (i % 4000), 64) == pattern(off, 64), || {
                format!("evicted page {off:#x} of node {writer} lost its bytes")
            })?;
        }
    }
    r.finish()
}

/// One thread keeps writing four remote pages, byte after byte, while
/// another reads other remote pages so that the evictor takes the four
/// again and again: a write landing while its page is being written back
/// and dropped must wait for the drop (and go to the fetched copy), never
/// vanish with the dropped one.
fn writes_racing_an_eviction_are_kept(node: &Node) -> Check {
    const TARGETS: u64 = 4;
    let r = start_with(node, Placement::Interleaved, 6 * PAGE)?;
    let next = (r.rank + 1) % r.n;
    let target = |writer: usize, k: u64| r.page_of((writer + 1) % r.n, 300 + writer as u64 * 8 + k);
    let value = |i: u64| (i % 251) as u8 + 1;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !done.load(Ordering::Acquire) {
                r.load(r.page_of(next, 400 + r.rank as u64 * 64 + i % 64), 1);
                i += 1;
            }
        });
        for i in 0..TARGETS * PAGE {
            let (k, byte) = (i % TARGETS, i / TARGETS);
            r.store_unmarked(target(r.rank, k) + byte, &[value(i)]);
            for _ in 0..200 {
                std::hint::spin_loop();
            }
        }
        done.store(true, Ordering::Release);
    });
    ensure(r.region.stats().evictions > 0, || {
        "nothing was evicted".into()
    })?;
    r.barrier()?;
    // The pages the previous node wrote are homed here.
    let prev = (r.rank + r.n - 1) % r.n;
    for k in 0..TARGETS {
        let got = r.load(target(prev, k), PAGE as usize);
        if let Some(byte) = (0..PAGE).find(|&b| got[b as usize] != value(b * TARGETS + k)) {
            return Err(format!(
                "node {prev}'s write to byte {byte} of page {:#x} was lost ({} there)",
                target(prev, k),
                got[byte as usize]
            ));
        }
    }
    r.finish()
}

/// Two threads fault in 400 remote pages while a third watches how many
/// are cached: never more than the limit (16 pages), however fast the
/// faults come, and every page read has the bytes its home wrote.
fn the_cache_limit_always_holds(node: &Node) -> Check {
    const LIMIT: u64 = 16;
    let r = start_with(node, Placement::Interleaved, LIMIT * PAGE)?;
    let next = (r.rank + 1) % r.n;
    // Each node fills 400 pages homed here for the node before it.
    for i in 0..400 {
        let off = r.page_of(r.rank, 500 + i);
        r.store(off, &pattern(off, 16));
    }
    r.barrier()?;
    let done = AtomicBool::new(false);
    let most = AtomicU64::new(0);
    let wrong = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                most.fetch_max(r.region.cached_pages() as u64, Ordering::Relaxed);
                std::hint::spin_loop();
            }
        });
        let readers: Vec<_> = (0..2u64)
            .map(|t| {
                let r = &r;
                s.spawn(move || {
                    (t * 200..t * 200 + 200)
                        .filter(|&i| {
                            let off = r.page_of(next, 500 + i);
                            r.load(off, 16) != pattern(off, 16)
                        })
                        .count()
                })
            })
            .collect();
        let wrong: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
        done.store(true, Ordering::Release);
        wrong
    });
    ensure(wrong == 0, || format!("{wrong} pages read wrong"))?;
    let most = most.load(Ordering::Relaxed);
    ensure(most <= LIMIT, || {
        format!("{most} pages were cached at once, over the limit of {LIMIT}")
    })?;
    r.finish()
}

/// A fetched page is present a moment before it is listed as cached (the
/// fetch installs it, then does its bookkeeping). A thread touching it in
/// that moment does not fault: its write and mark land at once, and its
/// release must wait for the page to be listed rather than skip it as not
/// cached. The moment is held open for 30 ms here (`hold_install`).
fn a_write_to_a_page_just_fetched_is_released(node: &Node) -> Check {
    let (tracked, mut options) = options(node);
    options.hold_install = Duration::from_millis(30);
    let r = start_with_options(node, Placement::Interleaved, 1 << 30, tracked, options)?;
    let next = (r.rank + 1) % r.n;
    let prev = (r.rank + r.n - 1) % r.n;
    // One page released alone (as before an atomic or after a volatile
    // write), one by a whole release.
    for (k, whole) in [(60u64, false), (70, true)] {
        let off = r.page_of(next, k + r.rank as u64);
        let released = std::thread::scope(|s| {
            // Faults, and its fetch keeps the page installed but unlisted.
            s.spawn(|| r.load(off, 1));
            std::thread::sleep(Duration::from_millis(10));
            r.store(off + 64, &pattern(off, 8));
            if whole {
                r.region.release()
            } else {
                r.region.volatile_write(r.addr(off + 64), 8)
            }
        });
        released.map_err(|e| e.to_string())?;
        // No acquire: the write must be home already.
        r.region.transport().barrier().map_err(|e| e.to_string())?;
        let mine = r.page_of(r.rank, k + prev as u64);
        ensure(r.load(mine + 64, 8) == pattern(mine, 8), || {
            format!(
                "node {prev}'s write to my page {mine:#x}, released ({}) as soon as it landed, is not here",
                if whole { "whole" } else { "that page" }
            )
        })?;
    }
    r.finish()
}

/// Under first-touch, the node that touches a page first becomes its home.
fn first_touch_homes_pages_where_first_touched(node: &Node) -> Check {
    let r = start_with(node, Placement::FirstTouch, 1 << 30)?;
    // Node k touches pages 10k..10k+10 of node (k+1)'s arena first.
    for i in 0..10 {
        let off =
            NODE_MEMORY * ((r.rank as u64 + 1) % r.n as u64) + (10 * r.rank as u64 + i) * PAGE;
        r.store(off, &[r.rank as u8 + 1]);
    }
    r.barrier()?;
    for writer in 0..r.n {
        for i in 0..10 {
            let off =
                NODE_MEMORY * ((writer as u64 + 1) % r.n as u64) + (10 * writer as u64 + i) * PAGE;
            let home = r.region.home_of(r.addr(off)).map_err(|e| e.to_string())?;
            ensure(home == writer, || {
                format!("page {off:#x} touched first by {writer} is homed at {home}")
            })?;
            ensure(r.load(off, 1) == [writer as u8 + 1], || {
                "first-touch page lost its byte".into()
            })?;
        }
    }
    r.finish()
}

/// Node 0 initialises one page per node (first-touch makes them node 0's);
/// then, barrier after barrier, node k > 0 rewrites the first half of its
/// page while every node reads every page. Each page moves its home to its
/// writer (home migration), and no read ever sees an old value: not while
/// it moves, and not after (the new home's writes must make the others
/// drop their copies). Node 0's later write to a moved page (now remote
/// for it) reaches the new home. A page two non-home nodes write never moves.
fn pages_one_node_keeps_writing_move_there(node: &Node) -> Check {
    let r = start_with(node, Placement::FirstTouch, 1 << 30)?;
    let page = |k: usize| (20 + k as u64) * PAGE;
    let shared = page(r.n);
    let half = PAGE as usize / 2;
    let mut expected: Vec<Vec<u8>> = (0..=r.n)
        .map(|k| pattern(1000 + k as u64, PAGE as usize))
        .collect();
    if r.rank == 0 {
        for (k, bytes) in expected.iter().enumerate() {
            r.store(page(k), bytes);
        }
    }
    r.barrier()?;
    let rounds = 8;
    for round in 0..rounds {
        let seed = |k: usize| (k as u64) << 32 | round as u64;
        for (k, page) in expected.iter_mut().enumerate().take(r.n).skip(1) {
            page[..half].copy_from_slice(&pattern(seed(k), half));
        }
        if r.rank > 0 {
            r.store(page(r.rank), &expected[r.rank][..half]);
        }
        // Nodes 1 and 2 write different bytes of one more page.
        if r.n > 2 {
            let at = 8 * (round % 2 + 1);
            expected[r.n][at..at + 8].copy_from_slice(&seed(9).to_le_bytes());
            if r.rank == round % 2 + 1 {
                r.store(shared + at as u64, &seed(9).to_le_bytes());
            }
        }
        // Node 0 logs the writes it served in the same interval (it takes
        // them as its own: see notices.rs) rather than in the next one.
        r.region.release().map_err(|e| e.to_string())?;
        r.region.transport().barrier().map_err(|e| e.to_string())?;
        r.barrier()?;
        for (k, want) in expected.iter().enumerate() {
            let got = r.load(page(k), PAGE as usize);
            ensure(&got == want, || {
                let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                format!(
                    "round {round}: node {}'s copy of page {k} is stale at byte {at}: {:?}, not {:?}",
                    r.rank,
                    &got[at..(at + 8).min(got.len())],
                    &want[at..(at + 8).min(want.len())]
                )
            })?;
        }
        // The next round's writes must not race with these reads. Pages
        // move at this barrier, where nobody logs a write to them: every
        // copy another node holds must go all the same.
        r.barrier()?;
    }
    for k in 1..r.n {
        let home = r
            .region
            .home_of(r.addr(page(k)))
            .map_err(|e| e.to_string())?;
        ensure(home == k, || {
            format!("page written by node {k} stayed on node {home}")
        })?;
    }
    if r.n > 2 {
        let home = r
            .region
            .home_of(r.addr(shared))
            .map_err(|e| e.to_string())?;
        ensure(home == 0, || {
            format!("a page two nodes write moved to {home}")
        })?;
    }
    let s = r.region.stats();
    ensure((s.pages_migrated_in > 0) == (r.rank > 0), || {
        format!("node {} took {} pages in", r.rank, s.pages_migrated_in)
    })?;
    // The old home writes a moved page; every node sees it.
    expected[1][PAGE as usize - 8..].copy_from_slice(&[0xee; 8]);
    if r.rank == 0 {
        r.store(page(1) + PAGE - 8, &[0xee; 8]);
    }
    r.barrier()?;
    ensure(r.load(page(1), PAGE as usize) == expected[1], || {
        format!("node {} misses node 0's write to a moved page", r.rank)
    })?;
    r.finish()
}

/// A page moves from node 0 to node 1 (home migration) while node 0's
/// evictor keeps running: a second thread of node 0 reads more pages of
/// node 1 than its cache holds, through every barrier (as a task run by a
/// thread waiting in a team barrier may). The old home keeps its copy of
/// the page until the new home has read it (held back 300 ms here,
/// `hold_move_in`): an evicted copy made node 0's serving thread fault on
/// the page, its fault handler fetch it from node 1, and node 1's serving
/// thread fault on the page node 1 was still reading from node 0 (both
/// nodes stuck until their reads timed out).
fn a_page_leaving_its_home_stays_there_until_the_new_home_has_read_it(node: &Node) -> Check {
    let (tracked, mut options) = options(node);
    options.hold_move_in = Duration::from_millis(300);
    let r = start_with_options(node, Placement::FirstTouch, 4 * PAGE, tracked, options)?;
    let moving = 20 * PAGE;
    let churn: Vec<u64> = (0..8).map(|i| (40 + i) * PAGE).collect();
    let mut expected = pattern(77, PAGE as usize);
    if r.rank == 0 {
        r.store(moving, &expected);
    }
    if r.rank == 1 {
        for (i, &p) in churn.iter().enumerate() {
            r.store(p, &pattern(500 + i as u64, PAGE as usize));
        }
    }
    r.barrier()?;
    let stop = Arc::new(AtomicBool::new(false));
    let churner = (r.rank == 0).then(|| {
        let (stop, base, churn) = (stop.clone(), r.region.base(), churn.clone());
        std::thread::spawn(move || {
            let mut sum = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for &p in &churn {
                    // SAFETY: a page of the region; its fault is resolved
                    // by the region's handlers.
                    sum += unsafe { std::ptr::read_volatile((base + p) as *const u8) } as u64;
                }
            }
            sum
        })
    });
    let rounds = 6;
    for round in 0..rounds {
        let word = (round as u64 + 1).to_le_bytes();
        expected[..8].copy_from_slice(&word);
        if r.rank == 1 {
            r.store(moving, &word);
        }
        r.barrier()?;
        let got = r.load(moving, PAGE as usize);
        ensure(got == expected, || {
            format!(
                "round {round}: node {} reads a stale copy of the moving page",
                r.rank
            )
        })?;
        r.barrier()?;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(churner) = churner {
        churner.join().map_err(|_| "the churning thread panicked")?;
    }
    let home = r
        .region
        .home_of(r.addr(moving))
        .map_err(|e| e.to_string())?;
    ensure(home == 1, || {
        format!("the page node 1 kept writing stayed on node {home}")
    })?;
    if r.rank == 0 {
        ensure(r.region.stats().evictions > 0, || {
            "node 0 evicted nothing".to_string()
        })?;
    }
    r.finish()
}

/// With memory nodes (the second half of the nodes), interleaved pages all
/// live on them: the compute nodes home nothing, write bytes of the same
/// pages (false sharing) and read each other's after their barriers (which
/// the memory nodes take no part in), see released bytes after an acquire
/// that reads only the other compute nodes' write notices, and count with
/// atomics at the memory nodes.
fn memory_nodes_home_and_serve_every_page(node: &Node) -> Check {
    let Some(r) = start_with_memory_nodes(node, Placement::Interleaved)? else {
        return Ok(());
    };
    let t = r.region.transport().clone();
    let compute = r.n;
    for page in 0..1024u64 {
        let home = r
            .region
            .home_of(r.addr(page * PAGE))
            .map_err(|e| e.to_string())?;
        ensure(home >= compute, || {
            format!("page {page} is homed at compute node {home}")
        })?;
    }
    // Pages 97 apart: over several runs of pages, every memory node's.
    for round in 0..4u64 {
        for page in 0..16u64 {
            r.store(
                97 * page * PAGE + 8 * r.rank as u64,
                &(round << 8 | page).to_le_bytes(),
            );
        }
        r.barrier()?;
        for page in 0..16u64 {
            for writer in 0..compute {
                let got = r.load(97 * page * PAGE + 8 * writer as u64, 8);
                ensure(got == (round << 8 | page).to_le_bytes(), || {
                    format!("round {round}: node {writer}'s bytes of page {page} are stale")
                })?;
            }
        }
        r.barrier()?;
    }
    // A release, then an acquire that learns from the logs: one read per
    // other compute node, none of a memory node's log.
    let off = 40 * PAGE;
    if r.rank == 0 {
        r.store(off, &[7]);
        r.region.release().map_err(|e| e.to_string())?;
    } else {
        r.load(off, 1);
    }
    t.barrier().map_err(|e| e.to_string())?;
    if r.rank == compute - 1 && compute > 1 {
        let reads = t.stats().reads;
        r.region.acquire().map_err(|e| e.to_string())?;
        let read = t.stats().reads - reads;
        ensure(read == compute as u64 - 1, || {
            format!(
                "an acquire made {read} reads for {} other compute nodes",
                compute - 1
            )
        })?;
        ensure(r.load(off, 1) == [7], || {
            "a released byte is not seen".into()
        })?;
    }
    t.barrier().map_err(|e| e.to_string())?;
    let word = 50 * PAGE;
    for _ in 0..50 {
        r.region
            .atomic_update(r.addr(word), 8, false, false, |v| Some(v + 1))
            .map_err(|e| e.to_string())?;
    }
    r.barrier()?;
    let total = u64::from_le_bytes(r.load(word, 8).try_into().unwrap());
    ensure(total == 50 * compute as u64, || {
        format!("{total} atomic increments, not {}", 50 * compute)
    })?;
    ensure(r.region.stats().home_faults == 0, || {
        "a compute node homes a page".into()
    })?;
    r.finish_compute()
}

/// First-touch placement beside memory nodes: only the compute nodes
/// touch, so they home every page; and a page one compute node keeps
/// writing still moves its home there (the memory nodes' empty parts of
/// the gathering barriers name no writes).
fn first_touch_with_memory_nodes_homes_and_moves_pages_on_compute_nodes(node: &Node) -> Check {
    let Some(r) = start_with_memory_nodes(node, Placement::FirstTouch)? else {
        return Ok(());
    };
    let page = 30 * PAGE;
    if r.rank == 0 {
        r.store(page, &[1; 64]);
    }
    r.barrier()?;
    let writer = r.n - 1;
    for round in 0..12u8 {
        if r.rank == writer {
            r.store(page + 8, &[round; 8]);
        }
        r.barrier()?;
        ensure(r.load(page + 8, 8) == [round; 8], || {
            format!("round {round}: a stale copy")
        })?;
        r.barrier()?;
    }
    let home = r.region.home_of(r.addr(page)).map_err(|e| e.to_string())?;
    ensure(home == writer, || {
        format!("the page node {writer} keeps writing is homed at {home}")
    })?;
    r.finish_compute()
}

/// Under allocating-node placement, pages live on their arena's node.
fn allocating_node_homes_pages_in_the_arena(node: &Node) -> Check {
    let r = start_with(node, Placement::AllocatingNode, 1 << 30)?;
    let next = (r.rank + 1) % r.n;
    let off = NODE_MEMORY * next as u64 + 5 * PAGE;
    ensure(r.region.home_of(r.addr(off)).unwrap() == next, || {
        "wrong home".into()
    })?;
    r.store(off + 8 * r.rank as u64, &[0xa0 + r.rank as u8]);
    r.barrier()?;
    let prev = (r.rank + r.n - 1) % r.n;
    let mine = NODE_MEMORY * r.rank as u64 + 5 * PAGE;
    ensure(
        r.load(mine + 8 * prev as u64, 1) == [0xa0 + prev as u8],
        || "arena page lost a byte".into(),
    )?;
    ensure(r.region.stats().home_faults > 0, || {
        "own arena page was not home".into()
    })?;
    r.finish()
}

/// Bytes sent at release equal bytes modified: 1, 64 and 4096 bytes
/// spread over remote pages.
fn only_modified_bytes_travel(node: &Node) -> Check {
    let r = start(node)?;
    let next = (r.rank + 1) % r.n;
    for (k, modified) in [1u64, 64, 4096].into_iter().enumerate() {
        // Touch the pages first (a read), so the release measures writes only.
        let pages: Vec<u64> = (0..8)
            .map(|i| r.page_of(next, 300 + k as u64 * 8 + i))
            .collect();
        for &p in &pages {
            r.load(p, 1);
        }
        let before = r.region.stats().bytes_released;
        for b in 0..modified {
            let page = pages[(b % 8) as usize];
            r.store(page + 3 + (b / 8) * 5, &[1 + (b % 200) as u8]);
        }
        r.region.release().map_err(|e| e.to_string())?;
        let sent = r.region.stats().bytes_released - before;
        ensure(sent == modified, || {
            format!("{modified} bytes modified, {sent} bytes sent")
        })?;
        r.barrier()?;
    }
    r.finish()
}

/// Six threads per node write pages nobody has touched yet, homed on every
/// node, all at once: the homes' serving threads must make their pages
/// present without waiting on fault handlers that are busy fetching from
/// other nodes (a cycle that once deadlocked the cluster).
fn many_threads_fault_on_untouched_pages_everywhere(node: &Node) -> Check {
    let r = start(node)?;
    let pages = 60u64;
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let r = &r;
            s.spawn(move || {
                for i in 0..pages {
                    // Every node walks the same pages in a different order.
                    let p = (i * 7 + t * 11 + r.rank as u64 * 13) % pages;
                    let off = 600 * PAGE + p * PAGE + (r.rank as u64 * 6 + t) * 8;
                    r.store(off, &(p + 1).to_le_bytes());
                }
            });
        }
    });
    r.barrier()?;
    for p in 0..pages {
        for w in 0..r.n as u64 * 6 {
            let off = 600 * PAGE + p * PAGE + w * 8;
            let got = u64::from_le_bytes(r.load(off, 8).try_into().unwrap());
            ensure(got == p + 1, || format!("page {p} slot {w} holds {got}"))?;
        }
    }
    r.finish()
}

/// Two threads per node add to a 1-byte, a 4-byte and an 8-byte counter
/// that share one 8-byte word with bytes other nodes write plainly: no
/// increment and no plain byte is lost, and reads after the atomics see them.
fn atomics_at_the_home_never_lose_updates(node: &Node) -> Check {
    let r = start(node)?;
    let word = r.page_of(r.n - 1, 70); // homed at the last node
    let counter8 = word + 8;
    let iters = 100u64;
    std::thread::scope(|s| {
        for _ in 0..2 {
            let r = &r;
            s.spawn(move || {
                for _ in 0..iters {
                    let add = |addr: u64, size: u64| {
                        r.region
                            .atomic_update(r.addr(addr), size, false, false, |v| {
                                Some(v.wrapping_add(1))
                            })
                            .unwrap()
                    };
                    add(word, 1);
                    add(word + 4, 4);
                    add(counter8, 8);
                }
            });
        }
    });
    // Plain bytes in the same word as the atomics: byte 1 + rank (< 4).
    if r.rank < 3 {
        r.store(word + 1 + r.rank as u64, &[0x40 + r.rank as u8]);
    }
    r.barrier()?;
    let total = 2 * iters * r.n as u64;
    let got = r.load(word, 16);
    ensure(u64::from(got[0]) == total % 256, || {
        format!("1-byte counter {} != {}", got[0], total % 256)
    })?;
    let c4 = u32::from_le_bytes(got[4..8].try_into().unwrap()) as u64;
    let c8 = u64::from_le_bytes(got[8..16].try_into().unwrap());
    ensure(c4 == total && c8 == total, || {
        format!("counters {c4} and {c8}, expected {total}")
    })?;
    for k in 0..r.n.min(3) {
        ensure(got[1 + k] == 0x40 + k as u8, || {
            format!("plain byte of node {k} lost next to the atomics")
        })?;
    }
    // A compare-and-swap that fails changes nothing and reports what it found.
    let found = r
        .region
        .atomic_update(r.addr(counter8), 8, true, true, |v| {
            (v == 12345).then_some(0)
        })
        .map_err(|e| e.to_string())?;
    ensure(found == total, || format!("failed CAS found {found}"))?;
    r.finish()
}

/// The real transport, except that a scatter fails (sending nothing) when
/// told to: a home that could not take a write-back.
struct FailingScatter {
    inner: Arc<dyn loco_rdma::Transport>,
    fail_next: AtomicBool,
}

/// A run over the real transport wrapped in a `FailingScatter` (told to
/// fail through the returned handle).
fn start_failing(
    node: &Node,
    config: &ClusterConfig,
) -> Result<(Run, Arc<FailingScatter>), String> {
    let inner = loco_rdma::connect(config, node.rank).map_err(|e| format!("connect: {e}"))?;
    let failing = Arc::new(FailingScatter {
        inner,
        fail_next: AtomicBool::new(false),
    });
    let (tracked, options) = options(node);
    let region = SharedRegion::new(config, failing.clone(), options).map_err(|e| e.to_string())?;
    let run = Run {
        region,
        rank: node.rank,
        n: node.n,
        tracked,
    };
    Ok((run, failing))
}

impl FailingScatter {
    /// A scatter's failure (before it sends anything), once, when told.
    fn fail_if_told(&self, node: usize) -> loco_rdma::Result<()> {
        if self.fail_next.swap(false, Ordering::AcqRel) {
            return Err(loco_rdma::TransportError::Timeout {
                node,
                timeout: Duration::ZERO,
                op: "scatter (failed on purpose by the test)",
            });
        }
        Ok(())
    }
}

impl loco_rdma::Transport for FailingScatter {
    fn rank(&self) -> loco_rdma::NodeId {
        self.inner.rank()
    }
    fn num_nodes(&self) -> usize {
        self.inner.num_nodes()
    }
    fn register(
        &self,
        region: Arc<loco_rdma::MemoryRegion>,
    ) -> loco_rdma::Result<loco_rdma::RegionId> {
        self.inner.register(region)
    }
    fn read(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        offset: u64,
        buf: &mut [u8],
    ) -> loco_rdma::Result<()> {
        self.inner.read(node, region, offset, buf)
    }
    fn write(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        offset: u64,
        data: &[u8],
    ) -> loco_rdma::Result<()> {
        self.inner.write(node, region, offset, data)
    }
    fn scatter(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        runs: &[loco_rdma::Run<'_>],
    ) -> loco_rdma::Result<()> {
        self.fail_if_told(node)?;
        self.inner.scatter(node, region, runs)
    }
    fn has_scatter_masked(&self) -> bool {
        self.inner.has_scatter_masked()
    }
    fn scatter_masked(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        runs: &[loco_rdma::MaskedRun<'_>],
    ) -> loco_rdma::Result<()> {
        self.fail_if_told(node)?;
        self.inner.scatter_masked(node, region, runs)
    }
    fn fetch_add(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        offset: u64,
        delta: u64,
    ) -> loco_rdma::Result<u64> {
        self.inner.fetch_add(node, region, offset, delta)
    }
    fn compare_swap(
        &self,
        node: usize,
        region: loco_rdma::RegionId,
        offset: u64,
        expected: u64,
        new: u64,
    ) -> loco_rdma::Result<u64> {
        self.inner.compare_swap(node, region, offset, expected, new)
    }
    fn barrier(&self) -> loco_rdma::Result<()> {
        self.inner.barrier()
    }
    fn stats(&self) -> loco_rdma::TransportStats {
        self.inner.stats()
    }
    fn shutdown(&self) {
        self.inner.shutdown()
    }
    fn on_node_failure(&self, hook: loco_rdma::FailureHook) {
        self.inner.on_node_failure(hook)
    }
}

/// A release and an acquire whose write-back fails report it, and lose
/// nothing: the bytes they collected go home with the next one.
fn a_failed_write_back_loses_no_bytes(node: &Node) -> Check {
    let config = config(node, Placement::Interleaved, 1 << 30);
    let (r, failing) = start_failing(node, &config)?;
    // Node 1 writes a page of node 0's twice: the first write-back goes
    // through release, the second through acquire (the invalidation of a
    // page node 0 wrote too, and released before node 1's acquire).
    let offs = [r.page_of(0, 60) + 100, r.page_of(0, 61) + 200];
    let t = r.region.transport().clone();
    for (k, &off) in offs.iter().enumerate() {
        if r.rank == 1 {
            r.store(off, &pattern(off, 40));
            r.store_unmarked(off + 1000, &pattern(off + 1, 40));
        }
        t.barrier().map_err(|e| e.to_string())?;
        if r.rank == 0 {
            r.store(off + 2000, &pattern(off + 2, 40));
            r.region.release().map_err(|e| e.to_string())?;
        }
        t.barrier().map_err(|e| e.to_string())?;
        if r.rank == 1 {
            failing.fail_next.store(true, Ordering::Release);
            let first = if k == 0 {
                r.region.release()
            } else {
                r.region.acquire()
            };
            ensure(first.is_err(), || {
                "the failing write-back reported no error".into()
            })?;
            r.region
                .release()
                .map_err(|e| format!("second release: {e}"))?;
        }
        r.barrier()?;
        ensure(r.load(off, 40) == pattern(off, 40), || {
            format!(
                "node {}: marked bytes at {off:#x} lost after a failed write-back",
                r.rank
            )
        })?;
        ensure(r.load(off + 2000, 40) == pattern(off + 2, 40), || {
            format!("node {}: node 0's bytes at {:#x} lost", r.rank, off + 2000)
        })?;
        ensure(r.load(off + 1000, 40) == pattern(off + 1, 40), || {
            format!(
                "node {}: unmarked bytes at {:#x} lost after a failed write-back",
                r.rank,
                off + 1000
            )
        })?;
    }
    r.finish()
}

/// Node 0 writes one of its home pages (read by every other node) in most
/// release intervals, long enough for the page to stay unprotected
/// between releases and to be checked again (stays_unprotected), with
/// pauses that end its streak; every reader sees every value after the
/// barrier, and pages nobody wrote stay cached.
fn a_home_page_written_every_interval_stays_noticed(node: &Node) -> Check {
    let r = start(node)?;
    let off = r.page_of(0, 70) + 8;
    let quiet = r.page_of(0, 71);
    let mut value = 0u8;
    for round in 0..80u32 {
        let writes = round % 37 < 30;
        if writes {
            value = value.wrapping_add(1);
        }
        if r.rank == 0 && writes {
            r.store(off, &[value]);
        }
        r.barrier()?;
        let seen = r.load(off, 1)[0];
        ensure(seen == value, || {
            format!("round {round}: node {} read {seen}, not {value}", r.rank)
        })?;
        ensure(r.load(quiet, 1)[0] == 0, || "the quiet page changed".into())?;
        r.barrier()?;
    }
    if r.rank != 0 {
        // The quiet page was read in every round but never written: it
        // stayed cached (one fault), while the written one was dropped.
        let s = r.region.stats();
        ensure(s.remote_faults < 80 + 10, || {
            format!(
                "{} remote faults: unwritten pages are being dropped",
                s.remote_faults
            )
        })?;
    }
    r.finish()
}

/// Pages nobody has written are mapped as zeros without reading their
/// home; writes that come later still reach every reader: a remote write
/// that a node learns of through a release and an acquire the home takes
/// no part in (the write marks the page touched before it lands), the
/// home's own first write to a page a reader mapped as zeros (the home
/// exports it), and this node's own writes to such pages after they were
/// evicted.
fn untouched_pages_map_as_zeros_and_later_writes_reach_them(node: &Node) -> Check {
    let r = start_with(node, Placement::Interleaved, 8 * PAGE)?;
    let t = r.region.transport().clone();
    let home = r.n - 1;
    let by_home = r.page_of(home, 40) + 24;
    let by_other = r.page_of(home, 41) + 8;
    let unseen = r.page_of(home, 42) + 16;
    if r.rank == 0 {
        for off in [by_home, by_other] {
            ensure(r.load(off, 8) == [0; 8], || {
                format!("untouched page {off:#x} does not read as zeros")
            })?;
        }
        let s = r.region.stats();
        ensure(s.pages_zero_filled > 0 && s.bytes_fetched == 0, || {
            format!("untouched pages were read from their home: {s:?}")
        })?;
    }
    r.barrier()?;
    // 4 nodes: node 1 writes and releases, node 2 (which never saw the
    // page) acquires and reads; the home does neither in between.
    if r.n > 2 {
        if r.rank == 1 {
            r.store(by_other, &[9; 8]);
            r.region.release().map_err(|e| e.to_string())?;
        }
        t.barrier().map_err(|e| e.to_string())?;
        if r.rank == 2 {
            r.region.acquire().map_err(|e| e.to_string())?;
            let seen = r.load(by_other, 8);
            ensure(seen == [9; 8], || {
                format!("node 2 read {seen:?}, not node 1's released 9s")
            })?;
        }
        // The home's next release (which logs the page) only after that.
        t.barrier().map_err(|e| e.to_string())?;
        r.barrier()?;
    }
    if r.rank == home {
        r.store(by_home, &[7; 8]);
        r.store(unseen, &[3; 8]);
    }
    r.barrier()?;
    for (off, value, what) in [
        (by_home, 7, "the home's first write"),
        (unseen, 3, "the home's write to a page read by nobody"),
    ] {
        let seen = r.load(off, 8);
        ensure(seen == [value; 8], || {
            format!("node {} read {seen:?}: {what} is missing", r.rank)
        })?;
    }
    if r.rank == 0 {
        // Own writes to untouched pages, evicted (8-page cache) and read
        // back within one interval: read from the home, not zeros again.
        for i in 0..32 {
            r.store(r.page_of(home, 100 + i), &pattern(i, 32));
        }
        for i in 0..32 {
            ensure(
                r.load(r.page_of(home, 100 + i), 32) == pattern(i, 32),
                || format!("write {i} to an untouched page was lost after eviction"),
            )?;
        }
    }
    r.finish()
}

/// A home page that was served (read) while untouched, and then written
/// by its home, is marked touched by the home's release: a node that
/// never saw it must read it, not map zeros (4 nodes; on 2 the only
/// other node has read it already).
fn a_page_home_wrote_after_serving_it_is_never_taken_for_untouched(node: &Node) -> Check {
    // Node 0 reads the page from its home while nobody has written it, as
    // a read-ahead window does: here by not mapping zeros at all itself.
    // That makes the page present and exported at the home, unwritten.
    let (tracked, mut options) = options(node);
    options.zero_fill_fresh = node.rank != 0;
    let r = start_with_options(node, Placement::Interleaved, 1 << 30, tracked, options)?;
    let home = r.n - 1;
    let off = r.page_of(home, 60) + 40;
    if r.rank == 0 {
        ensure(r.load(off, 1) == [0], || "not zeros".into())?;
        ensure(r.region.stats().bytes_fetched > 0, || {
            "the page was not read from its home".into()
        })?;
    }
    r.barrier()?;
    if r.rank == home {
        r.store(off, &[5]);
    }
    r.barrier()?;
    let seen = r.load(off, 1)[0];
    ensure(seen == 5, || {
        format!("node {} read {seen}, not the home's 5", r.rank)
    })?;
    r.finish()
}

/// A node that mapped an untouched page as zeros, then changed a word of
/// it with an atomic (at the home), reads the new value: the page is
/// fetched again, not mapped as zeros a second time.
fn an_atomic_on_a_page_mapped_as_zeros_is_seen_by_its_node(node: &Node) -> Check {
    let r = start(node)?;
    let word = r.page_of(r.n - 1, 80) + 8;
    if r.rank == 0 {
        ensure(r.load(word, 8) == [0; 8], || "not zeros".into())?;
        ensure(r.region.stats().pages_zero_filled > 0, || {
            "the page was not mapped as zeros".into()
        })?;
        r.region
            .atomic_update(r.addr(word), 8, false, false, |v| Some(v + 5))
            .map_err(|e| e.to_string())?;
        let seen = u64::from_le_bytes(r.load(word, 8).try_into().unwrap());
        ensure(seen == 5, || {
            format!("node {} read {seen} after its atomic set 5", r.rank)
        })?;
    }
    r.finish()
}

/// Each node writes 300 untouched pages of the next node's arena (one
/// home: runs as long as read-ahead's) through a 16-page cache, then reads
/// them back: runs of pages mapped as zeros fit the cache (a run larger
/// than the cache would wait for room for ever), and nothing is lost.
fn a_small_cache_takes_long_runs_of_untouched_pages(node: &Node) -> Check {
    let r = start_with(node, Placement::AllocatingNode, 16 * PAGE)?;
    let next = (r.rank + 1) % r.n;
    let first = NODE_MEMORY * next as u64 + 64 * PAGE;
    for i in 0..300 {
        r.store(first + i * PAGE + 8, &pattern(i, 16));
    }
    for i in 0..300 {
        ensure(r.load(first + i * PAGE + 8, 16) == pattern(i, 16), || {
            format!("page {i} of node {next}'s arena lost its bytes")
        })?;
    }
    let s = r.region.stats();
    ensure(s.pages_zero_filled >= 300, || {
        format!("only {} pages were mapped as zeros", s.pages_zero_filled)
    })?;
    r.finish()
}

/// Node 1 writes 12 MiB of node 0's arena, more than a release collects
/// before it starts sending (pieces go out while the next is collected).
/// Its first release fails at the first piece: the pieces after it are not
/// lost either, and the next release sends everything.
fn a_large_release_sends_every_piece_even_after_a_failed_one(node: &Node) -> Check {
    const MEMORY: u64 = 16 << 20;
    const WRITTEN: u64 = 12 << 20;
    let mut config = config(node, Placement::AllocatingNode, 1 << 30);
    for n in &mut config.nodes {
        n.memory = MEMORY;
    }
    let (r, failing) = start_failing(node, &config)?;
    let t = r.region.transport().clone();
    let data = pattern(77, WRITTEN as usize);
    if r.rank == 1 {
        r.store(PAGE, &data);
        failing.fail_next.store(true, Ordering::Release);
        ensure(r.region.release().is_err(), || {
            "the failing write-back reported no error".into()
        })?;
        r.region
            .release()
            .map_err(|e| format!("second release: {e}"))?;
    }
    t.barrier().map_err(|e| e.to_string())?;
    if r.rank == 0 {
        let got = r.load(PAGE, WRITTEN as usize);
        if let Some(i) = (0..got.len()).find(|&i| got[i] != data[i]) {
            return Err(format!(
                "byte {i} of the 12 MiB release is {}, not {}",
                got[i], data[i]
            ));
        }
    }
    r.finish()
}

/// Node 0 maps a first-touch page of its own (held present 50 ms before it
/// is HOME) while another of its threads releases: the release's scan
/// must not take the page for a written cached one (its zeros are not
/// protected). Flagged then, it became HOME with its written flag set,
/// and the home's later writes to it, once node 1 cached it, were never
/// listed for a notice: node 1 kept reading the old value (a lost update
/// under a lock in the consistency test's threads variant).
fn a_home_page_mapped_during_a_release_scan_still_notices_its_writes(node: &Node) -> Check {
    let (tracked, mut options) = options(node);
    options.hold_install = Duration::from_millis(50);
    let r = start_with_options(node, Placement::FirstTouch, 1 << 30, tracked, options)?;
    // Two pages of one 64-page chunk: q first touched by node 1, p by node 0.
    let (p, q) = (20 * PAGE + 8, 21 * PAGE + 8);
    if r.rank == 1 {
        r.store(q, &[1]);
    }
    r.barrier()?;
    if r.rank == 0 {
        // Cached here: the chunk holding p is scanned at every release.
        ensure(r.load(q, 1) == [1], || "q lost its byte".into())?;
        std::thread::scope(|s| {
            s.spawn(|| r.store(p, &[1]));
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(15));
                r.region.release()
            })
            .join()
            .unwrap()
        })
        .map_err(|e| format!("release: {e}"))?;
    }
    r.barrier()?;
    if r.rank == 1 {
        ensure(r.load(p, 1) == [1], || "p lost its byte".into())?;
    }
    r.barrier()?;
    if r.rank == 0 {
        r.store(p, &[2]);
    }
    r.barrier()?;
    if r.rank == 1 {
        let seen = r.load(p, 1)[0];
        ensure(seen == 2, || {
            format!("node 1 read {seen}: node 0's write to its home page was not noticed")
        })?;
    }
    r.finish()
}

/// Home memory in a shared file (what a NIC serves), its served view
/// populated before any fault thread runs, as pinning it for a NIC does.
fn start_in_a_file(node: &Node, placement: Placement, cache_size: u64) -> Result<Run, String> {
    let (tracked, options) = options(node);
    let options = RegionOptions {
        home_memory: HomeMemory::SharedFile,
        populate_home_view: true,
        ..options
    };
    start_with_options(node, placement, cache_size, tracked, options)
}

/// The transport serves home pages in a file from a second view of it,
/// outside the region (registering it pins nothing the fault handlers
/// map); pages nobody on their home touched, written by other nodes
/// through that view, are seen by their home (minor faults), and the
/// home's own writes are seen by the others.
fn home_memory_in_a_file_is_served_from_a_view_outside_the_region(node: &Node) -> Check {
    let r = start_in_a_file(node, Placement::Interleaved, 1 << 30)?;
    let (view, len) = r.region.served_memory();
    let (base, size) = (r.region.base(), r.region.size());
    // Interleaved: from this node's first page to its last, all but the
    // pages of other nodes before and after them.
    let (before, after) = (r.rank as u64, (r.n - 1 - r.rank) as u64);
    ensure(len as u64 == size - (before + after) * PAGE, || {
        format!("node {} served {len} bytes of a {size}-byte region", r.rank)
    })?;
    ensure(view + size <= base || view >= base + size, || {
        format!("the served view {view:#x} overlaps the region at {base:#x}")
    })?;
    let next = (r.rank + 1) % r.n;
    // Written elsewhere first: the home has never touched these pages.
    for i in 0..4 {
        let off = r.page_of(next, 10 + r.rank as u64 * 4 + i);
        r.store_unmarked(off + 64 * i, &pattern(off, 512));
    }
    r.barrier()?;
    for writer in 0..r.n {
        for i in 0..4 {
            let off = r.page_of((writer + 1) % r.n, 10 + writer as u64 * 4 + i);
            ensure(r.load(off + 64 * i, 512) == pattern(off, 512), || {
                format!("page {off:#x}, written by node {writer}, reads wrong")
            })?;
        }
    }
    r.barrier()?;
    // The homes write their own pages in place; the others read them.
    for i in 0..4 {
        let off = r.page_of(r.rank, 40 + i);
        r.store(off, &pattern(off + 1, PAGE as usize));
    }
    r.barrier()?;
    for home in 0..r.n {
        for i in 0..4 {
            let off = r.page_of(home, 40 + i);
            ensure(
                r.load(off, PAGE as usize) == pattern(off + 1, PAGE as usize),
                || format!("home page {off:#x} of node {home} reads wrong"),
            )?;
        }
    }
    let s = r.region.stats();
    ensure(s.remote_faults > 0 && s.home_faults > 0, || {
        format!("no faults counted: {s:?}")
    })?;
    r.finish()
}

/// Under allocating-node placement a node serves (registers, and over
/// RDMA pins) only its arena, node 0 also the prefix before it (globals
/// and main's stack), not the whole region; every node's writes to every
/// arena, to the prefix and by atomics still read back everywhere, and
/// an access to a node outside what it serves is refused.
fn home_memory_in_a_file_serves_only_what_can_be_home_here(node: &Node) -> Check {
    let (tracked, options) = options(node);
    let options = RegionOptions {
        home_memory: HomeMemory::SharedFile,
        populate_home_view: true,
        globals: 2 * PAGE,
        node0_prefix: 6 * PAGE,
        ..options
    };
    let r = start_with_options(node, Placement::AllocatingNode, 1 << 30, tracked, options)?;
    let (view, len) = r.region.served_memory();
    let (base, size) = (r.region.base(), r.region.size());
    // Equal memories: node 0's prefix and arena are its memory too.
    ensure(
        len as u64 == NODE_MEMORY && size == NODE_MEMORY * r.n as u64,
        || format!("node {} served {len} bytes of a {size}-byte region", r.rank),
    )?;
    let arena = r.region.layout().arena(r.rank);
    let served = if r.rank == 0 { 0 } else { arena.start }..arena.end;
    ensure(served.end - served.start == len as u64, || {
        format!("served {len} bytes, arena {arena:?}")
    })?;
    ensure(view + len as u64 <= base || view >= base + size, || {
        format!("the served view {view:#x} overlaps the region at {base:#x}")
    })?;
    // Offsets every node writes: pages of each arena, the globals and the
    // stack part of the prefix (node 0's), each writer its own bytes.
    let targets = |n: usize| -> Vec<u64> {
        let mut t = vec![PAGE, 4 * PAGE];
        for home in 0..n as u64 {
            t.push(home * NODE_MEMORY + 7 * PAGE);
            t.push((home + 1) * NODE_MEMORY - PAGE);
        }
        t
    };
    for &off in &targets(r.n) {
        let at = off + 256 * r.rank as u64;
        r.store(at, &pattern(at, 256));
    }
    let word = |home: usize| home as u64 * NODE_MEMORY + 9 * PAGE;
    for home in 0..r.n {
        for _ in 0..10 {
            r.region
                .atomic_update(r.addr(word(home)), 8, false, false, |v| Some(v + 1))
                .map_err(|e| e.to_string())?;
        }
    }
    r.barrier()?;
    for &off in &targets(r.n) {
        for writer in 0..r.n as u64 {
            let at = off + 256 * writer;
            ensure(r.load(at, 256) == pattern(at, 256), || {
                format!("bytes at {at:#x} from node {writer} read wrong")
            })?;
        }
    }
    for home in 0..r.n {
        let got = u64::from_le_bytes(r.load(word(home), 8).try_into().unwrap());
        ensure(got == 10 * r.n as u64, || {
            format!("counter at node {home}: {got}")
        })?;
    }
    // Straight through the transport: inside a node's arena works,
    // outside what it serves is refused.
    let next = (r.rank + 1) % r.n;
    let t = r.region.transport();
    let data = r.region.served_region();
    let mut buf = [0u8; 8];
    t.read(next, data, word(next), &mut buf)
        .map_err(|e| format!("read inside node {next}'s arena: {e}"))?;
    ensure(u64::from_le_bytes(buf) == 10 * r.n as u64, || {
        "the served view reads wrong".into()
    })?;
    let outside = word((next + 1) % r.n);
    match t.read(next, data, outside, &mut buf) {
        Ok(()) => return Err(format!("node {next} served offset {outside:#x}")),
        Err(e) => ensure(e.to_string().contains("outside the region"), || {
            format!("unclear error: {e}")
        })?,
    }
    r.finish()
}

/// Under interleaved placement with memory nodes, a compute node homes
/// nothing (no prefix here): it serves no memory of the region (the
/// transport holds one page outside it), and everything works through
/// the memory nodes' views.
fn home_memory_in_a_file_on_compute_nodes_serves_nothing(node: &Node) -> Check {
    let (tracked, options) = options(node);
    let options = RegionOptions {
        home_memory: HomeMemory::SharedFile,
        populate_home_view: true,
        ..options
    };
    let Some(r) = start_with_memory_nodes_and(node, Placement::Interleaved, tracked, options)?
    else {
        return Ok(());
    };
    let (_, len) = r.region.served_memory();
    ensure(len == 0, || {
        format!("compute node {} served {len} bytes", r.rank)
    })?;
    let t = r.region.transport();
    let mut buf = [0u8; 8];
    match t.read(r.rank, r.region.served_region(), 0, &mut buf) {
        Ok(()) => return Err("a compute node served offset 0".into()),
        Err(e) => ensure(e.to_string().contains("outside the region"), || {
            format!("unclear error: {e}")
        })?,
    }
    // Runs of pages over the memory nodes: offsets in several runs.
    let offsets: Vec<u64> = (0..8).map(|k| k * 200 * PAGE + 64).collect();
    for &off in &offsets {
        let at = off + 64 * r.rank as u64;
        r.store(at, &pattern(at, 64));
    }
    let word = 300 * PAGE;
    for _ in 0..10 {
        r.region
            .atomic_update(r.addr(word), 8, false, false, |v| Some(v + 1))
            .map_err(|e| e.to_string())?;
    }
    r.barrier()?;
    for &off in &offsets {
        for writer in 0..r.n as u64 {
            let at = off + 64 * writer;
            ensure(r.load(at, 64) == pattern(at, 64), || {
                format!("bytes at {at:#x} from node {writer} read wrong")
            })?;
        }
    }
    let got = u64::from_le_bytes(r.load(word, 8).try_into().unwrap());
    ensure(got == 10 * r.n as u64, || format!("counter {got}"))?;
    r.finish_compute()
}

/// With home memory in a file, evicted and invalidated pages leave the
/// file too (a page left there would show its old bytes), atomics at the
/// home go through the served view, and nothing is lost.
fn home_memory_in_a_file_keeps_every_write_through_evictions_and_atomics(node: &Node) -> Check {
    let r = start_in_a_file(node, Placement::Interleaved, 8 * PAGE)?;
    let next = (r.rank + 1) % r.n;
    let word = r.page_of(r.n - 1, 300);
    for round in 0..3u64 {
        for i in 0..64 {
            let off = r.page_of(next, 100 + r.rank as u64 * 64 + i);
            r.store(off + 8 * round, &pattern(off ^ round, 8));
        }
        for _ in 0..20 {
            r.region
                .atomic_update(r.addr(word), 8, false, false, |v| Some(v + 1))
                .map_err(|e| e.to_string())?;
        }
        r.barrier()?;
        for writer in 0..r.n {
            for i in (0..64).step_by(5) {
                let off = r.page_of((writer + 1) % r.n, 100 + writer as u64 * 64 + i);
                for k in 0..=round {
                    ensure(r.load(off + 8 * k, 8) == pattern(off ^ k, 8), || {
                        format!("round {round}: bytes {k} of page {off:#x} (node {writer}) lost")
                    })?;
                }
            }
        }
        let total = 20 * r.n as u64 * (round + 1);
        let got = u64::from_le_bytes(r.load(word, 8).try_into().unwrap());
        ensure(got == total, || format!("counter {got}, expected {total}"))?;
        r.barrier()?;
    }
    ensure(r.region.stats().evictions > 0, || {
        "nothing was evicted".into()
    })?;
    r.finish()
}

/// A cluster over RDMA must not register anonymous home memory with the
/// NIC (pinning it would touch pages only fault handlers may map): the
/// region refuses with a clear error, before any collective step.
fn an_rdma_nic_is_never_given_anonymous_home_memory(node: &Node) -> Check {
    let config = config(node, Placement::Interleaved, 1 << 30);
    let transport = loco_rdma::connect(&config, node.rank).map_err(|e| format!("connect: {e}"))?;
    let mut rdma = config.clone();
    rdma.transport = loco_cluster::TransportKind::Verbs;
    let (_, options) = options(node);
    match SharedRegion::new(&rdma, transport.clone(), options) {
        Ok(_) => return Err("anonymous home memory was registered for RDMA".into()),
        Err(e) => ensure(e.to_string().contains("cannot serve home pages"), || {
            format!("unclear error: {e}")
        })?,
    }
    transport.barrier().map_err(|e| e.to_string())?;
    transport.shutdown();
    Ok(())
}

/// Home memory in a file keeps write notices although no serving thread
/// sees who reads a page: readers mark it in the home's export map first.
/// A page read from a home that has never mapped it, then written there
/// (its first touch), must be noticed (the home maps it protected); a page
/// read and written by nobody afterwards stays cached across the barrier.
fn home_memory_in_a_file_keeps_write_notices_from_readers_marks(node: &Node) -> Check {
    let r = start_in_a_file(node, Placement::Interleaved, 1 << 30)?;
    let next = (r.rank + 1) % r.n;
    // Each home's written page far from the pages it caches itself (in
    // another 64-page chunk: no write-tracking scan covers it by chance).
    let index = |home: usize| 100 + 100 * home as u64;
    let written = r.page_of(next, index(next));
    let quiet = r.page_of(next, index(next) + 1);
    ensure(
        r.load(written, 8) == [0; 8] && r.load(quiet, 8) == [0; 8],
        || "untouched pages are not zeros".into(),
    )?;
    r.barrier()?;
    // Each home writes the page its reader holds, touching it first.
    let mine = r.page_of(r.rank, index(r.rank));
    r.store_unmarked(mine, &pattern(mine, 8));
    r.barrier()?;
    ensure(r.region.cached_pages() >= 1, || {
        "the page nobody wrote was dropped at the barrier".into()
    })?;
    ensure(r.load(written, 8) == pattern(written, 8), || {
        format!("node {next}'s write to its page {written:#x}, read here before, was not noticed")
    })?;
    r.finish()
}

/// Node 0's pages, read by the others in a sequential scan (read-ahead:
/// one read serves a window of pages, whose home protects them all at
/// once), then written by node 0, page by page: every write must reach
/// the readers after the barrier, the window's last pages' too.
fn a_home_write_to_any_page_of_a_read_ahead_window_is_noticed(node: &Node) -> Check {
    let r = start_with(node, Placement::AllocatingNode, 1 << 30)?;
    let pages = 100..164u64;
    if r.rank == 0 {
        for p in pages.clone() {
            r.store(p * PAGE, &[1]);
        }
    }
    r.barrier()?;
    if r.rank != 0 {
        for p in pages.clone() {
            ensure(r.load(p * PAGE, 1) == [1], || format!("page {p} before"))?;
        }
        ensure(r.region.stats().pages_read_ahead > 0, || {
            "the scan read nothing ahead".into()
        })?;
    }
    r.barrier()?;
    if r.rank == 0 {
        for p in pages.clone() {
            r.store_unmarked(p * PAGE + 8, &[p as u8]);
        }
    }
    r.barrier()?;
    for p in pages {
        ensure(r.load(p * PAGE + 8, 1) == [p as u8], || {
            format!("node 0's write to page {p}, read ahead here before, was not noticed")
        })?;
    }
    r.finish()
}

/// As `home_memory_in_a_file_keeps_write_notices_from_readers_marks`,
/// under allocating-node placement, where each node serves (and looks
/// for marks in) only its own arena: a page in the middle of the next
/// node's arena, read here, then written there twice (first while its
/// home has not mapped it, then again after), reaches this node both
/// times.
fn home_memory_in_a_file_keeps_write_notices_in_every_arena(node: &Node) -> Check {
    let r = start_in_a_file(node, Placement::AllocatingNode, 1 << 30)?;
    let next = (r.rank + 1) % r.n;
    let arena = |k: usize| k as u64 * NODE_MEMORY;
    let theirs = arena(next) + 300 * PAGE;
    let mine = arena(r.rank) + 300 * PAGE;
    ensure(r.load(theirs, 8) == [0; 8], || {
        "untouched page is not zeros".into()
    })?;
    for round in 1..=2u8 {
        r.barrier()?;
        r.store_unmarked(mine, &[round; 8]);
        r.barrier()?;
        ensure(r.load(theirs, 8) == [round; 8], || {
            format!(
                "round {round}: node {next}'s write to its page {theirs:#x} was not noticed here"
            )
        })?;
    }
    r.finish()
}
