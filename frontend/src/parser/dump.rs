//! BuildKit's `Node.Dump()` text and Go's `strconv.Quote`.
//!
//! The dump is how the parser is checked against BuildKit's fixtures, so it reproduces Go's
//! output byte for byte: keywords lowercased with Go's simple case mapping, flags rendered like
//! `fmt.Sprintf("%q", []string{...})`, arguments with `strconv.Quote`, and each level trimmed of
//! Unicode whitespace.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

use crate::parser::ast::{Ast, Node};

impl Ast {
    /// BuildKit's `Node.Dump()` of the root: one `(keyword ...)` line per instruction, no
    /// trailing newline. BuildKit's `result` fixtures hold exactly this plus one `\n`.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.instructions {
            out.push('(');
            out.push_str(&dump_node(node));
            out.push_str(")\n");
        }
        out.trim().to_string()
    }
}

impl Node {
    /// This instruction's part of [`Ast::dump`], without the surrounding parentheses.
    pub fn dump(&self) -> String {
        dump_node(self)
    }
}

fn dump_node(node: &Node) -> String {
    let mut out = go_to_lower(&node.keyword);
    if !node.flags.is_empty() {
        out.push_str(" [");
        for (i, flag) in node.flags.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&quote(&flag.text));
        }
        out.push(']');
    }
    if let Some(inner) = &node.onbuild {
        // BuildKit: an argument node with an empty value and the inner instruction as its only
        // child, dumped as `"" + "(" + inner + ")\n"` and trimmed.
        let child = format!("({})\n", dump_node(inner));
        out.push(' ');
        out.push_str(child.trim());
    }
    for arg in &node.args {
        out.push(' ');
        out.push_str(&quote(&arg.value));
    }
    out.trim().to_string()
}

/// Go's `strings.ToLower`: per character, simple (one-to-one) case mapping.
pub(crate) fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Go's `strconv.Quote` of a string.
pub fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// Go's `strconv.Quote` of arbitrary bytes (Go strings may hold invalid UTF-8): each byte that
/// is not part of valid UTF-8 becomes `\xHH`.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if is_print(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if c < ' ' || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if u32::from(c) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\U{:08x}", u32::from(c));
        }
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    static PRINT: LazyLock<Regex> = LazyLock::new(|| {
        // A constant pattern: it compiles or every test fails.
        Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("valid regex")
    });
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let mut buf = [0u8; 4];
    PRINT.is_match(c.encode_utf8(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("abc"), r#""abc""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(quote("\0\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(
            quote("\u{a0}\u{85}\u{2028}\u{feff}"),
            r#""\u00a0\u0085\u2028\ufeff""#
        );
        assert_eq!(quote("♥☃한\u{fffd}é"), "\"♥☃한\u{fffd}é\"");
        assert_eq!(quote("\u{1F600}"), "\"\u{1F600}\"");
        assert_eq!(quote("\u{E0001}\u{F0000}"), r#""\U000e0001\U000f0000""#);
        assert_eq!(quote_bytes(b"a\xffb\xc3"), r#""a\xffb\xc3""#);
    }

    #[test]
    fn lowercase_is_per_character() {
        assert_eq!(go_to_lower("FROM"), "from");
        assert_eq!(go_to_lower("\u{130}"), "i");
        assert_eq!(go_to_lower("ΣΑΣ"), "σασ");
    }
}
