//! `dray builds ls|show|logs`: the build records `dray build` keeps (see `record.rs`).

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use dray_cache::{BuildRecord, StepStatus, Store};
use serde_json::json;

use crate::commands::cache::{ago, short};
use crate::commands::images::human_size;

#[derive(Debug, Subcommand)]
pub(crate) enum BuildsCommand {
    /// List recorded builds, oldest first.
    Ls(LsArgs),
    /// Show one build: its settings and every step's key, HIT/MISS, duration and reason.
    Show(ShowArgs),
    /// Print a build's logs (all steps, or one step by number or name).
    Logs(LogsArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The build ID (or a unique prefix).
    pub(crate) id: String,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    pub(crate) format: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The build ID (or a unique prefix).
    pub(crate) id: String,
    /// A step: its number in `builds show` (1-based) or a part of its name.
    pub(crate) step: Option<String>,
}

pub(crate) fn run(store: &Store, command: &BuildsCommand) -> Result<()> {
    match command {
        BuildsCommand::Ls(args) => ls(store, args),
        BuildsCommand::Show(args) => show(store, args),
        BuildsCommand::Logs(args) => logs(store, args),
    }
}

fn ls(store: &Store, args: &LsArgs) -> Result<()> {
    let builds = store.builds().context("failed to list builds")?;
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        let list: Vec<_> = builds.iter().map(summary_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    check_format(&args.format, "table")?;
    writeln!(
        out,
        "{:<12}  {:<15}  {:<6}  {:>8}  {:<12}  DOCKERFILE",
        "ID", "STARTED", "STATUS", "DURATION", "IMAGE"
    )?;
    for b in &builds {
        writeln!(
            out,
            "{:<12}  {:<15}  {:<6}  {:>8}  {:<12}  {}",
            b.id,
            ago(b.started),
            if b.ok { "ok" } else { "failed" },
            format!(
                "{:.1}s",
                b.finished
                    .duration_since(b.started)
                    .unwrap_or_default()
                    .as_secs_f64()
            ),
            b.image
                .map_or_else(|| "-".to_owned(), |d| d.hex()[..12].to_owned()),
            b.dockerfile
        )?;
    }
    Ok(())
}

fn summary_json(b: &BuildRecord) -> serde_json::Value {
    json!({
        "id": b.id,
        "started": dray_image::rfc3339_system(b.started),
        "finished": dray_image::rfc3339_system(b.finished),
        "status": if b.ok { "ok" } else { "failed" },
        "context": b.context,
        "dockerfile": b.dockerfile,
        "target": b.target,
        "platform": b.platform,
        "args": b.args,
        "tags": b.tags,
        "image": b.image.map(|d| d.to_string()),
        "manifest": b.manifest.map(|d| d.to_string()),
        "error": b.error,
    })
}

fn show(store: &Store, args: &ShowArgs) -> Result<()> {
    let b = store.build_record(&args.id)?;
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        let mut v = summary_json(&b);
        v["steps"] = b
            .steps
            .iter()
            .map(|s| {
                json!({
                    "index": s.index + 1,
                    "vertex": s.vertex.to_string(),
                    "name": s.name,
                    "kind": s.kind,
                    "location": s.location,
                    "key": s.key.map(|k| k.to_string()),
                    "status": s.status.as_str(),
                    "duration_ms": s.duration.as_millis() as u64,
                    "reason": s.reason,
                    "log_bytes": s.log.len(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    check_format(&args.format, "text")?;
    writeln!(
        out,
        "build {}  ({})",
        b.id,
        if b.ok { "ok" } else { "failed" }
    )?;
    writeln!(out, "started:    {}", dray_image::rfc3339_system(b.started))?;
    writeln!(
        out,
        "duration:   {:.2}s",
        b.finished
            .duration_since(b.started)
            .unwrap_or_default()
            .as_secs_f64()
    )?;
    writeln!(out, "context:    {}", b.context)?;
    writeln!(out, "dockerfile: {}", b.dockerfile)?;
    if let Some(t) = &b.target {
        writeln!(out, "target:     {t}")?;
    }
    if let Some(p) = &b.platform {
        writeln!(out, "platform:   {p}")?;
    }
    for (k, v) in &b.args {
        writeln!(out, "build-arg:  {k}={v}")?;
    }
    for t in &b.tags {
        writeln!(out, "tag:        {t}")?;
    }
    if let Some(i) = b.image {
        writeln!(out, "image:      {i}")?;
    }
    if let Some(e) = &b.error {
        writeln!(out, "error:      {}", e.lines().next().unwrap_or_default())?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>3}  {:<6}  {:>7}  {:<12}  {:<14}  STEP",
        "#", "CACHE", "TIME", "KEY", "LOCATION"
    )?;
    for s in &b.steps {
        writeln!(
            out,
            "{:>3}  {:<6}  {:>7}  {:<12}  {:<14}  {}",
            s.index + 1,
            s.status.as_str(),
            format!("{:.2}s", s.duration.as_secs_f64()),
            s.key
                .map_or_else(|| "-".to_owned(), |k| short(&k.to_string())),
            s.location.as_deref().unwrap_or("-"),
            s.name
        )?;
        if let Some(r) = &s.reason {
            writeln!(out, "{:>3}  {:<6}  why: {r}", "", "")?;
        }
    }
    let _ = human_size;
    Ok(())
}

fn logs(store: &Store, args: &LogsArgs) -> Result<()> {
    let b = store.build_record(&args.id)?;
    let steps: Vec<_> = match &args.step {
        None => b.steps.iter().collect(),
        Some(sel) => {
            let picked: Vec<_> = match sel.parse::<usize>() {
                Ok(n) => b.steps.iter().filter(|s| s.index + 1 == n).collect(),
                Err(_) => b
                    .steps
                    .iter()
                    .filter(|s| s.name.contains(sel.as_str()))
                    .collect(),
            };
            if picked.is_empty() {
                bail!(
                    "build {} has no step {sel:?} (see `dray builds show {}`)",
                    b.id,
                    b.id
                );
            }
            picked
        }
    };
    let mut out = std::io::stdout().lock();
    for s in steps {
        writeln!(out, "#{} {} [{}]", s.index + 1, s.name, s.status.as_str())?;
        if s.status == StepStatus::Hit && s.log.is_empty() {
            writeln!(out, "#{} CACHED", s.index + 1)?;
        }
        for line in String::from_utf8_lossy(&s.log).lines() {
            writeln!(out, "#{} {line}", s.index + 1)?;
        }
    }
    Ok(())
}

pub(crate) fn check_format(given: &str, default: &str) -> Result<()> {
    if given != default && given != "json" {
        bail!("invalid --format {given:?}: expected {default} or json");
    }
    Ok(())
}
