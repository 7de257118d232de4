//! pthread mutexes in the shared region: loco-pass renames
//! `pthread_mutex_lock`, `_trylock` and `_unlock` to these, which make a
//! mutex other nodes can reach a LOCO lock and leave any other to libc.

use std::ffi::c_int;

use crate::omp::locks;
use crate::runtime;

// --- pthread mutexes in shared memory (loco-pass renames the calls) ---------

/// glibc's `pthread_mutex_t`: the mutex kind is the int at byte 16 (x86-64).
const MUTEX_KIND_OFFSET: usize = 16;
const PTHREAD_MUTEX_RECURSIVE: i32 = 1;

/// Whether `m` is a mutex other nodes can reach, and if so whether it is
/// recursive; `None` for mutexes libc should handle (one node, private memory).
fn distributed_mutex(m: *mut libc::pthread_mutex_t) -> Option<bool> {
    let rt = runtime::get();
    if rt.nodes == 1 || !rt.region().contains(m as u64, 40) {
        return None;
    }
    // SAFETY: m points to a pthread_mutex_t (the caller's contract with
    // pthread_mutex_lock), at least 40 bytes, in mapped shared memory.
    let kind = unsafe {
        m.cast::<u8>()
            .add(MUTEX_KIND_OFFSET)
            .cast::<i32>()
            .read_volatile()
    };
    Some(kind & 3 == PTHREAD_MUTEX_RECURSIVE)
}

/// # Safety
/// As `pthread_mutex_lock`.
#[no_mangle]
pub unsafe extern "C" fn loco_pthread_mutex_lock(m: *mut libc::pthread_mutex_t) -> c_int {
    match distributed_mutex(m) {
        Some(recursive) => {
            locks::lock(m as u64, recursive, true);
            0
        }
        // SAFETY: the caller's contract.
        None => unsafe { libc::pthread_mutex_lock(m) },
    }
}

/// # Safety
/// As `pthread_mutex_trylock`.
#[no_mangle]
pub unsafe extern "C" fn loco_pthread_mutex_trylock(m: *mut libc::pthread_mutex_t) -> c_int {
    match distributed_mutex(m) {
        Some(recursive) => {
            if locks::lock(m as u64, recursive, false) {
                0
            } else {
                libc::EBUSY
            }
        }
        // SAFETY: the caller's contract.
        None => unsafe { libc::pthread_mutex_trylock(m) },
    }
}

/// # Safety
/// As `pthread_mutex_unlock`.
#[no_mangle]
pub unsafe extern "C" fn loco_pthread_mutex_unlock(m: *mut libc::pthread_mutex_t) -> c_int {
    match distributed_mutex(m) {
        Some(recursive) => {
            locks::unlock(m as u64, recursive);
            0
        }
        // SAFETY: the caller's contract.
        None => unsafe { libc::pthread_mutex_unlock(m) },
    }
}
