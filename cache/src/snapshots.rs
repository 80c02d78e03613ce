//! The snapshot store: `snapshots/<id>/fs` directories, each one layer's diff, with a parent.
//!
//! Life cycle: [`Store::prepare`] creates `snapshots/<id>/{fs,work}` and returns an [`Active`];
//! the caller fills `fs/` (as an overlay upperdir, or by unpacking a layer);
//! [`Store::commit`] removes `work/`, flushes the filesystem, and only then inserts the
//! `snapshots` row, returning a [`Committed`]. An `Active` dropped without commit deletes its
//! directory. A committed snapshot is immutable.
//!
//! **IDs** of prepared snapshots are 32 random-looking hex characters: the sha256 of the pid,
//! the pid's start time, a per-process counter and the clock, truncated. They are unique by
//! construction on one machine (pid + start time identify the process, the counter the call), and
//! the directory is created with `mkdir` that fails on an existing name. They carry no order; use
//! the `created` column for that. Other IDs (a layer's ChainID such as `sha256:<hex>`) can be used
//! through [`Store::claim`], which lets one build at a time prepare them (or
//! [`Store::prepare_with_id`], where nothing else can race).

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use crate::blobs::sync_dir;
use crate::db::{digest_at, from_ms, now_ms};
use crate::error::{Error, Result, SnapshotUser};
use crate::leases::{process_alive, process_start_ticks};
use crate::records::LayerRecord;
use crate::store::Store;

/// A snapshot's ID: 1 to 128 characters from `[a-zA-Z0-9_.:-]`, not starting with `.`, so that it
/// is always one safe path component.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId(String);

impl SnapshotId {
    /// The ID as text (also its directory name).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An ID read back from the database, where only validated IDs are written.
    pub(crate) fn from_db(s: String) -> SnapshotId {
        SnapshotId(s)
    }

    fn generate() -> SnapshotId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = Sha256::new();
        h.update(std::process::id().to_le_bytes());
        h.update(
            process_start_ticks(std::process::id())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(nanos.to_le_bytes());
        SnapshotId(hex::encode(&h.finalize()[..16]))
    }
}

impl FromStr for SnapshotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<SnapshotId> {
        let ok = (1..=128).contains(&s.len())
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(SnapshotId(s.to_owned()))
        } else {
            Err(Error::InvalidSnapshotId { id: s.into() })
        }
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What a committed snapshot holds. Stored in the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// The diff a build step produced (overlay upperdir or file-op output).
    Diff,
    /// A base-image layer unpacked from a blob.
    Unpacked,
    /// A step's diff whose `fs/` is partial: directories marked deferred hold nothing yet, and
    /// the whole diff is in its layer blob (a `layers` row committed with it). Becomes
    /// [`SnapshotKind::Diff`] once materialized (see the `lazy` module).
    Lazy,
}

impl SnapshotKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Diff => "diff",
            SnapshotKind::Unpacked => "unpacked",
            SnapshotKind::Lazy => "lazy",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<SnapshotKind> {
        match s {
            "diff" => Some(SnapshotKind::Diff),
            "unpacked" => Some(SnapshotKind::Unpacked),
            "lazy" => Some(SnapshotKind::Lazy),
            _ => None,
        }
    }
}

/// A committed, immutable snapshot with its ancestry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// This snapshot.
    pub id: SnapshotId,
    /// The snapshot it was prepared on.
    pub parent: Option<SnapshotId>,
    /// Every snapshot from the root to this one (`chain.last() == Some(&id)`): the layers of the
    /// filesystem in order. Overlay `lowerdir` wants the reverse.
    pub chain: Vec<SnapshotId>,
}

/// Facts about a committed snapshot (for `cache ls` / `cache du`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its parent.
    pub parent: Option<SnapshotId>,
    /// What it holds.
    pub kind: SnapshotKind,
    /// The description given at commit (e.g. the step's `created_by`).
    pub description: String,
    /// Content bytes of `fs/` at commit: apparent sizes of non-directories, hard links once.
    pub size: u64,
    /// When it was committed.
    pub created: SystemTime,
}

/// A snapshot being written. Fill [`Active::fs`], then [`Store::commit`] it. Dropping it
/// uncommitted deletes the directory.
#[derive(Debug)]
pub struct Active {
    id: SnapshotId,
    parent: Option<Committed>,
    dir: PathBuf,
    done: bool,
}

impl Active {
    /// Its ID (it has no `snapshots` row yet).
    pub fn id(&self) -> &SnapshotId {
        &self.id
    }

    /// The snapshot it was prepared on.
    pub fn parent(&self) -> Option<&Committed> {
        self.parent.as_ref()
    }

    /// `snapshots/<id>/fs`: the overlay upperdir, or where a layer is unpacked.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }

    /// `snapshots/<id>/work`: the overlay workdir (same filesystem as `fs`, as overlay requires).
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: if this fails (or the process dies first), recovery under the
            // exclusive lock deletes directories without a `snapshots` row.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Store {
    /// Starts a new snapshot on `parent` (or on nothing) with a generated ID.
    pub fn prepare(&self, parent: Option<&Committed>) -> Result<Active> {
        loop {
            match self.prepare_with_id(parent, SnapshotId::generate()) {
                Err(Error::SnapshotExists { .. }) => {}
                other => return other,
            }
        }
    }

    /// Starts a new snapshot with a chosen ID (e.g. a base layer's ChainID). Fails with
    /// [`Error::SnapshotExists`] if a snapshot directory of that name exists: committed (use
    /// [`Store::get`]), or being prepared by another build (wait and look again).
    pub fn prepare_with_id(&self, parent: Option<&Committed>, id: SnapshotId) -> Result<Active> {
        let dir = self.root().snapshot_dir(&id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::SnapshotExists { id });
            }
            Err(e) => {
                return Err(Error::Io {
                    action: "create snapshot directory",
                    path: dir,
                    source: e,
                });
            }
        }
        let active = Active {
            id,
            parent: parent.cloned(),
            dir,
            done: false,
        };
        for d in [active.fs(), active.work()] {
            fs::create_dir(&d).map_err(Error::io("create directory", &d))?;
        }
        Ok(active)
    }

    /// Freezes `active` as a [`SnapshotKind::Diff`] snapshot; see [`Store::commit_as`].
    pub fn commit(&self, active: Active, description: &str) -> Result<Committed> {
        self.commit_as(active, SnapshotKind::Diff, description)
    }

    /// Freezes `active`: removes `work/`, measures `fs/`, `syncfs(2)`s its filesystem, and only
    /// then inserts the `snapshots` row. A row therefore always names a complete, durable
    /// directory; if anything fails, `active` is dropped and its directory deleted.
    pub fn commit_as(
        &self,
        active: Active,
        kind: SnapshotKind,
        description: &str,
    ) -> Result<Committed> {
        self.commit_with(active, kind, description, None)
    }

    /// Freezes `active` as a [`SnapshotKind::Lazy`] snapshot: its `fs/` holds deferred
    /// directories, and `layer` (whose `snapshot` must be `active`'s ID, and whose blob must be
    /// in the content store) is the whole diff. The snapshot row and the layer row are
    /// inserted in one transaction, so a lazy snapshot never exists without its layer.
    pub fn commit_lazy(
        &self,
        active: Active,
        description: &str,
        layer: &LayerRecord,
    ) -> Result<Committed> {
        if layer.snapshot != active.id {
            return Err(Error::SnapshotNotFound {
                id: layer.snapshot.clone(),
            });
        }
        if !self.blobs().contains(&layer.blob)? {
            return Err(Error::BlobNotFound { digest: layer.blob });
        }
        self.commit_with(active, SnapshotKind::Lazy, description, Some(layer))
    }

    fn commit_with(
        &self,
        mut active: Active,
        kind: SnapshotKind,
        description: &str,
        layer: Option<&LayerRecord>,
    ) -> Result<Committed> {
        let work = active.work();
        match fs::remove_dir_all(&work) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    action: "remove",
                    path: work,
                    source: e,
                });
            }
        }
        let fs_dir = active.fs();
        let size = disk_usage(&fs_dir)?;
        // A step's result is synced once at the end of its build (`durability.rs`); until then
        // the row carries this boot's ID. Base layers (found by ChainID, not through records)
        // and commits where the boot is unknown are synced now.
        let unsynced_boot = match kind {
            SnapshotKind::Diff | SnapshotKind::Lazy => crate::durability::boot_id(),
            SnapshotKind::Unpacked => None,
        };
        if unsynced_boot.is_none() {
            // syncfs(2) flushes every dirty inode of the filesystem holding the snapshot: one
            // call instead of an fsync per file, and it covers the overlay upperdir written by
            // a RUN step whose files we never opened.
            let fd = fs::File::open(&fs_dir).map_err(Error::io("open", &fs_dir))?;
            rustix::fs::syncfs(&fd).map_err(|e| Error::Io {
                action: "syncfs",
                path: fs_dir.clone(),
                source: e.into(),
            })?;
            sync_dir(&self.root().snapshots_dir())?;
        }

        let parent = active.parent.as_ref().map(|p| p.id.as_str().to_owned());
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin commit"))?;
        if let Some(p) = &active.parent {
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM snapshots WHERE id = ?1",
                    [p.id.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(Error::db("check parent snapshot"))?
                .is_some();
            if !exists {
                return Err(Error::SnapshotNotFound { id: p.id.clone() });
            }
        }
        tx.execute(
            "INSERT INTO snapshots (id, parent, kind, description, size, created, unsynced_boot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                active.id.as_str(),
                parent,
                kind.as_str(),
                description,
                size as i64,
                now_ms(),
                unsynced_boot
            ],
        )
        .map_err(Error::db("insert snapshot"))?;
        if let Some(layer) = layer {
            crate::records::insert_layer(&tx, layer)?;
        }
        tx.commit().map_err(Error::db("commit snapshot"))?;
        drop(conn);

        active.done = true;
        let mut chain = active
            .parent
            .as_ref()
            .map(|p| p.chain.clone())
            .unwrap_or_default();
        chain.push(active.id.clone());
        Ok(Committed {
            id: active.id.clone(),
            parent: active.parent.as_ref().map(|p| p.id.clone()),
            chain,
        })
    }

    /// The committed snapshot `id` with its chain, or [`Error::SnapshotNotFound`].
    pub fn get(&self, id: &SnapshotId) -> Result<Committed> {
        load_committed(&self.db(), id)?.ok_or_else(|| Error::SnapshotNotFound { id: id.clone() })
    }

    /// The row of a committed snapshot, or `None`.
    pub fn snapshot_info(&self, id: &SnapshotId) -> Result<Option<SnapshotInfo>> {
        self.db()
            .query_row(
                "SELECT id, parent, kind, description, size, created FROM snapshots WHERE id = ?1",
                [id.as_str()],
                info_from_row,
            )
            .optional()
            .map_err(Error::db("read snapshot"))
    }

    /// Every committed snapshot, oldest first.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT id, parent, kind, description, size, created FROM snapshots
                 ORDER BY created, id",
            )
            .map_err(Error::db("list snapshots"))?;
        stmt.query_map([], info_from_row)
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list snapshots"))
    }

    /// `snapshots/<id>/fs` of a committed snapshot (a read-only overlay lowerdir).
    pub fn fs_path(&self, id: &SnapshotId) -> PathBuf {
        self.root().snapshot_dir(id).join("fs")
    }

    /// Removes a committed snapshot that nothing uses: no child snapshot, no cache record and no
    /// lease of a live process. Its layer records go with it. The row is deleted first, then the
    /// directory (moved to `tmp/` and deleted), so no row ever names a half-deleted directory.
    ///
    /// A build must lease a snapshot *before* preparing on it: an `Active` does not protect its
    /// parent. Prune calls this under the exclusive lock, where no build runs at all.
    pub fn remove(&self, id: &SnapshotId) -> Result<()> {
        {
            let mut conn = self.db();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::db("begin remove"))?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM snapshots WHERE id = ?1",
                    [id.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(Error::db("check snapshot"))?
                .is_some();
            if !exists {
                return Err(Error::SnapshotNotFound { id: id.clone() });
            }
            let child: Option<String> = tx
                .query_row(
                    "SELECT id FROM snapshots WHERE parent = ?1 LIMIT 1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(Error::db("check children"))?;
            if let Some(c) = child {
                let by = SnapshotUser::Child(SnapshotId(c));
                return Err(Error::SnapshotInUse { id: id.clone(), by });
            }
            let key = tx
                .query_row(
                    "SELECT key FROM cache_keys WHERE snapshot = ?1 LIMIT 1",
                    [id.as_str()],
                    |r| digest_at(r, 0),
                )
                .optional()
                .map_err(Error::db("check cache records"))?;
            if let Some(key) = key {
                return Err(Error::SnapshotInUse {
                    id: id.clone(),
                    by: SnapshotUser::CacheKey(key),
                });
            }
            let mut stmt = tx
                .prepare(
                    "SELECT l.id, l.pid, l.pid_start FROM lease_refs r JOIN leases l ON l.id = r.lease
                     WHERE r.snapshot = ?1",
                )
                .map_err(Error::db("check leases"))?;
            let leases = stmt
                .query_map([id.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(Error::db("check leases"))?;
            drop(stmt);
            for (lease, pid, start) in leases {
                if process_alive(pid as u32, start as u64) {
                    let by = SnapshotUser::Lease {
                        lease,
                        pid: pid as u32,
                    };
                    return Err(Error::SnapshotInUse { id: id.clone(), by });
                }
            }
            tx.execute("DELETE FROM lease_refs WHERE snapshot = ?1", [id.as_str()])
                .map_err(Error::db("delete stale lease refs"))?;
            tx.execute("DELETE FROM snapshots WHERE id = ?1", [id.as_str()])
                .map_err(Error::db("delete snapshot"))?;
            tx.commit().map_err(Error::db("commit remove"))?;
        }
        let dir = self.root().snapshot_dir(id);
        let doomed = self.root().tmp_dir().join(format!("removing-{id}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(Error::io("remove", &doomed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                action: "move aside",
                path: dir,
                source: e,
            }),
        }
    }

    /// Deletes `snapshots/*` directories without a row: actives of crashed processes and
    /// half-removed snapshots. Only under the exclusive lock.
    pub(crate) fn remove_orphan_snapshot_dirs(&self) -> Result<usize> {
        let known: HashSet<String> = {
            let conn = self.db();
            let mut stmt = conn
                .prepare("SELECT id FROM snapshots")
                .map_err(Error::db("list snapshots"))?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list snapshots"))?
        };
        let dir = self.root().snapshots_dir();
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| known.contains(n)) {
                continue;
            }
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(Error::io("remove", &path))?;
            n += 1;
        }
        Ok(n)
    }
}

/// The committed snapshot `id` with its chain, read with `conn` (which may be a transaction), or
/// `None` if there is no such row.
pub(crate) fn load_committed(
    conn: &rusqlite::Connection,
    id: &SnapshotId,
) -> Result<Option<Committed>> {
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE chain(id, parent, depth) AS (
                 SELECT id, parent, 0 FROM snapshots WHERE id = ?1
                 UNION ALL
                 SELECT s.id, s.parent, c.depth + 1
                 FROM snapshots s JOIN chain c ON s.id = c.parent
             )
             SELECT id FROM chain ORDER BY depth DESC",
        )
        .map_err(Error::db("load snapshot chain"))?;
    let chain = stmt
        .query_map([id.as_str()], |r| r.get::<_, String>(0).map(SnapshotId))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::db("load snapshot chain"))?;
    if chain.is_empty() {
        return Ok(None);
    }
    let parent = chain.len().checked_sub(2).map(|i| chain[i].clone());
    Ok(Some(Committed {
        id: id.clone(),
        parent,
        chain,
    }))
}

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotInfo> {
    let kind = match SnapshotKind::parse(r.get_ref(2)?.as_str()?) {
        Some(kind) => kind,
        None => {
            let other = r.get_ref(2)?.as_str()?;
            let err = format!("unknown snapshot kind {other:?}");
            return Err(rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                err.into(),
            ));
        }
    };
    Ok(SnapshotInfo {
        id: SnapshotId(r.get(0)?),
        parent: r.get::<_, Option<String>>(1)?.map(SnapshotId),
        kind,
        description: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        created: from_ms(r.get(5)?),
    })
}

/// Content bytes under `dir`: the apparent size of every entry that is not a directory, hard
/// links counted once, symlinks not followed. This is what docker reports as a layer's size
/// (moby's `directory.Size`), independent of the filesystem's block size.
pub(crate) fn disk_usage(dir: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(Error::io("list", &d))? {
            let entry = entry.map_err(Error::io("list", &d))?;
            // The listing's type spares directories a stat; `DirEntry::metadata` is an
            // `fstatat` relative to the open directory (not following links), not a lookup
            // of the whole path per file.
            let kind = entry.file_type().map_err(Error::io("stat", entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let meta = entry.metadata().map_err(Error::io("stat", entry.path()))?;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total += meta.len();
        }
    }
    Ok(total)
}
