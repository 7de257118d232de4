//! LOCO: the shared heap: userfaultfd demand paging, byte-granular dirty bitmaps, release consistency (issue 3).
//!
//! Not built yet: this crate only reserves its place in the workspace.
