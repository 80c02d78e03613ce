//! The tar framing every exporter shares: ustar headers (PAX records only where a value does not
//! fit), numeric owners with empty `uname`/`gname`, and an exact-length data copy.
//!
//! | value | ustar field | PAX record instead when |
//! |---|---|---|
//! | path | `name` (100 bytes) | longer than 100 bytes |
//! | link target | `linkname` (100 bytes) | longer than 100 bytes |
//! | uid, gid | 8-byte octal | above 2097151 |
//! | size | 12-byte octal | 8 GiB or more |
//! | mtime | 12-byte octal | negative |
//! | xattrs | — | always `SCHILY.xattr.<name>` |
//!
//! PAX records are sorted by key; the extended header is named `././@PaxHeader`, mode 0o644,
//! mtime 0, as in the layer writer, so the bytes are a function of the entries alone. The layer
//! writer has its own copy of these rules (`layer/tar.rs`); this one also frames archive members
//! (blobs, `index.json`) whose data is verified while it streams.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

const MAX_OCTAL_8: u64 = 0o7_777_777;
const MAX_OCTAL_12: u64 = 0o77_777_777_777;
const ZEROS: [u8; 1024] = [0; 1024];
const COPY_BUFFER: usize = 256 * 1024;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TarEntry {
    /// Path bytes; directories end in `/`.
    pub(crate) name: Vec<u8>,
    pub(crate) kind: EntryType,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    /// Whole seconds since the epoch.
    pub(crate) mtime: i64,
    /// Data length (regular files only).
    pub(crate) size: u64,
    pub(crate) link: Option<Vec<u8>>,
    pub(crate) device: Option<(u32, u32)>,
    /// Sorted by name.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TarEntry {
    /// A member of an image archive: owned by 0:0, mtime 0, mode 0o644 (files) or 0o755
    /// (directories), so the archive depends only on its contents.
    pub(crate) fn archive_member(name: &str, size: u64) -> TarEntry {
        let dir = name.ends_with('/');
        TarEntry {
            name: name.as_bytes().to_vec(),
            kind: if dir {
                EntryType::Directory
            } else {
                EntryType::Regular
            },
            mode: if dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 0,
            size: if dir { 0 } else { size },
            link: None,
            device: None,
            xattrs: Vec::new(),
        }
    }
}

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
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> TarStream<W> {
    pub(crate) fn new(out: W) -> Self {
        TarStream {
            out,
            buf: Vec::new(),
        }
    }

    /// Writes `entry`'s headers and, for a regular file, exactly `entry.size` bytes of `data`.
    pub(crate) fn append(
        &mut self,
        entry: &TarEntry,
        data: Option<&mut dyn Read>,
    ) -> Result<(), CopyError> {
        let (pax, header) = encode(entry);
        if !pax.is_empty() {
            let mut xh = Header::new_ustar();
            set_bytes(&mut ustar(&mut xh).name, b"././@PaxHeader");
            xh.set_mode(0o644);
            xh.set_mtime(0);
            xh.set_size(pax.len() as u64);
            xh.set_entry_type(EntryType::XHeader);
            xh.set_cksum();
            self.out
                .write_all(xh.as_bytes())
                .map_err(CopyError::Write)?;
            self.out.write_all(&pax).map_err(CopyError::Write)?;
            self.pad(pax.len() as u64).map_err(CopyError::Write)?;
        }
        self.out
            .write_all(header.as_bytes())
            .map_err(CopyError::Write)?;
        if entry.kind == EntryType::Regular && entry.link.is_none() {
            let mut empty: &[u8] = &[];
            let data: &mut dyn Read = match data {
                Some(d) => d,
                None => &mut empty,
            };
            self.copy_exact(data, entry.size)?;
            self.pad(entry.size).map_err(CopyError::Write)?;
        }
        Ok(())
    }

    /// Ends the archive and returns the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&ZEROS)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn copy_exact(&mut self, data: &mut dyn Read, size: u64) -> Result<(), CopyError> {
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let mut done = 0u64;
        loop {
            // One read past `size` must see end-of-file: a source that grew is as inconsistent
            // as one that shrank.
            let want = usize::try_from(size - done)
                .unwrap_or(usize::MAX)
                .min(self.buf.len())
                .max(1);
            let n = match data.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            if n == 0 {
                break;
            }
            if done + n as u64 > size {
                return Err(CopyError::Length {
                    expected: size,
                    actual: done + n as u64,
                });
            }
            self.out
                .write_all(&self.buf[..n])
                .map_err(CopyError::Write)?;
            done += n as u64;
        }
        if done != size {
            return Err(CopyError::Length {
                expected: size,
                actual: done,
            });
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.out.write_all(&ZEROS[..512 - rem])?;
        }
        Ok(())
    }
}

fn ustar(h: &mut Header) -> &mut tar::UstarHeader {
    h.as_ustar_mut()
        .expect("Header::new_ustar makes a ustar header")
}

fn set_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// The PAX record bytes (possibly empty) and the ustar header for `e`.
fn encode(e: &TarEntry) -> (Vec<u8>, Header) {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut h = Header::new_ustar();
    if e.name.len() > 100 {
        records.push((b"path".to_vec(), e.name.clone()));
    }
    set_bytes(&mut ustar(&mut h).name, &e.name);
    if let Some(link) = &e.link {
        if link.len() > 100 {
            records.push((b"linkpath".to_vec(), link.clone()));
        }
        set_bytes(&mut ustar(&mut h).linkname, link);
    }
    h.set_mode(e.mode & 0o7777);
    for (key, value, setter) in [
        (&b"uid"[..], e.uid, Header::set_uid as fn(&mut Header, u64)),
        (&b"gid"[..], e.gid, Header::set_gid),
    ] {
        if value > MAX_OCTAL_8 {
            records.push((key.to_vec(), value.to_string().into_bytes()));
            setter(&mut h, 0);
        } else {
            setter(&mut h, value);
        }
    }
    if e.size > MAX_OCTAL_12 {
        records.push((b"size".to_vec(), e.size.to_string().into_bytes()));
        h.set_size(0);
    } else {
        h.set_size(e.size);
    }
    match u64::try_from(e.mtime) {
        Ok(t) if t <= MAX_OCTAL_12 => h.set_mtime(t),
        _ => {
            records.push((b"mtime".to_vec(), e.mtime.to_string().into_bytes()));
            h.set_mtime(0);
        }
    }
    h.set_entry_type(e.kind);
    if let Some((major, minor)) = e.device {
        // Infallible on a ustar header.
        let _ = h.set_device_major(major);
        let _ = h.set_device_minor(minor);
    }
    for (name, value) in &e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        records.push((key, value.clone()));
    }
    records.sort();
    let mut pax = Vec::new();
    for (key, value) in records {
        pax.extend_from_slice(&pax_record(&key, &value));
    }
    h.set_cksum();
    (pax, h)
}

/// `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    let mut out = len.to_string().into_bytes();
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            (&b"path"[..], &[b'a'; 5][..]),
            (b"path", &[b'a'; 95]),
            (b"p", &[]),
        ] {
            let r = pax_record(k, v);
            let (len, _) = std::str::from_utf8(&r).unwrap().split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{r:?}");
        }
    }

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
}
