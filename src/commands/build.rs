//! `dray build`: Dockerfile → op graph → solve → image in the local store.
//!
//! The data flow of architecture B5, end to end:
//!
//! 1. read the Dockerfile and the `.dockerignore` (`<Dockerfile>.dockerignore` first);
//! 2. convert (the frontend) with base images resolved from the local store or OCI layouts,
//!    and `--build-context` names;
//! 3. solve the graph (the solver), reporting progress to the chosen renderer;
//! 4. assemble the image from the head's snapshot chain (image), write its blobs;
//! 5. tag it with every `-t` name, print its ID, write `--iidfile` / `--metadata-file`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use dray_cache::Store;
use dray_frontend::convert::{
    ConvertOptions, ImageResolver, NamedContext, OCI_LAYOUT_SCHEME, ResolveError, ResolvedImage,
    ResolvedLayout,
};
use dray_frontend::stages::{Platform, ResolveOptions};
use dray_fsutil::dockerignore::Patterns;
use dray_image::{AssembleOptions, BaseImage};
use dray_llb::{ImageRef, SourceId};
use dray_sandbox::NativeExecutor;
use dray_solver::{LocalSource, Reporter, SolveError, SolveOptions, Solver};
use serde_json::json;

use crate::cli::{BuildArgs, ExecutorKind, ProgressMode};
use crate::commands::debug::{parse_build_args, read_dockerfile};
use crate::commands::record::{BuildLog, finish};
use crate::commands::{output, registry};
use crate::{diagnostic, ui};

/// `SOURCE_DATE_EPOCH`: the build's notion of "now" for reproducible output.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

pub(crate) fn build(store: &Store, args: &BuildArgs) -> Result<()> {
    output::check(&args.outputs)?;
    let mut log = BuildLog::new();
    let result = build_recorded(store, args, &mut log);
    let error = result.as_ref().err().map(|e| format!("{e:#}"));
    finish(store, args, &mut log, error);
    result
}

fn build_recorded(store: &Store, args: &BuildArgs, log: &mut BuildLog) -> Result<()> {
    let context = std::fs::canonicalize(&args.context).with_context(|| {
        format!(
            "unable to prepare context: path {:?} not found",
            args.context
        )
    })?;
    if !context.is_dir() {
        bail!(
            "unable to prepare context: {} is not a directory",
            context.display()
        );
    }
    let dockerfile_path = args
        .file
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let (dockerfile_name, source) = read_dockerfile(&dockerfile_path)?;
    let patterns = read_dockerignore(&context, &dockerfile_path)?;
    log.context = Some(context.clone());
    log.dockerfile = Some(std::path::absolute(&dockerfile_path).unwrap_or(dockerfile_path.clone()));
    log.patterns = patterns.clone();
    let tags = args
        .tags
        .iter()
        .map(|tag| ImageRef::parse(tag).with_context(|| format!("invalid tag {tag:?}")))
        .collect::<Result<Vec<_>>>()?;

    let mut build_args = parse_build_args(&args.build_args)?;
    let (named_contexts, local_contexts) = parse_build_contexts(&args.build_contexts)?;
    let source_date_epoch = source_date_epoch(&build_args)?;
    // As buildx does: the environment's SOURCE_DATE_EPOCH becomes the build argument, so the
    // frontend stamps copied files and WORKDIR directories with it too.
    if let Some(epoch) = source_date_epoch {
        build_args
            .entry(SOURCE_DATE_EPOCH.to_owned())
            .or_insert_with(|| epoch.to_string());
    }
    let mut resolve = ResolveOptions {
        build_args,
        target: args.target.clone(),
        ..ResolveOptions::default()
    };
    if let Some(platform) = &args.platform {
        resolve.target_platform = Platform::parse(platform)
            .with_context(|| format!("invalid --platform {platform:?}"))?;
    }
    let options = ConvertOptions {
        resolve,
        dockerignore: patterns
            .patterns()
            .iter()
            .map(ToString::to_string)
            .collect(),
        labels: parse_labels(&args.labels)?,
        no_cache: args.no_cache,
        filename: dockerfile_name.clone(),
        named_contexts,
        ..ConvertOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    // From here SIGINT/SIGTERM cancel the build gracefully (see `interrupt`).
    let interrupt = crate::interrupt::Interrupt::install(&runtime)?;
    let registry = registry::registry(&args.insecure_registries);
    let image_outputs = output::image_names(&args.outputs);
    let resolver = registry::RegistryImages {
        store,
        registry: &registry,
        runtime: &runtime,
        pull: args.pull,
        pulled: Default::default(),
        relative_to: context.clone(),
    };
    let conversion =
        dray_frontend::convert::convert_source(&source, &options, &resolver).map_err(|err| {
            diagnostic::render(&dockerfile_name, &source, err.span(), &with_causes(&err))
        })?;
    log.converted(&conversion, &source);
    interrupt.check()?;

    // A global `ARG SOURCE_DATE_EPOCH=…` default counts too (the frontend resolves it).
    let source_date_epoch = conversion.epoch.or(source_date_epoch);
    let mut solve_options = SolveOptions {
        no_cache: args.no_cache,
        source_date_epoch,
        secrets: crate::commands::secrets::from_args(&args.secrets, &args.ssh)?,
        ..SolveOptions::default()
    };
    if let Some(n) = args.max_parallelism {
        solve_options.max_parallelism = n.max(1);
    }
    let mut solver = Solver::new(store.clone())
        .with_executor(executor(store, args.executor))
        .with_context(LocalSource::new("context", &context, patterns))
        .with_fetcher(Arc::new(registry::RegistryFetcher {
            store: store.clone(),
            registry: registry.clone(),
        }))
        .with_options(solve_options)
        .with_cancellation(interrupt.token());
    for (name, dir) in local_contexts {
        // buildx sends a named context's files as they are: its own `.dockerignore` only.
        let patterns = read_dockerignore(&dir, &dir.join("Dockerfile"))?;
        solver = solver.with_context(LocalSource::new(name, dir, patterns));
    }
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let reporter: Arc<dyn Reporter> = log.reporter(Arc::from(ui::reporter(mode)), store);
    let solved = runtime.block_on(solver.solve(&conversion.definition, reporter.as_ref()));
    // One sync for every snapshot the solve committed, a failed or cancelled solve's included
    // (the cache crate's durability rules: steps commit without syncing).
    store
        .sync_snapshots()
        .context("failed to sync the build's snapshots to disk")?;
    interrupt.check()?;
    let solved = solved
        .map_err(|err| solve_error(err, &conversion.definition, &dockerfile_name, &source))?;
    log.solved(&solved);

    let base: Option<BaseImage> = match &conversion.base_image {
        Some(SourceId::Image(reference)) => Some(base_image(store, reference)?),
        // The new image's manifest names the base's layer blobs: the store must hold them
        // all (the solve copied only those it had to unpack, if any).
        Some(SourceId::OciLayout { path, reference }) => {
            let digest = reference
                .parse()
                .with_context(|| format!("the base image {path}#{reference} is not pinned"))?;
            Some(
                dray_image::layout::import_image(store, Path::new(path), &digest)
                    .with_context(|| {
                        format!(
                            "failed to import the base image {OCI_LAYOUT_SCHEME}{path}@{digest}"
                        )
                    })?
                    .as_base(),
            )
        }
        Some(other) => bail!("unexpected base image source {other}"),
        None => None,
    };
    if let (Some(base), Some(SourceId::Image(reference))) = (&base, &conversion.base_image)
        && (!tags.is_empty() || !args.outputs.is_empty())
    {
        registry::ensure_base_blobs(store, &registry, &runtime, reference, &base.layers)?;
    }
    resolver.tag_pulled()?;
    interrupt.check()?;
    let assemble = AssembleOptions::new().with_source_date_epoch(source_date_epoch);
    let built = dray_image::assemble(
        store,
        solved.head.chain_ids(),
        base.as_ref(),
        conversion.image.clone(),
        &assemble,
    )
    .context("failed to export the image")?;
    log.image = Some((built.config_digest, built.manifest_digest));
    for tag in &tags {
        dray_image::tag_image(store, tag, &built)
            .with_context(|| format!("failed to name the image {tag}"))?;
    }

    interrupt.check()?;
    output::export(
        &args.outputs,
        &output::Exportable {
            store,
            chain: solved.head.chain_ids(),
            base: base.as_ref(),
            config: &conversion.image,
            assemble: &assemble,
            built: &built,
            tags: &tags,
        },
    )?;
    let mut pushed = Vec::new();
    for (target, push) in &image_outputs {
        dray_image::tag_image(store, target, &built)
            .with_context(|| format!("failed to name the image {target}"))?;
        if !push {
            continue;
        }
        let report = registry::push_image(store, &target.to_string(), target, &registry)?;
        registry::print_push(&report)?;
        pushed.push(report);
    }

    let image_id = built.config_digest.to_string();
    if let Some(path) = &args.iidfile {
        write_file(path, image_id.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let names: Vec<String> = tags
            .iter()
            .chain(image_outputs.iter().map(|(name, _)| name))
            .map(ToString::to_string)
            .collect();
        let metadata = json!({
            "containerimage.config.digest": image_id,
            "containerimage.digest": built.manifest_digest.to_string(),
            "image.name": names.join(","),
        });
        let mut metadata = metadata;
        if let Some(report) = pushed.first() {
            metadata["containerimage.pushed.digest"] = json!(report.digest.to_string());
        }
        write_file(path, serde_json::to_string_pretty(&metadata)?.as_bytes())?;
    }
    // An archive on stdout (`dest=-`) must stay a clean stream.
    if !args.outputs.iter().any(output::OutputSpec::to_stdout) {
        writeln!(std::io::stdout().lock(), "{image_id}")?;
    }
    Ok(())
}

/// The `--executor` backend.
fn executor(store: &Store, kind: ExecutorKind) -> Arc<dyn dray_solver::Executor> {
    match kind {
        // Each RUN step re-executes this binary as the sandbox's init helper.
        ExecutorKind::Native => Arc::new(NativeExecutor::new("/proc/self/exe")),
        // runc's state and the step bundles live in `<root>/mounts/runc` (the store's
        // transient mount points, owned by the sandbox).
        ExecutorKind::Runc => Arc::new(dray_sandbox::runc::RuncExecutor::new(
            dray_sandbox::runc::RuncExecutor::DEFAULT_RUNC,
            store.root().path().join("mounts").join("runc"),
        )),
    }
}

/// An error's message followed by its causes (`a: b: c`), for one-line diagnostics: a resolver
/// failure says why (`…: OCI layout /srv/l: no image tagged "x" in index.json`).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut next = err.source();
    while let Some(inner) = next {
        message.push_str(&format!(": {inner}"));
        next = inner.source();
    }
    message
}

/// A failed step, shown at its Dockerfile line (the op's source location) when it has one.
fn solve_error(
    err: SolveError,
    definition: &dray_llb::Definition,
    file: &str,
    source: &[u8],
) -> anyhow::Error {
    let SolveError::Step {
        vertex,
        name,
        source: cause,
    } = &err
    else {
        return anyhow::Error::new(err).context("failed to solve");
    };
    let location = definition
        .metadata
        .get(vertex)
        .and_then(|meta| meta.source_location.as_ref());
    let Some(location) = location.filter(|location| location.file == file) else {
        return anyhow::Error::new(err).context("failed to solve");
    };
    let mut message = format!("{name}: {cause}");
    let mut next = std::error::Error::source(cause);
    while let Some(inner) = next {
        message.push_str(&format!(": {inner}"));
        next = inner.source();
    }
    let span = diagnostic::line_span(
        source,
        location.start_line as usize,
        location.end_line as usize,
    );
    let mut rendered = diagnostic::render(file, source, span, &message);
    // A failed RUN: its last output lines, which a quiet or tty progress did not keep on screen.
    if let dray_solver::OpError::ExitCode { tail, .. } = cause
        && !tail.is_empty()
    {
        let mut note = String::from("the last lines of its output:\n");
        for line in tail {
            note.push_str("  ");
            note.push_str(line);
            note.push('\n');
        }
        rendered = rendered.with_note(&note);
    }
    anyhow::Error::new(rendered)
}

/// The base image's layers and config, by the manifest digest the converter pinned (it may not
/// be tagged locally: a registry image resolved for this build is named only once pulled).
fn base_image(store: &Store, reference: &ImageRef) -> Result<BaseImage> {
    let Some(digest) = reference.digest() else {
        return Ok(dray_image::load_image(store, &reference.to_string())
            .with_context(|| format!("failed to read the base image {reference}"))?
            .as_base());
    };
    let manifest = dray_image::manifest::read_manifest(store, digest)
        .with_context(|| format!("failed to read the base image {reference}"))?;
    let config = dray_image::manifest::read_config(store, &manifest.config.digest)
        .with_context(|| format!("failed to read the base image {reference}"))?;
    Ok(BaseImage {
        layers: manifest.layers,
        config,
    })
}

/// Images for `FROM` come from the local store (images dray built or loaded) or from OCI
/// layout directories (`oci-layout://PATH`, a relative `PATH` read from `relative_to`).
pub(crate) struct StoreImages<'a> {
    pub(crate) store: &'a Store,
    pub(crate) relative_to: PathBuf,
}

impl ImageResolver for StoreImages<'_> {
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &dray_llb::Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        let found = dray_image::resolve_local(self.store, reference, platform)?;
        Ok(found.map(|(manifest_digest, config)| ResolvedImage {
            manifest_digest,
            config,
        }))
    }

    fn resolve_layout(
        &self,
        layout: &str,
        platform: &dray_llb::Platform,
    ) -> Result<Option<ResolvedLayout>, ResolveError> {
        let layout_ref = dray_image::layout::LayoutRef::parse(layout)?;
        let dir = self.relative_to.join(&layout_ref.path);
        // The graph must name the layout the same way whatever the working directory.
        let dir = std::fs::canonicalize(&dir)
            .map_err(|e| format!("no OCI layout at {}: {e}", dir.display()))?;
        let path = dir
            .to_str()
            .ok_or_else(|| format!("the OCI layout path {} is not UTF-8", dir.display()))?
            .to_owned();
        let manifest_digest = dray_image::layout::resolve(&dir, &layout_ref.reference(), platform)?;
        let image = dray_image::layout::read_image(&dir, &manifest_digest)?;
        Ok(Some(ResolvedLayout {
            path,
            image: ResolvedImage {
                manifest_digest,
                config: image.config,
            },
        }))
    }
}

/// Local directories to serve to the solver: `(local source name, directory)`.
type LocalContexts = Vec<(String, PathBuf)>;

/// `--build-context NAME=VALUE` values: the named contexts for the frontend, and the local
/// directories among them for the solver (by name). Relative paths are taken from the current
/// directory, as buildx takes them.
fn parse_build_contexts(
    values: &[String],
) -> Result<(BTreeMap<String, NamedContext>, LocalContexts)> {
    let mut named = BTreeMap::new();
    let mut locals = Vec::new();
    for value in values {
        let Some((name, source)) = value
            .split_once('=')
            .filter(|(n, s)| !n.is_empty() && !s.is_empty())
        else {
            bail!("invalid --build-context {value:?}: expected NAME=VALUE");
        };
        if name == "context" {
            bail!("invalid --build-context {value:?}: `context` is the build context itself");
        }
        let context = if let Some(layout) = source.strip_prefix(OCI_LAYOUT_SCHEME) {
            let mut parsed = dray_image::layout::LayoutRef::parse(layout)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("invalid --build-context {value:?}"))?;
            let dir = std::fs::canonicalize(&parsed.path).with_context(|| {
                format!("--build-context {name}: no OCI layout at {}", parsed.path)
            })?;
            parsed.path = dir
                .to_str()
                .with_context(|| format!("--build-context {name}: the path is not UTF-8"))?
                .to_owned();
            NamedContext::OciLayout(layout_text(&parsed))
        } else if let Some(image) = source.strip_prefix("docker-image://") {
            ImageRef::parse(image).with_context(|| format!("invalid --build-context {value:?}"))?;
            NamedContext::Image(image.to_owned())
        } else if source.contains("://") {
            bail!(
                "invalid --build-context {value:?}: expected oci-layout://, docker-image:// or a local directory"
            );
        } else {
            let dir = std::fs::canonicalize(source)
                .with_context(|| format!("--build-context {name}: no directory {source}"))?;
            if !dir.is_dir() {
                bail!("--build-context {name}: {source} is not a directory");
            }
            let local = format!("context:{name}");
            locals.push((local.clone(), dir));
            NamedContext::Local { name: local }
        };
        if named.insert(name.to_owned(), context).is_some() {
            bail!("--build-context {name} is given twice");
        }
    }
    Ok((named, locals))
}

/// A layout reference written back as `PATH[:TAG][@DIGEST]`.
fn layout_text(r: &dray_image::layout::LayoutRef) -> String {
    let mut out = r.path.clone();
    if let Some(tag) = &r.tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        out.push('@');
        out.push_str(&digest.to_string());
    }
    out
}

/// The `.dockerignore` for this build, or no patterns. Errors name the file and line.
fn read_dockerignore(context: &Path, dockerfile: &Path) -> Result<Patterns> {
    let Some(path) = dray_fsutil::dockerignore::find_ignore_file(context, dockerfile)
        .context("failed to look for a .dockerignore file")?
    else {
        return Ok(Patterns::default());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    Patterns::parse(&text).with_context(|| format!("invalid {}", path.display()))
}

/// `SOURCE_DATE_EPOCH` from `--build-arg`, else from the environment, as BuildKit takes it.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> Result<Option<i64>> {
    let value = match build_args.get(SOURCE_DATE_EPOCH) {
        Some(value) => value.clone(),
        None => match std::env::var(SOURCE_DATE_EPOCH) {
            Ok(value) if !value.is_empty() => value,
            _ => return Ok(None),
        },
    };
    let epoch = value.parse::<i64>().with_context(|| {
        format!("invalid {SOURCE_DATE_EPOCH} {value:?}: not a whole number of seconds")
    })?;
    Ok(Some(epoch))
}

/// `--label KEY=VALUE` pairs.
fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|label| match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("invalid --label {label:?}: expected KEY=VALUE"),
        })
        .collect()
}

fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))
}
