//! Waiting inside a node: spin for a bounded time, then sleep.
//!
//! On a small machine a thread woken from another CPU costs tens of
//! microseconds, more than most OpenMP constructs should. So, like libomp's
//! blocktime, a thread that has to wait (in a barrier, for the next parallel
//! region, for a lock, for its ordered turn) first spins for up to the *spin
//! time*, checking what it waits for, and only then sleeps on a futex until
//! whoever changes that condition calls [`Signal::notify`]. Past its first
//! microseconds the spin calls `sched_yield` between checks, so that when
//! several node processes share few cores (or a team has more threads than
//! cores) the thread being waited for gets the CPU.
//!
//! The spin time is the most CPU one waiting thread burns before it sleeps:
//! `LOCO_SPIN_US` (microseconds), else `KMP_BLOCKTIME` (milliseconds, or a
//! number with a `us`/`ms`/`s` unit; `infinite` counts as the cap), else
//! `OMP_WAIT_POLICY` (`passive`: 0, `active`: the cap), else
//! [`DEFAULT_SPIN`]; never more than [`MAX_SPIN`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Spin time without any setting.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(1000);
/// The longest spin any setting gets.
pub const MAX_SPIN: Duration = Duration::from_secs(1);
/// Pause instructions between two checks of the condition (one is ~25 ns
/// on the machines we measure on).
const PAUSES: u32 = 2;
/// Checks between two looks at the clock.
const CHECKS_PER_CLOCK: u32 = 8;
/// How long the spin checks without yielding: enough for a thread running
/// on another CPU to arrive at a barrier; after it, every check yields (a
/// sched_yield is ~1 µs), so a waiter sharing a CPU with the thread it
/// waits for hands it the CPU at once rather than at its time slice's end.
const PURE_SPIN: Duration = Duration::from_micros(2);
/// A sleeper wakes at least this often and checks again (a safety net: every
/// change a sleeper waits for is notified).
const NAP: Duration = Duration::from_millis(20);

/// The spin time this process uses (read once).
pub fn spin_time() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok();
        spin_from(
            var("LOCO_SPIN_US").as_deref(),
            var("KMP_BLOCKTIME").as_deref(),
            var("OMP_WAIT_POLICY").as_deref(),
        )
    })
}

/// The spin time for these settings (unparsable ones are ignored).
fn spin_from(loco: Option<&str>, blocktime: Option<&str>, policy: Option<&str>) -> Duration {
    let chosen = loco
        .and_then(|v| v.trim().parse::<u64>().ok().map(Duration::from_micros))
        .or_else(|| blocktime.and_then(parse_blocktime))
        .or_else(|| match policy.map(|p| p.trim().to_ascii_lowercase()) {
            Some(p) if p == "passive" => Some(Duration::ZERO),
            Some(p) if p == "active" => Some(MAX_SPIN),
            _ => None,
        })
        .unwrap_or(DEFAULT_SPIN);
    chosen.min(MAX_SPIN)
}

/// KMP_BLOCKTIME: milliseconds, `N us`/`N ms`/`N s`, or `infinite`.
fn parse_blocktime(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    if t == "infinite" {
        return Some(MAX_SPIN);
    }
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..at].parse().ok()?;
    match t[at..].trim() {
        "" | "ms" => Some(Duration::from_millis(n)),
        "us" => Some(Duration::from_micros(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

/// What sleeping waiters sleep on: a counter that every notification bumps.
#[derive(Default)]
pub struct Signal {
    seq: AtomicU32,
    sleepers: AtomicU32,
}

impl Signal {
    /// The count of notifications so far: a waiter that reads it before a
    /// change it waits for sees it differ after that change's notification.
    pub fn seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Wakes every thread sleeping on this signal; call it after changing
    /// what they wait for.
    pub fn notify(&self) {
        // SeqCst with the waiter's increment of `sleepers` and reload of
        // `seq`: either this sees the sleeper, or the sleeper sees the bump.
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex_wake_all(&self.seq);
        }
    }
}

/// Returns once `ready()` holds: checks it, spins for up to the spin time
/// checking it again, then sleeps on `signal` between checks. `ready` may do
/// work of its own (run a queued task) and may be called many times.
pub fn wait_until(signal: &Signal, mut ready: impl FnMut() -> bool) {
    if ready() {
        return;
    }
    let budget = spin_time();
    if !budget.is_zero() {
        let start = Instant::now();
        let pure = PURE_SPIN.min(budget);
        let mut checks = 0u32;
        loop {
            for _ in 0..PAUSES {
                std::hint::spin_loop();
            }
            if ready() {
                return;
            }
            checks += 1;
            if checks.is_multiple_of(CHECKS_PER_CLOCK) && start.elapsed() >= pure {
                break;
            }
        }
        while start.elapsed() < budget {
            std::thread::yield_now();
            if ready() {
                return;
            }
        }
    }
    loop {
        let seen = signal.seq.load(Ordering::SeqCst);
        if ready() {
            return;
        }
        signal.sleepers.fetch_add(1, Ordering::SeqCst);
        if signal.seq.load(Ordering::SeqCst) == seen {
            futex_wait(&signal.seq, seen, NAP);
        }
        signal.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sleeps while `word` holds `expected`, for at most `timeout` (or until a
/// wake-up, or spuriously).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives
    // for the call; `ts` is a valid relative timeout; the other arguments
    // are unused by this operation.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every thread sleeping on `word`.
fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn spin_time_settings() {
        assert_eq!(spin_from(None, None, None), DEFAULT_SPIN);
        assert_eq!(
            spin_from(Some("50"), Some("7"), None),
            Duration::from_micros(50)
        );
        assert_eq!(spin_from(None, Some("7"), None), Duration::from_millis(7));
        assert_eq!(
            spin_from(None, Some("300us"), None),
            Duration::from_micros(300)
        );
        assert_eq!(spin_from(None, Some("infinite"), None), MAX_SPIN);
        assert_eq!(spin_from(None, Some("60s"), None), MAX_SPIN);
        assert_eq!(spin_from(None, None, Some("PASSIVE")), Duration::ZERO);
        assert_eq!(spin_from(None, None, Some("active")), MAX_SPIN);
        assert_eq!(spin_from(Some("x"), None, None), DEFAULT_SPIN);
    }

    #[test]
    fn a_sleeping_waiter_is_woken() {
        let signal = Arc::new(Signal::default());
        let flag = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (signal, flag) = (signal.clone(), flag.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                wait_until(&signal, || flag.load(Ordering::Acquire));
                t.elapsed()
            })
        };
        // Long enough for the waiter to be asleep (past its spin).
        std::thread::sleep(spin_time() + Duration::from_millis(5));
        flag.store(true, Ordering::Release);
        signal.notify();
        let waited = waiter.join().unwrap();
        assert!(waited >= spin_time());
    }
}
