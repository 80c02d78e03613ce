//! Property tests: no input makes the lexer panic, and text without special characters is
//! returned unchanged.

use proptest::prelude::*;

use super::env;
use crate::shell::Lexer;

/// Strings dense in the characters the lexer cares about, so deep paths get exercised.
fn shellish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[$\\`{}'":#%/?*+\-=@!0-9aAbB_ \n\t\[\]한\u{FEFF}]{0,48}"#)
        .expect("valid strategy regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn never_panics_on_shellish_input(input in shellish(), backtick in any::<bool>()) {
        let e = env(&[("a", "x y"), ("A", "*\\"), ("b", ""), ("B", "a}b/c*"), ("_", "\\")]);
        let lexer = Lexer::new(if backtick { '`' } else { '\\' });
        for lexer in [lexer, lexer.raw_quotes(true).skip_unset_env(true), lexer.raw_escapes(true)] {
            let word = lexer.process_word(&input, &e);
            let words = lexer.process_words(&input, &e);
            let matches = lexer.process_word_with_matches(&input, &e);
            // All three agree on success, and on the value.
            prop_assert_eq!(word.is_ok(), words.is_ok());
            prop_assert_eq!(word.clone().ok(), matches.ok().map(|m| m.value));
            if let Err(err) = word {
                prop_assert!(err.offset() <= input.len());
                prop_assert!(input.is_char_boundary(err.offset()));
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_input(input in any::<String>()) {
        let e = env(&[("a", "x")]);
        let _ = Lexer::default().process_word(&input, &e);
        let _ = Lexer::default().process_words(&input, &e);
    }

    #[test]
    fn plain_text_is_unchanged(input in "[a-zA-Z0-9_./:,\u{AC00}-\u{AC10} ]{0,40}") {
        let e = env(&[]);
        prop_assert_eq!(Lexer::default().process_word(&input, &e).unwrap(), input.clone());
        let split: Vec<String> = input.split_whitespace().map(str::to_string).collect();
        prop_assert_eq!(Lexer::default().process_words(&input, &e).unwrap(), split);
    }
}
