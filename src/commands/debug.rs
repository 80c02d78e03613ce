//! `dray debug …`: look inside the frontend.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use dray_frontend::stages::{Platform, ResolveOptions};

use dray_cache::Store;
use dray_frontend::convert::{ConvertOptions, convert_source};

use crate::cli::{DebugLlbArgs, DebugParseArgs, DebugStagesArgs, GraphFormat};
use crate::commands::build::StoreImages;
use crate::diagnostic;

/// Reads a Dockerfile from `path`, or from standard input when `path` is `-`.
pub(crate) fn read_dockerfile(path: &Path) -> Result<(String, Vec<u8>)> {
    if path == Path::new("-") {
        let mut source = Vec::new();
        std::io::stdin()
            .read_to_end(&mut source)
            .context("failed to read the Dockerfile from standard input")?;
        return Ok(("<stdin>".to_owned(), source));
    }
    let source = std::fs::read(path)
        .with_context(|| format!("failed to read the Dockerfile {}", path.display()))?;
    Ok((path.display().to_string(), source))
}

/// `dray debug parse`: print BuildKit's AST dump.
pub(crate) fn parse(args: &DebugParseArgs) -> Result<()> {
    let (name, source) = read_dockerfile(&args.file)?;
    let ast = dray_frontend::parser::parse(&source)
        .map_err(|err| diagnostic::render(&name, &source, err.span(), &err.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", ast.dump())?;
    Ok(())
}

/// `dray debug stages`: print the resolved stage graph as JSON.
pub(crate) fn stages(args: &DebugStagesArgs) -> Result<()> {
    let (name, source) = read_dockerfile(&args.file)?;
    let options = resolve_options(args)?;
    let loaded = dray_frontend::load(&source, &options)
        .map_err(|err| diagnostic::render(&name, &source, err.span(), &err.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &loaded.graph)?;
    writeln!(stdout)?;
    Ok(())
}

/// `dray debug llb`: print the op graph of a build, with base images resolved from the store.
pub(crate) fn llb(store: &Store, args: &DebugLlbArgs) -> Result<()> {
    let (name, source) = read_dockerfile(&args.stages.file)?;
    let options = ConvertOptions {
        resolve: resolve_options(&args.stages)?,
        filename: name.clone(),
        ..ConvertOptions::default()
    };
    // No context directory here: relative `oci-layout://` paths are read from the current
    // directory.
    let images = StoreImages {
        store,
        relative_to: std::path::PathBuf::from("."),
    };
    let conversion = convert_source(&source, &options, &images)
        .map_err(|err| diagnostic::render(&name, &source, err.span(), &err.to_string()))?;
    let text = match args.format {
        GraphFormat::Json => conversion.definition.to_json_pretty(),
        GraphFormat::Dot => conversion.definition.to_dot(),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", text.trim_end())?;
    Ok(())
}

/// The frontend's options for `--build-arg`, `--target` and `--platform`.
fn resolve_options(args: &DebugStagesArgs) -> Result<ResolveOptions> {
    let mut options = ResolveOptions {
        build_args: parse_build_args(&args.build_args)?,
        target: args.target.clone(),
        ..ResolveOptions::default()
    };
    if let Some(platform) = &args.platform {
        options.target_platform = Platform::parse(platform)
            .with_context(|| format!("invalid --platform {platform:?}"))?;
    }
    Ok(options)
}

/// `--build-arg NAME=VALUE` pairs; a bare `NAME` takes its value from the environment and is
/// left out when the environment does not set it, as `docker build` does.
pub(crate) fn parse_build_args(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut build_args = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("", _)) => anyhow::bail!("invalid --build-arg {arg:?}: the name is empty"),
            Some((name, value)) => {
                build_args.insert(name.to_owned(), value.to_owned());
            }
            None => {
                if let Some(value) = std::env::var_os(arg) {
                    build_args.insert(arg.clone(), value.to_string_lossy().into_owned());
                }
            }
        }
    }
    Ok(build_args)
}
