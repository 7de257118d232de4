//! LOCO: the OpenMP runtime whose team spans all nodes (issue 5).
//!
//! Not built yet: this crate only reserves its place in the workspace.
