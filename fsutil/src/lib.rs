//! Filesystem helpers shared by dray's crates.
//!
//! * [`dockerignore`]: the exact `.dockerignore` semantics of moby's patternmatcher: reading
//!   the file, matching paths, finding the file for a build, and a filtered, sorted walk of the
//!   build context. Start at [`dockerignore::Patterns`].
//! * [`tree`]: read-only views of a filesystem — the build context ([`tree::DirTree`]) and a
//!   stack of snapshot diffs merged like overlayfs ([`tree::ChainTree`]) — with symlink
//!   resolution that never leaves the tree root.
//! * [`fileop`]: applying file actions (`COPY`, mkdir, mkfile, rm, symlink) onto a fresh
//!   layer directory in overlayfs upper-dir form, with Docker/BuildKit semantics. Start at
//!   [`fileop::apply`].
//! * [`contenthash`]: BuildKit-compatible content digests of paths in a tree, the content part
//!   of `COPY`'s cache key. Start at [`contenthash::checksum`].
//!
//! What this crate is **not**: it knows nothing of Dockerfiles, LLB, images or caches (callers
//! map their types onto [`fileop::Action`]); it is a leaf that every other crate may depend on.

#![deny(missing_docs)]

pub mod contenthash;
pub mod dockerignore;
mod error;
pub mod fileop;
mod select;
mod sys;
pub mod tree;

pub use error::{Error, Result};

// Their types appear in dray_fsutil's errors; re-exported so callers use the same versions.
pub use regex;
pub use walkdir;
