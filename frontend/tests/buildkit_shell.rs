//! BuildKit's shell-lexer vectors (`envVarTest`, `wordsTest`), run with the exact harness rules
//! of `shared/conformance/buildkit-shell/README.md`.
//!
//! The vectors must be present: a missing directory is a failure, never a skip. Every failure is
//! collected and reported at once, and the number of executed cases is asserted so a harness
//! that silently reads nothing cannot pass.

use std::fs;
use std::path::PathBuf;

use dray_frontend::shell::Lexer;

/// Cases in `envVarTest` that apply to Unix: 226 `A` + 2 `U` (the 2 `W` are skipped).
const ENV_VAR_CASES: usize = 228;
/// Cases in `wordsTest`.
const WORDS_CASES: usize = 24;

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/buildkit-shell"
    ))
}

fn read_vector(name: &str) -> String {
    let path = vectors_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "BuildKit shell vector {} is missing or unreadable ({err}); these tests must not be \
             skipped: make shared/conformance/buildkit-shell available next to the workspace",
            path.display()
        )
    })
}

/// Lines as Go's `bufio.Scanner` yields them: split on `\n`, one trailing `\r` dropped, and no
/// empty line after a final `\n`.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
}

/// Go's `strings.TrimSpace`, which trims Unicode whitespace like `str::trim`.
fn trim(text: &str) -> &str {
    text.trim()
}

#[test]
fn env_var_test_vectors() {
    let text = read_vector("envVarTest");
    let env = vec![
        ("PWD".to_string(), "/home".to_string()),
        ("SHELL".to_string(), "bash".to_string()),
        ("KOREAN".to_string(), "한국어".to_string()),
        ("NULL".to_string(), String::new()),
    ];
    let lexer = Lexer::new('\\');
    let mut executed = 0;
    let mut skipped_windows = 0;
    let mut failures = Vec::new();

    for (number, line) in lines(&text) {
        if line.starts_with('#') {
            continue;
        }
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{number}: malformed line {line:?}"
        );
        let (platform, input, expected) = (trim(fields[0]), trim(fields[1]), trim(fields[2]));
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped_windows += 1;
                continue;
            }
            other => panic!("envVarTest:{number}: invalid platform tag {other:?}"),
        }
        executed += 1;
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(value), expected) => expected != "error" && value == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "envVarTest:{number}: input {input:?}\n    expected {expected:?}\n    got      {got:?}"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {executed} envVarTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        executed, ENV_VAR_CASES,
        "envVarTest: unexpected number of A/U cases"
    );
    assert_eq!(
        skipped_windows, 2,
        "envVarTest: unexpected number of W cases"
    );
}

#[test]
fn words_test_vectors() {
    let text = read_vector("wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut executed = 0;
    let mut definitions = 0;
    let mut failures = Vec::new();

    for (number, line) in lines(&text) {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with("ENV ") {
            let definition = line[3..].trim_start_matches(' ');
            let (name, value) = definition.split_once('=').unwrap_or((definition, ""));
            env.push((name.to_string(), value.to_string()));
            definitions += 1;
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest:{number}: malformed line {line:?}"
        );
        let input = trim(fields[0]);
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        executed += 1;
        let got = lexer
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "wordsTest:{number}: input {input:?}\n    expected {expected:?}\n    got      {got:?}"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {executed} wordsTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        executed, WORDS_CASES,
        "wordsTest: unexpected number of cases"
    );
    assert_eq!(definitions, 4, "wordsTest: unexpected number of ENV lines");
}
