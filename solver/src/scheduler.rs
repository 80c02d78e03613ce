//! The scheduler: lazy, memoized, concurrent evaluation of keys and results.
//!
//! Two once-maps keyed by vertex digest hold a *key* future and a *result* future per vertex,
//! so identical vertices (even across stages) are keyed and run once.
//!
//! 1. `keys(v)`: builds `v`'s [`CacheMap`](crate::key::CacheMap), then resolves each dependency
//!    concurrently (a [`JoinSet`]): `Definition` deps recurse into `keys(input)` (no work, no
//!    I/O beyond image resolution); `Content` deps need `result(input)` and hash it.
//! 2. `result(v)`: looks `v`'s keys up in the store. A hit is the result: nothing below `v` is
//!    materialized. A miss demands the inputs' results (concurrently), takes a permit of the
//!    [`Semaphore`] (`max_parallelism`), runs the op, saves a record per output, and reports.
//!
//! A solve is `keys(head)` then `result(head)`, so a build whose head key hits does no work.
//! The first error is recorded, cancels the [`CancellationToken`] (running executors stop,
//! pending work is skipped), and is what the solve returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{OnceCell, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use dray_cache::{Lease, Store};
use dray_llb::{Digest, Node, Op, SourceId};

use crate::cachemap;
use crate::error::{OpError, SolveError};
use crate::executor::{Executor, LogSink};
use crate::fetch::{BlobFetcher, FetchProgress};
use crate::fs::Tree;
use crate::fs::contenthash::{ContentSelector, StoreMemo, checksum};
use crate::key::{CacheMap, DepKey, Preimage, ResolvedDep, cache_key};
use crate::ops::source::{self, ResolvedImage};
use crate::ops::{self, StepCx};
use crate::reporter::{Event, EventKind, LogStream};
use crate::result::ResultRef;
use crate::{VertexOutcome, VertexStatus};

/// A failure already recorded in [`Job::first_error`] (or a cancellation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failed;

type Step<T> = Result<T, Failed>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A vertex of the graph with what the scheduler needs about it.
#[derive(Debug)]
pub(crate) struct Vertex {
    pub digest: Digest,
    pub node: Node,
    pub name: String,
    pub ignore_cache: bool,
}

/// The keys of every output of a vertex, with their preimages.
#[derive(Debug)]
pub(crate) struct Keys {
    pub preimages: Vec<Preimage>,
    pub keys: Vec<Digest>,
    /// The cached results, looked up once right after the keys are known (`None`: a miss).
    /// Looking up at key time reports every cached step in dependency order, as BuildKit's
    /// progress does, even the ones a lazy solve never needs to load.
    pub hit: Option<Vec<ResultRef>>,
}

/// Memoizes one async computation per key; concurrent callers share it.
struct OnceMap<V> {
    cells: Mutex<HashMap<Digest, Arc<OnceCell<V>>>>,
}

impl<V: Clone> OnceMap<V> {
    fn new() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }

    async fn get_or_try_init<F>(&self, key: Digest, init: F) -> Step<V>
    where
        F: Future<Output = Step<V>>,
    {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(|| init).await.cloned()
    }
}

/// A local directory (the build context, a named context) as the scheduler serves it.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub name: String,
    pub tree: Tree,
}

/// Everything one solve shares between its tasks.
pub(crate) struct Job {
    pub store: Store,
    pub executor: Arc<dyn Executor>,
    /// Where missing image layer blobs come from (a registry).
    pub fetcher: Arc<dyn BlobFetcher>,
    pub contexts: Vec<Context>,
    pub no_cache: bool,
    /// How file ops write their layers.
    pub layers: ops::LayerSettings,
    /// Per-build nonce: the key of local sources.
    pub nonce: String,
    pub vertices: HashMap<Digest, Arc<Vertex>>,
    keys: OnceMap<Arc<Keys>>,
    results: OnceMap<Arc<Vec<ResultRef>>>,
    images: Mutex<HashMap<Digest, ResolvedImage>>,
    semaphore: Semaphore,
    pub cancel: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
    pub first_error: Mutex<Option<SolveError>>,
    pub lease: Arc<Lease>,
    /// The build's secrets and SSH agents as host paths.
    pub secrets: Arc<crate::secrets::Materialized>,
    pub memo: Arc<StoreMemo>,
    pub outcomes: Mutex<BTreeMap<Digest, VertexOutcome>>,
    running: Mutex<HashSet<Digest>>,
    /// Keys whose records were hit, for one `last_used` bump at the end ([`Job::touch_hits`]).
    hits: Mutex<Vec<Digest>>,
}

/// Options of [`Job::new`].
pub(crate) struct JobParts {
    pub store: Store,
    pub executor: Arc<dyn Executor>,
    pub fetcher: Arc<dyn BlobFetcher>,
    pub contexts: Vec<Context>,
    pub no_cache: bool,
    pub max_parallelism: usize,
    pub layers: ops::LayerSettings,
    pub vertices: HashMap<Digest, Arc<Vertex>>,
    pub lease: Lease,
    pub secrets: Arc<crate::secrets::Materialized>,
}

impl Job {
    pub(crate) fn new(parts: JobParts, events: mpsc::UnboundedSender<Event>) -> Arc<Self> {
        Arc::new(Self {
            memo: Arc::new(StoreMemo::new(Some(parts.store.clone()))),
            store: parts.store,
            executor: parts.executor,
            fetcher: parts.fetcher,
            contexts: parts.contexts,
            no_cache: parts.no_cache,
            layers: parts.layers,
            nonce: crate::nonce(),
            vertices: parts.vertices,
            keys: OnceMap::new(),
            results: OnceMap::new(),
            images: Mutex::new(HashMap::new()),
            semaphore: Semaphore::new(parts.max_parallelism.max(1)),
            cancel: CancellationToken::new(),
            events,
            first_error: Mutex::new(None),
            lease: Arc::new(parts.lease),
            secrets: parts.secrets,
            outcomes: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashSet::new()),
            hits: Mutex::new(Vec::new()),
        })
    }

    fn emit(&self, v: &Vertex, kind: EventKind) {
        let _ = self.events.send(Event {
            vertex: v.digest,
            name: v.name.clone(),
            at: SystemTime::now(),
            kind,
        });
    }

    /// Records `error` as the solve's error if it is the first, cancels everything else.
    fn fail(&self, v: &Vertex, error: OpError) -> Failed {
        self.fail_first(v, error);
        Failed
    }

    /// Reports `Started` and marks `v` running until [`Job::finish`] (or the guard's drop, if
    /// the step is cancelled) closes it.
    fn start(self: &Arc<Self>, v: &Arc<Vertex>) -> Running {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(v.digest);
        self.emit(v, EventKind::Started);
        Running {
            job: self.clone(),
            vertex: v.clone(),
        }
    }

    /// Closes a running vertex with `kind`, once: `false` if it was already closed.
    fn finish(&self, v: &Vertex, kind: EventKind) -> bool {
        let was_running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&v.digest);
        if was_running {
            self.emit(v, kind);
        }
        was_running
    }

    /// Closes every vertex still running (their tasks were aborted) as cancelled.
    pub(crate) fn close_running(&self) {
        let running: Vec<Digest> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for d in running {
            self.emit(&self.vertex(&d), cancelled());
        }
    }

    /// Whether `error` became the solve's error.
    fn fail_first(&self, v: &Vertex, error: OpError) -> bool {
        if self.cancel.is_cancelled() && matches!(error, OpError::Internal { .. }) {
            return false;
        }
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            let failed = EventKind::Failed {
                error: render(&error),
            };
            if !self.finish(v, failed.clone()) {
                self.emit(v, failed);
            }
            *first = Some(SolveError::Step {
                vertex: v.digest,
                name: v.name.clone(),
                source: error,
            });
            self.cancel.cancel();
            return true;
        }
        false
    }

    fn vertex(&self, d: &Digest) -> Arc<Vertex> {
        // The graph was validated: every input names a vertex.
        self.vertices[d].clone()
    }

    fn record(&self, v: &Vertex, keys: &Keys, status: VertexStatus, results: &[ResultRef]) {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                v.digest,
                VertexOutcome {
                    name: v.name.clone(),
                    keys: keys.keys.clone(),
                    status,
                    chains: results.iter().map(|r| r.chain_ids().to_vec()).collect(),
                },
            );
    }

    /// The keys of every output of `d` (memoized).
    pub(crate) fn keys(self: &Arc<Self>, d: Digest) -> BoxFuture<Step<Arc<Keys>>> {
        let job = self.clone();
        Box::pin(async move {
            let init = job.clone().compute_keys(d);
            job.keys.get_or_try_init(d, init).await
        })
    }

    /// The results of every output of `d` (memoized).
    pub(crate) fn result(self: &Arc<Self>, d: Digest) -> BoxFuture<Step<Arc<Vec<ResultRef>>>> {
        let job = self.clone();
        Box::pin(async move {
            let init = job.clone().compute_result(d);
            job.results.get_or_try_init(d, init).await
        })
    }

    async fn cache_map(self: &Arc<Self>, v: &Vertex) -> Result<CacheMap, OpError> {
        Ok(match &v.node.op {
            Op::Source(s) => match &s.id {
                SourceId::Scratch => cachemap::scratch(),
                SourceId::Local { .. } => cachemap::local(s, &self.nonce),
                SourceId::Image(_) | SourceId::OciLayout { .. } => {
                    let (store, s2, node) = (self.store.clone(), s.clone(), v.node.clone());
                    let img = blocking(move || source::resolve(&store, &s2, &node)).await?;
                    let scheme = s.id.scheme();
                    let cm = cachemap::image(&v.node, scheme, &img.manifest);
                    self.images
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(v.digest, img);
                    cm
                }
                SourceId::Http { .. } => {
                    return Err(OpError::UnsupportedSource {
                        id: s.id.to_string(),
                        reason: "downloads (ADD <url>) are not supported yet",
                    });
                }
            },
            Op::Exec(e) => cachemap::exec(&v.node, e),
            Op::File(f) => cachemap::file(&v.node, f),
            Op::Merge(_) => cachemap::merge(&v.node),
        })
    }

    async fn compute_keys(self: Arc<Self>, d: Digest) -> Step<Arc<Keys>> {
        if self.cancel.is_cancelled() {
            return Err(Failed);
        }
        let v = self.vertex(&d);
        let mut cm = self.cache_map(&v).await.map_err(|e| self.fail(&v, e))?;
        if self.no_cache || v.ignore_cache {
            cm.salt(&crate::nonce());
        }
        // A local source's own key is per build, so whoever reads it keys on its content.
        for (dep, input) in cm.deps.iter_mut().zip(&v.node.inputs) {
            let is_local = matches!(
                &self.vertex(&input.node).node.op,
                Op::Source(s) if matches!(s.id, SourceId::Local { .. })
            );
            if let (true, DepKey::Definition { selector }) = (is_local, &dep) {
                let path = if selector.is_empty() { "/" } else { selector };
                *dep = DepKey::Content {
                    selectors: path
                        .split(',')
                        .map(|p| ContentSelector {
                            path: p.to_owned(),
                            follow_links: false,
                            wildcard: false,
                            include: Vec::new(),
                            exclude: Vec::new(),
                        })
                        .collect(),
                };
            }
        }
        let mut set: JoinSet<Step<(usize, ResolvedDep)>> = JoinSet::new();
        for (i, (input, dep)) in v.node.inputs.iter().zip(&cm.deps).enumerate() {
            let (job, input, dep, v) = (self.clone(), *input, dep.clone(), v.clone());
            set.spawn(async move {
                let out = input.output as usize;
                match dep {
                    DepKey::Definition { selector } => {
                        let k = job.keys(input.node).await?;
                        Ok((
                            i,
                            ResolvedDep::Key {
                                key: k.keys[out],
                                selector,
                            },
                        ))
                    }
                    DepKey::Content { selectors } => {
                        let r = job.result(input.node).await?;
                        let tree = r[out].tree(&job.store);
                        let memo = job.memo.clone();
                        let paths = selectors.iter().map(|s| s.path.clone()).collect();
                        let (store, chain) = (job.store.clone(), r[out].chain_ids().to_vec());
                        let digest = blocking(move || {
                            // Hashing reads the files: a lazy snapshot must be filled in.
                            dray_image::lazy::materialize_chain(&store, &chain)?;
                            checksum(&tree, &selectors, &memo)
                        })
                        .await
                        .map_err(|e| job.fail(&v, e))?;
                        Ok((
                            i,
                            ResolvedDep::Content {
                                digest,
                                selectors: paths,
                            },
                        ))
                    }
                }
            });
        }
        let mut deps: Vec<Option<ResolvedDep>> = vec![None; v.node.inputs.len()];
        while let Some(joined) = set.join_next().await {
            let (i, dep) = joined.map_err(|e| self.internal(&v, e))??;
            deps[i] = Some(dep);
        }
        let deps: Vec<ResolvedDep> = deps
            .into_iter()
            .map(|d| d.ok_or(Failed))
            .collect::<Step<_>>()?;
        let cm_digest = cm.digest();
        let outputs = v.node.op.num_outputs();
        let preimages: Vec<Preimage> = (0..outputs)
            .map(|o| Preimage {
                schema: crate::key::KEY_SCHEMA.to_owned(),
                vertex: v.digest,
                name: v.name.clone(),
                op: cm.object.clone(),
                cm_digest,
                output: o,
                deps: deps.clone(),
                result_chain: None,
            })
            .collect();
        let keys = (0..outputs)
            .map(|o| cache_key(&cm_digest, o, &deps))
            .collect();
        let mut keys = Keys {
            preimages,
            keys,
            hit: None,
        };
        if !matches!(v.node.op, Op::Source(_)) {
            let (job, v2, probe) = (self.clone(), v.clone(), keys.keys.clone());
            let hit = blocking(move || job.lookup(&v2, &probe))
                .await
                .map_err(|e| self.fail(&v, e))?;
            if let Some(hit) = &hit {
                self.emit(&v, EventKind::Cached);
                self.record(&v, &keys, VertexStatus::Cached, hit);
            }
            keys.hit = hit;
        }
        Ok(Arc::new(keys))
    }

    fn internal(&self, v: &Vertex, e: tokio::task::JoinError) -> Failed {
        if e.is_cancelled() {
            return Failed;
        }
        self.fail(
            v,
            OpError::Internal {
                message: e.to_string(),
            },
        )
    }

    async fn compute_result(self: Arc<Self>, d: Digest) -> Step<Arc<Vec<ResultRef>>> {
        if self.cancel.is_cancelled() {
            return Err(Failed);
        }
        let v = self.vertex(&d);
        // Views: no key lookup, no work, no events.
        if let Op::Source(s) = &v.node.op {
            match &s.id {
                SourceId::Scratch => {
                    return Ok(Arc::new(vec![ResultRef::empty(self.lease.clone())]));
                }
                SourceId::Local { name } => {
                    let tree = match self.contexts.iter().find(|c| &c.name == name) {
                        Some(c) => c.tree.clone(),
                        None => {
                            return Err(self.fail(
                                &v,
                                OpError::UnsupportedSource {
                                    id: s.id.to_string(),
                                    reason: "no local directory of that name was given to the solver",
                                },
                            ));
                        }
                    };
                    return Ok(Arc::new(vec![ResultRef::local(tree, self.lease.clone())]));
                }
                _ => {}
            }
        }
        let keys = self.keys(d).await?;
        // Already reported as cached when the keys were computed.
        if let Some(hit) = &keys.hit {
            return Ok(Arc::new(hit.clone()));
        }

        // A miss: materialize the inputs, then run.
        let mut set: JoinSet<Step<(usize, ResultRef)>> = JoinSet::new();
        for (i, input) in v.node.inputs.iter().enumerate() {
            let (job, input) = (self.clone(), *input);
            set.spawn(async move {
                let r = job.result(input.node).await?;
                Ok((i, r[input.output as usize].clone()))
            });
        }
        let mut inputs: Vec<Option<ResultRef>> = vec![None; v.node.inputs.len()];
        while let Some(joined) = set.join_next().await {
            let (i, r) = joined.map_err(|e| self.internal(&v, e))??;
            inputs[i] = Some(r);
        }
        let inputs: Vec<ResultRef> = inputs
            .into_iter()
            .map(|r| r.ok_or(Failed))
            .collect::<Step<_>>()?;

        let _permit = tokio::select! {
            p = self.semaphore.acquire() => p.map_err(|_| Failed)?,
            () = self.cancel.cancelled() => return Err(Failed),
        };
        if self.cancel.is_cancelled() {
            return Err(Failed);
        }
        let _running = self.start(&v);
        // The lease's rows are written before the first step prepares a snapshot on what it
        // protects (it is only in memory until then: a build that hits the cache writes none).
        let lease = self.lease.clone();
        blocking(move || Ok(lease.persist()?))
            .await
            .map_err(|e| self.fail(&v, e))?;
        let outputs = self.run(&v, inputs).await.map_err(|e| self.fail(&v, e))?;
        let (job, keys2, outs) = (self.clone(), keys.clone(), outputs.clone());
        blocking(move || job.save(&keys2, &outs))
            .await
            .map_err(|e| self.fail(&v, e))?;
        self.finish(&v, EventKind::Done);
        self.record(&v, &keys, VertexStatus::Executed, &outputs);
        Ok(Arc::new(outputs))
    }

    async fn run(
        self: &Arc<Self>,
        v: &Arc<Vertex>,
        inputs: Vec<ResultRef>,
    ) -> Result<Vec<ResultRef>, OpError> {
        let (store, lease, name, digest) = (
            self.store.clone(),
            self.lease.clone(),
            v.name.clone(),
            v.digest,
        );
        match &v.node.op {
            Op::Source(_) => {
                let img = self
                    .images
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&v.digest)
                    .cloned()
                    .ok_or(OpError::Internal {
                        message: "image source was not resolved".into(),
                    })?;
                // Lazy pull: only now that a consumer needs the layers are the ones neither
                // unpacked nor in the content store fetched (architecture B5 step 3).
                let (store2, img2) = (store.clone(), img.clone());
                let missing = blocking(move || source::missing_blobs(&store2, &img2)).await?;
                if let Some((reference, blobs)) = missing {
                    let progress = Logs {
                        job: self.clone(),
                        vertex: v.clone(),
                    };
                    self.fetcher
                        .fetch(&reference, &blobs, &progress)
                        .await
                        .map_err(|source| OpError::Fetch {
                            reference: img.reference.clone(),
                            source,
                        })?;
                }
                blocking(move || {
                    Ok(vec![match source::load(&store, &img)? {
                        Some(c) => {
                            lease.protect(&c)?;
                            ResultRef::committed(c, lease)
                        }
                        None => ResultRef::empty(lease),
                    }])
                })
                .await
            }
            Op::File(f) => {
                let f = f.clone();
                let layers = self.layers;
                blocking(move || {
                    let cx = StepCx {
                        store: &store,
                        lease: &lease,
                        vertex: digest,
                        name: &name,
                    };
                    ops::file(&cx, &f, &inputs, &layers)
                })
                .await
            }
            Op::Merge(_) => {
                blocking(move || {
                    let cx = StepCx {
                        store: &store,
                        lease: &lease,
                        vertex: digest,
                        name: &name,
                    };
                    ops::merge(&cx, &inputs)
                })
                .await
            }
            Op::Exec(e) => {
                let cx = StepCx {
                    store: &store,
                    lease: &lease,
                    vertex: digest,
                    name: &name,
                };
                let logs = Logs {
                    job: self.clone(),
                    vertex: v.clone(),
                };
                let run = ops::ExecRun {
                    executor: self.executor.as_ref(),
                    secrets: &self.secrets,
                    logs: &logs,
                    cancel: &self.cancel,
                };
                ops::exec(&cx, e, &inputs, &run).await
            }
        }
    }

    /// All outputs' records, or `None` if any output misses. A record whose preimage carries a
    /// `result_chain` (a merge, or a step on one) uses that chain, if every snapshot still exists.
    fn lookup(&self, v: &Vertex, keys: &[Digest]) -> Result<Option<Vec<ResultRef>>, OpError> {
        if matches!(v.node.op, Op::Source(_)) {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut hits = Vec::new();
        for key in keys {
            let ck = *key;
            // Read-only: the hits' `last_used` is bumped once, for the whole build, by `touch`.
            let Some((record, c)) = self.store.find(&ck)? else {
                return Ok(None);
            };
            hits.push(ck);
            let chain = serde_json::from_str::<Preimage>(&record.preimage)
                .ok()
                .and_then(|p| p.result_chain);
            self.lease.protect(&c)?;
            match chain {
                None => out.push(ResultRef::committed(c, self.lease.clone())),
                Some(chain) => {
                    let mut ids = Vec::with_capacity(chain.len());
                    for id in &chain {
                        let Ok(part) = id.parse().and_then(|id| self.store.get(&id)) else {
                            return Ok(None);
                        };
                        self.lease.protect(&part)?;
                        ids.push(part.id);
                    }
                    let chain = ids;
                    out.push(ResultRef::chain(chain, Some(c), self.lease.clone()));
                }
            }
        }
        self.hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(hits);
        Ok(Some(out))
    }

    /// Bumps `last_used` of every record this solve hit, in one transaction. Best effort: a
    /// failure only leaves the LRU order a little stale.
    pub(crate) fn touch_hits(&self) {
        let hits = std::mem::take(&mut *self.hits.lock().unwrap_or_else(PoisonError::into_inner));
        let _ = self.store.touch(&hits);
    }

    /// Saves one record per output that has a snapshot.
    fn save(&self, keys: &Keys, outputs: &[ResultRef]) -> Result<(), OpError> {
        for ((key, pre), out) in keys.keys.iter().zip(&keys.preimages).zip(outputs) {
            let Some(top) = out.committed_top() else {
                continue;
            };
            let mut pre = pre.clone();
            if out.chain_ids() != top.chain.as_slice() {
                pre.result_chain = Some(out.chain_ids().iter().map(ToString::to_string).collect());
            }
            let ck = *key;
            self.store.save(&ck, &pre.to_json(), top)?;
        }
        Ok(())
    }
}

fn cancelled() -> EventKind {
    EventKind::Failed {
        error: "cancelled: another step failed".to_owned(),
    }
}

/// Closes its vertex as cancelled when dropped before [`Job::finish`] (an aborted or failed
/// step whose error is not the solve's).
pub(crate) struct Running {
    job: Arc<Job>,
    vertex: Arc<Vertex>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.job.finish(&self.vertex, cancelled());
    }
}

/// What a running step reports: its process output ([`LogSink`]) and its downloads
/// ([`FetchProgress`]), as events of its vertex.
struct Logs {
    job: Arc<Job>,
    vertex: Arc<Vertex>,
}

impl LogSink for Logs {
    fn write(&self, stream: LogStream, bytes: &[u8]) {
        self.job.emit(
            &self.vertex,
            EventKind::Log {
                stream,
                bytes: bytes.to_vec(),
            },
        );
    }
}

impl FetchProgress for Logs {
    fn on_bytes(&self, blob: &Digest, current: u64, total: u64) {
        self.job.emit(
            &self.vertex,
            EventKind::Progress {
                id: blob.to_string(),
                current,
                total,
            },
        );
    }
}

/// Runs blocking filesystem or database work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpError> + Send + 'static,
) -> Result<T, OpError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OpError::Internal {
            message: e.to_string(),
        })?
}

/// An error with its causes, `: `-joined.
pub(crate) fn render(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
