//! The `omp_*` API of omp.h other than locks (those are in `sync.rs`):
//! thread and team queries, ICVs, time, devices.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use crate::omp::sched::Schedule;
use crate::omp::team::{omp, whoami, with_ctx};

// --- the omp_* API ---------------------------------------------------------

#[no_mangle]
pub extern "C" fn omp_get_thread_num() -> c_int {
    whoami().0 as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_num_threads() -> c_int {
    whoami().1 as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_max_threads() -> c_int {
    with_ctx(|c| c.map(|c| c.nthreads.unwrap_or(c.team.max_threads)))
        .unwrap_or_else(|| omp().icv.nthreads.load(Ordering::Relaxed)) as c_int
}

#[no_mangle]
pub extern "C" fn omp_set_num_threads(n: c_int) {
    if n <= 0 {
        return;
    }
    let inside = with_ctx(|c| match c {
        Some(c) => {
            c.nthreads = Some(n as u32);
            true
        }
        None => false,
    });
    if !inside {
        omp().icv.nthreads.store(n as u32, Ordering::Relaxed);
    }
}

#[no_mangle]
pub extern "C" fn omp_get_num_procs() -> c_int {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as c_int
}

#[no_mangle]
pub extern "C" fn omp_in_parallel() -> c_int {
    with_ctx(|c| c.is_some_and(|c| c.team.active_level > 0)) as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_level() -> c_int {
    with_ctx(|c| c.map_or(0, |c| c.team.level)) as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_active_level() -> c_int {
    with_ctx(|c| c.map_or(0, |c| c.team.active_level)) as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_ancestor_thread_num(level: c_int) -> c_int {
    ancestor(level).map_or(-1, |(tid, _)| tid as c_int)
}

#[no_mangle]
pub extern "C" fn omp_get_team_size(level: c_int) -> c_int {
    ancestor(level).map_or(-1, |(_, size)| size as c_int)
}

/// (thread id, team size) at nesting `level` (0: the initial thread).
fn ancestor(level: c_int) -> Option<(u32, u32)> {
    if level < 0 {
        return None;
    }
    with_ctx(|c| match c {
        None => (level == 0).then_some((0, 1)),
        Some(c) => {
            let level = level as u32;
            if level == 0 {
                Some((0, 1))
            } else if level == c.team.level {
                Some((c.tid, c.team.size))
            } else if level < c.team.level {
                // ancestors[0] is level 1's (tid, size) when known.
                c.team
                    .ancestors
                    .get(level as usize - 1)
                    .copied()
                    .or(Some((0, 1)))
            } else {
                None
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn omp_get_thread_limit() -> c_int {
    c_int::MAX
}

#[no_mangle]
pub extern "C" fn omp_set_dynamic(on: c_int) {
    omp()
        .icv
        .dynamic
        .store(u32::from(on != 0), Ordering::Relaxed);
}

#[no_mangle]
pub extern "C" fn omp_get_dynamic() -> c_int {
    omp().icv.dynamic.load(Ordering::Relaxed) as c_int
}

/// Nested parallelism is not offered: inner regions run as teams of one.
#[no_mangle]
pub extern "C" fn omp_set_nested(_on: c_int) {}

#[no_mangle]
pub extern "C" fn omp_get_nested() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_set_max_active_levels(_levels: c_int) {}

#[no_mangle]
pub extern "C" fn omp_get_max_active_levels() -> c_int {
    omp().icv.max_active_levels.load(Ordering::Relaxed) as c_int
}

#[no_mangle]
pub extern "C" fn omp_get_supported_active_levels() -> c_int {
    1
}

#[no_mangle]
pub unsafe extern "C" fn omp_get_schedule(kind: *mut c_int, chunk: *mut c_int) {
    let s = with_ctx(|c| c.map(|c| c.team.schedule))
        .unwrap_or_else(|| *omp().icv.schedule.lock().unwrap());
    let (k, c) = s.to_omp();
    // SAFETY: the caller passes pointers to two ints (omp.h).
    unsafe {
        *kind = k;
        *chunk = c;
    }
}

#[no_mangle]
pub extern "C" fn omp_set_schedule(kind: c_int, chunk: c_int) {
    *omp().icv.schedule.lock().unwrap() = Schedule::from_omp(kind, chunk);
}

#[no_mangle]
pub extern "C" fn omp_get_wtime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[no_mangle]
pub extern "C" fn omp_get_wtick() -> f64 {
    1e-9
}

#[no_mangle]
pub extern "C" fn omp_get_cancellation() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_in_final() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_get_proc_bind() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_get_num_places() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_get_num_devices() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_get_default_device() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_set_default_device(_device: c_int) {}

#[no_mangle]
pub extern "C" fn omp_is_initial_device() -> c_int {
    1
}

#[no_mangle]
pub extern "C" fn omp_get_initial_device() -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn omp_get_num_teams() -> c_int {
    1
}

#[no_mangle]
pub extern "C" fn omp_get_team_num() -> c_int {
    0
}
