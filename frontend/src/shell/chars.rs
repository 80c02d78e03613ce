//! Character classes with Go's `unicode` package semantics.
//!
//! BuildKit classifies characters with `unicode.IsLetter` (general category `L`),
//! `unicode.IsDigit` (category `Nd`) and `unicode.IsSpace`. Rust's `char::is_alphabetic` and
//! `char::is_numeric` are *wider* (they include `Nl`, `No` and `Other_Alphabetic`), so using them
//! would make names like `$ⅰ` (a letter number) differ from BuildKit. The general categories
//! come from the `regex` crate's Unicode tables, with an ASCII fast path.
//!
//! Unicode versions can differ slightly between Go and `regex-syntax`; only characters assigned
//! in between could classify differently.

use std::sync::LazyLock;

use regex::Regex;

/// Matches one character of general category `L` (Go `unicode.IsLetter`).
static LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A\p{L}\z").expect("static regex compiles"));

/// Matches one character of general category `Nd` (Go `unicode.IsDigit`).
static DIGIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A\p{Nd}\z").expect("static regex compiles"));

fn matches_class(class: &Regex, ch: char) -> bool {
    let mut buf = [0u8; 4];
    class.is_match(ch.encode_utf8(&mut buf))
}

/// Go's `unicode.IsLetter`: general category `L`.
pub(crate) fn is_letter(ch: char) -> bool {
    if ch.is_ascii() {
        ch.is_ascii_alphabetic()
    } else {
        matches_class(&LETTER, ch)
    }
}

/// Go's `unicode.IsDigit`: general category `Nd`.
pub(crate) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        ch.is_ascii_digit()
    } else {
        matches_class(&DIGIT, ch)
    }
}

/// Go's `unicode.IsSpace`. For every Unicode scalar value this is the `White_Space` property,
/// which is exactly what `char::is_whitespace` implements.
pub(crate) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// A name character: letter, digit or `_`, as in BuildKit's `processName` and Go's
/// `regexp.Expand` template names.
pub(crate) fn is_name_char(ch: char) -> bool {
    ch == '_' || is_letter(ch) || is_digit(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_category_l_not_alphabetic() {
        assert!(is_letter('a'));
        assert!(is_letter('한'));
        assert!(is_letter('é'));
        assert!(!is_letter('_'));
        assert!(!is_letter('1'));
        // U+2170 SMALL ROMAN NUMERAL ONE is `Nl`: alphabetic in Rust, not a letter in Go.
        assert!('\u{2170}'.is_alphabetic());
        assert!(!is_letter('\u{2170}'));
    }

    #[test]
    fn digits_follow_category_nd_not_numeric() {
        assert!(is_digit('7'));
        assert!(is_digit('\u{0663}')); // ARABIC-INDIC DIGIT THREE
        // U+00B2 SUPERSCRIPT TWO is `No`: numeric in Rust, not a digit in Go.
        assert!('\u{00B2}'.is_numeric());
        assert!(!is_digit('\u{00B2}'));
    }

    #[test]
    fn spaces_include_unicode_white_space() {
        for ch in [
            ' ', '\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{85}', '\u{A0}', '\u{3000}',
        ] {
            assert!(is_space(ch), "{ch:?}");
        }
        assert!(!is_space('x'));
        assert!(!is_space('\u{200B}')); // ZERO WIDTH SPACE is not White_Space
    }
}
