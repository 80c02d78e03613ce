//! `dray build`: Dockerfile → op graph → solve → image in the local store.
//!
//! The data flow of architecture B5, end to end:
//!
//! 1. read the Dockerfile and the `.dockerignore` (`<Dockerfile>.dockerignore` first);
//! 2. convert (the frontend) with base images resolved from the local store;
//! 3. solve the graph (the solver), reporting progress to the chosen renderer;
//! 4. assemble the image from the head's snapshot chain (image), write its blobs;
//! 5. tag it with every `-t` name, print its ID, write `--iidfile` / `--metadata-file`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use dray_cache::Store;
use dray_frontend::convert::{ConvertOptions, ImageResolver, ResolveError, ResolvedImage};
use dray_frontend::stages::{Platform, ResolveOptions};
use dray_fsutil::dockerignore::Patterns;
use dray_image::{AssembleOptions, BaseImage};
use dray_llb::ImageRef;
use dray_solver::{LocalSource, Reporter, SolveError, SolveOptions, Solver};
use serde_json::json;

use crate::cli::{BuildArgs, ProgressMode};
use crate::commands::debug::{parse_build_args, read_dockerfile};
use crate::commands::record::{BuildLog, finish};
use crate::{diagnostic, ui};

/// `SOURCE_DATE_EPOCH`: the build's notion of "now" for reproducible output.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

pub(crate) fn build(store: &Store, args: &BuildArgs) -> Result<()> {
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

    let build_args = parse_build_args(&args.build_args)?;
    let source_date_epoch = source_date_epoch(&build_args)?;
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
        ..ConvertOptions::default()
    };
    let resolver = StoreImages { store };
    let conversion =
        dray_frontend::convert::convert_source(&source, &options, &resolver).map_err(|err| {
            diagnostic::render(&dockerfile_name, &source, err.span(), &err.to_string())
        })?;
    log.converted(&conversion, &source);

    let mut solve_options = SolveOptions {
        no_cache: args.no_cache,
        source_date_epoch,
        ..SolveOptions::default()
    };
    if let Some(n) = args.max_parallelism {
        solve_options.max_parallelism = n.max(1);
    }
    let solver = Solver::new(store.clone())
        .with_context(LocalSource::new("context", &context, patterns))
        .with_options(solve_options);
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let reporter: Arc<dyn Reporter> = log.reporter(Arc::from(ui::reporter(mode)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let solved = runtime
        .block_on(solver.solve(&conversion.definition, reporter.as_ref()))
        .map_err(|err| solve_error(err, &conversion.definition, &dockerfile_name, &source))?;
    log.solved(&solved);

    let base: Option<BaseImage> = match &conversion.base_image {
        Some(reference) => Some(
            dray_image::load_image(store, &reference.to_string())
                .with_context(|| format!("failed to read the base image {reference}"))?
                .as_base(),
        ),
        None => None,
    };
    let assemble = AssembleOptions::new().with_source_date_epoch(source_date_epoch);
    let built = dray_image::assemble(
        store,
        solved.head.chain_ids(),
        base.as_ref(),
        conversion.image,
        &assemble,
    )
    .context("failed to export the image")?;
    log.image = Some((built.config_digest, built.manifest_digest));
    for tag in &tags {
        dray_image::tag_image(store, tag, &built)
            .with_context(|| format!("failed to name the image {tag}"))?;
    }

    let image_id = built.config_digest.to_string();
    if let Some(path) = &args.iidfile {
        write_file(path, image_id.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let names: Vec<String> = tags.iter().map(ToString::to_string).collect();
        let metadata = json!({
            "containerimage.config.digest": image_id,
            "containerimage.digest": built.manifest_digest.to_string(),
            "image.name": names.join(","),
        });
        write_file(path, serde_json::to_string_pretty(&metadata)?.as_bytes())?;
    }
    writeln!(std::io::stdout().lock(), "{image_id}")?;
    Ok(())
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
    anyhow::Error::new(diagnostic::render(file, source, span, &message))
}

/// Images for `FROM` come from the local store: images dray built or loaded.
pub(crate) struct StoreImages<'a> {
    pub(crate) store: &'a Store,
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
