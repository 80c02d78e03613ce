//! Kernel-enforced in-root path access.
//!
//! Every tree and layer directory is held open as an `O_PATH` descriptor. A path inside it is
//! reached by opening its parent with `openat2(2)`, so that the kernel, not string handling,
//! keeps the lookup inside the root:
//!
//! * source trees use `RESOLVE_IN_ROOT`: a symlink met on the way is resolved as if the tree
//!   were `/` (an absolute target or `..` cannot leave it), which is exactly chroot semantics
//!   (openat2(2), "RESOLVE_IN_ROOT");
//! * destination layers use `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: the writer only ever asks
//!   for paths whose components it made or checked to be directories, so any symlink there
//!   means the layer changed under us, and the lookup fails instead of writing elsewhere.
//!
//! The final component is then used through the parent descriptor's `/proc/self/fd/<n>/<name>`
//! path with the non-following (`l*`, `O_NOFOLLOW`) calls: the kernel follows the descriptor's
//! magic link, not anything in the tree. This keeps the rest of the crate on std's file APIs,
//! and needs `/proc` mounted (as it is wherever dray runs builds) and Linux ≥ 5.6 for
//! `openat2`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};
use crate::tree::Metadata;

/// An open directory: the root of a tree or layer, or a directory inside one. Cheap to clone
/// (clones share the descriptor).
#[derive(Debug, Clone)]
pub(crate) struct DirFd {
    fd: Arc<OwnedFd>,
}

/// How [`DirFd::open_dir`] resolves symlinks on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Symlinks are followed, clamped to the root (`RESOLVE_IN_ROOT`).
    InRoot,
    /// Any symlink is an error, and so is leaving the root (`RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS`).
    NoSymlinks,
}

impl DirFd {
    /// Opens a host directory (a context directory or a snapshot's `fs`).
    pub(crate) fn open_host(path: &Path) -> Result<DirFd> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open directory", path)(e.into()))?;
        Ok(DirFd { fd: Arc::new(fd) })
    }

    /// Opens the directory `rel` (relative, clean; empty for this directory itself).
    pub(crate) fn open_dir(&self, rel: &Path, resolve: Resolve) -> rustix::io::Result<DirFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let flags = match resolve {
            Resolve::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            Resolve::NoSymlinks => ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        };
        let fd = rustix::fs::openat2(
            self.fd.as_fd(),
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            flags,
        )?;
        Ok(DirFd { fd: Arc::new(fd) })
    }

    /// The `/proc` path of this directory; with `name`, of that entry in it.
    pub(crate) fn proc_path(&self, name: Option<&OsStr>) -> PathBuf {
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        if let Some(name) = name {
            path.push(name);
        }
        path
    }

    /// The descriptor, for `*at` calls.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// The directory most recently opened below one root, so that a walk that touches every entry
/// of a directory in turn (stat, open, xattrs, chown, ...) opens that directory once instead of
/// once per access: each `openat2` walks the whole path from the root again.
///
/// A cached descriptor keeps naming the directory it was opened as, so this is only for roots
/// whose directories are not removed or replaced behind the cache's back: the build context
/// (read-only to us; a concurrent rename could only show another in-root directory, or a
/// directory moved out after it was opened, as any open descriptor would), committed layers,
/// and a layer written by one writer that calls [`clear`](ParentCache::clear) whenever it
/// removes a directory.
#[derive(Debug, Default)]
pub(crate) struct ParentCache {
    last: Mutex<Option<(PathBuf, DirFd)>>,
}

impl ParentCache {
    /// `root.open_dir(rel, resolve)`, reusing the last descriptor if `rel` is the same.
    pub(crate) fn open_dir(
        &self,
        root: &DirFd,
        rel: &Path,
        resolve: Resolve,
    ) -> rustix::io::Result<DirFd> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((path, dir)) = &*last
            && path == rel
        {
            return Ok(dir.clone());
        }
        let dir = root.open_dir(rel, resolve)?;
        *last = Some((rel.to_owned(), dir.clone()));
        Ok(dir)
    }

    /// Forgets the cached descriptor (its directory may have been removed).
    pub(crate) fn clear(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Splits a clean relative path into its parent and its final name (`None` for the root).
pub(crate) fn split(rel: &Path) -> Option<(&Path, &OsStr)> {
    let name = rel.file_name()?;
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

/// Cleans a path lexically into a relative tree path: `/a/./b//c` → `a/b/c`; `..` pops a
/// component but never goes above the root (`/../x` → `x`). Use this only where no symlinks
/// can be involved; [`Tree::resolve`](crate::tree::Tree::resolve) handles `..` after links.
pub(crate) fn clean_lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The largest first `read(2)` [`read_sized`] makes: files up to this size are read whole in
/// one call.
const READ_CHUNK: usize = 64 * 1024;

/// Reads `file` to its end, handing each chunk to `sink`, with as few `read(2)` calls as
/// possible. `size` is the size the caller's `stat` saw: the buffer is sized to hold one byte
/// more, so a file no longer than that is read in **one** call. A read that comes back short
/// once the bytes read reach `size` is taken as the end of the file (a regular file reads
/// short only at its end), so no second call is spent just to see `0`; a file that grew since
/// the `stat` is read on to its real end. Returns the bytes read.
pub(crate) fn read_sized(
    file: &mut std::fs::File,
    size: u64,
    buf: &mut Vec<u8>,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    use std::io::Read;
    let want = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .min(READ_CHUNK);
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut total = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sink(&buf[..n])?;
        total += n as u64;
        if n < buf.len() && total == size {
            return Ok(total);
        }
    }
}

/// A tree path shown as an absolute path of its filesystem, for messages.
pub(crate) fn shown(rel: &Path) -> PathBuf {
    Path::new("/").join(rel)
}

/// A `/proc` path of an entry, holding its parent's descriptor open for as long as the path
/// is used (the path names the descriptor).
#[derive(Debug)]
pub(crate) struct ProcPath {
    dir: DirFd,
    name: Option<OsString>,
    path: PathBuf,
}

impl ProcPath {
    /// `name` in `dir`, or `dir` itself.
    pub(crate) fn new(dir: DirFd, name: Option<&OsStr>) -> ProcPath {
        let path = dir.proc_path(name);
        ProcPath {
            dir,
            name: name.map(OsStr::to_owned),
            path,
        }
    }

    /// `lstat` of the entry (for the directory itself, `fstat`), through `fstatat(2)` on the
    /// parent's descriptor with `AT_SYMLINK_NOFOLLOW`: the same entry the `/proc` path names,
    /// without the kernel walking `/proc/self/fd/<n>` first.
    pub(crate) fn lstat(&self) -> std::io::Result<Metadata> {
        let st = match &self.name {
            Some(name) => rustix::fs::statat(self.dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW),
            None => rustix::fs::fstat(self.dir.fd()),
        }?;
        Ok(Metadata::from_stat(&st))
    }
}

impl std::ops::Deref for ProcPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ProcPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}
