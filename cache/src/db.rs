//! Opening `metadata.db` and its schema.
//!
//! The schema is versioned with `PRAGMA user_version` ([`crate::SCHEMA_VERSION`]). A fresh
//! database gets [`SCHEMA`] and then every step of [`MIGRATIONS`]; an older one gets the steps
//! it lacks, in one transaction (so a killed upgrade leaves the old version intact). A *newer*
//! version, which this dray cannot read, is refused with [`Error::SchemaVersion`].

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// How long a statement waits for another process's write transaction before failing with
/// `SQLITE_BUSY`. Write transactions here are a few rows, so waiting long means something is
/// stuck; a minute covers a slow disk under fsync pressure.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema (version [`crate::SCHEMA_VERSION`]). Times are milliseconds since the Unix epoch.
/// Digests are `sha256:<hex>` text. See the crate docs for the table.
pub(crate) const SCHEMA: &str = "
CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY,
    parent      TEXT REFERENCES snapshots(id),
    kind        TEXT NOT NULL,
    description TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created     INTEGER NOT NULL
) STRICT;
CREATE INDEX snapshots_parent ON snapshots(parent);

CREATE TABLE cache_keys (
    key       TEXT PRIMARY KEY,
    snapshot  TEXT NOT NULL REFERENCES snapshots(id),
    preimage  TEXT NOT NULL,
    created   INTEGER NOT NULL,
    last_used INTEGER NOT NULL
) STRICT;
CREATE INDEX cache_keys_snapshot ON cache_keys(snapshot);
CREATE INDEX cache_keys_last_used ON cache_keys(last_used);

CREATE TABLE layers (
    snapshot   TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    diff_id    TEXT NOT NULL,
    blob       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (snapshot, media_type)
) STRICT;
CREATE INDEX layers_blob ON layers(blob);

CREATE TABLE contenthash (
    scope    TEXT NOT NULL,
    path     BLOB NOT NULL,
    dev      INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest   TEXT NOT NULL,
    PRIMARY KEY (scope, path)
) STRICT;

CREATE TABLE leases (
    id        TEXT PRIMARY KEY,
    pid       INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    started   INTEGER NOT NULL
) STRICT;

CREATE TABLE lease_refs (
    lease    TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (lease, snapshot)
) STRICT;
CREATE INDEX lease_refs_snapshot ON lease_refs(snapshot);
";

/// Schema upgrades: `MIGRATIONS[i]` takes version `i + 1` to `i + 2`. Never edit a step that
/// has shipped; append one and bump [`crate::SCHEMA_VERSION`].
///
/// Version 2 (cache management, see `builds.rs`) adds `builds`, `build_steps` and
/// `context_files`, and the `location` column of `cache_keys`.
///
/// Version 3 adds `snapshots.unsynced_boot` (see `durability.rs`).
const MIGRATIONS: &[&str] = &[crate::builds::SCHEMA_V2, SCHEMA_V3];

/// Version 2 → 3: snapshots committed without a sync carry the boot they were committed in;
/// lazy snapshots (`lazy.rs`) are found through a partial index.
const SCHEMA_V3: &str = "
ALTER TABLE snapshots ADD COLUMN unsynced_boot TEXT;
CREATE INDEX snapshots_unsynced ON snapshots(unsynced_boot) WHERE unsynced_boot IS NOT NULL;
CREATE INDEX snapshots_lazy ON snapshots(id) WHERE kind = 'lazy';
";

/// Switches the database to WAL mode (a persistent property of the file; a no-op once set).
/// Switching needs an exclusive lock, and when two processes open a fresh root together SQLite
/// answers `SQLITE_BUSY` at once rather than waiting in the busy handler (waiting could
/// deadlock two connections that both hold a shared lock), so this retries until the busy
/// timeout.
fn enable_wal(conn: &Connection) -> Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::db("enable WAL")(e)),
        }
    }
}

/// Opens (creating if needed) the database at `path` and checks or installs the schema.
pub(crate) fn open(path: &Path, expected: i64) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(Error::db("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::db("set busy_timeout"))?;
    // WAL lets readers run during another process's write. NORMAL (not FULL) skips the fsync
    // at each commit: in WAL mode commits stay atomic and ordered, a killed process loses none,
    // and a power loss can only drop the newest ones, never keep a later commit without an
    // earlier one. A cache record is committed after its snapshot row, so a record still never
    // outlives its snapshot row; a record lost to a power cut is a cache miss, not corruption,
    // and one whose snapshot's files were never synced is dropped at the next open
    // (durability.rs). See sqlite.org/pragma.html#pragma_synchronous.
    enable_wal(&conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(Error::db("set synchronous"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(Error::db("enable foreign keys"))?;
    // No checkpoint when the last connection closes: that checkpoint costs two fsyncs (the WAL,
    // then the database file) plus creating, syncing and deleting the WAL file again on the
    // next write, per dray process, which dominated a no-op build. Committed transactions stay
    // in the WAL, which is just as durable and ordered (the next open reads it back), and the
    // automatic checkpoint still runs once the WAL passes 1000 pages, so it stays bounded.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(Error::db("disable checkpoint on close"))?;

    // IMMEDIATE takes the write lock up front, so two processes opening a fresh root do not both
    // try to create the tables.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::db("begin schema check"))?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(Error::db("read schema version"))?;
    let known = MIGRATIONS.len() as i64 + 1;
    if found == 0 || (found < expected && found >= 1) {
        if found == 0 {
            tx.execute_batch(SCHEMA)
                .map_err(Error::db("create schema"))?;
        }
        let from = found.max(1);
        for step in &MIGRATIONS[(from - 1) as usize..(expected.min(known) - 1) as usize] {
            tx.execute_batch(step)
                .map_err(Error::db("upgrade schema"))?;
        }
        tx.pragma_update(None, "user_version", expected)
            .map_err(Error::db("write schema version"))?;
    } else if found != expected {
        return Err(Error::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected,
        });
    }
    tx.commit().map_err(Error::db("commit schema"))?;
    Ok(conn)
}

/// Now, in the database's time unit (ms since the epoch).
pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub(crate) fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// Reads a `sha256:<hex>` text column.
pub(crate) fn digest_at(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<crate::Digest> {
    let s: String = r.get(idx)?;
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}
