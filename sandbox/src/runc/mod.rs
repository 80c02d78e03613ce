//! The runc backend: [`RuncExecutor`] runs each step with Debian's `runc` over an OCI bundle.
//!
//! One step, end to end ([`RuncExecutor::run`]):
//!
//! 1. **Bundle** (`bundle.rs`): a fresh directory under `<state_dir>/bundles/`. The user is
//!    resolved to ids from the rootfs's `/etc/passwd` and `/etc/group` (`user.rs`); inputs of
//!    bind mounts are mounted as overlays with throwaway uppers; secrets are copied onto a
//!    tmpfs with their mount's owner and mode; missing mount points go into a stub layer
//!    (`stubs.rs`) so runc creates nothing in the step's upper directory; the rootfs overlay
//!    (`overlay.rs`: stubs and lowers top first, the step's upper and work directories,
//!    `redirect_dir=off,metacopy=off,index=off`) is mounted on `rootfs/`; `config.json` is
//!    written (`spec.rs`).
//! 2. **Run**: `runc --root <state_dir>/runc --log <bundle>/runc.log run --bundle <bundle>
//!    <id>`, with stdin from `/dev/null` and stdout/stderr streamed to the [`LogSink`].
//!    runc's own errors go to its log, so they are told apart from the step's exit code.
//! 3. **Teardown**, on every path (success, failure, cancellation, a dropped future): a
//!    container still known to runc is removed with `runc delete --force` (which kills it),
//!    then the bundle's mounts are detached and the directory removed.
//!
//! What the upper directory holds afterwards is exactly the step's changes, in overlay form:
//! new and changed files, a 0/0 character device for each deleted lower entry, and the
//! `trusted.overlay.opaque` xattr on a directory that replaced a lower one.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dray_sandbox::runc::RuncExecutor;
//! let executor = RuncExecutor::new(RuncExecutor::DEFAULT_RUNC, "/var/lib/dray/runc");
//! let executor: Arc<dyn dray_solver::Executor> = Arc::new(executor);
//! ```

mod bundle;
mod overlay;
mod spec;
mod stubs;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use dray_solver::{ExecSpec, Executor, LogSink, LogStream, OpError};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub use crate::user::UserError;
pub use stubs::StubError;

use bundle::Bundle;

/// The hostname a step sees when the graph sets none (BuildKit's).
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// How many trailing output lines an [`OpError::ExitCode`] carries.
const TAIL_LINES: usize = 20;

/// Runs `RUN` steps with an external OCI runtime (`runc`).
///
/// It needs root (it mounts overlays in the host mount namespace and runc needs root without a
/// user namespace). It is the second backend behind [`Executor`], and the oracle the native
/// sandbox is checked against: both must leave identical upper directories for the same steps.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    runc: PathBuf,
    state_dir: PathBuf,
    hostname: String,
}

/// Why the runc backend could not run a step (the step's own failure is
/// [`OpError::ExitCode`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuncError {
    /// A filesystem operation on the host failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the root filesystem (the user database, mount points) failed.
    #[error("failed to read the root filesystem")]
    Tree(#[from] dray_fsutil::Error),
    /// The step's `USER` does not resolve.
    #[error(transparent)]
    User(#[from] UserError),
    /// A mount point could not be prepared.
    #[error(transparent)]
    Stub(#[from] StubError),
    /// The runtime spec could not be built or written.
    #[error("failed to write the OCI runtime spec")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A cache mount without its host directory (a solver bug).
    #[error("the mount on {dest} has no host directory")]
    MissingHostPath {
        /// The container path.
        dest: String,
    },
    /// runc could not be started.
    #[error("failed to start {}", runc.display())]
    Spawn {
        /// The runc binary.
        runc: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// runc itself failed (not the step's process): its logged error.
    #[error("runc failed: {message}")]
    Runtime {
        /// runc's error message.
        message: String,
    },
    /// The step was cancelled; its container was killed.
    #[error("the step was cancelled")]
    Cancelled,
    /// A blocking task panicked.
    #[error("internal error: {message}")]
    Internal {
        /// What the runtime reported.
        message: String,
    },
}

impl From<RuncError> for OpError {
    fn from(e: RuncError) -> OpError {
        OpError::Executor(Box::new(e))
    }
}

impl RuncExecutor {
    /// Debian's runc.
    pub const DEFAULT_RUNC: &'static str = "/usr/sbin/runc";

    /// An executor running `runc` (a path to the binary), keeping its state under `state_dir`:
    /// `state_dir/runc` is runc's `--root` (container state) and `state_dir/bundles/<id>` holds
    /// each running step's bundle (removed afterwards). The directory is created on first use;
    /// several executors may share it (container ids are unique per process and step).
    pub fn new(runc: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> RuncExecutor {
        RuncExecutor {
            runc: runc.into(),
            state_dir: state_dir.into(),
            hostname: DEFAULT_HOSTNAME.to_owned(),
        }
    }

    /// The runc binary.
    pub fn runc(&self) -> &Path {
        &self.runc
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn runc_root(&self) -> PathBuf {
        self.state_dir.join("runc")
    }

    fn container_id(spec: &ExecSpec) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!(
            "dray-{}-{}-{}",
            spec.vertex.short(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Removes the container with `runc delete --force` (killing what is left of it) when dropped
/// while armed: the future was dropped, the step was cancelled, or `runc run` died.
struct ContainerGuard {
    runc: PathBuf,
    root: PathBuf,
    id: String,
    armed: bool,
}

impl ContainerGuard {
    fn delete_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.runc);
        cmd.arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if self.armed {
            // Synchronous on purpose: the bundle's mounts are detached right after this guard
            // drops, and must outlive the container.
            let _ = self.delete_command().status();
        }
    }
}

/// The last lines of a step's output, for the error report.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > TAIL_LINES {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }

    fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.push(b"\n");
        }
        self.lines.into()
    }
}

/// The first error runc logged (its `--log-format json` lines), if any.
fn runc_logged_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .next()
}

#[async_trait]
impl Executor for RuncExecutor {
    async fn run(
        &self,
        spec: &ExecSpec,
        logs: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), OpError> {
        let id = Self::container_id(spec);
        let bundle_dir = self.state_dir.join("bundles").join(&id);
        let runc_root = self.runc_root();
        std::fs::create_dir_all(&runc_root).map_err(|source| RuncError::Io {
            action: "create",
            path: runc_root.clone(),
            source,
        })?;
        let prepared = {
            let spec = spec.clone();
            let hostname = self.hostname.clone();
            tokio::task::spawn_blocking(move || Bundle::prepare(bundle_dir, &spec, &hostname))
                .await
                .map_err(|e| RuncError::Internal {
                    message: e.to_string(),
                })??
        };
        if cancel.is_cancelled() {
            return Err(RuncError::Cancelled.into());
        }
        // Declared after `prepared`, so it drops first: the container goes before its mounts.
        let mut container = ContainerGuard {
            runc: self.runc.clone(),
            root: runc_root.clone(),
            id: id.clone(),
            armed: true,
        };
        let mut child = tokio::process::Command::new(&self.runc)
            .arg("--root")
            .arg(&runc_root)
            .arg("--log")
            .arg(prepared.log_path())
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(prepared.dir())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RuncError::Spawn {
                runc: self.runc.clone(),
                source,
            })?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut tail = Tail::default();
        let mut out_buf = vec![0u8; 16 << 10];
        let mut err_buf = vec![0u8; 16 << 10];
        let mut cancelled = false;
        let status = loop {
            tokio::select! {
                n = read_some(&mut stdout, &mut out_buf) => match n {
                    Some(n) => {
                        logs.write(LogStream::Stdout, &out_buf[..n]);
                        tail.push(&out_buf[..n]);
                    }
                    None => stdout = None,
                },
                n = read_some(&mut stderr, &mut err_buf) => match n {
                    Some(n) => {
                        logs.write(LogStream::Stderr, &err_buf[..n]);
                        tail.push(&err_buf[..n]);
                    }
                    None => stderr = None,
                },
                () = cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    // `delete --force` sends SIGKILL to the container's init; its PID namespace
                    // takes every other process of the step with it, which closes the pipes.
                    let delete = container.delete_command();
                    let _ = tokio::task::spawn_blocking(move || {
                        let mut delete = delete;
                        delete.status()
                    })
                    .await;
                    let _ = child.start_kill();
                }
                status = child.wait(), if stdout.is_none() && stderr.is_none() => break status,
            }
        };
        let status = status.map_err(|source| RuncError::Spawn {
            runc: self.runc.clone(),
            source,
        })?;
        if cancelled {
            return Err(RuncError::Cancelled.into());
        }
        let code = status.code().unwrap_or(-1);
        let runtime_error = if code == 0 {
            None
        } else {
            runc_logged_error(&prepared.log_path())
        };
        // `runc run` deletes the container when its process exits; after its own failure or
        // its death by a signal, the guard makes sure.
        container.armed = status.code().is_none() || runtime_error.is_some();
        if code == 0 {
            return Ok(());
        }
        if let Some(message) = runtime_error {
            return Err(RuncError::Runtime { message }.into());
        }
        drop(container);
        drop(prepared);
        Err(OpError::ExitCode {
            args: spec.meta.args.clone(),
            code,
            tail: tail.finish(),
        })
    }
}

/// Reads what is available from an open pipe; `None` at its end (or when already closed:
/// then it never completes, so `select!` waits on the other branches).
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match pipe {
        Some(p) => match p.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut tail = Tail::default();
        for i in 0..30 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        tail.push(b"partial");
        let lines = tail.finish();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("line 11"));
        assert_eq!(lines.last().map(String::as_str), Some("partial"));
    }

    #[test]
    fn runc_errors_are_read_from_its_json_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("runc.log");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"meh\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
        )
        .unwrap();
        assert_eq!(
            runc_logged_error(&log).as_deref(),
            Some("exec: \"nope\": executable file not found in $PATH")
        );
        assert_eq!(runc_logged_error(&tmp.path().join("missing")), None);
    }
}
