//! Hiding what `.dockerignore` excludes from a bind mount of the build context.
//!
//! The solver lists the top-most excluded paths ([`MountSpec::excluded`]); here they become a
//! **layer of overlay whiteouts** stacked above the context directory in the mount's overlay
//! (`lowerdir=<whiteouts>:<context>:…`). A whiteout in a lower layer hides the entry of the
//! layers below it, as in any image (overlayfs.rst, "whiteouts and opaque directories"), so
//! an excluded file or directory is simply absent, at no cost per byte of the context.
//!
//! The directories leading to a whiteout are created in the layer with the owner, mode and
//! modification time of the context's own: overlayfs shows a merged directory with the
//! attributes of its top-most layer.
//!
//! [`MountSpec::excluded`]: dray_solver::MountSpec::excluded

use std::fs::FileTimes;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

/// Fills the empty directory `layer` with a whiteout for each of `excluded` (relative to
/// `context`, as the solver lists them).
pub(crate) fn whiteout_layer(layer: &Path, context: &Path, excluded: &[PathBuf]) -> io::Result<()> {
    for rel in excluded {
        let parts: Vec<&std::ffi::OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a plain relative path: {}", rel.display()),
                )),
            })
            .collect::<io::Result<_>>()?;
        let Some((name, parents)) = parts.split_last() else {
            continue;
        };
        let (mut at, mut original) = (layer.to_path_buf(), context.to_path_buf());
        for parent in parents {
            at.push(parent);
            original.push(parent);
            if at.symlink_metadata().is_err() {
                std::fs::create_dir(&at)?;
                copy_attributes(&original, &at)?;
            }
        }
        at.push(name);
        // A whiteout is a character device 0:0 (overlayfs.rst).
        mknod(&at, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Gives the directory `to` the owner, mode and modification time of `from`.
fn copy_attributes(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(from)?;
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    std::fs::File::open(to)?.set_times(FileTimes::new().set_modified(meta.modified()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_that_climb() {
        let tmp = tempfile::tempdir().unwrap();
        let err = whiteout_layer(tmp.path(), tmp.path(), &[PathBuf::from("../x")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
