//! Reads the Go (RE2) regular expressions patternmatcher builds, and writes the same language as
//! a `regex`-crate expression.
//!
//! Why not hand the string to `regex` directly? patternmatcher copies `[`, `]`, `^`, escapes and
//! class contents from the pattern verbatim, so the string means what *Go's* parser makes of it,
//! and the two parsers differ on exactly those pieces: `regex` nests `[` inside classes (so
//! `[[^/]*]`, which is what the pattern `[*]` becomes, is one class to `regex` but "one of `[`,
//! `^`, `/`, repeated, then `]`" to Go), treats `&&`, `--` and `~~` in classes as set
//! operations, reads `\d` as Unicode digits (Go: ASCII), and has no `\Q…\E`. So this module
//! parses the Go syntax that can occur (literals, escapes, classes, `(`, `)`, `|`, anchors and
//! `*`, `+`, `?` repetition) and re-emits each piece with `regex`'s unambiguous spelling.
//! Escapes it cannot reproduce exactly (`\p{..}`) are errors, not guesses.

use super::error::RegexError;

/// Translates the Go expression `go` into `regex`-crate syntax with the same meaning.
pub(crate) fn translate(go: &str) -> Result<String, RegexError> {
    let mut parser = Parser {
        s: go.chars().collect(),
        pos: 0,
        out: String::with_capacity(go.len() * 2),
        depth: 0,
        last: Last::Nothing,
    };
    parser.run()?;
    Ok(parser.out)
}

/// What the most recent piece was, for Go's repetition rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Start of the expression or of a group, or just after `|`: nothing to repeat.
    Nothing,
    /// Something repeatable.
    Atom,
    /// A repetition operator; `true` once a non-greedy `?` has been taken as well.
    Repeat(bool),
}

struct Parser {
    s: Vec<char>,
    pos: usize,
    out: String,
    depth: usize,
    last: Last,
}

impl Parser {
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.s.get(self.pos + offset).copied()
    }

    fn run(&mut self) -> Result<(), RegexError> {
        while let Some(c) = self.peek_at(0) {
            match c {
                '\\' => self.escape()?,
                '[' => {
                    self.pos += 1;
                    let class = self.class()?;
                    self.out.push_str(&class);
                    self.last = Last::Atom;
                }
                '(' => {
                    self.pos += 1;
                    self.depth += 1;
                    self.out.push_str("(?:");
                    self.last = Last::Nothing;
                }
                ')' => {
                    self.pos += 1;
                    if self.depth == 0 {
                        return Err(RegexError::UnexpectedParen);
                    }
                    self.depth -= 1;
                    self.out.push(')');
                    self.last = Last::Atom;
                }
                '|' => {
                    self.pos += 1;
                    self.out.push('|');
                    self.last = Last::Nothing;
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    match self.last {
                        Last::Nothing => return Err(RegexError::MissingRepeatArgument { op: c }),
                        Last::Repeat(false) if c == '?' => self.last = Last::Repeat(true),
                        Last::Repeat(_) => return Err(RegexError::NestedRepetition),
                        Last::Atom => self.last = Last::Repeat(false),
                    }
                    self.out.push(c);
                }
                '.' | '^' | '$' => {
                    self.pos += 1;
                    self.out.push(c);
                    self.last = Last::Atom;
                }
                // Everything else, including a lone `]` and `{` (never a valid repetition
                // here: patternmatcher escapes `{`), is itself.
                _ => {
                    self.pos += 1;
                    self.literal(c);
                }
            }
        }
        if self.depth > 0 {
            return Err(RegexError::MissingParen);
        }
        Ok(())
    }

    fn literal(&mut self, c: char) {
        self.out
            .push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        self.last = Last::Atom;
    }

    /// A `\` outside a class (Go's parser loop, then `parseEscape`).
    fn escape(&mut self) -> Result<(), RegexError> {
        let Some(next) = self.peek_at(1) else {
            return Err(RegexError::InvalidEscape {
                escape: "\\".to_owned(),
            });
        };
        let assertion = match next {
            'A' => Some(r"\A"),
            'z' => Some(r"\z"),
            // Go's \b and \B are ASCII word boundaries.
            'b' => Some(r"(?-u:\b)"),
            'B' => Some(r"(?-u:\B)"),
            _ => None,
        };
        if let Some(assertion) = assertion {
            self.pos += 2;
            self.out.push_str(assertion);
            self.last = Last::Atom;
            return Ok(());
        }
        match next {
            'C' => Err(RegexError::InvalidEscape {
                escape: r"\C".to_owned(),
            }),
            'p' | 'P' => Err(RegexError::UnsupportedEscape {
                escape: format!("\\{next}"),
            }),
            'Q' => {
                // `\Q...\E`: everything up to `\E` (or the end) is literal.
                self.pos += 2;
                while let Some(c) = self.peek_at(0) {
                    if c == '\\' && self.peek_at(1) == Some('E') {
                        self.pos += 2;
                        break;
                    }
                    self.pos += 1;
                    self.literal(c);
                }
                Ok(())
            }
            _ => {
                if let Some(class) = perl_class(next) {
                    self.pos += 2;
                    self.out.push('[');
                    self.out.push_str(class);
                    self.out.push(']');
                    self.last = Last::Atom;
                    return Ok(());
                }
                let c = self.escaped_char()?;
                self.literal(c);
                Ok(())
            }
        }
    }

    /// A single-character escape at `pos` (Go's `parseEscape`); advances past it.
    fn escaped_char(&mut self) -> Result<char, RegexError> {
        let start = self.pos;
        let invalid = |p: &Parser, end: usize| RegexError::InvalidEscape {
            escape: p.s[start..end.min(p.s.len())].iter().collect(),
        };
        let Some(c) = self.peek_at(1) else {
            return Err(invalid(self, start + 1));
        };
        self.pos += 2;
        let simple = match c {
            'a' => Some('\x07'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        match c {
            // Octal: `\0` and up to two more digits, or `\1`-`\7` followed by at least one
            // more (a lone `\1` would be a backreference, which Go rejects).
            '0'..='7' => {
                let is_octal = |d: Option<char>| matches!(d, Some('0'..='7'));
                if c != '0' && !is_octal(self.peek_at(0)) {
                    return Err(invalid(self, self.pos));
                }
                let mut value = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek_at(0) {
                        Some(d @ '0'..='7') => {
                            value = value * 8 + (d as u32 - '0' as u32);
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                char::from_u32(value).ok_or_else(|| invalid(self, self.pos))
            }
            'x' => {
                if self.peek_at(0) == Some('{') {
                    self.pos += 1;
                    let mut value: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(d) = self.peek_at(0) else {
                            return Err(invalid(self, self.pos));
                        };
                        self.pos += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = d.to_digit(16) else {
                            return Err(invalid(self, self.pos));
                        };
                        value = value * 16 + v;
                        if value > 0x10_FFFF {
                            return Err(invalid(self, self.pos));
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return Err(invalid(self, self.pos));
                    }
                    return char::from_u32(value).ok_or_else(|| invalid(self, self.pos));
                }
                let hi = self.peek_at(0).and_then(|d| d.to_digit(16));
                let lo = self.peek_at(1).and_then(|d| d.to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        self.pos += 2;
                        char::from_u32(hi * 16 + lo).ok_or_else(|| invalid(self, self.pos))
                    }
                    _ => Err(invalid(self, self.pos + 2)),
                }
            }
            _ => Err(invalid(self, self.pos)),
        }
    }

    /// A class, with `pos` just after its `[` (Go's `parseClass`). Returns `regex` syntax.
    fn class(&mut self) -> Result<String, RegexError> {
        let mut out = String::from("[");
        if self.peek_at(0) == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            match self.peek_at(0) {
                None => return Err(RegexError::MissingBracket),
                Some(']') if !first => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            first = false;
            // `[:name:]`; Go looks for the closing `:]` anywhere in the rest of the string.
            if self.peek_at(0) == Some('[') && self.peek_at(1) == Some(':') {
                let rest: String = self.s[self.pos + 2..].iter().collect();
                if let Some(end) = rest.find(":]") {
                    let name = &rest[..end];
                    let whole = format!("[:{name}:]");
                    let known = name.strip_prefix('^').unwrap_or(name);
                    if !POSIX_CLASSES.contains(&known) {
                        return Err(RegexError::UnknownClassName { class: whole });
                    }
                    self.pos += 2 + name.chars().count() + 2;
                    out.push_str(&format!("[{whole}]"));
                    continue;
                }
            }
            if self.peek_at(0) == Some('\\') {
                match self.peek_at(1) {
                    Some(p @ ('p' | 'P')) => {
                        return Err(RegexError::UnsupportedEscape {
                            escape: format!("\\{p}"),
                        });
                    }
                    Some(c) => {
                        if let Some(class) = perl_class(c) {
                            self.pos += 2;
                            out.push('[');
                            out.push_str(class);
                            out.push(']');
                            continue;
                        }
                    }
                    None => {}
                }
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek_at(0) == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(RegexError::BadRange { lo, hi });
                }
            }
            out.push_str(&regex::escape(lo.encode_utf8(&mut [0; 4])));
            if hi != lo {
                out.push('-');
                out.push_str(&regex::escape(hi.encode_utf8(&mut [0; 4])));
            }
        }
        out.push(']');
        Ok(out)
    }

    /// One character of a class (Go's `parseClassChar`).
    fn class_char(&mut self) -> Result<char, RegexError> {
        match self.peek_at(0) {
            None => Err(RegexError::MissingBracket),
            Some('\\') => self.escaped_char(),
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
        }
    }
}

/// Go's Perl classes `\d \s \w` (ASCII only) and their negations, as `regex` class contents.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "0-9",
        'D' => "^0-9",
        's' => r"\t\n\x0C\r ",
        'S' => r"^\t\n\x0C\r ",
        'w' => "0-9A-Za-z_",
        'W' => "^0-9A-Za-z_",
        _ => return None,
    })
}

/// The `[:name:]` classes Go knows; `regex` knows the same names with the same (ASCII) meaning.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(go: &str, text: &str) -> bool {
        let rust = translate(go).unwrap_or_else(|e| panic!("{go:?}: {e}"));
        regex::Regex::new(&rust)
            .unwrap_or_else(|e| panic!("{go:?} -> {rust:?}: {e}"))
            .is_match(text)
    }

    #[test]
    fn go_class_parsing_differs_from_regex_crate() {
        // `[[^/]*]` in Go: a class of `[`, `^`, `/`, repeated, then a literal `]`.
        assert!(matches("^[[^/]*]$", "]"));
        assert!(matches("^[[^/]*]$", "[^/]"));
        assert!(!matches("^[[^/]*]$", "a]"));
        // A leading `]` is literal; `&&` and `--` are plain characters.
        assert!(matches("^[]a]$", "]"));
        assert!(matches("^[a&&b]$", "&"));
        // `!--` is the range `!` to `-` in Go, not a set difference.
        assert!(matches("^[!--]$", "&"));
        assert!(!matches("^[!--]$", "a"));
        assert!(matches("^[[:digit:]x]$", "7"));
        assert!(matches("^[[:^digit:]]$", "x"));
    }

    #[test]
    fn go_escapes() {
        assert!(matches(r"^\d$", "7"));
        assert!(!matches(r"^\d$", "٣")); // Go's \d is ASCII only
        assert!(matches(r"^\w\W$", "a-"));
        assert!(matches(r"^\x41\x{42}\101$", "ABA"));
        assert!(matches(r"^\Q.*\E$", ".*"));
        assert!(matches(r"^a\.b$", "a.b"));
        assert!(!matches(r"^a\.b$", "axb"));
        assert!(matches(r"^\t$", "\t"));
        for bad in [
            r"\y",
            r"\1",
            r"\8",
            r"\C",
            r"\x4",
            r"\x{}",
            "[a",
            "[z-a]",
            "[[:foo:]]",
            "a**",
        ] {
            assert!(translate(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            translate(r"\pL"),
            Err(RegexError::UnsupportedEscape { .. })
        ));
    }
}
