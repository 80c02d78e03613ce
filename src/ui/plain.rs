//! The plain renderer, for CI logs and anything that is not a terminal. The format is
//! BuildKit's `--progress=plain`: each step gets a number the first time it appears.
//!
//! ```text
//! #1 [build 1/3] FROM docker.io/library/busybox:latest
//! #1 CACHED
//! #2 [build 2/3] COPY greet.sh ./
//! #2 DONE 0.1s
//! #3 [build 3/3] RUN ./greet.sh
//! #3 0.412 hello
//! #3 ERROR: process "/bin/sh -c ./greet.sh" did not complete successfully: exit code: 1
//! #4 sha256:6d8f2b1c0a9e 1.0MiB / 6.0MiB 0.3s
//! #4 sha256:6d8f2b1c0a9e 6.0MiB / 6.0MiB 1.9s done
//! ```
//!
//! A download prints at most one line a second (and its last one), not every progress event.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use dray_llb::Digest;
use dray_solver::{Event, EventKind, Reporter};

/// Renders progress events as BuildKit-style plain lines on stderr.
#[derive(Debug, Default)]
pub(crate) struct PlainReporter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Step number by vertex, in order of first appearance.
    numbers: HashMap<Digest, usize>,
    /// When each running step started.
    started: HashMap<Digest, SystemTime>,
    /// Partial log lines, by vertex, waiting for their newline.
    partial: HashMap<Digest, Vec<u8>>,
    /// When each download (by blob id) last printed a line.
    transfers: HashMap<String, SystemTime>,
}

/// The least time between two lines of one download.
const TRANSFER_LINE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Reporter for PlainReporter {
    fn on_event(&self, event: &Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = std::io::stderr().lock();
        let next = state.numbers.len() + 1;
        let (number, first) = match state.numbers.get(&event.vertex) {
            Some(&n) => (n, false),
            None => {
                state.numbers.insert(event.vertex, next);
                (next, true)
            }
        };
        if first {
            let _ = writeln!(out, "#{number} {}", event.name);
        }
        // Rendering is best effort: a closed stderr must not fail the build.
        let _ = match &event.kind {
            EventKind::Started => {
                state.started.insert(event.vertex, event.at);
                Ok(())
            }
            EventKind::Cached => writeln!(out, "#{number} CACHED"),
            EventKind::Log { bytes, .. } => {
                let since = elapsed(state.started.get(&event.vertex), event.at);
                let buffer = state.partial.entry(event.vertex).or_default();
                buffer.extend_from_slice(bytes);
                let mut result = Ok(());
                while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    result = writeln!(out, "#{number} {since:.3} {text}");
                }
                result
            }
            EventKind::Progress { id, current, total } => {
                let done = current == total;
                let quiet_since = state.transfers.get(id).copied();
                let due = quiet_since.is_none_or(|t| {
                    event
                        .at
                        .duration_since(t)
                        .is_ok_and(|d| d >= TRANSFER_LINE_INTERVAL)
                });
                if done || due {
                    state.transfers.insert(id.clone(), event.at);
                    let since = elapsed(state.started.get(&event.vertex), event.at);
                    let short = id.get(..19).unwrap_or(id);
                    writeln!(
                        out,
                        "#{number} {short} {} / {} {since:.1}s{}",
                        mebibytes(*current),
                        mebibytes(*total),
                        if done { " done" } else { "" }
                    )
                } else {
                    Ok(())
                }
            }
            EventKind::Done => {
                flush_partial(&mut state, &event.vertex, number, &mut out);
                let took = elapsed(state.started.get(&event.vertex), event.at);
                writeln!(out, "#{number} DONE {took:.1}s")
            }
            EventKind::Failed { error } => {
                flush_partial(&mut state, &event.vertex, number, &mut out);
                writeln!(out, "#{number} ERROR: {error}")
            }
        };
    }
}

/// Writes out a last log line that never got its newline.
fn flush_partial(state: &mut State, vertex: &Digest, number: usize, out: &mut impl Write) {
    if let Some(rest) = state.partial.remove(vertex).filter(|rest| !rest.is_empty()) {
        let _ = writeln!(out, "#{number} {}", String::from_utf8_lossy(&rest));
    }
}

/// `1.5MiB`.
pub(crate) fn mebibytes(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds from `start` to `at`, 0 when unknown or when the clock went backwards.
fn elapsed(start: Option<&SystemTime>, at: SystemTime) -> f64 {
    start
        .and_then(|start| at.duration_since(*start).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}
