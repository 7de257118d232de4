//! The OpenMP runtime: the libomp entry points clang emits for host code
//! (`__kmpc_*`) and the `omp_*` API, implemented so that one team of
//! threads spans every node.
//!
//! - [`team`]: fork/join, the thread pool, barriers, the worker nodes' loop;
//! - [`sched`]: static, dynamic, guided and ordered loop scheduling;
//! - [`locks`]: critical sections and omp locks (a global word at node 0,
//!   handed over inside a node first);
//! - [`entry`]: the C entry points themselves, a file per area (threads,
//!   synchronisation, worksharing, atomics, the `omp_*` API, pthread mutexes);
//! - [`cond`]: pthread condition variables that wait across nodes with the
//!   distributed pthread mutexes;
//! - [`tasks`]: explicit tasks, run by the threads of the node creating them;
//! - [`copyprivate`]: `single copyprivate`, through a staging block in shared
//!   memory when the team spans nodes;
//! - [`reduce`]: reductions, each node's part sent to node 0 in one message
//!   when the team spans nodes;
//! - [`variadic`]: `__kmpc_fork_call` and calling outlined regions;
//! - [`wait`]: how threads wait for each other inside a node (spin for a
//!   bounded time, then sleep).

pub mod cond;
pub mod copyprivate;
pub mod entry;
pub mod locks;
pub mod reduce;
pub mod sched;
pub mod stats;
pub mod tasks;
pub mod team;
pub mod variadic;
pub mod wait;
