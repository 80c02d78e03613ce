//! From one joined instruction line to a [`Node`]: keyword, flags and the per-instruction
//! argument rule (see the table in the [parser module docs](crate::parser)).
//!
//! All offsets handled here are offsets into the joined line; [`Ctx::span`] turns them into
//! source spans.

use crate::parser::ast::{Arg, Flag, Node};
use crate::parser::dump::go_to_lower;
use crate::parser::error::Error;
use crate::parser::json::{JsonArray, parse_array};
use crate::parser::lines::{Joined, is_space};
use crate::parser::source::Source;
use crate::parser::split::{is_token_space, split_command};
use crate::span::Span;

/// How deep `ONBUILD ONBUILD ...` may nest before dray refuses it.
pub(crate) const MAX_ONBUILD_DEPTH: usize = 16;

/// What a line parser needs to build nodes with spans.
pub(crate) struct Ctx<'a> {
    pub(crate) source: &'a Source,
    pub(crate) joined: &'a Joined,
    /// The escape token in effect.
    pub(crate) escape: char,
}

impl Ctx<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        self.joined.span(self.source, start, end)
    }

    fn arg(&self, value: impl Into<String>, start: usize, end: usize) -> Arg {
        Arg {
            value: value.into(),
            span: self.span(start, end),
        }
    }
}

/// The argument rule of an instruction (BuildKit's dispatch table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    JsonOrList,
    JsonOrString,
    KeyValue(&'static str),
    Words,
    Whitespace,
    Health,
    String,
    SubCommand,
    Ignore,
}

fn rule(keyword_lowercase: &str) -> Rule {
    match keyword_lowercase {
        "add" | "copy" | "volume" => Rule::JsonOrList,
        "cmd" | "entrypoint" | "run" | "shell" => Rule::JsonOrString,
        "env" => Rule::KeyValue("ENV"),
        "label" => Rule::KeyValue("LABEL"),
        "arg" => Rule::Words,
        "expose" | "from" => Rule::Whitespace,
        "healthcheck" => Rule::Health,
        "maintainer" | "stopsignal" | "user" | "workdir" => Rule::String,
        "onbuild" => Rule::SubCommand,
        _ => Rule::Ignore,
    }
}

/// BuildKit's `newNodeFromLine` for `line`, which starts at joined offset `base`. The node's
/// span runs from its keyword to the end of the joined line's last piece; the caller widens it
/// (and sets the line numbers) once heredoc bodies have been read.
pub(crate) fn new_node(
    ctx: &Ctx<'_>,
    line: &str,
    base: usize,
    prev_comment: Vec<String>,
    depth: usize,
) -> Result<Node, Error> {
    let split = split_command(line);
    let keyword_at = base + split.keyword_at;
    let keyword_span = ctx.span(keyword_at, keyword_at + split.keyword.len());
    let flags = split
        .flags
        .iter()
        .map(|f| Flag {
            text: f.text.clone(),
            span: ctx.span(base + f.start, base + f.end),
        })
        .collect();
    let end = ctx
        .span(base + line.len(), base + line.len())
        .end
        .max(keyword_span.end);
    let mut node = Node {
        keyword: split.keyword.to_string(),
        keyword_span,
        flags,
        args: Vec::new(),
        json: false,
        onbuild: None,
        heredocs: Vec::new(),
        original: line.to_string(),
        span: Span::new(keyword_span.start, end),
        start_line: 0,
        end_line: 0,
        prev_comment,
    };
    let rest = split.args;
    let at = base + split.args_at;
    match rule(&go_to_lower(split.keyword)) {
        Rule::JsonOrList => {
            if let Some(args) = json_args(ctx, rest, at, &mut node)? {
                node.args = args;
            } else {
                node.args = whitespace_args(ctx, rest, at);
            }
        }
        Rule::JsonOrString => node.args = maybe_json(ctx, rest, at, &mut node)?,
        Rule::KeyValue(keyword) => node.args = key_values(ctx, rest, at, keyword, node.span)?,
        Rule::Words => {
            node.args = parse_words(rest, ctx.escape)
                .into_iter()
                .map(|w| ctx.arg(w.text, at + w.start, at + w.end))
                .collect();
        }
        Rule::Whitespace => node.args = whitespace_args(ctx, rest, at),
        Rule::Health => node.args = health(ctx, rest, at, &mut node)?,
        Rule::String => {
            if !rest.is_empty() {
                node.args = vec![ctx.arg(rest, at, at + rest.len())];
            }
        }
        Rule::SubCommand => {
            if !rest.is_empty() {
                if depth >= MAX_ONBUILD_DEPTH {
                    return Err(Error::OnbuildTooDeep {
                        max: MAX_ONBUILD_DEPTH,
                        span: node.keyword_span,
                    });
                }
                let inner = new_node(ctx, rest, at, Vec::new(), depth + 1)?;
                node.onbuild = Some(Box::new(inner));
            }
        }
        Rule::Ignore => node.args = vec![ctx.arg("", at, at)],
    }
    Ok(node)
}

/// BuildKit's `parseJSON` as used by the JSON-or-X rules: `Ok(None)` means "not JSON, fall
/// back".
fn json_args(
    ctx: &Ctx<'_>,
    rest: &str,
    at: usize,
    node: &mut Node,
) -> Result<Option<Vec<Arg>>, Error> {
    match parse_array(rest) {
        JsonArray::Invalid => Ok(None),
        JsonArray::NotStrings { start, end } => Err(Error::NotStringArray {
            span: ctx.span(at + start, at + end),
        }),
        JsonArray::Strings(elements) => {
            node.json = true;
            Ok(Some(
                elements
                    .into_iter()
                    .map(|e| ctx.arg(e.value, at + e.start, at + e.end))
                    .collect(),
            ))
        }
    }
}

/// BuildKit's `parseMaybeJSON`: a JSON array, or the whole string as one argument.
fn maybe_json(ctx: &Ctx<'_>, rest: &str, at: usize, node: &mut Node) -> Result<Vec<Arg>, Error> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match json_args(ctx, rest, at, node)? {
        Some(args) => args,
        None => vec![ctx.arg(rest, at, at + rest.len())],
    })
}

/// BuildKit's `parseStringsWhitespaceDelimited`.
fn whitespace_args(ctx: &Ctx<'_>, rest: &str, at: usize) -> Vec<Arg> {
    if rest.is_empty() {
        return Vec::new();
    }
    go_split_token_space(rest, None)
        .into_iter()
        .map(|(s, e)| ctx.arg(rest.get(s..e).unwrap_or(""), at + s, at + e))
        .collect()
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, n)` (`limit` = `n` when positive),
/// as byte ranges of `s`.
fn go_split_token_space(s: &str, limit: Option<usize>) -> Vec<(usize, usize)> {
    if s.is_empty() {
        return vec![(0, 0)];
    }
    let mut matches = Vec::new();
    let mut run_start = None;
    for (i, c) in s.char_indices() {
        match (is_token_space(c), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                matches.push((start, i));
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        matches.push((start, s.len()));
    }
    let mut parts = Vec::new();
    let mut begin = 0;
    let mut end = 0;
    for (m_start, m_end) in matches {
        if limit.is_some_and(|n| parts.len() + 1 == n) {
            break;
        }
        end = m_start;
        if m_end != 0 {
            parts.push((begin, end));
        }
        begin = m_end;
    }
    if end != s.len() {
        parts.push((begin, s.len()));
    }
    parts
}

/// BuildKit's `parseNameVal` for ENV and LABEL.
fn key_values(
    ctx: &Ctx<'_>,
    rest: &str,
    at: usize,
    keyword: &'static str,
    instruction: Span,
) -> Result<Vec<Arg>, Error> {
    let words = parse_words(rest, ctx.escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.text.contains('=') {
        let parts = go_split_token_space(rest, Some(2));
        let [(ks, ke), (vs, ve)] = parts.as_slice() else {
            return Err(Error::MissingValue {
                keyword,
                span: instruction,
            });
        };
        return Ok(vec![
            ctx.arg(rest.get(*ks..*ke).unwrap_or(""), at + ks, at + ke),
            ctx.arg(rest.get(*vs..*ve).unwrap_or(""), at + vs, at + ve),
            ctx.arg("", at + ke, at + vs),
        ]);
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.text.split_once('=') else {
            return Err(Error::MissingEquals {
                span: ctx.span(at + word.start, at + word.end),
                word: word.text,
            });
        };
        let eq_at = at + word.start + key.len();
        args.push(ctx.arg(key, at + word.start, eq_at));
        args.push(ctx.arg(value, eq_at + 1, at + word.end));
        args.push(ctx.arg("=", eq_at, eq_at + 1));
    }
    Ok(args)
}

/// BuildKit's `parseHealthConfig`: the type word, then JSON-or-string.
fn health(ctx: &Ctx<'_>, rest: &str, at: usize, node: &mut Node) -> Result<Vec<Arg>, Error> {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Vec::new());
    }
    let after = rest.get(sep..).unwrap_or("");
    let next = sep + (after.len() - after.trim_start_matches(is_space).len());
    let mut args = vec![ctx.arg(rest.get(..sep).unwrap_or(""), at, at + sep)];
    args.extend(maybe_json(
        ctx,
        rest.get(next..).unwrap_or(""),
        at + next,
        node,
    )?);
    Ok(args)
}

/// A word from [`parse_words`] with its byte range in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) text: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// BuildKit's `parseWords`: split on whitespace outside quotes, keeping quotes and escapes in
/// the words. The escape token protects the next character outside quotes and inside `"…"`;
/// inside `'…'` it is literal. A lone escape token at the very end is dropped.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<Word> {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut start = 0;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let Some(&(pos, ch)) = chars.get(i) else {
            if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
                words.push(Word {
                    text: word,
                    start,
                    end: rest.len(),
                });
            }
            return words;
        };
        i += 1;
        if phase == Phase::Spaces {
            if is_space(ch) {
                continue;
            }
            phase = Phase::Word;
            start = pos;
        }
        let at_end = i == chars.len();
        let mut ch = ch;
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(Word {
                        text: std::mem::take(&mut word),
                        start,
                        end: pos,
                    });
                }
                word.clear();
                blank_ok = false;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if at_end {
                    continue;
                }
                word.push(ch);
                if let Some(&(_, next)) = chars.get(i) {
                    ch = next;
                    i += 1;
                }
            }
            word.push(ch);
            continue;
        }
        // In a quote.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if at_end {
                phase = Phase::Word;
                continue;
            }
            word.push(ch);
            if let Some(&(_, next)) = chars.get(i) {
                ch = next;
                i += 1;
            }
        }
        word.push(ch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        parse_words(s, '\\').into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn parse_words_keeps_quotes_and_escapes() {
        assert_eq!(words("foo bar 'abc xyz'"), ["foo", "bar", "'abc xyz'"]);
        assert_eq!(words("foo\\ bar"), ["foo\\ bar"]);
        assert_eq!(words("a=\"x y\" b"), ["a=\"x y\"", "b"]);
        assert_eq!(words("a\\"), ["a"]);
        assert_eq!(words("''"), ["''"]);
        assert_eq!(words("'a\\'b''"), ["'a\\'b''"]);
    }

    #[test]
    fn go_split() {
        assert_eq!(
            go_split_token_space("a  b\tc", None),
            [(0, 1), (3, 4), (5, 6)]
        );
        assert_eq!(go_split_token_space("a  b c", Some(2)), [(0, 1), (3, 6)]);
        assert_eq!(go_split_token_space("a", Some(2)), [(0, 1)]);
    }
}
