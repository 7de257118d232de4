use super::ffi::path_mtu;
use super::*;
use rdma_sys::ibv_mtu;

fn limits(staging: usize, max_piece: usize, max_wrs: usize) -> Limits {
    Limits {
        staging,
        max_piece,
        max_wrs,
    }
}

fn seg(remote: u64, len: usize) -> Segment {
    Segment { remote, len }
}

fn plan_all(segs: &[Segment], limits: Limits) -> Vec<Vec<Piece>> {
    let mut planner = Planner::new(segs, limits);
    let mut batch = Vec::new();
    let mut out = Vec::new();
    while planner.next_batch(&mut batch) {
        out.push(batch.clone());
        // `finished` says whether this was the last batch.
        let last = planner.finished();
        let mut probe = Planner::new(segs, limits);
        let mut b = Vec::new();
        for _ in 0..out.len() {
            probe.next_batch(&mut b);
        }
        assert_eq!(
            last,
            !probe.next_batch(&mut b),
            "finished() disagrees after batch {}",
            out.len()
        );
    }
    assert!(planner.finished());
    out
}

/// The invariants every plan must keep, whatever the input.
fn check_plan(segs: &[Segment], l: Limits, plan: &[Vec<Piece>]) {
    let mut covered = vec![0usize; segs.len()];
    for batch in plan {
        assert!(!batch.is_empty(), "empty batch");
        assert!(
            batch.len() <= l.max_wrs,
            "{} requests > max_wrs {}",
            batch.len(),
            l.max_wrs
        );
        let mut staging_end = 0;
        for (i, p) in batch.iter().enumerate() {
            assert!(
                p.len > 0 && p.len <= l.max_piece.min(l.staging),
                "piece {p:?}"
            );
            // Staging ranges are packed, disjoint and inside the buffer.
            assert_eq!(
                p.staging, staging_end,
                "staging ranges not packed: {batch:?}"
            );
            staging_end += p.len;
            assert!(
                staging_end <= l.staging,
                "batch overflows the staging buffer"
            );
            // Pieces cover each segment in order, exactly once.
            assert_eq!(p.seg_off, covered[p.seg], "piece {p:?} out of order");
            assert_eq!(p.remote, segs[p.seg].remote + p.seg_off as u64);
            covered[p.seg] += p.len;
            // No two pieces of a batch overlap at the target.
            for q in &batch[..i] {
                let overlap =
                    q.remote < p.remote + p.len as u64 && p.remote < q.remote + q.len as u64;
                assert!(!overlap, "{q:?} and {p:?} overlap in one batch");
            }
        }
    }
    for (s, c) in segs.iter().zip(&covered) {
        assert_eq!(s.len, *c, "segment {s:?} not fully covered");
    }
    // Segments are visited in order: later runs are never posted before earlier ones.
    let order: Vec<(usize, usize)> = plan.iter().flatten().map(|p| (p.seg, p.seg_off)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted);
}

#[test]
fn small_read_is_one_request() {
    let segs = [seg(100, 4096)];
    let plan = plan_all(&segs, limits(1 << 20, 1 << 30, 256));
    assert_eq!(
        plan,
        vec![vec![Piece {
            seg: 0,
            seg_off: 0,
            remote: 100,
            staging: 0,
            len: 4096
        }]]
    );
}

#[test]
fn large_transfer_is_chunked_by_staging_and_message_size() {
    // 10 MiB through a 1 MiB buffer, messages of at most 256 KiB.
    let segs = [seg(7, 10 << 20)];
    let l = limits(1 << 20, 256 << 10, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    assert_eq!(plan.len(), 10, "one full staging buffer per batch");
    assert!(plan
        .iter()
        .all(|b| b.len() == 4 && b.iter().all(|p| p.len == 256 << 10)));

    // A length that is not a multiple: the last piece is short.
    let segs = [seg(0, (3 << 20) + 5)];
    let l = limits(1 << 20, 1 << 30, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    assert_eq!(plan.len(), 4);
    assert_eq!(
        plan[3],
        vec![Piece {
            seg: 0,
            seg_off: 3 << 20,
            remote: 3 << 20,
            staging: 0,
            len: 5
        }]
    );
}

#[test]
fn scatter_runs_are_one_request_each_batched_by_send_queue_depth() {
    // 1000 runs of 8 bytes, 16 bytes apart: tiny, so only max_wrs limits a batch.
    let segs: Vec<Segment> = (0..1000).map(|i| seg(i * 16, 8)).collect();
    let l = limits(1 << 20, 1 << 30, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![256, 256, 256, 232]);
    assert!(
        plan.iter().flatten().all(|p| p.len == 8 && p.seg_off == 0),
        "a run was split"
    );
}

#[test]
fn scatter_batches_are_limited_by_staging_bytes() {
    // Runs of 300 bytes through 1000 bytes of staging: 3 per batch, none split.
    let segs: Vec<Segment> = (0..7).map(|i| seg(i * 1000, 300)).collect();
    let l = limits(1000, 1 << 30, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    assert!(plan.iter().flatten().all(|p| p.len == 300));
}

#[test]
fn a_run_larger_than_the_staging_buffer_is_split() {
    let segs = [seg(0, 10), seg(100, 2500), seg(5000, 10)];
    let l = limits(1000, 1 << 30, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    let shape: Vec<Vec<(usize, usize)>> = plan
        .iter()
        .map(|b| b.iter().map(|p| (p.seg, p.len)).collect())
        .collect();
    // The big run does not fit next to the first: it starts a batch of its own.
    assert_eq!(
        shape,
        vec![
            vec![(0, 10)],
            vec![(1, 1000)],
            vec![(1, 1000)],
            vec![(1, 500), (2, 10)]
        ]
    );
}

#[test]
fn overlapping_runs_go_to_separate_batches_so_the_later_wins() {
    let segs = [seg(0, 10), seg(20, 10), seg(5, 10), seg(40, 4)];
    let l = limits(1 << 20, 1 << 30, 256);
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    let runs: Vec<Vec<usize>> = plan
        .iter()
        .map(|b| b.iter().map(|p| p.seg).collect())
        .collect();
    assert_eq!(runs, vec![vec![0, 1], vec![2, 3]]);

    // Out of order but disjoint: stays one batch.
    let segs = [seg(100, 10), seg(0, 10), seg(50, 10)];
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    assert_eq!(plan.len(), 1);
}

#[test]
fn empty_runs_produce_no_requests() {
    let l = limits(1 << 20, 1 << 30, 256);
    assert!(plan_all(&[], l).is_empty());
    assert!(plan_all(&[seg(0, 0), seg(10, 0)], l).is_empty());
    let segs = [seg(0, 0), seg(8, 4), seg(0, 0)];
    let plan = plan_all(&segs, l);
    check_plan(&segs, l, &plan);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].len(), 1);
    assert_eq!(plan[0][0].seg, 1);
}

#[test]
fn degenerate_limits_still_make_progress() {
    let segs = [seg(0, 5)];
    let plan = plan_all(&segs, limits(0, 0, 0));
    assert_eq!(plan.len(), 5, "one byte, one request per batch");
    check_plan(&segs, limits(1, 1, 1), &plan);
}

#[test]
fn random_plans_keep_every_invariant() {
    // SplitMix64, deterministic.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for _ in 0..300 {
        let l = limits(
            1 + (next() % 4096) as usize,
            1 + (next() % 2048) as usize,
            1 + (next() % 20) as usize,
        );
        let count = (next() % 60) as usize;
        let segs: Vec<Segment> = (0..count)
            .map(|_| seg(next() % 10_000, (next() % 3000) as usize))
            .collect();
        let plan = plan_all(&segs, l);
        check_plan(
            &segs,
            Limits {
                max_piece: l.max_piece.min(l.staging),
                ..l
            },
            &plan,
        );
    }
}

#[test]
fn remote_bounds_are_checked_without_overflow() {
    let r = RegionInfo {
        addr: 0x7000_0000_0000,
        len: 4096,
        first: 0,
        rkey: 9,
        cpu_stores: false,
    };
    assert_eq!(r.address_of(0, 4096), Ok(0x7000_0000_0000));
    assert_eq!(r.address_of(4088, 8), Ok(0x7000_0000_0ff8));
    assert_eq!(r.address_of(4096, 0), Ok(0x7000_0000_1000));
    let past = r.address_of(4090, 16).unwrap_err();
    assert!(past.contains("outside the region"), "{past}");
    let huge = r.address_of(u64::MAX - 3, 16).unwrap_err();
    assert!(huge.contains("outside the region"), "{huge}");
    assert!(r.address_of(4097, 0).is_err());
}

#[test]
fn a_region_starting_at_an_offset_is_addressed_from_there() {
    let r = RegionInfo {
        addr: 0x7000_0000_0000,
        len: 8192,
        first: 1 << 30,
        rkey: 9,
        cpu_stores: false,
    };
    let first = 1u64 << 30;
    assert_eq!(r.address_of(first, 8192), Ok(0x7000_0000_0000));
    assert_eq!(r.address_of(first + 4096, 8), Ok(0x7000_0000_1000));
    assert_eq!(r.address_of(first + 8192, 0), Ok(0x7000_0000_2000));
    assert_eq!(r.checked_address(first + 4096), 0x7000_0000_1000);
    // Below the window (the memory before `addr` is not the region's),
    // across either edge, past it, and far past it.
    for (offset, len) in [
        (0, 8),
        (first - 8, 8),
        (first - 1, 2),
        (first + 8190, 4),
        (first + 8193, 0),
        (u64::MAX - 3, 16),
    ] {
        let e = r.address_of(offset, len).unwrap_err();
        assert!(e.contains("outside the region"), "{offset}+{len}: {e}");
    }
    // The window travels in the description peers decode.
    assert_eq!(RegionInfo::decode(&r.encode()), Ok(r));
    let memory = MemoryRegion::anonymous(8192).unwrap().starting_at(first);
    let described = RegionInfo::of(&memory, 0x7000_0000_0000, 9);
    assert_eq!((described.first, described.len), (first, 8192));
    // Peers refuse what the owner's own check refuses, in its words.
    let mut buf = [0u8; 8];
    for offset in [first - 8, first + 8188] {
        assert_eq!(
            described.address_of(offset, 8).unwrap_err(),
            memory.read(offset, &mut buf).unwrap_err()
        );
    }
}

#[test]
fn control_messages_round_trip() {
    let e = Endpoint {
        qp_num: 0x00ab_cdef,
        lid: 0x1234,
        psn: 0x00fe_dcba,
        mtu: ibv_mtu::IBV_MTU_4096,
        gid: *b"0123456789abcdef",
    };
    assert_eq!(Endpoint::decode(&e.encode()), Ok(e));
    assert!(Endpoint::decode(&e.encode()[1..]).is_err());
    let r = RegionInfo {
        addr: 0x4000_0000_0000,
        len: 1 << 30,
        first: 0,
        rkey: 0xdead_beef,
        cpu_stores: false,
    };
    assert_eq!(RegionInfo::decode(&r.encode()), Ok(r));
    let shared = RegionInfo {
        cpu_stores: true,
        ..r
    };
    assert_eq!(RegionInfo::decode(&shared.encode()), Ok(shared));
    assert_ne!(shared.encode(), r.encode());
    assert!(RegionInfo::decode(&[0; 3]).unwrap_err().contains("3 bytes"));
    // A flag this node does not know is refused, not ignored.
    let mut unknown = r.encode();
    *unknown.last_mut().unwrap() = 0x80;
    assert!(RegionInfo::decode(&unknown).unwrap_err().contains("flags"));
}

#[test]
fn atomics_on_memory_the_owner_stores_into_are_done_by_its_cpu() {
    let plain = RegionInfo {
        addr: 0x4000_0000_0000,
        len: 4096,
        first: 0,
        rkey: 1,
        cpu_stores: false,
    };
    assert_eq!(atomic_path(&plain), AtomicPath::Nic);
    let shared = RegionInfo {
        cpu_stores: true,
        ..plain
    };
    assert_eq!(atomic_path(&shared), AtomicPath::TargetCpu);
}

#[test]
fn the_owners_declaration_decides_through_the_description_peers_get() {
    let described = |region: &MemoryRegion| {
        let info = RegionInfo::of(region, 0x4000_0000_0000, 7);
        assert_eq!(info.len, region.len() as u64);
        // As a peer decodes it from the control plane.
        atomic_path(&RegionInfo::decode(&info.encode()).unwrap())
    };
    let plain = MemoryRegion::anonymous(4096).unwrap();
    assert!(!plain.is_shared_with_cpu_stores());
    assert_eq!(described(&plain), AtomicPath::Nic);
    let heap = MemoryRegion::anonymous(8192)
        .unwrap()
        .shared_with_cpu_stores();
    assert!(heap.is_shared_with_cpu_stores());
    assert_eq!(described(&heap), AtomicPath::TargetCpu);
    // A prepare hook, added before or after, keeps the declaration.
    let prepared = MemoryRegion::anonymous(4096)
        .unwrap()
        .with_prepare(Box::new(|_, _, _| None))
        .shared_with_cpu_stores();
    assert_eq!(described(&prepared), AtomicPath::TargetCpu);
    let prepared = MemoryRegion::anonymous(4096)
        .unwrap()
        .shared_with_cpu_stores()
        .with_prepare(Box::new(|_, _, _| None));
    assert_eq!(described(&prepared), AtomicPath::TargetCpu);
}

#[test]
fn psn_is_24_bits() {
    for _ in 0..100 {
        assert!(random_psn() <= 0x00ff_ffff);
    }
}

#[test]
fn connection_parameters() {
    assert_eq!(
        path_mtu(ibv_mtu::IBV_MTU_4096, ibv_mtu::IBV_MTU_1024),
        ibv_mtu::IBV_MTU_1024
    );
    assert_eq!(
        path_mtu(ibv_mtu::IBV_MTU_2048, ibv_mtu::IBV_MTU_4096),
        ibv_mtu::IBV_MTU_2048
    );
    assert_eq!(path_mtu(0, 0), ibv_mtu::IBV_MTU_256);
    assert_eq!(rd_atomic_depth(128), 16);
    assert_eq!(rd_atomic_depth(4), 4);
    assert_eq!(rd_atomic_depth(0), 1);
}

#[test]
fn failed_completions_name_the_node_and_the_status() {
    match completion_error(3, ibv_wc_status::IBV_WC_RETRY_EXC_ERR, "x".into()) {
        TransportError::NodeFailed { node: 3, .. } => {}
        e => panic!("retry exceeded should mean the node failed, got {e:?}"),
    }
    match completion_error(1, ibv_wc_status::IBV_WC_REM_ACCESS_ERR, "y".into()) {
        TransportError::Verbs(why) => assert!(why.contains("node 1"), "{why}"),
        e => panic!("a remote access error is an RDMA error, got {e:?}"),
    }
    // libibverbs' own text for the status.
    let text = wc_status_text(ibv_wc_status::IBV_WC_RETRY_EXC_ERR);
    assert!(text.to_lowercase().contains("retry"), "{text}");
}

/// Whether libibverbs can see an RDMA device, judged independently of the
/// code under test: the kernel lists them in this sysfs class.
fn machine_has_rdma_device() -> bool {
    std::fs::read_dir("/sys/class/infiniband")
        .map(|d| d.count() > 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    loco_cluster::free_loopback_ports(1).expect("a free local port")[0]
}

#[test]
fn no_device_is_reported_not_faked() {
    let mut config = ClusterConfig::localhost_with_ports(&[free_port()]).unwrap();
    config.transport = loco_cluster::TransportKind::Verbs;
    config.connect_timeout = Duration::from_secs(10);
    config.op_timeout = Duration::from_secs(5);
    let result = crate::connect(&config, 0);
    if !machine_has_rdma_device() {
        match result {
            Err(TransportError::NoDevice(why)) => {
                eprintln!("connect says: {}", TransportError::NoDevice(why.clone()));
                assert!(why.contains("RDMA"), "unclear reason: {why}");
                assert!(
                    why.contains("tcp"),
                    "should point at the tcp transport: {why}"
                );
            }
            Err(e) => panic!("no RDMA device here, but connect failed with {e:?}"),
            Ok(_) => panic!("no RDMA device here, but connect claimed success"),
        }
        // Naming a device that does not exist is reported the same way.
        config.nodes[0].rdma_device = Some("mlx5_42".into());
        match crate::connect(&config, 0) {
            Err(TransportError::NoDevice(why)) => assert!(why.contains("mlx5_42"), "{why}"),
            other => panic!("expected NoDevice, got {:?}", other.map(|_| ())),
        }
        return;
    }
    // A device exists: a one-node cluster must really work, loopback included.
    let t = result.unwrap_or_else(|e| panic!("this machine has an RDMA device, but: {e}"));
    let mem = Arc::new(MemoryRegion::anonymous(1 << 21).unwrap());
    let id = t.register(mem.clone()).unwrap();
    let data: Vec<u8> = (0..(3 << 20) / 2).map(|i| (i % 251) as u8).collect();
    t.write(0, id, 4096, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    t.read(0, id, 4096, &mut back).unwrap();
    assert_eq!(back, data);
    let runs = [
        Run {
            offset: 0,
            data: b"abc",
        },
        Run {
            offset: 100,
            data: b"defg",
        },
        Run {
            offset: 1,
            data: b"X",
        },
    ];
    t.scatter(0, id, &runs).unwrap();
    let mut head = [0u8; 3];
    mem.read(0, &mut head).unwrap();
    assert_eq!(&head, b"aXc");
    assert_eq!(
        t.fetch_add(0, id, 8, 5).unwrap(),
        mem.load_u64(8).unwrap() - 5
    );
    let before = mem.load_u64(16).unwrap();
    assert_eq!(t.compare_swap(0, id, 16, before, 77).unwrap(), before);
    assert_eq!(mem.load_u64(16).unwrap(), 77);
    assert!(matches!(
        t.read(0, id, (1 << 21) - 4, &mut [0u8; 8]),
        Err(TransportError::Refused { .. })
    ));
    // A region this node's code stores into: its atomics are CPU atomics
    // (through the control plane), and a neighbouring byte this thread
    // stores between them survives.
    let heap = Arc::new(
        MemoryRegion::anonymous(4096)
            .unwrap()
            .shared_with_cpu_stores(),
    );
    let heap_id = t.register(heap.clone()).unwrap();
    heap.write(13, &[0xab]).unwrap();
    assert_eq!(t.fetch_add(0, heap_id, 8, 3).unwrap(), 0xab << 40);
    assert_eq!(
        t.compare_swap(0, heap_id, 8, (0xab << 40) + 3, 9).unwrap(),
        (0xab << 40) + 3
    );
    assert_eq!(
        t.compare_swap_run(0, heap_id, 16, 3, 0, 1).unwrap(),
        vec![0, 0, 0]
    );
    assert_eq!(heap.load_u64(8).unwrap(), 9);
    assert_eq!(heap.load_u64(32).unwrap(), 1);
    assert!(matches!(
        t.fetch_add(0, heap_id, 4096, 1),
        Err(TransportError::Refused { .. })
    ));
    t.barrier().unwrap();
    t.shutdown();
}
