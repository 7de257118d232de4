//! Worksharing: master and masked, single, ordered, and loops (static,
//! and dispatched: dynamic, guided, runtime).

use super::Ident;
use crate::omp::sched;
use crate::omp::team::{self, whoami, with_ctx};

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
pub extern "C" fn __kmpc_ordered(_loc: Ident, _gtid: i32) {
    sched::ordered_begin();
}

#[no_mangle]
pub extern "C" fn __kmpc_end_ordered(_loc: Ident, _gtid: i32) {
    sched::ordered_end();
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
