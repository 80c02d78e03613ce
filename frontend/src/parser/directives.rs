//! Parser directives: `# syntax=`, `# escape=` and `# check=` at the top of the file.
//!
//! BuildKit looks at each instruction-start line (newline and leading whitespace removed) until
//! the first one that is not a directive: an instruction, a blank line, an ordinary comment or a
//! comment with an unknown key ends the search for good. A directive line matches
//! `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` where `\s` is Go's ASCII `[\t\n\f\r ]`; the
//! key is case-insensitive. Each directive may appear once.

use std::sync::LazyLock;

use regex::Regex;

use crate::parser::ast::{Directive, Directives};
use crate::parser::error::Error;
use crate::parser::source::Source;

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles or every test fails.
    Regex::new(
        r"^#[\t\n\x0C\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\x0C\r ]*=[\t\n\x0C\r ]*(.+?)[\t\n\x0C\r ]*$",
    )
    .expect("valid regex")
});

/// The directive scanner's state.
#[derive(Debug)]
pub(crate) struct DirectiveParser {
    done: bool,
    /// The directives seen so far.
    pub(crate) directives: Directives,
    /// The escape token in effect.
    pub(crate) escape: char,
}

impl DirectiveParser {
    pub(crate) fn new() -> Self {
        DirectiveParser {
            done: false,
            directives: Directives::default(),
            escape: '\\',
        }
    }

    /// Looks at one instruction-start line (`line` starts at decoded offset `at`). Returns
    /// whether it was a directive.
    pub(crate) fn parse_line(
        &mut self,
        source: &Source,
        line: &str,
        at: usize,
    ) -> Result<bool, Error> {
        if self.done {
            return Ok(false);
        }
        let Some(caps) = DIRECTIVE.captures(line) else {
            self.done = true;
            return Ok(false);
        };
        let (Some(key), Some(value)) = (caps.get(1), caps.get(2)) else {
            self.done = true;
            return Ok(false);
        };
        let name = key.as_str().to_ascii_lowercase();
        let slot = match name.as_str() {
            "syntax" => &mut self.directives.syntax,
            "escape" => &mut self.directives.escape,
            "check" => &mut self.directives.check,
            _ => {
                self.done = true;
                return Ok(false);
            }
        };
        let line_span = source.span(at, at + line.len());
        if slot.is_some() {
            return Err(Error::RepeatedDirective {
                name,
                span: line_span,
            });
        }
        let value_span = source.span(at + value.start(), at + value.end());
        *slot = Some(Directive {
            value: value.as_str().to_string(),
            span: line_span,
        });
        if name == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(Error::InvalidEscapeToken {
                        token: other.to_string(),
                        span: value_span,
                    });
                }
            };
        }
        Ok(true)
    }
}
