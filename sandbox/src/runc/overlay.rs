//! Mounting an overlay filesystem in the host mount namespace, and unmounting it when the
//! guard drops (on success, error, cancellation or a dropped future alike).

use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, unmount,
};

/// The overlay options that make the upper directory a complete diff of the step: no
/// redirects (a renamed directory is copied up whole), no metadata-only copy-ups (a chmod copies
/// the data too), no inode index. See the kernel's `Documentation/filesystems/overlayfs.rst`.
pub(crate) const DIFF_OPTIONS: [&str; 3] = ["redirect_dir=off", "metacopy=off", "index=off"];

/// An overlay to mount: lower layers top first, and an optional upper and work directory
/// (without them the mount is read-only).
#[derive(Debug, Clone)]
pub(crate) struct Overlay<'a> {
    pub(crate) lowers: &'a [PathBuf],
    pub(crate) upper: Option<(&'a Path, &'a Path)>,
}

/// A mount that is detached when dropped.
#[derive(Debug)]
pub(crate) struct MountGuard {
    target: PathBuf,
}

impl MountGuard {
    /// Adopts an existing mount at `target` (e.g. a tmpfs mounted by the caller).
    pub(crate) fn adopt(target: PathBuf) -> MountGuard {
        MountGuard { target }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        // MNT_DETACH: a process still holding a file open in it (a container being torn down)
        // must not make the unmount fail; the kernel frees it once the last user is gone.
        let _ = unmount(&self.target, UnmountFlags::DETACH);
    }
}

/// Mounts `overlay` on `target` (an existing empty directory).
///
/// Why the new mount API: `mount(2)` takes all options in one page (4 KiB), which a long chain
/// of store paths overflows after about 40 layers. `fsconfig(FSCONFIG_SET_STRING,
/// "lowerdir+")` (Linux 6.8) adds one layer per call, each up to 256 bytes. On older kernels
/// (`lowerdir+` is refused) it falls back to one `lowerdir=a:b:c` string.
pub(crate) fn mount(overlay: &Overlay<'_>, target: &Path) -> std::io::Result<MountGuard> {
    if overlay.lowers.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an overlay needs at least one lower directory",
        ));
    }
    match mount_with_fsconfig(overlay, target, true) {
        Ok(guard) => Ok(guard),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            mount_with_fsconfig(overlay, target, false)
        }
        Err(e) => Err(e),
    }
}

fn mount_with_fsconfig(
    overlay: &Overlay<'_>,
    target: &Path,
    per_layer: bool,
) -> std::io::Result<MountGuard> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    if per_layer {
        for lower in overlay.lowers {
            fsconfig_set_string(&fs, "lowerdir+", lower.as_path())?;
        }
    } else {
        let joined = overlay
            .lowers
            .iter()
            .map(|p| escape(p))
            .collect::<Vec<_>>()
            .join(":");
        fsconfig_set_string(&fs, "lowerdir", joined.as_str())?;
    }
    if let Some((upper, work)) = overlay.upper {
        fsconfig_set_string(&fs, "upperdir", upper)?;
        fsconfig_set_string(&fs, "workdir", work)?;
    }
    for option in DIFF_OPTIONS {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        fsconfig_set_string(&fs, key, value)?;
    }
    fsconfig_create(&fs)?;
    let attrs = if overlay.upper.is_some() {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(MountGuard {
        target: target.to_owned(),
    })
}

/// Overlay splits `lowerdir` at `:` and takes `\` as an escape.
fn escape(path: &Path) -> String {
    path.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Mounts a tmpfs (mode 0700, at most `size` bytes) on `target`: for secret copies, which
/// must never reach a disk.
pub(crate) fn mount_tmpfs(target: &Path, size: u64) -> std::io::Result<MountGuard> {
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "mode", "0700")?;
    fsconfig_set_string(&fs, "size", size.to_string().as_str())?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(MountGuard::adopt(target.to_owned()))
}
