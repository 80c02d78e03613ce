//! Go's `path/filepath.Clean` and `filepath.Dir` for `/`-separated paths.
//!
//! patternmatcher cleans every pattern (and the parent of every path it matches) with these, so
//! their exact results decide which patterns match: `a/../b` is `b`, `./a/` is `a`, `/..` is `/`,
//! and leading `..` elements of a relative path survive.

/// Returns the shortest path equivalent to `path` by purely lexical processing, as Go's
/// `filepath.Clean` does on Unix:
///
/// 1. runs of `/` become one `/`;
/// 2. `.` elements are dropped;
/// 3. an inner `..` removes the element before it (unless that is also `..`);
/// 4. a `..` directly after a leading `/` is dropped.
///
/// A trailing slash is removed (except for `/` itself), and an empty result is `.`.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    // Number of leading `..` elements in `kept`, which a later `..` must not pop.
    let mut dotdots = 0;
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                if kept.len() > dotdots {
                    kept.pop();
                } else if !rooted {
                    kept.push("..");
                    dotdots += 1;
                }
            }
            name => kept.push(name),
        }
    }
    let joined = kept.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Everything but the last element of `path`, cleaned; `.` if there is no `/`. Go's
/// `filepath.Dir`.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(slash) => clean(&path[..=slash]),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cases of Go's `path/filepath` `cleantests`, Unix flavour.
    const CLEAN: &[(&str, &str)] = &[
        ("abc", "abc"),
        ("abc/def", "abc/def"),
        ("a/b/c", "a/b/c"),
        (".", "."),
        ("..", ".."),
        ("../..", "../.."),
        ("../../abc", "../../abc"),
        ("/abc", "/abc"),
        ("/", "/"),
        ("", "."),
        ("abc/", "abc"),
        ("abc/def/", "abc/def"),
        ("a/b/c/", "a/b/c"),
        ("./", "."),
        ("../", ".."),
        ("../../", "../.."),
        ("/abc/", "/abc"),
        ("abc//def//ghi", "abc/def/ghi"),
        ("//abc", "/abc"),
        ("///abc", "/abc"),
        ("//abc//", "/abc"),
        ("abc//", "abc"),
        ("abc/./def", "abc/def"),
        ("/./abc/def", "/abc/def"),
        ("abc/.", "abc"),
        ("abc/def/ghi/../jkl", "abc/def/jkl"),
        ("abc/def/../ghi/../jkl", "abc/jkl"),
        ("abc/def/..", "abc"),
        ("abc/def/../..", "."),
        ("/abc/def/../..", "/"),
        ("abc/def/../../..", ".."),
        ("/abc/def/../../..", "/"),
        ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
        ("/../abc", "/abc"),
        ("a/../b:/../../c", "../c"),
        ("abc/./../def", "def"),
        ("abc//./../def", "def"),
        ("abc/../../././../def", "../../def"),
        ("!a/../b", "b"),
    ];

    #[test]
    fn clean_matches_go() {
        for &(input, want) in CLEAN {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/.", "/"),
            ("/", "/"),
            ("////", "/"),
            ("/foo", "/"),
            ("x/", "x"),
            ("abc", "."),
            ("abc/def", "abc"),
            ("a/b/.x", "a/b"),
            ("a/b/c.", "a/b"),
            ("a/b/c.x", "a/b"),
        ] {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }
}
