//! The shared region over tcp on loopback, two node processes, node 1
//! working on pages homed at node 0:
//!
//! - page-fault service time (a cold read of a remote page, through
//!   userfaultfd, the transport and UFFDIO_COPY) next to the transport's raw
//!   4 KB read measured in the same run, as a ratio of medians;
//! - release cost for 1, 64 and 4096 dirty bytes spread over 1, 8 and 64
//!   cached pages, and the bytes a release sent against the bytes modified;
//!
//! each in both modes: `marked` (every write marks the dirty bitmap, as code
//! compiled by loco-cc does) and `tracked` (writes through libc memcpy that
//! only write-protection and a twin comparison find).
//!
//! `cargo bench -p loco-benches --bench region` (LOCO_BENCH_SAMPLES: fault
//! samples, default 2000).

use std::sync::Arc;
use std::time::Instant;

use loco_benches::{node_role, print_table, run_nodes_of_this_bench, sample_count, Samples};
use loco_cluster::{ClusterConfig, Placement};
use loco_rdma::MemoryRegion;
use loco_uffd::{RegionOptions, SharedRegion};

const PAGE: u64 = 4096;
const NODE_MEMORY: u64 = 256 << 20;

fn main() {
    if let Some((rank, ports)) = node_role() {
        node(rank, &ports);
        return;
    }
    for mode in ["marked", "tracked"] {
        print!(
            "{}",
            run_nodes_of_this_bench(2, 2, &[("LOCO_BENCH_MODE", mode.to_string())], 1)
        );
        println!();
    }
}

fn node(rank: usize, ports: &[u16]) {
    let tracked = std::env::var("LOCO_BENCH_MODE").as_deref() == Ok("tracked");
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
        ..RegionOptions::default()
    };
    let region = SharedRegion::new(&config, t.clone(), options).unwrap();
    let base = region.base();
    // Pages [0, samples) of node 0's arena for faults, then 64 pages for releases.
    let fault_pages = samples as u64;
    let release_base = base + fault_pages * PAGE;
    if rank == 0 {
        // The home touches its pages first, so node 1 measures the steady
        // state (the home's own first-touch zero fill is not part of it).
        for p in 0..fault_pages + 64 {
            // SAFETY: inside node 0's arena of the region.
            unsafe { *((base + p * PAGE) as *mut u8) = 1 };
        }
    }
    region.barrier().unwrap();
    if rank == 1 {
        let mut page = vec![0u8; PAGE as usize];
        let mut rows = vec![Samples::measure(
            "transport read 4 KB (raw)",
            samples / 10,
            samples,
            || t.read(0, raw, 4096, &mut page),
        )];
        let mut next = 0u64;
        rows.push(Samples::measure::<()>(
            "page fault (cold remote page)",
            0,
            samples,
            || {
                // SAFETY: page `next` of node 0's arena, inside the region.
                let v = unsafe { std::ptr::read_volatile((base + next * PAGE) as *const u8) };
                assert_eq!(v, 1);
                next += 1;
                Ok(())
            },
        ));
        let mut bytes_rows = Vec::new();
        for (modified, pages) in [(1u64, 1u64), (64, 8), (4096, 64)] {
            // Fault the pages in (cached) before timing releases.
            for p in 0..pages {
                // SAFETY: inside node 0's arena.
                unsafe { std::ptr::read_volatile((release_base + p * PAGE) as *const u8) };
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
                    let addr = release_base + p * PAGE + 8;
                    let data = vec![stamp; per_page as usize];
                    // SAFETY: inside node 0's arena; per_page <= 64 bytes.
                    unsafe {
                        libc::memcpy(addr as *mut libc::c_void, data.as_ptr().cast(), data.len())
                    };
                    if !tracked {
                        region.mark_dirty(addr, per_page);
                    }
                }
                write_time += w.elapsed().as_secs_f64();
                let r = Instant::now();
                region.release().unwrap();
                timings.push(r.elapsed());
            }
            let row = Samples::from_durations(
                &format!("release {modified} B over {pages} pages"),
                &timings,
            );
            let after = region.stats();
            bytes_rows.push((
                modified,
                reps as u64 * modified,
                after.bytes_released - before.bytes_released,
                write_time / reps as f64 * 1e6,
                after.write_faults - before.write_faults,
            ));
            rows.push(row);
        }
        let mode = if tracked { "tracked" } else { "marked" };
        print_table(
            &format!("loco-uffd, mode {mode}: node 1 -> pages homed at node 0, tcp loopback"),
            &rows,
        );
        let ratio = rows[1].median().as_secs_f64() / rows[0].median().as_secs_f64();
        println!("page fault / raw 4 KB read (medians): {ratio:.2}");
        for (modified, total, sent, write_us, wp) in bytes_rows {
            println!(
                "release of {modified} B: sent {sent} B for {total} B modified (ratio {:.3}); writing them took {write_us:.1} µs per round, {wp} write-protect faults",
                sent as f64 / total as f64
            );
        }
    }
    region.barrier().unwrap();
    t.barrier().unwrap();
    t.shutdown();
}
