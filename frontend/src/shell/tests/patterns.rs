//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`.

use super::{check_words, env};
use crate::shell::Lexer;

const V: &str = "/usr/local/lib/libfoo.so.1.2";

fn pattern_env() -> std::collections::BTreeMap<String, String> {
    env(&[
        ("V", V),
        ("T", "banana"),
        ("S", "ab"),
        ("X", "a*b*c"),
        ("B", "a}b}c"),
        ("BR", "[a]b"),
        ("K", "한국어"),
        ("N", "a\nb"),
        ("E", ""),
        ("P", "*."),
        ("Q", "\\*"),
        ("H", "#xy"),
    ])
}

#[test]
fn prefix_and_suffix_removal() {
    check_words(
        Lexer::default(),
        &pattern_env(),
        &[
            (r"${V#*/}", Some("usr/local/lib/libfoo.so.1.2")),
            (r"${V##*/}", Some("libfoo.so.1.2")),
            (r"${V%.*}", Some("/usr/local/lib/libfoo.so.1")),
            (r"${V%%.*}", Some("/usr/local/lib/libfoo")),
            (r"${V%/*}", Some("/usr/local/lib")),
            (r"${V##*.}", Some("2")),
            (r"${V#/*/}", Some("local/lib/libfoo.so.1.2")),
            (r"${V##/*/}", Some("libfoo.so.1.2")),
            (r"${V#/usr}", Some("/local/lib/libfoo.so.1.2")),
            // Prefix and suffix patterns are anchored.
            (r"${V#usr}", Some(V)),
            (r"${V%lib}", Some(V)),
            (r"${V%?}", Some("/usr/local/lib/libfoo.so.1.")),
            (r"${V#??}", Some("sr/local/lib/libfoo.so.1.2")),
            (r"${T#*a}", Some("nana")),
            (r"${T##*a}", Some("")),
            (r"${T%a*}", Some("banan")),
            (r"${T%%a*}", Some("b")),
            (r"${T%n?}", Some("bana")),
            (r"${T%%n?}", Some("bana")),
            // Empty patterns remove nothing.
            (r"${V#}", Some(V)),
            (r"${V##}", Some(V)),
            (r"${V%}", Some(V)),
            (r"${V%%}", Some(V)),
            // Unset and empty values stay empty.
            (r"${NOPE#*}", Some("")),
            (r"${NOPE%%x}", Some("")),
            (r"${E#*}", Some("")),
            // `:` before `#` / `%` changes nothing.
            (r"${V:#*/}", Some("usr/local/lib/libfoo.so.1.2")),
            (r"${V:%/*}", Some("/usr/local/lib")),
            // Patterns are processed words: nested expansions and variables.
            (r"${V#${NOPE:-/usr}}", Some("/local/lib/libfoo.so.1.2")),
            (r"${V#$P}", Some("so.1.2")),
            // Non-ASCII: `?` is one character.
            (r"${K#?}", Some("국어")),
            (r"${K%?}", Some("한국")),
            // Like Go's `.`, wildcards never match a newline (bash would give "").
            (r"${N##*}", Some("\nb")),
            (r"${N%%*}", Some("a\n")),
        ],
    );
}

#[test]
fn escapes_and_special_characters_in_patterns() {
    check_words(
        Lexer::default(),
        &pattern_env(),
        &[
            (r"${X#*\*}", Some("b*c")),
            (r"${X##*\*}", Some("c")),
            (r"${X%\**}", Some("a*b")),
            (r"${X%%\**}", Some("a")),
            (r"${X//\*/+}", Some("a+b+c")),
            // An escape that comes from a variable's value still escapes.
            (r"${X#a$Q}", Some("b*c")),
            // `\}` puts a `}` into the pattern.
            (r"${B#*\}}", Some("b}c")),
            (r"${B%\}*}", Some("a}b")),
            (r"${B//\}/.}", Some("a.b.c")),
            (r"${B#'a}'}", Some("b}c")),
            // No bracket expressions: `[...]` is literal text.
            (r"${BR#[a]}", Some("b")),
            (r"${BR#[ab]}", Some("[a]b")),
            (r"${T#[b]}", Some("banana")),
            // Quoting does not make `*` literal: BuildKit sees `a*` either way.
            (r#"${X#"a*"}"#, Some("*b*c")),
            // Escapes other than \* \? \\ \} \/ are errors, even \#.
            (r"${V#\x}", None),
            (r"${V%a\q}", None),
            (r"${H#\#x}", None),
            (r"${H#?x}", Some("y")),
            (r"${H##x}", Some("#xy")),
            // A quoted leading `#` is still read as the `##` marker, leaving an empty pattern.
            (r"${H#'#'}", Some("#xy")),
            // Unterminated.
            (r"${V#x", None),
            (r"${V%%", None),
        ],
    );
}

#[test]
fn replacement() {
    check_words(
        Lexer::default(),
        &pattern_env(),
        &[
            (r"${V/lib/LIB}", Some("/usr/local/LIB/libfoo.so.1.2")),
            (r"${V//lib/LIB}", Some("/usr/local/LIB/LIBfoo.so.1.2")),
            (r"${V//\//:}", Some(":usr:local:lib:libfoo.so.1.2")),
            (r"${V/*\//}", Some("libfoo.so.1.2")),
            (r"${V/\/usr\//~/}", Some("~/local/lib/libfoo.so.1.2")),
            // `*` is greedy in replacements.
            (r"${V/l*b/X}", Some("/usr/Xfoo.so.1.2")),
            (r"${T//a/}", Some("bnn")),
            (r"${T/a/}", Some("bnana")),
            (r"${S//?/.}", Some("..")),
            (r"${S/x*/y}", Some("ab")),
            (r"${K/국/-}", Some("한-어")),
            (r"${N//?/.}", Some(".\n.")),
            // Empty pattern: matches everywhere for `//`, nothing changes when the replacement is
            // empty too.
            (r"${S///-}", Some("-a-b-")),
            (r"${S///}", Some("ab")),
            // Go's ReplaceAll skips an empty match right after a match.
            (r"${S//*/-}", Some("-")),
            // Unset variables are the empty string, which `*` matches.
            (r"${NOPE/x/y}", Some("")),
            (r"${NOPE//*/y}", Some("y")),
            (r"${NOPE/*/y}", Some("y")),
            // No anchors: `/#` and `/%` look for a literal `#` / `%`.
            (r"${V/#\/usr/X}", Some(V)),
            (r"${V/%2/X}", Some(V)),
            // Only `/` ends the pattern, so a `}` before it belongs to the pattern.
            (r"${T/n}/x}", Some("banana")),
            // The replacement keeps its escapes (BuildKit reads it with raw escapes).
            (r"${T/b/\}}", Some(r"\}anana")),
            // `$0` in the word is a (unset) special parameter before any template sees it.
            (r"${T//an/<$0>}", Some("b<><>a")),
            // `//` treats the replacement as a Go template; `/` inserts it literally.
            (r"${T//an/'<$0>'}", Some("b<an><an>a")),
            (r"${T//n/'${0}${0}'}", Some("bannanna")),
            (r"${T/an/'<$0>'}", Some("b<$0>ana")),
            (r"${T//an/'$$'}", Some("b$$a")),
            (r"${T//an/\$0}", Some(r"b\an\ana")),
            // Missing separators.
            (r"${V//}", None),
            (r"${V//x}", None),
            (r"${V/x}", None),
            (r"${V/x/y", None),
        ],
    );
}
