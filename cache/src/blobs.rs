//! The content store: `blobs/sha256/<hex>`, written through `ingest/`.
//!
//! A blob becomes visible only by `rename(2)` of a complete, hashed, size-checked and fsynced
//! temp file from `ingest/` (same filesystem, so the rename is atomic). Readers therefore see
//! either nothing or the whole verified blob. A writer killed half-way leaves only an `ingest/`
//! file, which [`crate::Store::open_exclusive`] deletes.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dray_llb::Digest;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::root::Root;

/// Committed blobs are read-only: content-addressed files must never change in place.
const BLOB_MODE: u32 = 0o444;

/// A digest with its size: what [`BlobWriter::commit`] and [`ContentStore::put_bytes`] return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobInfo {
    /// The sha256 of the content.
    pub digest: Digest,
    /// The length in bytes.
    pub size: u64,
}

/// The `blobs/sha256` directory of a store. Get it from [`crate::Store::blobs`].
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: Root,
}

impl ContentStore {
    pub(crate) fn new(root: Root) -> ContentStore {
        ContentStore { root }
    }

    /// Where the blob is (or would be). Exporters may read or hard-link it; never write it.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.blob_path(digest)
    }

    /// Starts writing a blob whose digest is computed as the bytes go by.
    pub fn writer(&self) -> Result<BlobWriter> {
        let ingest = self.root.ingest_dir();
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&ingest)
            .map_err(Error::io("create temp file in", &ingest))?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(128 * 1024, file),
            hasher: Sha256::new(),
            size: 0,
            blobs_dir: self.root.blobs_dir(),
        })
    }

    /// Stores `bytes` (a config, a manifest). A no-op when the blob is already present.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        let info = BlobInfo {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        if self.contains(&info.digest)? {
            return Ok(info);
        }
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(Error::io("write", w.temp_path()))?;
        w.commit(Some((info.digest, info.size)))
    }

    /// Streams `r` into a new blob, verifying it against `expected` if given.
    pub fn put_reader(
        &self,
        r: &mut impl Read,
        expected: Option<(Digest, u64)>,
    ) -> Result<BlobInfo> {
        let mut w = self.writer()?;
        io::copy(r, &mut w).map_err(|e| Error::Io {
            action: "write",
            path: w.temp_path().to_path_buf(),
            source: e,
        })?;
        w.commit(expected)
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| not_found_or(e, digest, "open blob", &path))
    }

    /// Reads a whole blob into memory (for small JSON blobs).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        fs::read(&path).map_err(|e| not_found_or(e, digest, "read blob", &path))
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> Result<bool> {
        let path = self.path(digest);
        path.try_exists().map_err(Error::io("stat blob", path))
    }

    /// The blob's size in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| not_found_or(e, digest, "stat blob", &path))
    }

    /// Re-hashes a stored blob and fails with [`Error::BlobCorrupt`] if the bytes no longer match
    /// its name. Write-time verification protects against bad input; this catches the disk.
    pub fn verify(&self, digest: &Digest) -> Result<BlobInfo> {
        let path = self.path(digest);
        let mut file = self.open(digest)?;
        let mut hasher = Sha256::new();
        let size = io::copy(&mut file, &mut HashWriter(&mut hasher))
            .map_err(Error::io("read blob", &path))?;
        let found = Digest::from_bytes(hasher.finalize().into());
        if found != *digest {
            return Err(Error::BlobCorrupt {
                digest: *digest,
                path,
                found,
            });
        }
        Ok(BlobInfo {
            digest: found,
            size,
        })
    }

    /// Deletes a blob; `Ok(false)` if it was not there. Only prune (under the exclusive lock)
    /// should call this: a shared holder may be about to reference the blob.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Io {
                action: "remove blob",
                path,
                source: e,
            }),
        }
    }

    /// Every blob present, sorted. Files whose names are not digests are skipped.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes everything in `ingest/`. Only safe with no other writer alive, i.e. under the
    /// exclusive lock.
    pub(crate) fn clean_ingest(&self) -> Result<usize> {
        clear_dir(&self.root.ingest_dir())
    }
}

/// Writes one blob: hashes while writing into `ingest/`, then [`BlobWriter::commit`] verifies and
/// publishes it. Dropping it without commit deletes the temp file.
#[derive(Debug)]
pub struct BlobWriter {
    file: BufWriter<NamedTempFile>,
    hasher: Sha256,
    size: u64,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// The temp file under `ingest/` (for error messages).
    pub fn temp_path(&self) -> &Path {
        self.file.get_ref().path()
    }

    /// Finishes the blob. With `expected = Some((digest, size))` the content must match both, or
    /// the temp file is deleted and [`Error::SizeMismatch`] / [`Error::DigestMismatch`] returned.
    ///
    /// Order: flush, check, `fsync` the file, `rename` into `blobs/sha256/`, `fsync` that
    /// directory. If the digest is already published, the temp file is dropped instead. If
    /// another writer publishes the same digest meanwhile, the rename replaces it with identical
    /// bytes, which readers cannot tell apart.
    pub fn commit(self, expected: Option<(Digest, u64)>) -> Result<BlobInfo> {
        let BlobWriter {
            file,
            hasher,
            size,
            blobs_dir,
        } = self;
        let file = file.into_inner().map_err(|e| {
            let (source, w) = e.into_parts();
            Error::Io {
                action: "flush",
                path: w.get_ref().path().to_path_buf(),
                source,
            }
        })?;
        let found = Digest::from_bytes(hasher.finalize().into());
        if let Some((want, want_size)) = expected {
            if want_size != size {
                return Err(Error::SizeMismatch {
                    digest: want,
                    expected: want_size,
                    found: size,
                });
            }
            if want != found {
                return Err(Error::DigestMismatch {
                    expected: want,
                    found,
                });
            }
        }
        let target = blobs_dir.join(found.hex());
        // Already published (a rebuild exporting the same config or manifest): a blob is only
        // ever renamed into place complete, verified and fsynced, so the existing file is these
        // bytes. Dropping the temp file skips two fsyncs per blob on a no-op build.
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size) {
            return Ok(BlobInfo {
                digest: found,
                size,
            });
        }
        let temp = file.path().to_path_buf();
        file.as_file()
            .set_permissions(Permissions::from_mode(BLOB_MODE))
            .map_err(Error::io("chmod", &temp))?;
        file.as_file()
            .sync_all()
            .map_err(Error::io("fsync", &temp))?;
        file.persist(&target).map_err(|e| Error::Io {
            action: "rename blob into",
            path: target,
            source: e.error,
        })?;
        sync_dir(&blobs_dir)?;
        Ok(BlobInfo {
            digest: found,
            size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn not_found_or(e: io::Error, digest: &Digest, action: &'static str, path: &Path) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::BlobNotFound { digest: *digest }
    } else {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// `fsync` on a directory makes a rename in it durable (see `fsync(2)`: "calling fsync() on the
/// file does not ensure that the entry in the directory containing the file has also reached
/// disk").
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))
}

/// Removes every entry of `dir` (not `dir` itself); returns how many.
pub(crate) fn clear_dir(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(Error::io("stat", &path))?
            .is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(Error::io("remove", &path))?;
        n += 1;
    }
    Ok(n)
}
