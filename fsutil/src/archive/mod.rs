//! Tar archives onto a filesystem: what `ADD`'s extraction and the OCI layer applier share.
//!
//! * [`detect_compression`] and [`decompress`]: a stream's compression is read from its first
//!   bytes, never from a name or a media type (moby's `DetectCompression`): gzip `1f 8b 08`,
//!   bzip2 `BZh`, xz `fd 37 7a 58 5a 00`, zstd `28 b5 2f fd` or a skippable frame; anything
//!   else is read as is. Concatenated streams are read through, as Go's readers do.
//! * [`DirExtractor`]: writes tar entries into a host directory **as its root**. It is the
//!   layer applier's writer (`dray_image::apply`); `ADD`'s extraction (`fileop`) runs the same
//!   entry writer on a layer being built, over its lower layers.
//!
//! # Containment
//!
//! Archives are hostile input. The extraction directory acts as `/`, as a `chroot` would:
//!
//! 1. an entry's name is cleaned lexically (`a/./b//c`, `a/../b`); what happens to a name that
//!    climbs above the root (`../x`) is the caller's policy: refused (moby's
//!    `Untar`, used by `ADD`) or stopped at the root (containerd's `Apply`, used for layers,
//!    which is what BuildKit unpacks images with);
//! 2. the entry's parent directories are resolved with symlinks followed **inside** the root:
//!    an absolute target restarts at the root, `..` stops at it, more than 40 links fail.
//!    Missing parents are created `0755`, owned by root;
//! 3. every write then reaches the resolved, symlink-free path through
//!    `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the root's descriptor, and creates
//!    or removes the final component with `*at` calls that do not follow it (`O_NOFOLLOW`,
//!    `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`). So even a tree changed
//!    under us between step 2 and 3 can make a write fail, never land outside.
//!
//! Symlinks are data: their targets are stored verbatim and never followed outside the root
//! (moby additionally refuses a relative target that climbs above the root; containerd does
//! not). A hard link's target is a name in the archive's root, resolved like an entry's, and
//! must be a non-directory that is already in the directory being written. Hard links to a
//! symlink link the symlink itself.
//!
//! # Entries
//!
//! Directories merge into existing directories (taking the entry's metadata); any other
//! combination replaces what is there (recursively), as both moby and containerd do. Entries
//! keep their mode (setuid/setgid/sticky included: the owner is set first), owner, mtime with
//! nanoseconds from a PAX `mtime` record (atime is the later of PAX `atime` and mtime, as
//! containerd sets it), and `SCHILY.xattr.*` records except overlayfs's own
//! (`trusted.overlay.*`, `user.overlay.*`): those describe how layers stack, and only the
//! layer applier's whiteout translation may write them. Xattrs the filesystem refuses
//! (`EPERM`, `EOPNOTSUPP`) are skipped, as BuildKit's `BestEffortXattrs` does. Directory times
//! are set once everything is written. Device nodes are created only as root (skipped
//! otherwise, as in a user namespace); PAX global headers are ignored; other unknown entry
//! types fail. GNU long names and PAX `path`/`linkpath`/`size`/`uid`/`gid` records are the
//! `tar` crate's; they override the header fields.

mod extract;

use std::io::{self, BufRead, Read};

pub use extract::{Applied, DirExtractor, DirOptions};
pub(crate) use extract::{Containment, Extraction, Policy};

/// A stream compression, as [`detect_compression`] reads it from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed (or not in a format known here: read as is).
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The name as OCI media types and `tar` flags spell it (`gzip`, `zstd`, ...; `none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// The compression whose magic bytes `magic` (the stream's first bytes; 6 are enough) start
/// with; [`Compression::None`] for anything else.
pub fn detect_compression(magic: &[u8]) -> Compression {
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

/// `input` decompressed as its first bytes say, with the compression found. Concatenated
/// streams (several gzip members, zstd frames, xz streams) are read through. Nothing is
/// buffered beyond the decoders' own windows: the stream is never held in memory.
pub fn decompress<'a, R: BufRead + 'a>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    // Read the magic bytes off the stream (a `BufRead` may hand out fewer per fill, as a pipe
    // does at a chunk boundary), then put them back in front of it.
    let mut magic = [0u8; 6];
    let mut n = 0;
    while n < magic.len() {
        match input.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(read) => n += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = detect_compression(&magic[..n]);
    let input = io::Cursor::new(magic[..n].to_vec()).chain(input);
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    };
    Ok((kind, reader))
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
pub(crate) fn is_tar_header(block: &[u8; 512]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression_by_magic() {
        assert_eq!(
            detect_compression(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(detect_compression(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            detect_compression(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(
            detect_compression(&[0x5e, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"ustar"), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
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
}
