//! Barriers, cancellation, flush, critical sections, task synchronisation
//! and omp locks.

use std::ffi::{c_int, c_void};

use super::Ident;
use crate::omp::{locks, tasks, team};

// --- synchronisation ----------------------------------------------------

#[no_mangle]
pub extern "C" fn __kmpc_barrier(_loc: Ident, _gtid: i32) {
    team::barrier();
}

#[no_mangle]
pub extern "C" fn __kmpc_cancel_barrier(_loc: Ident, _gtid: i32) -> i32 {
    team::barrier();
    0
}

/// Cancellation is off (OMP_CANCELLATION is not supported): nothing is cancelled.
#[no_mangle]
pub extern "C" fn __kmpc_cancel(_loc: Ident, _gtid: i32, _kind: i32) -> i32 {
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_cancellationpoint(_loc: Ident, _gtid: i32, _kind: i32) -> i32 {
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_flush(_loc: Ident) {
    team::flush();
}

#[no_mangle]
pub extern "C" fn __kmpc_critical(_loc: Ident, _gtid: i32, name: *mut c_void) {
    locks::lock(name as u64, false, true);
}

#[no_mangle]
pub extern "C" fn __kmpc_critical_with_hint(
    _loc: Ident,
    _gtid: i32,
    name: *mut c_void,
    _hint: u32,
) {
    locks::lock(name as u64, false, true);
}

#[no_mangle]
pub extern "C" fn __kmpc_end_critical(_loc: Ident, _gtid: i32, name: *mut c_void) {
    locks::unlock(name as u64, false);
}

// --- reductions: reduce.rs

// --- task synchronisation (see tasks.rs)

#[no_mangle]
pub extern "C" fn __kmpc_omp_taskwait(_loc: Ident, _gtid: i32) -> i32 {
    tasks::taskwait();
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_omp_taskyield(_loc: Ident, _gtid: i32, _end_part: i32) -> i32 {
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_taskgroup(_loc: Ident, _gtid: i32) {
    tasks::taskgroup_begin();
}

#[no_mangle]
pub extern "C" fn __kmpc_end_taskgroup(_loc: Ident, _gtid: i32) {
    tasks::taskgroup_end();
}

// --- locks (named by the omp_lock_t's address) ---------------------------

#[no_mangle]
pub extern "C" fn omp_init_lock(_lock: *mut c_void) {}

#[no_mangle]
pub extern "C" fn omp_init_lock_with_hint(_lock: *mut c_void, _hint: u32) {}

#[no_mangle]
pub extern "C" fn omp_destroy_lock(_lock: *mut c_void) {}

#[no_mangle]
pub extern "C" fn omp_set_lock(lock: *mut c_void) {
    locks::lock(lock as u64, false, true);
}

#[no_mangle]
pub extern "C" fn omp_unset_lock(lock: *mut c_void) {
    locks::unlock(lock as u64, false);
}

#[no_mangle]
pub extern "C" fn omp_test_lock(lock: *mut c_void) -> c_int {
    locks::lock(lock as u64, false, false) as c_int
}

#[no_mangle]
pub extern "C" fn omp_init_nest_lock(_lock: *mut c_void) {}

#[no_mangle]
pub extern "C" fn omp_init_nest_lock_with_hint(_lock: *mut c_void, _hint: u32) {}

#[no_mangle]
pub extern "C" fn omp_destroy_nest_lock(_lock: *mut c_void) {}

#[no_mangle]
pub extern "C" fn omp_set_nest_lock(lock: *mut c_void) {
    locks::lock(lock as u64, true, true);
}

#[no_mangle]
pub extern "C" fn omp_unset_nest_lock(lock: *mut c_void) {
    locks::unlock(lock as u64, true);
}

#[no_mangle]
pub extern "C" fn omp_test_nest_lock(lock: *mut c_void) -> c_int {
    if locks::lock(lock as u64, true, false) {
        locks::nest_depth_if_held(lock as u64).unwrap_or(1) as c_int
    } else {
        0
    }
}
