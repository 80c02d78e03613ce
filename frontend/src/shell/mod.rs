//! Shell-word processing: quote removal, escapes, `$VAR` / `${VAR...}` expansion and word
//! splitting, behaving exactly like BuildKit's `frontend/dockerfile/shell/lex.go`.
//!
//! BuildKit applies this to the arguments of `ENV`, `ARG`, `LABEL`, `FROM`, `COPY`, `ADD`,
//! `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `STOPSIGNAL` (and `ONBUILD` wrapping them), never to
//! `RUN`/`CMD`/`ENTRYPOINT`, whose text the container's shell sees unexpanded.
//!
//! # Design
//!
//! A [`Lexer`] is a small `Copy` value: the escape token plus BuildKit's optional modes, set with
//! immutable builder methods. Each call runs one left-to-right pass over the word (see
//! `expand.rs`) that yields the processed string *and* the split words together, because
//! splitting depends on where each character came from: unquoted literal text and unquoted
//! expansions split on whitespace, quoted text and escaped characters do not. Nested words
//! (`${a:-$b}`) recurse into the same loop, stopping at `}` or `/`. Shell patterns are compiled
//! into a small token list and matched with a Pike VM that reproduces Go's leftmost-first regex
//! semantics (`pattern.rs`); names are classified with Go's Unicode categories (`chars.rs`).
//!
//! Where BuildKit's behaviour is odd it is reproduced, not fixed: it is what users' Dockerfiles
//! already rely on. The oddities are listed in the operator table and below. The one deliberate
//! difference: `${...}` may nest at most 64 levels deep ([`Error::TooDeep`]), because BuildKit's
//! recursion runs on Go's growable stacks and ours would overflow a fixed one.
//!
//! # Syntax
//!
//! | syntax | result |
//! |---|---|
//! | `'text'` | `text` literally; no escapes, no expansion |
//! | `"text"` | `$` expands; escape token escapes only `"`, `$` and itself, otherwise stays |
//! | `\c` (unquoted) | `c` literally; a trailing lone escape is dropped |
//! | `$name`, `${name}` | the value, or empty when unset; names are case-sensitive |
//! | `$1`, `$99`, `$@ $* $# $? $- $$ $! $0` | looked up like any name, so empty in practice |
//! | `$` + anything else | a literal `$` |
//! | `${name:-word}` / `${name-word}` | `word` if `name` is unset or empty / unset, else the value |
//! | `${name:+word}` / `${name+word}` | `word` if `name` is set and non-empty / set, else empty |
//! | `${name:?msg}` / `${name?msg}` | error `name: msg` if unset or empty / unset, else the value |
//! | `${name#pat}` / `${name##pat}` | value without its shortest / longest prefix matching `pat` |
//! | `${name%pat}` / `${name%%pat}` | value without its shortest / longest suffix matching `pat` |
//! | `${name/pat/rep}` | first (leftmost, longest) match of `pat` replaced by `rep`, literally |
//! | `${name//pat/rep}` | every match replaced; `rep` is a Go template (`$0` = the match) |
//!
//! `word`, `pat` and `rep` are processed themselves (nested expansions, quotes, escapes), but
//! `pat` and `rep` keep their escape characters, so `\}` in `rep` stays `\}` and a quoted `*` in
//! `pat` is still a wildcard. Patterns
//! know `*`, `?` and the escapes `\*`, `\?`, `\\`, `\}`, `\/`; any other escape is an error, and
//! `[...]` is literal text (BuildKit has no bracket expressions). Wildcards do not match `\n`.
//! `${name:#pat}` and `${name:%pat}` act like `#` / `%`; `/#` and `/%` are not anchors, `#` and
//! `%` are then literal pattern text. `${name//pat}` (no second `/`) is an error. Errors:
//! `${}`, `${:..}`, `${{..`, a missing `}`, `${name:=w}` and other unknown modifiers, `${#name}`.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use dray_frontend::shell::Lexer;
//!
//! let env = BTreeMap::from([("FILE".to_string(), "/src/app.tar.gz".to_string())]);
//! let lexer = Lexer::new('\\');
//! assert_eq!(lexer.process_word("${FILE##*/}", &env)?, "app.tar.gz");
//! assert_eq!(lexer.process_word(r#""${FILE%%.*}" '$FILE'"#, &env)?, "/src/app $FILE");
//! assert_eq!(lexer.process_words("a\\ b ${NOPE:-c d}", &env)?, ["a b", "c", "d"]);
//! let expansion = lexer.process_word_with_matches("$FILE$NOPE", &env)?;
//! assert!(expansion.matched.contains("FILE") && expansion.unmatched.contains("NOPE"));
//! assert_eq!(lexer.process_word("${NOPE:?required}", &env).unwrap_err().offset(), 0);
//! # Ok::<(), dray_frontend::shell::Error>(())
//! ```
//!
//! # Modes
//!
//! [`Lexer::raw_quotes`], [`Lexer::raw_escapes`], [`Lexer::skip_unset_env`] and
//! [`Lexer::skip_process_quotes`] mirror BuildKit's `RawQuotes`, `RawEscapes`, `SkipUnsetEnv`
//! and `SkipProcessQuotes`, which the converter uses for heredoc bodies and `ONBUILD` triggers.

mod chars;
mod error;
mod expand;
mod pattern;
#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};

pub use error::Error;

use expand::Processor;

/// Where variable values come from.
///
/// A name that is absent is *unset*; a name mapped to `""` is *set but empty* (the distinction
/// matters for `${name-word}` versus `${name:-word}`).
pub trait Env {
    /// The value of `name`, compared case-sensitively.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<K, V> Env for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<K, V, S> Env for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref)
    }
}

/// A list of `(name, value)` pairs in definition order: a later entry wins, like repeated
/// `ENV` instructions.
impl<K, V> Env for [(K, V)]
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref())
    }
}

/// Same as the slice implementation: a later entry wins.
impl<K, V> Env for Vec<(K, V)>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// Same as the slice implementation: a later entry wins.
impl<K, V, const N: usize> Env for [(K, V); N]
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// The shell-word lexer: an escape token plus BuildKit's optional processing modes.
///
/// Cheap to copy; the builder methods return a new value and never change the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
    skip_process_quotes: bool,
}

impl Default for Lexer {
    /// A lexer with the default escape token `\`.
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape token: `\` by default, or `` ` `` after an
    /// `# escape=`` ` directive (useful for Windows paths). All modes are off.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// The escape token.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`); their contents are still
    /// processed as quoted text.
    pub fn raw_quotes(self, on: bool) -> Lexer {
        Lexer {
            raw_quotes: on,
            ..self
        }
    }

    /// Keep escape tokens in the output (BuildKit `RawEscapes`); the escaped character is still
    /// taken literally.
    pub fn raw_escapes(self, on: bool) -> Lexer {
        Lexer {
            raw_escapes: on,
            ..self
        }
    }

    /// Leave references to unset variables as written, `$name` / `${name...}`, instead of
    /// expanding them (BuildKit `SkipUnsetEnv`). `${name?msg}` then does not fail either.
    pub fn skip_unset_env(self, on: bool) -> Lexer {
        Lexer {
            skip_unset_env: on,
            ..self
        }
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit `SkipProcessQuotes`).
    pub fn skip_process_quotes(self, on: bool) -> Lexer {
        Lexer {
            skip_process_quotes: on,
            ..self
        }
    }

    /// Processes `word` as a single word: quotes removed, escapes applied, variables expanded,
    /// whitespace kept. BuildKit's `ProcessWord`.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, Error> {
        Ok(Processor::new(*self, word, env).run()?.value)
    }

    /// Expands `word` and splits it into words on unquoted whitespace, including whitespace
    /// that comes from an unquoted expansion (`$v` with `v="a b"` gives two words, `"$v"`
    /// one). Empty words are dropped. BuildKit's `ProcessWords`.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, Error> {
        Ok(Processor::new(*self, word, env).run()?.words)
    }

    /// Like [`Lexer::process_word`], and also reports which variable names the word referenced,
    /// split by whether they were set. BuildKit uses this for its unused-build-arg and
    /// undefined-variable warnings. Every name looked up counts, including ones in a branch
    /// that was not taken (`${A:-$B}` reports `B` even when `A` is set).
    pub fn process_word_with_matches(&self, word: &str, env: &dyn Env) -> Result<Expansion, Error> {
        let output = Processor::new(*self, word, env).run()?;
        Ok(Expansion {
            value: output.value,
            matched: output.matched,
            unmatched: output.unmatched,
        })
    }
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The processed word.
    pub value: String,
    /// Names that were referenced and set (possibly to the empty string).
    pub matched: BTreeSet<String>,
    /// Names that were referenced and unset.
    pub unmatched: BTreeSet<String>,
}
