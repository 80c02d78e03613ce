//! Image assembly: a snapshot chain plus an image config → layer blobs, a config blob and an
//! OCI image manifest in the content store (architecture B5 step 4). Start at [`assemble`].
//!
//! ```text
//! head chain:  [ s0  s1 | s2   s3   s4 ]      base image: layers L0 L1, config (history, diff_ids)
//!               └ base ┘ └ new snapshots ┘
//!                          │    │    │   layer record for the compression?  yes → reuse blob
//!                          │    │    │                                       no  → write_layer →
//!                          ▼    ▼    ▼                                  BlobWriter → put_layer
//! manifest.layers = L0 L1 | B2  ·   B4        (s3's diff is empty: dropped, history entry flips
//! config.rootfs   = d0 d1 | d2      d4         to `empty_layer: true`, as BuildKit does)
//! ```
//!
//! # Rules (what BuildKit's `exporter/containerimage/writer.go` does, and what dray does)
//!
//! | topic | rule |
//! |---|---|
//! | base layers | the first `base.layers.len()` snapshots of the chain are the base image's; their descriptors and diff_ids are reused verbatim, nothing is re-exported |
//! | memo | a snapshot with a layer record for the requested media type reuses it: no tar is written. The record is keyed by media type, so gzip level 6 and 9 share it |
//! | empty diff | a snapshot whose `fs/` has no entries produces no layer. BuildKit drops layers whose blob is the empty gzip tar (`sha256:4f4fb700…`) and sets `empty_layer` on their history entry; dray does the same, without writing the empty tar |
//! | history ↔ layers | history entries with `empty_layer == false` after the base's entries correspond, in order, to the new snapshots. Too many such entries: the surplus (from the top) becomes empty; too few: entries are appended from the snapshot descriptions with comment [`EXPORTER_COMMENT`] (BuildKit's `normalizeLayersAndHistory`) |
//! | base history | kept: if `config.history` does not already start with the base's history it is prepended |
//! | times | with `SOURCE_DATE_EPOCH`: config `created` is the epoch, and a new history entry's `created` that is missing, unparsable or later than the epoch becomes the epoch (BuildKit's `patchImageConfig`); base entries are kept. Without: config `created` is `now`, and new entries without a time get `now` |
//! | no layer at all | `FROM scratch` plus steps with empty diffs gives `"layers": []`, as BuildKit (which writes `null`) does; the OCI JSON schema's `minItems: 1` rejects such a manifest, the spec text only says SHOULD |
//! | parallelism | up to [`AssembleOptions::jobs`] layers are written at once; results are placed by chain position, so order and bytes do not depend on scheduling |
//!
//! The manifest is written last, after every blob it names: a crash leaves at most unreferenced
//! blobs (GC'd later), never a manifest with missing content.

use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use dray_cache::{Descriptor, LayerRecord, SnapshotId, Store};
use dray_llb::{Digest, History, ImageConfig};

use crate::Error;
use crate::layer::{Compression, DiffSource, LayerOptions, write_layer};
use crate::manifest::{MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest, canonical_json};
use crate::time::{parse_rfc3339, rfc3339, rfc3339_system};

/// The `comment` of history entries that assembly adds for layers the config did not account
/// for (BuildKit writes `buildkit.exporter.image.v0` in the same case).
pub const EXPORTER_COMMENT: &str = "dray.exporter.image.v0";

/// The image a build started `FROM`: its layer descriptors (reused verbatim) and its config
/// (whose `rootfs.diff_ids` and `history` come first in the result).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The base manifest's layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// The base image's config.
    pub config: ImageConfig,
}

/// How to assemble.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssembleOptions {
    /// Compression of new layers.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH` (seconds): clamps file mtimes in new layers and sets every new
    /// timestamp in the config, so the same inputs give the same manifest digest.
    pub source_date_epoch: Option<i64>,
    /// The time to write when there is no epoch.
    pub now: SystemTime,
    /// How many layers to write at once (at least 1).
    pub jobs: usize,
}

impl AssembleOptions {
    /// gzip level 6, no epoch, `now` = the current time, one job per available CPU.
    pub fn new() -> AssembleOptions {
        AssembleOptions {
            compression: Compression::Gzip { level: 6 },
            source_date_epoch: None,
            now: SystemTime::now(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// These options with another compression.
    pub fn with_compression(mut self, compression: Compression) -> AssembleOptions {
        self.compression = compression;
        self
    }

    /// These options with `SOURCE_DATE_EPOCH`.
    pub fn with_source_date_epoch(mut self, epoch: Option<i64>) -> AssembleOptions {
        self.source_date_epoch = epoch;
        self
    }

    /// These options with another "now".
    pub fn with_now(mut self, now: SystemTime) -> AssembleOptions {
        self.now = now;
        self
    }

    /// These options with another parallelism (clamped to at least 1).
    pub fn with_jobs(mut self, jobs: usize) -> AssembleOptions {
        self.jobs = jobs.max(1);
        self
    }
}

impl Default for AssembleOptions {
    fn default() -> Self {
        AssembleOptions::new()
    }
}

/// What happened to one new snapshot of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerOutcome {
    /// Its diff is empty: no layer.
    Empty,
    /// Its layer record was reused (no tar written).
    Reused(LayerRecord),
    /// Its layer was written now.
    Written(LayerRecord),
}

impl LayerOutcome {
    /// The layer record, unless the diff was empty.
    pub fn record(&self) -> Option<&LayerRecord> {
        match self {
            LayerOutcome::Empty => None,
            LayerOutcome::Reused(r) | LayerOutcome::Written(r) => Some(r),
        }
    }
}

/// An assembled image: everything is in the content store, nothing is tagged yet.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    /// The manifest's digest (what a registry calls the image digest).
    pub manifest_digest: Digest,
    /// The config's digest (what `docker images` shows as IMAGE ID).
    pub config_digest: Digest,
    /// The manifest descriptor, ready for [`dray_cache::Store::tag`].
    pub manifest: Descriptor,
    /// The config as written.
    pub config: ImageConfig,
    /// The manifest's layer descriptors, base first.
    pub layers: Vec<Descriptor>,
    /// One outcome per new snapshot (the chain above the base), in chain order.
    pub outcomes: Vec<(SnapshotId, LayerOutcome)>,
}

/// Assembles the image whose filesystem is the snapshot chain `head` (root first, as
/// [`dray_cache::Committed::chain`]) on top of `base`, with `config` (from the converter: runtime
/// config and history; `rootfs` and times are filled here). See the module docs for the rules.
pub fn assemble(
    store: &Store,
    head: &[SnapshotId],
    base: Option<&BaseImage>,
    config: ImageConfig,
    opts: &AssembleOptions,
) -> Result<BuiltImage, Error> {
    let base_layers = base.map_or(0, |b| b.layers.len());
    if let Some(b) = base
        && b.config.rootfs.diff_ids.len() != b.layers.len()
    {
        return Err(Error::BaseLayerCount {
            layers: b.layers.len(),
            diff_ids: b.config.rootfs.diff_ids.len(),
        });
    }
    if head.len() < base_layers {
        return Err(Error::ChainShorterThanBase {
            chain: head.len(),
            base: base_layers,
        });
    }
    let new = &head[base_layers..];
    let outcomes = export_layers(store, new, opts)?;

    let mut config = config;
    let new_start = merge_base_history(&mut config, base);
    let descriptions = new
        .iter()
        .map(|id| {
            Ok(store
                .snapshot_info(id)?
                .map(|i| i.description)
                .filter(|d| !d.is_empty()))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    pair_history(&mut config.history, new_start, &outcomes, &descriptions);
    let stamp = match opts.source_date_epoch {
        Some(epoch) => rfc3339(epoch, 0),
        None => rfc3339_system(opts.now),
    };
    for h in &mut config.history[new_start..] {
        // BuildKit's rule: with an epoch, a time that is missing or later than the epoch becomes
        // the epoch (earlier ones stay); without one, only missing times are filled.
        let replace = match (&h.created, opts.source_date_epoch) {
            (None, _) => true,
            (Some(t), Some(epoch)) => parse_rfc3339(t)
                .is_none_or(|(secs, nanos)| secs > epoch || (secs == epoch && nanos > 0)),
            (Some(_), None) => false,
        };
        if replace {
            h.created = Some(stamp.clone());
        }
    }
    config.created = Some(stamp);

    let mut layers: Vec<Descriptor> = base.map(|b| b.layers.clone()).unwrap_or_default();
    let mut diff_ids: Vec<String> = base
        .map(|b| b.config.rootfs.diff_ids.clone())
        .unwrap_or_default();
    for outcome in &outcomes {
        if let Some(r) = outcome.record() {
            layers.push(Descriptor::new(r.media_type.clone(), r.blob, r.size));
            diff_ids.push(r.diff_id.to_string());
        }
    }
    config.rootfs.kind = "layers".to_owned();
    config.rootfs.diff_ids = diff_ids;

    let config_bytes = canonical_json("image config", &config)?;
    let config_blob = store.blobs().put_bytes(&config_bytes)?;
    let manifest = Manifest::new(
        Descriptor::new(MEDIA_TYPE_CONFIG, config_blob.digest, config_blob.size),
        layers.clone(),
    );
    let manifest_bytes = canonical_json("image manifest", &manifest)?;
    let manifest_blob = store.blobs().put_bytes(&manifest_bytes)?;
    Ok(BuiltImage {
        manifest_digest: manifest_blob.digest,
        config_digest: config_blob.digest,
        manifest: Descriptor::new(
            MEDIA_TYPE_MANIFEST,
            manifest_blob.digest,
            manifest_blob.size,
        ),
        config,
        layers,
        outcomes: new.iter().cloned().zip(outcomes).collect(),
    })
}

/// Makes `config.history` start with the base's history; returns where the new entries start.
fn merge_base_history(config: &mut ImageConfig, base: Option<&BaseImage>) -> usize {
    let Some(base) = base else { return 0 };
    let base_history = &base.config.history;
    if !config.history.starts_with(base_history) {
        config.history.splice(0..0, base_history.iter().cloned());
    }
    base_history.len()
}

/// Pairs the new non-empty history entries with the new snapshots, in order (BuildKit's
/// `normalizeLayersAndHistory`): an entry whose snapshot's diff is empty, or that has no snapshot
/// left, becomes `empty_layer`; snapshots no entry accounts for get an appended entry.
fn pair_history(
    history: &mut Vec<History>,
    new_start: usize,
    outcomes: &[LayerOutcome],
    descriptions: &[Option<String>],
) {
    let mut layer = 0;
    for h in &mut history[new_start..] {
        if h.empty_layer {
            continue;
        }
        match outcomes.get(layer) {
            None => h.empty_layer = true,
            Some(outcome) => {
                h.empty_layer = matches!(outcome, LayerOutcome::Empty);
                layer += 1;
            }
        }
    }
    for (outcome, description) in outcomes.iter().zip(descriptions).skip(layer) {
        history.push(History {
            created: None,
            created_by: Some(
                description
                    .clone()
                    .unwrap_or_else(|| "created by dray".to_owned()),
            ),
            comment: Some(EXPORTER_COMMENT.to_owned()),
            empty_layer: matches!(outcome, LayerOutcome::Empty),
        });
    }
}

/// Exports the new snapshots, up to `opts.jobs` at a time; results in input order.
fn export_layers(
    store: &Store,
    new: &[SnapshotId],
    opts: &AssembleOptions,
) -> Result<Vec<LayerOutcome>, Error> {
    let jobs = opts.jobs.clamp(1, new.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<LayerOutcome, Error>>>> =
        Mutex::new((0..new.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = new.get(i) else { break };
                    let result = export_one(store, id, opts).map_err(|e| Error::ExportLayer {
                        snapshot: id.clone(),
                        source: Box::new(e),
                    });
                    let failed = result.is_err();
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                    if failed {
                        // Stop handing out work; layers already started finish.
                        next.store(new.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // Workers stop only after a failure, so a slot that never ran implies an error in another
    // slot; report the first failure in chain order.
    let mut out = Vec::with_capacity(new.len());
    let mut first_error = None;
    for r in results.into_iter().flatten() {
        match r {
            Ok(outcome) => out.push(outcome),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// One snapshot → its layer (memoized by media type), or `Empty`.
fn export_one(
    store: &Store,
    id: &SnapshotId,
    opts: &AssembleOptions,
) -> Result<LayerOutcome, Error> {
    // The snapshot must be committed: an active one could still change under the tar writer.
    store.get(id)?;
    let fs_dir = store.fs_path(id);
    let is_empty = fs::read_dir(&fs_dir)
        .map_err(|source| Error::Walk {
            path: fs_dir.clone(),
            source,
        })?
        .next()
        .is_none();
    if is_empty {
        return Ok(LayerOutcome::Empty);
    }
    let media_type = opts.compression.media_type();
    if let Some(record) = store.layer(id, media_type)?
        && store.blobs().contains(&record.blob)?
    {
        return Ok(LayerOutcome::Reused(record));
    }
    // A lazy snapshot's `fs/` is partial: fill it in from the layer it has (in another
    // compression) before writing this one from disk.
    crate::lazy::materialize(store, id)?;
    let mut writer = store.blobs().writer()?;
    let layer_opts = LayerOptions::new(DiffSource::OverlayUpper)
        .with_compression(opts.compression)
        .with_source_date_epoch(opts.source_date_epoch);
    let info = write_layer(&fs_dir, &layer_opts, &mut writer)?;
    // The writer hashed the bytes it received independently of `write_layer`: committing with
    // the layer's own digest and size verifies the two agree before the blob becomes visible.
    let blob = writer.commit(Some((info.digest, info.size)))?;
    let record = LayerRecord {
        snapshot: id.clone(),
        media_type: media_type.to_owned(),
        diff_id: info.diff_id,
        blob: blob.digest,
        size: blob.size,
    };
    store.put_layer(&record)?;
    Ok(LayerOutcome::Written(record))
}
