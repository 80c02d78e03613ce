//! Materializing lazy snapshots: filling in the directories a step deferred to its layer blob.
//!
//! See `dray_cache`'s `lazy` module for the states and `dray_fsutil::fileop`'s deferred copies
//! for how such a snapshot is made. [`materialize`] unpacks the snapshot's layer blob beside
//! its `fs/` (in `fill/`, the same filesystem), checks the `diff_id`, then swaps each deferred
//! directory in with one `rename(2)` onto the empty, marked directory of `fs/`, restoring the
//! parent's times that the rename moved. A reader of `fs/` therefore sees either a marked,
//! empty directory (and stops: lookups refuse marked directories) or the complete one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use dray_cache::{SnapshotId, SnapshotKind, Store};
use dray_fsutil::tree::DEFERRED_XATTR;

use crate::Error;
use crate::apply::{ApplyMode, ApplyOptions, apply_layer};

/// Makes the lazy snapshot `id` complete on disk (waiting for, or taking over from, another
/// process doing the same). Returns whether this call did the work; a snapshot that is not
/// lazy is left alone.
pub fn materialize(store: &Store, id: &SnapshotId) -> Result<bool, Error> {
    if store.snapshot_kind(id)? != SnapshotKind::Lazy {
        return Ok(false);
    }
    let _lock = store.lock_materialize(id)?;
    if store.snapshot_kind(id)? != SnapshotKind::Lazy {
        return Ok(false);
    }
    let record = store
        .layers(id)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotMaterialized {
            path: store.fs_path(id),
        })?;
    let fill = store.materialize_dir(id);
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| Error::Walk { path, source }
    };
    match fs::remove_dir_all(&fill) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&fill)(e)),
    }
    fs::create_dir(&fill).map_err(io_err(&fill))?;
    let name = record.blob.to_string();
    let blob = store.blobs().open(&record.blob)?;
    let stats = apply_layer(
        blob,
        &fill,
        &name,
        &ApplyOptions::new(ApplyMode::OverlayDiff),
    )?;
    stats.verify_diff_id(&name, &record.diff_id)?;

    let fs_dir = store.fs_path(id);
    let mut deferred = Vec::new();
    find_deferred(&fs_dir, PathBuf::new(), &mut deferred)?;
    for rel in &deferred {
        let from = fill.join(rel);
        let to = fs_dir.join(rel);
        let parent = to.parent().unwrap_or(&fs_dir).to_owned();
        let before = fs::symlink_metadata(&parent).map_err(io_err(&parent))?;
        // rename(2) replaces an empty directory atomically: a reader sees the marked, empty
        // directory or the full one, never a half-filled one.
        fs::rename(&from, &to).map_err(io_err(&to))?;
        // The rename moved the parent's mtime; the layer (and a later re-export of this
        // directory) must keep the one the step wrote.
        let times = fs::FileTimes::new()
            .set_accessed(before.accessed().map_err(io_err(&parent))?)
            .set_modified(before.modified().map_err(io_err(&parent))?);
        fs::File::open(&parent)
            .and_then(|dir| dir.set_times(times))
            .map_err(io_err(&parent))?;
    }
    fs::remove_dir_all(&fill).map_err(io_err(&fill))?;
    // The renamed inodes were written by apply_layer without fsync: make them durable before
    // the row says the snapshot is complete.
    let dir = fs::File::open(&fs_dir).map_err(io_err(&fs_dir))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_err(&fs_dir)(e.into()))?;
    store.mark_materialized(id)?;
    Ok(true)
}

/// Materializes every lazy snapshot of `chain`.
pub fn materialize_chain(store: &Store, chain: &[SnapshotId]) -> Result<(), Error> {
    for id in store.lazy_among(chain)? {
        materialize(store, &id)?;
    }
    Ok(())
}

/// The directories below `dir` (paths relative to the snapshot root `rel`) that carry the
/// deferred mark; marked directories are not descended into.
fn find_deferred(dir: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Walk {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Walk {
            path: dir.to_owned(),
            source,
        })?;
        let is_dir = entry
            .file_type()
            .map(|t| t.is_dir())
            .map_err(|source| Error::Walk {
                path: entry.path(),
                source,
            })?;
        if !is_dir {
            continue;
        }
        let path = entry.path();
        let child = rel.join(entry.file_name());
        let marked = xattr::get(&path, DEFERRED_XATTR)
            .map_err(|source| Error::Xattr {
                path: path.clone(),
                source,
            })?
            .is_some();
        if marked {
            out.push(child);
        } else {
            find_deferred(&path, child, out)?;
        }
    }
    Ok(())
}
