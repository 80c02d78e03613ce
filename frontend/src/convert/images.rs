//! Base images: the [`ImageResolver`] interface the CLI implements over dray's image store, and
//! the memo that lets stage resolution (which needs a base's `Env`) and conversion (which needs
//! its digest and whole config) ask once per image and platform.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use dray_llb::{Digest, ImageConfig, ImageRef, Platform};

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
    Found(Arc<ResolvedImage>),
    NotFound,
    /// Taken (by value) by the first caller that reports it.
    Failed(Option<ResolveError>),
}

/// Memoizes a resolver per `(reference, platform)`.
pub(super) struct Memo<'a> {
    inner: &'a dyn ImageResolver,
    answers: RefCell<BTreeMap<(String, Platform), Answer>>,
}

impl<'a> Memo<'a> {
    pub(super) fn new(inner: &'a dyn ImageResolver) -> Self {
        Self {
            inner,
            answers: RefCell::new(BTreeMap::new()),
        }
    }

    fn ask(&self, reference: &ImageRef, platform: &Platform) {
        let key = (reference.to_string(), platform.clone());
        if self.answers.borrow().contains_key(&key) {
            return;
        }
        let answer = match self.inner.resolve(reference, platform) {
            Ok(Some(image)) => Answer::Found(Arc::new(image)),
            Ok(None) => Answer::NotFound,
            Err(e) => Answer::Failed(Some(e)),
        };
        self.answers.borrow_mut().insert(key, answer);
    }

    /// The image, or the error to report at `span`.
    pub(super) fn get(
        &self,
        reference: &ImageRef,
        platform: &Platform,
        span: Span,
    ) -> Result<Arc<ResolvedImage>, Error> {
        self.ask(reference, platform);
        let key = (reference.to_string(), platform.clone());
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
    pub(super) fn peek(&self, reference: &ImageRef, platform: &Platform) -> Option<ImageConfig> {
        self.ask(reference, platform);
        match self
            .answers
            .borrow()
            .get(&(reference.to_string(), platform.clone()))
        {
            Some(Answer::Found(image)) => Some(image.config.clone()),
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
        let reference = ImageRef::parse(reference).ok()?;
        let config = self.peek(&reference, &llb_platform(platform))?;
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
