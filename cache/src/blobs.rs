//! The content store: `blobs/sha256/<hex>`, written through `ingest/`.
//!
//! A blob becomes visible only by `rename(2)` of a complete, hashed, size-checked and fsynced
//! temp file from `ingest/` (same filesystem, so the rename is atomic). Readers therefore see
//! either nothing or the whole verified blob. A writer killed half-way leaves only an `ingest/`
//! file, which [`crate::Store::open_exclusive`] (prune, `rmi`) deletes; shared opens (builds,
//! pulls) leave `ingest/` alone.
//!
//! | `ingest/` file | made by | on drop without commit | on a failed verification |
//! |---|---|---|---|
//! | `blob-<random>` | [`ContentStore::writer`] (digest unknown in advance) | deleted | deleted |
//! | `<hex>.partial` | [`ContentStore::resumable_writer`] (a download of a known digest) | **kept**, so the next run resumes it | deleted |
//!
//! A `.partial` file holds a prefix of the blob `sha256:<hex>`, its length being the bytes
//! written. Whoever writes it holds an exclusive `flock` on it, so two processes never append to
//! the same partial (the second gets a private `blob-*` writer instead). Its bytes are not
//! trusted: reopening re-hashes them, and the commit checks digest and size over the whole file.

use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dray_llb::Digest;
use sha2::{Digest as _, Sha256};
use tempfile::TempPath;

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
        let (file, path) = file.into_parts();
        Ok(BlobWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            ingest: Ingest::Temp(path),
            hasher: Sha256::new(),
            size: 0,
            blobs_dir: self.root.blobs_dir(),
        })
    }

    /// Starts or resumes the download of the blob `expected` (`size` bytes) in
    /// `ingest/<hex>.partial`: the returned writer already holds the bytes an earlier, interrupted
    /// writer left there ([`BlobWriter::written`]; continue from that offset), and dropping it
    /// without [`BlobWriter::commit`] keeps them for the next try. Use
    /// [`BlobWriter::discard`] when the bytes are known to be bad.
    ///
    /// If another process is writing that partial right now, this returns a private
    /// [`ContentStore::writer`] instead (both downloads are verified; the second commit is a
    /// no-op).
    pub fn resumable_writer(&self, expected: &Digest, size: u64) -> Result<BlobWriter> {
        let path = self
            .root
            .ingest_dir()
            .join(format!("{}.partial", expected.hex()));
        // Bounded: a retry is only needed when another process published or discarded the
        // partial between our open and our lock, which cannot repeat forever in practice.
        for _ in 0..3 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(Error::io("open partial blob", &path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return self.writer(),
                Err(TryLockError::Error(e)) => {
                    return Err(Error::Io {
                        action: "lock partial blob",
                        path,
                        source: e,
                    });
                }
            }
            // The classic lock-file race: the holder we waited for may have renamed this inode
            // into `blobs/` (or deleted it) before we got the lock. Then our lock is on a file
            // that is no longer the partial, and writing to it would change a published blob.
            let opened = file
                .metadata()
                .map_err(Error::io("stat partial blob", &path))?;
            let still_there = fs::symlink_metadata(&path)
                .is_ok_and(|m| m.ino() == opened.ino() && m.dev() == opened.dev());
            if !still_there {
                continue;
            }
            return self.resume_from(file, path, size);
        }
        self.writer()
    }

    /// A writer continuing `file` (locked): re-hashes what it holds, or empties it when it is
    /// longer than the blob can be.
    fn resume_from(&self, mut file: File, path: PathBuf, size: u64) -> Result<BlobWriter> {
        let mut hasher = Sha256::new();
        let mut held = io::copy(&mut (&file).take(size + 1), &mut HashWriter(&mut hasher))
            .map_err(Error::io("read partial blob", &path))?;
        if held > size {
            file.set_len(0)
                .map_err(Error::io("truncate partial blob", &path))?;
            hasher = Sha256::new();
            held = 0;
        }
        file.seek(SeekFrom::Start(held))
            .map_err(Error::io("seek partial blob", &path))?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            ingest: Ingest::Partial(path),
            hasher,
            size: held,
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

/// Buffer between the hasher and the `ingest/` file.
const WRITE_BUFFER: usize = 128 * 1024;

/// Writes one blob: hashes while writing into `ingest/`, then [`BlobWriter::commit`] verifies and
/// publishes it. Dropping it without commit deletes a temp file and keeps a partial download
/// (see the module table).
#[derive(Debug)]
pub struct BlobWriter {
    file: BufWriter<File>,
    ingest: Ingest,
    hasher: Sha256,
    size: u64,
    blobs_dir: PathBuf,
}

/// The `ingest/` file behind a [`BlobWriter`].
#[derive(Debug)]
enum Ingest {
    /// `blob-<random>`, deleted when dropped.
    Temp(TempPath),
    /// `<hex>.partial`, kept when dropped (the writer's open file holds its `flock`).
    Partial(PathBuf),
}

impl Ingest {
    fn path(&self) -> &Path {
        match self {
            Ingest::Temp(p) => p,
            Ingest::Partial(p) => p,
        }
    }

    /// Deletes the file now (a `Temp` would be deleted on drop anyway).
    fn remove(self) {
        if let Ingest::Partial(p) = self {
            let _ = fs::remove_file(p);
        }
    }
}

impl BlobWriter {
    /// Bytes written so far (for a resumed download, including those of earlier runs).
    pub fn written(&self) -> u64 {
        self.size
    }

    /// The temp file under `ingest/` (for error messages).
    pub fn temp_path(&self) -> &Path {
        self.ingest.path()
    }

    /// Throws away what was written and starts the blob over in the same file (a server that
    /// ignored a `Range` request sends the whole blob again).
    pub fn restart(&mut self) -> Result<()> {
        let path = self.ingest.path().to_path_buf();
        self.file.flush().map_err(Error::io("flush", &path))?;
        let file = self.file.get_mut();
        file.set_len(0).map_err(Error::io("truncate", &path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io("seek", &path))?;
        self.hasher = Sha256::new();
        self.size = 0;
        Ok(())
    }

    /// Deletes what was written, partial download included (its bytes are known to be bad).
    pub fn discard(self) {
        let BlobWriter { file, ingest, .. } = self;
        drop(file);
        ingest.remove();
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
            ingest,
            hasher,
            size,
            blobs_dir,
        } = self;
        let file = match file.into_inner() {
            Ok(f) => f,
            Err(e) => {
                let source = e.into_error();
                let path = ingest.path().to_path_buf();
                ingest.remove();
                return Err(Error::Io {
                    action: "flush",
                    path,
                    source,
                });
            }
        };
        let found = Digest::from_bytes(hasher.finalize().into());
        if let Some((want, want_size)) = expected {
            let mismatch = if want_size != size {
                Some(Error::SizeMismatch {
                    digest: want,
                    expected: want_size,
                    found: size,
                })
            } else if want != found {
                Some(Error::DigestMismatch {
                    expected: want,
                    found,
                })
            } else {
                None
            };
            if let Some(error) = mismatch {
                drop(file);
                ingest.remove();
                return Err(error);
            }
        }
        let target = blobs_dir.join(found.hex());
        // Already published (a rebuild exporting the same config or manifest): a blob is only
        // ever renamed into place complete, verified and fsynced, so the existing file is these
        // bytes. Dropping the temp file skips two fsyncs per blob on a no-op build.
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size) {
            drop(file);
            ingest.remove();
            return Ok(BlobInfo {
                digest: found,
                size,
            });
        }
        let temp = ingest.path().to_path_buf();
        file.set_permissions(Permissions::from_mode(BLOB_MODE))
            .map_err(Error::io("chmod", &temp))?;
        file.sync_all().map_err(Error::io("fsync", &temp))?;
        let renamed = match ingest {
            Ingest::Temp(path) => path.persist(&target).map_err(|e| e.error),
            Ingest::Partial(path) => fs::rename(&path, &target),
        };
        renamed.map_err(|e| Error::Io {
            action: "rename blob into",
            path: target,
            source: e,
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
