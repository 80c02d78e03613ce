//! Errors: [`SolveError`] for a whole solve, [`OpError`] for what one op hit.
//!
//! Every op failure reaches the caller as [`SolveError::Step`], which names the vertex (digest
//! and progress name) and wraps the [`OpError`] with its own context fields (paths, references).

use std::path::PathBuf;

use dray_llb::Digest;

/// `Result` with [`SolveError`].
pub type Result<T, E = SolveError> = std::result::Result<T, E>;

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SolveError {
    /// The definition is structurally invalid (see [`dray_llb::Definition::validate`]).
    #[error("invalid build definition")]
    Invalid(#[from] dray_llb::ValidateError),

    /// One step failed. The first failing step of a solve is the one reported; the others were
    /// cancelled.
    #[error("step {name} ({vertex}) failed")]
    Step {
        /// The failing vertex.
        vertex: Digest,
        /// Its progress name (the `llb.customname` metadata, or a generated one).
        name: String,
        /// What went wrong.
        #[source]
        source: OpError,
    },

    /// The store could not be used outside of any particular step (taking the lease).
    #[error("the cache store failed")]
    Store(#[source] dray_cache::Error),

    /// The solve was cancelled before any step failed (the caller dropped or cancelled it).
    #[error("the build was cancelled")]
    Cancelled,

    /// A secret given as a value could not be written for the executors.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),

    /// A task of the scheduler panicked or was aborted; this is a bug in dray.
    #[error("internal error: a solver task ended abnormally: {message}")]
    Internal {
        /// What the runtime reported.
        message: String,
    },
}

/// What went wrong inside one op. Wrapped in [`SolveError::Step`], which names the step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No sandbox backend is available, so `RUN` steps cannot run.
    #[error("RUN is not supported yet: the sandbox executor is not built")]
    NoExecutor,

    /// The executor ran the process and it failed.
    #[error("process {args:?} exited with code {code}")]
    ExitCode {
        /// The argv.
        args: Vec<String>,
        /// The exit code.
        code: i32,
        /// The last log lines (at most 20), for the error report.
        tail: Vec<String>,
    },

    /// The executor itself failed (could not set up or start the process).
    #[error("the executor failed")]
    Executor(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// An image the build needs is not in the local store (its manifest was never resolved).
    #[error("image {reference} is not in the local image store")]
    ImageNotFound {
        /// The reference as written in the graph.
        reference: String,
    },

    /// Layer blobs of an image could not be fetched from its registry.
    #[error("image {reference}: fetching its layers failed")]
    Fetch {
        /// The reference.
        reference: String,
        /// The registry's error (names the blob).
        #[source]
        source: crate::fetch::FetchError,
    },

    /// An image's manifest, index or config could not be read.
    #[error("image {reference}: {problem}")]
    BadImage {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        problem: String,
    },

    /// Reading an image from an OCI layout, or unpacking one of its layers, failed.
    #[error("image {reference}")]
    Image {
        /// The reference as written in the graph.
        reference: String,
        /// What failed (the layout, a layer blob, the applier, a diff_id check).
        #[source]
        source: dray_image::Error,
    },

    /// An image layer has no unpacked snapshot in the store, and its blob, to unpack it from,
    /// is not there either (pulling from registries comes later).
    #[error(
        "image {reference}: layer {diff_id} is not unpacked in the store and its blob is missing"
    )]
    LayerNotUnpacked {
        /// The reference.
        reference: String,
        /// The layer's diff ID.
        diff_id: String,
    },

    /// A source scheme or local name this solver cannot serve.
    #[error("source {id} is not supported: {reason}")]
    UnsupportedSource {
        /// The source identifier.
        id: String,
        /// Why.
        reason: &'static str,
    },

    /// A file action with an option this solver does not implement yet.
    #[error("{action}: {option} is not supported yet")]
    UnsupportedFileOption {
        /// The action kind.
        action: &'static str,
        /// The option.
        option: &'static str,
    },

    /// A file action or content hash failed (the error names the path in its filesystem).
    #[error(transparent)]
    Fs(#[from] dray_fsutil::Error),

    /// Writing a step's layer, or filling in a lazy snapshot from its layer, failed.
    #[error(transparent)]
    Layer(#[from] dray_image::Error),
    /// Walking a build context (for what `.dockerignore` hides from a bind mount) failed.
    #[error("failed to list the build context {} for a bind mount", dir.display())]
    ContextWalk {
        /// The context directory.
        dir: PathBuf,
        /// What went wrong (names the path).
        #[source]
        source: dray_fsutil::dockerignore::Error,
    },

    /// A filesystem operation failed.
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

    /// The store failed.
    #[error("the cache store failed")]
    Store(#[from] dray_cache::Error),

    /// A `RUN --mount=type=secret|ssh,required=true` names an id the build was not given.
    /// The message names the id only.
    #[error("{}", missing_secret(kind, id))]
    MissingSecret {
        /// `secret` or `ssh`.
        kind: &'static str,
        /// The id the mount asked for.
        id: String,
    },

    /// A blocking task of the op panicked.
    #[error("internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

fn missing_secret(kind: &str, id: &str) -> String {
    if kind == "ssh" {
        format!("SSH agent {id:?} is required but was not provided (dray build --ssh {id})")
    } else {
        format!(
            "secret {id:?} is required but was not provided (dray build --secret id={id},src=FILE)"
        )
    }
}

impl OpError {
    /// A closure for `map_err` that wraps an I/O error with its action and path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> OpError {
        let path = path.into();
        move |source| OpError::Io {
            action,
            path,
            source,
        }
    }
}
