//! `force-compression=true`: every layer of an image in one compression, converting the ones
//! that are not (typically base-image layers, which assembly reuses verbatim). A layer is
//! decompressed, checked against its `diff_id`, and recompressed into a new blob, streaming;
//! the config is unchanged, so the image ID stays and only the manifest changes.
//!
//! The encoders are set up as the layer writer's are (gzip: mtime 0, no name, OS byte 255;
//! zstd: one thread, content checksum), so a converted layer is a pure function of the tar, the
//! codec and the level.

use std::io::{self, Read, Write};

use dray_cache::{Descriptor, Store};
use sha2::{Digest as _, Sha256};

use super::ExportError;
use crate::Digest;
use crate::layer::{Compression, MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD};
use crate::manifest::{MEDIA_TYPE_MANIFEST, canonical_json, read_config, read_manifest};

/// Docker's media types for the same layer encodings.
const DOCKER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_TAR_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Zstd,
    None,
}

fn codec_of(media_type: &str) -> Option<Codec> {
    match media_type {
        MEDIA_TYPE_TAR_GZIP | DOCKER_TAR_GZIP => Some(Codec::Gzip),
        MEDIA_TYPE_TAR_ZSTD | DOCKER_TAR_ZSTD => Some(Codec::Zstd),
        MEDIA_TYPE_TAR | DOCKER_TAR => Some(Codec::None),
        _ => None,
    }
}

/// The manifest of `image` with every layer in `compression`: layers already in it are kept,
/// the others converted. Returns `image` itself when nothing changes.
pub fn force_compression(
    store: &Store,
    image: &Descriptor,
    compression: Compression,
) -> Result<Descriptor, ExportError> {
    let mut manifest = read_manifest(store, &image.digest)?;
    let config = read_config(store, &manifest.config.digest)?;
    let target = match compression {
        Compression::Gzip { .. } => Codec::Gzip,
        Compression::Zstd { .. } => Codec::Zstd,
        Compression::Uncompressed => Codec::None,
    };
    let mut changed = false;
    for (i, layer) in manifest.layers.iter_mut().enumerate() {
        let codec = codec_of(&layer.media_type).ok_or_else(|| ExportError::UnknownLayerType {
            digest: layer.digest,
            media_type: layer.media_type.clone(),
        })?;
        if codec == target && layer.media_type == compression.media_type() {
            continue;
        }
        let diff_id = config.rootfs.diff_ids.get(i).cloned().unwrap_or_default();
        *layer = convert_layer(store, layer, codec, compression, &diff_id)?;
        changed = true;
    }
    if !changed {
        return Ok(image.clone());
    }
    let bytes = canonical_json("image manifest", &manifest)?;
    let blob = store.blobs().put_bytes(&bytes)?;
    Ok(Descriptor::new(MEDIA_TYPE_MANIFEST, blob.digest, blob.size))
}

fn convert_layer(
    store: &Store,
    layer: &Descriptor,
    from: Codec,
    to: Compression,
    diff_id: &str,
) -> Result<Descriptor, ExportError> {
    let file = store.blobs().open(&layer.digest)?;
    let blob_path = store.blobs().path(&layer.digest);
    let read_err = |source: io::Error| ExportError::Read {
        path: blob_path.clone(),
        source,
    };
    let decoder: Box<dyn Read> = match from {
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(file).map_err(read_err)?),
        Codec::None => Box::new(file),
    };
    let mut tar = HashingReader {
        inner: decoder,
        hasher: Sha256::new(),
    };
    let writer = store.blobs().writer()?;
    let temp = writer.temp_path().to_owned();
    let write_err = |source: io::Error| ExportError::Write {
        path: temp.clone(),
        source,
    };
    let writer = match to {
        Compression::Gzip { level } => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(writer, flate2::Compression::new(level.min(9)));
            io::copy(&mut tar, &mut enc).map_err(write_err)?;
            enc.finish().map_err(write_err)?
        }
        Compression::Zstd { level } => {
            let mut enc = zstd::stream::write::Encoder::new(writer, level).map_err(write_err)?;
            enc.include_checksum(true).map_err(write_err)?;
            io::copy(&mut tar, &mut enc).map_err(write_err)?;
            enc.finish().map_err(write_err)?
        }
        Compression::Uncompressed => {
            let mut w = writer;
            io::copy(&mut tar, &mut w).map_err(write_err)?;
            w
        }
    };
    let found = Digest::from_bytes(tar.hasher.finalize().into());
    if found.to_string() != diff_id {
        return Err(ExportError::DiffId {
            digest: layer.digest,
            expected: diff_id.to_owned(),
            found,
        });
    }
    let mut writer = writer;
    writer.flush().map_err(write_err)?;
    let blob = writer.commit(None)?;
    Ok(Descriptor::new(to.media_type(), blob.digest, blob.size))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
