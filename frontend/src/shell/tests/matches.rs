//! `process_word_with_matches`: which names were referenced, set or not.

use std::collections::BTreeSet;

use super::env;
use crate::shell::{Expansion, Lexer};

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn matched_and_unmatched_names() {
    let e = env(&[("A", "x"), ("C", ""), ("T", "banana")]);
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        ("plain", "plain", &[], &[]),
        ("${A:-$B} $C", "x ", &["A", "C"], &["B"]),
        (r"'$A' \$B", "$A $B", &[], &[]),
        ("$1$@${#}", "", &[], &["#", "1", "@"]),
        ("${A}${A}$A", "xxx", &["A"], &[]),
        ("${NOPE:+$A}", "", &["A"], &["NOPE"]),
        ("${C-d}${C:-d}", "d", &["C"], &[]),
        ("${T#$P}${T/$N/x}", "bananaxbanana", &["T"], &["N", "P"]),
        (r#""$A${Z}""#, "x", &["A"], &["Z"]),
    ];
    let mut failures = Vec::new();
    for &(input, value, matched, unmatched) in cases {
        let expected = Expansion {
            value: value.to_string(),
            matched: set(matched),
            unmatched: set(unmatched),
        };
        let got = Lexer::default().process_word_with_matches(input, &e);
        if got.as_ref() != Ok(&expected) {
            failures.push(format!("  {input:?}: expected {expected:?}, got {got:?}"));
        }
        if let Ok(got) = got {
            assert_eq!(Lexer::default().process_word(input, &e).unwrap(), got.value);
        }
    }
    assert!(
        failures.is_empty(),
        "matches failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn skip_unset_env_still_records_names() {
    let got = Lexer::default()
        .skip_unset_env(true)
        .process_word_with_matches("$A ${B:-x}", &env(&[("A", "1")]))
        .unwrap();
    assert_eq!(got.value, "1 ${B:-x}");
    assert_eq!(got.matched, set(&["A"]));
    assert_eq!(got.unmatched, set(&["B"]));
}

#[test]
fn positional_names_are_looked_up_like_buildkit() {
    // BuildKit does not special-case positional or special parameters when looking them up;
    // they are empty only because no Dockerfile environment defines them.
    let got = Lexer::default()
        .process_word_with_matches("$1${2:-two}", &env(&[("1", "one")]))
        .unwrap();
    assert_eq!(got.value, "onetwo");
    assert_eq!(got.matched, set(&["1"]));
    assert_eq!(got.unmatched, set(&["2"]));
}

#[test]
fn errors_return_no_expansion() {
    assert!(
        Lexer::default()
            .process_word_with_matches("${A:?}", &env(&[]))
            .is_err()
    );
}
