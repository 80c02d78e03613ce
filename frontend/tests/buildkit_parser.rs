//! BuildKit's parser fixtures (`shared/conformance/buildkit-parser`), run against dray's parser.
//!
//! * `testfiles/<case>/Dockerfile` must parse and dump to exactly `testfiles/<case>/result`;
//! * `testfiles-negative/<case>/Dockerfile` must be rejected;
//! * `testfile-line/Dockerfile` must carry BuildKit's line numbers.
//!
//! The fixtures live outside the crate; a missing directory is a failure, never a skip.

use std::fs;
use std::path::{Path, PathBuf};

use dray_frontend::parser::parse;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/buildkit-parser"
);

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(FIXTURES);
    assert!(
        dir.is_dir(),
        "BuildKit parser fixtures not found at {} (expected the project's sibling `shared/` \
         directory); these tests must not be skipped",
        dir.display()
    );
    dir
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A line-by-line diff, good enough to spot the first difference.
fn diff(want: &str, got: &str) -> String {
    let mut out = String::new();
    let (want_lines, got_lines): (Vec<_>, Vec<_>) = (want.lines().collect(), got.lines().collect());
    for i in 0..want_lines.len().max(got_lines.len()) {
        let (w, g) = (want_lines.get(i), got_lines.get(i));
        if w == g {
            out.push_str(&format!("  {}\n", w.unwrap_or(&"")));
        } else {
            if let Some(w) = w {
                out.push_str(&format!("- {w}\n"));
            }
            if let Some(g) = g {
                out.push_str(&format!("+ {g}\n"));
            }
        }
    }
    out
}

#[test]
fn positive_cases_dump_exactly_like_buildkit() {
    let cases = case_dirs(&fixtures().join("testfiles"));
    assert_eq!(cases.len(), 33, "expected 33 positive BuildKit cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let source = read(&case.join("Dockerfile"));
        let want = String::from_utf8(read(&case.join("result"))).expect("result is UTF-8");
        match parse(&source) {
            Err(e) => failures.push(format!("{name}: unexpected error: {e}")),
            Ok(ast) => {
                let got = ast.dump() + "\n";
                if got != want {
                    failures.push(format!(
                        "{name}: dump differs (- want, + got)\n{}",
                        diff(&want, &got)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn negative_cases_are_rejected() {
    let cases = case_dirs(&fixtures().join("testfiles-negative"));
    assert_eq!(cases.len(), 4, "expected 4 negative BuildKit cases");
    for case in &cases {
        let source = read(&case.join("Dockerfile"));
        if let Ok(ast) = parse(&source) {
            panic!("{} parsed but must fail:\n{}", case.display(), ast.dump());
        }
    }
}

#[test]
fn negative_cases_have_buildkit_messages() {
    let dir = fixtures().join("testfiles-negative");
    let message = |case: &str| match parse(&read(&dir.join(case).join("Dockerfile"))) {
        Ok(_) => panic!("{case} must fail"),
        Err(e) => e.to_string(),
    };
    assert_eq!(message("empty_dockerfile"), "file with no instructions");
    assert_eq!(message("only_comments"), "file with no instructions");
    assert_eq!(message("env_no_value"), "ENV must have two arguments");
    assert_eq!(
        message("shykes-nested-json"),
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn line_numbers_match_buildkit() {
    let source = read(&fixtures().join("testfile-line").join("Dockerfile"));
    let ast = parse(&source).expect("testfile-line parses");
    let ranges: Vec<(usize, usize)> = ast
        .instructions
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(ranges, [(5, 5), (11, 12), (17, 31)]);
    let first = ast.instructions.first().map(|n| n.start_line);
    let last = ast.instructions.last().map(|n| n.end_line);
    assert_eq!((first, last), (Some(5), Some(31)), "root range");
    assert_eq!(ast.escape, '\\');
    assert_eq!(
        ast.directives.escape.as_ref().map(|d| d.value.as_str()),
        Some("\\")
    );
}
