//! OCI layers and images for dray.
//!
//! **What it is for.** Turning snapshots into OCI image content. For now that is:
//! - [`layer`]: the streaming layer writer. [`write_layer`] walks a snapshot directory (an
//!   overlayfs upper dir, or a plain directory of added files), writes a deterministic OCI layer
//!   tar, compresses it, and returns the `diff_id`, blob digest and size, measured in the same
//!   single pass. **Start here**; its module docs list the entry, order, time and xattr rules.
//! - [`config`]: image-configuration helpers, for now the layer ChainID.
//! - [`Digest`]: a `sha256:<hex>` digest (a stand-in for `dray_llb::Digest`).
//!
//! Later (architecture B2): the applier (layer tar → snapshot), image config and manifest
//! assembly, the exporters, the local image store and registry pull/push.
//!
//! **What it is not for.** It does not decide *what* goes in a layer — the snapshot directory
//! already is the diff (architecture B4) — and it does not store blobs: it writes to any
//! [`std::io::Write`] and leaves hash-verify-rename to the content store.

#![deny(missing_docs)]

pub mod config;
mod digest;
mod error;
pub mod layer;

pub use digest::{Digest, ParseDigestError};
pub use error::Error;
pub use layer::{Compression, DiffSource, LayerInfo, LayerOptions, write_layer};
