//! `cache verify`: checks the whole store and reports what is wrong; [`Store::repair`] removes
//! what cannot be trusted. Verification never changes anything.
//!
//! | check | problem when | `--repair` |
//! |---|---|---|
//! | SQLite `integrity_check`, `foreign_key_check` | not `ok` / any row | — (reported only) |
//! | every blob in `blobs/sha256` | its bytes do not hash to its name | removes the blob |
//! | every snapshot row | `snapshots/<id>/fs` is missing | removes the row, its descendants and their records |
//! | every cache record | preimage is not JSON, does not reproduce the key, or names a missing snapshot | removes the record |
//! | every layer record | its blob is missing or has another size | removes the layer record |
//! | every tag | the manifest, its config or a layer is missing or has the wrong size | removes the tag |
//!
//! Crash leftovers (files in `ingest/` and `tmp/`, snapshot directories without a row, leases
//! of dead processes) are *notes*, not problems: they are the expected residue of a killed
//! process, invisible to readers, and the next exclusive open deletes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use dray_llb::Digest;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lock::LockMode;
use crate::snapshots::{SnapshotId, SnapshotKind};
use crate::store::Store;

/// How [`Store::repair`] fixes a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fix {
    /// Nothing automatic.
    None,
    /// Delete the blob.
    RemoveBlob(Digest),
    /// Delete the cache record.
    ForgetRecord(Digest),
    /// Delete the snapshot row, its descendants, and records pointing at them.
    RemoveSnapshot(SnapshotId),
    /// Delete a layer record.
    RemoveLayer(SnapshotId, String),
    /// Remove a tag.
    Untag(String),
}

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What it is about: `blob sha256:…`, `record sha256:…`, `snapshot …`, `image …`.
    pub subject: String,
    /// What is wrong.
    pub detail: String,
    /// What `--repair` does.
    pub fix: Fix,
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// Harmless crash leftovers.
    pub notes: Vec<String>,
    /// Counts of what was checked: blobs, snapshots, records, layers, images.
    pub checked: BTreeMap<&'static str, usize>,
}

#[derive(Deserialize)]
struct Refs {
    config: Option<Ref>,
    #[serde(default)]
    layers: Vec<Ref>,
    #[serde(default)]
    manifests: Vec<Ref>,
}

#[derive(Deserialize)]
struct Ref {
    digest: Digest,
    size: u64,
}

impl Store {
    /// Checks everything (module table). `key_of` recomputes a key from a preimage (the
    /// formula is the solver's); `None` means it cannot be parsed.
    pub fn verify(&self, key_of: &dyn Fn(&str) -> Option<Digest>) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut problem = |subject: String, detail: String, fix: Fix| {
            report.problems.push(Problem {
                subject,
                detail,
                fix,
            })
        };
        // Database.
        {
            let conn = self.db();
            let integrity: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(Error::db("check integrity"))?;
            if integrity != "ok" {
                problem("metadata.db".into(), integrity, Fix::None);
            }
            let mut stmt = conn
                .prepare("PRAGMA foreign_key_check")
                .map_err(Error::db("check foreign keys"))?;
            let bad: Vec<(String, i64)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("check foreign keys"))?;
            for (table, rowid) in bad {
                problem(
                    "metadata.db".into(),
                    format!("row {rowid} of {table} refers to a missing row"),
                    Fix::None,
                );
            }
        }
        // Blobs: every byte re-hashed.
        let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut corrupt: BTreeSet<Digest> = BTreeSet::new();
        let blobs_dir = self.root().blobs_dir();
        for entry in fs::read_dir(&blobs_dir).map_err(Error::io("list", &blobs_dir))? {
            let entry = entry.map_err(Error::io("list", &blobs_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                problem(
                    format!("file blobs/sha256/{name}"),
                    "its name is not a sha256 digest".into(),
                    Fix::None,
                );
                continue;
            };
            match self.blobs().verify(&digest) {
                Ok(info) => {
                    sizes.insert(digest, info.size);
                }
                Err(Error::BlobCorrupt { found, .. }) => {
                    corrupt.insert(digest);
                    problem(
                        format!("blob {digest}"),
                        format!("its content hashes to {found}"),
                        Fix::RemoveBlob(digest),
                    );
                }
                Err(e) => return Err(e),
            }
        }
        report.checked.insert("blobs", sizes.len() + corrupt.len());
        let good = |d: &Digest| sizes.get(d).copied();

        // Snapshots.
        let snapshots = self.list_snapshots()?;
        let known: BTreeSet<String> = snapshots.iter().map(|s| s.id.to_string()).collect();
        for s in &snapshots {
            let fs_dir = self.fs_path(&s.id);
            if !fs_dir.is_dir() {
                problem(
                    format!("snapshot {}", s.id),
                    format!("{} is missing", fs_dir.display()),
                    Fix::RemoveSnapshot(s.id.clone()),
                );
            }
            // A lazy snapshot's files are only complete in its layer blob.
            if s.kind == SnapshotKind::Lazy
                && !self.layers(&s.id)?.iter().any(|l| good(&l.blob).is_some())
            {
                problem(
                    format!("snapshot {}", s.id),
                    "it is lazy (its files are only in its layer) but no layer blob of it is \
                     present"
                        .into(),
                    Fix::RemoveSnapshot(s.id.clone()),
                );
            }
        }
        report.checked.insert("snapshots", snapshots.len());
        let snap_dir = self.root().snapshots_dir();
        for entry in fs::read_dir(&snap_dir).map_err(Error::io("list", &snap_dir))? {
            let entry = entry.map_err(Error::io("list", &snap_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                report.notes.push(format!(
                    "snapshots/{name} has no row (an unfinished or half-removed snapshot); \
                     the next prune deletes it"
                ));
            }
        }

        // Cache records.
        let records = self.cache_records()?;
        for r in &records {
            let subject = format!("record {}", r.key);
            match key_of(&r.preimage) {
                None => problem(
                    subject.clone(),
                    "its preimage cannot be read".into(),
                    Fix::ForgetRecord(r.key),
                ),
                Some(k) if k != r.key => problem(
                    subject.clone(),
                    format!("its preimage gives key {k}"),
                    Fix::ForgetRecord(r.key),
                ),
                Some(_) => {}
            }
            if !known.contains(r.snapshot.as_str()) {
                problem(
                    subject.clone(),
                    format!("snapshot {} is missing", r.snapshot),
                    Fix::ForgetRecord(r.key),
                );
            }
            let chain = serde_json::from_str::<serde_json::Value>(&r.preimage)
                .ok()
                .and_then(|v| v["result_chain"].as_array().cloned())
                .unwrap_or_default();
            for id in chain.iter().filter_map(|s| s.as_str()) {
                if !known.contains(id) {
                    problem(
                        subject.clone(),
                        format!("its result chain names missing snapshot {id}"),
                        Fix::ForgetRecord(r.key),
                    );
                }
            }
        }
        report.checked.insert("records", records.len());

        // Layer records.
        let mut layers = 0;
        for s in &snapshots {
            for l in self.layers(&s.id)? {
                layers += 1;
                let found = good(&l.blob);
                let detail = match found {
                    None if corrupt.contains(&l.blob) => {
                        Some(format!("blob {} is corrupt", l.blob))
                    }
                    None => Some(format!("blob {} is missing", l.blob)),
                    Some(n) if n != l.size => Some(format!(
                        "blob {} has {n} bytes, the record says {}",
                        l.blob, l.size
                    )),
                    Some(_) => None,
                };
                if let Some(detail) = detail {
                    problem(
                        format!("layer record {} ({})", s.id, l.media_type),
                        detail,
                        Fix::RemoveLayer(s.id.clone(), l.media_type.clone()),
                    );
                }
            }
        }
        report.checked.insert("layers", layers);

        // Tags: each manifest's closure, sizes included.
        let images = self.list_images()?;
        for image in &images {
            let mut todo = vec![(image.descriptor.digest, image.descriptor.size)];
            let mut seen = BTreeSet::new();
            while let Some((d, size)) = todo.pop() {
                if !seen.insert(d) {
                    continue;
                }
                let detail = match good(&d) {
                    None if corrupt.contains(&d) => Some(format!("blob {d} is corrupt")),
                    None => Some(format!("blob {d} is missing")),
                    Some(n) if n != size => Some(format!(
                        "blob {d} has {n} bytes, its descriptor says {size}"
                    )),
                    Some(n) => {
                        if n <= 4 * 1024 * 1024
                            && let Ok(bytes) = self.blobs().read(&d)
                            && let Ok(r) = serde_json::from_slice::<Refs>(&bytes)
                        {
                            todo.extend(r.config.map(|c| (c.digest, c.size)));
                            todo.extend(r.layers.iter().map(|l| (l.digest, l.size)));
                            todo.extend(r.manifests.iter().map(|m| (m.digest, m.size)));
                        }
                        None
                    }
                };
                if let Some(detail) = detail {
                    problem(
                        format!("image {}", image.name),
                        detail,
                        Fix::Untag(image.name.clone()),
                    );
                }
            }
        }
        report.checked.insert("images", images.len());

        // Leftovers.
        for (dir, what) in [
            (self.root().ingest_dir(), "an unfinished blob"),
            (self.root().tmp_dir(), "scratch or a half-deleted snapshot"),
        ] {
            for entry in fs::read_dir(&dir)
                .map_err(Error::io("list", &dir))?
                .flatten()
            {
                report.notes.push(format!(
                    "{} is {what} left by a killed process; the next prune deletes it",
                    entry.path().display()
                ));
            }
        }
        for lease in self.leases()? {
            if !lease.alive {
                report.notes.push(format!(
                    "lease {} of process {} is stale (the process is gone)",
                    lease.id, lease.pid
                ));
            }
        }
        Ok(report)
    }

    /// Removes what `report` found untrustworthy (see the module table), then deletes crash
    /// leftovers. Needs the exclusive lock. Returns how many fixes were applied.
    pub fn repair(&self, report: &VerifyReport) -> Result<usize> {
        if self.lock_mode() != LockMode::Exclusive {
            return Err(Error::NeedsExclusive { action: "repair" });
        }
        let mut applied = 0;
        // Records first, then layer rows and snapshots, then blobs, then tags.
        let mut order: Vec<&Problem> = report.problems.iter().collect();
        order.sort_by_key(|p| match p.fix {
            Fix::ForgetRecord(_) => 0,
            Fix::RemoveLayer(..) => 1,
            Fix::RemoveSnapshot(_) => 2,
            Fix::Untag(_) => 3,
            Fix::RemoveBlob(_) => 4,
            Fix::None => 5,
        });
        let mut done = BTreeSet::new();
        for p in order {
            if !done.insert(format!("{:?}", p.fix)) {
                continue;
            }
            match &p.fix {
                Fix::None => continue,
                Fix::ForgetRecord(k) => {
                    self.forget(k)?;
                }
                Fix::RemoveLayer(s, media_type) => {
                    self.db()
                        .execute(
                            "DELETE FROM layers WHERE snapshot = ?1 AND media_type = ?2",
                            [s.as_str(), media_type.as_str()],
                        )
                        .map_err(Error::db("delete layer record"))?;
                }
                Fix::RemoveSnapshot(s) => self.remove_untrusted_snapshot(s)?,
                Fix::Untag(name) => {
                    self.untag(name)?;
                }
                Fix::RemoveBlob(d) => {
                    self.blobs().remove(d)?;
                }
            }
            applied += 1;
        }
        self.recover()?;
        Ok(applied)
    }

    /// Deletes snapshot `id`'s row, its descendants' rows and every record pointing at them,
    /// in one transaction, then their directories.
    fn remove_untrusted_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let doomed: Vec<String> = {
            let mut conn = self.db();
            let tx = conn.transaction().map_err(Error::db("begin repair"))?;
            let doomed: Vec<String> = {
                let mut stmt = tx
                    .prepare(
                        "WITH RECURSIVE d(id) AS (
                             SELECT ?1 UNION SELECT s.id FROM snapshots s JOIN d ON s.parent = d.id
                         ) SELECT id FROM d",
                    )
                    .map_err(Error::db("find descendants"))?;
                stmt.query_map([id.as_str()], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(Error::db("find descendants"))?
            };
            for s in doomed.iter().rev() {
                tx.execute(
                    "DELETE FROM cache_keys WHERE snapshot = ?1 OR preimage LIKE '%\"' || ?1 || '\"%'",
                    [s],
                )
                .map_err(Error::db("delete records"))?;
                tx.execute("DELETE FROM lease_refs WHERE snapshot = ?1", [s])
                    .map_err(Error::db("delete lease refs"))?;
                tx.execute("DELETE FROM snapshots WHERE id = ?1", [s])
                    .map_err(Error::db("delete snapshot"))?;
            }
            tx.commit().map_err(Error::db("commit repair"))?;
            doomed
        };
        for s in doomed {
            let dir = self.root().snapshots_dir().join(&s);
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
            }
        }
        Ok(())
    }
}
