//! Build records: what each `dray build` did, step by step (`builds`, `build_steps`), and the
//! context file lists that `--explain-cache` compares (`context_files`).
//!
//! The binary fills a [`BuildRecord`] from the solver's progress events and its output, and
//! saves it with [`Store::save_build`] in **one** transaction (with the `location` of every
//! cache record the build used, and the retention trim), so a no-op rebuild pays one commit.
//! Build arguments are stored; **secret values never are** (a record holds at most a secret's
//! id, and only if the caller puts it in `info`).
//!
//! # Tables (schema version 2)
//!
//! | table | columns | meaning |
//! |---|---|---|
//! | `builds` | `id` PK, `started`, `finished`, `status` (`ok`/`failed`), `context`, `dockerfile`, `target`, `platform`, `args` (JSON object), `tags` (JSON array), `image` (config digest), `manifest`, `error`, `info` (JSON: stage variables, the head chain, …) | one row per build, newest [`BUILDS_KEPT`] kept |
//! | `build_steps` | (`build` → builds ON DELETE CASCADE, `idx`) PK, `vertex`, `name`, `kind`, `location` (`file:line`), `instruction` (the Dockerfile text), `key`, `status` (`HIT`/`MISS`/`FAILED`/`CANCELLED`), `duration_ms`, `preimage` (JSON), `reason`, `files` (→ context_files), `log` | one row per vertex that reported progress |
//! | `context_files` | `digest` PK (sha256 of `files`), `created`, `files` | the build context's file list when a step reading it missed: one line per file, `path \t type \t mode \t uid \t gid \t size \t digest`; kept for the newest [`CONTEXT_LISTS_KEPT`] builds |
//! | `cache_keys.location` | added column | the `file:line` of the instruction that produced the record, set when a build uses it |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use dray_llb::Digest;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use crate::db::{from_ms, now_ms, to_ms};
use crate::error::{Error, Result};
use crate::store::Store;

/// How many build records are kept; older ones are deleted when a new one is saved.
pub const BUILDS_KEPT: usize = 500;

/// Context file lists (about 100 bytes per file) are kept for the steps of this many newest
/// builds: explanations compare with the closest earlier build, so older lists are rarely
/// useful, and a large context would otherwise grow the database by a list per edit.
pub const CONTEXT_LISTS_KEPT: usize = 20;

/// Schema step 1 → 2 (see `db.rs`).
pub(crate) const SCHEMA_V2: &str = "
CREATE TABLE builds (
    id        TEXT PRIMARY KEY,
    started   INTEGER NOT NULL,
    finished  INTEGER NOT NULL,
    status    TEXT NOT NULL,
    context   TEXT NOT NULL,
    dockerfile TEXT NOT NULL,
    target    TEXT,
    platform  TEXT,
    args      TEXT NOT NULL,
    tags      TEXT NOT NULL,
    image     TEXT,
    manifest  TEXT,
    error     TEXT,
    info      TEXT NOT NULL
) STRICT;
CREATE INDEX builds_started ON builds(started);

CREATE TABLE context_files (
    digest  TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    files   BLOB NOT NULL
) STRICT;

CREATE TABLE build_steps (
    build       TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    vertex      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    location    TEXT,
    instruction TEXT,
    key         TEXT,
    status      TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    preimage    TEXT,
    reason      TEXT,
    files       TEXT REFERENCES context_files(digest),
    log         BLOB NOT NULL,
    PRIMARY KEY (build, idx)
) STRICT;
CREATE INDEX build_steps_key ON build_steps(key);
CREATE INDEX build_steps_files ON build_steps(files);

ALTER TABLE cache_keys ADD COLUMN location TEXT;
";

/// How one step of a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    /// Its result came from the cache.
    Hit,
    /// It ran (its key had no record).
    Miss,
    /// It failed.
    Failed,
    /// It was stopped because another step failed.
    Cancelled,
}

impl StepStatus {
    /// `HIT`, `MISS`, `FAILED`, `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Hit => "HIT",
            StepStatus::Miss => "MISS",
            StepStatus::Failed => "FAILED",
            StepStatus::Cancelled => "CANCELLED",
        }
    }

    fn parse(s: &str) -> StepStatus {
        match s {
            "HIT" => StepStatus::Hit,
            "MISS" => StepStatus::Miss,
            "FAILED" => StepStatus::Failed,
            _ => StepStatus::Cancelled,
        }
    }
}

/// One step (vertex) of a recorded build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// Position in the build (order of first progress event).
    pub index: usize,
    /// The vertex digest.
    pub vertex: Digest,
    /// Its progress name (`[build 2/5] COPY . .`).
    pub name: String,
    /// `exec`, `file`, `merge`, `source.image`, `source.local`.
    pub kind: String,
    /// `Dockerfile:3`.
    pub location: Option<String>,
    /// The instruction's text in the Dockerfile, before variable expansion.
    pub instruction: Option<String>,
    /// Its cache key (output 0), when it was computed.
    pub key: Option<Digest>,
    /// HIT, MISS, …
    pub status: StepStatus,
    /// From start to done (zero for a hit).
    pub duration: Duration,
    /// The key's preimage (JSON), for `cache diff` and `--explain-cache`.
    pub preimage: Option<String>,
    /// Why it missed (the first differing component), when explained.
    pub reason: Option<String>,
    /// The context file list (`context_files` digest) its content key was computed over.
    pub files: Option<Digest>,
    /// Everything the step printed.
    pub log: Vec<u8>,
}

/// A build, as `dray builds show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    /// Short random-looking hex ID ([`Store::new_build_id`]).
    pub id: String,
    /// When it started.
    pub started: SystemTime,
    /// When it ended.
    pub finished: SystemTime,
    /// Whether it produced an image.
    pub ok: bool,
    /// The context directory.
    pub context: String,
    /// The Dockerfile path.
    pub dockerfile: String,
    /// `--target`.
    pub target: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--build-arg` values (never secrets).
    pub args: BTreeMap<String, String>,
    /// `-t` names.
    pub tags: Vec<String>,
    /// The image ID (config digest), if it got that far.
    pub image: Option<Digest>,
    /// The manifest digest.
    pub manifest: Option<Digest>,
    /// The error, if it failed.
    pub error: Option<String>,
    /// Free-form JSON the binary keeps for explanations (stage variables, head chain).
    pub info: serde_json::Value,
    /// The steps, in order.
    pub steps: Vec<BuildStep>,
}

/// A context file list to store with a build ([`Store::save_build`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFiles {
    /// sha256 of `files`.
    pub digest: Digest,
    /// The list (see the module table).
    pub files: Vec<u8>,
}

impl ContextFiles {
    /// Wraps a file list, computing its digest.
    pub fn new(files: Vec<u8>) -> ContextFiles {
        ContextFiles {
            digest: Digest::of(&files),
            files,
        }
    }
}

impl Store {
    /// A fresh build ID: 12 hex characters from the pid, the clock and a counter.
    pub fn new_build_id() -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = Sha256::new();
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.update(nanos.to_le_bytes());
        hex::encode(&h.finalize()[..6])
    }

    /// Saves `build` (and `files`, unless already stored) in one transaction; sets the
    /// `location` of the cache records its steps used; deletes all but the newest
    /// [`BUILDS_KEPT`] builds and the context file lists no kept step refers to.
    pub fn save_build(&self, build: &BuildRecord, files: Option<&ContextFiles>) -> Result<()> {
        let mut conn = self.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin build record"))?;
        let now = now_ms();
        let mut new_list = false;
        if let Some(f) = files {
            new_list = tx
                .execute(
                    "INSERT OR IGNORE INTO context_files (digest, created, files)
                     VALUES (?1, ?2, ?3)",
                    params![f.digest.to_string(), now, f.files],
                )
                .map_err(Error::db("save context file list"))?
                > 0;
        }
        let json = |v: &dyn erased::Json| v.to_json();
        tx.execute(
            "INSERT INTO builds (id, started, finished, status, context, dockerfile, target,
                 platform, args, tags, image, manifest, error, info)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                build.id,
                to_ms(build.started),
                to_ms(build.finished),
                if build.ok { "ok" } else { "failed" },
                build.context,
                build.dockerfile,
                build.target,
                build.platform,
                json(&build.args),
                json(&build.tags),
                build.image.map(|d| d.to_string()),
                build.manifest.map(|d| d.to_string()),
                build.error,
                build.info.to_string(),
            ],
        )
        .map_err(Error::db("save build record"))?;
        {
            let mut step_stmt = tx
                .prepare_cached(
                    "INSERT INTO build_steps (build, idx, vertex, name, kind, location,
                         instruction, key, status, duration_ms, preimage, reason, files, log)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(Error::db("save build step"))?;
            let mut location_stmt = tx
                .prepare_cached(
                    "UPDATE cache_keys SET location = ?2 WHERE key = ?1 AND location IS NOT ?2",
                )
                .map_err(Error::db("annotate cache record"))?;
            for s in &build.steps {
                step_stmt
                    .execute(params![
                        build.id,
                        s.index as i64,
                        s.vertex.to_string(),
                        s.name,
                        s.kind,
                        s.location,
                        s.instruction,
                        s.key.map(|k| k.to_string()),
                        s.status.as_str(),
                        s.duration.as_millis() as i64,
                        s.preimage,
                        s.reason,
                        s.files.map(|d| d.to_string()),
                        s.log,
                    ])
                    .map_err(Error::db("save build step"))?;
                if let (Some(key), Some(loc)) = (&s.key, &s.location) {
                    location_stmt
                        .execute(params![key.to_string(), loc])
                        .map_err(Error::db("annotate cache record"))?;
                }
            }
        }
        let trimmed = tx
            .execute(
                "DELETE FROM builds WHERE id IN
                     (SELECT id FROM builds ORDER BY started DESC, id DESC LIMIT -1 OFFSET ?1)",
                [BUILDS_KEPT as i64],
            )
            .map_err(Error::db("trim build records"))?;
        if new_list {
            tx.execute(
                "UPDATE build_steps SET files = NULL WHERE files IS NOT NULL AND build NOT IN
                     (SELECT id FROM builds ORDER BY started DESC, id DESC LIMIT ?1)",
                [CONTEXT_LISTS_KEPT as i64],
            )
            .map_err(Error::db("trim context file lists"))?;
        }
        if trimmed > 0 || new_list {
            tx.execute(
                "DELETE FROM context_files WHERE digest NOT IN
                     (SELECT files FROM build_steps WHERE files IS NOT NULL)",
                [],
            )
            .map_err(Error::db("trim context file lists"))?;
        }
        tx.commit().map_err(Error::db("commit build record"))
    }

    /// Every build record without steps, oldest first.
    pub fn builds(&self) -> Result<Vec<BuildRecord>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!("{BUILD_COLUMNS} ORDER BY started, id"))
            .map_err(Error::db("list builds"))?;
        stmt.query_map([], build_from_row)
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list builds"))
    }

    /// The build whose ID is `id` or starts with it, with its steps. A prefix matching several
    /// builds is [`Error::AmbiguousBuild`]; none, [`Error::BuildNotFound`].
    pub fn build_record(&self, id: &str) -> Result<BuildRecord> {
        let not_found = || Error::BuildNotFound { id: id.to_owned() };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!(
                "{BUILD_COLUMNS} WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT 2"
            ))
            .map_err(Error::db("read build"))?;
        let mut found: Vec<BuildRecord> = stmt
            .query_map([id.to_ascii_lowercase()], build_from_row)
            .and_then(|rows| rows.collect())
            .map_err(Error::db("read build"))?;
        drop(stmt);
        let mut build = match found.len() {
            0 => return Err(not_found()),
            1 => found.remove(0),
            _ => return Err(Error::AmbiguousBuild { id: id.to_owned() }),
        };
        build.steps = load_steps(&conn, &build.id)?;
        Ok(build)
    }

    /// Steps of builds that started before `before`, newest build first (steps in order),
    /// from at most `limit` builds of the Dockerfile `dockerfile`. For `--explain-cache`.
    pub fn earlier_steps(
        &self,
        dockerfile: &str,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<(BuildRecord, Vec<BuildStep>)>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!(
                "{BUILD_COLUMNS} WHERE dockerfile = ?1 AND started <= ?2
                 ORDER BY started DESC, id DESC LIMIT ?3"
            ))
            .map_err(Error::db("read earlier builds"))?;
        let builds: Vec<BuildRecord> = stmt
            .query_map(
                params![dockerfile, to_ms(before), limit as i64],
                build_from_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(Error::db("read earlier builds"))?;
        drop(stmt);
        builds
            .into_iter()
            .map(|b| {
                let steps = load_steps(&conn, &b.id)?;
                Ok((b, steps))
            })
            .collect()
    }

    /// The newest recorded step with cache key `key` (any build), for its preimage and file
    /// list.
    pub fn step_with_key(&self, key: &Digest) -> Result<Option<BuildStep>> {
        let conn = self.db();
        conn.query_row(
            &format!(
                "{STEP_COLUMNS} FROM build_steps s JOIN builds b ON b.id = s.build
                 WHERE s.key = ?1 AND s.preimage IS NOT NULL
                 ORDER BY (s.files IS NULL), b.started DESC LIMIT 1"
            ),
            [key.to_string()],
            step_from_row,
        )
        .optional()
        .map_err(Error::db("read build step"))
    }

    /// A context file list whose steps' content key included `content` (a `c:` digest of a
    /// preimage), if one was stored.
    pub fn files_for_content(&self, content: &Digest) -> Result<Option<Vec<u8>>> {
        let conn = self.db();
        conn.query_row(
            "SELECT f.files FROM build_steps s JOIN context_files f ON f.digest = s.files
             WHERE s.preimage LIKE '%' || ?1 || '%' LIMIT 1",
            [content.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::db("read context file list"))
    }

    /// The stored context file list `digest`.
    pub fn context_files(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        self.db()
            .query_row(
                "SELECT files FROM context_files WHERE digest = ?1",
                [digest.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::db("read context file list"))
    }

    /// Whether the list `digest` is stored already (then a build need not send it again).
    pub fn has_context_files(&self, digest: &Digest) -> Result<bool> {
        Ok(self
            .db()
            .query_row(
                "SELECT 1 FROM context_files WHERE digest = ?1",
                [digest.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map_err(Error::db("read context file list"))?
            .is_some())
    }

    /// How many recorded build steps used each cache key (usage counts for `cache ls`).
    pub fn key_usage(&self) -> Result<BTreeMap<Digest, u64>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT key, count(*) FROM build_steps WHERE key IS NOT NULL GROUP BY key")
            .map_err(Error::db("count key usage"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((crate::db::digest_at(r, 0)?, r.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect())
            .map_err(Error::db("count key usage"))?;
        Ok(rows)
    }
}

const BUILD_COLUMNS: &str = "SELECT id, started, finished, status, context, dockerfile, target,
    platform, args, tags, image, manifest, error, info FROM builds";

const STEP_COLUMNS: &str = "SELECT s.idx, s.vertex, s.name, s.kind, s.location, s.instruction,
    s.key, s.status, s.duration_ms, s.preimage, s.reason, s.files, s.log";

fn load_steps(conn: &rusqlite::Connection, build: &str) -> Result<Vec<BuildStep>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{STEP_COLUMNS} FROM build_steps s WHERE s.build = ?1 ORDER BY s.idx"
        ))
        .map_err(Error::db("read build steps"))?;
    stmt.query_map([build], step_from_row)
        .and_then(|rows| rows.collect())
        .map_err(Error::db("read build steps"))
}

fn opt_digest(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<Digest>> {
    let s: Option<String> = r.get(idx)?;
    Ok(s.and_then(|s| s.parse().ok()))
}

fn build_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BuildRecord> {
    let args: String = r.get(8)?;
    let tags: String = r.get(9)?;
    let info: String = r.get(13)?;
    Ok(BuildRecord {
        id: r.get(0)?,
        started: from_ms(r.get(1)?),
        finished: from_ms(r.get(2)?),
        ok: r.get::<_, String>(3)? == "ok",
        context: r.get(4)?,
        dockerfile: r.get(5)?,
        target: r.get(6)?,
        platform: r.get(7)?,
        args: serde_json::from_str(&args).unwrap_or_default(),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        image: opt_digest(r, 10)?,
        manifest: opt_digest(r, 11)?,
        error: r.get(12)?,
        info: serde_json::from_str(&info).unwrap_or_default(),
        steps: Vec::new(),
    })
}

fn step_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BuildStep> {
    Ok(BuildStep {
        index: r.get::<_, i64>(0)? as usize,
        vertex: crate::db::digest_at(r, 1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        location: r.get(4)?,
        instruction: r.get(5)?,
        key: opt_digest(r, 6)?,
        status: StepStatus::parse(&r.get::<_, String>(7)?),
        duration: Duration::from_millis(r.get::<_, i64>(8)?.max(0) as u64),
        preimage: r.get(9)?,
        reason: r.get(10)?,
        files: opt_digest(r, 11)?,
        log: r.get(12)?,
    })
}

/// JSON text of the small serializable columns.
mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(crate::db::SCHEMA).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO snapshots VALUES ('s1', NULL, 'diff', 'd', 1, 0)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO cache_keys VALUES ('sha256:00', 's1', '{}', 0, 0)",
                [],
            )
            .unwrap();
        }
        let conn = crate::db::open(&path, crate::SCHEMA_VERSION).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, crate::SCHEMA_VERSION);
        let unsynced: Option<String> = conn
            .query_row("SELECT unsynced_boot FROM snapshots", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            unsynced, None,
            "version 3 adds the column, old rows count as synced"
        );
        let (snapshot, location): (String, Option<String>) = conn
            .query_row("SELECT snapshot, location FROM cache_keys", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (snapshot.as_str(), location),
            ("s1", None),
            "old rows are kept"
        );
        let builds: i64 = conn
            .query_row("SELECT count(*) FROM builds", [], |r| r.get(0))
            .unwrap();
        assert_eq!(builds, 0);
        drop(conn);
        // Opening again is a no-op; a newer version is refused.
        drop(crate::db::open(&path, crate::SCHEMA_VERSION).unwrap());
        let err = crate::db::open(&path, 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::SchemaVersion {
                    found: crate::SCHEMA_VERSION,
                    expected: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
