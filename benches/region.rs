//! The shared region over tcp on loopback, two node processes, node 1
//! working on pages homed at node 0 (allocating-node placement), each
//! figure next to the raw transport operation measured in the same run:
//!
//! - `faults`: a cold read of a remote page (userfaultfd, the transport,
//!   UFFDIO_COPY) with read-ahead off, pages taken in a scattered order,
//!   beside the transport's raw 4 KB read; then 4 threads faulting at once
//!   on pages of their own, beside 4 threads making raw reads at once.
//!   Prints `cold remote fault / raw 4 KB read (medians): X`, p99 / p50, and
//!   the goal (1.5 x the raw read + 7 µs, the local userfaultfd floor);
//! - `sequential`: a thread reading one byte of every page of 32 MiB
//!   (read-ahead on, as by default) in MB/s, beside raw reads of the same
//!   bytes in the read-ahead's 32 KB pieces;
//! - `release` (three modes): release cost for 1, 64 and 4096 dirty bytes
//!   spread over 1, 8 and 64 cached pages, and the bytes a release sent
//!   against the bytes modified: `marked` (every write marks the dirty
//!   bitmap, tracking off), `tracked` (writes through libc memcpy that only
//!   write-protection and a twin comparison find) and `marked+tracked`
//!   (both, as programs compiled by loco-cc run).
//!
//! `cargo bench -p loco-benches --bench region` (LOCO_BENCH_SAMPLES: fault
//! samples, default 2000; LOCO_LINGER_US and LOCO_HOME_MEMORY as for programs;
//! LOCO_BENCH_PARTS: a comma-separated list of parts, or `part:mode`, to
//! run only those, e.g. `release` or `release:marked`; LOCO_BENCH_PIN: a
//! CPU per rank, e.g. `0,1`, binding each node process to it).
//!
//! A small release is one scatter round trip, and what that costs depends
//! on where the scheduler put the two nodes' threads, which holds for a
//! whole run: on a small VM, about 18 µs with both on one CPU and 45-70 µs
//! on two (each wake-up then wakes an idle CPU), whatever the mode. Compare
//! modes with LOCO_BENCH_PIN set, or over several runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loco_benches::{node_role, print_table, run_nodes_of_this_bench, sample_count, Samples};
use loco_cluster::{ClusterConfig, Placement};
use loco_rdma::{MemoryRegion, RegionId, Transport};
use loco_uffd::{HomeMemory, RegionOptions, SharedRegion};

const PAGE: u64 = 4096;
const NODE_MEMORY: u64 = 256 << 20;
/// Threads faulting at once in the concurrent rows.
const THREADS: usize = 4;
/// Bytes the sequential part reads.
const SEQUENTIAL: u64 = 32 << 20;
/// Read-ahead of the sequential part (the default), and the raw reads'
/// size beside it.
const READ_AHEAD: usize = 8;

fn main() {
    if let Some((rank, ports)) = node_role() {
        node(rank, &ports);
        return;
    }
    for (part, mode) in [
        ("faults", "marked"),
        ("sequential", "marked"),
        ("release", "marked"),
        ("release", "tracked"),
        ("release", "marked+tracked"),
    ] {
        if !part_wanted(part, mode) {
            continue;
        }
        let env = [
            ("LOCO_BENCH_PART", part.to_string()),
            ("LOCO_BENCH_MODE", mode.to_string()),
        ];
        print!("{}", run_nodes_of_this_bench(2, 2, &env, 1));
        println!();
    }
}

/// Whether `LOCO_BENCH_PARTS` (a comma-separated list of parts, or of
/// `part:mode`; unset: all) asks for this part in this mode.
fn part_wanted(part: &str, mode: &str) -> bool {
    let Ok(wanted) = std::env::var("LOCO_BENCH_PARTS") else {
        return true;
    };
    wanted
        .split(',')
        .map(str::trim)
        .any(|w| w == part || w == format!("{part}:{mode}"))
}

/// With `LOCO_BENCH_PIN` (a comma-separated list of CPUs, one per rank):
/// binds this node process (every thread it starts after this) to its CPU,
/// to see what the placement of the two nodes' threads costs.
fn pin_to_cpu(rank: usize) {
    let Ok(list) = std::env::var("LOCO_BENCH_PIN") else {
        return;
    };
    let Some(cpu) = list
        .split(',')
        .nth(rank)
        .and_then(|c| c.trim().parse::<usize>().ok())
    else {
        return;
    };
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within it
    // for cpu < CPU_SETSIZE, which sched_setaffinity checks anyway.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("cannot bind node {rank} to CPU {cpu}");
        }
    }
}

/// A permutation of `0..n` with no two neighbours next to each other, so
/// that no fault looks like a sequential scan.
fn scattered(n: u64) -> Vec<u64> {
    // A stride coprime with n, far from 1 and from n - 1.
    let mut stride = n / 2 + 7;
    while gcd(stride, n) != 1 {
        stride += 1;
    }
    (0..n).map(|i| (i * stride) % n).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Reads the first byte of page `p` of the region at `base`.
fn touch(base: u64, p: u64) -> u8 {
    // SAFETY: callers pass pages of node 0's arena, inside the region.
    unsafe { std::ptr::read_volatile((base + p * PAGE) as *const u8) }
}

/// `THREADS` threads each running `op(thread, i)` `per_thread` times at
/// once; every call's duration.
fn concurrently(per_thread: usize, op: impl Fn(usize, usize) + Sync) -> Vec<Duration> {
    let op = &op;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let start = Instant::now();
                            op(t, i);
                            start.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn node(rank: usize, ports: &[u16]) {
    pin_to_cpu(rank);
    let part = std::env::var("LOCO_BENCH_PART").unwrap_or_default();
    let mode = std::env::var("LOCO_BENCH_MODE").unwrap_or_default();
    // Tracking on: writes found by write protection; marks on: every
    // write also marks the bitmap (code compiled by loco-cc does both).
    let tracked = mode.contains("tracked");
    let marked = mode.contains("marked");
    let samples = sample_count(2000);
    let mut config = ClusterConfig::localhost_with_ports(ports).unwrap();
    for n in &mut config.nodes {
        n.memory = NODE_MEMORY;
    }
    config.placement = Placement::AllocatingNode;
    let t = loco_rdma::connect(&config, rank).unwrap();
    let raw_mem = Arc::new(MemoryRegion::anonymous(1 << 20).unwrap());
    let raw = t.register(raw_mem).unwrap();
    let options = RegionOptions {
        track_uninstrumented: tracked,
        linger_us: std::env::var("LOCO_LINGER_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        read_ahead: if part == "faults" { 1 } else { READ_AHEAD },
        fault_threads: std::env::var("LOCO_FAULT_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RegionOptions::default().fault_threads),
        // As for programs: LOCO_HOME_MEMORY=file keeps home pages in a
        // shared file whose second view the transport serves, as a NIC would.
        home_memory: match std::env::var("LOCO_HOME_MEMORY").as_deref() {
            Ok("file") => HomeMemory::SharedFile,
            _ => HomeMemory::Anonymous,
        },
        ..RegionOptions::default()
    };
    let region = SharedRegion::new(&config, t.clone(), options).unwrap();
    let base = region.base();
    let pages = match part.as_str() {
        "faults" => (samples * (1 + THREADS)) as u64,
        "sequential" => SEQUENTIAL / PAGE,
        _ => 64,
    };
    if rank == 0 {
        // The home touches its pages first, so node 1 measures the steady
        // state (the home's own first-touch zero fill is not part of it).
        for p in 0..pages {
            // SAFETY: inside node 0's arena of the region.
            unsafe { *((base + p * PAGE) as *mut u8) = 1 };
        }
    }
    region.barrier().unwrap();
    if rank == 1 {
        match part.as_str() {
            "faults" => faults(&region, &*t, raw, base, samples),
            "sequential" => sequential(&*t, raw, base),
            _ => releases(&region, base, &mode, marked),
        }
    }
    region.barrier().unwrap();
    t.barrier().unwrap();
    t.shutdown();
}

/// Cold faults (read-ahead off, scattered pages) beside raw 4 KB reads,
/// one thread and then `THREADS` at once.
fn faults(region: &SharedRegion, t: &dyn Transport, raw: RegionId, base: u64, samples: usize) {
    let mut page = vec![0u8; PAGE as usize];
    let raw_one = Samples::measure("transport read 4 KB (raw)", samples / 10, samples, || {
        t.read(0, raw, 4096, &mut page)
    });
    let order = scattered(samples as u64);
    let mut next = order.iter();
    let before = region.stats();
    let fault_one = Samples::measure::<()>("cold remote fault", 0, samples, || {
        assert_eq!(touch(base, *next.next().unwrap()), 1);
        Ok(())
    });
    let after = region.stats();
    // What the fault thread spends per fault (reading the home and
    // installing): the rest of a fault is hand-offs between threads.
    let handler_us = (after.fault_ns - before.fault_ns) as f64
        / (after.remote_faults - before.remote_faults).max(1) as f64
        / 1e3;
    let per_thread = samples;
    let raw_many = Samples::from_durations(
        &format!("{THREADS} threads: raw 4 KB reads at once"),
        &concurrently(per_thread, |_, _| {
            let mut page = vec![0u8; PAGE as usize];
            t.read(0, raw, 4096, &mut page).unwrap();
        }),
    );
    // Thread k faults on pages samples * (1 + k) .. in a scattered order.
    let orders: Vec<Vec<u64>> = (0..THREADS)
        .map(|k| {
            scattered(per_thread as u64)
                .into_iter()
                .map(|p| p + (samples * (1 + k)) as u64)
                .collect()
        })
        .collect();
    let wall = Instant::now();
    let fault_many = Samples::from_durations(
        &format!("{THREADS} threads: cold remote faults at once"),
        &concurrently(per_thread, |k, i| {
            assert_eq!(touch(base, orders[k][i]), 1);
        }),
    );
    let wall = wall.elapsed().as_secs_f64();
    let rows = [raw_one, fault_one, raw_many, fault_many];
    print_table(
        "page-fault service: node 1 reads pages homed at node 0, tcp loopback, read-ahead off",
        &rows,
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (raw, fault) = (us(rows[0].median()), us(rows[1].median()));
    println!(
        "cold remote fault / raw 4 KB read (medians): {:.2}",
        fault / raw
    );
    println!(
        "of a cold fault, the fault thread's own work (read from the home, install; mean): {handler_us:.1} us; hand-offs and the kernel: the rest"
    );
    println!(
        "goal: cold remote fault <= 1.5 x raw read + 7 us = {:.1} us: {} ({:.1} us); p99 / p50 {:.2} (goal <= 3)",
        1.5 * raw + 7.0,
        if fault <= 1.5 * raw + 7.0 { "met" } else { "not met" },
        fault,
        us(rows[1].percentile(99.0)) / fault
    );
    println!(
        "{THREADS} threads at once: fault / raw read (medians) {:.2}, p99 / p50 {:.2}, {:.0} faults/s in all",
        us(rows[3].median()) / us(rows[2].median()),
        us(rows[3].percentile(99.0)) / us(rows[3].median()),
        (THREADS * per_thread) as f64 / wall
    );
}

/// A sequential scan of `SEQUENTIAL` bytes through faults (read-ahead on)
/// beside raw reads of the same bytes in read-ahead-sized pieces.
fn sequential(t: &dyn Transport, raw: RegionId, base: u64) {
    let piece = READ_AHEAD * PAGE as usize;
    let mut buf = vec![0u8; piece];
    let start = Instant::now();
    let mut offset = 0;
    for _ in 0..SEQUENTIAL / piece as u64 {
        // The raw region is 1 MiB: the reads wrap around it.
        t.read(0, raw, offset % (1 << 20), &mut buf).unwrap();
        offset += piece as u64;
    }
    let raw_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for p in 0..SEQUENTIAL / PAGE {
        assert_eq!(touch(base, p), 1);
    }
    let fault_s = start.elapsed().as_secs_f64();
    let mb = SEQUENTIAL as f64 / 1e6;
    println!(
        "sequential fault-in of {} MiB, read-ahead {READ_AHEAD}: {:.0} MB/s; raw {} KB reads of the same bytes: {:.0} MB/s; ratio {:.2} (goal >= 0.5)",
        SEQUENTIAL >> 20,
        mb / fault_s,
        piece / 1024,
        mb / raw_s,
        raw_s / fault_s
    );
}

/// Release cost and bytes sent for 1, 64 and 4096 dirty bytes over 1, 8
/// and 64 cached pages.
fn releases(region: &SharedRegion, base: u64, mode: &str, marked: bool) {
    let mut rows = Vec::new();
    let mut bytes_rows = Vec::new();
    for (modified, pages) in [(1u64, 1u64), (64, 8), (4096, 64)] {
        // Fault the pages in (cached) before timing releases.
        for p in 0..pages {
            touch(base, p);
        }
        let before = region.stats();
        let reps = 300;
        let mut stamp = 0u8;
        let per_page = modified / pages;
        let mut write_time = 0f64;
        let mut timings = Vec::with_capacity(reps);
        for _ in 0..reps {
            stamp = stamp.wrapping_add(1) | 1;
            // The writes (and, tracked, their write-protect faults) are timed apart.
            let w = Instant::now();
            for p in 0..pages {
                let addr = base + p * PAGE + 8;
                let data = vec![stamp; per_page as usize];
                // SAFETY: inside node 0's arena; per_page <= 64 bytes.
                unsafe {
                    libc::memcpy(addr as *mut libc::c_void, data.as_ptr().cast(), data.len())
                };
                if marked {
                    region.mark_dirty(addr, per_page);
                }
            }
            write_time += w.elapsed().as_secs_f64();
            let r = Instant::now();
            region.release().unwrap();
            timings.push(r.elapsed());
        }
        rows.push(Samples::from_durations(
            &format!("release {modified} B over {pages} pages"),
            &timings,
        ));
        let after = region.stats();
        bytes_rows.push((
            modified,
            reps as u64 * modified,
            after.bytes_released - before.bytes_released,
            write_time / reps as f64 * 1e6,
            after.write_faults - before.write_faults,
        ));
    }
    print_table(
        &format!("release, mode {mode}: node 1 -> pages homed at node 0, tcp loopback"),
        &rows,
    );
    for (modified, total, sent, write_us, wp) in bytes_rows {
        println!(
            "release of {modified} B: sent {sent} B for {total} B modified (ratio {:.3}); writing them took {write_us:.1} µs per round, {wp} write-protect faults",
            sent as f64 / total as f64
        );
    }
}
