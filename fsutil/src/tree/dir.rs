//! [`DirTree`]: a plain directory, such as the build context.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::{DirEntry, Metadata, Tree, keep_xattr};
use crate::dockerignore::Patterns;
use crate::error::{Error, Result};
use crate::sys::{DirFd, ParentCache, ProcPath, Resolve, shown, split};

/// A plain directory seen as a [`Tree`]: the build context, or any unpacked directory.
///
/// * With [`with_patterns`](DirTree::with_patterns), paths the `.dockerignore` patterns
///   exclude are invisible: `lstat` says `None`, `read_dir` leaves them out. An excluded
///   directory stays visible when an exception re-includes something inside it, as in
///   BuildKit's context walk. Matching is [`Patterns::is_excluded`]'s (each path with its
///   parents); the walker's memoised form differs from it only in the corner case its docs
///   describe.
/// * With [`with_owner_reset`](DirTree::with_owner_reset), every entry reports uid and gid 0.
///   This is what the docker CLI and buildx do when they send the context to BuildKit, and why
///   `COPY` from the context without `--chown` yields root-owned files.
#[derive(Debug)]
pub struct DirTree {
    root: DirFd,
    /// The directory last looked into (see [`ParentCache`]).
    parent: ParentCache,
    root_path: PathBuf,
    patterns: Option<Patterns>,
    reset_owner: bool,
}

impl DirTree {
    /// Opens `root` (a directory; a symlink to one is followed).
    pub fn open(root: &Path) -> Result<DirTree> {
        Ok(DirTree {
            root: DirFd::open_host(root)?,
            parent: ParentCache::default(),
            root_path: root.to_owned(),
            patterns: None,
            reset_owner: false,
        })
    }

    /// Hides what `patterns` exclude (the `.dockerignore` of the context).
    pub fn with_patterns(mut self, patterns: Patterns) -> DirTree {
        self.patterns = (!patterns.is_empty()).then_some(patterns);
        self
    }

    /// Reports every entry as owned by 0:0 (the build context as BuildKit receives it).
    pub fn with_owner_reset(mut self) -> DirTree {
        self.reset_owner = true;
        self
    }

    /// The host directory this tree shows.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Whether the patterns leave `path` out. An excluded directory an exception may reach
    /// into is kept only if something inside it is kept, as BuildKit's walker does.
    fn hidden(&self, path: &Path, meta: &Metadata) -> Result<bool> {
        let Some(patterns) = &self.patterns else {
            return Ok(false);
        };
        let text = path.to_string_lossy();
        if !patterns.is_excluded(&text) {
            return Ok(false);
        }
        if !(meta.is_dir() && patterns.may_match_below(&text)) {
            return Ok(true);
        }
        for (name, child) in self.raw_entries(path)? {
            if !self.hidden(&path.join(&name), &child)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The directory's entries with their metadata, unfiltered and unsorted.
    fn raw_entries(&self, path: &Path) -> Result<Vec<(OsString, Metadata)>> {
        let dir = self
            .parent
            .open_dir(&self.root, path, Resolve::InRoot)
            .map_err(|e| Error::io("open directory", shown(path))(e.into()))?;
        let read = std::fs::read_dir(dir.proc_path(None))
            .map_err(Error::io("read directory", shown(path)))?;
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(Error::io("read directory", shown(path)))?;
            let name = entry.file_name();
            let st = rustix::fs::statat(dir.fd(), &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Error::io("stat", shown(&path.join(&name)))(e.into()))?;
            out.push((name, Metadata::from_stat(&st)));
        }
        Ok(out)
    }

    fn fix(&self, mut meta: Metadata) -> Metadata {
        if self.reset_owner {
            meta.uid = 0;
            meta.gid = 0;
        }
        meta
    }

    /// The parent directory of `path` and `path`'s name in it; `None` if the parent does not
    /// exist. For the root, the root itself and no name.
    fn locate(&self, path: &Path) -> Result<Option<(DirFd, Option<OsString>)>> {
        let (parent, name) = match split(path) {
            Some((parent, name)) => (parent, Some(name.to_owned())),
            None => (Path::new(""), None),
        };
        match self.parent.open_dir(&self.root, parent, Resolve::InRoot) {
            Ok(dir) => Ok(Some((dir, name))),
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => Ok(None),
            Err(e) => Err(Error::io("open", shown(parent))(e.into())),
        }
    }

    fn host_path(&self, path: &Path) -> Result<Option<ProcPath>> {
        Ok(self
            .locate(path)?
            .map(|(dir, name)| ProcPath::new(dir, name.as_deref())))
    }
}

impl Tree for DirTree {
    fn lstat(&self, path: &Path) -> Result<Option<Metadata>> {
        let Some(proc) = self.host_path(path)? else {
            return Ok(None);
        };
        match proc.lstat() {
            Ok(meta) => {
                if self.hidden(path, &meta)? {
                    return Ok(None);
                }
                Ok(Some(self.fix(meta)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::io("stat", shown(path))(e)),
        }
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for (name, meta) in self.raw_entries(path)? {
            if self.hidden(&path.join(&name), &meta)? {
                continue;
            }
            out.push(DirEntry {
                name,
                metadata: self.fix(meta),
            });
        }
        out.sort_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
        Ok(out)
    }

    fn open(&self, path: &Path) -> Result<File> {
        if self.lstat(path)?.is_none() {
            return Err(Error::NotFound { path: shown(path) });
        }
        let (dir, name) = self
            .locate(path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        // The root has no name in a parent: open the root descriptor's directory itself.
        let name = name.unwrap_or_else(|| OsString::from("."));
        // openat(2) relative to the parent's descriptor: `name` is one component and
        // O_NOFOLLOW refuses a final symlink, so this cannot leave the tree (and saves the
        // /proc magic-link walk of a path open).
        rustix::fs::openat(
            dir.fd(),
            &name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| Error::io("open", shown(path))(e.into()))
    }

    fn open_listed(&self, path: &Path) -> Result<File> {
        // Listed by `read_dir`, so not hidden: only the open itself.
        let (dir, name) = self
            .locate(path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        let name = name.unwrap_or_else(|| OsString::from("."));
        rustix::fs::openat(
            dir.fd(),
            &name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| Error::io("open", shown(path))(e.into()))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf> {
        let proc = self
            .host_path(path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        std::fs::read_link(&*proc).map_err(Error::io("read link", shown(path)))
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let proc = self
            .host_path(path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        read_xattrs(&proc, path.as_os_str().is_empty(), path)
    }
}

/// Reads the xattrs at a `/proc` path (see `sys.rs`), sorted, overlayfs's own dropped.
/// Filesystems without xattr support give an empty list.
pub(crate) fn read_xattrs(
    proc: &Path,
    is_root: bool,
    shown_as: &Path,
) -> Result<Vec<(OsString, Vec<u8>)>> {
    let list = if is_root {
        xattr::list_deref(proc)
    } else {
        xattr::list(proc)
    };
    let names = match list {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(95) => return Ok(Vec::new()), // EOPNOTSUPP
        Err(e) => return Err(Error::io("list xattrs of", shown(shown_as))(e)),
    };
    let mut out = Vec::new();
    for name in names {
        if !keep_xattr(&name) {
            continue;
        }
        let value = if is_root {
            xattr::get_deref(proc, &name)
        } else {
            xattr::get(proc, &name)
        }
        .map_err(Error::io("read xattrs of", shown(shown_as)))?;
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(out)
}

/// [`read_xattrs`] through an open descriptor (`flistxattr`/`fgetxattr`).
pub(crate) fn fd_xattrs(file: &File, shown_as: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    use xattr::FileExt;
    let names = match file.list_xattr() {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(95) => return Ok(Vec::new()), // EOPNOTSUPP
        Err(e) => return Err(Error::io("list xattrs of", shown(shown_as))(e)),
    };
    let mut out = Vec::new();
    for name in names {
        if !keep_xattr(&name) {
            continue;
        }
        let value = file
            .get_xattr(&name)
            .map_err(Error::io("read xattrs of", shown(shown_as)))?;
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(out)
}

/// `ENOENT` or `ENOTDIR`: nothing at that path.
pub(crate) fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}
