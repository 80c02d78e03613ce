//! Filesystem helpers shared by dray's crates.
//!
//! For now: [`dockerignore`], the exact `.dockerignore` semantics of moby's patternmatcher.
//! Later: filtered, sorted context walks and symlink-safe resolution of paths inside a root.
//!
//! What this crate is **not**: it knows nothing of Dockerfiles, images or caches; it is a leaf
//! that every other crate may depend on.

#![deny(missing_docs)]

pub mod dockerignore;

pub use regex;
pub use walkdir;
