//! When a step's snapshot reaches the disk: one `syncfs(2)` per build, not one per step.
//!
//! Syncing the filesystem after every step made its durability cost grow with the number of
//! steps (and with whatever else the machine had dirty), and it dominated short `RUN` steps
//! and small edits. Yet only a crash of the *machine* can lose data that a process wrote: a
//! killed process leaves its writes in the page cache, which the kernel writes back. So a
//! step's snapshot is committed without a sync, stamped with the **boot ID** of the running
//! kernel (`/proc/sys/kernel/random/boot_id`), and the build syncs once, at its end
//! ([`Store::sync_snapshots`]), clearing the stamps. A stamp from **another** boot means the
//! machine went down before that sync: the snapshot's files may be incomplete. Every open of
//! the store then drops the cache records of such snapshots ([`Store::drop_unsynced`]), so they
//! can never be hit again, and prune removes them like any other snapshot without records.
//!
//! | `snapshots.unsynced_boot` | meaning |
//! |---|---|
//! | `NULL` | the snapshot's files were synced (or it was committed with a sync) |
//! | this boot's ID | committed in this boot, not synced yet: as good as synced unless the machine crashes |
//! | another boot's ID | the machine went down before the sync: its records are dropped at open |
//!
//! Only step results (`diff` and `lazy` snapshots, reached through cache records) are
//! committed this way; unpacked base layers, found by ChainID, are synced at commit.

use std::sync::OnceLock;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::store::Store;

/// The running kernel's boot ID, or `None` where `/proc` does not tell (then every commit
/// syncs at once, as before).
pub(crate) fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

impl Store {
    /// Makes every snapshot committed unsynced in this boot durable: one `syncfs(2)` of the
    /// store's filesystem, then the stamps of the snapshots that existed before it are cleared.
    /// A build calls it once at its end. Returns how many snapshots it covered.
    pub fn sync_snapshots(&self) -> Result<usize> {
        let Some(boot) = boot_id() else {
            return Ok(0);
        };
        let ids: Vec<String> = {
            let conn = self.db();
            let mut stmt = conn
                .prepare_cached("SELECT id FROM snapshots WHERE unsynced_boot = ?1")
                .map_err(Error::db("list unsynced snapshots"))?;
            stmt.query_map([boot], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list unsynced snapshots"))?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        // Only the snapshots listed *before* the sync are covered by it: one committed by a
        // concurrent build meanwhile keeps its stamp until its own build syncs.
        let dir = self.root().snapshots_dir();
        let fd = std::fs::File::open(&dir).map_err(Error::io("open", &dir))?;
        rustix::fs::syncfs(&fd).map_err(|e| Error::Io {
            action: "syncfs",
            path: dir.clone(),
            source: e.into(),
        })?;
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin sync"))?;
        for id in &ids {
            tx.execute(
                "UPDATE snapshots SET unsynced_boot = NULL WHERE id = ?1",
                [id],
            )
            .map_err(Error::db("mark snapshot synced"))?;
        }
        tx.commit().map_err(Error::db("commit sync"))?;
        Ok(ids.len())
    }

    /// Drops the cache records of snapshots left unsynced by an earlier boot (the machine went
    /// down before their build synced them), so that no build reuses files that may be
    /// incomplete. Cheap when there are none (one indexed query). Returns how many records
    /// were dropped.
    pub(crate) fn drop_unsynced(&self) -> Result<usize> {
        match boot_id() {
            Some(boot) => self.drop_unsynced_in(boot),
            None => Ok(0),
        }
    }

    /// [`Store::drop_unsynced`] as if the running boot were `boot`.
    fn drop_unsynced_in(&self, boot: &str) -> Result<usize> {
        let suspect: Option<String> = self
            .db()
            .query_row(
                "SELECT id FROM snapshots WHERE unsynced_boot IS NOT NULL AND unsynced_boot != ?1
                 LIMIT 1",
                [boot],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::db("look for unsynced snapshots"))?;
        if suspect.is_none() {
            return Ok(0);
        }
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin dropping unsynced records"))?;
        // A snapshot built on a suspect one is suspect too (its build never synced either),
        // and so is stamped with the same old boot: one condition covers both.
        let n = tx
            .execute(
                "DELETE FROM cache_keys WHERE snapshot IN (
                     SELECT id FROM snapshots
                     WHERE unsynced_boot IS NOT NULL AND unsynced_boot != ?1)",
                params![boot],
            )
            .map_err(Error::db("drop records of unsynced snapshots"))?;
        tx.commit()
            .map_err(Error::db("commit dropping unsynced records"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;
    use crate::root::Root;

    #[test]
    fn boot_id_is_read_from_proc() {
        let id = boot_id().expect("Linux has /proc/sys/kernel/random/boot_id");
        assert_eq!(id.len(), 36, "{id}");
    }

    fn unsynced(store: &Store) -> i64 {
        store
            .db()
            .query_row(
                "SELECT count(*) FROM snapshots WHERE unsynced_boot IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn records_of_snapshots_a_crash_left_unsynced_are_dropped_and_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Root::at(dir.path())).unwrap();
        let commit = |name: &str| {
            let a = store.prepare(None).unwrap();
            std::fs::write(a.fs().join(name), name).unwrap();
            store.commit(a, name).unwrap()
        };
        let synced = commit("synced");
        store.save(&Digest::of("synced"), "{}", &synced).unwrap();
        // A step commits without a sync, stamped with this boot; the build's end syncs.
        assert_eq!(unsynced(&store), 1);
        assert_eq!(store.sync_snapshots().unwrap(), 1);
        assert_eq!(unsynced(&store), 0);
        let pending = commit("pending");
        store.save(&Digest::of("pending"), "{}", &pending).unwrap();
        assert_eq!(unsynced(&store), 1);

        // In this boot nothing is suspect...
        assert_eq!(store.drop_unsynced().unwrap(), 0);
        assert!(store.lookup(&Digest::of("pending")).unwrap().is_some());
        // ...after a crash (another boot), the unsynced snapshot's record goes, the synced
        // one's stays.
        assert_eq!(store.drop_unsynced_in("another-boot").unwrap(), 1);
        assert!(store.lookup(&Digest::of("pending")).unwrap().is_none());
        assert!(store.lookup(&Digest::of("synced")).unwrap().is_some());
    }
}
