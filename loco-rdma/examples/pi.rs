//! A first look at the transport: N node processes on this machine estimate
//! pi by Monte Carlo. Each node adds its hits to a counter at node 0 with
//! remote fetch-add, writes its partial result into every other node with a
//! scatter, meets the others at a barrier, and checks what it received.
//! Node 0 prints the estimate and every node its transport statistics.
//!
//! `cargo run --release -p loco-rdma --example pi -- [NODES] [SAMPLES_PER_NODE]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use loco_cluster::ClusterConfig;
use loco_rdma::{MemoryRegion, Run};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(rank) = std::env::var("LOCO_DEMO_RANK") {
        node(rank.parse().expect("rank"));
        return;
    }
    let nodes: usize = args
        .get(1)
        .map_or(4, |a| a.parse().expect("NODES must be a number"));
    let samples: u64 = args
        .get(2)
        .map_or(2_000_000, |a| a.parse().expect("SAMPLES must be a number"));
    let config = ClusterConfig::localhost(nodes).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    println!(
        "starting {nodes} nodes on 127.0.0.1 ports {}..{} over tcp",
        config.nodes[0].port,
        config.nodes[nodes - 1].port
    );
    let exe = std::env::current_exe().expect("own path");
    let mut children: Vec<_> = (0..nodes)
        .map(|rank| {
            let mut child = Command::new(&exe)
                .env("LOCO_DEMO_RANK", rank.to_string())
                .env("LOCO_DEMO_NODES", nodes.to_string())
                .env("LOCO_DEMO_SAMPLES", samples.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a node");
            let out = child.stdout.take().unwrap();
            let printer = std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    println!("[node {rank}] {line}");
                }
            });
            (child, printer)
        })
        .collect();
    let mut failed = false;
    for (child, printer) in children.iter_mut() {
        failed |= !child.wait().map(|s| s.success()).unwrap_or(false);
        let _ = printer;
    }
    for (_, printer) in children {
        let _ = printer.join();
    }
    if failed {
        eprintln!("a node failed");
        std::process::exit(1);
    }
}

fn node(rank: usize) {
    let var = |k: &str| std::env::var(k).unwrap().parse::<u64>().unwrap();
    let nodes = var("LOCO_DEMO_NODES") as usize;
    let samples = var("LOCO_DEMO_SAMPLES");
    let config = ClusterConfig::localhost(nodes).unwrap();
    let t = loco_rdma::connect(&config, rank).unwrap_or_else(|e| {
        eprintln!("node {rank}: {e}");
        std::process::exit(1)
    });
    let mem = Arc::new(MemoryRegion::anonymous(4096).unwrap());
    let id = t.register(mem.clone()).unwrap();

    // xorshift64*: each node its own stream.
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (rank as u64 + 1);
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let hits = (0..samples)
        .filter(|_| {
            let (a, b) = (next(), next());
            a * a + b * b <= 1.0
        })
        .count() as u64;

    t.fetch_add(0, id, 0, hits).unwrap();
    // Slot `rank` of every node's table gets (hits, samples).
    let mut entry = [0u8; 16];
    entry[..8].copy_from_slice(&hits.to_le_bytes());
    entry[8..].copy_from_slice(&samples.to_le_bytes());
    for target in 0..nodes {
        t.scatter(
            target,
            id,
            &[Run {
                offset: 64 + 16 * rank as u64,
                data: &entry,
            }],
        )
        .unwrap();
    }
    t.barrier().unwrap();

    let mut table_hits = 0;
    for r in 0..nodes {
        let mut e = [0u8; 16];
        mem.read(64 + 16 * r as u64, &mut e).unwrap();
        table_hits += u64::from_le_bytes(e[..8].try_into().unwrap());
    }
    if rank == 0 {
        let total = mem.load_u64(0).unwrap();
        assert_eq!(
            total, table_hits,
            "fetch-add total and scattered table disagree"
        );
        let pi = 4.0 * total as f64 / (samples * nodes as u64) as f64;
        println!(
            "pi ~ {pi:.6} from {} samples on {nodes} nodes",
            samples * nodes as u64
        );
    } else {
        let mut counter = [0u8; 8];
        t.read(0, id, 0, &mut counter).unwrap();
        assert_eq!(
            u64::from_le_bytes(counter),
            table_hits,
            "remote counter and local table disagree"
        );
    }
    let s = t.stats();
    println!(
        "stats: {} reads, {} writes, {} scatters ({} runs, {} B), {} atomics, {} barriers",
        s.reads, s.writes, s.scatters, s.scatter_runs, s.bytes_written, s.atomics, s.barriers
    );
    t.barrier().unwrap();
    t.shutdown();
}
