//! C/C++ atomics in code compiled by loco-cc. On shared memory they are
//! done at the page's home node (see SharedRegion::atomic_update), with the
//! release/acquire effects of their memory order; on private memory, and on
//! a cluster of one node (whose shared memory is all its own, with nobody
//! to notify), they are ordinary CPU atomics. Volatile loads and stores of shared memory
//! tell the runtime too, so that they see and publish the current bytes.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::runtime::{self, fatal};

// LLVM's AtomicRMWBinOp numbering (loco-pass/ABI.md).
const XCHG: i32 = 0;
const ADD: i32 = 1;
const SUB: i32 = 2;
const AND: i32 = 3;
const NAND: i32 = 4;
const OR: i32 = 5;
const XOR: i32 = 6;
const MAX: i32 = 7;
const MIN: i32 = 8;
const UMAX: i32 = 9;
const UMIN: i32 = 10;
const FADD: i32 = 11;
const FSUB: i32 = 12;
const FMAX: i32 = 13;
const FMIN: i32 = 14;

// LLVMAtomicOrdering.
const ACQUIRE: i32 = 4;
const RELEASE: i32 = 5;
const ACQ_REL: i32 = 6;
const SEQ_CST: i32 = 7;

fn releases(ordering: i32) -> bool {
    matches!(ordering, RELEASE | ACQ_REL | SEQ_CST)
}

fn acquires(ordering: i32) -> bool {
    matches!(ordering, ACQUIRE | ACQ_REL | SEQ_CST)
}

/// Sign-extends the low `size` bytes of `v`.
fn signed(v: u64, size: u32) -> i64 {
    let shift = 64 - size * 8;
    ((v << shift) as i64) >> shift
}

fn low(v: u64, size: u32) -> u64 {
    if size == 8 {
        v
    } else {
        v & ((1u64 << (size * 8)) - 1)
    }
}

fn float_op(old: u64, operand: u64, size: u32, op: impl Fn(f64, f64) -> f64) -> u64 {
    if size == 4 {
        let r = op(
            f32::from_bits(old as u32) as f64,
            f32::from_bits(operand as u32) as f64,
        );
        (r as f32).to_bits() as u64
    } else {
        op(f64::from_bits(old), f64::from_bits(operand)).to_bits()
    }
}

/// The new value of an `op` applied to `old` with `operand`, on `size` bytes.
pub fn apply(op: i32, old: u64, operand: u64, size: u32) -> u64 {
    let r = match op {
        XCHG => operand,
        ADD => old.wrapping_add(operand),
        SUB => old.wrapping_sub(operand),
        AND => old & operand,
        NAND => !(old & operand),
        OR => old | operand,
        XOR => old ^ operand,
        MAX => {
            if signed(old, size) >= signed(operand, size) {
                old
            } else {
                operand
            }
        }
        MIN => {
            if signed(old, size) <= signed(operand, size) {
                old
            } else {
                operand
            }
        }
        UMAX => low(old, size).max(low(operand, size)),
        UMIN => low(old, size).min(low(operand, size)),
        FADD => float_op(old, operand, size, |a, b| a + b),
        FSUB => float_op(old, operand, size, |a, b| a - b),
        FMAX => float_op(old, operand, size, f64::max),
        FMIN => float_op(old, operand, size, f64::min),
        _ => fatal(&format!("unknown atomic operation {op}")),
    };
    low(r, size)
}

/// A CPU compare-and-swap loop on private memory.
///
/// # Safety
/// `p` must be valid and aligned for `size` bytes.
unsafe fn local_update(p: *mut c_void, size: u32, mut f: impl FnMut(u64) -> Option<u64>) -> u64 {
    macro_rules! cas_loop {
        ($atomic:ty, $int:ty) => {{
            // SAFETY: the caller guarantees p is valid and aligned.
            let a = unsafe { <$atomic>::from_ptr(p.cast::<$int>()) };
            let mut cur = a.load(Ordering::SeqCst);
            loop {
                match f(cur as u64) {
                    None => break cur as u64,
                    Some(new) => match a.compare_exchange(
                        cur,
                        new as $int,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(_) => break cur as u64,
                        Err(seen) => cur = seen,
                    },
                }
            }
        }};
    }
    match size {
        1 => cas_loop!(AtomicU8, u8),
        2 => cas_loop!(AtomicU16, u16),
        4 => cas_loop!(AtomicU32, u32),
        8 => cas_loop!(AtomicU64, u64),
        _ => fatal(&format!("atomic access of {size} bytes is not supported")),
    }
}

/// # Safety
/// As for `loco_atomic_load`.
unsafe fn update(
    p: *mut c_void,
    size: u32,
    ordering: i32,
    f: impl FnMut(u64) -> Option<u64>,
) -> u64 {
    match runtime::try_get() {
        Some(rt) if rt.nodes == 1 && rt.region().contains(p as u64, size as u64) => {
            // As atomic_update would: a misaligned access is refused, not
            // left to the CPU.
            if !matches!(size, 1 | 2 | 4 | 8) || !(p as u64).is_multiple_of(size as u64) {
                fatal(&format!(
                    "atomic operation at {p:p}: atomic access of {size} bytes is not naturally aligned"
                ));
            }
            // SAFETY: p is in the shared region, mapped for the life of the
            // process, and aligned for `size` bytes (checked above).
            unsafe { local_update(p, size, f) }
        }
        Some(rt) if rt.region().contains(p as u64, size as u64) => rt
            .region()
            .atomic_update(
                p as u64,
                size as u64,
                releases(ordering),
                acquires(ordering),
                f,
            )
            .unwrap_or_else(|e| fatal(&format!("atomic operation at {p:p}: {e}"))),
        // SAFETY: the caller passes the address of a naturally aligned
        // atomic object (this function's contract).
        _ => unsafe { local_update(p, size, f) },
    }
}

/// # Safety
/// `p` must be the address of a naturally aligned object of `size` bytes
/// (1, 2, 4 or 8) that no other code accesses non-atomically meanwhile
/// (what compiled code passes for a C/C++ atomic or `omp atomic`).
#[no_mangle]
pub unsafe extern "C" fn loco_atomic_rmw(
    p: *mut c_void,
    value: u64,
    op: i32,
    size: i32,
    ordering: i32,
) -> u64 {
    let size = size as u32;
    // SAFETY: this function's own contract.
    unsafe { update(p, size, ordering, |old| Some(apply(op, old, value, size))) }
}

/// # Safety
/// `p` must be the address of a naturally aligned object of `size` bytes
/// (1, 2, 4 or 8) that no other code accesses non-atomically meanwhile
/// (what compiled code passes for a C/C++ atomic or `omp atomic`).
#[no_mangle]
pub unsafe extern "C" fn loco_atomic_cmpxchg(
    p: *mut c_void,
    expected: u64,
    desired: u64,
    size: i32,
    ordering: i32,
) -> u64 {
    let size = size as u32;
    let expected = low(expected, size);
    // SAFETY: this function's own contract.
    unsafe {
        update(p, size, ordering, |old| {
            (old == expected).then_some(desired)
        })
    }
}

/// # Safety
/// `p` must be the address of a naturally aligned object of `size` bytes
/// (1, 2, 4 or 8) that no other code accesses non-atomically meanwhile
/// (what compiled code passes for a C/C++ atomic or `omp atomic`).
#[no_mangle]
pub unsafe extern "C" fn loco_atomic_load(p: *mut c_void, size: i32, ordering: i32) -> u64 {
    // SAFETY: this function's own contract.
    unsafe { update(p, size as u32, ordering, |_| None) }
}

/// # Safety
/// `p` must be the address of a naturally aligned object of `size` bytes
/// (1, 2, 4 or 8) that no other code accesses non-atomically meanwhile
/// (what compiled code passes for a C/C++ atomic or `omp atomic`).
#[no_mangle]
pub unsafe extern "C" fn loco_atomic_store(p: *mut c_void, value: u64, size: i32, ordering: i32) {
    // SAFETY: this function's own contract.
    unsafe { update(p, size as u32, ordering, |_| Some(value)) };
}

/// Before a thread fence (loco-pass/ABI.md): a release fence sends this
/// node's writes home, an acquire fence drops the cached pages other nodes
/// wrote, acq_rel and seq_cst do both. What a fence orders is plain data
/// around atomics, so across nodes it is the memory-model work of a flush
/// of that kind. One-node runs need nothing (the fence itself stays).
#[no_mangle]
pub extern "C" fn loco_fence(ordering: i32) {
    if let Some(rt) = runtime::try_get().filter(|rt| rt.nodes > 1) {
        let region = rt.region();
        if releases(ordering) {
            region
                .release()
                .unwrap_or_else(|e| fatal(&format!("release fence: {e}")));
        }
        if acquires(ordering) {
            region
                .acquire()
                .unwrap_or_else(|e| fatal(&format!("acquire fence: {e}")));
        }
    }
}

/// Before a volatile load of `len` bytes at `p` (loco-pass/ABI.md): a
/// cached copy of another node's page there is dropped, so the load reads
/// the home's current bytes (OpenMP: a volatile read as if a flush of the
/// object came first). Private memory and one-node runs need nothing.
#[no_mangle]
pub extern "C" fn loco_volatile_load(p: *const c_void, len: u64) {
    if let Some(rt) = runtime::try_get().filter(|rt| rt.nodes > 1) {
        rt.region()
            .volatile_read(p as u64, len)
            .unwrap_or_else(|e| fatal(&format!("volatile read at {p:p}: {e}")));
    }
}

/// After a volatile store of `len` bytes at `p` and its marks: this
/// node's writes to that page go home now (a volatile write as if a flush
/// of the object came after), so a spin-wait on another node sees it.
#[no_mangle]
pub extern "C" fn loco_volatile_store(p: *const c_void, len: u64) {
    if let Some(rt) = runtime::try_get().filter(|rt| rt.nodes > 1) {
        rt.region()
            .volatile_write(p as u64, len)
            .unwrap_or_else(|e| fatal(&format!("volatile write at {p:p}: {e}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_operations_respect_width_and_sign() {
        assert_eq!(apply(ADD, 0xff, 1, 1), 0);
        assert_eq!(apply(SUB, 0, 1, 2), 0xffff);
        assert_eq!(apply(MAX, 0x80, 0x01, 1), 0x01); // -128 < 1
        assert_eq!(apply(UMAX, 0x80, 0x01, 1), 0x80);
        assert_eq!(apply(MIN, 0xffff_ffff, 5, 4), 0xffff_ffff); // -1 < 5
        assert_eq!(apply(NAND, 0b1100, 0b1010, 1), 0b1111_0111);
        assert_eq!(apply(XCHG, 1, 9, 8), 9);
    }

    #[test]
    fn float_operations_use_the_bits_of_the_width() {
        let two = 2.0f32.to_bits() as u64;
        let half = 0.5f32.to_bits() as u64;
        assert_eq!(f32::from_bits(apply(FADD, two, half, 4) as u32), 2.5);
        let a = 3.0f64.to_bits();
        assert_eq!(f64::from_bits(apply(FMIN, a, 1.5f64.to_bits(), 8)), 1.5);
    }

    #[test]
    fn private_atomics_work_without_a_cluster() {
        let mut x: u32 = 5;
        let p = (&mut x as *mut u32).cast();
        // SAFETY: p is a live, aligned u32 that nothing else touches.
        unsafe {
            assert_eq!(loco_atomic_rmw(p, 3, ADD, 4, SEQ_CST), 5);
            assert_eq!(loco_atomic_cmpxchg(p, 8, 1, 4, SEQ_CST), 8);
            assert_eq!(loco_atomic_load(p, 4, SEQ_CST), 1);
            loco_atomic_store(p, 42, 4, SEQ_CST);
        }
        assert_eq!(x, 42);
    }
}
