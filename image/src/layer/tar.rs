//! Tar framing, for layers and for every exporter (image archives and root filesystem tars use
//! it through `export/tarball.rs`): one [`Entry`] becomes an optional PAX extended header, a ustar header, the data
//! and its padding. The `tar` crate encodes the 512-byte headers (octal fields, checksum); the
//! framing is done here so that PAX records and every header byte are under our control, and so
//! that read errors (a source file) and write errors (the output) stay distinguishable.
//!
//! Header rules, all of which keep the output a function of the tree alone:
//! - ustar headers, `uname`/`gname` empty, no atime/ctime, device numbers only for devices;
//! - a value that does not fit its ustar field goes into a PAX record (`path`, `linkpath` over
//!   100 bytes; `uid`, `gid` over 2097151; `size` of 8 GiB or more; `mtime` before 1970 or after
//!   2242) and the ustar field keeps a truncated name or zero, as Go's `archive/tar` does;
//! - xattrs become `SCHILY.xattr.<name>` records;
//! - records are sorted by key, and the extended header itself is named `././@PaxHeader` with
//!   mode 0o644 and mtime 0.
//!
//! Note for readers of these layers (the future applier): PAX records are length-prefixed and
//! values may be binary, e.g. a `security.capability` blob containing `\n`. The `tar` crate's
//! `Entry::pax_extensions` (0.4.46) splits records on newlines and rejects such values, so parse
//! records by their length prefix (as `tests/common/mod.rs` does); GNU tar and Go read them.

use std::io::{self, Read, Write};
use std::path::Path;

use tar::{EntryType, Header};

use crate::Error;

/// The largest value an 8-byte octal ustar field holds (7 digits).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// The largest value a 12-byte octal ustar field holds (11 digits).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;
/// Zero bytes for padding and the end-of-archive marker.
const ZEROS: [u8; 1024] = [0; 1024];
/// The copy buffer for file data: large writes go past the stream buffer straight to the hasher.
const COPY_BUFFER: usize = 256 * 1024;

/// One archive member, already translated (names relative, whiteouts applied, xattrs filtered).
pub(crate) struct Entry {
    /// Path bytes inside the layer; directories end in `/`.
    pub(crate) name: Vec<u8>,
    pub(crate) kind: EntryType,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    /// Whole seconds since the epoch, already clamped.
    pub(crate) mtime: i64,
    /// Data length; non-zero only for regular files.
    pub(crate) size: u64,
    /// Symlink target or hard-link target path.
    pub(crate) link: Option<Vec<u8>>,
    /// (major, minor) for character and block devices.
    pub(crate) device: Option<(u32, u32)>,
    /// Sorted by name; already filtered by the xattr rule.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// An empty regular file owned by 0:0 with mode 0, as containerd writes whiteout markers.
    pub(super) fn marker(name: Vec<u8>, mtime: i64) -> Self {
        Self {
            name,
            kind: EntryType::Regular,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime,
            size: 0,
            link: None,
            device: None,
            xattrs: Vec::new(),
        }
    }

    /// A member of an image archive (a blob, `index.json`): owned by 0:0, mtime 0, mode 0o644
    /// for a file or 0o755 for a directory (a name ending in `/`), so an archive depends only
    /// on its members' names and bytes.
    pub(crate) fn archive_member(name: &str, size: u64) -> Self {
        let member = Self::marker(name.as_bytes().to_vec(), 0);
        if name.ends_with('/') {
            Self {
                kind: EntryType::Directory,
                mode: 0o755,
                ..member
            }
        } else {
            Self {
                mode: 0o644,
                size,
                ..member
            }
        }
    }
}

/// Writes entries to `out` and, on [`TarWriter::finish`], the two zero blocks that end a tar.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::new(),
        }
    }

    /// Writes `entry`'s headers and, for a regular file, exactly `entry.size` bytes of `data`.
    /// `source` names the file on disk, for errors.
    pub(crate) fn append(
        &mut self,
        entry: &Entry,
        data: Option<&mut dyn Read>,
        source: &Path,
    ) -> Result<(), Error> {
        let write_err = |source_err| Error::Write {
            entry: source.to_owned(),
            source: source_err,
        };
        let (pax, header) = encode(entry);
        if !pax.is_empty() {
            let mut xh = Header::new_ustar();
            set_bytes(&mut ustar(&mut xh).name, b"././@PaxHeader");
            xh.set_mode(0o644);
            xh.set_mtime(0);
            xh.set_size(pax.len() as u64);
            xh.set_entry_type(EntryType::XHeader);
            xh.set_cksum();
            self.out.write_all(xh.as_bytes()).map_err(write_err)?;
            self.out.write_all(&pax).map_err(write_err)?;
            self.pad(pax.len() as u64).map_err(write_err)?;
        }
        self.out.write_all(header.as_bytes()).map_err(write_err)?;
        if let Some(data) = data {
            self.copy_exact(data, entry.size, source)?;
            self.pad(entry.size).map_err(write_err)?;
        }
        Ok(())
    }

    /// Ends the archive and returns the destination.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&ZEROS)?;
        Ok(self.out)
    }

    /// Copies exactly `size` bytes: the header already promised that many, so a file that
    /// shrank or grew underneath us is an error rather than a corrupt or torn archive.
    ///
    /// Each read asks for one byte more than is still owed, so the read that completes the data
    /// also shows whether the file goes on: a file of up to [`COPY_BUFFER`] bytes takes one
    /// `read(2)`. A read that comes back short having delivered the last owed byte is the end
    /// of the file (a regular file reads short only at its end); a byte beyond `size` means the
    /// file grew, and silently cutting it would publish a layer that matches no state of it.
    fn copy_exact(&mut self, data: &mut dyn Read, size: u64, source: &Path) -> Result<(), Error> {
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let mut done = 0u64;
        loop {
            let owed = size - done;
            let want = usize::try_from(owed)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
                .min(self.buf.len());
            let n = match data.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Read {
                        path: source.to_owned(),
                        source: e,
                    });
                }
            };
            if n == 0 {
                if done < size {
                    return Err(Error::FileChanged {
                        path: source.to_owned(),
                        expected: size,
                        actual: done,
                    });
                }
                return Ok(());
            }
            let take = n.min(usize::try_from(owed).unwrap_or(usize::MAX));
            if take < n {
                return Err(Error::FileChanged {
                    path: source.to_owned(),
                    expected: size,
                    actual: size + (n - take) as u64,
                });
            }
            self.out
                .write_all(&self.buf[..take])
                .map_err(|e| Error::Write {
                    entry: source.to_owned(),
                    source: e,
                })?;
            done += take as u64;
            if done == size && n < want {
                return Ok(());
            }
        }
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

/// Copies as much of `value` as fits into a NUL-padded header field.
fn set_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

/// Encodes `entry` as (PAX record block, possibly empty; ustar header).
fn encode(entry: &Entry) -> (Vec<u8>, Header) {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut h = Header::new_ustar();
    h.set_entry_type(entry.kind);

    if entry.name.len() > 100 {
        records.push((b"path".to_vec(), entry.name.clone()));
    }
    set_bytes(&mut ustar(&mut h).name, &entry.name);
    if let Some(link) = &entry.link {
        if link.len() > 100 {
            records.push((b"linkpath".to_vec(), link.clone()));
        }
        set_bytes(&mut ustar(&mut h).linkname, link);
    }

    h.set_mode(entry.mode);
    let mut numeric = |key: &str, value: u64, max: u64| -> u64 {
        if value > max {
            records.push((key.as_bytes().to_vec(), value.to_string().into_bytes()));
            0
        } else {
            value
        }
    };
    let uid = numeric("uid", entry.uid, MAX_OCTAL_8);
    let gid = numeric("gid", entry.gid, MAX_OCTAL_8);
    let size = numeric("size", entry.size, MAX_OCTAL_12);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(size);
    match u64::try_from(entry.mtime) {
        Ok(t) if t <= MAX_OCTAL_12 => h.set_mtime(t),
        _ => {
            records.push((b"mtime".to_vec(), entry.mtime.to_string().into_bytes()));
            h.set_mtime(0);
        }
    }

    if let Some((major, minor)) = entry.device {
        // Values over 7 octal digits fall back to the tar crate's GNU base-256 encoding; Linux
        // device numbers are that large only for dynamically allocated majors over 2097151.
        h.set_device_major(major)
            .expect("ustar headers have device fields");
        h.set_device_minor(minor)
            .expect("ustar headers have device fields");
    }

    for (name, value) in &entry.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        records.push((key, value.clone()));
    }
    records.sort();

    let mut pax = Vec::new();
    for (key, value) in &records {
        push_record(&mut pax, key, value);
    }
    h.set_cksum();
    (pax, h)
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record
/// including its own digits.
fn push_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while rest + decimal_digits(len) != len {
        len = rest + decimal_digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_record(&mut out, key.as_bytes(), value);
        out
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        // "9 path=a\n" is 9 bytes; one more value byte crosses to a two-digit length.
        assert_eq!(record("path", b"a"), b"9 path=a\n");
        assert_eq!(record("path", b"ab"), b"11 path=ab\n");
        for n in 0..2000 {
            let r = record("k", &vec![b'x'; n]);
            let space = r.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&r[..space]).unwrap().parse().unwrap();
            assert_eq!(len, r.len(), "value length {n}");
        }
    }

    #[test]
    fn a_file_shorter_than_its_header_is_an_error_not_a_short_entry() {
        let mut tar = TarWriter::new(Vec::new());
        let mut entry = Entry::marker(b"f".to_vec(), 0);
        entry.size = 10;
        let err = tar
            .append(&entry, Some(&mut &b"short"[..]), Path::new("/x/f"))
            .unwrap_err();
        match err {
            Error::FileChanged {
                path,
                expected,
                actual,
            } => {
                assert_eq!(
                    (path.as_path(), expected, actual),
                    (Path::new("/x/f"), 10, 5)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_longer_than_its_header_is_an_error_too() {
        let mut tar = TarWriter::new(Vec::new());
        let mut entry = Entry::marker(b"f".to_vec(), 0);
        entry.size = 3;
        let err = tar
            .append(&entry, Some(&mut &b"abcdef"[..]), Path::new("f"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::FileChanged {
                    expected: 3,
                    actual: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn data_is_padded_to_whole_blocks() {
        let mut tar = TarWriter::new(Vec::new());
        let mut entry = Entry::marker(b"f".to_vec(), 0);
        entry.size = 3;
        tar.append(&entry, Some(&mut &b"abc"[..]), Path::new("f"))
            .unwrap();
        let out = tar.finish().unwrap();
        assert_eq!(out.len(), 512 + 512 + 1024);
        assert_eq!(&out[512..515], b"abc");
        assert!(out[515..].iter().all(|&b| b == 0));
    }

    #[test]
    fn oversized_numbers_go_to_pax_and_zero_the_field() {
        let mut e = Entry::marker(b"f".to_vec(), -5);
        e.uid = 3_000_000;
        let (pax, h) = encode(&e);
        let text = String::from_utf8(pax).unwrap();
        assert_eq!(text, "12 mtime=-5\n15 uid=3000000\n");
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.mtime().unwrap(), 0);
    }
}
