//! The transport conformance suite: every scenario runs as real node
//! processes on loopback (2 and 4 nodes), against every backend this machine
//! has. A backend the machine lacks (verbs without an RDMA device) is
//! reported as skipped, with the reason, never as passed.
//!
//! `cargo test -p loco-rdma --test conformance [-- FILTER]`
//!
//! The test executable plays every node itself (see loco_testkit::suite).

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use loco_cluster::{ClusterConfig, TransportKind};
use loco_rdma::{MaskedRun, MemoryRegion, NodeId, RegionId, Run, Transport, TransportError};

use loco_testkit::suite::{self, ensure, Check, Expect, Node, Scenario, Variant};
use loco_testkit::Rng;

struct Ctx {
    rank: NodeId,
    n: usize,
    config: ClusterConfig,
}

impl Ctx {
    fn join(&self) -> Result<Arc<dyn Transport>, String> {
        loco_rdma::connect(&self.config, self.rank).map_err(|e| format!("connect: {e}"))
    }
}

/// Every scenario gets the node's cluster description for the backend under test.
macro_rules! scenarios {
    ($($name:ident => $expect:expr),* $(,)?) => {
        &[$(Scenario {
            name: stringify!($name),
            expect: $expect,
            body: |node: &Node| $name(&ctx(node)),
        }),*]
    };
}

const SCENARIOS: &[Scenario] = scenarios![
    read_write_every_pair => Expect::AllSucceed,
    large_and_unaligned_ranges => Expect::AllSucceed,
    scatter_thousands_of_runs => Expect::AllSucceed,
    concurrent_fetch_add => Expect::AllSucceed,
    compare_swap => Expect::AllSucceed,
    compare_swap_runs_claim_until_a_word_is_taken => Expect::AllSucceed,
    atomics_keep_the_owners_stores_to_the_same_word => Expect::AllSucceed,
    barrier_orders_rounds => Expect::AllSucceed,
    barrier_gather_hands_out_every_nodes_bytes => Expect::AllSucceed,
    narrowed_barriers_leave_memory_nodes_out => Expect::AllSucceed,
    bad_requests => Expect::AllSucceed,
    write_then_read_writes_before_it_reads => Expect::AllSucceed,
    a_region_starting_at_an_offset_holds_only_its_window => Expect::AllSucceed,
    node_disappears => Expect::LastNodeKilled,
    unreachable_node => Expect::AllSucceed,
    mismatched_config => Expect::SomeNodeSaid("refused: mismatch"),
];

fn main() -> ExitCode {
    let variants = [
        Variant {
            name: "tcp",
            unavailable: None,
        },
        Variant {
            name: "verbs",
            unavailable: verbs_missing(),
        },
    ];
    suite::main(
        "conformance",
        &variants,
        &[2, 4],
        SCENARIOS,
        Duration::from_secs(60),
    )
}

/// Why the verbs backend cannot run here, if it cannot.
fn verbs_missing() -> Option<String> {
    if !cfg!(feature = "verbs") {
        return Some("loco-rdma was built without the verbs feature".into());
    }
    // libibverbs finds devices through this sysfs class.
    let devices = std::fs::read_dir("/sys/class/infiniband")
        .map(|d| d.count())
        .unwrap_or(0);
    (devices == 0)
        .then(|| "no RDMA device on this machine (/sys/class/infiniband is empty or absent)".into())
}

fn ctx(node: &Node) -> Ctx {
    let mut config = ClusterConfig::localhost_with_ports(&node.ports).unwrap();
    config.transport = match node.variant.as_str() {
        "verbs" => TransportKind::Verbs,
        _ => TransportKind::Tcp,
    };
    config.connect_timeout = Duration::from_secs(20);
    config.op_timeout = Duration::from_secs(5);
    Ctx {
        rank: node.rank,
        n: node.n,
        config,
    }
}

// ---------------------------------------------------------------- helpers

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

fn region(t: &dyn Transport, len: usize) -> Result<(Arc<MemoryRegion>, RegionId), String> {
    let mem = Arc::new(MemoryRegion::anonymous(len).map_err(|e| e.to_string())?);
    let id = t
        .register(mem.clone())
        .map_err(|e| format!("register: {e}"))?;
    Ok((mem, id))
}

fn ok<T>(r: Result<T, TransportError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn finish(t: &dyn Transport) -> Check {
    ok(t.barrier(), "final barrier")?;
    t.shutdown();
    Ok(())
}

// ---------------------------------------------------------------- scenarios

/// Every node writes a distinct block into every node (itself included),
/// then every node reads every block back from wherever it lives.
fn read_write_every_pair(c: &Ctx) -> Check {
    let t = c.join()?;
    let block = 4096;
    let (mem, id) = region(&*t, block * c.n)?;
    for target in 0..c.n {
        let data = pattern((c.rank * 100 + target) as u64, block);
        ok(t.write(target, id, (c.rank * block) as u64, &data), "write")?;
    }
    ok(t.barrier(), "barrier")?;
    for writer in 0..c.n {
        let mut local = vec![0u8; block];
        mem.read((writer * block) as u64, &mut local)?;
        ensure(
            local == pattern((writer * 100 + c.rank) as u64, block),
            || format!("block from node {writer} is wrong in local memory"),
        )?;
        for holder in 0..c.n {
            let mut buf = vec![0u8; block];
            ok(
                t.read(holder, id, (writer * block) as u64, &mut buf),
                "read",
            )?;
            ensure(
                buf == pattern((writer * 100 + holder) as u64, block),
                || format!("block of node {writer} read from node {holder} is wrong"),
            )?;
        }
    }
    finish(&*t)
}

/// Multi-megabyte transfers at odd offsets and lengths, and empty ones.
fn large_and_unaligned_ranges(c: &Ctx) -> Check {
    let t = c.join()?;
    let size = 8 << 20;
    let (_mem, id) = region(&*t, size)?;
    let next = (c.rank + 1) % c.n;
    let big = pattern(c.rank as u64 + 7, (3 << 20) + 7);
    ok(t.write(next, id, 13, &big), "large write")?;
    ok(t.write(next, id, 0, &[]), "empty write")?;
    ok(
        t.read(next, id, size as u64, &mut []),
        "empty read at the end",
    )?;
    ok(t.barrier(), "barrier")?;
    let mut back = vec![0u8; big.len()];
    ok(t.read(next, id, 13, &mut back), "large read")?;
    if let Some(i) = (0..big.len()).find(|&i| back[i] != big[i]) {
        return Err(format!("large range came back different from byte {i} on"));
    }
    let mut rng = Rng(c.rank as u64);
    for _ in 0..200 {
        let off = rng.below(big.len() as u64 - 1);
        let len = 1 + rng.below((big.len() as u64 - off).min(70_000)) as usize;
        let mut buf = vec![0u8; len];
        ok(t.read(next, id, 13 + off, &mut buf), "unaligned read")?;
        ensure(buf[..] == big[off as usize..off as usize + len], || {
            format!("unaligned read at {} len {len} differs", 13 + off)
        })?;
    }
    // The last byte of the region is reachable, one past it is not.
    ok(
        t.write(next, id, size as u64 - 1, &[0xab]),
        "write last byte",
    )?;
    let mut one = [0u8; 1];
    ok(
        t.read(next, id, size as u64 - 1, &mut one),
        "read last byte",
    )?;
    ensure(one == [0xab], || "last byte differs".into())?;
    ensure(t.read(next, id, size as u64, &mut one).is_err(), || {
        "a read one past the region succeeded".into()
    })?;
    finish(&*t)
}

/// 5000 small runs in one scatter per target, some overlapping (later wins).
fn scatter_thousands_of_runs(c: &Ctx) -> Check {
    let t = c.join()?;
    let size = 1 << 20;
    let (mem, id) = region(&*t, size)?;
    // Each writer owns a slice of every target's region: no cross-writer races.
    let slice = size / c.n;
    let build = |writer: usize, target: usize| -> (Vec<(u64, Vec<u8>)>, Vec<u8>) {
        let mut rng = Rng((writer * 31 + target) as u64);
        let base = writer * slice;
        let mut expected = vec![0u8; slice];
        let runs: Vec<(u64, Vec<u8>)> = (0..5000)
            .map(|i| {
                let len = 1 + rng.below(24) as usize;
                let off = rng.below((slice - len) as u64) as usize;
                let data: Vec<u8> = (0..len).map(|k| (i + k + writer) as u8 | 1).collect();
                expected[off..off + len].copy_from_slice(&data);
                ((base + off) as u64, data)
            })
            .collect();
        (runs, expected)
    };
    for target in 0..c.n {
        let (runs, _) = build(c.rank, target);
        let runs: Vec<Run> = runs
            .iter()
            .map(|(o, d)| Run {
                offset: *o,
                data: d,
            })
            .collect();
        ok(t.scatter(target, id, &runs), "scatter")?;
    }
    ok(t.barrier(), "barrier")?;
    for writer in 0..c.n {
        let (_, expected) = build(writer, c.rank);
        let mut got = vec![0u8; slice];
        mem.read((writer * slice) as u64, &mut got)?;
        if let Some(i) = (0..slice).find(|&i| got[i] != expected[i]) {
            return Err(format!(
                "scatter from node {writer}: byte {i} is {} not {}",
                got[i], expected[i]
            ));
        }
    }
    // A scatter with one bad run changes nothing.
    let next = (c.rank + 1) % c.n;
    let marker = [0xeeu8; 4];
    let bad = [
        Run {
            offset: 0,
            data: &marker,
        },
        Run {
            offset: size as u64 - 2,
            data: &marker,
        },
    ];
    ok(t.barrier(), "barrier")?;
    ensure(t.scatter(next, id, &bad).is_err(), || {
        "scatter past the end succeeded".into()
    })?;
    ok(t.barrier(), "barrier")?;
    let mut first = [0u8; 4];
    mem.read(0, &mut first)?;
    ensure(first != marker, || {
        "a refused scatter applied its first run".into()
    })?;
    finish(&*t)
}

/// Every node hammers a counter on every node from two threads.
fn concurrent_fetch_add(c: &Ctx) -> Check {
    let t = c.join()?;
    let (mem, id) = region(&*t, 4096)?;
    let threads = 2;
    let iters = 500u64;
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let t = &t;
                s.spawn(move || -> Check {
                    let mut seen = Vec::with_capacity(iters as usize);
                    for i in 0..iters {
                        for target in 0..c.n {
                            seen.push(ok(t.fetch_add(target, id, 8, 1), "fetch_add")?);
                            ok(t.fetch_add(target, id, 16, i), "fetch_add")?;
                        }
                    }
                    // The counter only grows, so one thread sees increasing old values per target.
                    for target in 0..c.n {
                        let mine: Vec<u64> =
                            seen.iter().skip(target).step_by(c.n).copied().collect();
                        ensure(mine.windows(2).all(|w| w[0] < w[1]), || {
                            "fetch_add returned non-increasing old values".into()
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("worker panicked"))
    })?;
    ok(t.barrier(), "barrier")?;
    let total = (c.n * threads) as u64 * iters;
    let sum = (c.n * threads) as u64 * iters * (iters - 1) / 2;
    ensure(mem.load_u64(8)? == total, || {
        format!("counter is {} not {total}", mem.load_u64(8).unwrap())
    })?;
    ensure(mem.load_u64(16)? == sum, || {
        format!("sum is {} not {sum}", mem.load_u64(16).unwrap())
    })?;
    // Wrap-around is modulo 2^64, as on the NIC.
    ok(t.barrier(), "barrier")?;
    if c.rank == 0 {
        ok(t.fetch_add(c.n - 1, id, 24, u64::MAX), "fetch_add")?;
        let old = ok(t.fetch_add(c.n - 1, id, 24, 2), "fetch_add")?;
        ensure(old == u64::MAX, || {
            format!("old value {old} after adding u64::MAX to 0")
        })?;
    }
    ok(t.barrier(), "barrier")?;
    if c.rank == c.n - 1 {
        ensure(mem.load_u64(24)? == 1, || "u64 wrap-around is wrong".into())?;
    }
    finish(&*t)
}

/// In a region declared `shared_with_cpu_stores` (the shared heap), the
/// owner's own thread stores into bytes 1..8 of a word while every node
/// updates its byte 0 with transport atomics (`omp atomic` on `a[0]`, a
/// plain store to `a[1]`): neither may undo the other. Each time the
/// writer sees byte 0 move it checks that its last store is still there;
/// at the end byte 0 holds every increment.
fn atomics_keep_the_owners_stores_to_the_same_word(c: &Ctx) -> Check {
    let t = c.join()?;
    let mem = Arc::new(
        MemoryRegion::anonymous(4096)
            .map_err(|e| e.to_string())?
            .shared_with_cpu_stores(),
    );
    let id = ok(t.register(mem.clone()), "register")?;
    const WORD: u64 = 8;
    // Per node and target: this many fetch_adds and as many
    // compare-and-swap increments, all on byte 0, never carrying out of
    // it (at most 4 nodes: 240).
    let each = 30u64;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stored = thread::scope(|s| {
        let writer = s.spawn(|| -> Result<u64, String> {
            let mut v = 0u64;
            let high = |w: u64| w >> 8;
            loop {
                v += 1;
                mem.write(WORD + 1, &v.to_le_bytes()[..7])?;
                let low = mem.load_u64(WORD)? & 0xff;
                // Until an atomic has gone past the store.
                loop {
                    let now = mem.load_u64(WORD)?;
                    if high(now) != v {
                        return Err(format!(
                            "the owner's store of {v} to bytes 1..8 was lost to an atomic (the word holds {now:#x})"
                        ));
                    }
                    if now & 0xff != low {
                        break;
                    }
                    if stop.load(std::sync::atomic::Ordering::Acquire) {
                        return Ok(v);
                    }
                    thread::yield_now();
                }
            }
        });
        let updates = (|| -> Check {
            for _ in 0..each {
                for target in 0..c.n {
                    ok(t.fetch_add(target, id, WORD, 1), "fetch_add")?;
                    // As an atomic on one byte of the heap is done: the
                    // whole word swapped, the other bytes as found.
                    let mut current = ok(t.fetch_add(target, id, WORD, 0), "fetch_add")?;
                    loop {
                        let new = (current & !0xff) | ((current + 1) & 0xff);
                        let found = ok(
                            t.compare_swap(target, id, WORD, current, new),
                            "compare_swap",
                        )?;
                        if found == current {
                            break;
                        }
                        current = found;
                    }
                }
            }
            ok(t.barrier(), "barrier")
        })();
        stop.store(true, std::sync::atomic::Ordering::Release);
        let stored = writer.join().expect("writer panicked");
        updates.and(stored)
    })?;
    let word = mem.load_u64(WORD)?;
    let total = 2 * each * c.n as u64;
    ensure(word & 0xff == total, || {
        format!("byte 0 is {} after {total} increments", word & 0xff)
    })?;
    ensure(word >> 8 == stored, || {
        format!(
            "bytes 1..8 hold {} after the owner stored {stored}",
            word >> 8
        )
    })?;
    finish(&*t)
}

/// A CAS run swaps word after word and stops at the first that is not
/// the expected value, reporting it last; every node claiming runs of one
/// table at once (as first-touch homes are claimed) takes each word once.
fn compare_swap_runs_claim_until_a_word_is_taken(c: &Ctx) -> Check {
    let t = c.join()?;
    let (mem, id) = region(&*t, 4096)?;
    let owner = c.n - 1;
    if c.rank == 0 {
        ok(t.write(owner, id, 8 * 5, &9u64.to_le_bytes()), "write")?;
        let found = ok(t.compare_swap_run(owner, id, 8, 8, 0, 3), "run")?;
        ensure(found == [0, 0, 0, 0, 9], || format!("run found {found:?}"))?;
        let found = ok(t.compare_swap_run(owner, id, 8, 2, 0, 4), "run")?;
        ensure(found == [3], || {
            format!("a run on a taken word found {found:?}")
        })?;
        ensure(
            ok(t.compare_swap_run(owner, id, 8 * 6, 0, 0, 4), "empty run")?.is_empty(),
            || "an empty run found something".into(),
        )?;
    }
    ok(t.barrier(), "barrier")?;
    if c.rank == owner {
        let words: Vec<u64> = (1..7).map(|w| mem.load_u64(8 * w).unwrap()).collect();
        ensure(words == [3, 3, 3, 3, 9, 0], || {
            format!("the run left {words:?}")
        })?;
    }
    // Every node claims the words 64.. of node 0's table in runs of 7 from
    // its own start, racing the others; each word ends up someone's, once.
    let table = 64u64;
    let words = 64u64;
    let mut mine = 0;
    let mut at = (c.rank as u64 * words) / c.n as u64;
    for _ in 0..words {
        let count = 7.min(words - at) as u32;
        if count == 0 {
            break;
        }
        let found = ok(
            t.compare_swap_run(0, id, table * 8 + at * 8, count, 0, c.rank as u64 + 1),
            "claim",
        )?;
        let claimed = found.iter().take_while(|&&v| v == 0).count() as u64;
        mine += claimed;
        at += claimed + 1;
        if at >= words {
            break;
        }
    }
    ok(t.fetch_add(0, id, 8 * 200, mine), "sum")?;
    ok(t.barrier(), "barrier")?;
    if c.rank == 0 {
        let taken = (0..words)
            .filter(|w| mem.load_u64((table + w) * 8).unwrap() != 0)
            .count() as u64;
        let sum = mem.load_u64(8 * 200)?;
        ensure(sum == taken, || {
            format!("{sum} claims reported, {taken} words taken")
        })?;
    }
    finish(&*t)
}

/// CAS returns the value found and swaps only on a match; a CAS spin lock
/// at node 0 guards a non-atomic counter that every node updates.
fn compare_swap(c: &Ctx) -> Check {
    let t = c.join()?;
    let (mem, id) = region(&*t, 4096)?;
    let owner = c.n - 1;
    if c.rank == 0 {
        let found = ok(t.compare_swap(owner, id, 32, 5, 6), "cas")?;
        ensure(found == 0, || format!("cas on 0 expecting 5 found {found}"))?;
        let found = ok(t.compare_swap(owner, id, 32, 0, 77), "cas")?;
        ensure(found == 0, || {
            "cas on a match did not report the old value".into()
        })?;
        let found = ok(t.compare_swap(owner, id, 32, 0, 99), "cas")?;
        ensure(found == 77, || {
            format!("cas after swap found {found} not 77")
        })?;
    }
    ok(t.barrier(), "barrier")?;
    if c.rank == owner {
        ensure(mem.load_u64(32)? == 77, || {
            "cas wrote the wrong value".into()
        })?;
    }
    // Lock word at offset 0 of node 0; plain counter at offset 64 of node 0.
    for _ in 0..100 {
        while ok(t.compare_swap(0, id, 0, 0, c.rank as u64 + 1), "lock")? != 0 {}
        let mut v = [0u8; 8];
        ok(t.read(0, id, 64, &mut v), "read counter")?;
        let next = u64::from_le_bytes(v) + 1;
        ok(t.write(0, id, 64, &next.to_le_bytes()), "write counter")?;
        let released = ok(t.compare_swap(0, id, 0, c.rank as u64 + 1, 0), "unlock")?;
        ensure(released == c.rank as u64 + 1, || {
            format!("lock held by {released} at unlock")
        })?;
    }
    ok(t.barrier(), "barrier")?;
    if c.rank == 0 {
        let mut v = [0u8; 8];
        mem.read(64, &mut v)?;
        let count = u64::from_le_bytes(v);
        ensure(count == 100 * c.n as u64, || {
            format!("lock-protected counter is {count}")
        })?;
    }
    finish(&*t)
}

/// In each round every node writes the round number to its slot at the next
/// node; after the barrier each node must see the round from its predecessor.
fn barrier_orders_rounds(c: &Ctx) -> Check {
    let t = c.join()?;
    let (mem, id) = region(&*t, 4096)?;
    let next = (c.rank + 1) % c.n;
    let prev = (c.rank + c.n - 1) % c.n;
    for round in 1..=100u64 {
        ok(
            t.write(next, id, 8 * c.rank as u64, &round.to_le_bytes()),
            "write",
        )?;
        ok(t.barrier(), "barrier")?;
        let mut v = [0u8; 8];
        mem.read(8 * prev as u64, &mut v)?;
        let seen = u64::from_le_bytes(v);
        ensure(seen == round, || {
            format!("round {round}: saw {seen} from node {prev}")
        })?;
        ok(t.barrier(), "barrier")?;
    }
    ensure(t.stats().barriers >= 200, || {
        "barriers were not counted".into()
    })?;
    finish(&*t)
}

/// Gathering barriers hand every node every node's bytes (of any length,
/// none included), round after round, mixed with plain barriers; a backend
/// that cannot gather says so with `None` and still synchronises.
fn barrier_gather_hands_out_every_nodes_bytes(c: &Ctx) -> Check {
    let t = c.join()?;
    let bytes_of = |node: usize, round: usize| -> Vec<u8> {
        (0..(node * 37 + round) % 300)
            .map(|i| (i + round + node) as u8)
            .collect()
    };
    for round in 0..50usize {
        let gathered = ok(t.barrier_gather(&bytes_of(c.rank, round)), "barrier_gather")?;
        let tcp = c.config.transport == loco_rdma::TransportKind::Tcp;
        match gathered {
            Some(all) => {
                ensure(all.len() == c.n, || {
                    format!("{} parts for {} nodes", all.len(), c.n)
                })?;
                for (node, got) in all.iter().enumerate() {
                    ensure(*got == bytes_of(node, round), || {
                        format!(
                            "round {round}: node {node}'s bytes came wrong ({} bytes)",
                            got.len()
                        )
                    })?;
                }
            }
            None => ensure(!tcp, || "tcp did not gather".into())?,
        }
        if round % 7 == 0 {
            ok(t.barrier(), "barrier")?;
        }
    }
    finish(&*t)
}

/// With the second half of the nodes as memory nodes: once the compute
/// nodes narrow their barriers, their barriers and gathering barriers
/// complete among themselves (memory nodes' parts empty) while the memory
/// nodes wait in one `barrier_all` for the whole run and serve their memory
/// meanwhile; a last `barrier_all` of the compute nodes lets them go.
fn narrowed_barriers_leave_memory_nodes_out(c: &Ctx) -> Check {
    let mut config = c.config.clone();
    let compute = c.n / 2;
    for node in &mut config.nodes[compute..] {
        node.role = loco_cluster::Role::Memory;
    }
    let t = loco_rdma::connect(&config, c.rank).map_err(|e| format!("connect: {e}"))?;
    let (mem, id) = region(&*t, 4096)?;
    for n in 0..c.n {
        ensure(t.is_memory_node(n) == (n >= compute), || {
            format!("node {n}'s role came wrong")
        })?;
    }
    if c.rank >= compute {
        let before = t.stats().barriers;
        ok(t.barrier_all(), "the memory node's barrier_all")?;
        // The compute nodes' counters are all in place by now.
        let mut v = [0u8; 8];
        mem.read(0, &mut v)?;
        ensure(u64::from_le_bytes(v) == 100 * compute as u64, || {
            format!("counter {} at the end", u64::from_le_bytes(v))
        })?;
        ensure(t.stats().barriers == before + 1, || {
            "a memory node took other barriers".into()
        })?;
        t.shutdown();
        return Ok(());
    }
    t.narrow_barriers();
    for round in 0..100usize {
        // Atomics on every memory node while they wait in barrier_all.
        for m in compute..c.n {
            ok(t.fetch_add(m, id, 0, 1), "fetch_add at a memory node")?;
        }
        let mine = vec![c.rank as u8; round % 5 + 1];
        let all = ok(t.barrier_gather(&mine), "barrier_gather")?
            .ok_or_else(|| "tcp did not gather".to_string())?;
        ensure(all.len() == c.n, || format!("{} parts", all.len()))?;
        for (node, part) in all.iter().enumerate() {
            let expected = if node < compute {
                vec![node as u8; round % 5 + 1]
            } else {
                Vec::new()
            };
            ensure(*part == expected, || {
                format!("round {round}: node {node}'s part came wrong")
            })?;
        }
        ok(t.barrier(), "barrier")?;
    }
    ok(t.barrier_all(), "barrier_all")?;
    t.shutdown();
    Ok(())
}

/// Requests that cannot be served fail with a clear error and leave the
/// connection usable.
fn bad_requests(c: &Ctx) -> Check {
    let t = c.join()?;
    let (_mem, id) = region(&*t, 4096)?;
    let next = (c.rank + 1) % c.n;
    let mut buf = [0u8; 16];
    let checks: Vec<(&str, Result<(), TransportError>, &str)> = vec![
        (
            "read past the end",
            t.read(next, id, 4090, &mut buf),
            "outside the region",
        ),
        (
            "unregistered region",
            t.read(next, RegionId(42), 0, &mut buf),
            "not registered",
        ),
        (
            "huge offset",
            t.write(next, id, u64::MAX - 3, &buf),
            "outside the region",
        ),
        (
            "misaligned atomic",
            t.fetch_add(next, id, 12, 1).map(|_| ()),
            "8-byte aligned",
        ),
        (
            "no such node",
            t.read(c.n + 3, id, 0, &mut buf),
            "does not exist",
        ),
    ];
    for (what, result, needle) in checks {
        match result {
            Ok(()) => return Err(format!("{what}: succeeded")),
            Err(e) => ensure(e.to_string().contains(needle), || {
                format!("{what}: unclear error {e:?}")
            })?,
        }
    }
    // Still usable afterwards.
    ok(t.write(next, id, 0, b"fine"), "write after errors")?;
    ok(t.read(next, id, 0, &mut buf[..4]), "read after errors")?;
    ensure(&buf[..4] == b"fine", || {
        "connection out of step after errors".into()
    })?;
    finish(&*t)
}

/// `write_then_read` on every node, itself included: the write is in
/// place before the read (reading the bytes just written sees them), a
/// read of another region comes back whole, and a refused write reads
/// nothing, leaves the connection in step and says why.
fn write_then_read_writes_before_it_reads(c: &Ctx) -> Check {
    let t = c.join()?;
    let (marks, marks_id) = region(&*t, 4096)?;
    let (data, data_id) = region(&*t, 64 << 10)?;
    data.write(0, &pattern(c.rank as u64, 64 << 10))?;
    ok(t.barrier(), "barrier")?;
    for target in 0..c.n {
        let at = (c.rank * 8) as u64;
        let mine = [c.rank as u8 + 1; 8];
        // Reading what it writes: only the order makes this come back right.
        let mut back = [0u8; 8];
        ok(
            t.write_then_read(target, (marks_id, at, &mine), marks_id, at, &mut back),
            "write_then_read of the same bytes",
        )?;
        ensure(back == mine, || {
            format!("node {target} read {back:?} before the write of {mine:?} landed")
        })?;
        let mut buf = vec![0u8; 40000];
        ok(
            t.write_then_read(target, (marks_id, at, &mine), data_id, 1000, &mut buf),
            "write_then_read of another region",
        )?;
        ensure(
            buf[..] == pattern(target as u64, 64 << 10)[1000..41000],
            || format!("bytes read from node {target} are wrong"),
        )?;
        buf.fill(7);
        match t.write_then_read(target, (marks_id, 4090, &mine), data_id, 0, &mut buf[..16]) {
            Ok(()) => return Err(format!("a write past the end on node {target} succeeded")),
            Err(e) => ensure(e.to_string().contains("outside the region"), || {
                format!("unclear error: {e}")
            })?,
        }
        ensure(buf[..16].iter().all(|&b| b == 7), || {
            "a refused write-then-read still read".into()
        })?;
        let mut again = [0u8; 8];
        ok(
            t.read(target, marks_id, at, &mut again),
            "read after a refusal",
        )?;
        ensure(again == mine, || {
            "connection out of step after a refusal".into()
        })?;
    }
    ok(t.barrier(), "barrier")?;
    for writer in 0..c.n {
        let mut got = [0u8; 8];
        marks.read((writer * 8) as u64, &mut got)?;
        ensure(got == [writer as u8 + 1; 8], || {
            format!("node {writer}'s mark is not here")
        })?;
    }
    finish(&*t)
}

/// Each node registers memory holding offsets `first..first+len` of
/// what peers address (a window of a larger region, as a node registers
/// only the part of the shared region that can be home on it), at a
/// different `first` on every node. Every operation inside a node's
/// window reaches the right bytes; every one outside it (below, across
/// either edge, past it) is refused with a clear error and changes
/// nothing, and the node serves on afterwards. Once with atomics the
/// transport may do itself (a NIC's), once with a region its owner's
/// CPU stores into (atomics by the owner's CPU).
fn a_region_starting_at_an_offset_holds_only_its_window(c: &Ctx) -> Check {
    const LEN: u64 = 3 * 4096;
    let window = |node: usize| (1u64 << 30) + node as u64 * LEN;
    let t = c.join()?;
    for cpu_stores in [false, true] {
        let mut mem = MemoryRegion::anonymous(LEN as usize)
            .map_err(|e| e.to_string())?
            .starting_at(window(c.rank));
        if cpu_stores {
            mem = mem.shared_with_cpu_stores();
        }
        let mem = Arc::new(mem);
        let id = ok(t.register(mem.clone()), "register")?;
        let me = c.rank as u64;
        // Where node `writer` writes what, at offsets of `target`'s window.
        let at = |target: usize, writer: u64| {
            let first = window(target);
            (
                first + 64 * writer,                  // write
                first + 4096 + 64 * writer,           // scatter, one run per page
                first + 2048 + 8 * writer,            // compare_swap
                first + 3072 + 16 * writer,           // compare_swap_run, 2 words
                first + 2 * 4096 + 1024 + 8 * writer, // a refused scatter's run
            )
        };
        let counter = |target: usize| window(target) + LEN - 8;
        for target in 0..c.n {
            let first = window(target);
            let (w, s, cas, run, refused) = at(target, me);
            let data = pattern(me * 100 + target as u64, 48);
            ok(t.write(target, id, w, &data), "write")?;
            let mut got = vec![0u8; data.len()];
            ok(t.read(target, id, w, &mut got), "read")?;
            ensure(got == data, || format!("node {target}: read back wrong"))?;
            let runs = [
                Run {
                    offset: s,
                    data: &data[..16],
                },
                Run {
                    offset: s + 4096,
                    data: &data[16..32],
                },
            ];
            ok(t.scatter(target, id, &runs), "scatter")?;
            let mask = [0xffu8];
            let masked = [MaskedRun {
                offset: s + 32,
                data: &data[32..40],
                mask: &mask,
            }];
            ok(t.scatter_masked(target, id, &masked), "masked scatter")?;
            ok(t.fetch_add(target, id, counter(target), 1), "fetch_add")?;
            let found = ok(t.compare_swap(target, id, cas, 0, me + 1), "compare_swap")?;
            ensure(found == 0, || format!("compare_swap found {found}"))?;
            let found = ok(t.compare_swap_run(target, id, run, 2, 0, 7), "run")?;
            ensure(found == [0, 0], || {
                format!("compare_swap_run found {found:?}")
            })?;
            // Outside the window: refused, whatever the operation.
            let marker = [0xeeu8; 8];
            let mut buf = [0u8; 8];
            let end = first + LEN;
            let outside: Vec<(&str, Result<(), TransportError>)> = vec![
                ("read at 0", t.read(target, id, 0, &mut buf)),
                ("read below", t.read(target, id, first - 8, &mut buf)),
                (
                    "read across the start",
                    t.read(target, id, first - 4, &mut buf),
                ),
                ("read across the end", t.read(target, id, end - 4, &mut buf)),
                ("write past the end", t.write(target, id, end, &marker)),
                ("write below", t.write(target, id, first - 8, &marker)),
                (
                    "fetch_add below",
                    t.fetch_add(target, id, first - 8, 1).map(|_| ()),
                ),
                (
                    "compare_swap past the end",
                    t.compare_swap(target, id, end, 0, 1).map(|_| ()),
                ),
                (
                    "scatter with a run below",
                    t.scatter(
                        target,
                        id,
                        &[
                            Run {
                                offset: refused,
                                data: &marker,
                            },
                            Run {
                                offset: first - 8,
                                data: &marker,
                            },
                        ],
                    ),
                ),
            ];
            for (what, result) in outside {
                match result {
                    Ok(()) => return Err(format!("node {target}: {what} succeeded")),
                    Err(e) => ensure(e.to_string().contains("outside the region"), || {
                        format!("node {target}: {what}: unclear error {e}")
                    })?,
                }
            }
            // Still serving.
            ok(t.read(target, id, w, &mut got), "read after errors")?;
            ensure(got == data, || {
                format!("node {target}: out of step after errors")
            })?;
        }
        ok(t.barrier(), "barrier")?;
        // What every node did to this one, read in place.
        for writer in 0..c.n as u64 {
            let (w, s, cas, run, refused) = at(c.rank, writer);
            let data = pattern(writer * 100 + me, 48);
            let mut got = vec![0u8; 48];
            mem.read(w, &mut got)?;
            ensure(got == data, || format!("node {writer}'s write is wrong"))?;
            let mut runs = [0u8; 40];
            mem.read(s, &mut runs[..16])?;
            mem.read(s + 4096, &mut runs[16..32])?;
            mem.read(s + 32, &mut runs[32..40])?;
            ensure(runs[..] == data[..40], || {
                format!("node {writer}'s scatters are wrong")
            })?;
            ensure(mem.load_u64(cas)? == writer + 1, || {
                format!("node {writer}'s compare_swap is missing")
            })?;
            ensure(
                mem.load_u64(run)? == 7 && mem.load_u64(run + 8)? == 7,
                || format!("node {writer}'s compare_swap_run is missing"),
            )?;
            let mut left = [0u8; 8];
            mem.read(refused, &mut left)?;
            ensure(left == [0; 8], || {
                format!("node {writer}'s refused scatter applied a run")
            })?;
        }
        let count = mem.load_u64(counter(c.rank))?;
        ensure(count == c.n as u64, || {
            format!("the counter is {count} after {} increments", c.n)
        })?;
        // Nobody writes the regions of this round any more.
        ok(t.barrier(), "barrier")?;
    }
    finish(&*t)
}

/// The last node kills itself mid-run. Everyone else must get errors, not
/// hang: from the barrier and from operations aimed at the dead node.
fn node_disappears(c: &Ctx) -> Check {
    let t = c.join()?;
    let (mem, id) = region(&*t, 4096)?;
    let victim = c.n - 1;
    let reported: Arc<std::sync::Mutex<Option<NodeId>>> = Arc::default();
    {
        let reported = reported.clone();
        t.on_node_failure(Box::new(move |node, _| {
            *reported.lock().unwrap() = Some(node)
        }));
    }
    ok(t.barrier(), "barrier before the kill")?;
    if c.rank == victim {
        // Dies as a crash would: no goodbye, the kernel closes our sockets.
        // SAFETY: kill(2) on our own pid; nothing in this process runs afterwards.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        thread::sleep(Duration::from_secs(30));
        return Err("survived SIGKILL".into());
    }
    let start = Instant::now();
    match t.barrier() {
        Ok(()) => return Err("a barrier with a dead node completed".into()),
        Err(TransportError::NodeFailed { node, why }) => ensure(node == victim, || {
            format!("barrier blamed node {node} ({why}), not {victim}")
        })?,
        Err(e) => return Err(format!("barrier failed with the wrong error: {e}")),
    }
    let mut buf = [0u8; 8];
    let r = t.read(victim, id, 0, &mut buf);
    ensure(
        matches!(r, Err(TransportError::NodeFailed { node, .. }) if node == victim),
        || format!("read from the dead node gave {r:?}"),
    )?;
    ensure(t.fetch_add(victim, id, 0, 1).is_err(), || {
        "atomic on the dead node succeeded".into()
    })?;
    ensure(start.elapsed() < Duration::from_secs(10), || {
        format!("noticing the dead node took {:?}", start.elapsed())
    })?;
    // Node 0 coordinates barriers: it stays until every survivor has checked,
    // so that nobody sees node 0 gone instead of the victim.
    ok(t.fetch_add(0, id, 8, 1), "count survivors")?;
    if c.rank == 0 {
        while mem.load_u64(8)? < (c.n - 1) as u64 {
            ensure(start.elapsed() < Duration::from_secs(20), || {
                "survivors never reported".into()
            })?;
            thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// The last node never starts: the others give up at the connect timeout
/// naming it, instead of waiting forever.
fn unreachable_node(c: &Ctx) -> Check {
    let missing = c.n - 1;
    if c.rank == missing {
        return Ok(());
    }
    let mut config = c.config.clone();
    config.connect_timeout = Duration::from_secs(1);
    let start = Instant::now();
    match loco_rdma::connect(&config, c.rank) {
        Ok(_) => Err("joined a cluster with a missing node".into()),
        Err(TransportError::Unreachable { node, .. }) if node == missing => {
            ensure(start.elapsed() < Duration::from_secs(10), || {
                format!("took {:?} to give up", start.elapsed())
            })
        }
        // A node that reached node 0 first may instead see the failed bootstrap
        // of another node at the barrier: also an error naming a node, not a hang.
        Err(TransportError::NodeFailed { .. }) => Ok(()),
        Err(e) => Err(format!("wrong error for an unreachable node: {e}")),
    }
}

/// Node 1 was given a different cluster description: it is refused. Every
/// node fails to join; whichever pair meets first sees the mismatch itself,
/// while a node whose peer has already given up may see it gone instead.
fn mismatched_config(c: &Ctx) -> Check {
    let mut config = c.config.clone();
    if c.rank == 1 {
        config.cache_size *= 2;
    }
    config.connect_timeout = Duration::from_secs(2);
    match loco_rdma::connect(&config, c.rank) {
        Ok(_) => Err("joined a cluster whose nodes disagree about cluster.toml".into()),
        Err(TransportError::Mismatch { why, .. }) => {
            println!("refused: mismatch");
            ensure(why.contains("same cluster.toml"), || {
                format!("mismatch message does not say what to do: {why}")
            })
        }
        Err(TransportError::NodeFailed { .. } | TransportError::Unreachable { .. }) => Ok(()),
        Err(e) => Err(format!("wrong error for a mismatched config: {e}")),
    }
}
