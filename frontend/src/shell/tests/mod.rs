//! Table tests for the shell lexer beyond BuildKit's vector files (those run in
//! `frontend/tests/buildkit_shell.rs`).
//!
//! Expected values follow BuildKit's `lex.go` and Go's `regexp` semantics, including the
//! quirks that differ from bash; such cases say so.

mod errors;
mod lexing;
mod matches;
mod patterns;
mod props;

use std::collections::BTreeMap;

use super::Lexer;

/// An environment from `(name, value)` pairs.
fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `(input, expected)` cases through `process_word`, where `expected == None` means an
/// error, and reports every mismatch at once.
fn check_words(lexer: Lexer, env: &BTreeMap<String, String>, cases: &[(&str, Option<&str>)]) {
    let mut failures = Vec::new();
    for &(input, expected) in cases {
        let got = lexer.process_word(input, env);
        let ok = match (&got, expected) {
            (Ok(value), Some(expected)) => value == expected,
            (Err(_), None) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("  {input:?}: expected {expected:?}, got {got:?}"));
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
