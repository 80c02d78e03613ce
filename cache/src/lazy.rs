//! Lazy snapshots: committed with a partial `fs/` and their whole diff in a layer blob.
//!
//! A step that defers copies (`dray_fsutil::fileop`'s deferred directories) writes its layer
//! blob straight from the copy's source and commits a [`SnapshotKind::Lazy`] snapshot whose
//! `fs/` holds only what the copy wrote outside the deferred directories, each of those marked
//! and empty ([`Store::commit_lazy`] inserts its `layers` row in the same transaction). Nothing
//! reads such an `fs/` as a filesystem except through lookups that stop at the marks. When a
//! step needs the files (an overlay lower dir, a copy source, a local export), the snapshot is
//! **materialized** (by `dray_image`, which can apply layers): under
//! [`Store::lock_materialize`], the layer is unpacked beside `fs/` and each deferred directory
//! is swapped in with one `rename(2)` onto the empty marked one, then
//! [`Store::mark_materialized`] turns the row into a plain [`SnapshotKind::Diff`].
//!
//! | state | `kind` | `fs/` | `layers` row |
//! |---|---|---|---|
//! | committed lazy | `lazy` | partial; marked directories empty | at least one (the blob the step wrote) |
//! | being materialized | `lazy` | some marked directories already replaced | unchanged |
//! | materialized | `diff` | complete | unchanged |
//!
//! Materializing is idempotent and resumable: a process killed half way leaves some marks;
//! the next one (after taking the lock) starts again from the layer and swaps in the rest.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use crate::claim::ClaimLock;
use crate::error::{Error, Result};
use crate::snapshots::{SnapshotId, SnapshotKind, disk_usage};
use crate::store::Store;

/// The exclusive right to materialize one snapshot (an `flock` on
/// `tmp/materialize-<id>`), released on drop.
#[derive(Debug)]
pub struct MaterializeLock {
    _lock: ClaimLock,
}

impl Store {
    /// The kind of the committed snapshot `id`.
    pub fn snapshot_kind(&self, id: &SnapshotId) -> Result<SnapshotKind> {
        let kind: Option<String> = self
            .db()
            .query_row(
                "SELECT kind FROM snapshots WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::db("read snapshot kind"))?;
        let kind = kind.ok_or_else(|| Error::SnapshotNotFound { id: id.clone() })?;
        SnapshotKind::parse(&kind).ok_or_else(|| Error::UnknownSnapshotKind {
            id: id.clone(),
            kind: kind.clone(),
        })
    }

    /// The snapshots among `ids` that are still lazy, in the given order. One query (over the
    /// partial index of lazy snapshots, usually a handful), however long the chain: an exec
    /// step asks this of its whole chain.
    pub fn lazy_among(&self, ids: &[SnapshotId]) -> Result<Vec<SnapshotId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lazy: std::collections::HashSet<String> = {
            let conn = self.db();
            let mut stmt = conn
                .prepare_cached("SELECT id FROM snapshots WHERE kind = 'lazy'")
                .map_err(Error::db("list lazy snapshots"))?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list lazy snapshots"))?
        };
        Ok(ids
            .iter()
            .filter(|id| lazy.contains(id.as_str()))
            .cloned()
            .collect())
    }

    /// Takes the lock under which `id` is materialized, waiting for another holder (in this or
    /// another process). Check [`Store::snapshot_kind`] again once it is held.
    pub fn lock_materialize(&self, id: &SnapshotId) -> Result<MaterializeLock> {
        let path = self.root().tmp_dir().join(format!("materialize-{id}"));
        Ok(MaterializeLock {
            _lock: ClaimLock::acquire(&path)?,
        })
    }

    /// `snapshots/<id>/fill`: where a lazy snapshot's layer is unpacked while it is being
    /// materialized (same filesystem as `fs/`, so its directories can be renamed in).
    pub fn materialize_dir(&self, id: &SnapshotId) -> PathBuf {
        self.root().snapshot_dir(id).join("fill")
    }

    /// Records that the lazy snapshot `id` is now complete on disk (and measures it). Call it
    /// holding [`Store::lock_materialize`], after syncing the filesystem.
    pub fn mark_materialized(&self, id: &SnapshotId) -> Result<()> {
        let size = disk_usage(&self.fs_path(id))?;
        let n = self
            .db()
            .execute(
                "UPDATE snapshots SET kind = 'diff', size = ?2 WHERE id = ?1 AND kind = 'lazy'",
                params![id.as_str(), size as i64],
            )
            .map_err(Error::db("mark snapshot materialized"))?;
        if n == 0 {
            return Err(Error::SnapshotNotFound { id: id.clone() });
        }
        Ok(())
    }
}
