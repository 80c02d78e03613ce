//! Exec ops: run one process over a root filesystem plus mounts (`RUN`).
//!
//! Mount inputs and outputs are indices: [`ExecMount::input`] indexes the node's
//! [`inputs`](crate::Node::inputs), and [`ExecMount::output`] names the output of this node that
//! the mount's final state becomes. The root mount (`dest == "/"`) is output 0 by convention of
//! the [`State`](crate::State) builder.

use serde::{Deserialize, Serialize};

/// Run a command. Everything here is part of the node digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecOp {
    /// The process: argv, environment, working directory, user.
    pub meta: ExecMeta,
    /// The root mount and any extra mounts, in order.
    pub mounts: Vec<ExecMount>,
    /// The network the process sees.
    pub network: NetMode,
    /// The privilege level of the process.
    pub security: SecurityMode,
}

/// The process of an [`ExecOp`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecMeta {
    /// The argv; `args[0]` is looked up in `PATH` if it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` entries. Order is significant (it is the order the process sees, and part of
    /// the digest); the builder keeps the order in which keys were first set.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// `user[:group]` by name or id; empty means root, as in an image config.
    pub user: String,
    /// The hostname; `None` leaves the executor's default.
    pub hostname: Option<String>,
    /// Proxy settings from `--build-arg HTTP_PROXY=…` and friends, as `KEY=value`. The process
    /// sees them after `env`, but they are deliberately left out of the node digest (see
    /// [`crate::encoding`]) and so of every cache key, as BuildKit's `ProxyEnv`; they never
    /// reach the image config or history.
    #[serde(default)]
    pub proxy_env: Vec<String>,
}

/// One mount of an [`ExecOp`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecMount {
    /// Which node input is mounted; `None` mounts an empty directory (or nothing, for kinds that
    /// bring their own content such as cache, tmpfs, secret and ssh).
    pub input: Option<u32>,
    /// Absolute path inside the container.
    pub dest: String,
    /// A path inside the input to mount instead of its root.
    pub selector: Option<String>,
    /// Whether writes are refused.
    pub readonly: bool,
    /// The output index this mount's final content becomes; `None` discards it.
    pub output: Option<u32>,
    /// What kind of mount it is.
    pub kind: MountKind,
}

/// The kind of an [`ExecMount`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A snapshot of an input (the root mount, `--mount=type=bind`).
    Bind,
    /// A persistent directory shared across builds (`--mount=type=cache`).
    Cache {
        /// The cache identity; equal ids share a directory.
        id: String,
        /// How concurrent builds share it.
        sharing: Sharing,
    },
    /// An in-memory filesystem (`--mount=type=tmpfs`).
    Tmpfs {
        /// Size limit in bytes; `None` is the kernel default.
        size: Option<u64>,
    },
    /// A secret file (`--mount=type=secret`). Its content is never part of any digest.
    Secret(SecretMount),
    /// An SSH agent socket (`--mount=type=ssh`).
    Ssh(SecretMount),
}

/// Options shared by secret and SSH mounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretMount {
    /// The id the client registered the secret or agent under (`default` for SSH).
    pub id: String,
    /// Owner uid of the mounted file or socket.
    pub uid: u32,
    /// Owner gid of the mounted file or socket.
    pub gid: u32,
    /// Permission bits (0o400 for secrets, 0o600 for SSH in BuildKit).
    pub mode: u32,
    /// Whether a missing secret is an empty mount instead of an error.
    pub optional: bool,
}

/// Cache mount sharing (`sharing=` of `--mount=type=cache`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Concurrent writers use the same directory.
    #[default]
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// The network of an [`ExecOp`] (`RUN --network=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetMode {
    /// The default: the sandbox's own network.
    #[default]
    Sandbox,
    /// The host network.
    Host,
    /// No network at all.
    None,
}

/// The security mode of an [`ExecOp`] (`RUN --security=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    /// The default, unprivileged sandbox.
    #[default]
    Sandbox,
    /// All capabilities, as `--security=insecure`.
    Insecure,
}

impl ExecOp {
    /// The number of outputs: one past the largest mount output index.
    pub fn num_outputs(&self) -> u32 {
        self.mounts
            .iter()
            .filter_map(|m| m.output)
            .map(|o| o.saturating_add(1))
            .max()
            .unwrap_or(0)
    }
}
