//! The exporters' tar stream: the layer writer's framing ([`crate::layer::TarWriter`], whose
//! module documents the header and PAX rules), so an image archive, a root filesystem tar and a
//! layer follow one set of rules and one implementation.
//!
//! What this adapter adds: errors in the exporters' terms ([`CopyError`]: the source
//! misbehaved, reading failed, or the output failed), a regular member given no data counts as
//! empty, and [`TarStream::finish`] flushes the output.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::EntryType;

pub(crate) use crate::layer::TarEntry;
use crate::layer::TarWriter;

/// Why a member's data could not be copied: the source misbehaved, or the output failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The source ended early (`actual` < `expected`) or had more bytes.
    Length { expected: u64, actual: u64 },
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
}

/// Writes members to `out`; [`TarStream::finish`] adds the end-of-archive blocks.
pub(crate) struct TarStream<W: Write> {
    tar: TarWriter<W>,
}

impl<W: Write> TarStream<W> {
    pub(crate) fn new(out: W) -> Self {
        TarStream {
            tar: TarWriter::new(out),
        }
    }

    /// Writes `entry`'s headers and, for a regular file, exactly `entry.size` bytes of `data`
    /// (no data reads as empty).
    pub(crate) fn append(
        &mut self,
        entry: &TarEntry,
        data: Option<&mut dyn Read>,
    ) -> Result<(), CopyError> {
        let mut empty: &[u8] = &[];
        let data: Option<&mut dyn Read> = match data {
            Some(d) => Some(d),
            None if entry.kind == EntryType::Regular && entry.link.is_none() => {
                Some(&mut empty as &mut dyn Read)
            }
            None => None,
        };
        let name = Path::new(OsStr::from_bytes(&entry.name));
        self.tar.append(entry, data, name).map_err(|e| match e {
            crate::Error::FileChanged {
                expected, actual, ..
            } => CopyError::Length { expected, actual },
            crate::Error::Read { source, .. } => CopyError::Read(source),
            crate::Error::Write { source, .. } => CopyError::Write(source),
            other => CopyError::Write(io::Error::other(other)),
        })
    }

    /// Ends the archive, flushes it and returns the output.
    pub(crate) fn finish(self) -> io::Result<W> {
        let mut out = self.tar.finish()?;
        out.flush()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_and_xattrs_round_trip_through_the_tar_crate() {
        let long = format!("{}/file", "d".repeat(150));
        let mut e = TarEntry::archive_member(&long, 3);
        e.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
        let mut t = TarStream::new(Vec::new());
        t.append(&e, Some(&mut &b"abc"[..])).unwrap();
        let bytes = t.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(first.path().unwrap().to_str().unwrap(), long);
        let mut data = String::new();
        first.read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        assert!(entries.next().is_none());
    }

    #[test]
    fn a_short_or_long_source_is_an_error() {
        let e = TarEntry::archive_member("f", 4);
        let mut t = TarStream::new(Vec::new());
        assert!(matches!(
            t.append(&e, Some(&mut &b"abc"[..])),
            Err(CopyError::Length {
                expected: 4,
                actual: 3
            })
        ));
        let mut t = TarStream::new(Vec::new());
        assert!(matches!(
            t.append(&e, Some(&mut &b"abcde"[..])),
            Err(CopyError::Length { expected: 4, .. })
        ));
    }

    #[test]
    fn a_regular_member_without_data_is_empty_and_a_directory_has_none() {
        let mut t = TarStream::new(Vec::new());
        t.append(&TarEntry::archive_member("d/", 0), None).unwrap();
        t.append(&TarEntry::archive_member("d/f", 0), None).unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(
            bytes.len(),
            2 * 512 + 1024,
            "two headers and the end blocks"
        );
        let missing = TarStream::new(Vec::new()).append(&TarEntry::archive_member("f", 2), None);
        assert!(matches!(
            missing,
            Err(CopyError::Length {
                expected: 2,
                actual: 0
            })
        ));
    }
}
