//! Quotes, escapes (both escape tokens), names, modes, word splitting and `Env` impls.

use std::collections::HashMap;

use super::{check_words, env};
use crate::shell::{Env, Lexer};

#[test]
fn backtick_escape_token() {
    let lexer = Lexer::new('`');
    assert_eq!(lexer.escape(), '`');
    check_words(
        lexer,
        &env(&[("A", "x"), ("Y", "`*x"), ("Z", "*x")]),
        &[
            ("a`$A", Some("a$A")),
            (r"C:\path\$A", Some(r"C:\path\x")),
            ("ab`", Some("ab")),
            ("a``b", Some("a`b")),
            ("a` b", Some("a b")),
            (r#""a`"b""#, Some(r#"a"b"#)),
            (r#""a\"b"#, Some(r"a\b")),
            (r#""x``y""#, Some("x`y")),
            (r#""x`ny""#, Some("x`ny")),
            (r#""`$A""#, Some("$A")),
            ("'`$A'", Some("`$A")),
            ("${NOPE:-`}}", Some("}")),
            ("${A:+`}x}", Some("}x")),
            // In patterns the backtick is kept and then is a literal character; `\` escapes.
            ("${Y#`*}", Some("*x")),
            (r"${Z#\*}", Some("x")),
            (r"${Z#\q}", None),
            ("\"a`", None),
        ],
    );
    assert_eq!(
        lexer.process_words("a` b c", &env(&[])).unwrap(),
        vec!["a b".to_string(), "c".to_string()]
    );
}

#[test]
fn names_escapes_and_quotes() {
    check_words(
        Lexer::default(),
        &env(&[("A", "x"), ("_a1", "y"), ("한", "k")]),
        &[
            ("\u{FEFF}$A", Some("x")),
            ("a\u{FEFF}", Some("a\u{FEFF}")),
            ("$_a1-", Some("y-")),
            ("$한", Some("k")),
            ("$한국", Some("")),
            // U+2170 is a letter number (`Nl`), not a letter for Go: `$` stays literal.
            ("$\u{2170}", Some("$\u{2170}")),
            // Arabic-indic digits are `Nd`: part of the name.
            ("$A\u{0663}", Some("")),
            ("$1A", Some("A")),
            ("${A}}", Some("x}")),
            ("a$", Some("a$")),
            ("$ A", Some("$ A")),
            (r"\\", Some(r"\")),
            (r#""a\b""#, Some(r"a\b")),
            ("a\\\nb", Some("a\nb")),
            ("\"a\\\nb\"", Some("a\\\nb")),
            // Unlike sh, BuildKit does not let `\` escape a backtick inside double quotes.
            (r#""a\`b""#, Some(r"a\`b")),
            (r#""a'b'$A""#, Some("a'b'x")),
            ("'a\"b'", Some("a\"b")),
            (r#"${NOPE:-'$A'}"#, Some("$A")),
            (r#"${NOPE:-"$A"}"#, Some("x")),
            (r"${A:+\}}", Some("}")),
            ("${A-${B-${C-deep}}}", Some("x")),
            ("${Q-${B-${C-deep}}}", Some("deep")),
        ],
    );
}

#[test]
fn modes() {
    let e = env(&[("A", "x")]);
    let base = Lexer::new('\\');

    let raw_quotes = base.raw_quotes(true);
    assert_eq!(
        raw_quotes.process_word(r#"'a'"b$A""#, &e).unwrap(),
        r#"'a'"bx""#
    );
    // Builders return new values and leave the receiver alone.
    assert_eq!(base.process_word("'a'", &e).unwrap(), "a");
    assert_ne!(base, raw_quotes);

    let raw_escapes = base.raw_escapes(true);
    assert_eq!(
        raw_escapes.process_word(r"a\ b\$A", &e).unwrap(),
        r"a\ b\$A"
    );
    assert_eq!(raw_escapes.process_word(r"ab\", &e).unwrap(), r"ab\");
    // Quirk: an unescapable character after `\` in double quotes doubles the `\`.
    assert_eq!(raw_escapes.process_word(r#""a\xb""#, &e).unwrap(), r"a\\xb");
    assert_eq!(
        raw_escapes.process_word(r#""a\"b""#, &e).unwrap(),
        r#"a\"b"#
    );
    assert_eq!(
        raw_escapes.process_words(r"a\ b", &e).unwrap(),
        vec![r"a\ b".to_string()]
    );

    let skip = base.skip_unset_env(true);
    assert_eq!(
        skip.process_word(
            "$NOPE ${NOPE} ${NOPE:-d} ${NOPE#p} ${NOPE//a/b} ${NOPE?boom} $A",
            &e
        )
        .unwrap(),
        // BuildKit writes `//` back as `/`.
        "$NOPE ${NOPE} ${NOPE:-d} ${NOPE#p} ${NOPE/a/b} ${NOPE?boom} x"
    );
    // Even unknown modifiers pass through for unset variables.
    assert_eq!(skip.process_word("${NOPE:=v}", &e).unwrap(), "${NOPE:=v}");
    assert!(skip.process_word("${A:=v}", &e).is_err());

    let no_quotes = base.skip_process_quotes(true);
    assert_eq!(
        no_quotes.process_word(r#"'$A' "$A""#, &e).unwrap(),
        r#"'x' "x""#
    );
    assert_eq!(no_quotes.process_word("'", &e).unwrap(), "'");

    assert_eq!(Lexer::default(), Lexer::new('\\'));
}

#[test]
fn word_splitting() {
    let e = env(&[("SP", "  "), ("V", "a b"), ("TWO", "1 2")]);
    let cases: &[(&str, &[&str])] = &[
        (r#"a "" b"#, &["a", "b"]),
        ("''", &[]),
        ("a'' b", &["a", "b"]),
        ("$SP", &[]),
        ("x${SP}y", &["x", "y"]),
        (r#""$V w""#, &["a b w"]),
        ("x${TWO}y", &["x1", "2y"]),
        (r"a\ b c", &["a b", "c"]),
        ("${NOPE:-x y}", &["x", "y"]),
        // Quirk: the nested quotes are gone by the time the expansion is split.
        (r#"${NOPE:-"x y"}"#, &["x", "y"]),
        ("a\u{3000}b\u{A0}c", &["a", "b", "c"]),
        ("  lead   trail  ", &["lead", "trail"]),
        ("\t\n", &[]),
        ("", &[]),
        ("'a b'\"c d\"", &["a bc d"]),
    ];
    let mut failures = Vec::new();
    for &(input, expected) in cases {
        let got = Lexer::default().process_words(input, &e);
        if got.as_deref().map(|words| words == expected) != Ok(true) {
            failures.push(format!("  {input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "word splitting failures:\n{}",
        failures.join("\n")
    );
    assert!(Lexer::default().process_words("a 'b", &e).is_err());
}

#[test]
fn env_implementations() {
    let lexer = Lexer::default();
    let list = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(
        lexer.process_word("$A", &list).unwrap(),
        "2",
        "later entries win"
    );
    let slice: &[(&str, &str)] = &[("A", "1"), ("B", "")];
    assert_eq!(lexer.process_word("$A", &[("A", "arr")]).unwrap(), "arr");
    assert_eq!(
        lexer
            .process_word("$A${B-unset}${C-unset}", &slice)
            .unwrap(),
        "1unset"
    );
    let map: HashMap<String, String> = [("A".to_string(), "h".to_string())].into();
    assert_eq!(
        lexer.process_word("$A$a", &map).unwrap(),
        "h",
        "names are case-sensitive"
    );
    let by_ref: &dyn Env = &map;
    assert_eq!(Env::get(&by_ref, "A"), Some("h"));
}
