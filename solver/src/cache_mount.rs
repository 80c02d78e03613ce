//! The persistent directories of `RUN --mount=type=cache`, owned by the solver.
//!
//! | path | what |
//! |---|---|
//! | `<root>/cache-mounts/<sha256 of id>/` | the cache's content, shared by every build |
//! | `<root>/cache-mounts/<sha256 of id>.private-<n>/` | extra copies for `sharing=private` (made by the executor) |
//! | `<root>/cache-mounts/<sha256 of id>.new-<nonce>/` | a cache being seeded; renamed into place when complete |
//!
//! A cache directory is **seeded once**, when it is created, as BuildKit does: from the mount's
//! input at its selector when there is one (`from=<stage>` and `source=`; the frontend also
//! encodes `uid=`, `gid=` and `mode=` as an input: a directory with that owner and mode), else
//! empty (`0755`, root). Later builds find it and never seed again, whatever their input: the
//! cache's content belongs to the steps that use it, never to a cache key.
//!
//! The seed is written to a sibling temp directory and renamed into place, so a build that is
//! killed half-way never leaves a half-seeded cache behind (the temp is left, never used).

use std::path::{Path, PathBuf};

use dray_fsutil::fileop::{self, Action, ApplyContext, Copy};
use dray_fsutil::tree::ChainTree;

use crate::error::OpError;
use crate::fs::Tree;

/// Creates the cache directory `dir` if it is missing, seeded from `seed` (a tree and the path
/// inside it). An existing directory is left alone.
pub(crate) fn ensure(dir: &Path, seed: Option<(Tree, Option<String>)>) -> Result<(), OpError> {
    if dir.symlink_metadata().is_ok() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(OpError::io("create cache mount parent", parent))?;
    let Some((tree, selector)) = seed else {
        return match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                Err(OpError::io("create cache mount", dir)(e))
            }
            _ => Ok(()),
        };
    };
    let mut temp = dir.as_os_str().to_owned();
    temp.push(format!(".new-{}", crate::nonce()));
    let temp = PathBuf::from(temp);
    std::fs::create_dir(&temp).map_err(OpError::io("create cache mount", &temp))?;
    let seeded = seed_into(&temp, &tree, selector.as_deref().unwrap_or("/"));
    if let Err(e) = seeded {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    match std::fs::rename(&temp, dir) {
        Ok(()) => Ok(()),
        // Another build seeded it first: theirs wins, it is the same seed or an older one.
        Err(_) if dir.symlink_metadata().is_ok() => {
            let _ = std::fs::remove_dir_all(&temp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(OpError::io("create cache mount", dir)(e))
        }
    }
}

/// Copies the directory `path` of `tree` (its content, and its own owner, mode and times) into
/// the empty directory `dest`. A missing path seeds nothing (an empty directory), as a cache
/// mount of a path a stage lacks is just empty in BuildKit.
fn seed_into(dest: &Path, tree: &Tree, path: &str) -> Result<(), OpError> {
    let view = tree.open()?;
    let resolved = view.resolve(Path::new(path), true)?;
    let Some(meta) = view.lstat(&resolved)? else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let copy = Action::Copy(Copy {
        src: resolved.display().to_string(),
        dest: "/".to_owned(),
        dir_copy_contents: true,
        follow_symlinks: true,
        ..Copy::default()
    });
    let nothing_below = ChainTree::new(Vec::<PathBuf>::new())?;
    fileop::apply(
        &copy,
        Some(view.as_ref()),
        &nothing_below,
        dest,
        &ApplyContext::default(),
    )?;
    // The top directory is the seed's own (`uid=`, `gid=`, `mode=`), not what a copy into an
    // existing directory keeps.
    std::os::unix::fs::lchown(dest, Some(meta.uid), Some(meta.gid))
        .map_err(OpError::io("chown cache mount", dest))?;
    std::fs::set_permissions(
        dest,
        std::os::unix::fs::PermissionsExt::from_mode(meta.mode),
    )
    .map_err(OpError::io("chmod cache mount", dest))?;
    Ok(())
}
