//! The terminal renderer: one live line per step, with a running timer, as `docker build`
//! shows it. Finished steps stay on screen; the last lines of a step's output are shown under
//! it while it runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use dray_llb::Digest;
use dray_solver::{Event, EventKind, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Renders progress events as live lines on the terminal (stderr).
pub(crate) struct TtyReporter {
    bars: MultiProgress,
    steps: Mutex<HashMap<Digest, ProgressBar>>,
}

impl TtyReporter {
    pub(crate) fn new() -> Self {
        TtyReporter {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            steps: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, event: &Event) -> ProgressBar {
        let mut steps = self
            .steps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        steps
            .entry(event.vertex)
            .or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(running_style());
                bar.set_prefix(event.name.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
            .clone()
    }
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template(" {spinner} {prefix} {elapsed:>4} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn finished_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Reporter for TtyReporter {
    fn on_event(&self, event: &Event) {
        let bar = self.bar(event);
        match &event.kind {
            EventKind::Started => {}
            EventKind::Cached => {
                bar.set_style(finished_style(" => CACHED {prefix}"));
                bar.finish();
            }
            EventKind::Log { bytes, .. } => {
                let text = String::from_utf8_lossy(bytes);
                if let Some(line) = text.lines().rev().find(|line| !line.trim().is_empty()) {
                    bar.set_message(line.trim().to_owned());
                }
            }
            EventKind::Progress { id, current, total } => {
                let short = id.get(..19).unwrap_or(id);
                bar.set_message(format!(
                    "{short} {} / {}",
                    super::plain::mebibytes(*current),
                    super::plain::mebibytes(*total)
                ));
            }
            EventKind::Done => {
                let took = bar.elapsed().as_secs_f64();
                bar.set_style(finished_style(&format!(" => {{prefix}} {took:.1}s")));
                bar.finish();
            }
            EventKind::Failed { error } => {
                let error = error.replace(['{', '}'], "");
                bar.set_style(finished_style(&format!(" => ERROR {{prefix}}: {error}")));
                bar.finish();
            }
        }
    }
}
