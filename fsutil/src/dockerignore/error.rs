//! Errors from reading, compiling and walking with `.dockerignore` patterns.
//!
//! Each message is complete on its own (inner errors are part of the text rather than a
//! `source()` chain), so printing an [`Error`] once is enough.

use std::path::PathBuf;

/// Everything that can go wrong in [`super`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pattern of just `!`: an exception that re-includes nothing. patternmatcher rejects it
    /// with this exact message.
    #[error("illegal exclusion pattern: \"!\"")]
    EmptyException,

    /// The pattern is not valid `filepath.Match` syntax (patternmatcher's `ErrBadPattern`).
    #[error("syntax error in pattern {pattern:?}: {kind}")]
    Syntax {
        /// The cleaned pattern, without its leading `!`.
        pattern: String,
        /// What is wrong with it.
        kind: SyntaxError,
    },

    /// The pattern is valid glob syntax, but the Go regular expression patternmatcher builds
    /// from it is not valid (patternmatcher reports this as `ErrBadPattern` when the pattern is
    /// first used; dray reports it up front). Happens with escapes such as `\y`, which Go's
    /// regexp rejects.
    #[error(
        "pattern {pattern:?} becomes the regular expression {regex:?}, which is invalid: {kind}"
    )]
    Regex {
        /// The cleaned pattern, without its leading `!`.
        pattern: String,
        /// The regular expression patternmatcher builds, in Go syntax.
        regex: String,
        /// Why it does not compile.
        kind: RegexError,
    },

    /// An error in a `.dockerignore` file, at a 1-based line number.
    #[error("line {line}: {error}")]
    AtLine {
        /// 1-based line number in the ignore file.
        line: usize,
        /// The error for the pattern on that line.
        error: Box<Error>,
    },

    /// Reading the directory tree failed during [`super::walk`].
    #[error("walking {}: {error}", path.display())]
    Walk {
        /// The path being read, if walkdir knows it.
        path: PathBuf,
        /// The underlying error.
        error: walkdir::Error,
    },

    /// A file name under the context is not UTF-8, so it cannot be matched against patterns
    /// (BuildKit's walker works on Go strings, which dray represents as `str`).
    #[error("{}: file name is not valid UTF-8", path.display())]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
}

impl Error {
    /// The 1-based line number, if this error came from a line of an ignore file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::AtLine { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Why a pattern is not valid `filepath.Match` syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// A `[` class without its closing `]` (e.g. `[a`, `[`, `[a-b`).
    #[error("unterminated character class")]
    UnterminatedClass,
    /// A `-` or `]` where a class character was expected (e.g. `[]`, `[-a]`, `[a-]`).
    #[error("unexpected {found:?} in character class")]
    MisplacedClassChar {
        /// The character found.
        found: char,
    },
    /// A `\` at the end of the pattern.
    #[error("trailing backslash")]
    TrailingBackslash,
}

/// Why the Go regular expression built from a pattern does not compile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegexError {
    /// An escape Go's regexp rejects, such as `\y` or `\8`.
    #[error("invalid escape sequence {escape:?}")]
    InvalidEscape {
        /// The escape, including its backslash.
        escape: String,
    },
    /// An escape Go accepts but dray does not translate (`\p{..}`, `\P{..}`), rejected rather
    /// than risk matching differently.
    #[error("escape sequence {escape:?} is not supported")]
    UnsupportedEscape {
        /// The escape, including its backslash.
        escape: String,
    },
    /// A `[:name:]` class with a name Go does not know.
    #[error("invalid character class range {class:?}")]
    UnknownClassName {
        /// The whole `[:name:]` text.
        class: String,
    },
    /// A range whose end is before its start, e.g. `[z-a]`.
    #[error("invalid character class range {lo:?}-{hi:?}")]
    BadRange {
        /// Start of the range.
        lo: char,
        /// End of the range.
        hi: char,
    },
    /// A class without its `]`.
    #[error("missing closing ]")]
    MissingBracket,
    /// A `(` without its `)`.
    #[error("missing closing )")]
    MissingParen,
    /// A `)` without its `(`.
    #[error("unexpected )")]
    UnexpectedParen,
    /// A repetition operator with nothing to repeat.
    #[error("missing argument to repetition operator {op:?}")]
    MissingRepeatArgument {
        /// The operator.
        op: char,
    },
    /// A repetition operator applied to a repetition, e.g. `**`.
    #[error("invalid nested repetition operator")]
    NestedRepetition,
    /// The translated expression was rejected by the `regex` crate.
    #[error("{0}")]
    Compile(regex::Error),
}
