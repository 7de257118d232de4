//! The C entry points: what clang emits for OpenMP host code (`__kmpc_*`,
//! libomp's ABI) and the `omp_*` API of omp.h, by area:
//!
//! - this file: parallel regions and threads (thread numbers, `num_threads`,
//!   serialized regions), and the OpenMP statistics counters;
//! - [`sync`]: barriers, cancellation, flush, critical sections, task
//!   synchronisation, omp locks;
//! - [`worksharing`]: master and masked, single, ordered, and the static and
//!   dispatched (dynamic, guided, runtime) loops `for` and `sections` become;
//! - [`atomics`]: the `__kmpc_atomic_*` calls;
//! - [`api`]: the rest of the `omp_*` API (thread and team queries, ICVs,
//!   time, devices);
//! - [`pthread`]: pthread mutexes in the shared region.
//!
//! `__kmpc_fork_call` is in `variadic.rs`; tasks, reductions, copyprivate
//! and condition variables have their entry points in their own modules.

#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;

use super::stats;
use super::team::{self, whoami};
use api::omp_in_parallel;

pub mod api;
pub mod atomics;
pub mod pthread;
pub mod sync;
pub mod worksharing;

type Ident = *mut c_void;

// --- parallel regions and threads -------------------------------------

#[no_mangle]
pub extern "C" fn __kmpc_global_thread_num(_loc: Ident) -> i32 {
    whoami().0 as i32
}

#[no_mangle]
pub extern "C" fn __kmpc_global_num_threads(_loc: Ident) -> i32 {
    whoami().1 as i32
}

#[no_mangle]
pub extern "C" fn __kmpc_bound_thread_num(_loc: Ident) -> i32 {
    whoami().0 as i32
}

#[no_mangle]
pub extern "C" fn __kmpc_bound_num_threads(_loc: Ident) -> i32 {
    whoami().1 as i32
}

#[no_mangle]
pub extern "C" fn __kmpc_in_parallel(_loc: Ident) -> i32 {
    i32::from(omp_in_parallel() != 0)
}

#[no_mangle]
pub extern "C" fn __kmpc_ok_to_fork(_loc: Ident) -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn __kmpc_begin(_loc: Ident, _flags: i32) {}

#[no_mangle]
pub extern "C" fn __kmpc_end(_loc: Ident) {}

#[no_mangle]
pub extern "C" fn __kmpc_push_num_threads(_loc: Ident, _gtid: i32, n: i32) {
    team::push_num_threads(n);
}

#[no_mangle]
pub extern "C" fn __kmpc_push_proc_bind(_loc: Ident, _gtid: i32, _bind: i32) {}

#[no_mangle]
pub extern "C" fn __kmpc_serialized_parallel(_loc: Ident, _gtid: i32) {
    team::enter_serialized();
}

#[no_mangle]
pub extern "C" fn __kmpc_end_serialized_parallel(_loc: Ident, _gtid: i32) {
    team::leave_serialized();
}

/// How many OpenMP statistics counters there are (kept for `stats_fields`).
pub fn stats_fields() -> Vec<(&'static str, u64)> {
    let s = stats::get();
    vec![
        ("omp_forks", stats::read(&s.forks)),
        ("omp_threads", stats::read(&s.threads)),
        ("omp_barriers", stats::read(&s.barriers)),
        ("omp_barrier_ns", stats::read(&s.barrier_ns)),
        ("omp_lock_takes", stats::read(&s.lock_takes)),
        ("omp_lock_remote_takes", stats::read(&s.lock_remote_takes)),
        ("omp_lock_wait_ns", stats::read(&s.lock_wait_ns)),
        ("omp_dispatches", stats::read(&s.dispatches)),
        ("omp_ordered_wait_ns", stats::read(&s.ordered_wait_ns)),
        (
            "omp_reductions_gathered",
            stats::read(&s.reductions_gathered),
        ),
        ("omp_reductions_locked", stats::read(&s.reductions_locked)),
    ]
}
