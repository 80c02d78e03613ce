//! `.dockerignore` behaviour, table-driven. Expected values follow moby/patternmatcher (its
//! `patternmatcher_test.go` and `ignorefile_test.go`, plus behaviour read off its source), not
//! what the documentation suggests: where the two differ, a comment says so.

use std::fs;
use std::path::Path;

use dray_fsutil::dockerignore::{Error, Patterns, find_ignore_file, walk};

/// (lines of a `.dockerignore`, path relative to the context, excluded?)
const CASES: &[(&[&str], &str, bool)] = &[
    // `*` and anchoring at the root.
    (&["*"], "fileutils.go", true),
    (&["*"], "a/b", true), // `a` matches, so everything below it is excluded
    (&["*.go"], "fileutils.go", true),
    (&["*.go"], "a/fileutils.go", false), // `*` does not cross `/`; patterns are anchored
    (&["*c"], "abc", true),
    (&["a*"], "a", true),
    (&["a*"], "ab/c", true),
    (&["a*/b"], "abc/b", true),
    (&["a*/b"], "a/c/b", false),
    (&["a*b*c*d*e*/f"], "axbxcxdxexxx/f", true),
    (&["a*b*c*d*e*/f"], "axbxcxdxe/xxx/f", false),
    (&["a*b?c*x"], "abxbbxdbxebxczzx", true),
    (&["a*b?c*x"], "abxbbxdbxebxczzy", false),
    (&["*x"], "xxx", true),
    (&["a*b"], "a/b", false),
    // `?`
    (&["abc?def"], "abcZdef", true),
    (&["abc?def"], "abcdef", false),
    (&["a?b"], "a/b", false),
    (&["a?b"], "a☺b", true), // one character, not one byte
    (&["a???b"], "a☺b", false),
    // Classes, negation, ranges.
    (&["ab[c]"], "abc", true),
    (&["ab[b-d]"], "abc", true),
    (&["ab[e-g]"], "abc", false),
    (&["ab[^c]"], "abc", false),
    (&["ab[^b-d]"], "abc", false),
    (&["ab[^e-g]"], "abc", true),
    (&["a[b-d]e"], "ace", true),
    (&["a[b-d]e"], "ae", false),
    (&["a[b-d]e"], "aae", false),
    (&["a[^b-d]e"], "aze", true),
    (&["a[^a]b"], "a☺b", true),
    (&["a[^a][^a][^a]b"], "a☺b", false),
    (&["[a-ζ]*"], "α", true),
    (&["*[a-ζ]"], "A", false),
    (&["[!a]"], "!", true), // `!` is an ordinary character in a Go class
    (&["[!a]"], "b", false),
    (&["a[^x]b"], "a/b", true), // unlike `?`, a negated class matches `/`
    (&["[[:alpha:]]"], "x", true), // Go regexp POSIX class, passed through by patternmatcher
    (&["[[:alpha:]]"], "1", false),
    // Escapes.
    (&[r"a\*b"], "a*b", true),
    (&[r"a\*b"], "ab", false),
    (&[r"a\*b"], "axb", false),
    (&[r"a\\"], r"a\", true),
    (&[r"a\?"], "a?", true),
    (&[r"a\?"], "ax", false),
    (&[r"\[x]"], "[x]", true),
    (&[r"[\]a]"], "]", true),
    (&[r"[\-]"], "-", true),
    (&[r"[x\-]"], "x", true),
    (&[r"[x\-]"], "-", true),
    (&[r"[x\-]"], "z", false),
    (&[r"[\-x]"], "a", false),
    // How to match names starting with `!` or `#`: escape the first character.
    (&[r"\!important"], "!important", true),
    (&[r"\#notes"], "#notes", true),
    // patternmatcher copies `\d` into a Go regexp, where it means an ASCII digit.
    (&[r"a\d"], "a7", true),
    (&[r"a\d"], "ad", false),
    // `**` in every position.
    (&["**"], "file", true),
    (&["**"], "dir/file", true),
    (&["**/"], "file", true),
    (&["**/**"], "dir/file", true),
    (&["dir/**"], "dir/file", true),
    (&["dir/**"], "dir/dir2/file", true),
    (&["dir/**"], "dir", false), // only what is below `dir`
    (&["abc/**"], "abc/def/ghi", true),
    (&["**/dir"], "dir", true),
    (&["**/dir"], "dir/file", true),
    (&["**/dir"], "a/b/dir", true),
    (&["**/dir"], "a/xdir", false),
    (&["**/dir2/*"], "dir/dir2/file", true),
    (&["**/dir2/**"], "dir/dir2/dir3/file", true),
    (&["**file"], "file", true),
    (&["**file"], "dir/dir/file", true),
    (&["**file"], "dir/xfile", true), // a plain suffix match, not "a path element"
    (&["**foo*"], "a/xfoo1", false),  // ... but with a `*` after it, it is a regexp: `(.*/)?foo`
    (&["**/file*.txt"], "dir/dir/file.txt", true),
    (&["**/file*.txt*"], "dir/dir/file.txt", true),
    (&["**/**/*.txt"], "dir/dir/file.txt", true),
    (&["**/**/*.txt2"], "dir/dir/file.txt", false),
    (&["**/*.txt"], "file.txt", true),
    (&["a**/*.txt"], "a/dir/dir/file.txt", true),
    (&["a/*.txt"], "a/dir/file.txt", false),
    (&["a/*.txt**"], "a/file.txt", true),
    (&["a/**/b"], "a/b", true),
    (&["a/**/b"], "a/x/y/b", true),
    (&["a/**/b"], "a/b/c", true),
    (&["a/**/b"], "a/xb", false),
    (&["**/foo/bar"], "dir/dir2/foo/bar", true),
    (&["**/.foo"], ".foo", true),
    (&["**/.foo"], "bar.foo", false),
    (&["foo**"], "foobar/baz", true), // `**` at the end is a plain prefix match
    // Characters that are special to regexps but not to globs.
    (&[".*"], ".foo", true),
    (&[".*"], "foo", false),
    (&["abc.def"], "abcdef", false),
    (&["abc.def"], "abc.def", true),
    (&["a(b)c/def"], "a(b)c/def", true),
    (&["a(b)c/def"], "a(b)c/xyz", false),
    (&["a.|)$(}+{bc"], "a.|)$(}+{bc", true),
    (
        &["dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (&["a^b"], "a^b", true),    // no wildcard: compared as a string
    (&["a^b*"], "a^bc", false), // with one, `^` reaches the Go regexp as an anchor
    // `[*]` becomes the Go regexp `^[[^/]*]$`: a class of `[`, `^`, `/`, then `]`.
    (&["[*]"], "]", true),
    (&["[*]"], "*", false),
    // Directories exclude what is below them.
    (&["docs"], "docs", true),
    (&["docs"], "docs/a/b/c", true),
    (&["docs"], "docsx", false),
    (&["docs"], "a/docs", false),
    (&["docs/"], "docs/x", true),
    // Exceptions and "last match wins".
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["*.go", "!fileutils.go"], "other.go", true),
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs", "!docs/README.md"], "docs/other.md", true),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (&["*", "!keep", "keep/drop"], "keep/drop/x", true),
    (&["*", "!keep", "keep/drop"], "keep/other", false),
    (&["a", "!a", "a"], "a/b", true),
    (&["!a"], "a", false),
    (&["a", "!a/b"], "a/b/c", false),
    (&["a", "!a/b"], "a/c", true),
    // Cleaning of patterns.
    (&["/foo"], "foo", true),
    (&["./foo"], "foo", true),
    (&["foo/../bar"], "bar", true),
    (&["foo/../bar"], "foo", false),
    (&["foo//bar/."], "foo/bar", true),
    (&["../foo"], "foo", false), // stays `../foo`, which no path in the context is
    (&["/"], "anything", false), // stays `/`
    (&["*", "! /foo"], "foo", false),
    (&["*", "!./keep/"], "keep/x", false),
    // Comments and whitespace.
    (&["# foo"], "# foo", false),
    (&[" # foo"], "# foo", true), // `#` only starts a comment in the first column
    (&["  foo  "], "foo", true),
    (&["\tfoo"], "foo", true),
    (&["foo\r"], "foo", true),
    (&["*", "!  foo"], "foo", false),
    (&["\u{a0}foo"], "foo", true), // Unicode whitespace is trimmed, as by Go's TrimSpace
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for &(lines, path, want) in CASES {
        let patterns = Patterns::parse(&lines.join("\n"))
            .unwrap_or_else(|e| panic!("{lines:?} should parse: {e}"));
        if patterns.is_excluded(path) != want {
            failures.push(format!("{lines:?} on {path:?}: want excluded={want}"));
        }
        // With no path-dependent state, the walker's memoised form must agree on these cases.
        let mut info = None;
        let mut prefix = String::new();
        for element in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(element);
            let (excluded, next) = patterns.matches_with_parent(&prefix, info.as_ref());
            if prefix == path && excluded != want {
                failures.push(format!(
                    "{lines:?} on {path:?} (memoised): want excluded={want}"
                ));
            }
            info = Some(next);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 80);
}

/// (ignore file, 1-based line of the error)
const ERRORS: &[(&str, usize)] = &[
    ("[", 1),
    ("ok\n# comment\n\na[", 4),
    ("[^", 1),
    ("[^bc", 1),
    ("[]", 1),
    ("[]a]", 1),
    ("[-]", 1),
    ("[x-]", 1),
    ("[-x]", 1),
    ("[a-b-c]", 1),
    ("x\n\\", 2),   // trailing backslash
    ("foo\\", 1),   // likewise
    ("foo\n!", 2),  // illegal exclusion pattern
    ("foo\n! ", 2), // ... also after trimming
    ("!/", 1),      // `!/` cleans to `!`
    // Valid glob syntax, but the Go regexp patternmatcher builds does not compile.
    ("[z-a]", 1),
    ("one\ntwo\n[Local-Only]/", 3), // moby/moby#52203: range `l-O` is backwards
    (r"a\y", 1),
    (r"a\1", 1),
];

#[test]
fn errors_name_the_line() {
    for &(text, line) in ERRORS {
        match Patterns::parse(text) {
            Ok(p) => panic!("{text:?} should not parse, got {:?}", p.patterns()),
            Err(e) => {
                assert_eq!(e.line(), Some(line), "{text:?}: {e}");
                assert!(
                    e.to_string().starts_with(&format!("line {line}: ")),
                    "{text:?}: {e}"
                );
            }
        }
    }
}

#[test]
fn error_messages() {
    let e = Patterns::parse("ok\n[abc").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"line 2: syntax error in pattern "[abc": unterminated character class"#
    );
    let e = Patterns::parse("!").unwrap_err();
    assert_eq!(e.to_string(), r#"line 1: illegal exclusion pattern: "!""#);
    let Error::AtLine { error, .. } = Patterns::parse("[Local-Only]").unwrap_err() else {
        panic!("expected a line");
    };
    assert!(
        matches!(*error, Error::Regex { ref regex, .. } if regex == "^[Local-Only]$"),
        "{error}"
    );
    // from_patterns has no lines.
    let e = Patterns::from_patterns(["ok", "a["]).unwrap_err();
    assert_eq!(e.line(), None);
    assert!(e.to_string().contains(r#""a[""#), "{e}");
}

#[test]
fn from_patterns_is_patternmatcher_new() {
    // No leading-`/` stripping here: that is the ignore-file reader's job.
    let p = Patterns::from_patterns(["/foo"]).unwrap();
    assert!(!p.is_excluded("foo"));
    // But trimming, cleaning and `!` still apply.
    let p = Patterns::from_patterns(["  docs/./  ", "  !docs/keep  ", ""]).unwrap();
    assert!(p.is_excluded("docs/x"));
    assert!(!p.is_excluded("docs/keep/x"));
    assert!(p.has_exclusions());
    assert_eq!(p.patterns().len(), 2);
    // Cleaning happens before `!` is looked at: `!a/..` is the plain pattern `.`.
    let p = Patterns::from_patterns(["!a/.."]).unwrap();
    assert!(!p.has_exclusions());
    assert_eq!(p.patterns()[0].as_str(), ".");
}

#[test]
fn patterns_in_order_for_cache_keys() {
    let text = "\u{feff}# deps\nnode_modules/\n\n  !node_modules/keep  \n/build//out/.\n*.log\r\n";
    let p = Patterns::parse(text).unwrap();
    let shown: Vec<String> = p.patterns().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["node_modules", "!node_modules/keep", "build/out", "*.log"]
    );
    assert!(p.patterns()[1].is_exception());
    assert_eq!(p.patterns()[1].as_str(), "node_modules/keep");
    assert!(p.has_exclusions());
    let spelled_differently =
        Patterns::parse("node_modules\n!node_modules/keep\nbuild/out\n*.log").unwrap();
    let again: Vec<String> = spelled_differently
        .patterns()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, again);

    let none = Patterns::parse("# only a comment\n\n   \n").unwrap();
    assert!(none.is_empty());
    assert!(!none.has_exclusions());
    assert!(!none.is_excluded("anything"));
}

#[test]
fn root_and_unclean_paths() {
    let p = Patterns::parse("*\n").unwrap();
    assert!(!p.is_excluded("."), "the root itself is never excluded");
    assert!(!p.is_excluded(""));
    assert!(p.is_excluded("./foo"));
    assert!(p.is_excluded("foo/"));
}

#[test]
fn may_match_below() {
    let p = Patterns::parse("a\nc").unwrap();
    assert!(!p.may_match_below("a"), "no exceptions: never descend");

    let p = Patterns::parse("a\n!a/b").unwrap();
    assert!(p.may_match_below("a"));
    assert!(p.may_match_below("a/b"));
    assert!(!p.may_match_below("c"));
    assert!(!p.may_match_below("a/bc"));
    assert!(!p.may_match_below("a/c"));

    // A trailing `/**` or `/*` does not make an exception a wildcard one.
    let p = Patterns::parse("a\n!a/b/**\n!x/*").unwrap();
    assert!(p.may_match_below("a"));
    assert!(p.may_match_below("x"));
    assert!(!p.may_match_below("c"));

    // Any other wildcard in an exception: the walk cannot rule anything out.
    let p = Patterns::parse("a\n!a/*.go").unwrap();
    assert!(p.may_match_below("zzz"));
    let p = Patterns::parse("a\n!**/keep").unwrap();
    assert!(p.may_match_below("zzz"));
}

/// The walker's memoised matching (`MatchesUsingParentResults`) does not re-check a pattern
/// against a parent directory once it was skipped there. With `a`, `!a/b`, `a`, the third
/// pattern is skipped for `a` (already excluded), so `a/b` is judged on its own name and stays
/// in. `MatchesOrParentMatches` re-checks the parent and excludes it. BuildKit's context walk
/// uses the former, so that is what `walk` does.
#[test]
fn memoised_matching_differs_in_one_corner() {
    let p = Patterns::parse("a\n!a/b\na").unwrap();
    assert!(p.is_excluded("a/b"));
    let (a_excluded, a_info) = p.matches_with_parent("a", None);
    assert!(a_excluded);
    let (b_excluded, _) = p.matches_with_parent("a/b", Some(&a_info));
    assert!(!b_excluded);
    // Without parent information it falls back to checking the parents.
    let (b_excluded, _) = p.matches_with_parent("a/b", None);
    assert!(b_excluded);
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

#[test]
fn find_ignore_file_prefers_the_dockerfile_specific_one() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    let dockerfile = ctx.join("Dockerfile");
    write(ctx, "Dockerfile", "FROM scratch\n");
    assert_eq!(find_ignore_file(ctx, &dockerfile).unwrap(), None);

    write(ctx, ".dockerignore", "x\n");
    assert_eq!(
        find_ignore_file(ctx, &dockerfile).unwrap(),
        Some(ctx.join(".dockerignore"))
    );

    write(ctx, "Dockerfile.dockerignore", "y\n");
    assert_eq!(
        find_ignore_file(ctx, &dockerfile).unwrap(),
        Some(ctx.join("Dockerfile.dockerignore"))
    );

    // `-f build/app.Dockerfile`: `build/app.Dockerfile.dockerignore`, next to the Dockerfile.
    let app = ctx.join("build/app.Dockerfile");
    write(ctx, "build/app.Dockerfile", "FROM scratch\n");
    assert_eq!(
        find_ignore_file(ctx, &app).unwrap(),
        Some(ctx.join(".dockerignore"))
    );
    write(ctx, "app.Dockerfile.dockerignore", "wrong place\n");
    write(ctx, "build/.dockerignore", "wrong name\n");
    assert_eq!(
        find_ignore_file(ctx, &app).unwrap(),
        Some(ctx.join(".dockerignore"))
    );
    write(ctx, "build/app.Dockerfile.dockerignore", "z\n");
    assert_eq!(
        find_ignore_file(ctx, &app).unwrap(),
        Some(ctx.join("build/app.Dockerfile.dockerignore"))
    );

    // A Dockerfile outside the context works the same way.
    let outside = tempfile::tempdir().unwrap();
    let ext = outside.path().join("Containerfile");
    write(outside.path(), "Containerfile", "FROM scratch\n");
    assert_eq!(
        find_ignore_file(ctx, &ext).unwrap(),
        Some(ctx.join(".dockerignore"))
    );
    write(outside.path(), "Containerfile.dockerignore", "");
    assert_eq!(
        find_ignore_file(ctx, &ext).unwrap(),
        Some(outside.path().join("Containerfile.dockerignore"))
    );
}

#[test]
fn find_ignore_file_skips_directories() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    let dockerfile = ctx.join("Dockerfile");
    fs::create_dir(ctx.join("Dockerfile.dockerignore")).unwrap();
    fs::create_dir(ctx.join(".dockerignore")).unwrap();
    assert_eq!(find_ignore_file(ctx, &dockerfile).unwrap(), None);
    fs::remove_dir(ctx.join(".dockerignore")).unwrap();
    write(ctx, ".dockerignore", "");
    assert_eq!(
        find_ignore_file(ctx, &dockerfile).unwrap(),
        Some(ctx.join(".dockerignore"))
    );
}

fn walked(root: &Path, ignore: &str) -> Vec<String> {
    let patterns = Patterns::parse(ignore).unwrap();
    walk(root, &patterns)
        .map(|e| e.unwrap().path().to_owned())
        .collect()
}

#[test]
fn walk_filters_sorts_and_backfills_parents() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for path in [
        "Dockerfile",
        ".dockerignore",
        "b.txt",
        "a.log",
        "src/main.rs",
        "src/gen/x.rs",
        "node_modules/dep/index.js",
        "node_modules/keep/index.js",
        "node_modules/keep/deep/more.js",
        "docs/README.md",
        "docs/guide.md",
    ] {
        write(root, path, "");
    }

    assert_eq!(
        walked(root, ""),
        [
            ".dockerignore",
            "Dockerfile",
            "a.log",
            "b.txt",
            "docs",
            "docs/README.md",
            "docs/guide.md",
            "node_modules",
            "node_modules/dep",
            "node_modules/dep/index.js",
            "node_modules/keep",
            "node_modules/keep/deep",
            "node_modules/keep/deep/more.js",
            "node_modules/keep/index.js",
            "src",
            "src/gen",
            "src/gen/x.rs",
            "src/main.rs",
        ]
    );

    // The Dockerfile and .dockerignore are excluded from the context like any other file.
    assert_eq!(
        walked(
            root,
            "*.log\nsrc/gen\nnode_modules\n!node_modules/keep\ndocs\nDockerfile\n.dockerignore"
        ),
        [
            "b.txt",
            // Excluded, but yielded before its first re-included descendant.
            "node_modules",
            "node_modules/keep",
            "node_modules/keep/deep",
            "node_modules/keep/deep/more.js",
            "node_modules/keep/index.js",
            "src",
            "src/main.rs",
        ]
    );

    // A wildcard exception forces a descent everywhere; an excluded directory with nothing
    // re-included below it is still not yielded.
    assert_eq!(
        walked(root, "*\n!**/*.md"),
        ["docs", "docs/README.md", "docs/guide.md"]
    );

    // Everything excluded.
    assert!(walked(root, "**").is_empty());
}

#[cfg(unix)]
#[test]
fn walk_does_not_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real/file", "");
    std::os::unix::fs::symlink("real", root.join("link")).unwrap();
    let patterns = Patterns::parse("real").unwrap();
    let entries: Vec<_> = walk(root, &patterns).map(Result::unwrap).collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path(), "link");
    assert!(entries[0].file_type().is_symlink());
    assert_eq!(entries[0].full_path(), root.join("link"));
    assert_eq!(entries[0].depth(), 1);
}

/// Every case under `testdata/dockerignore/` (layout in its README): build the context, walk
/// it with the case's ignore file, compare with `expected`.
#[test]
fn fixtures() {
    let base = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/dockerignore"
    ));
    let read = |path: &Path| {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut cases: Vec<_> = fs::read_dir(base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "fixtures missing under {}",
        base.display()
    );
    for case in cases {
        let ignore = read(&case.join(".dockerignore"));
        let ctx = tempfile::tempdir().unwrap();
        for path in read(&case.join("paths")).lines().filter(|l| !l.is_empty()) {
            match path.strip_suffix('/') {
                Some(dir) => fs::create_dir_all(ctx.path().join(dir)).unwrap(),
                None => write(ctx.path(), path, ""),
            }
        }
        let expected: Vec<String> = read(&case.join("expected"))
            .lines()
            .map(String::from)
            .collect();
        let patterns =
            Patterns::parse(&ignore).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let got: Vec<String> = walk(ctx.path(), &patterns)
            .map(|e| e.unwrap().path().to_owned())
            .collect();
        assert_eq!(got, expected, "case {}", case.display());
    }
}

#[test]
fn walk_reports_errors_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let patterns = Patterns::default();
    let results: Vec<_> = walk(&missing, &patterns).collect();
    assert_eq!(results.len(), 1);
    match &results[0] {
        Err(Error::Walk { path, .. }) => assert_eq!(path, &missing),
        other => panic!("expected a walk error, got {other:?}"),
    }
}
