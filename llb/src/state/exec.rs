//! [`State::run`]: exec ops in the builder.

use std::sync::Arc;

use super::{Output, State, Vertex, paths};
use crate::exec::{
    ExecMeta, ExecMount, ExecOp, MountKind, NetMode, SecretMount, SecurityMode, Sharing,
};
use crate::op::{Op, OpMetadata};

/// What to run: argv plus extra mounts and sandbox settings. Env, cwd and user come from the
/// [`State`] it runs on.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    args: Vec<String>,
    mounts: Vec<Mount>,
    network: NetMode,
    security: SecurityMode,
    hostname: Option<String>,
    proxy_env: Vec<String>,
}

/// An extra mount of an exec, before marshaling.
#[derive(Debug, Clone)]
pub struct Mount {
    dest: String,
    kind: MountKind,
    source: Option<State>,
    selector: Option<String>,
    readonly: bool,
    no_output: bool,
}

/// The result of [`State::run`]: the root filesystem and every writable bind mount are outputs.
#[derive(Debug, Clone)]
pub struct ExecState {
    base: State,
    vertex: Arc<Vertex>,
    /// `(dest, output index)` of the writable bind mounts.
    mount_outputs: Vec<(String, u32)>,
}

impl ExecSpec {
    /// Runs `args` with default network and security.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            mounts: Vec::new(),
            network: NetMode::default(),
            security: SecurityMode::default(),
            hostname: None,
            proxy_env: Vec::new(),
        }
    }

    /// Adds a mount; mounts are applied in the order added.
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Sets the network (`RUN --network=`).
    pub fn network(mut self, network: NetMode) -> Self {
        self.network = network;
        self
    }

    /// Sets the security mode (`RUN --security=`).
    pub fn security(mut self, security: SecurityMode) -> Self {
        self.security = security;
        self
    }

    /// Sets the proxy variables (`KEY=value`) the process sees; they stay out of cache keys.
    pub fn proxy_env(mut self, env: Vec<String>) -> Self {
        self.proxy_env = env;
        self
    }

    /// Sets the hostname the process sees.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }
}

impl Mount {
    fn new(dest: impl Into<String>, kind: MountKind, source: Option<State>) -> Self {
        Self {
            dest: dest.into(),
            kind,
            source,
            selector: None,
            readonly: false,
            no_output: false,
        }
    }

    /// A bind mount of `source` at `dest`; writable (and so an output) unless made
    /// [`readonly`](Mount::readonly).
    pub fn bind(dest: impl Into<String>, source: State) -> Self {
        Self::new(dest, MountKind::Bind, Some(source))
    }

    /// A persistent cache directory (`--mount=type=cache`).
    pub fn cache(dest: impl Into<String>, id: impl Into<String>, sharing: Sharing) -> Self {
        Self::new(
            dest,
            MountKind::Cache {
                id: id.into(),
                sharing,
            },
            None,
        )
    }

    /// An in-memory filesystem.
    pub fn tmpfs(dest: impl Into<String>, size: Option<u64>) -> Self {
        Self::new(dest, MountKind::Tmpfs { size }, None)
    }

    /// A secret file.
    pub fn secret(dest: impl Into<String>, secret: SecretMount) -> Self {
        Self::new(dest, MountKind::Secret(secret), None).readonly()
    }

    /// An SSH agent socket.
    pub fn ssh(dest: impl Into<String>, ssh: SecretMount) -> Self {
        Self::new(dest, MountKind::Ssh(ssh), None).readonly()
    }

    /// Mounts only this path of the source.
    pub fn selector(mut self, path: impl Into<String>) -> Self {
        self.selector = Some(path.into());
        self
    }

    /// Refuses writes; a read-only bind mount is not an output.
    pub fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }

    /// Keeps a writable bind mount writable but not an output (BuildKit's `ForceNoOutput`):
    /// what the process writes there is discarded with the step, as `RUN
    /// --mount=type=bind,rw` does in docker.
    pub fn no_output(mut self) -> Self {
        self.no_output = true;
        self
    }

    /// Uses `source` as the initial content (e.g. a cache mount seeded `from=` a stage).
    pub fn from_state(mut self, source: State) -> Self {
        self.source = Some(source);
        self
    }
}

/// Collects a node's inputs, reusing the index of an output already added.
#[derive(Default)]
pub(super) struct Inputs(pub(super) Vec<Output>);

impl Inputs {
    pub(super) fn index_of(&mut self, output: &Output) -> u32 {
        let key = output.input();
        let pos = match self.0.iter().position(|o| o.input() == key) {
            Some(pos) => pos,
            None => {
                self.0.push(output.clone());
                self.0.len() - 1
            }
        };
        u32::try_from(pos).unwrap_or(u32::MAX)
    }
}

impl State {
    /// Runs a process on this state's filesystem, with its env, cwd, user and platform.
    pub fn run(&self, spec: ExecSpec) -> ExecState {
        let mut inputs = Inputs::default();
        let root_input = inputs.index_of(&self.output);
        let mut mounts = vec![ExecMount {
            input: Some(root_input),
            dest: "/".to_owned(),
            selector: None,
            readonly: false,
            output: Some(0),
            kind: MountKind::Bind,
        }];
        let mut mount_outputs = Vec::new();
        let mut next_output = 1u32;
        for m in spec.mounts {
            let dest = paths::join(self.cwd(), &m.dest);
            let output = if matches!(m.kind, MountKind::Bind) && !m.readonly && !m.no_output {
                let o = next_output;
                next_output += 1;
                mount_outputs.push((dest.clone(), o));
                Some(o)
            } else {
                None
            };
            mounts.push(ExecMount {
                input: m.source.as_ref().map(|s| inputs.index_of(&s.output)),
                dest,
                selector: m.selector,
                readonly: m.readonly,
                output,
                kind: m.kind,
            });
        }
        let op = ExecOp {
            meta: ExecMeta {
                args: spec.args,
                env: self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd: self.cwd().to_owned(),
                user: self.user().to_owned(),
                hostname: spec.hostname,
                proxy_env: spec.proxy_env,
            },
            mounts,
            network: spec.network,
            security: spec.security,
        };
        let vertex = Vertex::new(Op::Exec(op), inputs.0, self.platform.clone());
        ExecState {
            base: self.clone(),
            vertex,
            mount_outputs,
        }
    }
}

impl ExecState {
    /// The root filesystem after the process ran, with the original state values.
    pub fn root(&self) -> State {
        self.base.with_output(self.vertex.clone(), 0)
    }

    /// The content of the writable bind mount at `dest` after the process ran.
    pub fn mount(&self, dest: &str) -> Option<State> {
        let dest = paths::join(self.base.cwd(), dest);
        self.mount_outputs
            .iter()
            .find(|(d, _)| *d == dest)
            .map(|(_, o)| self.base.with_output(self.vertex.clone(), *o))
    }

    /// The digest of the exec node.
    pub fn digest(&self) -> crate::Digest {
        self.vertex.digest
    }

    /// Replaces the exec node's metadata (the digest does not change).
    pub fn with_metadata(mut self, metadata: OpMetadata) -> Self {
        self.vertex = self.vertex.with_metadata(metadata);
        self
    }

    /// Sets the exec node's progress name.
    pub fn named(self, name: impl Into<String>) -> Self {
        let mut metadata = self.vertex.metadata.clone();
        metadata
            .description
            .insert(crate::op::CUSTOM_NAME.to_owned(), name.into());
        self.with_metadata(metadata)
    }
}
