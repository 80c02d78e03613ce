//! The crate's error type. Every variant carries the path, digest or ID it is about.

use std::fmt;
use std::io;
use std::path::PathBuf;

use dray_llb::Digest;

use crate::snapshots::SnapshotId;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("create directory", "rename blob into").
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// No `--root`, no `$DRAY_ROOT`, not root, and neither `$XDG_DATA_HOME` nor `$HOME` is set.
    #[error("cannot choose a state directory: pass --root or set DRAY_ROOT, XDG_DATA_HOME or HOME")]
    NoRoot,

    /// The root was written by a different layout version of dray.
    #[error(
        "the dray root {} has layout version {found}, but this dray uses version {expected}; \
         use a dray that matches, or another --root",
        path.display()
    )]
    LayoutVersion {
        /// The root directory.
        path: PathBuf,
        /// What `VERSION` says (verbatim, trimmed).
        found: String,
        /// [`crate::LAYOUT_VERSION`].
        expected: u32,
    },

    /// `metadata.db` has a different schema version (`PRAGMA user_version`).
    #[error(
        "the metadata index {} has schema version {found}, but this dray uses version {expected}",
        path.display()
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// What the database says.
        found: i64,
        /// [`crate::SCHEMA_VERSION`].
        expected: i64,
    },

    /// A non-blocking lock attempt found the store locked by another process or handle.
    #[error(
        "the dray root is in use ({} is locked by another dray process); \
         try again when it has finished",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// A blob's content did not hash to the digest it was written or stored under.
    #[error("digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// What the bytes hash to.
        found: Digest,
    },

    /// A blob had a different length than announced.
    #[error("size mismatch for {digest}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// The blob's (announced) digest.
        digest: Digest,
        /// The size the caller announced.
        expected: u64,
        /// The bytes actually written.
        found: u64,
    },

    /// A stored blob no longer hashes to its name (disk corruption or tampering).
    #[error("blob {digest} at {} is corrupt: its content hashes to {found}", path.display())]
    BlobCorrupt {
        /// The blob's name.
        digest: Digest,
        /// Where it is.
        path: PathBuf,
        /// What its content hashes to now.
        found: Digest,
    },

    /// The blob is not in the content store.
    #[error("blob {digest} is not in the content store")]
    BlobNotFound {
        /// The missing digest.
        digest: Digest,
    },

    /// The snapshot is not committed in this store (unknown, still active, or removed).
    #[error("snapshot {id} is not a committed snapshot of this store")]
    SnapshotNotFound {
        /// The snapshot ID.
        id: SnapshotId,
    },

    /// A snapshot with this ID exists already (committed, or being prepared).
    #[error("snapshot {id} already exists")]
    SnapshotExists {
        /// The snapshot ID.
        id: SnapshotId,
    },

    /// A snapshot cannot be removed because something still refers to it.
    #[error("snapshot {id} is still in use: {by}")]
    SnapshotInUse {
        /// The snapshot ID.
        id: SnapshotId,
        /// What refers to it.
        by: SnapshotUser,
    },

    /// A string is not a valid snapshot ID.
    #[error(
        "invalid snapshot id {id:?}: use 1-128 characters from [a-zA-Z0-9_.:-], not starting with '.'"
    )]
    InvalidSnapshotId {
        /// The rejected string.
        id: String,
    },

    /// A cache record's preimage is not valid JSON.
    #[error("the preimage for cache key {key} is not valid JSON")]
    InvalidPreimage {
        /// The cache key.
        key: Digest,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// An image cannot be tagged: its manifest blob is not in the content store.
    #[error("cannot tag {name}: manifest {digest} is not in the content store")]
    ManifestMissing {
        /// The name being tagged.
        name: String,
        /// The manifest digest.
        digest: Digest,
    },

    /// A JSON file of the layout (`index.json`, `oci-layout`) could not be read or written.
    #[error("{} is not a valid OCI layout file", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse or encode error.
        #[source]
        source: serde_json::Error,
    },

    /// No build record has this ID (or ID prefix).
    #[error("no build record {id:?} (see `dray builds ls`)")]
    BuildNotFound {
        /// The ID as given.
        id: String,
    },

    /// An ID prefix matches more than one build.
    #[error("build ID prefix {id:?} matches more than one build; give more characters")]
    AmbiguousBuild {
        /// The prefix.
        id: String,
    },

    /// An operation that deletes shared content was called without the exclusive lock.
    #[error("{action} needs the store's exclusive lock (Store::open_exclusive)")]
    NeedsExclusive {
        /// What was attempted.
        action: &'static str,
    },

    /// `<root>/dray.toml` (or an environment override) is invalid.
    #[error("{}: {problem}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A `snapshots` row names a kind this version does not know.
    #[error("snapshot {id} has an unknown kind {kind:?}")]
    UnknownSnapshotKind {
        /// The snapshot.
        id: SnapshotId,
        /// The stored kind.
        kind: String,
    },

    /// A database operation failed.
    #[error("metadata index: failed to {action}")]
    Database {
        /// What was being done ("save cache record", "open").
        action: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
}

/// What keeps a snapshot alive (see [`Error::SnapshotInUse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotUser {
    /// Another snapshot has it as parent.
    Child(SnapshotId),
    /// A cache record points at it.
    CacheKey(Digest),
    /// A live lease (a running build) holds it.
    Lease {
        /// The lease ID.
        lease: String,
        /// The process that holds it.
        pid: u32,
    },
}

impl fmt::Display for SnapshotUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotUser::Child(id) => write!(f, "snapshot {id} is built on it"),
            SnapshotUser::CacheKey(key) => write!(f, "cache record {key} points at it"),
            SnapshotUser::Lease { lease, pid } => {
                write!(f, "lease {lease} of running process {pid} holds it")
            }
        }
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn db(action: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Database { action, source }
    }
}
