//! The export module's error type.

use std::io;
use std::path::PathBuf;

use dray_llb::{Digest, ReferenceError};

/// Why an export or an import failed. Every variant names the path, archive member, digest or
/// image name it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading an image (manifest, config) or writing a layer failed.
    #[error(transparent)]
    Image(#[from] crate::Error),
    /// A store operation (blob, snapshot, tag) failed.
    #[error(transparent)]
    Store(#[from] dray_cache::Error),
    /// Reading the merged filesystem of the snapshot chain failed.
    #[error("cannot read {path} in the image's filesystem")]
    ReadTree {
        /// The path inside the image.
        path: PathBuf,
        /// Why (boxed: fsutil's error is large and this one is returned everywhere).
        #[source]
        source: Box<dray_fsutil::Error>,
    },
    /// Creating or writing an output file or directory entry failed.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading a blob, or a staged archive member, failed.
    #[error("cannot read {path}")]
    Read {
        /// The file being read.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing an archive member to the output stream failed.
    #[error("cannot write {member} to the archive")]
    Stream {
        /// The member being written.
        member: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file changed size while it was archived (a snapshot or blob being modified).
    #[error("{member} changed while it was archived: expected {expected} bytes, read {actual}")]
    Changed {
        /// The member.
        member: String,
        /// The size the header promised.
        expected: u64,
        /// What could be read.
        actual: u64,
    },
    /// A blob in the store no longer hashes to its name.
    #[error("blob {digest} in the store is corrupt: its content hashes to {found}")]
    CorruptBlob {
        /// The blob's name.
        digest: Digest,
        /// What its bytes hash to.
        found: Digest,
    },
    /// The output directory exists and is not a directory.
    #[error("{path} exists and is not a directory")]
    NotADirectory {
        /// The destination.
        path: PathBuf,
    },
    /// Reading the archive being loaded failed.
    #[error("cannot read the archive {archive}")]
    ReadArchive {
        /// The archive (a path, or `-` for stdin).
        archive: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A blob in the archive does not hash to its name.
    #[error("blob {path} in the archive has digest {found}, not {expected}")]
    BlobDigest {
        /// The member (`blobs/sha256/<hex>`).
        path: String,
        /// The digest its name promises.
        expected: Digest,
        /// What its bytes hash to.
        found: Digest,
    },
    /// A descriptor's size disagrees with the blob.
    #[error("blob {digest} is {found} bytes, but its descriptor says {expected}")]
    BlobSize {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// The blob's size.
        found: u64,
    },
    /// A blob that a manifest, index or `manifest.json` names is not in the archive.
    #[error("the archive has no {what} {name}")]
    Missing {
        /// `blob`, `file`.
        what: &'static str,
        /// The digest or path.
        name: String,
    },
    /// A JSON member of the archive could not be parsed.
    #[error("{member} in the archive is not valid JSON of the expected shape")]
    ArchiveJson {
        /// The member or blob.
        member: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The archive has neither `index.json` nor `manifest.json`.
    #[error("the archive has neither index.json (OCI) nor manifest.json (docker)")]
    UnknownArchive,
    /// A JSON member is larger than dray reads into memory.
    #[error("{member} is {size} bytes; JSON members over {limit} bytes are refused")]
    TooLarge {
        /// The member.
        member: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A name in the archive is not a valid image reference.
    #[error("the archive names an image {name:?}, which is not a valid reference")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: ReferenceError,
    },
    /// A layer's uncompressed content does not match its diff_id while recompressing.
    #[error("layer {digest} decompresses to {found}, not its diff_id {expected}")]
    DiffId {
        /// The layer blob.
        digest: Digest,
        /// The config's diff_id.
        expected: String,
        /// What the tar hashes to.
        found: Digest,
    },
    /// A layer's media type has no known compression.
    #[error("layer {digest} has media type {media_type}, which dray cannot recompress")]
    UnknownLayerType {
        /// The layer blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
}
