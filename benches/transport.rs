//! Transport latency over tcp on loopback between two node processes:
//! 8-byte and 4 KB remote reads, a 4 KB write, a 64-run scatter, fetch-add,
//! compare-swap and an empty two-node barrier, as medians (and spread). A raw
//! 4 KB request/response on a plain loopback socket between the same two
//! processes is measured alongside, so the table says what the transport adds.
//!
//! `cargo bench -p loco-benches --bench transport` (LOCO_BENCH_SAMPLES sets
//! the sample count, default 5000).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use loco_benches::{node_role, print_table, run_nodes_of_this_bench, sample_count, Samples};
use loco_cluster::ClusterConfig;
use loco_rdma::{MemoryRegion, Run, Transport};

fn main() {
    match node_role() {
        Some((rank, ports)) => node(rank, &ports),
        None => print!("{}", run_nodes_of_this_bench(2, 3, &[], 1)),
    }
}

fn node(rank: usize, ports: &[u16]) {
    let samples = sample_count(5000);
    let warmup = (samples / 10).max(10);
    let config = ClusterConfig::localhost_with_ports(&ports[..2]).unwrap();
    let raw_port = ports[2];
    // Node 0 runs a plain echo server for the raw-socket baseline.
    let raw_server = (rank == 0).then(|| {
        let listener = TcpListener::bind(("127.0.0.1", raw_port)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut req = [0u8; 32];
            let page = vec![7u8; 4096];
            while s.read_exact(&mut req).is_ok() {
                if s.write_all(&page).is_err() {
                    break;
                }
            }
        })
    });
    let t: Arc<dyn Transport> = loco_rdma::connect(&config, rank).unwrap();
    let region = Arc::new(MemoryRegion::anonymous(1 << 20).unwrap());
    let id = t.register(region).unwrap();
    if rank == 1 {
        let mut rows = Vec::new();
        let mut small = [0u8; 8];
        let mut page = vec![0u8; 4096];
        let mut raw = TcpStream::connect(("127.0.0.1", raw_port)).unwrap();
        raw.set_nodelay(true).unwrap();
        rows.push(Samples::measure(
            "raw tcp 4 KB request/response",
            warmup,
            samples,
            || {
                raw.write_all(&[1u8; 32])?;
                raw.read_exact(&mut page)
            },
        ));
        drop(raw);
        rows.push(Samples::measure("read 8 B", warmup, samples, || {
            t.read(0, id, 64, &mut small)
        }));
        rows.push(Samples::measure("read 4 KB", warmup, samples, || {
            t.read(0, id, 4096, &mut page)
        }));
        rows.push(Samples::measure("write 4 KB", warmup, samples, || {
            t.write(0, id, 8192, &page)
        }));
        let bytes = [9u8; 8];
        let runs: Vec<Run> = (0..64)
            .map(|i| Run {
                offset: 16384 + i * 64,
                data: &bytes,
            })
            .collect();
        rows.push(Samples::measure(
            "scatter 64 runs x 8 B",
            warmup,
            samples,
            || t.scatter(0, id, &runs),
        ));
        rows.push(Samples::measure("fetch_add", warmup, samples, || {
            t.fetch_add(0, id, 0, 1).map(|_| ())
        }));
        rows.push(Samples::measure("compare_swap", warmup, samples, || {
            t.compare_swap(0, id, 8, 0, 0).map(|_| ())
        }));
        t.barrier().unwrap();
        rows.push(Samples::measure(
            "barrier (2 nodes)",
            warmup,
            samples,
            || t.barrier(),
        ));
        print_table(
            &format!("loco-rdma tcp backend, 2 node processes on loopback, node 1 -> node 0 ({samples} samples each)"),
            &rows,
        );
        let raw = rows[0].median().as_secs_f64();
        let read = rows[2].median().as_secs_f64();
        println!(
            "read 4 KB / raw tcp 4 KB round trip (medians): {:.2}",
            read / raw
        );
    } else {
        // Node 0 only serves, then joins the barrier phase.
        t.barrier().unwrap();
        let mut k = 0;
        Samples::measure("barrier", warmup, samples, || {
            k += 1;
            t.barrier()
        });
    }
    t.barrier().unwrap();
    t.shutdown();
    if let Some(h) = raw_server {
        h.join().unwrap();
    }
}
