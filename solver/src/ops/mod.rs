//! The ops: what each vertex kind does once its key missed the cache.
//!
//! Each function runs on a blocking thread (or awaits the executor), takes its inputs' results,
//! and returns committed snapshots. Caching, events and cancellation are the scheduler's job.

pub(crate) mod source;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dray_cache::{Committed, LayerRecord, Lease, Store};
use dray_fsutil::fileop::{DeferredDir, ReplayLinks, ReplaySink};
use dray_image::layer::{Compression, DiffSource, LayerOptions, write_layer_replaying};
use dray_llb::{ActionInput, ExecOp, FileOp, MountKind};

use crate::error::OpError;
use crate::executor::{ExecSpec, Executor, LogSink, MountSpec, RootFs};
use crate::fs::actions::apply;
use crate::result::ResultRef;
use crate::secrets::Materialized;

/// The per-step facts an op needs besides its inputs.
pub(crate) struct StepCx<'a> {
    pub store: &'a Store,
    pub lease: &'a Arc<Lease>,
    pub vertex: dray_llb::Digest,
    pub name: &'a str,
}

fn committed(cx: &StepCx<'_>, c: Committed) -> Result<ResultRef, OpError> {
    cx.lease.protect(&c)?;
    Ok(ResultRef::committed(c, cx.lease.clone()))
}

/// How file ops write their layers (from [`crate::SolveOptions`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerSettings {
    /// Clamps mtimes in a layer written by the op itself.
    pub source_date_epoch: Option<i64>,
    /// Defer the directories copies create (see [`file`]).
    pub defer_copies: bool,
}

/// The compression of the layer a deferring file op writes: the store's default export
/// (`AssembleOptions`), so that tagging the image reuses the blob as is.
const DEFERRED_LAYER_COMPRESSION: Compression = Compression::Gzip { level: 6 };

/// A file op: a linear chain of actions on one base (the shape the converter builds).
///
/// With [`LayerSettings::defer_copies`], directories the copies create are not filled on
/// disk: the op writes its layer blob right away, reading the copied files from their source
/// ([`write_layer_replaying`]), and commits a lazy snapshot that is filled in from that blob
/// only if a later step needs the files (`dray_image::lazy`). A large `COPY` then costs one
/// read of each file instead of creating every inode and reading it back. Should anything
/// need to look inside a deferred directory while the op runs (a second source merging into
/// it, a lazy base) the op is redone the plain way, with its base and sources materialized.
pub(crate) fn file(
    cx: &StepCx<'_>,
    op: &FileOp,
    inputs: &[ResultRef],
    layers: &LayerSettings,
) -> Result<Vec<ResultRef>, OpError> {
    let linear = op.actions.iter().enumerate().all(|(i, s)| {
        let input_ok = match s.input {
            ActionInput::Input(_) => i == 0,
            ActionInput::Action(a) => i > 0 && a as usize == i - 1,
        };
        let secondary_ok = !matches!(s.secondary_input, Some(ActionInput::Action(_)));
        let output_ok = s.output == (i + 1 == op.actions.len()).then_some(0);
        input_ok && secondary_ok && output_ok
    });
    if !linear {
        return Err(OpError::UnsupportedFileOption {
            action: "file op",
            option: "branching action chains or several outputs",
        });
    }
    let ActionInput::Input(base) = op.actions[0].input else {
        unreachable!("checked above: the first step edits a node input")
    };
    let base = input(inputs, base)?;
    if base.chain_ids().is_empty() && !base.is_empty() {
        return Err(OpError::UnsupportedSource {
            id: "local://context".into(),
            reason: "a local directory cannot be the base of a file op",
        });
    }
    // Sources are read in full: fill in lazy ones. The base is only looked up.
    for step in &op.actions {
        if let Some(ActionInput::Input(i)) = step.secondary_input {
            materialize_chain(cx.store, input(inputs, i)?.chain_ids())?;
        }
    }
    if layers.defer_copies {
        match file_into(cx, op, inputs, base, Some(layers)) {
            Err(OpError::Fs(dray_fsutil::Error::Deferred { .. })) => {}
            done => return done,
        }
        materialize_chain(cx.store, base.chain_ids())?;
    }
    file_into(cx, op, inputs, base, None)
}

/// Runs the actions of `op` into a new snapshot on `base`; with `defer`, deferring copies
/// and writing the layer (see [`file`]).
fn file_into(
    cx: &StepCx<'_>,
    op: &FileOp,
    inputs: &[ResultRef],
    base: &ResultRef,
    defer: Option<&LayerSettings>,
) -> Result<Vec<ResultRef>, OpError> {
    let active = cx.store.prepare(base.as_parent().as_ref())?;
    let lower = base.tree(cx.store).chain()?;
    let upper = active.fs();
    let mut sources = Vec::new();
    let mut deferred: HashMap<PathBuf, (DeferredDir, usize)> = HashMap::new();
    for step in &op.actions {
        let src = match step.secondary_input {
            Some(ActionInput::Input(i)) => Some(input(inputs, i)?.tree(cx.store)),
            _ => None,
        };
        let applied = apply(&step.action, src.as_ref(), &lower, &upper, defer.is_some())?;
        for dir in applied.deferred {
            deferred.insert(dir.target().to_owned(), (dir, sources.len()));
        }
        sources.push(applied.source);
    }
    let Some(settings) = defer.filter(|_| !deferred.is_empty()) else {
        let c = cx.store.commit(active, cx.name)?;
        return Ok(vec![with_full_chain(cx, c, base)?]);
    };
    let mut links = ReplayLinks::default();
    let mut replay = |rel: &Path, sink: &mut dyn ReplaySink| -> dray_fsutil::Result<()> {
        // A marked directory this op did not defer cannot be: it would have been copied from
        // a source, whose marks lookups refuse.
        let (dir, source) = deferred
            .get(rel)
            .ok_or_else(|| dray_fsutil::Error::Deferred {
                path: Path::new("/").join(rel),
            })?;
        let source = sources[*source]
            .as_deref()
            .ok_or_else(|| dray_fsutil::Error::Deferred {
                path: Path::new("/").join(rel),
            })?;
        dray_fsutil::fileop::replay(dir, source, &mut links, sink)
    };
    let options = LayerOptions::new(DiffSource::OverlayUpper)
        .with_compression(DEFERRED_LAYER_COMPRESSION)
        .with_source_date_epoch(settings.source_date_epoch);
    let mut writer = cx.store.blobs().writer()?;
    let info = write_layer_replaying(&upper, &options, &mut writer, &mut replay)?;
    // The blob writer hashed the bytes independently: committing with the layer's own digest
    // and size checks the two agree before the blob is visible.
    let blob = writer.commit(Some((info.digest, info.size)))?;
    let record = LayerRecord {
        snapshot: active.id().clone(),
        media_type: info.media_type.to_owned(),
        diff_id: info.diff_id,
        blob: blob.digest,
        size: blob.size,
    };
    let c = cx.store.commit_lazy(active, cx.name, &record)?;
    Ok(vec![with_full_chain(cx, c, base)?])
}

/// Fills in the lazy snapshots of `chain` (see `dray_image::lazy`).
pub(crate) fn materialize_chain(
    store: &Store,
    chain: &[dray_cache::SnapshotId],
) -> Result<(), OpError> {
    Ok(dray_image::lazy::materialize_chain(store, chain)?)
}

/// The committed result of a step prepared on `base`: its chain is the base's full chain (which
/// after a merge is longer than the parent links) plus the new snapshot.
fn with_full_chain(cx: &StepCx<'_>, c: Committed, base: &ResultRef) -> Result<ResultRef, OpError> {
    cx.lease.protect(&c)?;
    // The chain as the store records it (parent links), which a later lookup would return.
    let c = cx.store.get(&c.id)?;
    let mut chain = base.chain_ids().to_vec();
    chain.push(c.id.clone());
    if chain == c.chain {
        return committed(cx, c);
    }
    Ok(ResultRef::chain(chain, Some(c), cx.lease.clone()))
}

fn input(inputs: &[ResultRef], i: u32) -> Result<&ResultRef, OpError> {
    inputs.get(i as usize).ok_or(OpError::Internal {
        message: format!("input {i} is missing"),
    })
}

/// A merge: the inputs' chains, concatenated. No new directory.
pub(crate) fn merge(cx: &StepCx<'_>, inputs: &[ResultRef]) -> Result<Vec<ResultRef>, OpError> {
    let chain: Vec<_> = inputs
        .iter()
        .flat_map(|r| r.chain_ids().iter().cloned())
        .collect();
    let top = match chain.last() {
        Some(id) => Some(cx.store.get(id)?),
        None => None,
    };
    Ok(vec![ResultRef::chain(chain, top, cx.lease.clone())])
}

/// What an exec runs with besides its inputs.
pub(crate) struct ExecRun<'a> {
    pub executor: &'a dyn Executor,
    /// The build's secrets and SSH agents, as host paths (never part of a key).
    pub secrets: &'a Materialized,
    pub logs: &'a dyn LogSink,
    pub cancel: &'a CancellationToken,
}

/// An exec: prepares the root snapshot and hands the step to the executor.
pub(crate) async fn exec(
    cx: &StepCx<'_>,
    op: &ExecOp,
    inputs: &[ResultRef],
    run: &ExecRun<'_>,
) -> Result<Vec<ResultRef>, OpError> {
    let unsupported = |option| OpError::UnsupportedFileOption {
        action: "RUN",
        option,
    };
    let root = op
        .mounts
        .iter()
        .find(|m| m.dest == "/")
        .ok_or(unsupported("a step without a root mount"))?;
    if op
        .mounts
        .iter()
        .any(|m| m.dest != "/" && m.output.is_some())
    {
        return Err(unsupported("writable mounts with outputs besides the root"));
    }
    let base = match root.input {
        Some(i) => Some(input(inputs, i)?),
        None => None,
    };
    // Overlay reads the layers as directories, and a cache mount is seeded from its input's
    // files: fill in lazy ones (off the async threads).
    let mut chains: Vec<Vec<dray_cache::SnapshotId>> = Vec::new();
    chains.extend(base.map(|b| b.chain_ids().to_vec()));
    for m in &op.mounts {
        if let Some(i) = m.input {
            chains.push(input(inputs, i)?.chain_ids().to_vec());
        }
    }
    let store = cx.store.clone();
    tokio::task::spawn_blocking(move || {
        chains
            .iter()
            .try_for_each(|chain| materialize_chain(&store, chain))
    })
    .await
    .map_err(|e| OpError::Internal {
        message: e.to_string(),
    })??;
    let parent = base.and_then(ResultRef::as_parent);
    let active = cx.store.prepare(parent.as_ref())?;
    let mut lowers = base.map(|b| b.layer_dirs(cx.store)).unwrap_or_default();
    lowers.reverse();
    let mut mounts = Vec::new();
    for m in op.mounts.iter().filter(|m| m.dest != "/") {
        // Secret and SSH mounts: the host path (a missing optional one is skipped, a missing
        // required one fails the step, naming its id).
        let host_source = run.secrets.host_source(&m.kind)?;
        if matches!(m.kind, MountKind::Secret(_) | MountKind::Ssh(_)) && host_source.is_none() {
            continue;
        }
        let mounted = match (m.input, &m.kind) {
            (Some(i), MountKind::Bind) => Some(input(inputs, i)?),
            _ => None,
        };
        let mut l = mounted.map(|r| r.layer_dirs(cx.store)).unwrap_or_default();
        let local_dir = mounted.and_then(|r| r.local_dir()).map(ToOwned::to_owned);
        let excluded = match mounted.map(|r| r.tree(cx.store)) {
            Some(crate::fs::Tree::Dir { root, patterns }) => {
                tokio::task::spawn_blocking(move || {
                    crate::context_mount::excluded(&root, &patterns)
                })
                .await
                .map_err(|e| OpError::Internal {
                    message: e.to_string(),
                })??
            }
            _ => Vec::new(),
        };
        l.reverse();
        let cache_dir = match &m.kind {
            MountKind::Cache { id, .. } => {
                let dir = cx
                    .store
                    .root()
                    .path()
                    .join("cache-mounts") // owned by the solver (cache crate layout docs)
                    .join(dray_llb::Digest::of(id).hex());
                // Seeded once, on creation, from the mount's input (`from=`, or the
                // frontend's `uid=`/`gid=`/`mode=` directory); see `cache_mount`.
                let seed = match m.input {
                    Some(i) => Some((input(inputs, i)?.tree(cx.store), m.selector.clone())),
                    None => None,
                };
                let at = dir.clone();
                tokio::task::spawn_blocking(move || crate::cache_mount::ensure(&at, seed))
                    .await
                    .map_err(|e| OpError::Internal {
                        message: e.to_string(),
                    })??;
                Some(dir)
            }
            _ => None,
        };
        mounts.push(MountSpec {
            host_source,
            cache_dir,
            local_dir,
            excluded,
            dest: m.dest.clone(),
            lowers: l,
            selector: m.selector.clone(),
            readonly: m.readonly,
            kind: m.kind.clone(),
        });
    }
    let spec = ExecSpec {
        vertex: cx.vertex,
        name: cx.name.to_owned(),
        meta: op.meta.clone(),
        network: op.network,
        security: op.security,
        rootfs: RootFs {
            lowers,
            upper: active.fs(),
            work: active.work(),
        },
        mounts,
    };
    run.executor.run(&spec, run.logs, run.cancel).await?;
    if root.output != Some(0) {
        return Err(unsupported("a root mount that is not output 0"));
    }
    let store = cx.store.clone();
    let name = cx.name.to_owned();
    let c = tokio::task::spawn_blocking(move || store.commit(active, &name))
        .await
        .map_err(|e| OpError::Internal {
            message: e.to_string(),
        })??;
    match base {
        Some(b) => Ok(vec![with_full_chain(cx, c, b)?]),
        None => Ok(vec![committed(cx, c)?]),
    }
}
