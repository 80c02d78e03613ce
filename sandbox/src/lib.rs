//! `dray-sandbox`: runs a `RUN` step's process in a sandbox. It implements the solver's
//! [`Executor`](dray_solver::Executor) seam.
//!
//! What this crate is **for**:
//! - [`NativeExecutor`], the built-in backend: per step a new mount, pid, uts and ipc namespace
//!   (and a network namespace for `--network=none`), an overlayfs root over the snapshot chain,
//!   `pivot_root`, a fresh `/proc`, a minimal `/dev`, the docker default capabilities and
//!   `no_new_privs`;
//! - the **init helper** ([`init_main`]): the parent never forks inside its multi-threaded tokio
//!   process; it spawns `/proc/self/exe __sandbox-init` and sends the step's spec over a pipe as
//!   JSON, and the helper sets up namespaces and mounts and execs the command;
//! - reusable pieces shared with other backends, in `pub(crate)` modules: overlay options
//!   (`overlay`), `/etc/hosts` content (`etc`), user and group resolution from the rootfs's
//!   `/etc/passwd` and `/etc/group` (`user`), the default capability list (`caps`).
//!
//! What it is **not** for: preparing snapshots (the solver hands in plain paths), or turning
//! the upper directory into a layer (`dray_image`).
//!
//! Where to start: [`NativeExecutor`], then `plan.rs` (mount planning, a pure function tested
//! without root behind the `Syscall` seam), then `init.rs` (what the helper does, in order).

#![deny(missing_docs)]

use std::path::PathBuf;

/// The built-in backend: namespaces and overlayfs, set up by the init helper.
///
/// (Skeleton: the executor lands in the next commits.)
#[derive(Debug, Clone)]
pub struct NativeExecutor {
    /// The program started as the init helper, with `__sandbox-init` as its argument.
    init_program: PathBuf,
}

impl NativeExecutor {
    /// An executor that starts `init_program __sandbox-init` for each step (the `dray` binary
    /// passes `/proc/self/exe`).
    pub fn new(init_program: impl Into<PathBuf>) -> Self {
        Self {
            init_program: init_program.into(),
        }
    }

    /// The init helper program.
    pub fn init_program(&self) -> &std::path::Path {
        &self.init_program
    }
}

/// The init helper's entry point (`dray __sandbox-init`): reads the spec from standard input,
/// sets up the sandbox and runs the step. Returns the exit code for the helper's process.
pub fn init_main() -> i32 {
    127
}
