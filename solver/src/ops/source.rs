//! Source ops: scratch, the build context, and images in the local store or an OCI layout.
//!
//! Key computation only *resolves* an image (reference → manifest digest, from `index.json`);
//! the result step ([`load`]) maps its layers to committed snapshots and unpacks the ones that
//! have none: each missing layer's blob (from the store's `blobs/`, or copied there, verified,
//! from the OCI layout) is applied into a fresh snapshot, its diff_id checked against the
//! image config, and only then committed under its ChainID
//! ([`dray_image::apply::unpack_layer`]). Builds unpacking the same layer at once wait for
//! each other instead of failing. Registries come later: an image that is not in the store
//! fails with [`OpError::ImageNotFound`] naming the reference.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use dray_cache::{Committed, Store};
use dray_llb::{Digest, ImageRef, Node, Platform, SourceId, SourceOp};

use crate::error::OpError;

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Where an image's blobs live.
#[derive(Debug, Clone)]
pub(crate) enum BlobSource {
    /// The store's own `blobs/`.
    Store,
    /// An OCI layout directory.
    Layout(PathBuf),
}

/// A resolved image: its manifest digest and where to read it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedImage {
    pub reference: String,
    pub manifest: Digest,
    pub blobs: BlobSource,
}

#[derive(Deserialize)]
struct Desc {
    digest: String,
    #[serde(default)]
    platform: Option<DescPlatform>,
}

#[derive(Deserialize)]
struct DescPlatform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Desc>,
}

fn bad(reference: &str, problem: impl Into<String>) -> OpError {
    OpError::BadImage {
        reference: reference.to_owned(),
        problem: problem.into(),
    }
}

fn parse_digest(reference: &str, s: &str) -> Result<Digest, OpError> {
    s.parse()
        .map_err(|e| bad(reference, format!("bad digest {s:?}: {e}")))
}

fn read_blob(store: &Store, blobs: &BlobSource, digest: &Digest) -> Result<Vec<u8>, OpError> {
    match blobs {
        BlobSource::Store => {
            let d = *digest;
            Ok(store.blobs().read(&d)?)
        }
        BlobSource::Layout(dir) => {
            let path = dray_image::layout::blob_path(dir, digest);
            let bytes = std::fs::read(&path).map_err(OpError::io("read", &path))?;
            // A layout is input, not a store that verified what it holds.
            if Digest::of(&bytes) != *digest {
                return Err(bad(
                    &dir.display().to_string(),
                    format!("blob {digest} does not match its digest"),
                ));
            }
            Ok(bytes)
        }
    }
}

/// Resolves an image source to a manifest digest without reading any layer.
pub(crate) fn resolve(
    store: &Store,
    source: &SourceOp,
    node: &Node,
) -> Result<ResolvedImage, OpError> {
    let (reference, top, blobs) = match &source.id {
        SourceId::Image(r) => {
            let name = r.to_string();
            let top = match r.digest() {
                Some(d) => *d,
                None => image_in_store(store, r)?,
            };
            (name, top, BlobSource::Store)
        }
        SourceId::OciLayout { path, reference } => {
            let name = source.id.to_string();
            let platform = node.platform.clone().unwrap_or_else(host_platform);
            // A tag (ref-name annotation) or a digest the frontend pinned; indexes are
            // resolved for the node's platform there, so the key names one image manifest.
            let manifest = dray_image::layout::resolve(Path::new(path), reference, &platform)
                .map_err(|source| OpError::Image {
                    reference: name.clone(),
                    source,
                })?;
            return Ok(ResolvedImage {
                reference: name,
                manifest,
                blobs: BlobSource::Layout(PathBuf::from(path)),
            });
        }
        other => {
            return Err(OpError::UnsupportedSource {
                id: other.to_string(),
                reason: "only images, the build context and scratch are supported",
            });
        }
    };
    let manifest = pick_platform(store, &reference, &blobs, top, node.platform.as_ref())?;
    Ok(ResolvedImage {
        reference,
        manifest,
        blobs,
    })
}

fn image_in_store(store: &Store, r: &ImageRef) -> Result<Digest, OpError> {
    let desc = store
        .image(&r.to_string())?
        .ok_or_else(|| OpError::ImageNotFound {
            reference: r.to_string(),
        })?;
    Ok(desc.digest)
}

/// If `digest` is an index, the manifest for `platform` (or its only manifest).
fn pick_platform(
    store: &Store,
    reference: &str,
    blobs: &BlobSource,
    digest: Digest,
    platform: Option<&Platform>,
) -> Result<Digest, OpError> {
    let bytes = match read_blob(store, blobs, &digest) {
        Ok(b) => b,
        // A digest-pinned reference whose manifest is not here: the pin is the key anyway.
        Err(_) => return Ok(digest),
    };
    let Ok(index) = serde_json::from_slice::<Index>(&bytes) else {
        return Ok(digest);
    };
    let is_index = index
        .media_type
        .as_deref()
        .is_some_and(|m| INDEX_TYPES.contains(&m))
        || (!index.manifests.is_empty() && !bytes.windows(8).any(|w| w == b"\"layers\""));
    if !is_index {
        return Ok(digest);
    }
    let want = platform.cloned().unwrap_or_else(host_platform);
    let chosen = index
        .manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant == want.variant)
            })
        })
        .or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .ok_or_else(|| bad(reference, format!("no manifest for platform {want}")))?;
    parse_digest(reference, &chosen.digest)
}

/// The platform of this machine (Linux only).
pub(crate) fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Platform::linux(arch)
}

/// The image's layers as committed snapshots, unpacking the layers that have none. The chain is
/// the top layer's snapshot chain, so it includes snapshots with empty diffs that a dray-built
/// image leaves out of its manifest. Layers are found as `dray_image` maps them: by ChainID
/// (unpacked base layers) or by their layer records (images dray built); the layers after the
/// longest prefix found are unpacked in order, each under its ChainID.
pub(crate) fn load(store: &Store, image: &ResolvedImage) -> Result<Option<Committed>, OpError> {
    let r = &image.reference;
    let manifest_bytes =
        read_blob(store, &image.blobs, &image.manifest).map_err(|_| OpError::ImageNotFound {
            reference: r.clone(),
        })?;
    let manifest: dray_image::Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(r, format!("manifest: {e}")))?;
    let config: dray_llb::ImageConfig =
        serde_json::from_slice(&read_blob(store, &image.blobs, &manifest.config.digest)?)
            .map_err(|e| bad(r, format!("config: {e}")))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(bad(
            r,
            "the config's diff_ids do not match the manifest's layers",
        ));
    }
    let diff_ids = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| parse_digest(r, d))
        .collect::<Result<Vec<Digest>, _>>()?;
    let local = dray_image::images::LocalImage {
        manifest_descriptor: dray_cache::Descriptor::new(
            dray_image::MEDIA_TYPE_MANIFEST,
            image.manifest,
            manifest_bytes.len() as u64,
        ),
        config_digest: manifest.config.digest,
        layers: Vec::new(),
        repo_tags: Vec::new(),
        size: 0,
        manifest,
        config,
    };
    let found = dray_image::images::layer_snapshots(store, &local).map_err(|e| {
        bad(
            r,
            format!(
                "mapping layers to snapshots: {}",
                crate::scheduler::render(&e)
            ),
        )
    })?;
    let mut top = match found.last() {
        Some(id) => Some(store.get(id)?),
        None => None,
    };
    let chain_ids = dray_image::config::chain_ids(&diff_ids);
    let image_err = |source| OpError::Image {
        reference: r.clone(),
        source,
    };
    let total = diff_ids.len();
    for i in found.len()..total {
        let layer = &local.manifest.layers[i];
        match &image.blobs {
            BlobSource::Layout(dir) => {
                dray_image::layout::import_blob(store, dir, layer).map_err(image_err)?;
            }
            BlobSource::Store => {
                if !store.blobs().contains(&layer.digest)? {
                    return Err(OpError::LayerNotUnpacked {
                        reference: r.clone(),
                        diff_id: diff_ids[i].to_string(),
                    });
                }
            }
        }
        let description = format!("{r}: layer {}/{total} {}", i + 1, diff_ids[i]);
        let unpacked = dray_image::apply::unpack_layer(
            store,
            top.as_ref(),
            &chain_ids[i],
            &layer.digest,
            &diff_ids[i],
            &description,
        )
        .map_err(image_err)?;
        top = Some(unpacked);
    }
    Ok(top)
}

/// The layer blobs `load` will need that are neither unpacked (a snapshot chain prefix) nor in
/// the content store, with the pinned reference to fetch them from; `None` when nothing is
/// missing or the image is not a registry image in the store (an OCI layout has its own blobs).
pub(crate) fn missing_blobs(
    store: &Store,
    image: &ResolvedImage,
) -> Result<Option<(ImageRef, Vec<dray_cache::Descriptor>)>, OpError> {
    if !matches!(image.blobs, BlobSource::Store) {
        return Ok(None);
    }
    let Ok(reference) = ImageRef::parse(&image.reference) else {
        return Ok(None);
    };
    // A missing manifest or config is `load`'s error to report.
    let Ok(manifest) = dray_image::manifest::read_manifest(store, &image.manifest) else {
        return Ok(None);
    };
    let Ok(config) = dray_image::manifest::read_config(store, &manifest.config.digest) else {
        return Ok(None);
    };
    let local = dray_image::images::LocalImage {
        manifest_descriptor: dray_cache::Descriptor::new(
            dray_image::MEDIA_TYPE_MANIFEST,
            image.manifest,
            0,
        ),
        config_digest: manifest.config.digest,
        layers: Vec::new(),
        repo_tags: Vec::new(),
        size: 0,
        manifest,
        config,
    };
    let unpacked = dray_image::images::layer_snapshots(store, &local)
        .map(|chain| chain.len())
        .unwrap_or(0);
    let mut missing = Vec::new();
    for layer in local.manifest.layers.iter().skip(unpacked) {
        if !store.blobs().contains(&layer.digest)? {
            missing.push(layer.clone());
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }
    Ok(Some((reference.with_digest(image.manifest), missing)))
}
