//! The byte pipeline under the tar writer: hash the tar stream (diff_id), compress it, then hash
//! and count the compressed bytes (blob digest and size), all in one pass.
//!
//! ```text
//! tar bytes ─► BufWriter ─► HashCount (diff_id) ─► Compressor (gzip|zstd) ─► HashCount (digest, size) ─► out
//!                                              └─► (uncompressed) ─────────────────────────────────► out
//! ```
//!
//! Without compression the blob *is* the tar, so its digest and size are the diff_id and the
//! tar size: hashing the same bytes twice would cost a quarter of the uncompressed throughput.

use std::io::{self, BufWriter, Write};

use sha2::{Digest as _, Sha256};

use super::Compression;
use super::compress::Compressor;
use crate::Digest;

/// The tar stream is buffered before hashing so that 512-byte headers and padding reach the
/// hasher and the compressor in large chunks; file data larger than this bypasses the buffer.
const STREAM_BUFFER: usize = 128 * 1024;

/// Passes bytes through to `inner`, hashing and counting exactly the bytes `inner` accepted.
struct HashCount<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashCount<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest::from_bytes(self.hasher.finalize().into()),
            self.bytes,
        )
    }
}

impl<W: Write> Write for HashCount<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compressor, measuring its output; or, uncompressed, `out` itself (no second hash).
enum Encoder<W: Write> {
    Compressed(Box<Compressor<HashCount<W>>>),
    None(W),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, threads: usize, out: W) -> io::Result<Self> {
        // `Compressor::new` hands `out` back only through the compressor; check first.
        if compression == Compression::Uncompressed {
            return Ok(Self::None(out));
        }
        match Compressor::new(compression, threads, HashCount::new(out))? {
            Some(c) => Ok(Self::Compressed(Box::new(c))),
            None => unreachable!("only Uncompressed has no compressor"),
        }
    }

    /// Ends the stream; returns `out` and, when compressing, the blob digest and size.
    fn finish(self) -> io::Result<(W, Option<(Digest, u64)>)> {
        match self {
            Self::Compressed(c) => {
                let (out, digest, size) = c.finish()?.finish();
                Ok((out, Some((digest, size))))
            }
            Self::None(w) => Ok((w, None)),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Compressed(c) => c.write(buf),
            Self::None(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Compressed(c) => c.write_all(buf),
            Self::None(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            // Never a flush point inside a compressed stream (see `compress`).
            Self::Compressed(_) => Ok(()),
            Self::None(w) => w.flush(),
        }
    }
}

/// What [`Sink::finish`] measured.
pub(super) struct Measured {
    pub(super) diff_id: Digest,
    pub(super) uncompressed_size: u64,
    pub(super) digest: Digest,
    pub(super) size: u64,
}

/// The tar writer's destination: everything written here is one layer's uncompressed tar.
pub(super) struct Sink<W: Write> {
    inner: BufWriter<HashCount<Encoder<W>>>,
}

impl<W: Write> Sink<W> {
    pub(super) fn new(compression: Compression, threads: usize, out: W) -> io::Result<Self> {
        let encoder = Encoder::new(compression, threads, out)?;
        Ok(Self {
            inner: BufWriter::with_capacity(STREAM_BUFFER, HashCount::new(encoder)),
        })
    }

    /// Flushes the buffer, ends the compressed stream and flushes `out`.
    pub(super) fn finish(self) -> io::Result<Measured> {
        let tar = self
            .inner
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        let (encoder, diff_id, uncompressed_size) = tar.finish();
        let (mut out, blob) = encoder.finish()?;
        let (digest, size) = blob.unwrap_or((diff_id, uncompressed_size));
        out.flush()?;
        Ok(Measured {
            diff_id,
            uncompressed_size,
            digest,
            size,
        })
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
