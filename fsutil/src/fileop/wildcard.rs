//! Source wildcards: Go's `filepath.Match` per path component, and their expansion in a tree
//! as fsutil's `ResolveWildcards` does.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::tree::Tree;

/// Whether `path` has a wildcard (`*`, `?`, `[`) that is not escaped with `\`.
pub fn has_wildcards(path: &str) -> bool {
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Go's `filepath.Match(pattern, name)` for one path component (neither contains `/`):
/// `*` any run of characters, `?` one character, `[a-z]`/`[^a-z]` classes, `\` escapes. A
/// malformed pattern matches nothing.
pub fn match_component(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n).unwrap_or(false)
}

/// Backtracking match; `None` for a malformed pattern.
fn match_from(p: &[char], n: &[char]) -> Option<bool> {
    match p.split_first() {
        None => Some(n.is_empty()),
        Some(('*', rest)) => {
            // `*` never crosses a separator.
            let limit = n.iter().position(|&c| c == '/').unwrap_or(n.len());
            for skip in 0..=limit {
                if match_from(rest, &n[skip..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        Some(('?', rest)) => match n.split_first() {
            Some((&c, n_rest)) if c != '/' => match_from(rest, n_rest),
            _ => Some(false),
        },
        Some(('[', rest)) => {
            let (matched, after) = match_class(rest, n.first().copied())?;
            if !matched {
                return Some(false);
            }
            match_from(after, &n[1..])
        }
        Some(('\\', rest)) => {
            let (&lit, rest) = rest.split_first()?;
            match n.split_first() {
                Some((&c, n_rest)) if c == lit => match_from(rest, n_rest),
                _ => Some(false),
            }
        }
        Some((&lit, rest)) => match n.split_first() {
            Some((&c, n_rest)) if c == lit => match_from(rest, n_rest),
            _ => Some(false),
        },
    }
}

/// Matches a class body (after `[`) against `c`; returns the result and the pattern after
/// `]`. `None` if the class is malformed.
fn match_class(mut p: &[char], c: Option<char>) -> Option<(bool, &[char])> {
    let negated = p.first() == Some(&'^');
    if negated {
        p = &p[1..];
    }
    let mut matched = false;
    let mut items = 0;
    loop {
        match p.first()? {
            ']' if items > 0 => {
                p = &p[1..];
                break;
            }
            _ => {}
        }
        let (lo, rest) = class_char(p)?;
        p = rest;
        let hi = if p.first() == Some(&'-') {
            let (hi, rest) = class_char(&p[1..])?;
            p = rest;
            hi
        } else {
            lo
        };
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
        items += 1;
    }
    // At the end of the name a class matches nothing (but the pattern was still checked).
    Some((c.is_some() && matched != negated, p))
}

fn class_char(p: &[char]) -> Option<(char, &[char])> {
    match p {
        ['-' | ']', ..] | [] => None,
        ['\\', c, rest @ ..] => Some((*c, rest)),
        [c, rest @ ..] => Some((*c, rest)),
    }
}

/// Expands `pattern` (a source path) in `tree`, as fsutil's `ResolveWildcards`: the
/// components before the first one with a wildcard are resolved as a base directory
/// (following a final symlink only with `follow_links`); the rest are matched component by
/// component below it, walking in sorted order without following symlinks. Returns tree
/// paths, sorted. A pattern without wildcards returns itself, cleaned, unchecked.
pub(crate) fn resolve_wildcards(
    tree: &dyn Tree,
    pattern: &str,
    follow_links: bool,
) -> Result<Vec<PathBuf>> {
    let comps: Vec<&str> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let Some(first) = comps.iter().position(|c| has_wildcards(c)) else {
        return Ok(vec![crate::sys::clean_lexical(Path::new(pattern))]);
    };
    let base: PathBuf = comps[..first].iter().collect();
    let base = tree.resolve(&base, follow_links)?;
    let mut out = Vec::new();
    walk(tree, &base, &comps[first..], &mut out)?;
    Ok(out)
}

fn walk(tree: &dyn Tree, dir: &Path, rest: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    let Some((pattern, rest)) = rest.split_first() else {
        return Ok(());
    };
    match tree.lstat(dir)? {
        Some(meta) if meta.is_dir() => {}
        _ => return Ok(()),
    }
    for entry in tree.read_dir(dir)? {
        let Some(name) = entry.name.to_str() else {
            continue;
        };
        let literal = !has_wildcards(pattern);
        let hit = if literal {
            OsStr::new(&unescape(pattern)) == entry.name.as_os_str()
        } else {
            match_component(pattern, name)
        };
        if !hit {
            continue;
        }
        let path = dir.join(&entry.name);
        if rest.is_empty() {
            out.push(path);
        } else if entry.metadata.is_dir() {
            walk(tree, &path, rest, out)?;
        }
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a?b", "a/b", false),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("[a-ζ]*", "α", true),
            ("*.txt", "notes.txt", true),
            ("*.txt", ".txt", true),
            ("[", "a", false),
            ("[]a]", "]", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                match_component(pattern, name),
                want,
                "{pattern:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcards("src/*.rs"));
        assert!(has_wildcards("a?"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("plain/path"));
        assert!(!has_wildcards("a\\*b"));
    }
}
