//! The error type of the tree, file-op and content-hash modules.
//!
//! Every variant names the path it is about. Paths inside a tree or a layer are shown as
//! absolute paths of that filesystem (`/etc/passwd`), never as host paths, so that messages
//! read as Docker's do; host paths (a layer directory that cannot be opened) are shown as is.

use std::io;
use std::path::PathBuf;

/// An error from [`tree`](crate::tree), [`fileop`](crate::fileop) or
/// [`contenthash`](crate::contenthash).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`stat`, `open`, `create`, …).
        op: &'static str,
        /// The path, inside its tree (`/a/b`) or on the host.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A lookup reached a directory whose contents are only in its snapshot's layer blob
    /// (see [`DEFERRED_XATTR`](crate::tree::DEFERRED_XATTR)): the snapshot must be
    /// materialized first. Callers that defer copies treat this as "redo without deferring".
    #[error("{}: the contents of this directory are not materialized yet", path.display())]
    Deferred {
        /// The directory, inside its tree.
        path: PathBuf,
    },
    /// A path that must exist does not (`COPY missing /`, `RUN rm` without `allow_not_found`).
    #[error("{}: not found", path.display())]
    NotFound {
        /// The path inside its tree.
        path: PathBuf,
    },
    /// A wildcard source matched nothing and empty matches are not allowed.
    #[error("{pattern}: no source files were specified (the wildcard matched nothing)")]
    NoWildcardMatch {
        /// The source pattern as given.
        pattern: String,
    },
    /// A path component that must be a directory is something else.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path inside its tree.
        path: PathBuf,
    },
    /// A file would replace a directory (BuildKit refuses unless `always_replace_existing`).
    #[error("cannot replace directory {} with a non-directory", path.display())]
    ReplaceDirectory {
        /// The path inside the destination.
        path: PathBuf,
    },
    /// A directory would replace a non-directory (BuildKit's "cannot copy to non-directory").
    #[error("cannot copy to non-directory: {}", path.display())]
    CopyToNonDirectory {
        /// The path inside the destination.
        path: PathBuf,
    },
    /// The destination already exists (`mkdir` without parents, `symlink`).
    #[error("{}: already exists", path.display())]
    AlreadyExists {
        /// The path inside the destination.
        path: PathBuf,
    },
    /// Resolving a path met more symlinks than the kernel allows (40, as `ELOOP`).
    #[error("{}: too many levels of symbolic links", path.display())]
    SymlinkLoop {
        /// The path being resolved.
        path: PathBuf,
    },
    /// A path that must name something below the root names the root itself or is empty.
    #[error("{}: invalid path for this operation", path.display())]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
    },
    /// A file type that cannot be copied (sockets).
    #[error("{}: unsupported file type", path.display())]
    UnsupportedType {
        /// The path inside its tree.
        path: PathBuf,
    },
    /// `--include`/`--exclude` patterns that do not compile.
    #[error("invalid {which} patterns: {source}")]
    Patterns {
        /// `include` or `exclude`.
        which: &'static str,
        /// The pattern error.
        #[source]
        source: crate::dockerignore::Error,
    },
    /// A `--chmod` spec that does not parse.
    #[error("invalid chmod spec {spec:?}: {reason}")]
    ModeSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A user name with no entry in the destination's `/etc/passwd`.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser {
        /// The name looked up.
        name: String,
    },
    /// A group name with no entry in the destination's `/etc/group`.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup {
        /// The name looked up.
        name: String,
    },
    /// An `ADD` archive entry would be written (or link) outside the extraction directory
    /// (moby's `breakoutError`). Nothing of it was written.
    #[error("archive {}: entry {}: {reason}", archive.display(), entry.display())]
    ArchiveBreakout {
        /// The archive, inside the source tree.
        archive: PathBuf,
        /// The entry's name as stored in the archive.
        entry: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An `ADD` archive could not be read (corrupt compression or tar stream).
    #[error("failed to read archive {}: {source}", archive.display())]
    Archive {
        /// The archive, inside the source tree.
        archive: PathBuf,
        /// The decoder's or tar reader's error.
        #[source]
        source: io::Error,
    },
    /// An `ADD` archive entry of a type that cannot be extracted (moby's "unhandled tar
    /// header type").
    #[error("archive {}: entry {}: unhandled tar entry type {kind:?}", archive.display(), entry.display())]
    UnsupportedArchiveEntry {
        /// The archive, inside the source tree.
        archive: PathBuf,
        /// The entry's name as stored in the archive.
        entry: PathBuf,
        /// The tar type flag.
        kind: char,
    },
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
