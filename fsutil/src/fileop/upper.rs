//! The writer of a new layer: every change goes into the upper directory, in overlayfs form.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

use super::user::Owner;
use crate::error::{Error, Result};
use crate::sys::{DirFd, ParentCache, Resolve, shown, split};
use crate::tree::{
    ChainTree, DEFERRED_XATTR, FileKind, Metadata, OVERLAY_OPAQUE_XATTR, Tree, USER_OPAQUE_XATTR,
};

/// How to make a directory that does not exist yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewDir {
    pub(crate) mode: u32,
    pub(crate) owner: Owner,
    /// Seconds since the epoch; `None` leaves the creation time.
    pub(crate) timestamp: Option<i64>,
}

/// What is at a destination path before an entry is written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Nothing visible: create the entry.
    Empty,
    /// A directory is visible and a directory is wanted: it is in `upper` now (copied up if
    /// it was only in `lower`).
    ExistingDir,
}

pub(crate) struct Upper<'a> {
    root: DirFd,
    /// The upper directory last written into (see [`ParentCache`]); cleared with the merged
    /// view's top cache whenever a directory is removed.
    parents: ParentCache,
    lower: Cow<'a, ChainTree>,
    merged: ChainTree,
    /// Directory times to set once all writes are done (creating entries changes them).
    dir_times: BTreeMap<PathBuf, (i64, i64)>,
    /// The xattr that marks a directory opaque.
    opaque_xattr: &'static str,
    /// `upper` is a diff over layers this writer cannot see (a base-image layer unpacked on
    /// its own): a whiteout already in `upper` is then the only sign that a lower layer has
    /// something at its path, so a directory created in its place is made opaque.
    unknown_lower: bool,
    /// How many directories and symlinks [`clear_upper`](Self::clear_upper) removed: a path
    /// resolved earlier is only known to resolve the same while this is unchanged.
    removals: u64,
}

fn errno_io(e: rustix::io::Errno) -> std::io::Error {
    e.into()
}

fn ts(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    }
}

impl<'a> Upper<'a> {
    pub(crate) fn new(upper: &Path, lower: &'a ChainTree, userxattr: bool) -> Result<Upper<'a>> {
        Upper::with_lower(upper, Cow::Borrowed(lower), userxattr, false)
    }

    /// A writer of the directory `upper` alone, with nothing below it: a plain directory, or
    /// (with `unknown_lower`) one layer's diff applied without its parents.
    pub(crate) fn standalone(
        upper: &Path,
        userxattr: bool,
        unknown_lower: bool,
    ) -> Result<Upper<'static>> {
        // Uncached: the empty chain answers every lookup without a system call, and a cache
        // would only grow with the paths asked about.
        let nothing = ChainTree::new(std::iter::empty::<&Path>())?.uncached();
        Upper::with_lower(upper, Cow::Owned(nothing), userxattr, unknown_lower)
    }

    fn with_lower(
        upper: &Path,
        lower: Cow<'a, ChainTree>,
        userxattr: bool,
        unknown_lower: bool,
    ) -> Result<Upper<'a>> {
        // Only this writer changes `upper` while the view is in use (the step's own
        // directory), so the view may cache the top's directories.
        let merged = lower.with_written_top(upper)?;
        Ok(Upper {
            root: DirFd::open_host(upper)?,
            parents: ParentCache::default(),
            lower,
            merged,
            dir_times: BTreeMap::new(),
            opaque_xattr: if userxattr {
                USER_OPAQUE_XATTR
            } else {
                OVERLAY_OPAQUE_XATTR
            },
            unknown_lower,
            removals: 0,
        })
    }

    /// A counter that changes whenever a directory or a symlink is removed from upper:
    /// callers that cache resolved paths compare it.
    pub(crate) fn removals(&self) -> u64 {
        self.removals
    }

    /// The destination as it looks now: upper over lower.
    pub(crate) fn merged(&self) -> &ChainTree {
        &self.merged
    }

    /// Resolves a destination path in the merged view (see the module docs).
    pub(crate) fn resolve(&self, path: &Path, follow_final: bool) -> Result<PathBuf> {
        self.merged.resolve(path, follow_final)
    }

    /// The entry at `path` in the upper layer alone (whiteouts included).
    fn upper_lstat(&self, path: &Path) -> Result<Option<Metadata>> {
        self.merged.layer_lstat(0, path)
    }

    /// The parent of `path` in upper (which must exist there) and `path`'s name.
    fn parent(&self, path: &Path) -> Result<(DirFd, OsString)> {
        let (parent, name) = split(path).ok_or_else(|| Error::InvalidPath { path: shown(path) })?;
        let dir = self
            .parents
            .open_dir(&self.root, parent, Resolve::NoSymlinks)
            .map_err(|e| Error::io("open", shown(parent))(errno_io(e)))?;
        Ok((dir, name.to_owned()))
    }

    /// Makes every component of `path` a directory in upper: copies up the ones only in
    /// lower, creates missing ones as `new` says.
    pub(crate) fn ensure_dir(&mut self, path: &Path, new: &NewDir) -> Result<()> {
        let mut prefix = PathBuf::new();
        for comp in path.iter() {
            prefix.push(comp);
            self.ensure_one_dir(&prefix, new)?;
        }
        Ok(())
    }

    fn ensure_one_dir(&mut self, path: &Path, new: &NewDir) -> Result<()> {
        match self.merged.lookup(path)? {
            Some((0, meta)) if meta.is_dir() => Ok(()),
            Some((_, meta)) if meta.is_dir() => self.copy_up_dir(path, &meta),
            Some(_) => Err(Error::NotADirectory { path: shown(path) }),
            None => {
                self.create_dir(path, new.mode, new.owner)?;
                if let Some(t) = new.timestamp {
                    let ns = t.saturating_mul(1_000_000_000);
                    self.set_dir_times(path, ns, ns);
                }
                Ok(())
            }
        }
    }

    /// Creates `path` in upper as a copy of lower's directory (metadata only).
    fn copy_up_dir(&mut self, path: &Path, meta: &Metadata) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::mkdirat(dir.fd(), &name, Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io("create directory", shown(path))(errno_io(e)))?;
        self.set_owner_mode(path, meta.uid, meta.gid, Some(meta.mode), FileKind::Dir)?;
        let xattrs = self.lower.xattrs(path)?;
        self.set_xattrs(path, &xattrs)?;
        self.set_dir_times(path, meta.atime_ns, meta.mtime_ns);
        Ok(())
    }

    /// Creates a new, empty directory at `path` (nothing visible there, or something to
    /// replace; the parent is in upper). It is made opaque if anything of lower would show
    /// through at `path` (a whiteout's target, a replaced lower entry).
    pub(crate) fn create_dir(&mut self, path: &Path, mode: u32, owner: Owner) -> Result<()> {
        let replaces_whiteout = self.unknown_lower && self.upper_is_whiteout(path)?;
        self.clear_upper(path)?;
        let hides_lower = replaces_whiteout || self.merged.lookup(path)?.is_some();
        let (dir, name) = self.parent(path)?;
        rustix::fs::mkdirat(dir.fd(), &name, Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io("create directory", shown(path))(errno_io(e)))?;
        if hides_lower {
            xattr::set(dir.proc_path(Some(&name)), self.opaque_xattr, b"y")
                .map_err(Error::io("mark opaque", shown(path)))?;
        }
        self.set_owner_mode(path, owner.uid, owner.gid, Some(mode), FileKind::Dir)
    }

    /// Whether upper holds a whiteout at `path`.
    pub(crate) fn upper_is_whiteout(&self, path: &Path) -> Result<bool> {
        Ok(self.upper_lstat(path)?.is_some_and(|m| m.is_whiteout()))
    }

    /// [`create_dir`](Self::create_dir) (mode `0o700`, root-owned, as copies start them) where
    /// the caller knows nothing is visible: `path`'s parent was itself just created by this
    /// writer, so there is nothing to clear in upper and nothing of lower to hide.
    pub(crate) fn create_fresh_dir(&mut self, path: &Path) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::mkdirat(dir.fd(), &name, Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io("create directory", shown(path))(errno_io(e)))?;
        let root = Owner::default();
        self.set_owner_mode(path, root.uid, root.gid, Some(0o700), FileKind::Dir)
    }

    /// Removes whatever upper has at `path` (an entry or a whiteout), recursively.
    pub(crate) fn clear_upper(&mut self, path: &Path) -> Result<()> {
        let Some(meta) = self.upper_lstat(path)? else {
            return Ok(());
        };
        let (dir, name) = self.parent(path)?;
        if meta.is_dir() || meta.kind == FileKind::Symlink {
            self.removals += 1;
        }
        if meta.is_dir() {
            let removed = std::fs::remove_dir_all(dir.proc_path(Some(&name)));
            // Cached descriptors may name what was just removed.
            self.parents.clear();
            self.merged.forget_top();
            removed.map_err(Error::io("remove", shown(path)))?;
            let prefix = path.to_owned();
            self.dir_times.retain(|p, _| !p.starts_with(&prefix));
        } else {
            rustix::fs::unlinkat(dir.fd(), &name, AtFlags::empty())
                .map_err(|e| Error::io("remove", shown(path))(errno_io(e)))?;
        }
        Ok(())
    }

    /// Gets `path` ready for a new entry of the given kind (`path`'s parent must already be
    /// in upper). `replace` allows a file to replace a directory and the other way round.
    pub(crate) fn prepare(&mut self, path: &Path, want_dir: bool, replace: bool) -> Result<Slot> {
        if path.as_os_str().is_empty() {
            return if want_dir {
                Ok(Slot::ExistingDir)
            } else {
                Err(Error::ReplaceDirectory { path: shown(path) })
            };
        }
        match self.merged.lookup(path)? {
            None => {
                // Possibly a whiteout in upper: the new entry takes its place (a non-directory
                // hides lower on its own; `create_dir` makes a directory opaque).
                if !want_dir {
                    self.clear_upper(path)?;
                }
                Ok(Slot::Empty)
            }
            Some((layer, meta)) if meta.is_dir() => {
                if want_dir {
                    if layer != 0 {
                        self.copy_up_dir(path, &meta)?;
                    }
                    return Ok(Slot::ExistingDir);
                }
                if !replace {
                    return Err(Error::ReplaceDirectory { path: shown(path) });
                }
                // A non-directory in upper hides lower's directory entirely.
                self.clear_upper(path)?;
                Ok(Slot::Empty)
            }
            Some(_) => {
                if want_dir && !replace {
                    return Err(Error::CopyToNonDirectory { path: shown(path) });
                }
                self.clear_upper(path)?;
                Ok(Slot::Empty)
            }
        }
    }

    /// Removes `path` from the merged view: from upper, and with a whiteout if lower has it.
    pub(crate) fn remove(&mut self, path: &Path) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(Error::InvalidPath { path: shown(path) });
        }
        self.clear_upper(path)?;
        // Whatever still shows at `path` comes from lower: hide it.
        if self.merged.lookup(path)?.is_some() {
            self.whiteout(path)?;
        }
        Ok(())
    }

    /// Creates a whiteout at `path` (the slot must be empty in upper).
    pub(crate) fn whiteout(&mut self, path: &Path) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        // overlayfs.rst: "A whiteout is created as a character device with 0/0 device
        // number". mknod(2) needs CAP_MKNOD.
        rustix::fs::mknodat(dir.fd(), &name, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(|e| Error::io("create whiteout", shown(path))(errno_io(e)))
    }

    /// Marks the upper directory `path` opaque: nothing below it in lower layers shows.
    pub(crate) fn set_opaque(&mut self, path: &Path) -> Result<()> {
        let set = if path.as_os_str().is_empty() {
            // The root's `/proc/self/fd/<n>` is itself a (magic) link: follow it.
            xattr::set_deref(self.root.proc_path(None), self.opaque_xattr, b"y")
        } else {
            // The parent was reached without symlinks, and `lsetxattr(2)` does not follow
            // `name`.
            let (dir, name) = self.parent(path)?;
            xattr::set(dir.proc_path(Some(&name)), self.opaque_xattr, b"y")
        };
        set.map_err(Error::io("mark opaque", shown(path)))
    }

    /// Marks the directory `path`, just created in upper by this writer, as deferred (see
    /// [`DEFERRED_XATTR`]): its contents will be in the layer blob only.
    pub(crate) fn mark_deferred(&mut self, path: &Path) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        xattr::set(dir.proc_path(Some(&name)), DEFERRED_XATTR, b"y")
            .map_err(Error::io("mark deferred", shown(path)))
    }

    /// Creates a regular file (the slot must be empty) and returns it open for writing.
    pub(crate) fn create_file(&mut self, path: &Path) -> Result<File> {
        self.create_file_mode(path, 0o600)
    }

    /// [`create_file`](Self::create_file) with the permission bits the file will end with
    /// (special bits are never given here: `chown` would clear them), so that
    /// [`set_owner_mode`](Self::set_owner_mode) usually finds nothing left to change.
    pub(crate) fn create_file_mode(&mut self, path: &Path, mode: u32) -> Result<File> {
        let (dir, name) = self.parent(path)?;
        // openat(2) on the parent's descriptor: O_EXCL|O_NOFOLLOW never writes through a
        // symlink, and no /proc magic-link walk per file.
        rustix::fs::openat(
            dir.fd(),
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map(File::from)
        .map_err(|e| Error::io("create", shown(path))(errno_io(e)))
    }

    /// Creates a symlink (the slot must be empty).
    pub(crate) fn create_symlink(&mut self, path: &Path, target: &Path) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::symlinkat(target, dir.fd(), &name)
            .map_err(|e| Error::io("create symlink", shown(path))(errno_io(e)))
    }

    /// Creates a device node, fifo or socket (the slot must be empty).
    pub(crate) fn create_node(&mut self, path: &Path, kind: FileKind, rdev: u64) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let ft = match kind {
            FileKind::CharDevice => FileType::CharacterDevice,
            FileKind::BlockDevice => FileType::BlockDevice,
            FileKind::Fifo => FileType::Fifo,
            FileKind::Socket => FileType::Socket,
            _ => return Err(Error::UnsupportedType { path: shown(path) }),
        };
        rustix::fs::mknodat(dir.fd(), &name, ft, Mode::from_raw_mode(0o600), rdev)
            .map_err(|e| Error::io("create node", shown(path))(errno_io(e)))
    }

    /// Hard-links `path` to the upper entry `existing` (the slot must be empty).
    pub(crate) fn create_hardlink(&mut self, path: &Path, existing: &Path) -> Result<()> {
        let (from_dir, from_name) = self.parent(existing)?;
        let (dir, name) = self.parent(path)?;
        rustix::fs::linkat(from_dir.fd(), &from_name, dir.fd(), &name, AtFlags::empty())
            .map_err(|e| Error::io("create hard link", shown(path))(errno_io(e)))
    }

    /// Sets owner, then mode (not for symlinks). Owner first: `chown` clears setuid bits.
    pub(crate) fn set_owner_mode(
        &mut self,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: Option<u32>,
        kind: FileKind,
    ) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        // Metadata writes on a fresh inode are far dearer than a stat on some filesystems
        // (ext4 journals each one): skip the ones that would change nothing. A new entry
        // usually has the owner already (created by root for a root-owned copy) and, from
        // `create_file_mode`, the mode.
        let now = rustix::fs::statat(dir.fd(), &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io("stat", shown(path))(errno_io(e)))?;
        let chown = now.st_uid != uid || now.st_gid != gid;
        if chown {
            rustix::fs::chownat(
                dir.fd(),
                &name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::io("chown", shown(path))(errno_io(e)))?;
        }
        // After a chown the mode is set again whatever it looked like: chown may have
        // cleared setuid/setgid.
        if let Some(mode) = mode
            && kind != FileKind::Symlink
            && (chown || now.st_mode & 0o7777 != mode & 0o7777)
        {
            // fchmodat(2) has no working AT_SYMLINK_NOFOLLOW; the entry is not a symlink
            // (checked above) and its parent was reached without symlinks.
            rustix::fs::chmodat(
                dir.fd(),
                &name,
                Mode::from_raw_mode(mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|e| Error::io("chmod", shown(path))(errno_io(e)))?;
        }
        Ok(())
    }

    /// [`set_owner_mode`](Self::set_owner_mode) for a regular file this writer created and
    /// holds open: the same checks and calls, through the descriptor (`fstat`, `fchown`,
    /// `fchmod`), so the parent is not searched by name again.
    pub(crate) fn set_file_owner_mode(
        &self,
        file: &File,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<()> {
        let now =
            rustix::fs::fstat(file).map_err(|e| Error::io("stat", shown(path))(errno_io(e)))?;
        let chown = now.st_uid != uid || now.st_gid != gid;
        if chown {
            rustix::fs::fchown(
                file,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(|e| Error::io("chown", shown(path))(errno_io(e)))?;
        }
        // As in `set_owner_mode`: chown may have cleared setuid/setgid.
        if chown || now.st_mode & 0o7777 != mode & 0o7777 {
            rustix::fs::fchmod(file, Mode::from_raw_mode(mode & 0o7777))
                .map_err(|e| Error::io("chmod", shown(path))(errno_io(e)))?;
        }
        Ok(())
    }

    /// Sets the times of a regular file this writer holds open (`futimens`), after its data:
    /// a later write would move its mtime again.
    pub(crate) fn set_file_times(
        &self,
        file: &File,
        path: &Path,
        atime_ns: i64,
        mtime_ns: i64,
    ) -> Result<()> {
        let times = Timestamps {
            last_access: ts(atime_ns),
            last_modification: ts(mtime_ns),
        };
        rustix::fs::futimens(file, &times)
            .map_err(|e| Error::io("set times of", shown(path))(errno_io(e)))
    }

    /// [`set_xattrs`](Self::set_xattrs) through an open descriptor (`fsetxattr`), with the
    /// same errors skipped.
    pub(crate) fn set_file_xattrs(
        &self,
        file: &File,
        path: &Path,
        xattrs: &[(OsString, Vec<u8>)],
    ) -> Result<()> {
        use xattr::FileExt;
        for (key, value) in xattrs {
            match file.set_xattr(key, value) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(1) | Some(95)) => {}
                Err(e) => return Err(Error::io("set xattrs of", shown(path))(e)),
            }
        }
        Ok(())
    }

    /// Sets access and modification times now (files, links) or at the end (directories).
    pub(crate) fn set_times(
        &mut self,
        path: &Path,
        kind: FileKind,
        atime_ns: i64,
        mtime_ns: i64,
    ) -> Result<()> {
        if kind == FileKind::Dir {
            self.set_dir_times(path, atime_ns, mtime_ns);
            return Ok(());
        }
        self.utimes(path, atime_ns, mtime_ns)
    }

    fn set_dir_times(&mut self, path: &Path, atime_ns: i64, mtime_ns: i64) {
        self.dir_times.insert(path.to_owned(), (atime_ns, mtime_ns));
    }

    fn utimes(&self, path: &Path, atime_ns: i64, mtime_ns: i64) -> Result<()> {
        let times = Timestamps {
            last_access: ts(atime_ns),
            last_modification: ts(mtime_ns),
        };
        if path.as_os_str().is_empty() {
            return rustix::fs::utimensat(self.root.fd(), ".", &times, AtFlags::empty())
                .map_err(|e| Error::io("set times of", shown(path))(errno_io(e)));
        }
        let (dir, name) = self.parent(path)?;
        rustix::fs::utimensat(dir.fd(), &name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io("set times of", shown(path))(errno_io(e)))
    }

    /// Sets xattrs on `path`. `EPERM`/`EOPNOTSUPP` are skipped (BuildKit logs and goes on):
    /// `trusted.*` needs `CAP_SYS_ADMIN`, and not every filesystem has xattrs.
    pub(crate) fn set_xattrs(&mut self, path: &Path, xattrs: &[(OsString, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let (dir, name) = self.parent(path)?;
        let proc = dir.proc_path(Some(&name));
        for (key, value) in xattrs {
            match xattr::set(&proc, key, value) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(1) | Some(95)) => {}
                Err(e) => return Err(Error::io("set xattrs of", shown(path))(e)),
            }
        }
        Ok(())
    }

    /// Restores directory times changed by the writes.
    pub(crate) fn finish(self) -> Result<()> {
        for (path, (atime, mtime)) in &self.dir_times {
            self.utimes(path, *atime, *mtime)?;
        }
        Ok(())
    }
}
