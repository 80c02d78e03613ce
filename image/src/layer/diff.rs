//! Walking a snapshot directory and turning each inode into tar [`Entry`]s: file types, hard
//! links, whiteouts, opaque directories and the xattr rule (all documented on the parent module).

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::EntryType;
use walkdir::WalkDir;

use super::tar::{Entry, TarWriter};
use super::{DiffSource, LayerOptions};
use crate::Error;

/// The name overlayfs and OCI give the opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of an OCI whiteout file.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// overlayfs's xattr namespaces: `trusted.` normally, `user.` under the `userxattr` option.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Walks `root` in layer order and appends every entry to `tar`.
pub(super) fn write_entries<W: Write>(
    root: &Path,
    opts: &LayerOptions,
    tar: &mut TarWriter<W>,
) -> Result<(), Error> {
    let mut differ = Differ {
        opts,
        first_paths: HashMap::new(),
    };
    let walk = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for item in walk {
        let entry = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_owned();
            Error::Walk {
                path,
                source: io::Error::from(e),
            }
        })?;
        let md = entry.metadata().map_err(|e| Error::Walk {
            path: entry.path().to_owned(),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths under its root");
        differ.emit(tar, entry.path(), rel.as_os_str().as_bytes(), &md)?;
    }
    Ok(())
}

struct Differ<'a> {
    opts: &'a LayerOptions,
    /// (dev, ino) → the first path written for an inode with `nlink > 1`.
    first_paths: HashMap<(u64, u64), Vec<u8>>,
}

impl Differ<'_> {
    fn emit<W: Write>(
        &mut self,
        tar: &mut TarWriter<W>,
        path: &Path,
        rel: &[u8],
        md: &Metadata,
    ) -> Result<(), Error> {
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
            return tar.append(&Entry::marker(whiteout_name(rel), mtime), None, path);
        }
        if ft.is_socket() {
            return Ok(());
        }

        let attrs = read_xattrs(path, overlay)?;
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
                    return tar.append(&entry, None, path);
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
            Ok(())
        } else if ft.is_file() {
            entry.size = md.len();
            let mut file = File::open(path).map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
            // The walk's lstat and the open are two lookups; make sure they saw the same inode.
            let opened = file.metadata().map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
            if (opened.dev(), opened.ino()) != (md.dev(), md.ino()) {
                return Err(Error::FileChanged {
                    path: path.to_owned(),
                    expected: md.len(),
                    actual: opened.len(),
                });
            }
            tar.append(&entry, Some(&mut file), path)
        } else if ft.is_symlink() {
            entry.kind = EntryType::Symlink;
            let target = std::fs::read_link(path).map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
            entry.link = Some(target.into_os_string().into_vec());
            tar.append(&entry, None, path)
        } else if ft.is_char_device() || ft.is_block_device() {
            entry.kind = if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            entry.device = Some((dev_major(md.rdev()), dev_minor(md.rdev())));
            tar.append(&entry, None, path)
        } else if ft.is_fifo() {
            entry.kind = EntryType::Fifo;
            tar.append(&entry, None, path)
        } else {
            // No other file types exist on Linux; skip rather than guess.
            Ok(())
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
}

/// Whether a (non-overlay) xattr is layer content. See the module docs for why.
fn keep_xattr(name: &[u8]) -> bool {
    name == b"security.capability" || name.starts_with(b"user.") || name.starts_with(b"trusted.")
}

fn read_xattrs(path: &Path, overlay: bool) -> Result<Xattrs, Error> {
    let xattr_err = |source| Error::Xattr {
        path: path.to_owned(),
        source,
    };
    let mut out = Xattrs {
        kept: Vec::new(),
        opaque: false,
    };
    // The xattr crate's `list`/`get` use the l* syscalls: symlinks are not followed.
    let names = match xattr::list(path) {
        Ok(names) => names,
        // A filesystem without xattr support has none to carry.
        Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(out),
        Err(e) => return Err(xattr_err(e)),
    };
    for name in names {
        let bytes = name.as_bytes();
        if let Some(prefix) = OVERLAY_XATTR_PREFIXES.iter().find(|p| bytes.starts_with(p)) {
            if overlay {
                check_overlay_xattr(path, &name, &bytes[prefix.len()..], &mut out)?;
            }
            continue;
        }
        if !keep_xattr(bytes) {
            continue;
        }
        // `None`: removed since the listing; there is nothing to carry.
        if let Some(value) = xattr::get(path, &name).map_err(xattr_err)? {
            out.kept.push((bytes.to_vec(), value));
        }
    }
    out.kept.sort();
    Ok(out)
}

/// Interprets one overlayfs xattr (`suffix` is the part after `trusted.overlay.`).
fn check_overlay_xattr(
    path: &Path,
    name: &std::ffi::OsStr,
    suffix: &[u8],
    out: &mut Xattrs,
) -> Result<(), Error> {
    let unsupported = |attr: OsString| Error::UnsupportedOverlay {
        path: path.to_owned(),
        attr,
    };
    match suffix {
        b"opaque" => {
            let value = xattr::get(path, name).map_err(|source| Error::Xattr {
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
                    attr.push(std::ffi::OsStr::from_bytes(other));
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
