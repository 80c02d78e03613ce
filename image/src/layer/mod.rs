//! The streaming layer writer: a snapshot directory → a deterministic OCI layer tar →
//! a compressed blob, measuring the `diff_id` and the blob digest and size in one pass.
//!
//! Start at [`write_layer`]. The pipeline never holds a file, or the layer, in memory:
//!
//! ```text
//! walk (sorted, no symlink following) ─► entries ─► tar ─► sha256 = diff_id
//!                                                      └─► gzip | zstd | none ─► sha256 = digest, size ─► out
//! ```
//!
//! # Entry rules
//!
//! | on disk | in the layer |
//! |---|---|
//! | directory | `name/`, mode, uid/gid, mtime, xattrs |
//! | regular file | `name`, data streamed from disk |
//! | a non-directory whose (dev, ino) was already written (`nlink > 1`) | `Link` entry to the path written first, size 0, no xattrs |
//! | symlink | `Symlink` with the target as stored (never followed, never rewritten) |
//! | char/block device, FIFO | as such; device numbers only for devices |
//! | socket | skipped: tar cannot carry one, and a socket is runtime state |
//! | overlay whiteout (char 0:0, [`DiffSource::OverlayUpper`] only) | empty file `.wh.<name>` |
//! | opaque dir (`trusted.overlay.opaque=y` or `user.overlay.opaque=y`, overlay only) | `name/`, then the empty file `name/.wh..wh..opq`, then the contents |
//!
//! The layer root itself has no entry. Whiteout markers are mode 0, owned by 0:0, and carry the
//! mtime of the inode they come from (the char device, or the opaque directory), clamped as below.
//!
//! **Order.** Depth first, siblings sorted by the byte value of their on-disk names, a directory
//! before its contents (as Go's `filepath.Walk`, and so BuildKit, orders them). An opaque marker
//! comes straight after its directory. A whiteout sorts under the name it hides, not under its
//! `.wh.` name. This equals a byte-wise sort of full paths except where a name contains a byte
//! below `/` (such as `-` or `.`): `a/b` comes before `a-c`, because `a` and its contents come
//! first. Either way parents precede children, which is what unpackers need.
//!
//! **Times.** mtimes are written in whole seconds (the sub-second part is dropped, as moby's and
//! containerd's archivers do) in the ustar field, so no PAX `mtime` record appears except for
//! times before 1970. With [`LayerOptions::source_date_epoch`] `= Some(t)`, every mtime later
//! than `t` becomes `t`; earlier ones are kept (BuildKit's `rewrite-timestamp` rule). atime and
//! ctime are never written.
//!
//! **Owners.** Numeric uid/gid only; `uname`/`gname` are empty so that the host's user database
//! cannot leak into, or change, the layer.
//!
//! # Xattr rule
//!
//! An xattr is written, as a PAX `SCHILY.xattr.<name>` record, when its name is
//! `security.capability`, or starts with `user.` or `trusted.` — **except** overlayfs's own
//! `trusted.overlay.*` and `user.overlay.*`, which are never written in either source mode (a
//! layer carrying them would change how overlay reads it once unpacked as a lower dir). Other
//! `security.*` (SELinux labels, IMA) and `system.*` (POSIX ACLs) are host policy, not content,
//! and are dropped. Note that BuildKit keeps only `security.capability`; dray also keeps user and
//! trusted xattrs so that a `setfattr` in a RUN step survives.
//!
//! In [`DiffSource::OverlayUpper`] mode the overlay xattrs are also checked: `opaque=y` makes
//! an opaque directory; `redirect`, `metacopy` and `whiteout` (and any `opaque` value other than
//! `y`) mean the upper dir is not a self-contained diff and give
//! [`Error::UnsupportedOverlay`]; the rest (`origin`, `impure`, `nlink`, …) are bookkeeping and
//! are ignored.
//!
//! # Compression
//!
//! Both codecs run in parallel and are still a pure function of the tar bytes, the level and
//! the codec library version — the same bytes for 1 thread or 64:
//! - gzip is compressed pigz-style in 1 MiB blocks on worker threads, each block primed with
//!   the 32 KiB before it and ended by a sync flush, written as one gzip member with mtime 0, no
//!   file name and OS byte 255 in its header;
//! - zstd uses libzstd's workers (always at least one: single-threaded zstd writes other bytes)
//!   with a fixed 2 MiB job size and a content checksum.
//!
//! [`LayerOptions::threads`] picks the thread count (default: all CPUs, with gzip blocks of
//! every layer being written sharing one process-wide pool). Memory stays bounded: a few MiB
//! of blocks in flight per layer, never a file or the layer. The `diff_id` depends only on the
//! tar bytes, so it is the layer's identity; the compressed digest is cached per compression
//! setting by callers.

mod compress;
mod diff;
mod sink;
mod tar;

use std::io::Write;
use std::path::Path;

use crate::{Digest, Error};

/// The tar framing, shared with the exporters (`export/tarball.rs`).
pub(crate) use self::tar::{Entry as TarEntry, TarWriter};

/// OCI media type of an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of a zstd-compressed layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How the layer tar is compressed into the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (deflate), level 0–9. The registry-compatible default.
    Gzip {
        /// 0 (store) to 9 (smallest); 6 is zlib's default.
        level: u32,
    },
    /// zstd, level 1–22; negative levels (down to the library's minimum, -131072) trade ratio
    /// for speed, and 0 means the library default (3).
    Zstd {
        /// 3 is zstd's default.
        level: i32,
    },
    /// No compression: the blob is the tar, and `digest == diff_id`.
    Uncompressed,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub const fn media_type(&self) -> &'static str {
        match self {
            Self::Gzip { .. } => MEDIA_TYPE_TAR_GZIP,
            Self::Zstd { .. } => MEDIA_TYPE_TAR_ZSTD,
            Self::Uncompressed => MEDIA_TYPE_TAR,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let (codec, level, min, max) = match *self {
            Self::Gzip { level } => ("gzip", i64::from(level), 0, 9),
            Self::Zstd { level } => {
                let range = zstd::compression_level_range();
                ("zstd", i64::from(level), *range.start(), *range.end())
            }
            Self::Uncompressed => return Ok(()),
        };
        if (i64::from(min)..=i64::from(max)).contains(&level) {
            Ok(())
        } else {
            let level = i32::try_from(level).unwrap_or(i32::MAX);
            Err(Error::CompressionLevel {
                codec,
                level,
                min,
                max,
            })
        }
    }
}

/// What kind of directory the layer is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiffSource {
    /// An overlayfs upper dir, mounted with `redirect_dir=off,metacopy=off`: whiteouts and
    /// opaque directories are translated to their OCI form (see the module docs).
    OverlayUpper,
    /// A plain directory of added files (a fresh snapshot written directly): nothing is
    /// translated, so a 0:0 character device stays a device.
    Plain,
}

/// Options for [`write_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerOptions {
    /// How the blob is compressed.
    pub compression: Compression,
    /// How to read the directory.
    pub source: DiffSource,
    /// `SOURCE_DATE_EPOCH` in seconds: clamp every later mtime to it.
    pub source_date_epoch: Option<i64>,
    /// Compression threads: 0 (the default) uses the available CPUs, shared with the other
    /// layers being written at once (gzip through one process-wide pool, zstd with the CPUs
    /// other zstd layers leave free); `n` uses `n` threads for this layer alone (1: gzip on
    /// the calling thread, zstd on one worker). The blob's bytes are the same whatever the
    /// value.
    pub threads: usize,
}

impl LayerOptions {
    /// gzip level 6 (zlib's and Go's default), no timestamp clamping, all CPUs.
    pub const fn new(source: DiffSource) -> Self {
        Self {
            compression: Compression::Gzip { level: 6 },
            source,
            source_date_epoch: None,
            threads: 0,
        }
    }

    /// These options with another compression.
    pub const fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// These options with mtimes clamped to `epoch` (seconds).
    pub const fn with_source_date_epoch(mut self, epoch: Option<i64>) -> Self {
        self.source_date_epoch = epoch;
        self
    }

    /// These options with `threads` compression threads (0: automatic; see
    /// [`LayerOptions::threads`]).
    pub const fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
}

/// What [`write_layer`] wrote: everything a manifest layer descriptor and an image config's
/// `rootfs.diff_ids` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar: the config's `diff_id`, the layer's identity.
    pub diff_id: Digest,
    /// sha256 of the bytes written to `out`: the blob digest in the manifest.
    pub digest: Digest,
    /// Bytes written to `out` (the blob size in the manifest).
    pub size: u64,
    /// Bytes in the uncompressed tar.
    pub uncompressed_size: u64,
    /// The descriptor's media type, from [`Compression::media_type`].
    pub media_type: &'static str,
}

/// Writes the layer for the directory `root` to `out` and reports its digests and sizes.
///
/// `out` receives exactly the blob bytes (pass a `BufWriter` around a file or a hashing blob
/// writer; it is flushed at the end). On error, whatever was written to `out` is an incomplete
/// blob and must be discarded — which is why callers write to a temp file and rename only after
/// checking the returned digest.
pub fn write_layer<W: Write>(root: &Path, opts: &LayerOptions, out: W) -> Result<LayerInfo, Error> {
    write_layer_inner(root, opts, out, None)
}

/// [`write_layer`] for a snapshot directory holding deferred directories (directories a copy
/// created but did not fill: `dray_fsutil::fileop`'s deferred copies). For each one met, in
/// layer order, `replay` is called with its path in the layer and a sink, and must emit what
/// belongs below it (`dray_fsutil::fileop::replay` does). The result is the layer the filled
/// directory would give. [`write_layer`] refuses such a directory
/// ([`Error::NotMaterialized`]).
pub fn write_layer_replaying<W: Write>(
    root: &Path,
    opts: &LayerOptions,
    out: W,
    replay: &mut Replay<'_>,
) -> Result<LayerInfo, Error> {
    write_layer_inner(root, opts, out, Some(replay))
}

/// The replay function of [`write_layer_replaying`]: a deferred directory's path in the layer
/// (a relative tree path) and the sink to emit its contents into.
pub type Replay<'r> = diff::ReplayFn<'r>;

fn write_layer_inner<W: Write>(
    root: &Path,
    opts: &LayerOptions,
    out: W,
    replay: Option<&mut Replay<'_>>,
) -> Result<LayerInfo, Error> {
    opts.compression.validate()?;
    let md = std::fs::metadata(root).map_err(|source| Error::Walk {
        path: root.to_owned(),
        source,
    })?;
    if !md.is_dir() {
        return Err(Error::NotADirectory {
            path: root.to_owned(),
        });
    }
    let finish_err = |source| Error::Finish {
        root: root.to_owned(),
        source,
    };
    let sink = sink::Sink::new(opts.compression, opts.threads, out).map_err(finish_err)?;
    let mut tar = tar::TarWriter::new(sink);
    diff::write_entries(root, opts, &mut tar, replay)?;
    let measured = tar
        .finish()
        .and_then(sink::Sink::finish)
        .map_err(finish_err)?;
    Ok(LayerInfo {
        diff_id: measured.diff_id,
        digest: measured.digest,
        size: measured.size,
        uncompressed_size: measured.uncompressed_size,
        media_type: opts.compression.media_type(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_ranges_are_checked() {
        for ok in [
            Compression::Gzip { level: 0 },
            Compression::Gzip { level: 9 },
            Compression::Zstd { level: -5 },
            Compression::Zstd { level: 22 },
            Compression::Uncompressed,
        ] {
            assert!(ok.validate().is_ok(), "{ok:?}");
        }
        for bad in [
            Compression::Gzip { level: 10 },
            Compression::Zstd { level: 23 },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::CompressionLevel { .. })),
                "{bad:?}"
            );
        }
    }
}
