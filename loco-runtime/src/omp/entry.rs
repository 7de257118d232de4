//! The C entry points: what clang emits for OpenMP host code (`__kmpc_*`,
//! libomp's ABI) and the `omp_*` API of omp.h.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

use super::sched::{self, Schedule};
use super::team::{self, omp, whoami, with_ctx};
use super::{locks, stats};
use crate::atomics;
use crate::runtime;

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
pub extern "C" fn __kmpc_master(_loc: Ident, _gtid: i32) -> i32 {
    i32::from(whoami().0 == 0)
}

#[no_mangle]
pub extern "C" fn __kmpc_end_master(_loc: Ident, _gtid: i32) {}

#[no_mangle]
pub extern "C" fn __kmpc_masked(_loc: Ident, _gtid: i32, filter: i32) -> i32 {
    i32::from(whoami().0 as i32 == filter)
}

#[no_mangle]
pub extern "C" fn __kmpc_end_masked(_loc: Ident, _gtid: i32) {}

/// The first thread of the team to get here runs the single region: the
/// first of its node (a compare-and-swap in this node's memory), and when
/// the team spans nodes, of those the first to add one to the construct's
/// slot at node 0. The node's other threads go on without waiting for that.
#[no_mangle]
pub extern "C" fn __kmpc_single(_loc: Ident, _gtid: i32) -> i32 {
    let Some(team) = with_ctx(|c| c.map(|c| c.team.clone())) else {
        return 1;
    };
    if team.size == 1 {
        return 1;
    }
    // Every thread takes the slot, so that they all count the same
    // worksharing constructs.
    let slot = team::next_ws_slot();
    if !team.claim_single() {
        return 0;
    }
    if !team.distributed {
        return 1;
    }
    i32::from(team::ws_fetch_add("single", slot, 1) == 0)
}

#[no_mangle]
pub extern "C" fn __kmpc_end_single(_loc: Ident, _gtid: i32) {}

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

#[no_mangle]
pub extern "C" fn __kmpc_ordered(_loc: Ident, _gtid: i32) {
    sched::ordered_begin();
}

#[no_mangle]
pub extern "C" fn __kmpc_end_ordered(_loc: Ident, _gtid: i32) {
    sched::ordered_end();
}

// --- reductions: reduce.rs

// --- task synchronisation (see tasks.rs)

#[no_mangle]
pub extern "C" fn __kmpc_omp_taskwait(_loc: Ident, _gtid: i32) -> i32 {
    super::tasks::taskwait();
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_omp_taskyield(_loc: Ident, _gtid: i32, _end_part: i32) -> i32 {
    0
}

#[no_mangle]
pub extern "C" fn __kmpc_taskgroup(_loc: Ident, _gtid: i32) {
    super::tasks::taskgroup_begin();
}

#[no_mangle]
pub extern "C" fn __kmpc_end_taskgroup(_loc: Ident, _gtid: i32) {
    super::tasks::taskgroup_end();
}

// --- loops ----------------------------------------------------------------

macro_rules! static_init {
    ($name:ident, $t:ty, $st:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            _loc: Ident,
            _gtid: i32,
            schedtype: i32,
            plast: *mut i32,
            plower: *mut $t,
            pupper: *mut $t,
            pstride: *mut $st,
            incr: $st,
            chunk: $st,
        ) {
            // SAFETY: compiled code passes pointers to its loop bounds.
            let (lb, ub) = unsafe { (*plower as i128, *pupper as i128) };
            let (last, lower, upper, stride) =
                sched::static_bounds(schedtype, lb, ub, incr as i128, chunk as i128);
            // SAFETY: as above; every pointer is the compiled code's own local.
            unsafe {
                if !plast.is_null() {
                    *plast = i32::from(last);
                }
                *plower = saturate::<$t>(lower);
                *pupper = saturate::<$t>(upper);
                *pstride = saturate::<$st>(stride);
            }
        }
    };
}

/// Clamps a bound to its type (a chunk's end past the type's range means
/// "to the end"; the compiled loop clamps it to its own bound).
fn saturate<T: TryFrom<i128> + Bounded>(v: i128) -> T {
    T::try_from(v).unwrap_or(if v < 0 { T::MIN } else { T::MAX })
}

trait Bounded {
    const MIN: Self;
    const MAX: Self;
}

macro_rules! bounded {
    ($($t:ty),*) => { $(impl Bounded for $t { const MIN: Self = <$t>::MIN; const MAX: Self = <$t>::MAX; })* };
}
bounded!(i32, u32, i64, u64);

static_init!(__kmpc_for_static_init_4, i32, i32);
static_init!(__kmpc_for_static_init_4u, u32, i32);
static_init!(__kmpc_for_static_init_8, i64, i64);
static_init!(__kmpc_for_static_init_8u, u64, i64);

#[no_mangle]
pub extern "C" fn __kmpc_for_static_fini(_loc: Ident, _gtid: i32) {}

macro_rules! dispatch {
    ($init:ident, $next:ident, $fini:ident, $t:ty, $st:ty) => {
        #[no_mangle]
        pub extern "C" fn $init(
            _loc: Ident,
            _gtid: i32,
            schedule: i32,
            lb: $t,
            ub: $t,
            st: $st,
            chunk: $st,
        ) {
            sched::dispatch_init(schedule, lb as i128, ub as i128, st as i128, chunk as i128);
        }

        #[no_mangle]
        pub unsafe extern "C" fn $next(
            _loc: Ident,
            _gtid: i32,
            plast: *mut i32,
            plower: *mut $t,
            pupper: *mut $t,
            pstride: *mut $st,
        ) -> i32 {
            match sched::dispatch_next() {
                None => 0,
                Some((last, lower, upper, stride)) => {
                    // SAFETY: compiled code passes pointers to its own locals.
                    unsafe {
                        if !plast.is_null() {
                            *plast = i32::from(last);
                        }
                        *plower = saturate::<$t>(lower);
                        *pupper = saturate::<$t>(upper);
                        if !pstride.is_null() {
                            *pstride = saturate::<$st>(stride);
                        }
                    }
                    1
                }
            }
        }

        #[no_mangle]
        pub extern "C" fn $fini(_loc: Ident, _gtid: i32) {
            sched::dispatch_fini();
        }
    };
}

dispatch!(
    __kmpc_dispatch_init_4,
    __kmpc_dispatch_next_4,
    __kmpc_dispatch_fini_4,
    i32,
    i32
);
dispatch!(
    __kmpc_dispatch_init_4u,
    __kmpc_dispatch_next_4u,
    __kmpc_dispatch_fini_4u,
    u32,
    i32
);
dispatch!(
    __kmpc_dispatch_init_8,
    __kmpc_dispatch_next_8,
    __kmpc_dispatch_fini_8,
    i64,
    i64
);
dispatch!(
    __kmpc_dispatch_init_8u,
    __kmpc_dispatch_next_8u,
    __kmpc_dispatch_fini_8u,
    u64,
    i64
);

// --- atomics libomp offers as calls --------------------------------------

/// The lock `__kmpc_atomic_start`/`end` take (an address no program uses).
const ATOMIC_LOCK: u64 = 1;

#[no_mangle]
pub extern "C" fn __kmpc_atomic_start() {
    locks::lock(ATOMIC_LOCK, false, true);
}

#[no_mangle]
pub extern "C" fn __kmpc_atomic_end() {
    locks::unlock(ATOMIC_LOCK, false);
}

/// LLVM's monotonic ordering: `omp atomic` without a memory-order clause.
const RELAXED: i32 = 2;

/// Replaces the `size`-byte value at `p` with `f(old)`, atomically (at the
/// home node for shared memory); returns the old value.
fn update(p: *mut c_void, size: i32, f: impl Fn(u64) -> u64) -> u64 {
    let mut old = atomics::loco_atomic_load(p, size, RELAXED);
    loop {
        let found = atomics::loco_atomic_cmpxchg(p, old, f(old), size, RELAXED);
        if found == old {
            return old;
        }
        old = found;
    }
}

macro_rules! atomic_ops {
    ($prefix:ident, $t:ty, $size:expr, $to:expr, $from:expr, [$(($op:ident, $f:expr)),*]) => {
        paste_ops!($prefix, $t, $size, $to, $from, [$(($op, $f)),*]);
    };
}

macro_rules! paste_ops {
    ($prefix:ident, $t:ty, $size:expr, $to:expr, $from:expr, [$(($op:ident, $f:expr)),*]) => {
        $(
            #[no_mangle]
            pub extern "C" fn $op(_loc: Ident, _gtid: i32, lhs: *mut $t, rhs: $t) {
                let to: fn($t) -> u64 = $to;
                let from: fn(u64) -> $t = $from;
                let f: fn($t, $t) -> $t = $f;
                update(lhs.cast(), $size, |old| to(f(from(old), rhs)));
            }
        )*
    };
}

atomic_ops!(
    fixed4,
    i32,
    4,
    |v| v as u32 as u64,
    |w| w as u32 as i32,
    [
        (__kmpc_atomic_fixed4_add, |a, b| a.wrapping_add(b)),
        (__kmpc_atomic_fixed4_sub, |a, b| a.wrapping_sub(b)),
        (__kmpc_atomic_fixed4_mul, |a, b| a.wrapping_mul(b)),
        (__kmpc_atomic_fixed4_div, |a, b| a.wrapping_div(b)),
        (__kmpc_atomic_fixed4_min, |a, b| a.min(b)),
        (__kmpc_atomic_fixed4_max, |a, b| a.max(b)),
        (__kmpc_atomic_fixed4_andb, |a, b| a & b),
        (__kmpc_atomic_fixed4_orb, |a, b| a | b),
        (__kmpc_atomic_fixed4_xor, |a, b| a ^ b)
    ]
);
atomic_ops!(
    fixed8,
    i64,
    8,
    |v| v as u64,
    |w| w as i64,
    [
        (__kmpc_atomic_fixed8_add, |a, b| a.wrapping_add(b)),
        (__kmpc_atomic_fixed8_sub, |a, b| a.wrapping_sub(b)),
        (__kmpc_atomic_fixed8_mul, |a, b| a.wrapping_mul(b)),
        (__kmpc_atomic_fixed8_div, |a, b| a.wrapping_div(b)),
        (__kmpc_atomic_fixed8_min, |a, b| a.min(b)),
        (__kmpc_atomic_fixed8_max, |a, b| a.max(b)),
        (__kmpc_atomic_fixed8_andb, |a, b| a & b),
        (__kmpc_atomic_fixed8_orb, |a, b| a | b),
        (__kmpc_atomic_fixed8_xor, |a, b| a ^ b)
    ]
);
atomic_ops!(
    float4,
    f32,
    4,
    |v| v.to_bits() as u64,
    |w| f32::from_bits(w as u32),
    [
        (__kmpc_atomic_float4_add, |a, b| a + b),
        (__kmpc_atomic_float4_sub, |a, b| a - b),
        (__kmpc_atomic_float4_mul, |a, b| a * b),
        (__kmpc_atomic_float4_div, |a, b| a / b),
        (__kmpc_atomic_float4_min, |a: f32, b| a.min(b)),
        (__kmpc_atomic_float4_max, |a: f32, b| a.max(b))
    ]
);
atomic_ops!(
    float8,
    f64,
    8,
    |v| v.to_bits(),
    f64::from_bits,
    [
        (__kmpc_atomic_float8_add, |a, b| a + b),
        (__kmpc_atomic_float8_sub, |a, b| a - b),
        (__kmpc_atomic_float8_mul, |a, b| a * b),
        (__kmpc_atomic_float8_div, |a, b| a / b),
        (__kmpc_atomic_float8_min, |a: f64, b| a.min(b)),
        (__kmpc_atomic_float8_max, |a: f64, b| a.max(b))
    ]
);

macro_rules! atomic_rd_wr {
    ($rd:ident, $wr:ident, $t:ty, $size:expr, $to:expr, $from:expr) => {
        #[no_mangle]
        pub extern "C" fn $rd(_loc: Ident, _gtid: i32, p: *mut $t) -> $t {
            let from: fn(u64) -> $t = $from;
            from(atomics::loco_atomic_load(p.cast(), $size, RELAXED))
        }

        #[no_mangle]
        pub extern "C" fn $wr(_loc: Ident, _gtid: i32, p: *mut $t, v: $t) {
            let to: fn($t) -> u64 = $to;
            atomics::loco_atomic_store(p.cast(), to(v), $size, RELAXED);
        }
    };
}

atomic_rd_wr!(
    __kmpc_atomic_fixed4_rd,
    __kmpc_atomic_fixed4_wr,
    i32,
    4,
    |v| v as u32 as u64,
    |w| w as u32 as i32
);
atomic_rd_wr!(
    __kmpc_atomic_fixed8_rd,
    __kmpc_atomic_fixed8_wr,
    i64,
    8,
    |v| v as u64,
    |w| w as i64
);
atomic_rd_wr!(
    __kmpc_atomic_float4_rd,
    __kmpc_atomic_float4_wr,
    f32,
    4,
    |v| v.to_bits() as u64,
    |w| f32::from_bits(w as u32)
);
atomic_rd_wr!(
    __kmpc_atomic_float8_rd,
    __kmpc_atomic_float8_wr,
    f64,
    8,
    |v| v.to_bits(),
    f64::from_bits
);

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

/// How many OpenMP statistics counters there are (kept for `stats_fields`).
pub fn stats_fields() -> Vec<(&'static str, u64)> {
    let s = stats::get();
    vec![
        ("omp_forks", stats::read(&s.forks)),
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
