//! Mount-point stubs: keeping the mount points runc creates out of the step's layer.
//!
//! runc creates every mount destination that does not exist in the rootfs (`/proc`, `/dev`,
//! `/etc/hosts`, a `RUN --mount` target, and their missing parents). Created in the overlay,
//! they would land in the upper directory, and so in the layer. BuildKit deletes such stubs
//! afterwards, which still leaves copied-up parents (with new mtimes) behind.
//!
//! Instead, the missing entries are created *before* the run in an extra lower layer, the
//! **stub layer**, placed on top of the step's lowers. runc then finds every destination in
//! place and creates nothing. The stub layer mirrors each existing parent directory on the way
//! to a stub with the merged view's mode, owner, extended attributes and times, so the
//! container sees the same metadata, and a copy-up (the step writing into `/etc`) copies the
//! same metadata into the layer. Mirrored directories are not opaque, so they merge with the
//! lowers beneath as before.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use dray_fsutil::tree::{ChainTree, FileKind, Metadata, Tree};
use rustix::fs::{AtFlags, Timespec, Timestamps, utimensat};

/// What a mount destination needs to exist as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// A directory (most mounts).
    Dir,
    /// A regular file (a bind of a file: `/etc/hosts`, a secret, an SSH socket).
    File,
}

/// One entry of the stub layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stub {
    /// An existing directory of the merged view, copied with its metadata.
    Mirror {
        path: PathBuf,
        metadata: Metadata,
        xattrs: Vec<(OsString, Vec<u8>)>,
    },
    /// A missing directory (0755 root:root).
    Dir { path: PathBuf },
    /// A missing file (empty, 0644 root:root).
    File { path: PathBuf },
}

impl Stub {
    fn path(&self) -> &Path {
        match self {
            Stub::Mirror { path, .. } | Stub::Dir { path } | Stub::File { path } => path,
        }
    }
}

/// Why a stub layer could not be planned or written.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    /// Reading the merged view of the lowers failed.
    #[error("failed to read the root filesystem")]
    Tree(#[from] dray_fsutil::Error),
    /// A mount destination lies below something that is not a directory.
    #[error("cannot mount on {dest}: {parent} is not a directory in the root filesystem")]
    NotADirectory {
        /// The destination.
        dest: String,
        /// The offending path (in the rootfs).
        parent: String,
    },
    /// Writing the stub layer failed.
    #[error("failed to create the mount point stub {}", path.display())]
    Io {
        /// The path in the stub layer.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Plans the stubs for `targets` (absolute container paths) over the merged view `tree`.
/// Destinations are resolved as runc resolves them (symlinks followed inside the root), so a
/// stub lands where runc would have created the mount point. The result is in creation order
/// (parents first), without duplicates; empty when every destination exists.
pub(crate) fn plan(
    tree: &ChainTree,
    targets: &[(&str, TargetKind)],
) -> Result<Vec<Stub>, StubError> {
    let mut stubs: Vec<Stub> = Vec::new();
    for (dest, kind) in targets {
        let resolved = tree.resolve(Path::new(dest), true)?;
        let parts: Vec<OsString> = resolved
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                _ => None,
            })
            .collect();
        // Walk down; once a component is missing, everything below it is missing too.
        let mut path = PathBuf::new();
        let mut mirrors = Vec::new();
        let mut missing_from = None;
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let last = i + 1 == parts.len();
            match tree.lstat(&path)? {
                Some(m) if m.is_whiteout() => {
                    missing_from = Some(i);
                    break;
                }
                Some(_) if last => {}
                Some(m) if m.kind == FileKind::Dir => mirrors.push((path.clone(), m)),
                Some(_) => {
                    return Err(StubError::NotADirectory {
                        dest: (*dest).to_owned(),
                        parent: format!("/{}", path.display()),
                    });
                }
                None => {
                    missing_from = Some(i);
                    break;
                }
            }
        }
        let Some(first_missing) = missing_from else {
            continue;
        };
        for (path, metadata) in mirrors {
            if !stubs.iter().any(|s| s.path() == path) {
                let xattrs = tree.xattrs(&path)?;
                stubs.push(Stub::Mirror {
                    path,
                    metadata,
                    xattrs,
                });
            }
        }
        let mut path: PathBuf = parts[..first_missing].iter().collect();
        for (i, part) in parts.iter().enumerate().skip(first_missing) {
            path.push(part);
            if stubs.iter().any(|s| s.path() == path) {
                continue;
            }
            if i + 1 == parts.len() && *kind == TargetKind::File {
                stubs.push(Stub::File { path: path.clone() });
            } else {
                stubs.push(Stub::Dir { path: path.clone() });
            }
        }
    }
    Ok(stubs)
}

/// Writes `stubs` into the empty directory `layer`. Mirrored directories get their times last,
/// deepest first, so creating their children does not change them.
pub(crate) fn create(layer: &Path, stubs: &[Stub]) -> Result<(), StubError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StubError::Io { path, source }
    };
    for stub in stubs {
        let host = layer.join(stub.path());
        match stub {
            Stub::Mirror {
                metadata, xattrs, ..
            } => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&host)
                    .map_err(io(&host))?;
                std::os::unix::fs::lchown(&host, Some(metadata.uid), Some(metadata.gid))
                    .map_err(io(&host))?;
                // After chown, which clears set-id bits.
                rustix::fs::chmod(&host, rustix::fs::Mode::from_raw_mode(metadata.mode))
                    .map_err(|e| io(&host)(e.into()))?;
                for (name, value) in xattrs {
                    xattr::set(&host, name, value).map_err(io(&host))?;
                }
            }
            Stub::Dir { .. } => {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&host)
                    .map_err(io(&host))?;
                rustix::fs::chmod(&host, rustix::fs::Mode::from_raw_mode(0o755))
                    .map_err(|e| io(&host)(e.into()))?;
            }
            Stub::File { .. } => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&host)
                    .map_err(io(&host))?;
            }
        }
    }
    for stub in stubs.iter().rev() {
        if let Stub::Mirror { path, metadata, .. } = stub {
            let host = layer.join(path);
            let ts = |ns: i64| Timespec {
                tv_sec: ns.div_euclid(1_000_000_000),
                tv_nsec: ns.rem_euclid(1_000_000_000) as _,
            };
            let times = Timestamps {
                last_access: ts(metadata.atime_ns),
                last_modification: ts(metadata.mtime_ns),
            };
            utimensat(rustix::fs::CWD, &host, &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io(&host)(e.into()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_missing_entries_below_mirrored_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("proc")).unwrap();
        std::fs::write(lower.join("etc/hosts"), "x").unwrap();
        std::os::unix::fs::symlink("/data", lower.join("link")).unwrap();
        let tree = ChainTree::new([&lower]).unwrap();
        let stubs = plan(
            &tree,
            &[
                ("/proc", TargetKind::Dir),
                ("/etc/hosts", TargetKind::File),
                ("/etc/resolv.conf", TargetKind::File),
                ("/run/secrets/token", TargetKind::File),
                ("/link/cache", TargetKind::Dir),
            ],
        )
        .unwrap();
        let paths: Vec<(&str, &Path)> = stubs
            .iter()
            .map(|s| match s {
                Stub::Mirror { path, .. } => ("mirror", path.as_path()),
                Stub::Dir { path } => ("dir", path.as_path()),
                Stub::File { path } => ("file", path.as_path()),
            })
            .collect();
        assert_eq!(
            paths,
            [
                ("mirror", Path::new("etc")),
                ("file", Path::new("etc/resolv.conf")),
                ("dir", Path::new("run")),
                ("dir", Path::new("run/secrets")),
                ("file", Path::new("run/secrets/token")),
                // The symlink is followed inside the root, as runc does.
                ("dir", Path::new("data")),
                ("dir", Path::new("data/cache")),
            ]
        );
    }

    #[test]
    fn a_file_on_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        let tree = ChainTree::new([tmp.path()]).unwrap();
        let err = plan(&tree, &[("/file/below", TargetKind::Dir)]).unwrap_err();
        assert!(
            err.to_string().contains("/file is not a directory"),
            "{err}"
        );
    }
}
