//! Image assembly and the local image store against a real `dray_cache::Store` in temp dirs.
//!
//! Snapshot directories are filled by hand (whiteouts with `mknod`, so these tests need root,
//! and fail without it, as the layer tests do). Interop is checked with skopeo, which must be
//! installed: a missing skopeo fails the test.

mod assemble;
mod export;
mod images;
mod interop;
mod support;
