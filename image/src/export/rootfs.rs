//! The image's final filesystem: the head's snapshot chain merged with overlay semantics
//! (through `dray_fsutil::tree::ChainTree`: whiteouts hide, opaque directories cut off lower
//! layers, upper entries win) and written as a directory (`type=local`) or a tar
//! (`type=tar`). No layer tar is read or applied: the snapshots already are the layers' diffs.
//!
//! # Entry rules (the same as the layer writer's, for the merged tree)
//!
//! | merged entry | written as |
//! |---|---|
//! | directory, regular file, symlink, device, FIFO | itself: mode (with setuid/setgid/sticky), numeric uid/gid, mtime |
//! | a non-directory whose (dev, ino) was already written (`nlink > 1`) | a hard link to the path written first |
//! | socket | skipped (runtime state; tar cannot carry one) |
//! | whiteouts, `trusted.overlay.*` / `user.overlay.*` xattrs | never visible in the merged view |
//! | xattrs | `security.capability`, `user.*`, `trusted.*`; other `security.*` and `system.*` are host policy and dropped |
//!
//! **Order**: depth first, siblings in byte order of their names, a directory before its
//! contents. **Times**: whole seconds; with `SOURCE_DATE_EPOCH`, every later mtime becomes the
//! epoch (atime is set to the mtime in a directory). **The root** has no tar entry, and the
//! destination directory's own metadata is left alone.
//!
//! **Directory output** writes into `dest` (created if missing): an existing entry at a path
//! the image writes is replaced (a directory stays if the image has a directory there), other
//! existing entries are kept, as BuildKit's local exporter does. Owners are set when the process
//! may (as root); otherwise files belong to the caller. Directory modes and times are set after
//! their contents are written.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dray_cache::{SnapshotId, Store};
use dray_fsutil::tree::{ChainTree, FileKind, Metadata, Tree};
use rustix::fs::{AtFlags, CWD, Mode, Timespec, Timestamps};
use tar::EntryType;

use super::ExportError;
use super::tarball::{CopyError, TarEntry, TarStream};

/// Options for [`write_rootfs_dir`] and [`write_rootfs_tar`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootfsOptions {
    /// `SOURCE_DATE_EPOCH` (seconds): every later mtime is clamped to it.
    pub source_date_epoch: Option<i64>,
}

impl RootfsOptions {
    /// No clamping.
    pub fn new() -> RootfsOptions {
        RootfsOptions::default()
    }

    /// These options with `SOURCE_DATE_EPOCH`.
    pub fn with_source_date_epoch(mut self, epoch: Option<i64>) -> RootfsOptions {
        self.source_date_epoch = epoch;
        self
    }
}

/// Writes the merged filesystem of `chain` (snapshot IDs, root first, as
/// `Committed::chain_ids`) into the directory `dest`. See the module docs.
pub fn write_rootfs_dir(
    store: &Store,
    chain: &[SnapshotId],
    dest: &Path,
    opts: &RootfsOptions,
) -> Result<(), ExportError> {
    match fs::symlink_metadata(dest) {
        Ok(m) if !m.is_dir() => {
            return Err(ExportError::NotADirectory {
                path: dest.to_owned(),
            });
        }
        Ok(_) => {}
        Err(_) => fs::create_dir_all(dest).map_err(|source| ExportError::Write {
            path: dest.to_owned(),
            source,
        })?,
    }
    let mut sink = DirSink {
        dest: dest.to_owned(),
        may_chown: rustix::process::geteuid().is_root(),
    };
    Walker::new(store, chain, opts)?.run(&mut sink)
}

/// Writes the merged filesystem of `chain` as a tar to `out` and returns `out`.
pub fn write_rootfs_tar<W: Write>(
    store: &Store,
    chain: &[SnapshotId],
    out: W,
    opts: &RootfsOptions,
) -> Result<W, ExportError> {
    let mut sink = TarSink {
        tar: TarStream::new(out),
    };
    Walker::new(store, chain, opts)?.run(&mut sink)?;
    sink.tar.finish().map_err(|source| ExportError::Stream {
        member: "the end of the archive".to_owned(),
        source,
    })
}

/// What one merged entry becomes.
enum Item {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
    Device(FileKind, u64),
    Fifo,
}

/// One merged entry, ready to write.
struct Node {
    /// Tree path (relative, no leading `/`).
    path: PathBuf,
    item: Item,
    meta: Metadata,
    /// Whole seconds, clamped.
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

trait Sink {
    fn entry(&mut self, node: &Node, data: Option<File>) -> Result<(), ExportError>;
    fn leave_dir(&mut self, node: &Node) -> Result<(), ExportError>;
}

struct Walker {
    tree: ChainTree,
    epoch: Option<i64>,
    /// (dev, ino) of multiply linked non-directories → the first path written.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Walker {
    fn new(
        store: &Store,
        chain: &[SnapshotId],
        opts: &RootfsOptions,
    ) -> Result<Walker, ExportError> {
        // A lazy snapshot's `fs/` is partial until materialized.
        crate::lazy::materialize_chain(store, chain)?;
        let layers: Vec<PathBuf> = chain.iter().rev().map(|id| store.fs_path(id)).collect();
        let tree = ChainTree::new(&layers).map_err(|source| tree_err(Path::new(""), source))?;
        Ok(Walker {
            tree,
            epoch: opts.source_date_epoch,
            links: HashMap::new(),
        })
    }

    fn run(mut self, sink: &mut dyn Sink) -> Result<(), ExportError> {
        let root = Path::new("");
        let exists = self
            .tree
            .lstat(root)
            .map_err(|source| tree_err(root, source))?
            .is_some();
        if exists {
            self.walk(root, sink)?;
        }
        Ok(())
    }

    fn walk(&mut self, dir: &Path, sink: &mut dyn Sink) -> Result<(), ExportError> {
        let entries = self
            .tree
            .read_dir(dir)
            .map_err(|source| tree_err(dir, source))?;
        for entry in entries {
            let path = dir.join(&entry.name);
            let meta = entry.metadata;
            let linked = meta.kind != FileKind::Dir && meta.nlink > 1;
            let first = linked
                .then(|| self.links.get(&(meta.dev, meta.ino)).cloned())
                .flatten();
            let item = match (first, meta.kind) {
                (_, FileKind::Socket) => continue,
                (Some(first), _) => Item::HardLink(first),
                (None, FileKind::Dir) => Item::Dir,
                (None, FileKind::File) => Item::File,
                (None, FileKind::Symlink) => Item::Symlink(
                    self.tree
                        .read_link(&path)
                        .map_err(|source| tree_err(&path, source))?,
                ),
                (None, kind @ (FileKind::CharDevice | FileKind::BlockDevice)) => {
                    Item::Device(kind, meta.rdev)
                }
                (None, FileKind::Fifo) => Item::Fifo,
            };
            if linked && !matches!(item, Item::HardLink(_)) {
                self.links.insert((meta.dev, meta.ino), path.clone());
            }
            let xattrs = match item {
                Item::HardLink(_) => Vec::new(),
                _ => self
                    .tree
                    .xattrs(&path)
                    .map_err(|source| tree_err(&path, source))?
                    .into_iter()
                    .filter(|(name, _)| keep_xattr(name))
                    .map(|(name, value)| (name.as_bytes().to_vec(), value))
                    .collect(),
            };
            let secs = meta.mtime_ns.div_euclid(1_000_000_000);
            let mtime = match self.epoch {
                Some(epoch) if secs > epoch => epoch,
                _ => secs,
            };
            let data = match item {
                Item::File => Some(
                    self.tree
                        .open(&path)
                        .map_err(|source| tree_err(&path, source))?,
                ),
                _ => None,
            };
            let node = Node {
                path,
                item,
                meta,
                mtime,
                xattrs,
            };
            sink.entry(&node, data)?;
            if let Item::Dir = node.item {
                self.walk(&node.path, sink)?;
                sink.leave_dir(&node)?;
            }
        }
        Ok(())
    }
}

fn tree_err(path: &Path, source: dray_fsutil::Error) -> ExportError {
    ExportError::ReadTree {
        path: Path::new("/").join(path),
        source: Box::new(source),
    }
}

/// The layer writer's xattr rule (overlay's own are already hidden by the tree).
fn keep_xattr(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name == b"security.capability" || name.starts_with(b"user.") || name.starts_with(b"trusted.")
}

struct TarSink<W: Write> {
    tar: TarStream<W>,
}

impl<W: Write> Sink for TarSink<W> {
    fn entry(&mut self, node: &Node, data: Option<File>) -> Result<(), ExportError> {
        let mut name = node.path.as_os_str().as_bytes().to_vec();
        let (kind, size, link, device) = match &node.item {
            Item::Dir => {
                name.push(b'/');
                (EntryType::Directory, 0, None, None)
            }
            Item::File => (EntryType::Regular, node.meta.size, None, None),
            Item::Symlink(target) => (
                EntryType::Symlink,
                0,
                Some(target.as_os_str().as_bytes().to_vec()),
                None,
            ),
            Item::HardLink(first) => (
                EntryType::Link,
                0,
                Some(first.as_os_str().as_bytes().to_vec()),
                None,
            ),
            Item::Device(kind, rdev) => (
                if *kind == FileKind::CharDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                },
                0,
                None,
                Some((rustix::fs::major(*rdev), rustix::fs::minor(*rdev))),
            ),
            Item::Fifo => (EntryType::Fifo, 0, None, None),
        };
        let entry = TarEntry {
            name,
            kind,
            // Permission bits only: the entry type is the header's type flag.
            mode: node.meta.mode & 0o7777,
            uid: u64::from(node.meta.uid),
            gid: u64::from(node.meta.gid),
            mtime: node.mtime,
            size,
            link,
            device,
            xattrs: node.xattrs.clone(),
        };
        let shown = || Path::new("/").join(&node.path).display().to_string();
        let mut data = data;
        let reader = data.as_mut().map(|f| f as &mut dyn Read);
        self.tar.append(&entry, reader).map_err(|e| match e {
            CopyError::Length { expected, actual } => ExportError::Changed {
                member: shown(),
                expected,
                actual,
            },
            CopyError::Read(source) => ExportError::ReadTree {
                path: Path::new("/").join(&node.path),
                source: Box::new(dray_fsutil::Error::Io {
                    op: "read",
                    path: node.path.clone(),
                    source,
                }),
            },
            CopyError::Write(source) => ExportError::Stream {
                member: shown(),
                source,
            },
        })
    }

    fn leave_dir(&mut self, _node: &Node) -> Result<(), ExportError> {
        Ok(())
    }
}

struct DirSink {
    dest: PathBuf,
    may_chown: bool,
}

impl DirSink {
    /// Removes whatever is at `target` unless it is a directory and `keep_dir`.
    fn clear(&self, target: &Path, keep_dir: bool) -> io::Result<bool> {
        match fs::symlink_metadata(target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() && keep_dir => Ok(true),
            Ok(m) if m.is_dir() => fs::remove_dir_all(target).map(|()| false),
            Ok(_) => fs::remove_file(target).map(|()| false),
        }
    }

    fn write(&self, node: &Node, data: Option<File>, target: &Path) -> io::Result<()> {
        let kept = self.clear(target, matches!(node.item, Item::Dir))?;
        let mode = node.meta.mode;
        match &node.item {
            Item::Dir => {
                if !kept {
                    fs::create_dir(target)?;
                }
            }
            Item::File => {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(target)?;
                let mut data = data.ok_or_else(|| io::Error::other("no data for a file"))?;
                let copied = io::copy(&mut data, &mut out)?;
                if copied != node.meta.size {
                    return Err(io::Error::other(format!(
                        "the file changed while it was exported: expected {} bytes, read {copied}",
                        node.meta.size
                    )));
                }
            }
            Item::Symlink(link) => std::os::unix::fs::symlink(link, target)?,
            Item::HardLink(first) => return fs::hard_link(self.dest.join(first), target),
            Item::Device(_, _) | Item::Fifo => {
                let kind = match node.item {
                    Item::Device(FileKind::CharDevice, _) => rustix::fs::FileType::CharacterDevice,
                    Item::Device(_, _) => rustix::fs::FileType::BlockDevice,
                    _ => rustix::fs::FileType::Fifo,
                };
                let rdev = match node.item {
                    Item::Device(_, rdev) => rdev,
                    _ => 0,
                };
                rustix::fs::mknodat(CWD, target, kind, Mode::from_raw_mode(0o600), rdev)?;
            }
        }
        if self.may_chown {
            std::os::unix::fs::lchown(target, Some(node.meta.uid), Some(node.meta.gid))?;
        }
        let is_symlink = matches!(node.item, Item::Symlink(_));
        // Linux refuses user.* xattrs on symlinks (xattr(7)); only trusted.* can be set there.
        for (name, value) in &node.xattrs {
            if is_symlink && !name.starts_with(b"trusted.") {
                continue;
            }
            xattr::set(target, OsStr::from_bytes(name), value)?;
        }
        if !matches!(node.item, Item::Dir) {
            // chmod after chown: chown clears setuid/setgid.
            if !is_symlink {
                fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
            }
            set_times(target, node.mtime)?;
        }
        Ok(())
    }
}

impl Sink for DirSink {
    fn entry(&mut self, node: &Node, data: Option<File>) -> Result<(), ExportError> {
        let target = self.dest.join(&node.path);
        self.write(node, data, &target)
            .map_err(|source| ExportError::Write {
                path: target,
                source,
            })
    }

    fn leave_dir(&mut self, node: &Node) -> Result<(), ExportError> {
        let target = self.dest.join(&node.path);
        fs::set_permissions(&target, fs::Permissions::from_mode(node.meta.mode))
            .and_then(|()| set_times(&target, node.mtime))
            .map_err(|source| ExportError::Write {
                path: target,
                source,
            })
    }
}

/// Sets atime and mtime of `path` (not following a symlink) to `secs`.
fn set_times(path: &Path, secs: i64) -> io::Result<()> {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}
