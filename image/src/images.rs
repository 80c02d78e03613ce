//! The local image store as the CLI sees it: `dray images`, `inspect`, `history`, `tag`, `rmi`,
//! plus the lookups the converter (`FROM` a dray-built image) and the solver need.
//!
//! Tags live in the root's OCI `index.json` ([`dray_cache::Store::tag`]) under the full
//! normalized name (`docker.io/library/app:latest`); everything shown to people uses the familiar
//! form (`app:latest`), as docker does.
//!
//! # Behaviours matched to docker
//!
//! | command | dray |
//! |---|---|
//! | IMAGE ID | the config digest (docker's image ID); shown short (12 hex) by the CLI |
//! | name resolution | a reference first (`app` = `docker.io/library/app:latest`, `app@sha256:…` by manifest digest), then an image-ID prefix (`3f2a`, `sha256:3f2a…`); several images matching a prefix is an error |
//! | SIZE (`images`, `inspect .Size`) | docker shows the **unpacked** (uncompressed) size. dray sums each layer's unpacked snapshot disk usage when the layer is present as a snapshot, else the layer blob's (compressed) size. [`ImageSummary::content_size`] is the exact compressed size (docker's containerd store calls it CONTENT SIZE) |
//! | `history` | newest first; the top row carries the image ID, the others `<missing>` (as for any BuildKit-built or pulled image); SIZE is 0 for `empty_layer` rows |
//! | `rmi NAME` | removes the tag only; blobs and snapshots stay until GC (prune), since other tags, cache records or a running build may still use them. `rmi ID` with several tags needs `force` |
//! | `RepoDigests` | empty until the image is pushed (docker fills it from the registry) |

use std::collections::BTreeMap;
use std::fs;

use dray_cache::{Descriptor, SnapshotId, Store, TaggedImage};
use dray_llb::{Digest, ImageConfig, ImageRef, Platform};
use serde_json::{Value, json};

use crate::Error;
use crate::assemble::{BaseImage, BuiltImage};
use crate::config::chain_ids;
use crate::manifest::{MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_MANIFEST, Manifest};
use crate::manifest::{read_config, read_manifest};

/// Points `name` (normalized, e.g. from `ImageRef::parse("app")`) at `image`. The store refuses
/// ([`dray_cache::Error::BlobNotFound`]) while a blob the manifest names is missing, e.g. a base
/// layer that was never fetched: fetch base blobs before tagging (architecture B5 step 5).
pub fn tag_image(store: &Store, name: &ImageRef, image: &BuiltImage) -> Result<(), Error> {
    tag_descriptor(store, name, &image.manifest)
}

/// Points `name` at the manifest `descriptor` (for `dray tag SRC DST`, with SRC's
/// [`LocalImage::manifest_descriptor`]).
pub fn tag_descriptor(
    store: &Store,
    name: &ImageRef,
    descriptor: &Descriptor,
) -> Result<(), Error> {
    if name.digest().is_some() {
        return Err(Error::TagWithDigest {
            name: name.to_string(),
        });
    }
    let mut d = Descriptor::new(
        descriptor.media_type.clone(),
        descriptor.digest,
        descriptor.size,
    );
    d.extra = descriptor.extra.clone();
    store.tag(&name.to_string(), &d)?;
    Ok(())
}

/// One row of `dray images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Familiar repository: `app`, `user/app`, `localhost:5000/app`.
    pub repository: String,
    /// The tag, or `<none>` for a digest-only name.
    pub tag: String,
    /// The config digest (docker's IMAGE ID).
    pub image_id: Digest,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The config's `created` (RFC 3339), if any.
    pub created: Option<String>,
    /// Unpacked size in bytes (see the module docs for how it is measured).
    pub size: u64,
    /// Compressed size: manifest + config + layer blobs.
    pub content_size: u64,
}

/// Every tagged image, in `index.json` order. Entries that are not image manifests (an index
/// written by another tool) are skipped; entries whose blobs are missing or corrupt are errors.
pub fn list_images(store: &Store) -> Result<Vec<ImageSummary>, Error> {
    let index = SnapshotIndex::build(store)?;
    let mut out = Vec::new();
    for tagged in store.list_images()? {
        if !is_image_manifest(&tagged.descriptor.media_type) {
            continue;
        }
        let image = load_tagged(store, &index, &tagged)?;
        let (repository, tag) = split_familiar(&tagged.name);
        out.push(ImageSummary {
            repository,
            tag,
            image_id: image.config_digest,
            manifest_digest: image.manifest_descriptor.digest,
            created: image.config.created.clone(),
            size: image.size,
            content_size: image.content_size(),
        });
    }
    Ok(out)
}

/// One layer of a local image.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalLayer {
    /// Its manifest descriptor.
    pub descriptor: Descriptor,
    /// Its diff_id from the config, when the config lists one.
    pub diff_id: Option<String>,
    /// The snapshot holding it unpacked, if present (see [`layer_snapshots`]).
    pub snapshot: Option<SnapshotId>,
    /// Unpacked size when the snapshot is present, else the blob size.
    pub size: u64,
}

/// An image read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalImage {
    /// The manifest descriptor from `index.json`.
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config digest (image ID).
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// The layers, bottom first.
    pub layers: Vec<LocalLayer>,
    /// Every tag (familiar form, sorted) naming an image with this image ID.
    pub repo_tags: Vec<String>,
    /// Sum of the layer sizes.
    pub size: u64,
}

impl LocalImage {
    /// Manifest + config + layer blob sizes.
    pub fn content_size(&self) -> u64 {
        self.manifest_descriptor.size
            + self.manifest.config.size
            + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// This image as the base of another build.
    pub fn as_base(&self) -> BaseImage {
        BaseImage {
            layers: self.manifest.layers.clone(),
            config: self.config.clone(),
        }
    }
}

/// Loads the image `name` refers to: a reference, or an image-ID prefix (module docs).
pub fn load_image(store: &Store, name: &str) -> Result<LocalImage, Error> {
    let tags = store.list_images()?;
    let tagged = find_tagged(store, &tags, name)?;
    let index = SnapshotIndex::build(store)?;
    let mut image = load_tagged(store, &index, tagged)?;
    image.repo_tags = repo_tags(store, &tags, &image.config_digest)?;
    Ok(image)
}

/// `docker image inspect`'s JSON for `image`.
pub fn inspect_json(image: &LocalImage) -> Value {
    let c = &image.config;
    let mut v = json!({
        "Id": image.config_digest.to_string(),
        "RepoTags": image.repo_tags,
        "RepoDigests": Vec::<String>::new(),
        "Parent": "",
        "Comment": "",
        "Created": c.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": "",
        "Config": serde_json::to_value(&c.config).unwrap_or(Value::Null),
        "Architecture": c.architecture,
        "Os": c.os,
        "Size": image.size,
        "RootFS": {
            "Type": c.rootfs.kind,
            "Layers": c.rootfs.diff_ids,
        },
        "Metadata": {
            "LastTagTime": "0001-01-01T00:00:00Z",
        },
        "Descriptor": {
            "mediaType": image.manifest_descriptor.media_type,
            "digest": image.manifest_descriptor.digest.to_string(),
            "size": image.manifest_descriptor.size,
        },
    });
    if let Some(variant) = &c.variant {
        v["Variant"] = json!(variant);
    }
    v
}

/// One row of `dray history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID on the top row, `<missing>` on the others (docker's IMAGE column).
    pub id: String,
    /// RFC 3339, if recorded.
    pub created: Option<String>,
    /// The instruction.
    pub created_by: String,
    /// Size of the layer this step added; 0 for steps without a layer.
    pub size: u64,
    /// The comment (`buildkit.dockerfile.v0`).
    pub comment: String,
}

/// `docker history` rows for `image`, newest first.
pub fn history_rows(image: &LocalImage) -> Vec<HistoryRow> {
    let mut layers = image.layers.iter();
    let mut rows: Vec<HistoryRow> = image
        .config
        .history
        .iter()
        .map(|h| HistoryRow {
            id: "<missing>".to_owned(),
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size: if h.empty_layer {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = image.config_digest.to_string();
    }
    rows
}

/// Removes the tag `name` and returns the removed names (familiar form). `name` may be an
/// image-ID prefix: then every tag of that image is removed, which needs `force` when there is
/// more than one (docker's rule). Blobs and snapshots are left for GC.
pub fn untag(store: &Store, name: &str, force: bool) -> Result<Vec<String>, Error> {
    let tags = store.list_images()?;
    if let Some(t) = find_by_ref(&tags, name) {
        let name = t.name.clone();
        store.untag(&name)?;
        return Ok(vec![familiar(&name)]);
    }
    let tagged = find_by_id_prefix(store, &tags, name)?;
    let id = read_manifest(store, &tagged.descriptor.digest)?
        .config
        .digest;
    let mut names = Vec::new();
    for t in &tags {
        if is_image_manifest(&t.descriptor.media_type)
            && read_manifest(store, &t.descriptor.digest)?.config.digest == id
        {
            names.push(t.name.clone());
        }
    }
    if names.len() > 1 && !force {
        return Err(Error::MultipleTags {
            id: id.to_string(),
            names: names.iter().map(|n| familiar(n)).collect(),
        });
    }
    for n in &names {
        store.untag(n)?;
    }
    Ok(names.iter().map(|n| familiar(n)).collect())
}

/// For the converter's meta resolver: the manifest digest and config of a locally tagged image
/// for `platform`, or `None` when the tag is absent or has nothing for that platform (then the
/// registry is asked). A tag may name an image manifest (what dray writes) or an OCI image index
/// / Docker manifest list (what `skopeo copy --all` writes into the root), from which the entry
/// for `platform` is picked by its descriptor's `platform`.
pub fn resolve_local(
    store: &Store,
    name: &ImageRef,
    platform: &Platform,
) -> Result<Option<(Digest, ImageConfig)>, Error> {
    let tags = store.list_images()?;
    let Some(tagged) = find_by_ref(&tags, &name.to_string()) else {
        return Ok(None);
    };
    let mut descriptor = tagged.descriptor.clone();
    if is_index(&descriptor.media_type) {
        let bytes = store.blobs().read(&descriptor.digest)?;
        let index: IndexDoc = serde_json::from_slice(&bytes).map_err(|source| Error::BadJson {
            what: "image index",
            digest: descriptor.digest,
            source,
        })?;
        let picked = index.manifests.into_iter().find(|d| {
            is_image_manifest(&d.media_type)
                && d.extra
                    .get("platform")
                    .and_then(|p| serde_json::from_value::<Platform>(p.clone()).ok())
                    .is_some_and(|p| platform_matches(&p, platform))
        });
        match picked {
            Some(d) => descriptor = d,
            None => return Ok(None),
        }
    }
    if !is_image_manifest(&descriptor.media_type) {
        return Ok(None);
    }
    let manifest = read_manifest(store, &descriptor.digest)?;
    let config = read_config(store, &manifest.config.digest)?;
    let found = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    if !platform_matches(&found, platform) {
        return Ok(None);
    }
    Ok(Some((descriptor.digest, config)))
}

/// The `manifests` of an image index.
#[derive(serde::Deserialize)]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn is_index(media_type: &str) -> bool {
    media_type == dray_cache::OCI_INDEX_MEDIA_TYPE
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Same os and architecture; variants must agree only when both are given (`arm64` and
/// `arm64/v8` are the same platform).
pub(crate) fn platform_matches(found: &Platform, wanted: &Platform) -> bool {
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) => None,
        (_, v) => v.map(str::to_owned),
    };
    let variant_ok = match (norm(found), norm(wanted)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    found.os == wanted.os && found.architecture == wanted.architecture && variant_ok
}

/// The snapshots that hold `image`'s layers, for the solver: the longest prefix of the layers
/// that exists as a snapshot chain (element `i` is layer `i`'s snapshot; parents match, where
/// snapshots with empty diffs — dropped from the manifest — may sit between two layers). The
/// solver unpacks the layers after the prefix.
pub fn layer_snapshots(store: &Store, image: &LocalImage) -> Result<Vec<SnapshotId>, Error> {
    let index = SnapshotIndex::build(store)?;
    index.chain(store, &image.config)
}

fn is_image_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

fn familiar(name: &str) -> String {
    ImageRef::parse(name).map_or_else(|_| name.to_owned(), |r| r.familiar())
}

/// `docker.io/library/app:1` → (`app`, `1`); a digest-only name → (`app`, `<none>`).
fn split_familiar(name: &str) -> (String, String) {
    let Ok(r) = ImageRef::parse(name) else {
        return (name.to_owned(), "<none>".to_owned());
    };
    let full = r.familiar();
    // `familiar()` is `repo[:tag][@digest]`; a registry port also contains `:`, so the tag is
    // removed as a suffix rather than split at the first `:`.
    let without_digest = full.split('@').next().unwrap_or_default();
    match r.tag() {
        Some(tag) => (
            without_digest
                .strip_suffix(&format!(":{tag}"))
                .unwrap_or(without_digest)
                .to_owned(),
            tag.to_owned(),
        ),
        None => (without_digest.to_owned(), "<none>".to_owned()),
    }
}

fn find_tagged<'a>(
    store: &Store,
    tags: &'a [TaggedImage],
    name: &str,
) -> Result<&'a TaggedImage, Error> {
    match find_by_ref(tags, name) {
        Some(t) => Ok(t),
        None => find_by_id_prefix(store, tags, name),
    }
}

/// A tag by reference: exact normalized name, or `name@digest` by manifest digest.
fn find_by_ref<'a>(tags: &'a [TaggedImage], name: &str) -> Option<&'a TaggedImage> {
    let r = ImageRef::parse(name).ok()?;
    match r.digest() {
        None => {
            let full = r.to_string();
            tags.iter().find(|t| t.name == full)
        }
        Some(d) => tags.iter().find(|t| {
            t.descriptor.digest == *d
                && ImageRef::parse(&t.name).is_ok_and(|tr| tr.name() == r.name())
        }),
    }
}

fn find_by_id_prefix<'a>(
    store: &Store,
    tags: &'a [TaggedImage],
    name: &str,
) -> Result<&'a TaggedImage, Error> {
    let not_found = || Error::ImageNotFound {
        name: name.to_owned(),
    };
    let prefix = name.strip_prefix("sha256:").unwrap_or(name);
    if prefix.is_empty()
        || !prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(not_found());
    }
    let mut matches: BTreeMap<Digest, &TaggedImage> = BTreeMap::new();
    for t in tags {
        if !is_image_manifest(&t.descriptor.media_type) {
            continue;
        }
        let id = read_manifest(store, &t.descriptor.digest)?.config.digest;
        if id.hex().starts_with(prefix) {
            matches.entry(id).or_insert(t);
        }
    }
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(matches
            .into_values()
            .next()
            .unwrap_or_else(|| unreachable!())),
        _ => Err(Error::AmbiguousImageId {
            prefix: name.to_owned(),
            matches: matches.keys().map(Digest::to_string).collect(),
        }),
    }
}

fn repo_tags(store: &Store, tags: &[TaggedImage], id: &Digest) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for t in tags {
        if is_image_manifest(&t.descriptor.media_type)
            && read_manifest(store, &t.descriptor.digest)?.config.digest == *id
        {
            out.push(familiar(&t.name));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn load_tagged(
    store: &Store,
    index: &SnapshotIndex,
    tagged: &TaggedImage,
) -> Result<LocalImage, Error> {
    if !is_image_manifest(&tagged.descriptor.media_type) {
        return Err(Error::NotAnImageManifest {
            name: tagged.name.clone(),
            digest: tagged.descriptor.digest,
            media_type: tagged.descriptor.media_type.clone(),
        });
    }
    let manifest = read_manifest(store, &tagged.descriptor.digest)?;
    let config_digest = manifest.config.digest;
    let config = read_config(store, &config_digest)?;
    let chain = index.chain(store, &config)?;
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (i, d) in manifest.layers.iter().enumerate() {
        let snapshot = chain.get(i).cloned();
        let size = match &snapshot {
            Some(id) => store.snapshot_info(id)?.map_or(d.size, |info| info.size),
            None => d.size,
        };
        layers.push(LocalLayer {
            descriptor: d.clone(),
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
            snapshot,
            size,
        });
    }
    let size = layers.iter().map(|l| l.size).sum();
    Ok(LocalImage {
        manifest_descriptor: tagged.descriptor.clone(),
        manifest,
        config_digest,
        config,
        layers,
        repo_tags: vec![familiar(&tagged.name)],
        size,
    })
}

/// diff_id → snapshots whose layer record has that diff_id, built once per call.
struct SnapshotIndex {
    by_diff_id: BTreeMap<String, Vec<(SnapshotId, Option<SnapshotId>)>>,
}

impl SnapshotIndex {
    fn build(store: &Store) -> Result<SnapshotIndex, Error> {
        let mut by_diff_id: BTreeMap<String, Vec<(SnapshotId, Option<SnapshotId>)>> =
            BTreeMap::new();
        for info in store.list_snapshots()? {
            let mut seen = Vec::new();
            for record in store.layers(&info.id)? {
                let diff_id = record.diff_id.to_string();
                if !seen.contains(&diff_id) {
                    by_diff_id
                        .entry(diff_id.clone())
                        .or_default()
                        .push((info.id.clone(), info.parent.clone()));
                    seen.push(diff_id);
                }
            }
        }
        Ok(SnapshotIndex { by_diff_id })
    }

    /// The longest prefix of `config`'s layers present as a snapshot chain.
    fn chain(&self, store: &Store, config: &ImageConfig) -> Result<Vec<SnapshotId>, Error> {
        let diff_ids: Vec<Digest> = match config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.parse())
            .collect::<Result<_, _>>()
        {
            Ok(v) => v,
            Err(_) => return Ok(Vec::new()),
        };
        let chain_ids = chain_ids(&diff_ids);
        let mut out: Vec<SnapshotId> = Vec::new();
        for (i, diff_id) in diff_ids.iter().enumerate() {
            // Unpacked base layers are named by ChainID (architecture B4).
            let by_chain: Option<SnapshotId> = chain_ids[i].to_string().parse().ok();
            if let Some(id) = by_chain
                && let Some(info) = store.snapshot_info(&id)?
                && info.parent == out.last().cloned()
            {
                out.push(id);
                continue;
            }
            let candidates = self.by_diff_id.get(&diff_id.to_string());
            let mut found = None;
            for (id, parent) in candidates.into_iter().flatten() {
                if nearest_non_empty(store, parent.clone())? == out.last().cloned() {
                    found = Some(id.clone());
                    break;
                }
            }
            match found {
                Some(id) => out.push(id),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Walks up from `start` past snapshots whose diff is empty (they add no manifest layer).
fn nearest_non_empty(
    store: &Store,
    mut current: Option<SnapshotId>,
) -> Result<Option<SnapshotId>, Error> {
    while let Some(id) = current {
        let fs_dir = store.fs_path(&id);
        let empty = fs::read_dir(&fs_dir)
            .map_err(|source| Error::Walk {
                path: fs_dir.clone(),
                source,
            })?
            .next()
            .is_none();
        if !empty {
            return Ok(Some(id));
        }
        current = store.get(&id)?.parent;
    }
    Ok(None)
}
