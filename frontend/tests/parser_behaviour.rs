//! Parser behaviour beyond BuildKit's fixtures: directives, warnings, line endings, limits,
//! errors with their spans, and Go's `strconv.Quote`.

use dray_frontend::parser::{Error, parse, quote, quote_bytes};
use dray_frontend::{LineColumn, LineIndex};

fn dump(src: &str) -> String {
    match parse(src.as_bytes()) {
        Ok(ast) => ast.dump(),
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

fn error(src: &str) -> Error {
    match parse(src.as_bytes()) {
        Ok(ast) => panic!("{src:?} parsed:\n{}", ast.dump()),
        Err(e) => e,
    }
}

// ---- directives ----

#[test]
fn directives_are_read_at_the_top_only() {
    let ast =
        parse(b"# Syntax = docker/dockerfile:1\n#ESCAPE=`\n# check=skip=all\nFROM a `\n  b\n")
            .expect("parses");
    assert_eq!(
        ast.directives.syntax.as_ref().map(|d| d.value.as_str()),
        Some("docker/dockerfile:1")
    );
    assert_eq!(
        ast.directives.check.as_ref().map(|d| d.value.as_str()),
        Some("skip=all")
    );
    assert_eq!(ast.escape, '`');
    assert_eq!(ast.dump(), "(from \"a\" \"b\")");
    assert!(
        ast.instructions[0].prev_comment.is_empty(),
        "directives are not comments"
    );

    // After an ordinary comment, `# escape=` is just a comment.
    let ast = parse(b"# hello\n# escape=`\nFROM a\n").expect("parses");
    assert_eq!(ast.escape, '\\');
    assert!(ast.directives.escape.is_none());
    assert_eq!(ast.instructions[0].prev_comment, ["hello", "escape=`"]);

    // After a blank line too.
    let ast = parse(b"\n# escape=`\nFROM a\n").expect("parses");
    assert_eq!(ast.escape, '\\');
    // And an unknown key ends the search.
    let ast = parse(b"# foo=bar\n# escape=`\nFROM a\n").expect("parses");
    assert_eq!(ast.escape, '\\');
}

#[test]
fn repeated_directive_is_an_error() {
    let src = "# escape=\\\n# ESCAPE=`\nFROM a\n";
    let err = error(src);
    assert_eq!(
        err.to_string(),
        "only one escape parser directive can be used"
    );
    assert_eq!(&src[err.span().range()], "# ESCAPE=`");
    let err = error("# syntax=a\n# syntax=b\nFROM a\n");
    assert_eq!(
        err.to_string(),
        "only one syntax parser directive can be used"
    );
}

#[test]
fn invalid_escape_token() {
    let src = "# escape=x\nFROM a\n";
    let err = error(src);
    assert_eq!(
        err.to_string(),
        "invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(&src[err.span().range()], "x");
}

#[test]
fn byte_order_mark_is_dropped() {
    let ast = parse(b"\xEF\xBB\xBF# escape=`\nFROM a`\n b\n").expect("parses");
    assert_eq!(ast.escape, '`');
    assert_eq!(ast.dump(), "(from \"a\" \"b\")");
    let ast = parse(b"\xEF\xBB\xBFFROM a\n").expect("parses");
    assert_eq!(ast.instructions[0].keyword, "FROM");
    assert_eq!(
        ast.instructions[0].keyword_span.start, 3,
        "spans count the BOM"
    );
}

// ---- lines ----

#[test]
fn crlf_and_missing_final_newline() {
    assert_eq!(
        dump("FROM a\r\nRUN b \\\r\n  c\r\n"),
        "(from \"a\")\n(run \"b   c\")"
    );
    assert_eq!(dump("FROM a\nRUN b"), "(from \"a\")\n(run \"b\")");
    assert_eq!(dump("FROM a\nRUN b \\"), "(from \"a\")\n(run \"b\")");
}

#[test]
fn empty_continuation_lines_warn() {
    let src = "FROM a\nRUN something \\\n\n    following \\\n  \n    more\n";
    let ast = parse(src.as_bytes()).expect("parses");
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(
        ast.warnings[0].message,
        "Empty continuation line found in: RUN something     following     more"
    );
    let index = LineIndex::new(src.as_bytes());
    assert_eq!(index.line_column(ast.warnings[0].span.start).line, 3);
    // Comment lines inside a continuation are dropped silently.
    let ast = parse(b"FROM a\nRUN a \\\n# c\n b\n").expect("parses");
    assert!(ast.warnings.is_empty());
    assert_eq!(ast.dump(), "(from \"a\")\n(run \"a  b\")");
}

#[test]
fn comments_attach_to_the_next_instruction() {
    let ast = parse(b"# one\n  # two\n\nFROM a\n#\n# three\nRUN b\n").expect("parses");
    assert_eq!(ast.instructions[0].prev_comment, ["one", "# two"]);
    assert_eq!(ast.instructions[1].prev_comment, ["three"]);
}

#[test]
fn line_of_65536_bytes_is_an_error() {
    let mut src = b"FROM a\nRUN ".to_vec();
    src.resize(7 + 65536, b'x');
    src.push(b'\n');
    let err = parse(&src).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "dockerfile line greater than max allowed size of 65535"
    );
    assert_eq!(err.span().start, 7);
    assert_eq!(err.span().len(), 65536);

    let mut ok = b"FROM a\nRUN ".to_vec();
    ok.resize(7 + 65535, b'x');
    ok.push(b'\n');
    assert!(parse(&ok).is_ok());

    // A too-long line in the middle of a heredoc ends the body: unterminated.
    let mut doc = b"FROM a\nRUN <<EOF\n".to_vec();
    doc.resize(doc.len() + 70000, b'y');
    assert!(matches!(
        parse(&doc),
        Err(Error::UnterminatedHeredoc { .. })
    ));
}

#[test]
fn invalid_utf8_is_replaced_and_spans_stay_on_bytes() {
    let src = b"FROM a\nRUN \xff echo\nUSER me\n";
    let ast = parse(src).expect("parses");
    assert_eq!(ast.instructions[1].args[0].value, "\u{fffd} echo");
    let user = &ast.instructions[2];
    assert_eq!(user.keyword_span.start, 18);
    assert_eq!(&src[user.args[0].span.range()], b"me");
}

// ---- errors ----

#[test]
fn env_and_label_shapes() {
    let err = error("FROM a\nLABEL onlykey\n");
    assert_eq!(err.to_string(), "LABEL must have two arguments");
    let src = "FROM a\nENV a=b c d=e\n";
    let err = error(src);
    assert_eq!(
        err.to_string(),
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(&src[err.span().range()], "c");
    assert_eq!(
        dump("ENV\nENV a=\nLABEL \"a b\"=c"),
        "(env)\n(env \"a\" \"\" \"=\")\n(label \"\\\"a b\\\"\" \"c\" \"=\")"
    );
}

#[test]
fn non_string_json_element() {
    let src = "FROM a\nCMD [\"a\", 1]\n";
    let err = error(src);
    assert!(matches!(err, Error::NotStringArray { .. }));
    assert_eq!(&src[err.span().range()], "1");
    // Invalid JSON, by contrast, falls back to shell form.
    assert_eq!(dump("CMD [\"a\", 1e400]"), "(cmd \"[\\\"a\\\", 1e400]\")");
    assert_eq!(
        dump("COPY [\"a\" \"b\"]"),
        "(copy \"[\\\"a\\\"\" \"\\\"b\\\"]\")"
    );
}

#[test]
fn bad_flag_span_has_line_and_column() {
    let src = "FROM a\nCOPY --chown=me \\\n    --frm=x a b\n";
    let ast = parse(src.as_bytes()).expect("parses");
    let copy = &ast.instructions[1];
    assert_eq!(
        copy.flags
            .iter()
            .map(|f| f.text.as_str())
            .collect::<Vec<_>>(),
        ["--chown=me", "--frm=x"]
    );
    let bad = &copy.flags[1];
    assert_eq!(&src[bad.span.range()], "--frm=x");
    let index = LineIndex::new(src.as_bytes());
    assert_eq!(
        index.line_column(bad.span.start),
        LineColumn { line: 3, column: 5 }
    );
    assert_eq!(&src[copy.keyword_span.range()], "COPY");
    assert_eq!(&src[copy.args[1].span.range()], "b");
    assert_eq!(
        &src[copy.span.range()],
        "COPY --chown=me \\\n    --frm=x a b"
    );
    assert_eq!(copy.original, "COPY --chown=me     --frm=x a b");
}

#[test]
fn onbuild_nesting_is_bounded() {
    assert_eq!(
        dump("ONBUILD ONBUILD RUN x"),
        "(onbuild (onbuild (run \"x\")))"
    );
    // Continuation lines, so that no physical line hits the 64 KiB limit.
    let deep = "ONBUILD \\\n".repeat(10_000) + "RUN x";
    assert!(matches!(error(&deep), Error::OnbuildTooDeep { .. }));
}

#[test]
fn odd_instructions() {
    assert_eq!(dump("FOO bar baz"), "(foo \"\")");
    assert_eq!(dump("from\u{a0}x"), "(from\u{a0}x \"\")");
    assert_eq!(dump("\\\n"), "(\"\")");
    assert_eq!(
        dump("HEALTHCHECK NONE\nSTOPSIGNAL  SIGKILL "),
        "(healthcheck \"NONE\")\n(stopsignal \"SIGKILL\")"
    );
    assert_eq!(
        dump("ONBUILD --x COPY --from=b a c"),
        "(onbuild [\"--x\"] (copy [\"--from=b\"] \"a\" \"c\"))"
    );
    assert_eq!(dump("ENV A=\"é\""), "(env \"A\" \"\\\"é\\\"\" \"=\")");
}

#[test]
fn empty_input_variants() {
    for src in [
        "",
        "\n\n",
        "# only\n# comments\n",
        "# escape=`\n",
        "\u{feff}",
    ] {
        let err = error(src);
        assert_eq!(err.to_string(), "file with no instructions", "{src:?}");
        assert_eq!(err.span().start, src.len());
    }
}

// ---- Go's strconv.Quote ----

#[test]
fn quote_edge_cases() {
    assert_eq!(quote(""), "\"\"");
    assert_eq!(quote("\0"), "\"\\x00\"");
    assert_eq!(quote("a\u{a0}b"), "\"a\\u00a0b\"");
    assert_eq!(quote("\u{200b}\u{2028}"), "\"\\u200b\\u2028\"");
    assert_eq!(quote("\u{1F600}\u{10FFFF}"), "\"\u{1F600}\\U0010ffff\"");
    assert_eq!(quote("\u{e000}"), "\"\\ue000\"");
    assert_eq!(quote("☃ 한 ♥"), "\"☃ 한 ♥\"");
    assert_eq!(
        quote_bytes(b"\xff\xc3(\xed\xa0\x80"),
        "\"\\xff\\xc3(\\xed\\xa0\\x80\""
    );
}

// ---- ports of BuildKit's inline parser tests ----

#[test]
fn buildkit_warns_on_empty_continuation_lines() {
    let src = "\nFROM alpine:3.6\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
    let ast = parse(src.as_bytes()).expect("parses");
    let messages: Vec<&str> = ast.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Empty continuation line found in: RUN something     following     more",
            "Empty continuation line found in: RUN another     thing",
        ]
    );
    assert_eq!(
        ast.dump(),
        "(from \"alpine:3.6\")\n(run \"something     following     more\")\n(run \"another     thing\")\n(run \"non-indented    after-comment\")\n(run \"indented     comment\")"
    );
}

#[test]
fn buildkit_parse_words_through_arg() {
    assert_eq!(dump("ARG foo"), "(arg \"foo\")");
    assert_eq!(dump("ARG foo bar"), "(arg \"foo\" \"bar\")");
    assert_eq!(dump("ARG foo\\ bar"), "(arg \"foo\\\\ bar\")");
    assert_eq!(dump("ARG foo=bar"), "(arg \"foo=bar\")");
    assert_eq!(
        dump("ARG foo bar 'abc xyz'"),
        "(arg \"foo\" \"bar\" \"'abc xyz'\")"
    );
    assert_eq!(
        dump("ARG foo bar \"abc xyz\""),
        "(arg \"foo\" \"bar\" \"\\\"abc xyz\\\"\")"
    );
    assert_eq!(dump("ARG àöû"), "(arg \"àöû\")");
    assert_eq!(
        dump("ARG föo bàr \"âbc xÿz\""),
        "(arg \"föo\" \"bàr\" \"\\\"âbc xÿz\\\"\")"
    );
}

#[test]
fn buildkit_returns_scanner_errors() {
    let src = format!("\n\t\tFROM image\n\t\tLABEL test={}\n", "a".repeat(65536));
    let err = parse(src.as_bytes()).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "dockerfile line greater than max allowed size of 65535"
    );
    let index = LineIndex::new(src.as_bytes());
    assert_eq!(
        index.line_column(err.span().start),
        LineColumn { line: 3, column: 1 }
    );
}

#[test]
fn arg_spans_point_into_the_source() {
    let src = "FROM img AS b\nENV k=\"v 1\" \\\n    k2=x\nLABEL legacy some value\nCMD [\"a\", \"b c\"]\nHEALTHCHECK --interval=1s CMD curl x\n";
    let ast = parse(src.as_bytes()).expect("parses");
    let texts = |i: usize| -> Vec<&str> {
        ast.instructions[i]
            .args
            .iter()
            .map(|a| &src[a.span.range()])
            .collect()
    };
    assert_eq!(texts(0), ["img", "AS", "b"]);
    assert_eq!(texts(1), ["k", "\"v 1\"", "=", "k2", "x", "="]);
    assert_eq!(texts(2), ["legacy", "some value", " "]);
    assert_eq!(texts(3), ["\"a\"", "\"b c\""]);
    assert!(ast.instructions[3].json);
    assert_eq!(texts(4), ["CMD", "curl x"]);
    assert_eq!(
        &src[ast.instructions[4].flags[0].span.range()],
        "--interval=1s"
    );
    let env = &ast.instructions[1];
    assert_eq!((env.start_line, env.end_line), (2, 3));
    assert_eq!(&src[env.span.range()], "ENV k=\"v 1\" \\\n    k2=x");
}
