//! The ops: what each vertex kind does once its key missed the cache.
//!
//! Each function runs on a blocking thread (or awaits the executor), takes its inputs' results,
//! and returns committed snapshots. Caching, events and cancellation are the scheduler's job.

pub(crate) mod source;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use dray_cache::{Committed, Lease, Store};
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

/// A file op: a linear chain of actions on one base (the shape the converter builds).
pub(crate) fn file(
    cx: &StepCx<'_>,
    op: &FileOp,
    inputs: &[ResultRef],
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
    let active = cx.store.prepare(base.as_parent().as_ref())?;
    let lower = base.tree(cx.store).chain()?;
    let upper = active.fs();
    for step in &op.actions {
        let src = match step.secondary_input {
            Some(ActionInput::Input(i)) => Some(input(inputs, i)?.tree(cx.store)),
            _ => None,
        };
        apply(&step.action, src.as_ref(), &lower, &upper)?;
    }
    let c = cx.store.commit(active, cx.name)?;
    Ok(vec![with_full_chain(cx, c, base)?])
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
