//! `cache ls` ([`Store::cache_entries`]) and `cache du` ([`Store::disk_usage`]).
//!
//! `ls` reads only the database, `index.json` and the tagged manifests (no tree walks except
//! cache mounts), so it stays fast on large stores. `du` walks everything under the root and
//! counts as `du -sb` does: the apparent size (`st_size`) of every entry, directories included,
//! each inode once, symlinks not followed, so its total agrees with `du -sb <root>` taken while
//! no dray runs. SQLite's `-wal` and `-shm` files count as metadata: the store does not
//! checkpoint when a connection closes (see the crate docs), so they outlive the process.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use crate::db::from_ms;
use crate::error::{Error, Result};
use crate::prune::record_kind;
use crate::snapshots::SnapshotId;
use crate::store::Store;

/// One row of `cache ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cache key, blob digest, cache-mount name or memo scope.
    pub id: String,
    /// `exec`, `file`, `merge`, `source.image`, `source.local`, `cache-mount`, `layer`.
    pub kind: String,
    /// The snapshot it holds, for records and layers.
    pub snapshot: Option<SnapshotId>,
    /// The step's progress name (`[build 2/3] COPY . .`), or a description.
    pub name: String,
    /// `Dockerfile:3`, when a build recorded it.
    pub location: Option<String>,
    /// Bytes: the snapshot's content for a record, the blob for a layer.
    pub size: u64,
    /// When it was created.
    pub created: Option<SystemTime>,
    /// When a build last used it.
    pub last_used: Option<SystemTime>,
    /// How many recorded build steps used it (records), images using it (layers), files
    /// memoized (source.local).
    pub usage: u64,
    /// Held by a running build.
    pub in_use: bool,
    /// Tagged images that use it.
    pub images: Vec<String>,
}

/// `cache du`: bytes under the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Everything under the root (what `du -sb` reports).
    pub total: u64,
    /// What `cache prune --all` could free: snapshots no running build holds, blobs no tag
    /// references, cache mounts, crash leftovers.
    pub reclaimable: u64,
    /// What must stay: tagged images' blobs, snapshots of running builds, the metadata and the
    /// layout files.
    pub in_use: u64,
    /// Bytes by area: `blobs`, `snapshots`, `cache-mounts`, `metadata`, `other`.
    pub areas: BTreeMap<&'static str, u64>,
    /// Bytes per snapshot directory, with whether it is reclaimable.
    pub snapshots: Vec<(SnapshotId, u64, bool)>,
}

impl Store {
    /// Every record, layer blob, cache mount and context memo, least recently used first.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>> {
        let refs = self.refs()?;
        let usage = self.key_usage()?;
        let snapshots: BTreeMap<SnapshotId, crate::SnapshotInfo> = self
            .list_snapshots()?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let mut out = Vec::new();
        let rows: Vec<(String, String, String, i64, i64, Option<String>)> = {
            let conn = self.db();
            let mut stmt = conn
                .prepare(
                    "SELECT key, snapshot, preimage, created, last_used, location FROM cache_keys
                     ORDER BY last_used, key",
                )
                .map_err(Error::db("list cache records"))?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list cache records"))?
        };
        for (key, snapshot, preimage, created, last_used, location) in rows {
            let value: serde_json::Value = serde_json::from_str(&preimage).unwrap_or_default();
            let snapshot = SnapshotId::from_db(snapshot);
            let images = refs
                .image_snapshots
                .get(&snapshot)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            out.push(CacheEntry {
                usage: key
                    .parse()
                    .ok()
                    .and_then(|k| usage.get(&k))
                    .copied()
                    .unwrap_or(0),
                id: key,
                kind: record_kind(&value),
                name: value["name"].as_str().unwrap_or_default().to_owned(),
                location,
                size: snapshots.get(&snapshot).map_or(0, |s| s.size),
                created: Some(from_ms(created)),
                last_used: Some(from_ms(last_used)),
                in_use: refs.leased.contains(&snapshot),
                images,
                snapshot: Some(snapshot),
            });
        }
        let layers: Vec<(String, String, i64)> = {
            let conn = self.db();
            let mut stmt = conn
                .prepare("SELECT snapshot, blob, size FROM layers ORDER BY blob")
                .map_err(Error::db("list layer records"))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list layer records"))?
        };
        for (snapshot, blob, size) in layers {
            let snapshot = SnapshotId::from_db(snapshot);
            let images: Vec<String> = blob
                .parse()
                .ok()
                .and_then(|b| refs.image_blobs.get(&b))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let info = snapshots.get(&snapshot);
            out.push(CacheEntry {
                id: blob,
                kind: "layer".to_owned(),
                name: info.map(|i| i.description.clone()).unwrap_or_default(),
                location: None,
                size: size.max(0) as u64,
                created: info.map(|i| i.created),
                last_used: None,
                usage: images.len() as u64,
                in_use: refs.leased.contains(&snapshot),
                images,
                snapshot: Some(snapshot),
            });
        }
        let mounts = self.root().cache_mounts_dir();
        for entry in fs::read_dir(&mounts).map_err(Error::io("list", &mounts))? {
            let entry = entry.map_err(Error::io("list", &mounts))?;
            let meta = entry.metadata().ok();
            out.push(CacheEntry {
                id: entry.file_name().to_string_lossy().into_owned(),
                kind: "cache-mount".to_owned(),
                snapshot: None,
                name: "RUN --mount=type=cache".to_owned(),
                location: None,
                size: tree_size(&entry.path()).unwrap_or(0),
                created: meta.as_ref().and_then(|m| m.created().ok()),
                last_used: meta.as_ref().and_then(|m| m.modified().ok()),
                usage: 0,
                in_use: false,
                images: Vec::new(),
            });
        }
        for (scope, files) in self.context_scopes()? {
            out.push(CacheEntry {
                id: scope.clone(),
                kind: "source.local".to_owned(),
                snapshot: None,
                name: format!("content-hash memo of {}", scope),
                location: None,
                size: 0,
                created: None,
                last_used: None,
                usage: files,
                in_use: false,
                images: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Walks the whole root (module docs).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let refs = self.refs()?;
        let root = self.root().path();
        let mut seen = HashSet::new();
        let mut du = DiskUsage::default();
        let add = |du: &mut DiskUsage, area: &'static str, bytes: u64, reclaimable: bool| {
            *du.areas.entry(area).or_default() += bytes;
            du.total += bytes;
            if reclaimable {
                du.reclaimable += bytes;
            } else {
                du.in_use += bytes;
            }
        };
        let meta = fs::symlink_metadata(root).map_err(Error::io("stat", root))?;
        seen.insert((meta.dev(), meta.ino()));
        add(&mut du, "other", meta.len(), false);
        for entry in fs::read_dir(root).map_err(Error::io("list", root))? {
            let entry = entry.map_err(Error::io("list", root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            match name.as_str() {
                "blobs" => {
                    let dir_bytes = walk(&path, &mut seen, false)?;
                    add(&mut du, "blobs", dir_bytes, false);
                    let sha = path.join("sha256");
                    let dir_bytes = walk(&sha, &mut seen, false)?;
                    add(&mut du, "blobs", dir_bytes, false);
                    let Ok(rd) = fs::read_dir(&sha) else { continue };
                    for blob in rd.flatten() {
                        let bytes = walk(&blob.path(), &mut seen, true)?;
                        let digest = format!("sha256:{}", blob.file_name().to_string_lossy());
                        let kept = digest
                            .parse()
                            .is_ok_and(|d| refs.image_blobs.contains_key(&d));
                        add(&mut du, "blobs", bytes, !kept);
                    }
                }
                "snapshots" => {
                    let dir_bytes = walk(&path, &mut seen, false)?;
                    add(&mut du, "snapshots", dir_bytes, false);
                    let Ok(rd) = fs::read_dir(&path) else {
                        continue;
                    };
                    for snap in rd.flatten() {
                        let bytes = walk(&snap.path(), &mut seen, true)?;
                        let id = SnapshotId::from_db(snap.file_name().to_string_lossy().into());
                        let reclaimable = !refs.leased.contains(&id);
                        add(&mut du, "snapshots", bytes, reclaimable);
                        du.snapshots.push((id, bytes, reclaimable));
                    }
                }
                "cache-mounts" => {
                    let dir_bytes = walk(&path, &mut seen, false)?;
                    add(&mut du, "cache-mounts", dir_bytes, false);
                    let Ok(rd) = fs::read_dir(&path) else {
                        continue;
                    };
                    for m in rd.flatten() {
                        let bytes = walk(&m.path(), &mut seen, true)?;
                        add(&mut du, "cache-mounts", bytes, true);
                    }
                }
                // The database with its write-ahead log and shared-memory index.
                n if n.starts_with("metadata.db") => {
                    let bytes = walk(&path, &mut seen, true)?;
                    add(&mut du, "metadata", bytes, false);
                }
                "ingest" | "tmp" => {
                    let dir_bytes = walk(&path, &mut seen, false)?;
                    add(&mut du, "other", dir_bytes, false);
                    let Ok(rd) = fs::read_dir(&path) else {
                        continue;
                    };
                    for m in rd.flatten() {
                        let bytes = walk(&m.path(), &mut seen, true)?;
                        add(&mut du, "other", bytes, true);
                    }
                }
                _ => {
                    let bytes = walk(&path, &mut seen, true)?;
                    add(&mut du, "other", bytes, false);
                }
            }
        }
        du.snapshots
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(du)
    }
}

/// Apparent bytes of `path` and (when `deep`) everything below it, each inode once.
fn walk(path: &Path, seen: &mut HashSet<(u64, u64)>, deep: bool) -> Result<u64> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("stat", path)(e)),
    };
    if !seen.insert((meta.dev(), meta.ino())) {
        return Ok(0);
    }
    let mut total = meta.len();
    if deep && meta.is_dir() {
        let rd = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(total),
            Err(e) => return Err(Error::io("list", path)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(Error::io("list", path))?;
            total += walk(&entry.path(), seen, true)?;
        }
    }
    Ok(total)
}

/// Apparent bytes of a whole tree (as `du -sb`).
pub(crate) fn tree_size(path: &Path) -> Result<u64> {
    walk(path, &mut HashSet::new(), true)
}
