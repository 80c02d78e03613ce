//! The sandbox's errors. A non-zero exit is not one of them: that is the solver's
//! `OpError::ExitCode`.

use std::path::PathBuf;

/// Why a step could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The init helper could not be started.
    #[error("failed to start the sandbox helper {}", program.display())]
    Spawn {
        /// The helper program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the helper failed.
    #[error("failed to talk to the sandbox helper")]
    Protocol(#[source] std::io::Error),
    /// The helper could not set the sandbox up or start the command.
    #[error("{message}")]
    Setup {
        /// What the helper reported.
        message: String,
    },
    /// The helper exited without reporting (it crashed or was killed).
    #[error("the sandbox helper exited unexpectedly ({status})")]
    HelperDied {
        /// Its exit status.
        status: String,
    },
    /// The step was cancelled (another step failed, or the build was interrupted).
    #[error("the step was cancelled")]
    Cancelled,
}

/// A failure inside the helper, reported to the parent as text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// An OS call failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A required secret or SSH agent was not provided.
    #[error("{what} {id:?} is required but was not provided")]
    MissingSecret {
        /// `secret` or `SSH agent`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The container child failed before exec.
    #[error("{message}")]
    Child {
        /// Its message.
        message: String,
    },
}

impl SetupError {
    pub(crate) fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> SetupError {
        move |source| SetupError::Io { action, source }
    }

    pub(crate) fn os(action: &'static str, e: nix::Error) -> SetupError {
        SetupError::Io {
            action,
            source: std::io::Error::from(e),
        }
    }
}
