//! The Dockerfile parser: bytes in, [`Ast`] out, behaving exactly like BuildKit's
//! `frontend/dockerfile/parser` (checked byte for byte against its fixtures via [`Ast::dump`]).
//!
//! # Design
//!
//! The parser is a straight port of BuildKit's *behaviour*, organised by concern:
//!
//! | module | job |
//! | --- | --- |
//! | `source` | decode bytes (invalid UTF-8 → U+FFFD), split physical lines, the 65535-byte line limit, map offsets back to the original bytes |
//! | `directives` | `# syntax=` / `# escape=` / `# check=` at the top |
//! | `lines` | comment/blank detection, the continuation rule, the joined line with its offset map |
//! | `split` | keyword, leading `--flags`, argument string |
//! | `line_parsers` | the per-instruction argument rules below |
//! | `json` | exec-form arrays, with Go's `encoding/json` semantics |
//! | `heredoc` | which words start heredocs (a port of the part of BuildKit's shell lexer it needs) |
//! | `dump` | BuildKit's `Node.Dump()` and Go's `strconv.Quote` |
//! | `error` | [`Error`], every variant with a [`Span`] |
//!
//! The main loop (this module) reads physical lines: directive lines and comments at the top,
//! then for each instruction its first line (leading whitespace removed), continuation lines
//! (escape token at the end; comment lines inside are skipped, blank ones skipped with a
//! warning), then, for RUN/COPY/ADD in shell form (also inside ONBUILD), one body per heredoc.
//! Joined lines keep a map back to source offsets, so keyword, flag, argument and heredoc spans
//! point into the original bytes even across continuation lines.
//!
//! # Per-instruction argument rules
//!
//! | instruction | rule | argument nodes |
//! | --- | --- | --- |
//! | `ADD`, `COPY`, `VOLUME` | JSON or list | JSON array → one per element; else split on `[\t\v\f\r ]+` (quotes not honoured) |
//! | `CMD`, `ENTRYPOINT`, `RUN`, `SHELL` | JSON or string | JSON array → one per element; else the whole string |
//! | `ENV`, `LABEL` | key/value | `k=v` words → `k`, `v`, `=` per word (quotes kept); legacy `k v…` → `k`, `v…`, `""` |
//! | `ARG` | words | one per quote-aware word, quotes and escapes kept |
//! | `FROM`, `EXPOSE` | whitespace list | split on `[\t\v\f\r ]+` |
//! | `HEALTHCHECK` | type + JSON or string | the first word, then the rest as JSON or string |
//! | `MAINTAINER`, `STOPSIGNAL`, `USER`, `WORKDIR` | string | the whole string |
//! | `ONBUILD` | sub-instruction | the rest parsed as an instruction, in [`Node::onbuild`] |
//! | anything else | ignored | one empty argument (the next layer reports unknown instructions) |
//!
//! An empty argument string gives no arguments, except for "ignored". Invalid JSON falls back to
//! the shell-form rule; a valid array with a non-string element is an error.
//!
//! # Deliberate differences from BuildKit
//!
//! * Input is decoded as UTF-8 with invalid sequences replaced by U+FFFD (BuildKit keeps the
//!   raw bytes in Go strings). Spans still point at the original bytes.
//! * Flags and HEALTHCHECK's type word are read character by character; BuildKit reads them
//!   byte by byte, which garbles non-ASCII flag values (and treats the UTF-8 continuation
//!   bytes `0x85`/`0xA0` as spaces).
//! * The heredoc word lexer glues `<<` to following spaces and tabs (`<<  EOF` is one word);
//!   BuildKit's exact whitespace set there was not available, so exotic Unicode blanks after
//!   `<<` may behave differently.
//! * `ONBUILD` may nest at most 16 levels (BuildKit's next layer rejects any nesting anyway).
//! * [`Heredoc::content`] has leading tabs already removed for `<<-` heredocs (BuildKit keeps
//!   them and chomps later; chomping twice changes nothing).
//! * Inner ONBUILD nodes get the outer instruction's line numbers (BuildKit leaves them 0).

pub mod ast;
mod directives;
mod dump;
mod error;
mod heredoc;
mod json;
mod line_parsers;
mod lines;
mod source;
mod split;

pub use ast::{Arg, Ast, Directive, Directives, Flag, Heredoc, Node, Warning};
pub use dump::{quote, quote_bytes};
pub use error::{Error, LexError};

use directives::DirectiveParser;
use line_parsers::{Ctx, new_node};
use lines::{Joined, is_comment, trim_continuation, trim_leading_space, trim_newline};
use source::Source;

use crate::span::Span;

/// Parses a Dockerfile.
///
/// Never panics. Invalid UTF-8 is replaced with U+FFFD (spans still refer to `source`).
pub fn parse(source: &[u8]) -> Result<Ast, Error> {
    let src = Source::new(source);
    let mut directives = DirectiveParser::new();
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let lines = &src.lines;
    let mut i = 0;

    while let Some(&first) = lines.get(i) {
        let mut raw = src.line_text(first);
        let mut raw_at = first.start;
        if i == 0
            && let Some(rest) = raw.strip_prefix('\u{feff}')
        {
            raw = rest;
            raw_at += '\u{feff}'.len_utf8();
        }
        if is_comment(raw) {
            let comment = comment_text(raw);
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment);
            }
        }
        let (token, skipped) = trim_leading_space(trim_newline(raw));
        let token_at = raw_at + skipped;
        if directives.parse_line(&src, token, token_at)? {
            comments.pop();
        }
        let escape = directives.escape;
        let token = if is_comment(token) { "" } else { token };
        i += 1;
        let start_line = i;

        let (piece, mut end_of_line) = trim_continuation(token, escape);
        if end_of_line && piece.is_empty() {
            continue;
        }
        let mut joined = Joined::new(token_at);
        joined.push(piece, token_at);
        let mut empty_continuation: Option<Span> = None;
        while !end_of_line {
            let Some(&line) = lines.get(i) else { break };
            i += 1;
            let raw = src.line_text(line);
            if is_comment(raw) {
                continue;
            }
            let token = trim_newline(raw);
            if trim_leading_space(token).0.is_empty() {
                empty_continuation
                    .get_or_insert_with(|| src.span(line.start, line.start + token.len()));
                continue;
            }
            let (piece, eol) = trim_continuation(token, escape);
            end_of_line = eol;
            joined.push(piece, line.start);
        }
        if let Some(span) = empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {}", joined.text),
                span,
            });
        }

        let ctx = Ctx {
            source: &src,
            joined: &joined,
            escape,
        };
        let mut node = new_node(&ctx, &joined.text, 0, std::mem::take(&mut comments), 0)?;

        if can_contain_heredoc(&node) && joined.text.contains("<<") {
            let starts =
                heredoc::heredocs_from_line(&joined.text).map_err(|e| Error::HeredocWord {
                    word: e.word,
                    reason: e.reason,
                    span: joined.span(&src, e.start, e.end),
                })?;
            for start in starts {
                node.heredocs
                    .push(read_heredoc(&src, &joined, start, &mut i)?);
            }
        }

        let last = i.checked_sub(1).and_then(|l| lines.get(l));
        let end = last.map_or(src.original_len, |l| {
            src.span(l.start, l.start + trim_newline(src.line_text(*l)).len())
                .end
        });
        finish_node(&mut node, start_line, i, end);
        instructions.push(node);
    }

    if instructions.is_empty() {
        return Err(Error::NoInstructions {
            span: Span::point(src.original_len),
        });
    }
    if let Some(span) = src.too_long {
        return Err(Error::LineTooLong { span });
    }
    Ok(Ast {
        escape: directives.escape,
        directives: directives.directives,
        instructions,
        warnings,
    })
}

/// BuildKit's `MustParseHeredoc`: if `word` (one argument, e.g. a COPY source) is a heredoc
/// reference such as `<<EOF`, `<<-'EOF'` or `3<<EOF`, its name, fd, `expand` and `chomp`.
///
/// The instruction layer uses this to tell heredoc sources from paths and to find the matching
/// body in [`Node::heredocs`] by name. The returned value has no content and a default span:
/// it describes the word, not a body. Words BuildKit cannot lex count as "not a heredoc".
pub fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let start = heredoc::parse_heredoc(word).ok()??;
    Some(Heredoc {
        name: start.name,
        content: String::new(),
        file_descriptor: start.fd,
        expand: start.expand,
        chomp: start.chomp,
        span: Span::default(),
    })
}

/// BuildKit's comment text: the line minus its *first byte*, trimmed. (Only `#` lines reach
/// here, but `  # x` keeps its `#`: BuildKit drops the first byte, not the `#`.)
fn comment_text(raw: &str) -> String {
    let mut chars = raw.chars();
    let first = chars.next();
    let rest = chars.as_str().trim();
    match first {
        // Dropping one byte of a multi-byte character leaves invalid UTF-8 in Go.
        Some(c) if c.len_utf8() > 1 => format!("{}{rest}", char::REPLACEMENT_CHARACTER),
        _ => rest.to_string(),
    }
}

/// BuildKit's `canContainHeredoc`: RUN, COPY or ADD (directly or inside ONBUILD), not JSON.
fn can_contain_heredoc(node: &Node) -> bool {
    let mut target = node;
    if node.keyword_lowercase() == "onbuild"
        && let Some(inner) = &node.onbuild
    {
        target = inner;
    }
    matches!(target.keyword_lowercase().as_str(), "run" | "copy" | "add") && !target.json
}

/// Reads one heredoc body, starting at physical line `*i`.
fn read_heredoc(
    src: &Source,
    joined: &Joined,
    start: heredoc::Start,
    i: &mut usize,
) -> Result<Heredoc, Error> {
    let first = *i;
    let mut content = String::new();
    while let Some(&line) = src.lines.get(*i) {
        *i += 1;
        let raw = src.line_text(line);
        let mut candidate = trim_newline(raw);
        if start.chomp {
            candidate = candidate.trim_start_matches('\t');
        }
        if candidate == start.name {
            let from = src.lines.get(first).map_or(line.start, |l| l.start);
            let span = src.span(from, line.start + trim_newline(raw).len());
            if start.chomp {
                content = chomp(&content);
            }
            return Ok(Heredoc {
                name: start.name,
                content,
                file_descriptor: start.fd,
                expand: start.expand,
                chomp: start.chomp,
                span,
            });
        }
        content.push_str(raw);
    }
    Err(Error::UnterminatedHeredoc {
        span: joined.span(src, start.start, start.end),
        name: start.name,
    })
}

/// BuildKit's `ChompHeredocContent`: leading tabs removed from every line.
fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// Sets line numbers and the span end on a node and its ONBUILD chain.
fn finish_node(node: &mut Node, start_line: usize, end_line: usize, end: usize) {
    let mut current = Some(node);
    while let Some(n) = current {
        n.start_line = start_line;
        n.end_line = end_line;
        n.span = Span::new(n.span.start, end.max(n.span.start));
        current = n.onbuild.as_deref_mut();
    }
}
