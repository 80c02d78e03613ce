//! The `Syscall` seam: every kernel call the mount plan makes goes through this trait, so the
//! planning and stub logic is unit-tested without root against [`test::RecordingSyscall`]
//! (youki's `syscall/{syscall,test}.rs` pattern). [`linux::LinuxSyscall`] is the real one and
//! the only place with `unsafe`-adjacent kernel plumbing for mounts.

pub(crate) mod linux;
#[cfg(test)]
pub(crate) mod test;

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

/// A detached mount (from `open_tree`), by its number in the plan.
pub(crate) type Handle = usize;

/// What a path is, as far as mount points care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else (regular file, socket, device).
    Other,
}

/// Access and modification times, `(seconds, nanoseconds)` each.
pub(crate) type Times = [(i64, i64); 2];

/// The kernel calls of the mount plan.
pub(crate) trait Syscall {
    /// `mount(2)`.
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// An overlay through the new mount API (`fsopen`, one `lowerdir+` per layer, `fsmount`,
    /// `move_mount`), which has no option-length limit. `ENOSYS`/`EINVAL` on older kernels.
    fn mount_overlay_fd(
        &mut self,
        target: &Path,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
    ) -> io::Result<()>;
    /// Clones the tree at `root`/`selector` (the selector resolved inside `root`, never
    /// escaping it) as detached mount `handle`.
    fn open_tree(&mut self, handle: Handle, root: &Path, selector: Option<&str>) -> io::Result<()>;
    /// Whether detached mount `handle` is a directory.
    fn handle_is_dir(&mut self, handle: Handle) -> io::Result<bool>;
    /// Attaches detached mount `handle` at `target`.
    fn move_mount(&mut self, handle: Handle, target: &Path) -> io::Result<()>;
    /// Makes `new_root` the root and detaches the old one.
    fn pivot_root(&mut self, new_root: &Path) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&mut self, dir: &Path) -> io::Result<()>;
    /// `mknod(2)` of a character device.
    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> io::Result<()>;
    /// `symlink(2)`.
    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()>;
    /// `mkdir(2)` of one directory.
    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file.
    fn create_file(&mut self, path: &Path) -> io::Result<()>;
    /// `lstat(2)`; `None` if nothing is there.
    fn lstat(&mut self, path: &Path) -> io::Result<Option<FileKind>>;
    /// `readlink(2)`.
    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf>;
    /// The times of `path` (following symlinks).
    fn times(&mut self, path: &Path) -> io::Result<Times>;
    /// Copies a host file to `to` with the given owner and mode (secrets).
    fn copy_file(
        &mut self,
        from: &Path,
        to: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> io::Result<()>;
}
