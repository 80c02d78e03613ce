//! The store-wide `flock` on `<root>/lock`.
//!
//! Shared for normal use (builds, `images`, `cache ls`); exclusive for anything that deletes what
//! another process might be using (`cache prune`, crash recovery). The lock lives as long as the
//! open file, i.e. as long as the [`crate::Store`]: the kernel drops it when the process dies, so
//! a killed dray never leaves the root locked.
//!
//! `flock(2)` locks belong to the open file description, so two `Store`s in one process are two
//! independent holders: two shared opens coexist, and an exclusive open waits for (or, with the
//! `try_` variant, fails on) a shared one held by the same process.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders; what builds and read-only commands take.
    Shared,
    /// One holder and no shared holders; what prune and recovery take.
    Exclusive,
}

/// A held lock; released on drop (when the file is closed).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
    mode: LockMode,
}

impl FileLock {
    /// Opens (creating) `path` and locks it. `blocking = false` turns contention into
    /// [`Error::Locked`] instead of waiting.
    pub(crate) fn acquire(path: &Path, mode: LockMode, blocking: bool) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::io("open lock file", path))?;
        let locked = match (mode, blocking) {
            (LockMode::Shared, true) => file.lock_shared().map_err(TryLockError::Error),
            (LockMode::Exclusive, true) => file.lock().map_err(TryLockError::Error),
            (LockMode::Shared, false) => file.try_lock_shared(),
            (LockMode::Exclusive, false) => file.try_lock(),
        };
        match locked {
            Ok(()) => Ok(FileLock { _file: file, mode }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: PathBuf::from(path),
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io {
                action: "lock",
                path: PathBuf::from(path),
                source,
            }),
        }
    }

    pub(crate) fn mode(&self) -> LockMode {
        self.mode
    }
}
