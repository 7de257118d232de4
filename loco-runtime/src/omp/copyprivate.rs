//! `single copyprivate`: the thread that ran the single region hands its
//! private copies of the listed variables to every other thread of the team.
//!
//! libomp publishes the executing thread's `cpy_data` (pointers to its
//! private copies), and after a barrier every other thread calls
//! `cpy_func(own cpy_data, published cpy_data)`, then all meet at a second
//! barrier. Across nodes those pointers are useless: they point into the
//! executing thread's stack, which no other node can read. So in a team
//! that spans nodes the executing thread copies each variable's bytes into
//! a block of the shared heap (the *staging* block) and publishes the
//! block's address at node 0; after the barrier (release + acquire: the
//! bytes are readable everywhere) each other thread calls `cpy_func` with a
//! list of pointers into the block. The variables' sizes are what loco-pass
//! found by reading `cpy_func` (loco-pass/ABI.md, "copyprivate"): calls
//! clang emitted as `__kmpc_copyprivate` arrive as `loco_copyprivate` with
//! them. A team on one node does what libomp does.

use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::team::{self, omp, with_ctx, Team};
use crate::runtime::{self, fatal};

/// The compiler's copy function: copies each variable of the source list
/// to the destination list's (each an array of pointers to variables).
pub type CopyFn = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// Where each variable starts in the staging block. 64-byte steps: no
/// copied variable needs more alignment than a cache line (the widest
/// vector loads the copy function may use).
const STAGING_ALIGN: u64 = 64;

/// The team the calling thread is in, if it has more than one thread.
fn current_team() -> Option<Arc<Team>> {
    with_ctx(|c| c.map(|c| c.team.clone())).filter(|t| t.size > 1)
}

/// (offset of each variable in the staging block, the block's size).
fn staging_layout(sizes: &[u64]) -> (Vec<u64>, u64) {
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut end = 0u64;
    for &size in sizes {
        offsets.push(end);
        end = end
            .checked_add(size.next_multiple_of(STAGING_ALIGN))
            .unwrap_or_else(|| fatal("single copyprivate: the variables are too large"));
    }
    (offsets, end.max(STAGING_ALIGN))
}

/// The copyprivate of a team on one node (libomp's algorithm): every
/// pointer is valid in every thread.
///
/// # Safety
/// `data` and `copy` are what compiled code passed to `__kmpc_copyprivate`.
unsafe fn on_one_node(team: &Team, data: *mut c_void, copy: CopyFn, didit: bool) {
    if didit {
        team.copyprivate.store(data as usize, Ordering::Release);
    }
    team::barrier();
    if !didit {
        let source = team.copyprivate.load(Ordering::Acquire) as *mut c_void;
        // SAFETY: `source` is the executing thread's list, whose variables
        // stay alive and unchanged until it leaves the barrier below; the
        // copy function is the one compiled for these lists.
        unsafe { copy(data, source) };
    }
    team::barrier();
}

/// `single copyprivate` as loco-pass rewrites it: `__kmpc_copyprivate`'s
/// arguments and `sizes`, the number of bytes of each variable
/// (`cpy_size / 8` of them).
///
/// # Safety
/// `data` is an array of `cpy_size / 8` pointers to the calling thread's
/// variables, each readable for its entry of `sizes` bytes; `copy` copies
/// between two such lists; every thread of the team calls this at the same
/// construct, `didit` nonzero in exactly one of them.
#[no_mangle]
pub unsafe extern "C" fn loco_copyprivate(
    _loc: *mut c_void,
    _gtid: i32,
    cpy_size: usize,
    data: *mut c_void,
    copy: Option<CopyFn>,
    didit: i32,
    sizes: *const i64,
) {
    let Some(team) = current_team() else { return };
    let Some(copy) = copy else {
        fatal("single copyprivate without a copy function")
    };
    let didit = didit != 0;
    if !team.distributed {
        // SAFETY: the caller's contract.
        return unsafe { on_one_node(&team, data, copy, didit) };
    }
    let count = cpy_size / std::mem::size_of::<*mut c_void>();
    // SAFETY: loco-pass passes a constant array of `count` sizes.
    let sizes: Vec<u64> = unsafe { std::slice::from_raw_parts(sizes, count) }
        .iter()
        .map(|&s| s.max(0) as u64)
        .collect();
    // Every thread computes the same layout: only the block's address travels.
    let (offsets, total) = staging_layout(&sizes);
    let rt = runtime::get();
    let control = omp().control;
    let mut staging = 0;
    if didit {
        staging = rt
            .heap
            .aligned_alloc(STAGING_ALIGN, total)
            .unwrap_or_else(|e| fatal(&format!("single copyprivate: {e}")));
        let variables = data.cast::<*const u8>();
        for (k, (&size, &offset)) in sizes.iter().zip(&offsets).enumerate() {
            // SAFETY: entry k of `data` points to a variable of at least
            // `size` bytes (what its copy reads); the staging block is a
            // fresh block of `total` bytes, each variable inside it.
            unsafe {
                let from = variables.add(k).read();
                let to = (staging + offset) as *mut u8;
                std::ptr::copy_nonoverlapping(from, to, size as usize);
            }
        }
        // Written by this code, not by instrumented stores: marked for the
        // release in the barrier.
        for (&size, &offset) in sizes.iter().zip(&offsets) {
            rt.region().mark_dirty(staging + offset, size);
        }
        rt.transport
            .write(0, control, team::COPYPRIVATE, &staging.to_le_bytes())
            .unwrap_or_else(|e| fatal(&format!("single copyprivate: {e}")));
    }
    team::barrier();
    if !didit {
        let mut word = [0u8; 8];
        rt.transport
            .read(0, control, team::COPYPRIVATE, &mut word)
            .unwrap_or_else(|e| fatal(&format!("single copyprivate: {e}")));
        let block = u64::from_le_bytes(word);
        let mut sources: Vec<*mut c_void> = offsets
            .iter()
            .map(|&offset| (block + offset) as *mut c_void)
            .collect();
        // SAFETY: `sources` lists the staged variables, in the shared region
        // and acquired by the barrier; the block stays allocated until the
        // barrier below. The copy reads no more of each than was staged
        // (loco-pass measured exactly that) and writes this thread's own.
        unsafe { copy(data, sources.as_mut_ptr().cast()) };
    }
    team::barrier();
    if didit {
        // Every other thread has copied out of it.
        if let Err(e) = rt.heap.free(staging) {
            fatal(&format!("single copyprivate: {e}"));
        }
    }
}

/// libomp's entry point, for code loco-pass did not rewrite (compiled
/// without it): without the variables' sizes nothing can be staged, so it
/// works in a team on one node only.
///
/// # Safety
/// As libomp's: `data` lists the calling thread's variables, `copy` copies
/// between two such lists, every thread of the team calls it at the same
/// construct, `didit` nonzero in exactly one.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_copyprivate(
    _loc: *mut c_void,
    _gtid: i32,
    _cpy_size: usize,
    data: *mut c_void,
    copy: Option<CopyFn>,
    didit: i32,
) {
    let Some(team) = current_team() else { return };
    if team.distributed {
        fatal(
            "single copyprivate across nodes in code not compiled by loco-cc \
             (its variables' sizes are unknown): compile it with loco-cc",
        );
    }
    let Some(copy) = copy else {
        fatal("single copyprivate without a copy function")
    };
    // SAFETY: the caller's contract.
    unsafe { on_one_node(&team, data, copy, didit != 0) }
}

#[cfg(test)]
mod tests {
    use super::staging_layout;

    #[test]
    fn variables_start_on_cache_lines() {
        assert_eq!(
            staging_layout(&[4, 24, 0, 64, 65, 10]),
            (vec![0, 64, 128, 128, 192, 320], 384)
        );
        assert_eq!(staging_layout(&[]), (vec![], 64));
    }
}
