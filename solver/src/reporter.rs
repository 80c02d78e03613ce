//! Progress: the [`Reporter`] trait the binary implements, and the [`Event`]s it receives.
//!
//! As in uv (`uv-installer`'s `Reporter`), the library only *reports*; only the binary renders.
//! There is no global or context-carried progress state: a solve takes a `&dyn Reporter`.
//!
//! Events carry the time they happened ([`Event::at`]), taken when the scheduler produced them,
//! not when the reporter received them, so a renderer (or a test) can reconstruct which steps
//! ran at the same time.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use dray_llb::Digest;

/// Receives progress from a solve. Called from the task that awaits
/// [`Solver::solve`](crate::Solver::solve), in the order events happened; keep it fast.
pub trait Reporter: Send + Sync {
    /// One vertex made progress.
    fn on_event(&self, event: &Event);

    /// The solve finished (successfully or not); called once, after the last event.
    fn on_summary(&self, summary: &Summary) {
        let _ = summary;
    }
}

/// One thing that happened to one vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The vertex (node digest).
    pub vertex: Digest,
    /// Its progress name: the `llb.customname` metadata, or a generated `<kind> <digest>` one.
    pub name: String,
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Real work started (the result was not in the cache).
    Started,
    /// The result came from the cache; nothing ran.
    Cached,
    /// Output of a running process.
    Log {
        /// Which stream.
        stream: LogStream,
        /// The bytes, as written (not necessarily whole lines).
        bytes: Vec<u8>,
    },
    /// Bytes of a transfer the step is making (a base image layer being downloaded).
    /// Sent when it starts, every so often while it runs, and when it ends (`current == total`).
    Progress {
        /// What is transferred: the blob's digest.
        id: String,
        /// Bytes so far (a resumed download starts at the bytes an earlier run kept).
        current: u64,
        /// All the bytes.
        total: u64,
    },
    /// The work finished and its result was saved in the cache.
    Done,
    /// The work failed (or was cancelled because another step failed).
    Failed {
        /// The error, rendered with its causes.
        error: String,
    },
}

/// The stream a [`EventKind::Log`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Build-level totals, given to [`Reporter::on_summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Vertices whose result came from the cache.
    pub cached: usize,
    /// Vertices that ran.
    pub executed: usize,
    /// Vertices that failed (at most one: the first failure cancels the rest).
    pub failed: usize,
    /// Wall time of the solve.
    pub duration: Duration,
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn on_event(&self, _event: &Event) {}
}

/// A reporter that keeps every event, for tests and for `--progress=rawjson`-style dumps.
#[derive(Debug, Default)]
pub struct RecordingReporter {
    events: Mutex<Vec<Event>>,
    summary: Mutex<Option<Summary>>,
}

impl RecordingReporter {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The summary, once the solve finished.
    pub fn summary(&self) -> Option<Summary> {
        self.summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The names of vertices that had an event matching `pred`, in order of first match.
    pub fn names_where(&self, pred: impl Fn(&EventKind) -> bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.events() {
            if pred(&e.kind) && !out.contains(&e.name) {
                out.push(e.name);
            }
        }
        out
    }

    /// Names of vertices that started real work.
    pub fn started(&self) -> Vec<String> {
        self.names_where(|k| *k == EventKind::Started)
    }

    /// Names of vertices satisfied from the cache.
    pub fn cached(&self) -> Vec<String> {
        self.names_where(|k| *k == EventKind::Cached)
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        *self
            .summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Reporter for RecordingReporter {
    fn on_event(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
    }

    fn on_summary(&self, summary: &Summary) {
        *self
            .summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(summary.clone());
    }
}
