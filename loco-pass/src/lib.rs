//! LOCO: the LLVM pass plugin that routes heap calls and stores through LOCO (issue 4).
//!
//! Not built yet: this crate only reserves its place in the workspace.
