//! Claims on chosen snapshot IDs: one holder at a time prepares a snapshot whose ID is fixed in
//! advance (a base layer's ChainID), so that builds unpacking the same layer at once neither
//! fail nor do the work twice: the second waits for the first, then finds the snapshot
//! committed.
//!
//! A claim is an exclusive `flock(2)` on `tmp/claim-<id>`. The kernel drops it when its holder
//! dies, so a killed unpack never blocks anyone: the next claimant finds the dead holder's
//! `snapshots/<id>` without a `snapshots` row and deletes it before preparing its own (nobody
//! else can be writing it while the claim is held). The holder deletes the lock file when it
//! lets go; a waiter that then gets the lock on the deleted file sees that the path no longer
//! names the file it locked, and tries again.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::snapshots::{Active, Committed, SnapshotId, SnapshotKind, load_committed};
use crate::store::Store;

/// What [`Store::claim`] found.
#[derive(Debug)]
pub enum Claimed {
    /// The snapshot is committed (perhaps by another build while this one waited).
    Committed(Committed),
    /// The snapshot is prepared, empty, for the caller to fill and then commit with
    /// [`Store::commit_claimed`]. Dropping it deletes the directory, then releases the claim.
    Prepared(ClaimedActive),
}

/// A snapshot being prepared under a claim on its ID. See [`Claimed::Prepared`].
#[derive(Debug)]
pub struct ClaimedActive {
    // Field order is drop order: the directory goes before the claim is released, so that no
    // waiter ever sees this holder's half-written directory.
    active: Active,
    _claim: ClaimLock,
}

impl ClaimedActive {
    /// The snapshot's ID.
    pub fn id(&self) -> &SnapshotId {
        self.active.id()
    }

    /// `snapshots/<id>/fs`, to fill.
    pub fn fs(&self) -> PathBuf {
        self.active.fs()
    }

    /// The snapshot it is prepared on.
    pub fn parent(&self) -> Option<&Committed> {
        self.active.parent()
    }
}

/// The held `flock`; unlinks its file, then unlocks (by closing it), on drop.
#[derive(Debug)]
pub(crate) struct ClaimLock {
    path: PathBuf,
    _file: File,
}

impl Drop for ClaimLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock: a waiter that gets the lock afterwards sees
        // that the path is gone (or names a newer file) and starts over.
        let _ = fs::remove_file(&self.path);
    }
}

impl ClaimLock {
    pub(crate) fn acquire(path: &Path) -> Result<ClaimLock> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(Error::io("open claim file", path))?;
            file.lock().map_err(Error::io("lock", path))?;
            let locked = file.metadata().map_err(Error::io("stat", path))?;
            match fs::metadata(path) {
                Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                    return Ok(ClaimLock {
                        path: path.to_owned(),
                        _file: file,
                    });
                }
                // The previous holder let go and unlinked the file we locked: try again.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        action: "stat",
                        path: path.to_owned(),
                        source: e,
                    });
                }
            }
        }
    }
}

impl Store {
    /// Claims the snapshot ID `id`, waiting while another build (in this or another process)
    /// holds it, and returns the committed snapshot if there is one by then, or else a new
    /// snapshot prepared on `parent` under the claim.
    ///
    /// Snapshots with chosen IDs must all be prepared this way (not with
    /// [`Store::prepare_with_id`]): a claimant deletes an uncommitted `snapshots/<id>` it
    /// finds, taking it for the remains of a holder that died. Blocks the calling thread.
    pub fn claim(&self, parent: Option<&Committed>, id: SnapshotId) -> Result<Claimed> {
        let lock_path = self.root().tmp_dir().join(format!("claim-{id}"));
        let claim = ClaimLock::acquire(&lock_path)?;
        if let Some(committed) = load_committed(&self.db(), &id)? {
            return Ok(Claimed::Committed(committed));
        }
        let dir = self.root().snapshot_dir(&id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    action: "remove the remains of an unpack in",
                    path: dir,
                    source: e,
                });
            }
        }
        let active = self.prepare_with_id(parent, id)?;
        Ok(Claimed::Prepared(ClaimedActive {
            active,
            _claim: claim,
        }))
    }

    /// Commits a snapshot prepared under a claim ([`Store::commit_as`]), then releases the
    /// claim: waiters find it committed.
    pub fn commit_claimed(
        &self,
        claimed: ClaimedActive,
        kind: SnapshotKind,
        description: &str,
    ) -> Result<Committed> {
        let ClaimedActive { active, _claim } = claimed;
        self.commit_as(active, kind, description)
    }
}
