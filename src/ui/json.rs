//! The `rawjson` renderer: one JSON object per event on stderr, for tools.
//!
//! ```text
//! {"vertex":"sha256:…","name":"[2/3] COPY a b","time":"2026-11-23T03:00:00.123456789Z","event":"started"}
//! {"vertex":"sha256:…","name":"[2/3] COPY a b","time":"…","event":"log","stream":"stdout","data":"hello\n"}
//! ```

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use dray_solver::{Event, EventKind, Reporter};
use serde_json::json;

/// Renders progress events as JSON lines.
#[derive(Debug, Default)]
pub(crate) struct JsonReporter;

impl Reporter for JsonReporter {
    fn on_event(&self, event: &Event) {
        let mut value = json!({
            "vertex": event.vertex.to_string(),
            "name": event.name,
            "time": rfc3339(event.at),
        });
        let fields = match &event.kind {
            EventKind::Started => json!({"event": "started"}),
            EventKind::Cached => json!({"event": "cached"}),
            EventKind::Done => json!({"event": "done"}),
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

/// `time` as RFC 3339 in UTC with nanoseconds, e.g. `2026-11-23T03:00:00.123456789Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }
}
