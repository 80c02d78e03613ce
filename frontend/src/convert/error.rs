//! Errors of the converter. Every variant knows where in the Dockerfile it happened.

use dray_llb::{DigestError, ReferenceError};

use crate::span::Span;

/// What an [`ImageResolver`](super::ImageResolver) may fail with (an unreadable store, a
/// corrupt config). "Not found" is not an error: it is `Ok(None)`.
pub type ResolveError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a Dockerfile could not be turned into an op graph and an image config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resolver does not know the image (BuildKit's registry would say "not found").
    #[error(
        "failed to resolve source metadata for {reference}: not found in the local image store (pulling from registries is not supported yet)"
    )]
    ImageNotFound {
        /// The normalized reference, e.g. `docker.io/library/alpine:latest`.
        reference: String,
        /// The FROM (or `--from`, or `--mount from=`) that names it.
        span: Span,
    },
    /// The resolver failed.
    #[error("failed to resolve source metadata for {reference}")]
    ResolveImage {
        /// The normalized reference.
        reference: String,
        /// What went wrong.
        #[source]
        source: ResolveError,
        /// The instruction that names the image.
        span: Span,
    },
    /// A base or `--from` that is not a valid image reference.
    #[error("failed to parse stage name {reference:?}")]
    InvalidReference {
        /// The text, after expansion.
        reference: String,
        /// Why it is not a reference.
        #[source]
        source: ReferenceError,
        /// The instruction that names it.
        span: Span,
    },
    /// `FROM NAME` where `--build-context NAME=DIR` names a local directory: dray builds
    /// stages on images and stages only (`COPY --from=NAME` reads the directory).
    #[error("cannot build on the local build context {name:?}: use it with COPY --from={name}")]
    LocalContextBase {
        /// The named context.
        name: String,
        /// The FROM.
        span: Span,
    },
    /// A platform the op graph cannot carry (it must be `os/arch[/variant]`).
    #[error("invalid platform {platform:?}")]
    InvalidPlatform {
        /// The platform as the stage resolved it.
        platform: String,
        /// The FROM of the stage.
        span: Span,
    },
    /// `COPY --from=<n>` with no stage `n` (BuildKit: `invalid stage index`).
    #[error("invalid stage index {index}")]
    InvalidStageIndex {
        /// The index as written.
        index: String,
        /// The `--from` flag.
        span: Span,
    },
    /// `COPY <url> …`: only ADD downloads.
    #[error("source can't be a URL for COPY")]
    UrlInCopy {
        /// The instruction.
        span: Span,
    },
    /// `COPY <git url>`: only ADD clones.
    #[error("source can't be a git ref for COPY")]
    GitInCopy {
        /// The instruction.
        span: Span,
    },
    /// `ADD <git url>`: git sources are not supported yet.
    #[error("git sources are not supported yet: {source_url}")]
    GitSource {
        /// The source as written.
        source_url: String,
        /// The instruction.
        span: Span,
    },
    /// `--checksum` on COPY, on several sources, or on a local source.
    #[error("{reason}")]
    Checksum {
        /// BuildKit's message: `checksum can't be specified for COPY`, `… for multiple
        /// sources`, `checksum requires HTTP(S) or Git sources`.
        reason: &'static str,
        /// The instruction.
        span: Span,
    },
    /// `--checksum` that is not a digest.
    #[error("invalid checksum {value:?}")]
    InvalidChecksum {
        /// The value as written.
        value: String,
        /// Why it is not a digest.
        #[source]
        source: DigestError,
        /// The instruction.
        span: Span,
    },
    /// A `RUN --mount` whose target resolves to `/`.
    #[error("invalid mount target {target:?}")]
    InvalidMountTarget {
        /// The resolved target.
        target: String,
        /// The `--mount` flag.
        span: Span,
    },
    /// `--mount=type=secret` with neither `id`, `source` nor `target`.
    #[error("invalid secret mount: one of source, target required")]
    SecretWithoutId {
        /// The `--mount` flag.
        span: Span,
    },
    /// A feature the op graph cannot express yet.
    #[error("{what} are not supported yet")]
    Unsupported {
        /// What, in the plural.
        what: &'static str,
        /// The instruction or flag.
        span: Span,
    },
    /// `SOURCE_DATE_EPOCH` that is not a number of seconds.
    #[error("invalid SOURCE_DATE_EPOCH: {value:?}")]
    InvalidSourceDateEpoch {
        /// The value.
        value: String,
        /// The start of the file (the value comes from the command line or a global ARG).
        span: Span,
    },
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume {
        /// The instruction.
        span: Span,
    },
    /// A RUN with heredocs whose command line is not a single shell-form line.
    #[error("parsing produced an invalid run command: {args:?}")]
    InvalidRunHeredoc {
        /// The command line.
        args: Vec<String>,
        /// The instruction.
        span: Span,
    },
    /// An ONBUILD trigger stored in a base image's config that does not parse.
    #[error("invalid ONBUILD trigger {trigger:?} in the config of {reference}")]
    ImageTrigger {
        /// The trigger text.
        trigger: String,
        /// The image.
        reference: String,
        /// Why it does not parse.
        #[source]
        source: Box<crate::Error>,
        /// The FROM of the stage.
        span: Span,
    },
    /// A stage was needed before it was converted (a converter bug: stages come in dependency
    /// order).
    #[error("internal error: stage {index} was used before it was converted")]
    StageNotConverted {
        /// The stage's index in the Dockerfile.
        index: usize,
        /// The instruction that needed it.
        span: Span,
    },
    /// The graph could not be marshaled (a converter bug: the head is always output 0).
    #[error("internal error: the op graph of the target stage could not be marshaled")]
    Marshal {
        /// What went wrong.
        #[source]
        source: dray_llb::MarshalError,
        /// The FROM of the target stage.
        span: Span,
    },
}

impl Error {
    /// Where in the Dockerfile the error is.
    pub fn span(&self) -> Span {
        match self {
            Error::ImageNotFound { span, .. }
            | Error::ResolveImage { span, .. }
            | Error::InvalidReference { span, .. }
            | Error::LocalContextBase { span, .. }
            | Error::InvalidPlatform { span, .. }
            | Error::InvalidStageIndex { span, .. }
            | Error::UrlInCopy { span }
            | Error::GitInCopy { span }
            | Error::GitSource { span, .. }
            | Error::Checksum { span, .. }
            | Error::InvalidChecksum { span, .. }
            | Error::InvalidMountTarget { span, .. }
            | Error::SecretWithoutId { span }
            | Error::Unsupported { span, .. }
            | Error::InvalidSourceDateEpoch { span, .. }
            | Error::EmptyVolume { span }
            | Error::InvalidRunHeredoc { span, .. }
            | Error::ImageTrigger { span, .. }
            | Error::StageNotConverted { span, .. }
            | Error::Marshal { span, .. } => *span,
        }
    }
}
