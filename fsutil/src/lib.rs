//! Filesystem helpers shared by dray's crates.
//!
//! * [`dockerignore`]: the exact `.dockerignore` semantics of moby's patternmatcher: reading
//!   the file, matching paths, finding the file for a build, and a filtered, sorted walk of the
//!   build context. Start at [`dockerignore::Patterns`].
//! * [`tree`]: read-only views of a filesystem — the build context ([`tree::DirTree`]) and a
//!   stack of snapshot diffs merged like overlayfs ([`tree::ChainTree`]) — with symlink
//!   resolution that never leaves the tree root ([`tree::resolve_in_root`] for plain host
//!   directories).
//! * [`fileop`]: applying file actions (`COPY`, mkdir, mkfile, rm, symlink) onto a fresh
//!   layer directory in overlayfs upper-dir form, with Docker/BuildKit semantics. Start at
//!   [`fileop::apply`].
//! * [`archive`]: tar archives onto a directory — compression detected by content, entries
//!   written with the extraction directory as their root (no name, symlink or hard link
//!   leads out of it). `ADD`'s extraction and the OCI layer applier (`dray_image::apply`)
//!   share it. Start at [`archive::DirExtractor`].
//! * [`contenthash`]: BuildKit-compatible content digests of paths in a tree, the content part
//!   of `COPY`'s cache key. Start at [`contenthash::checksum`].
//!
//! What this crate is **not**: it knows nothing of Dockerfiles, LLB, images or caches (callers
//! map their types onto [`fileop::Action`]); it is a leaf that every other crate may depend on.
//!
//! # A `COPY` step, end to end
//!
//! The solver keys a `COPY` from the context on the content of what it copies, then, on a
//! miss, applies it onto a fresh snapshot:
//!
//! ```
//! use std::path::Path;
//! use dray_fsutil::contenthash::{HashMapMemo, Selector, checksum};
//! use dray_fsutil::dockerignore::Patterns;
//! use dray_fsutil::fileop::{Action, ApplyContext, Copy, apply};
//! use dray_fsutil::tree::{ChainTree, DirTree};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let (ctx_dir, base, upper) = (tmp.path().join("ctx"), tmp.path().join("base"), tmp.path().join("up"));
//! # for d in [&base, &upper] { std::fs::create_dir(d)?; }
//! # std::fs::create_dir_all(ctx_dir.join("src"))?;
//! # std::fs::write(ctx_dir.join("src/main.rs"), "fn main() {}")?;
//! // The context as BuildKit receives it: ignored paths invisible, owners reset to 0:0.
//! let context = DirTree::open(&ctx_dir)?
//!     .with_patterns(Patterns::parse("target\n*.log\n")?)
//!     .with_owner_reset();
//!
//! // The content key of `COPY src/ /app/` (owner ids of the context are not hashed).
//! let mut memo = HashMapMemo::new(); // the solver's is backed by its database
//! let selector = Selector { path: "src/".into(), follow_links: true, ..Default::default() };
//! let key = checksum(&context, &selector, &mut memo)?;
//! assert_eq!(key.to_hex().len(), 64);
//!
//! // On a miss: apply onto the new snapshot's empty diff dir, over the parent chain.
//! let lower = ChainTree::new([&base])?; // snapshot diff dirs, top first
//! let copy = Copy {
//!     src: "src/".into(),
//!     dest: "/app/".into(),
//!     follow_symlinks: true,
//!     dir_copy_contents: true,
//!     create_dest_path: true,
//!     allow_wildcard: true,
//!     ..Default::default()
//! };
//! apply(&Action::Copy(copy), Some(&context), &lower, &upper, &ApplyContext::new())?;
//! assert!(upper.join("app/main.rs").is_file());
//! # Ok(()) }
//! ```
//!
//! Mapping LLB's file actions onto [`fileop::Action`]:
//!
//! * `--chown` names are resolved against the **destination** with
//!   [`fileop::resolve_owner`] on the same [`tree::ChainTree`] passed as `lower`.
//! * No `--chown` is `owner: None`, which keeps the source's owners: 0:0 from a context
//!   opened [`with_owner_reset`](tree::DirTree::with_owner_reset), the stage's own owners for
//!   `COPY --from` (as BuildKit).
//! * `ADD`'s archive unpacking is not done here; unpack first, then copy.

#![deny(missing_docs)]

pub mod archive;
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
