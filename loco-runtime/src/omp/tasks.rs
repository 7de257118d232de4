//! Explicit tasks, run by the threads of the node that creates them.
//!
//! A task created inside a parallel region with more than one thread on
//! this node is queued on the node's part of the team; any thread of the
//! node runs queued tasks at task scheduling points: while it waits in a
//! barrier (the last thread to arrive lets the barrier go only when no task
//! is queued or running), in `taskwait` and at the end of a `taskgroup`, and
//! at the end of the region. Tasks never leave their node: what they
//! capture by reference is often the creating thread's stack, which other
//! nodes cannot read. Elsewhere (one thread on the node, serial code, a
//! final task's descendants) a task runs at once in the creating thread,
//! which is also an allowed schedule.
//!
//! `taskwait` waits for the current task's children, `taskgroup` for every
//! task created in it and their descendants. While they wait, threads run
//! only queued descendants of the task they wait in (OpenMP's task
//! scheduling constraint for tied tasks, as libomp applies it), newest
//! first: a task waiting in a critical section cannot run an unrelated task
//! that needs the same lock on the same thread, and a thread's stack of
//! suspended tasks is never deeper than the task tree. Only the barrier and
//! the region's end run any queued task, oldest first. A task with
//! dependences waits for all its earlier siblings and then runs at once:
//! stronger ordering than the dependences ask for, never weaker. loco-pass
//! refuses the task features this does not cover (task reductions, detach,
//! target).
//!
//! An `untied` task's body is a state machine (clang): at its start and at
//! every task scheduling point inside it, it stores the next part in
//! `part_id`, hands its own descriptor to `__kmpc_omp_task` ("resume me
//! later") and returns. The descriptor is still live then: the thread
//! running it notes the request in the task's node and calls the body again
//! once it returns, until it returns without one; only then is the task
//! done and freed. So an untied task runs like a tied one, on the thread
//! that started it, which is an allowed schedule.
//!
//! The task descriptor is libomp's `kmp_task_t` (kmp.h): `shareds`,
//! `routine`, `part_id`, then two compiler-data words, the first of which is
//! the destructors thunk when the `destructors` flag is set; the compiler's
//! private copies follow it, and the shared-variable pointers follow those.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::team::{whoami, with_ctx, Team};
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
const FLAG_FINAL: i32 = 1 << 1;
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

/// Runs a task's body to its end (every part of an untied task), then its
/// destructors, and frees it. The calling thread runs it as `node`.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`, has not been freed, and
/// `node` is its node, the current task of this thread.
unsafe fn run_and_free(task: *mut Task, node: &TaskNode) {
    let gtid = whoami().0 as i32;
    // SAFETY: the caller's contract; the routine is the compiler's task entry.
    unsafe {
        if let Some(routine) = (*task).routine {
            routine(gtid, task);
        }
        resume_untied(task, node, gtid);
        finish(task, gtid);
    }
}

/// Runs the rest of an untied task that asked to be resumed (see the
/// module docs), part after part, until its body returns without asking.
///
/// # Safety
/// As `run_and_free`; the task's body has just returned.
unsafe fn resume_untied(task: *mut Task, node: &TaskNode, gtid: i32) {
    // SAFETY: the caller's contract: the descriptor is live, and the body
    // continues from the part it stored in `part_id`.
    unsafe {
        while node.resume.swap(false, Ordering::AcqRel) {
            if let Some(routine) = (*task).routine {
                routine(gtid, task);
            }
        }
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

/// A task as the scheduler sees it: how many of its children are not done,
/// and what to tell when it is done.
pub struct TaskNode {
    children: AtomicUsize,
    parent: Option<Arc<TaskNode>>,
    group: Option<Arc<Group>>,
    /// A final task: its descendants run at once.
    is_final: bool,
    /// The task's descriptor (0 for an implicit task).
    task: usize,
    /// The (untied) task asked to be resumed: its body returned at a task
    /// scheduling point, not at its end.
    resume: AtomicBool,
    /// Queued tasks below this one in the task tree (so that a wait with
    /// none skips searching the queue).
    queued_below: AtomicUsize,
}

/// A taskgroup: tasks created in it (and their descendants) not done yet.
pub struct Group {
    pending: AtomicUsize,
}

/// A queued task of this node.
struct Pending {
    task: *mut Task,
    node: Arc<TaskNode>,
}

// SAFETY: the task descriptor is heap memory owned by the queue entry until
// one thread takes the entry and runs it; nothing else touches it.
unsafe impl Send for Pending {}

/// Deferred tasks of one node's part of a team (`Team::tasks`).
///
/// A mutex around a deque, not a lock-free queue (crossbeam-deque's
/// injector or work-stealing deques, a crossbeam channel): `taskwait` and
/// the end of a `taskgroup` take the newest queued *descendant* of the
/// waiting task (`pop_newest`: the scheduling constraint for tied tasks),
/// which means searching the queue and taking an entry out of its middle,
/// while those queues only hand out their oldest entry (or a thread its
/// own newest). Nothing sleeps and polls the queue either: waiters look at
/// the atomics first (`outstanding` here, `queued_below` on a task), spin,
/// then sleep on the team's signal, which `Team::wake_helpers` notifies
/// when a task is queued or done. The lock is held for one push, pop or
/// search, by the threads of one node (a waiter in its spin takes it at
/// each look while a task is queued or running).
#[derive(Default)]
pub struct TaskQueue {
    queue: Mutex<VecDeque<Pending>>,
    /// Queued or running.
    outstanding: AtomicUsize,
}

impl TaskQueue {
    fn push(&self, p: Pending) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.queue.lock().unwrap().push_back(p);
    }

    /// The oldest queued task (it stays outstanding until `finished`).
    fn pop(&self) -> Option<Pending> {
        self.queue.lock().unwrap().pop_front()
    }

    /// The newest queued task that `wanted` accepts (outstanding as `pop`'s).
    fn pop_newest(&self, wanted: impl Fn(&Pending) -> bool) -> Option<Pending> {
        let mut q = self.queue.lock().unwrap();
        let at = q.iter().rposition(wanted)?;
        q.remove(at)
    }

    fn finished(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether a task is queued or running.
    pub fn any(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) > 0
    }
}

thread_local! {
    /// The task this thread runs now (None: its implicit task, made on
    /// first use and dropped at the end of the region).
    static CURRENT: RefCell<Option<Arc<TaskNode>>> = const { RefCell::new(None) };
    /// Taskgroups the current task has open, innermost last.
    static GROUPS: RefCell<Vec<Arc<Group>>> = const { RefCell::new(Vec::new()) };
}

fn current_task() -> Arc<TaskNode> {
    CURRENT.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(TaskNode {
                    children: AtomicUsize::new(0),
                    parent: None,
                    group: None,
                    is_final: false,
                    task: 0,
                    resume: AtomicBool::new(false),
                    queued_below: AtomicUsize::new(0),
                })
            })
            .clone()
    })
}

/// The taskgroup a task created now belongs to.
fn current_group() -> Option<Arc<Group>> {
    GROUPS
        .with(|g| g.borrow().last().cloned())
        .or_else(|| CURRENT.with(|c| c.borrow().as_ref().and_then(|t| t.group.clone())))
}

/// Starts a fresh implicit task for the calling thread (region start/end).
pub fn reset_implicit_task() {
    CURRENT.with(|c| *c.borrow_mut() = None);
    GROUPS.with(|g| g.borrow_mut().clear());
}

/// The node's team, if tasks can be queued for other threads of the node.
fn queueing_team(flags: i32) -> Option<Arc<Team>> {
    if flags & FLAG_FINAL != 0 || CURRENT.with(|c| c.borrow().as_ref().is_some_and(|t| t.is_final))
    {
        return None;
    }
    with_ctx(|c| c.map(|c| c.team.clone())).filter(|t| t.local > 1)
}

/// Runs `body` as the task `node`: its own children and taskgroups.
fn as_task<R>(node: Arc<TaskNode>, body: impl FnOnce() -> R) -> R {
    let entered = enter_task(node);
    let r = body();
    leave_task(entered);
    r
}

/// A task this thread has switched to: the task it interrupts (and that
/// task's open taskgroups), restored by `leave_task`, and its own node.
struct Entered {
    saved: Option<Arc<TaskNode>>,
    groups: Vec<Arc<Group>>,
    node: Arc<TaskNode>,
}

fn enter_task(node: Arc<TaskNode>) -> Entered {
    Entered {
        saved: CURRENT.with(|c| c.replace(Some(node.clone()))),
        groups: GROUPS.with(|g| std::mem::take(&mut *g.borrow_mut())),
        node,
    }
}

/// Back to the interrupted task; returns the node of the one left.
fn leave_task(entered: Entered) -> Arc<TaskNode> {
    CURRENT.with(|c| *c.borrow_mut() = entered.saved);
    GROUPS.with(|g| *g.borrow_mut() = entered.groups);
    entered.node
}

fn child_of_current(task: *mut Task) -> Arc<TaskNode> {
    let flags = flags_of(task);
    let parent = current_task();
    parent.children.fetch_add(1, Ordering::AcqRel);
    let group = current_group();
    if let Some(g) = &group {
        g.pending.fetch_add(1, Ordering::AcqRel);
    }
    Arc::new(TaskNode {
        children: AtomicUsize::new(0),
        is_final: flags & FLAG_FINAL != 0 || parent.is_final,
        parent: Some(parent),
        group,
        task: task as usize,
        resume: AtomicBool::new(false),
        queued_below: AtomicUsize::new(0),
    })
}

/// The ancestors of `node`, nearest first.
fn ancestors(node: &TaskNode) -> impl Iterator<Item = &TaskNode> {
    std::iter::successors(node.parent.as_deref(), |n| n.parent.as_deref())
}

/// Counts a task queued (`true`) or taken off the queue in its ancestors.
fn count_queued(node: &TaskNode, queued: bool) {
    for a in ancestors(node) {
        if queued {
            a.queued_below.fetch_add(1, Ordering::AcqRel);
        } else {
            a.queued_below.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn done(node: &TaskNode) {
    if let Some(p) = &node.parent {
        p.children.fetch_sub(1, Ordering::AcqRel);
    }
    if let Some(g) = &node.group {
        g.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

fn flags_of(task: *mut Task) -> i32 {
    // SAFETY: every task comes from __kmpc_omp_task_alloc, which puts the
    // flags HEADER bytes before the descriptor.
    unsafe { task.cast::<u8>().sub(HEADER).cast::<i32>().read() }
}

/// Runs a task now, on this thread, as a task of its own.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc` and has not run.
unsafe fn run_now(task: *mut Task) {
    let node = child_of_current(task);
    // SAFETY: the caller's contract; `node` is the task's own node.
    as_task(node.clone(), || unsafe { run_and_free(task, &node) });
    done(&node);
}

/// Runs one queued task of `team`, the oldest, if there is one (in a
/// barrier or at the region's end: any task may run there); whether it did.
pub fn help_once(team: &Team) -> bool {
    match team.tasks.pop() {
        Some(p) => {
            run_queued(team, p);
            true
        }
        None => false,
    }
}

/// Runs the newest queued descendant of `me` (the task waiting in taskwait
/// or at a taskgroup's end), if there is one; whether it did.
fn help_descendant(team: &Team, me: &TaskNode) -> bool {
    if me.queued_below.load(Ordering::Acquire) == 0 {
        return false;
    }
    let below = |p: &Pending| ancestors(&p.node).any(|a| std::ptr::eq(a, me));
    match team.tasks.pop_newest(below) {
        Some(p) => {
            run_queued(team, p);
            true
        }
        None => false,
    }
}

/// Runs a task taken off `team`'s queue, as a task of its own.
fn run_queued(team: &Team, p: Pending) {
    count_queued(&p.node, false);
    // SAFETY: the entry was queued by __kmpc_omp_task with a task that had
    // not run, and taking it off the queue made this thread its only owner.
    as_task(p.node.clone(), || unsafe { run_and_free(p.task, &p.node) });
    done(&p.node);
    team.tasks.finished();
    team.wake_helpers();
}

/// Runs queued descendants of the current task until `until` holds,
/// waiting briefly when there is none to run (other threads are running
/// the rest).
fn help_until(until: impl Fn() -> bool) {
    let me = current_task();
    let team = with_ctx(|c| c.map(|c| c.team.clone()));
    while !until() {
        let ran = team.as_deref().is_some_and(|t| help_descendant(t, &me));
        if !ran {
            std::thread::yield_now();
        }
    }
}

/// The end of a region is a task scheduling point: no task of this node
/// may outlive it.
pub fn drain(team: &Team) {
    while team.tasks.any() {
        if !help_once(team) {
            std::thread::yield_now();
        }
    }
}

/// `taskwait`: until every child of the current task is done.
pub fn taskwait() {
    let me = current_task();
    help_until(|| me.children.load(Ordering::Acquire) == 0);
}

/// The current task of this thread if `task` is its descriptor: an untied
/// task handing itself back at a task scheduling point.
fn running_as(task: *mut Task) -> Option<Arc<TaskNode>> {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|n| n.task == task as usize)
            .cloned()
    })
}

/// `__kmpc_omp_task`: queues the task for the node's threads, or runs it
/// now; for the task running on this thread (an untied task's "resume me
/// later"), notes that its body is to be called again when it returns.
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task(_loc: Ident, _gtid: i32, task: *mut Task) -> i32 {
    if let Some(me) = running_as(task) {
        // Not a new task: queueing it (or running it now) would give it a
        // second node and run and free the descriptor twice.
        me.resume.store(true, Ordering::Release);
        return 0;
    }
    let flags = flags_of(task);
    match queueing_team(flags) {
        Some(team) => {
            let node = child_of_current(task);
            count_queued(&node, true);
            team.tasks.push(Pending { task, node });
            team.wake_helpers();
        }
        // SAFETY: the caller's contract.
        None => unsafe { run_now(task) },
    }
    0
}

/// `__kmpc_omp_task_with_deps`: waits for every earlier sibling (so its
/// dependences are met), then runs the task now.
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
    taskwait();
    // SAFETY: the caller's contract.
    unsafe { run_now(task) };
    0
}

/// `__kmpc_omp_wait_deps` (before an if(0) task with dependences): waits
/// for every earlier sibling.
#[no_mangle]
pub extern "C" fn __kmpc_omp_wait_deps(
    _loc: Ident,
    _gtid: i32,
    _ndeps: i32,
    _deps: *mut c_void,
    _ndeps_noalias: i32,
    _noalias: *mut c_void,
) {
    taskwait();
}

thread_local! {
    /// if(0) tasks being run inline by this thread, innermost last.
    static INLINE: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// `if(0)` tasks: the compiled code runs the body itself between these; it
/// runs as a task of its own (its taskwait waits for its own children).
///
/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task_begin_if0(_loc: Ident, _gtid: i32, task: *mut Task) {
    let entered = enter_task(child_of_current(task));
    INLINE.with(|i| i.borrow_mut().push(entered));
}

/// # Safety
/// `task` came from `__kmpc_omp_task_alloc`; its body has run.
#[no_mangle]
pub unsafe extern "C" fn __kmpc_omp_task_complete_if0(_loc: Ident, gtid: i32, task: *mut Task) {
    if let Some(entered) = INLINE.with(|i| i.borrow_mut().pop()) {
        // An untied if(0) task's inlined body may have stopped at a task
        // scheduling point: its entry runs the rest, still as this task.
        // SAFETY: the caller's contract; `entered.node` is the task's node.
        unsafe { resume_untied(task, &entered.node, gtid) };
        done(&leave_task(entered));
    }
    // SAFETY: the caller's contract.
    unsafe { finish(task, gtid) };
}

/// `taskgroup`: tasks created from here on belong to a new group.
pub fn taskgroup_begin() {
    GROUPS.with(|g| {
        g.borrow_mut().push(Arc::new(Group {
            pending: AtomicUsize::new(0),
        }))
    });
}

/// End of `taskgroup`: until every task of the group (and descendant) is done.
pub fn taskgroup_end() {
    let Some(group) = GROUPS.with(|g| g.borrow_mut().pop()) else {
        return;
    };
    help_until(|| group.pending.load(Ordering::Acquire) == 0);
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
        run_now(task);
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
