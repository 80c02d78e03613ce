//! The layer applier: an OCI layer tar (gzip, zstd or uncompressed — bzip2 and xz too,
//! detected by content, not by media type) applied into a directory, streaming, with the
//! `diff_id` measured on the way. Start at [`apply_layer`]; [`unpack_layer`] is the same into
//! a new snapshot of the store, keyed by ChainID.
//!
//! ```text
//! blob ─▶ count ─▶ decompress (magic bytes) ─▶ sha256 + count ─▶ tar entries ─┬▶ .wh..wh..opq ─▶ opaque dir
//!                                                  (diff_id)                    ├▶ .wh.NAME ──────▶ whiteout / delete
//!                                                                               └▶ anything else ─▶ DirExtractor
//! ```
//!
//! # Two modes
//!
//! | | [`ApplyMode::OverlayDiff`] | [`ApplyMode::Merged`] |
//! |---|---|---|
//! | target | an empty snapshot dir: the layer's own diff, stacked later as an overlay lowerdir (architecture B4) | a whole root filesystem (the layers below already in it), e.g. `--output type=local` |
//! | `DIR/.wh.NAME` | a whiteout: a 0:0 character device `DIR/NAME` | `DIR/NAME` is deleted (recursively, a symlink itself) |
//! | `DIR/.wh..wh..opq` | `DIR` gets `trusted.overlay.opaque=y` (`user.` with `userxattr`) | everything in `DIR` this layer did not write is deleted |
//! | a directory where the diff has a whiteout | made opaque (the whiteout said lower's is gone) | — |
//! | `.wh..wh.*` (AUFS metadata: `.wh..wh.plnk`, `.wh..wh.aufs`) | skipped, as moby does | skipped |
//!
//! Whiteouts need `CAP_MKNOD`, `trusted.` xattrs `CAP_SYS_ADMIN`: the overlay mode runs as
//! root (or, later, in a user namespace with `userxattr`).
//!
//! # Hostile layers
//!
//! Layers are hostile input. Every entry, whiteout and hard-link target goes through
//! [`dray_fsutil::archive::DirExtractor`]: names are resolved inside the target directory as
//! if it were `/` (`..` stops at it, symlinks met on the way are followed inside it), and every
//! write reaches a symlink-free path through `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.
//! No entry — `..`, absolute names, symlinks (absolute, relative, chained) leading out, hard
//! links to outside or to a symlink pointing out, whiteouts of `..`, of the root or through a
//! symlink — can create, change or delete anything outside the target. A whiteout that would
//! hide the root itself, or names nothing (`.wh.`, `.wh..`), fails the layer. Overlayfs's own
//! xattrs (`trusted.overlay.*`, `user.overlay.*`) in the tar are dropped: only the whiteout
//! translation above writes them. `tests/apply_hostile.rs` is the catalogue (containerd's
//! `pkg/archive` breakout scenarios, and more).
//!
//! # What is kept
//!
//! Modes (setuid/setgid/sticky), owners, xattrs (`SCHILY.xattr.*`, best effort), hard links,
//! symlinks, device nodes (as root; skipped otherwise and counted), fifos, and mtimes with
//! nanoseconds from PAX records. Directory times are set after the whole layer is written.
//!
//! # Verification
//!
//! [`apply_layer`] returns the sha256 of the whole uncompressed stream (the `diff_id`,
//! including the end-of-archive blocks and any padding after them). It does not know what
//! the layer should be: callers compare it with the image config's `rootfs.diff_ids`
//! ([`ApplyStats::verify_diff_id`]) **before** they commit anything. [`unpack_layer`] does.

mod snapshot;
mod stream;
mod whiteout;

use std::io::{self, BufReader, Read};
use std::path::Path;

use dray_fsutil::archive::{Applied, DirExtractor, DirOptions};

pub use dray_fsutil::archive::Compression as StreamCompression;
pub use snapshot::unpack_layer;

use crate::{Digest, Error};
use stream::{CountingReader, HashingReader};
use whiteout::Whiteout;

/// Where a layer is applied: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Into an empty directory that becomes the layer's diff in overlay upper-dir form:
    /// whiteouts stay as whiteout devices and opaque markers.
    OverlayDiff,
    /// Onto a directory holding the layers below: deletions really delete.
    Merged,
}

/// How to apply a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Overlay diff or merged directory.
    pub mode: ApplyMode,
    /// Opaque markers in the `user.overlay.` namespace (overlayfs mounted with `userxattr`)
    /// rather than `trusted.overlay.`. Only for [`ApplyMode::OverlayDiff`].
    pub userxattr: bool,
}

impl ApplyOptions {
    /// Options for `mode`, with `trusted.` opaque markers.
    pub fn new(mode: ApplyMode) -> ApplyOptions {
        ApplyOptions {
            mode,
            userxattr: false,
        }
    }

    /// These options with `user.overlay.opaque` markers.
    pub fn with_userxattr(mut self, userxattr: bool) -> ApplyOptions {
        self.userxattr = userxattr;
        self
    }
}

/// What applying one layer measured and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyStats {
    /// sha256 of the uncompressed tar stream: the layer's `diff_id`.
    pub diff_id: Digest,
    /// The compression found from the stream's first bytes.
    pub compression: StreamCompression,
    /// Bytes read from the input (the blob size for a whole blob).
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar stream.
    pub uncompressed_size: u64,
    /// Tar entries read (whiteouts and opaque markers included; GNU long-name and PAX header
    /// blocks are part of the entry they describe).
    pub entries: u64,
    /// `.wh.NAME` entries: whiteouts written ([`ApplyMode::OverlayDiff`]) or deletions asked
    /// for ([`ApplyMode::Merged`]; also counted when there was nothing to delete).
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries.
    pub opaque_dirs: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Device nodes skipped because only root can create them.
    pub skipped_devices: u64,
    /// AUFS metadata entries (`.wh..wh.*`) and PAX global headers, skipped.
    pub skipped_entries: u64,
}

impl ApplyStats {
    /// Checks the measured `diff_id` against the image config's; `layer` names the layer in
    /// the error.
    pub fn verify_diff_id(&self, layer: &str, expected: &Digest) -> Result<(), Error> {
        if self.diff_id == *expected {
            Ok(())
        } else {
            Err(Error::DiffIdMismatch {
                layer: layer.to_owned(),
                expected: *expected,
                found: self.diff_id,
            })
        }
    }
}

/// Applies the layer read from `layer` (compressed or not) into the existing directory
/// `target`, as `options` say; `name` names the layer in errors (its digest, or a file).
/// Streams: the layer is never held in memory. On error, `target` holds part of the layer —
/// callers apply into a directory they throw away on failure (an uncommitted snapshot).
///
/// ```
/// use dray_image::apply::{ApplyMode, ApplyOptions, apply_layer};
/// # let tmp = tempfile::tempdir()?;
/// # let target = tmp.path();
/// # std::fs::create_dir(target.join("old"))?;
/// let mut tar = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_gnu();
/// h.set_size(3);
/// h.set_mode(0o644);
/// tar.append_data(&mut h, "hello.txt", &b"hi\n"[..])?;
/// let mut h = tar::Header::new_gnu();
/// h.set_size(0);
/// tar.append_data(&mut h, ".wh.old", &b""[..])?;
/// let layer = tar.into_inner()?;
///
/// let stats = apply_layer(&layer[..], target, "example", &ApplyOptions::new(ApplyMode::Merged))?;
/// assert_eq!(std::fs::read(target.join("hello.txt"))?, b"hi\n");
/// assert!(!target.join("old").exists());
/// assert_eq!(stats.diff_id, dray_image::Digest::of(&layer));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply_layer<R: Read>(
    layer: R,
    target: &Path,
    name: &str,
    options: &ApplyOptions,
) -> Result<ApplyStats, Error> {
    let read_err = |source: io::Error| Error::LayerRead {
        layer: name.to_owned(),
        source,
    };
    let apply_err = |source: dray_fsutil::Error| Error::Apply {
        layer: name.to_owned(),
        source: Box::new(source),
    };
    let compressed = std::cell::Cell::new(0u64);
    let raw = CountingReader::new(layer, &compressed);
    let (compression, decoded) =
        dray_fsutil::archive::decompress(BufReader::with_capacity(64 * 1024, raw))
            .map_err(read_err)?;
    let mut archive = tar::Archive::new(HashingReader::new(decoded));
    let dir_options = match options.mode {
        ApplyMode::OverlayDiff => DirOptions::overlay_diff().with_userxattr(options.userxattr),
        ApplyMode::Merged => DirOptions::merged(),
    };
    let mut x = DirExtractor::open(target, name, dir_options).map_err(apply_err)?;
    let mut stats = ApplyStats {
        diff_id: Digest::of(b""),
        compression,
        compressed_size: 0,
        uncompressed_size: 0,
        entries: 0,
        whiteouts: 0,
        opaque_dirs: 0,
        hardlinks: 0,
        skipped_devices: 0,
        skipped_entries: 0,
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        stats.entries += 1;
        let entry_name = entry.path().map_err(read_err)?.into_owned();
        match whiteout::classify(&entry_name) {
            Whiteout::None => match x.entry(&mut entry).map_err(apply_err)? {
                Applied::HardLink => stats.hardlinks += 1,
                Applied::SkippedDevice => stats.skipped_devices += 1,
                Applied::Nothing => stats.skipped_entries += 1,
                _ => {}
            },
            Whiteout::Opaque(dir) => {
                stats.opaque_dirs += 1;
                match options.mode {
                    ApplyMode::OverlayDiff => x.mark_opaque(&dir),
                    ApplyMode::Merged => x.remove_unwritten(&dir),
                }
                .map_err(apply_err)?;
            }
            Whiteout::Hide(path) => {
                stats.whiteouts += 1;
                match options.mode {
                    ApplyMode::OverlayDiff => x.whiteout(&path),
                    ApplyMode::Merged => x.remove(&path).map(|_| ()),
                }
                .map_err(apply_err)?;
            }
            Whiteout::AufsMeta => stats.skipped_entries += 1,
            Whiteout::Invalid => {
                return Err(Error::InvalidWhiteout {
                    layer: name.to_owned(),
                    entry: entry_name,
                });
            }
        }
    }
    x.finish().map_err(apply_err)?;
    // The tar reader stops at the first end-of-archive block: the rest of the stream (the
    // second zero block, a writer's padding to its record size) is part of the diff_id.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_err)?;
    let (diff_id, uncompressed) = rest.finish();
    stats.diff_id = diff_id;
    stats.uncompressed_size = uncompressed;
    stats.compressed_size = compressed.get();
    Ok(stats)
}
