//! The syntax check of Go's `filepath.Match`, which patternmatcher runs on every pattern.
//!
//! patternmatcher never matches with `filepath.Match`; it calls `filepath.Match(pattern, ".")`
//! only for its error. Go checks the whole pattern even once the match has failed, so the
//! pattern is rejected exactly when one of its `*`-separated chunks does not parse:
//!
//! * a `[` class needs at least one item and a closing `]`; an item is a character or `lo-hi`,
//!   and neither end may be an unescaped `-` or `]` (so `[]`, `[-a]`, `[a-]`, `[^]` are errors);
//! * a `\` must be followed by a character, inside a class or out.
//!
//! `!` is *not* a class negation in Go (only `^` is), and a lone `]` is an ordinary character.

use super::error::SyntaxError;

/// Checks `pattern` the way `filepath.Match(pattern, ".")` does (Unix flavour).
pub(crate) fn check(pattern: &str) -> Result<(), SyntaxError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut rest = &chars[..];
    while !rest.is_empty() {
        while let Some(('*', tail)) = rest.split_first() {
            rest = tail;
        }
        let end = chunk_end(rest);
        check_chunk(&rest[..end])?;
        rest = &rest[end..];
    }
    Ok(())
}

/// Where the chunk at the start of `rest` ends: at the first `*` outside a class (Go's
/// `scanChunk`; an escaped character never ends a chunk).
fn chunk_end(rest: &[char]) -> usize {
    let mut in_class = false;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            '\\' if i + 1 < rest.len() => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Go's `matchChunk`, reduced to its parse.
fn check_chunk(mut chunk: &[char]) -> Result<(), SyntaxError> {
    while let Some((&first, tail)) = chunk.split_first() {
        chunk = tail;
        match first {
            '[' => {
                if let Some(('^', tail)) = chunk.split_first() {
                    chunk = tail;
                }
                let mut items = 0;
                loop {
                    if let Some((']', tail)) = chunk.split_first()
                        && items > 0
                    {
                        chunk = tail;
                        break;
                    }
                    chunk = class_char(chunk)?;
                    if let Some(('-', tail)) = chunk.split_first() {
                        chunk = class_char(tail)?;
                    }
                    items += 1;
                }
            }
            '\\' => match chunk.split_first() {
                Some((_, tail)) => chunk = tail,
                None => return Err(SyntaxError::TrailingBackslash),
            },
            _ => {}
        }
    }
    Ok(())
}

/// One end of a class range (Go's `getEsc`): returns what follows it, which must not be empty
/// because the class still needs its `]`.
fn class_char(chunk: &[char]) -> Result<&[char], SyntaxError> {
    let rest = match chunk {
        [] => return Err(SyntaxError::UnterminatedClass),
        ['-' | ']', ..] => return Err(SyntaxError::MisplacedClassChar { found: chunk[0] }),
        ['\\'] => return Err(SyntaxError::UnterminatedClass),
        ['\\', _, rest @ ..] | [_, rest @ ..] => rest,
    };
    if rest.is_empty() {
        return Err(SyntaxError::UnterminatedClass);
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_go_accepts() {
        for pattern in [
            "",
            "abc",
            "*",
            "a*b*c",
            "?",
            "[a]",
            "[^a]",
            "[!a]",
            "[a-z]",
            "[a-z0-9_]",
            "[\\]]",
            "[\\-]",
            "[x\\-]",
            "\\*",
            "a\\b",
            "]",
            "a]b",
            "[*]",
            "[**]",
            "[[:alpha:]]",
            "**/x",
        ] {
            assert_eq!(check(pattern), Ok(()), "{pattern:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for pattern in [
            "[", "[a", "[^", "[]", "[]a]", "[^]", "[-]", "[-a]", "[a-]", "[x-]", "a[", "*[",
            "[a-b", "\\", "a\\", "[\\", "[a\\", "a*b[", "[a]\\", "*x[", "[a-b-c]",
        ] {
            assert!(check(pattern).is_err(), "{pattern:?} should be rejected");
        }
    }
}
