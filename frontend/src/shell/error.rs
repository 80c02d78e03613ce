//! Errors of shell-word processing.
//!
//! Every variant carries `offset`, the byte offset *within the processed word* where the problem
//! is: the opening quote of an unterminated quoted string, the `$` of a broken `${...}`
//! expansion, or the modifier character BuildKit does not support. The caller (the instruction
//! converter) adds the word's own position in the Dockerfile to build a [`crate::Span`].
//!
//! Messages follow BuildKit's wording where BuildKit's is clear (`bad substitution`,
//! `missing '}'`, `NAME: is not allowed to be unset`), so users searching for a BuildKit error
//! find the same text.

/// Why a word could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `'` without its closing `'`.
    #[error("unterminated single quote")]
    UnterminatedSingleQuote {
        /// Offset of the opening `'`.
        offset: usize,
    },

    /// A `"` without its closing `"`.
    #[error("unterminated double quote")]
    UnterminatedDoubleQuote {
        /// Offset of the opening `"`.
        offset: usize,
    },

    /// A `${` whose `}` never comes (including an error inside it that ran into the end of the
    /// word, which BuildKit reports the same way).
    #[error("syntax error: missing '}}'")]
    MissingBrace {
        /// Offset of the `$` that opens the expansion.
        offset: usize,
    },

    /// `${name/pattern` without the `/` that separates the pattern from the replacement.
    #[error("syntax error: missing '/' in ${{...}}")]
    MissingSlash {
        /// Offset of the `$` that opens the expansion.
        offset: usize,
    },

    /// `${}`, `${{...`, `${:...}`: nothing that can be a parameter name after `${`.
    #[error("syntax error: bad substitution")]
    BadSubstitution {
        /// Offset of the `$` that opens the expansion.
        offset: usize,
    },

    /// A modifier BuildKit does not implement, such as `${name:=word}` (assignment),
    /// `${#name}`-style length or `${name.}`.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier {
        /// The modifier as written, e.g. `:=` or `.`.
        modifier: String,
        /// Offset of the first character of the modifier.
        offset: usize,
    },

    /// The pattern of `${name#pattern}`, `%`, or `/` has an escape other than `\*`, `\?`, `\\`,
    /// `\}` or `\/`.
    #[error("invalid pattern ({pattern}) in substitution: {}", describe_escape(*.escaped))]
    InvalidPattern {
        /// The pattern after expansion (with its escapes kept), as BuildKit matched it.
        pattern: String,
        /// The character after the offending `\`, or `None` for a `\` at the end.
        escaped: Option<char>,
        /// Offset of the `$` that opens the expansion.
        offset: usize,
    },

    /// `${...}` nested more deeply than dray supports (BuildKit has no limit, but no real
    /// Dockerfile comes near it).
    #[error("variable expansions nested more than {limit} levels deep")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Offset of the `$` that opens the expansion one level too deep.
        offset: usize,
    },

    /// `${name?message}` with `name` unset, or `${name:?message}` with `name` unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The parameter name.
        name: String,
        /// The user's message, or BuildKit's default `is not allowed to be unset` /
        /// `is not allowed to be empty`.
        message: String,
        /// Offset of the `$` that opens the expansion.
        offset: usize,
    },
}

fn describe_escape(escaped: Option<char>) -> String {
    match escaped {
        Some(ch) => format!("invalid escape '\\{ch}'"),
        None => "trailing '\\' in pattern".to_string(),
    }
}

impl Error {
    /// The byte offset within the processed word where the problem is.
    pub fn offset(&self) -> usize {
        match self {
            Error::UnterminatedSingleQuote { offset }
            | Error::UnterminatedDoubleQuote { offset }
            | Error::MissingBrace { offset }
            | Error::MissingSlash { offset }
            | Error::BadSubstitution { offset }
            | Error::UnsupportedModifier { offset, .. }
            | Error::InvalidPattern { offset, .. }
            | Error::TooDeep { offset, .. }
            | Error::Required { offset, .. } => *offset,
        }
    }
}
