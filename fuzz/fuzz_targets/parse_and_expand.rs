//! Arbitrary bytes through the whole frontend: parse, typed instructions, stage resolution with
//! expansion, plus the shell lexer on its own. Nothing may panic, and every error must point
//! inside the input.

#![no_main]

use dray_frontend::shell::Lexer;
use dray_frontend::stages::ResolveOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ResolveOptions::default();
    if let Err(err) = dray_frontend::load(data, &options) {
        let span = err.span();
        assert!(span.start <= span.end && span.end <= data.len(), "{span:?} outside the input");
        let _ = err.to_string();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let env = [("A", "a b"), ("EMPTY", ""), ("PATH", "/usr/bin:/bin")];
        for escape in ['\\', '`'] {
            let lexer = Lexer::new(escape);
            if let Err(err) = lexer.process_words(text, &env) {
                assert!(err.offset() <= text.len());
            }
            let _ = lexer.process_word_with_matches(text, &env);
        }
    }
});
