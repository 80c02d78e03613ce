//! OCI layers and images for dray.
//!
//! **What it is for.** Turning snapshots into OCI image content. For now that is:
//! - [`layer`]: the streaming layer writer. [`write_layer`] walks a snapshot directory (an
//!   overlayfs upper dir, or a plain directory of added files), writes a deterministic OCI layer
//!   tar, compresses it, and returns the `diff_id`, blob digest and size, measured in the same
//!   single pass. **Start here**; its module docs list the entry, order, time and xattr rules.
//! - [`config`]: image-configuration helpers, for now the layer ChainID.
//! - [`Digest`]: re-exported `dray_llb::Digest`, the one digest type of the workspace.
//!
//! Later (architecture B2): the applier (layer tar → snapshot), image config and manifest
//! assembly, the exporters, the local image store and registry pull/push.
//!
//! **What it is not for.** It does not decide *what* goes in a layer — the snapshot directory
//! already is the diff (architecture B4) — and it does not store blobs: it writes to any
//! [`std::io::Write`] and leaves hash-verify-rename to the content store.

#![deny(missing_docs)]

pub mod assemble;
pub mod config;
mod error;
pub mod images;
pub mod layer;
pub mod manifest;
pub mod time;

pub use assemble::{AssembleOptions, BaseImage, BuiltImage, LayerOutcome, assemble};
pub use dray_llb::{Digest, DigestError};
pub use error::Error;
pub use images::{
    HistoryRow, ImageSummary, LocalImage, LocalLayer, history_rows, inspect_json, layer_snapshots,
    list_images, load_image, resolve_local, tag_descriptor, tag_image, untag,
};
pub use layer::{Compression, DiffSource, LayerInfo, LayerOptions, write_layer};
pub use manifest::{MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest};
pub use time::{rfc3339, rfc3339_system};
