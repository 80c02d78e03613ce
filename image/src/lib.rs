//! OCI layers and images for dray.
//!
//! **What it is for.** Turning snapshots into OCI image content and managing the local image
//! store:
//! - [`layer`]: the streaming layer writer. [`write_layer`] walks a snapshot directory (an
//!   overlayfs upper dir, or a plain directory of added files), writes a deterministic OCI layer
//!   tar, compresses it, and returns the `diff_id`, blob digest and size, measured in the same
//!   single pass. Its module docs list the entry, order, time and xattr rules.
//! - [`mod@assemble`]: a snapshot chain + base image + config → layer blobs (memoized in the layer
//!   records), config and OCI manifest in the content store. **Start here** for the build
//!   path; its module docs table the BuildKit behaviours it follows (empty diffs, history,
//!   `SOURCE_DATE_EPOCH`).
//! - [`images`]: what `dray images`, `inspect`, `history`, `tag` and `rmi` call, plus
//!   [`resolve_local`] (the converter's `FROM` of a dray-built image) and [`layer_snapshots`]
//!   (the solver's layer → snapshot mapping).
//! - [`manifest`]: the manifest type, media types, reading manifests and configs back.
//! - [`export`]: the exporters (`--output` types, `dray save`) and the archive importer
//!   (`dray load`).
//! - [`config`]: layer ChainIDs; [`time`]: RFC 3339 timestamps as Go writes them.
//! - [`Digest`]: re-exported `dray_llb::Digest`, the one digest type of the workspace.
//!
//! - [`apply`]: the safe layer applier — an OCI layer tar (hostile input) into a snapshot
//!   directory in overlay form or onto a merged root, measuring its `diff_id`;
//!   [`apply::unpack_layer`] unpacks a base layer into the snapshot named by its ChainID.
//! - [`lazy`]: filling in a lazy snapshot (one whose `COPY` deferred its directories to the
//!   layer blob) when a step needs its files; [`layer::write_layer_replaying`] is how such a
//!   layer is written straight from the copy's source.
//! - [`layout`]: images in OCI image layout directories (`FROM oci-layout://…`, named
//!   contexts): resolving a tag or digest, importing blobs into the store.
//!
//! - [`export`]: the exporters — OCI and docker archives, OCI layout directories, the final
//!   filesystem as a directory or a tar — and `dray load`'s verifying import. Registry pull
//!   and push live in the `dray-registry` crate, which keeps the HTTP stack out of this one.
//!
//! **What it is not for.** It does not decide *what* goes in a layer — the snapshot directory
//! already is the diff (architecture B4) — and it does not own storage: blobs, snapshots,
//! layer records and tags are `dray_cache::Store`'s, which verifies every blob before it
//! becomes visible.

#![deny(missing_docs)]

pub mod apply;
pub mod assemble;
pub mod config;
mod error;
pub mod export;
pub mod images;
pub mod layer;
pub mod layout;
pub mod lazy;
pub mod manifest;
pub mod time;

pub use assemble::{AssembleOptions, BaseImage, BuiltImage, LayerOutcome, assemble};
pub use dray_cache::Descriptor;
pub use dray_llb::{Digest, DigestError};
pub use error::Error;
pub use images::{
    HistoryRow, ImageSummary, LocalImage, LocalLayer, history_rows, inspect_json, layer_snapshots,
    list_images, load_image, resolve_local, tag_descriptor, tag_image, untag,
};
pub use layer::{Compression, DiffSource, LayerInfo, LayerOptions, write_layer};
pub use manifest::{MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest};
pub use time::{parse_rfc3339, rfc3339, rfc3339_system};
