//! `parse` never panics, and what it returns is internally consistent, on arbitrary input.

use dray_frontend::parser::{Node, parse};
use proptest::prelude::*;

/// Dockerfile-ish fragments that exercise continuations, heredocs, JSON, quotes and comments.
const FRAGMENTS: &[&str] = &[
    "RUN ",
    "FROM ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "USER ",
    "FOO ",
    "\\\n",
    "`\n",
    "\\",
    "`",
    "\n",
    "\r\n",
    "\r",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "<<\"E\"F",
    "3<<X",
    "<< ",
    "<<<",
    "EOF\n",
    "\tEOF\n",
    "X\n",
    "[",
    "]",
    "[\"a\"",
    ", ",
    "\"",
    "'",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "# check=a\n",
    "\t",
    " ",
    "=",
    "a=b",
    "k v",
    "--",
    "--flag=",
    "--mount=type=cache ",
    "${",
    "}",
    "$x",
    "\u{feff}",
    "\u{a0}",
    "é",
    "☃",
    "\0",
    "null",
    "1",
    "{}",
    "\\u0000",
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|v| v.concat())
}

/// Spans lie inside the input and line numbers are ordered.
fn check_node(node: &Node, len: usize) {
    assert!(node.span.end <= len && node.span.start <= node.span.end);
    assert!(node.keyword_span.end <= len);
    assert!(node.start_line >= 1 && node.start_line <= node.end_line);
    for flag in &node.flags {
        assert!(flag.span.start <= flag.span.end && flag.span.end <= len);
    }
    for arg in &node.args {
        assert!(
            arg.span.start <= arg.span.end && arg.span.end <= len,
            "{arg:?}"
        );
    }
    for doc in &node.heredocs {
        assert!(doc.span.end <= len);
    }
    if let Some(inner) = &node.onbuild {
        check_node(inner, len);
    }
}

fn check(bytes: &[u8]) {
    match parse(bytes) {
        Ok(ast) => {
            let _ = ast.dump();
            let mut last_end = 0;
            for node in &ast.instructions {
                check_node(node, bytes.len());
                assert!(node.start_line > last_end, "instructions do not overlap");
                last_end = node.end_line;
            }
        }
        Err(e) => {
            let span = e.span();
            assert!(span.start <= span.end && span.end <= bytes.len(), "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn never_panics_on_dockerfile_fragments(src in fragments()) {
        check(src.as_bytes());
    }

    #[test]
    fn never_panics_on_fragments_with_garbage(src in fragments(), garbage in prop::collection::vec(any::<u8>(), 0..8), at in 0usize..64) {
        let mut bytes = src.into_bytes();
        let at = at.min(bytes.len());
        bytes.splice(at..at, garbage);
        check(&bytes);
    }
}
