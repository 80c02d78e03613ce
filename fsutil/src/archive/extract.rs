//! The entry writer: tar entries onto an [`Upper`], contained in an extraction directory. See
//! the [module docs](super) for the rules.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::fileop::Owner;
use crate::fileop::upper::{NewDir, Slot, Upper};
use crate::sys::{clean_lexical, shown};
use crate::tree::{FileKind, Tree, keep_xattr};

/// Links followed while resolving one entry's parent before giving up (`ELOOP`'s 40).
const MAX_LINKS: usize = 40;

/// How missing parent directories are made: `0755`, root-owned, as moby's and containerd's
/// `MkdirAll` make them.
const PARENT_DIR: NewDir = NewDir {
    mode: 0o755,
    owner: Owner { uid: 0, gid: 0 },
    timestamp: None,
};

/// What to do with a name (or a link target) that climbs above the extraction directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Containment {
    /// Refuse the entry with [`Error::ArchiveBreakout`], as moby's `Untar` does (`ADD`): a
    /// name or hard-link target with `..` above the root, a symlink whose target, joined to
    /// its directory, does.
    Refuse,
    /// Stop `..` at the root, as containerd's `Apply` does (layers): the name is taken below
    /// the root, symlink targets are not checked (they are never followed outside it).
    Clamp,
}

/// The caller's choices for one extraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) containment: Containment,
    /// Replaces every entry's owner (`ADD --chown`).
    pub(crate) owner: Option<Owner>,
    /// Whether device nodes can be created (running as root).
    pub(crate) devices: bool,
}

/// What one entry did to the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// An entry of this kind was created, or (a directory) merged into an existing one.
    Entry(FileKind),
    /// A hard link to an entry already in the directory.
    HardLink,
    /// A character or block device that was skipped: only root can create one.
    SkippedDevice,
    /// Nothing to write (a PAX global header).
    Nothing,
}

/// A resolved parent directory, reusable while nothing was removed.
#[derive(Debug)]
struct ParentHit {
    /// The cleaned name of the parent, as in the archive.
    lexical: PathBuf,
    /// Where it resolved to (symlink-free, existing).
    resolved: PathBuf,
    /// [`Upper::removals`] when it was resolved.
    removals: u64,
}

/// The state of one extraction into `dest` (a directory path of the [`Upper`] it writes).
/// The `Upper` is passed to each call, so that both a borrowed writer (`ADD`, inside a file
/// op) and an owned one ([`DirExtractor`]) can drive it.
#[derive(Debug)]
pub(crate) struct Extraction {
    dest: PathBuf,
    policy: Policy,
    /// The archive, for messages.
    archive: PathBuf,
    /// Every path written, with its ancestors, when [`DirExtractor::remove_unwritten`] may be
    /// asked for.
    written: Option<HashSet<PathBuf>>,
    /// The last parent directory resolved: entries of one directory follow each other in
    /// archives, so this saves walking the path again for each of them.
    parent: Option<ParentHit>,
}

/// Owner, mode, times and xattrs of an entry, from its header and PAX records.
struct EntryMeta {
    owner: Owner,
    mode: u32,
    mtime_ns: i64,
    atime_ns: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Extraction {
    pub(crate) fn new(
        dest: PathBuf,
        policy: Policy,
        archive: PathBuf,
        track_written: bool,
    ) -> Self {
        Extraction {
            dest,
            policy,
            archive,
            written: track_written.then(HashSet::new),
            parent: None,
        }
    }

    fn read_err(&self) -> impl FnOnce(io::Error) -> Error + use<> {
        let archive = self.archive.clone();
        move |source| Error::Archive { archive, source }
    }

    fn breakout(&self, entry: &Path, reason: &'static str) -> Error {
        Error::ArchiveBreakout {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            reason,
        }
    }

    /// `name` cleaned into a path relative to `dest`, as the policy says.
    fn clean(&self, name: &Path) -> Result<PathBuf> {
        match self.policy.containment {
            Containment::Refuse => clean_below(name, true)
                .ok_or_else(|| self.breakout(name, "path is outside of the extraction directory")),
            Containment::Clamp => Ok(clean_lexical(name)),
        }
    }

    /// Resolves `rel` (relative to `dest`, may hold `..` and symlinks) to a symlink-free path
    /// of the upper's merged view below `dest`, following symlinks with `dest` as the root so
    /// that no link leads out of it. A final symlink is followed too. Components that do not
    /// exist are kept.
    fn resolve_below_dest(&self, up: &Upper<'_>, rel: &Path) -> Result<PathBuf> {
        #[derive(PartialEq)]
        enum Step {
            Up,
            Name(OsString),
        }
        fn steps(path: &Path) -> impl DoubleEndedIterator<Item = Step> + '_ {
            path.components().filter_map(|c| match c {
                Component::Normal(n) => Some(Step::Name(n.to_owned())),
                Component::ParentDir => Some(Step::Up),
                _ => None,
            })
        }
        let merged = up.merged();
        let mut out = self.dest.clone();
        let mut todo: Vec<Step> = steps(rel).rev().collect();
        let mut links = 0;
        while let Some(step) = todo.pop() {
            let name = match step {
                Step::Up => {
                    if out != self.dest {
                        out.pop();
                    }
                    continue;
                }
                Step::Name(name) => name,
            };
            let next = out.join(&name);
            match merged.lstat(&next)? {
                Some(meta) if meta.kind == FileKind::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Error::SymlinkLoop { path: shown(&next) });
                    }
                    let target = merged.read_link(&next)?;
                    if target.has_root() {
                        out = self.dest.clone();
                    }
                    todo.extend(steps(&target).rev());
                }
                _ => out = next,
            }
        }
        Ok(out)
    }

    /// The directory the cleaned parent name `parent` resolves to, created (with its missing
    /// ancestors) if needed.
    fn parent_dir(&mut self, up: &mut Upper<'_>, parent: &Path) -> Result<PathBuf> {
        if let Some(hit) = &self.parent
            && hit.lexical == parent
            && hit.removals == up.removals()
        {
            return Ok(hit.resolved.clone());
        }
        let resolved = self.resolve_below_dest(up, parent)?;
        up.ensure_dir(&resolved, &PARENT_DIR)?;
        self.parent = Some(ParentHit {
            lexical: parent.to_owned(),
            resolved: resolved.clone(),
            removals: up.removals(),
        });
        Ok(resolved)
    }

    /// Where the entry `name` goes (its parent resolved and created; the final component not
    /// followed), and its cleaned parent name. `dest` itself for `.` or `/`.
    fn place(&mut self, up: &mut Upper<'_>, name: &Path) -> Result<(PathBuf, PathBuf)> {
        let rel = self.clean(name)?;
        match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(file)) => {
                let dir = self.parent_dir(up, parent)?;
                Ok((dir.join(file), parent.to_owned()))
            }
            _ => Ok((self.dest.clone(), PathBuf::new())),
        }
    }

    fn note_written(&mut self, target: &Path) {
        if let Some(written) = &mut self.written {
            let mut path = target.to_owned();
            // Ancestors are in the set once one path below them is.
            while written.insert(path.clone()) && path.pop() {}
        }
    }

    /// Writes one entry (see the module docs).
    pub(crate) fn entry<R: Read>(
        &mut self,
        up: &mut Upper<'_>,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<Applied> {
        let name = e.path().map_err(self.read_err())?.into_owned();
        let mut kind = e.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(Applied::Nothing);
        }
        // Pre-POSIX archives mark directories with a trailing `/` on a regular entry (Go's
        // `tar.Reader` reads them as directories too).
        if kind == tar::EntryType::Regular && e.path_bytes().ends_with(b"/") {
            kind = tar::EntryType::Directory;
        }
        let (target, parent_rel) = self.place(up, &name)?;
        let meta = self.entry_meta(e)?;
        let file_kind = match kind {
            tar::EntryType::Directory => {
                if up.prepare(&target, true, true)? == Slot::Empty {
                    up.create_dir(&target, meta.mode, meta.owner)?;
                }
                FileKind::Dir
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                up.prepare(&target, false, true)?;
                let mut out = up.create_file_mode(&target, meta.mode)?;
                io::copy(e, &mut out).map_err(self.read_err())?;
                FileKind::File
            }
            tar::EntryType::Symlink => {
                let link = self.link_name(e, &name)?;
                // moby: `filepath.Join(filepath.Dir(path), hdr.Linkname)` must stay inside.
                if self.policy.containment == Containment::Refuse
                    && clean_below(&parent_rel.join(strip_root(&link)), false).is_none()
                {
                    return Err(self.breakout(
                        &name,
                        "symlink target is outside of the extraction directory",
                    ));
                }
                up.prepare(&target, false, true)?;
                up.create_symlink(&target, &link)?;
                FileKind::Symlink
            }
            tar::EntryType::Link => {
                let existing = self.hardlink_target(up, e, &name)?;
                up.prepare(&target, false, true)?;
                // A hard link shares its target's metadata: nothing more to set.
                up.create_hardlink(&target, &existing)?;
                self.note_written(&target);
                return Ok(Applied::HardLink);
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match kind {
                    tar::EntryType::Char => FileKind::CharDevice,
                    tar::EntryType::Block => FileKind::BlockDevice,
                    _ => FileKind::Fifo,
                };
                if kind != FileKind::Fifo && !self.policy.devices {
                    return Ok(Applied::SkippedDevice);
                }
                let rdev = if kind == FileKind::Fifo {
                    0
                } else {
                    let h = e.header();
                    let (major, minor) = match (h.as_ustar(), h.as_gnu()) {
                        (Some(u), _) => (u.dev_major.as_slice(), u.dev_minor.as_slice()),
                        (_, Some(g)) => (g.dev_major.as_slice(), g.dev_minor.as_slice()),
                        _ => (&[][..], &[][..]),
                    };
                    let major =
                        self.numeric(h.device_major().map(|d| d.unwrap_or(0).into()), major)?;
                    let minor =
                        self.numeric(h.device_minor().map(|d| d.unwrap_or(0).into()), minor)?;
                    rustix::fs::makedev(
                        u32::try_from(major).unwrap_or(u32::MAX),
                        u32::try_from(minor).unwrap_or(u32::MAX),
                    )
                };
                up.prepare(&target, false, true)?;
                up.create_node(&target, kind, rdev)?;
                kind
            }
            other => {
                return Err(Error::UnsupportedArchiveEntry {
                    archive: self.archive.clone(),
                    entry: name,
                    kind: other.as_byte() as char,
                });
            }
        };
        self.note_written(&target);
        if target.as_os_str().is_empty() {
            // `./` at the root of a layer: the root directory of a layer carries no metadata
            // of its own in an image (containerd skips it too), so there is none to set.
            return Ok(Applied::Entry(file_kind));
        }
        // Owner first: chown(2) clears setuid/setgid bits and file capabilities, so the mode
        // and then the xattrs (`security.capability`) come after it.
        up.set_owner_mode(
            &target,
            meta.owner.uid,
            meta.owner.gid,
            Some(meta.mode),
            file_kind,
        )?;
        up.set_times(&target, file_kind, meta.atime_ns, meta.mtime_ns)?;
        up.set_xattrs(&target, &meta.xattrs)?;
        Ok(Applied::Entry(file_kind))
    }

    /// The path a hard link entry names, resolved inside `dest`; it must be a non-directory
    /// already there (written by this archive, or by an earlier one into the same directory).
    fn hardlink_target<R: Read>(
        &self,
        up: &Upper<'_>,
        e: &tar::Entry<'_, R>,
        name: &Path,
    ) -> Result<PathBuf> {
        let link = self.link_name(e, name)?;
        let link_rel = match self.policy.containment {
            // moby: `filepath.Join(extractDir, hdr.Linkname)` must stay inside.
            Containment::Refuse => clean_below(strip_root(&link), false).ok_or_else(|| {
                self.breakout(
                    name,
                    "hard link target is outside of the extraction directory",
                )
            })?,
            Containment::Clamp => clean_lexical(&link),
        };
        let existing = match (link_rel.parent(), link_rel.file_name()) {
            (Some(parent), Some(file)) => self.resolve_below_dest(up, parent)?.join(file),
            _ => return Err(self.breakout(name, "hard link to a directory")),
        };
        match up.merged().lookup(&existing)? {
            Some((0, meta)) if !meta.is_dir() => Ok(existing),
            _ => Err(self.breakout(
                name,
                "hard link target is not a file extracted from this archive",
            )),
        }
    }

    fn link_name<R: Read>(&self, e: &tar::Entry<'_, R>, name: &Path) -> Result<PathBuf> {
        e.link_name()
            .map_err(self.read_err())?
            .map(|l| l.into_owned())
            .filter(|l| !l.as_os_str().is_empty())
            .ok_or_else(|| self.breakout(name, "link without a target"))
    }

    /// A numeric header field; an empty one (all NULs or spaces, as some writers leave
    /// uid/gid) is 0, as Go's `parseOctal` reads it.
    fn numeric(&self, parsed: io::Result<u64>, raw: &[u8]) -> Result<u64> {
        match parsed {
            Ok(n) => Ok(n),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(e) => Err(self.read_err()(e)),
        }
    }

    /// Owner (or the policy's), mode, times and xattrs: the header's fields, overridden by
    /// the entry's PAX records (the `tar` crate has already applied `uid`/`gid`).
    fn entry_meta<R: Read>(&self, e: &mut tar::Entry<'_, R>) -> Result<EntryMeta> {
        let h = e.header().clone();
        let raw = h.as_old();
        let owner = match self.policy.owner {
            Some(o) => o,
            None => Owner {
                uid: u32::try_from(self.numeric(h.uid(), &raw.uid)?).unwrap_or(u32::MAX),
                gid: u32::try_from(self.numeric(h.gid(), &raw.gid)?).unwrap_or(u32::MAX),
            },
        };
        let mode = self.numeric(h.mode().map(u64::from), &raw.mode)? as u32 & 0o7777;
        let secs = i64::try_from(self.numeric(h.mtime(), &raw.mtime)?).unwrap_or(i64::MAX);
        let mut mtime_ns = secs.saturating_mul(1_000_000_000);
        let mut atime_ns = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(self.read_err())? {
            for ext in exts {
                let ext = ext.map_err(self.read_err())?;
                match ext.key_bytes() {
                    b"mtime" => {
                        if let Some(ns) = parse_pax_time(ext.value_bytes()) {
                            mtime_ns = ns;
                        }
                    }
                    b"atime" => atime_ns = parse_pax_time(ext.value_bytes()),
                    key => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            let name = OsStr::from_bytes(name);
                            if keep_xattr(name) {
                                xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(EntryMeta {
            owner,
            mode,
            mtime_ns,
            atime_ns: atime_ns.map_or(mtime_ns, |a| a.max(mtime_ns)),
            xattrs,
        })
    }

    /// Puts a whiteout (a 0:0 character device) at the entry `name`, replacing what this
    /// directory has there. The final component is not followed: a whiteout of a symlink
    /// hides the symlink.
    pub(crate) fn whiteout(&mut self, up: &mut Upper<'_>, name: &Path) -> Result<()> {
        let (target, _) = self.place(up, name)?;
        if target == self.dest {
            return Err(self.breakout(name, "a whiteout cannot hide the root"));
        }
        up.clear_upper(&target)?;
        up.whiteout(&target)
    }

    /// Removes the entry `name` (recursively, not following a final symlink) if it exists.
    /// Missing parents are not created. Whether something was removed.
    pub(crate) fn remove(&mut self, up: &mut Upper<'_>, name: &Path) -> Result<bool> {
        let rel = self.clean(name)?;
        let (Some(parent), Some(file)) = (rel.parent(), rel.file_name()) else {
            return Err(self.breakout(name, "cannot remove the root"));
        };
        let dir = self.resolve_below_dest(up, parent)?;
        if !up.merged().lstat(&dir)?.is_some_and(|m| m.is_dir()) {
            return Ok(false);
        }
        let target = dir.join(file);
        if up.merged().lstat(&target)?.is_none() {
            return Ok(false);
        }
        up.remove(&target)?;
        Ok(true)
    }

    /// Marks the directory `name` (symlinks followed inside the root; created if missing)
    /// opaque.
    pub(crate) fn mark_opaque(&mut self, up: &mut Upper<'_>, name: &Path) -> Result<()> {
        let rel = self.clean(name)?;
        let dir = self.resolve_below_dest(up, &rel)?;
        up.ensure_dir(&dir, &PARENT_DIR)?;
        up.set_opaque(&dir)
    }

    /// Removes everything below the directory `name` (symlinks followed inside the root)
    /// that this extraction did not write. Nothing if it is not a directory.
    pub(crate) fn remove_unwritten(&mut self, up: &mut Upper<'_>, name: &Path) -> Result<()> {
        let rel = self.clean(name)?;
        let dir = self.resolve_below_dest(up, &rel)?;
        if !up.merged().lstat(&dir)?.is_some_and(|m| m.is_dir()) {
            return Ok(());
        }
        self.prune(up, &dir)
    }

    fn prune(&self, up: &mut Upper<'_>, dir: &Path) -> Result<()> {
        for entry in up.merged().read_dir(dir)? {
            let path = dir.join(&entry.name);
            let written = self.written.as_ref().is_some_and(|w| w.contains(&path));
            if !written {
                up.remove(&path)?;
            } else if entry.metadata.is_dir() {
                self.prune(up, &path)?;
            }
        }
        Ok(())
    }
}

/// A PAX time record (`1700000000.123456789`, possibly negative, any number of fraction
/// digits) in nanoseconds since the epoch, as Go's `parsePAXTime` reads it.
fn parse_pax_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let total = secs.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    Some(if negative { -total } else { total })
}

/// A path's components with the root dropped and `..` popped lexically; `None` if `..`
/// climbs above the start. With `rooted`, `..` at the top is dropped instead (Go's
/// `filepath.Clean` of an absolute name: `/../x` is `/x`).
pub(crate) fn clean_below(path: &Path, rooted: bool) -> Option<PathBuf> {
    let rooted = rooted && path.has_root();
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() && !rooted {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

fn strip_root(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// How a [`DirExtractor`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirOptions {
    /// The directory is one layer's diff in overlayfs upper-dir form, applied without the
    /// layers below it: a directory created where the diff holds a whiteout becomes opaque
    /// (the whiteout said the lower one is gone, and the new one must not merge with it).
    pub overlay_diff: bool,
    /// Opaque markers go in the `user.overlay.` namespace (overlayfs mounted with
    /// `userxattr`, rootless) instead of `trusted.overlay.`.
    pub userxattr: bool,
    /// Remember every path written, for [`DirExtractor::remove_unwritten`].
    pub track_written: bool,
}

impl DirOptions {
    /// Options for a diff in overlay form ([`overlay_diff`](DirOptions::overlay_diff)).
    pub fn overlay_diff() -> DirOptions {
        DirOptions {
            overlay_diff: true,
            ..DirOptions::default()
        }
    }

    /// Options for a merged directory, tracking written paths.
    pub fn merged() -> DirOptions {
        DirOptions {
            track_written: true,
            ..DirOptions::default()
        }
    }

    /// These options with [`userxattr`](DirOptions::userxattr) set as given.
    pub fn with_userxattr(mut self, userxattr: bool) -> DirOptions {
        self.userxattr = userxattr;
        self
    }
}

/// Writes tar entries into a host directory as its root, under the rules of the
/// [module docs](super) (names that climb above the root stop at it, as containerd's
/// `Apply`). The OCI layer applier drives it: plain entries go to [`entry`](Self::entry),
/// whiteouts to [`whiteout`](Self::whiteout) or [`remove`](Self::remove), opaque markers to
/// [`mark_opaque`](Self::mark_opaque) or [`remove_unwritten`](Self::remove_unwritten). Call
/// [`finish`](Self::finish) at the end: directory times are set then.
///
/// Entry names given to the methods are names as in the archive (`a/b`, `./a/b`, `/a/b`).
///
/// ```
/// use dray_fsutil::archive::{Applied, DirExtractor, DirOptions};
/// use dray_fsutil::tree::FileKind;
/// # let tmp = tempfile::tempdir()?;
/// # let root = tmp.path();
/// let mut tar = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_gnu();
/// h.set_entry_type(tar::EntryType::Symlink);
/// h.set_size(0);
/// tar.append_link(&mut h, "etc", "/")?;
/// let mut h = tar::Header::new_gnu();
/// h.set_size(2);
/// h.set_mode(0o644);
/// tar.append_data(&mut h, "etc/passwd", &b"x\n"[..])?; // through `etc -> /`
/// let bytes = tar.into_inner()?;
///
/// let mut x = DirExtractor::open(root, "layer.tar", DirOptions::default())?;
/// for entry in tar::Archive::new(&bytes[..]).entries()? {
///     assert!(matches!(x.entry(&mut entry?)?, Applied::Entry(_)));
/// }
/// x.finish()?;
/// // The link led back to the root of the directory, never to the host's /etc.
/// assert_eq!(std::fs::read(root.join("passwd"))?, b"x\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DirExtractor {
    up: Upper<'static>,
    x: Extraction,
}

impl std::fmt::Debug for DirExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirExtractor")
            .field("archive", &self.x.archive)
            .finish_non_exhaustive()
    }
}

impl DirExtractor {
    /// Opens `root` (an existing directory) for writing. `archive` names the input in error
    /// messages (a path or a digest).
    pub fn open(
        root: &Path,
        archive: impl Into<PathBuf>,
        options: DirOptions,
    ) -> Result<DirExtractor> {
        let policy = Policy {
            containment: Containment::Clamp,
            owner: None,
            devices: rustix::process::geteuid().is_root(),
        };
        Ok(DirExtractor {
            up: Upper::standalone(root, options.userxattr, options.overlay_diff)?,
            x: Extraction::new(
                PathBuf::new(),
                policy,
                archive.into(),
                options.track_written,
            ),
        })
    }

    /// Writes one entry. An entry named like a whiteout (`.wh.*`) is written as a plain
    /// entry: interpreting whiteouts is the caller's choice.
    pub fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Applied> {
        self.x.entry(&mut self.up, entry)
    }

    /// Puts an overlayfs whiteout (a 0:0 character device) at `name`, replacing whatever is
    /// there; its parent directories are created if missing. Needs `CAP_MKNOD`.
    pub fn whiteout(&mut self, name: &Path) -> Result<()> {
        self.x.whiteout(&mut self.up, name)
    }

    /// Deletes `name` (recursively; a final symlink itself, not its target) if it exists;
    /// whether something was deleted.
    pub fn remove(&mut self, name: &Path) -> Result<bool> {
        self.x.remove(&mut self.up, name)
    }

    /// Marks the directory `name` opaque (`trusted.overlay.opaque=y`, or `user.` with
    /// [`DirOptions::userxattr`]), creating it if missing. Needs `CAP_SYS_ADMIN` for
    /// `trusted.`.
    pub fn mark_opaque(&mut self, name: &Path) -> Result<()> {
        self.x.mark_opaque(&mut self.up, name)
    }

    /// Deletes everything below the directory `name` that this extractor did not write
    /// (with [`DirOptions::track_written`]; without it, everything below `name`).
    pub fn remove_unwritten(&mut self, name: &Path) -> Result<()> {
        self.x.remove_unwritten(&mut self.up, name)
    }

    /// Sets the directory times that writing into the directories changed.
    pub fn finish(self) -> Result<()> {
        self.up.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_names_below_the_root() {
        assert_eq!(clean_below(Path::new("/a/../b"), true), Some("b".into()));
        assert_eq!(clean_below(Path::new("/../x"), true), Some("x".into()));
        assert_eq!(clean_below(Path::new("../x"), true), None);
        assert_eq!(clean_below(Path::new("a/../../x"), false), None);
        assert_eq!(
            clean_below(Path::new("./a/./b/"), false),
            Some("a/b".into())
        );
    }

    #[test]
    fn pax_times_keep_nanoseconds() {
        assert_eq!(parse_pax_time(b"1"), Some(1_000_000_000));
        assert_eq!(
            parse_pax_time(b"1700000000.123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(parse_pax_time(b"2.5"), Some(2_500_000_000));
        assert_eq!(parse_pax_time(b"2.1234567891"), Some(2_123_456_789));
        assert_eq!(parse_pax_time(b"-1.5"), Some(-1_500_000_000));
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
