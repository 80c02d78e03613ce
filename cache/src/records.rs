//! Cache records (`cache_keys`), layer records (`layers`) and the contenthash memo
//! (`contenthash`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use dray_llb::Digest;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::db::{digest_at, from_ms, now_ms, to_ms};
use crate::error::{Error, Result};
use crate::snapshots::{Committed, SnapshotId, load_committed};
use crate::store::Store;

/// A cache record: which snapshot a cache key resolved to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// The cache key (architecture B3).
    pub key: Digest,
    /// The committed result.
    pub snapshot: SnapshotId,
    /// The key's preimage as JSON, for `cache inspect` and `--explain-cache`.
    pub preimage: String,
    /// When it was first saved.
    pub created: SystemTime,
    /// When it was last saved or looked up (LRU order for prune).
    pub last_used: SystemTime,
}

/// A layer record: the blob exported from a snapshot in one media type (compression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// The snapshot the layer was made from.
    pub snapshot: SnapshotId,
    /// The layer media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// The digest of the (compressed) blob in the content store.
    pub blob: Digest,
    /// The blob's size in bytes.
    pub size: u64,
}

/// The `stat` fields that stand for a file's content in the contenthash memo (as git's index
/// does): if all are unchanged, the memoized digest is reused without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` in nanoseconds.
    pub mtime_ns: i64,
    /// `st_ctime` in nanoseconds (changes on chmod, chown, link and any write).
    pub ctime_ns: i64,
}

/// The memoized digests of one contenthash scope, by path ([`Store::contenthash_scope`]).
/// Keys are the raw path bytes: hashing a `Path` walks its components, which showed up in a
/// no-op build's profile for a context of many files.
#[derive(Debug, Clone, Default)]
pub struct MemoScope {
    entries: HashMap<Box<[u8]>, (FileStamp, Digest)>,
}

impl MemoScope {
    /// The stamp and digest memoized for `path`.
    pub fn get(&self, path: &Path) -> Option<&(FileStamp, Digest)> {
        self.entries.get(path_bytes(path))
    }

    /// How many paths are memoized.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is memoized.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Stamps whose ctime is this close to now are not memoized: the file could still change within
/// the timestamp granularity without changing its stamp ("racily clean" in git's terms).
const RACY_WINDOW: Duration = Duration::from_secs(2);

impl FileStamp {
    /// The stamp of `meta` (from `symlink_metadata`).
    pub fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }
}

impl Store {
    /// The snapshot saved under `key`, with its chain, and bumps the record's `last_used`.
    /// `None` if there is no record.
    pub fn lookup(&self, key: &Digest) -> Result<Option<Committed>> {
        // One transaction, so a concurrent removal cannot slip between the record and its chain.
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin lookup"))?;
        let snapshot: Option<String> = tx
            .query_row(
                "UPDATE cache_keys SET last_used = max(last_used, ?2) WHERE key = ?1
                 RETURNING snapshot",
                params![key.to_string(), now_ms()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::db("look up cache key"))?;
        let Some(id) = snapshot else { return Ok(None) };
        // The foreign key guarantees the snapshot row exists.
        let committed = load_committed(&tx, &SnapshotId::from_db(id))?;
        tx.commit().map_err(Error::db("commit lookup"))?;
        Ok(committed)
    }

    /// [`lookup`](Store::lookup) without its write: the record and its snapshot (with the
    /// chain), read in one read transaction. `last_used` is left alone; bump it with
    /// [`touch`](Store::touch), which takes a build's hits in one transaction, so a build that
    /// only hits the cache need not write per step (a write transaction is the one database
    /// cost a no-op build would otherwise pay for each step).
    pub fn find(&self, key: &Digest) -> Result<Option<(CacheRecord, Committed)>> {
        let mut conn = self.db();
        // DEFERRED: a read transaction, so the record and its chain are one consistent view.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(Error::db("begin lookup"))?;
        let record = tx
            .query_row(
                "SELECT key, snapshot, preimage, created, last_used FROM cache_keys WHERE key = ?1",
                [key.to_string()],
                record_from_row,
            )
            .optional()
            .map_err(Error::db("look up cache key"))?;
        let Some(record) = record else {
            return Ok(None);
        };
        // The foreign key guarantees the snapshot row exists.
        let committed = load_committed(&tx, &record.snapshot)?;
        tx.commit().map_err(Error::db("end lookup"))?;
        Ok(committed.map(|c| (record, c)))
    }

    /// Bumps `last_used` of the records of `keys` to now, in one transaction (what
    /// [`lookup`](Store::lookup) does for one key). Keys without a record are skipped.
    pub fn touch(&self, keys: &[Digest]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin touch"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE cache_keys SET last_used = max(last_used, ?2) WHERE key = ?1",
                )
                .map_err(Error::db("touch cache records"))?;
            let now = now_ms();
            for key in keys {
                stmt.execute(params![key.to_string(), now])
                    .map_err(Error::db("touch cache records"))?;
            }
        }
        tx.commit().map_err(Error::db("commit touch"))
    }

    /// Records that `key` resolves to `result`. `preimage_json` must be valid JSON. Overwrites an
    /// earlier record for the same key (keeping its `created`).
    ///
    /// `result` must be a committed snapshot of this store; a [`Committed`] can only come from
    /// [`Store::commit`] or a lookup, and the database re-checks the row (foreign key), so a
    /// record never points to missing content.
    pub fn save(&self, key: &Digest, preimage_json: &str, result: &Committed) -> Result<()> {
        serde_json::from_str::<serde::de::IgnoredAny>(preimage_json)
            .map_err(|source| Error::InvalidPreimage { key: *key, source })?;
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin save"))?;
        require_snapshot(&tx, &result.id)?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO cache_keys (key, snapshot, preimage, created, last_used)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (key) DO UPDATE SET
                 snapshot = excluded.snapshot,
                 preimage = excluded.preimage,
                 last_used = excluded.last_used",
            params![key.to_string(), result.id.as_str(), preimage_json, now],
        )
        .map_err(Error::db("save cache record"))?;
        tx.commit().map_err(Error::db("commit cache record"))
    }

    /// The full record for `key` (does not bump `last_used`).
    pub fn cache_record(&self, key: &Digest) -> Result<Option<CacheRecord>> {
        self.db()
            .query_row(
                "SELECT key, snapshot, preimage, created, last_used FROM cache_keys WHERE key = ?1",
                [key.to_string()],
                record_from_row,
            )
            .optional()
            .map_err(Error::db("read cache record"))
    }

    /// Every cache record, least recently used first (prune order).
    pub fn cache_records(&self) -> Result<Vec<CacheRecord>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT key, snapshot, preimage, created, last_used FROM cache_keys
                 ORDER BY last_used, key",
            )
            .map_err(Error::db("list cache records"))?;
        stmt.query_map([], record_from_row)
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list cache records"))
    }

    /// Deletes the record for `key`; `Ok(false)` if there was none. The snapshot stays.
    pub fn forget(&self, key: &Digest) -> Result<bool> {
        let n = self
            .db()
            .execute("DELETE FROM cache_keys WHERE key = ?1", [key.to_string()])
            .map_err(Error::db("delete cache record"))?;
        Ok(n > 0)
    }

    /// Memoizes an exported layer. The blob must already be in the content store, and the
    /// snapshot committed, so a layer record never points to missing content.
    pub fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        if !self.blobs().contains(&layer.blob)? {
            return Err(Error::BlobNotFound { digest: layer.blob });
        }
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin layer record"))?;
        require_snapshot(&tx, &layer.snapshot)?;
        insert_layer(&tx, layer)?;
        tx.commit().map_err(Error::db("commit layer record"))
    }

    /// The layer record of `snapshot` in `media_type`, if it was exported before.
    pub fn layer(&self, snapshot: &SnapshotId, media_type: &str) -> Result<Option<LayerRecord>> {
        self.db()
            .query_row(
                "SELECT snapshot, media_type, diff_id, blob, size FROM layers
                 WHERE snapshot = ?1 AND media_type = ?2",
                params![snapshot.as_str(), media_type],
                layer_from_row,
            )
            .optional()
            .map_err(Error::db("read layer record"))
    }

    /// Every layer record of `snapshot` (one per media type).
    pub fn layers(&self, snapshot: &SnapshotId) -> Result<Vec<LayerRecord>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT snapshot, media_type, diff_id, blob, size FROM layers
                 WHERE snapshot = ?1 ORDER BY media_type",
            )
            .map_err(Error::db("list layer records"))?;
        stmt.query_map([snapshot.as_str()], layer_from_row)
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list layer records"))
    }

    /// The memoized content digest of `path` in `scope`, if the file's stamp is unchanged since
    /// it was memoized. `scope` names the tree the path is relative to (e.g. the build context's
    /// absolute path, or a snapshot ID); the caller decides what the digest covers.
    pub fn contenthash_get(
        &self,
        scope: &str,
        path: &Path,
        stamp: &FileStamp,
    ) -> Result<Option<Digest>> {
        self.db()
            .query_row(
                "SELECT digest FROM contenthash
                 WHERE scope = ?1 AND path = ?2 AND dev = ?3 AND ino = ?4 AND size = ?5
                   AND mtime_ns = ?6 AND ctime_ns = ?7",
                params![
                    scope,
                    path_bytes(path),
                    stamp.dev as i64,
                    stamp.ino as i64,
                    stamp.size as i64,
                    stamp.mtime_ns,
                    stamp.ctime_ns
                ],
                |r| digest_at(r, 0),
            )
            .optional()
            .map_err(Error::db("read contenthash memo"))
    }

    /// Memoizes `digest` for `path` in `scope` under `stamp`. Returns `false` (and stores
    /// nothing) when the stamp's ctime is within two seconds of now: such a file could change
    /// again without changing its stamp.
    pub fn contenthash_put(
        &self,
        scope: &str,
        path: &Path,
        stamp: &FileStamp,
        digest: &Digest,
    ) -> Result<bool> {
        let racy_after = to_ms(SystemTime::now() - RACY_WINDOW) as i128 * 1_000_000;
        if i128::from(stamp.ctime_ns) >= racy_after {
            return Ok(false);
        }
        self.db()
            .execute(
                "INSERT OR REPLACE INTO contenthash
                     (scope, path, dev, ino, size, mtime_ns, ctime_ns, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    scope,
                    path_bytes(path),
                    stamp.dev as i64,
                    stamp.ino as i64,
                    stamp.size as i64,
                    stamp.mtime_ns,
                    stamp.ctime_ns,
                    digest.to_string()
                ],
            )
            .map_err(Error::db("save contenthash memo"))?;
        Ok(true)
    }

    /// Every memoized content digest of `scope`, by path, in one query: a tree walk looks its
    /// files up in the map instead of running one SQLite read transaction per file.
    pub fn contenthash_scope(&self, scope: &str) -> Result<MemoScope> {
        let conn = self.db();
        let mut stmt = conn
            .prepare_cached(
                "SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM contenthash
                 WHERE scope = ?1",
            )
            .map_err(Error::db("read contenthash memo"))?;
        let mut rows = stmt
            .query([scope])
            .map_err(Error::db("read contenthash memo"))?;
        let mut entries = HashMap::new();
        // Columns are borrowed, not copied into Strings: a scope can hold a row for every
        // file of a large context, and a no-op build reads them all.
        while let Some(r) = rows.next().map_err(Error::db("read contenthash memo"))? {
            let path: Box<[u8]> = r
                .get_ref(0)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(Error::db("read contenthash memo"))?
                .into();
            let stamp = FileStamp {
                dev: r
                    .get::<_, i64>(1)
                    .map_err(Error::db("read contenthash memo"))? as u64,
                ino: r
                    .get::<_, i64>(2)
                    .map_err(Error::db("read contenthash memo"))? as u64,
                size: r
                    .get::<_, i64>(3)
                    .map_err(Error::db("read contenthash memo"))? as u64,
                mtime_ns: r.get(4).map_err(Error::db("read contenthash memo"))?,
                ctime_ns: r.get(5).map_err(Error::db("read contenthash memo"))?,
            };
            let text = r
                .get_ref(6)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(Error::db("read contenthash memo"))?;
            // A row that does not parse is a miss, not an error: the memo is only a shortcut.
            if let Ok(digest) = text.parse::<Digest>() {
                entries.insert(path, (stamp, digest));
            }
        }
        Ok(MemoScope { entries })
    }

    /// Memoizes many digests of `scope` in one transaction (one commit, so one WAL sync
    /// instead of one per file). Racily clean stamps are skipped as in
    /// [`contenthash_put`](Store::contenthash_put); returns how many were stored.
    pub fn contenthash_put_many<'a>(
        &self,
        scope: &str,
        entries: impl IntoIterator<Item = (&'a Path, &'a FileStamp, &'a Digest)>,
    ) -> Result<usize> {
        let racy_after = to_ms(SystemTime::now() - RACY_WINDOW) as i128 * 1_000_000;
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("save contenthash memo"))?;
        let mut stored = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO contenthash
                         (scope, path, dev, ino, size, mtime_ns, ctime_ns, digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(Error::db("save contenthash memo"))?;
            for (path, stamp, digest) in entries {
                if i128::from(stamp.ctime_ns) >= racy_after {
                    continue;
                }
                stmt.execute(params![
                    scope,
                    path_bytes(path),
                    stamp.dev as i64,
                    stamp.ino as i64,
                    stamp.size as i64,
                    stamp.mtime_ns,
                    stamp.ctime_ns,
                    digest.to_string()
                ])
                .map_err(Error::db("save contenthash memo"))?;
                stored += 1;
            }
        }
        tx.commit().map_err(Error::db("save contenthash memo"))?;
        Ok(stored)
    }
}

/// Paths are stored as raw bytes: Linux paths need not be UTF-8.
fn path_bytes(p: &Path) -> &[u8] {
    OsStr::as_bytes(p.as_os_str())
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CacheRecord> {
    Ok(CacheRecord {
        key: digest_at(r, 0)?,
        snapshot: SnapshotId::from_db(r.get(1)?),
        preimage: r.get(2)?,
        created: from_ms(r.get(3)?),
        last_used: from_ms(r.get(4)?),
    })
}

fn layer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRecord> {
    Ok(LayerRecord {
        snapshot: SnapshotId::from_db(r.get(0)?),
        media_type: r.get(1)?,
        diff_id: digest_at(r, 2)?,
        blob: digest_at(r, 3)?,
        size: r.get::<_, i64>(4)? as u64,
    })
}

/// Fails with [`Error::SnapshotNotFound`] unless `id` is a committed snapshot, checked inside
/// the caller's transaction so the row cannot vanish before the record referencing it lands.
fn require_snapshot(tx: &rusqlite::Transaction<'_>, id: &SnapshotId) -> Result<()> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM snapshots WHERE id = ?1",
            [id.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map_err(Error::db("check snapshot"))?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(Error::SnapshotNotFound { id: id.clone() })
    }
}

/// Inserts (or replaces) the `layers` row of `layer` with `conn` (a transaction whose caller
/// checked the blob and the snapshot).
pub(crate) fn insert_layer(conn: &rusqlite::Connection, layer: &LayerRecord) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO layers (snapshot, media_type, diff_id, blob, size)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            layer.snapshot.as_str(),
            layer.media_type,
            layer.diff_id.to_string(),
            layer.blob.to_string(),
            layer.size as i64
        ],
    )
    .map_err(Error::db("save layer record"))?;
    Ok(())
}
