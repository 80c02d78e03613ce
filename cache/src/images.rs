//! Tagged images: the root's `index.json`, an OCI image-layout index.
//!
//! Each tag is one entry of `manifests` whose `org.opencontainers.image.ref.name` annotation is
//! the name, in docker's normalized form (`docker.io/library/alpine:3.20`; the caller
//! normalizes). A name maps to one manifest: tagging an existing name replaces its entry. Entries
//! without the annotation and unknown fields are kept as they are, so other OCI tools may share
//! the file.
//!
//! Updates are read-modify-write. They are serialized across processes by an exclusive `flock`
//! on `index.lock` (the store lock is only shared while building), and published by writing a
//! temp file in `tmp/`, `fsync`, `rename` over `index.json`, `fsync` of the root: readers see the
//! old or the new index, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;

use dray_llb::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::blobs::sync_dir;
use crate::error::{Error, Result};
use crate::lock::{FileLock, LockMode};
use crate::store::Store;

/// The annotation that names an image in an OCI layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// `mediaType` of an OCI image index.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI content descriptor (image-spec `descriptor.md`), as stored in `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The media type of the referenced blob, e.g. `application/vnd.oci.image.manifest.v1+json`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Annotations; the ref name lives here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Other descriptor fields (`platform`, `artifactType`, `urls`, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor with no annotations or extra fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// A tagged image: a name and its manifest descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedImage {
    /// The normalized name.
    pub name: String,
    /// The manifest (or index) descriptor, including the ref-name annotation.
    pub descriptor: Descriptor,
}

#[derive(Debug, Serialize, Deserialize)]
struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Store {
    /// Points `name` at `manifest`, replacing any earlier manifest of that name.
    ///
    /// The manifest blob, and the blobs it references directly (`config` and `layers` of an
    /// image manifest, `manifests` of an index), must already be in the content store
    /// ([`Error::ManifestMissing`], [`Error::BlobNotFound`]): a tag never names missing content.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<()> {
        self.check_complete(name, &manifest.digest)?;
        let mut entry = manifest.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
        self.update_index(|index| {
            // Already tagged so (a no-op rebuild): leave index.json alone, saving its rewrite
            // and two fsyncs.
            let mut tagged = index
                .manifests
                .iter()
                .filter(|d| d.ref_name() == Some(name));
            if tagged.next() == Some(&entry) && tagged.next().is_none() {
                return false;
            }
            // Keep the entry where the old one was, so re-tagging does not reorder the file.
            let pos = index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(name));
            index.manifests.retain(|d| d.ref_name() != Some(name));
            let pos = pos.unwrap_or(index.manifests.len());
            index.manifests.insert(pos, entry);
            true
        })
        .map(|_| ())
    }

    /// Removes the tag `name`; `Ok(false)` if there was none. The blobs stay until prune.
    pub fn untag(&self, name: &str) -> Result<bool> {
        self.update_index(|index| {
            let before = index.manifests.len();
            index.manifests.retain(|d| d.ref_name() != Some(name));
            index.manifests.len() != before
        })
    }

    /// The tagged images, in `index.json` order.
    pub fn list_images(&self) -> Result<Vec<TaggedImage>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|d| {
                let name = d.ref_name()?.to_owned();
                Some(TaggedImage {
                    name,
                    descriptor: d,
                })
            })
            .collect())
    }

    /// The manifest descriptor tagged `name`, if any.
    pub fn image(&self, name: &str) -> Result<Option<Descriptor>> {
        Ok(self
            .list_images()?
            .into_iter()
            .find(|i| i.name == name)
            .map(|i| i.descriptor))
    }

    fn read_index(&self) -> Result<ImageIndex> {
        let path = self.root().index_json();
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { path, source })
    }

    /// Applies `change` under `index.lock`; writes the file only if `change` returns true.
    fn update_index(&self, change: impl FnOnce(&mut ImageIndex) -> bool) -> Result<bool> {
        let root = self.root();
        let _guard = FileLock::acquire(&root.index_lock_file(), LockMode::Exclusive, true)?;
        let mut index = self.read_index()?;
        if !change(&mut index) {
            return Ok(false);
        }
        let path = root.index_json();
        let bytes = serde_json::to_vec_pretty(&index).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        let tmp_dir = root.tmp_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix("index.json.")
            .tempfile_in(&tmp_dir)
            .map_err(Error::io("create temp file in", &tmp_dir))?;
        tmp.write_all(&bytes)
            .map_err(Error::io("write", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(Error::io("fsync", tmp.path()))?;
        tmp.persist(&path).map_err(|e| Error::Io {
            action: "replace",
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(root.path())?;
        Ok(true)
    }

    fn check_complete(&self, name: &str, manifest: &Digest) -> Result<()> {
        let bytes = match self.blobs().read(manifest) {
            Ok(b) => b,
            Err(Error::BlobNotFound { .. }) => {
                return Err(Error::ManifestMissing {
                    name: name.to_owned(),
                    digest: *manifest,
                });
            }
            Err(e) => return Err(e),
        };
        // Only the fields we check are parsed; anything else (or a non-JSON artifact) is the
        // image crate's business.
        #[derive(Deserialize)]
        struct Refs {
            config: Option<Ref>,
            #[serde(default)]
            layers: Vec<Ref>,
            #[serde(default)]
            manifests: Vec<Ref>,
        }
        #[derive(Deserialize)]
        struct Ref {
            digest: Digest,
        }
        let Ok(refs) = serde_json::from_slice::<Refs>(&bytes) else {
            return Ok(());
        };
        for r in refs
            .config
            .iter()
            .chain(&refs.layers)
            .chain(&refs.manifests)
        {
            if !self.blobs().contains(&r.digest)? {
                return Err(Error::BlobNotFound { digest: r.digest });
            }
        }
        Ok(())
    }
}
