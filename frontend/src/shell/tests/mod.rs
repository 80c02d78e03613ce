//! Table tests for the shell lexer beyond BuildKit's vector files.

use std::collections::BTreeMap;

use super::{Env, Error, Lexer};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word(lexer: Lexer, input: &str, env: &dyn Env) -> Result<String, Error> {
    lexer.process_word(input, env)
}

#[test]
fn smoke() {
    let e = env(&[("A", "x y")]);
    assert_eq!(word(Lexer::default(), "a$A", &e).unwrap(), "ax y");
}
