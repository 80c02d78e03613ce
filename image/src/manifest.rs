//! The OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) and reading manifests
//! and configs back from the content store.
//!
//! Only what dray writes and reads is modelled: `schemaVersion`, `mediaType`, `config`, `layers`
//! and `annotations`. Descriptors are [`dray_cache::Descriptor`], which keeps unknown fields
//! (`platform`, `urls`, …) verbatim, so a manifest read from another tool round-trips.
//!
//! **Canonical bytes.** dray serializes manifests and configs with `serde_json::to_vec`: compact,
//! fields in declaration order, map keys sorted (`BTreeMap`). The bytes are therefore a pure
//! function of the values, which is what makes the manifest digest reproducible.

use std::collections::BTreeMap;

use dray_cache::{Descriptor, Store};
use dray_llb::{Digest, ImageConfig};
use serde::{Deserialize, Serialize};

use crate::Error;

/// `mediaType` of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of an OCI image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `mediaType` of a Docker schema 2 manifest (read, never written).
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`MEDIA_TYPE_MANIFEST`] for what dray writes; optional in the spec, so it may be absent
    /// from manifests written by other tools.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// An OCI image manifest for `config` and `layers`.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
            config,
            layers,
            annotations: BTreeMap::new(),
        }
    }
}

/// The canonical bytes of a manifest or config (see the module docs).
pub(crate) fn canonical_json<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|source| Error::Serialize { what, source })
}

/// Reads and parses the manifest blob `digest`.
pub fn read_manifest(store: &Store, digest: &Digest) -> Result<Manifest, Error> {
    let bytes = store.blobs().read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::BadJson {
        what: "image manifest",
        digest: *digest,
        source,
    })
}

/// Reads and parses the config blob `digest`.
pub fn read_config(store: &Store, digest: &Digest) -> Result<ImageConfig, Error> {
    let bytes = store.blobs().read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::BadJson {
        what: "image config",
        digest: *digest,
        source,
    })
}
