//! Parse errors.
//!
//! Every variant carries a [`Span`] into the original source bytes so that the binary can print
//! the file, line and column with a caret. Messages are BuildKit's own wording wherever BuildKit
//! has one (some of those start with an uppercase word, e.g. `ENV must have two arguments`);
//! dray's own messages start lowercase and have no trailing period.

use crate::parser::dump::quote;
use crate::span::Span;

/// Why [`parse`](crate::parser::parse) rejected a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file holds no instruction: it is empty, or only comments, directives and blank lines.
    #[error("file with no instructions")]
    NoInstructions {
        /// The end of the file.
        span: Span,
    },
    /// A physical line does not fit BuildKit's 64 KiB line buffer.
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong {
        /// The offending line, without its newline.
        span: Span,
    },
    /// A parser directive (`# escape=`, `# syntax=`, `# check=`) appears twice.
    #[error("only one {name} parser directive can be used")]
    RepeatedDirective {
        /// The directive key, lowercased.
        name: String,
        /// The second occurrence.
        span: Span,
    },
    /// `# escape=` names something other than `` ` `` or `\`.
    #[error("invalid escape token '{token}' does not match ` or \\")]
    InvalidEscapeToken {
        /// The rejected value.
        token: String,
        /// The directive's value.
        span: Span,
    },
    /// `ENV`/`LABEL` in the legacy `KEY value` form with no value.
    #[error("{keyword} must have two arguments")]
    MissingValue {
        /// `ENV` or `LABEL` (BuildKit's spelling, uppercase).
        keyword: &'static str,
        /// The instruction.
        span: Span,
    },
    /// `ENV`/`LABEL` in the `k=v` form with a word that has no `=`.
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", quote(.word))]
    MissingEquals {
        /// The word without `=`.
        word: String,
        /// Where the word is.
        span: Span,
    },
    /// A JSON (exec form) array holds something other than strings.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray {
        /// The first element that is not a string.
        span: Span,
    },
    /// A heredoc's body runs to the end of the file without its terminator line.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc {
        /// The heredoc's delimiter word, quotes removed.
        name: String,
        /// The `<<WORD` in the instruction line.
        span: Span,
    },
    /// A heredoc delimiter word that BuildKit's shell lexer cannot process.
    #[error("failed to process {}: {reason}", quote(.word))]
    HeredocWord {
        /// The text after `<<`.
        word: String,
        /// What the lexer tripped over.
        reason: LexError,
        /// The `<<WORD` in the instruction line.
        span: Span,
    },
    /// `ONBUILD ONBUILD ...` nested deeper than dray supports (BuildKit rejects any nesting
    /// one layer later; dray stops early so that the recursive tree stays shallow).
    #[error("too many nested ONBUILD instructions (more than {max})")]
    OnbuildTooDeep {
        /// The nesting limit.
        max: usize,
        /// The innermost ONBUILD that was refused.
        span: Span,
    },
}

impl Error {
    /// Where in the original source bytes the problem is.
    pub fn span(&self) -> Span {
        match self {
            Error::NoInstructions { span }
            | Error::LineTooLong { span }
            | Error::RepeatedDirective { span, .. }
            | Error::InvalidEscapeToken { span, .. }
            | Error::MissingValue { span, .. }
            | Error::MissingEquals { span, .. }
            | Error::NotStringArray { span }
            | Error::UnterminatedHeredoc { span, .. }
            | Error::HeredocWord { span, .. }
            | Error::OnbuildTooDeep { span, .. } => *span,
        }
    }
}

/// Why BuildKit's shell lexer gave up on a heredoc delimiter word (its own wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// `'...` with no closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// `"...` with no closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${...` with no closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}` and friends.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${name` followed by something that is not a known operator.
    #[error("missing ':' in substitution")]
    MissingColon,
    /// `${name:X...}` with an unknown modifier `X`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(char),
    /// Nesting of `${...}` deeper than the lexer follows.
    #[error("substitution nested too deeply")]
    TooDeep,
    /// Lexing the word with and without quote removal gave different word counts.
    #[error("internal lexing of heredoc produced inconsistent results")]
    Inconsistent,
}
