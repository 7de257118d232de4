//! The shared heap with real node processes over tcp on loopback: blocks
//! allocated on one node are used and freed on another; bad frees, double
//! frees and exhaustion give clear errors; realloc, calloc and aligned
//! allocation keep their promises; threads allocate concurrently.
//!
//! `cargo test -p loco-uffd --test heap [-- FILTER]`

use std::process::ExitCode;
use std::time::Duration;

use loco_cluster::ClusterConfig;
use loco_testkit::suite::{self, ensure, Check, Expect, Node, Scenario, Variant};
use loco_uffd::{HeapError, RegionOptions, SharedHeap, SharedRegion};

const NODE_MEMORY: u64 = 4 << 20;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        &[$(Scenario { name: stringify!($name), expect: Expect::AllSucceed, body: $name }),*]
    };
}

const SCENARIOS: &[Scenario] = scenarios![
    blocks_cross_nodes_and_double_free_is_caught,
    bad_frees_are_refused_with_a_reason,
    full_arena_borrows_then_reports_out_of_memory,
    realloc_calloc_and_alignment,
    threads_allocate_concurrently_without_overlap,
];

fn main() -> ExitCode {
    let variants = [Variant {
        name: "tcp",
        unavailable: None,
    }];
    suite::main(
        "heap",
        &variants,
        &[2, 4],
        SCENARIOS,
        Duration::from_secs(60),
    )
}

struct Run {
    heap: SharedHeap,
    rank: usize,
    n: usize,
}

fn start(node: &Node) -> Result<Run, String> {
    let mut config = ClusterConfig::localhost_with_ports(&node.ports).unwrap();
    for n in &mut config.nodes {
        n.memory = NODE_MEMORY;
    }
    config.connect_timeout = Duration::from_secs(20);
    let transport = loco_rdma::connect(&config, node.rank).map_err(|e| format!("connect: {e}"))?;
    let region = SharedRegion::new(&config, transport, RegionOptions::default())
        .map_err(|e| e.to_string())?;
    let heap = SharedHeap::new(region).map_err(|e| e.to_string())?;
    Ok(Run {
        heap,
        rank: node.rank,
        n: node.n,
    })
}

impl Run {
    fn write(&self, addr: u64, bytes: &[u8]) {
        // SAFETY: addr..addr+len is a live heap block of at least that size.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        self.heap.region().mark_dirty(addr, bytes.len() as u64);
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        // SAFETY: as in write.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), len) };
        out
    }

    fn write_u64(&self, addr: u64, v: u64) {
        self.write(addr, &v.to_le_bytes());
    }

    fn read_u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.read(addr, 8).try_into().unwrap())
    }

    fn barrier(&self) -> Check {
        self.heap
            .region()
            .barrier()
            .map_err(|e| format!("barrier: {e}"))
    }

    fn finish(self) -> Check {
        self.barrier()?;
        let t = self.heap.region().transport().clone();
        t.barrier().map_err(|e| e.to_string())?;
        t.shutdown();
        Ok(())
    }

    /// A table every node can find: node 0's first allocation sits right
    /// after the header at the start of its arena.
    fn root_table(&self, bytes: u64) -> Result<u64, String> {
        let root = self.heap.region().base() + 16;
        if self.rank == 0 {
            let t = self.heap.calloc(1, bytes).map_err(|e| e.to_string())?;
            ensure(t == root, || {
                format!("first block at {t:#x}, expected {root:#x}")
            })?;
        }
        self.barrier()?;
        Ok(root)
    }
}

fn size_of(i: u64) -> u64 {
    [1, 15, 16, 17, 100, 1000, 5000, 70_000, 300_000][(i % 9) as usize]
}

/// Node k allocates and fills blocks; node k+1 checks and frees them; then a
/// second free by node k is refused as a double free.
fn blocks_cross_nodes_and_double_free_is_caught(node: &Node) -> Check {
    let r = start(node)?;
    let per = 30u64;
    let table = r.root_table(8 * per * r.n as u64)?;
    for i in 0..per {
        let size = size_of(i);
        let p = r.heap.malloc(size).map_err(|e| e.to_string())?;
        ensure(r.heap.usable_size(p).unwrap() >= size, || {
            "usable size too small".into()
        })?;
        r.write(p, &vec![(r.rank as u8) ^ (i as u8); size as usize]);
        r.write_u64(table + 8 * (r.rank as u64 * per + i), p);
    }
    r.barrier()?;
    let prev = (r.rank + r.n - 1) % r.n;
    for i in 0..per {
        let p = r.read_u64(table + 8 * (prev as u64 * per + i));
        let got = r.read(p, size_of(i) as usize);
        ensure(got.iter().all(|&b| b == (prev as u8) ^ (i as u8)), || {
            format!("block {i} of node {prev} at {p:#x} has the wrong contents")
        })?;
        r.heap
            .free(p)
            .map_err(|e| format!("free of node {prev}'s block: {e}"))?;
    }
    r.barrier()?;
    let mine = r.read_u64(table + 8 * (r.rank as u64 * per));
    match r.heap.free(mine) {
        Err(HeapError::DoubleFree(p)) if p == mine => {}
        other => return Err(format!("second free of {mine:#x} gave {other:?}")),
    }
    ensure(r.heap.stats().frees == per, || {
        "frees were not counted".into()
    })?;
    r.finish()
}

fn bad_frees_are_refused_with_a_reason(node: &Node) -> Check {
    let r = start(node)?;
    let p = r.heap.malloc(64).map_err(|e| e.to_string())?;
    let stack_value = 5u64;
    let cases: Vec<(u64, &str)> = vec![
        (
            &stack_value as *const u64 as u64,
            "outside the shared region",
        ),
        (p + 3, "not 16-byte aligned"),
        (p + 32, "no block header"),
    ];
    for (addr, needle) in cases {
        match r.heap.free(addr) {
            Ok(()) => return Err(format!("free({addr:#x}) succeeded")),
            Err(e) => ensure(e.to_string().contains(needle), || {
                format!("free({addr:#x}): unclear error: {e}")
            })?,
        }
    }
    r.heap.free(p).map_err(|e| e.to_string())?;
    ensure(
        matches!(r.heap.free(p), Err(HeapError::DoubleFree(_))),
        || "double free not caught".into(),
    )?;
    ensure(r.heap.free(0).is_ok(), || {
        "free(NULL) must be a no-op".into()
    })?;
    r.finish()
}

/// Node 0 allocates more than its own arena holds: it borrows from the
/// others' arenas, then hits a clear out-of-memory error.
fn full_arena_borrows_then_reports_out_of_memory(node: &Node) -> Check {
    let r = start(node)?;
    if r.rank == 0 {
        let mut blocks = Vec::new();
        for _ in 0..6 {
            blocks.push(r.heap.malloc(1 << 20).map_err(|e| e.to_string())?);
        }
        ensure(r.heap.stats().borrowed > 0, || {
            "6 MiB fit in a 4 MiB arena?".into()
        })?;
        match r.heap.malloc(NODE_MEMORY * r.n as u64) {
            Err(e @ HeapError::OutOfMemory { .. }) => {
                ensure(e.to_string().contains("cluster.toml"), || {
                    format!("out-of-memory message gives no way out: {e}")
                })?
            }
            other => return Err(format!("allocating more than the region gave {other:?}")),
        }
        // Freed spans are reused: the same allocations fit again.
        for b in blocks {
            r.heap.free(b).map_err(|e| e.to_string())?;
        }
        for _ in 0..6 {
            r.heap
                .malloc(1 << 20)
                .map_err(|e| format!("after freeing: {e}"))?;
        }
    }
    r.finish()
}

fn realloc_calloc_and_alignment(node: &Node) -> Check {
    let r = start(node)?;
    // realloc keeps contents while growing through every size range.
    let mut p = r.heap.malloc(10).map_err(|e| e.to_string())?;
    r.write(p, b"0123456789");
    for size in [100u64, 5000, 100_000, 1_000_000, 30] {
        p = r.heap.realloc(p, size).map_err(|e| e.to_string())?;
        ensure(r.read(p, 10) == b"0123456789", || {
            format!("realloc to {size} lost the contents")
        })?;
    }
    ensure(r.heap.realloc(p, 0).unwrap() == 0, || {
        "realloc(p, 0) must free".into()
    })?;
    // calloc zeroes a recycled block.
    let q = r.heap.malloc(200).map_err(|e| e.to_string())?;
    r.write(q, &[0xff; 200]);
    r.heap.free(q).map_err(|e| e.to_string())?;
    let z = r.heap.calloc(10, 20).map_err(|e| e.to_string())?;
    ensure(r.read(z, 200).iter().all(|&b| b == 0), || {
        "calloc returned dirty memory".into()
    })?;
    ensure(r.heap.calloc(u64::MAX / 2, 4).is_err(), || {
        "calloc overflow not caught".into()
    })?;
    for align in [32u64, 64, 4096, 65536] {
        let a = r
            .heap
            .aligned_alloc(align, 100)
            .map_err(|e| e.to_string())?;
        ensure(a % align == 0, || {
            format!("aligned_alloc({align}) gave {a:#x}")
        })?;
        r.write(a, &[1; 100]);
        r.heap
            .free(a)
            .map_err(|e| format!("free of aligned block: {e}"))?;
    }
    ensure(r.heap.aligned_alloc(48, 10).is_err(), || {
        "alignment 48 accepted".into()
    })?;
    r.finish()
}

fn threads_allocate_concurrently_without_overlap(node: &Node) -> Check {
    let r = start(node)?;
    let results: Vec<Check> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let r = &r;
                s.spawn(move || -> Check {
                    let mut mine = Vec::new();
                    for i in 0..300u64 {
                        let size = 8 + (i * 37) % 500;
                        let p = r.heap.malloc(size).map_err(|e| e.to_string())?;
                        r.write(p, &vec![t; size as usize]);
                        mine.push((p, size));
                        if i % 3 == 0 {
                            let (q, _) = mine.remove(0);
                            r.heap.free(q).map_err(|e| e.to_string())?;
                        }
                    }
                    for (p, size) in mine {
                        ensure(r.read(p, size as usize).iter().all(|&b| b == t), || {
                            format!("thread {t}'s block at {p:#x} was overwritten")
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread panicked"))
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    let _ = r.n;
    r.finish()
}
