//! The immutable [`State`] builder: construct a graph without aliasing, then [`marshal`] it.
//!
//! As in BuildKit's `client/llb/state.go`, every method takes `self` and returns a new value, so a
//! `State` handed to two stages cannot be changed behind either one's back. A `State` is one
//! output of a node plus *state values* (env, cwd, user, platform) that become part of a node
//! only when an exec or file op uses them:
//!
//! ```
//! use dray_llb::{marshal, ExecSpec, FileChain, ImageRef, Mkdir, State};
//!
//! let base = State::image(ImageRef::parse("alpine").unwrap()).with_env("PATH", "/bin");
//! let built = base
//!     .with_cwd("/src")
//!     .file(FileChain::new().then(dray_llb::FileAction::Mkdir(Mkdir {
//!         path: "out".into(), // relative: resolved against the cwd, /src/out
//!         mode: 0o755,
//!         make_parents: true,
//!         owner: None,
//!         timestamp: None,
//!     })))
//!     .named("[build 2/3] WORKDIR /src")
//!     .run(ExecSpec::new(["sh", "-c", "make"]))
//!     .named("[build 3/3] RUN make")
//!     .root();
//! let def = marshal(&built).unwrap();
//! assert_eq!(def.nodes.len(), 3);
//! def.validate().unwrap();
//! ```

mod exec;
mod file;
mod marshal;
mod paths;

use std::sync::Arc;

pub use exec::{ExecSpec, ExecState, Mount};
pub use file::FileChain;
pub use marshal::{MarshalError, marshal};

use crate::digest::Digest;
use crate::op::{Input, Node, Op, OpMetadata};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::source::{LocalAttrs, SourceOp};

/// One output of a node plus the state values that later ops will use.
///
/// Cheap to clone: the node is shared behind an `Arc`.
#[derive(Debug, Clone)]
pub struct State {
    output: Output,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<String>,
    platform: Option<Platform>,
}

/// One output of a built vertex.
#[derive(Debug, Clone)]
struct Output {
    vertex: Arc<Vertex>,
    index: u32,
}

/// A node with its digest computed once, the outputs it consumes, and its metadata.
struct Vertex {
    node: Node,
    digest: Digest,
    deps: Vec<Output>,
    metadata: OpMetadata,
}

impl Vertex {
    fn new(op: Op, deps: Vec<Output>, platform: Option<Platform>) -> Arc<Self> {
        let inputs = deps
            .iter()
            .map(|d| Input {
                node: d.vertex.digest,
                output: d.index,
            })
            .collect();
        let node = Node {
            inputs,
            op,
            platform,
        };
        let digest = node.digest();
        Arc::new(Self {
            node,
            digest,
            deps,
            metadata: OpMetadata::default(),
        })
    }

    /// The same vertex (same digest) with other metadata.
    fn with_metadata(&self, metadata: OpMetadata) -> Arc<Self> {
        Arc::new(Self {
            node: self.node.clone(),
            digest: self.digest,
            deps: self.deps.clone(),
            metadata,
        })
    }
}

impl std::fmt::Debug for Vertex {
    /// Digest and kind only: the derived form would print the whole graph below the vertex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vertex")
            .field("digest", &self.digest)
            .field("op", &self.node.op.kind())
            .field("inputs", &self.deps.len())
            .finish()
    }
}

impl Output {
    fn input(&self) -> Input {
        Input {
            node: self.vertex.digest,
            output: self.index,
        }
    }
}

impl State {
    fn from_vertex(vertex: Arc<Vertex>, platform: Option<Platform>) -> Self {
        Self {
            output: Output { vertex, index: 0 },
            env: Vec::new(),
            cwd: None,
            user: None,
            platform,
        }
    }

    /// A source node built for `platform` (`None`: the build default); later ops inherit it.
    pub fn source(op: SourceOp, platform: Option<Platform>) -> Self {
        Self::from_vertex(
            Vertex::new(Op::Source(op), Vec::new(), platform.clone()),
            platform,
        )
    }

    /// The empty filesystem (`FROM scratch`).
    pub fn scratch() -> Self {
        Self::source(SourceOp::scratch(), None)
    }

    /// A registry image for the build's default platform. The converter then sets env, cwd and
    /// user from its config. For `FROM --platform=…` use [`State::source`] with a platform.
    pub fn image(reference: ImageRef) -> Self {
        Self::source(SourceOp::image(reference), None)
    }

    /// A local directory the client provides (`local://<name>`), e.g. the build context.
    pub fn local(name: impl Into<String>, attrs: LocalAttrs) -> Self {
        Self::source(SourceOp::local(name, attrs), None)
    }

    /// Sets `key` to `value` for later execs. A key that is already set keeps its position, so
    /// the env order (which is part of the exec digest) is the order keys were first set.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.env.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.env.push((key, value)),
        }
        self
    }

    /// Removes `key` from the environment.
    pub fn without_env(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// The environment, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The value of one variable.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets the working directory. A relative path is joined to the current one, as `WORKDIR`
    /// does; the result is cleaned (`.`/`..` resolved lexically, never above `/`).
    pub fn with_cwd(mut self, path: &str) -> Self {
        self.cwd = Some(paths::join(self.cwd(), path));
        self
    }

    /// The working directory; `/` if never set.
    pub fn cwd(&self) -> &str {
        self.cwd.as_deref().unwrap_or("/")
    }

    /// Sets the user (`USER`): `name`, `uid`, `name:group`, …
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The user; empty (root) if never set.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("")
    }

    /// Sets the platform for ops created from this state on.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// The platform new ops are built for.
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// The digest of the node this state is an output of.
    pub fn digest(&self) -> Digest {
        self.output.vertex.digest
    }

    /// Which output of that node.
    pub fn output_index(&self) -> u32 {
        self.output.index
    }

    /// The metadata of the producing node.
    pub fn metadata(&self) -> &OpMetadata {
        &self.output.vertex.metadata
    }

    /// Replaces the producing node's metadata. The digest does not change.
    pub fn with_metadata(mut self, metadata: OpMetadata) -> Self {
        self.output.vertex = self.output.vertex.with_metadata(metadata);
        self
    }

    /// Sets the producing node's progress name (`llb.customname`), keeping other metadata.
    pub fn named(self, name: impl Into<String>) -> Self {
        let mut metadata = self.metadata().clone();
        metadata
            .description
            .insert(crate::op::CUSTOM_NAME.to_owned(), name.into());
        self.with_metadata(metadata)
    }

    /// Stacks `states` in order (`COPY --link`). No states is scratch; one state is itself.
    /// The state values (env, cwd, user, platform) are the first state's.
    pub fn merge(states: impl IntoIterator<Item = State>) -> State {
        let states: Vec<State> = states.into_iter().collect();
        match states.as_slice() {
            [] => Self::scratch(),
            [only] => only.clone(),
            [first, ..] => {
                let deps = states.iter().map(|s| s.output.clone()).collect();
                let vertex = Vertex::new(
                    Op::Merge(crate::op::MergeOp {}),
                    deps,
                    first.platform.clone(),
                );
                Self {
                    output: Output { vertex, index: 0 },
                    ..first.clone()
                }
            }
        }
    }

    /// A new state that keeps this one's values but is `output` of `vertex`.
    fn with_output(&self, vertex: Arc<Vertex>, index: u32) -> Self {
        Self {
            output: Output { vertex, index },
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests;
