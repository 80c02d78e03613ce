//! Errors of registry operations. Every variant names the image (as the user wrote it, normalized)
//! and, where one is involved, the digest.

use dray_llb::Digest;

/// Why a pull, push, resolve or login failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry has no such repository, tag or digest.
    #[error("image {image} not found in the registry (manifest unknown)")]
    NotFound {
        /// The normalized reference.
        image: String,
    },

    /// The registry refused the credentials (or asked for some and none were configured).
    #[error(
        "image {image}: access denied by the registry ({detail}); check `dray login {registry}`"
    )]
    Unauthorized {
        /// The normalized reference.
        image: String,
        /// The registry host.
        registry: String,
        /// What the registry said.
        detail: String,
    },

    /// The registry could not be reached (connection refused, reset, timed out), after retries.
    #[error("image {image}: registry {registry} is unreachable{}: {detail}", digest_suffix(.digest))]
    Unreachable {
        /// The normalized reference.
        image: String,
        /// The registry host.
        registry: String,
        /// The blob or manifest being transferred, if any.
        digest: Option<Digest>,
        /// The transport error.
        detail: String,
    },

    /// The registry speaks TLS with a certificate that the trust store does not accept.
    #[error(
        "image {image}: the TLS certificate of registry {registry} is not trusted ({detail}); add its CA to the system trust store or point SSL_CERT_FILE at it, or pass --insecure-registry {registry}"
    )]
    UntrustedCertificate {
        /// The normalized reference (the host, for `dray login`).
        image: String,
        /// The registry host.
        registry: String,
        /// The TLS error.
        detail: String,
    },

    /// A transfer failed for another reason (an HTTP error status, a malformed answer).
    #[error("image {image}: registry request failed{}: {detail}", digest_suffix(.digest))]
    Registry {
        /// The normalized reference.
        image: String,
        /// The blob or manifest being transferred, if any.
        digest: Option<Digest>,
        /// What went wrong.
        detail: String,
    },

    /// Downloaded bytes do not hash to the digest that names them (tampered or corrupt content).
    #[error("image {image}: blob {expected} failed verification: its content hashes to {found}")]
    DigestMismatch {
        /// The normalized reference.
        image: String,
        /// The digest the manifest names.
        expected: Digest,
        /// The digest of what arrived.
        found: Digest,
    },

    /// A blob ended before (or after) its declared size.
    #[error(
        "image {image}: blob {digest} is truncated or oversized: expected {expected} bytes, got {found}"
    )]
    SizeMismatch {
        /// The normalized reference.
        image: String,
        /// The blob.
        digest: Digest,
        /// The manifest's size.
        expected: u64,
        /// What arrived.
        found: u64,
    },

    /// A manifest or layer of a kind dray cannot use.
    #[error("image {image}: unsupported media type {media_type:?} ({digest})")]
    UnsupportedMediaType {
        /// The normalized reference.
        image: String,
        /// The manifest or layer.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },

    /// An index has no manifest for the wanted platform.
    #[error("image {image}: no manifest for platform {wanted} in index {digest}; available: {}", .available.join(", "))]
    NoMatchingPlatform {
        /// The normalized reference.
        image: String,
        /// The index.
        digest: Digest,
        /// The platform asked for.
        wanted: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },

    /// A manifest, index or config could not be parsed.
    #[error("image {image}: invalid {what} {digest}: {detail}")]
    Malformed {
        /// The normalized reference.
        image: String,
        /// `manifest`, `index`, `config`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The parse error.
        detail: String,
    },

    /// A reference dray cannot turn into a registry reference.
    #[error("invalid image reference {reference:?}: {detail}")]
    BadReference {
        /// The text.
        reference: String,
        /// Why.
        detail: String,
    },

    /// The docker credentials file or a credential helper failed.
    #[error("credentials for {registry}: {detail}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What went wrong.
        detail: String,
    },

    /// The local store failed (reading blobs to push, writing pulled ones).
    #[error("image {image}: the local store failed")]
    Store {
        /// The normalized reference.
        image: String,
        /// The store's error.
        #[source]
        source: dray_cache::Error,
    },

    /// Reading the local image to push failed.
    #[error("image {image}: cannot read the local image")]
    LocalImage {
        /// The name given.
        image: String,
        /// The image crate's error.
        #[source]
        source: dray_image::Error,
    },
}

fn digest_suffix(digest: &Option<Digest>) -> String {
    digest.map(|d| format!(" (blob {d})")).unwrap_or_default()
}

impl Error {
    /// Whether the registry could not be reached at all (a cached resolution may be used instead).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }
}
