//! `libloco.so`: the runtime linked into every program compiled by loco-cc.
//!
//! - [`runtime`]: joins the cluster when the program starts (every node runs
//!   the same binary; only node 0 runs `main`, the others serve their memory
//!   until node 0 exits) and tears it down at exit.
//! - [`heap`]: malloc and friends, C++ new/delete, on the shared heap.
//! - [`writes`]: the dirty-marking slow path and the hooks after known libc
//!   writers.
//! - [`atomics`]: C/C++ atomics on shared memory, done at the home node.
//!
//! - [`omp`]: the OpenMP runtime (libomp's `__kmpc_*` entry points and the
//!   `omp_*` API): one team of threads spanning every node.
//! - [`image`]: the program's globals and main's stack, in the shared region.
//!
//! The contract with the compiled code is loco-pass/ABI.md.

pub mod atomics;
pub mod heap;
pub mod image;
pub mod omp;
pub mod runtime;
pub mod writes;
