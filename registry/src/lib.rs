//! OCI registries for dray: resolve a name to a platform manifest, pull manifests, configs and
//! layer blobs into the content store, push local images, and keep credentials in docker's
//! `config.json`.
//!
//! **What it is for.**
//! - [`Registry`] (with [`RegistryOptions`]): one HTTP client per registry host —
//!   HTTPS with the system trust store; loopback and `--insecure-registry` hosts probed for HTTPS
//!   first, then plain HTTP (`transport.rs`); proxies from the environment; credentials,
//!   identity tokens included (`identity_token.rs`); retries with backoff. The table of these
//!   rules is in `client.rs`.
//! - [`Registry::resolve`]: tag or digest → platform manifest; the manifest, any index and the
//!   config land in the store, **no layer** (a build whose final key hits downloads nothing).
//!   [`Registry::fetch_blobs`] (and [`Registry::fetch_blobs_with_progress`]): the layers, on
//!   demand, concurrently, verified, resumed — across runs too, from `ingest/<hex>.partial`.
//!   [`Registry::pull`]: both, then tag (`dray pull`).
//! - [`Registry::push_image`]: blobs (HEAD check, cross-repository mount, chunked upload), then
//!   the manifest's exact bytes.
//! - [`credentials`]: `dray login` / `logout` and the lookup order of docker.
//!
//! **What it is not for.** Unpacking layers into snapshots (`dray-image`'s applier) and deciding
//! *when* to pull (the CLI's resolver and the solver's fetch seam do). It never publishes a blob
//! it has not verified: every byte goes through [`dray_cache::BlobWriter`].
//!
//! **Why a crate of its own** (architecture B1 puts registry code in `image`): the HTTP stack
//! (reqwest, hyper, rustls, aws-lc) is about a hundred crates that `image`, `solver` and their
//! tests and benchmarks do not need. The solver reaches registries through a small trait it owns
//! (`dray_solver::BlobFetcher`), implemented by the binary on top of this crate.
//!
//! Start at [`Registry::resolve`] in `pull.rs`.

#![deny(missing_docs)]

mod client;
pub mod credentials;
mod error;
mod identity_token;
mod login;
mod platform;
mod pull;
mod push;
mod transport;

pub use client::{BACKOFF_START, RETRIES, Registry, RegistryOptions, is_insecure};
pub use error::Error;
pub use platform::host_platform;
pub use pull::{
    FetchReport, LAYER_TYPES, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, PROGRESS_INTERVAL, ProgressFn, PullReport,
    ResolvedImage, tag_name,
};
pub use push::PushReport;
