//! Physical-line helpers and the joined (logical) instruction line.
//!
//! BuildKit glues continuation lines into one string with no separator, dropping the
//! continuation token and keeping the continuation lines' leading whitespace. [`Joined`] does the
//! same and remembers, for every glued piece, where it came from, so that any offset in the
//! joined text can be mapped back to the source.

use crate::parser::source::Source;
use crate::span::Span;

/// A logical instruction line assembled from physical lines.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The joined text, as BuildKit's `line` / `Node.Original`.
    pub(crate) text: String,
    /// `(joined offset, text offset)` at the start of each piece.
    pieces: Vec<(usize, usize)>,
    /// Where the instruction starts in the decoded text (used while no piece has text).
    origin: usize,
}

impl Joined {
    /// An empty line for an instruction starting at decoded offset `origin`.
    pub(crate) fn new(origin: usize) -> Self {
        Joined {
            text: String::new(),
            pieces: Vec::new(),
            origin,
        }
    }

    /// Appends `piece`, which starts at `text_offset` in the decoded source.
    pub(crate) fn push(&mut self, piece: &str, text_offset: usize) {
        if piece.is_empty() {
            return;
        }
        self.pieces.push((self.text.len(), text_offset));
        self.text.push_str(piece);
    }

    /// The decoded-source offset of joined offset `at`, for the start of a range.
    fn start(&self, at: usize) -> usize {
        let idx = self.pieces.partition_point(|&(joined, _)| joined <= at);
        match idx.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(&(joined, text)) => text + (at - joined),
            None => self.pieces.first().map_or(self.origin, |&(_, text)| text),
        }
    }

    /// The decoded-source offset of joined offset `at`, for the (exclusive) end of a range:
    /// an end at a piece boundary stays on the earlier piece's line.
    fn end(&self, at: usize) -> usize {
        match at.checked_sub(1) {
            Some(last) => self.start(last) + 1,
            None => self.start(0),
        }
    }

    /// The source span of the joined range `start..end`.
    pub(crate) fn span(&self, source: &Source, start: usize, end: usize) -> Span {
        let from = self.start(start);
        let to = if end > start {
            self.end(end).max(from)
        } else {
            from
        };
        source.span(from, to)
    }
}

/// Go's `unicode.IsSpace` (the same set as Rust's `char::is_whitespace`).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// BuildKit's `trimNewline`: strips every trailing `\r` and `\n`.
pub(crate) fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// BuildKit's `trimLeadingWhitespace`, returning the number of bytes removed as well.
pub(crate) fn trim_leading_space(s: &str) -> (&str, usize) {
    let trimmed = s.trim_start_matches(is_space);
    (trimmed, s.len() - trimmed.len())
}

/// BuildKit's `isComment`: the first non-whitespace character is `#`.
pub(crate) fn is_comment(s: &str) -> bool {
    trim_leading_space(s).0.starts_with('#')
}

/// BuildKit's `trimContinuationCharacter`: the regex `([^E])E[ \t]*$|^E[ \t]*$` replaced by
/// `$1`. Returns the line without the token and whether the instruction ends here (no
/// continuation). An escaped escape token (`\\`) does not continue the line.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().next_back() {
        Some(c) if c == escape => (line, true),
        _ => (before, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("echo a \\", '\\'), ("echo a ", false));
        assert_eq!(trim_continuation("echo a\\ \t ", '\\'), ("echo a", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", true));
        assert_eq!(trim_continuation("a", '\\'), ("a", true));
    }

    #[test]
    fn joined_offsets_map_to_each_piece() {
        let source = Source::new(b"RUN a \\\n  b\n");
        let mut joined = Joined::new(0);
        joined.push("RUN a ", 0);
        joined.push("  b", 8);
        assert_eq!(joined.text, "RUN a   b");
        assert_eq!(joined.span(&source, 8, 9), Span::new(10, 11));
        assert_eq!(joined.span(&source, 4, 6), Span::new(4, 6));
        assert_eq!(joined.span(&source, 4, 9), Span::new(4, 11));
    }
}
