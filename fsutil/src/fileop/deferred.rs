//! Deferred copies: directories a copy creates but does not fill on disk.
//!
//! A `COPY` of a large tree into a fresh directory spends most of its time creating inodes in
//! the new snapshot, and then the layer writer reads them all back. Yet what ends up below a
//! directory the copy itself created is a function of the source and the copy's settings
//! alone: nothing of the destination shows through a new directory. So with deferring on
//! ([`ApplyContext::defer_copies`](super::ApplyContext::defer_copies)), such a directory is
//! created with its final metadata, marked with [`DEFERRED_XATTR`], recorded as a
//! [`DeferredDir`], and left empty. The layer writer then calls [`replay`] for each marked
//! directory it meets, which walks the *source* and hands the entries the copy would have
//! written, in the order the layer writer would have met them on disk, to a [`ReplaySink`].
//! The layer is byte for byte the one the full copy gives; the snapshot directory is filled
//! from that layer only when something needs its files (a `RUN`, a `COPY --from`).
//!
//! Safety net: every lookup that reaches a marked directory fails with
//! [`Error::Deferred`](crate::Error::Deferred), so a partial snapshot can never be read as if
//! it were complete; the caller then materializes and redoes the step without deferring. A
//! copy also gives up deferring (the same error) when a file it writes outside the deferred
//! directories has other hard links, which could be inside them.
//!
//! | what the copy would write below a deferred directory | what [`replay`] emits |
//! |---|---|
//! | a directory, created once something below it is taken (include/exclude) | a `Dir` entry when its first taken descendant is met |
//! | a regular file | a `File` entry with the open source as data |
//! | another name of a file already written (source `nlink > 1`) | a hard link to the first name in walk order |
//! | a symlink, device or FIFO | the entry; `user.*` xattrs dropped (Linux refuses them there) |
//! | a socket | nothing (the layer writer skips sockets) |
//!
//! Owner, mode (`--chmod`) and times (`timestamp`) go through the same [`CopySettings`] as the
//! copy itself.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chmod::ModeSpec;
use super::user::Owner;
use crate::error::Result;
use crate::select::{Filter, Selection};
use crate::tree::{FileKind, Metadata, Tree, file_xattrs};

/// `--chmod` compiled.
#[derive(Debug)]
pub(crate) enum ModeChange {
    Octal(u32),
    Spec(ModeSpec),
}

/// What every entry of one copy goes through.
#[derive(Debug)]
pub(crate) struct CopySettings {
    pub(crate) owner: Option<Owner>,
    pub(crate) mode: Option<ModeChange>,
    /// Seconds since the epoch for every written time.
    pub(crate) timestamp: Option<i64>,
    pub(crate) filter: Filter,
}

impl CopySettings {
    /// The (atime, mtime) in nanoseconds to give a copy of `meta`: the source's, or `timestamp`.
    pub(crate) fn times(&self, meta: &Metadata) -> (i64, i64) {
        let secs = |t: i64| t.saturating_mul(1_000_000_000);
        self.timestamp
            .map_or((meta.atime_ns, meta.mtime_ns), |t| (secs(t), secs(t)))
    }

    /// The permission bits a copy of `meta` ends with (`--chmod` applied).
    pub(crate) fn mode_of(&self, meta: &Metadata) -> u32 {
        match &self.mode {
            None => meta.mode,
            Some(ModeChange::Octal(m)) => *m,
            Some(ModeChange::Spec(spec)) => spec.apply(meta.mode, meta.is_dir()),
        }
    }

    /// The (uid, gid) a copy of `meta` ends with.
    pub(crate) fn owner_of(&self, meta: &Metadata) -> (u32, u32) {
        self.owner.map_or((meta.uid, meta.gid), |o| (o.uid, o.gid))
    }
}

/// A directory a copy created, marked and left empty; [`replay`] produces what belongs below it.
#[derive(Debug, Clone)]
pub struct DeferredDir {
    /// Where it is in the destination (a tree path).
    pub(crate) target: PathBuf,
    /// The source directory (a tree path of the copy's source).
    pub(crate) src_path: PathBuf,
    /// The source directory relative to the copied root, for include/exclude patterns.
    pub(crate) rel: PathBuf,
    pub(crate) settings: Arc<CopySettings>,
}

impl DeferredDir {
    /// The directory's path in the destination (a tree path: relative, no `..`).
    pub fn target(&self) -> &Path {
        &self.target
    }
}

/// One entry below a deferred directory, as the copy would have left it on disk.
#[derive(Debug)]
pub struct ReplayEntry<'a> {
    /// Its path in the destination (a tree path).
    pub path: &'a Path,
    /// Its type (never a socket).
    pub kind: FileKind,
    /// Permission and special bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Data length of a regular file (0 otherwise, and for a hard link).
    pub size: u64,
    /// Device number of a device node.
    pub rdev: u64,
    /// A symlink's target, verbatim.
    pub symlink_target: Option<&'a Path>,
    /// For another name of an already emitted file: that file's path (a tree path).
    pub hardlink_to: Option<&'a Path>,
    /// Extended attributes (overlayfs's and dray's own left out), sorted by name.
    pub xattrs: &'a [(OsString, Vec<u8>)],
}

/// Receives the entries [`replay`] produces.
pub trait ReplaySink {
    /// One entry; `data` is the open source of a regular file (not of a hard link), to be read
    /// for exactly `entry.size` bytes.
    fn entry(&mut self, entry: &ReplayEntry<'_>, data: Option<&mut File>) -> Result<()>;
}

/// The hard links met while replaying the deferred directories of one layer: the first name
/// written for each source inode, per copy (two copies never share an inode, as on disk).
#[derive(Debug, Default)]
pub struct ReplayLinks {
    first: HashMap<(usize, u64, u64), PathBuf>,
}

/// A directory on the way to a taken entry, emitted only once something below it is.
struct Pending {
    src: PathBuf,
    meta: Metadata,
    target: PathBuf,
    done: bool,
}

/// Emits, in layer order (siblings sorted by name bytes, a directory before its contents),
/// every entry the copy would have written below `dir`, reading the source `src` (the same
/// tree the copy read). Call it for the deferred directories of a layer in layer order, with
/// one `links` for the whole layer.
pub fn replay(
    dir: &DeferredDir,
    src: &dyn Tree,
    links: &mut ReplayLinks,
    sink: &mut dyn ReplaySink,
) -> Result<()> {
    let mut replayer = Replayer {
        src,
        settings: &dir.settings,
        copy_id: Arc::as_ptr(&dir.settings) as usize,
        links,
        sink,
    };
    replayer.children(&dir.src_path, &dir.rel, &dir.target, &mut Vec::new())
}

struct Replayer<'a> {
    src: &'a dyn Tree,
    settings: &'a CopySettings,
    copy_id: usize,
    links: &'a mut ReplayLinks,
    sink: &'a mut dyn ReplaySink,
}

impl Replayer<'_> {
    fn children(
        &mut self,
        src_path: &Path,
        rel: &Path,
        target: &Path,
        pending: &mut Vec<Pending>,
    ) -> Result<()> {
        for entry in self.src.read_dir(src_path)? {
            self.entry(
                &src_path.join(&entry.name),
                &entry.metadata,
                &rel.join(&entry.name),
                &target.join(&entry.name),
                pending,
            )?;
        }
        Ok(())
    }

    /// The copy's `copy_entry` for a fresh destination, emitting instead of writing.
    fn entry(
        &mut self,
        src_path: &Path,
        meta: &Metadata,
        rel: &Path,
        target: &Path,
        pending: &mut Vec<Pending>,
    ) -> Result<()> {
        match self.settings.filter.select(rel, meta.is_dir()) {
            Selection::Skip => return Ok(()),
            Selection::Take => {}
            Selection::Descend => {
                pending.push(Pending {
                    src: src_path.to_owned(),
                    meta: meta.clone(),
                    target: target.to_owned(),
                    done: false,
                });
                self.children(src_path, rel, target, pending)?;
                pending.pop();
                return Ok(());
            }
        }
        for p in pending.iter_mut().filter(|p| !p.done) {
            let xattrs = self.src.xattrs(&p.src)?;
            self.emit(&p.target, &p.meta, &xattrs, None, None, None)?;
            p.done = true;
        }
        match meta.kind {
            FileKind::Dir => {
                let xattrs = self.src.xattrs(src_path)?;
                self.emit(target, meta, &xattrs, None, None, None)?;
                self.children(src_path, rel, target, &mut Vec::new())
            }
            FileKind::File => {
                if meta.nlink > 1 {
                    let key = (self.copy_id, meta.dev, meta.ino);
                    if let Some(first) = self.links.first.get(&key).cloned() {
                        return self.emit(target, meta, &[], None, Some(&first), None);
                    }
                    self.links.first.insert(key, target.to_owned());
                }
                let mut file = self.src.open_listed(src_path)?;
                let xattrs = file_xattrs(&file, src_path)?;
                self.emit(target, meta, &xattrs, None, None, Some(&mut file))
            }
            FileKind::Symlink => {
                let link = self.src.read_link(src_path)?;
                let xattrs = special_xattrs(self.src.xattrs(src_path)?);
                self.emit(target, meta, &xattrs, Some(&link), None, None)
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
                let xattrs = special_xattrs(self.src.xattrs(src_path)?);
                self.emit(target, meta, &xattrs, None, None, None)
            }
            FileKind::Socket => Ok(()),
        }
    }

    fn emit(
        &mut self,
        target: &Path,
        meta: &Metadata,
        xattrs: &[(OsString, Vec<u8>)],
        symlink_target: Option<&Path>,
        hardlink_to: Option<&Path>,
        data: Option<&mut File>,
    ) -> Result<()> {
        let (uid, gid) = self.settings.owner_of(meta);
        let (_, mtime_ns) = self.settings.times(meta);
        let mode = match meta.kind {
            // Linux symlinks always read back as 0777.
            FileKind::Symlink => 0o777,
            _ => self.settings.mode_of(meta) & 0o7777,
        };
        let is_data = meta.kind == FileKind::File && hardlink_to.is_none();
        let entry = ReplayEntry {
            path: target,
            kind: meta.kind,
            mode,
            uid,
            gid,
            mtime_ns,
            size: if is_data { meta.size } else { 0 },
            rdev: meta.rdev,
            symlink_target,
            hardlink_to,
            xattrs,
        };
        self.sink.entry(&entry, data)
    }
}

/// Linux keeps `user.*` xattrs only on regular files and directories: the copy's attempt to
/// set one on a symlink or a device is refused (and skipped), so the replay leaves them out.
fn special_xattrs(xattrs: Vec<(OsString, Vec<u8>)>) -> Vec<(OsString, Vec<u8>)> {
    xattrs
        .into_iter()
        .filter(|(name, _)| !name.as_encoded_bytes().starts_with(b"user."))
        .collect()
}
