//! What a bind mount of the build context must hide: the paths `.dockerignore` excludes.
//!
//! BuildKit's context is sent already filtered, so `RUN --mount=type=bind,target=/ctx` (whose
//! source is the context) never shows an excluded file. dray reads the context in place, so
//! the solver lists the **top-most excluded entries** (an excluded directory stands for all of
//! it, unless an exception re-includes something inside, in which case its other entries are
//! listed one by one), and the executor hides each of them (the native sandbox puts an
//! overlay whiteout over each).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use dray_fsutil::dockerignore::{Patterns, walk};

use crate::error::OpError;

/// The top-most paths of `root` (relative to it) that `patterns` leave out of the context,
/// sorted. Empty when there are no patterns.
pub(crate) fn excluded(root: &Path, patterns: &Patterns) -> Result<Vec<PathBuf>, OpError> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    // What the context holds, decided exactly as for COPY (the same walk).
    let included: HashSet<PathBuf> = walk(root, patterns)
        .map(|entry| entry.map(|e| PathBuf::from(e.path())))
        .collect::<Result<_, _>>()
        .map_err(|source| OpError::ContextWalk {
            dir: root.to_owned(),
            source,
        })?;
    // Everything else on disk, without descending into what is left out as a whole.
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = root.join(&rel);
        let entries = std::fs::read_dir(&dir).map_err(OpError::io("list", &dir))?;
        for entry in entries {
            let entry = entry.map_err(OpError::io("list", &dir))?;
            let path = rel.join(entry.file_name());
            let is_dir = entry
                .file_type()
                .map_err(OpError::io("stat", entry.path()))?
                .is_dir();
            if !included.contains(&path) {
                out.push(path);
            } else if is_dir {
                dirs.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_top_most_excluded_entries_and_descends_for_exceptions() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for file in [
            "keep.txt",
            "secret.key",
            "build/out.o",
            "build/deep/x.o",
            "docs/a.md",
            "docs/b.md",
            "docs/keep.md",
            "src/main.rs",
        ] {
            let p = root.join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let patterns = Patterns::parse("*.key\nbuild\ndocs\n!docs/keep.md\n").unwrap();
        let got = excluded(root, &patterns).unwrap();
        let want: Vec<PathBuf> = ["build", "docs/a.md", "docs/b.md", "secret.key"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
        assert!(excluded(root, &Patterns::default()).unwrap().is_empty());
    }
}
