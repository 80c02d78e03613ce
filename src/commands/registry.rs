//! `dray pull`, `push`, `login`, `logout`, and what `build` needs of registries: the converter's
//! image resolver (local store first, then the registry), the solver's blob fetcher, and
//! [`push_image`] for `--output type=image,push=true`.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use dray_cache::{Descriptor, Store};
use dray_frontend::convert::{ImageResolver, ResolveError, ResolvedImage};
use dray_llb::{Digest, ImageRef, Platform};
use dray_registry::{PushReport, Registry, RegistryOptions};
use dray_solver::{BlobFetcher, Event, EventKind, FetchError, FetchProgress, Reporter};
use serde_json::json;

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};

/// A registry handle honouring `--insecure-registry`.
pub(crate) fn registry(insecure: &[String]) -> Registry {
    Registry::new(RegistryOptions {
        insecure_registries: insecure.to_vec(),
        ..RegistryOptions::default()
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn parse_platform(platform: Option<&str>) -> Result<Platform> {
    match platform {
        Some(p) => p
            .parse()
            .with_context(|| format!("invalid --platform {p:?}")),
        None => Ok(dray_registry::host_platform()),
    }
}

/// `dray pull NAME`.
pub(crate) fn pull(store: &Store, args: &PullArgs) -> Result<()> {
    let image = ImageRef::parse(&args.image)
        .with_context(|| format!("invalid reference format {:?}", args.image))?;
    let platform = parse_platform(args.platform.as_deref())?;
    let registry = registry(&args.insecure_registries);
    let mode = if args.quiet {
        crate::cli::ProgressMode::Quiet
    } else {
        args.progress
    };
    let reporter = crate::ui::reporter(mode);
    // `dray pull` has no build graph: its one step is the pull itself, named like a FROM step.
    let step = PullStep {
        reporter: reporter.as_ref(),
        vertex: Digest::of(image.to_string().as_bytes()),
        name: format!("pull {image}"),
    };
    step.emit(EventKind::Started);
    let pulled =
        runtime()?.block_on(
            registry.pull(store, &image, &platform, &|blob, current, total| {
                step.emit(EventKind::Progress {
                    id: blob.to_string(),
                    current,
                    total,
                })
            }),
        );
    step.emit(match &pulled {
        Ok(_) => EventKind::Done,
        Err(e) => EventKind::Failed {
            error: e.to_string(),
        },
    });
    let report = pulled.map_err(anyhow::Error::new)?;
    let mut err = std::io::stderr().lock();
    if !args.quiet {
        writeln!(
            err,
            "{}: {} layers downloaded ({:.1} MiB), {} already present",
            image.familiar(),
            report.fetch.downloaded,
            report.fetch.bytes as f64 / (1024.0 * 1024.0),
            report.fetch.present
        )?;
        writeln!(err, "Digest: {}", report.repo_digest)?;
    }
    writeln!(std::io::stdout().lock(), "{}", image.familiar())?;
    Ok(())
}

/// The events of `dray pull`'s single step.
struct PullStep<'a> {
    reporter: &'a dyn Reporter,
    vertex: Digest,
    name: String,
}

impl PullStep<'_> {
    fn emit(&self, kind: EventKind) {
        self.reporter.on_event(&Event {
            vertex: self.vertex,
            name: self.name.clone(),
            at: std::time::SystemTime::now(),
            kind,
        });
    }
}

/// `dray push NAME[:TAG]`.
pub(crate) fn push(store: &Store, args: &PushArgs) -> Result<()> {
    let target = ImageRef::parse(&args.image)
        .with_context(|| format!("invalid reference format {:?}", args.image))?;
    let registry = registry(&args.insecure_registries);
    let report = push_image(store, &args.image, &target, &registry)?;
    print_push(&report)?;
    if let Some(path) = &args.metadata_file {
        write_push_metadata(path, &report)?;
    }
    Ok(())
}

/// Pushes the local image `local` (a name or image ID) to `target`.
pub(crate) fn push_image(
    store: &Store,
    local: &str,
    target: &ImageRef,
    registry: &Registry,
) -> Result<PushReport> {
    let image = dray_image::load_image(store, local)
        .with_context(|| format!("failed to push {local}: no such local image"))?;
    runtime()?
        .block_on(registry.push_image(store, &image, target))
        .map_err(anyhow::Error::new)
}

pub(crate) fn print_push(report: &PushReport) -> Result<()> {
    writeln!(
        std::io::stderr().lock(),
        "{}: {} blobs uploaded ({:.1} MiB), {} already there, {} mounted",
        report.reference.familiar(),
        report.uploaded,
        report.bytes as f64 / (1024.0 * 1024.0),
        report.existing,
        report.mounted
    )?;
    writeln!(
        std::io::stdout().lock(),
        "{}: digest: {} size: {}",
        report.reference.tag().unwrap_or("latest"),
        report.digest,
        report.size
    )?;
    Ok(())
}

pub(crate) fn write_push_metadata(path: &Path, report: &PushReport) -> Result<()> {
    let metadata = json!({
        "containerimage.digest": report.digest.to_string(),
        "image.name": report.reference.to_string(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&metadata)?)
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The registry host a `login`/`logout` argument names (`docker.io` when omitted).
fn server_host(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s.strip_suffix("/v1").unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// `dray login [SERVER]`.
pub(crate) fn login(args: &LoginArgs) -> Result<()> {
    let host = server_host(args.server.as_deref());
    let Some(user) = args.username.clone() else {
        bail!("dray login needs --username (interactive prompts are not supported)");
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("failed to read the password from standard input")?;
            s.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => bail!("dray login needs --password or --password-stdin"),
    };
    let registry = registry(&args.insecure_registries);
    let stored = runtime()?
        .block_on(registry.login(&host, &user, &password))
        .map_err(anyhow::Error::new)
        .with_context(|| format!("login to {host} failed"))?;
    writeln!(std::io::stderr().lock(), "credentials stored in {stored}")?;
    writeln!(std::io::stdout().lock(), "Login Succeeded")?;
    Ok(())
}

/// `dray logout [SERVER]`.
pub(crate) fn logout(args: &LogoutArgs) -> Result<()> {
    let host = server_host(args.server.as_deref());
    let removed = registry(&[]).logout(&host).map_err(anyhow::Error::new)?;
    let mut out = std::io::stdout().lock();
    if removed {
        writeln!(out, "Removing login credentials for {host}")?;
    } else {
        writeln!(out, "Not logged in to {host}")?;
    }
    Ok(())
}

/// The converter's image resolver for `build`: the local store first (unless `--pull`), else
/// the registry, which stores manifest and config but no layer. With `--pull` and the registry
/// unreachable, a locally known image is used with a warning, as docker does.
pub(crate) struct RegistryImages<'a> {
    pub(crate) store: &'a Store,
    pub(crate) registry: &'a Registry,
    pub(crate) runtime: &'a tokio::runtime::Runtime,
    pub(crate) pull: bool,
    /// What came from the registry in this build (to name locally once its layers are here).
    pub(crate) pulled: RefCell<Vec<dray_registry::ResolvedImage>>,
    /// Where a relative `oci-layout://PATH` is read from (the build context).
    pub(crate) relative_to: std::path::PathBuf,
}

impl RegistryImages<'_> {
    fn local(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        if let Some((manifest_digest, config)) =
            dray_image::resolve_local(self.store, reference, platform)?
        {
            return Ok(Some(ResolvedImage {
                manifest_digest,
                config,
            }));
        }
        // A digest-pinned image whose manifest and config an earlier build already stored.
        if let Some(digest) = reference.digest()
            && let Ok(manifest) = dray_image::manifest::read_manifest(self.store, digest)
            && let Ok(config) =
                dray_image::manifest::read_config(self.store, &manifest.config.digest)
        {
            return Ok(Some(ResolvedImage {
                manifest_digest: *digest,
                config,
            }));
        }
        Ok(None)
    }
}

impl ImageResolver for RegistryImages<'_> {
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        if !self.pull
            && let Some(found) = self.local(reference, platform)?
        {
            return Ok(Some(found));
        }
        match self
            .runtime
            .block_on(self.registry.resolve(self.store, reference, platform))
        {
            Ok(resolved) => {
                let found = ResolvedImage {
                    manifest_digest: resolved.manifest.digest,
                    config: resolved.config.clone(),
                };
                self.pulled.borrow_mut().push(resolved);
                Ok(Some(found))
            }
            Err(e) if e.is_unreachable() => match self.local(reference, platform)? {
                Some(found) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "warning: {e}; using the local copy of {} ({})",
                        reference.familiar(),
                        found.manifest_digest
                    );
                    Ok(Some(found))
                }
                None => Err(Box::new(e)),
            },
            Err(e) => Err(Box::new(e)),
        }
    }

    fn resolve_layout(
        &self,
        layout: &str,
        platform: &Platform,
    ) -> Result<Option<dray_frontend::convert::ResolvedLayout>, ResolveError> {
        crate::commands::build::StoreImages {
            store: self.store,
            relative_to: self.relative_to.clone(),
        }
        .resolve_layout(layout, platform)
    }
}

impl RegistryImages<'_> {
    /// Names each image pulled for this build locally (`alpine:latest`), as docker does, once
    /// all its blobs are in the store; returns nothing to do otherwise.
    pub(crate) fn tag_pulled(&self) -> Result<()> {
        for image in self.pulled.borrow().iter() {
            let complete = image
                .layers
                .iter()
                .map(|l| self.store.blobs().contains(&l.digest))
                .collect::<Result<Vec<bool>, _>>()?
                .into_iter()
                .all(|present| present);
            if let (true, Some(name)) = (complete, dray_registry::tag_name(&image.reference)) {
                dray_image::tag_descriptor(self.store, &name, &image.manifest)
                    .with_context(|| format!("failed to name the pulled image {name}"))?;
            }
        }
        Ok(())
    }
}

/// Fetches the layer blobs of `base` (pinned) the store lacks: a built image's manifest names
/// its base layers, and a tag must never name missing content (the head key may have hit
/// without the base being pulled).
pub(crate) fn ensure_base_blobs(
    store: &Store,
    registry: &Registry,
    runtime: &tokio::runtime::Runtime,
    base: &ImageRef,
    layers: &[Descriptor],
) -> Result<()> {
    let mut missing = Vec::new();
    for l in layers {
        if !store.blobs().contains(&l.digest)? {
            missing.push(l.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    runtime
        .block_on(registry.fetch_blobs(store, base, &missing))
        .map_err(anyhow::Error::new)
        .with_context(|| format!("failed to fetch the base image {}", base.familiar()))?;
    Ok(())
}

/// The solver's [`BlobFetcher`]: layer blobs from the image's registry into the store.
pub(crate) struct RegistryFetcher {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
}

#[async_trait::async_trait]
impl BlobFetcher for RegistryFetcher {
    async fn fetch(
        &self,
        image: &ImageRef,
        blobs: &[Descriptor],
        progress: &dyn FetchProgress,
    ) -> Result<(), FetchError> {
        self.registry
            .fetch_blobs_with_progress(&self.store, image, blobs, &|blob, current, total| {
                progress.on_bytes(blob, current, total)
            })
            .await
            .map(|_| ())
            .map_err(|e| Box::new(e) as FetchError)
    }
}
