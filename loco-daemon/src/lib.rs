//! LOCO: the per-node daemon and launcher (issue 6).
//!
//! Not built yet: this crate only reserves its place in the workspace.
