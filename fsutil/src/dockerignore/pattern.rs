//! One compiled pattern: patternmatcher's `Pattern`.
//!
//! patternmatcher sorts each pattern into one of four kinds while turning it into a Go regular
//! expression, and only the last kind actually uses the expression:
//!
//! | kind   | when                                                   | match                                   |
//! |--------|--------------------------------------------------------|-----------------------------------------|
//! | exact  | no `*`, `?`, `[`, `]` or `\`                           | `path == pattern`                       |
//! | prefix | ends in `**`, nothing special before it                 | `path` starts with the pattern minus `**` |
//! | suffix | starts with `**`, nothing special after it             | `path` ends with the pattern minus `**`, or `**/x` and `path == x` |
//! | regex  | anything else                                          | the regular expression                  |
//!
//! The kinds are not just an optimisation: `**foo` as a suffix matches `barfoo`, whereas the
//! regular expression for the same `**` would need `foo` to start a path element. dray keeps
//! the kinds so such patterns behave exactly as in docker.
//!
//! The expression itself: `^` + … + `$`, where `*` is `[^/]*`, `?` is `[^/]`, `**` (eating one
//! following `/`) is `(.*/)?`, or `.*` at the very end; `.+()|{}$` are escaped; `\x` is copied as
//! `\x`; everything else, including `[`, `]` and `^`, is copied as is.

use regex::Regex;

use super::error::Error;
use super::{glob, goregex};

/// A compiled pattern, as it appears in [`super::Patterns::patterns`].
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exception: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// The prefix (the pattern without its trailing `**`).
    Prefix(String),
    /// The suffix (the pattern without its leading `**`).
    Suffix(String),
    Regex(Regex),
}

impl Pattern {
    /// Compiles one entry of the pattern list as `patternmatcher.New` does: trims whitespace,
    /// cleans, takes a leading `!` as an exception, checks `filepath.Match` syntax and builds
    /// the matcher. Returns `None` for an entry that is blank after trimming.
    pub(crate) fn new(entry: &str) -> Result<Option<Pattern>, Error> {
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        // patternmatcher cleans *before* looking at `!`, so `!a/..` becomes `.` (not an
        // exception) and `!/` becomes `!`; the part after `!` is not cleaned again.
        let cleaned = super::clean::clean(trimmed);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(Error::EmptyException),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        glob::check(&text).map_err(|kind| Error::Syntax {
            pattern: text.clone(),
            kind,
        })?;
        let kind = compile(&text)?;
        Ok(Some(Pattern {
            text,
            exception,
            kind,
        }))
    }

    /// The cleaned pattern, without the `!` of an exception (patternmatcher's `String()`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is an exception (`!pattern`), which re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// Whether `path` itself (not its parents) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Regex(regex) => regex.is_match(path),
        }
    }

    /// Whether `path` or one of its parent directories matches (the per-pattern step of
    /// `MatchesOrParentMatches`).
    pub(crate) fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let parent = super::clean::dir(path);
        if parent == "." {
            return false;
        }
        // Every prefix of the parent that ends at an element boundary.
        parent
            .match_indices('/')
            .map(|(slash, _)| &parent[..slash])
            .chain(std::iter::once(parent.as_str()))
            .any(|ancestor| self.matches(ancestor))
    }
}

impl std::fmt::Display for Pattern {
    /// The pattern as it would be written in a `.dockerignore`: `!` first for an exception.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.exception {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// patternmatcher's `compile`: decides the kind and, for the regex kind, builds the Go
/// expression and translates it.
fn compile(text: &str) -> Result<Kind, Error> {
    let (detected, go) = go_regex(text);
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(text[..text.len() - 2].to_owned()),
        Detected::Suffix => Kind::Suffix(text[2..].to_owned()),
        Detected::Regex => {
            let invalid = |kind| Error::Regex {
                pattern: text.to_owned(),
                regex: go.clone(),
                kind,
            };
            let rust = goregex::translate(&go).map_err(invalid)?;
            let regex =
                Regex::new(&rust).map_err(|e| invalid(super::error::RegexError::Compile(e)))?;
            Kind::Regex(regex)
        }
    })
}

/// The kind of `text` and the Go expression patternmatcher builds for it (complete with `$`
/// only for the regex kind, the only one that uses it).
fn go_regex(text: &str) -> (Detected, String) {
    let chars: Vec<char> = text.chars().collect();
    let mut go = String::from("^");
    let mut detected = Detected::Exact;
    let mut pos = 0;
    // `iteration` counts loop turns, not characters: a leading `**` (however much it eats) is
    // turn 0, which is what makes it a suffix pattern.
    let mut iteration = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        go.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    go.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                go.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                go.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                go.push('\\');
                go.push(ch);
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    go.push('\\');
                    go.push(next);
                    detected = Detected::Regex;
                }
                None => go.push('\\'),
            },
            '[' | ']' => {
                go.push(ch);
                detected = Detected::Regex;
            }
            _ => go.push(ch),
        }
        iteration += 1;
    }
    if detected == Detected::Regex {
        go.push('$');
    }
    (detected, go)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// patternmatcher's `compileTests` (Unix flavour) and a few more: the kind, and the Go
    /// expression for the regex kind.
    #[test]
    fn go_regex_matches_patternmatcher_compile_tests() {
        let cases: &[(&str, &str, &str)] = &[
            ("*", "regex", r"^[^/]*$"),
            ("file*", "regex", r"^file[^/]*$"),
            ("*file", "regex", r"^[^/]*file$"),
            ("a*/b", "regex", r"^a[^/]*/b$"),
            ("**", "suffix", ""),
            ("**/**", "regex", r"^(.*/)?.*$"),
            ("dir/**", "prefix", ""),
            ("**/dir", "suffix", ""),
            ("**/dir2/*", "regex", r"^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", "regex", r"^(.*/)?dir2/.*$"),
            ("**file", "suffix", ""),
            ("**/file*txt", "regex", r"^(.*/)?file[^/]*txt$"),
            ("**/**/*.txt", "regex", r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ("a[b-d]e", "regex", r"^a[b-d]e$"),
            (".*", "regex", r"^\.[^/]*$"),
            ("abc.def", "exact", ""),
            ("abc?def", "regex", r"^abc[^/]def$"),
            ("**/foo/bar", "suffix", ""),
            ("a(b)c/def", "exact", ""),
            ("a.|)$(}+{bc", "exact", ""),
            ("foo**", "prefix", ""),
            ("**/foo/**", "regex", r"^(.*/)?foo/.*$"),
            (r"a\b", "regex", r"^a\b$"),
            ("a]", "regex", r"^a]$"),
            ("[*]", "regex", r"^[[^/]*]$"),
        ];
        for &(text, want_kind, want_regex) in cases {
            let (detected, go) = go_regex(text);
            let kind = match detected {
                Detected::Exact => "exact",
                Detected::Prefix => "prefix",
                Detected::Suffix => "suffix",
                Detected::Regex => "regex",
            };
            assert_eq!(kind, want_kind, "kind of {text:?}");
            if detected == Detected::Regex {
                assert_eq!(go, want_regex, "regex of {text:?}");
            }
            compile(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
    }
}
