//! The OCI bundle of one step: its directory layout, the host-side mounts it needs, and their
//! teardown.
//!
//! ```text
//! <state_dir>/bundles/<container id>/
//! ├── config.json          the runtime spec (spec.rs)
//! ├── rootfs/              the step's overlay: stubs + lowers (top first), upper, work
//! ├── stubs/               the stub layer: missing mount points (stubs.rs)
//! ├── etc/                 hosts, resolv.conf, hostname, bound read-only
//! ├── secrets/             a tmpfs: copies of secrets with the mount's uid, gid and mode
//! ├── mounts/<n>/          a bind of an input: lower `empty/` if needed, upper/, work/, merged/
//! └── runc.log             runc's own errors (JSON lines), kept apart from the step's output
//! ```
//!
//! Everything below the bundle directory is host state of one run: [`Bundle`]'s drop unmounts
//! what was mounted (detached, so a dying container cannot make it fail) and only then removes
//! the directory, so a removal can never reach into a mounted layer.

use std::path::{Path, PathBuf};

use dray_fsutil::tree::{ChainTree, Tree};
use dray_llb::{MountKind, Sharing};
use dray_solver::{ExecSpec, MountSpec};

use super::RuncError;
use super::overlay::{self, MountGuard, Overlay};
use super::spec::{self, SpecInput, StepMount};
use super::stubs::{self, TargetKind};

/// Size limit of the secrets tmpfs.
const SECRETS_TMPFS_BYTES: u64 = 16 << 20;

/// A prepared bundle. Dropping it unmounts everything and removes the directory.
#[derive(Debug)]
pub(crate) struct Bundle {
    /// Dropped first: unmounted in reverse order of mounting.
    mounts: Vec<MountGuard>,
    dir: PathBuf,
    /// Exclusive `flock`s on the cache mounts with `sharing=locked|private`, held for the run.
    _cache_locks: Vec<std::fs::File>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        while let Some(m) = self.mounts.pop() {
            drop(m);
        }
        // Only remove what is no longer a mount point: a failed unmount must not let the
        // removal reach into a mounted layer.
        if self.mounts.is_empty() && !any_mount_below(&self.dir) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether a mount (another filesystem) remains below `dir`, checked on the directories the
/// bundle mounts on.
fn any_mount_below(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    let mut candidates = vec![dir.join("rootfs"), dir.join("secrets")];
    if let Ok(entries) = std::fs::read_dir(dir.join("mounts")) {
        candidates.extend(entries.flatten().map(|e| e.path().join("merged")));
    }
    candidates
        .iter()
        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.dev() != top.dev()))
}

impl Bundle {
    /// The bundle directory (for `runc run --bundle`).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where runc writes its own log.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("runc.log")
    }

    /// Prepares the bundle of `spec` in the new directory `dir`: mounts the inputs of bind
    /// mounts, copies secrets, plans and writes the stub layer, mounts the rootfs overlay and
    /// writes `config.json`. Blocking.
    pub(crate) fn prepare(
        dir: PathBuf,
        spec: &ExecSpec,
        default_hostname: &str,
    ) -> Result<Bundle, RuncError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| RuncError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let mut bundle = Bundle {
            mounts: Vec::new(),
            dir,
            _cache_locks: Vec::new(),
        };
        let dir = bundle.dir.clone();
        for sub in ["rootfs", "stubs", "etc", "empty"] {
            std::fs::create_dir(dir.join(sub)).map_err(io("create", &dir.join(sub)))?;
        }

        // The merged view before the run: the (normally empty) upper over the lowers.
        let mut layers = vec![spec.rootfs.upper.clone()];
        layers.extend(spec.rootfs.lowers.iter().cloned());
        let tree = ChainTree::new(&layers)?.uncached();
        let read = |path: &str| -> Result<Option<String>, RuncError> {
            let resolved = tree.resolve(Path::new(path), true)?;
            match tree.lookup(&resolved)? {
                Some((_, m)) if m.kind == dray_fsutil::tree::FileKind::File => {
                    let mut f = tree.open(&resolved)?;
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut f, &mut text)
                        .map_err(io("read", &Path::new("/").join(&resolved)))?;
                    Ok(Some(text))
                }
                _ => Ok(None),
            }
        };
        let exec_user = crate::user::resolve(
            &spec.meta.user,
            read("/etc/passwd")?.as_deref(),
            read("/etc/group")?.as_deref(),
        )?;

        let mut step_mounts = Vec::new();
        let mut targets: Vec<(String, TargetKind)> = spec::STANDARD_MOUNT_POINTS
            .iter()
            .map(|p| ((*p).to_owned(), TargetKind::Dir))
            .collect();
        let mut secrets_dir: Option<PathBuf> = None;
        for (n, m) in spec.mounts.iter().enumerate() {
            let prepared = bundle.prepare_mount(n, m, &mut secrets_dir)?;
            let Some((step_mount, kind)) = prepared else {
                continue;
            };
            targets.push((step_mount.dest().to_owned(), kind));
            step_mounts.push(step_mount);
        }

        let hostname = spec.meta.hostname.as_deref().unwrap_or(default_hostname);
        let etc = dir.join("etc");
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        let files: [(&'static str, &str, Vec<u8>); 3] = [
            ("/etc/resolv.conf", "resolv.conf", resolv),
            (
                "/etc/hosts",
                "hosts",
                format!(
                    "127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                )
                .into_bytes(),
            ),
            (
                "/etc/hostname",
                "hostname",
                format!("{hostname}\n").into_bytes(),
            ),
        ];
        let mut etc_files = Vec::new();
        for (dest, name, content) in files {
            let path = etc.join(name);
            std::fs::write(&path, content).map_err(io("write", &path))?;
            targets.push((dest.to_owned(), TargetKind::File));
            etc_files.push((dest, path));
        }
        let etc_files: [(&'static str, PathBuf); 3] = etc_files
            .try_into()
            .unwrap_or_else(|_| unreachable!("three files were written"));

        let target_refs: Vec<(&str, TargetKind)> =
            targets.iter().map(|(d, k)| (d.as_str(), *k)).collect();
        let planned = stubs::plan(&tree, &target_refs)?;
        drop(tree);
        stubs::create(&dir.join("stubs"), &planned)?;
        let mut lowers = Vec::new();
        if !planned.is_empty() || spec.rootfs.lowers.is_empty() {
            lowers.push(dir.join("stubs"));
        }
        lowers.extend(spec.rootfs.lowers.iter().cloned());
        let rootfs = dir.join("rootfs");
        let guard = overlay::mount(
            &Overlay {
                lowers: &lowers,
                upper: Some((&spec.rootfs.upper, &spec.rootfs.work)),
            },
            &rootfs,
        )
        .map_err(io("mount the overlay on", &rootfs))?;
        bundle.mounts.push(guard);
        create_cwd(&rootfs, &spec.meta.cwd, &exec_user)?;

        let mut env = spec.meta.env.clone();
        env.extend(spec.meta.proxy_env.iter().cloned());
        let config = spec::build(&SpecInput {
            args: &spec.meta.args,
            env,
            cwd: &spec.meta.cwd,
            user: &exec_user,
            hostname,
            network: spec.network,
            security: spec.security,
            host_capabilities: spec::host_bounding_set(),
            rootfs: &rootfs,
            etc_files,
            mounts: &step_mounts,
        })?;
        let config_path = dir.join("config.json");
        config.save(&config_path)?;
        Ok(bundle)
    }

    /// Prepares the host side of one `RUN --mount`; `None` when it is skipped (an optional
    /// secret that was not provided).
    fn prepare_mount(
        &mut self,
        n: usize,
        m: &MountSpec,
        secrets_dir: &mut Option<PathBuf>,
    ) -> Result<Option<(StepMount, TargetKind)>, RuncError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| RuncError::Io {
                action,
                path,
                source,
            }
        };
        let dest = m.dest.clone();
        Ok(Some(match &m.kind {
            MountKind::Bind => {
                let base = self.dir.join("mounts").join(n.to_string());
                let (upper, work, merged, empty) = (
                    base.join("upper"),
                    base.join("work"),
                    base.join("merged"),
                    base.join("empty"),
                );
                for d in [&upper, &work, &merged, &empty] {
                    std::fs::create_dir_all(d).map_err(io("create", d))?;
                }
                // Writes to a bind mount are discarded (its output is not kept), so every
                // input is mounted as an overlay with a throwaway upper: the build context and
                // the snapshots stay untouched whatever the step does.
                let lowers = match (&m.local_dir, m.lowers.is_empty()) {
                    // Whiteouts above the context hide what `.dockerignore` excludes.
                    (Some(local), _) if !m.excluded.is_empty() => {
                        let hide = base.join("hide");
                        std::fs::create_dir_all(&hide).map_err(io("create", &hide))?;
                        crate::hide::whiteout_layer(&hide, local, &m.excluded)
                            .map_err(io("hide the .dockerignored paths of", local))?;
                        vec![hide, local.clone()]
                    }
                    (Some(local), _) => vec![local.clone()],
                    (None, false) => m.lowers.clone(),
                    (None, true) => vec![empty],
                };
                let guard = overlay::mount(
                    &Overlay {
                        lowers: &lowers,
                        upper: Some((&upper, &work)),
                    },
                    &merged,
                )
                .map_err(io("mount the overlay on", &merged))?;
                self.mounts.push(guard);
                let source = match &m.selector {
                    Some(sel) => dray_fsutil::tree::resolve_in_root(&merged, Path::new(sel), true)?,
                    None => merged,
                };
                let kind = if source.is_dir() {
                    TargetKind::Dir
                } else {
                    TargetKind::File
                };
                (
                    StepMount::Bind {
                        dest,
                        source,
                        readonly: m.readonly,
                    },
                    kind,
                )
            }
            MountKind::Cache { sharing, .. } => {
                let source = m
                    .cache_dir
                    .clone()
                    .ok_or(RuncError::MissingHostPath { dest: dest.clone() })?;
                if *sharing != Sharing::Shared {
                    self._cache_locks.push(lock_cache(&source)?);
                }
                (
                    StepMount::Bind {
                        dest,
                        source,
                        readonly: m.readonly,
                    },
                    TargetKind::Dir,
                )
            }
            MountKind::Tmpfs { size } => (StepMount::Tmpfs { dest, size: *size }, TargetKind::Dir),
            MountKind::Secret(secret) => {
                let Some(host) = &m.host_source else {
                    return Ok(None);
                };
                let dir = match secrets_dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = self.dir.join("secrets");
                        std::fs::create_dir(&d).map_err(io("create", &d))?;
                        self.mounts.push(
                            overlay::mount_tmpfs(&d, SECRETS_TMPFS_BYTES)
                                .map_err(io("mount a tmpfs on", &d))?,
                        );
                        *secrets_dir = Some(d.clone());
                        d
                    }
                };
                // A copy per mount, so the mount's owner and mode apply without touching the
                // host file. It lives on a tmpfs and goes with the bundle.
                let copy = dir.join(n.to_string());
                std::fs::copy(host, &copy).map_err(io("copy the secret file", host))?;
                std::os::unix::fs::chown(&copy, Some(secret.uid), Some(secret.gid))
                    .map_err(io("chown", &copy))?;
                rustix::fs::chmod(&copy, rustix::fs::Mode::from_raw_mode(secret.mode & 0o7777))
                    .map_err(|e| io("chmod", &copy)(e.into()))?;
                (
                    StepMount::Bind {
                        dest,
                        source: copy,
                        readonly: true,
                    },
                    TargetKind::File,
                )
            }
            MountKind::Ssh(_) => {
                // The agent socket itself: its owner and mode are the host's (a proxy socket
                // with the mount's uid, gid and mode is not implemented).
                let Some(host) = &m.host_source else {
                    return Ok(None);
                };
                (
                    StepMount::Bind {
                        dest,
                        source: host.clone(),
                        readonly: false,
                    },
                    TargetKind::File,
                )
            }
        }))
    }
}

/// Creates the working directory if it is missing, owned by the step's user, as BuildKit's
/// executors do (`MkdirAllAndChown(cwd, 0755, user)`): unlike mount points, it is part of the
/// step's layer. Symlinks on the way are followed inside the rootfs.
fn create_cwd(rootfs: &Path, cwd: &str, user: &crate::user::ExecUser) -> Result<(), RuncError> {
    use std::os::unix::fs::DirBuilderExt;
    let resolved = dray_fsutil::tree::resolve_in_root(rootfs, Path::new(cwd), true)?;
    let relative = resolved.strip_prefix(rootfs).unwrap_or(Path::new(""));
    let mut path = rootfs.to_owned();
    for part in relative.components() {
        path.push(part);
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let err = |action| {
            let path = path.clone();
            move |source| RuncError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(err("create the working directory"))?;
        std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))
            .map_err(err("chown the working directory"))?;
    }
    Ok(())
}

/// Takes an exclusive lock on a cache mount's directory (`<dir>.lock` beside it), waiting for
/// other steps, in this process or another, that hold it. `sharing=locked` waits for writers
/// as BuildKit does; `sharing=private` waits too, where BuildKit would hand out a second
/// directory: the step still never sees another's concurrent writes.
fn lock_cache(dir: &Path) -> Result<std::fs::File, RuncError> {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RuncError::Io {
            action: "open the cache mount lock",
            path: path.clone(),
            source,
        })?;
    // flock (not fcntl locks): held by the open file description, so released when the file
    // drops, and not shared between threads of this process that open the file separately.
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        RuncError::Io {
            action: "lock the cache mount",
            path,
            source: e.into(),
        }
    })?;
    Ok(file)
}
