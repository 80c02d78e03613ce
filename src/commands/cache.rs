//! `dray cache ls|du|inspect|prune|verify|diff`, and the automatic GC after each build.
//!
//! The store does the work (`dray-cache`: `usage.rs`, `prune.rs`, `verify.rs`, `gc.rs`); this
//! module parses options and prints. Prune and verify take the store's exclusive lock, so they
//! wait for running builds; a build never waits for GC (it skips GC when another process holds
//! the store).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use dray_cache::{
    CacheEntry, Error as StoreError, GcPolicy, PruneFilter, PruneOptions, PruneReport, Root, Store,
    parse_duration, parse_size,
};
use dray_solver::{Preimage, ResolvedDep};
use serde_json::json;

use crate::cli::Cli;
use crate::commands::builds::check_format;
use crate::commands::images::human_size;

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// List cache records, layer blobs, cache mounts and context memos.
    Ls(LsArgs),
    /// Show disk usage: total, reclaimable and in use.
    Du(DuArgs),
    /// Show a cache key: its preimage, its inputs' records, its layer, and why it is kept.
    Inspect(InspectArgs),
    /// Remove unused cache records, snapshots and blobs.
    Prune(PruneArgs),
    /// Check every blob digest, snapshot and record reference; report what is wrong.
    Verify(VerifyArgs),
    /// Compare two builds step by step: which keys differ and why.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    /// `type=KIND`, `until=DUR` (last used longer ago), `image=NAME`, `in-use=true`.
    #[arg(long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DuArgs {
    /// Also list each snapshot and record with its size.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// A cache key (or a unique prefix of its hex).
    pub(crate) key: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Also remove records that tagged images use (the images themselves stay).
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Keep this much (`10GB`, `512MiB`); least recently used records go first.
    #[arg(long, value_name = "SIZE")]
    pub(crate) keep_storage: Option<String>,
    /// Keep records used within this long (`48h`, `7d`).
    #[arg(long, value_name = "DUR")]
    pub(crate) keep_duration: Option<String>,
    /// `until=DUR`, `type=KIND` (exec, file, merge, source.image, source.local, cache-mount),
    /// `dockerfile=PATH`. Repeatable; all must match.
    #[arg(long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// List every removed item.
    #[arg(short, long)]
    pub(crate) verbose: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Remove what cannot be trusted (corrupt blobs, records without content, broken tags).
    #[arg(long)]
    pub(crate) repair: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The first build ID.
    pub(crate) build_a: String,
    /// The second build ID.
    pub(crate) build_b: String,
}

pub(crate) fn run(cli: &Cli, command: &CacheCommand) -> Result<()> {
    let root = Root::resolve(cli.root.clone()).context("failed to find dray's root directory")?;
    match command {
        CacheCommand::Ls(args) => ls(&crate::commands::open_store(cli)?, args),
        CacheCommand::Du(args) => du(&crate::commands::open_store(cli)?, args),
        CacheCommand::Inspect(args) => inspect(&crate::commands::open_store(cli)?, args),
        CacheCommand::Diff(args) => diff(&crate::commands::open_store(cli)?, args),
        CacheCommand::Prune(args) => prune(&root, args),
        CacheCommand::Verify(args) => verify(&root, args),
    }
}

/// Runs GC after a build when the store is over its policy (cheap check first); skipped when
/// another process holds the store. Never fails the build: problems become a warning.
pub(crate) fn auto_gc(store: Store) {
    let root = store.root().clone();
    let check = || -> Result<Option<GcPolicy>, StoreError> {
        let policy = GcPolicy::load(&store)?;
        Ok((policy.enabled && store.gc_needed(&policy)?).then_some(policy))
    };
    let policy = match check() {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            eprintln!("warning: automatic GC skipped: {e}");
            return;
        }
    };
    let keep_storage = policy.keep_storage.bytes(&store);
    drop(store);
    let exclusive = match Store::try_open_exclusive(&root) {
        Ok(s) => s,
        // Another build or command holds the store: the next build collects.
        Err(StoreError::Locked { .. }) => return,
        Err(e) => {
            eprintln!("warning: automatic GC skipped: {e}");
            return;
        }
    };
    let opts = PruneOptions {
        all: false,
        keep_storage: Some(keep_storage),
        keep_duration: policy.keep_duration,
        filters: Vec::new(),
    };
    match exclusive.prune(&opts) {
        Ok(r) if r.count("record") > 0 => eprintln!(
            "gc: removed {} cache records, {} snapshots and {} blobs; {} freed",
            r.count("record"),
            r.count("snapshot"),
            r.count("blob"),
            human_size(r.freed())
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: automatic GC failed: {e}"),
    }
}

/// The first 12 hex characters of a digest.
pub(crate) fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex).to_owned()
}

/// "3 minutes ago".
pub(crate) fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    match secs {
        0..=1 => "just now".to_owned(),
        s if s < 120 => format!("{s} seconds ago"),
        s if s < 7200 => format!("{} minutes ago", s / 60),
        s if s < 172_800 => format!("{} hours ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

fn stage(name: &str) -> String {
    crate::commands::explain::stage_label(name).unwrap_or_else(|| "-".to_owned())
}

fn entry_json(e: &CacheEntry) -> serde_json::Value {
    json!({
        "id": e.id,
        "kind": e.kind,
        "snapshot": e.snapshot.as_ref().map(ToString::to_string),
        "location": e.location,
        "instruction": e.name,
        "stage": crate::commands::explain::stage_label(&e.name),
        "size": e.size,
        "created": e.created.map(dray_image::rfc3339_system),
        "last_used": e.last_used.map(dray_image::rfc3339_system),
        "usage_count": e.usage,
        "in_use": e.in_use,
        "images": e.images,
    })
}

fn ls(store: &Store, args: &LsArgs) -> Result<()> {
    check_format(&args.format, "table")?;
    let mut entries = store.cache_entries().context("failed to list the cache")?;
    let now = SystemTime::now();
    for f in &args.filters {
        let Some((k, v)) = f.split_once('=') else {
            bail!("invalid --filter {f:?}: expected KEY=VALUE");
        };
        match k {
            "type" => entries.retain(|e| e.kind == v),
            "until" => {
                let d = parse_duration(v).with_context(|| format!("invalid duration {v:?}"))?;
                entries.retain(|e| e.last_used.is_some_and(|t| t + d < now));
            }
            "image" => entries.retain(|e| e.images.iter().any(|i| i.contains(v))),
            "in-use" => entries.retain(|e| e.in_use == (v == "true")),
            _ => bail!("invalid --filter {f:?}: use type=, until=, image= or in-use="),
        }
    }
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        let list: Vec<_> = entries.iter().map(entry_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12}  {:<12}  {:<16}  {:<10}  {:>8}  {:<16}  {:<16}  {:>5}  {:<6}  {:<24}  INSTRUCTION",
        "KEY",
        "KIND",
        "LOCATION",
        "STAGE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USES",
        "IN USE",
        "IMAGES"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:<12}  {:<12}  {:<16}  {:<10}  {:>8}  {:<16}  {:<16}  {:>5}  {:<6}  {:<24}  {}",
            short(&e.id),
            e.kind,
            e.location
                .as_deref()
                .map_or("-", |l| l.rsplit('/').next().unwrap_or(l)),
            stage(&e.name),
            human_size(e.size),
            e.created.map_or_else(|| "-".to_owned(), ago),
            e.last_used.map_or_else(|| "-".to_owned(), ago),
            e.usage,
            if e.in_use { "yes" } else { "no" },
            if e.images.is_empty() {
                "-".to_owned()
            } else {
                e.images.join(",")
            },
            e.name
        )?;
    }
    Ok(())
}

fn du(store: &Store, args: &DuArgs) -> Result<()> {
    check_format(&args.format, "table")?;
    let usage = store.disk_usage().context("failed to measure the store")?;
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        let v = json!({
            "total": usage.total,
            "reclaimable": usage.reclaimable,
            "in_use": usage.in_use,
            "areas": usage.areas,
            "snapshots": usage.snapshots.iter().map(|(id, b, r)| json!({"id": id.to_string(), "bytes": b, "reclaimable": r})).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if args.verbose {
        let records: BTreeMap<String, Vec<CacheEntry>> = store
            .cache_entries()?
            .into_iter()
            .filter(|e| e.snapshot.is_some() && e.kind != "layer")
            .fold(BTreeMap::new(), |mut m, e| {
                m.entry(
                    e.snapshot
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
                .or_default()
                .push(e);
                m
            });
        writeln!(
            out,
            "{:<34}  {:>10}  {:<11}  RECORDS",
            "SNAPSHOT", "SIZE", "RECLAIMABLE"
        )?;
        for (id, bytes, reclaimable) in &usage.snapshots {
            let names: Vec<String> = records
                .get(id.as_str())
                .into_iter()
                .flatten()
                .map(|e| format!("{} {}", short(&e.id), e.name))
                .collect();
            writeln!(
                out,
                "{:<34}  {:>10}  {:<11}  {}",
                id.as_str(),
                human_size(*bytes),
                if *reclaimable { "yes" } else { "no" },
                if names.is_empty() {
                    "-".to_owned()
                } else {
                    names.join("; ")
                }
            )?;
        }
        writeln!(out)?;
        for (area, bytes) in &usage.areas {
            writeln!(
                out,
                "{:<14} {:>10}  ({bytes} bytes)",
                format!("{area}:"),
                human_size(*bytes)
            )?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total:         {:>10}  ({} bytes)",
        human_size(usage.total),
        usage.total
    )?;
    writeln!(
        out,
        "Reclaimable:   {:>10}  ({} bytes)",
        human_size(usage.reclaimable),
        usage.reclaimable
    )?;
    writeln!(
        out,
        "In use:        {:>10}  ({} bytes)",
        human_size(usage.in_use),
        usage.in_use
    )?;
    Ok(())
}

fn inspect(store: &Store, args: &InspectArgs) -> Result<()> {
    let wanted = args
        .key
        .strip_prefix("sha256:")
        .unwrap_or(&args.key)
        .to_ascii_lowercase();
    if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "invalid cache key {:?}: expected sha256:<hex> or a hex prefix",
            args.key
        );
    }
    let records = store.cache_records()?;
    let matches: Vec<_> = records
        .iter()
        .filter(|r| r.key.hex().starts_with(&wanted))
        .collect();
    let record = match matches.as_slice() {
        [one] => *one,
        [] => bail!(
            "no cache record with key {} (see `dray cache ls`)",
            args.key
        ),
        _ => bail!(
            "cache key prefix {} matches {} records; give more characters",
            args.key,
            matches.len()
        ),
    };
    let entries = store.cache_entries()?;
    let entry = entries.iter().find(|e| e.id == record.key.to_string());
    let pre: Option<Preimage> = serde_json::from_str(&record.preimage).ok();
    let mut out = std::io::stdout().lock();
    writeln!(out, "key:        {}", record.key)?;
    if let Some(e) = entry {
        writeln!(out, "kind:       {}", e.kind)?;
        writeln!(out, "step:       {}", e.name)?;
        writeln!(out, "location:   {}", e.location.as_deref().unwrap_or("-"))?;
        writeln!(out, "size:       {}", human_size(e.size))?;
        writeln!(out, "uses:       {}", e.usage)?;
    }
    writeln!(out, "snapshot:   {}", record.snapshot)?;
    writeln!(
        out,
        "created:    {} ({})",
        dray_image::rfc3339_system(record.created),
        ago(record.created)
    )?;
    writeln!(
        out,
        "last used:  {} ({})",
        dray_image::rfc3339_system(record.last_used),
        ago(record.last_used)
    )?;
    writeln!(out, "\npreimage:")?;
    match &pre {
        Some(p) => {
            writeln!(out, "  schema:   {}", p.schema)?;
            writeln!(
                out,
                "  op:       {} {}",
                p.cm_digest,
                dray_solver::key::canonical_json(&p.op).escape_ascii()
            )?;
            writeln!(out, "  output:   {}", p.output)?;
            for (i, d) in p.deps.iter().enumerate() {
                match d {
                    ResolvedDep::Key { key, selector } => {
                        let input = records.iter().find(|r| r.key == *key);
                        let name = input
                            .and_then(|r| serde_json::from_str::<Preimage>(&r.preimage).ok())
                            .map_or_else(|| "(no record)".to_owned(), |p| p.name);
                        writeln!(
                            out,
                            "  input {i}:  key {key}{} -> {name}",
                            if selector.is_empty() {
                                String::new()
                            } else {
                                format!(" selector {selector:?}")
                            }
                        )?;
                    }
                    ResolvedDep::Content { digest, selectors } => {
                        writeln!(
                            out,
                            "  input {i}:  content {digest} of {}",
                            selectors.join(", ")
                        )?;
                    }
                }
            }
            if let Some(chain) = &p.result_chain {
                writeln!(out, "  result chain: {}", chain.join(" "))?;
            }
        }
        None => writeln!(out, "  (unreadable)")?,
    }
    writeln!(out, "\nlayer:")?;
    let layers = store.layers(&record.snapshot)?;
    if layers.is_empty() {
        writeln!(out, "  (not exported)")?;
    }
    for l in layers {
        writeln!(
            out,
            "  {} {} ({}), diff_id {}",
            l.blob,
            l.media_type,
            human_size(l.size),
            l.diff_id
        )?;
    }
    writeln!(out, "\nkept because:")?;
    let mut reasons = Vec::new();
    if let Some(e) = entry {
        for image in &e.images {
            reasons.push(format!("referenced by image {image}"));
        }
        if e.in_use {
            for lease in store.leases()?.into_iter().filter(|l| l.alive) {
                reasons.push(format!(
                    "in use by a running build (process {}, lease {})",
                    lease.pid, lease.id
                ));
            }
        }
    }
    let policy = GcPolicy::load(store)?;
    if let Some(d) = policy.keep_duration {
        if record.last_used + d > SystemTime::now() {
            reasons.push(format!(
                "within the keep policy (used in the last {})",
                human_duration(d)
            ));
        } else {
            reasons.push("older than the keep policy: the next GC may remove it".to_owned());
        }
    } else {
        reasons.push("within the keep policy (no age limit)".to_owned());
    }
    for r in reasons {
        writeln!(out, "  {r}")?;
    }
    Ok(())
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) && s > 0 {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) && s > 0 {
        format!("{} hours", s / 3600)
    } else {
        format!("{s} seconds")
    }
}

fn parse_prune(args: &PruneArgs) -> Result<PruneOptions> {
    let mut opts = PruneOptions {
        all: args.all,
        ..PruneOptions::default()
    };
    if let Some(s) = &args.keep_storage {
        opts.keep_storage =
            Some(parse_size(s).with_context(|| {
                format!("invalid --keep-storage {s:?}: use e.g. 10GB or 512MiB")
            })?);
    }
    if let Some(s) = &args.keep_duration {
        opts.keep_duration = Some(
            parse_duration(s)
                .with_context(|| format!("invalid --keep-duration {s:?}: use e.g. 48h or 7d"))?,
        );
    }
    const KINDS: [&str; 6] = [
        "exec",
        "file",
        "merge",
        "source.image",
        "source.local",
        "cache-mount",
    ];
    for f in &args.filters {
        let filter = match f.split_once('=') {
            Some(("until", v)) => PruneFilter::Until(
                parse_duration(v)
                    .with_context(|| format!("invalid --filter {f:?}: bad duration"))?,
            ),
            Some(("type", v)) if KINDS.contains(&v) => PruneFilter::Kind(v.to_owned()),
            Some(("type", v)) => bail!(
                "invalid --filter {f:?}: unknown type {v:?} (use one of {})",
                KINDS.join(", ")
            ),
            Some(("dockerfile", v)) if !v.is_empty() => PruneFilter::Dockerfile(v.to_owned()),
            _ => bail!("invalid --filter {f:?}: use until=DUR, type=KIND or dockerfile=PATH"),
        };
        opts.filters.push(filter);
    }
    Ok(opts)
}

fn prune(root: &Root, args: &PruneArgs) -> Result<()> {
    let opts = parse_prune(args)?;
    if !args.force && std::io::stdin().is_terminal() {
        eprint!(
            "WARNING! This will remove {}cache records and the content only they use.\nAre you sure you want to continue? [y/N] ",
            if args.all { "all " } else { "unused " }
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let store = match Store::try_open_exclusive(root) {
        Ok(s) => s,
        Err(StoreError::Locked { .. }) => {
            eprintln!("waiting for running builds to finish…");
            Store::open_exclusive(root)?
        }
        Err(e) => return Err(e.into()),
    };
    let report = store.prune(&opts).context("prune failed")?;
    print_prune(&report, args.verbose)
}

fn print_prune(report: &PruneReport, verbose: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if verbose {
        for p in &report.removed {
            writeln!(
                out,
                "deleted {:<12} {}  {}",
                p.what,
                p.id,
                human_size(p.size)
            )?;
        }
    }
    writeln!(
        out,
        "Removed {} records, {} snapshots, {} blobs, {} cache mounts; kept {} records used by images or running builds",
        report.count("record"),
        report.count("snapshot"),
        report.count("blob"),
        report.count("cache-mount"),
        report.kept_referenced
    )?;
    writeln!(out, "Total reclaimed space: {}", human_size(report.freed()))?;
    Ok(())
}

fn verify(root: &Root, args: &VerifyArgs) -> Result<()> {
    let store = Store::open_exclusive_without_recovery(root)
        .with_context(|| format!("failed to open dray's store at {}", root.path().display()))?;
    let key_of = |p: &str| serde_json::from_str::<Preimage>(p).ok().map(|p| p.key());
    let report = store.verify(&key_of)?;
    let mut out = std::io::stdout().lock();
    let checked: Vec<String> = report
        .checked
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    writeln!(out, "checked {}", checked.join(", "))?;
    for n in &report.notes {
        writeln!(out, "note: {n}")?;
    }
    for p in &report.problems {
        writeln!(out, "PROBLEM: {}: {}", p.subject, p.detail)?;
    }
    if report.problems.is_empty() {
        writeln!(out, "no problems found")?;
        if args.repair {
            store.repair(&report)?;
        }
        return Ok(());
    }
    if args.repair {
        let fixed = store.repair(&report)?;
        writeln!(out, "repaired: applied {fixed} fixes")?;
        let again = store.verify(&key_of)?;
        for p in &again.problems {
            writeln!(out, "PROBLEM (still): {}: {}", p.subject, p.detail)?;
        }
        if again.problems.is_empty() {
            writeln!(out, "no problems left")?;
            return Ok(());
        }
        bail!("{} problems remain after repair", again.problems.len());
    }
    bail!(
        "{} problems found (nothing was changed; `dray cache verify --repair` removes what cannot be trusted)",
        report.problems.len()
    )
}

fn diff(store: &Store, args: &DiffArgs) -> Result<()> {
    let a = store.build_record(&args.build_a)?;
    let b = store.build_record(&args.build_b)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "comparing build {} with build {}", a.id, b.id)?;
    let mut used = vec![false; a.steps.len()];
    let mut differ = 0;
    for sb in &b.steps {
        let pos = |n: &str| n.find(']').map(|i| n[..=i].to_owned());
        let found = a
            .steps
            .iter()
            .enumerate()
            .find(|(i, s)| !used[*i] && s.name == sb.name)
            .or_else(|| {
                a.steps.iter().enumerate().find(|(i, s)| {
                    !used[*i]
                        && s.kind == sb.kind
                        && pos(&s.name).is_some()
                        && pos(&s.name) == pos(&sb.name)
                })
            })
            .or_else(|| {
                a.steps.iter().enumerate().find(|(i, s)| {
                    !used[*i]
                        && s.kind == sb.kind
                        && s.location.is_some()
                        && s.location == sb.location
                })
            });
        match found {
            None => {
                differ += 1;
                writeln!(out, "only in {}:  {}", b.id, sb.name)?;
            }
            Some((i, sa)) => {
                used[i] = true;
                if sa.key == sb.key {
                    writeln!(
                        out,
                        "same       {}  {}",
                        sb.key
                            .map_or_else(|| "-".to_owned(), |k| short(&k.to_string())),
                        sb.name
                    )?;
                } else {
                    differ += 1;
                    let why = crate::commands::explain::diff_steps(store, &a, sa, &b, sb);
                    writeln!(
                        out,
                        "differs    {} -> {}  {}\n           {why}",
                        sa.key
                            .map_or_else(|| "-".to_owned(), |k| short(&k.to_string())),
                        sb.key
                            .map_or_else(|| "-".to_owned(), |k| short(&k.to_string())),
                        sb.name
                    )?;
                }
            }
        }
    }
    for (i, sa) in a.steps.iter().enumerate() {
        if !used[i] {
            differ += 1;
            writeln!(out, "only in {}:  {}", a.id, sa.name)?;
        }
    }
    writeln!(out, "{differ} steps differ")?;
    Ok(())
}
