//! Errors of stage resolution and variable expansion.

use crate::instructions;
use crate::shell;
use crate::span::Span;

use super::platform::PlatformError;

/// Why an ONBUILD trigger could not be turned back into a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// The parser rejected it.
    #[error("{0}")]
    Parse(#[from] crate::parser::Error),
    /// It holds other than exactly one instruction.
    #[error("onbuild trigger should be a single expression")]
    NotSingle,
}

/// An error resolving the stage graph or expanding an instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value that fails its instruction's check once expanded (EXPOSE, STOPSIGNAL, `--chmod`,
    /// `--mount`).
    #[error(transparent)]
    Instruction(#[from] instructions::Error),
    /// Variable expansion failed (`${v:?msg}` with `v` unset, a bad substitution…).
    #[error("{source}")]
    Expansion {
        /// The word being expanded.
        word: String,
        /// What the lexer reported.
        source: shell::Error,
        /// The instruction.
        span: Span,
    },
    /// A FROM whose base expands to nothing.
    #[error("base name ({base}) should not be blank")]
    BlankBaseName {
        /// The base as written.
        base: String,
        /// The FROM instruction.
        span: Span,
    },
    /// A `--platform` that expands to nothing.
    #[error("empty platform value from expression {expression}")]
    EmptyPlatform {
        /// The flag value as written.
        expression: String,
        /// The flag.
        span: Span,
    },
    /// A `--platform` that is not a platform once expanded.
    #[error("failed to parse platform {expression}: {source}")]
    InvalidPlatform {
        /// The flag value as written.
        expression: String,
        /// What is wrong.
        source: PlatformError,
        /// The flag.
        span: Span,
    },
    /// `--target` names no stage.
    #[error(
        "target stage {target:?} could not be found{} (stages: {})",
        crate::instructions::did_you_mean(target, available.iter().map(String::as_str), true)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default(),
        available.join(", ")
    )]
    TargetNotFound {
        /// The requested target.
        target: String,
        /// The named stages.
        available: Vec<String>,
        /// The start of the file: the target comes from the command line.
        span: Span,
    },
    /// `COPY --from=<n>` with no stage `n`.
    #[error("invalid stage index {index}")]
    InvalidStageIndex {
        /// The index as written.
        index: String,
        /// The `--from` flag.
        span: Span,
    },
    /// `COPY --from=$VAR`: stage references are resolved before expansion.
    #[error(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    CopyFromVariable {
        /// The `--from` flag.
        span: Span,
    },
    /// A stage that copies from itself or takes part in a cycle.
    #[error("circular dependency detected on stage: {stage}")]
    CircularDependency {
        /// The stage.
        stage: String,
        /// The instruction that closes the cycle.
        span: Span,
    },
    /// `COPY --from` a stage defined later in the file.
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    CopyFromLaterStage {
        /// The `--from` value.
        from: String,
        /// The current stage.
        stage: String,
        /// The `--from` flag.
        span: Span,
    },
    /// `RUN --mount=from=` a stage defined later in the file.
    #[error(
        "cannot mount from stage {from:?} to {target:?}, stage needs to be defined before current command"
    )]
    MountFromLaterStage {
        /// The `from=` value.
        from: String,
        /// The mount target.
        target: String,
        /// The `--mount` flag.
        span: Span,
    },
    /// An ONBUILD trigger of a base stage that does not parse as one instruction.
    #[error("invalid ONBUILD trigger {expression:?}: {reason}")]
    OnbuildTrigger {
        /// The trigger text.
        expression: String,
        /// What is wrong.
        reason: TriggerError,
        /// The FROM of the stage running the trigger.
        span: Span,
    },
    /// A Dockerfile without FROM.
    #[error("dockerfile contains no stages to build")]
    NoStages {
        /// The start of the file.
        span: Span,
    },
}

impl Error {
    /// Where in the source the error is.
    pub fn span(&self) -> Span {
        match self {
            Error::Instruction(e) => e.span(),
            Error::Expansion { span, .. }
            | Error::BlankBaseName { span, .. }
            | Error::EmptyPlatform { span, .. }
            | Error::InvalidPlatform { span, .. }
            | Error::TargetNotFound { span, .. }
            | Error::InvalidStageIndex { span, .. }
            | Error::CopyFromVariable { span }
            | Error::CircularDependency { span, .. }
            | Error::CopyFromLaterStage { span, .. }
            | Error::MountFromLaterStage { span, .. }
            | Error::OnbuildTrigger { span, .. }
            | Error::NoStages { span } => *span,
        }
    }
}
