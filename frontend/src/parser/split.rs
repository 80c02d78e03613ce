//! Splitting a joined line into keyword, leading `--flags` and the argument string.
//!
//! BuildKit's `splitCommand` trims the line, splits it once on the first run of
//! `[\t\v\f\r ]`, and hands the remainder to `extractBuilderFlags`: while the next
//! whitespace-separated word starts with `--` it is a flag. Inside a flag word, `'…'` and `"…"`
//! quotes are removed and `\` (always backslash, whatever the escape directive says) escapes the
//! next character. A bare `--` ends the flags and is dropped.
//!
//! One deliberate difference: BuildKit walks flags byte by byte and turns each byte into a rune,
//! which garbles non-ASCII flag values (`é` becomes `Ã©`) and can split a word inside a UTF-8
//! sequence. dray walks characters, so non-ASCII flag values come through intact.

use crate::parser::lines::is_space;

/// A flag with its extent in the split line (offsets relative to the line given to
/// [`split_command`]).
#[derive(Debug)]
pub(crate) struct RawFlag {
    pub(crate) text: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The parts of an instruction line. Offsets are relative to the line given to
/// [`split_command`].
#[derive(Debug)]
pub(crate) struct Split<'a> {
    pub(crate) keyword: &'a str,
    pub(crate) keyword_at: usize,
    pub(crate) flags: Vec<RawFlag>,
    /// The argument string, trimmed.
    pub(crate) args: &'a str,
    pub(crate) args_at: usize,
}

/// Go's `[\t\v\f\r ]`.
pub(crate) fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// BuildKit's `splitCommand`.
pub(crate) fn split_command(line: &str) -> Split<'_> {
    let trimmed_start = line.len() - line.trim_start().len();
    let trimmed = line.trim();
    let keyword_end = trimmed.find(is_token_space).unwrap_or(trimmed.len());
    let keyword = trimmed.get(..keyword_end).unwrap_or("");
    let after = trimmed.get(keyword_end..).unwrap_or("");
    let rest = after.trim_start_matches(is_token_space);
    let rest_at = trimmed_start + keyword_end + (after.len() - rest.len());

    let (flags, args_offset) = extract_flags(rest);
    let remaining = rest.get(args_offset..).unwrap_or("");
    let args = remaining.trim();
    let args_at = rest_at + args_offset + (remaining.len() - remaining.trim_start().len());
    let flags = flags
        .into_iter()
        .map(|f| RawFlag {
            text: f.text,
            start: f.start + rest_at,
            end: f.end + rest_at,
        })
        .collect();
    Split {
        keyword,
        keyword_at: trimmed_start,
        flags,
        args,
        args_at,
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// BuildKit's `extractBuilderFlags`: the flags, and the offset in `line` where the rest begins.
fn extract_flags(line: &str) -> (Vec<RawFlag>, usize) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let Some(&(pos, ch)) = chars.get(i) else {
            if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(RawFlag {
                    text: word,
                    start: word_start,
                    end: line.len(),
                });
            }
            return (flags, line.len());
        };
        i += 1;
        match phase {
            Phase::Spaces => {
                if is_space(ch) {
                    continue;
                }
                let next_dash = chars.get(i).is_some_and(|&(_, c)| c == '-');
                if ch != '-' || !next_dash {
                    return (flags, pos);
                }
                phase = Phase::Word;
                word_start = pos;
                word.push(ch);
            }
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (flags, pos);
                    }
                    if blank_ok || !word.is_empty() {
                        let text = std::mem::take(&mut word);
                        flags.push(RawFlag {
                            text,
                            start: word_start,
                            end: pos,
                        });
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    continue;
                }
                let mut ch = ch;
                if ch == '\\' {
                    match chars.get(i) {
                        None => continue,
                        Some(&(_, next)) => {
                            ch = next;
                            i += 1;
                        }
                    }
                }
                word.push(ch);
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                    continue;
                }
                let mut ch = ch;
                if ch == '\\' {
                    match chars.get(i) {
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                        Some(&(_, next)) => {
                            ch = next;
                            i += 1;
                        }
                    }
                }
                word.push(ch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str) -> (Vec<String>, String) {
        let split = split_command(line);
        (
            split.flags.into_iter().map(|f| f.text).collect(),
            split.args.to_string(),
        )
    }

    #[test]
    fn flags_and_terminator() {
        assert_eq!(
            flags("COPY --a=b --c foo bar"),
            (vec!["--a=b".into(), "--c".into()], "foo bar".into())
        );
        assert_eq!(
            flags("COPY --a=b -- --c"),
            (vec!["--a=b".into()], "--c".into())
        );
        assert_eq!(
            flags("COPY --a=\"x y\" z"),
            (vec!["--a=x y".into()], "z".into())
        );
        assert_eq!(flags("COPY --a='' z"), (vec!["--a=".into()], "z".into()));
        assert_eq!(
            flags("COPY --a=\\\"q z"),
            (vec!["--a=\"q".into()], "z".into())
        );
        assert_eq!(
            flags("CMD --doit -- [ ]"),
            (vec!["--doit".into()], "[ ]".into())
        );
        assert_eq!(flags("RUN -x"), (vec![], "-x".into()));
        assert_eq!(flags("RUN --"), (vec![], "".into()));
        assert_eq!(flags("RUN --x=é y"), (vec!["--x=é".into()], "y".into()));
    }

    #[test]
    fn offsets() {
        let split = split_command("  COPY\t --from=a  x y ");
        assert_eq!(split.keyword, "COPY");
        assert_eq!(split.keyword_at, 2);
        assert_eq!((split.flags[0].start, split.flags[0].end), (8, 16));
        assert_eq!(split.args, "x y");
        assert_eq!(split.args_at, 18);
    }
}
