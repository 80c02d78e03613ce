//! The real [`Syscall`]: nix and rustix calls, each with why it is done this way.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use rustix::fs::{CWD, OFlags, ResolveFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use super::{FileKind, Handle, Syscall, Times};
use crate::overlay::DIFF_SAFE_OPTIONS;

/// The kernel, plus the detached mounts the plan has opened.
#[derive(Debug, Default)]
pub(crate) struct LinuxSyscall {
    handles: HashMap<Handle, OwnedFd>,
}

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Syscall for LinuxSyscall {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(nix_err)
    }

    fn mount_overlay_fd(
        &mut self,
        target: &Path,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
    ) -> io::Result<()> {
        // fsopen/fsconfig (mount_setattr(2), "new mount API"): one `lowerdir+` call per layer
        // (Linux 6.8, overlayfs.rst "lowerdir+") has no page-size limit on the option string,
        // so deep chains need no relative-path tricks.
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for lower in lowers {
            fsconfig_set_string(fs.as_fd(), "lowerdir+", lower.as_path())?;
        }
        if let Some((upper, work)) = upper_work {
            fsconfig_set_string(fs.as_fd(), "upperdir", upper)?;
            fsconfig_set_string(fs.as_fd(), "workdir", work)?;
        }
        for (key, value) in DIFF_SAFE_OPTIONS {
            fsconfig_set_string(fs.as_fd(), key, value)?;
        }
        fsconfig_create(fs.as_fd())?;
        let mnt = fsmount(
            fs.as_fd(),
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::empty(),
        )?;
        move_mount(
            mnt.as_fd(),
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }

    fn open_tree(&mut self, handle: Handle, root: &Path, selector: Option<&str>) -> io::Result<()> {
        // The selector is a path *inside* the source, and the source (a layer, the build
        // context) is untrusted: RESOLVE_IN_ROOT resolves `..` and absolute symlinks against
        // `root` (openat2(2)), so `--mount=source=../../etc` cannot reach the host.
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let sel = selector.unwrap_or("").trim_start_matches('/');
        let fd = if sel.is_empty() {
            root_fd
        } else {
            rustix::fs::openat2(
                root_fd.as_fd(),
                sel,
                OFlags::PATH | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )?
        };
        // OPEN_TREE_CLONE makes a detached copy of the mount (a bind mount not yet attached
        // anywhere, open_tree(2)); it survives pivot_root and is attached with move_mount.
        let tree = open_tree(
            fd.as_fd(),
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )?;
        self.handles.insert(handle, tree);
        Ok(())
    }

    fn handle_is_dir(&mut self, handle: Handle) -> io::Result<bool> {
        let fd = self.handles.get(&handle).ok_or(io::ErrorKind::NotFound)?;
        let st = rustix::fs::fstat(fd)?;
        Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
    }

    fn move_mount(&mut self, handle: Handle, target: &Path) -> io::Result<()> {
        let fd = self
            .handles
            .remove(&handle)
            .ok_or(io::ErrorKind::NotFound)?;
        // T_SYMLINKS: a symlinked target resolves inside the container root like any path.
        move_mount(
            fd.as_fd(),
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_SYMLINKS,
        )?;
        Ok(())
    }

    fn pivot_root(&mut self, new_root: &Path) -> io::Result<()> {
        // pivot_root(".", ".") stacks the old root on top of the new one at "/"; unmounting
        // "." then removes it without needing a put_old directory in the image (runc's
        // trick, pivot_root(2) NOTES). MNT_DETACH because the old root is busy.
        nix::unistd::chdir(new_root).map_err(nix_err)?;
        nix::unistd::pivot_root(".", ".").map_err(nix_err)?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(nix_err)?;
        nix::unistd::chdir("/").map_err(nix_err)
    }

    fn chdir(&mut self, dir: &Path) -> io::Result<()> {
        nix::unistd::chdir(dir).map_err(nix_err)
    }

    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> io::Result<()> {
        nix::sys::stat::mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(nix_err)?;
        // mknod applies the umask; the nodes must be world-usable.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        std::fs::create_dir(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn create_file(&mut self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop)
    }

    fn lstat(&mut self, path: &Path) -> io::Result<Option<FileKind>> {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() => Ok(Some(FileKind::Dir)),
            Ok(md) if md.file_type().is_symlink() => Ok(Some(FileKind::Symlink)),
            Ok(_) => Ok(Some(FileKind::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn times(&mut self, path: &Path) -> io::Result<Times> {
        let md = std::fs::metadata(path)?;
        Ok([(md.atime(), md.atime_nsec()), (md.mtime(), md.mtime_nsec())])
    }

    fn copy_file(
        &mut self,
        from: &Path,
        to: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> io::Result<()> {
        std::fs::copy(from, to)?;
        std::os::unix::fs::chown(to, Some(uid), Some(gid))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
    }
}
