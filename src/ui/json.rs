//! The `rawjson` renderer: one JSON object per event on stderr, for tools.
//!
//! ```text
//! {"vertex":"sha256:…","name":"[2/3] COPY a b","time":"2026-11-23T03:00:00.123456789Z","event":"started"}
//! {"vertex":"sha256:…","name":"[2/3] COPY a b","time":"…","event":"log","stream":"stdout","data":"hello\n"}
//! {"vertex":"sha256:…","name":"[1/3] FROM …","time":"…","event":"progress","id":"sha256:…","current":1048576,"total":6291456}
//! ```

use dray_solver::{Event, EventKind, Reporter};
use serde_json::json;
use std::io::Write;

/// Renders progress events as JSON lines.
#[derive(Debug, Default)]
pub(crate) struct JsonReporter;

impl Reporter for JsonReporter {
    fn on_event(&self, event: &Event) {
        let mut value = json!({
            "vertex": event.vertex.to_string(),
            "name": event.name,
            "time": dray_image::rfc3339_system(event.at),
        });
        let fields = match &event.kind {
            EventKind::Started => json!({"event": "started"}),
            EventKind::Cached => json!({"event": "cached"}),
            EventKind::Done => json!({"event": "done"}),
            EventKind::Progress { id, current, total } => {
                json!({"event": "progress", "id": id, "current": current, "total": total})
            }
            EventKind::Failed { error } => json!({"event": "failed", "error": error}),
            EventKind::Log { stream, bytes } => json!({
                "event": "log",
                "stream": format!("{stream:?}").to_lowercase(),
                "data": String::from_utf8_lossy(bytes),
            }),
        };
        if let (Some(object), Some(extra)) = (value.as_object_mut(), fields.as_object()) {
            object.extend(extra.clone());
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{value}");
    }
}
