//! Base images: the [`ImageResolver`] interface the CLI implements over dray's image store (and
//! OCI layout directories), named build contexts ([`NamedContext`]), and the memo that lets
//! stage resolution (which needs a base's `Env`) and conversion (which needs its digest and
//! whole config) ask once per image and platform.
//!
//! A `FROM` or `--from` name that is not a stage is looked up in this order:
//!
//! 1. a named context of that name (`--build-context NAME=…`; an image-like name also matches
//!    its normalized form, so `alpine` names `FROM alpine:latest` too, as buildx's
//!    `context:` keys do);
//! 2. `oci-layout://PATH[:TAG|@DIGEST]`: the image in an OCI layout directory;
//! 3. an image reference.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use dray_llb::{Digest, ImageConfig, ImageRef, Platform, ReferenceError};

use super::error::{Error, ResolveError};
use crate::span::Span;
use crate::stages::{self, BaseImageEnv};

/// Looks up an image's manifest digest and config for a platform (BuildKit's
/// `ImageMetaResolver`). Synchronous: the local store answers from disk.
pub trait ImageResolver {
    /// The image `reference` (normalized, e.g. `docker.io/library/alpine:3.20`) for
    /// `platform`; `Ok(None)` when it is not known.
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError>;

    /// The image an OCI layout directory holds, for `FROM oci-layout://…` and named contexts:
    /// `layout` is what follows `oci-layout://` (`PATH[:TAG][@DIGEST]`, tag `latest` when
    /// neither is given). `Ok(None)` when there is no such image; errors say why. The default
    /// knows no layouts.
    fn resolve_layout(
        &self,
        layout: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedLayout>, ResolveError> {
        let _ = (layout, platform);
        Ok(None)
    }
}

/// Where a `FROM`/`--from` name that is not a stage comes from (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ImageSource {
    /// An image reference (normalized).
    Image(ImageRef),
    /// What follows `oci-layout://`.
    Layout(String),
    /// A named context that is a local directory: the local source's name.
    Local(String),
}

impl ImageSource {
    /// The memo's key.
    fn key(&self) -> String {
        match self {
            ImageSource::Image(r) => r.to_string(),
            ImageSource::Layout(l) => format!("{OCI_LAYOUT_SCHEME}{l}"),
            ImageSource::Local(name) => format!("local://{name}"),
        }
    }
}

/// What the memo found: an image, with the layout directory it is in for a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) image: ResolvedImage,
    /// The layout directory (absolute), for an image of an OCI layout.
    pub(super) layout: Option<String>,
}

/// The scheme of images in OCI layout directories.
pub const OCI_LAYOUT_SCHEME: &str = "oci-layout://";

/// What a `--build-context NAME=VALUE` gives `NAME` (buildx's named contexts): `FROM NAME`
/// and `COPY --from=NAME` use it instead of an image (or stage) of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `oci-layout://PATH[:TAG|@DIGEST]`: what follows the scheme.
    OciLayout(String),
    /// `docker-image://REF`: an image reference.
    Image(String),
    /// A local directory, which the caller registers with the solver as the local source of
    /// this name (`local://NAME`). It can be copied from; a stage cannot be built on it.
    Local {
        /// The local source's name.
        name: String,
    },
}

/// What a resolver knows of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The digest of the platform's manifest; the converter pins the reference with it, so the
    /// digest is part of the graph (and of every cache key above it).
    pub manifest_digest: Digest,
    /// The image config: it seeds a stage's env, workdir, user, shell, cmd, history, ….
    pub config: ImageConfig,
}

/// What a resolver knows of an image in an OCI layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLayout {
    /// The layout directory as the solver will read it (absolute: the op graph must not
    /// depend on the working directory).
    pub path: String,
    /// The image manifest's digest (the converter pins the source with it) and config.
    pub image: ResolvedImage,
}

/// A resolver that knows no image: every `FROM <image>` fails, `FROM scratch` works.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoImages;

impl ImageResolver for NoImages {
    fn resolve(&self, _: &ImageRef, _: &Platform) -> Result<Option<ResolvedImage>, ResolveError> {
        Ok(None)
    }
}

/// Images by normalized reference (`docker.io/library/alpine:latest`), for every platform;
/// for tests and offline use.
impl ImageResolver for BTreeMap<String, ResolvedImage> {
    fn resolve(
        &self,
        reference: &ImageRef,
        _: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        Ok(self.get(&reference.to_string()).cloned())
    }
}

/// One answer, kept for the rest of the conversion.
enum Answer {
    Found(Arc<Found>),
    NotFound,
    /// Taken (by value) by the first caller that reports it.
    Failed(Option<ResolveError>),
}

/// Memoizes a resolver per `(source, platform)`, and maps names to sources (named contexts
/// first).
pub(super) struct Memo<'a> {
    inner: &'a dyn ImageResolver,
    named: &'a BTreeMap<String, NamedContext>,
    answers: RefCell<BTreeMap<(String, Platform), Answer>>,
}

impl<'a> Memo<'a> {
    pub(super) fn new(
        inner: &'a dyn ImageResolver,
        named: &'a BTreeMap<String, NamedContext>,
    ) -> Self {
        Self {
            inner,
            named,
            answers: RefCell::new(BTreeMap::new()),
        }
    }

    /// The named context `name` matches: by exact name, or, for an image-like name, by its
    /// normalized reference.
    fn named_context(&self, name: &str) -> Option<&'a NamedContext> {
        if let Some(nc) = self.named.get(name) {
            return Some(nc);
        }
        let normalized = ImageRef::parse(name).ok()?.to_string();
        self.named
            .iter()
            .find(|(key, _)| ImageRef::parse(key).is_ok_and(|r| r.to_string() == normalized))
            .map(|(_, nc)| nc)
    }

    /// Where the name `name` (a `FROM` base or a `--from` that is not a stage) comes from.
    pub(super) fn source(&self, name: &str) -> Result<ImageSource, ReferenceError> {
        match self.named_context(name) {
            Some(NamedContext::OciLayout(l)) => return Ok(ImageSource::Layout(l.clone())),
            Some(NamedContext::Image(r)) => return ImageRef::parse(r).map(ImageSource::Image),
            Some(NamedContext::Local { name }) => return Ok(ImageSource::Local(name.clone())),
            None => {}
        }
        if let Some(layout) = name.strip_prefix(OCI_LAYOUT_SCHEME) {
            return Ok(ImageSource::Layout(layout.to_owned()));
        }
        ImageRef::parse(name).map(ImageSource::Image)
    }

    fn ask(&self, source: &ImageSource, platform: &Platform) {
        let key = (source.key(), platform.clone());
        if self.answers.borrow().contains_key(&key) {
            return;
        }
        let found = match source {
            ImageSource::Image(r) => self.inner.resolve(r, platform).map(|found| {
                found.map(|image| Found {
                    image,
                    layout: None,
                })
            }),
            ImageSource::Layout(l) => self.inner.resolve_layout(l, platform).map(|found| {
                found.map(|l| Found {
                    image: l.image,
                    layout: Some(l.path),
                })
            }),
            ImageSource::Local(_) => Ok(None),
        };
        let answer = match found {
            Ok(Some(image)) => Answer::Found(Arc::new(image)),
            Ok(None) => Answer::NotFound,
            Err(e) => Answer::Failed(Some(e)),
        };
        self.answers.borrow_mut().insert(key, answer);
    }

    /// The image, or the error to report at `span`.
    pub(super) fn get(
        &self,
        source: &ImageSource,
        platform: &Platform,
        span: Span,
    ) -> Result<Arc<Found>, Error> {
        self.ask(source, platform);
        let key = (source.key(), platform.clone());
        let mut answers = self.answers.borrow_mut();
        match answers.get_mut(&key) {
            Some(Answer::Found(image)) => Ok(image.clone()),
            Some(Answer::Failed(err)) => match err.take() {
                Some(source) => Err(Error::ResolveImage {
                    reference: key.0,
                    source,
                    span,
                }),
                // Reported once already; a second report says "not found".
                None => Err(Error::ImageNotFound {
                    reference: key.0,
                    span,
                }),
            },
            Some(Answer::NotFound) | None => Err(Error::ImageNotFound {
                reference: key.0,
                span,
            }),
        }
    }

    /// The config if the image is known, without reporting errors (they surface when the
    /// converter asks with a span).
    pub(super) fn peek(&self, source: &ImageSource, platform: &Platform) -> Option<ImageConfig> {
        self.ask(source, platform);
        match self.answers.borrow().get(&(source.key(), platform.clone())) {
            Some(Answer::Found(found)) => Some(found.image.config.clone()),
            _ => None,
        }
    }
}

/// Stage resolution asks for a base's environment through this adapter, so `${PATH}` and
/// friends expand against the real base image.
impl BaseImageEnv for Memo<'_> {
    fn image_env(
        &self,
        reference: &str,
        platform: &stages::Platform,
    ) -> Option<Vec<(String, String)>> {
        let source = self.source(reference).ok()?;
        let config = self.peek(&source, &llb_platform(platform))?;
        Some(
            config
                .config
                .env
                .unwrap_or_default()
                .iter()
                .map(|e| split_env(e))
                .collect(),
        )
    }
}

/// `KEY=value` → `(KEY, value)`; a bare `KEY` has an empty value (BuildKit's `parseKeyValue`).
pub(super) fn split_env(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (entry.to_owned(), String::new()),
    }
}

/// The frontend's platform as the op graph spells it.
pub(super) fn llb_platform(p: &stages::Platform) -> Platform {
    Platform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: (!p.variant.is_empty()).then(|| p.variant.clone()),
    }
}
