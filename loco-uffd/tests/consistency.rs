//! Property test of the memory model: random data-race-free programs run on
//! real node processes and every read is checked against a sequential model.
//!
//! A program is a list of phases separated by barriers (release, global
//! barrier, acquire). In each phase every 64-byte cell of a few shared pages
//! has at most one owner node; a node writes only its own cells and reads
//! only its own cells or cells nobody writes in that phase, so the program
//! is race-free and its result is defined: a read sees the memory as it was
//! at the start of the phase, overlaid with the reader's own earlier writes.
//! Writes are either instrumented (store, then mark the bitmap) or, in the
//! `tracked` variant, plain libc memcpy that only write-protection can see.
//! Cells are smaller than pages, so nodes share pages all the time (false
//! sharing). In the `tracked` and `migrate` variants pages live where they
//! are first touched; elsewhere they are interleaved (the default: their
//! homes rotate over the nodes), except in the `read-ahead` variant (tracked,
//! allocating-node placement), where every page lives on node 0, so the
//! other nodes' sequential reads fetch several pages per fault (pages
//! nobody wrote are read there too, not mapped as zeros as in the others).
//!
//! The `migrate` variant (tracked, first-touch) gives programs the shape
//! home migration acts on: node 0 first writes a word of every page (so it
//! is home to all of them), then odd phases let each page's one owner
//! (random, fixed for the program) write it, always at least a word, and
//! even phases let every node read everything. Pages move to their owners
//! (each node that owns a page checks that some page moved to it) while
//! every node keeps copies of them, and every read is still checked.
//!
//! The `shadow` and `shadow-migrate` variants write as code compiled by
//! loco-cc does (loco-pass/ABI.md): store, then read the page's home byte
//! at its fixed address and mark only if this node is not home to the page.
//! Nothing is write-protected (untracked), so a write to a cached page whose
//! home byte wrongly says "home here" never reaches its home and the model
//! check fails. `shadow` is `marked`'s placement (homes rotate over the
//! nodes); `shadow-migrate` is `migrate`'s programs plus a last phase in
//! which node 0, first home to every page, writes every page again, after
//! pages moved away from it (their home bytes must have been cleared there).
//!
//! The `threads` variant runs two threads per node, each a worker with its
//! own cells and ops, under a cache of three pages (so pages are evicted
//! while the program runs) and with more kinds of op: releases and acquires
//! in the middle of a phase (while the node's other thread keeps writing),
//! atomic additions to shared counters, a lock (built from the region's
//! atomics, with their acquire and release) guarding two counters on
//! different pages that must always be equal under it, and a plain store
//! followed by the worker's own atomic on the same word (program order).
//!
//! `tracked-faults` and `threads-faults` are `tracked` and `threads` with
//! written pages found by write-protect faults, as on kernels without
//! WP_ASYNC (the other variants find them by page-table scans where the
//! kernel has it, and the test checks that they do).
//!
//! `file` (tracked, first-touch) and `threads-file` (`threads` with its
//! home memory's view populated at start, as pinning it for a NIC does)
//! keep home pages in a shared file whose second view the transport
//! serves without the home's CPU, as an RDMA NIC would: nothing prepares
//! an access, home pages another node wrote are mapped by minor faults,
//! and every acquire drops every cached page. They send exact runs.
//!
//! Write-back: `marked`, `shadow` and `shadow-migrate` send exact runs of
//! the bytes written (as over RDMA); the others send masked runs of whole
//! words (tcp's default: the home writes only the bytes a mask names).
//!
//! `cargo test -p loco-uffd --test consistency` (LOCO_PROPTEST_CASES sets
//! the number of programs per node count and variant, default 16).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use loco_cluster::ClusterConfig;
use loco_testkit::{free_ports, run_nodes, this_executable};
use loco_uffd::{HomeMemory, RegionOptions, SharedRegion};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PAGES: usize = 6;
const CELL: usize = 64;
const CELLS: usize = PAGES * 4096 / CELL;
/// Threads per node in the `threads` variant.
const THREADS: usize = 2;
/// After the cells: a page of atomic counters (the lock word first), then
/// one page for each of the two lock-guarded counters.
const COUNTERS_PAGE: usize = PAGES;
const COUNTERS: usize = 8;
const GUARDED: [usize; 2] = [(PAGES + 1) * 4096, (PAGES + 2) * 4096 + 8];
const SPACE: usize = (PAGES + 3) * 4096;

#[derive(Debug, Clone)]
enum Op {
    /// Write `len` bytes derived from `seed` at `cell * 64 + at`.
    Write {
        cell: usize,
        at: usize,
        len: usize,
        seed: u8,
        libc: bool,
    },
    Read {
        cell: usize,
        at: usize,
        len: usize,
    },
    /// Send this node's writes home now (other threads keep writing).
    Release,
    /// Drop what this node caches (other threads keep writing).
    Acquire,
    /// Atomic addition to one of the shared counters.
    Add {
        counter: usize,
        delta: u8,
    },
    /// Take the lock, check the two guarded counters are equal, add one to each.
    Locked,
    /// Store a word derived from `seed` at `cell * 64 + word * 8`, then add
    /// one to it atomically, then read it: it must be the store's value + 1.
    StoreThenAtomic {
        cell: usize,
        word: usize,
        seed: u8,
    },
}

#[derive(Debug, Clone)]
struct Phase {
    /// Owner of each cell in this phase: a node index, or >= n for nobody.
    owners: Vec<u8>,
    /// Per node, its operations in program order.
    ops: Vec<Vec<Op>>,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let place = (0..CELLS, 0..CELL, 1..=CELL);
    prop_oneof![
        (place.clone(), any::<u8>(), any::<bool>()).prop_map(|((cell, at, len), seed, libc)| {
            Op::Write {
                cell,
                at,
                len,
                seed,
                libc,
            }
        }),
        place.prop_map(|(cell, at, len)| Op::Read { cell, at, len }),
    ]
}

fn threaded_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op_strategy(),
        1 => Just(Op::Release),
        1 => Just(Op::Acquire),
        1 => (0..COUNTERS - 1, any::<u8>()).prop_map(|(c, delta)| Op::Add { counter: c + 1, delta }),
        1 => Just(Op::Locked),
        1 => (0..CELLS, 0..CELL / 8, any::<u8>())
            .prop_map(|(cell, word, seed)| Op::StoreThenAtomic { cell, word, seed }),
    ]
}

/// Phases for `workers` workers (nodes, or nodes x threads).
fn program_strategy(workers: usize, threaded: bool) -> BoxedStrategy<Vec<Phase>> {
    let op = if threaded {
        threaded_op_strategy().boxed()
    } else {
        op_strategy().boxed()
    };
    let phase = (
        proptest::collection::vec(0..(workers as u8 + 1), CELLS),
        proptest::collection::vec(proptest::collection::vec(op, 0..14), workers),
    )
        .prop_map(|(owners, ops)| Phase { owners, ops });
    proptest::collection::vec(phase, 1..6).boxed()
}

/// Programs for the `migrate` variant (see the top): 8 phases; page `p`'s
/// owner is `owners[p]` of the first generated phase (a worker, or nobody).
fn migrating_program_strategy(workers: usize, old_home_writes: bool) -> BoxedStrategy<Vec<Phase>> {
    let phase = (
        proptest::collection::vec(0..(workers as u8 + 1), CELLS),
        proptest::collection::vec(proptest::collection::vec(op_strategy(), 0..14), workers),
    )
        .prop_map(|(owners, ops)| Phase { owners, ops });
    let phases = if old_home_writes { 9 } else { 8 };
    proptest::collection::vec(phase, phases..phases + 1)
        .prop_map(move |mut program| {
            let page_owner: Vec<u8> = (0..PAGES).map(|p| program[0].owners[p * 64]).collect();
            let nobody = workers as u8;
            for (k, phase) in program.iter_mut().enumerate() {
                let writer = |page: usize| match k {
                    0 | 8 => 0,
                    k if k % 2 == 1 => page_owner[page],
                    _ => nobody,
                };
                phase.owners = (0..CELLS).map(|c| writer(c / 64)).collect();
                for page in 0..PAGES {
                    let w = writer(page) as usize;
                    if w < workers {
                        phase.ops[w].push(Op::Write {
                            cell: page * 64 + k,
                            at: 0,
                            len: 8,
                            seed: (page * 8 + k) as u8,
                            libc: false,
                        });
                    }
                }
            }
            program
        })
        .boxed()
}

/// The model's verdict on an op: whether node `me` may run it in this phase
/// (generated ops that would race are skipped by every node alike).
fn allowed(phase: &Phase, me: usize, n: usize, op: &Op) -> bool {
    let (cell, at, len) = match op {
        Op::Write { cell, at, len, .. } | Op::Read { cell, at, len } => (*cell, *at, *len),
        Op::StoreThenAtomic { cell, .. } => return phase.owners[*cell] as usize == me,
        Op::Release | Op::Acquire | Op::Add { .. } | Op::Locked => return true,
    };
    if at + len > CELL {
        return false;
    }
    let owner = phase.owners[cell] as usize;
    match op {
        Op::Write { .. } => owner == me,
        _ => owner == me || owner >= n,
    }
}

/// The bytes an op leaves in shared memory, as (offset, bytes), if any.
fn effect(op: &Op) -> Option<(usize, Vec<u8>)> {
    match *op {
        Op::Write {
            cell,
            at,
            len,
            seed,
            ..
        } => Some((cell * CELL + at, bytes(seed, len))),
        Op::StoreThenAtomic { cell, word, seed } => Some((
            cell * CELL + word * 8,
            stored_word(seed).wrapping_add(1).to_le_bytes().to_vec(),
        )),
        _ => None,
    }
}

/// Worker `me`'s ops of `phase` that the model lets it run.
fn ops_of(phase: &Phase, me: usize, workers: usize) -> impl Iterator<Item = &Op> {
    phase.ops[me]
        .iter()
        .filter(move |op| allowed(phase, me, workers, op))
}

/// The word `StoreThenAtomic` stores.
fn stored_word(seed: u8) -> u64 {
    (seed as u64).wrapping_mul(0x0101_0101_0101_0101) ^ 0x00ff_0000_ff00_0000
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(167) ^ 0x5a)
        .collect()
}

// ------------------------------------------------------------ program files

fn encode(program: &[Phase]) -> String {
    let mut s = String::new();
    for p in program {
        s.push_str("phase ");
        s.push_str(
            &p.owners
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
        for (node, ops) in p.ops.iter().enumerate() {
            for op in ops {
                match op {
                    Op::Write {
                        cell,
                        at,
                        len,
                        seed,
                        libc,
                    } => s.push_str(&format!(
                        "{node} w {cell} {at} {len} {seed} {}\n",
                        *libc as u8
                    )),
                    Op::Read { cell, at, len } => {
                        s.push_str(&format!("{node} r {cell} {at} {len}\n"))
                    }
                    Op::Release => s.push_str(&format!("{node} release\n")),
                    Op::Acquire => s.push_str(&format!("{node} acquire\n")),
                    Op::Add { counter, delta } => {
                        s.push_str(&format!("{node} add {counter} {delta}\n"))
                    }
                    Op::Locked => s.push_str(&format!("{node} locked\n")),
                    Op::StoreThenAtomic { cell, word, seed } => {
                        s.push_str(&format!("{node} sta {cell} {word} {seed}\n"))
                    }
                }
            }
        }
    }
    s
}

fn decode(text: &str, n: usize) -> Vec<Phase> {
    let mut program: Vec<Phase> = Vec::new();
    for line in text.lines() {
        if let Some(owners) = line.strip_prefix("phase ") {
            program.push(Phase {
                owners: owners.split(',').map(|o| o.parse().unwrap()).collect(),
                ops: vec![Vec::new(); n],
            });
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| f[i].parse::<usize>().unwrap();
        let op = match f[1] {
            "w" => Op::Write {
                cell: num(2),
                at: num(3),
                len: num(4),
                seed: num(5) as u8,
                libc: f[6] == "1",
            },
            "r" => Op::Read {
                cell: num(2),
                at: num(3),
                len: num(4),
            },
            "release" => Op::Release,
            "acquire" => Op::Acquire,
            "add" => Op::Add {
                counter: num(2),
                delta: num(3) as u8,
            },
            "locked" => Op::Locked,
            "sta" => Op::StoreThenAtomic {
                cell: num(2),
                word: num(3),
                seed: num(4) as u8,
            },
            other => panic!("unknown op {other}"),
        };
        program.last_mut().unwrap().ops[num(0)].push(op);
    }
    program
}

// ------------------------------------------------------------ parent

fn main() -> ExitCode {
    if let Ok(path) = std::env::var("LOCO_PROGRAM") {
        return node_main(Path::new(&path));
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let cases: u32 = std::env::var("LOCO_PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    let dir = std::env::temp_dir().join(format!("loco-consistency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (mut passed, mut failed) = (0, 0);
    for variant in [
        "tracked",
        "tracked-faults",
        "marked",
        "read-ahead",
        "threads",
        "threads-faults",
        "migrate",
        "shadow",
        "shadow-migrate",
        "file",
        "threads-file",
    ] {
        for n in [2usize, 4] {
            let name = format!("{variant}/{n}-nodes/random_drf_programs_match_the_model");
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let file = dir.join(format!("{variant}-{n}.prog"));
            let workers = n * threads_per_node(variant);
            let strategy = if variant.ends_with("migrate") {
                migrating_program_strategy(workers, variant == "shadow-migrate")
            } else {
                program_strategy(workers, variant.starts_with("threads"))
            };
            let outcome = runner.run(&strategy, |program| {
                run_program(&file, variant, n, &program)
            });
            match outcome {
                Ok(()) => {
                    println!("test {name} ... ok ({cases} programs)");
                    passed += 1;
                }
                Err(e) => {
                    println!("test {name} ... FAILED\n{e}");
                    failed += 1;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("consistency: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn threads_per_node(variant: &str) -> usize {
    if variant.starts_with("threads") {
        THREADS
    } else {
        1
    }
}

fn run_program(
    file: &PathBuf,
    variant: &str,
    n: usize,
    program: &[Phase],
) -> Result<(), TestCaseError> {
    std::fs::write(file, encode(program)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let ports = free_ports(n)
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let outcomes = run_nodes(n, Duration::from_secs(60), |rank| {
        this_executable(&[
            ("LOCO_PROGRAM", file.display().to_string()),
            ("LOCO_VARIANT", variant.to_string()),
            ("LOCO_RANK", rank.to_string()),
            ("LOCO_PORTS", ports.clone()),
        ])
    });
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.success())
        .map(|o| o.describe())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(TestCaseError::fail(bad.join("\n")))
    }
}

// ------------------------------------------------------------ node

fn node_main(path: &Path) -> ExitCode {
    let var = |k: &str| std::env::var(k).unwrap();
    let rank: usize = var("LOCO_RANK").parse().unwrap();
    let ports: Vec<u16> = var("LOCO_PORTS")
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    let n = ports.len();
    let variant = var("LOCO_VARIANT");
    let program = decode(
        &std::fs::read_to_string(path).unwrap(),
        n * threads_per_node(&variant),
    );
    match execute(rank, &ports, &variant, &program) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node {rank}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `len` bytes of the region at offset `off`.
fn read_region(base: u64, off: usize, len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    // SAFETY: callers pass offsets inside the region's first SPACE bytes.
    unsafe {
        std::ptr::copy_nonoverlapping((base + off as u64) as *const u8, got.as_mut_ptr(), len)
    };
    got
}

fn read_word(base: u64, off: usize) -> u64 {
    u64::from_le_bytes(read_region(base, off, 8).try_into().unwrap())
}

/// How a write is made known after the bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Not at all: only write-protection is to see it.
    No,
    /// Marked through the runtime.
    Always,
    /// As compiled code marks: not if the home bytes of its first and last
    /// byte, read at their fixed addresses, both say "home here".
    UnlessHome,
}

/// The home byte of the page of `addr`, where compiled code reads it.
fn home_byte(addr: u64) -> u8 {
    let at = loco_uffd::DirtyBitmap::home_byte_address(addr) as *const u8;
    // SAFETY: the home bytes of the region's pages are committed memory of
    // the region's shadow for as long as the region lives; the runtime
    // stores them atomically, so read one atomically too.
    unsafe {
        (*at.cast::<std::sync::atomic::AtomicU8>()).load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Stores `data` at offset `off` (plainly, or through libc's memcpy), then
/// makes it known as `mark` says.
fn write_region(region: &SharedRegion, off: usize, data: &[u8], mark: Mark) {
    let addr = region.base() + off as u64;
    let len = data.len() as u64;
    // SAFETY: callers pass offsets inside the region's first SPACE bytes.
    unsafe { libc::memcpy(addr as *mut libc::c_void, data.as_ptr().cast(), data.len()) };
    let home = || home_byte(addr) != 0 && home_byte(addr + len - 1) != 0;
    match mark {
        Mark::No => {}
        Mark::Always => region.mark_dirty(addr, len),
        Mark::UnlessHome if home() => {}
        Mark::UnlessHome => region.mark_dirty(addr, len),
    }
}

fn counter_offset(counter: usize) -> usize {
    COUNTERS_PAGE * 4096 + counter * 8
}

/// One worker's ops of one phase, each read checked against `view` (the
/// model at the phase's start plus this worker's own writes).
fn run_ops(
    region: &SharedRegion,
    (tracked, gated): (bool, bool),
    phase: &Phase,
    (me, workers): (usize, usize),
    mut view: Vec<u8>,
) -> Result<(), String> {
    let base = region.base();
    let e = |what: &str, err: loco_uffd::HeapError| format!("{what}: {err}");
    let marked = if gated {
        Mark::UnlessHome
    } else {
        Mark::Always
    };
    for op in ops_of(phase, me, workers) {
        match *op {
            Op::Write { libc, .. } => {
                let (off, data) = effect(op).expect("a write has an effect");
                let how = if libc && tracked { Mark::No } else { marked };
                write_region(region, off, &data, how);
                view[off..off + data.len()].copy_from_slice(&data);
            }
            Op::Read { cell, at, len } => {
                let off = cell * CELL + at;
                let got = read_region(base, off, len);
                if got[..] != view[off..off + len] {
                    let i = (0..len).find(|&i| got[i] != view[off + i]).unwrap();
                    return Err(format!(
                        "read of {len} bytes at {off:#x}: byte {:#x} is {} but the model says {}",
                        off + i,
                        got[i],
                        view[off + i]
                    ));
                }
            }
            Op::Release => region.release().map_err(|x| e("release", x))?,
            Op::Acquire => region.acquire().map_err(|x| e("acquire", x))?,
            Op::Add { counter, delta } => {
                let addr = base + counter_offset(counter) as u64;
                region
                    .atomic_update(addr, 8, false, false, |v| Some(v + delta as u64))
                    .map_err(|x| e("atomic add", x))?;
            }
            Op::Locked => {
                let lock = base + counter_offset(0) as u64;
                let me_tag = me as u64 + 1;
                while region
                    .atomic_update(lock, 8, false, true, |v| (v == 0).then_some(me_tag))
                    .map_err(|x| e("lock", x))?
                    != 0
                {
                    std::thread::yield_now();
                }
                let (a, b) = (read_word(base, GUARDED[0]), read_word(base, GUARDED[1]));
                if a != b {
                    return Err(format!(
                        "under the lock the guarded counters differ: {a} and {b} (an acquire kept a stale page)"
                    ));
                }
                write_region(region, GUARDED[0], &(a + 1).to_le_bytes(), marked);
                write_region(region, GUARDED[1], &(b + 1).to_le_bytes(), marked);
                region
                    .atomic_update(lock, 8, true, false, |_| Some(0))
                    .map_err(|x| e("unlock", x))?;
            }
            Op::StoreThenAtomic { cell, word, seed } => {
                let off = cell * CELL + word * 8;
                let v = stored_word(seed);
                write_region(region, off, &v.to_le_bytes(), marked);
                let old = region
                    .atomic_update(base + off as u64, 8, false, false, |x| {
                        Some(x.wrapping_add(1))
                    })
                    .map_err(|x| e("atomic after a store", x))?;
                if old != v {
                    return Err(format!(
                        "atomic at {off:#x} right after the worker's own store of {v:#x} found {old:#x}"
                    ));
                }
                let now = read_word(base, off);
                if now != v.wrapping_add(1) {
                    return Err(format!(
                        "read at {off:#x} after the worker's own atomic: {now:#x}, not {:#x}",
                        v.wrapping_add(1)
                    ));
                }
                view[off..off + 8].copy_from_slice(&v.wrapping_add(1).to_le_bytes());
            }
        }
    }
    Ok(())
}

fn execute(rank: usize, ports: &[u16], variant: &str, program: &[Phase]) -> Result<(), String> {
    // `-faults`: written pages found by write-protect faults; otherwise by
    // scans where the kernel has WP_ASYNC (Linux 6.8 and newer).
    let by_faults = variant.ends_with("-faults");
    let variant = variant.trim_end_matches("-faults");
    // Home pages in a shared file served without the home's CPU; with
    // threads, its view populated first as pinning it for a NIC would.
    let file = variant.ends_with("file");
    let variant = match variant {
        "threads-file" => "threads",
        v => v,
    };
    let n = ports.len();
    let threads = threads_per_node(variant);
    let workers = n * threads;
    let tracked = !matches!(variant, "marked" | "shadow" | "shadow-migrate");
    let gated = variant.starts_with("shadow");
    let mut config = ClusterConfig::localhost_with_ports(ports).unwrap();
    for node in &mut config.nodes {
        node.memory = 1 << 20;
    }
    match variant {
        "read-ahead" => config.placement = loco_cluster::Placement::AllocatingNode,
        "marked" | "shadow" => config.placement = loco_cluster::Placement::Interleaved,
        // First-touch (not the default): homes where pages are first
        // touched, and pages moving to their writers.
        "tracked" | "migrate" | "shadow-migrate" | "file" => {
            config.placement = loco_cluster::Placement::FirstTouch
        }
        _ => {}
    }
    if variant == "threads" {
        // Fewer pages than the program touches: evictions run all along.
        config.cache_size = 3 * config.page_size;
    }
    config.connect_timeout = Duration::from_secs(20);
    let transport = loco_rdma::connect(&config, rank).map_err(|e| e.to_string())?;
    let options = RegionOptions {
        track_uninstrumented: tracked,
        async_write_tracking: !by_faults,
        // Untouched pages would be mapped as zeros rather than read ahead.
        zero_fill_fresh: variant != "read-ahead",
        // Exact runs of bytes, as over RDMA, in the variants that rely on
        // marks; masked runs (tcp's default) in the others.
        masked_write_back: !file && !matches!(variant, "marked" | "shadow" | "shadow-migrate"),
        home_memory: if file {
            HomeMemory::SharedFile
        } else {
            HomeMemory::Anonymous
        },
        populate_home_view: file && threads > 1,
        ..RegionOptions::default()
    };
    let region =
        SharedRegion::new(&config, transport.clone(), options).map_err(|e| e.to_string())?;
    if region.async_write_tracking() != (!by_faults && kernel_has_wp_async()) {
        return Err(format!(
            "written pages found by {} on this kernel",
            if by_faults { "scans" } else { "faults" }
        ));
    }
    let base = region.base();
    let mut model = vec![0u8; SPACE];
    let mut counters = [0u64; COUNTERS];
    let mut locked = 0u64;
    for (k, phase) in program.iter().enumerate() {
        let outcomes: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (region, view) = (&region, model.clone());
                    s.spawn(move || {
                        let how = (tracked, gated);
                        run_ops(region, how, phase, (rank * threads + t, workers), view)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, outcome) in outcomes.into_iter().enumerate() {
            outcome.map_err(|why| format!("phase {k}, thread {t}: {why}"))?;
        }
        // Every worker's effects of this phase, applied to the model.
        for worker in 0..workers {
            for op in ops_of(phase, worker, workers) {
                if let Some((off, data)) = effect(op) {
                    model[off..off + data.len()].copy_from_slice(&data);
                }
                match *op {
                    Op::Add { counter, delta } => counters[counter] += delta as u64,
                    Op::Locked => locked += 1,
                    _ => {}
                }
            }
        }
        region
            .barrier()
            .map_err(|e| format!("barrier after phase {k}: {e}"))?;
    }
    // Finally every node checks the whole space.
    let all = read_region(base, 0, PAGES * 4096);
    if let Some(i) = (0..all.len()).find(|&i| all[i] != model[i]) {
        return Err(format!(
            "at the end: byte {i:#x} is {} but the model says {}",
            all[i], model[i]
        ));
    }
    for (c, &expected) in counters.iter().enumerate().skip(1) {
        let got = read_word(base, counter_offset(c));
        if got != expected {
            return Err(format!(
                "at the end: counter {c} is {got}, the atomic additions make {expected}"
            ));
        }
    }
    for (i, &off) in GUARDED.iter().enumerate() {
        let got = read_word(base, off);
        if got != locked {
            return Err(format!(
                "at the end: guarded counter {i} is {got}, but {locked} locked sections added to it"
            ));
        }
    }
    // That sequential read of node 0's pages came in runs (read-ahead), and
    // what it brought is what the model says.
    if variant == "read-ahead" && rank != 0 && region.stats().pages_read_ahead == 0 {
        return Err("the read-ahead variant read no page ahead".into());
    }
    // Every page the program gives a node other than node 0 (which first
    // wrote all of them) is written by it in 4 phases: they move there.
    let owns = || (0..PAGES).any(|p| program[1].owners[p * 64] as usize == rank);
    if variant.ends_with("migrate") && rank != 0 && owns() && region.stats().pages_migrated_in == 0
    {
        return Err(format!("node {rank} owns pages but none moved to it"));
    }
    if variant == "threads" && region.stats().evictions == 0 && rank != 0 && program.len() > 2 {
        eprintln!("node {rank}: note: no page was evicted");
    }
    region.barrier().map_err(|e| e.to_string())?;
    // The acquire above reads the other nodes' write notices: nobody leaves
    // before everyone is past it.
    transport.barrier().map_err(|e| e.to_string())?;
    transport.shutdown();
    Ok(())
}

/// Linux 6.8 or newer: userfaultfd has WP_ASYNC and UFFDIO_MOVE.
fn kernel_has_wp_async() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 8)
}
