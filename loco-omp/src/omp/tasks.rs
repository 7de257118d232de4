//! Explicit tasks, run at once by the thread that creates them.
//!
//! Running a task when it is created (as if every task were undeferred) is
//! one of the schedules OpenMP allows: dependences are met because tasks
//! run in creation order, `taskwait` and `taskgroup` find every child done,
//! and a task's captured variables are the creating thread's own, so no
//! other node needs them. What it gives up is parallelism among tasks: a
//! program whose tasks wait for each other to make progress (one task
//! spinning on a flag another sets) would wait forever. loco-pass refuses
//! the task features this does not cover (task reductions, detach, target).
//!
//! The task descriptor is libomp's `kmp_task_t` (kmp.h): `shareds`,
//! `routine`, `part_id`, then two compiler-data words, the first of which is
//! the destructors thunk when the `destructors` flag is set; the compiler's
//! private copies follow it, and the shared-variable pointers follow those.

use std::ffi::c_void;

use super::team::whoami;
use crate::runtime::fatal;

type Ident = *mut c_void;
type Routine = unsafe extern "C" fn(i32, *mut Task) -> i32;

#[repr(C)]
pub struct Task {
    shareds: *mut c_void,
    routine: Option<Routine>,
    part_id: i32,
    data1: usize,
    data2: usize,
}

// kmp_tasking_flags_t bits set by the compiler.
const FLAG_DESTRUCTORS: i32 = 1 << 3;
const FLAG_DETACHABLE: i32 = 1 << 6;

/// Bytes before the descriptor: the flags the compiler gave at allocation.
const HEADER: usize = 16;

/// `__kmpc_omp_task_alloc(loc, gtid, flags, sizeof_kmp_task_t, sizeof_shareds, task_entry)`.
///
/// # Safety
/// Called by compiled code with the sizes of its own task structure.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task_alloc(
    _loc: Ident,
    _gtid: i32,
    flags: i32,
    sizeof_task: usize,
    sizeof_shareds: usize,
    entry: Option<Routine>,
) -> *mut Task {
    if flags & FLAG_DETACHABLE != 0 {
        fatal("OpenMP detachable tasks (detach clause) are not supported by LOCO");
    }
    let task_bytes = sizeof_task.max(std::mem::size_of::<Task>()).div_ceil(8) * 8;
    // SAFETY: calloc returns zeroed memory or null (checked).
    let raw = unsafe { libc::calloc(1, HEADER + task_bytes + sizeof_shareds) }.cast::<u8>();
    if raw.is_null() {
        fatal("out of memory allocating an OpenMP task");
    }
    // SAFETY: raw has HEADER + task_bytes + sizeof_shareds zeroed bytes,
    // 16-byte aligned (malloc's alignment), so the header word, the task
    // descriptor and the shareds area all lie inside it, aligned.
    unsafe {
        raw.cast::<i32>().write(flags);
        let task = raw.add(HEADER).cast::<Task>();
        (*task).routine = entry;
        (*task).shareds = if sizeof_shareds > 0 {
            raw.add(HEADER + task_bytes).cast()
        } else {
            std::ptr::null_mut()
        };
        task
    }
}

/// Runs a task's body (and its destructors) and frees it.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc` and has not been freed.
unsafe fn run_and_free(task: *mut Task) {
    let gtid = whoami().0 as i32;
    // SAFETY: the caller's contract; the routine is the compiler's task entry.
    unsafe {
        if let Some(routine) = (*task).routine {
            routine(gtid, task);
        }
        finish(task, gtid);
    }
}

/// Destructors (when the compiler asked for them), then the memory.
///
/// # Safety
/// As `run_and_free`.
unsafe fn finish(task: *mut Task, gtid: i32) {
    // SAFETY: the header sits HEADER bytes before the descriptor (see alloc);
    // data1 holds the destructors thunk when the flag is set.
    unsafe {
        let raw = task.cast::<u8>().sub(HEADER);
        let flags = raw.cast::<i32>().read();
        if flags & FLAG_DESTRUCTORS != 0 && (*task).data1 != 0 {
            let destructors: Routine = std::mem::transmute::<usize, Routine>((*task).data1);
            destructors(gtid, task);
        }
        libc::free(raw.cast());
    }
}

/// `__kmpc_omp_task`: runs the task now.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task(_loc: Ident, _gtid: i32, task: *mut Task) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { run_and_free(task) };
    0
}

/// `__kmpc_omp_task_with_deps`: every earlier task has already run, so its
/// dependences are met; runs the task now.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task_with_deps(
    _loc: Ident,
    _gtid: i32,
    task: *mut Task,
    _ndeps: i32,
    _deps: *mut c_void,
    _ndeps_noalias: i32,
    _noalias: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { run_and_free(task) };
    0
}

/// `__kmpc_omp_wait_deps` (before an if(0) task with dependences): nothing
/// is outstanding.
#[no_mangle]
pub extern "C" fn __kmpc_omp_wait_deps(
    _loc: Ident,
    _gtid: i32,
    _ndeps: i32,
    _deps: *mut c_void,
    _ndeps_noalias: i32,
    _noalias: *mut c_void,
) {
}

/// `if(0)` tasks: the compiled code runs the body itself between these.
#[no_mangle]
pub extern "C" fn __kmpc_omp_task_begin_if0(_loc: Ident, _gtid: i32, _task: *mut Task) {}

/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`; its body has run.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task_complete_if0(_loc: Ident, gtid: i32, task: *mut Task) {
    // SAFETY: the caller's contract.
    unsafe { finish(task, gtid) };
}

/// A taskloop as one task covering every iteration, run now. The compiler
/// stored the bounds inside the task (`lb`, `ub` point there); the field
/// after them (lb, ub: u64, st: i64, then `liter: i32`) says whether the
/// task runs the last iteration, for lastprivate: this one does.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`; `lb`/`ub` point into it.
unsafe fn taskloop(task: *mut Task, lb: *mut u64, ub: *mut u64, st: i64) {
    // SAFETY: the caller's contract (clang's kmp_task_t layout for taskloops).
    unsafe {
        let (lower, upper) = (*lb as i64, *ub as i64);
        let empty = if st > 0 { upper < lower } else { lower < upper };
        if empty {
            finish(task, whoami().0 as i32);
            return;
        }
        lb.cast::<u8>().add(24).cast::<i32>().write(1);
        run_and_free(task);
    }
}

/// `__kmpc_taskloop`.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`; `lb`/`ub` point into it.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_taskloop(
    _loc: Ident,
    _gtid: i32,
    task: *mut Task,
    _if_val: i32,
    lb: *mut u64,
    ub: *mut u64,
    st: i64,
    _nogroup: i32,
    _sched: i32,
    _grainsize: u64,
    _task_dup: *mut c_void,
) {
    // SAFETY: the caller's contract.
    unsafe { taskloop(task, lb, ub, st) };
}

/// `__kmpc_taskloop_5` (with a `strict` modifier): as `__kmpc_taskloop`.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`; `lb`/`ub` point into it.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_taskloop_5(
    _loc: Ident,
    _gtid: i32,
    task: *mut Task,
    _if_val: i32,
    lb: *mut u64,
    ub: *mut u64,
    st: i64,
    _nogroup: i32,
    _sched: i32,
    _grainsize: u64,
    _modifier: i32,
    _task_dup: *mut c_void,
) {
    // SAFETY: the caller's contract.
    unsafe { taskloop(task, lb, ub, st) };
}
