//! Error kinds, offsets and messages.

use super::env;
use crate::shell::{Error, Lexer};

fn err(input: &str) -> Error {
    let e = env(&[("A", "x"), ("E", ""), ("V", "abc")]);
    match Lexer::default().process_word(input, &e) {
        Ok(value) => panic!("{input:?} should fail, got {value:?}"),
        Err(err) => err,
    }
}

#[test]
fn offsets_point_at_the_problem() {
    let cases: &[(&str, Error)] = &[
        ("ab'cd", Error::UnterminatedSingleQuote { offset: 2 }),
        ("ab\"cd", Error::UnterminatedDoubleQuote { offset: 2 }),
        ("a \"b\\\"", Error::UnterminatedDoubleQuote { offset: 2 }),
        ("x${}", Error::BadSubstitution { offset: 1 }),
        ("${:-a}", Error::BadSubstitution { offset: 0 }),
        ("ab${{A}", Error::BadSubstitution { offset: 2 }),
        ("xy${A", Error::MissingBrace { offset: 2 }),
        ("${", Error::MissingBrace { offset: 0 }),
        ("é${A:-b", Error::MissingBrace { offset: 2 }),
        // An error inside the word that runs into the end is reported as the missing `}`.
        ("${A:-'x}", Error::MissingBrace { offset: 0 }),
        ("${A:-${B}", Error::MissingBrace { offset: 0 }),
        ("${A:-${}}", Error::BadSubstitution { offset: 5 }),
        (
            "${A:=b}",
            Error::UnsupportedModifier {
                modifier: ":=".into(),
                offset: 3,
            },
        ),
        (
            "${A:Xb}",
            Error::UnsupportedModifier {
                modifier: ":X".into(),
                offset: 3,
            },
        ),
        (
            "a${A.}",
            Error::UnsupportedModifier {
                modifier: ".".into(),
                offset: 4,
            },
        ),
        (
            "${#A}",
            Error::UnsupportedModifier {
                modifier: "A".into(),
                offset: 3,
            },
        ),
        ("${A/x}", Error::MissingSlash { offset: 0 }),
        ("${A//x}", Error::MissingSlash { offset: 0 }),
        (
            "a ${V#\\x}",
            Error::InvalidPattern {
                pattern: "\\x".into(),
                escaped: Some('x'),
                offset: 2,
            },
        ),
        (
            "${V//\\q/r}",
            Error::InvalidPattern {
                pattern: "\\q".into(),
                escaped: Some('q'),
                offset: 0,
            },
        ),
        (
            "한${NOPE:?boom}",
            Error::Required {
                name: "NOPE".into(),
                message: "boom".into(),
                offset: 3,
            },
        ),
        (
            "${A:-${NOPE?gone $A}}",
            Error::Required {
                name: "NOPE".into(),
                message: "gone x".into(),
                offset: 5,
            },
        ),
    ];
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = err(input);
        if &got != expected || got.offset() != expected.offset() {
            failures.push(format!("  {input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "error failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn messages() {
    let cases = [
        ("'a", "unterminated single quote"),
        ("\"a", "unterminated double quote"),
        ("${A", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${A/b}", "syntax error: missing '/' in ${...}"),
        ("${A:=b}", "unsupported modifier (:=) in substitution"),
        (
            "${V#\\x}",
            "invalid pattern (\\x) in substitution: invalid escape '\\x'",
        ),
        ("${V#$A\\}", "syntax error: missing '}'"),
        ("${NOPE?}", "NOPE: is not allowed to be unset"),
        ("${NOPE:?}", "NOPE: is not allowed to be unset"),
        ("${E:?}", "E: is not allowed to be empty"),
        ("${E:?must be set}", "E: must be set"),
    ];
    for (input, message) in cases {
        assert_eq!(err(input).to_string(), message, "{input:?}");
    }
    // A trailing `\` can only reach the pattern through a variable.
    let e = env(&[("V", "abc"), ("BS", "a\\")]);
    let got = Lexer::default().process_word("${V#$BS}", &e).unwrap_err();
    assert_eq!(
        got.to_string(),
        "invalid pattern (a\\) in substitution: trailing '\\' in pattern"
    );
}

#[test]
fn set_values_do_not_fail_required_checks() {
    let e = env(&[("A", "x"), ("E", "")]);
    assert_eq!(
        Lexer::default()
            .process_word("${A:?boom}${E?boom}", &e)
            .unwrap(),
        "x"
    );
}

#[test]
fn nesting_is_limited_instead_of_overflowing_the_stack() {
    let nested = |levels: usize| format!("{}x{}", "${a:-\"".repeat(levels), "\"}".repeat(levels));
    let e = env(&[]);
    assert_eq!(Lexer::default().process_word(&nested(64), &e).unwrap(), "x");
    assert_eq!(
        Lexer::default().process_word(&nested(65), &e).unwrap_err(),
        Error::TooDeep {
            limit: 64,
            offset: 64 * 6
        }
    );
    // Far beyond the limit: still an error, not a crash.
    assert!(
        Lexer::default()
            .process_words(&nested(100_000), &e)
            .is_err()
    );
}
