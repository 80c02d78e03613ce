//! Build records: `dray build` keeps one per build (`dray builds ls|show|logs`).
//!
//! The record is assembled in the binary from the solver's progress events (a [`Recorder`]
//! wraps the renderer) plus the solve output (keys) and the op graph's metadata (kind,
//! `file:line`), so the solver stays generic. It is saved with one
//! [`Store::save_build`](dray_cache::Store::save_build) transaction at the end.
//!
//! What is kept: id, times, context, Dockerfile path, target, platform, `--build-arg` values,
//! tags, image, and per step: key, preimage, HIT/MISS, duration, log (first [`LOG_CAP`] bytes),
//! the miss reason. **Secrets are never recorded.**
//!
//! When a step that reads the build context misses, the context's file list (path, type, mode,
//! owner, size, whole-file digest) is stored too, once per distinct list, so a later
//! `--explain-cache` can say which file changed and how. A no-op rebuild (every step a hit)
//! stores no list.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use dray_cache::{BuildRecord, BuildStep, ContextFiles, StepStatus, Store};
use dray_frontend::convert::Conversion;
use dray_fsutil::contenthash as ch;
use dray_fsutil::dockerignore::Patterns;
use dray_llb::{Digest, Op, SourceId};
use dray_solver::{Event, EventKind, Reporter, SolveOutput, Summary};
use serde_json::json;

use crate::cli::BuildArgs;

/// How much of each step's log is kept.
pub(crate) const LOG_CAP: usize = 1 << 20;

/// Passes events to the renderer and remembers them for the record.
pub(crate) struct Recorder {
    inner: Arc<dyn Reporter>,
    steps: Mutex<(Vec<Digest>, HashMap<Digest, StepEvents>)>,
    listing: Mutex<ContextListing>,
}

/// The build context's file list, taken on another thread as soon as a step that reads the
/// context runs (misses the cache): only then does the record need it, and taking it beside
/// the step, rather than after the build, keeps its cost (a walk of the whole context) off
/// the build's critical path.
#[derive(Default)]
struct ContextListing {
    /// What to list, and which steps read the context; `None` once started (or never needed).
    pending: Option<(Store, PathBuf, Patterns, HashSet<Digest>)>,
    running: Option<std::thread::JoinHandle<ContextFiles>>,
}

#[derive(Debug, Default, Clone)]
struct StepEvents {
    name: String,
    started: Option<SystemTime>,
    ended: Option<SystemTime>,
    status: Option<StepStatus>,
    log: Vec<u8>,
}

impl Recorder {
    fn new(inner: Arc<dyn Reporter>) -> Self {
        Recorder {
            inner,
            steps: Mutex::new((Vec::new(), HashMap::new())),
            listing: Mutex::new(ContextListing::default()),
        }
    }
}

impl Reporter for Recorder {
    fn on_event(&self, event: &Event) {
        {
            let mut guard = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
            let (order, steps) = &mut *guard;
            let step = steps.entry(event.vertex).or_insert_with(|| {
                order.push(event.vertex);
                StepEvents {
                    name: event.name.clone(),
                    ..StepEvents::default()
                }
            });
            match &event.kind {
                EventKind::Started => {
                    step.started = Some(event.at);
                    let mut listing = self.listing.lock().unwrap_or_else(PoisonError::into_inner);
                    if listing
                        .pending
                        .as_ref()
                        .is_some_and(|(_, _, _, reads)| reads.contains(&event.vertex))
                        && let Some((store, context, patterns, _)) = listing.pending.take()
                    {
                        listing.running = Some(std::thread::spawn(move || {
                            context_files(&store, &context, &patterns)
                        }));
                    }
                }
                EventKind::Cached => step.status = Some(StepStatus::Hit),
                EventKind::Done => {
                    step.ended = Some(event.at);
                    step.status = Some(StepStatus::Miss);
                }
                EventKind::Failed { error } => {
                    step.ended = Some(event.at);
                    step.status = Some(if error.starts_with("cancelled") {
                        StepStatus::Cancelled
                    } else {
                        StepStatus::Failed
                    });
                    let room = LOG_CAP.saturating_sub(step.log.len());
                    step.log.extend(error.as_bytes().iter().take(room));
                }
                EventKind::Log { bytes, .. } => {
                    let room = LOG_CAP.saturating_sub(step.log.len());
                    step.log.extend(bytes.iter().take(room));
                }
                // Download progress is shown live, not kept in the build record.
                EventKind::Progress { .. } => {}
            }
        }
        self.inner.on_event(event);
    }

    fn on_summary(&self, summary: &Summary) {
        self.inner.on_summary(summary);
    }
}

/// Per-vertex facts from the op graph.
#[derive(Debug, Clone, Default)]
struct VertexFacts {
    kind: String,
    location: Option<String>,
    instruction: Option<String>,
    reads_context: bool,
}

/// What `dray build` learned so far, filled in as the build proceeds; [`finish`]
/// saves it.
pub(crate) struct BuildLog {
    pub(crate) id: String,
    started: SystemTime,
    pub(crate) context: Option<PathBuf>,
    pub(crate) dockerfile: Option<PathBuf>,
    pub(crate) patterns: Patterns,
    recorder: Option<Arc<Recorder>>,
    vertices: HashMap<Digest, VertexFacts>,
    keys: BTreeMap<Digest, Digest>,
    head_chain: Vec<String>,
    stage_vars: serde_json::Value,
    pub(crate) image: Option<(Digest, Digest)>,
}

impl BuildLog {
    pub(crate) fn new() -> Self {
        BuildLog {
            id: Store::new_build_id(),
            started: SystemTime::now(),
            context: None,
            dockerfile: None,
            patterns: Patterns::default(),
            recorder: None,
            vertices: HashMap::new(),
            keys: BTreeMap::new(),
            head_chain: Vec::new(),
            stage_vars: json!({}),
            image: None,
        }
    }

    /// Wraps the renderer so events are recorded (call it after [`BuildLog::converted`] and
    /// once the context is known: the context listing starts from the events).
    pub(crate) fn reporter(
        &mut self,
        inner: Arc<dyn Reporter>,
        store: &Store,
    ) -> Arc<dyn Reporter> {
        let recorder = Arc::new(Recorder::new(inner));
        if let Some(context) = &self.context {
            let reads: HashSet<Digest> = self
                .vertices
                .iter()
                .filter(|(_, v)| v.reads_context)
                .map(|(d, _)| *d)
                .collect();
            recorder
                .listing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pending = Some((store.clone(), context.clone(), self.patterns.clone(), reads));
        }
        self.recorder = Some(recorder.clone());
        recorder
    }

    /// The context listing started during the build, if one was.
    fn started_listing(&self) -> Option<ContextFiles> {
        let handle = self
            .recorder
            .as_ref()?
            .listing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running
            .take()?;
        handle.join().ok()
    }

    /// Takes kinds, `file:line`, instruction texts and stage variables from the conversion.
    pub(crate) fn converted(&mut self, conversion: &Conversion, source: &[u8]) {
        let def = &conversion.definition;
        let local: BTreeSet<Digest> = def
            .nodes
            .iter()
            .filter(|n| matches!(&n.op, Op::Source(s) if matches!(s.id, SourceId::Local { .. })))
            .map(|n| n.digest())
            .collect();
        let text = String::from_utf8_lossy(source);
        let lines: Vec<&str> = text.lines().collect();
        for node in &def.nodes {
            let digest = node.digest();
            let kind = match &node.op {
                Op::Source(s) => match &s.id {
                    SourceId::Local { .. } => "source.local",
                    SourceId::Scratch => "source.scratch",
                    _ => "source.image",
                },
                Op::Exec(_) => "exec",
                Op::File(_) => "file",
                Op::Merge(_) => "merge",
            };
            let meta = def.metadata.get(&digest);
            let loc = meta.and_then(|m| m.source_location.as_ref());
            let instruction = loc.map(|l| {
                let (a, b) = (l.start_line as usize, l.end_line as usize);
                lines
                    .get(a.saturating_sub(1)..b.min(lines.len()))
                    .map(|ls| ls.join("\n"))
                    .unwrap_or_default()
            });
            self.vertices.insert(
                digest,
                VertexFacts {
                    kind: kind.to_owned(),
                    location: loc.map(|l| format!("{}:{}", l.file, l.start_line)),
                    instruction,
                    reads_context: node.inputs.iter().any(|i| local.contains(&i.node)),
                },
            );
        }
        let mut stages = serde_json::Map::new();
        for st in &conversion.stages.stages {
            let label = st
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", st.index));
            let env: BTreeMap<&str, &str> = st
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let args: BTreeMap<&str, Option<&str>> = st
                .args
                .iter()
                .map(|a| (a.name.as_str(), a.value.as_deref()))
                .collect();
            stages.insert(label, json!({"env": env, "args": args, "index": st.index}));
        }
        let globals: BTreeMap<&String, &String> =
            conversion.stages.global_args.values.iter().collect();
        self.stage_vars = json!({"stages": stages, "global_args": globals});
    }

    /// Takes the keys and the head chain from a finished solve.
    pub(crate) fn solved(&mut self, solved: &SolveOutput) {
        for (vertex, outcome) in &solved.vertices {
            if let Some(k) = outcome.keys.first() {
                self.keys.insert(*vertex, *k);
            }
        }
        self.head_chain = solved
            .head
            .chain_ids()
            .iter()
            .map(ToString::to_string)
            .collect();
    }

    /// Builds the record. Steps come in the order they first reported progress.
    pub(crate) fn record(
        &self,
        store: &Store,
        args: &BuildArgs,
        error: Option<String>,
    ) -> BuildRecord {
        let (order, events) = match &self.recorder {
            Some(r) => r
                .steps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            None => (Vec::new(), HashMap::new()),
        };
        let mut steps = Vec::new();
        for (index, vertex) in order.iter().enumerate() {
            let ev = &events[vertex];
            let facts = self.vertices.get(vertex).cloned().unwrap_or_default();
            let key = self.keys.get(vertex).copied();
            let preimage = key
                .and_then(|k| store.cache_record(&k).ok().flatten())
                .map(|r| r.preimage);
            let duration = match (ev.started, ev.ended) {
                (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
                _ => Duration::ZERO,
            };
            let mut status = ev.status.unwrap_or(StepStatus::Cancelled);
            // An image source "runs" every build (it loads the unpacked layers); it is a hit
            // when its key was recorded before.
            if facts.kind == "source.image"
                && status == StepStatus::Miss
                && key.is_some_and(|k| store.step_with_key(&k).ok().flatten().is_some())
            {
                status = StepStatus::Hit;
            }
            steps.push(BuildStep {
                index,
                vertex: *vertex,
                name: ev.name.clone(),
                kind: facts.kind,
                location: facts.location,
                instruction: facts.instruction,
                key,
                status,
                duration,
                preimage,
                reason: None,
                files: None,
                log: ev.log.clone(),
            });
        }
        BuildRecord {
            id: self.id.clone(),
            started: self.started,
            finished: SystemTime::now(),
            ok: error.is_none(),
            context: self
                .context
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| args.context.display().to_string()),
            dockerfile: self
                .dockerfile
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            target: args.target.clone(),
            platform: args.platform.clone(),
            args: crate::commands::debug::parse_build_args(&args.build_args)
                .map(|a| a.into_iter().collect())
                .unwrap_or_default(),
            tags: args.tags.clone(),
            image: self.image.map(|(config, _)| config),
            manifest: self.image.map(|(_, manifest)| manifest),
            error,
            info: json!({
                "head_chain": self.head_chain,
                "vars": self.stage_vars,
            }),
            steps,
        }
    }

    /// Whether `vertex` reads the build context.
    pub(crate) fn reads_context(&self, vertex: &Digest) -> bool {
        self.vertices.get(vertex).is_some_and(|v| v.reads_context)
    }
}

/// The build context's file list (see the module docs), one line per file, sorted:
/// `path \t type \t mode \t uid \t gid \t size \t digest`. Whole-file digests come from the
/// solver's memo where the file's stamp matches, so unchanged files are not read.
pub(crate) fn context_files(store: &Store, context: &Path, patterns: &Patterns) -> ContextFiles {
    let scope = format!("context:{}|file-v1|owner=false", context.display());
    let known = store.contenthash_scope(&scope).unwrap_or_default();
    let mut memo = StoreMap { known };
    let tree = dray_fsutil::tree::DirTree::open(context)
        .map(|t| t.with_patterns(patterns.clone()).with_owner_reset());
    let mut out = Vec::new();
    for entry in dray_fsutil::dockerignore::walk(context, patterns).flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.full_path()) else {
            continue;
        };
        let kind = if meta.is_dir() {
            "dir"
        } else if meta.file_type().is_symlink() {
            "symlink"
        } else if meta.is_file() {
            "file"
        } else {
            "other"
        };
        let path = format!("/{}", entry.path());
        // The solver's memo holds the digest of every file whose stamp is unchanged: a map
        // lookup, no syscall. Only files it has not seen (just edited) are hashed here.
        let memoized = memo
            .known
            .get(Path::new(entry.path()))
            .filter(|(stamp, _)| *stamp == dray_cache::FileStamp::of(&meta))
            .map(|(_, d)| d.hex());
        let digest = match (&tree, kind, memoized) {
            (_, "file", Some(d)) => d,
            (Ok(tree), "file" | "symlink", _) => {
                let sel = ch::Selector {
                    path: path.clone(),
                    ..ch::Selector::default()
                };
                ch::checksum(tree, &sel, &mut memo)
                    .map(|d| d.to_hex())
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        out.extend_from_slice(
            format!(
                "{path}\t{kind}\t{:o}\t{}\t{}\t{}\t{digest}\n",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                if kind == "dir" { 0 } else { meta.len() },
            )
            .as_bytes(),
        );
    }
    ContextFiles::new(out)
}

/// The solver's whole-file memo, read once.
struct StoreMap {
    known: dray_cache::MemoScope,
}

impl ch::Memo for StoreMap {
    fn get(&mut self, _: &Path, _: &ch::FileStamp) -> Option<ch::Digest> {
        None
    }
    fn put(&mut self, _: &Path, _: &ch::FileStamp, _: ch::Digest) {}
    fn get_file(&mut self, path: &Path, s: &ch::FileStamp, owner: bool) -> Option<ch::Digest> {
        let (stamp, d) = self.known.get(path)?;
        let same = stamp.dev == s.dev
            && stamp.ino == s.ino
            && stamp.size == s.size
            && stamp.mtime_ns == s.mtime_ns
            && stamp.ctime_ns == s.ctime_ns;
        (same && !owner).then(|| ch::Digest(*d.as_bytes()))
    }
}

/// One parsed line of a context file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileLine {
    pub(crate) kind: String,
    pub(crate) mode: String,
    pub(crate) owner: String,
    pub(crate) size: String,
    pub(crate) digest: String,
}

/// Parses a stored list into path → line.
pub(crate) fn parse_files(bytes: &[u8]) -> BTreeMap<String, FileLine> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 7).then(|| {
                (
                    f[0].to_owned(),
                    FileLine {
                        kind: f[1].to_owned(),
                        mode: f[2].to_owned(),
                        owner: format!("{}:{}", f[3], f[4]),
                        size: f[5].to_owned(),
                        digest: f[6].to_owned(),
                    },
                )
            })
        })
        .collect()
}

/// Saves the build's record: explains its misses, prints the reasons (all of them with
/// `--explain-cache`; a compact line per miss in plain progress), then one transaction.
/// Recording is best effort: a failure is reported but never fails the build.
pub(crate) fn finish(store: &Store, args: &BuildArgs, log: &mut BuildLog, error: Option<String>) {
    use std::io::{IsTerminal, Write};

    let mut record = log.record(store, args, error);
    let needs_files = record
        .steps
        .iter()
        .any(|s| s.status == StepStatus::Miss && log.reads_context(&s.vertex));
    let files = match (&log.context, needs_files) {
        (Some(ctx), true) => Some(
            log.started_listing()
                .unwrap_or_else(|| context_files(store, ctx, &log.patterns)),
        ),
        _ => None,
    };
    if let Some(f) = &files {
        for s in &mut record.steps {
            if log.reads_context(&s.vertex) {
                s.files = Some(f.digest);
            }
        }
    }
    let missed = record.steps.iter().any(|s| s.status == StepStatus::Miss);
    if missed {
        crate::commands::explain::explain_build(
            store,
            &mut record,
            files.as_ref().map(|f| f.files.as_slice()),
        );
    }
    let plain = !args.quiet
        && match args.progress {
            crate::cli::ProgressMode::Plain => true,
            crate::cli::ProgressMode::Auto => {
                !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some()
            }
            _ => false,
        };
    let mut err = std::io::stderr().lock();
    if args.explain_cache {
        let misses: Vec<&BuildStep> = record
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Miss && !s.kind.starts_with("source."))
            .collect();
        let _ = writeln!(
            err,
            "explain-cache: {} of {} steps missed the cache (build {})",
            misses.len(),
            record
                .steps
                .iter()
                .filter(|s| !s.kind.starts_with("source."))
                .count(),
            record.id
        );
        for s in misses {
            let _ = writeln!(
                err,
                "  MISS {}{}: {}",
                s.name,
                s.location
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                s.reason.as_deref().unwrap_or("not explained")
            );
        }
    } else if plain {
        for s in record.steps.iter().filter(|s| s.reason.is_some()) {
            let _ = writeln!(
                err,
                "#cache MISS {}: {}",
                s.name,
                s.reason.as_deref().unwrap_or_default()
            );
        }
    }
    let files = files.filter(|f| !store.has_context_files(&f.digest).unwrap_or(false));
    if let Err(e) = store.save_build(&record, files.as_ref()) {
        let _ = writeln!(err, "warning: failed to save the build record: {e}");
    }
}
