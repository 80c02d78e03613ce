//! A recording fake: an in-memory file tree and the list of calls made.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::{FileKind, Handle, Syscall, Times};

/// Records every call as a line; keeps a fake tree so mount points can be created.
#[derive(Debug, Default)]
pub(crate) struct RecordingSyscall {
    /// The calls, in order, one readable line each.
    pub calls: Vec<String>,
    /// What exists: path → kind (symlinks map to their target in `links`).
    pub tree: BTreeMap<PathBuf, FileKind>,
    /// Symlink targets.
    pub links: BTreeMap<PathBuf, PathBuf>,
    /// Make the new mount API fail like a pre-6.8 kernel (`lowerdir+` unknown).
    pub old_kernel: bool,
    /// Detached mounts that are files rather than directories.
    pub file_handles: Vec<Handle>,
}

impl RecordingSyscall {
    /// A fake whose tree has `/` and the given directories.
    pub(crate) fn with_dirs(dirs: &[&str]) -> Self {
        let mut s = Self::default();
        s.tree.insert("/".into(), FileKind::Dir);
        for d in dirs {
            s.tree.insert(d.into(), FileKind::Dir);
        }
        s
    }
}

fn flags(f: MsFlags) -> String {
    format!("{f:?}")
}

impl Syscall for RecordingSyscall {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        f: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.calls.push(format!(
            "mount {} {} {} {} {}",
            source.unwrap_or("-"),
            target.display(),
            fstype.unwrap_or("-"),
            flags(f),
            data.unwrap_or("-")
        ));
        Ok(())
    }

    fn mount_overlay_fd(
        &mut self,
        target: &Path,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
    ) -> io::Result<()> {
        if self.old_kernel {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let lowers: Vec<_> = lowers.iter().map(|l| l.display().to_string()).collect();
        self.calls.push(format!(
            "fsmount overlay {} lowers={} upper={}",
            target.display(),
            lowers.join(":"),
            upper_work.map_or("-".into(), |(u, w)| format!(
                "{},{}",
                u.display(),
                w.display()
            ))
        ));
        Ok(())
    }

    fn open_tree(&mut self, handle: Handle, root: &Path, selector: Option<&str>) -> io::Result<()> {
        self.calls.push(format!(
            "open_tree #{handle} {} {}",
            root.display(),
            selector.unwrap_or("-")
        ));
        Ok(())
    }

    fn handle_is_dir(&mut self, handle: Handle) -> io::Result<bool> {
        Ok(!self.file_handles.contains(&handle))
    }

    fn move_mount(&mut self, handle: Handle, target: &Path) -> io::Result<()> {
        self.calls
            .push(format!("move_mount #{handle} {}", target.display()));
        Ok(())
    }

    fn pivot_root(&mut self, new_root: &Path) -> io::Result<()> {
        self.calls
            .push(format!("pivot_root {}", new_root.display()));
        Ok(())
    }

    fn chdir(&mut self, dir: &Path) -> io::Result<()> {
        self.calls.push(format!("chdir {}", dir.display()));
        Ok(())
    }

    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> io::Result<()> {
        self.calls
            .push(format!("mknod {} {major}:{minor} {mode:o}", path.display()));
        Ok(())
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        self.calls.push(format!(
            "symlink {} -> {}",
            link.display(),
            target.display()
        ));
        Ok(())
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.calls
            .push(format!("mkdir {} {mode:o}", path.display()));
        self.tree.insert(path.into(), FileKind::Dir);
        Ok(())
    }

    fn create_file(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(format!("create {}", path.display()));
        self.tree.insert(path.into(), FileKind::Other);
        Ok(())
    }

    fn lstat(&mut self, path: &Path) -> io::Result<Option<FileKind>> {
        Ok(self.tree.get(path).copied())
    }

    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf> {
        self.links
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn times(&mut self, _path: &Path) -> io::Result<Times> {
        Ok([(1, 0), (2, 0)])
    }

    fn copy_file(
        &mut self,
        from: &Path,
        to: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> io::Result<()> {
        self.calls.push(format!(
            "copy {} {} {uid}:{gid} {mode:o}",
            from.display(),
            to.display()
        ));
        Ok(())
    }
}
