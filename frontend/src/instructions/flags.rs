//! Instruction flags (`--name=value`), as BuildKit's `BFlags`.
//!
//! Each instruction declares the flags it accepts and their kind; [`parse_flags`] then checks the
//! flags the parser found against that declaration:
//!
//! * `--name=value` sets a value flag; `--name` alone is an error for it
//!   (`missing a value on flag: name`);
//! * a boolean flag is `--name`, `--name=true` or `--name=false` (case-insensitive); `--name=` is
//!   an error;
//! * only [`FlagKind::Strings`] flags (`--mount`, `--exclude`) may repeat;
//! * an undeclared name is `unknown flag: name`, with the flag's span.

use std::collections::BTreeMap;

use crate::parser::Flag;
use crate::span::Span;

use super::error::Error;
use super::suggest::did_you_mean;

/// What a declared flag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name[=true|false]`.
    Bool,
    /// `--name=value`, at most once.
    String,
    /// `--name=value`, any number of times.
    Strings,
}

/// One flag occurrence after parsing: its value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagValue {
    /// The value (`true`/`false` for booleans).
    pub(crate) value: String,
    /// The whole flag in the source.
    pub(crate) span: Span,
}

/// The flags of one instruction, checked against its declaration.
#[derive(Debug, Default)]
pub(crate) struct ParsedFlags {
    values: BTreeMap<&'static str, Vec<FlagValue>>,
}

impl ParsedFlags {
    /// The value of a string flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<&FlagValue> {
        self.values.get(name).and_then(|v| v.first())
    }

    /// A boolean flag: `None` when not given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v.value == "true")
    }

    /// Every value of a repeatable flag, in order.
    pub(crate) fn strings(&self, name: &str) -> &[FlagValue] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Checks `flags` against the declaration `spec` (name and kind of each accepted flag).
pub(crate) fn parse_flags(
    flags: &[Flag],
    spec: &[(&'static str, FlagKind)],
) -> Result<ParsedFlags, Error> {
    let mut parsed = ParsedFlags::default();
    for flag in flags {
        // The parser only produces words starting with `--`, and drops a bare `--`.
        let text = flag.text.strip_prefix("--").unwrap_or(&flag.text);
        if text.is_empty() {
            break;
        }
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        let Some(&(declared, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(Error::UnknownFlag {
                name: name.to_string(),
                suggestion: did_you_mean(name, spec.iter().map(|(n, _)| *n), true),
                span: flag.span,
            });
        };
        let slot = parsed.values.entry(declared).or_default();
        if !slot.is_empty() && kind != FlagKind::Strings {
            return Err(Error::DuplicateFlag {
                name: name.to_string(),
                span: flag.span,
            });
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some("")) => {
                return Err(Error::MissingFlagValue {
                    name: name.to_string(),
                    span: flag.span,
                });
            }
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                b @ ("true" | "false") => b.to_string(),
                _ => {
                    return Err(Error::InvalidBoolFlag {
                        name: name.to_string(),
                        value: v.to_string(),
                        span: flag.span,
                    });
                }
            },
            (FlagKind::String | FlagKind::Strings, None) => {
                return Err(Error::MissingFlagValue {
                    name: name.to_string(),
                    span: flag.span,
                });
            }
            (FlagKind::String | FlagKind::Strings, Some(v)) => v.to_string(),
        };
        slot.push(FlagValue {
            value,
            span: flag.span,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(texts: &[&str]) -> Vec<Flag> {
        let mut offset = 0;
        texts
            .iter()
            .map(|t| {
                let span = Span::new(offset, offset + t.len());
                offset += t.len() + 1;
                Flag {
                    text: t.to_string(),
                    span,
                }
            })
            .collect()
    }

    const SPEC: &[(&str, FlagKind)] = &[
        ("link", FlagKind::Bool),
        ("from", FlagKind::String),
        ("mount", FlagKind::Strings),
    ];

    #[test]
    fn values_and_booleans() {
        let p = parse_flags(
            &flags(&["--from=a=b", "--link", "--mount=x", "--mount=y"]),
            SPEC,
        )
        .unwrap();
        assert_eq!(p.string("from").unwrap().value, "a=b");
        assert_eq!(p.bool("link"), Some(true));
        let mounts: Vec<_> = p
            .strings("mount")
            .iter()
            .map(|v| v.value.as_str())
            .collect();
        assert_eq!(mounts, ["x", "y"]);
        let p = parse_flags(&flags(&["--link=FALSE"]), SPEC).unwrap();
        assert_eq!(p.bool("link"), Some(false));
        assert_eq!(p.bool("other"), None);
    }

    #[test]
    fn errors_name_the_flag_and_its_span() {
        let err = parse_flags(&flags(&["--link", "--chown=1"]), SPEC).unwrap_err();
        assert_eq!(err.to_string(), "unknown flag: chown");
        assert_eq!(err.span(), Span::new(7, 16));
        let err = parse_flags(&flags(&["--from=a", "--from=b"]), SPEC).unwrap_err();
        assert_eq!(err.to_string(), "duplicate flag specified: from");
        let err = parse_flags(&flags(&["--from"]), SPEC).unwrap_err();
        assert_eq!(err.to_string(), "missing a value on flag: from");
        let err = parse_flags(&flags(&["--link="]), SPEC).unwrap_err();
        assert_eq!(err.to_string(), "missing a value on flag: link");
        let err = parse_flags(&flags(&["--link=yes"]), SPEC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expecting boolean value for flag link, not: yes"
        );
    }
}
