//! The atomics libomp offers as calls (`__kmpc_atomic_*`), for an `omp
//! atomic` clang does not inline.

use std::ffi::c_void;

use super::Ident;
use crate::atomics;
use crate::omp::locks;

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
///
/// # Safety
/// `p` must be the address of a naturally aligned `size`-byte object that
/// only atomics access meanwhile.
unsafe fn update(p: *mut c_void, size: i32, f: impl Fn(u64) -> u64) -> u64 {
    // SAFETY: this function's own contract.
    let mut old = unsafe { atomics::loco_atomic_load(p, size, RELAXED) };
    loop {
        // SAFETY: as above.
        let found = unsafe { atomics::loco_atomic_cmpxchg(p, old, f(old), size, RELAXED) };
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
            /// # Safety
            /// `lhs` must point to a naturally aligned object that only
            /// atomics access meanwhile (what `omp atomic` passes).
            #[no_mangle]
            pub unsafe extern "C" fn $op(_loc: Ident, _gtid: i32, lhs: *mut $t, rhs: $t) {
                let to: fn($t) -> u64 = $to;
                let from: fn(u64) -> $t = $from;
                let f: fn($t, $t) -> $t = $f;
                // SAFETY: this function's own contract.
                unsafe { update(lhs.cast(), $size, |old| to(f(from(old), rhs))) };
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
        /// # Safety
        /// `p` must point to a naturally aligned object that only atomics
        /// access meanwhile (what `omp atomic read` passes).
        #[no_mangle]
        pub unsafe extern "C" fn $rd(_loc: Ident, _gtid: i32, p: *mut $t) -> $t {
            let from: fn(u64) -> $t = $from;
            // SAFETY: this function's own contract.
            from(unsafe { atomics::loco_atomic_load(p.cast(), $size, RELAXED) })
        }

        /// # Safety
        /// `p` must point to a naturally aligned object that only atomics
        /// access meanwhile (what `omp atomic write` passes).
        #[no_mangle]
        pub unsafe extern "C" fn $wr(_loc: Ident, _gtid: i32, p: *mut $t, v: $t) {
            let to: fn($t) -> u64 = $to;
            // SAFETY: this function's own contract.
            unsafe { atomics::loco_atomic_store(p.cast(), to(v), $size, RELAXED) };
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
