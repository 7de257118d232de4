//! Far memory on the shared region: the curves Fastswap, AIFM and TrackFM
//! report (a workload's speed against the share of its working set that
//! fits in local memory), for LOCO's cache of other nodes' pages.
//!
//! A working set W (LOCO_BENCH_WSS, default 64 MiB) is homed at node 0
//! (allocating-node placement: it lies in node 0's arena) and filled by
//! node 0 first. Node 1 then works on it through a cache (`cache_size`)
//! of 25%, 50%, 75% and 100% of W, one pair of node processes per
//! fraction; an `all-local` pair has node 0 run the same workloads on its
//! own home pages. The workloads, in this order:
//!
//! 1. sequential scan: one u64 read per 64 bytes of W, in order, two
//!    passes; the second is timed (MB/s);
//! 2. scattered reads: one u64 read per page of W in a random
//!    permutation, a warm-up pass and a timed pass with another
//!    permutation: each read timed (median µs per page) and the pass
//!    (pages/s);
//! 3. hash-table lookups: random u64 reads anywhere in W
//!    (LOCO_BENCH_LOOKUPS, default 1M, fixed seed): lookups/s;
//! 4. fill: the first write of every page of a second W-sized array homed
//!    at node 0 that nobody touched before, every byte written, each page
//!    marked dirty after it is written (as code built by loco-cc marks its
//!    stores), then one release so the bytes are at their home: MB/s
//!    (release included; the release alone is shown apart).
//!
//! Every read is checked against the value node 0 wrote, and node 0
//! checks the filled array at its home afterwards: a wrong value marks
//! the workload failed. A node that dies or hangs (LOCO_BENCH_DEADLINE_S
//! per pair, default 300) marks what it had not finished failed.
//!
//! Beside them, in the same run: the transport's raw bulk read of 1 MiB
//! chunks of node 0's memory (W bytes, three times: at the start, before
//! the fill and at the end; the median), a raw 4 KB read and a cold
//! remote fault (every other page of an area past the arrays, in a
//! random order, so that no fault reads ahead; with room in the cache). Per fraction, node 1's region counters
//! (remote faults, pages read ahead, evictions, bytes fetched and
//! written back), and the most pages it held cached, sampled by a thread
//! every 500 µs, against the limit.
//!
//! Goals, with the heap 4x the cache (25%): fill and sequential scan at
//! half the raw stream or better; scattered reads at the cold-fault cost.
//!
//! `cargo bench -p loco-benches --bench farmem` (LOCO_BENCH_WSS: W, e.g.
//! `16MiB`; LOCO_BENCH_FRACTIONS: the cache sizes, e.g. `25,100`;
//! LOCO_BENCH_LOOKUPS; LOCO_BENCH_DEADLINE_S; LOCO_TRACK,
//! LOCO_WP_ASYNC, LOCO_READ_AHEAD and LOCO_LINGER_US as for programs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loco_benches::{median_of, node_outcomes_of_this_bench, node_role, Samples};
use loco_cluster::{parse_size, ClusterConfig, Placement};
use loco_rdma::{MemoryRegion, RegionId, Transport};
use loco_testkit::{NodeOutcome, Rng};
use loco_uffd::{RegionOptions, RegionStats, SharedRegion};

const PAGE: u64 = 4096;
const WORDS_PER_PAGE: u64 = PAGE / 8;
const DEFAULT_WSS: u64 = 64 << 20;
const DEFAULT_LOOKUPS: u64 = 1_000_000;
const DEFAULT_DEADLINE_S: u64 = 300;
/// Cache sizes, in percent of W.
const FRACTIONS: [u64; 4] = [25, 50, 75, 100];
/// The raw stream's read size.
const CHUNK: usize = 1 << 20;
/// Node 0's memory the raw stream reads (wrapping around it).
const RAW_BYTES: usize = 16 << 20;
/// Pages past the two arrays, for cold faults: every other one is read
/// (so that no fault finds the page before it cached and reads ahead), at
/// most half the cache limit of them.
const COLD_PAGES: u64 = 1000;
/// Node 1's own arena (nothing lives there).
const NODE1_MEMORY: u64 = 16 << 20;
const SAMPLE_EVERY: Duration = Duration::from_micros(500);
const SEED: u64 = 0x5eed_f00d;

fn main() {
    if let Some((rank, ports)) = node_role() {
        node(rank, &ports);
        return;
    }
    let wss = wss();
    let deadline =
        Duration::from_secs(env_number("LOCO_BENCH_DEADLINE_S").unwrap_or(DEFAULT_DEADLINE_S));
    println!(
        "far memory: W = {} MiB homed at node 0, {} lookups; node 1 works on it through a cache of part of W (tcp loopback)",
        wss >> 20,
        lookups()
    );
    let started = Instant::now();
    let mut configs: Vec<(String, Option<u64>)> = vec![("all-local".into(), None)];
    // LOCO_BENCH_FRACTIONS (e.g. `25`, `25,100`): only those cache sizes.
    let fractions: Vec<u64> = match std::env::var("LOCO_BENCH_FRACTIONS") {
        Ok(list) => list
            .split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .unwrap_or_else(|| {
                        panic!("LOCO_BENCH_FRACTIONS: {p:?} is not a percentage from 1 to 100")
                    })
            })
            .collect(),
        Err(_) => FRACTIONS.to_vec(),
    };
    configs.extend(fractions.iter().map(|&p| (format!("{p}%"), Some(p))));
    let mut runs = Vec::new();
    for (label, percent) in configs {
        let env = [(
            "LOCO_BENCH_CACHE",
            percent.map_or("local".to_string(), |p| p.to_string()),
        )];
        let t = Instant::now();
        let outcomes = node_outcomes_of_this_bench(2, 2, &env, deadline);
        let run = RunResult::parse(label, percent, &outcomes);
        println!(
            "  {}: {:.0} s{}",
            run.label,
            t.elapsed().as_secs_f64(),
            if run.died.is_some() {
                " (a node failed: see below)"
            } else {
                ""
            }
        );
        runs.push(run);
    }
    println!();
    report(&runs);
    println!(
        "\nwhole bench: {:.0} s (a noisy 2-core VM moves these figures a lot between runs)",
        started.elapsed().as_secs_f64()
    );
}

/// W: LOCO_BENCH_WSS (a size, as `64MiB`), whole pages, at least 64 pages.
fn wss() -> u64 {
    let w = std::env::var("LOCO_BENCH_WSS")
        .ok()
        .map(|s| parse_size(&s).unwrap_or_else(|e| panic!("LOCO_BENCH_WSS: {e}")))
        .unwrap_or(DEFAULT_WSS);
    (w / PAGE).max(64) * PAGE
}

fn lookups() -> u64 {
    env_number("LOCO_BENCH_LOOKUPS")
        .unwrap_or(DEFAULT_LOOKUPS)
        .max(1)
}

/// The number in environment variable `var`, if it holds one.
fn env_number<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

/// What node 0 writes in the u64 at word `i` of the region (never 0).
fn value(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// What the fill writes in the u64 at word `i` of the region (never 0).
fn fill_value(i: u64) -> u64 {
    (i ^ 0xa5a5_5a5a_0f0f_f0f0).wrapping_mul(0xd6e8_feb8_6659_fd93) | 1
}

/// The word of page `p` a scattered read takes.
fn slot(p: u64) -> u64 {
    p.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 55
}

/// Reads the u64 at `addr`.
fn load(addr: u64) -> u64 {
    // SAFETY: callers pass 8-aligned addresses inside node 0's arena of
    // the region, which is mapped (pages fault in on demand).
    unsafe { std::ptr::read_volatile(addr as *const u64) }
}

/// Writes `v` in the u64 at `addr`.
fn store(addr: u64, v: u64) {
    // SAFETY: as `load`; only the fill writes, one thread, to an array
    // nobody else touches meanwhile.
    unsafe { std::ptr::write(addr as *mut u64, v) }
}

fn node(rank: usize, ports: &[u16]) {
    let wss = wss();
    let percent: Option<u64> = std::env::var("LOCO_BENCH_CACHE")
        .ok()
        .and_then(|s| s.parse().ok());
    // Node 1 works through its cache; all-local, node 0 on its home pages.
    let worker = usize::from(percent.is_some());
    let mut config = ClusterConfig::localhost_with_ports(ports).unwrap();
    // Node 0's arena: the data, the array the fill writes, the cold pages.
    config.nodes[0].memory = 2 * wss + COLD_PAGES * PAGE;
    config.nodes[1].memory = NODE1_MEMORY;
    config.placement = Placement::AllocatingNode;
    if let Some(p) = percent {
        config.cache_size = (wss * p / 100 / PAGE).max(1) * PAGE;
    }
    let limit = config.cache_size / PAGE;
    let t = loco_rdma::connect(&config, rank).unwrap();
    let raw_mem = Arc::new(MemoryRegion::anonymous(RAW_BYTES).unwrap());
    if rank == 0 {
        // Real pages behind the raw reads, not the shared zero page.
        raw_mem.write(0, &vec![0x5a; RAW_BYTES]).unwrap();
    }
    let raw = t.register(raw_mem).unwrap();
    // The settings a program's nodes take from the same variables.
    let on = |var: &str| std::env::var(var).map_or(true, |v| v != "0");
    let defaults = RegionOptions::default();
    let options = RegionOptions {
        track_uninstrumented: on("LOCO_TRACK"),
        async_write_tracking: on("LOCO_WP_ASYNC"),
        linger_us: env_number("LOCO_LINGER_US").unwrap_or(0),
        read_ahead: env_number("LOCO_READ_AHEAD").unwrap_or(defaults.read_ahead),
        zero_fill_fresh: on("LOCO_ZERO_FILL"),
        ..defaults
    };
    let region = SharedRegion::new(&config, t.clone(), options).unwrap();
    let base = region.base();
    let cold_base = 2 * wss;
    if rank == 0 {
        // Node 0 fills the data and the cold pages (its home pages); the
        // fill's array stays untouched.
        for w in (0..wss / 8).chain(cold_base / 8..(cold_base + COLD_PAGES * PAGE) / 8) {
            store(base + 8 * w, value(w));
        }
    }
    region.barrier().unwrap();
    if rank == worker {
        println!("result limit_pages {limit}");
        let cold = if percent.is_some() {
            (COLD_PAGES / 2).min(limit / 2)
        } else {
            0
        };
        work(&region, &*t, raw, wss, cold);
    }
    region.barrier().unwrap();
    if rank == 0 {
        // The filled array, at its home, after node 1's release.
        let bad = (wss / 8..2 * wss / 8)
            .filter(|&w| load(base + 8 * w) != fill_value(w))
            .count();
        println!("result fill_check_bad {bad}");
    }
    t.barrier().unwrap();
    t.shutdown();
}

/// Counts a workload's region counters and the most pages cached while it ran.
struct Meter<'a> {
    region: &'a SharedRegion,
    peak: &'a AtomicUsize,
}

impl Meter<'_> {
    /// Runs `f` as workload `name`, then prints its counters:
    /// `counters NAME faults read_ahead evictions fetched released max_cached fault_ns zeroed`.
    fn run<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        let before = self.region.stats();
        self.peak
            .store(self.region.cached_pages(), Ordering::Relaxed);
        let r = f();
        let after = self.region.stats();
        let peak = self
            .peak
            .swap(0, Ordering::Relaxed)
            .max(self.region.cached_pages());
        let d = |f: fn(&RegionStats) -> u64| f(&after) - f(&before);
        println!(
            "counters {name} {} {} {} {} {} {peak} {} {}",
            d(|s| s.remote_faults),
            d(|s| s.pages_read_ahead),
            d(|s| s.evictions),
            d(|s| s.bytes_fetched),
            d(|s| s.bytes_released),
            d(|s| s.fault_ns),
            d(|s| s.pages_zero_filled),
        );
        r
    }
}

/// The workloads, on the node that runs them; `cold` > 0 on node 1 (pages
/// for the cold-fault reference, and the raw transport rows).
fn work(region: &SharedRegion, t: &dyn Transport, raw: RegionId, wss: u64, cold: u64) {
    let remote = cold > 0;
    let base = region.base();
    let pages = wss / PAGE;
    let peak = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(region.cached_pages(), Ordering::Relaxed);
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        let meter = Meter {
            region,
            peak: &peak,
        };
        let mut rng = Rng(SEED);
        if remote {
            raw_stream(t, raw, wss);
            raw_and_cold(&meter, t, raw, 2 * wss / 8, cold);
        }
        // 1. Sequential scan.
        let expected: u64 = (0..wss / 8)
            .step_by(8)
            .fold(0, |a, w| a.wrapping_add(value(w)));
        let scan = || {
            let start = Instant::now();
            let sum = (0..wss / 8)
                .step_by(8)
                .fold(0u64, |a, w| a.wrapping_add(load(base + 8 * w)));
            (start.elapsed().as_secs_f64(), sum)
        };
        let (_, first) = meter.run("scan-warm-up", scan);
        let (secs, second) = meter.run("scan", scan);
        if first != expected || second != expected {
            println!("failed scan read wrong values");
        } else {
            println!("result scan_mbs {}", wss as f64 / 1e6 / secs);
        }
        // 2. Scattered page reads.
        let scattered = |order: Vec<u64>| {
            let mut each = Vec::with_capacity(order.len());
            let mut bad = 0;
            let start = Instant::now();
            for p in order {
                let w = p * WORDS_PER_PAGE + slot(p);
                let t0 = Instant::now();
                let v = load(base + 8 * w);
                each.push(t0.elapsed());
                bad += usize::from(v != value(w));
            }
            (start.elapsed().as_secs_f64(), each, bad)
        };
        let warm = rng.permutation(pages);
        let (_, _, bad_warm) = meter.run("scattered-warm-up", || scattered(warm));
        let order = rng.permutation(pages);
        let (secs, each, bad) = meter.run("scattered", || scattered(order));
        if bad + bad_warm > 0 {
            println!("failed scattered read {} wrong values", bad + bad_warm);
        } else {
            let median = Samples::from_durations("scattered", &each).median();
            println!("result scatter_us {}", median.as_secs_f64() * 1e6);
            println!("result scatter_pages_s {}", pages as f64 / secs);
        }
        // 3. Hash-table lookups.
        let n = lookups();
        let words = wss / 8;
        let (secs, bad) = meter.run("lookups", || {
            let mut bad = 0u64;
            let start = Instant::now();
            for _ in 0..n {
                let w = rng.below(words);
                bad += u64::from(load(base + 8 * w) != value(w));
            }
            (start.elapsed().as_secs_f64(), bad)
        });
        if bad > 0 {
            println!("failed lookups read {bad} wrong values");
        } else {
            println!("result lookups_s {}", n as f64 / secs);
        }
        if remote {
            raw_stream(t, raw, wss);
        }
        // 4. Fill: the second array, words wss/8 .. 2*wss/8.
        let (secs, release_secs) = meter.run("fill", || {
            let start = Instant::now();
            for p in pages..2 * pages {
                let first = p * WORDS_PER_PAGE;
                for w in first..first + WORDS_PER_PAGE {
                    store(base + 8 * w, fill_value(w));
                }
                region.mark_dirty(base + p * PAGE, PAGE);
            }
            let released = Instant::now();
            region.release().unwrap();
            (
                start.elapsed().as_secs_f64(),
                released.elapsed().as_secs_f64(),
            )
        });
        println!("result fill_mbs {}", wss as f64 / 1e6 / secs);
        println!("result fill_release_ms {}", release_secs * 1e3);
        if remote {
            raw_stream(t, raw, wss);
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// The transport's bulk read of `CHUNK`-byte pieces of node 0's raw
/// region, `bytes` in all: prints MB/s.
fn raw_stream(t: &dyn Transport, raw: RegionId, bytes: u64) {
    let mut buf = vec![0u8; CHUNK];
    // Untimed: the buffer's own first-touch faults.
    t.read(0, raw, 0, &mut buf).unwrap();
    let count = (bytes / CHUNK as u64).max(1);
    let start = Instant::now();
    for i in 0..count {
        let offset = (i * CHUNK as u64) % RAW_BYTES as u64;
        t.read(0, raw, offset, &mut buf).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "result raw_stream_mbs {}",
        (count * CHUNK as u64) as f64 / 1e6 / secs
    );
}

/// Raw 4 KB reads, then cold faults on `cold` pages from word `first` of
/// the region (every other page, in a random order: no read-ahead; they
/// fit in the cache): medians in µs.
fn raw_and_cold(meter: &Meter, t: &dyn Transport, raw: RegionId, first: u64, cold: u64) {
    let mut page = vec![0u8; PAGE as usize];
    let raw_4k = Samples::measure("raw 4 KB", (cold / 10) as usize, cold as usize, || {
        t.read(0, raw, PAGE, &mut page)
    });
    println!("result raw4k_us {}", raw_4k.median().as_secs_f64() * 1e6);
    let order = Rng(SEED ^ 1).permutation(cold);
    let mut next = order.iter();
    let mut bad = 0;
    let faults = meter.run("cold-faults", || {
        Samples::measure::<()>("cold fault", 0, cold as usize, || {
            let w = first + 2 * next.next().unwrap() * WORDS_PER_PAGE;
            bad += usize::from(load(meter.region.base() + 8 * w) != value(w));
            Ok(())
        })
    });
    if bad > 0 {
        println!("failed cold-faults read {bad} wrong values");
    } else {
        println!("result cold_us {}", faults.median().as_secs_f64() * 1e6);
    }
}

/// What one pair of node processes reported.
struct RunResult {
    label: String,
    percent: Option<u64>,
    values: HashMap<String, Vec<f64>>,
    /// Per workload: faults, read-ahead, evictions, fetched, released,
    /// max cached, nanoseconds fetching and installing.
    counters: Vec<(String, [u64; 8])>,
    /// Workloads whose reads (or the fill's check) found wrong values.
    wrong: Vec<String>,
    /// How a node failed, if one did.
    died: Option<String>,
}

impl RunResult {
    fn parse(label: String, percent: Option<u64>, outcomes: &[NodeOutcome]) -> RunResult {
        let mut r = RunResult {
            label,
            percent,
            values: HashMap::new(),
            counters: Vec::new(),
            wrong: Vec::new(),
            died: None,
        };
        for o in outcomes {
            for line in o.stdout.lines() {
                let mut f = line.split_whitespace();
                match (f.next(), f.next()) {
                    (Some("result"), Some(key)) => {
                        if let Some(v) = f.next().and_then(|v| v.parse().ok()) {
                            r.values.entry(key.to_string()).or_default().push(v);
                        }
                    }
                    (Some("counters"), Some(name)) => {
                        let mut c = [0u64; 8];
                        for (slot, v) in c.iter_mut().zip(f) {
                            *slot = v.parse().unwrap_or(0);
                        }
                        r.counters.push((name.to_string(), c));
                    }
                    (Some("failed"), Some(_)) => r.wrong.push(line.to_string()),
                    _ => {}
                }
            }
        }
        if r.values.get("fill_check_bad").is_some_and(|v| v[0] > 0.0) {
            r.wrong.push(format!(
                "failed fill: {} words wrong at the home afterwards",
                r.values["fill_check_bad"][0]
            ));
        }
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.success())
            .map(|o| {
                let how = o.describe();
                let first = how.lines().next().unwrap_or_default().to_string();
                let mut tail: Vec<&str> = o
                    .stderr
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .rev()
                    .take(12)
                    .collect();
                tail.reverse();
                if tail.is_empty() {
                    first
                } else {
                    format!("{first}; stderr ends:\n    {}", tail.join("\n    "))
                }
            })
            .collect();
        if !failed.is_empty() {
            r.died = Some(failed.join("\n  "));
        }
        r
    }

    /// A reported value (the median where there are several), unless the
    /// workload it belongs to failed.
    fn get(&self, key: &str) -> Option<f64> {
        let workload = key.split('_').next().unwrap_or(key);
        let wrong = self.wrong.iter().any(|w| {
            let name = w.split_whitespace().nth(1).unwrap_or_default();
            name.starts_with(workload)
        });
        if wrong {
            return None;
        }
        self.values
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| median_of(v.clone()))
    }

    /// The sum of counter `k` over every workload.
    fn total(&self, k: usize) -> u64 {
        self.counters.iter().map(|(_, c)| c[k]).sum()
    }

    fn peak(&self) -> u64 {
        self.counters.iter().map(|(_, c)| c[5]).max().unwrap_or(0)
    }
}

fn report(runs: &[RunResult]) {
    let local = &runs[0];
    let width = 34;
    let col = 11;
    let mut header = format!("{:<width$}", "");
    for r in runs {
        header += &format!("  {:>col$}", r.label);
    }
    println!("{header}");
    // A row of one cell per run; None prints as "failed", Some("") as blank.
    let row = |name: &str, cell: &dyn Fn(&RunResult) -> Option<String>| {
        let mut line = format!("{name:<width$}");
        for r in runs {
            line += &format!("  {:>col$}", cell(r).unwrap_or_else(|| "failed".into()));
        }
        println!("{line}");
    };
    let remote_only = |r: &RunResult, f: &dyn Fn(&RunResult) -> Option<String>| {
        if r.percent.is_none() {
            Some("-".to_string())
        } else {
            f(r)
        }
    };
    let num = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}"));
    // Slowdown against all-local of a rate (higher is better).
    let slowdown = |r: &RunResult, key: &str| {
        let (l, v) = (local.get(key)?, r.get(key)?);
        Some(format!("{:.2}x", l / v))
    };
    let of_raw = |r: &RunResult, key: &str| {
        remote_only(r, &|r| {
            Some(format!("{:.2}", r.get(key)? / r.get("raw_stream_mbs")?))
        })
    };
    row("cache limit (pages)", &|r| {
        remote_only(r, &|r| num(r.get("limit_pages"), 0))
    });
    row("raw stream, 1 MiB reads, MB/s", &|r| {
        remote_only(r, &|r| num(r.get("raw_stream_mbs"), 0))
    });
    row("raw 4 KB read, µs (p50)", &|r| {
        remote_only(r, &|r| num(r.get("raw4k_us"), 1))
    });
    row("cold remote fault, µs (p50)", &|r| {
        remote_only(r, &|r| num(r.get("cold_us"), 1))
    });
    row("1 sequential scan, MB/s", &|r| num(r.get("scan_mbs"), 0));
    row("  slowdown vs all-local", &|r| slowdown(r, "scan_mbs"));
    row("  / raw stream", &|r| of_raw(r, "scan_mbs"));
    row("2 scattered reads, µs/page (p50)", &|r| {
        num(r.get("scatter_us"), 2)
    });
    row("  pages/s", &|r| num(r.get("scatter_pages_s"), 0));
    row("  slowdown vs all-local (pages/s)", &|r| {
        slowdown(r, "scatter_pages_s")
    });
    row("  p50 / cold fault", &|r| {
        remote_only(r, &|r| {
            Some(format!("{:.2}", r.get("scatter_us")? / r.get("cold_us")?))
        })
    });
    row("3 hash lookups, lookups/s", &|r| num(r.get("lookups_s"), 0));
    row("  slowdown vs all-local", &|r| slowdown(r, "lookups_s"));
    row("4 fill, MB/s (release included)", &|r| {
        num(r.get("fill_mbs"), 0)
    });
    row("  slowdown vs all-local", &|r| slowdown(r, "fill_mbs"));
    row("  / raw stream", &|r| of_raw(r, "fill_mbs"));
    row("  of which the release, ms", &|r| {
        num(r.get("fill_release_ms"), 1)
    });
    let counted = |r: &RunResult, f: &dyn Fn(&RunResult) -> String| {
        if r.percent.is_none() {
            Some("-".to_string())
        } else if r.counters.is_empty() {
            None
        } else {
            Some(f(r))
        }
    };
    row("remote faults (whole run)", &|r| {
        counted(r, &|r| r.total(0).to_string())
    });
    row("pages read ahead", &|r| {
        counted(r, &|r| r.total(1).to_string())
    });
    row("evictions", &|r| counted(r, &|r| r.total(2).to_string()));
    row("fetched, MiB", &|r| {
        counted(r, &|r| format!("{:.0}", r.total(3) as f64 / 1048576.0))
    });
    row("written back, MiB", &|r| {
        counted(r, &|r| format!("{:.0}", r.total(4) as f64 / 1048576.0))
    });
    row("max cached pages seen", &|r| {
        counted(r, &|r| r.peak().to_string())
    });
    row("  limit held", &|r| {
        counted(r, &|r| {
            let limit = r.get("limit_pages").unwrap_or(0.0) as u64;
            if r.peak() <= limit { "yes" } else { "NO" }.to_string()
        })
    });
    if let Some(quarter) = runs.iter().find(|r| r.percent == Some(25)) {
        let ratio = |key: &str| Some(quarter.get(key)? / quarter.get("raw_stream_mbs")?);
        let verdict = |v: Option<f64>| match v {
            Some(v) if v >= 0.5 => format!("{v:.2} (met)"),
            Some(v) => format!("{v:.2} (not met)"),
            None => "failed".into(),
        };
        println!(
            "\ngoals with the heap 4x the cache (25%): sequential scan >= 0.5 x raw stream: {}; fill >= 0.5 x raw stream: {}; scattered reads at the cold-fault cost: {}",
            verdict(ratio("scan_mbs")),
            verdict(ratio("fill_mbs")),
            match (quarter.get("scatter_us"), quarter.get("cold_us")) {
                (Some(s), Some(c)) => format!("p50 {s:.1} µs against {c:.1} µs ({:.2}x)", s / c),
                _ => "failed".into(),
            }
        );
    }
    println!(
        "\nper workload on node 1 (region counters; max cached: the most pages the sampler saw)"
    );
    println!(
        "{:<6}  {:<18}  {:>8}  {:>10}  {:>7}  {:>9}  {:>11}  {:>11}  {:>10}  {:>6}  {:>8}",
        "cache",
        "workload",
        "faults",
        "read-ahead",
        "zeroed",
        "evictions",
        "fetched MiB",
        "written MiB",
        "max cached",
        "limit",
        "fault ms"
    );
    for r in runs.iter().filter(|r| r.percent.is_some()) {
        let limit = r.get("limit_pages").unwrap_or(0.0);
        for (name, c) in &r.counters {
            println!(
                "{:<6}  {:<18}  {:>8}  {:>10}  {:>7}  {:>9}  {:>11.1}  {:>11.1}  {:>10}  {:>6.0}  {:>8.0}",
                r.label,
                name,
                c[0],
                c[1],
                c[7],
                c[2],
                c[3] as f64 / 1048576.0,
                c[4] as f64 / 1048576.0,
                c[5],
                limit,
                c[6] as f64 / 1e6
            );
        }
    }
    for r in runs {
        for w in &r.wrong {
            println!("{}: {w}", r.label);
        }
        if let Some(d) = &r.died {
            println!("{}: {d}", r.label);
        }
    }
}
