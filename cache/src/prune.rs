//! `cache prune` and automatic GC: removing cache records, snapshots and blobs.
//!
//! Prune runs under the **exclusive** lock ([`Store::open_exclusive`] waits for running
//! builds), and on top of that never touches a snapshot a live lease holds. The order is the
//! one architecture B6 fixes:
//!
//! 1. **records** that no tag and no lease references ([`crate::gc`]), least recently used
//!    first, as long as the policy asks (older than `keep_duration`, or while the store is
//!    larger than `keep_storage`, or all of them when neither is given), restricted by the
//!    filters; each record's snapshots go with it when nothing else holds them;
//! 2. **snapshots** nothing references (no record, child, lease, or tag), leaves first;
//! 3. **blobs** that no tagged manifest (closure) and no layer record references;
//! 4. with `--all` or `type=cache-mount` / `type=source.local`: cache mounts and the
//!    context's content-hash memo.
//!
//! `--all` also removes records whose snapshots tagged images use; the images stay intact, as
//! their blobs are kept. Each removal is its own short transaction, row before directory, so a
//! prune killed at any point leaves a store that opens and verifies (leftover directories are
//! crash residue that the next exclusive open deletes).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, SystemTime};

use dray_llb::Digest;

use crate::db::{digest_at, from_ms};
use crate::error::{Error, Result};
use crate::gc::Refs;
use crate::lock::LockMode;
use crate::snapshots::SnapshotId;
use crate::store::Store;

/// A `--filter` of `cache prune`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneFilter {
    /// `until=DUR`: only what was last used longer ago than this.
    Until(Duration),
    /// `type=KIND`: only records of this kind (`exec`, `file`, `merge`, `source.image`,
    /// `source.local`, `cache-mount`).
    Kind(String),
    /// `dockerfile=PATH`: only records produced by builds of this Dockerfile.
    Dockerfile(String),
}

/// What to prune.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also records that tagged images use (the images keep their blobs).
    pub all: bool,
    /// Keep at most this many bytes (least recently used records go first).
    pub keep_storage: Option<u64>,
    /// Keep records used more recently than this.
    pub keep_duration: Option<Duration>,
    /// Every filter must match.
    pub filters: Vec<PruneFilter>,
}

/// One thing prune removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// `record`, `snapshot`, `blob`, `cache-mount`, `source.local`.
    pub what: &'static str,
    /// Its key, ID, digest or name.
    pub id: String,
    /// Bytes freed (0 for a record; its snapshot counts).
    pub size: u64,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Everything removed, in order.
    pub removed: Vec<Pruned>,
    /// Records kept because a tag or a running build references them.
    pub kept_referenced: usize,
}

impl PruneReport {
    /// Total bytes freed.
    pub fn freed(&self) -> u64 {
        self.removed.iter().map(|p| p.size).sum()
    }

    /// How many items of kind `what` were removed.
    pub fn count(&self, what: &str) -> usize {
        self.removed.iter().filter(|p| p.what == what).count()
    }
}

/// A cache record with what prune needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct RecordFacts {
    pub(crate) key: Digest,
    pub(crate) snapshot: SnapshotId,
    pub(crate) kind: String,
    pub(crate) chain: Vec<SnapshotId>,
    pub(crate) last_used: SystemTime,
    pub(crate) location: Option<String>,
}

/// The kind of a record from its preimage's op object.
pub(crate) fn record_kind(preimage: &serde_json::Value) -> String {
    let op = &preimage["op"];
    match op["op"].as_str() {
        Some("source") => match op["scheme"].as_str() {
            Some(_) => "source.image".to_owned(),
            None => "source".to_owned(),
        },
        Some(other) => other.to_owned(),
        None => "unknown".to_owned(),
    }
}

impl Store {
    pub(crate) fn record_facts(&self) -> Result<Vec<RecordFacts>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT key, snapshot, preimage, last_used, location FROM cache_keys
                 ORDER BY last_used, key",
            )
            .map_err(Error::db("list cache records"))?;
        stmt.query_map([], |r| {
            let preimage: String = r.get(2)?;
            let value: serde_json::Value = serde_json::from_str(&preimage).unwrap_or_default();
            let chain = value["result_chain"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(|s| s.as_str()?.parse::<SnapshotId>().ok())
                        .collect()
                })
                .unwrap_or_default();
            Ok(RecordFacts {
                key: digest_at(r, 0)?,
                snapshot: SnapshotId::from_db(r.get(1)?),
                kind: record_kind(&value),
                chain,
                last_used: from_ms(r.get(3)?),
                location: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(Error::db("list cache records"))
    }

    /// Dockerfile paths of the builds that used each key.
    fn dockerfiles_by_key(&self) -> Result<BTreeMap<Digest, BTreeSet<String>>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT s.key, b.dockerfile FROM build_steps s JOIN builds b
                 ON b.id = s.build WHERE s.key IS NOT NULL",
            )
            .map_err(Error::db("list build steps"))?;
        let rows: Vec<(Digest, String)> = stmt
            .query_map([], |r| Ok((digest_at(r, 0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list build steps"))?;
        let mut out: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for (k, d) in rows {
            out.entry(k).or_default().insert(d);
        }
        Ok(out)
    }

    /// Prunes per `opts` (module docs). Needs the exclusive lock ([`Error::NeedsExclusive`]).
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        if self.lock_mode() != LockMode::Exclusive {
            return Err(Error::NeedsExclusive { action: "prune" });
        }
        let now = SystemTime::now();
        let refs = self.refs()?;
        let records = self.record_facts()?;
        let dockerfiles = if opts
            .filters
            .iter()
            .any(|f| matches!(f, PruneFilter::Dockerfile(_)))
        {
            self.dockerfiles_by_key()?
        } else {
            BTreeMap::new()
        };
        let mut report = PruneReport::default();
        let mut state = Sweep::new(self, &refs, &records, opts.all)?;

        let matches = |r: &RecordFacts| {
            opts.filters.iter().all(|f| match f {
                PruneFilter::Until(d) => r.last_used + *d < now,
                PruneFilter::Kind(k) => &r.kind == k,
                PruneFilter::Dockerfile(p) => {
                    let by_build = dockerfiles.get(&r.key).is_some_and(|set| {
                        set.iter().any(|d| d == p || d.ends_with(&format!("/{p}")))
                    });
                    let by_location = r
                        .location
                        .as_deref()
                        .is_some_and(|l| l.rsplit_once(':').is_some_and(|(f, _)| f == p));
                    by_build || by_location
                }
            })
        };
        let mut total = state.total_size()?;
        for r in &records {
            if !matches(r) {
                continue;
            }
            if state.protected(r) {
                report.kept_referenced += 1;
                continue;
            }
            let old = opts.keep_duration.is_some_and(|d| r.last_used + d < now);
            let over = opts.keep_storage.is_some_and(|s| total > s);
            let unlimited = opts.keep_duration.is_none() && opts.keep_storage.is_none();
            if !(unlimited || old || over) {
                continue;
            }
            if !self.forget(&r.key)? {
                continue;
            }
            report.removed.push(Pruned {
                what: "record",
                id: r.key.to_string(),
                size: 0,
            });
            state.drop_record(r);
            let mut tops = vec![r.snapshot.clone()];
            tops.extend(r.chain.iter().cloned());
            for s in tops {
                let freed = state.free(&s, &mut report)?;
                total = total.saturating_sub(freed);
            }
        }
        // 2. snapshots nothing references, leaves first.
        let leaves: Vec<SnapshotId> = state.parents.keys().cloned().collect();
        for s in leaves {
            state.free(&s, &mut report)?;
        }
        // 3. blobs no tagged manifest and no layer record references.
        let layer_blobs = self.layer_blob_set()?;
        for d in self.blobs().list()? {
            if refs.image_blobs.contains_key(&d) || layer_blobs.contains(&d) {
                continue;
            }
            let size = self.blobs().size(&d).unwrap_or(0);
            if self.blobs().remove(&d)? {
                report.removed.push(Pruned {
                    what: "blob",
                    id: d.to_string(),
                    size,
                });
            }
        }
        // 4. cache mounts and the context memo: only when asked for.
        let kind_asked = |k: &str| {
            opts.filters
                .iter()
                .any(|f| matches!(f, PruneFilter::Kind(x) if x == k))
        };
        let only_kinds = opts
            .filters
            .iter()
            .any(|f| matches!(f, PruneFilter::Kind(_)));
        if opts.all && !only_kinds || kind_asked("cache-mount") {
            let dir = self.root().cache_mounts_dir();
            for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
                let entry = entry.map_err(Error::io("list", &dir))?;
                let path = entry.path();
                let size = crate::usage::tree_size(&path).unwrap_or(0);
                let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(Error::io("remove", &path))?;
                report.removed.push(Pruned {
                    what: "cache-mount",
                    id: entry.file_name().to_string_lossy().into_owned(),
                    size,
                });
            }
        }
        if opts.all && !only_kinds || kind_asked("source.local") {
            let scopes = self.context_scopes()?;
            self.db()
                .execute("DELETE FROM contenthash", [])
                .map_err(Error::db("clear contenthash memo"))?;
            for (scope, _) in scopes {
                report.removed.push(Pruned {
                    what: "source.local",
                    id: scope,
                    size: 0,
                });
            }
        }
        Ok(report)
    }

    fn layer_blob_set(&self) -> Result<BTreeSet<Digest>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT DISTINCT blob FROM layers")
            .map_err(Error::db("list layer records"))?;
        stmt.query_map([], |r| digest_at(r, 0))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list layer records"))
    }

    /// The content-hash memo's scopes (`context:<dir>…`) with their row counts.
    pub(crate) fn context_scopes(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT scope, count(*) FROM contenthash GROUP BY scope ORDER BY scope")
            .map_err(Error::db("list contenthash scopes"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("list contenthash scopes"))
    }
}

/// Bookkeeping while removing: who still holds each snapshot.
struct Sweep<'a> {
    store: &'a Store,
    refs: &'a Refs,
    all: bool,
    parents: BTreeMap<SnapshotId, Option<SnapshotId>>,
    children: BTreeMap<SnapshotId, usize>,
    holders: BTreeMap<SnapshotId, usize>,
}

impl<'a> Sweep<'a> {
    fn new(store: &'a Store, refs: &'a Refs, records: &[RecordFacts], all: bool) -> Result<Self> {
        let parents = refs.parents.clone();
        let mut children: BTreeMap<SnapshotId, usize> = BTreeMap::new();
        for p in parents.values().flatten() {
            *children.entry(p.clone()).or_default() += 1;
        }
        let mut holders: BTreeMap<SnapshotId, usize> = BTreeMap::new();
        for r in records {
            *holders.entry(r.snapshot.clone()).or_default() += 1;
            for s in &r.chain {
                *holders.entry(s.clone()).or_default() += 1;
            }
        }
        Ok(Sweep {
            store,
            refs,
            all,
            parents,
            children,
            holders,
        })
    }

    /// Snapshot bytes plus blob bytes.
    fn total_size(&self) -> Result<u64> {
        let snapshots: u64 = self.store.list_snapshots()?.iter().map(|s| s.size).sum();
        let blobs: u64 = self
            .store
            .blobs()
            .list()?
            .iter()
            .map(|d| self.store.blobs().size(d).unwrap_or(0))
            .sum();
        Ok(snapshots + blobs)
    }

    fn protected(&self, r: &RecordFacts) -> bool {
        let leased = std::iter::once(&r.snapshot)
            .chain(&r.chain)
            .any(|s| self.refs.leased.contains(s));
        let tagged = std::iter::once(&r.snapshot)
            .chain(&r.chain)
            .any(|s| self.refs.image_snapshots.contains_key(s));
        leased || (tagged && !self.all)
    }

    fn drop_record(&mut self, r: &RecordFacts) {
        for s in std::iter::once(&r.snapshot).chain(&r.chain) {
            if let Some(n) = self.holders.get_mut(s) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Removes `s` if nothing holds it, then its parent likewise; returns bytes freed.
    fn free(&mut self, s: &SnapshotId, report: &mut PruneReport) -> Result<u64> {
        let mut freed = 0;
        let mut cur = Some(s.clone());
        while let Some(s) = cur.take() {
            if !self.parents.contains_key(&s)
                || self.holders.get(&s).copied().unwrap_or(0) > 0
                || self.children.get(&s).copied().unwrap_or(0) > 0
                || self.refs.leased.contains(&s)
                || (!self.all && self.refs.image_snapshots.contains_key(&s))
            {
                break;
            }
            let size = self.store.snapshot_info(&s)?.map_or(0, |i| i.size)
                + self
                    .store
                    .layers(&s)?
                    .iter()
                    .filter(|l| !self.refs.image_blobs.contains_key(&l.blob))
                    .map(|l| l.size)
                    .sum::<u64>();
            match self.store.remove(&s) {
                Ok(()) => {}
                // The database disagrees with our snapshot of it (a lease taken meanwhile):
                // keep it.
                Err(Error::SnapshotInUse { .. } | Error::SnapshotNotFound { .. }) => break,
                Err(e) => return Err(e),
            }
            report.removed.push(Pruned {
                what: "snapshot",
                id: s.to_string(),
                size,
            });
            freed += size;
            let parent = self.parents.remove(&s).flatten();
            if let Some(p) = &parent
                && let Some(n) = self.children.get_mut(p)
            {
                *n = n.saturating_sub(1);
            }
            cur = parent;
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Root;

    fn snapshot(store: &Store, name: &str) -> crate::Committed {
        let a = store.prepare(None).unwrap();
        fs::write(a.fs().join(name), name).unwrap();
        store.commit(a, name).unwrap()
    }

    #[test]
    fn prune_keeps_what_a_live_lease_holds_and_needs_the_exclusive_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let shared = Store::open(&root).unwrap();
        assert!(matches!(
            shared.prune(&PruneOptions::default()),
            Err(Error::NeedsExclusive { .. })
        ));
        drop(shared);
        let store = Store::open_exclusive(&root).unwrap();
        let (held, free) = (snapshot(&store, "held"), snapshot(&store, "free"));
        let (k1, k2) = (Digest::of("k1"), Digest::of("k2"));
        store.save(&k1, "{}", &held).unwrap();
        store.save(&k2, "{}", &free).unwrap();
        let lease = store.lease().unwrap();
        lease.protect(&held).unwrap();
        // As a build does before its first step: only a written lease is seen by a prune in
        // another process.
        lease.persist().unwrap();
        let all = PruneOptions {
            all: true,
            ..PruneOptions::default()
        };
        let report = store.prune(&all).unwrap();
        assert_eq!(report.count("record"), 1);
        assert_eq!(report.kept_referenced, 1);
        assert!(store.cache_record(&k1).unwrap().is_some());
        assert!(store.get(&held.id).is_ok());
        assert!(store.cache_record(&k2).unwrap().is_none());
        assert!(store.get(&free.id).is_err());
        assert!(!store.fs_path(&free.id).exists());
        drop(lease);
        let report = store.prune(&all).unwrap();
        assert_eq!(report.count("record"), 1);
        assert_eq!(report.count("snapshot"), 1);
        assert!(store.list_snapshots().unwrap().is_empty());
    }
}
