//! What keeps content alive ([`Refs`]: the GC roots) and the automatic GC policy
//! ([`GcPolicy`], read from `<root>/dray.toml` and the environment).
//!
//! # GC roots
//!
//! | root | keeps |
//! |---|---|
//! | a tag in `index.json` | its manifest, config and layer blobs (an index: its manifests, recursively); the snapshots whose layer record names one of its layers, with their ancestors; the head chain of the build records that produced that manifest |
//! | a live lease (a running build) | the snapshots it holds, with their ancestors |
//! | a cache record | its snapshot (and a merge's `result_chain`), with ancestors |
//! | a layer record | its blob, while its snapshot exists |
//!
//! A record is *referenced* when its snapshot is kept by a tag or a lease: `prune` without
//! `--all` never removes it. See `prune.rs` for the order things are removed in.
//!
//! # `dray.toml`
//!
//! ```toml
//! [gc]
//! enabled = true          # automatic GC after each build (DRAY_GC=0 turns it off)
//! keep-storage = "10%"    # of the root's filesystem, or "20GB", "512MiB" (DRAY_GC_KEEP_STORAGE)
//! keep-duration = "60d"   # records unused this long go (DRAY_GC_KEEP_DURATION); "0" = never
//! ```
//!
//! The defaults follow BuildKit's default GC rules (keep 10% of the disk; drop what has not
//! been used for 60 days). The environment overrides the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::Duration;

use dray_llb::Digest;
use serde::Deserialize;

use crate::db::now_ms;
use crate::env;
use crate::error::{Error, Result};
use crate::snapshots::SnapshotId;
use crate::store::Store;

/// How much space to keep: bytes, or a share of the root's filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    /// An absolute size in bytes.
    Bytes(u64),
    /// A percentage of the filesystem holding the root.
    Percent(f64),
}

impl Storage {
    /// Parses `10%`, `20GB`, `512MiB`, `1.5G`, `1048576`.
    pub fn parse(s: &str) -> Option<Storage> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().ok()?;
            return (0.0..=100.0).contains(&p).then_some(Storage::Percent(p));
        }
        parse_size(s).map(Storage::Bytes)
    }

    /// The byte count, resolving a percentage against the filesystem of `store`'s root.
    pub fn bytes(self, store: &Store) -> u64 {
        match self {
            Storage::Bytes(b) => b,
            Storage::Percent(p) => rustix::fs::statvfs(store.root().path())
                .map(|v| ((v.f_blocks * v.f_frsize) as f64 * p / 100.0) as u64)
                .unwrap_or(u64::MAX),
        }
    }
}

/// `1024`, `10kB`, `20GB` (decimal), `512MiB`, `1.5G` (binary when the `i` is there or the
/// unit is one letter, as docker's `--keep-storage` reads `10G`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    (num >= 0.0).then_some((num * mult) as u64)
}

/// `90s`, `30m`, `48h`, `60d`, `2w`, `1h30m`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        let num: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return None,
        };
        total += num * secs;
        rest = tail;
    }
    Some(Duration::from_secs_f64(total))
}

/// The automatic GC policy (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GcPolicy {
    /// Run GC after each build.
    pub enabled: bool,
    /// Prune unreferenced records (least recently used first) while the store is larger.
    pub keep_storage: Storage,
    /// Prune unreferenced records unused for longer (`None`: no age limit).
    pub keep_duration: Option<Duration>,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            enabled: true,
            keep_storage: Storage::Percent(10.0),
            keep_duration: Some(Duration::from_secs(60 * 86_400)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    gc: GcSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GcSection {
    enabled: Option<bool>,
    keep_storage: Option<String>,
    keep_duration: Option<String>,
}

impl GcPolicy {
    /// The policy of `store`: defaults, then `<root>/dray.toml`, then the environment.
    pub fn load(store: &Store) -> Result<GcPolicy> {
        GcPolicy::load_with(store, env::var_os)
    }

    /// [`GcPolicy::load`] with the environment injected, for tests.
    pub fn load_with(
        store: &Store,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<GcPolicy> {
        let mut policy = GcPolicy::default();
        let path = store.root().config_file();
        let bad = |what: &str, value: &str| Error::Config {
            path: path.clone(),
            problem: format!("invalid {what} {value:?}"),
        };
        let file: ConfigFile = match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| Error::Config {
                path: path.clone(),
                problem: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        let from_env = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        if let Some(v) = file.gc.enabled {
            policy.enabled = v;
        }
        if let Some(v) = from_env(env::DRAY_GC) {
            policy.enabled = !matches!(v.as_str(), "0" | "false" | "off" | "no");
        }
        let storage = from_env(env::DRAY_GC_KEEP_STORAGE).or(file.gc.keep_storage);
        if let Some(v) = storage {
            policy.keep_storage = Storage::parse(&v).ok_or_else(|| bad("keep-storage", &v))?;
        }
        let duration = from_env(env::DRAY_GC_KEEP_DURATION).or(file.gc.keep_duration);
        if let Some(v) = duration {
            let d = parse_duration(&v).ok_or_else(|| bad("keep-duration", &v))?;
            policy.keep_duration = (!d.is_zero()).then_some(d);
        }
        Ok(policy)
    }
}

/// What keeps snapshots and blobs alive (module table).
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// Snapshot → names of tagged images that use it.
    pub(crate) image_snapshots: BTreeMap<SnapshotId, BTreeSet<String>>,
    /// Blob → names of tagged images whose manifest closure holds it.
    pub(crate) image_blobs: BTreeMap<Digest, BTreeSet<String>>,
    /// Snapshots held by live leases, with ancestors.
    pub(crate) leased: BTreeSet<SnapshotId>,
    /// Parent of every committed snapshot.
    pub(crate) parents: BTreeMap<SnapshotId, Option<SnapshotId>>,
    /// Blobs named by layer records.
    pub(crate) layer_blobs: BTreeSet<Digest>,
}

/// The manifest fields that name other blobs.
#[derive(Deserialize)]
struct BlobRefs {
    config: Option<BlobRef>,
    #[serde(default)]
    layers: Vec<BlobRef>,
    #[serde(default)]
    manifests: Vec<BlobRef>,
}

#[derive(Deserialize)]
struct BlobRef {
    digest: Digest,
}

impl Store {
    pub(crate) fn refs(&self) -> Result<Refs> {
        let mut refs = Refs::default();
        let (layers, heads) = {
            let conn = self.db();
            let mut stmt = conn
                .prepare("SELECT id, parent FROM snapshots")
                .map_err(Error::db("list snapshots"))?;
            refs.parents = stmt
                .query_map([], |r| {
                    Ok((
                        SnapshotId::from_db(r.get(0)?),
                        r.get::<_, Option<String>>(1)?.map(SnapshotId::from_db),
                    ))
                })
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list snapshots"))?;
            let mut stmt = conn
                .prepare("SELECT snapshot, blob FROM layers")
                .map_err(Error::db("list layer records"))?;
            let layers: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list layer records"))?;
            let mut stmt = conn
                .prepare("SELECT manifest, info FROM builds WHERE manifest IS NOT NULL")
                .map_err(Error::db("list builds"))?;
            let heads: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(Error::db("list builds"))?;
            (layers, heads)
        };
        let mut snapshots_of_blob: BTreeMap<Digest, Vec<SnapshotId>> = BTreeMap::new();
        for (snapshot, blob) in layers {
            if let Ok(blob) = blob.parse::<Digest>() {
                refs.layer_blobs.insert(blob);
                snapshots_of_blob
                    .entry(blob)
                    .or_default()
                    .push(SnapshotId::from_db(snapshot));
            }
        }
        let mut heads_of_manifest: BTreeMap<String, Vec<SnapshotId>> = BTreeMap::new();
        for (manifest, info) in heads {
            let chain = serde_json::from_str::<serde_json::Value>(&info)
                .ok()
                .and_then(|v| {
                    v.get("head_chain").and_then(|c| c.as_array()).map(|c| {
                        c.iter()
                            .filter_map(|s| s.as_str()?.parse::<SnapshotId>().ok())
                            .collect::<Vec<_>>()
                    })
                })
                .unwrap_or_default();
            heads_of_manifest.entry(manifest).or_default().extend(chain);
        }
        for image in self.list_images()? {
            let name = image.name;
            let mut todo = vec![image.descriptor.digest];
            let mut seen = BTreeSet::new();
            if let Some(chain) = heads_of_manifest.get(&image.descriptor.digest.to_string()) {
                for s in chain {
                    refs.image_snapshots
                        .entry(s.clone())
                        .or_default()
                        .insert(name.clone());
                }
            }
            while let Some(d) = todo.pop() {
                if !seen.insert(d) {
                    continue;
                }
                refs.image_blobs.entry(d).or_default().insert(name.clone());
                for s in snapshots_of_blob.get(&d).into_iter().flatten() {
                    refs.image_snapshots
                        .entry(s.clone())
                        .or_default()
                        .insert(name.clone());
                }
                // Only JSON documents name other blobs; a layer is not read (its size decides).
                if self.blobs().size(&d).unwrap_or(u64::MAX) > 4 * 1024 * 1024 {
                    continue;
                }
                let Ok(bytes) = self.blobs().read(&d) else {
                    continue;
                };
                if let Ok(r) = serde_json::from_slice::<BlobRefs>(&bytes) {
                    todo.extend(r.config.map(|c| c.digest));
                    todo.extend(r.layers.iter().map(|l| l.digest));
                    todo.extend(r.manifests.iter().map(|m| m.digest));
                }
            }
        }
        // Ancestors of image snapshots belong to the image too.
        let direct: Vec<(SnapshotId, BTreeSet<String>)> = refs
            .image_snapshots
            .iter()
            .map(|(s, n)| (s.clone(), n.clone()))
            .collect();
        for (s, names) in direct {
            for a in ancestors(&refs.parents, &s) {
                refs.image_snapshots
                    .entry(a)
                    .or_default()
                    .extend(names.iter().cloned());
            }
        }
        for s in self.leased_snapshots()? {
            refs.leased.extend(ancestors(&refs.parents, &s));
            refs.leased.insert(s);
        }
        Ok(refs)
    }

    /// Whether the store is over `policy` (cheap: two indexed queries and a `statvfs`), so the
    /// build can skip GC on the common path.
    pub fn gc_needed(&self, policy: &GcPolicy) -> Result<bool> {
        let limit = policy.keep_storage.bytes(self);
        let (size, oldest): (i64, Option<i64>) = self
            .db()
            .query_row(
                "SELECT (SELECT coalesce(sum(size), 0) FROM snapshots)
                      + (SELECT coalesce(sum(size), 0) FROM layers),
                        (SELECT min(last_used) FROM cache_keys)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(Error::db("measure the store"))?;
        let too_old = match (policy.keep_duration, oldest) {
            (Some(keep), Some(oldest)) => oldest < now_ms() - keep.as_millis() as i64,
            _ => false,
        };
        Ok(size.max(0) as u64 > limit || too_old)
    }
}

/// `s`'s ancestors (not `s`), nearest first.
pub(crate) fn ancestors(
    parents: &BTreeMap<SnapshotId, Option<SnapshotId>>,
    s: &SnapshotId,
) -> Vec<SnapshotId> {
    let mut out = Vec::new();
    let mut cur = parents.get(s).cloned().flatten();
    while let Some(p) = cur {
        if out.contains(&p) {
            break;
        }
        cur = parents.get(&p).cloned().flatten();
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10kB"), Some(10_000));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("512MiB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5G"), Some(1_610_612_736));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(Storage::parse("10%"), Some(Storage::Percent(10.0)));
        assert_eq!(Storage::parse("101%"), None);
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("48h"), Some(Duration::from_secs(48 * 3600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("60d"),
            Some(Duration::from_secs(60 * 86_400))
        );
        assert_eq!(parse_duration("2 fortnights"), None);
        assert_eq!(parse_duration(""), None);
    }
}
