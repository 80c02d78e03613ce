//! Source positions.
//!
//! Every diagnostic dray prints about a Dockerfile names the file, the line and the column, with
//! a caret under the offending text. The parser therefore keeps, for everything it produces, a
//! [`Span`]: a half-open byte range into the *original* file bytes (before BOM removal, line
//! joining or quote removal). Lines and columns are derived on demand with [`LineIndex`], so the
//! hot path stores two integers and no strings.

use std::ops::Range;

/// A half-open byte range `start..end` into the original Dockerfile bytes.
///
/// Offsets always fall on UTF-8 character boundaries of the source (or at its end), so slicing
/// the source with a span never panics for valid UTF-8 input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// A span covering `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end, "span start {start} after end {end}");
        Span { start, end }
    }

    /// An empty span at `offset`, for "something is missing here" errors.
    pub fn point(offset: usize) -> Self {
        Span { start: offset, end: offset }
    }

    /// The number of bytes covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both `self` and `other`.
    pub fn join(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The span as a `Range<usize>`.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// A 1-based line and column. Columns count characters (Unicode scalar values), not bytes, so
/// that they match what an editor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineColumn {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Maps byte offsets of one source file to lines and columns.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    source: &'a [u8],
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `source`. Lines end at `\n`; a `\r` before it belongs to the line.
    pub fn new(source: &'a [u8]) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            source.iter().enumerate().filter(|&(_, &b)| b == b'\n').map(|(i, _)| i + 1),
        );
        LineIndex { source, line_starts }
    }

    /// The 1-based line and column of byte `offset`. Offsets past the end map to the end.
    pub fn line_column(&self, offset: usize) -> LineColumn {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = String::from_utf8_lossy(&self.source[start..offset]).chars().count() + 1;
        LineColumn { line: line + 1, column }
    }

    /// The number of lines (a trailing newline does not start a new line).
    pub fn line_count(&self) -> usize {
        match self.source.last() {
            Some(b'\n') => self.line_starts.len() - 1,
            Some(_) => self.line_starts.len(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_from_one() {
        let src = "FROM a\nRUN \u{2603} x\n".as_bytes();
        let index = LineIndex::new(src);
        assert_eq!(index.line_column(0), LineColumn { line: 1, column: 1 });
        assert_eq!(index.line_column(7), LineColumn { line: 2, column: 1 });
        // "RUN ☃ " — the snowman is 3 bytes but one column.
        let x = src.iter().rposition(|&b| b == b'x').unwrap();
        assert_eq!(index.line_column(x), LineColumn { line: 2, column: 7 });
        assert_eq!(index.line_count(), 2);
    }

    #[test]
    fn offsets_past_the_end_clamp() {
        let index = LineIndex::new(b"ab");
        assert_eq!(index.line_column(99), LineColumn { line: 1, column: 3 });
    }
}
