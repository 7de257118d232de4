//! The two places where the OpenMP ABI is variadic: clang calls
//! `__kmpc_fork_call(loc, argc, microtask, ...)` with one pointer-sized
//! argument per captured variable, and the runtime must call the outlined
//! `microtask(&gtid, &tid, ...)` with those same arguments.
//!
//! Stable Rust can neither define nor forward a C variadic function. On
//! x86-64 (System V) a variadic call passes integer arguments exactly like a
//! fixed one (registers, then stack slots), so a function taking
//! `MAX_ARGS` pointer-sized parameters receives the caller's `argc` values
//! in its first `argc` parameters; the rest hold whatever is in those
//! registers and stack slots (the caller's own frame) and are never used.
//! Likewise calling the outlined function with more arguments than it
//! declares is harmless: the callee ignores registers and stack slots it
//! does not declare (libomp's own assembly trampoline does the same).

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "libloco's OpenMP entry points are written for x86-64 (System V calling convention)"
);

use std::ffi::c_void;

/// The most captured variables a parallel region may have.
pub const MAX_ARGS: usize = 64;

/// An outlined parallel region, called with every argument slot.
type Microtask = unsafe extern "C" fn(
    *mut i32,
    *mut i32,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// `__kmpc_fork_call(ident_t *loc, kmp_int32 argc, kmpc_micro microtask, ...)`.
///
/// # Safety
/// Called by compiled code as a variadic function with `argc` pointer-sized
/// arguments after `microtask` (see the module comment).
#[no_mangle]
pub unsafe extern "C" fn __kmpc_fork_call(
    _loc: *mut c_void,
    argc: i32,
    microtask: usize,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
    a7: usize,
    a8: usize,
    a9: usize,
    a10: usize,
    a11: usize,
    a12: usize,
    a13: usize,
    a14: usize,
    a15: usize,
    a16: usize,
    a17: usize,
    a18: usize,
    a19: usize,
    a20: usize,
    a21: usize,
    a22: usize,
    a23: usize,
    a24: usize,
    a25: usize,
    a26: usize,
    a27: usize,
    a28: usize,
    a29: usize,
    a30: usize,
    a31: usize,
    a32: usize,
    a33: usize,
    a34: usize,
    a35: usize,
    a36: usize,
    a37: usize,
    a38: usize,
    a39: usize,
    a40: usize,
    a41: usize,
    a42: usize,
    a43: usize,
    a44: usize,
    a45: usize,
    a46: usize,
    a47: usize,
    a48: usize,
    a49: usize,
    a50: usize,
    a51: usize,
    a52: usize,
    a53: usize,
    a54: usize,
    a55: usize,
    a56: usize,
    a57: usize,
    a58: usize,
    a59: usize,
    a60: usize,
    a61: usize,
    a62: usize,
    a63: usize,
) {
    let all = [
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
        a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37,
        a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55,
        a56, a57, a58, a59, a60, a61, a62, a63,
    ];
    let argc = argc.max(0) as usize;
    if argc > MAX_ARGS {
        crate::runtime::fatal(&format!(
            "a parallel region captures {argc} variables; LOCO supports at most {MAX_ARGS}"
        ));
    }
    super::team::fork(microtask, &all[..argc]);
}

/// Calls the outlined region `microtask` as thread `tid` with `args`.
///
/// # Safety
/// `microtask` must be an outlined parallel region compiled for exactly
/// `args.len()` captured arguments, and the arguments must be what it
/// expects (the values its `__kmpc_fork_call` received).
pub unsafe fn invoke(microtask: usize, tid: i32, args: &[usize]) {
    let mut argv = [0usize; MAX_ARGS];
    argv[..args.len()].copy_from_slice(args);
    let mut gtid = tid;
    let mut btid = tid;
    // SAFETY: `microtask` is a function pointer the compiled code passed to
    // __kmpc_fork_call; extra arguments are ignored by the callee (module comment).
    let f: Microtask = unsafe { std::mem::transmute::<usize, Microtask>(microtask) };
    // SAFETY: see the function's contract.
    unsafe {
        f(
            &mut gtid, &mut btid, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6],
            argv[7], argv[8], argv[9], argv[10], argv[11], argv[12], argv[13], argv[14], argv[15],
            argv[16], argv[17], argv[18], argv[19], argv[20], argv[21], argv[22], argv[23],
            argv[24], argv[25], argv[26], argv[27], argv[28], argv[29], argv[30], argv[31],
            argv[32], argv[33], argv[34], argv[35], argv[36], argv[37], argv[38], argv[39],
            argv[40], argv[41], argv[42], argv[43], argv[44], argv[45], argv[46], argv[47],
            argv[48], argv[49], argv[50], argv[51], argv[52], argv[53], argv[54], argv[55],
            argv[56], argv[57], argv[58], argv[59], argv[60], argv[61], argv[62], argv[63],
        )
    }
}
