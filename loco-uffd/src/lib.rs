//! LOCO's shared heap: one region at the same address in every node,
//! paged on demand from each page's home node through userfaultfd, with
//! byte-granular dirty tracking and release consistency (the contract is
//! docs/memory-model.md).
//!
//! - [`SharedRegion`]: mapping, fault handling, dirty bitmap, release/acquire.
//! - [`SharedHeap`]: malloc/free/realloc/aligned allocation over the region.

mod alloc;
mod cached;
mod dirty;
mod layout;
mod migrate;
mod notices;
mod region;
mod sys;

pub use alloc::{HeapStats, SharedHeap};
pub use dirty::DirtyBitmap;
pub use layout::Layout;
pub use region::{HomeMemory, RegionOptions, SharedRegion, REGION_SPAN};

use loco_rdma::TransportError;

/// What can go wrong with the shared heap, said so a user can act on it.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    #[error("cannot map the shared region at {base:#x} ({size} bytes): {why}")]
    Map { base: u64, size: u64, why: String },
    #[error("userfaultfd: {0}")]
    Userfaultfd(String),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("{0:#x} is not in the shared region")]
    NotShared(u64),
    #[error("out of shared memory: cannot allocate {requested} bytes ({why})")]
    OutOfMemory { requested: u64, why: String },
    #[error("free({0:#x}): double free (the block is already free)")]
    DoubleFree(u64),
    #[error("{op}({addr:#x}): not a block from the shared heap ({why})")]
    NotAllocated {
        op: &'static str,
        addr: u64,
        why: String,
    },
    #[error("invalid allocation request: {0}")]
    Invalid(String),
}

/// What this node's region did (for LOCO_STATS and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionStats {
    /// Faults served by fetching a page from another node.
    pub remote_faults: u64,
    /// Faults on this node's own (never touched) home pages.
    pub home_faults: u64,
    pub bytes_fetched: u64,
    /// Pages found written behind the dirty bitmap's back (cached pages
    /// written by uninstrumented code, exported home pages written here):
    /// one write-protect fault each, or with WP_ASYNC one entry each in a
    /// release's scan (see `SharedRegion::async_write_tracking`).
    pub write_faults: u64,
    pub releases: u64,
    pub acquires: u64,
    /// Bytes scattered home by releases, acquires and evictions.
    pub bytes_released: u64,
    pub runs_released: u64,
    /// Pages compared against their twin.
    pub pages_diffed: u64,
    pub pages_invalidated: u64,
    /// Pages fetched along with a faulting one in a sequential scan.
    pub pages_read_ahead: u64,
    pub evictions: u64,
    /// Time spent fetching and installing remote pages, in nanoseconds.
    pub fault_ns: u64,
    /// Time spent in releases and acquires (including the time waiting for
    /// another thread's), in nanoseconds.
    pub release_ns: u64,
    pub acquire_ns: u64,
    /// Pages whose home moved here, and away from here (home migration).
    pub pages_migrated_in: u64,
    pub pages_migrated_out: u64,
    /// Pages installed from a copy a synchronisation carried (a fork
    /// carries the pages its arguments point to) instead of fetched.
    pub pages_carried: u64,
    /// Pages of another home mapped as zeros without reading them, because
    /// nobody had written them (the fault counts in `remote_faults`, the
    /// pages in neither `pages_read_ahead` nor `bytes_fetched`).
    pub pages_zero_filled: u64,
}
