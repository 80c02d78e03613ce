//! Heredocs, after BuildKit's `parser_heredoc_test.go` (rewritten, not copied), plus dray's
//! span and error behaviour.

use dray_frontend::parser::{Error, Heredoc, parse};
use dray_frontend::{LineColumn, LineIndex};

/// (name, content, fd, expand, chomp) of a node's heredocs.
type Summary = Vec<(String, String, u32, bool, bool)>;

fn summary(heredocs: &[Heredoc]) -> Summary {
    heredocs
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                h.content.clone(),
                h.file_descriptor,
                h.expand,
                h.chomp,
            )
        })
        .collect()
}

fn h(name: &str, content: &str, fd: u32, expand: bool, chomp: bool) -> Summary {
    vec![(name.into(), content.into(), fd, expand, chomp)]
}

const BUILDKIT_CASES: &str = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";

#[test]
fn buildkit_heredoc_table() {
    let ast = parse(BUILDKIT_CASES.as_bytes()).expect("parses");
    let want: Vec<Summary> = vec![
        vec![],                          // ENV NAME=me
        vec![],                          // RUN ls
        vec![],                          // USER <<INVALID: USER takes no heredoc
        vec![],                          // INVALID: an (unknown) instruction
        h("EMPTY", "", 0, true, false),  // RUN <<EMPTY
        h("EMPTY2", "", 3, true, false), // RUN 3<<EMPTY2
        vec![],                          // RUN "<<NOHEREDOC"
        h("INDENT", "\tfoo\n\tbar\n", 0, true, false),
        // dray hands out `<<-` bodies with the tabs already removed (see `Heredoc::content`).
        h("UNINDENT", "baz\nquux\n", 0, true, true),
        h("UNINDENT2", "baz\nquux\n", 0, true, true),
        h("EXPAND", "expand $NAME\n", 0, true, true),
        h("NOEXPAND", "don't expand $NAME\n", 0, false, true),
        h("COPY", "echo hello world\necho foo bar\n", 0, true, false),
        h(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            0,
            true,
            false,
        ),
        h("MOUNT", "echo hello\n", 0, true, false),
        vec![
            ("FILE1".into(), "content 1\n".into(), 0, true, false),
            ("FILE2".into(), "content 2\n".into(), 0, true, false),
        ],
        h("EOF", "\"foo\"\n'bar'\n", 0, true, false),
        vec![
            ("X".into(), "Y\n".into(), 0, true, false),
            ("Y".into(), "X\n".into(), 0, true, false),
        ],
        h("COMPLEX", "print('hello world')\n", 0, true, false),
        h("file.txt", "hello world\n", 0, true, false),
        h("eof", "echo foo\n", 0, false, false),
        h("eo'f", "echo foo\n", 0, true, false),
        h("eo'f", "echo foo\n", 0, false, false),
        h("one two", "echo bar\n", 0, false, false),
        h("$EOF", "", 0, true, false),
        h("EOF", "", 0, true, false),
        h("EOF", "", 0, true, false),
    ];
    let got: Vec<Summary> = ast
        .instructions
        .iter()
        .skip(1)
        .map(|n| summary(&n.heredocs))
        .collect();
    assert_eq!(got.len(), want.len(), "instruction count");
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        let original = &ast.instructions[i + 1].original;
        assert_eq!(got, want, "instruction {} ({original})", i + 1);
    }
    // Dump never shows heredoc bodies.
    assert!(ast.dump().contains("(run \"<<COMPLEX python3\")"));
}

#[test]
fn json_form_has_no_heredocs() {
    let src = "FROM alpine\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\nCOPY [\"<<EOF\", \"/x\"]\n";
    let ast = parse(src.as_bytes()).expect("parses");
    assert_eq!(
        ast.instructions.len(),
        5,
        "no line was swallowed as a heredoc body"
    );
    for node in &ast.instructions {
        assert!(node.heredocs.is_empty(), "{}", node.original);
    }
}

#[test]
fn heredoc_in_the_middle_of_a_command() {
    let src =
        "FROM a\nRUN cat <<EOF > /f && cat <<-'X' >> /f\nhello $x\nEOF\n\t\tbye\n\tX\nRUN ok\n";
    let ast = parse(src.as_bytes()).expect("parses");
    let run = &ast.instructions[1];
    assert_eq!(
        summary(&run.heredocs),
        vec![
            ("EOF".into(), "hello $x\n".into(), 0, true, false),
            ("X".into(), "bye\n".into(), 0, false, true),
        ]
    );
    assert_eq!(
        (run.start_line, run.end_line),
        (2, 6),
        "heredoc bodies count toward end_line"
    );
    assert_eq!(ast.instructions[2].start_line, 7);
    assert_eq!(
        ast.dump(),
        "(from \"a\")\n(run \"cat <<EOF > /f && cat <<-'X' >> /f\")\n(run \"ok\")"
    );
}

#[test]
fn heredoc_inside_onbuild() {
    let src = "FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nONBUILD RUN [\"<<EOF\"]\n";
    let ast = parse(src.as_bytes()).expect("parses");
    assert_eq!(
        summary(&ast.instructions[1].heredocs),
        h("EOF", "echo hi\n", 0, true, false)
    );
    assert!(ast.instructions[2].heredocs.is_empty());
    assert_eq!(
        ast.dump(),
        "(from \"a\")\n(onbuild (run \"<<EOF\"))\n(onbuild (run \"<<EOF\"))"
    );
}

#[test]
fn heredoc_word_forms() {
    // `<<` without a name, `<<<`, and a name followed by a command on the same line.
    let src =
        "FROM a\nRUN echo <<\nRUN cat <<<EOF\nRUN <<EOF sh -c 'x'\nbody\nEOF\nRUN cat <<  E\nE\n";
    let ast = parse(src.as_bytes()).expect("parses");
    assert!(ast.instructions[1].heredocs.is_empty(), "<< without a name");
    assert!(
        ast.instructions[2].heredocs.is_empty(),
        "<<< is not a heredoc"
    );
    assert_eq!(
        summary(&ast.instructions[3].heredocs),
        h("EOF", "body\n", 0, true, false)
    );
    assert_eq!(
        summary(&ast.instructions[4].heredocs),
        h("E", "", 0, true, false)
    );
    assert_eq!(ast.instructions.len(), 5);
}

#[test]
fn crlf_bodies_keep_their_line_endings() {
    let src = "FROM a\r\nRUN <<EOF\r\nline\r\nEOF\r\nRUN b\r\n";
    let ast = parse(src.as_bytes()).expect("parses");
    assert_eq!(
        summary(&ast.instructions[1].heredocs),
        h("EOF", "line\r\n", 0, true, false)
    );
    assert_eq!(ast.dump(), "(from \"a\")\n(run \"<<EOF\")\n(run \"b\")");
}

#[test]
fn heredoc_spans() {
    let src = "FROM a\nCOPY <<EOF /x\nbody\nEOF\n";
    let ast = parse(src.as_bytes()).expect("parses");
    let copy = &ast.instructions[1];
    let doc = &copy.heredocs[0];
    assert_eq!(&src[doc.span.range()], "body\nEOF");
    assert_eq!(&src[copy.span.range()], "COPY <<EOF /x\nbody\nEOF");
}

#[test]
fn unterminated_heredoc_points_at_the_word() {
    let src = "FROM a\nRUN echo \\\n  && cat <<EOF\nno end\n";
    let err = parse(src.as_bytes()).expect_err("must fail");
    assert!(
        matches!(err, Error::UnterminatedHeredoc { ref name, .. } if name == "EOF"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "unterminated heredoc");
    assert_eq!(&src[err.span().range()], "<<EOF");
    let index = LineIndex::new(src.as_bytes());
    assert_eq!(
        index.line_column(err.span().start),
        LineColumn {
            line: 3,
            column: 10
        }
    );
}

#[test]
fn second_heredoc_unterminated() {
    let src = "FROM a\nCOPY <<A <<B /x\na\nA\nb\n";
    let err = parse(src.as_bytes()).expect_err("must fail");
    assert_eq!(&src[err.span().range()], "<<B");
}

#[test]
fn heredoc_words_for_the_instruction_layer() {
    use dray_frontend::parser::parse_heredoc_word;
    let doc = parse_heredoc_word("<<-'EOF'").expect("a heredoc");
    assert_eq!(
        (
            doc.name.as_str(),
            doc.expand,
            doc.chomp,
            doc.file_descriptor
        ),
        ("EOF", false, true, 0)
    );
    assert_eq!(
        parse_heredoc_word("3<<X").map(|d| d.file_descriptor),
        Some(3)
    );
    for not in ["/dest", "<<", "<<<EOF", "<<'EOF", "a<<EOF", "<<EOF sh"] {
        assert!(parse_heredoc_word(not).is_none(), "{not}");
    }
}
