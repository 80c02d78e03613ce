//! `ADD`'s archive extraction (`attempt_unpack`): BuildKit's `unpack` in
//! `solver/llbsolver/file/backend.go`, which calls moby's `chrootarchive.Untar`.
//!
//! # Detection
//!
//! By content, never by name (moby's `IsArchivePath`): the first bytes select a decompressor
//! (gzip `1f 8b 08`, bzip2 `BZh`, xz `fd 37 7a 58 5a 00`, zstd `28 b5 2f fd` or a skippable
//! frame; anything else is read as is), and the first 512 decompressed bytes must be a tar
//! header with a valid checksum. A file that fails either test is copied as a file.
//!
//! # Extraction
//!
//! The archive is streamed (decompressor → `tar` reader → upper), never held in memory. The
//! extraction directory `dest` acts as the root, as moby's chroot into it does:
//!
//! * entry names are cleaned lexically; a name that climbs above `dest` (`../x`) is refused
//!   with [`Error::ArchiveBreakout`] (moby's `breakoutError`); an absolute name is taken
//!   below `dest`;
//! * the parent directories of an entry are resolved with symlinks followed *inside `dest`*:
//!   a link to `/` or `../../..` met on the way leads back to `dest` (the chroot), so writing
//!   through a symlink never reaches anything outside `dest`; missing parents are created
//!   `0755` root-owned, and directories of lower are copied up;
//! * a symlink whose target, joined to its directory, climbs above `dest` is refused, as is a
//!   hard link whose target does; a hard link must name a file this step wrote;
//! * an existing entry at a name is replaced (a directory entry merges into an existing
//!   directory and sets its metadata), as moby's `Unpack` without `NoOverwriteDirNonDir`.
//!
//! All writes then go through [`Upper`], which reaches every path without following a
//! symlink (`RESOLVE_NO_SYMLINKS`), so the resolution above is the only place links count.
//!
//! Entries keep their mode, owner, mtime (as atime too), `SCHILY.xattr.*` xattrs (best
//! effort, as BuildKit's `BestEffortXattrs`), symlinks and hard links. `owner` (`--chown`)
//! replaces the owner of every entry, as BuildKit has done since v0.23 (moby/buildkit#5991,
//! `ChownOpts`); `--chmod` and the copy timestamp do not apply to entries. Device nodes are
//! created only when running as root and skipped otherwise (moby skips them in a user
//! namespace). OCI whiteout names (`.wh.*`) are plain files here: `ADD` does not interpret
//! them. PAX global headers are ignored; other unknown entry types fail.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::upper::{NewDir, Slot, Upper};
use super::user::Owner;
use crate::error::{Error, Result};
use crate::sys::shown;
use crate::tree::{FileKind, Tree};

/// Links followed while resolving one entry's parent before giving up (`ELOOP`'s 40).
const MAX_LINKS: usize = 40;

/// The stream compressions moby's `DetectCompression` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn detect(magic: &[u8]) -> Compression {
    const ZSTD_SKIPPABLE: u32 = 0x184d_2a50;
    if magic.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if magic.starts_with(b"BZh") {
        Compression::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || magic.len() >= 4
            && u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) & 0xffff_fff0
                == ZSTD_SKIPPABLE
    {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// `file` decompressed as its first bytes say. Concatenated streams are read through, as Go's
/// readers (and `xz -d`) do.
fn decoder(file: File) -> io::Result<Box<dyn Read>> {
    let mut buf = BufReader::new(file);
    let kind = detect(buf.fill_buf()?);
    Ok(match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buf)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
    })
}

/// Parses a tar octal field (surrounding spaces and NULs allowed, as Go's `parseOctal`).
fn parse_octal(field: &[u8]) -> Option<i64> {
    let trimmed: &[u8] = {
        let is_pad = |b: &u8| *b == b' ' || *b == 0;
        let start = field.iter().position(|b| !is_pad(b))?;
        let end = field.iter().rposition(|b| !is_pad(b))? + 1;
        &field[start..end]
    };
    trimmed.iter().try_fold(0i64, |acc, &b| match b {
        b'0'..=b'7' => Some(acc * 8 + i64::from(b - b'0')),
        _ => None,
    })
}

/// Whether `block` is a tar header: not all zeros, and its checksum (unsigned, or signed as
/// some old tars wrote it) matches, which is what Go's `tar.Reader.Next` requires first.
fn is_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// moby's `IsArchivePath`: whether the regular file at `path` in `src` is a (possibly
/// compressed) tar archive. Read errors of the content mean "not an archive".
pub(crate) fn is_archive(src: &dyn Tree, path: &Path) -> Result<bool> {
    let file = src.open(path)?;
    let Ok(mut reader) = decoder(file) else {
        return Ok(false);
    };
    let mut block = [0u8; 512];
    if reader.read_exact(&mut block).is_err() {
        return Ok(false);
    }
    Ok(is_tar_header(&block))
}

/// A path's components with the root dropped and `..` popped lexically; `None` if `..`
/// climbs above the start. With `rooted`, `..` at the top is dropped instead (Go's
/// `filepath.Clean` of an absolute name: `/../x` is `/x`).
fn clean_below(path: &Path, rooted: bool) -> Option<PathBuf> {
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

/// Extracts the archive at `path` in `src` into the directory `dest` (a resolved destination
/// path, created as `new_dir` says if missing). See the module docs.
pub(crate) fn unpack(
    src: &dyn Tree,
    path: &Path,
    dest: &Path,
    owner: Option<Owner>,
    new_dir: &NewDir,
    up: &mut Upper<'_>,
) -> Result<()> {
    up.ensure_dir(dest, new_dir)?;
    let archive = shown(path);
    let read_err = |source| Error::Archive {
        archive: archive.clone(),
        source,
    };
    let reader = decoder(src.open(path)?).map_err(read_err)?;
    let mut tar = tar::Archive::new(reader);
    let mut x = Extractor {
        up,
        dest,
        owner,
        archive: &archive,
        devices: rustix::process::geteuid().is_root(),
    };
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        x.entry(&mut entry)?;
    }
    Ok(())
}

struct Extractor<'a, 'u, 'l> {
    up: &'a mut Upper<'l>,
    dest: &'a Path,
    owner: Option<Owner>,
    archive: &'u Path,
    /// Whether device nodes can be created (root).
    devices: bool,
}

impl Extractor<'_, '_, '_> {
    fn read_err(&self) -> impl FnOnce(io::Error) -> Error + use<> {
        let archive = self.archive.to_owned();
        move |source| Error::Archive { archive, source }
    }

    fn breakout(&self, entry: &Path, reason: &'static str) -> Error {
        Error::ArchiveBreakout {
            archive: self.archive.to_owned(),
            entry: entry.to_owned(),
            reason,
        }
    }

    /// Resolves `rel` (below `dest`) to a symlink-free destination path below `dest`,
    /// following symlinks of the merged view with `dest` as the root, so that no link leads
    /// out of it. A final symlink is followed too: `rel` is a parent directory.
    fn resolve_below_dest(&self, rel: &Path) -> Result<PathBuf> {
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
        let merged = self.up.merged();
        let mut out = self.dest.to_owned();
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
                        out = self.dest.to_owned();
                    }
                    todo.extend(steps(&target).rev());
                }
                _ => out = next,
            }
        }
        Ok(out)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let name = e.path().map_err(self.read_err())?.into_owned();
        let kind = e.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let rel = clean_below(&name, true)
            .ok_or_else(|| self.breakout(&name, "path is outside of the extraction directory"))?;
        let (target, parent_rel) = match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(file)) => {
                let parent_dir = self.resolve_below_dest(parent)?;
                let root = NewDir {
                    mode: 0o755,
                    owner: Owner::default(),
                    timestamp: None,
                };
                self.up.ensure_dir(&parent_dir, &root)?;
                (parent_dir.join(file), parent.to_owned())
            }
            // `.` or `/`: the extraction directory itself.
            _ => (self.dest.to_owned(), PathBuf::new()),
        };
        let header = e.header().clone();
        let xattrs = self.pax_xattrs(e)?;
        let file_kind = match kind {
            tar::EntryType::Directory => {
                if self.up.prepare(&target, true, true)? == Slot::Empty {
                    self.up.create_dir(&target, 0o700, Owner::default())?;
                }
                FileKind::Dir
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.up.prepare(&target, false, true)?;
                let mut out = self.up.create_file(&target)?;
                io::copy(e, &mut out).map_err(self.read_err())?;
                FileKind::File
            }
            tar::EntryType::Symlink => {
                let link = self.link_name(e, &name)?;
                // moby: `filepath.Join(filepath.Dir(path), hdr.Linkname)` must stay inside.
                if clean_below(&parent_rel.join(strip_root(&link)), false).is_none() {
                    return Err(self.breakout(
                        &name,
                        "symlink target is outside of the extraction directory",
                    ));
                }
                self.up.prepare(&target, false, true)?;
                self.up.create_symlink(&target, &link)?;
                FileKind::Symlink
            }
            tar::EntryType::Link => {
                let link = self.link_name(e, &name)?;
                // moby: `filepath.Join(extractDir, hdr.Linkname)` must stay inside.
                let link_rel = clean_below(strip_root(&link), false).ok_or_else(|| {
                    self.breakout(
                        &name,
                        "hard link target is outside of the extraction directory",
                    )
                })?;
                let existing = match (link_rel.parent(), link_rel.file_name()) {
                    (Some(parent), Some(file)) => self.resolve_below_dest(parent)?.join(file),
                    _ => return Err(self.breakout(&name, "hard link to a directory")),
                };
                match self.up.merged().lookup(&existing)? {
                    Some((0, meta)) if !meta.is_dir() => {}
                    _ => {
                        return Err(self.breakout(
                            &name,
                            "hard link target is not a file extracted from this archive",
                        ));
                    }
                }
                self.up.prepare(&target, false, true)?;
                // A hard link shares its target's metadata: nothing more to set.
                return self.up.create_hardlink(&target, &existing);
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match kind {
                    tar::EntryType::Char => FileKind::CharDevice,
                    tar::EntryType::Block => FileKind::BlockDevice,
                    _ => FileKind::Fifo,
                };
                if kind != FileKind::Fifo && !self.devices {
                    return Ok(());
                }
                let read = self.read_err();
                let major = header.device_major().map_err(read)?.unwrap_or(0);
                let read = self.read_err();
                let minor = header.device_minor().map_err(read)?.unwrap_or(0);
                self.up.prepare(&target, false, true)?;
                self.up
                    .create_node(&target, kind, rustix::fs::makedev(major, minor))?;
                kind
            }
            other => {
                return Err(Error::UnsupportedArchiveEntry {
                    archive: self.archive.to_owned(),
                    entry: name,
                    kind: other.as_byte() as char,
                });
            }
        };
        if target.as_os_str().is_empty() {
            // `./` extracted at the layer's root (`ADD rootfs.tar /`): the root directory of
            // a layer carries no metadata of its own in the image, so there is none to set.
            return Ok(());
        }
        self.apply_meta(&target, file_kind, &header)?;
        self.up.set_xattrs(&target, &xattrs)
    }

    fn link_name<R: Read>(&self, e: &tar::Entry<'_, R>, name: &Path) -> Result<PathBuf> {
        e.link_name()
            .map_err(self.read_err())?
            .map(|l| l.into_owned())
            .ok_or_else(|| self.breakout(name, "link without a target"))
    }

    /// `SCHILY.xattr.*` records of the entry's PAX header.
    fn pax_xattrs<R: Read>(&self, e: &mut tar::Entry<'_, R>) -> Result<Vec<(OsString, Vec<u8>)>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(self.read_err())? {
            for ext in exts {
                let ext = ext.map_err(self.read_err())?;
                if let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    out.push((
                        std::ffi::OsStr::from_bytes(key).to_owned(),
                        ext.value_bytes().to_vec(),
                    ));
                }
            }
        }
        Ok(out)
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

    /// Owner (or `--chown`), mode and times from the header. moby sets a directory's
    /// metadata even when it merged into an existing one.
    fn apply_meta(&mut self, target: &Path, kind: FileKind, h: &tar::Header) -> Result<()> {
        let raw = h.as_old();
        let (uid, gid) = match self.owner {
            Some(o) => (o.uid, o.gid),
            None => {
                let uid = self.numeric(h.uid(), &raw.uid)?;
                let gid = self.numeric(h.gid(), &raw.gid)?;
                (
                    u32::try_from(uid).unwrap_or(u32::MAX),
                    u32::try_from(gid).unwrap_or(u32::MAX),
                )
            }
        };
        let mode = self.numeric(h.mode().map(u64::from), &raw.mode)? as u32 & 0o7777;
        self.up.set_owner_mode(target, uid, gid, Some(mode), kind)?;
        let mtime = i64::try_from(self.numeric(h.mtime(), &raw.mtime)?).unwrap_or(i64::MAX);
        let ns = mtime.saturating_mul(1_000_000_000);
        self.up.set_times(target, kind, ns, ns)
    }
}

fn strip_root(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 0x08, 0]), Compression::Gzip);
        assert_eq!(detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Compression::Xz);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(&[0x5e, 0x2a, 0x4d, 0x18]), Compression::Zstd);
        assert_eq!(detect(b"ustar"), Compression::None);
        assert_eq!(detect(&[0x1f]), Compression::None);
    }

    #[test]
    fn tar_header_needs_a_valid_checksum() {
        let mut h = tar::Header::new_gnu();
        h.set_path("a").unwrap();
        h.set_size(0);
        h.set_cksum();
        let mut block = [0u8; 512];
        block.copy_from_slice(h.as_bytes());
        assert!(is_tar_header(&block));
        block[0] = b'b';
        assert!(!is_tar_header(&block));
        assert!(!is_tar_header(&[0u8; 512]));
    }

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
}
