//! Pulling: resolve a name to a platform manifest (storing the manifest, any index, and the
//! config in the content store), then fetch layer blobs into the store on demand.
//!
//! Every blob goes through the store's [`dray_cache::BlobWriter`]: hashed while written into
//! `ingest/`, checked against the descriptor's digest **and** size, then renamed into
//! `blobs/sha256/`. A tampered, truncated or oversized blob is never visible; a blob already in
//! the store is never downloaded again. An interrupted download resumes with a `Range` request
//! from the bytes already written (a registry answering `200` instead of `206` restarts it) —
//! within a run after a retry, and across runs: a download that failed because the registry
//! went away keeps its bytes in `ingest/<hex>.partial`
//! ([`dray_cache::ContentStore::resumable_writer`]), which the next pull continues. A download
//! that failed for a reason that is not transient (bad bytes, a wrong size) is discarded.

use std::io::Write;

use dray_cache::{Descriptor, Store};
use dray_llb::{Digest, ImageConfig, ImageRef, Platform};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::BlobResponse;
use oci_client::manifest::OciDescriptor;
use serde::Deserialize;

use crate::client::{Failure, Registry, by_digest, classify, oci_reference, with_retries};
use crate::error::Error;
use crate::platform::{self, IndexEntry};

/// `mediaType` of an OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `mediaType` of a Docker manifest list.
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// `mediaType` of an OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of a Docker schema 2 manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What the registry is asked for (`Accept`).
const ACCEPTED_MANIFESTS: &[&str] = &[
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_LIST,
];

/// Config media types dray can build on.
const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Layer media types dray can unpack (plain, gzip, zstd; foreign/non-distributable variants
/// are the same formats).
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// An image resolved for one platform: its manifest, index and config are in the store; its
/// layers may not be (see [`Registry::fetch_blobs`]).
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The name as asked for, normalized (`docker.io/library/alpine:latest`).
    pub reference: ImageRef,
    /// The platform manifest.
    pub manifest: Descriptor,
    /// The index or manifest list the name pointed at, if it did.
    pub index: Option<Descriptor>,
    /// The manifest's config descriptor.
    pub config_descriptor: Descriptor,
    /// The config.
    pub config: ImageConfig,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

impl ResolvedImage {
    /// The reference pinned to the platform manifest (`name:tag@sha256:…`).
    pub fn pinned(&self) -> ImageRef {
        self.reference.with_digest(self.manifest.digest)
    }
}

/// What [`Registry::fetch_blobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Blobs downloaded.
    pub downloaded: usize,
    /// Blobs already in the store (not downloaded).
    pub present: usize,
    /// Bytes downloaded.
    pub bytes: u64,
}

/// What [`Registry::pull`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The resolved image.
    pub image: ResolvedImage,
    /// The layer transfers.
    pub fetch: FetchReport,
    /// The digest the name resolved to in the registry (the index's when there is one):
    /// docker's `Digest:` line and `RepoDigests`.
    pub repo_digest: Digest,
    /// The local name it was tagged as (`None` for a digest-only reference).
    pub tagged: Option<ImageRef>,
}

#[derive(Deserialize)]
struct Sniff {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

impl Registry {
    /// Resolves `image` (a tag or a digest) for `platform` against its registry, and stores the
    /// manifest (and index) and the config blob in `store`. No layer is downloaded.
    pub async fn resolve(
        &self,
        store: &Store,
        image: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let host = image.domain();
        let client = self.client(host).await?;
        let oref = oci_reference(image)?;
        let auth = self
            .auth(host, &oref, oci_client::RegistryOperation::Pull)
            .await?;
        let name = image.to_string();

        let (bytes, digest) = self
            .get_manifest(&client, &auth, image, &oref, None)
            .await?;
        if let Some(pinned) = image.digest()
            && *pinned != digest
        {
            return Err(Error::DigestMismatch {
                image: name,
                expected: *pinned,
                found: digest,
            });
        }
        let sniff = parse_sniff(&name, &digest, "manifest", &bytes)?;
        let (index, manifest_bytes, manifest_desc, sniff) = if is_index(&sniff) {
            let media_type = sniff
                .media_type
                .clone()
                .unwrap_or_else(|| MEDIA_TYPE_OCI_INDEX.to_owned());
            let entries = sniff.manifests.unwrap_or_default();
            let entry =
                platform::pick(&entries, platform).ok_or_else(|| Error::NoMatchingPlatform {
                    image: name.clone(),
                    digest,
                    wanted: platform::show(platform),
                    available: platform::listing(&entries),
                })?;
            let entry_digest: Digest = entry.digest.parse().map_err(|e| Error::Malformed {
                image: name.clone(),
                what: "index",
                digest,
                detail: format!("bad digest {:?}: {e}", entry.digest),
            })?;
            store_bytes(store, &name, &bytes)?;
            let index_desc = Descriptor::new(media_type, digest, bytes.len() as u64);
            let (mbytes, mdigest) = self
                .get_manifest(&client, &auth, image, &oref, Some(entry_digest))
                .await?;
            if mdigest != entry_digest {
                return Err(Error::DigestMismatch {
                    image: name,
                    expected: entry_digest,
                    found: mdigest,
                });
            }
            if mbytes.len() as u64 != entry.size {
                return Err(Error::SizeMismatch {
                    image: name,
                    digest: entry_digest,
                    expected: entry.size,
                    found: mbytes.len() as u64,
                });
            }
            let msniff = parse_sniff(&name, &mdigest, "manifest", &mbytes)?;
            let mtype = if entry.media_type.is_empty() {
                msniff.media_type.clone().unwrap_or_default()
            } else {
                entry.media_type.clone()
            };
            let desc = Descriptor::new(mtype, mdigest, mbytes.len() as u64);
            (Some(index_desc), mbytes, desc, msniff)
        } else {
            let mtype = sniff.media_type.clone().unwrap_or_default();
            let len = bytes.len() as u64;
            (None, bytes, Descriptor::new(mtype, digest, len), sniff)
        };
        let mut manifest_desc = manifest_desc;
        if manifest_desc.media_type.is_empty()
            && let Some(config) = &sniff.config
        {
            // `mediaType` is optional in an OCI manifest (umoci leaves it out); the config's
            // media type tells the two manifest kinds apart.
            manifest_desc.media_type = if config.media_type == CONFIG_TYPES[1] {
                MEDIA_TYPE_DOCKER_MANIFEST
            } else {
                MEDIA_TYPE_OCI_MANIFEST
            }
            .to_owned();
        }
        let manifest_digest = manifest_desc.digest;
        let media_type = manifest_desc.media_type.clone();
        let (Some(config_desc), Some(layers)) = (sniff.config, sniff.layers) else {
            return Err(Error::UnsupportedMediaType {
                image: name,
                digest: manifest_digest,
                media_type: if media_type.is_empty() {
                    format!("schemaVersion {}", sniff.schema_version.unwrap_or(0))
                } else {
                    media_type
                },
            });
        };
        if !media_type.is_empty()
            && media_type != MEDIA_TYPE_OCI_MANIFEST
            && media_type != MEDIA_TYPE_DOCKER_MANIFEST
        {
            return Err(Error::UnsupportedMediaType {
                image: name,
                digest: manifest_digest,
                media_type,
            });
        }
        if !CONFIG_TYPES.contains(&config_desc.media_type.as_str()) {
            return Err(Error::UnsupportedMediaType {
                image: name,
                digest: config_desc.digest,
                media_type: config_desc.media_type,
            });
        }
        if let Some(bad) = layers
            .iter()
            .find(|l| !LAYER_TYPES.contains(&l.media_type.as_str()))
        {
            return Err(Error::UnsupportedMediaType {
                image: name,
                digest: bad.digest,
                media_type: bad.media_type.clone(),
            });
        }
        // The config first, then the manifest: a manifest in the store always has its config.
        self.fetch_blobs(store, image, std::slice::from_ref(&config_desc))
            .await?;
        let config_bytes =
            store
                .blobs()
                .read(&config_desc.digest)
                .map_err(|source| Error::Store {
                    image: name.clone(),
                    source,
                })?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| Error::Malformed {
                image: name.clone(),
                what: "config",
                digest: config_desc.digest,
                detail: e.to_string(),
            })?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::Malformed {
                image: name,
                what: "manifest",
                digest: manifest_digest,
                detail: format!(
                    "{} layers but the config lists {} diff_ids",
                    layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        store_bytes(store, &name, &manifest_bytes)?;
        Ok(ResolvedImage {
            reference: image.clone(),
            manifest: manifest_desc,
            index,
            config_descriptor: config_desc,
            config,
            layers,
        })
    }

    /// GETs a manifest (by the reference's tag or digest, or by `digest`), with retries.
    async fn get_manifest(
        &self,
        client: &oci_client::Client,
        auth: &oci_client::secrets::RegistryAuth,
        image: &ImageRef,
        oref: &oci_client::Reference,
        digest: Option<Digest>,
    ) -> Result<(Vec<u8>, Digest), Error> {
        let target = match digest {
            Some(d) => by_digest(oref, &d),
            None => oref.clone(),
        };
        let (bytes, _) = with_retries(|_| async {
            client
                .pull_manifest_raw(&target, auth, ACCEPTED_MANIFESTS)
                .await
                .map_err(|e| classify(e, image, digest))
        })
        .await?;
        let digest = Digest::of(&bytes);
        Ok((bytes.to_vec(), digest))
    }

    /// Downloads every blob of `blobs` that the store lacks, a few at a time, from `image`'s
    /// repository. Each is verified (digest and size) before it becomes visible.
    pub async fn fetch_blobs(
        &self,
        store: &Store,
        image: &ImageRef,
        blobs: &[Descriptor],
    ) -> Result<FetchReport, Error> {
        self.fetch_blobs_with_progress(store, image, blobs, &|_, _, _| {})
            .await
    }

    /// [`Registry::fetch_blobs`], calling `progress(blob, bytes so far, size)` when each download
    /// starts, at most every [`PROGRESS_INTERVAL`] while it runs, and when it completes.
    pub async fn fetch_blobs_with_progress(
        &self,
        store: &Store,
        image: &ImageRef,
        blobs: &[Descriptor],
        progress: ProgressFn<'_>,
    ) -> Result<FetchReport, Error> {
        let name = image.to_string();
        let mut missing = Vec::new();
        let mut report = FetchReport::default();
        for b in blobs {
            let present = store
                .blobs()
                .contains(&b.digest)
                .map_err(|source| Error::Store {
                    image: name.clone(),
                    source,
                })?;
            if present || missing.iter().any(|m: &&Descriptor| m.digest == b.digest) {
                report.present += 1;
            } else {
                missing.push(b);
            }
        }
        if missing.is_empty() {
            return Ok(report);
        }
        let host = image.domain();
        let client = self.client(host).await?;
        let oref = oci_reference(image)?;
        let auth = self
            .auth(host, &oref, oci_client::RegistryOperation::Pull)
            .await?;
        // Authenticate once up front so the concurrent downloads share the token.
        client
            .store_auth_if_needed(oref.resolve_registry(), &auth)
            .await;
        let limit = self.options().max_concurrent_downloads.max(1);
        let owned: Vec<Descriptor> = missing.into_iter().cloned().collect();
        let (client, oref) = (&*client, &oref);
        let sizes: Vec<u64> = futures_util::stream::iter(owned)
            .map(|desc| async move {
                let mut transfer = Transfer {
                    downloaded: 0,
                    report: progress,
                    last: None,
                };
                fetch_one(client, store, image, oref, &desc, &mut transfer).await
            })
            .buffer_unordered(limit)
            .try_collect()
            .await?;
        report.downloaded = sizes.len();
        report.bytes = sizes.iter().sum();
        Ok(report)
    }

    /// `dray pull`: resolve, fetch every layer (reporting bytes to `progress`, see
    /// [`Registry::fetch_blobs_with_progress`]), and tag the image under its name.
    pub async fn pull(
        &self,
        store: &Store,
        image: &ImageRef,
        platform: &Platform,
        progress: ProgressFn<'_>,
    ) -> Result<PullReport, Error> {
        let resolved = self.resolve(store, image, platform).await?;
        let fetch = self
            .fetch_blobs_with_progress(store, image, &resolved.layers, progress)
            .await?;
        let tagged = tag_name(image);
        if let Some(tag) = &tagged {
            dray_image::tag_descriptor(store, tag, &resolved.manifest).map_err(|source| {
                Error::LocalImage {
                    image: image.to_string(),
                    source,
                }
            })?;
        }
        let repo_digest = resolved
            .index
            .as_ref()
            .map_or(resolved.manifest.digest, |i| i.digest);
        Ok(PullReport {
            image: resolved,
            fetch,
            repo_digest,
            tagged,
        })
    }
}

/// The name a pulled image is tagged as locally: the reference without its digest, or `None`
/// when it has no tag (`name@sha256:…` alone).
pub fn tag_name(image: &ImageRef) -> Option<ImageRef> {
    let tag = image.tag()?;
    ImageRef::parse(&format!("{}:{tag}", image.name())).ok()
}

fn is_index(s: &Sniff) -> bool {
    match s.media_type.as_deref() {
        Some(MEDIA_TYPE_OCI_INDEX | MEDIA_TYPE_DOCKER_LIST) => true,
        Some(_) => false,
        None => s.manifests.is_some() && s.layers.is_none(),
    }
}

fn parse_sniff(
    name: &str,
    digest: &Digest,
    what: &'static str,
    bytes: &[u8],
) -> Result<Sniff, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
        image: name.to_owned(),
        what,
        digest: *digest,
        detail: e.to_string(),
    })
}

fn store_bytes(store: &Store, name: &str, bytes: &[u8]) -> Result<(), Error> {
    store
        .blobs()
        .put_bytes(bytes)
        .map(|_| ())
        .map_err(|source| Error::Store {
            image: name.to_owned(),
            source,
        })
}

/// One blob into the store; returns the bytes downloaded. Resumes after a transient failure.
/// How a caller hears of download progress: `(blob, bytes so far, size)`.
pub type ProgressFn<'a> = &'a (dyn Fn(&Digest, u64, u64) + Send + Sync);

/// The longest a download stays silent between two progress calls.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// One blob's download: the bytes this run moved, and its throttled progress reports.
struct Transfer<'a> {
    downloaded: u64,
    report: ProgressFn<'a>,
    last: Option<std::time::Instant>,
}

impl Transfer<'_> {
    /// Reports `current` of `desc`'s bytes if `force` or [`PROGRESS_INTERVAL`] has passed.
    fn tick(&mut self, desc: &Descriptor, current: u64, force: bool) {
        let now = std::time::Instant::now();
        if force || self.last.is_none_or(|l| now - l >= PROGRESS_INTERVAL) {
            (self.report)(&desc.digest, current, desc.size);
            self.last = Some(now);
        }
    }
}

async fn fetch_one(
    client: &oci_client::Client,
    store: &Store,
    image: &ImageRef,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    transfer: &mut Transfer<'_>,
) -> Result<u64, Error> {
    let mut resumed = false;
    match fetch_once(client, store, image, oref, desc, transfer, &mut resumed).await {
        // The bytes an earlier run kept were bad (a crash can leave garbage at the end of a
        // partial file); the failed commit deleted them, so one more try downloads it whole.
        Err(Error::DigestMismatch { .. }) if resumed => {
            fetch_once(client, store, image, oref, desc, transfer, &mut resumed).await
        }
        other => other,
    }
}

/// [`fetch_one`] without the second chance; sets `resumed` when it continued an earlier run's
/// partial download.
async fn fetch_once(
    client: &oci_client::Client,
    store: &Store,
    image: &ImageRef,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    transfer: &mut Transfer<'_>,
    resumed: &mut bool,
) -> Result<u64, Error> {
    let name = image.to_string();
    let store_err = |source| Error::Store {
        image: name.clone(),
        source,
    };
    let oci_desc = OciDescriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.to_string(),
        size: i64::try_from(desc.size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    };
    let mut writer = store
        .blobs()
        .resumable_writer(&desc.digest, desc.size)
        .map_err(store_err)?;
    *resumed = writer.written() > 0;
    transfer.tick(desc, writer.written(), true);
    let mut delay = crate::client::BACKOFF_START;
    let mut attempt = 0;
    // A partial that already holds every byte (a run killed between the last write and the
    // commit) needs no request: the commit verifies it.
    while writer.written() < desc.size {
        let tried =
            download_attempt(client, image, oref, desc, &oci_desc, &mut writer, transfer).await;
        match tried {
            Ok(()) => break,
            Err(Failure::Transient(_)) if attempt < crate::client::RETRIES => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            // The registry went away: keep the bytes for the next run to resume.
            Err(Failure::Transient(e)) => return Err(e),
            Err(Failure::Fatal(e)) => {
                writer.discard();
                return Err(e);
            }
        }
    }
    let written = writer.written();
    writer
        .commit(Some((desc.digest, desc.size)))
        .map_err(|e| match e {
            dray_cache::Error::DigestMismatch { expected, found } => Error::DigestMismatch {
                image: name.clone(),
                expected,
                found,
            },
            dray_cache::Error::SizeMismatch {
                digest,
                expected,
                found,
            } => Error::SizeMismatch {
                image: name.clone(),
                digest,
                expected,
                found,
            },
            source => Error::Store {
                image: name.clone(),
                source,
            },
        })?;
    transfer.tick(desc, written, true);
    Ok(transfer.downloaded)
}

/// One try at the rest of a blob: continues from what `writer` already holds.
async fn download_attempt(
    client: &oci_client::Client,
    image: &ImageRef,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    oci_desc: &OciDescriptor,
    writer: &mut dray_cache::BlobWriter,
    transfer: &mut Transfer<'_>,
) -> Result<(), Failure> {
    let digest = desc.digest;
    let offset = writer.written();
    let mut stream = if offset == 0 {
        client
            .pull_blob_stream(oref, oci_desc)
            .await
            .map_err(|e| classify(e, image, Some(digest)))?
    } else {
        match client
            .pull_blob_stream_partial(oref, oci_desc, offset, None)
            .await
            .map_err(|e| classify(e, image, Some(digest)))?
        {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(s) => {
                // The registry ignored the range: start the blob over.
                writer.restart().map_err(|source| {
                    Failure::Fatal(Error::Store {
                        image: image.to_string(),
                        source,
                    })
                })?;
                s
            }
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            // oci-client's own check at the end of the stream: the writer holds every byte, so
            // the commit reports the mismatch with both digests.
            Err(e) if is_verification_error(&e) => return Ok(()),
            Err(e) => {
                return Err(classify(
                    oci_client::errors::OciDistributionError::IoError(e),
                    image,
                    Some(digest),
                ));
            }
        };
        let total = writer.written() + chunk.len() as u64;
        if total > desc.size {
            // More bytes than the manifest says: stop reading a hostile stream now.
            return Err(Failure::Fatal(Error::SizeMismatch {
                image: image.to_string(),
                digest,
                expected: desc.size,
                found: total,
            }));
        }
        writer.write_all(&chunk).map_err(|e| {
            Failure::Fatal(Error::Store {
                image: image.to_string(),
                source: dray_cache::Error::Io {
                    action: "write",
                    path: writer.temp_path().to_path_buf(),
                    source: e,
                },
            })
        })?;
        transfer.downloaded += chunk.len() as u64;
        transfer.tick(desc, writer.written(), false);
    }
    if writer.written() < desc.size {
        // The body ended cleanly (its Content-Length said so) but short: the registry serves a
        // truncated blob. A cut connection is an error of the stream instead, retried above.
        return Err(Failure::Fatal(Error::SizeMismatch {
            image: image.to_string(),
            digest,
            expected: desc.size,
            found: writer.written(),
        }));
    }
    Ok(())
}

fn is_verification_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
}
