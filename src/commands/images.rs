//! `dray images`, `inspect`, `history`, `tag` and `rmi`: the local image store.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use dray_cache::Store;
use dray_llb::ImageRef;

use crate::cli::{ImageNameArgs, RmiArgs, TagArgs};

/// `dray images`: a table like `docker images`.
pub(crate) fn list(store: &Store) -> Result<()> {
    let images = dray_image::list_images(store).context("failed to list images")?;
    let now = SystemTime::now();
    let rows: Vec<[String; 5]> = images
        .iter()
        .map(|image| {
            [
                image.repository.clone(),
                image.tag.clone(),
                image.image_id.hex()[..12].to_owned(),
                image
                    .created
                    .as_deref()
                    .map_or_else(|| "N/A".to_owned(), |t| ago(t, now)),
                human_size(image.size),
            ]
        })
        .collect();
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(str::to_owned);
    print_table(&header, &rows)
}

/// `dray inspect NAME`: `docker image inspect`'s JSON (an array of one image).
pub(crate) fn inspect(store: &Store, args: &ImageNameArgs) -> Result<()> {
    let image = dray_image::load_image(store, &args.image)?;
    let json = serde_json::Value::Array(vec![dray_image::inspect_json(&image)]);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &json)?;
    writeln!(out)?;
    Ok(())
}

/// `dray history NAME`: a table like `docker history`, newest step first.
pub(crate) fn history(store: &Store, args: &ImageNameArgs) -> Result<()> {
    let image = dray_image::load_image(store, &args.image)?;
    let now = SystemTime::now();
    let rows: Vec<[String; 5]> = dray_image::history_rows(&image)
        .into_iter()
        .map(|row| {
            let id = match row.id.strip_prefix("sha256:") {
                Some(hex) => hex.get(..12).unwrap_or(hex).to_owned(),
                None => row.id,
            };
            [
                id,
                row.created
                    .as_deref()
                    .map_or_else(|| "N/A".to_owned(), |t| ago(t, now)),
                truncate(&row.created_by, 45),
                human_size(row.size),
                row.comment,
            ]
        })
        .collect();
    let header = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(str::to_owned);
    print_table(&header, &rows)
}

/// `dray tag SOURCE TARGET`.
pub(crate) fn tag(store: &Store, args: &TagArgs) -> Result<()> {
    let image = dray_image::load_image(store, &args.source)?;
    let target = ImageRef::parse(&args.target)
        .with_context(|| format!("invalid image name {:?}", args.target))?;
    dray_image::tag_descriptor(store, &target, &image.manifest_descriptor)?;
    Ok(())
}

/// `dray rmi NAME…`: removes names; the content stays until the cache is pruned.
pub(crate) fn rmi(store: &Store, args: &RmiArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for name in &args.images {
        for removed in dray_image::untag(store, name, false)? {
            writeln!(out, "Untagged: {removed}")?;
        }
    }
    Ok(())
}

fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> Result<()> {
    let mut widths: [usize; N] = std::array::from_fn(|i| header[i].chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `docker`'s human-readable sizes: decimal units with three significant digits and trailing
/// zeros dropped (Go's `%.3g`, as `docker images` prints them): `1.23MB`, `12.3MB`, `123MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// "2 minutes ago", as docker prints a creation time.
fn ago(rfc3339: &str, now: SystemTime) -> String {
    let Some((secs, _)) = dray_image::parse_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let delta = (now - secs).max(0);
    let (amount, unit) = match delta {
        0 => return "Less than a second ago".to_owned(),
        d if d < 60 => (d, "second"),
        d if d < 3600 => (d / 60, "minute"),
        d if d < 86_400 => (d / 3600, "hour"),
        d if d < 86_400 * 14 => (d / 86_400, "day"),
        d if d < 86_400 * 60 => (d / (86_400 * 7), "week"),
        d if d < 86_400 * 365 * 2 => (d / (86_400 * 30), "month"),
        d => (d / (86_400 * 365), "year"),
    };
    match amount {
        1 if unit == "hour" => "About an hour ago".to_owned(),
        1 => format!("1 {unit} ago"),
        n => format!("{n} {unit}s ago"),
    }
}

/// `text` cut to `max` characters with an ellipsis, as docker's history table does.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn ages_read_like_docker() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(ago("2023-11-14T22:13:20Z", now), "Less than a second ago");
        assert_eq!(ago("2023-11-14T22:11:20Z", now), "2 minutes ago");
        assert_eq!(ago("2023-11-14T21:13:20Z", now), "About an hour ago");
        assert_eq!(ago("2023-11-11T22:13:20Z", now), "3 days ago");
        assert_eq!(ago("not a time", now), "not a time");
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("short", 45), "short");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
