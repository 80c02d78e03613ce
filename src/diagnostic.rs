//! Rendering of Dockerfile errors: `file:line:column`, a one-line reason, and a caret snippet.
//!
//! Library errors carry a [`Span`] into the original Dockerfile bytes and nothing else; this
//! module is the one place that turns a span into what a person reads. It uses miette's
//! graphical handler, with colour only when stderr is a terminal and `NO_COLOR` is unset.

use std::fmt;
use std::io::IsTerminal;

use dray_frontend::{LineIndex, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

/// A Dockerfile error already rendered for the terminal. `main` prints it as is.
#[derive(Debug)]
pub(crate) struct Rendered {
    text: String,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Rendered {}

impl Rendered {
    /// Appends `note` (one or more lines) after the snippet.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.text.push_str(note.trim_end());
        self.text.push('\n');
        self
    }
}

/// Renders `message` about `span` of the Dockerfile `file` whose bytes are `source`.
///
/// The first line is `error: FILE:LINE:COLUMN: MESSAGE`, so the location survives even when the
/// output is grepped or the snippet cannot be drawn (a source that is not valid UTF-8).
pub(crate) fn render(file: &str, source: &[u8], span: Span, message: &str) -> Rendered {
    let at = LineIndex::new(source).line_column(span.start);
    let mut text = format!("error: {file}:{}:{}: {message}\n", at.line, at.column);
    if let Ok(source) = std::str::from_utf8(source) {
        // A zero-width span renders no caret; widen it to one character where there is one.
        let width = if span.is_empty() {
            source[span.start.min(source.len())..]
                .chars()
                .next()
                .map_or(0, char::len_utf8)
        } else {
            span.len()
        };
        let diagnostic = MietteDiagnostic::new(message.to_owned()).with_labels([
            LabeledSpan::new_primary_with_span(None, (span.start, width)),
        ]);
        let report = miette::Report::new(diagnostic)
            .with_source_code(NamedSource::new(file, source.to_owned()));
        let handler = GraphicalReportHandler::new_themed(theme()).with_context_lines(1);
        let mut snippet = String::new();
        if handler.render_report(&mut snippet, report.as_ref()).is_ok() {
            // miette repeats the message as its own first line; ours already said it.
            let body: Vec<&str> = snippet.lines().skip(1).collect();
            text.push_str(body.join("\n").trim_end());
            text.push('\n');
        }
    }
    Rendered { text }
}

/// The span of lines `start..=end` (1-based) of `source`, without the final newline: where a
/// step that failed at solve time is shown, since the op graph keeps lines, not columns.
pub(crate) fn line_span(source: &[u8], start: usize, end: usize) -> Span {
    let mut line_starts = std::iter::once(0).chain(
        source
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    let from = line_starts
        .nth(start.saturating_sub(1))
        .unwrap_or(source.len())
        .min(source.len());
    let to = source[from..]
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(end.saturating_sub(start))
        .map_or(source.len(), |(i, _)| from + i);
    let to = if to > from && source[to - 1] == b'\r' {
        to - 1
    } else {
        to
    };
    Span::new(from, to)
}

fn theme() -> GraphicalTheme {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Carets, as compilers draw them, read well in CI logs and without colour.
    theme.characters.underline = '^';
    theme
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_line_column_and_draws_a_caret() {
        let source = b"FROM scratch\nFOO bar\n";
        let out = render(
            "Dockerfile",
            source,
            Span::new(13, 16),
            "unknown instruction: FOO",
        )
        .text;
        assert!(
            out.starts_with("error: Dockerfile:2:1: unknown instruction: FOO\n"),
            "{out}"
        );
        assert!(out.contains("FOO bar"), "{out}");
        assert!(out.contains("^^^"), "{out}");
    }

    #[test]
    fn line_spans_cover_whole_lines() {
        let source = b"FROM scratch\r\nCOPY a \\\r\n  /b\r\nCMD x";
        let span = line_span(source, 2, 3);
        assert_eq!(&source[span.range()], b"COPY a \\\r\n  /b");
        assert_eq!(&source[line_span(source, 4, 4).range()], b"CMD x");
        assert_eq!(
            line_span(source, 9, 9),
            Span::new(source.len(), source.len())
        );
    }

    #[test]
    fn invalid_utf8_still_gets_a_location() {
        let source = b"FROM \xff\nRUN x\n";
        let out = render("Dockerfile", source, Span::new(7, 10), "boom").text;
        assert_eq!(out, "error: Dockerfile:2:1: boom\n");
    }
}
