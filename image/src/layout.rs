//! Images in an OCI image layout directory (image-spec `image-layout.md`): what
//! `FROM oci-layout://PATH[:TAG|@DIGEST]` and `--build-context NAME=oci-layout://…` read.
//!
//! ```text
//! PATH/
//! ├── oci-layout            # {"imageLayoutVersion": "1.0.0"}
//! ├── index.json            # manifests[], each tagged by annotation org.opencontainers.image.ref.name
//! └── blobs/sha256/<hex>    # manifests, indexes, configs, layers
//! ```
//!
//! * [`resolve`]: a tag (an `org.opencontainers.image.ref.name` annotation in `index.json`, as
//!   umoci, skopeo and `buildctl --output type=oci` write it) or a digest → the digest of the
//!   image manifest for a platform (an index, nested or in `index.json`, is resolved by the
//!   descriptors' `platform`).
//! * [`read_image`]: the manifest and config of that digest.
//! * [`import_blob`] / [`import_image`]: copy blobs into the store, each verified against
//!   its digest and size, so that images built on the layout's image are complete in the store
//!   (their manifests name the base's layer blobs).
//!
//! Every blob read from the layout is checked against its digest: a layout is input, not a
//! store we trust.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use dray_cache::{Descriptor, REF_NAME_ANNOTATION, Store};
use dray_llb::{ImageConfig, Platform};
use serde::Deserialize;

use crate::assemble::BaseImage;
use crate::manifest::{MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_MANIFEST, Manifest};
use crate::{Digest, Error};

/// Media types of an image index.
const INDEX_TYPES: &[&str] = &[
    dray_cache::OCI_INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Manifests and indexes are small; anything bigger is not one.
const MAX_JSON_BLOB: u64 = 4 * 1024 * 1024;

/// `index.json` and image indexes, as far as resolution needs them.
#[derive(Deserialize)]
struct Index {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// An image read from a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutImage {
    /// The manifest's descriptor (its digest is what a build pins).
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfig,
}

impl LayoutImage {
    /// This image as the base of a build: its layer descriptors and config.
    pub fn as_base(&self) -> BaseImage {
        BaseImage {
            layers: self.manifest.layers.clone(),
            config: self.config.clone(),
        }
    }
}

fn layout_err(layout: &Path, problem: impl Into<String>) -> Error {
    Error::Layout {
        path: layout.to_owned(),
        problem: problem.into(),
    }
}

/// `PATH/blobs/<algorithm>/<hex>`.
pub fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(digest.hex())
}

/// Reads a small (JSON) blob and checks it against its digest.
fn read_json_blob(layout: &Path, digest: &Digest) -> Result<Vec<u8>, Error> {
    let path = blob_path(layout, digest);
    let file = File::open(&path).map_err(|source| Error::LayoutRead {
        path: path.clone(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::LayoutRead {
            path: path.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_JSON_BLOB {
        return Err(layout_err(
            layout,
            format!("blob {digest} is too big for a manifest or config"),
        ));
    }
    let found = Digest::of(&bytes);
    if found != *digest {
        return Err(layout_err(
            layout,
            format!("blob {digest} does not match its digest (it hashes to {found})"),
        ));
    }
    Ok(bytes)
}

fn parse<'a, T: Deserialize<'a>>(
    layout: &Path,
    what: &str,
    digest: &Digest,
    bytes: &'a [u8],
) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| layout_err(layout, format!("{what} {digest} is not valid: {e}")))
}

fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    d.extra
        .get("platform")
        .and_then(|p| serde_json::from_value::<Platform>(p.clone()).ok())
}

fn is_index_media_type(media_type: &str) -> bool {
    INDEX_TYPES.contains(&media_type)
}

/// The digest of the image manifest `reference` names in the layout at `layout`, for
/// `platform`. `reference` is a tag (matched exactly against the ref-name annotations of
/// `index.json`) or, when no tag matches, a digest (`sha256:<hex>`) of a blob in the layout.
/// Indexes on the way are resolved by their descriptors' `platform` (an index with a single
/// manifest gives that manifest whatever its platform).
pub fn resolve(layout: &Path, reference: &str, platform: &Platform) -> Result<Digest, Error> {
    let index_path = layout.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(|source| Error::LayoutRead {
        path: index_path.clone(),
        source,
    })?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| layout_err(layout, format!("index.json is not valid: {e}")))?;
    let tagged: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) == Some(reference))
        .collect();
    let mut current = match tagged.as_slice() {
        [] => match reference.parse::<Digest>() {
            Ok(d) if blob_path(layout, &d).is_file() => Descriptor::new("", d, 0),
            _ => {
                return Err(layout_err(
                    layout,
                    format!("no image tagged {reference:?} in index.json"),
                ));
            }
        },
        [only] => (*only).clone(),
        several => pick(layout, several, platform, reference)?.clone(),
    };
    // Follow indexes down to an image manifest (bounded: indexes could name each other).
    for _ in 0..8 {
        if !current.media_type.is_empty() && !is_index_media_type(&current.media_type) {
            return Ok(current.digest);
        }
        let bytes = read_json_blob(layout, &current.digest)?;
        let index: Index = parse(layout, "index", &current.digest, &bytes)?;
        let declared_index = index.media_type.as_deref().is_some_and(is_index_media_type)
            || is_index_media_type(&current.media_type);
        // A descriptor without a media type (a digest given by hand): an index lists
        // `manifests` and has no `layers`.
        let looks_like_index =
            !index.manifests.is_empty() && !bytes.windows(8).any(|w| w == b"\"layers\"");
        if !(declared_index || looks_like_index) {
            return Ok(current.digest);
        }
        let manifests: Vec<&Descriptor> = index.manifests.iter().collect();
        current = match manifests.as_slice() {
            [] => {
                return Err(layout_err(
                    layout,
                    format!("index {} is empty", current.digest),
                ));
            }
            [only] => (*only).clone(),
            several => pick(layout, several, platform, reference)?.clone(),
        };
    }
    Err(layout_err(
        layout,
        format!("{reference:?}: too many nested indexes"),
    ))
}

/// The descriptor for `platform` among several.
fn pick<'a>(
    layout: &Path,
    candidates: &[&'a Descriptor],
    platform: &Platform,
    reference: &str,
) -> Result<&'a Descriptor, Error> {
    candidates
        .iter()
        .copied()
        .find(|d| {
            descriptor_platform(d).is_some_and(|p| crate::images::platform_matches(&p, platform))
        })
        .ok_or_else(|| {
            layout_err(
                layout,
                format!("{reference:?} has no image for platform {platform}"),
            )
        })
}

/// Reads the image manifest `manifest` and its config from the layout, both checked against
/// their digests.
pub fn read_image(layout: &Path, manifest: &Digest) -> Result<LayoutImage, Error> {
    let bytes = read_json_blob(layout, manifest)?;
    let parsed: Manifest = parse(layout, "manifest", manifest, &bytes)?;
    if let Some(mt) = &parsed.media_type
        && mt != MEDIA_TYPE_MANIFEST
        && mt != MEDIA_TYPE_DOCKER_MANIFEST
    {
        return Err(layout_err(
            layout,
            format!("{manifest} is a {mt}, not an image manifest"),
        ));
    }
    let config_bytes = read_json_blob(layout, &parsed.config.digest)?;
    let config: ImageConfig = parse(layout, "config", &parsed.config.digest, &config_bytes)?;
    if config.rootfs.diff_ids.len() != parsed.layers.len() {
        return Err(layout_err(
            layout,
            format!(
                "image {manifest}: the config lists {} diff_ids for {} layers",
                config.rootfs.diff_ids.len(),
                parsed.layers.len()
            ),
        ));
    }
    let media_type = parsed
        .media_type
        .clone()
        .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_owned());
    Ok(LayoutImage {
        manifest_descriptor: Descriptor::new(media_type, *manifest, bytes.len() as u64),
        manifest: parsed,
        config,
    })
}

/// Copies the blob `descriptor` names from the layout into the store, unless the store has
/// it; its digest and size are verified before it becomes visible there.
pub fn import_blob(store: &Store, layout: &Path, descriptor: &Descriptor) -> Result<(), Error> {
    if store.blobs().contains(&descriptor.digest)? {
        return Ok(());
    }
    let path = blob_path(layout, &descriptor.digest);
    let mut file = File::open(&path).map_err(|source| Error::LayoutRead { path, source })?;
    store
        .blobs()
        .put_reader(&mut file, Some((descriptor.digest, descriptor.size)))?;
    Ok(())
}

/// Imports the whole image `manifest` (manifest, config and every layer blob) from the layout
/// into the store, and returns it.
pub fn import_image(store: &Store, layout: &Path, manifest: &Digest) -> Result<LayoutImage, Error> {
    let image = read_image(layout, manifest)?;
    for layer in &image.manifest.layers {
        import_blob(store, layout, layer)?;
    }
    import_blob(store, layout, &image.manifest.config)?;
    // The manifest last: a manifest in the store names only present blobs.
    import_blob(store, layout, &image.manifest_descriptor)?;
    Ok(image)
}

/// A `oci-layout://` reference as users write it: `PATH[:TAG][@DIGEST]` (buildx's syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// The layout directory, as written.
    pub path: String,
    /// The tag (`latest` when neither a tag nor a digest is given).
    pub tag: Option<String>,
    /// The manifest (or index) digest.
    pub digest: Option<Digest>,
}

impl LayoutRef {
    /// Parses what follows `oci-layout://`. A `:` starts the tag only after the last `/`, so
    /// `./dir:with:colons/img:1.0` is the path `./dir:with:colons/img` and the tag `1.0`.
    ///
    /// ```
    /// use dray_image::layout::LayoutRef;
    /// let r = LayoutRef::parse("/srv/images/busybox:1.36").unwrap();
    /// assert_eq!((r.path.as_str(), r.tag.as_deref()), ("/srv/images/busybox", Some("1.36")));
    /// assert_eq!(LayoutRef::parse("/l").unwrap().reference(), "latest");
    /// assert!(LayoutRef::parse("").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<LayoutRef, String> {
        let (rest, digest) = match text.rsplit_once('@') {
            Some((rest, d)) if d.starts_with("sha256:") => (
                rest,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| format!("invalid digest {d:?}: {e}"))?,
                ),
            ),
            _ => (text, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(format!("oci-layout://{text}: the layout path is empty"));
        }
        if let Some(tag) = tag
            && (tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c == '#'))
        {
            return Err(format!("oci-layout://{text}: invalid tag {tag:?}"));
        }
        Ok(LayoutRef {
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// What to look up in the layout: the digest if given (it pins the image), else the tag,
    /// else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

/// The ref-name annotations in the layout's `index.json`, with the digests they point to (for
/// messages and listings).
pub fn tags(layout: &Path) -> Result<BTreeMap<String, Digest>, Error> {
    let index_path = layout.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(|source| Error::LayoutRead {
        path: index_path.clone(),
        source,
    })?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| layout_err(layout, format!("index.json is not valid: {e}")))?;
    Ok(index
        .manifests
        .iter()
        .filter_map(|d| {
            d.annotations
                .get(REF_NAME_ANNOTATION)
                .map(|t| (t.clone(), d.digest))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> (String, Option<String>, Option<String>) {
        let p = LayoutRef::parse(text).unwrap();
        (p.path, p.tag, p.digest.map(|d| d.to_string()))
    }

    #[test]
    fn parses_layout_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(r("/l"), ("/l".into(), None, None));
        assert_eq!(r("/l:base"), ("/l".into(), Some("base".into()), None));
        assert_eq!(r("./a:b/l"), ("./a:b/l".into(), None, None));
        assert_eq!(r("./a:b/l:v1"), ("./a:b/l".into(), Some("v1".into()), None));
        assert_eq!(r(&format!("/l@{d}")), ("/l".into(), None, Some(d.clone())));
        assert_eq!(
            r(&format!("/l:t@{d}")),
            ("/l".into(), Some("t".into()), Some(d.clone()))
        );
        assert!(LayoutRef::parse(":tag").is_err());
        assert!(LayoutRef::parse("/l:").is_err());
        assert!(LayoutRef::parse("/l@sha256:zz").is_err());
        assert_eq!(LayoutRef::parse("/l:t").unwrap().reference(), "t");
        assert_eq!(
            LayoutRef::parse(&format!("/l:t@{d}")).unwrap().reference(),
            d
        );
    }
}
