//! Filesystem views the ops read from: the build context ([`Tree::Dir`], filtered by
//! `.dockerignore`) and a stack of snapshot layers ([`Tree::Chain`], overlay semantics:
//! whiteouts and opaque directories hide what is below).
//!
//! This module, [`contenthash`] and [`actions`] are the solver's own minimal implementation of
//! what `dray_fsutil::{tree, contenthash, fileop}` will provide; once that lands, these become
//! thin adapters over it. They are deliberately strict: anything unusual (a symlink inside a
//! looked-up path, an unsupported copy option) is an error, never a silent approximation.

pub(crate) mod actions;
pub(crate) mod contenthash;

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dray_fsutil::dockerignore::Patterns;

use crate::error::OpError;

/// A read-only filesystem view.
#[derive(Debug, Clone)]
pub(crate) enum Tree {
    /// Nothing (scratch).
    Empty,
    /// A host directory with `.dockerignore` patterns: excluded paths do not exist.
    Dir {
        /// The directory.
        root: PathBuf,
        /// The exclusions.
        patterns: Arc<Patterns>,
    },
    /// Snapshot layers, **bottom first**, each `(memo scope, directory)`.
    Chain {
        /// The layers.
        layers: Vec<(String, PathBuf)>,
    },
}

/// A path found in a [`Tree`].
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Where it is on the host.
    pub host: PathBuf,
    /// Its `lstat`.
    pub meta: Metadata,
    /// The memo scope of the layer (or context) it was found in.
    pub scope: String,
}

/// Splits an absolute or relative in-tree path into clean components; `..` is refused.
pub(crate) fn components(path: &str) -> Result<Vec<&str>, OpError> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(OpError::BadPath {
                    path: path.to_owned(),
                    reason: "`..` is not allowed",
                });
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Whether `meta` is an overlay whiteout (a character device 0:0).
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` is overlay-opaque (`trusted.` or `user.overlay.opaque=y`).
fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(xattr::get(path, name), Ok(Some(v)) if v == b"y"))
}

fn lstat(path: &Path) -> Result<Option<Metadata>, OpError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(20) => Ok(None), // ENOTDIR: a parent is a file
        Err(e) => Err(OpError::Io {
            action: "stat",
            path: path.to_owned(),
            source: e,
        }),
    }
}

impl Tree {
    /// Which layers (top first) can show `comps`, with what each has there.
    fn visible(&self, comps: &[&str]) -> Result<Vec<(usize, Option<Metadata>)>, OpError> {
        let Tree::Chain { layers } = self else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, (_, dir)) in layers.iter().enumerate().rev() {
            let mut p = dir.clone();
            let mut stop_after = false;
            let mut found = None;
            for (depth, c) in comps.iter().enumerate() {
                p.push(c);
                let Some(meta) = lstat(&p)? else {
                    break;
                };
                if is_whiteout(&meta) {
                    return Ok(out);
                }
                let last = depth + 1 == comps.len();
                if last {
                    found = Some(meta);
                    break;
                }
                if !meta.is_dir() {
                    // A file or symlink here hides everything below it in lower layers.
                    out.push((i, None));
                    return Ok(out);
                }
                if is_opaque(&p) {
                    stop_after = true;
                }
            }
            if comps.is_empty() {
                found = lstat(dir)?;
            }
            let opaque_here = found.as_ref().is_some_and(|m| m.is_dir()) && is_opaque(&p);
            let terminal = found.as_ref().is_some_and(|m| !m.is_dir());
            out.push((i, found));
            if stop_after || opaque_here || terminal {
                break;
            }
        }
        Ok(out)
    }

    /// Looks `path` up without following symlinks (in any component).
    pub(crate) fn lookup(&self, path: &str) -> Result<Option<Found>, OpError> {
        let comps = components(path)?;
        match self {
            Tree::Empty => Ok(None),
            Tree::Dir { root, patterns } => {
                let mut p = root.clone();
                for (depth, c) in comps.iter().enumerate() {
                    p.push(c);
                    let Some(meta) = lstat(&p)? else {
                        return Ok(None);
                    };
                    if depth + 1 < comps.len() && !meta.is_dir() {
                        return Ok(None);
                    }
                }
                if !comps.is_empty() && patterns.is_excluded(&comps.join("/")) {
                    return Ok(None);
                }
                let Some(meta) = lstat(&p)? else {
                    return Ok(None);
                };
                Ok(Some(Found {
                    host: p,
                    meta,
                    scope: context_scope(root),
                }))
            }
            Tree::Chain { layers } => {
                for (i, meta) in self.visible(&comps)? {
                    if let Some(meta) = meta {
                        let (scope, dir) = &layers[i];
                        let mut host = dir.clone();
                        host.extend(&comps);
                        return Ok(Some(Found {
                            host,
                            meta,
                            scope: scope.clone(),
                        }));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The entries of the directory at `path`, by name (sorted). A missing directory is empty.
    pub(crate) fn read_dir(&self, path: &str) -> Result<BTreeMap<String, Found>, OpError> {
        let comps = components(path)?;
        let mut out = BTreeMap::new();
        match self {
            Tree::Empty => {}
            Tree::Dir { root, patterns } => {
                let mut dir = root.clone();
                dir.extend(&comps);
                for (name, host) in list(&dir)? {
                    let rel = if comps.is_empty() {
                        name.clone()
                    } else {
                        format!("{}/{name}", comps.join("/"))
                    };
                    let Some(meta) = lstat(&host)? else { continue };
                    let keep = !patterns.is_excluded(&rel)
                        || (meta.is_dir() && patterns.may_match_below(&rel));
                    if keep {
                        let scope = context_scope(root);
                        out.insert(name, Found { host, meta, scope });
                    }
                }
            }
            Tree::Chain { layers } => {
                let mut hidden = std::collections::BTreeSet::new();
                for (i, meta) in self.visible(&comps)? {
                    if !meta.as_ref().is_some_and(Metadata::is_dir) {
                        continue;
                    }
                    let (scope, layer) = &layers[i];
                    let mut dir = layer.clone();
                    dir.extend(&comps);
                    for (name, host) in list(&dir)? {
                        if out.contains_key(&name) || hidden.contains(&name) {
                            continue;
                        }
                        let Some(meta) = lstat(&host)? else { continue };
                        if is_whiteout(&meta) {
                            hidden.insert(name);
                            continue;
                        }
                        let scope = scope.clone();
                        out.insert(name, Found { host, meta, scope });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The memo scope of a build context directory.
pub(crate) fn context_scope(root: &Path) -> String {
    format!("context:{}", root.display())
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, OpError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(OpError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(OpError::io("list", dir))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| OpError::BadPath {
                path: n.to_string_lossy().into_owned(),
                reason: "file names must be UTF-8",
            })?;
        out.push((name, entry.path()));
    }
    Ok(out)
}

/// Whether `s` has `filepath.Match` meta characters.
pub(crate) fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `filepath.Match` for one path component (`*`, `?`, `[..]` / `[^..]`, `\` escapes).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return false;
                };
                let Some(c) = n.first() else { return false };
                let mut class = &p[1..close];
                let negate = class.first() == Some(&'^');
                if negate {
                    class = &class[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Expands a path whose **last** component may be a wildcard; other components are literal.
/// Returns matching paths (absolute, `/`-joined) in sorted order.
pub(crate) fn expand(tree: &Tree, path: &str) -> Result<Vec<String>, OpError> {
    let comps = components(path)?;
    let Some((last, parents)) = comps.split_last() else {
        return Ok(vec!["/".to_owned()]);
    };
    if parents.iter().any(|c| has_wildcard(c)) {
        return Err(OpError::UnsupportedFileOption {
            action: "copy",
            option: "wildcards before the last path component",
        });
    }
    let parent = format!("/{}", parents.join("/"));
    let prefix = if parent == "/" { String::new() } else { parent };
    Ok(tree
        .read_dir(&prefix)?
        .into_keys()
        .filter(|name| glob_match(last, name))
        .map(|name| format!("{prefix}/{name}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("*.rs", "main.rs"));
        assert!(!glob_match("*.rs", "main.rc"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
    }

    #[test]
    fn chain_whiteouts_and_opaque_dirs_hide_lower_layers() {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1) = (t.path().join("l0"), t.path().join("l1"));
        fs::create_dir_all(l0.join("d")).unwrap();
        fs::write(l0.join("d/a"), "a").unwrap();
        fs::write(l0.join("d/b"), "b").unwrap();
        fs::create_dir_all(l1.join("d")).unwrap();
        fs::write(l1.join("d/c"), "c").unwrap();
        let tree = Tree::Chain {
            layers: vec![("s0".into(), l0.clone()), ("s1".into(), l1.clone())],
        };
        let names: Vec<String> = tree.read_dir("/d").unwrap().into_keys().collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(tree.lookup("/d/a").unwrap().unwrap().scope, "s0");
        // An opaque upper directory hides the lower one's entries.
        if xattr::set(l1.join("d"), "user.overlay.opaque", b"y").is_ok() {
            let names: Vec<String> = tree.read_dir("/d").unwrap().into_keys().collect();
            assert_eq!(names, ["c"]);
            assert!(tree.lookup("/d/a").unwrap().is_none());
        }
    }
}
