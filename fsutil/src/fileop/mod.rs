//! Applying file actions onto a new layer: the filesystem side of LLB file ops.
//!
//! [`apply`] runs one [`Action`] against a destination filesystem given as
//!
//! * `lower`: the destination's current state, a [`ChainTree`] of committed snapshot diffs;
//! * `upper`: the new snapshot's diff directory (empty for the first action of a step, or
//!   holding the results of earlier actions of the same step).
//!
//! Everything is written into `upper`, in overlayfs upper-dir form, so that `upper` is
//! exactly the layer diff (architecture B4):
//!
//! * a path removed that exists in `lower` becomes a **whiteout**, a 0:0 character device;
//! * a directory created where `lower` had something (now hidden) is **opaque**
//!   (`trusted.overlay.opaque=y`, or `user.overlay.opaque=y` with
//!   [`ApplyContext::userxattr`]);
//! * a directory of `lower` that gets new content is **copied up**: created in `upper` with
//!   the same mode, owner, xattrs and times as in `lower` (times are restored after the
//!   writes), so the layer does not change its metadata;
//! * a file written over a `lower` file simply appears in `upper`.
//!
//! Whiteouts need `CAP_MKNOD` and opaque markers `CAP_SYS_ADMIN`, as for overlayfs itself.
//!
//! # Paths and safety
//!
//! Destination paths are resolved in the merged view (`upper` over `lower`) like the kernel
//! would inside a container, with symlinks followed *inside* that root (a link to `/x` means
//! the layer's `/x`). The resolved path contains no symlinks; every write reaches it through
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the `upper` root, so nothing is ever
//! written outside `upper` and no symlink is followed there. Source paths go through
//! [`Tree::resolve`] and so never leave the source tree.
//!
//! # Semantics
//!
//! Those of BuildKit's file-op backend (`solver/llbsolver/file/backend.go`) and
//! tonistiigi/fsutil's `copy` package; see [`Copy`](struct@Copy) for the copy rules. Deliberate
//! differences:
//!
//! * `Mkfile` over an existing file replaces its content and keeps its mode (and its owner
//!   unless one is given), as BuildKit's `os.WriteFile` does; the new content is a new file
//!   in `upper` either way.
//! * `Rm` checks existence with `lstat` (BuildKit uses `stat`, so it reports a dangling
//!   symlink as missing; here it is removed).
//! * Copying an xattr the destination filesystem refuses (`EPERM`, `EOPNOTSUPP`) is skipped,
//!   as BuildKit's handler does; other xattr errors fail the copy.
//! * `ADD`'s archive extraction ([`Copy::attempt_unpack`]) follows moby's `Untar` into the
//!   destination as a chroot; see the `unpack` module for the containment rules.

mod chmod;
mod copy;
mod deferred;
mod ops;
mod unpack;
pub(crate) mod upper;
mod user;
mod wildcard;

use std::path::Path;

pub use chmod::ModeSpec;
pub use deferred::{DeferredDir, ReplayEntry, ReplayLinks, ReplaySink, replay};
pub use user::{IdOrName, Owner, resolve_group, resolve_owner, resolve_user};
pub use wildcard::{has_wildcards, match_component};

use crate::error::Result;
use crate::tree::{ChainTree, Tree};

/// Expands a wildcard source path in `tree` as [`Copy`](struct@Copy) does (fsutil's `ResolveWildcards`):
/// the matches as tree paths, in sorted walk order. A path without wildcards is returned
/// cleaned and unchecked.
pub fn wildcard_matches(
    tree: &dyn Tree,
    pattern: &str,
    follow_links: bool,
) -> Result<Vec<std::path::PathBuf>> {
    wildcard::resolve_wildcards(tree, pattern, follow_links)
}

/// A file action with users already resolved to numbers (see [`resolve_owner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copy from the source tree into the destination.
    Copy(Copy),
    /// Create a directory.
    Mkdir(Mkdir),
    /// Create a file with given content.
    Mkfile(Mkfile),
    /// Remove a path.
    Rm(Rm),
    /// Create a symlink.
    Symlink(Symlink),
}

/// `--chmod`: absolute bits or a symbolic spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Permission and special bits, at most `0o7777`, replacing the source's.
    Octal(u32),
    /// A `chmod(1)` symbolic spec (`u=rwX,go=rX`), applied to each file's own mode.
    Symbolic(String),
}

/// Copy `src` from the source tree to `dest`, with Docker's `COPY` semantics (BuildKit's
/// `docopy` + fsutil's `copy.Copy`):
///
/// * `src` is resolved inside the source tree; with `follow_symlinks` a symlink at `src`
///   itself is followed, else copied as a link. With `allow_wildcard`, `src` may hold
///   `filepath.Match` wildcards (`*`, `?`, `[...]`), matched per component from the first
///   component with a wildcard; each match is copied as if named alone. No match is an error
///   unless `allow_empty_wildcard`.
/// * The target: if `dest` (resolved in the destination, following links) is an existing
///   directory, or ends with `/`, a source is copied **into** it under its base name — except
///   that a directory source with `dir_copy_contents` has its *contents* copied into `dest`.
///   Otherwise the source becomes `dest`.
/// * Missing parents of the target are created `0755`, owned by `owner` (root without it),
///   with `timestamp` as mtime; unless `create_dest_path`, `dest`'s parent must exist.
/// * A directory is merged into an existing one: the top directory's metadata is kept,
///   existing subdirectories take the source's; files replace files. A file over a directory
///   (or a directory over a file) fails unless `always_replace_existing`.
/// * `include_patterns`/`exclude_patterns` (`.dockerignore` syntax, matched against paths
///   relative to each copied source) select what inside a directory source is copied;
///   directories are created only if something in them is.
/// * `parents` (`COPY --parents`): the source's directories (relative to the source root, or
///   to a `/./` pivot in `src`) are kept under `dest`, created with the source's metadata.
/// * Each entry keeps its source mode, owner, times and xattrs, except that `owner` replaces
///   the owner, `mode` the mode (not of symlinks: an octal mode replaces all of `0o7777`,
///   setuid/setgid/sticky included, as current fsutil does), and `timestamp` the times. An
///   existing top directory copied into keeps its mode and owner but takes the source's times
///   (fsutil's `restoreFileTimestamp`).
///   Hard links between copied files are kept; devices, fifos and symlinks are copied as such.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copy {
    /// Source path in the source tree (absolute or relative to its root).
    pub src: String,
    /// Destination path; a trailing `/` means "into this directory".
    pub dest: String,
    /// New owner of everything copied and of created parents; `None` keeps the source's.
    pub owner: Option<Owner>,
    /// New permission bits (`--chmod`); `None` keeps the source's.
    pub mode: Option<Mode>,
    /// Follow a symlink at `src` itself.
    pub follow_symlinks: bool,
    /// Copy a directory's contents rather than the directory.
    pub dir_copy_contents: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Expand wildcards in `src`.
    pub allow_wildcard: bool,
    /// Let a wildcard that matches nothing succeed (copying nothing).
    pub allow_empty_wildcard: bool,
    /// Only copy paths matching these patterns (empty: all).
    pub include_patterns: Vec<String>,
    /// Skip paths matching these patterns (`COPY --exclude`).
    pub exclude_patterns: Vec<String>,
    /// Keep the source's parent directories under `dest` (`COPY --parents`).
    pub parents: bool,
    /// Replace an existing destination even when its type differs.
    pub always_replace_existing: bool,
    /// Modification (and access) time of everything written, seconds since the epoch.
    pub timestamp: Option<i64>,
    /// `ADD`: a source that is a regular file holding a tar archive (plain, gzip, bzip2, xz or
    /// zstd; detected by content, not name) is extracted into `dest`, taken as a directory
    /// and created if missing, instead of being copied. Entries keep their own mode, owner
    /// (unless `owner` is given) and times; `mode` and `timestamp` do not apply to them.
    /// Nothing is ever written outside `dest`: the archive's `..`, absolute names and
    /// symlinks resolve inside it as in a chroot, and what would climb out is an
    /// [`ArchiveBreakout`](crate::Error::ArchiveBreakout) error.
    pub attempt_unpack: bool,
}

/// Create a directory (`WORKDIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mkdir {
    /// Path in the destination.
    pub path: String,
    /// Permission bits (`& 0o777`, as BuildKit).
    pub mode: u32,
    /// Create missing parents (with the same mode, owner and time), and succeed if it exists.
    pub make_parents: bool,
    /// Owner of created directories; `None` is root.
    pub owner: Option<Owner>,
    /// Modification time of created directories, seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Create a file with given content (heredocs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mkfile {
    /// Path in the destination; its parent must exist.
    pub path: String,
    /// Permission bits (`& 0o777`).
    pub mode: u32,
    /// The content.
    pub data: Vec<u8>,
    /// Owner; `None` is root.
    pub owner: Option<Owner>,
    /// Modification time, seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Remove a path (and everything below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rm {
    /// Path in the destination; a final symlink is removed, not followed.
    pub path: String,
    /// Succeed if it does not exist.
    pub allow_not_found: bool,
    /// Expand wildcards in `path` (no match removes nothing and succeeds).
    pub allow_wildcard: bool,
}

/// Create a symlink `newpath -> oldpath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    /// The link target, stored verbatim.
    pub oldpath: String,
    /// Path of the link in the destination; must not exist.
    pub newpath: String,
    /// Owner of the link; `None` is root.
    pub owner: Option<Owner>,
    /// Modification time of the link, seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Settings for [`apply`] that are not part of an action.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApplyContext {
    /// Mark opaque directories with `user.overlay.opaque` instead of `trusted.overlay.opaque`:
    /// for layers that will be mounted with overlayfs's `userxattr` option (rootless, in a
    /// user namespace, where `trusted.*` cannot be written). Whiteouts are the same either
    /// way.
    pub userxattr: bool,
    /// Defer the directories a copy creates (see the `deferred` module): they are created
    /// with their metadata and marked, their contents left to [`replay`], and [`apply`]
    /// returns them. Needs `trusted.*` xattrs (not with `userxattr`). An
    /// [`Error::Deferred`](crate::Error::Deferred) from a step applied this way means: discard
    /// `upper` and apply again without deferring.
    pub defer_copies: bool,
}

impl ApplyContext {
    /// The defaults: rootful overlay (`trusted.overlay.opaque`).
    pub fn new() -> ApplyContext {
        ApplyContext::default()
    }

    /// Sets [`userxattr`](Self::userxattr).
    pub fn with_userxattr(mut self, userxattr: bool) -> ApplyContext {
        self.userxattr = userxattr;
        self
    }

    /// Sets [`defer_copies`](Self::defer_copies).
    pub fn with_defer_copies(mut self, defer: bool) -> ApplyContext {
        self.defer_copies = defer;
        self
    }
}

/// Applies `action` to the destination `lower` (top layer first), writing the result into
/// `upper` in overlayfs upper-dir form (see the [module docs](self)). `src` is the source
/// tree of a [`Copy`](struct@Copy) (`None` for the other actions, and a copy without it copies from the
/// destination itself, as LLB does with no secondary input).
///
/// Returns the directories deferred ([`ApplyContext::defer_copies`]; only a copy from a
/// `src` tree defers), in no particular order.
///
/// On error, `upper` may hold a partial result and should be discarded.
pub fn apply(
    action: &Action,
    src: Option<&dyn Tree>,
    lower: &ChainTree,
    upper: &Path,
    ctx: &ApplyContext,
) -> Result<Vec<DeferredDir>> {
    let mut up = upper::Upper::new(upper, lower, ctx.userxattr)?;
    let mut deferred = Vec::new();
    match action {
        Action::Copy(c) => match src {
            Some(src) => {
                let defer = (ctx.defer_copies && !ctx.userxattr).then_some(&mut deferred);
                copy::copy(c, src, &mut up, defer)?
            }
            None => {
                let merged = up.merged().clone();
                copy::copy(c, &merged, &mut up, None)?
            }
        },
        Action::Mkdir(m) => ops::mkdir(m, &mut up)?,
        Action::Mkfile(m) => ops::mkfile(m, &mut up)?,
        Action::Rm(r) => ops::rm(r, &mut up)?,
        Action::Symlink(s) => ops::symlink(s, &mut up)?,
    }
    up.finish()?;
    Ok(deferred)
}
