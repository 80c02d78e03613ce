//! Lexical path joining for the builder (no filesystem access).

/// Joins `path` onto the absolute `base` unless it is absolute, then cleans it lexically:
/// empty and `.` components drop, `..` pops (never above `/`). A trailing `/` on `path` is kept,
/// because for a copy destination it means "into this directory".
pub(super) fn join(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn joins_and_cleans() {
        let cases = [
            ("/", "app", "/app"),
            ("/app", "src", "/app/src"),
            ("/app", "/etc", "/etc"),
            ("/app", "../x", "/x"),
            ("/", "../../x", "/x"),
            ("/a/b", "./c/./d/", "/a/b/c/d/"),
            ("/a", "", "/a"),
            ("/a", "b//c", "/a/b/c"),
            ("/", "/", "/"),
        ];
        for (base, path, want) in cases {
            assert_eq!(join(base, path), want, "join({base:?}, {path:?})");
        }
    }
}
