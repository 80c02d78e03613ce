//! Image archives: an OCI image layout as a tar (`type=oci`) or a directory
//! (`type=oci,tar=false`), and the docker variant (`type=docker`) that adds `manifest.json` and
//! `repositories` so `docker load` reads it. Blobs stream from the content store, hashed on the
//! way: a blob whose bytes no longer match its name fails the export instead of being shipped.
//!
//! # Archive layout (all members owned by 0:0, mtime 0, files 0o644, directories 0o755)
//!
//! | member | content |
//! |---|---|
//! | `blobs/`, `blobs/sha256/` | directories |
//! | `blobs/sha256/<hex>` | every manifest, config and layer blob, sorted by digest, each once |
//! | `index.json` | OCI image index: one manifest descriptor per (image, name), in the order given; an image without a name gets one entry without annotations |
//! | `manifest.json` | docker only: `[{"Config", "RepoTags", "Layers"}]`, one object per image, blob paths `blobs/sha256/<hex>` (docker 25's `docker save` layout) |
//! | `oci-layout` | `{"imageLayoutVersion":"1.0.0"}` |
//! | `repositories` | docker only: `{repo: {tag: <hex of the top layer blob>}}` (read by `docker load` only for legacy archives without `manifest.json`) |
//!
//! Members are in byte order of their names, which also puts directories before their contents.
//!
//! # Names (as containerd's archive exporter, and so BuildKit, writes them)
//!
//! Each `index.json` entry carries `io.containerd.image.name` = the full normalized name
//! (`docker.io/library/app:1`) and `org.opencontainers.image.ref.name` = its tag (`1`), the OCI
//! spec's meaning of a ref name. `manifest.json`'s `RepoTags` use docker's familiar form
//! (`app:1`). The local store's own `index.json` differs: there the ref name is the full name,
//! since one layout holds every repository.
//!
//! **Media types.** The docker variant writes docker media types, as BuildKit's docker exporter
//! does: its manifest is rewritten ([`docker`](mod@super::docker) has the table and the
//! exceptions), so its digest differs from the store's, while the config and layer blobs (and
//! so the image ID) are the store's bytes. The OCI variant writes the stored manifest as it is.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use dray_cache::{Descriptor, OCI_INDEX_MEDIA_TYPE, REF_NAME_ANNOTATION, Store};
use dray_llb::{Digest, ImageRef};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::docker::{self, ArchiveManifest};
use super::tarball::{CopyError, TarEntry, TarStream};
use super::{ExportError, write_atomically};

/// containerd's annotation for an image's full name in an archive's `index.json`.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// `oci-layout`'s content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// One image to put in an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveImage {
    /// Its manifest descriptor (an image manifest in the store).
    pub manifest: Descriptor,
    /// The names it is saved under (may be empty).
    pub names: Vec<ImageRef>,
}

/// Which archive to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout.
    Oci,
    /// An OCI image layout plus docker's `manifest.json` and `repositories`.
    Docker,
}

/// One blob of an archive.
enum Blob {
    /// Streamed from the content store; this many bytes.
    Stored { size: u64 },
    /// A manifest rewritten for the archive (docker media types), held in memory.
    Converted(Vec<u8>),
}

/// What goes in an archive, computed once from the images.
struct Plan {
    /// Every blob, sorted by digest.
    blobs: BTreeMap<Digest, Blob>,
    /// Small files at the top level: name → bytes.
    files: BTreeMap<&'static str, Vec<u8>>,
}

impl Plan {
    fn new(
        store: &Store,
        images: &[ArchiveImage],
        format: ArchiveFormat,
    ) -> Result<Plan, ExportError> {
        let mut blobs = BTreeMap::new();
        let mut index_entries = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in images {
            let ArchiveManifest {
                descriptor: plain,
                manifest,
                converted,
            } = match format {
                ArchiveFormat::Oci => docker::as_stored(store, &image.manifest)?,
                ArchiveFormat::Docker => docker::with_docker_media_types(store, &image.manifest)?,
            };
            let blob = match converted {
                Some(bytes) => Blob::Converted(bytes),
                None => Blob::Stored { size: plain.size },
            };
            blobs.insert(plain.digest, blob);
            for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
                blobs.insert(d.digest, Blob::Stored { size: d.size });
            }
            if image.names.is_empty() {
                index_entries.push(plain.clone());
            }
            for name in &image.names {
                let mut d = plain.clone();
                d.annotations
                    .insert(IMAGE_NAME_ANNOTATION.to_owned(), name.to_string());
                if let Some(tag) = name.tag() {
                    d.annotations
                        .insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
                }
                index_entries.push(d);
            }
            if format == ArchiveFormat::Docker {
                let repo_tags: Vec<String> = image.names.iter().map(ImageRef::familiar).collect();
                docker_manifest.push(json!({
                    "Config": blob_member(&manifest.config.digest),
                    "RepoTags": repo_tags,
                    "Layers": manifest.layers.iter().map(|l| blob_member(&l.digest)).collect::<Vec<_>>(),
                }));
                if let Some(top) = manifest.layers.last() {
                    for name in &image.names {
                        let familiar = name.familiar();
                        let repo = familiar.split('@').next().unwrap_or_default();
                        let repo = match name.tag() {
                            Some(tag) => repo.strip_suffix(&format!(":{tag}")).unwrap_or(repo),
                            None => continue,
                        };
                        repositories.entry(repo.to_owned()).or_default().insert(
                            name.tag().unwrap_or_default().to_owned(),
                            top.digest.hex().to_owned(),
                        );
                    }
                }
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_MEDIA_TYPE,
            "manifests": index_entries,
        });
        let mut files = BTreeMap::new();
        files.insert("index.json", to_json(&index)?);
        files.insert("oci-layout", OCI_LAYOUT.to_vec());
        if format == ArchiveFormat::Docker {
            files.insert("manifest.json", to_json(&Value::Array(docker_manifest))?);
            files.insert("repositories", to_json(&json!(repositories))?);
        }
        Ok(Plan { blobs, files })
    }
}

fn to_json(v: &Value) -> Result<Vec<u8>, ExportError> {
    serde_json::to_vec(v).map_err(|source| {
        ExportError::Image(crate::Error::Serialize {
            what: "archive index",
            source,
        })
    })
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Writes `images` as an archive to `out` (see the module docs for the layout) and returns
/// `out`. Nothing is held in memory but the JSON members; each blob streams from the store.
pub fn write_archive<W: Write>(
    store: &Store,
    images: &[ArchiveImage],
    format: ArchiveFormat,
    out: W,
) -> Result<W, ExportError> {
    let plan = Plan::new(store, images, format)?;
    let mut tar = TarStream::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        append(&mut tar, &TarEntry::archive_member(dir, 0), None)?;
    }
    for (digest, blob) in &plan.blobs {
        let member = blob_member(digest);
        match blob {
            Blob::Stored { size } => {
                let mut reader = VerifyingReader::new(store.blobs().open(digest)?);
                append(
                    &mut tar,
                    &TarEntry::archive_member(&member, *size),
                    Some(&mut reader),
                )?;
                reader.check(digest)?;
            }
            Blob::Converted(bytes) => append(
                &mut tar,
                &TarEntry::archive_member(&member, bytes.len() as u64),
                Some(&mut &bytes[..]),
            )?,
        }
    }
    for (name, bytes) in &plan.files {
        append(
            &mut tar,
            &TarEntry::archive_member(name, bytes.len() as u64),
            Some(&mut &bytes[..]),
        )?;
    }
    tar.finish().map_err(|source| ExportError::Stream {
        member: "the end of the archive".to_owned(),
        source,
    })
}

/// Writes `images` as an OCI image layout into the directory `dir` (created if missing). Blobs
/// already there are replaced; `index.json` is replaced and lists only `images`. Every file is
/// written to a temp file and renamed, so a failed export never leaves a torn file.
pub fn write_layout_dir(
    store: &Store,
    images: &[ArchiveImage],
    dir: &Path,
) -> Result<(), ExportError> {
    let plan = Plan::new(store, images, ArchiveFormat::Oci)?;
    let blobs_dir = dir.join("blobs/sha256");
    if dir.exists() && !dir.is_dir() {
        return Err(ExportError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    fs::create_dir_all(&blobs_dir).map_err(|source| ExportError::Write {
        path: blobs_dir.clone(),
        source,
    })?;
    for (digest, blob) in &plan.blobs {
        let target = blobs_dir.join(digest.hex());
        let size = match blob {
            Blob::Stored { size } => size,
            Blob::Converted(bytes) => {
                write_atomically(&target, |out| {
                    out.write_all(bytes).map_err(|source| ExportError::Write {
                        path: target.clone(),
                        source,
                    })
                })?;
                continue;
            }
        };
        write_atomically(&target, |out| {
            let mut reader = VerifyingReader::new(store.blobs().open(digest)?);
            let copied = io::copy(&mut reader, out).map_err(|source| ExportError::Write {
                path: target.clone(),
                source,
            })?;
            if copied != *size {
                return Err(ExportError::Changed {
                    member: blob_member(digest),
                    expected: *size,
                    actual: copied,
                });
            }
            reader.check(digest)
        })?;
    }
    // index.json last: it is what makes the blobs reachable.
    for (name, bytes) in plan.files.iter().rev() {
        let target = dir.join(name);
        write_atomically(&target, |out| {
            out.write_all(bytes).map_err(|source| ExportError::Write {
                path: target.clone(),
                source,
            })
        })?;
    }
    Ok(())
}

fn append<W: Write>(
    tar: &mut TarStream<W>,
    entry: &TarEntry,
    data: Option<&mut dyn Read>,
) -> Result<(), ExportError> {
    let member = || String::from_utf8_lossy(&entry.name).into_owned();
    tar.append(entry, data).map_err(|e| match e {
        CopyError::Length { expected, actual } => ExportError::Changed {
            member: member(),
            expected,
            actual,
        },
        CopyError::Read(source) | CopyError::Write(source) => ExportError::Stream {
            member: member(),
            source,
        },
    })
}

/// Hashes what is read through it, so a blob is checked against its name as it streams.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Fails with [`ExportError::CorruptBlob`] unless the bytes read hash to `digest`.
    pub(crate) fn check(self, digest: &Digest) -> Result<(), ExportError> {
        let found = Digest::from_bytes(self.hasher.finalize().into());
        if found == *digest {
            Ok(())
        } else {
            Err(ExportError::CorruptBlob {
                digest: *digest,
                found,
            })
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
