//! `dray-sandbox`: runs a `RUN` step's process in a sandbox. It implements the solver's
//! [`Executor`](dray_solver::Executor) seam.
//!
//! What this crate is **for**:
//! - [`NativeExecutor`], the built-in backend: per step new mount, pid, uts and ipc namespaces
//!   (and a network namespace with only `lo` for `--network=none`), an overlayfs root over the
//!   snapshot chain, `pivot_root`, a fresh `/proc`, a minimal `/dev`, a read-only `/sys`,
//!   `/etc/{hosts,hostname,resolv.conf}` bind mounts that never reach the layer, the docker
//!   default capabilities, `no_new_privs`, a `pids.max` cgroup, and `RUN --mount` (bind, cache,
//!   tmpfs, secret, ssh);
//! - the **init helper** ([`init_main`]): the parent never forks inside its multi-threaded
//!   tokio process; it spawns `/proc/self/exe __sandbox-init` and sends the step's spec over a
//!   socketpair as JSON; the helper sets up namespaces and mounts, forks pid 1, and execs;
//! - [`runc::RuncExecutor`], the second backend behind the same trait: writes an OCI runtime
//!   bundle (`config.json` built with [`oci_spec::runtime`]) and runs Debian's `runc`; the
//!   tests use it as an oracle for the native backend;
//! - reusable pieces for other backends, in `pub(crate)` modules: overlay options
//!   (`overlay`), `/etc` file contents (`etc`), user and group resolution from the rootfs's
//!   `/etc/passwd` and `/etc/group` (`user`), the default capability set (`caps`).
//!
//! What it is **not** for: preparing snapshots (the solver hands in plain paths), or turning
//! the upper directory into a layer (`dray_image`'s diff writer walks it).
//!
//! Where to start: [`NativeExecutor`] (`executor.rs`), then `plan.rs` (the mount plan: a pure
//! function, unit-tested without root behind the `Syscall` seam in `syscall/`), then
//! `init.rs` (the helper, step by step) and `container.rs` (pid 1, up to exec).
//!
//! `unsafe` is denied in the workspace; this crate allows it only in the modules that need
//! it (`init`: fork; `container`: close_range; `net`: interface ioctls), each block with a
//! `// SAFETY:` note.

#![deny(missing_docs)]

mod caps;
mod cgroup;
mod container;
mod error;
mod etc;
mod executor;
mod hide;
mod init;
mod net;
mod overlay;
mod plan;
pub mod runc;
mod spec;
mod stubs;
mod syscall;
mod user;

pub use error::SandboxError;
pub use executor::{DEFAULT_PIDS_LIMIT, INIT_ARG, NativeExecutor};
pub use init::init_main;
pub use oci_spec;
