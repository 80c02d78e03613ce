//! A sorted walk of a build context that leaves out what the ignore patterns exclude, deciding
//! exactly as BuildKit's context walker (tonistiigi/fsutil's filter) does.

use std::collections::VecDeque;
use std::fs::FileType;
use std::path::{Component, Path, PathBuf};

use super::{Error, MatchInfo, Patterns};

/// Walks `context_dir` depth-first, entries sorted by name (byte order), without following
/// symlinks, yielding what the build context contains under `patterns`. The root itself is not
/// yielded.
///
/// * An excluded file is left out.
/// * An excluded directory is left out together with everything under it, unless
///   [`Patterns::may_match_below`] says an exception could re-include something inside. Then
///   the walk descends, and the directory is yielded (just before its first included
///   descendant) only if something inside is included, as fsutil does so that the included
///   path has its parents.
/// * Matching uses the parent results of the directory ([`Patterns::matches_with_parent`]).
pub fn walk<'a>(context_dir: &Path, patterns: &'a Patterns) -> Walk<'a> {
    Walk {
        root: context_dir.to_owned(),
        inner: walkdir::WalkDir::new(context_dir)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter(),
        patterns,
        open: Vec::new(),
        ready: VecDeque::new(),
    }
}

/// One path in the build context, from [`walk`].
#[derive(Debug, Clone)]
pub struct Entry {
    path: String,
    full_path: PathBuf,
    file_type: FileType,
    depth: usize,
}

impl Entry {
    /// The path relative to the context root, `/`-separated (what patterns are matched
    /// against, and what `COPY` sees).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path on disk (the context directory joined with [`path`](Self::path)).
    pub fn full_path(&self) -> &Path {
        &self.full_path
    }

    /// The type of the entry itself (a symlink is a symlink, never its target).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// How many directories deep the entry is: 1 for the context root's children.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// The iterator returned by [`walk`].
#[derive(Debug)]
pub struct Walk<'a> {
    root: PathBuf,
    inner: walkdir::IntoIter,
    patterns: &'a Patterns,
    /// The directories containing the current entry, outermost first.
    open: Vec<OpenDir>,
    /// Entries decided but not yet returned.
    ready: VecDeque<Result<Entry, Error>>,
}

#[derive(Debug)]
struct OpenDir {
    depth: usize,
    info: MatchInfo,
    /// The directory's entry while it is excluded and not yet yielded.
    pending: Option<Entry>,
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Some(ready);
            }
            let dirent = match self.inner.next()? {
                Ok(dirent) => dirent,
                Err(error) => {
                    // fsutil ignores "permission denied" for paths it is leaving out anyway;
                    // here, reading an excluded directory entered only because an exception
                    // might re-include something inside it.
                    let denied = error
                        .io_error()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
                    let in_excluded_dir = self
                        .open
                        .last()
                        .is_some_and(|dir| dir.depth == error.depth() && dir.pending.is_some());
                    if denied && in_excluded_dir {
                        continue;
                    }
                    let path = error.path().unwrap_or(&self.root).to_owned();
                    return Some(Err(Error::Walk { path, error }));
                }
            };
            let depth = dirent.depth();
            let is_dir = dirent.file_type().is_dir();
            while self.open.last().is_some_and(|dir| dir.depth >= depth) {
                self.open.pop();
            }
            let Some(path) = relative(&self.root, dirent.path()) else {
                if is_dir {
                    self.inner.skip_current_dir();
                }
                return Some(Err(Error::NonUtf8Path {
                    path: dirent.into_path(),
                }));
            };
            let parent = self.open.last().map(|dir| &dir.info);
            let (excluded, info) = self.patterns.matches_with_parent(&path, parent);
            let entry = Entry {
                path,
                file_type: dirent.file_type(),
                full_path: dirent.into_path(),
                depth,
            };
            if excluded {
                if is_dir && self.patterns.may_match_below(&entry.path) {
                    self.open.push(OpenDir {
                        depth,
                        info,
                        pending: Some(entry),
                    });
                } else if is_dir {
                    self.inner.skip_current_dir();
                }
                continue;
            }
            for dir in &mut self.open {
                if let Some(pending) = dir.pending.take() {
                    self.ready.push_back(Ok(pending));
                }
            }
            self.ready.push_back(Ok(entry));
            if is_dir {
                self.open.push(OpenDir {
                    depth,
                    info,
                    pending: None,
                });
            }
        }
    }
}

/// `path` relative to `root`, `/`-separated; `None` if some component is not UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for component in rest.components() {
        if let Component::Normal(name) = component {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(name.to_str()?);
        }
    }
    Some(out)
}
