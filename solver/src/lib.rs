//! `dray-solver`: turns an [`llb::Definition`](dray_llb::Definition) into committed snapshots,
//! reusing cached results wherever a step's cache key matches.
//!
//! What this crate is **for**:
//! - the cache key formula and its documented table ([`key`]), with the JSON preimage saved
//!   beside each record for `--explain-cache`;
//! - a small lazy scheduler (`scheduler`): keys bottom-up, results top-down, only where a key
//!   missed; identical vertices run once; independent work runs concurrently up to
//!   `max_parallelism`; the first error cancels the rest and names the step;
//! - the ops: sources (scratch, the build context, images already in the local store or an OCI
//!   layout), file actions, merges, and execs through the [`Executor`] seam;
//! - progress through the [`Reporter`] trait (only the binary renders);
//! - secrets and SSH agents for `RUN --mount=type=secret|ssh` ([`secrets`]): handed to the
//!   executor as host paths ([`MountSpec::host_source`]), never part of a key.
//!
//! Filesystem work (trees, content hashes, file actions) is `dray_fsutil`'s; `fs/` only adapts
//! results to it. Image layers are mapped to snapshots with `dray_image`.
//!
//! File ops **defer** the directories their copies create ([`SolveOptions::defer_copies`]):
//! the op writes its layer blob straight from the copy's source and commits a lazy snapshot,
//! filled in from that blob only when a later step needs the files (an exec's lower dirs, a
//! copy source, a content hash); the ops call `dray_image::lazy` for it. Snapshots are
//! committed without a sync; the binary calls `Store::sync_snapshots` once per build.
//!
//! Results are [`ResultRef`]s: a chain of snapshot IDs, not one snapshot, because a merge
//! (`COPY --link`) stacks its inputs' chains without making a directory. When a saved result's
//! chain does not follow the snapshots' parent links, its preimage carries the chain
//! ([`Preimage::result_chain`]) and lookups use that, so no cache schema change was needed.
//!
//! What it is **not** for: parsing Dockerfiles (frontend), running processes (the sandbox
//! implements [`Executor`]; without it [`NoExecutor`] fails `RUN` steps), pulling from
//! registries (a needed image layer that is neither unpacked nor in the content store is asked
//! of the [`BlobFetcher`] the binary installs; [`NoFetcher`] by default), or exporting images
//! (image). It does not render progress.
//!
//! Where to start: [`Solver::solve`], then [`key`] (what a cache key covers, as a table), then
//! `scheduler.rs` (how laziness and deduplication work, in one short module).
//!
//! ```no_run
//! # async fn f(store: dray_cache::Store, def: dray_llb::Definition) -> Result<(), dray_solver::SolveError> {
//! use dray_solver::{LocalSource, NullReporter, Solver};
//! let solver = Solver::new(store).with_context(LocalSource::new("context", "/src", Default::default()));
//! let out = solver.solve(&def, &NullReporter).await?;
//! println!("head chain: {:?}", out.head.chain_ids());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod cache_mount;
mod cachemap;
mod context_mount;
pub mod error;
pub mod executor;
mod fetch;
mod fs;
#[cfg(test)]
mod golden;
pub mod key;
mod ops;
pub mod reporter;
mod result;
mod scheduler;
pub mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use dray_cache::Store;
use dray_fsutil::dockerignore::Patterns;
use dray_llb::{Definition, Digest};

pub use error::{OpError, Result, SolveError};
pub use executor::{ExecSpec, Executor, LogSink, MountSpec, NoExecutor, RootFs};
pub use fetch::{BlobFetcher, FetchError, FetchProgress, NoFetcher, NoProgress};
pub use key::{KEY_SCHEMA, Preimage, ResolvedDep, explain};
pub use reporter::{
    Event, EventKind, LogStream, NullReporter, RecordingReporter, Reporter, Summary,
};
pub use result::ResultRef;
pub use secrets::{SecretSource, SecretValue, Secrets, SecretsError};

/// A local directory the build may read (`local://<name>`), e.g. the build context.
#[derive(Debug, Clone)]
pub struct LocalSource {
    /// The name the graph refers to (`context`).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// The `.dockerignore` patterns: excluded paths are invisible to the build.
    pub patterns: Patterns,
}

impl LocalSource {
    /// A named local directory with its exclusions.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>, patterns: Patterns) -> Self {
        Self {
            name: name.into(),
            dir: dir.into(),
            patterns,
        }
    }
}

/// Solve-wide settings.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// How many steps may do work at once (default: the number of CPUs).
    pub max_parallelism: usize,
    /// `--no-cache`: every key is salted with a fresh nonce, so nothing matches (results are
    /// still saved).
    pub no_cache: bool,
    /// `SOURCE_DATE_EPOCH`, kept for the exporter (clamping timestamps); the solver itself does
    /// not rewrite times the graph does not ask for.
    pub source_date_epoch: Option<i64>,
    /// The secrets and SSH agents `RUN --mount=type=secret|ssh` may use (see [`secrets`]).
    pub secrets: Secrets,
    /// Let copies defer the directories they create: the step's layer is written straight
    /// from the copy's source and its snapshot filled in only when a later step needs the
    /// files (see `ops::file`). On by default; off writes every file at once.
    pub defer_copies: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            max_parallelism: std::thread::available_parallelism().map_or(1, usize::from),
            no_cache: false,
            source_date_epoch: None,
            secrets: Secrets::default(),
            defer_copies: true,
        }
    }
}

/// Solves definitions against one store.
#[derive(Clone)]
pub struct Solver {
    store: Store,
    executor: Arc<dyn Executor>,
    fetcher: Arc<dyn BlobFetcher>,
    /// The local directories served as `local://<name>` (the build context, named contexts).
    contexts: Vec<LocalSource>,
    options: SolveOptions,
    /// Fired from outside (the binary's SIGINT/SIGTERM handler) to stop every solve.
    cancel: CancellationToken,
}

impl std::fmt::Debug for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Solver")
            .field("store", &self.store.root())
            .field("contexts", &self.contexts)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How a vertex was satisfied in a solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VertexStatus {
    /// Its result came from the cache.
    Cached,
    /// It ran.
    Executed,
}

/// What a solve did with one vertex (vertices only keyed, or views such as the context, are
/// absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexOutcome {
    /// Its progress name.
    pub name: String,
    /// Its cache key per output.
    pub keys: Vec<Digest>,
    /// Cached or executed.
    pub status: VertexStatus,
    /// The snapshot chain (root first) of each output, e.g. to map layers to steps.
    pub chains: Vec<Vec<dray_cache::SnapshotId>>,
}

/// Counters of one solve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SolveStats {
    /// Bytes of files read to compute content hashes (0 when every file was memoized).
    pub hashed_bytes: u64,
}

/// The result of a solve.
#[derive(Debug)]
pub struct SolveOutput {
    /// The head's result (output 0 of the last node). Holds the build's lease.
    pub head: ResultRef,
    /// The head's cache key.
    pub head_key: Digest,
    /// Per-vertex outcomes, by digest.
    pub vertices: BTreeMap<Digest, VertexOutcome>,
    /// Counters.
    pub stats: SolveStats,
}

impl Solver {
    /// A solver over `store` with no executor ([`NoExecutor`]), no local directories and
    /// default options.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            executor: Arc::new(NoExecutor),
            fetcher: Arc::new(NoFetcher),
            contexts: Vec::new(),
            options: SolveOptions::default(),
            cancel: CancellationToken::new(),
        }
    }

    /// Stops the solve when `cancel` fires: running steps are stopped and awaited (their
    /// process trees killed, nothing of theirs committed), steps already done stay cached, and
    /// [`Solver::solve`] returns [`SolveError::Cancelled`].
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Uses `executor` for `RUN` steps.
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    /// Uses `fetcher` for image layer blobs missing from the store (registry pulls).
    pub fn with_fetcher(mut self, fetcher: Arc<dyn BlobFetcher>) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// Serves `source` as `local://<name>` (besides the directories already given; one given
    /// earlier under the same name is replaced).
    pub fn with_context(mut self, source: LocalSource) -> Self {
        self.contexts.retain(|c| c.name != source.name);
        self.contexts.push(source);
        self
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SolveOptions) -> Self {
        self.options = options;
        self
    }

    /// The options.
    pub fn options(&self) -> &SolveOptions {
        &self.options
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Solves `def`: computes the head's key, and materializes only what a missing key needs.
    /// Progress goes to `reporter`; the summary is reported even when the solve fails.
    pub async fn solve(&self, def: &Definition, reporter: &dyn Reporter) -> Result<SolveOutput> {
        let started = Instant::now();
        def.validate()?;
        let head = def
            .head()
            .ok_or(SolveError::Invalid(dray_llb::ValidateError::Empty))?;
        let vertices: HashMap<Digest, Arc<scheduler::Vertex>> = def
            .nodes
            .iter()
            .map(|node| {
                let digest = node.digest();
                let meta = def.metadata.get(&digest);
                let name = meta.and_then(|m| m.custom_name()).map_or_else(
                    || format!("{} {}", node.op.kind(), digest.short()),
                    str::to_owned,
                );
                let v = scheduler::Vertex {
                    digest,
                    node: node.clone(),
                    name,
                    ignore_cache: meta.is_some_and(|m| m.ignore_cache),
                };
                (digest, Arc::new(v))
            })
            .collect();
        let lease = self.store.lease().map_err(SolveError::Store)?;
        // Held until the solve returns: in-memory secrets exist as files only meanwhile.
        let secrets = Arc::new(
            self.options
                .secrets
                .materialize(&self.store.root().path().join("tmp"))?,
        );
        let contexts = self
            .contexts
            .iter()
            .map(|c| scheduler::Context {
                name: c.name.clone(),
                tree: fs::Tree::Dir {
                    root: c.dir.clone(),
                    patterns: Arc::new(c.patterns.clone()),
                },
            })
            .collect();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let job = scheduler::Job::new(
            scheduler::JobParts {
                store: self.store.clone(),
                executor: self.executor.clone(),
                fetcher: self.fetcher.clone(),
                contexts,
                no_cache: self.options.no_cache,
                max_parallelism: self.options.max_parallelism,
                layers: ops::LayerSettings {
                    source_date_epoch: self.options.source_date_epoch,
                    defer_copies: self.options.defer_copies,
                },
                vertices,
                lease,
                secrets,
            },
            tx,
        );
        // Dropping this future (the caller gave up) cancels every task of the job.
        let _cancel_on_drop = job.cancel.clone().drop_guard();
        // An outside cancellation winds the job down as a failed step does; the tasks are
        // awaited below, so no executor is left running when `solve` returns.
        let outside = {
            let (outer, inner) = (self.cancel.clone(), job.cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = outer.cancelled() => inner.cancel(),
                    () = inner.cancelled() => {}
                }
            })
        };
        let _outside_on_drop = AbortOnDrop(outside.abort_handle());
        let root = {
            let job = job.clone();
            tokio::spawn(async move {
                let keys = job.keys(head.node).await?;
                let results = job.result(head.node).await?;
                Ok::<_, scheduler::Failed>((keys.keys[0], results[0].clone()))
            })
        };
        let _abort_on_drop = AbortOnDrop(root.abort_handle());
        let mut root = root;
        let joined = loop {
            tokio::select! {
                Some(event) = rx.recv() => reporter.on_event(&event),
                joined = &mut root => break joined,
            }
        };
        job.close_running();
        {
            let job = job.clone();
            let _ = tokio::task::spawn_blocking(move || job.touch_hits()).await;
        }
        while let Ok(event) = rx.try_recv() {
            reporter.on_event(&event);
        }
        let outcomes =
            std::mem::take(&mut *job.outcomes.lock().unwrap_or_else(PoisonError::into_inner));
        let first_error = job
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let summary = Summary {
            cached: outcomes
                .values()
                .filter(|o| o.status == VertexStatus::Cached)
                .count(),
            executed: outcomes
                .values()
                .filter(|o| o.status == VertexStatus::Executed)
                .count(),
            failed: usize::from(first_error.is_some()),
            duration: started.elapsed(),
        };
        reporter.on_summary(&summary);
        let (head_key, head) = match joined {
            Ok(Ok(done)) => done,
            _ if self.cancel.is_cancelled() => return Err(SolveError::Cancelled),
            Ok(Err(scheduler::Failed)) => return Err(first_error.unwrap_or(SolveError::Cancelled)),
            Err(e) => {
                return Err(first_error.unwrap_or(SolveError::Internal {
                    message: e.to_string(),
                }));
            }
        };
        Ok(SolveOutput {
            head,
            head_key,
            vertices: outcomes,
            stats: SolveStats {
                hashed_bytes: job.memo.bytes_read(),
            },
        })
    }
}

/// The CLI spawns solves (the future must be `Send`) and wraps errors in `anyhow` (they must
/// be `Send + Sync + 'static`). Checked at compile time.
#[allow(dead_code)]
fn assert_solve_is_send(s: &Solver, d: &Definition, r: &dyn Reporter) {
    fn send<T: Send>(_: T) {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    send(s.solve(d, r));
    error::<SolveError>();
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fresh random-enough nonce (per build, per `--no-cache` vertex): the sha256 of the time,
/// the process, a counter and a stack address, as hex.
pub(crate) fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let marker = 0u8;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}:{}:{}:{:p}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &marker
    );
    Digest::of(seed).hex()
}
