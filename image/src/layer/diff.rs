//! Walking a snapshot directory and turning each inode into tar [`Entry`]s: file types, hard
//! links, whiteouts, opaque directories and the xattr rule (all documented on the parent module).
//!
//! The walk works relative to open directory descriptors (`getdents`, then `openat` of each
//! regular file and directory by name, `fstat` and `flistxattr` on what was opened), so an
//! entry costs no path lookup from the root: with many small files the lookups, not the data,
//! were most of the time. Only the rare other entries (symlinks, devices, FIFOs, whiteouts)
//! are looked at by path. Metadata comes from the opened descriptor itself, so the header and
//! the data always describe the same inode.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use tar::EntryType;

use dray_fsutil::fileop::{ReplayEntry, ReplaySink};
use dray_fsutil::tree::{DEFERRED_XATTR, DRAY_XATTR_PREFIX, FileKind};

use super::tar::{Entry, TarWriter};
use super::{DiffSource, LayerOptions};
use crate::Error;

/// The name overlayfs and OCI give the opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of an OCI whiteout file.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// overlayfs's xattr namespaces: `trusted.` normally, `user.` under the `userxattr` option.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Produces the entries below a deferred directory (see [`super::Replay`]).
pub(super) type ReplayFn<'r> =
    dyn FnMut(&Path, &mut dyn ReplaySink) -> dray_fsutil::Result<()> + 'r;

/// Walks `root` in layer order and appends every entry to `tar`; `replay` fills in the
/// deferred directories (without it, meeting one is an error).
pub(super) fn write_entries<W: Write>(
    root: &Path,
    opts: &LayerOptions,
    tar: &mut TarWriter<W>,
    replay: Option<&mut ReplayFn<'_>>,
) -> Result<(), Error> {
    let mut differ = Differ {
        opts,
        first_paths: HashMap::new(),
        replay,
    };
    let dir = File::open(root).map_err(|source| Error::Walk {
        path: root.to_owned(),
        source,
    })?;
    differ.walk(tar, &dir, root, &mut Vec::new())
}

/// Opens `name` in `dir` without following a symlink: a directory to list, or a regular file
/// to read. `None` when it is not (any more) what the listing said; the caller then looks at
/// it by path.
fn open_at(dir: &File, name: &OsStr, directory: bool) -> Option<File> {
    // O_NONBLOCK: should the entry have become a FIFO since the listing, the open must not
    // wait for a writer (its fstat then shows what it is).
    let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::openat(dir, name, flags, Mode::empty())
        .ok()
        .map(File::from)
}

struct Differ<'a, 'r> {
    opts: &'a LayerOptions,
    /// (dev, ino) → the first path written for an inode with `nlink > 1`.
    first_paths: HashMap<(u64, u64), Vec<u8>>,
    replay: Option<&'a mut ReplayFn<'r>>,
}

impl Differ<'_, '_> {
    /// Appends the entries of the directory `dir` (at `dir_path` on the host, `rel` in the
    /// layer), siblings sorted by name bytes, each directory before its contents.
    fn walk<W: Write>(
        &mut self,
        tar: &mut TarWriter<W>,
        dir: &File,
        dir_path: &Path,
        rel: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let walk_err = |source: io::Error| Error::Walk {
            path: dir_path.to_owned(),
            source,
        };
        let mut names: Vec<(OsString, FileType)> = Vec::new();
        let mut listing = rustix::fs::Dir::read_from(dir).map_err(|e| walk_err(e.into()))?;
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(|e| walk_err(e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            names.push((OsString::from_vec(name.to_vec()), entry.file_type()));
        }
        drop(listing);
        names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        for (name, kind) in names {
            let base = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let path = dir_path.join(&name);
            let mut opened = match kind {
                FileType::RegularFile => open_at(dir, &name, false),
                FileType::Directory => open_at(dir, &name, true),
                _ => None,
            };
            let stat_err = |source| Error::Walk {
                path: path.clone(),
                source,
            };
            let md = match &opened {
                Some(file) => file.metadata().map_err(stat_err)?,
                None => {
                    let md = std::fs::symlink_metadata(&path).map_err(stat_err)?;
                    if md.is_dir() || md.is_file() {
                        // The listing's type was unknown (or stale): open what it really is,
                        // and describe the inode that was opened.
                        let file = open_at(dir, &name, md.is_dir()).ok_or_else(|| {
                            stat_err(io::Error::other("changed while the layer was written"))
                        })?;
                        let md = file.metadata().map_err(stat_err)?;
                        opened = Some(file);
                        md
                    } else {
                        md
                    }
                }
            };
            let deferred = self.emit(tar, &path, rel, &md, opened.as_mut())?;
            if deferred {
                self.replay_dir(tar, &path, rel)?;
            } else if md.is_dir()
                && let Some(sub) = &opened
            {
                self.walk(tar, sub, &path, rel)?;
            }
            rel.truncate(base);
        }
        Ok(())
    }

    /// Appends the entries below the deferred directory `rel` (at `path` on the host), which
    /// are not on disk, through the replay function.
    fn replay_dir<W: Write>(
        &mut self,
        tar: &mut TarWriter<W>,
        path: &Path,
        rel: &[u8],
    ) -> Result<(), Error> {
        let Some(replay) = self.replay.as_deref_mut() else {
            return Err(Error::NotMaterialized {
                path: path.to_owned(),
            });
        };
        let mut sink = TarReplay {
            tar,
            opts: self.opts,
            failed: None,
        };
        let result = replay(Path::new(OsStr::from_bytes(rel)), &mut sink);
        match (sink.failed, result) {
            (Some(e), _) => Err(e),
            (None, Err(source)) => Err(Error::Replay {
                path: path.to_owned(),
                source: Box::new(source),
            }),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Appends the entry for one inode. `opened` is the inode itself, open, for a regular file
    /// (its data) or a directory (its xattrs). Returns whether it is a deferred directory,
    /// whose contents the caller must replay rather than walk.
    fn emit<W: Write>(
        &mut self,
        tar: &mut TarWriter<W>,
        path: &Path,
        rel: &[u8],
        md: &Metadata,
        opened: Option<&mut File>,
    ) -> Result<bool, Error> {
        let ft = md.file_type();
        let overlay = self.opts.source == DiffSource::OverlayUpper;
        let mtime = match self.opts.source_date_epoch {
            Some(epoch) if md.mtime() > epoch => epoch,
            _ => md.mtime(),
        };

        // overlayfs records a deletion as a 0:0 character device (overlayfs.rst, "whiteouts
        // and opaque directories"). Since Linux 5.8 these may be hard links to one shared
        // whiteout inode, so they are translated before the hard-link bookkeeping sees them.
        if overlay && ft.is_char_device() && md.rdev() == 0 {
            tar.append(&Entry::marker(whiteout_name(rel), mtime), None, path)?;
            return Ok(false);
        }
        if ft.is_socket() {
            return Ok(false);
        }

        let source = match &opened {
            Some(file) => XattrSource::Fd(file),
            None => XattrSource::Path(path),
        };
        let attrs = read_xattrs(&source, path, overlay)?;
        let mut entry = Entry {
            name: rel.to_vec(),
            kind: EntryType::Regular,
            mode: md.mode() & 0o7777,
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
            mtime,
            size: 0,
            link: None,
            device: None,
            xattrs: attrs.kept,
        };

        if !ft.is_dir() && md.nlink() > 1 {
            match self.first_paths.entry((md.dev(), md.ino())) {
                Slot::Occupied(first) => {
                    entry.kind = EntryType::Link;
                    entry.link = Some(first.get().clone());
                    entry.xattrs.clear();
                    tar.append(&entry, None, path)?;
                    return Ok(false);
                }
                Slot::Vacant(slot) => {
                    slot.insert(rel.to_vec());
                }
            }
        }

        if ft.is_dir() {
            entry.kind = EntryType::Directory;
            entry.name.push(b'/');
            tar.append(&entry, None, path)?;
            if attrs.opaque {
                let mut marker = entry.name;
                marker.extend_from_slice(OPAQUE_MARKER);
                tar.append(&Entry::marker(marker, mtime), None, path)?;
            }
            Ok(attrs.deferred)
        } else if ft.is_file() {
            entry.size = md.len();
            // `walk` opens every regular file before describing it: the metadata is the open
            // inode's, so the header and the data cannot come from two different files.
            let file = opened.ok_or_else(|| Error::Read {
                path: path.to_owned(),
                source: io::Error::other("a regular file that was not opened"),
            })?;
            tar.append(&entry, Some(file), path)?;
            Ok(false)
        } else if ft.is_symlink() {
            entry.kind = EntryType::Symlink;
            let target = std::fs::read_link(path).map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
            entry.link = Some(target.into_os_string().into_vec());
            tar.append(&entry, None, path)?;
            Ok(false)
        } else if ft.is_char_device() || ft.is_block_device() {
            entry.kind = if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            entry.device = Some((dev_major(md.rdev()), dev_minor(md.rdev())));
            tar.append(&entry, None, path)?;
            Ok(false)
        } else if ft.is_fifo() {
            entry.kind = EntryType::Fifo;
            tar.append(&entry, None, path)?;
            Ok(false)
        } else {
            // No other file types exist on Linux; skip rather than guess.
            Ok(false)
        }
    }
}

/// `dir/name` → `dir/.wh.name`.
fn whiteout_name(rel: &[u8]) -> Vec<u8> {
    let split = rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let mut out = rel[..split].to_vec();
    out.extend_from_slice(WHITEOUT_PREFIX);
    out.extend_from_slice(&rel[split..]);
    out
}

/// The xattrs of one inode, after the rule.
struct Xattrs {
    /// Names and values to write, sorted by name.
    kept: Vec<(Vec<u8>, Vec<u8>)>,
    /// The inode carries overlay's opaque marker (only looked for in overlay mode).
    opaque: bool,
    /// The directory is deferred ([`DEFERRED_XATTR`]): its contents are replayed, not walked.
    deferred: bool,
}

/// Whether a (non-overlay) xattr is layer content. See the module docs for why.
fn keep_xattr(name: &[u8]) -> bool {
    name == b"security.capability" || name.starts_with(b"user.") || name.starts_with(b"trusted.")
}

/// Where to read an inode's xattrs: its open descriptor (`flistxattr`), or its path for the
/// entries the walk does not open (the `l*` calls: symlinks are not followed).
enum XattrSource<'a> {
    Fd(&'a File),
    Path(&'a Path),
}

impl XattrSource<'_> {
    fn list(&self) -> io::Result<xattr::XAttrs> {
        use xattr::FileExt;
        match self {
            XattrSource::Fd(file) => file.list_xattr(),
            XattrSource::Path(path) => xattr::list(path),
        }
    }

    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        use xattr::FileExt;
        match self {
            XattrSource::Fd(file) => file.get_xattr(name),
            XattrSource::Path(path) => xattr::get(path, name),
        }
    }
}

fn read_xattrs(source: &XattrSource<'_>, path: &Path, overlay: bool) -> Result<Xattrs, Error> {
    let xattr_err = |source| Error::Xattr {
        path: path.to_owned(),
        source,
    };
    let mut out = Xattrs {
        kept: Vec::new(),
        opaque: false,
        deferred: false,
    };
    let names = match source.list() {
        Ok(names) => names,
        // A filesystem without xattr support has none to carry.
        Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(out),
        Err(e) => return Err(xattr_err(e)),
    };
    for name in names {
        let bytes = name.as_bytes();
        if let Some(prefix) = OVERLAY_XATTR_PREFIXES.iter().find(|p| bytes.starts_with(p)) {
            if overlay {
                check_overlay_xattr(source, path, &name, &bytes[prefix.len()..], &mut out)?;
            }
            continue;
        }
        if bytes.starts_with(DRAY_XATTR_PREFIX.as_bytes()) {
            // dray's own bookkeeping, never content.
            out.deferred |= bytes == DEFERRED_XATTR.as_bytes();
            continue;
        }
        if !keep_xattr(bytes) {
            continue;
        }
        // `None`: removed since the listing; there is nothing to carry.
        if let Some(value) = source.get(&name).map_err(xattr_err)? {
            out.kept.push((bytes.to_vec(), value));
        }
    }
    out.kept.sort();
    Ok(out)
}

/// Interprets one overlayfs xattr (`suffix` is the part after `trusted.overlay.`).
fn check_overlay_xattr(
    source: &XattrSource<'_>,
    path: &Path,
    name: &OsStr,
    suffix: &[u8],
    out: &mut Xattrs,
) -> Result<(), Error> {
    let unsupported = |attr: OsString| Error::UnsupportedOverlay {
        path: path.to_owned(),
        attr,
    };
    match suffix {
        b"opaque" => {
            let value = source.get(name).map_err(|source| Error::Xattr {
                path: path.to_owned(),
                source,
            })?;
            match value.as_deref() {
                Some(b"y") => out.opaque = true,
                None => {}
                // "x" (Linux 6.7+) marks a directory holding xattr-whiteouts, a data-only-layer
                // feature that a plain upper dir never uses.
                Some(other) => {
                    let mut attr = name.to_owned();
                    attr.push("=");
                    attr.push(OsStr::from_bytes(other));
                    return Err(unsupported(attr));
                }
            }
        }
        // redirect: a renamed directory whose content is still in a lower layer.
        // metacopy: a file whose data is still in a lower layer.
        // whiteout: a regular file acting as a whiteout (xattr-whiteouts, Linux 6.7+).
        b"redirect" | b"metacopy" | b"whiteout" => return Err(unsupported(name.to_owned())),
        // origin, impure, nlink, upper, uuid, protattr, …: bookkeeping that does not change
        // what the upper dir contains.
        _ => {}
    }
    Ok(())
}

/// The major number of a Linux `dev_t` (glibc's `gnu_dev_major` bit layout).
fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

/// The minor number of a Linux `dev_t` (glibc's `gnu_dev_minor` bit layout).
fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

/// Turns replayed entries (see `dray_fsutil::fileop::replay`) into tar entries with the same
/// rules as [`Differ::emit`] applies to inodes on disk, so that a deferred directory gives the
/// bytes its materialized form would.
struct TarReplay<'t, 'o, W: Write> {
    tar: &'t mut TarWriter<W>,
    opts: &'o LayerOptions,
    /// The first error of the tar writer (the replay only sees that something failed).
    failed: Option<Error>,
}

impl<W: Write> ReplaySink for TarReplay<'_, '_, W> {
    fn entry(&mut self, e: &ReplayEntry<'_>, data: Option<&mut File>) -> dray_fsutil::Result<()> {
        let secs = e.mtime_ns.div_euclid(1_000_000_000);
        let mtime = match self.opts.source_date_epoch {
            Some(epoch) if secs > epoch => epoch,
            _ => secs,
        };
        let mut kept: Vec<(Vec<u8>, Vec<u8>)> = e
            .xattrs
            .iter()
            .map(|(name, value)| (name.as_bytes().to_vec(), value.clone()))
            .filter(|(name, _)| {
                !OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p))
                    && !name.starts_with(DRAY_XATTR_PREFIX.as_bytes())
                    && keep_xattr(name)
            })
            .collect();
        kept.sort();
        let mut entry = Entry {
            name: e.path.as_os_str().as_bytes().to_vec(),
            kind: EntryType::Regular,
            mode: e.mode & 0o7777,
            uid: u64::from(e.uid),
            gid: u64::from(e.gid),
            mtime,
            size: 0,
            link: None,
            device: None,
            xattrs: kept,
        };
        if let Some(first) = e.hardlink_to {
            entry.kind = EntryType::Link;
            entry.link = Some(first.as_os_str().as_bytes().to_vec());
            entry.xattrs.clear();
        } else {
            match e.kind {
                FileKind::Dir => {
                    entry.kind = EntryType::Directory;
                    entry.name.push(b'/');
                }
                FileKind::File => entry.size = e.size,
                FileKind::Symlink => {
                    entry.kind = EntryType::Symlink;
                    entry.link = e.symlink_target.map(|t| t.as_os_str().as_bytes().to_vec());
                }
                FileKind::CharDevice | FileKind::BlockDevice => {
                    entry.kind = if e.kind == FileKind::CharDevice {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    };
                    entry.device = Some((dev_major(e.rdev), dev_minor(e.rdev)));
                }
                FileKind::Fifo => entry.kind = EntryType::Fifo,
                FileKind::Socket => return Ok(()),
            }
        }
        let data = data.map(|f| f as &mut dyn io::Read);
        match self.tar.append(&entry, data, e.path) {
            Ok(()) => Ok(()),
            Err(err) => {
                let message = err.to_string();
                self.failed.get_or_insert(err);
                Err(dray_fsutil::Error::Io {
                    op: "write the layer entry for",
                    path: e.path.to_owned(),
                    source: io::Error::other(message),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names_keep_the_directory() {
        assert_eq!(whiteout_name(b"a"), b".wh.a");
        assert_eq!(whiteout_name(b"d/e/a"), b"d/e/.wh.a");
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // /dev/null is 1:3; glibc's makedev layout exercises the high bits of both halves.
        assert_eq!((dev_major(0x103), dev_minor(0x103)), (1, 3));
        let (major, minor) = (0x0012_3abc_u64, 0x0004_5678_u64);
        let rdev = ((major & 0xfff) << 8)
            | ((major & 0xffff_f000) << 32)
            | (minor & 0xff)
            | ((minor & 0xffff_ff00) << 12);
        assert_eq!((dev_major(rdev), dev_minor(rdev)), (0x12_3abc, 0x4_5678));
    }

    #[test]
    fn xattr_rule() {
        for keep in ["security.capability", "user.comment", "trusted.foo"] {
            assert!(keep_xattr(keep.as_bytes()), "{keep}");
        }
        for drop in [
            "security.selinux",
            "security.ima",
            "system.posix_acl_access",
        ] {
            assert!(!keep_xattr(drop.as_bytes()), "{drop}");
        }
    }
}
