//! Where things are in the shared region: pages, arenas, and home nodes.
//!
//! The region is `region_base .. region_base + Σ node memory`. Node `k`'s
//! arena is the k-th slice of it (sized by its `memory`); its allocator
//! carves blocks out of that arena. Which node is *home* to a page (holds
//! its master copy) depends on the placement policy:
//!
//! - interleaved: page `p` lives on node `p mod N`; in a cluster with
//!   memory nodes (cluster.toml's `role = "memory"`), runs of
//!   [`MEMORY_NODE_RUN`] pages take turns over its M memory nodes (run `r`
//!   on the `r mod M`-th), so that the compute nodes home nothing and a
//!   sequential scan still reads ahead (a fault reads ahead only pages of
//!   its own page's home);
//! - allocating-node: a page lives on the node whose arena contains it;
//! - first-touch: decided when a page is first faulted anywhere, through a
//!   directory at node 0 (see `region/homes.rs`); [`Layout::static_home`] is `None`.
//!
//! A prefix of the region may be reserved outside every arena for the
//! program's globals and the stack `main` runs on. The stack (and the
//! guard page below it) lives on node 0 whatever the policy; the globals
//! follow the policy like the heap (interleaved, or first-touch: a global
//! array each thread initialises its own part of lives where it is used),
//! except under allocating-node, where node 0, which "allocated" them, is
//! their home.

use std::ops::Range;

use loco_cluster::{ClusterConfig, Placement};
use loco_rdma::NodeId;

/// Pages in a row homed on one memory node under interleaved placement:
/// the most one fault reads ahead (1 MiB, `MAX_READ_AHEAD` in
/// region/mod.rs). Page by page, as over compute nodes, every fault of a
/// scan would fetch one page (homes alternate). Measured with
/// benches/kernels/omp_scan.c on 2 compute and 2 memory nodes, 16 MiB read
/// by both: 317 ms page by page (4097 faults on node 0), about 95 ms in
/// runs of 64 pages (69 faults), 80 ms in runs of 256 (23 faults).
pub const MEMORY_NODE_RUN: usize = 256;

#[derive(Debug, Clone)]
pub struct Layout {
    pub base: u64,
    pub size: u64,
    pub page_size: u64,
    pub nodes: usize,
    pub placement: Placement,
    /// Offsets (from `base`) of each node's arena.
    arenas: Vec<Range<u64>>,
    /// Bytes at the start of the region outside every arena.
    node0_prefix: u64,
    /// Bytes at the start of that prefix placed by the policy (the globals);
    /// the rest of the prefix is node 0's.
    globals: u64,
    /// The nodes interleaved pages rotate over: the memory nodes if the
    /// cluster has any, else every node.
    interleave: Vec<NodeId>,
    /// Pages in a row on one of them: [`MEMORY_NODE_RUN`] over memory
    /// nodes, else 1.
    run: usize,
}

impl Layout {
    pub fn new(config: &ClusterConfig) -> Layout {
        Layout::with_prefix(config, 0, 0)
    }

    /// A layout whose first `prefix` bytes (a page multiple, at most node
    /// 0's memory) are outside every arena: the first `globals` of them (a
    /// page multiple, at most `prefix`) placed by the policy, the rest
    /// homed at node 0.
    pub fn with_prefix(config: &ClusterConfig, globals: u64, prefix: u64) -> Layout {
        let mut start = 0;
        let arenas = config
            .nodes
            .iter()
            .map(|n| {
                let r = start..start + n.memory;
                start = r.end;
                r
            })
            .collect::<Vec<Range<u64>>>();
        let mut arenas = arenas;
        arenas[0].start = prefix.min(arenas[0].end);
        Layout {
            base: config.region_base,
            size: config.region_size(),
            page_size: config.page_size,
            nodes: config.num_nodes(),
            placement: config.placement,
            arenas,
            node0_prefix: prefix,
            globals: globals.min(prefix),
            interleave: match config.memory_nodes() {
                memory if memory.is_empty() => (0..config.num_nodes()).collect(),
                memory => memory,
            },
            run: if config.memory_nodes().is_empty() {
                1
            } else {
                MEMORY_NODE_RUN
            },
        }
    }

    /// Bytes at the start of the region outside every arena.
    pub fn node0_prefix(&self) -> u64 {
        self.node0_prefix
    }

    /// Bytes at the start of the region that hold the program's globals.
    pub fn globals(&self) -> u64 {
        self.globals
    }

    pub fn pages(&self) -> usize {
        (self.size / self.page_size) as usize
    }

    /// Whether `addr .. addr+len` lies wholly inside the region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }

    /// Offset of an address inside the region (caller checked `contains`).
    pub fn offset(&self, addr: u64) -> u64 {
        addr - self.base
    }

    pub fn page_of_offset(&self, offset: u64) -> usize {
        (offset / self.page_size) as usize
    }

    pub fn page_offset(&self, page: usize) -> u64 {
        page as u64 * self.page_size
    }

    pub fn page_addr(&self, page: usize) -> u64 {
        self.base + self.page_offset(page)
    }

    /// Node `node`'s arena, as offsets into the region.
    pub fn arena(&self, node: NodeId) -> Range<u64> {
        self.arenas[node].clone()
    }

    /// The home of `page` under interleaved placement, outside the part
    /// of the prefix that is node 0's.
    fn interleaved_home(&self, page: usize) -> NodeId {
        self.interleave[page / self.run % self.interleave.len()]
    }

    /// The smallest range of offsets (from `base`) that holds every page
    /// that can ever be home at `rank` (by [`Layout::static_home`], or,
    /// where that is `None`, by the first-touch directory and home
    /// migration, which may make any node home): what the node must let
    /// other nodes reach, and, registered with an RDMA NIC, pins.
    /// Empty (`0..0`) for a node that can home no page.
    ///
    /// - allocating-node: the node's arena; node 0's also takes in the
    ///   prefix before it (the globals and main's stack are node 0's);
    /// - interleaved: from the first to the last page the rotation gives
    ///   the node, which over every node is about the whole region; with
    ///   memory nodes, the compute nodes home nothing but main's stack
    ///   (node 0: the prefix after the globals);
    /// - first-touch: the globals and the heap, for every node (and
    ///   main's stack, for node 0): the whole region, unless only the
    ///   stack is in the prefix.
    pub fn home_span(&self, rank: NodeId) -> Range<u64> {
        if rank >= self.nodes {
            return 0..0;
        }
        if self.nodes == 1 {
            return 0..self.size;
        }
        if self.placement == Placement::AllocatingNode {
            let arena = self.arena(rank);
            let span = if rank == 0 { 0..arena.end } else { arena };
            return if span.is_empty() { 0..0 } else { span };
        }
        // In pages: the policy places [0, globals) and [prefix, pages);
        // [globals, prefix) is node 0's (see `static_home`).
        let globals = self.globals.div_ceil(self.page_size) as usize;
        let prefix = self.node0_prefix.div_ceil(self.page_size) as usize;
        let mut span: Option<Range<usize>> = None;
        let mut take = |r: Range<usize>| {
            if r.is_empty() {
                return;
            }
            span = Some(match span.take() {
                None => r,
                Some(s) => s.start.min(r.start)..s.end.max(r.end),
            });
        };
        if rank == 0 {
            take(globals..prefix);
        }
        for placed in [0..globals, prefix..self.pages()] {
            match self.placement {
                Placement::FirstTouch => take(placed),
                _ => {
                    // The rotation repeats every `period` pages: a page of
                    // `rank`'s, if the range has one, is among its first
                    // `period` pages, and one among its last.
                    let period = self.run * self.interleave.len();
                    let mine = |p: &usize| self.interleaved_home(*p) == rank;
                    let first = placed.clone().take(period).find(mine);
                    let last = placed.clone().rev().take(period).find(mine);
                    if let (Some(first), Some(last)) = (first, last) {
                        take(first..last + 1);
                    }
                }
            }
        }
        match span {
            Some(pages) => self.page_offset(pages.start)..self.page_offset(pages.end),
            None => 0..0,
        }
    }

    /// The home of `page` when the placement fixes it up front.
    pub fn static_home(&self, page: usize) -> Option<NodeId> {
        // Alone, a node is home to everything: nothing to ask a directory.
        if self.nodes == 1 {
            return Some(0);
        }
        let offset = self.page_offset(page);
        if offset < self.node0_prefix
            && (offset >= self.globals || self.placement == Placement::AllocatingNode)
        {
            return Some(0);
        }
        match self.placement {
            Placement::Interleaved => Some(self.interleaved_home(page)),
            Placement::AllocatingNode => {
                let offset = self.page_offset(page);
                self.arenas.iter().position(|a| a.contains(&offset))
            }
            Placement::FirstTouch => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(placement: Placement, memories: &[u64]) -> Layout {
        let mut c = ClusterConfig::localhost(memories.len()).unwrap();
        for (n, &m) in c.nodes.iter_mut().zip(memories) {
            n.memory = m;
        }
        c.placement = placement;
        Layout::new(&c)
    }

    #[test]
    fn interleaved_homes_rotate_over_nodes() {
        let l = layout(Placement::Interleaved, &[1 << 20, 1 << 20, 1 << 20]);
        assert_eq!(l.pages(), 768);
        let homes: Vec<_> = (0..6).map(|p| l.static_home(p).unwrap()).collect();
        assert_eq!(homes, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn interleaved_pages_rotate_over_the_memory_nodes_only() {
        let mut c = ClusterConfig::localhost(5).unwrap();
        c.nodes[1].role = loco_cluster::Role::Memory;
        c.nodes[3].role = loco_cluster::Role::Memory;
        c.nodes[4].role = loco_cluster::Role::Memory;
        c.placement = Placement::Interleaved;
        let l = Layout::new(&c);
        let run = MEMORY_NODE_RUN;
        let homes: Vec<_> = (0..7).map(|r| l.static_home(r * run).unwrap()).collect();
        assert_eq!(homes, vec![1, 3, 4, 1, 3, 4, 1]);
        assert!((run..2 * run).all(|p| l.static_home(p) == Some(3)));
        // Globals too; main's stack stays on node 0.
        let l = Layout::with_prefix(&c, 3 * 4096 * run as u64, (3 * run as u64 + 2) * 4096);
        let prefix: Vec<_> = (0..3 * run)
            .step_by(run)
            .map(|p| l.static_home(p).unwrap())
            .collect();
        assert_eq!(prefix, vec![1, 3, 4]);
        assert_eq!(l.static_home(3 * run), Some(0));
        assert_eq!(l.static_home(3 * run + 1), Some(0));
    }

    #[test]
    fn allocating_node_homes_follow_unequal_arenas() {
        let l = layout(Placement::AllocatingNode, &[8192, 4096 * 4]);
        assert_eq!(l.arena(0), 0..8192);
        assert_eq!(l.arena(1), 8192..8192 + 16384);
        assert_eq!(l.static_home(1), Some(0));
        assert_eq!(l.static_home(2), Some(1));
        assert_eq!(l.static_home(5), Some(1));
    }

    #[test]
    fn first_touch_has_no_static_home_and_bounds_are_exact() {
        let l = layout(Placement::FirstTouch, &[8192, 8192]);
        assert_eq!(l.static_home(0), None);
        assert_eq!(
            layout(Placement::FirstTouch, &[8192]).static_home(0),
            Some(0)
        );
        assert!(l.contains(l.base, 16384));
        assert!(!l.contains(l.base, 16385));
        assert!(!l.contains(l.base - 1, 1));
        assert!(!l.contains(u64::MAX, 2));
    }

    /// Every cluster shape the home-span tests walk: 2 and 4 nodes,
    /// equal and unequal memories, with and without memory nodes, with
    /// no prefix, a prefix of stack only, and globals too.
    fn shapes() -> Vec<(String, Layout)> {
        const MIB: u64 = 1 << 20;
        let mut out = Vec::new();
        for placement in [
            Placement::Interleaved,
            Placement::AllocatingNode,
            Placement::FirstTouch,
        ] {
            for (memories, memory_nodes) in [
                (vec![2 * MIB, 2 * MIB], vec![]),
                (vec![3 * MIB, MIB, 2 * MIB, 5 * MIB / 2], vec![]),
                (vec![2 * MIB, 3 * MIB, 3 * MIB], vec![1, 2]),
                (vec![MIB, 3 * MIB, 2 * MIB, 3 * MIB], vec![1, 3]),
                (vec![2 * MIB, 4 * MIB], vec![1]),
            ] {
                let mut c = ClusterConfig::localhost(memories.len()).unwrap();
                for (n, &m) in c.nodes.iter_mut().zip(&memories) {
                    n.memory = m;
                }
                for &m in &memory_nodes {
                    c.nodes[m].role = loco_cluster::Role::Memory;
                }
                c.placement = placement;
                // (globals, prefix) in pages; the runs of 256 pages over
                // memory nodes start inside and outside the globals.
                for (globals, prefix) in [(0, 0), (0, 3), (2, 5), (300, 302), (256, 256)] {
                    // The prefix is node 0's memory (`with_prefix`).
                    if prefix * 4096 > memories[0] {
                        continue;
                    }
                    let l = Layout::with_prefix(&c, globals * 4096, prefix * 4096);
                    let name = format!(
                        "{placement:?} {memories:?} memory nodes {memory_nodes:?} globals {globals} prefix {prefix}"
                    );
                    out.push((name, l));
                }
            }
        }
        out
    }

    #[test]
    fn a_home_span_is_the_tightest_range_of_the_pages_a_node_can_home() {
        for (name, l) in shapes() {
            for rank in 0..l.nodes {
                // Any node may become home to a page with no static home.
                let can_home = |p: usize| l.static_home(p).is_none_or(|h| h == rank);
                let first = (0..l.pages()).find(|&p| can_home(p));
                let last = (0..l.pages()).rev().find(|&p| can_home(p));
                let want = match (first, last) {
                    (Some(f), Some(e)) => l.page_offset(f)..l.page_offset(e + 1),
                    _ => 0..0,
                };
                let span = l.home_span(rank);
                assert_eq!(span, want, "{name}: node {rank}");
                for p in (0..l.pages()).filter(|&p| can_home(p)) {
                    assert!(
                        span.contains(&l.page_offset(p)),
                        "{name}: node {rank} page {p}"
                    );
                }
            }
        }
    }

    #[test]
    fn home_spans_per_placement() {
        let page = 4096;
        for (name, l) in shapes() {
            let prefix = l.node0_prefix();
            let memory_nodes = l.run > 1;
            for rank in 0..l.nodes {
                let span = l.home_span(rank);
                let expected = match l.placement {
                    // Exactly the arena, and node 0's prefix before it.
                    Placement::AllocatingNode if rank == 0 => 0..l.arena(0).end,
                    Placement::AllocatingNode => l.arena(rank),
                    // A compute node homes no page of the heap: node 0
                    // main's stack, the others nothing.
                    Placement::Interleaved if memory_nodes && !l.interleave.contains(&rank) => {
                        if rank == 0 && prefix > l.globals() {
                            l.globals()..prefix
                        } else {
                            0..0
                        }
                    }
                    // Pages rotate: every node homes pages near both ends.
                    Placement::Interleaved => {
                        assert!(span.start < 256 * 4 * page, "{name}: node {rank} {span:?}");
                        assert!(
                            span.end > l.size - 256 * 4 * page,
                            "{name}: node {rank} {span:?}"
                        );
                        continue;
                    }
                    Placement::FirstTouch if rank != 0 && l.globals() == 0 => prefix..l.size,
                    Placement::FirstTouch => 0..l.size,
                };
                assert_eq!(span, expected, "{name}: node {rank}");
            }
        }
        // Alone, a node homes everything; there is no other node.
        let l = layout(Placement::AllocatingNode, &[8192]);
        assert_eq!(l.home_span(0), 0..8192);
        assert_eq!(l.home_span(1), 0..0);
    }

    #[test]
    fn main_stack_is_home_at_node_0_under_every_policy_and_outside_arenas() {
        for placement in [
            Placement::Interleaved,
            Placement::AllocatingNode,
            Placement::FirstTouch,
        ] {
            let mut c = ClusterConfig::localhost(2).unwrap();
            c.nodes[0].memory = 8 * 4096;
            c.nodes[1].memory = 8 * 4096;
            c.placement = placement;
            // Two pages of globals, then the guard page and a stack page.
            let l = Layout::with_prefix(&c, 2 * 4096, 4 * 4096);
            assert_eq!(l.arena(0), 4 * 4096..8 * 4096);
            assert_eq!(l.arena(1), 8 * 4096..16 * 4096);
            for page in 2..4 {
                assert_eq!(l.static_home(page), Some(0), "{placement:?} page {page}");
            }
            // The globals follow the policy.
            let globals: Vec<_> = (0..2).map(|p| l.static_home(p)).collect();
            let expected = match placement {
                Placement::Interleaved => vec![Some(0), Some(1)],
                Placement::AllocatingNode => vec![Some(0), Some(0)],
                Placement::FirstTouch => vec![None, None],
            };
            assert_eq!(globals, expected, "{placement:?}");
            if placement == Placement::Interleaved {
                assert_eq!(l.static_home(4), Some(0));
                assert_eq!(l.static_home(5), Some(1));
            }
        }
    }
}
