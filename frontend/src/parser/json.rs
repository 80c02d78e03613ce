//! The exec-form JSON array, decoded the way Go's `json.NewDecoder(...).Decode(&[]any)` does.
//!
//! The outcome has three cases, and the parser needs to tell them apart:
//!
//! * a syntactically valid array of strings: the exec form ([`JsonArray::Strings`]);
//! * a valid array with a non-string element: an error ([`JsonArray::NotStrings`]);
//! * anything else (not starting with `[`, invalid JSON, a number that overflows `float64`,
//!   nesting deeper than Go's 10000 levels): fall back to the instruction's shell-form rule
//!   ([`JsonArray::Invalid`]).
//!
//! Like Go's `Decoder`, only the first JSON value is read: text after the closing `]` is
//! ignored. Strings are decoded as Go does, including lone UTF-16 surrogates becoming U+FFFD.
//! The parser is iterative, so hostile nesting cannot overflow the stack.

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10000;

/// One decoded string element and its extent in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) value: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The result of reading an argument string as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// Not JSON, or not usable: use the shell-form rule.
    Invalid,
    /// An array with an element that is not a string (its byte range in the input).
    NotStrings { start: usize, end: usize },
    /// An array of strings.
    Strings(Vec<Element>),
}

/// Reads `input` (leading whitespace allowed) as a JSON array.
pub(crate) fn parse_array(input: &str) -> JsonArray {
    let start = input.len() - input.trim_start_matches(char::is_whitespace).len();
    if !input.get(start..).is_some_and(|s| s.starts_with('[')) {
        return JsonArray::Invalid;
    }
    let mut reader = Reader {
        bytes: input.as_bytes(),
        pos: start + 1,
    };
    let mut elements = Vec::new();
    let mut not_string = None;
    reader.skip_ws();
    if reader.peek() == Some(b']') {
        return JsonArray::Strings(elements);
    }
    loop {
        reader.skip_ws();
        let elem_start = reader.pos;
        if reader.peek() == Some(b'"') {
            match reader.string() {
                Some(value) => elements.push(Element {
                    value,
                    start: elem_start,
                    end: reader.pos,
                }),
                None => return JsonArray::Invalid,
            }
        } else {
            if !reader.value() {
                return JsonArray::Invalid;
            }
            not_string.get_or_insert((elem_start, reader.pos));
        }
        reader.skip_ws();
        match reader.next() {
            Some(b',') => continue,
            Some(b']') => break,
            _ => return JsonArray::Invalid,
        }
    }
    match not_string {
        Some((start, end)) => JsonArray::NotStrings { start, end },
        None => JsonArray::Strings(elements),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skips one complete JSON value of any kind; false if it is not valid (or a number
    /// overflows `float64`, which Go reports as an error too).
    fn value(&mut self) -> bool {
        // Open containers: true for an object, false for an array.
        let mut stack: Vec<bool> = Vec::new();
        loop {
            // Expect a value.
            self.skip_ws();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    if stack.len() + 2 > MAX_DEPTH {
                        return false;
                    }
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        if !self.key() {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if stack.len() + 2 > MAX_DEPTH {
                        return false;
                    }
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    if self.string().is_none() {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.literal(b"true") {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.literal(b"false") {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.literal(b"null") {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() {
                        return false;
                    }
                }
                _ => return false,
            }
            // After a value: close containers or move to the next member.
            loop {
                let Some(&is_object) = stack.last() else {
                    return true;
                };
                self.skip_ws();
                match (self.next(), is_object) {
                    (Some(b','), true) => {
                        if !self.key() {
                            return false;
                        }
                        break;
                    }
                    (Some(b','), false) => break,
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        stack.pop();
                    }
                    _ => return false,
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> bool {
        self.skip_ws();
        if self.peek() != Some(b'"') || self.string().is_none() {
            return false;
        }
        self.skip_ws();
        self.next() == Some(b':')
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }

    fn number(&mut self) -> bool {
        let from = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        let text = std::str::from_utf8(self.bytes.get(from..self.pos).unwrap_or(b"")).unwrap_or("");
        text.parse::<f64>().is_ok_and(f64::is_finite)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// A string starting at the opening quote, decoded.
    fn string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.next()?;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let esc = self.next()?;
                    let simple = match esc {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return None,
                    };
                    if let Some(byte) = simple {
                        out.push(byte);
                        continue;
                    }
                    let first = self.hex4(self.pos)?;
                    self.pos += 4;
                    let c = if (0xD800..0xE000).contains(&first) {
                        let pair = (first < 0xDC00
                            && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u"))
                        .then(|| self.hex4(self.pos + 2))
                        .flatten()
                        .filter(|second| (0xDC00..0xE000).contains(second));
                        match pair {
                            Some(second) => {
                                self.pos += 6;
                                char::from_u32(
                                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00),
                                )
                            }
                            None => None,
                        }
                    } else {
                        char::from_u32(first)
                    };
                    let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(input: &str) -> Vec<String> {
        match parse_array(input) {
            JsonArray::Strings(elements) => elements.into_iter().map(|e| e.value).collect(),
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(strings("[]"), Vec::<String>::new());
        assert_eq!(strings(" [ \"a\" , \"b\" ] "), vec!["a", "b"]);
        assert_eq!(
            strings(r#"["\" \\ \/ \b \f \n \r \t \u0000"]"#),
            vec!["\" \\ / \u{8} \u{c} \n \r \t \0"]
        );
        assert_eq!(
            strings(r#"["\ud83d\ude00", "\ud800x"]"#),
            vec!["\u{1F600}", "\u{fffd}x"]
        );
        assert_eq!(strings(r#"["a"] trailing"#), vec!["a"]);
    }

    #[test]
    fn invalid_or_not_strings() {
        for bad in [
            "['a']",
            "[\"a\"",
            "[\"a]",
            "{}",
            "x",
            "[1e400]",
            "[\"a\" \"b\"]",
            "[,]",
            "[\"\t\"]",
        ] {
            assert_eq!(parse_array(bad), JsonArray::Invalid, "{bad}");
        }
        assert_eq!(
            parse_array(r#"["a", ["b"]]"#),
            JsonArray::NotStrings { start: 6, end: 11 }
        );
        assert_eq!(
            parse_array("[null]"),
            JsonArray::NotStrings { start: 1, end: 5 }
        );
        assert_eq!(
            parse_array("[{\"a\": [1, {}]}, 2]"),
            JsonArray::NotStrings { start: 1, end: 15 }
        );
        let deep = format!("[{}{}]", "[".repeat(20000), "]".repeat(20000));
        assert_eq!(parse_array(&deep), JsonArray::Invalid);
    }
}
