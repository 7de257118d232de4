//! The C heap on the shared region: what `malloc`, `free`, `new`, `delete`
//! and friends become in code compiled by loco-cc (loco-pass renames them
//! to these `loco_` functions).
//!
//! Pointers that did not come from the shared heap (buffers libc allocated
//! for itself, such as getline's) are handed to libc, so programs may free
//! them as usual. A bad pointer inside the shared region (a double free, an
//! interior pointer) ends the program with a message, as glibc does.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use loco_uffd::HeapError;

use crate::runtime::{self, fatal};

fn in_region(p: *mut c_void) -> bool {
    runtime::try_get().is_some_and(|rt| rt.region().contains(p as u64, 1))
}

fn out_of_memory(e: &HeapError) -> *mut c_void {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        eprintln!("loco: {e}");
    }
    set_errno(libc::ENOMEM);
    std::ptr::null_mut()
}

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

fn result(r: Result<u64, HeapError>) -> *mut c_void {
    match r {
        Ok(addr) => addr as *mut c_void,
        Err(e @ HeapError::OutOfMemory { .. }) => out_of_memory(&e),
        Err(HeapError::Invalid(_)) => {
            set_errno(libc::EINVAL);
            std::ptr::null_mut()
        }
        Err(e) => fatal(&e.to_string()),
    }
}

#[no_mangle]
pub extern "C" fn loco_malloc(size: usize) -> *mut c_void {
    result(runtime::get().heap.malloc(size as u64))
}

#[no_mangle]
pub extern "C" fn loco_calloc(count: usize, size: usize) -> *mut c_void {
    result(runtime::get().heap.calloc(count as u64, size as u64))
}

/// # Safety
/// `p` is null, a shared-heap block, or a block from libc's allocator.
#[no_mangle]
pub unsafe extern "C" fn loco_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if !p.is_null() && !in_region(p) {
        // SAFETY: p came from libc's allocator (it is not ours), so libc may resize it.
        return unsafe { libc::realloc(p, size) };
    }
    result(runtime::get().heap.realloc(p as u64, size as u64))
}

/// # Safety
/// As for loco_realloc.
#[no_mangle]
pub unsafe extern "C" fn loco_reallocarray(
    p: *mut c_void,
    count: usize,
    size: usize,
) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { loco_realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `p` is null, a shared-heap block, or a block from libc's allocator.
#[no_mangle]
pub unsafe extern "C" fn loco_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    if !in_region(p) {
        // SAFETY: p came from libc's allocator (it is not ours).
        unsafe { libc::free(p) };
        return;
    }
    if let Err(e) = runtime::get().heap.free(p as u64) {
        fatal(&e.to_string());
    }
}

#[no_mangle]
pub extern "C" fn loco_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    result(runtime::get().heap.aligned_alloc(align as u64, size as u64))
}

#[no_mangle]
pub extern "C" fn loco_memalign(align: usize, size: usize) -> *mut c_void {
    loco_aligned_alloc(align, size)
}

#[no_mangle]
pub extern "C" fn loco_valloc(size: usize) -> *mut c_void {
    loco_aligned_alloc(4096, size)
}

#[no_mangle]
pub extern "C" fn loco_pvalloc(size: usize) -> *mut c_void {
    loco_aligned_alloc(4096, size.next_multiple_of(4096).max(4096))
}

/// # Safety
/// `out` must be a valid place to store a pointer, as for posix_memalign.
#[no_mangle]
pub unsafe extern "C" fn loco_posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    match runtime::get().heap.aligned_alloc(align as u64, size as u64) {
        Ok(addr) => {
            // SAFETY: the caller passes a valid out pointer.
            unsafe { *out = addr as *mut c_void };
            0
        }
        Err(HeapError::OutOfMemory { .. }) => libc::ENOMEM,
        Err(_) => libc::EINVAL,
    }
}

/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco_malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    if !in_region(p) {
        // SAFETY: p came from libc's allocator.
        return unsafe { libc::malloc_usable_size(p) };
    }
    runtime::get()
        .heap
        .usable_size(p as u64)
        .unwrap_or_else(|e| fatal(&e.to_string())) as usize
}

/// Copies `len` bytes of `s` and a terminating zero into a new shared block.
fn duplicate(s: *const c_char, len: usize) -> *mut c_char {
    let p = loco_malloc(len + 1) as *mut c_char;
    if !p.is_null() {
        // SAFETY: s has at least len readable bytes (strlen/strnlen said so);
        // p is a fresh block of len + 1 bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s, p, len);
            *p.add(len) = 0;
        }
        runtime::get().region().mark_dirty(p as u64, len as u64 + 1);
    }
    p
}

/// # Safety
/// `s` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn loco_strdup(s: *const c_char) -> *mut c_char {
    // SAFETY: the caller passes a NUL-terminated string.
    duplicate(s, unsafe { libc::strlen(s) })
}

/// # Safety
/// `s` must be readable up to `n` bytes or its NUL.
#[no_mangle]
pub unsafe extern "C" fn loco_strndup(s: *const c_char, n: usize) -> *mut c_char {
    // SAFETY: as the caller guarantees.
    duplicate(s, unsafe { libc::strnlen(s, n) })
}

// ------------------------------------------------------------ C++ operators
// Itanium ABI names with a `loco_` prefix. The throwing forms cannot throw
// std::bad_alloc from here; running out of shared memory ends the program.

fn new_or_die(size: usize, align: usize) -> *mut c_void {
    let r = if align <= 16 {
        runtime::get().heap.malloc(size as u64)
    } else {
        runtime::get().heap.aligned_alloc(align as u64, size as u64)
    };
    r.map(|a| a as *mut c_void)
        .unwrap_or_else(|e| fatal(&format!("operator new: {e}")))
}

fn new_or_null(size: usize, align: usize) -> *mut c_void {
    let r = if align <= 16 {
        runtime::get().heap.malloc(size as u64)
    } else {
        runtime::get().heap.aligned_alloc(align as u64, size as u64)
    };
    r.map_or(std::ptr::null_mut(), |a| a as *mut c_void)
}

#[no_mangle]
pub extern "C" fn loco__Znwm(size: usize) -> *mut c_void {
    new_or_die(size, 16)
}
#[no_mangle]
pub extern "C" fn loco__Znam(size: usize) -> *mut c_void {
    new_or_die(size, 16)
}
#[no_mangle]
pub extern "C" fn loco__ZnwmRKSt9nothrow_t(size: usize, _: *const c_void) -> *mut c_void {
    new_or_null(size, 16)
}
#[no_mangle]
pub extern "C" fn loco__ZnamRKSt9nothrow_t(size: usize, _: *const c_void) -> *mut c_void {
    new_or_null(size, 16)
}
#[no_mangle]
pub extern "C" fn loco__ZnwmSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    new_or_die(size, align)
}
#[no_mangle]
pub extern "C" fn loco__ZnamSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    new_or_die(size, align)
}
#[no_mangle]
pub extern "C" fn loco__ZnwmSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    _: *const c_void,
) -> *mut c_void {
    new_or_null(size, align)
}
#[no_mangle]
pub extern "C" fn loco__ZnamSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    _: *const c_void,
) -> *mut c_void {
    new_or_null(size, align)
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdlPv(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdaPv(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdlPvm(p: *mut c_void, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdaPvm(p: *mut c_void, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdlPvSt11align_val_t(p: *mut c_void, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdaPvSt11align_val_t(p: *mut c_void, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdlPvmSt11align_val_t(p: *mut c_void, _: usize, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdaPvmSt11align_val_t(p: *mut c_void, _: usize, _: usize) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdlPvRKSt9nothrow_t(p: *mut c_void, _: *const c_void) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
/// # Safety
/// As for loco_free.
#[no_mangle]
pub unsafe extern "C" fn loco__ZdaPvRKSt9nothrow_t(p: *mut c_void, _: *const c_void) {
    // SAFETY: forwarded contract.
    unsafe { loco_free(p) }
}
