//! Mount planning: [`plan`] turns an [`InitSpec`] into the list of [`MountCall`]s that build
//! the step's filesystem view, and [`apply`] performs them through the [`Syscall`] seam.
//!
//! `plan` is pure, so the order and options of every mount are unit-tested without root. The
//! order matters:
//! 1. everything that needs a **host path** happens before `pivot_root`: the root overlay, the
//!    staging overlays of bind mounts over layers, the secrets tmpfs, and an `open_tree` clone
//!    (a detached mount) of every bind source;
//! 2. `pivot_root` and the old root detached: from here no host path is reachable, so a
//!    symlink in the image (`/etc/resolv.conf -> /host/...`) can only resolve inside the
//!    container;
//! 3. the kernel filesystems (`/proc`, `/dev`, `/sys`), the masked and read-only `/proc`
//!    paths, then the `/etc` files and the step's own mounts attached at their targets.
//!
//! Mount points that do not exist are created ("stubs") and reported, so the helper removes
//! them from the upper directory afterwards (see `stubs`).

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::overlay;
use crate::spec::{InitSpec, Kind};
use crate::syscall::{FileKind, Handle, Syscall, Times};

/// Host directories the helper prepared for one step (all inside its private temp dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The root overlay's mount point.
    pub root: PathBuf,
    /// An empty directory (the lower of a scratch root or an empty bind).
    pub empty: PathBuf,
    /// Holds `hosts`, `hostname` and `resolv.conf`.
    pub etc: PathBuf,
    /// `stage/<i>`: mount points of the staging overlays of bind mount `i`.
    pub stage: PathBuf,
    /// `rw/<i>/{upper,work}`: throwaway upper directories of writable bind mount `i`.
    pub rw: PathBuf,
    /// `hide/<i>`: the whiteouts hiding `.dockerignore`d paths of context bind mount `i`.
    pub hide: PathBuf,
    /// Mount point of the private tmpfs holding secret copies.
    pub secrets: PathBuf,
}

impl Layout {
    /// The layout under `dir`.
    pub(crate) fn under(dir: &Path) -> Self {
        Layout {
            root: dir.join("root"),
            empty: dir.join("empty"),
            etc: dir.join("etc"),
            stage: dir.join("stage"),
            rw: dir.join("rw"),
            hide: dir.join("hide"),
            secrets: dir.join("secrets"),
        }
    }
}

/// What a missing mount point is created as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stub {
    /// A directory.
    Dir,
    /// An empty file.
    File,
    /// Whatever detached mount `Handle` is.
    Like(Handle),
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountCall {
    /// Make every mount private (recursively), so nothing we mount propagates to the host's
    /// shared mounts (systemd makes `/` shared; `mount_namespaces(7)`).
    MakePrivate,
    /// An overlay at a host path; `lowers` top first.
    Overlay {
        /// The mount point.
        target: PathBuf,
        /// Read-only layers, top first.
        lowers: Vec<PathBuf>,
        /// Upper and work directory; `None` for a read-only overlay.
        upper_work: Option<(PathBuf, PathBuf)>,
    },
    /// A filesystem mount (`proc`, `tmpfs`, …).
    Mount {
        /// The source string (`proc`, `tmpfs`).
        source: String,
        /// The mount point.
        target: PathBuf,
        /// The filesystem type.
        fstype: String,
        /// Mount flags.
        flags: MsFlags,
        /// Filesystem options.
        data: String,
    },
    /// Copy a secret into the private tmpfs with its owner and mode.
    CopyFile {
        /// Host file.
        from: PathBuf,
        /// Copy in the secrets tmpfs.
        to: PathBuf,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Mode.
        mode: u32,
    },
    /// Clone `root`/`selector` as a detached mount.
    OpenTree {
        /// The handle it gets.
        handle: Handle,
        /// The source root (host path).
        root: PathBuf,
        /// A path inside it.
        selector: Option<String>,
    },
    /// `pivot_root` into the root overlay and detach the old root.
    PivotRoot {
        /// The new root (host path).
        new_root: PathBuf,
    },
    /// Create the mount point if missing (recorded as a stub).
    Mountpoint {
        /// Container path.
        path: PathBuf,
        /// What to create.
        stub: Stub,
    },
    /// `mkdir` inside a fresh tmpfs (not a stub).
    Mkdir {
        /// Container path.
        path: PathBuf,
    },
    /// Attach a detached mount.
    Attach {
        /// The handle.
        handle: Handle,
        /// Container path.
        target: PathBuf,
    },
    /// Make a mount read-only (a bind remount; other per-mount flags as given).
    ReadOnly {
        /// Container path.
        target: PathBuf,
        /// Extra flags kept on the mount.
        flags: MsFlags,
    },
    /// A character device node.
    Mknod {
        /// Container path.
        path: PathBuf,
        /// Major number.
        major: u64,
        /// Minor number.
        minor: u64,
    },
    /// A symbolic link.
    Symlink {
        /// What it points to.
        target: PathBuf,
        /// The link.
        link: PathBuf,
    },
    /// Hide a path: `/dev/null` over a file, an empty read-only tmpfs over a directory;
    /// skipped if missing (docker's masked paths).
    Mask {
        /// Container path.
        path: PathBuf,
    },
    /// Bind a path over itself read-only; skipped if missing (docker's read-only paths).
    ReadOnlyPath {
        /// Container path.
        path: PathBuf,
    },
}

/// `/proc` and `/sys` entries hidden from the step (moby `oci/defaults.go`): kernel memory,
/// keyrings, scheduler and timer internals.
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// `/proc` entries made read-only (moby): writing `/proc/sysrq-trigger` as root needs no
/// capability and could reboot the host; `/proc/sys` holds host-wide sysctls.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices of the minimal `/dev`: `(name, major, minor)`.
pub(crate) const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The step's mount plan. Pure: no I/O.
pub(crate) fn plan(spec: &InitSpec, layout: &Layout) -> Vec<MountCall> {
    use MountCall as C;
    let mut calls = vec![C::MakePrivate];
    let root_lowers = if spec.root.lowers.is_empty() {
        vec![layout.empty.clone()]
    } else {
        spec.root.lowers.clone()
    };
    calls.push(C::Overlay {
        target: layout.root.clone(),
        lowers: root_lowers,
        upper_work: Some((spec.root.upper.clone(), spec.root.work.clone())),
    });

    // Before pivot_root: a detached clone of every host-side source.
    let mut handle = 0;
    let mut next = || {
        handle += 1;
        handle - 1
    };
    let etc: Vec<(Handle, &str)> = ["hosts", "hostname", "resolv.conf"]
        .into_iter()
        .map(|name| {
            let h = next();
            calls.push(C::OpenTree {
                handle: h,
                root: layout.etc.join(name),
                selector: None,
            });
            (h, name)
        })
        .collect();
    let mut order: Vec<usize> = (0..spec.mounts.len()).collect();
    // Parents before children, otherwise in the op's order (docker sorts the same way).
    order.sort_by_key(|&i| Path::new(&spec.mounts[i].dest).components().count());
    let mut secrets_tmpfs = false;
    let mut sources: Vec<Option<Handle>> = vec![None; spec.mounts.len()];
    for &i in &order {
        let stage = layout.stage.join(i.to_string());
        let rw = layout.rw.join(i.to_string());
        let rw_dirs = (rw.join("upper"), rw.join("work"));
        let (root, selector) = match &spec.mounts[i].kind {
            Kind::Bind {
                local_dir: Some(dir),
                hidden,
                selector,
                readonly: true,
                ..
            } if hidden.is_empty() => (dir.clone(), selector.clone()),
            Kind::Bind {
                lowers,
                local_dir,
                hidden,
                selector,
                readonly,
            } => {
                let mut lowers = match local_dir {
                    // The whiteouts above the context hide what `.dockerignore` excludes.
                    Some(dir) if !hidden.is_empty() => {
                        vec![layout.hide.join(i.to_string()), dir.clone()]
                    }
                    Some(dir) => vec![dir.clone()],
                    None => lowers.clone(),
                };
                // A read-only overlay needs two lowers on older kernels; the empty directory
                // is always a harmless bottom layer.
                lowers.push(layout.empty.clone());
                calls.push(C::Overlay {
                    target: stage.clone(),
                    lowers,
                    upper_work: (!readonly).then_some(rw_dirs),
                });
                (stage, selector.clone())
            }
            Kind::Cache { dir, .. } => (dir.clone(), None),
            Kind::Tmpfs { .. } => continue,
            Kind::Secret(s) => {
                let Some(from) = &s.source else { continue };
                if !secrets_tmpfs {
                    secrets_tmpfs = true;
                    calls.push(C::Mount {
                        source: "tmpfs".into(),
                        target: layout.secrets.clone(),
                        fstype: "tmpfs".into(),
                        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                        data: "mode=700".into(),
                    });
                }
                let to = layout.secrets.join(i.to_string());
                calls.push(C::CopyFile {
                    from: from.clone(),
                    to: to.clone(),
                    uid: s.uid,
                    gid: s.gid,
                    mode: s.mode,
                });
                (to, None)
            }
            Kind::Ssh(s) => match &s.source {
                Some(socket) => (socket.clone(), None),
                None => continue,
            },
        };
        let h = next();
        calls.push(C::OpenTree {
            handle: h,
            root,
            selector,
        });
        sources[i] = Some(h);
    }

    calls.push(C::PivotRoot {
        new_root: layout.root.clone(),
    });

    // The kernel filesystems.
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    calls.push(C::Mountpoint {
        path: "/proc".into(),
        stub: Stub::Dir,
    });
    calls.push(C::Mount {
        source: "proc".into(),
        target: "/proc".into(),
        fstype: "proc".into(),
        flags: nosuid_nodev_noexec,
        data: String::new(),
    });
    calls.push(C::Mountpoint {
        path: "/dev".into(),
        stub: Stub::Dir,
    });
    calls.push(C::Mount {
        source: "tmpfs".into(),
        target: "/dev".into(),
        fstype: "tmpfs".into(),
        // Not nodev: the device nodes below live here.
        flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        data: "mode=755,size=65536k".into(),
    });
    for (name, major, minor) in DEVICES {
        calls.push(C::Mknod {
            path: Path::new("/dev").join(name),
            major,
            minor,
        });
    }
    for dir in ["/dev/pts", "/dev/shm"] {
        calls.push(C::Mkdir { path: dir.into() });
    }
    calls.push(C::Mount {
        source: "devpts".into(),
        target: "/dev/pts".into(),
        fstype: "devpts".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        // A private instance, so the step cannot reach the host's terminals (devpts.rst).
        data: "newinstance,ptmxmode=0666,mode=0620".into(),
    });
    calls.push(C::Mount {
        source: "shm".into(),
        target: "/dev/shm".into(),
        fstype: "tmpfs".into(),
        flags: nosuid_nodev_noexec,
        data: "mode=1777,size=65536k".into(),
    });
    for (target, link) in [
        ("pts/ptmx", "/dev/ptmx"),
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        calls.push(C::Symlink {
            target: target.into(),
            link: link.into(),
        });
    }
    calls.push(C::Mountpoint {
        path: "/sys".into(),
        stub: Stub::Dir,
    });
    calls.push(C::Mount {
        source: "sysfs".into(),
        target: "/sys".into(),
        fstype: "sysfs".into(),
        flags: nosuid_nodev_noexec | MsFlags::MS_RDONLY,
        data: String::new(),
    });
    for path in MASKED {
        calls.push(C::Mask { path: path.into() });
    }
    for path in READ_ONLY {
        calls.push(C::ReadOnlyPath { path: path.into() });
    }

    // /etc files, read-only binds that never reach the layer.
    for (h, name) in etc {
        let target = Path::new("/etc").join(name);
        calls.push(C::Mountpoint {
            path: target.clone(),
            stub: Stub::File,
        });
        calls.push(C::Attach {
            handle: h,
            target: target.clone(),
        });
        calls.push(C::ReadOnly {
            target,
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        });
    }

    // The step's own mounts.
    for &i in &order {
        let m = &spec.mounts[i];
        let target = PathBuf::from(&m.dest);
        match (&m.kind, sources[i]) {
            (Kind::Tmpfs { size }, _) => {
                calls.push(C::Mountpoint {
                    path: target.clone(),
                    stub: Stub::Dir,
                });
                let mut data = "mode=1777".to_owned();
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                calls.push(C::Mount {
                    source: "tmpfs".into(),
                    target,
                    fstype: "tmpfs".into(),
                    flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    data,
                });
            }
            (kind, Some(h)) => {
                let stub = match kind {
                    Kind::Secret(_) | Kind::Ssh(_) => Stub::File,
                    _ => Stub::Like(h),
                };
                calls.push(C::Mountpoint {
                    path: target.clone(),
                    stub,
                });
                calls.push(C::Attach {
                    handle: h,
                    target: target.clone(),
                });
                let readonly = match kind {
                    Kind::Bind { readonly, .. } => *readonly,
                    Kind::Cache { readonly, .. } => *readonly,
                    // The copy is the step's own; the socket must stay connectable.
                    Kind::Secret(_) => true,
                    _ => false,
                };
                // A writable bind is an overlay with a throwaway upper: writable, discarded.
                if readonly {
                    calls.push(C::ReadOnly {
                        target,
                        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    });
                }
            }
            // A secret or agent the build did not provide, and that is optional.
            (_, None) => {}
        }
    }
    calls
}

/// What `apply` did that the helper must undo in the upper directory afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stubs {
    /// Paths created as mount points (or their parents), in creation order, container paths.
    pub created: Vec<PathBuf>,
    /// Existing directories a stub was created in, with their times before, to restore.
    pub touched: Vec<(PathBuf, Times)>,
}

/// Errors of [`apply`]: the call and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {source}")]
pub(crate) struct ApplyError {
    /// A readable form of the failing call.
    pub call: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Performs `calls`; returns the stubs created.
pub(crate) fn apply(calls: &[MountCall], sys: &mut dyn Syscall) -> Result<Stubs, ApplyError> {
    let mut stubs = Stubs::default();
    for call in calls {
        one(call, sys, &mut stubs).map_err(|source| ApplyError {
            call: describe(call),
            source,
        })?;
    }
    Ok(stubs)
}

fn describe(call: &MountCall) -> String {
    match call {
        MountCall::Overlay { target, .. } => format!("mount overlay at {}", target.display()),
        MountCall::Mount { fstype, target, .. } => {
            format!("mount {fstype} at {}", target.display())
        }
        MountCall::OpenTree { root, selector, .. } => format!(
            "open mount source {}{}",
            root.display(),
            selector
                .as_deref()
                .map(|s| format!(" (path {s})"))
                .unwrap_or_default()
        ),
        MountCall::Attach { target, .. } | MountCall::ReadOnly { target, .. } => {
            format!("mount at {}", target.display())
        }
        MountCall::Mountpoint { path, .. } => format!("create mount point {}", path.display()),
        other => format!("{other:?}"),
    }
}

fn one(call: &MountCall, sys: &mut dyn Syscall, stubs: &mut Stubs) -> std::io::Result<()> {
    match call {
        MountCall::MakePrivate => sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
        MountCall::Overlay {
            target,
            lowers,
            upper_work,
        } => {
            let uw = upper_work.as_ref().map(|(u, w)| (u.as_path(), w.as_path()));
            mount_overlay(sys, target, lowers, uw)
        }
        MountCall::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => sys.mount(
            Some(source),
            target,
            Some(fstype),
            *flags,
            (!data.is_empty()).then_some(data.as_str()),
        ),
        MountCall::CopyFile {
            from,
            to,
            uid,
            gid,
            mode,
        } => sys.copy_file(from, to, *uid, *gid, *mode),
        MountCall::OpenTree {
            handle,
            root,
            selector,
        } => sys.open_tree(*handle, root, selector.as_deref()),
        MountCall::PivotRoot { new_root } => sys.pivot_root(new_root),
        MountCall::Mountpoint { path, stub } => {
            let dir = match stub {
                Stub::Dir => true,
                Stub::File => false,
                Stub::Like(h) => sys.handle_is_dir(*h)?,
            };
            mountpoint(sys, path, dir, stubs)
        }
        MountCall::Mkdir { path } => sys.mkdir(path, 0o755),
        MountCall::Attach { handle, target } => sys.move_mount(*handle, target),
        MountCall::ReadOnly { target, flags } => sys.mount(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | *flags,
            None,
        ),
        MountCall::Mknod { path, major, minor } => sys.mknod(path, *major, *minor, 0o666),
        MountCall::Symlink { target, link } => sys.symlink(target, link),
        MountCall::Mask { path } => match sys.lstat(path)? {
            None => Ok(()),
            Some(FileKind::Dir) => sys.mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            ),
            Some(_) => sys.mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None),
        },
        MountCall::ReadOnlyPath { path } => {
            if sys.lstat(path)?.is_none() {
                return Ok(());
            }
            let p = path.to_str().unwrap_or_default();
            sys.mount(
                Some(p),
                path,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            sys.mount(
                None,
                path,
                None,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                None,
            )
        }
    }
}

/// Mounts an overlay, through the new mount API when the kernel has `lowerdir+` (6.8), else
/// through `mount(2)`, whose options must fit in one page: a chain too deep for that is
/// mounted through short symlinks (`<target>.l/0`, `1`, …) to its layers, relative to that
/// directory (docker's overlay2 `l/` links, for the same reason).
fn mount_overlay(
    sys: &mut dyn Syscall,
    target: &Path,
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
) -> std::io::Result<()> {
    match sys.mount_overlay_fd(target, lowers, upper_work) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => {}
        other => return other,
    }
    let flags = MsFlags::empty();
    let data = overlay::mount_data(lowers, upper_work);
    if data.len() < overlay::MOUNT_DATA_MAX {
        return sys.mount(Some("overlay"), target, Some("overlay"), flags, Some(&data));
    }
    let mut links = target.as_os_str().to_owned();
    links.push(".l");
    let links = PathBuf::from(links);
    sys.mkdir(&links, 0o700)?;
    let mut short = Vec::with_capacity(lowers.len());
    for (i, lower) in lowers.iter().enumerate() {
        let name = PathBuf::from(i.to_string());
        sys.symlink(lower, &links.join(&name))?;
        short.push(name);
    }
    let data = overlay::mount_data(&short, upper_work);
    if data.len() >= overlay::MOUNT_DATA_MAX {
        return Err(std::io::Error::from_raw_os_error(libc::E2BIG));
    }
    // overlayfs resolves relative option paths against the caller's working directory at
    // mount time (and follows the symlinks); this process pivots its root right after.
    sys.chdir(&links)?;
    sys.mount(Some("overlay"), target, Some("overlay"), flags, Some(&data))
}

/// Creates the mount point `path` if nothing is there, parents first, recording what it made.
/// Symlinks on the way (the last component included) are resolved inside the container first,
/// so the stub is recorded where it really is and a dangling link gets its target created,
/// which is where the mount lands.
fn mountpoint(
    sys: &mut dyn Syscall,
    path: &Path,
    dir: bool,
    stubs: &mut Stubs,
) -> std::io::Result<()> {
    let path = resolve(sys, path)?;
    if sys.lstat(&path)?.is_some() {
        return Ok(());
    }
    let mut missing = vec![path.clone()];
    let mut parent = path.parent();
    while let Some(p) = parent {
        if sys.lstat(p)?.is_some() {
            break;
        }
        missing.push(p.to_path_buf());
        parent = p.parent();
    }
    if let Some(existing) = missing.last().and_then(|m| m.parent()) {
        let times = sys.times(existing)?;
        stubs.touched.push((existing.to_path_buf(), times));
    }
    while let Some(p) = missing.pop() {
        if missing.is_empty() && !dir {
            sys.create_file(&p)?;
        } else {
            sys.mkdir(&p, 0o755)?;
        }
        stubs.created.push(p);
    }
    Ok(())
}

/// `path` with every symlink among its existing components replaced by its target, resolved
/// against `/` (the container root: this runs after `pivot_root`). Missing components are kept
/// as written.
pub(crate) fn resolve(sys: &mut dyn Syscall, path: &Path) -> std::io::Result<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    fn parts(p: &Path) -> Vec<OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    }
    let mut out = PathBuf::from("/");
    let mut rest: VecDeque<OsString> = parts(path).into();
    let mut hops = 0;
    while let Some(c) = rest.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        if sys.lstat(&next)? == Some(FileKind::Symlink) {
            hops += 1;
            if hops > 40 {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            let link = sys.read_link(&next)?;
            if link.is_absolute() {
                out = PathBuf::from("/");
            }
            for p in parts(&link).into_iter().rev() {
                rest.push_front(p);
            }
        } else {
            out = next;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
