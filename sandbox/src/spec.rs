//! The wire format between [`NativeExecutor`](crate::NativeExecutor) and the init helper.
//!
//! The parent writes one [`InitSpec`] as a JSON line on the helper's standard input (a
//! socketpair), then at most one `kill` line (cancellation). The helper answers with one
//! [`Report`] line when the step is over. Plain paths only: the helper knows nothing about
//! snapshots or the store.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use dray_llb::{MountKind, NetMode, SecurityMode, Sharing};
use dray_solver::ExecSpec;

/// Everything the helper needs to run one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InitSpec {
    /// argv; `args[0]` is looked up in the container's `PATH` if it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value`, in order (the proxy variables last).
    pub env: Vec<String>,
    /// Absolute working directory (created if missing).
    pub cwd: String,
    /// `user[:group]` by name or id; empty is root.
    pub user: String,
    /// The hostname the process sees.
    pub hostname: String,
    /// Whether the step gets a network namespace of its own (only `lo`).
    pub isolated_network: bool,
    /// `--security=insecure`: all capabilities.
    pub insecure: bool,
    /// The root overlay.
    pub root: Overlay,
    /// Further mounts, in the op's order.
    pub mounts: Vec<Mount>,
    /// The cgroup `pids.max` for the step, if cgroups allow one.
    pub pids_limit: Option<u64>,
    /// The content of `/etc/resolv.conf`.
    pub resolv_conf: String,
}

/// An overlay's directories; `lowers` top first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Overlay {
    /// Read-only layers, top first.
    pub lowers: Vec<PathBuf>,
    /// The writable layer.
    pub upper: PathBuf,
    /// Overlay's work directory (same filesystem as `upper`).
    pub work: PathBuf,
}

/// One non-root mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mount {
    /// Absolute path in the container.
    pub dest: String,
    /// What is mounted.
    pub kind: Kind,
}

/// What a [`Mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Layers (top first) or a host directory, or an empty directory if neither.
    Bind {
        /// Read-only layers, top first.
        lowers: Vec<PathBuf>,
        /// A host directory (the build context).
        local_dir: Option<PathBuf>,
        /// What `.dockerignore` hides in `local_dir`: top-most paths relative to it.
        #[serde(default)]
        hidden: Vec<PathBuf>,
        /// A path inside the source to mount instead of its root.
        selector: Option<String>,
        /// Read-only; otherwise writes go to a throwaway upper directory.
        readonly: bool,
    },
    /// A persistent host directory.
    Cache {
        /// The host directory (the solver's `cache-mounts/<id>`).
        dir: PathBuf,
        /// How concurrent steps share it.
        sharing: Sharing,
        /// Read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
    },
    /// A secret file, copied into a private tmpfs with the given owner and mode.
    Secret(Secret),
    /// An SSH agent socket.
    Ssh(Secret),
}

/// A secret or SSH mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Secret {
    /// The id the build registered it under.
    pub id: String,
    /// The host file or socket; `None` if the build did not provide it.
    pub source: Option<PathBuf>,
    /// Owner in the container.
    pub uid: u32,
    /// Group in the container.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Whether a missing source is skipped instead of an error.
    pub optional: bool,
}

/// The helper's answer, one JSON line on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Report {
    /// The process ran and exited (a signal `n` is reported as `128 + n`, like a shell).
    Exited {
        /// The exit code.
        code: i32,
    },
    /// The sandbox could not be set up, or the command could not be started.
    Failed {
        /// What went wrong, for the user.
        error: String,
    },
}

/// The default `PATH` when the step's environment has none (BuildKit's and docker's).
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The hostname when the graph sets none (BuildKit's, which some build scripts expect).
pub(crate) const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

impl InitSpec {
    /// The helper's spec for `spec`. `resolv_conf` is the host's, read by the caller.
    pub(crate) fn from_exec(spec: &ExecSpec, resolv_conf: String, pids_limit: Option<u64>) -> Self {
        let mut env = spec.meta.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.to_owned());
        }
        env.extend(spec.meta.proxy_env.iter().cloned());
        let mounts = spec
            .mounts
            .iter()
            .map(|m| Mount {
                dest: m.dest.clone(),
                kind: match &m.kind {
                    MountKind::Bind => Kind::Bind {
                        lowers: m.lowers.clone(),
                        local_dir: m.local_dir.clone(),
                        hidden: m.excluded.clone(),
                        selector: m.selector.clone(),
                        readonly: m.readonly,
                    },
                    MountKind::Cache { sharing, .. } => Kind::Cache {
                        dir: m.cache_dir.clone().unwrap_or_default(),
                        sharing: *sharing,
                        readonly: m.readonly,
                    },
                    MountKind::Tmpfs { size } => Kind::Tmpfs { size: *size },
                    MountKind::Secret(s) | MountKind::Ssh(s) => {
                        let secret = Secret {
                            id: s.id.clone(),
                            source: m.host_source.clone(),
                            uid: s.uid,
                            gid: s.gid,
                            mode: s.mode,
                            optional: s.optional,
                        };
                        if matches!(m.kind, MountKind::Ssh(_)) {
                            Kind::Ssh(secret)
                        } else {
                            Kind::Secret(secret)
                        }
                    }
                },
            })
            .collect();
        InitSpec {
            args: spec.meta.args.clone(),
            env,
            cwd: if spec.meta.cwd.is_empty() {
                "/".to_owned()
            } else {
                spec.meta.cwd.clone()
            },
            user: spec.meta.user.clone(),
            hostname: spec
                .meta
                .hostname
                .clone()
                .unwrap_or_else(|| DEFAULT_HOSTNAME.to_owned()),
            // `default` and `host` both stay in the host's network namespace, as BuildKit's OCI
            // worker does without CNI: there is no bridge to attach a new one to.
            isolated_network: spec.network == NetMode::None,
            insecure: spec.security == SecurityMode::Insecure,
            root: Overlay {
                lowers: spec.rootfs.lowers.clone(),
                upper: spec.rootfs.upper.clone(),
                work: spec.rootfs.work.clone(),
            },
            mounts,
            pids_limit,
            resolv_conf,
        }
    }
}
