//! Integration tests that drive the real `dray` binary. One test binary for all commands
//! (see ripgrep's `tests/tests.rs`, cargo's `tests/testsuite/main.rs`).

mod add_archive;
mod build;
mod builds;
mod cache;
mod cache_explain;
mod debug;
mod harness;
mod images;
mod lazy_copy;
mod oci_layout;
mod output;
mod readers;
mod registry;
mod registry_build;
mod registry_harness;
mod registry_progress;
mod run;
mod run_isolation;
mod run_mounts;
mod run_secrets;
mod save_load;
mod store;
mod usage;
