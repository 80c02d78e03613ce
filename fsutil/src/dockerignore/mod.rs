//! `.dockerignore`: reading the file, matching paths, finding the file, walking a context.
//!
//! The semantics are those of moby's `patternmatcher` (with its `ignorefile.ReadAll`), which
//! BuildKit, tonistiigi/fsutil and the docker CLI all use. Where those sources are quirky, dray
//! copies the quirk, because users' ignore files are written against docker, not against the
//! documentation. Start at [`Patterns`].
//!
//! # Reading the file ([`Patterns::parse`])
//!
//! Line by line (`\n`, with one `\r` before it dropped), as `ignorefile.ReadAll`:
//!
//! 1. a UTF-8 byte-order mark at the start of the first line is dropped;
//! 2. a line whose **first character** is `#` is a comment (checked *before* trimming, so
//!    ` # x` is the pattern `# x`);
//! 3. surrounding whitespace (Unicode `White_Space`, as Go's `strings.TrimSpace`) is trimmed,
//!    and blank lines are skipped;
//! 4. a leading `!` marks an exception; whitespace after it is trimmed too (`! foo` is `!foo`);
//! 5. the rest is cleaned like Go's `filepath.Clean` (`a//b/./c/../d/` is `a/b/d`, `./x` is
//!    `x`) and a leading `/` is dropped (`/foo` is `foo`; but `/` alone stays `/`, which matches
//!    nothing).
//!
//! Each resulting string then goes through `patternmatcher.New` ([`Patterns::from_patterns`]):
//! trimmed and cleaned again, `!` split off (a bare `!` is an error), checked for
//! `filepath.Match` syntax (an unterminated `[` is an error), and compiled. Errors from
//! [`Patterns::parse`] name the 1-based line.
//!
//! # Matching ([`Patterns::is_excluded`])
//!
//! Pattern syntax is Go's `filepath.Match`: `*` is any run of non-`/` characters, `?` one
//! non-`/` character, `[a-z]` / `[^a-z]` classes (`!` does not negate), `\` escapes. On top of
//! that, `**` matches any number of directories (`**/x`, `a/**/b`, `a/**`). Patterns are
//! anchored at the context root: `foo` is only the top-level `foo`, not `a/foo`.
//!
//! Each pattern, in order, matches a path if it matches the path itself **or any parent
//! directory of it**. The last matching pattern decides: excluded if it is a plain pattern,
//! included again if it is an exception. So `a` excludes `a/b/c`, and `a` then `!a/b` keeps
//! `a/b` and everything below it.
//!
//! # Which file ([`find_ignore_file`])
//!
//! `<Dockerfile name>.dockerignore` next to the Dockerfile wins (for `-f build/app.Dockerfile`,
//! `build/app.Dockerfile.dockerignore`); otherwise `.dockerignore` at the context root.
//!
//! # The Dockerfile and the ignore file are always readable
//!
//! BuildKit reads the Dockerfile and the ignore file through their own channel (the
//! "dockerfile" local), not through the filtered context. So a `.dockerignore` containing
//! `Dockerfile` or `.dockerignore` (or `*`) never stops the build from reading them, but it
//! *does* keep them out of the context: `COPY . /app` or `COPY Dockerfile /` will not see them.
//! In dray this means: read those two files directly from disk (never through [`walk`] or an
//! [`Patterns::is_excluded`] check), and apply the patterns to everything the build context
//! serves to `COPY`/`ADD`, those two files included.
//!
//! # Walks ([`walk`], [`Patterns::may_match_below`], [`MatchInfo`])
//!
//! BuildKit's context walker (fsutil) does not call the parent-checking matcher for every path:
//! it memoises per-pattern results of the parent directory ([`Patterns::matches_with_parent`]),
//! and skips an excluded directory unless an exception could re-include something inside it.
//! The memoised form can disagree with [`Patterns::is_excluded`] in one corner: a pattern
//! skipped for a directory (because the path was already excluded when it was reached) is
//! recorded as "no match" and never re-checked against that directory for its children. With
//! `a`, `!a/b`, `a`, [`Patterns::is_excluded`] says `a/b` is excluded, but the walker keeps it.
//! What ends up in the context is what the walker decides, so [`walk`] uses the memoised form.
//!
//! # Deliberate differences from patternmatcher
//!
//! * patternmatcher compiles a pattern's regular expression on first use and fails the match
//!   (and so the build) then; dray compiles every pattern up front and fails parsing.
//! * `\p{..}`/`\P{..}` escapes (which patternmatcher passes to Go's regexp as Unicode classes)
//!   are rejected rather than translated.
//! * Paths and patterns are `str`; Go's walker accepts arbitrary bytes. [`walk`] reports a
//!   non-UTF-8 file name as an error, and the caller must read the ignore file as UTF-8.
//! * Go's line scanner fails on a line longer than 64 KiB; dray accepts it.

mod clean;
mod error;
mod glob;
mod goregex;
mod pattern;
mod walk;

use std::io;
use std::path::{Path, PathBuf};

pub use error::{Error, RegexError, SyntaxError};
pub use pattern::Pattern;
pub use walk::{Entry, Walk, walk};

/// The name BuildKit looks for at the context root (`DefaultDockerignoreName`).
pub const DOCKERIGNORE_NAME: &str = ".dockerignore";

/// An ordered list of compiled `.dockerignore` patterns: patternmatcher's `PatternMatcher`.
///
/// Immutable; matching needs no mutable state, so one value can serve many threads.
///
/// ```
/// use dray_fsutil::dockerignore::Patterns;
///
/// let patterns = Patterns::parse("# deps\nnode_modules\n*.md\n!README.md\n")?;
/// assert!(patterns.is_excluded("node_modules/left-pad/index.js"));
/// assert!(patterns.is_excluded("CHANGELOG.md"));
/// assert!(!patterns.is_excluded("README.md"));
/// assert!(!patterns.is_excluded("docs/intro.md")); // patterns are anchored at the root
///
/// let err = Patterns::parse("ok\n[oops\n").unwrap_err();
/// assert_eq!(err.line(), Some(2));
/// # Ok::<(), dray_fsutil::dockerignore::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

impl Patterns {
    /// Parses the contents of a `.dockerignore` file (see the [module docs](self) for the
    /// rules). Errors name the 1-based line ([`Error::AtLine`]).
    pub fn parse(text: &str) -> Result<Patterns, Error> {
        let mut patterns = Vec::new();
        for (line, entry) in read_all(text) {
            let at_line = |error| Error::AtLine {
                line,
                error: Box::new(error),
            };
            if let Some(pattern) = Pattern::new(&entry).map_err(at_line)? {
                patterns.push(pattern);
            }
        }
        Ok(Patterns::from_compiled(patterns))
    }

    /// Compiles patterns that are already a list, as `patternmatcher.New` does: each is trimmed
    /// and cleaned, and `!` marks an exception, but a leading `/` is **not** dropped (that is
    /// the ignore-file reader's job). This is the form of LLB exclude patterns and of
    /// `COPY --exclude`.
    pub fn from_patterns<I, S>(patterns: I) -> Result<Patterns, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for entry in patterns {
            if let Some(pattern) = Pattern::new(entry.as_ref())? {
                compiled.push(pattern);
            }
        }
        Ok(Patterns::from_compiled(compiled))
    }

    fn from_compiled(patterns: Vec<Pattern>) -> Patterns {
        let has_exceptions = patterns.iter().any(Pattern::is_exception);
        Patterns {
            patterns,
            has_exceptions,
        }
    }

    /// The patterns in order, as compiled. Their [`Display`](std::fmt::Display) form (`!` for
    /// exceptions) is what belongs in a cache key: two ignore files that differ only in
    /// comments, blank lines or spelling that cleaning removes compile to the same list.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!pattern`) — patternmatcher's `Exclusions()`.
    pub fn has_exclusions(&self) -> bool {
        self.has_exceptions
    }

    /// Whether `path` (`/`-separated, relative to the context root) is left out of the context:
    /// some pattern matches it or one of its parent directories, and the last one that does is
    /// not an exception. This is patternmatcher's `MatchesOrParentMatches` (the package-level
    /// function: `path` is cleaned first, and the root `.` is never excluded).
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean::clean(path);
        if path == "." {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // A plain pattern cannot change an excluded path, nor an exception an included one.
            if pattern.is_exception() != excluded {
                continue;
            }
            if pattern.matches_or_parent(&path) {
                excluded = !pattern.is_exception();
            }
        }
        excluded
    }

    /// The walker's form of [`is_excluded`](Self::is_excluded): patternmatcher's
    /// `MatchesUsingParentResults`. Pass the [`MatchInfo`] returned for `path`'s parent
    /// directory (`None` at the top level, or when it is not known, in which case parents are
    /// checked as [`is_excluded`](Self::is_excluded) does); keep the returned one for `path`'s
    /// children. `path` must be clean.
    pub fn matches_with_parent(&self, path: &str, parent: Option<&MatchInfo>) -> (bool, MatchInfo) {
        let parent = parent.filter(|info| info.matched.len() == self.patterns.len());
        let mut matched = vec![false; self.patterns.len()];
        let mut excluded = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|info| info.matched[i]);
            if !hit {
                if pattern.is_exception() != excluded {
                    continue;
                }
                hit = match parent {
                    Some(_) => pattern.matches(path),
                    None => pattern.matches_or_parent(path),
                };
            }
            matched[i] = hit;
            if hit {
                excluded = !pattern.is_exception();
            }
        }
        (excluded, MatchInfo { matched })
    }

    /// For walks: whether something below the directory `dir` (which is typically excluded)
    /// might be re-included by an exception, so that the walk must descend into it.
    ///
    /// fsutil's rule, which decides what BuildKit puts in the context: with no exceptions,
    /// never; if any exception (ignoring a trailing `/**` or `/*`) contains one of `*?[]^\`,
    /// always (it cannot tell); otherwise only if some exception is `dir` itself or lies
    /// under it.
    pub fn may_match_below(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        let exceptions = || self.patterns.iter().filter(|p| p.is_exception());
        let without_trailing_glob = |p: &Pattern| {
            let text = p.as_str();
            let text = text.strip_suffix("/**").unwrap_or(text);
            text.strip_suffix("/*").unwrap_or(text).to_owned()
        };
        if exceptions().any(|p| without_trailing_glob(p).contains(['*', '?', '[', ']', '^', '\\']))
        {
            return true;
        }
        let dir_slash = format!("{dir}/");
        exceptions().any(|p| format!("{}/", without_trailing_glob(p)).starts_with(&dir_slash))
    }
}

/// Per-pattern results for a directory, so its children need not re-check their parents:
/// patternmatcher's `MatchInfo`. Obtained from [`Patterns::matches_with_parent`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    matched: Vec<bool>,
}

/// The patterns of an ignore file as `ignorefile.ReadAll` returns them, each with its 1-based
/// line number.
fn read_all(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A final newline ends the last line; it does not start an empty one.
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut out = Vec::new();
    for (index, raw) in lines.into_iter().enumerate() {
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if index == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let exception = match pattern.strip_prefix('!') {
            Some(rest) => {
                pattern = rest.trim();
                true
            }
            None => false,
        };
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if exception {
            cleaned.insert(0, '!');
        }
        out.push((index + 1, cleaned));
    }
    out
}

/// Finds the ignore file for a build, as BuildKit's dockerui frontend does:
/// `<dockerfile>.dockerignore` (the Dockerfile's own file name plus `.dockerignore`, in the
/// Dockerfile's directory) if it is a file, else `<context_dir>/.dockerignore` if it is a file,
/// else `None`.
///
/// `dockerfile` is the Dockerfile's path as the user gave it with `-f` (relative paths are
/// relative to the current directory, as for docker), or `<context_dir>/Dockerfile`. Symlinks
/// are followed. Errors other than "not found" (e.g. permission denied) are returned.
pub fn find_ignore_file(context_dir: &Path, dockerfile: &Path) -> io::Result<Option<PathBuf>> {
    let mut candidates = Vec::with_capacity(2);
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(DOCKERIGNORE_NAME);
        candidates.push(dockerfile.with_file_name(specific));
    }
    candidates.push(context_dir.join(DOCKERIGNORE_NAME));
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => return Ok(Some(candidate)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_matches_ignorefile_test() {
        // The fixture of patternmatcher's ignorefile_test.go.
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_all(content).into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn read_all_edge_cases() {
        let content = "\u{feff}#bom comment\r\n  # not a comment\r\n\t\u{a0}spaced\u{a0} \r\n!  ./x/../y/\n/\n//\n!/\n./\n..\n\r\n";
        let got: Vec<(usize, String)> = read_all(content);
        let want: Vec<(usize, String)> = [
            (2, "# not a comment"),
            (3, "spaced"),
            (4, "!y"),
            (5, "/"),
            (6, "/"),
            (7, "!/"),
            (8, "."),
            (9, ".."),
        ]
        .into_iter()
        .map(|(l, p)| (l, p.to_owned()))
        .collect();
        assert_eq!(got, want);
    }
}
