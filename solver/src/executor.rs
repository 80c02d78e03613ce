//! The [`Executor`] seam: how a `RUN` step's process is run.
//!
//! The solver prepares the root filesystem (the input's snapshot chain as overlay lower
//! directories, a fresh snapshot as the upper directory) and hands an [`ExecSpec`] to the
//! executor. The sandbox crate will implement this trait (native namespaces, or runc); until
//! then [`NoExecutor`] fails every `RUN` with [`OpError::NoExecutor`], and tests use fakes that
//! write files into [`RootFs::upper`].

use std::path::PathBuf;

use async_trait::async_trait;
use dray_llb::{Digest, ExecMeta, NetMode, SecurityMode};
use tokio_util::sync::CancellationToken;

use crate::error::OpError;
use crate::reporter::LogStream;

/// Runs one process over a prepared root filesystem.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs `spec` to completion, streaming its output to `logs`. Return
    /// [`OpError::ExitCode`] for a non-zero exit, and stop promptly (returning any error) once
    /// `cancel` fires.
    async fn run(
        &self,
        spec: &ExecSpec,
        logs: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), OpError>;
}

/// Receives a running process's output.
pub trait LogSink: Send + Sync {
    /// Some bytes were written to `stream`.
    fn write(&self, stream: LogStream, bytes: &[u8]);
}

/// Everything an executor needs to run one step.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The vertex being run (for logs and errors).
    pub vertex: Digest,
    /// Its progress name.
    pub name: String,
    /// argv, env (proxy variables included), cwd, user, hostname.
    pub meta: ExecMeta,
    /// The network mode.
    pub network: NetMode,
    /// The security mode.
    pub security: SecurityMode,
    /// The root filesystem.
    pub rootfs: RootFs,
    /// Further mounts (not the root), in the op's order.
    pub mounts: Vec<MountSpec>,
}

/// An overlay root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    /// Read-only layers, **top first** (overlay `lowerdir` order). Empty for a scratch root.
    pub lowers: Vec<PathBuf>,
    /// The writable upper directory; what the process writes here becomes the step's layer.
    pub upper: PathBuf,
    /// The overlay work directory (same filesystem as `upper`).
    pub work: PathBuf,
}

/// A non-root mount of an exec step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path in the container.
    pub dest: String,
    /// Read-only layers of the mounted input, top first (empty for a local directory).
    pub lowers: Vec<PathBuf>,
    /// For a mount of a local source (the build context): its host directory. Paths that
    /// `.dockerignore` excludes are still in it: see [`excluded`](MountSpec::excluded).
    pub local_dir: Option<PathBuf>,
    /// For a mount of a local source: what `.dockerignore` leaves out of the context, as the
    /// top-most excluded paths relative to [`local_dir`](MountSpec::local_dir), sorted. An
    /// executor must hide them: the step sees the context as `COPY` does.
    pub excluded: Vec<PathBuf>,
    /// The selector (path inside the input) to mount, if any.
    pub selector: Option<String>,
    /// Whether writes are refused.
    pub readonly: bool,
    /// The kind, as in the graph.
    pub kind: dray_llb::MountKind,
    /// For a cache mount: its persistent host directory, `<root>/cache-mounts/<sha256 of id>`
    /// (created by the solver; sharing modes are the executor's to enforce).
    pub cache_dir: Option<PathBuf>,
    /// For secret and SSH mounts: the host file holding the secret's bytes, or the agent
    /// socket; never part of a key.
    pub host_source: Option<PathBuf>,
}

/// The executor used when no sandbox backend is available: every `RUN` fails with
/// [`OpError::NoExecutor`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExecutor;

#[async_trait]
impl Executor for NoExecutor {
    async fn run(
        &self,
        _spec: &ExecSpec,
        _logs: &dyn LogSink,
        _cancel: &CancellationToken,
    ) -> Result<(), OpError> {
        Err(OpError::NoExecutor)
    }
}
