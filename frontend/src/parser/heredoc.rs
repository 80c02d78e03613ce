//! Heredoc detection: which words of an instruction line start a heredoc.
//!
//! BuildKit (`heredocsFromLine`) runs its shell lexer over the whole joined line with raw quotes,
//! raw escapes and unset variables left as written, always with `\` as the escape character.
//! Any lexing error (say, an unbalanced quote anywhere on the line) means "no heredocs". Every
//! resulting word is matched against `^(\d*)<<(-?)\s*([^<]*)$`; the third group is lexed again,
//! once keeping quotes and once removing them: it must be one word, which is the heredoc's name,
//! and if the two lexings disagree on the number of quote characters some part of the word was
//! quoted, so the body is not expanded (`expand = false`).
//!
//! The lexer here is a port of just the part of BuildKit's `shell.Lex` this needs: quotes,
//! escapes, `$name`/`${...}` kept verbatim (no variable is ever set), and `<<` followed by spaces
//! or tabs glued to the next word, so that `<<  EOF` is one word.
//!
//! Reading the bodies happens in the main loop ([`crate::parser::parse`]): after the
//! instruction's last line, each heredoc in turn takes the following physical lines up to the
//! one equal to its name (newline removed, and leading tabs too for `<<-`).

use crate::parser::error::LexError;
use crate::parser::lines::is_space;

/// A heredoc found in an instruction line, before its body has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// The delimiter word, quotes removed.
    pub(crate) name: String,
    /// The fd before `<<`, saturating; 0 when absent.
    pub(crate) fd: u32,
    /// Whether no part of the delimiter was quoted.
    pub(crate) expand: bool,
    /// `<<-`.
    pub(crate) chomp: bool,
    /// Byte range of the `<<WORD` word in the line.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A problem with one heredoc word, at `start..end` of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordError {
    pub(crate) word: String,
    pub(crate) reason: LexError,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// BuildKit's `heredocsFromLine`.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Start>, WordError> {
    let Ok(words) = lex(line, true) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for word in words {
        match parse_heredoc(&word.text) {
            Ok(Some(mut start)) => {
                start.start = word.start;
                start.end = word.end;
                found.push(start);
            }
            Ok(None) => {}
            Err((rest, reason)) => {
                return Err(WordError {
                    word: rest,
                    reason,
                    start: word.start,
                    end: word.end,
                });
            }
        }
    }
    Ok(found)
}

/// BuildKit's `ParseHeredoc` on one word: `Ok(None)` if it is not a heredoc.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Start>, (String, LexError)> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some((fd_text, after_fd)) = word.split_at_checked(digits) else {
        return Ok(None);
    };
    let Some(after) = after_fd.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\x0C', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if fd_text.is_empty() {
        0
    } else {
        fd_text.parse::<u32>().unwrap_or(u32::MAX)
    };

    let words = lex(rest, false).map_err(|e| (rest.to_string(), e))?;
    let [word] = words.as_slice() else {
        return Ok(None);
    };
    let raw_words = lex(rest, true).map_err(|e| (rest.to_string(), e))?;
    let [raw] = raw_words.as_slice() else {
        return Err((rest.to_string(), LexError::Inconsistent));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Start {
        name: word.text.clone(),
        fd,
        expand: quotes(&word.text) == quotes(&raw.text),
        chomp,
        start: 0,
        end: 0,
    }))
}

/// A lexed word and its byte range in the input.
#[derive(Debug)]
struct Word {
    text: String,
    start: usize,
    end: usize,
}

/// Nesting limit for `${...}` inside `${...}`, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 64;

/// Lexes `input` into words; `raw` keeps quotes and escapes as written (BuildKit's
/// `RawQuotes` + `RawEscapes`), otherwise they are removed.
fn lex(input: &str, raw: bool) -> Result<Vec<Word>, LexError> {
    let mut lexer = Lexer {
        chars: input.char_indices().collect(),
        len: input.len(),
        i: 0,
        raw,
    };
    let mut words = Words::default();
    lexer.run(None, &mut words, 0)?;
    Ok(words.finish(input.len()))
}

#[derive(Default)]
struct Words {
    word: String,
    in_word: bool,
    start: usize,
    words: Vec<Word>,
}

impl Words {
    fn begin(&mut self, at: usize) {
        if !self.in_word && self.word.is_empty() {
            self.start = at;
        }
    }

    fn add_char(&mut self, c: char, at: usize) {
        if is_space(c) {
            if self.in_word && !self.word.is_empty() {
                self.flush(at);
            }
        } else {
            self.begin(at);
            self.word.push(c);
            self.in_word = true;
        }
    }

    fn add_raw(&mut self, s: &str, at: usize) {
        self.begin(at);
        self.word.push_str(s);
        self.in_word = true;
    }

    /// Adds an expansion result, which is split on whitespace like plain characters.
    fn add_expanded(&mut self, s: &str, at: usize) {
        for c in s.chars() {
            self.add_char(c, at);
        }
    }

    fn flush(&mut self, end: usize) {
        let text = std::mem::take(&mut self.word);
        self.words.push(Word {
            text,
            start: self.start,
            end,
        });
        self.in_word = false;
    }

    fn finish(mut self, end: usize) -> Vec<Word> {
        if !self.word.is_empty() {
            self.flush(end);
        }
        self.words
    }
}

struct Lexer {
    chars: Vec<(usize, char)>,
    len: usize,
    i: usize,
    raw: bool,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    fn pos(&self) -> usize {
        self.chars.get(self.i).map_or(self.len, |&(p, _)| p)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    /// BuildKit's `processStopOn`: returns the processed text; words go to `words`.
    fn run(
        &mut self,
        stop: Option<char>,
        words: &mut Words,
        depth: usize,
    ) -> Result<String, LexError> {
        if depth > MAX_NESTING {
            return Err(LexError::TooDeep);
        }
        let mut result = String::new();
        while let Some(c) = self.peek() {
            let at = self.pos();
            if stop == Some(c) {
                self.i += 1;
                return Ok(result);
            }
            match c {
                '$' => {
                    let text = self.dollar(depth)?;
                    result.push_str(&text);
                    words.add_expanded(&text, at);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    result.push_str(&text);
                    words.add_raw(&text, at);
                }
                '\'' => {
                    let text = self.single_quote()?;
                    result.push_str(&text);
                    words.add_raw(&text, at);
                }
                '"' => {
                    let text = self.double_quote(depth)?;
                    result.push_str(&text);
                    words.add_raw(&text, at);
                }
                '\\' => {
                    self.i += 1;
                    if self.raw {
                        words.add_raw("\\", at);
                        result.push('\\');
                    }
                    let Some(next) = self.next() else { break };
                    let mut buf = [0u8; 4];
                    words.add_raw(next.encode_utf8(&mut buf), at);
                    result.push(next);
                }
                _ => {
                    self.i += 1;
                    words.add_char(c, at);
                    result.push(c);
                }
            }
        }
        if stop.is_some() {
            return Err(LexError::MissingBrace);
        }
        Ok(result)
    }

    fn possible_heredoc(&mut self) -> String {
        self.i += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.i += 1;
        let mut text = "<<".to_string();
        while let Some(c @ (' ' | '\t')) = self.peek() {
            text.push(c);
            self.i += 1;
        }
        text
    }

    fn single_quote(&mut self) -> Result<String, LexError> {
        self.i += 1;
        let mut out = String::new();
        if self.raw {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(LexError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.raw {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, depth: usize) -> Result<String, LexError> {
        self.i += 1;
        let mut out = String::new();
        if self.raw {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(LexError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.i += 1;
                    if self.raw {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar(depth)?),
                Some(c) => {
                    self.i += 1;
                    let mut c = c;
                    if c == '\\' {
                        if self.raw {
                            out.push('\\');
                        }
                        match self.peek() {
                            None => continue,
                            Some(next @ ('"' | '$' | '\\')) => {
                                self.i += 1;
                                c = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `$name` or `${...}`, which expand to themselves since no variable is set.
    fn dollar(&mut self, depth: usize) -> Result<String, LexError> {
        self.i += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.i += 1;
        match self.peek() {
            None => return Err(LexError::MissingBrace),
            Some('{' | '}' | ':') => return Err(LexError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(op @ ('?' | '%' | '#')) => {
                let word = self.nested(depth)?;
                Ok(format!("${{{name}{op}{word}}}"))
            }
            Some('/') => {
                let pattern = self.nested_until('/', depth)?;
                let replacement = self.nested(depth)?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.nested(depth)?;
                match modifier {
                    Some(m @ ('+' | '-' | '?')) => Ok(format!("${{{name}:{m}{word}}}")),
                    Some(m) => Err(LexError::UnsupportedModifier(m)),
                    None => Err(LexError::MissingBrace),
                }
            }
            _ => Err(LexError::MissingColon),
        }
    }

    fn nested(&mut self, depth: usize) -> Result<String, LexError> {
        self.nested_until('}', depth)
    }

    fn nested_until(&mut self, stop: char, depth: usize) -> Result<String, LexError> {
        let mut scratch = Words::default();
        self.run(Some(stop), &mut scratch, depth + 1)
            .map_err(|e| match (e, self.peek()) {
                (LexError::TooDeep, _) => LexError::TooDeep,
                (_, None) => LexError::MissingBrace,
                (e, _) => e,
            })
    }

    /// BuildKit's `processName`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.i += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.i += 1;
                name.push(c);
                return name;
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.i += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    #[test]
    fn buildkit_helper_cases() {
        for valid in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            let h = parse_heredoc(valid)
                .unwrap()
                .unwrap_or_else(|| panic!("{valid}"));
            assert_eq!(h.name, "EOF", "{valid}");
        }
        for invalid in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(invalid).is_err(), "{invalid}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(not), Ok(None), "{not}");
        }
    }

    #[test]
    fn buildkit_line_cases() {
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        // BuildKit's lexer glues `<<` to following blanks but not `<<-`: this is two words
        // (BuildKit's own test for it passes vacuously on an empty result).
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN <<'EOF'"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN <<EOF 'unbalanced").is_empty());
        assert_eq!(names("RUN <<$EOF"), ["$EOF"]);
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
    }

    #[test]
    fn expand_follows_quoting() {
        let h = |w: &str| parse_heredoc(w).unwrap().unwrap();
        assert!(h("<<eof").expand);
        assert_eq!(
            (h("<<eo'f'").name, h("<<eo'f'").expand),
            ("eof".into(), false)
        );
        assert_eq!(
            (h("<<eo\\'f").name, h("<<eo\\'f").expand),
            ("eo'f".into(), true)
        );
        assert_eq!(
            (h("<<'e'o\\'f").name, h("<<'e'o\\'f").expand),
            ("eo'f".into(), false)
        );
        assert_eq!(
            (h("<<'one two'").name, h("<<'one two'").expand),
            ("one two".into(), false)
        );
        assert_eq!(h("3<<X").fd, 3);
        assert_eq!(h("99999999999<<X").fd, u32::MAX);
    }

    #[test]
    fn word_offsets() {
        let found = heredocs_from_line("RUN cat <<EOF > /f").unwrap();
        assert_eq!((found[0].start, found[0].end), (8, 13));
    }
}
