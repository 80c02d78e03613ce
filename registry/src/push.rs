//! Pushing a local image: every blob first (skipped when the repository has it, mounted from
//! another repository of the same registry when a local tag says it came from there, otherwise
//! uploaded in chunks straight from the content store), the manifest last, as its exact stored
//! bytes so the pushed digest is the local one.

use std::io::Read;

use dray_cache::{Descriptor, Store};
use dray_image::LocalImage;
use dray_llb::{Digest, ImageRef};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;

use crate::client::{Failure, Registry, classify, oci_reference, with_retries};
use crate::error::Error;

/// Bytes per `PATCH` of a chunked upload.
const CHUNK: usize = 4 << 20;

/// What [`Registry::push_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where it went (`127.0.0.1:5000/app:1`, normalized).
    pub reference: ImageRef,
    /// The manifest digest in the registry (equal to the local manifest digest).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the repository already had.
    pub existing: usize,
    /// Blobs mounted from another repository of the same registry.
    pub mounted: usize,
    /// Bytes uploaded.
    pub bytes: u64,
}

enum BlobOutcome {
    Existing,
    Mounted,
    Uploaded(u64),
}

impl Registry {
    /// Pushes `local` (read with [`dray_image::load_image`]) to `target` (`REG/NAME:TAG`).
    pub async fn push_image(
        &self,
        store: &Store,
        local: &LocalImage,
        target: &ImageRef,
    ) -> Result<PushReport, Error> {
        let name = target.to_string();
        if target.digest().is_some() {
            return Err(Error::BadReference {
                reference: name,
                detail: "cannot push to a digest; name a tag".to_owned(),
            });
        }
        let host = target.domain();
        let client = self.client(host).await?;
        let oref = oci_reference(target)?;
        let auth = self.auth(host, &oref, RegistryOperation::Push).await?;
        with_retries(|_| async {
            client
                .auth(&oref, &auth, RegistryOperation::Push)
                .await
                .map_err(|e| classify(e, target, None))
        })
        .await?;

        let manifest_digest = local.manifest_descriptor.digest;
        let manifest_bytes =
            store
                .blobs()
                .read(&manifest_digest)
                .map_err(|source| Error::Store {
                    image: name.clone(),
                    source,
                })?;
        let mut blobs: Vec<&Descriptor> = vec![&local.manifest.config];
        for l in &local.manifest.layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l);
            }
        }
        let sources = mount_sources(store, target)?;
        let limit = self.options().max_concurrent_downloads.max(1);
        let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(blobs)
            .map(|desc| {
                let candidates: Vec<oci_client::Reference> = sources
                    .iter()
                    .filter(|(_, digests)| digests.contains(&desc.digest))
                    .filter_map(|(r, _)| oci_reference(r).ok())
                    .collect();
                push_blob(&client, store, target, &oref, desc, candidates)
            })
            .buffer_unordered(limit)
            .try_collect()
            .await?;

        let media_type = local
            .manifest_descriptor
            .media_type
            .parse::<http::HeaderValue>()
            .map_err(|e| Error::Registry {
                image: name.clone(),
                digest: Some(manifest_digest),
                detail: format!("bad media type: {e}"),
            })?;
        with_retries(|_| async {
            client
                .push_manifest_raw(&oref, manifest_bytes.clone(), media_type.clone())
                .await
                .map_err(|e| classify(e, target, Some(manifest_digest)))
        })
        .await?;

        let mut report = PushReport {
            reference: target.clone(),
            digest: manifest_digest,
            size: manifest_bytes.len() as u64,
            uploaded: 0,
            existing: 0,
            mounted: 0,
            bytes: 0,
        };
        for o in outcomes {
            match o {
                BlobOutcome::Existing => report.existing += 1,
                BlobOutcome::Mounted => report.mounted += 1,
                BlobOutcome::Uploaded(n) => {
                    report.uploaded += 1;
                    report.bytes += n;
                }
            }
        }
        Ok(report)
    }
}

/// Local tags in `target`'s registry but another repository, with the blobs their manifests
/// name: where a cross-repository mount may find a blob (an image pulled from there, or pushed).
fn mount_sources(store: &Store, target: &ImageRef) -> Result<Vec<(ImageRef, Vec<Digest>)>, Error> {
    let tags = store.list_images().map_err(|source| Error::Store {
        image: target.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for t in tags {
        let Ok(r) = ImageRef::parse(&t.name) else {
            continue;
        };
        if r.domain() != target.domain() || r.path() == target.path() {
            continue;
        }
        let Ok(m) = dray_image::manifest::read_manifest(store, &t.descriptor.digest) else {
            continue;
        };
        let digests = std::iter::once(m.config.digest)
            .chain(m.layers.iter().map(|l| l.digest))
            .collect();
        out.push((r, digests));
    }
    Ok(out)
}

async fn push_blob(
    client: &oci_client::Client,
    store: &Store,
    target: &ImageRef,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    mount_from: Vec<oci_client::Reference>,
) -> Result<BlobOutcome, Error> {
    let digest = desc.digest;
    let digest_text = digest.to_string();
    let exists = with_retries(|_| async {
        client
            .blob_exists(oref, &digest_text)
            .await
            .map_err(|e| classify(e, target, Some(digest)))
    })
    .await?;
    if exists {
        return Ok(BlobOutcome::Existing);
    }
    for source in &mount_from {
        if client.mount_blob(oref, source, &digest_text).await.is_ok() {
            return Ok(BlobOutcome::Mounted);
        }
    }
    let path = store.blobs().path(&digest);
    with_retries(|_| async {
        let file = std::fs::File::open(&path).map_err(|e| {
            Failure::Fatal(Error::Store {
                image: target.to_string(),
                source: dray_cache::Error::Io {
                    action: "open blob",
                    path: path.clone(),
                    source: e,
                },
            })
        })?;
        client
            .push_blob_stream(oref, file_chunks(file), &digest_text, Some(desc.size))
            .await
            .map_err(|e| classify(e, target, Some(digest)))
    })
    .await?;
    Ok(BlobOutcome::Uploaded(desc.size))
}

/// A file as a stream of [`CHUNK`]-sized pieces (read on demand: a layer is never held whole).
fn file_chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            let n = file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some((bytes::Bytes::from(buf), file)))
    })
}
