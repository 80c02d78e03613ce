//! Block-parallel, deterministic gzip (the pigz scheme).
//!
//! ```text
//! tar bytes ─► 1 MiB blocks ─► deflate on workers (raw, primed with the previous block's last
//!              (by offset)      32 KiB, ended by a sync flush; the last block by a final one)
//!                                  │
//!              out ◄─ header · block 0 · block 1 · … · last block · CRC32 · ISIZE  (in order)
//! ```
//!
//! Why the bytes do not depend on the number of threads: a block's boundaries are fixed byte
//! offsets of the tar stream, and its compressed bytes are a pure function of its input, its
//! dictionary (the 32 KiB of input before it), the level and whether it is the last block.
//! Workers only decide *when* a block is compressed; blocks are written in order. A sync flush
//! ends each block on a byte boundary with an empty stored block, so the raw deflate pieces
//! concatenate into one valid deflate stream, and the result is one ordinary gzip member that
//! any gunzip reads. The CRC32 of each block is computed on its worker and combined in order.
//!
//! Memory is bounded: a writer has at most [`Pool::max_in_flight`] blocks between submission
//! and output (about 2.2 MiB each, input plus output), and all writers sharing a pool together
//! at most the pool's budget plus one block each (see [`Pool::try_acquire`]).
//!
//! With one thread the blocks are compressed on the calling thread, with the same bytes.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};

use flate2::{Compress, Crc, FlushCompress, Status};

use super::pool::{Permit, Pool};

/// Uncompressed bytes per block. Large enough that the per-block costs (priming the dictionary,
/// the flush marker, a fresh Huffman block) stay under 1 %; small enough that a writer's
/// in-flight blocks stay a few MiB. Changing it changes every gzip blob.
pub(crate) const BLOCK_SIZE: usize = 1 << 20;

/// Deflate's window: the dictionary a block is primed with.
const DICT_SIZE: usize = 32 * 1024;

/// Where blocks are compressed.
pub(super) enum Runner {
    /// On the writer's own thread.
    Inline,
    /// On the process-wide pool.
    Shared(&'static Pool),
    /// On a pool of this writer's own.
    Owned(Pool),
}

impl Runner {
    fn pool(&self) -> Option<&Pool> {
        match self {
            Runner::Inline => None,
            Runner::Shared(p) => Some(p),
            Runner::Owned(p) => Some(p),
        }
    }
}

/// A block on its way back from a worker.
struct Done {
    index: u64,
    input: Vec<u8>,
    output: Vec<u8>,
    result: io::Result<Crc>,
    /// Returned to the pool when this is dropped: after the block is written, or when the
    /// writer is gone.
    _permit: Option<Permit>,
}

/// A `Write` that gzips everything written to it into `out`; call [`GzipWriter::finish`].
///
/// `flush` does not flush the compressor (a flush point would depend on when it was called);
/// only `finish` ends the stream.
pub(super) struct GzipWriter<W: Write> {
    out: W,
    level: u32,
    runner: Runner,
    /// The block being filled.
    block: Vec<u8>,
    /// The last [`DICT_SIZE`] bytes of the previous block (empty before the first).
    dict: Vec<u8>,
    /// Blocks handed out so far; also the next block's index.
    submitted: u64,
    /// Results of blocks `submitted - pending.len() ..submitted`, in order; `None` while one is
    /// still being compressed.
    pending: VecDeque<Option<Done>>,
    tx: Sender<Done>,
    rx: Receiver<Done>,
    /// CRC32 and length of everything written out so far.
    crc: Crc,
    header_written: bool,
    /// Buffers of written blocks, reused for new ones.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<W: Write> GzipWriter<W> {
    pub(super) fn new(out: W, level: u32, runner: Runner) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            out,
            level,
            runner,
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            submitted: 0,
            pending: VecDeque::new(),
            tx,
            rx,
            crc: Crc::new(),
            header_written: false,
            spare: Vec::new(),
        }
    }

    /// Compresses the rest, writes the trailer and returns `out` (not flushed).
    pub(super) fn finish(mut self) -> io::Result<W> {
        // The last block may be empty (the input was empty, or a multiple of the block size):
        // it then holds just the final empty deflate block.
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.wait_for_next()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952); `amount` is exactly that.
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        Ok(self.out)
    }

    /// Hands the filled block (the last one when `last`) to a worker, or compresses it here.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let (next_input, output) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(BLOCK_SIZE), Vec::new()));
        let input = mem::replace(&mut self.block, next_input);
        let dict = if last {
            mem::take(&mut self.dict)
        } else {
            let tail = input[input.len() - DICT_SIZE..].to_vec();
            mem::replace(&mut self.dict, tail)
        };
        let level = self.level;
        if self.runner.pool().is_none() {
            self.submitted += 1;
            let mut output = output;
            let crc = deflate_block(level, &dict, &input, &mut output, last)?;
            return self.emit(input, output, &crc);
        }
        // Make room: each writer may have one block in flight unconditionally, more while the
        // pool's budget allows, and otherwise first writes out its oldest block.
        let permit = loop {
            self.collect_ready()?;
            if self.pending.is_empty() {
                break None;
            }
            let pool = self.runner.pool().unwrap_or_else(|| unreachable!());
            if self.pending.len() < pool.max_in_flight()
                && let Some(permit) = pool.try_acquire()
            {
                break Some(permit);
            }
            self.wait_for_next()?;
        };
        let index = self.submitted;
        self.submitted += 1;
        self.pending.push_back(None);
        let pool = self.runner.pool().unwrap_or_else(|| unreachable!());
        let tx = self.tx.clone();
        pool.submit(Box::new(move || {
            let mut output = output;
            let result = catch_unwind(AssertUnwindSafe(|| {
                deflate_block(level, &dict, &input, &mut output, last)
            }))
            .unwrap_or_else(|_| Err(io::Error::other("a gzip worker panicked")));
            // The writer may be gone (it failed elsewhere): then the block is simply dropped.
            let _ = tx.send(Done {
                index,
                input,
                output,
                result,
                _permit: permit,
            });
        }));
        Ok(())
    }

    /// Files a finished block in `pending`.
    fn accept(&mut self, done: Done) {
        let first = self.submitted - self.pending.len() as u64;
        let slot = done
            .index
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(usize::MAX);
        if let Some(s) = self.pending.get_mut(slot) {
            *s = Some(done);
        }
    }

    /// Writes out the finished blocks at the front of `pending`.
    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(Some(_)) = self.pending.front() {
            let Some(Some(done)) = self.pending.pop_front() else {
                unreachable!()
            };
            let crc = done.result?;
            self.emit(done.input, done.output, &crc)?;
        }
        Ok(())
    }

    /// Takes every result that has arrived, without waiting, and writes what is in order.
    fn collect_ready(&mut self) -> io::Result<()> {
        while let Ok(done) = self.rx.try_recv() {
            self.accept(done);
        }
        self.write_ready()
    }

    /// Waits until the oldest pending block is compressed, then writes what is in order.
    fn wait_for_next(&mut self) -> io::Result<()> {
        while let Some(None) = self.pending.front() {
            // Every job sends exactly once (a panic is caught and sent as an error), and
            // `self.tx` keeps the channel open, so this cannot fail while a block is pending.
            let done = self
                .rx
                .recv()
                .map_err(|_| io::Error::other("gzip workers stopped"))?;
            self.accept(done);
        }
        self.write_ready()
    }

    /// Writes one compressed block (after the header, for the first).
    fn emit(&mut self, mut input: Vec<u8>, mut output: Vec<u8>, crc: &Crc) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&header(self.level))?;
            self.header_written = true;
        }
        self.out.write_all(&output)?;
        self.crc.combine(crc);
        input.clear();
        output.clear();
        self.spare.push((input, output));
        Ok(())
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The gzip member header: no name, comment or extra field, mtime 0, OS "unknown" (255, as Go
/// writes), and XFL as zlib sets it for the level.
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Room for deflating `n` bytes in one call: deflate's worst-case expansion (stored blocks, 5
/// bytes per 16 KiB) with a wide margin, so a flush never runs out of output space (zlib could
/// then repeat its flush marker, and the bytes would depend on the buffer's capacity).
fn bound(n: usize) -> usize {
    n + n / 8 + 1024
}

/// Deflates `input` (raw deflate, primed with `dict`) into `output`, ending with a sync flush,
/// or with the final block when `last`. Returns the CRC32 of `input`.
///
/// Every block gets a fresh deflate state. A reset one is not enough: `deflateReset` keeps the
/// old window contents, and the match search can read past the end of the current input into
/// them (a longer candidate, then clamped), so the bytes would depend on which block the state
/// compressed before — that is, on the thread that ran it. A fresh state's window is zeroed.
fn deflate_block(
    level: u32,
    dict: &[u8],
    input: &[u8],
    output: &mut Vec<u8>,
    last: bool,
) -> io::Result<Crc> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    output.clear();
    let mut consumed = 0;
    loop {
        output.reserve(bound(input.len() - consumed));
        let before = c.total_in();
        let status = c
            .compress_vec(&input[consumed..], output, flush)
            .map_err(io::Error::other)?;
        consumed += usize::try_from(c.total_in() - before).unwrap_or(usize::MAX);
        let done = if last {
            status == Status::StreamEnd
        } else {
            consumed == input.len() && output.len() < output.capacity()
        };
        if done {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(crc)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gzip(data: &[u8], level: u32, runner: Runner, chunk: usize) -> Vec<u8> {
        let mut w = GzipWriter::new(Vec::new(), level, runner);
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially: repeated phrases with a counter.
        let mut v = Vec::with_capacity(len + 64);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(format!("line {} of {}\n", i % 977, i / 3).as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    }

    #[test]
    fn same_bytes_for_any_runner_and_write_size() {
        for len in [
            0,
            1,
            1000,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 77,
        ] {
            let data = sample(len);
            let one = gzip(&data, 6, Runner::Inline, 1 << 16);
            assert_eq!(gunzip(&one), data, "len {len}");
            for threads in [1, 2, 4] {
                let pooled = gzip(&data, 6, Runner::Owned(Pool::new(threads).unwrap()), 4099);
                assert_eq!(pooled, one, "len {len}, {threads} threads");
            }
            if let Some(shared) = Pool::shared() {
                assert_eq!(gzip(&data, 6, Runner::Shared(shared), 1 << 20), one);
            }
        }
    }

    #[test]
    fn many_writers_share_a_small_pool() {
        // Six writers on two workers: the budget (4 blocks) is smaller than what they would
        // like in flight together, so they go on the one block each may always have.
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(2).unwrap()));
        let inputs: Vec<Vec<u8>> = (0..6).map(|i| sample(2 * BLOCK_SIZE + i * 1000)).collect();
        let expected: Vec<Vec<u8>> = inputs
            .iter()
            .map(|d| gzip(d, 6, Runner::Inline, 1 << 16))
            .collect();
        let got: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .iter()
                .map(|d| s.spawn(move || gzip(d, 6, Runner::Shared(pool), 1 << 14)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got == expected);
        // Every permit came back.
        let all: Vec<_> = std::iter::from_fn(|| pool.try_acquire()).collect();
        assert_eq!(all.len(), pool.max_in_flight());
    }

    #[test]
    fn a_failing_output_is_reported_and_returns_the_permits() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(2).unwrap()));
        let data = sample(6 * BLOCK_SIZE);
        let err = {
            let mut w = GzipWriter::new(Full, 6, Runner::Shared(pool));
            w.write_all(&data).and_then(|()| w.finish().map(drop))
            // The writer is gone here, with the results it had collected.
        };
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::StorageFull);
        // Blocks still in flight finish on the workers and drop their permits.
        let mut all = Vec::new();
        for _ in 0..1000 {
            all.extend(std::iter::from_fn(|| pool.try_acquire()));
            if all.len() == pool.max_in_flight() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(all.len(), pool.max_in_flight());
    }

    #[test]
    fn every_level_round_trips() {
        let data = sample(2 * BLOCK_SIZE + 5);
        for level in 0..=9 {
            let blob = gzip(&data, level, Runner::Owned(Pool::new(2).unwrap()), 1 << 15);
            assert_eq!(gunzip(&blob), data, "level {level}");
            assert_eq!(blob[8], header(level)[8]);
        }
    }

    #[test]
    fn blocks_do_not_cost_much_ratio() {
        // Priming each block with its predecessor's window keeps the ratio within a fraction
        // of a percent of one continuous stream.
        let data = sample(4 * BLOCK_SIZE);
        let ours = gzip(&data, 6, Runner::Inline, 1 << 16).len();
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        plain.write_all(&data).unwrap();
        let plain = plain.finish().unwrap().len();
        assert!(
            ours as f64 <= plain as f64 * 1.01,
            "blocked {ours} vs continuous {plain}"
        );
    }
}
