//! [`Store`]: opening a root (layout, version check, lock, database) and crash recovery.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::blobs::{ContentStore, clear_dir, sync_dir};
use crate::db;
use crate::error::{Error, Result};
use crate::lock::{FileLock, LockMode};
use crate::root::Root;
use crate::{LAYOUT_VERSION, SCHEMA_VERSION};

/// `oci-layout`, per the OCI image-layout spec.
const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// The initial `index.json`: an empty OCI image index.
const EMPTY_INDEX: &str = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";

/// An open, locked dray root. Cheap to clone (clones share the lock and the database
/// connection); `Send + Sync`, so one `Store` can serve a whole build.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) root: Root,
    pub(crate) blobs: ContentStore,
    db: Mutex<Connection>,
    lock: FileLock,
}

impl Store {
    /// Opens `root` for normal use (building, listing): creates the layout if needed, checks the
    /// versions, and holds a **shared** lock until the last clone is dropped. Waits while a prune
    /// holds the exclusive lock.
    pub fn open(root: &Root) -> Result<Store> {
        Store::open_with(root, LockMode::Shared, true)
    }

    /// Like [`Store::open`], but fails at once with [`Error::Locked`] while a prune holds the
    /// exclusive lock (for read-only commands that should not wait).
    pub fn try_open(root: &Root) -> Result<Store> {
        Store::open_with(root, LockMode::Shared, false)
    }

    /// Opens `root` with the **exclusive** lock (for prune and `rmi`), waiting for every shared
    /// holder to finish. Holding it, the store also recovers from crashes: it deletes leftover
    /// `ingest/` and `tmp/` files, snapshot directories that were never committed, and the
    /// leases of dead processes.
    pub fn open_exclusive(root: &Root) -> Result<Store> {
        Store::open_with(root, LockMode::Exclusive, true)
    }

    /// Like [`Store::open_exclusive`], but fails at once with [`Error::Locked`] if any other
    /// handle (in this or another process) holds the lock.
    pub fn try_open_exclusive(root: &Root) -> Result<Store> {
        Store::open_with(root, LockMode::Exclusive, false)
    }

    /// Like [`Store::open_exclusive`] but **without** crash recovery, for `cache verify`, which
    /// reports leftovers instead of silently deleting them.
    pub fn open_exclusive_without_recovery(root: &Root) -> Result<Store> {
        Store::open_inner(root, LockMode::Exclusive, true, false)
    }

    fn open_with(root: &Root, mode: LockMode, blocking: bool) -> Result<Store> {
        Store::open_inner(root, mode, blocking, mode == LockMode::Exclusive)
    }

    fn open_inner(root: &Root, mode: LockMode, blocking: bool, recover: bool) -> Result<Store> {
        let dir = root.path();
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let lock = FileLock::acquire(&root.lock_file(), mode, blocking)?;
        check_or_write_version(root)?;
        for d in [
            root.blobs_dir(),
            root.ingest_dir(),
            root.snapshots_dir(),
            root.cache_mounts_dir(),
            root.mounts_dir(),
            root.tmp_dir(),
        ] {
            fs::create_dir_all(&d).map_err(Error::io("create directory", &d))?;
        }
        write_if_absent(root, &root.oci_layout_file(), OCI_LAYOUT)?;
        write_if_absent(root, &root.index_json(), EMPTY_INDEX)?;
        let conn = db::open(&root.metadata_db(), SCHEMA_VERSION)?;
        let store = Store {
            inner: Arc::new(Inner {
                root: root.clone(),
                blobs: ContentStore::new(root.clone()),
                db: Mutex::new(conn),
                lock,
            }),
        };
        if recover {
            store.recover()?;
        }
        store.drop_unsynced()?;
        Ok(store)
    }

    /// The root this store was opened at.
    pub fn root(&self) -> &Root {
        &self.inner.root
    }

    /// The content store (`blobs/sha256`).
    pub fn blobs(&self) -> &ContentStore {
        &self.inner.blobs
    }

    /// Which lock this handle holds.
    pub fn lock_mode(&self) -> LockMode {
        self.inner.lock.mode()
    }

    /// The database connection. A poisoned mutex is recovered: every multi-statement change runs
    /// in a transaction, which SQLite rolls back if the panicking thread never committed it.
    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        self.inner.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Crash recovery; only called under the exclusive lock, when no other process can have
    /// files in flight.
    pub(crate) fn recover(&self) -> Result<()> {
        let root = self.root();
        self.blobs().clean_ingest()?;
        clear_dir(&root.tmp_dir())?;
        remove_stale_new_files(root.path())?;
        self.remove_orphan_snapshot_dirs()?;
        self.reap_dead_leases()?;
        Ok(())
    }
}

/// `VERSION` is written once, atomically, and compared on every open.
fn check_or_write_version(root: &Root) -> Result<()> {
    let path = root.version_file();
    write_if_absent(root, &path, &format!("{LAYOUT_VERSION}\n"))?;
    let found = fs::read_to_string(&path).map_err(Error::io("read", &path))?;
    let found = found.trim();
    if found != LAYOUT_VERSION.to_string() {
        return Err(Error::LayoutVersion {
            path: root.path().to_path_buf(),
            found: found.to_owned(),
            expected: LAYOUT_VERSION,
        });
    }
    Ok(())
}

/// Creates `path` with `contents` unless it exists. The file appears complete or not at all
/// (temp file + `link`-based no-clobber rename), so concurrent first opens are safe.
fn write_if_absent(root: &Root, path: &Path, contents: &str) -> Result<()> {
    if path.try_exists().map_err(Error::io("stat", path))? {
        return Ok(());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".new-")
        .tempfile_in(root.path())
        .map_err(Error::io("create temp file in", root.path()))?;
    tmp.write_all(contents.as_bytes())
        .map_err(Error::io("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("fsync", tmp.path()))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Io {
                action: "create",
                path: path.into(),
                source: e.error,
            });
        }
    }
    sync_dir(root.path())
}

/// Deletes `.new-*` temp files that [`write_if_absent`] left in the root when killed.
fn remove_stale_new_files(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        if entry.file_name().to_string_lossy().starts_with(".new-") {
            let path = entry.path();
            fs::remove_file(&path).map_err(Error::io("remove", &path))?;
        }
    }
    Ok(())
}
