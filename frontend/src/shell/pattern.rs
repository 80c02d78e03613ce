//! Shell patterns for `${name#p}`, `${name%p}` and `${name/p/r}`, with BuildKit's semantics.
//!
//! BuildKit translates the pattern into a Go regular expression and lets Go's leftmost-first
//! (Perl-like) engine find the match. We compile the same language into a tiny token list and
//! run an equivalent Pike VM, so results agree without depending on a regex translation:
//!
//! | pattern   | BuildKit regex     | meaning here                                   |
//! |-----------|--------------------|------------------------------------------------|
//! | `*`       | `.*` or `.*?`      | any run of characters except `\n`              |
//! | `?`       | `.`                | one character except `\n`                      |
//! | `\*` `\?` `\\` | `\*` `\?` `\\` | the literal character                          |
//! | `\}` `\/` | `\}` `/`           | the literal character (escape needed in `${}`) |
//! | other `\x`| error              | [`PatternError`]                               |
//! | `[`, `]`, anything else | escaped literal | the literal character (no bracket classes) |
//!
//! `*` is greedy for `##`, `%%` and `/`, lazy for `#` and `%`. Like Go's `.`, wildcards never
//! match a newline. A leading U+FEFF is dropped, as Go's `text/scanner` does when BuildKit reads
//! the pattern.
//!
//! Suffix removal reverses the pattern (keeping `\x` pairs together) and the value, then removes
//! a prefix, exactly like BuildKit, which is why `${v%*\}`-style oddities behave the same.
//!
//! In `${name//p/r}` the replacement is a Go `regexp.Expand` template: `$0`/`${0}` is the match,
//! `$$` is `$`, other well-formed `$name` references expand to nothing and malformed ones stay
//! literal. `${name/p/r}` (first match only) inserts `r` literally. Both quirks are BuildKit's.

use super::chars::is_name_char;

/// A pattern escape BuildKit rejects: `\` followed by `escaped` (`None`: end of pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PatternError {
    pub(crate) escaped: Option<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: any character but `\n`.
    Any,
    /// `*`: any run of characters but `\n`. Never two in a row (they are merged, which does
    /// not change leftmost-first results).
    Star,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    /// Compiles `pattern`; `greedy` selects `.*` over `.*?` for `*`.
    pub(crate) fn compile(pattern: &str, greedy: bool) -> Result<Pattern, PatternError> {
        let mut chars = pattern
            .strip_prefix('\u{FEFF}')
            .unwrap_or(pattern)
            .chars()
            .peekable();
        let mut toks = Vec::with_capacity(pattern.len());
        while let Some(ch) = chars.next() {
            let tok = match ch {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                    continue;
                }
                '?' => Tok::Any,
                '\\' => match chars.peek() {
                    // `}` and `/` must be escaped inside `${}`; the escape is not part of the
                    // pattern, the character is read as a literal next time round.
                    Some('}' | '/') => continue,
                    _ => match chars.next() {
                        Some(lit @ ('*' | '?' | '\\')) => Tok::Lit(lit),
                        escaped => return Err(PatternError { escaped }),
                    },
                },
                lit => Tok::Lit(lit),
            };
            toks.push(tok);
        }
        Ok(Pattern { toks, greedy })
    }

    /// The leftmost-first match in `text`, as `(start, end)` character indices.
    ///
    /// With `anchored` the match must start at `from`; otherwise the first start at or after
    /// `from` that matches wins, and among matches at that start the one Go's engine prefers
    /// (longest for greedy, shortest for lazy wildcards).
    fn find(&self, text: &[char], from: usize, anchored: bool) -> Option<(usize, usize)> {
        let n = self.toks.len();
        // `marks[state] == generation` means the state is already queued for this position.
        let mut marks = vec![0usize; n + 1];
        let mut current: Vec<Thread> = Vec::new();
        let mut next: Vec<Thread> = Vec::new();
        let mut found = None;
        for pos in from..=text.len() {
            let generation = pos + 1;
            if found.is_none() && (!anchored || pos == from) {
                // Lowest priority: appended after every thread that started earlier.
                self.add(&mut current, &mut marks, generation, 0, pos);
            }
            if current.is_empty() {
                if found.is_some() || anchored {
                    break;
                }
                continue;
            }
            let ch = text.get(pos).copied();
            next.clear();
            for thread in &current {
                if thread.state == n {
                    // A match: record it and drop every lower-priority thread.
                    found = Some((thread.start, pos));
                    break;
                }
                let advances = match (self.toks[thread.state], ch) {
                    (Tok::Lit(lit), Some(ch)) => lit == ch,
                    (Tok::Any | Tok::Star, Some(ch)) => ch != '\n',
                    (_, None) => false,
                };
                if advances {
                    // A star that consumed a character stays on the star.
                    let to = match self.toks[thread.state] {
                        Tok::Star => thread.state,
                        _ => thread.state + 1,
                    };
                    self.add(&mut next, &mut marks, generation + 1, to, thread.start);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        found
    }

    /// Queues `state` and what it reaches without consuming input, in priority order.
    fn add(
        &self,
        list: &mut Vec<Thread>,
        marks: &mut [usize],
        generation: usize,
        state: usize,
        start: usize,
    ) {
        if marks[state] == generation {
            return;
        }
        marks[state] = generation;
        if self.toks.get(state) != Some(&Tok::Star) {
            list.push(Thread { state, start });
            return;
        }
        // A star either consumes (stays) or is skipped; greedy prefers consuming. The state
        // after a star is never a star, so no further closure is needed.
        let after = state + 1;
        let push_after = |list: &mut Vec<Thread>, marks: &mut [usize]| {
            if marks[after] != generation {
                marks[after] = generation;
                list.push(Thread {
                    state: after,
                    start,
                });
            }
        };
        if self.greedy {
            list.push(Thread { state, start });
            push_after(list, marks);
        } else {
            push_after(list, marks);
            list.push(Thread { state, start });
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Thread {
    state: usize,
    start: usize,
}

/// `${value#pattern}` (`greedy`: `##`): remove the matching prefix, if any.
pub(crate) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, PatternError> {
    let compiled = Pattern::compile(pattern, greedy)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match compiled.find(&chars, 0, true) {
        Some((_, end)) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${value%pattern}` (`greedy`: `%%`): remove the matching suffix, if any.
///
/// Like BuildKit, this reverses the pattern and the value and removes a prefix, since a
/// leftmost engine cannot find the shortest rightmost match directly.
pub(crate) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, PatternError> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order: `a\*c` becomes `c\*a`. A `\`
/// in last position has nothing to pair with and simply moves to the front.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    // Split into units front to back (`\x` when the `\` is not last), then emit them in
    // reverse: the same result as BuildKit's forward pass that fills its output from the end.
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + len]);
        i += len;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// `${value/pattern/replacement}` (first match, replacement literal) or
/// `${value//pattern/replacement}` (`all`: every match, replacement as a Go template).
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, PatternError> {
    let compiled = Pattern::compile(pattern, true)?;
    let chars: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match compiled.find(&chars, 0, false) {
            Some((start, end)) => {
                let mut out: String = chars[..start].iter().collect();
                out.push_str(replacement);
                out.extend(&chars[end..]);
                out
            }
            None => value.to_string(),
        });
    }
    // Go's `Regexp.ReplaceAllString` loop, in character units.
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= chars.len() {
        let Some((start, end)) = compiled.find(&chars, search, false) else {
            break;
        };
        out.extend(&chars[last_end..start]);
        // No replacement for an empty match right after the previous match.
        if end > last_end || start == 0 {
            let matched: String = chars[start..end].iter().collect();
            expand_template(&mut out, replacement, &matched);
        }
        last_end = end;
        // Always advance at least one character.
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.extend(&chars[last_end..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a regex without capture groups: `$0` / `${0}` is `matched`, `$$` is
/// `$`, other well-formed references are empty, a malformed `$` is literal.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// A leading `name` or `{name}` (Go's `extract`): returns the name and the text after it.
fn template_reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let len: usize = body
        .chars()
        .take_while(|&ch| is_name_char(ch))
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        after.strip_prefix('}').map(|after| (name, after))
    } else {
        Some((name, after))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The Go regular expression BuildKit builds for `pattern`, as a Rust `regex` (both engines
    /// are leftmost-first, and `.` excludes `\n` in both).
    fn reference_regex(pattern: &str, greedy: bool, anchored: bool) -> Option<regex::Regex> {
        let mut out = String::from(if anchored { "^" } else { "" });
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
                '?' => out.push('.'),
                '\\' => match chars.peek() {
                    Some('}' | '/') => {}
                    _ => match chars.next() {
                        Some(lit @ ('*' | '?' | '\\')) => {
                            out.push_str(&regex::escape(&lit.to_string()))
                        }
                        _ => return None,
                    },
                },
                lit => out.push_str(&regex::escape(&lit.to_string())),
            }
        }
        Some(regex::Regex::new(&out).expect("reference regex compiles"))
    }

    /// Go's `ReplaceAllString` loop driven by the reference regex.
    fn reference_replace_all(re: &regex::Regex, value: &str, replacement: &str) -> String {
        let mut out = String::new();
        let (mut last_end, mut search) = (0, 0);
        while search <= value.len() {
            let Some(m) = re.find_at(value, search) else {
                break;
            };
            out.push_str(&value[last_end..m.start()]);
            if m.end() > last_end || m.start() == 0 {
                expand_template(&mut out, replacement, m.as_str());
            }
            last_end = m.end();
            let width = value[search..].chars().next().map_or(0, char::len_utf8);
            search = if search + width > m.end() {
                search + width
            } else if search + 1 > m.end() {
                search + 1
            } else {
                m.end()
            };
        }
        out.push_str(&value[last_end..]);
        out
    }

    fn char_range(text: &str, range: (usize, usize)) -> (usize, usize) {
        let byte = |i: usize| text.char_indices().nth(i).map_or(text.len(), |(b, _)| b);
        (byte(range.0), byte(range.1))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn pike_vm_agrees_with_a_leftmost_first_regex_engine(
            pattern in r"[ab*?\\}/\n.]{0,8}",
            text in r"[ab*?\\\n한.]{0,12}",
            greedy in any::<bool>(),
            anchored in any::<bool>(),
        ) {
            let ours = Pattern::compile(&pattern, greedy);
            let Some(re) = reference_regex(&pattern, greedy, anchored) else {
                prop_assert!(ours.is_err());
                return Ok(());
            };
            let ours = ours.expect("reference accepted the pattern");
            let chars: Vec<char> = text.chars().collect();
            let got = ours.find(&chars, 0, anchored).map(|m| char_range(&text, m));
            let want = re.find(&text).map(|m| (m.start(), m.end()));
            prop_assert_eq!(got, want);
            if !anchored && greedy {
                let got = replace(&pattern, &text, "<$0>", true).expect("compiled above");
                prop_assert_eq!(got, reference_replace_all(&re, &text, "<$0>"));
            }
        }
    }

    fn first(pattern: &str, greedy: bool, text: &str) -> Option<(usize, usize)> {
        let chars: Vec<char> = text.chars().collect();
        Pattern::compile(pattern, greedy)
            .unwrap()
            .find(&chars, 0, false)
    }

    #[test]
    fn leftmost_first_semantics() {
        assert_eq!(first("a*b", true, "xaXbYb"), Some((1, 6)));
        assert_eq!(first("a*b", false, "xaXbYb"), Some((1, 4)));
        assert_eq!(first("", true, "abc"), Some((0, 0)));
        assert_eq!(first("?", true, ""), None);
        assert_eq!(first("b", true, "abc"), Some((1, 2)));
        assert_eq!(first("*", true, "ab\ncd"), Some((0, 2)));
        assert_eq!(first("a?c", true, "a\nc abc"), Some((4, 7)));
    }

    #[test]
    fn reverse_pattern_keeps_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        assert_eq!(reverse_pattern(""), "");
    }

    #[test]
    fn compile_rejects_bad_escapes() {
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::compile(bad, true).is_err(), "{bad:?}");
        }
        assert_eq!(
            Pattern::compile("\\x", true).unwrap_err().escaped,
            Some('x')
        );
        assert_eq!(Pattern::compile("a\\", true).unwrap_err().escaped, None);
        assert!(Pattern::compile("\\}\\/\\*\\?\\\\", true).is_ok());
    }

    #[test]
    fn templates_follow_go_expand() {
        let expand = |t: &str| {
            let mut out = String::new();
            expand_template(&mut out, t, "M");
            out
        };
        assert_eq!(expand("x"), "x");
        assert_eq!(expand("<$0>"), "<M>");
        assert_eq!(expand("<${0}>"), "<M>");
        assert_eq!(expand("$$0"), "$0");
        assert_eq!(expand("$1$name${x}"), "");
        assert_eq!(expand("$00"), "");
        assert_eq!(expand("$"), "$");
        assert_eq!(expand("$.${0"), "$.${0");
        assert_eq!(expand("${}"), "${}");
    }
}
