//! Marking written bytes dirty: the slow path of instrumented stores
//! (unaligned, wide, memcpy/memset intrinsics) and the hooks loco-pass puts
//! after calls to libc functions that write through a pointer (the table in
//! loco-pass/ABI.md). Each hook gets the call's first arguments and its
//! result, and marks exactly what the function wrote.

use std::ffi::{c_char, c_int, c_void};

use crate::runtime;

/// Marks `len` bytes at `p` dirty if they are shared memory.
#[no_mangle]
pub extern "C" fn loco_mark_dirty(p: *const c_void, len: u64) {
    if let Some(rt) = runtime::try_get() {
        rt.region().mark_dirty(p as u64, len);
    }
}

fn mark(p: *const c_void, len: usize) {
    loco_mark_dirty(p, len as u64);
}

/// strlen(s) + 1, for hooks whose function just wrote a string at `s`.
///
/// # Safety
/// `s` must be a NUL-terminated string.
unsafe fn string_extent(s: *const c_char) -> usize {
    // SAFETY: the hooked function has just written a terminated string there.
    unsafe { libc::strlen(s) + 1 }
}

#[no_mangle]
pub extern "C" fn loco_after_memcpy(
    dst: *mut c_void,
    _src: *const c_void,
    n: usize,
    _ret: *mut c_void,
) {
    mark(dst, n);
}

#[no_mangle]
pub extern "C" fn loco_after_memmove(
    dst: *mut c_void,
    _src: *const c_void,
    n: usize,
    _ret: *mut c_void,
) {
    mark(dst, n);
}

#[no_mangle]
pub extern "C" fn loco_after_memset(dst: *mut c_void, _c: c_int, n: usize, _ret: *mut c_void) {
    mark(dst, n);
}

/// # Safety
/// Called right after `strcpy(dst, src)`: dst holds a terminated string.
#[no_mangle]
pub unsafe extern "C" fn loco_after_strcpy(
    dst: *mut c_char,
    _src: *const c_char,
    _ret: *mut c_char,
) {
    // SAFETY: see the function's contract.
    mark(dst.cast(), unsafe { string_extent(dst) });
}

/// # Safety
/// Called right after `strcat(dst, src)`.
#[no_mangle]
pub unsafe extern "C" fn loco_after_strcat(
    dst: *mut c_char,
    _src: *const c_char,
    _ret: *mut c_char,
) {
    // SAFETY: see the function's contract.
    mark(dst.cast(), unsafe { string_extent(dst) });
}

#[no_mangle]
pub extern "C" fn loco_after_strncpy(
    dst: *mut c_char,
    _src: *const c_char,
    n: usize,
    _ret: *mut c_char,
) {
    mark(dst.cast(), n);
}

/// # Safety
/// Called right after `strncat(dst, src, n)`.
#[no_mangle]
pub unsafe extern "C" fn loco_after_strncat(
    dst: *mut c_char,
    _src: *const c_char,
    _n: usize,
    _ret: *mut c_char,
) {
    // SAFETY: see the function's contract.
    mark(dst.cast(), unsafe { string_extent(dst) });
}

/// # Safety
/// Called right after `stpcpy(dst, src)`, which returned `ret`.
#[no_mangle]
pub unsafe extern "C" fn loco_after_stpcpy(
    dst: *mut c_char,
    _src: *const c_char,
    ret: *mut c_char,
) {
    mark(dst.cast(), ret as usize - dst as usize + 1);
}

#[no_mangle]
pub extern "C" fn loco_after_memccpy(
    dst: *mut c_void,
    _src: *const c_void,
    _c: c_int,
    n: usize,
    ret: *mut c_void,
) {
    // memccpy returns the byte after the copied `c`, or NULL when it copied all n.
    let len = if ret.is_null() {
        n
    } else {
        ret as usize - dst as usize
    };
    mark(dst, len);
}

fn printed(dst: *mut c_char, ret: c_int, size: Option<usize>) {
    if ret < 0 {
        return;
    }
    let written = ret as usize + 1;
    match size {
        Some(0) => {}
        Some(size) => mark(dst.cast(), written.min(size)),
        None => mark(dst.cast(), written),
    }
}

#[no_mangle]
pub extern "C" fn loco_after_sprintf(dst: *mut c_char, _fmt: *const c_char, ret: c_int) {
    printed(dst, ret, None);
}

#[no_mangle]
pub extern "C" fn loco_after_snprintf(
    dst: *mut c_char,
    size: usize,
    _fmt: *const c_char,
    ret: c_int,
) {
    printed(dst, ret, Some(size));
}

#[no_mangle]
pub extern "C" fn loco_after_vsprintf(
    dst: *mut c_char,
    _fmt: *const c_char,
    _ap: *mut c_void,
    ret: c_int,
) {
    printed(dst, ret, None);
}

#[no_mangle]
pub extern "C" fn loco_after_vsnprintf(
    dst: *mut c_char,
    size: usize,
    _fmt: *const c_char,
    _ap: *mut c_void,
    ret: c_int,
) {
    printed(dst, ret, Some(size));
}

/// # Safety
/// Called right after `fgets(s, n, stream)`, which returned `ret`.
#[no_mangle]
pub unsafe extern "C" fn loco_after_fgets(
    s: *mut c_char,
    _n: c_int,
    _stream: *mut c_void,
    ret: *mut c_char,
) {
    if !ret.is_null() {
        // SAFETY: fgets succeeded, so s holds a terminated string.
        mark(s.cast(), unsafe { string_extent(s) });
    }
}

#[no_mangle]
pub extern "C" fn loco_after_fread(
    ptr: *mut c_void,
    size: usize,
    _n: usize,
    _stream: *mut c_void,
    ret: usize,
) {
    mark(ptr, size.saturating_mul(ret));
}

#[no_mangle]
pub extern "C" fn loco_after_read(_fd: c_int, buf: *mut c_void, _n: usize, ret: isize) {
    if ret > 0 {
        mark(buf, ret as usize);
    }
}

#[no_mangle]
pub extern "C" fn loco_after_pread(_fd: c_int, buf: *mut c_void, _n: usize, ret: isize) {
    loco_after_read(_fd, buf, _n, ret)
}

#[no_mangle]
pub extern "C" fn loco_after_qsort(base: *mut c_void, n: usize, size: usize) {
    mark(base, n.saturating_mul(size));
}

/// # Safety
/// Called right after `getline(lineptr, n, ...)`: both point to valid places.
#[no_mangle]
pub unsafe extern "C" fn loco_after_getline(lineptr: *mut *mut c_char, n: *mut usize, ret: isize) {
    if ret >= 0 && !lineptr.is_null() && !n.is_null() {
        // SAFETY: getline succeeded and filled both.
        unsafe { mark((*lineptr).cast(), *n) };
    }
}

/// # Safety
/// As for loco_after_getline.
#[no_mangle]
pub unsafe extern "C" fn loco_after_getdelim(lineptr: *mut *mut c_char, n: *mut usize, ret: isize) {
    // SAFETY: forwarded contract.
    unsafe { loco_after_getline(lineptr, n, ret) }
}
