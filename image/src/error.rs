//! The crate's error type.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use dray_cache::SnapshotId;
use dray_llb::Digest;

/// Why a layer, an image or an image-store operation failed. Every variant names the path,
/// snapshot, digest or image name it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The layer root is not a directory.
    #[error("layer root {path} is not a directory")]
    NotADirectory {
        /// The root that was given.
        path: PathBuf,
    },
    /// A layer was asked of a snapshot directory holding a deferred directory (its contents
    /// only in the layer blob) without a way to replay it: the snapshot must be materialized.
    #[error(
        "{path}: directory contents are deferred to the layer blob; the snapshot is not materialized"
    )]
    NotMaterialized {
        /// The deferred directory on the host.
        path: PathBuf,
    },
    /// Producing the entries of a deferred directory from its copy's source failed.
    #[error("cannot write the deferred contents of {path}")]
    Replay {
        /// The deferred directory on the host.
        path: PathBuf,
        /// What the replay reported.
        #[source]
        source: Box<dray_fsutil::Error>,
    },
    /// Listing a directory or reading an entry's metadata failed.
    #[error("cannot walk {path}")]
    Walk {
        /// The directory or entry.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Opening or reading a file, or reading a symlink target, failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Listing or reading extended attributes failed.
    #[error("cannot read extended attributes of {path}")]
    Xattr {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file was replaced, or shrank, while it was being archived. Layers are written from
    /// committed snapshots, so this means something else is writing to one.
    #[error("{path} changed while it was archived: expected {expected} bytes, read {actual}")]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// The size recorded in the tar header.
        expected: u64,
        /// The bytes that could be read.
        actual: u64,
    },
    /// The overlay upper dir uses a feature whose diff is not self-contained. dray mounts
    /// overlays with `redirect_dir=off,metacopy=off`, so seeing one means the snapshot was made
    /// by another tool or with other options.
    #[error(
        "{path}: overlayfs attribute {attr:?} is not supported \
         (mount with redirect_dir=off,metacopy=off)"
    )]
    UnsupportedOverlay {
        /// The file or directory carrying the attribute.
        path: PathBuf,
        /// The attribute name, with its value when the value is what is unsupported.
        attr: OsString,
    },
    /// Writing the tar stream to the compressor or the output failed.
    #[error("cannot write layer (while writing {entry})")]
    Write {
        /// The file whose entry was being written.
        entry: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Starting the compressor, ending the archive, or flushing the compressor or the output
    /// failed.
    #[error("cannot start or finish the layer of {root}")]
    Finish {
        /// The layer root.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The compression level is out of range for its codec.
    #[error("{codec} compression level {level} is out of range {min}..={max}")]
    CompressionLevel {
        /// `gzip` or `zstd`.
        codec: &'static str,
        /// The level that was asked for.
        level: i32,
        /// The lowest allowed level.
        min: i32,
        /// The highest allowed level.
        max: i32,
    },
    /// Reading or decompressing a layer's tar stream failed (a truncated or corrupt blob, or a
    /// tar header that does not parse).
    #[error("cannot read layer {layer}")]
    LayerRead {
        /// The layer (its digest or file).
        layer: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing an entry of a layer into the target directory failed, or the entry was refused;
    /// the filesystem error names the entry or the path.
    #[error("cannot apply layer {layer}")]
    Apply {
        /// The layer (its digest or file).
        layer: String,
        /// What failed (boxed: it is large, and errors are the rare path).
        #[source]
        source: Box<dray_fsutil::Error>,
    },
    /// A whiteout entry that names no entry it could hide (`.wh.`, `.wh..`, `.wh...`).
    #[error("layer {layer}: invalid whiteout entry {}", entry.display())]
    InvalidWhiteout {
        /// The layer.
        layer: String,
        /// The entry's name as stored in the layer.
        entry: PathBuf,
    },
    /// A layer's uncompressed content does not hash to the diff_id the image config lists
    /// for it: the blob is not the layer the image was made of.
    #[error(
        "layer {layer}: diff_id mismatch: the image config lists {expected}, the layer hashes to {found}"
    )]
    DiffIdMismatch {
        /// The layer.
        layer: String,
        /// The diff_id from the image config.
        expected: Digest,
        /// The sha256 of the uncompressed tar stream.
        found: Digest,
    },
    /// An OCI image layout directory could not be read, or holds no such image.
    #[error("OCI layout {}: {problem}", path.display())]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file of an OCI image layout could not be read.
    #[error("cannot read {}", path.display())]
    LayoutRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A store operation (blob, snapshot, layer record, tag) failed; the store error names the
    /// digest, snapshot or path.
    #[error(transparent)]
    Store(#[from] dray_cache::Error),
    /// Exporting one snapshot of the chain as a layer failed.
    #[error("cannot export snapshot {snapshot} as a layer")]
    ExportLayer {
        /// The snapshot being exported.
        snapshot: SnapshotId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A blob that should hold a manifest or a config is not valid JSON of that kind.
    #[error("blob {digest} is not a valid {what}")]
    BadJson {
        /// `image manifest` or `image config`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest or config could not be serialized (only possible with non-string map keys,
    /// which the types do not have; kept so that no path panics).
    #[error("cannot serialize the {what}")]
    Serialize {
        /// `image manifest` or `image config`.
        what: &'static str,
        /// The serializer error.
        #[source]
        source: serde_json::Error,
    },
    /// The head chain has fewer snapshots than the base image has layers.
    #[error("the snapshot chain has {chain} snapshots but the base image has {base} layers")]
    ChainShorterThanBase {
        /// Snapshots in the head chain.
        chain: usize,
        /// Layers in the base image.
        base: usize,
    },
    /// The base image's config lists another number of diff_ids than its manifest has layers.
    #[error("base image has {layers} layers but its config lists {diff_ids} diff_ids")]
    BaseLayerCount {
        /// Layers in the base manifest.
        layers: usize,
        /// `rootfs.diff_ids` in the base config.
        diff_ids: usize,
    },
    /// No tag and no image ID matches the name.
    #[error("no such image: {name}")]
    ImageNotFound {
        /// The name as given.
        name: String,
    },
    /// An image-ID prefix matches several images.
    #[error("image ID prefix {prefix} is ambiguous: it matches {}", matches.join(", "))]
    AmbiguousImageId {
        /// The prefix as given.
        prefix: String,
        /// The matching image IDs.
        matches: Vec<String>,
    },
    /// The tag names a manifest of a kind this crate does not read (an index, an artifact).
    #[error("{name} points to {digest} of media type {media_type}, not an image manifest")]
    NotAnImageManifest {
        /// The tag.
        name: String,
        /// The manifest digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A tag was asked for with a digest reference (`name@sha256:…`), which cannot be a tag.
    #[error("cannot tag {name}: a tag cannot contain a digest")]
    TagWithDigest {
        /// The reference.
        name: String,
    },
    /// An image ID that several tags point at was to be removed without `force` (docker:
    /// "image is referenced in multiple repositories").
    #[error("image {id} is referenced by several tags ({}); remove them by name or force", names.join(", "))]
    MultipleTags {
        /// The image ID.
        id: String,
        /// The tags (familiar form).
        names: Vec<String>,
    },
}
