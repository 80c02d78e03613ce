//! Integration tests for `dray-cache`, one binary (faster to link), one module per concern.
//!
//! `child_helper` is not a real test: the crash and lease tests re-run this test binary
//! (`std::env::current_exe()`) with `DRAY_CACHE_TEST_CHILD` set, so that a separate process can be
//! killed mid-write or exit holding a lease.

mod blobs;
mod crash;
mod images;
mod interop;
mod layout;
mod locking;
mod records;
mod snapshots;

use std::path::Path;

use dray_cache::{Root, Store};

/// A fresh store in a temp dir; keep the `TempDir` alive as long as the store.
pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Root::at(dir.path())).unwrap();
    (dir, store)
}

/// The names in a directory, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn child_helper() {
    crash::child_main();
}
