//! Read-only views of a filesystem: the build context ([`DirTree`]) and a stack of snapshot
//! diffs merged like overlayfs ([`ChainTree`]).
//!
//! Paths given to a [`Tree`] are **tree paths**: relative to the tree root, `/`-separated,
//! with no `.` or `..` (the root is the empty path). Such a path is what
//! [`Tree::resolve`] returns; pass user paths (`/app/../etc`, `src/`) through it first.
//!
//! # Symlinks never leave the tree
//!
//! [`Tree::resolve`] resolves symlinks as the kernel would if the tree root were `/`: an
//! absolute target starts again at the tree root, and `..` stops at it. So a context symlink
//! `passwd -> /etc/passwd` names the context's own `etc/passwd` (usually missing), never the
//! host's. The implementations add a second line of defence: they reach every path through a
//! descriptor of its parent opened with `openat2(RESOLVE_IN_ROOT)` (see `sys.rs`), so even an
//! unresolved path cannot read outside the root.

mod chain;
mod dir;

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

pub use chain::{ChainTree, OVERLAY_OPAQUE_XATTR, USER_OPAQUE_XATTR};
pub use dir::DirTree;

use crate::error::{Error, Result};

/// How many symlinks one resolution may follow, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// The type of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device (also an overlayfs whiteout when it is 0:0).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

/// What `lstat(2)` says about an entry, in a form every [`Tree`] can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The entry's type.
    pub kind: FileKind,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (the target length for a symlink).
    pub size: u64,
    /// The device number of a device node (`st_rdev`), else 0.
    pub rdev: u64,
    /// Hard link count.
    pub nlink: u64,
    /// The device holding the entry (`st_dev`); with `ino`, identifies hard links.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Access time, nanoseconds since the epoch.
    pub atime_ns: i64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl Metadata {
    /// Converts std's metadata (from `symlink_metadata`).
    pub fn from_std(meta: &std::fs::Metadata) -> Metadata {
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_socket() {
            FileKind::Socket
        } else {
            FileKind::File
        };
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Metadata {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            rdev: meta.rdev(),
            nlink: meta.nlink(),
            dev: meta.dev(),
            ino: meta.ino(),
            atime_ns: ns(meta.atime(), meta.atime_nsec()),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Converts a raw `stat` (from `fstatat(2)` on a directory descriptor).
    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Metadata {
        use rustix::fs::FileType;
        let kind = match FileType::from_raw_mode(st.st_mode as _) {
            FileType::Directory => FileKind::Dir,
            FileType::Symlink => FileKind::Symlink,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            _ => FileKind::File,
        };
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        #[allow(clippy::unnecessary_cast)] // the field types differ between architectures
        Metadata {
            kind,
            mode: st.st_mode as u32 & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u64,
            rdev: st.st_rdev as u64,
            nlink: st.st_nlink as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            atime_ns: ns(st.st_atime as i64, st.st_atime_nsec as i64),
            mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Whether this is an overlayfs whiteout: a character device with device number 0:0.
    pub fn is_whiteout(&self) -> bool {
        self.kind == FileKind::CharDevice && self.rdev == 0
    }
}

/// One entry of [`Tree::read_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (one path component).
    pub name: OsString,
    /// Its metadata (not following a symlink).
    pub metadata: Metadata,
}

/// A read-only filesystem view. See the [module docs](self) for what a tree path is.
///
/// Implementations must never expose anything outside their root, whatever path they are
/// given; [`resolve`](Tree::resolve) is the one place symlinks are followed.
pub trait Tree {
    /// The entry at `path` without following a final symlink; `None` if there is none.
    fn lstat(&self, path: &Path) -> Result<Option<Metadata>>;

    /// The entries of the directory at `path`, sorted by name (byte order).
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;

    /// Opens the regular file at `path` for reading (a final symlink is not followed). The
    /// descriptor is the entry itself, so its extended attributes are the ones
    /// [`xattrs`](Tree::xattrs) reports ([`file_xattrs`] reads them from it).
    fn open(&self, path: &Path) -> Result<File>;

    /// [`open`](Tree::open) for a path that [`read_dir`](Tree::read_dir) of this tree just
    /// listed: implementations may skip checks `read_dir` already made (a `.dockerignore`d
    /// path is never listed), saving a `stat` per file in a walk. The default is `open`.
    fn open_listed(&self, path: &Path) -> Result<File> {
        self.open(path)
    }

    /// The target of the symlink at `path`, verbatim.
    fn read_link(&self, path: &Path) -> Result<PathBuf>;

    /// The extended attributes of the entry at `path`, sorted by name, without the
    /// `trusted.overlay.*` and `user.overlay.*` ones: those are overlayfs's own (opaque
    /// markers, with `userxattr` in the `user.` namespace) and describe the layer, not the
    /// file.
    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>>;

    /// Resolves `path` (absolute or relative, may contain `.`, `..` and symlinks) to a tree
    /// path, following symlinks inside the tree: an absolute target restarts at the tree root
    /// and `..` never climbs above it. With `follow_final`, a symlink in the last component is
    /// followed too. Components that do not exist are kept as they are (the result may not
    /// exist); more than 40 links is [`Error::SymlinkLoop`].
    fn resolve(&self, path: &Path, follow_final: bool) -> Result<PathBuf> {
        resolve_with(path, follow_final, &mut |p| self.lstat(p), &mut |p| {
            self.read_link(p)
        })
    }
}

/// Resolves `path` inside the host directory `root` as [`Tree::resolve`] does (symlinks
/// followed but clamped to `root`, `..` stopping at it) and returns the host path: `root`
/// joined with the result. This is the replacement for `std::fs::canonicalize` wherever a
/// path comes from a build (a context, an image): canonicalize would follow a link out of the
/// root.
///
/// ```
/// # let tmp = tempfile::tempdir()?;
/// # let root = tmp.path();
/// std::os::unix::fs::symlink("/etc/passwd", root.join("link"))?;
/// let resolved = dray_fsutil::tree::resolve_in_root(root, "link".as_ref(), true)?;
/// assert_eq!(resolved, root.join("etc/passwd"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve_in_root(root: &Path, path: &Path, follow_final: bool) -> Result<PathBuf> {
    let tree = DirTree::open(root)?;
    Ok(root.join(tree.resolve(path, follow_final)?))
}

/// The resolution algorithm of [`Tree::resolve`], over any `lstat`/`readlink` pair (the
/// destination writer uses it on the merged view of a layer).
pub(crate) fn resolve_with(
    path: &Path,
    follow_final: bool,
    lstat: &mut dyn FnMut(&Path) -> Result<Option<Metadata>>,
    read_link: &mut dyn FnMut(&Path) -> Result<PathBuf>,
) -> Result<PathBuf> {
    // Components still to walk, last component at the end (popped from the back after
    // reversing), so a link target can be pushed in front of the rest.
    let mut todo: Vec<OsString> = components(path);
    todo.reverse();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let is_final = todo.is_empty();
        if is_final && !follow_final {
            resolved = candidate;
            break;
        }
        match lstat(&candidate)? {
            Some(meta) if meta.kind == FileKind::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop {
                        path: path.to_owned(),
                    });
                }
                let target = read_link(&candidate)?;
                if target.has_root() {
                    resolved = PathBuf::new();
                }
                let mut target = components(&target);
                target.reverse();
                todo.extend(target);
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

/// The normal and `..` components of `path` (`.`, `/` and empty ones dropped).
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// The extended attributes of an open file, as [`Tree::xattrs`] reports them for the entry
/// the file was opened from (sorted, overlayfs's own left out). Reading them from the
/// descriptor (`flistxattr(2)`) spares the path lookup per file of a walk. `shown_as` names
/// the entry in errors.
pub fn file_xattrs(file: &File, shown_as: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    dir::fd_xattrs(file, shown_as)
}

/// Keeps the xattrs a copy or a hash should see: everything but overlayfs's own
/// (`trusted.overlay.*`, and `user.overlay.*` as written with `userxattr`) and dray's own
/// bookkeeping (`trusted.dray.*`, see [`DEFERRED_XATTR`]).
pub(crate) fn keep_xattr(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    !name.starts_with(b"trusted.overlay.")
        && !name.starts_with(b"user.overlay.")
        && !name.starts_with(DRAY_XATTR_PREFIX.as_bytes())
}

/// The namespace of dray's own xattrs: never copied, hashed, extracted or written to a layer.
/// `trusted.` needs `CAP_SYS_ADMIN`, so an unprivileged process cannot forge one, and every
/// reader in dray drops the whole namespace from user content.
pub const DRAY_XATTR_PREFIX: &str = "trusted.dray.";

/// Marks a directory of a snapshot whose contents were **deferred**: a copy created the
/// directory (with its final metadata) but wrote its entries only into the layer blob, not
/// onto disk (see `fileop`'s deferred copies). Any lookup that reaches such a directory fails
/// with [`Error::Deferred`], so a partial snapshot is never mistaken
/// for a complete one; the snapshot is then materialized from its layer and the lookup redone.
pub const DEFERRED_XATTR: &str = "trusted.dray.deferred";
