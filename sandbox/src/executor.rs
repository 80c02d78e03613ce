//! [`NativeExecutor`]: the parent side, inside dray's tokio runtime.
//!
//! It never forks: it spawns the init helper (`<init program> __sandbox-init`) with a
//! socketpair as its standard input, sends the step as length-prefixed JSON, streams the
//! helper's stdout and stderr (which the step inherits) to the [`LogSink`], and waits for the
//! helper's one-line [`Report`]. Cancelling sends `kill`; dray dying closes the socket, which
//! the helper treats the same way.
//!
//! **A spare helper.** Starting the helper is a good part of a step's fixed cost: an
//! `exec` of dray's own (large) binary, the dynamic loader's relocations, page faults, before
//! the first line of setup (about 2 to 6 ms each, measured with `strace -T` on `bench/run-
//! steps.sh`). So each `run`, once its own helper has the spec, starts the next step's helper,
//! which waits on its socket for a spec that may never come; the next `run` takes it, and the
//! start overlaps the current step. An unused spare is killed when the executor is dropped
//! (`kill_on_drop`), or ends on its own when dray exits (EOF on the socket): it has done
//! nothing yet, so nothing is left behind.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use dray_solver::{ExecSpec, Executor, LogSink, LogStream, OpError};

use crate::error::SandboxError;
use crate::etc;
use crate::spec::{InitSpec, Report};

/// The argument that makes the init program run [`init_main`](crate::init_main).
pub const INIT_ARG: &str = "__sandbox-init";

/// The default `pids.max` of a step: far above what a build needs (`make -j` on a big machine
/// stays in the hundreds), far below what hurts a host.
pub const DEFAULT_PIDS_LIMIT: u64 = 4096;

/// How many output lines a failure report keeps.
const TAIL_LINES: usize = 20;

/// The built-in backend: Linux namespaces and overlayfs, set up by the init helper. Needs root
/// (rootless user namespaces are not supported yet).
#[derive(Debug, Clone)]
pub struct NativeExecutor {
    init_program: PathBuf,
    pids_limit: Option<u64>,
    /// A helper started ahead of time for the next step (see the module docs).
    spare: Arc<Mutex<Option<Helper>>>,
}

/// A started init helper that has not been given a step yet.
#[derive(Debug)]
struct Helper {
    child: tokio::process::Child,
    sock: std::os::unix::net::UnixStream,
}

impl NativeExecutor {
    /// An executor that starts `init_program __sandbox-init` for each step. The `dray` binary
    /// passes `/proc/self/exe`; tests pass a binary that calls
    /// [`init_main`](crate::init_main).
    pub fn new(init_program: impl Into<PathBuf>) -> Self {
        Self {
            init_program: init_program.into(),
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
            spare: Arc::default(),
        }
    }

    /// Sets each step's process limit (`None`: no cgroup).
    pub fn with_pids_limit(mut self, limit: Option<u64>) -> Self {
        self.pids_limit = limit;
        self
    }

    /// The init helper program.
    pub fn init_program(&self) -> &Path {
        &self.init_program
    }

    /// Starts a helper with a socketpair as its standard input.
    fn spawn_helper(&self) -> Result<Helper, SandboxError> {
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(SandboxError::Protocol)?;
        let child = tokio::process::Command::new(&self.init_program)
            .arg(INIT_ARG)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SandboxError::Spawn {
                program: self.init_program.clone(),
                source,
            })?;
        Ok(Helper { child, sock: ours })
    }

    /// The spare helper if there is a live one, else a new one.
    fn take_helper(&self) -> Result<Helper, SandboxError> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        match spare {
            Some(mut h) => match h.child.try_wait() {
                Ok(None) => Ok(h),
                _ => self.spawn_helper(),
            },
            None => self.spawn_helper(),
        }
    }

    /// Starts the next step's helper now, if there is no spare yet (best effort: a failure
    /// shows when the next step starts its own).
    fn prepare_spare(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.is_none() {
            *spare = self.spawn_helper().ok();
        }
    }
}

#[async_trait]
impl Executor for NativeExecutor {
    async fn run(
        &self,
        spec: &ExecSpec,
        logs: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), OpError> {
        let fail = |e: SandboxError| OpError::Executor(Box::new(e));
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").ok();
        let init = InitSpec::from_exec(
            spec,
            etc::resolv_conf(host_resolv.as_deref()),
            self.pids_limit,
        );
        let json = serde_json::to_vec(&init).map_err(|e| fail(SandboxError::Protocol(e.into())))?;

        let Helper {
            mut child,
            sock: ours,
        } = self.take_helper().map_err(fail)?;
        ours.set_nonblocking(true)
            .map_err(|e| fail(SandboxError::Protocol(e)))?;
        let sock =
            tokio::net::UnixStream::from_std(ours).map_err(|e| fail(SandboxError::Protocol(e)))?;
        let (mut rd, mut wr) = sock.into_split();
        let mut msg = (json.len() as u64).to_le_bytes().to_vec();
        msg.extend_from_slice(&json);
        wr.write_all(&msg)
            .await
            .map_err(|e| fail(SandboxError::Protocol(e)))?;
        self.prepare_spare();

        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let tail = Mutex::new(Tail::default());
        let io = async {
            let (_, _, report) = tokio::join!(
                pump(stdout, LogStream::Stdout, logs, &tail),
                pump(stderr, LogStream::Stderr, logs, &tail),
                async {
                    let mut buf = Vec::new();
                    let _ = rd.read_to_end(&mut buf).await;
                    buf
                }
            );
            report
        };
        tokio::pin!(io);
        let mut cancelled = false;
        let report = tokio::select! {
            r = &mut io => r,
            () = cancel.cancelled() => {
                cancelled = true;
                let _ = wr.write_all(b"kill\n").await;
                match tokio::time::timeout(Duration::from_secs(10), &mut io).await {
                    Ok(r) => r,
                    Err(_) => {
                        let _ = child.start_kill();
                        io.await
                    }
                }
            }
        };
        let status = child.wait().await;
        if cancelled {
            return Err(fail(SandboxError::Cancelled));
        }
        let report: Option<Report> = report
            .split(|b| *b == b'\n')
            .find_map(|l| serde_json::from_slice(l).ok());
        match report {
            Some(Report::Exited { code: 0 }) => Ok(()),
            Some(Report::Exited { code }) => Err(OpError::ExitCode {
                args: spec.meta.args.clone(),
                code,
                tail: std::mem::take(&mut *tail.lock().unwrap_or_else(|p| p.into_inner())).lines(),
            }),
            Some(Report::Failed { error }) => Err(fail(SandboxError::Setup { message: error })),
            None => Err(fail(SandboxError::HelperDied {
                status: match status {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                },
            })),
        }
    }
}

/// Copies one output stream to the sink, keeping the tail.
async fn pump(
    stream: Option<impl AsyncRead + Unpin>,
    which: LogStream,
    logs: &dyn LogSink,
    tail: &Mutex<Tail>,
) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                logs.write(which, &buf[..n]);
                if let Ok(mut t) = tail.lock() {
                    t.push(which, &buf[..n]);
                }
            }
        }
    }
}

/// The last lines of a step's output, both streams interleaved by line.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    partial: [Vec<u8>; 2],
}

impl Tail {
    fn push(&mut self, which: LogStream, bytes: &[u8]) {
        let i = usize::from(matches!(which, LogStream::Stderr));
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial[i]);
                self.line(line);
            } else if self.partial[i].len() < 4096 {
                self.partial[i].push(b);
            }
        }
    }

    fn line(&mut self, line: Vec<u8>) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines
            .push_back(String::from_utf8_lossy(&line).into_owned());
    }

    fn lines(mut self) -> Vec<String> {
        for i in 0..2 {
            let p = std::mem::take(&mut self.partial[i]);
            if !p.is_empty() {
                self.line(p);
            }
        }
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_of_both_streams() {
        let mut t = Tail::default();
        for i in 0..30 {
            t.push(LogStream::Stdout, format!("out {i}\n").as_bytes());
        }
        t.push(LogStream::Stderr, b"err without newline");
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("out 11"));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("err without newline")
        );
    }
}
