//! Filesystem helpers shared by dray's crates.
//!
//! For now: [`dockerignore`], the exact `.dockerignore` semantics of moby's patternmatcher:
//! reading the file, matching paths, finding the file for a build, and a filtered, sorted walk
//! of the build context. Start at [`dockerignore::Patterns`].
//! Later: symlink-safe resolution of paths inside a root.
//!
//! What this crate is **not**: it knows nothing of Dockerfiles, images or caches; it is a leaf
//! that every other crate may depend on.

#![deny(missing_docs)]

pub mod dockerignore;

// Their types appear in dray_fsutil's errors; re-exported so callers use the same versions.
pub use regex;
pub use walkdir;
