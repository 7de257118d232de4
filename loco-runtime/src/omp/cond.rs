//! pthread condition variables that work with LOCO's distributed mutexes
//! (and so `std::condition_variable` with `std::mutex`).
//!
//! A mutex in the shared region is a LOCO lock on a run of several nodes
//! (entry/pthread.rs), which glibc's `pthread_cond_wait` cannot unlock or wait on.
//! So libloco.so defines `pthread_cond_wait`, `pthread_cond_timedwait`,
//! `pthread_cond_clockwait`, `pthread_cond_signal` and
//! `pthread_cond_broadcast` itself: it is the executable's first
//! `DT_NEEDED` library, so its (unversioned) definitions come before libc's
//! versioned ones in the global lookup, for the executable and for
//! libstdc++.so (where `std::condition_variable` calls them) alike.
//!
//! A condition variable is *distributed* when the run has more than one
//! node and the `pthread_cond_t` lies in the shared region. Every other call
//! goes to glibc's own function. A distributed one uses its first 8 bytes
//! (glibc's `__wseq`, never touched by glibc for it) as a sequence number,
//! accessed only with atomics at the page's home node:
//!
//! - signal and broadcast release this node's writes, then add one;
//! - wait reads the number while the caller still holds the mutex, unlocks
//!   the mutex (a LOCO lock or a libc one), polls the number until it
//!   changes (a few yields, then naps growing to 1 ms), and locks the mutex
//!   again. A signal or broadcast after the unlock changes the number, so no
//!   wake-up is lost; every waiter sees the change, so a signal may wake
//!   more than one (POSIX allows spurious wake-ups);
//! - timedwait and clockwait also stop at their deadline, with `ETIMEDOUT`
//!   (timedwait on the condition variable's clock: glibc keeps it in bit 1
//!   of `__wrefs`, 1 = `CLOCK_MONOTONIC`).
//!
//! A distributed wait is not a cancellation point. A condition variable in
//! a node's private memory with a distributed mutex cannot work (other
//! nodes cannot reach it): that ends the run with a message.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;
use std::time::Duration;

use super::entry::pthread::{loco_pthread_mutex_lock, loco_pthread_mutex_unlock};
use super::team;
use crate::runtime::{self, fatal, Runtime};

type Cond = libc::pthread_cond_t;
type Mutex = libc::pthread_mutex_t;
type WaitFn = unsafe extern "C" fn(*mut Cond, *mut Mutex) -> c_int;
type TimedWaitFn = unsafe extern "C" fn(*mut Cond, *mut Mutex, *const libc::timespec) -> c_int;
type ClockWaitFn =
    unsafe extern "C" fn(*mut Cond, *mut Mutex, libc::clockid_t, *const libc::timespec) -> c_int;
type SignalFn = unsafe extern "C" fn(*mut Cond) -> c_int;

/// glibc's `pthread_cond_t` (x86-64): its size, and where `__wrefs` is.
const COND_BYTES: u64 = 48;
const WREFS_OFFSET: usize = 36;
const WREFS_MONOTONIC: u32 = 1 << 1;
/// glibc's `pthread_mutex_t` size.
const MUTEX_BYTES: u64 = 40;

/// Polls with a yield in between before the waiter starts to nap.
const SPIN_POLLS: u32 = 64;
const FIRST_NAP: Duration = Duration::from_micros(20);
const LONGEST_NAP: Duration = Duration::from_millis(1);

/// glibc's own functions, the current (GLIBC_2.3.2) condvar ABI: a plain
/// `dlsym` may return the old GLIBC_2.2.5 compatibility versions.
struct Glibc {
    wait: WaitFn,
    timedwait: TimedWaitFn,
    clockwait: ClockWaitFn,
    signal: SignalFn,
    broadcast: SignalFn,
}

fn lookup(name: &CStr, versions: &[&CStr]) -> *mut c_void {
    for version in versions {
        // SAFETY: dlvsym with RTLD_NEXT and NUL-terminated strings; it
        // returns null when there is no such symbol.
        let f = unsafe { libc::dlvsym(libc::RTLD_NEXT, name.as_ptr(), version.as_ptr()) };
        if !f.is_null() {
            return f;
        }
    }
    fatal(&format!(
        "libc has no {} of version {versions:?}",
        name.to_string_lossy()
    ))
}

fn glibc() -> &'static Glibc {
    static GLIBC: OnceLock<Glibc> = OnceLock::new();
    GLIBC.get_or_init(|| {
        let v232: &[&CStr] = &[c"GLIBC_2.3.2"];
        // SAFETY: each symbol is glibc's function of that name and version,
        // whose C signature the target type spells out.
        unsafe {
            Glibc {
                wait: std::mem::transmute::<*mut c_void, WaitFn>(lookup(
                    c"pthread_cond_wait",
                    v232,
                )),
                timedwait: std::mem::transmute::<*mut c_void, TimedWaitFn>(lookup(
                    c"pthread_cond_timedwait",
                    v232,
                )),
                clockwait: std::mem::transmute::<*mut c_void, ClockWaitFn>(lookup(
                    c"pthread_cond_clockwait",
                    &[c"GLIBC_2.34", c"GLIBC_2.30"],
                )),
                signal: std::mem::transmute::<*mut c_void, SignalFn>(lookup(
                    c"pthread_cond_signal",
                    v232,
                )),
                broadcast: std::mem::transmute::<*mut c_void, SignalFn>(lookup(
                    c"pthread_cond_broadcast",
                    v232,
                )),
            }
        }
    })
}

/// The runtime, if `cond` is a distributed condition variable. Before the
/// runtime is up (other libraries' constructors) nothing is distributed.
fn distributed(cond: *const Cond) -> Option<&'static Runtime> {
    runtime::try_get().filter(|rt| rt.nodes > 1 && rt.region().contains(cond as u64, COND_BYTES))
}

/// Ends the run if `mutex` is distributed while `cond` is not: waiting on
/// a private condition variable for a lock of the whole cluster would hang.
fn check_private_pair(what: &str, cond: *const Cond, mutex: *const Mutex) {
    if let Some(rt) = runtime::try_get() {
        if rt.nodes > 1 && rt.region().contains(mutex as u64, MUTEX_BYTES) {
            fatal(&format!(
                "{what}: the condition variable at {cond:p} is in this node's private memory \
                 but its mutex at {mutex:p} is shared by every node; LOCO needs the condition \
                 variable in shared memory too (a global, or the heap) to wait across nodes"
            ));
        }
    }
}

/// One atomic operation on the sequence number, at its home node.
fn sequence(rt: &Runtime, cond: *const Cond, f: impl FnMut(u64) -> Option<u64>) -> u64 {
    rt.region()
        .atomic_update(cond as u64, 8, false, false, f)
        .unwrap_or_else(|e| fatal(&format!("condition variable at {cond:p}: {e}")))
}

fn now(clock: libc::clockid_t) -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to write; the clock was checked.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t
}

/// Time left until `deadline` on `clock`; zero once it has passed.
fn left(clock: libc::clockid_t, deadline: &libc::timespec) -> Duration {
    let t = now(clock);
    let ns = |s: libc::time_t, n: libc::c_long| s as i128 * 1_000_000_000 + n as i128;
    let d = ns(deadline.tv_sec, deadline.tv_nsec) - ns(t.tv_sec, t.tv_nsec);
    Duration::from_nanos(d.clamp(0, u64::MAX as i128) as u64)
}

/// The distributed wait (see the module docs); `deadline` is (clock, time).
///
/// # Safety
/// `cond` is a distributed condition variable; `mutex` is a mutex the
/// caller holds.
unsafe fn wait_distributed(
    rt: &Runtime,
    cond: *mut Cond,
    mutex: *mut Mutex,
    deadline: Option<(libc::clockid_t, &libc::timespec)>,
) -> c_int {
    // Read while the mutex is held: a signal after the unlock changes it.
    let start = sequence(rt, cond, |_| None);
    // SAFETY: the caller's contract (the caller holds the mutex).
    let r = unsafe { loco_pthread_mutex_unlock(mutex) };
    if r != 0 {
        return r;
    }
    let mut polls = 0u32;
    let mut nap = FIRST_NAP;
    let outcome = loop {
        if sequence(rt, cond, |_| None) != start {
            break 0;
        }
        let mut pause = nap;
        if let Some((clock, at)) = deadline {
            let rest = left(clock, at);
            if rest.is_zero() {
                break libc::ETIMEDOUT;
            }
            pause = pause.min(rest);
        }
        polls += 1;
        if polls < SPIN_POLLS {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause);
            nap = (nap * 2).min(LONGEST_NAP);
        }
    };
    // SAFETY: the caller's contract; the mutex is taken back in every case,
    // as POSIX asks (a timed-out wait returns holding it too).
    let r = unsafe { loco_pthread_mutex_lock(mutex) };
    if r != 0 {
        r
    } else {
        outcome
    }
}

/// Whether `t` is a deadline glibc would accept (else `EINVAL`).
///
/// # Safety
/// `t` is null or points to a readable timespec.
unsafe fn valid(t: *const libc::timespec) -> bool {
    // SAFETY: the caller's contract; null was ruled out first.
    !t.is_null() && unsafe { (0..1_000_000_000).contains(&(*t).tv_nsec) }
}

fn known_clock(clock: libc::clockid_t) -> bool {
    clock == libc::CLOCK_REALTIME || clock == libc::CLOCK_MONOTONIC
}

/// `pthread_cond_wait`.
///
/// # Safety
/// As POSIX's: `cond` is an initialised condition variable, `mutex` a mutex
/// the calling thread holds.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(cond: *mut Cond, mutex: *mut Mutex) -> c_int {
    match distributed(cond) {
        // SAFETY: the caller's contract.
        Some(rt) => unsafe { wait_distributed(rt, cond, mutex, None) },
        None => {
            check_private_pair("pthread_cond_wait", cond, mutex);
            // SAFETY: the caller's contract; glibc's own function.
            unsafe { (glibc().wait)(cond, mutex) }
        }
    }
}

/// `pthread_cond_timedwait`: until `abstime` on the condition variable's clock.
///
/// # Safety
/// As `pthread_cond_wait`; `abstime` points to a timespec.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    cond: *mut Cond,
    mutex: *mut Mutex,
    abstime: *const libc::timespec,
) -> c_int {
    match distributed(cond) {
        Some(rt) => {
            // SAFETY: the caller's contract: abstime points to a timespec.
            if !unsafe { valid(abstime) } {
                return libc::EINVAL;
            }
            // SAFETY: cond points to an initialised pthread_cond_t (the
            // caller's contract); __wrefs is an aligned u32 inside it.
            let wrefs = unsafe {
                cond.cast::<u8>()
                    .add(WREFS_OFFSET)
                    .cast::<u32>()
                    .read_volatile()
            };
            let clock = if wrefs & WREFS_MONOTONIC != 0 {
                libc::CLOCK_MONOTONIC
            } else {
                libc::CLOCK_REALTIME
            };
            // SAFETY: the caller's contract; abstime was checked readable.
            unsafe { wait_distributed(rt, cond, mutex, Some((clock, &*abstime))) }
        }
        None => {
            check_private_pair("pthread_cond_timedwait", cond, mutex);
            // SAFETY: the caller's contract; glibc's own function.
            unsafe { (glibc().timedwait)(cond, mutex, abstime) }
        }
    }
}

/// `pthread_cond_clockwait`: until `abstime` on `clock`.
///
/// # Safety
/// As `pthread_cond_timedwait`.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    cond: *mut Cond,
    mutex: *mut Mutex,
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
) -> c_int {
    match distributed(cond) {
        Some(rt) => {
            // SAFETY: the caller's contract: abstime points to a timespec.
            if !known_clock(clock) || !unsafe { valid(abstime) } {
                return libc::EINVAL;
            }
            // SAFETY: the caller's contract; abstime was checked readable.
            unsafe { wait_distributed(rt, cond, mutex, Some((clock, &*abstime))) }
        }
        None => {
            check_private_pair("pthread_cond_clockwait", cond, mutex);
            // SAFETY: the caller's contract; glibc's own function.
            unsafe { (glibc().clockwait)(cond, mutex, clock, abstime) }
        }
    }
}

/// Wakes the waiters of a distributed condition variable: this node's
/// writes go home first, then the sequence number changes.
fn wake(rt: &Runtime, cond: *mut Cond) -> c_int {
    team::release(rt);
    sequence(rt, cond, |v| Some(v.wrapping_add(1)));
    0
}

/// `pthread_cond_signal` (on a distributed condition variable it may wake
/// every waiter: they all recheck their condition).
///
/// # Safety
/// As POSIX's: `cond` is an initialised condition variable.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_signal(cond: *mut Cond) -> c_int {
    match distributed(cond) {
        Some(rt) => wake(rt, cond),
        // SAFETY: the caller's contract; glibc's own function.
        None => unsafe { (glibc().signal)(cond) },
    }
}

/// `pthread_cond_broadcast`.
///
/// # Safety
/// As POSIX's: `cond` is an initialised condition variable.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_broadcast(cond: *mut Cond) -> c_int {
    match distributed(cond) {
        Some(rt) => wake(rt, cond),
        // SAFETY: the caller's contract; glibc's own function.
        None => unsafe { (glibc().broadcast)(cond) },
    }
}
