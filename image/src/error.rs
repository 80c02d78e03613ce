//! The crate's error type.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

/// Why a layer could not be written. Every variant names the path it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The layer root is not a directory.
    #[error("layer root {path} is not a directory")]
    NotADirectory {
        /// The root that was given.
        path: PathBuf,
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
}
