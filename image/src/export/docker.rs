//! Docker media types for `type=docker` and `dray save --format docker`, as BuildKit's docker
//! exporter writes them (its `oci-mediatypes=false` default there).
//!
//! The manifest is rewritten; no other blob changes, so the image ID (the config digest) and the
//! layer digests stay what they are, and only the manifest digest is new.
//!
//! | field | OCI (the store) | docker (the archive) |
//! |---|---|---|
//! | manifest `mediaType` | `application/vnd.oci.image.manifest.v1+json` | `application/vnd.docker.distribution.manifest.v2+json` |
//! | config | `application/vnd.oci.image.config.v1+json` | `application/vnd.docker.container.image.v1+json` |
//! | gzip layer | `application/vnd.oci.image.layer.v1.tar+gzip` | `application/vnd.docker.image.rootfs.diff.tar.gzip` |
//! | uncompressed layer | `application/vnd.oci.image.layer.v1.tar` | `application/vnd.docker.image.rootfs.diff.tar` |
//!
//! Docker's schema 2 has no zstd layer type, so an image with a zstd layer (or any layer type
//! not in the table, e.g. a foreign layer) keeps its OCI manifest unchanged, as BuildKit forces
//! OCI media types for zstd. Layers already in docker types (base layers of an image built
//! `FROM` a loaded docker image) keep them, and a manifest already in docker media types is
//! kept as it is, so `save → load → save` gives the same archive.

use dray_cache::{Descriptor, Store};

use super::ExportError;
use crate::layer::{MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP};
use crate::manifest::{
    MEDIA_TYPE_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_MANIFEST, Manifest, canonical_json,
    read_manifest,
};

/// `mediaType` of a docker image config.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// `mediaType` of a gzip-compressed docker layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// `mediaType` of an uncompressed docker layer.
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The manifest an archive names for an image: its descriptor, and the new manifest's bytes
/// when it is not the stored blob.
pub(super) struct ArchiveManifest {
    /// What `index.json` points at.
    pub(super) descriptor: Descriptor,
    /// The manifest as parsed (the converted one when converted).
    pub(super) manifest: Manifest,
    /// The converted manifest's bytes; `None` when the store's blob is written as it is.
    pub(super) converted: Option<Vec<u8>>,
}

/// The stored manifest `stored` unchanged.
pub(super) fn as_stored(
    store: &Store,
    stored: &Descriptor,
) -> Result<ArchiveManifest, ExportError> {
    Ok(ArchiveManifest {
        descriptor: Descriptor::new(stored.media_type.clone(), stored.digest, stored.size),
        manifest: read_manifest(store, &stored.digest)?,
        converted: None,
    })
}

/// The stored manifest `stored` in docker media types (see the module docs for when it is
/// kept as it is).
pub(super) fn with_docker_media_types(
    store: &Store,
    stored: &Descriptor,
) -> Result<ArchiveManifest, ExportError> {
    let kept = as_stored(store, stored)?;
    let Some(manifest) = convert(&kept.manifest) else {
        return Ok(kept);
    };
    let bytes = canonical_json("image manifest", &manifest)?;
    Ok(ArchiveManifest {
        descriptor: Descriptor::new(
            MEDIA_TYPE_DOCKER_MANIFEST,
            dray_llb::Digest::of(&bytes),
            bytes.len() as u64,
        ),
        manifest,
        converted: Some(bytes),
    })
}

/// `manifest` with docker media types, or `None` when it must stay as it is.
fn convert(manifest: &Manifest) -> Option<Manifest> {
    if manifest.media_type.as_deref() != Some(MEDIA_TYPE_MANIFEST)
        || ![MEDIA_TYPE_CONFIG, MEDIA_TYPE_DOCKER_CONFIG]
            .contains(&manifest.config.media_type.as_str())
    {
        return None;
    }
    let mut out = manifest.clone();
    out.media_type = Some(MEDIA_TYPE_DOCKER_MANIFEST.to_owned());
    out.config.media_type = MEDIA_TYPE_DOCKER_CONFIG.to_owned();
    for layer in &mut out.layers {
        layer.media_type = match layer.media_type.as_str() {
            MEDIA_TYPE_TAR_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP => MEDIA_TYPE_DOCKER_LAYER_GZIP,
            MEDIA_TYPE_TAR | MEDIA_TYPE_DOCKER_LAYER => MEDIA_TYPE_DOCKER_LAYER,
            _ => return None,
        }
        .to_owned();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use dray_llb::Digest;

    use super::*;
    use crate::layer::MEDIA_TYPE_TAR_ZSTD;

    fn manifest(layers: &[&str]) -> Manifest {
        Manifest::new(
            Descriptor::new(MEDIA_TYPE_CONFIG, Digest::of("config"), 6),
            layers
                .iter()
                .map(|t| Descriptor::new(*t, Digest::of(t), 1))
                .collect(),
        )
    }

    #[test]
    fn gzip_and_uncompressed_layers_get_docker_types_and_keep_their_digests() {
        let oci = manifest(&[MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR]);
        let docker = convert(&oci).unwrap();
        assert_eq!(
            docker.media_type.as_deref(),
            Some(MEDIA_TYPE_DOCKER_MANIFEST)
        );
        assert_eq!(docker.config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
        assert_eq!(docker.config.digest, oci.config.digest);
        let types: Vec<&str> = docker
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        assert_eq!(
            types,
            [MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_LAYER]
        );
        let digests = |m: &Manifest| m.layers.iter().map(|l| l.digest).collect::<Vec<_>>();
        assert_eq!(digests(&docker), digests(&oci));
    }

    #[test]
    fn zstd_layers_and_docker_manifests_are_kept() {
        assert!(convert(&manifest(&[MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD])).is_none());
        let docker = convert(&manifest(&[MEDIA_TYPE_TAR_GZIP])).unwrap();
        assert!(convert(&docker).is_none(), "already docker");
    }

    #[test]
    fn base_layers_already_in_docker_types_are_kept_in_an_oci_manifest() {
        // An image built FROM a loaded docker image: an OCI manifest, docker base layers.
        let mixed = manifest(&[MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_TAR_GZIP]);
        let docker = convert(&mixed).unwrap();
        let types: Vec<&str> = docker
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        assert_eq!(types, [MEDIA_TYPE_DOCKER_LAYER_GZIP; 2]);
    }
}
