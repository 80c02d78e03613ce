//! The source as the parser sees it: decoded text, physical lines and the way back to bytes.
//!
//! BuildKit reads bytes with a `bufio.Scanner` and works on Go strings, which may hold invalid
//! UTF-8. dray's AST holds Rust `String`s, so the source is decoded once, up front, replacing
//! each invalid sequence with U+FFFD. Everything downstream works on that text; [`Source::span`]
//! maps text offsets back to offsets in the original bytes (they differ only after an invalid
//! sequence, or nowhere for valid input).
//!
//! The scanner's 64 KiB limit is applied here too: the text stops before the first physical line
//! longer than 65535 bytes, and that line is remembered so the parser can report it after
//! processing everything before it, which is the order in which BuildKit reports errors.

use crate::span::Span;

/// BuildKit's `bufio.MaxScanTokenSize - 1`: the longest physical line, newline excluded.
pub(crate) const MAX_LINE: usize = 65535;

/// One physical line of the decoded text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    /// Offset of the first byte in the decoded text.
    pub(crate) start: usize,
    /// Offset one past the `\n` (or the end of the text for a last line without one).
    pub(crate) end: usize,
}

/// Decoded source text with its physical lines.
#[derive(Debug)]
pub(crate) struct Source {
    /// The decoded text, cut before any over-long line.
    pub(crate) text: String,
    /// The physical lines of `text`.
    pub(crate) lines: Vec<Line>,
    /// The first over-long line, if any (a span in the original bytes).
    pub(crate) too_long: Option<Span>,
    /// Length of the original input in bytes.
    pub(crate) original_len: usize,
    /// Break points `(text offset, original offset)` where the two stop moving in step; empty
    /// for valid UTF-8.
    shifts: Vec<(usize, usize)>,
}

impl Source {
    /// Decodes `bytes` and splits them into physical lines.
    pub(crate) fn new(bytes: &[u8]) -> Source {
        let mut cut = bytes.len();
        let mut too_long = None;
        let mut line_start = 0;
        for raw in bytes.split_inclusive(|&b| b == b'\n') {
            let content = raw.strip_suffix(b"\n").unwrap_or(raw).len();
            if content > MAX_LINE {
                cut = line_start;
                too_long = Some(Span::new(line_start, line_start + content));
                break;
            }
            line_start += raw.len();
        }
        let kept = bytes.get(..cut).unwrap_or(bytes);

        let mut text = String::with_capacity(kept.len());
        let mut shifts = Vec::new();
        let mut original = 0;
        for chunk in kept.utf8_chunks() {
            text.push_str(chunk.valid());
            original += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                shifts.push((text.len(), original));
                text.push(char::REPLACEMENT_CHARACTER);
                original += chunk.invalid().len();
                shifts.push((text.len(), original));
            }
        }

        let mut lines = Vec::new();
        let mut start = 0;
        for piece in text.split_inclusive('\n') {
            lines.push(Line {
                start,
                end: start + piece.len(),
            });
            start += piece.len();
        }
        Source {
            text,
            lines,
            too_long,
            original_len: bytes.len(),
            shifts,
        }
    }

    /// The text of `line`, newline included.
    pub(crate) fn line_text(&self, line: Line) -> &str {
        self.text.get(line.start..line.end).unwrap_or("")
    }

    /// Maps an offset in the decoded text to an offset in the original bytes.
    pub(crate) fn original(&self, offset: usize) -> usize {
        let idx = self.shifts.partition_point(|&(text, _)| text <= offset);
        match idx.checked_sub(1).and_then(|i| self.shifts.get(i)) {
            None => offset,
            Some(&(text, orig)) => {
                let limit = self
                    .shifts
                    .get(idx)
                    .map_or(usize::MAX, |&(_, next)| next - orig);
                orig + (offset - text).min(limit)
            }
        }
    }

    /// A span in the original bytes for the decoded range `start..end`.
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let start = self.original(start);
        let end = self.original(end).max(start);
        Span::new(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_maps_back_to_original_offsets() {
        let src = Source::new(b"RUN \xff\xfe x\n");
        assert_eq!(src.text, "RUN \u{fffd}\u{fffd} x\n");
        let x = src.text.find('x').unwrap();
        assert_eq!(src.original(x), 7);
        assert_eq!(src.span(4, 7), Span::new(4, 5));
    }

    #[test]
    fn too_long_line_cuts_the_text() {
        let mut bytes = b"FROM a\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        let src = Source::new(&bytes);
        assert_eq!(src.text, "FROM a\n");
        assert_eq!(src.too_long, Some(Span::new(7, 7 + MAX_LINE + 1)));

        let mut ok = b"FROM a\n".to_vec();
        ok.extend(std::iter::repeat_n(b'x', MAX_LINE));
        assert_eq!(Source::new(&ok).too_long, None);
    }
}
