//! `dray-sandbox`: runs `RUN` steps. It implements the solver's
//! [`Executor`](dray_solver::Executor) seam over a prepared overlay root filesystem.
//!
//! What this crate is **for**: turning one [`ExecSpec`](dray_solver::ExecSpec) (argv, env,
//! user, network, the overlay layers and the step's extra mounts) into a contained process,
//! streaming its output, and leaving in the upper directory exactly what the process wrote.
//!
//! What it is **not** for: snapshots, cache keys or layers (the solver and the store own those;
//! this crate takes plain paths).
//!
//! Backends:
//! - [`runc::RuncExecutor`]: writes an OCI runtime bundle (`config.json` built with
//!   [`oci_spec::runtime`]) and runs Debian's `runc`. Start at [`runc`].

#![deny(missing_docs)]

pub mod runc;

pub use oci_spec;
