//! `dray load`: an OCI or docker image archive → blobs in the content store → tags. Layers are
//! not unpacked (that happens when an image is used as a base).
//!
//! # What is checked before anything is published
//!
//! | check | error |
//! |---|---|
//! | every `blobs/sha256/<hex>` member hashes to `<hex>` (all of them, referenced or not) | [`ExportError::BlobDigest`], naming the member |
//! | every blob an index or manifest names (recursively) is in the archive, with the descriptor's size | [`ExportError::Missing`], [`ExportError::BlobSize`] |
//! | JSON members and manifests parse; each is at most 16 MiB | [`ExportError::ArchiveJson`], [`ExportError::TooLarge`] |
//! | every name is a valid reference | [`ExportError::BadName`] |
//!
//! Members are staged as closed temp files in a private directory under the store's `tmp/`
//! while the archive streams (so an archive of many members costs disk, not memory or file
//! descriptors); only when every check passed are the referenced blobs streamed through the
//! store's verifying blob writer and the names tagged. A failed load leaves the store as it
//! was.
//!
//! # Formats and names
//!
//! | archive | images | names |
//! |---|---|---|
//! | OCI layout (`index.json`), including dray's and BuildKit's `type=docker` | each `manifests` entry | `io.containerd.image.name`, else `org.opencontainers.image.ref.name` when it is a reference (contains `/` or `:`); a bare tag (`1.0`) names no repository, so that image loads untagged |
//! | docker (`manifest.json` only, `docker save` before 25) | each entry: `Config` and `Layers` by path; an OCI manifest is written for it, layer media types from the compression magic | `RepoTags` |
//!
//! Names are normalized as docker does (`app` → `docker.io/library/app:latest`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use dray_cache::{Descriptor, REF_NAME_ANNOTATION, Store};
use dray_llb::{Digest, ImageRef};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::ExportError;
use super::archive::IMAGE_NAME_ANNOTATION;
use crate::layer::{MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD};
use crate::manifest::{MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest, canonical_json};

/// The largest JSON member or blob that is parsed in memory.
const JSON_LIMIT: u64 = 16 << 20;

const INDEX_TYPES: [&str; 2] = [
    dray_cache::OCI_INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One image a load brought in.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedImage {
    /// The manifest (or index) descriptor, as tagged.
    pub manifest: Descriptor,
    /// The names it was tagged with (may be empty).
    pub names: Vec<ImageRef>,
}

/// A member staged in the load's temp directory.
struct Staged {
    file: PathBuf,
    digest: Digest,
    size: u64,
    /// The first bytes, for compression detection.
    head: Vec<u8>,
}

/// Everything read from the archive.
struct Members {
    /// Where members are staged (removed on drop).
    dir: tempfile::TempDir,
    /// Path (normalized) → staged file.
    files: BTreeMap<String, Staged>,
    /// Link path → the path it points to (normalized).
    links: BTreeMap<String, String>,
}

impl Members {
    fn resolve<'a>(&'a self, path: &str) -> Option<&'a Staged> {
        let mut path = normalize(Path::new(path))?;
        for _ in 0..40 {
            if let Some(s) = self.files.get(&path) {
                return Some(s);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }

    fn by_digest(&self, digest: &Digest) -> Option<&Staged> {
        self.files.get(&format!("blobs/sha256/{}", digest.hex()))
    }

    fn read_json(&self, path: &str) -> Result<Option<Vec<u8>>, ExportError> {
        match self.resolve(path) {
            None => Ok(None),
            Some(s) => read_staged(s, path).map(Some),
        }
    }
}

fn read_staged(s: &Staged, member: &str) -> Result<Vec<u8>, ExportError> {
    if s.size > JSON_LIMIT {
        return Err(ExportError::TooLarge {
            member: member.to_owned(),
            size: s.size,
            limit: JSON_LIMIT,
        });
    }
    fs::read(&s.file).map_err(|source| ExportError::Read {
        path: s.file.clone(),
        source,
    })
}

/// Loads the archive read from `input` (`archive` names it in errors) into `store` and tags
/// its images. See the module docs.
pub fn load_archive<R: Read>(
    store: &Store,
    input: R,
    archive: &str,
) -> Result<Vec<LoadedImage>, ExportError> {
    let members = stage(store, input, archive)?;
    let mut plan = if members.resolve("index.json").is_some() {
        plan_oci(&members)?
    } else if members.resolve("manifest.json").is_some() {
        plan_docker(&members)?
    } else {
        return Err(ExportError::UnknownArchive);
    };
    // Every check passed: publish the blobs, then the manifests written here, then the names.
    let Members { files, .. } = members;
    for (path, staged) in files {
        let wanted = plan.by_path.contains_key(&path)
            || (path.starts_with("blobs/sha256/") && plan.blobs.contains(&staged.digest));
        if wanted {
            let mut file = fs::File::open(&staged.file).map_err(|source| ExportError::Read {
                path: staged.file.clone(),
                source,
            })?;
            store
                .blobs()
                .put_reader(&mut file, Some((staged.digest, staged.size)))?;
        }
    }
    for bytes in &plan.new_manifests {
        store.blobs().put_bytes(bytes)?;
    }
    for image in &plan.images {
        for name in &image.names {
            crate::images::tag_descriptor(store, name, &image.manifest)?;
        }
    }
    Ok(std::mem::take(&mut plan.images))
}

trait ParseDigest {
    fn parse_digest(&self) -> Option<Digest>;
}

impl ParseDigest for str {
    fn parse_digest(&self) -> Option<Digest> {
        format!("sha256:{self}").parse().ok()
    }
}

/// Reads every member: files are staged (blob names checked), links recorded.
fn stage<R: Read>(store: &Store, input: R, archive: &str) -> Result<Members, ExportError> {
    let read_err = |source: io::Error| ExportError::ReadArchive {
        archive: archive.to_owned(),
        source,
    };
    let tmp = store.root().path().join("tmp");
    let staging = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(&tmp)
        .map_err(|source| ExportError::Write { path: tmp, source })?;
    let mut members = Members {
        files: BTreeMap::new(),
        links: BTreeMap::new(),
        dir: staging,
    };
    let mut count = 0u64;
    let mut tar = tar::Archive::new(input);
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let Some(path) = normalize(&raw) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let Some(target) = entry.link_name().map_err(read_err)? else {
                    continue;
                };
                let target = if entry.header().entry_type() == tar::EntryType::Symlink
                    && !target.has_root()
                {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target.into_owned()
                };
                if let Some(target) = normalize(&target) {
                    members.links.insert(path, target);
                }
                continue;
            }
            _ => continue,
        }
        count += 1;
        let staged_path = members.dir.path().join(count.to_string());
        let mut writer = io::BufWriter::with_capacity(
            256 * 1024,
            fs::File::create(&staged_path).map_err(|source| ExportError::Write {
                path: staged_path.clone(),
                source,
            })?,
        );
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            if head.len() < 8 {
                head.extend_from_slice(&buf[..n.min(8 - head.len())]);
            }
            hasher.update(&buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|source| ExportError::Write {
                    path: staged_path.clone(),
                    source,
                })?;
            size += n as u64;
        }
        // Closed here: only paths are kept, whatever the number of members.
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(|source| ExportError::Write {
                path: staged_path.clone(),
                source,
            })?;
        let digest = Digest::from_bytes(hasher.finalize().into());
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            // A member under blobs/sha256 must be what its name says, referenced or not.
            let expected = hex.parse_digest().ok_or_else(|| ExportError::Missing {
                what: "valid blob name for",
                name: path.clone(),
            })?;
            if expected != digest {
                return Err(ExportError::BlobDigest {
                    path,
                    expected,
                    found: digest,
                });
            }
        }
        members.links.remove(&path);
        members.files.insert(
            path,
            Staged {
                file: staged_path,
                digest,
                size,
                head,
            },
        );
    }
    Ok(members)
}

/// `./a/b` → `a/b`; `None` for a path with `..` or nothing left.
fn normalize(path: &Path) -> Option<String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    let s = out.to_str()?.to_owned();
    (!s.is_empty()).then_some(s)
}

/// What to publish.
#[derive(Default)]
struct Plan {
    /// Blobs under `blobs/sha256/` to commit.
    blobs: BTreeSet<Digest>,
    /// Other staged members to commit (docker archives), by path.
    by_path: BTreeMap<String, Digest>,
    /// Manifests written by the load (docker archives).
    new_manifests: Vec<Vec<u8>>,
    images: Vec<LoadedImage>,
}

#[derive(Deserialize)]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Refs {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], member: &str) -> Result<T, ExportError> {
    serde_json::from_slice(bytes).map_err(|source| ExportError::ArchiveJson {
        member: member.to_owned(),
        source,
    })
}

fn plan_oci(members: &Members) -> Result<Plan, ExportError> {
    let bytes = members.read_json("index.json")?.unwrap_or_default();
    let index: IndexDoc = parse(&bytes, "index.json")?;
    let mut plan = Plan::default();
    for d in index.manifests {
        collect(members, &d, &mut plan.blobs, 0)?;
        let names = oci_names(&d)?;
        let mut manifest = Descriptor::new(d.media_type.clone(), d.digest, d.size);
        manifest.extra = d.extra.clone();
        plan.images.push(LoadedImage { manifest, names });
    }
    Ok(plan)
}

/// Checks `d` and everything it references (recursively) are present with the right sizes.
fn collect(
    members: &Members,
    d: &Descriptor,
    blobs: &mut BTreeSet<Digest>,
    depth: usize,
) -> Result<(), ExportError> {
    let staged = members
        .by_digest(&d.digest)
        .ok_or_else(|| ExportError::Missing {
            what: "blob",
            name: d.digest.to_string(),
        })?;
    if staged.size != d.size {
        return Err(ExportError::BlobSize {
            digest: d.digest,
            expected: d.size,
            found: staged.size,
        });
    }
    if !blobs.insert(d.digest) {
        return Ok(());
    }
    let is_manifest = d.media_type == MEDIA_TYPE_MANIFEST
        || d.media_type == crate::manifest::MEDIA_TYPE_DOCKER_MANIFEST
        || INDEX_TYPES.contains(&d.media_type.as_str());
    if !is_manifest || depth > 8 {
        return Ok(());
    }
    let member = format!("blob {}", d.digest);
    let refs: Refs = parse(&read_staged(staged, &member)?, &member)?;
    for child in refs
        .config
        .iter()
        .chain(&refs.layers)
        .chain(&refs.manifests)
    {
        collect(members, child, blobs, depth + 1)?;
    }
    Ok(())
}

fn oci_names(d: &Descriptor) -> Result<Vec<ImageRef>, ExportError> {
    let name = match d.annotations.get(IMAGE_NAME_ANNOTATION) {
        Some(full) => full,
        None => match d.annotations.get(REF_NAME_ANNOTATION) {
            Some(r) if r.contains('/') || r.contains(':') => r,
            _ => return Ok(Vec::new()),
        },
    };
    Ok(vec![parse_name(name)?])
}

fn parse_name(name: &str) -> Result<ImageRef, ExportError> {
    ImageRef::parse(name).map_err(|source| ExportError::BadName {
        name: name.to_owned(),
        source,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn plan_docker(members: &Members) -> Result<Plan, ExportError> {
    let bytes = members.read_json("manifest.json")?.unwrap_or_default();
    let entries: Vec<DockerEntry> = parse(&bytes, "manifest.json")?;
    let mut plan = Plan::default();
    for entry in entries {
        let file = |path: &str| {
            members.resolve(path).ok_or_else(|| ExportError::Missing {
                what: "file",
                name: path.to_owned(),
            })
        };
        let config = file(&entry.config)?;
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let staged = file(layer)?;
            let media_type = match staged.head.as_slice() {
                [0x1f, 0x8b, ..] => MEDIA_TYPE_TAR_GZIP,
                [0x28, 0xb5, 0x2f, 0xfd, ..] => MEDIA_TYPE_TAR_ZSTD,
                _ => MEDIA_TYPE_TAR,
            };
            layers.push(Descriptor::new(media_type, staged.digest, staged.size));
            plan.by_path
                .insert(resolved_path(members, layer), staged.digest);
        }
        plan.by_path
            .insert(resolved_path(members, &entry.config), config.digest);
        let manifest = Manifest::new(
            Descriptor::new(MEDIA_TYPE_CONFIG, config.digest, config.size),
            layers,
        );
        let manifest_bytes = canonical_json("image manifest", &manifest)?;
        let descriptor = Descriptor::new(
            MEDIA_TYPE_MANIFEST,
            Digest::of(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        plan.new_manifests.push(manifest_bytes);
        let names = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        plan.images.push(LoadedImage {
            manifest: descriptor,
            names,
        });
    }
    Ok(plan)
}

/// The path of the file `path` finally resolves to (the staged member's own path).
fn resolved_path(members: &Members, path: &str) -> String {
    let mut path = normalize(Path::new(path)).unwrap_or_default();
    for _ in 0..40 {
        if members.files.contains_key(&path) {
            break;
        }
        match members.links.get(&path) {
            Some(next) => path = next.clone(),
            None => break,
        }
    }
    path
}
