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
//! sharing), and the pages' homes are spread over the nodes — except in the
//! `read-ahead` variant (tracked, allocating-node placement), where every
//! page lives on node 0, so the other nodes' sequential reads fetch several
//! pages per fault.
//!
//! `cargo test -p loco-uffd --test consistency` (LOCO_PROPTEST_CASES sets
//! the number of programs per node count and variant, default 16).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use loco_cluster::ClusterConfig;
use loco_testkit::{free_ports, run_nodes, this_executable};
use loco_uffd::{RegionOptions, SharedRegion};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PAGES: usize = 6;
const CELL: usize = 64;
const CELLS: usize = PAGES * 4096 / CELL;

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

fn program_strategy(n: usize) -> impl Strategy<Value = Vec<Phase>> {
    let phase = (
        proptest::collection::vec(0..(n as u8 + 1), CELLS),
        proptest::collection::vec(proptest::collection::vec(op_strategy(), 0..14), n),
    )
        .prop_map(|(owners, ops)| Phase { owners, ops });
    proptest::collection::vec(phase, 1..6)
}

/// The model's verdict on an op: whether node `me` may run it in this phase
/// (generated ops that would race are skipped by every node alike).
fn allowed(phase: &Phase, me: usize, n: usize, op: &Op) -> bool {
    let (cell, at, len) = match op {
        Op::Write { cell, at, len, .. } | Op::Read { cell, at, len } => (*cell, *at, *len),
    };
    if at + len > CELL {
        return false;
    }
    let owner = phase.owners[cell] as usize;
    match op {
        Op::Write { .. } => owner == me,
        Op::Read { .. } => owner == me || owner >= n,
    }
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
            _ => Op::Read {
                cell: num(2),
                at: num(3),
                len: num(4),
            },
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
    for variant in ["tracked", "marked", "read-ahead"] {
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
            let outcome = runner.run(&program_strategy(n), |program| {
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
    let program = decode(&std::fs::read_to_string(path).unwrap(), n);
    match execute(rank, &ports, &variant, &program) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node {rank}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(rank: usize, ports: &[u16], variant: &str, program: &[Phase]) -> Result<(), String> {
    let n = ports.len();
    let tracked = variant != "marked";
    let mut config = ClusterConfig::localhost_with_ports(ports).unwrap();
    for node in &mut config.nodes {
        node.memory = 1 << 20;
    }
    if variant == "read-ahead" {
        config.placement = loco_cluster::Placement::AllocatingNode;
    }
    config.connect_timeout = Duration::from_secs(20);
    let transport = loco_rdma::connect(&config, rank).map_err(|e| e.to_string())?;
    let options = RegionOptions {
        track_uninstrumented: tracked,
        ..RegionOptions::default()
    };
    let region =
        SharedRegion::new(&config, transport.clone(), options).map_err(|e| e.to_string())?;
    let base = region.base();
    let mut model = vec![0u8; PAGES * 4096];
    for (k, phase) in program.iter().enumerate() {
        // This node's view during the phase: the model at its start plus its own writes.
        let mut view = model.clone();
        for op in phase.ops[rank]
            .iter()
            .filter(|op| allowed(phase, rank, n, op))
        {
            match *op {
                Op::Write {
                    cell,
                    at,
                    len,
                    seed,
                    libc,
                } => {
                    let off = cell * CELL + at;
                    let data = bytes(seed, len);
                    let addr = base + off as u64;
                    // SAFETY: off + len <= PAGES * 4096, inside the region.
                    unsafe { libc::memcpy(addr as *mut libc::c_void, data.as_ptr().cast(), len) };
                    if !(libc && tracked) {
                        region.mark_dirty(addr, len as u64);
                    }
                    view[off..off + len].copy_from_slice(&data);
                }
                Op::Read { cell, at, len } => {
                    let off = cell * CELL + at;
                    let mut got = vec![0u8; len];
                    // SAFETY: as above.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            (base + off as u64) as *const u8,
                            got.as_mut_ptr(),
                            len,
                        )
                    };
                    if got[..] != view[off..off + len] {
                        let i = (0..len).find(|&i| got[i] != view[off + i]).unwrap();
                        return Err(format!(
                            "phase {k}: read of {len} bytes at {off:#x}: byte {:#x} is {} but the model says {}",
                            off + i,
                            got[i],
                            view[off + i]
                        ));
                    }
                }
            }
        }
        // Every node's writes of this phase, applied to the model.
        for node in 0..n {
            for op in phase.ops[node]
                .iter()
                .filter(|op| allowed(phase, node, n, op))
            {
                if let Op::Write {
                    cell,
                    at,
                    len,
                    seed,
                    ..
                } = *op
                {
                    let off = cell * CELL + at;
                    model[off..off + len].copy_from_slice(&bytes(seed, len));
                }
            }
        }
        region
            .barrier()
            .map_err(|e| format!("barrier after phase {k}: {e}"))?;
    }
    // Finally every node checks the whole space.
    let mut all = vec![0u8; model.len()];
    // SAFETY: the first PAGES pages of the region.
    unsafe { std::ptr::copy_nonoverlapping(base as *const u8, all.as_mut_ptr(), all.len()) };
    if let Some(i) = (0..all.len()).find(|&i| all[i] != model[i]) {
        return Err(format!(
            "at the end: byte {i:#x} is {} but the model says {}",
            all[i], model[i]
        ));
    }
    // That sequential read of node 0's pages came in runs (read-ahead), and
    // what it brought is what the model says.
    if variant == "read-ahead" && rank != 0 && region.stats().pages_read_ahead == 0 {
        return Err("the read-ahead variant read no page ahead".into());
    }
    region.barrier().map_err(|e| e.to_string())?;
    transport.shutdown();
    Ok(())
}
