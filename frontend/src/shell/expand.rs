//! The word processor: one left-to-right pass over the word, as BuildKit's `shellWord`.
//!
//! The pass produces the processed string and, at the top level, the list of words at the same
//! time. Nested text (the `word` of `${name:-word}`, patterns, replacements) is processed by a
//! recursive call of the same loop that stops at `}` or `/` instead of at the end.
//!
//! BuildKit's "raw escapes" flag is dynamically scoped: patterns (`#`, `%`, `/`) are read with
//! escapes kept so the pattern compiler can tell `\*` from `*`, and any nested `${x:-...}` inside
//! a pattern switches it off again for its own word. [`Processor::stop_on`] saves and restores it
//! the same way.

use std::collections::BTreeSet;

use super::chars::{is_digit, is_name_char, is_space};
use super::pattern::{self, PatternError};
use super::{Env, Error, Lexer};

/// Reads characters from the word, tracking the byte offset for error messages.
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str) -> Self {
        // Go's `text/scanner`, which BuildKit reads the word with, skips a leading BOM.
        let pos = if src.starts_with('\u{FEFF}') {
            '\u{FEFF}'.len_utf8()
        } else {
            0
        };
        Scanner { src, pos }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }
}

/// Word splitting state (BuildKit's `wordsStruct`): characters from unquoted, unescaped text and
/// from unquoted expansions split on whitespace; everything else is added raw. Empty words are
/// never emitted.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) {
            if !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
            }
        } else {
            self.current.push(ch);
        }
    }

    fn add_str(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
    }

    fn add_raw_str(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

/// What [`Processor::run`] produces.
pub(crate) struct Output {
    pub(crate) value: String,
    pub(crate) words: Vec<String>,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

/// One processing run over one word.
pub(crate) struct Processor<'a> {
    lexer: Lexer,
    env: &'a dyn Env,
    scanner: Scanner<'a>,
    raw_escapes: bool,
    /// How many `${` the scanner is inside.
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// How deeply `${...}` may nest. BuildKit has no limit (Go stacks grow); ours is a fixed stack,
/// so absurd nesting is refused with [`Error::TooDeep`] instead of overflowing it. Real
/// Dockerfiles nest two or three levels.
pub(crate) const MAX_NESTING: usize = 64;

/// The terminator of a nested [`Processor::stop_on`] call.
type Stop = Option<char>;

impl<'a> Processor<'a> {
    pub(crate) fn new(lexer: Lexer, word: &'a str, env: &'a dyn Env) -> Self {
        Processor {
            lexer,
            env,
            scanner: Scanner::new(word),
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    pub(crate) fn run(mut self) -> Result<Output, Error> {
        let mut words = Words::default();
        let value = self.stop_on(None, self.lexer.raw_escapes, Some(&mut words))?;
        Ok(Output {
            value,
            words: words.finish(),
            matched: self.matched,
            unmatched: self.unmatched,
        })
    }

    /// Processes up to `stop` (consumed) or the end of the word (`stop == None`), with
    /// `raw_escapes` in effect for the duration. Only the top level collects `words`.
    fn stop_on(
        &mut self,
        stop: Stop,
        raw_escapes: bool,
        words: Option<&mut Words>,
    ) -> Result<String, Error> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop, words);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(
        &mut self,
        stop: Stop,
        mut words: Option<&mut Words>,
    ) -> Result<String, Error> {
        let mut result = String::new();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.scanner.peek() {
            if stop == Some(ch) {
                self.scanner.next();
                return Ok(result);
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '\'' if quotes => Some(self.single_quote()?),
                '"' if quotes => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(text) = special {
                result.push_str(&text);
                if let Some(words) = words.as_deref_mut() {
                    // Unquoted expansions split; quoted strings never do.
                    if ch == '$' {
                        words.add_str(&text);
                    } else {
                        words.add_raw_str(&text);
                    }
                }
                continue;
            }
            self.scanner.next();
            let mut ch = ch;
            if ch == self.lexer.escape {
                if self.raw_escapes {
                    result.push(ch);
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_char(ch);
                    }
                }
                // The escape token escapes the next character; a trailing one is dropped.
                let Some(escaped) = self.scanner.next() else {
                    break;
                };
                ch = escaped;
                if let Some(words) = words.as_deref_mut() {
                    words.add_raw_char(ch);
                }
            } else if let Some(words) = words.as_deref_mut() {
                words.add_char(ch);
            }
            result.push(ch);
        }
        match stop {
            // Callers turn this into `MissingBrace`/`MissingSlash` at the `$`; the offset here
            // is only a fallback.
            Some(_) => Err(Error::MissingBrace {
                offset: self.scanner.pos,
            }),
            None => Ok(result),
        }
    }

    /// `'...'`: everything literal up to the next `'`.
    fn single_quote(&mut self) -> Result<String, Error> {
        let offset = self.scanner.pos;
        let mut result = String::new();
        let open = self.scanner.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.scanner.next() {
                None => return Err(Error::UnterminatedSingleQuote { offset }),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: `$` expands; the escape token escapes only `"`, `$` and itself and is otherwise
    /// kept (BuildKit does not treat a backtick or newline specially here).
    fn double_quote(&mut self) -> Result<String, Error> {
        let offset = self.scanner.pos;
        let mut result = String::new();
        let open = self.scanner.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.scanner.peek() {
                None => return Err(Error::UnterminatedDoubleQuote { offset }),
                Some('"') => {
                    self.scanner.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.scanner.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.scanner.peek() {
                            // A trailing escape is dropped (the quote is unterminated anyway).
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.scanner.next();
                                ch = next;
                            }
                            // Not escapable: the escape token stays (twice with raw escapes,
                            // exactly as BuildKit writes it).
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// A `$` outside single quotes.
    fn dollar(&mut self) -> Result<String, Error> {
        let start = self.scanner.pos;
        self.scanner.next();

        if self.scanner.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.scanner.next();
        // `${...}` is the only construct that recurses (through its nested words).
        if self.depth >= MAX_NESTING {
            return Err(Error::TooDeep {
                limit: MAX_NESTING,
                offset: start,
            });
        }
        self.depth += 1;
        let result = self.braced(start);
        self.depth -= 1;
        result
    }

    /// `${...}` after the `{`; `start` is the offset of the `$`.
    fn braced(&mut self, start: usize) -> Result<String, Error> {
        match self.scanner.peek() {
            None => return Err(Error::MissingBrace { offset: start }),
            Some('{' | '}' | ':') => return Err(Error::BadSubstitution { offset: start }),
            Some(_) => {}
        }
        let name = self.name();
        let modifier_offset = self.scanner.pos;
        match self.scanner.next() {
            None => Err(Error::MissingBrace { offset: start }),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.scanner.next();
                let mut modifier = String::from(":");
                modifier.extend(op);
                self.modifier(start, modifier_offset, name, op, modifier, true)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(
                start,
                modifier_offset,
                name,
                Some(op),
                op.to_string(),
                false,
            ),
            Some('/') => self.substitute(start, name),
            Some(other) => Err(Error::UnsupportedModifier {
                modifier: other.to_string(),
                offset: modifier_offset,
            }),
        }
    }

    /// `${name<op>word}` after the operator, for `-`, `+`, `?`, `#`, `%` with or without a
    /// leading `:` (`null_is_unset`), and unknown operators after `:` (an error once `word` has
    /// been read, as in BuildKit).
    fn modifier(
        &mut self,
        start: usize,
        modifier_offset: usize,
        name: String,
        op: Option<char>,
        modifier: String,
        null_is_unset: bool,
    ) -> Result<String, Error> {
        let pattern_op = matches!(op, Some('#' | '%'));
        let mut word = self.nested(Some('}'), pattern_op, Error::MissingBrace { offset: start })?;

        let value = self.lookup(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty_or_unset = match &value {
            None => true,
            Some(value) => null_is_unset && value.is_empty(),
        };

        match op {
            Some('-') => Ok(if empty_or_unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if empty_or_unset { String::new() } else { word }),
            Some('?') => {
                if !empty_or_unset {
                    return Ok(value.unwrap_or_default());
                }
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(Error::Required {
                    name,
                    message,
                    offset: start,
                })
            }
            Some(op @ ('#' | '%')) => {
                // `##` / `%%`: longest match; the doubled operator is the word's first char.
                let greedy = word.starts_with(op);
                if greedy {
                    word.remove(0);
                }
                let value = value.unwrap_or_default();
                let trimmed = if op == '%' {
                    pattern::trim_suffix(&word, &value, greedy)
                } else {
                    pattern::trim_prefix(&word, &value, greedy)
                };
                trimmed.map_err(|err| invalid_pattern(err, word, start))
            }
            _ => Err(Error::UnsupportedModifier {
                modifier,
                offset: modifier_offset,
            }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}` after the first `/`.
    fn substitute(&mut self, start: usize, name: String) -> Result<String, Error> {
        let all = self.scanner.peek() == Some('/');
        if all {
            self.scanner.next();
        }
        let pattern = self.nested(Some('/'), true, Error::MissingSlash { offset: start })?;
        let replacement = self.nested(Some('}'), true, Error::MissingBrace { offset: start })?;

        let value = self.lookup(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            // BuildKit writes a single `/` back even for `//`.
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        pattern::replace(&pattern, &value.unwrap_or_default(), &replacement, all)
            .map_err(|err| invalid_pattern(err, pattern, start))
    }

    /// Processes nested text up to `stop`. Any failure that ran into the end of the word is
    /// reported as `at_end` (BuildKit: "missing '}'"), other failures as they are.
    fn nested(&mut self, stop: Stop, raw_escapes: bool, at_end: Error) -> Result<String, Error> {
        self.stop_on(stop, raw_escapes, None)
            .map_err(|err| if self.scanner.at_end() { at_end } else { err })
    }

    /// A parameter name: all digits (positional), one special character, or letters, digits
    /// and `_`. Empty when none of these follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.scanner.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.scanner.peek().filter(|&ch| is_digit(ch)) {
                    self.scanner.next();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.scanner.next();
                name.push(ch);
                return name;
            }
            if !is_name_char(ch) {
                break;
            }
            self.scanner.next();
            name.push(ch);
        }
        name
    }

    /// Looks `name` up and records it as matched or unmatched.
    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(value) => {
                self.matched.insert(name.to_string());
                Some(value.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }
}

/// POSIX special parameters (`$@ $* $# $? $- $$ $! $0`); Dockerfiles never set them.
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn invalid_pattern(err: PatternError, pattern: String, offset: usize) -> Error {
    Error::InvalidPattern {
        pattern,
        escaped: err.escaped,
        offset,
    }
}
