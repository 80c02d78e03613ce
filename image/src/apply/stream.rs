//! Readers that measure a layer stream as it goes by.

use std::cell::Cell;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// Counts the bytes read through it into a cell the caller keeps (the reader itself ends up
/// boxed inside a decompressor).
pub(super) struct CountingReader<'a, R> {
    inner: R,
    count: &'a Cell<u64>,
}

impl<'a, R: Read> CountingReader<'a, R> {
    pub(super) fn new(inner: R, count: &'a Cell<u64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Hashes (sha256) and counts the bytes read through it.
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and length of everything read.
    pub(super) fn finish(self) -> (Digest, u64) {
        (
            Digest::from_bytes(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_what_goes_through() {
        let count = Cell::new(0);
        let mut r = HashingReader::new(CountingReader::new(&b"hello"[..], &count));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(count.get(), 5);
        assert_eq!(r.finish(), (Digest::of(b"hello"), 5));
    }
}
