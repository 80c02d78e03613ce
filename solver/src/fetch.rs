//! The seam through which the solver gets layer blobs it does not have: an image source whose
//! result is needed (a consumer's key missed) and whose layers are neither unpacked nor in the
//! content store. The binary implements it over `dray-registry`; the solver itself speaks no
//! HTTP.

use dray_cache::Descriptor;
use dray_llb::{Digest, ImageRef};

/// What a [`BlobFetcher`] may fail with (a registry error naming the image and digest).
pub type FetchError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where a [`BlobFetcher`] reports the bytes of each download; the solver turns the calls into
/// [`EventKind::Progress`](crate::EventKind::Progress) events of the step that needs the blobs.
pub trait FetchProgress: Send + Sync {
    /// `current` of `total` bytes of `blob` are in (call it at the start, now and then, and at
    /// the end; the fetcher throttles).
    fn on_bytes(&self, blob: &Digest, current: u64, total: u64);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl FetchProgress for NoProgress {
    fn on_bytes(&self, _: &Digest, _: u64, _: u64) {}
}

/// Puts blobs of an image into the store's content store, verified.
#[async_trait::async_trait]
pub trait BlobFetcher: Send + Sync {
    /// Fetches `blobs` (layer descriptors of `image`'s manifest; `image` is pinned by digest)
    /// into the content store, reporting bytes to `progress`. Blobs already present may be
    /// skipped.
    async fn fetch(
        &self,
        image: &ImageRef,
        blobs: &[Descriptor],
        progress: &dyn FetchProgress,
    ) -> Result<(), FetchError>;
}

/// No registry access: a missing blob fails the step (tests, offline use).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetcher;

#[async_trait::async_trait]
impl BlobFetcher for NoFetcher {
    async fn fetch(
        &self,
        image: &ImageRef,
        blobs: &[Descriptor],
        _progress: &dyn FetchProgress,
    ) -> Result<(), FetchError> {
        let first = blobs
            .first()
            .map(|b| b.digest.to_string())
            .unwrap_or_default();
        Err(format!(
            "layer blob {first} of {image} is not in the local store and no registry is configured"
        )
        .into())
    }
}
