//! SIGINT and SIGTERM during a build: the first one cancels the build gracefully, a second one
//! exits at once.
//!
//! Graceful means: the solver's cancellation token fires, running `RUN` steps have their
//! process trees killed and are awaited, nothing of theirs is committed, the steps already
//! done stay cached, and the lease is released as the solve returns. `dray` then prints
//! "build cancelled" and exits with 128 + the signal number (130 for SIGINT, 143 for
//! SIGTERM), as a shell reports a process killed by that signal.
//!
//! A second signal exits immediately with the same code: the store never depends on a clean
//! shutdown (blobs are published by rename, records after their content), and each step's
//! sandbox helper kills its step when dray's end of the socket closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The build was stopped by a signal; `main` prints "build cancelled" and exits with
/// [`Interrupted::exit_code`].
#[derive(Debug)]
pub(crate) struct Interrupted {
    signal: i32,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("build cancelled")
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// 128 + the signal number.
    pub(crate) fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(1)
    }
}

/// Watches for SIGINT and SIGTERM while it lives (on the runtime it was installed on).
pub(crate) struct Interrupt {
    token: CancellationToken,
    signal: Arc<AtomicI32>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Interrupt {
    /// Installs the handlers. From now on the signals no longer kill the process by default:
    /// they go through [`Interrupt::token`] until the process exits.
    pub(crate) fn install(runtime: &tokio::runtime::Runtime) -> Result<Self> {
        let _entered = runtime.enter();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let token = CancellationToken::new();
        let received = Arc::new(AtomicI32::new(0));
        let watcher = {
            let (token, received) = (token.clone(), received.clone());
            runtime.spawn(async move {
                loop {
                    let signo = tokio::select! {
                        Some(()) = int.recv() => SIGINT,
                        Some(()) = term.recv() => SIGTERM,
                        else => return,
                    };
                    if received
                        .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                    {
                        eprintln!("cancelled again: exiting now");
                        #[allow(clippy::disallowed_methods)]
                        // The user insists; the store is crash-safe (see the module docs).
                        std::process::exit(128 + signo);
                    }
                    token.cancel();
                }
            })
        };
        Ok(Self {
            token,
            signal: received,
            watcher,
        })
    }

    /// Fires on the first signal.
    pub(crate) fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// `Err(Interrupted)` once a signal arrived: call between the build's phases.
    pub(crate) fn check(&self) -> Result<(), Interrupted> {
        match self.signal.load(Ordering::SeqCst) {
            0 => Ok(()),
            signal => Err(Interrupted { signal }),
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}
