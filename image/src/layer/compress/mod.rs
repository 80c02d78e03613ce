//! Layer compression: parallel, and still a pure function of (tar bytes, codec, level, library
//! version) — never of the thread count or of timing.
//!
//! | codec | how it runs in parallel | why the bytes do not depend on it |
//! |---|---|---|
//! | gzip | 1 MiB blocks deflated on worker threads, pigz-style ([`gzip`]) | block boundaries are byte offsets; a block's bytes depend only on it and the 32 KiB before it |
//! | zstd | libzstd's own workers (`ZSTD_c_nbWorkers` ≥ 1) with a fixed job size | libzstd cuts jobs at fixed offsets (the job size) and its output is the same for any number of workers ≥ 1. It differs from single-threaded mode (0 workers), which is therefore never used |
//!
//! The thread count comes from [`LayerOptions::threads`](super::LayerOptions::threads). 0
//! means the available CPUs, shared by the layers being written at once (assembly writes
//! several), so that concurrent exports neither oversubscribe the CPUs nor multiply memory:
//! gzip blocks of every layer go to one process-wide pool with a global in-flight budget, and a
//! zstd layer gets the CPUs other zstd layers are not using (at least one worker). `n` gives the
//! layer `n` threads of its own; 1 compresses gzip on the calling thread and zstd on one worker.
//!
//! The compressors' `flush` is a no-op: a flush point would put bytes in the stream that depend
//! on when it was called. Only `finish` ends a stream.

mod gzip;
mod pool;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Compression;

pub(crate) use pool::default_threads;

/// Uncompressed bytes per zstd job: the unit libzstd hands to a worker. It must not depend on
/// the machine (it shapes the frame). The default (4 × the window, 8 MiB at level 3) would
/// keep about 40 MiB of input per layer in flight; 2 MiB keeps about 12 MiB while costing
/// under 1 % of ratio at level 3. Changing it changes every zstd blob.
pub(crate) const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// A compressing `Write` in front of `out`. Call [`Compressor::finish`] to end the stream.
pub(super) struct Compressor<W: Write>(Inner<W>);

enum Inner<W: Write> {
    Gzip(gzip::GzipWriter<W>),
    // The lease is held until the encoder (and its workers) is gone.
    Zstd(zstd::stream::write::Encoder<'static, W>, Option<ZstdLease>),
}

impl<W: Write> Compressor<W> {
    /// A compressor for `compression` with `threads` (0 = automatic), or `None` for
    /// [`Compression::Uncompressed`].
    pub(super) fn new(
        compression: Compression,
        threads: usize,
        out: W,
    ) -> io::Result<Option<Self>> {
        Ok(Some(Self(match compression {
            Compression::Gzip { level } => {
                let runner = match threads {
                    0 if default_threads() > 1 => match pool::Pool::shared() {
                        Some(shared) => gzip::Runner::Shared(shared),
                        None => gzip::Runner::Inline,
                    },
                    0 | 1 => gzip::Runner::Inline,
                    n => gzip::Runner::Owned(pool::Pool::new(n)?),
                };
                Inner::Gzip(gzip::GzipWriter::new(out, level, runner))
            }
            Compression::Zstd { level } => {
                let (workers, lease) = if threads == 0 {
                    let lease = ZstdLease::take();
                    (lease.0, Some(lease))
                } else {
                    (threads, None)
                };
                Inner::Zstd(zstd_encoder(out, level, workers)?, lease)
            }
            Compression::Uncompressed => return Ok(None),
        })))
    }

    /// Ends the stream and returns `out` (not flushed).
    pub(super) fn finish(self) -> io::Result<W> {
        match self.0 {
            Inner::Gzip(w) => w.finish(),
            Inner::Zstd(w, _lease) => w.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::Gzip(w) => w.write(buf),
            Inner::Zstd(w, _) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Inner::Gzip(w) => w.write_all(buf),
            Inner::Zstd(w, _) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// zstd workers of the layers being written with the automatic thread count.
static ZSTD_WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Worker threads for one zstd layer with the automatic thread count: the CPUs not already
/// used by other zstd layers being written, and at least one. libzstd keeps a worker set (and
/// its buffers, about 6 MiB per worker at the 2 MiB job size) per stream, so this keeps
/// concurrent layers from multiplying threads and memory; the bytes do not depend on it.
struct ZstdLease(usize);

impl ZstdLease {
    fn take() -> ZstdLease {
        let cpus = default_threads();
        let mut taken = 0;
        let _ = ZSTD_WORKERS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
            taken = cpus.saturating_sub(in_use).max(1);
            Some(in_use + taken)
        });
        ZstdLease(taken)
    }
}

impl Drop for ZstdLease {
    fn drop(&mut self) {
        ZSTD_WORKERS.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// zstd with `workers` (≥ 1) worker threads, a fixed job size and a content checksum (which
/// lets readers detect truncation, as containerd's frames do).
fn zstd_encoder<W: Write>(
    out: W,
    level: i32,
    workers: usize,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    enc.include_checksum(true)?;
    enc.multithread(u32::try_from(workers.max(1)).unwrap_or(u32::MAX))?;
    enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))?;
    Ok(enc)
}
