//! The node types of the graph: [`Node`], [`Input`], [`Op`], [`MergeOp`] and the digest-free
//! [`OpMetadata`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::exec::ExecOp;
use crate::file::FileOp;
use crate::platform::Platform;
use crate::source::SourceOp;

/// One vertex of the graph. Its digest is the sha256 of its canonical encoding
/// ([`crate::encoding`]), which includes its inputs' digests, so digests are Merkle hashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// The outputs of other nodes this one consumes, by position.
    pub inputs: Vec<Input>,
    /// What the node does.
    pub op: Op,
    /// The platform it is built for; `None` means the build's default platform.
    pub platform: Option<Platform>,
}

/// A reference to one output of another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Input {
    /// The digest of the producing node.
    pub node: Digest,
    /// Which of its outputs.
    pub output: u32,
}

/// The operation of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A leaf: an image, a local directory, a download, or scratch.
    Source(SourceOp),
    /// Run a process.
    Exec(ExecOp),
    /// Edit files.
    File(FileOp),
    /// Stack the inputs' filesystems in order (`COPY --link`).
    Merge(MergeOp),
}

/// Stack the node's inputs, first at the bottom. Its only parameter is the inputs themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeOp {}

/// Facts about a node that must not change its identity: names, source spans, `--no-cache`.
///
/// Kept beside the graph in [`Definition::metadata`](crate::Definition::metadata), keyed by node
/// digest. Two builds that differ only in metadata share every cache entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMetadata {
    /// Free-form descriptions; [`CUSTOM_NAME`] is the progress name.
    pub description: BTreeMap<String, String>,
    /// Never reuse a cached result for this node (`--no-cache`, `--no-cache-filter`).
    pub ignore_cache: bool,
    /// Where in the Dockerfile the node comes from, for error messages.
    pub source_location: Option<SourceLocation>,
}

/// The description key of a node's progress name, e.g. `[build 3/5] RUN make` (BuildKit's key).
pub const CUSTOM_NAME: &str = "llb.customname";

/// A line range in a build file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    /// The file, as the user named it (`Dockerfile`).
    pub file: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
}

impl Op {
    /// A short name for printers: `source`, `exec`, `file`, `merge`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Source(_) => "source",
            Self::Exec(_) => "exec",
            Self::File(_) => "file",
            Self::Merge(_) => "merge",
        }
    }

    /// How many outputs a node with this op has; inputs may refer to `0..num_outputs()`.
    pub fn num_outputs(&self) -> u32 {
        match self {
            Self::Source(_) | Self::Merge(_) => 1,
            Self::Exec(e) => e.num_outputs(),
            Self::File(f) => f.num_outputs(),
        }
    }
}

impl OpMetadata {
    /// Metadata with only a progress name.
    pub fn named(name: impl Into<String>) -> Self {
        let mut m = Self::default();
        m.description.insert(CUSTOM_NAME.to_owned(), name.into());
        m
    }

    /// The progress name, if set.
    pub fn custom_name(&self) -> Option<&str> {
        self.description.get(CUSTOM_NAME).map(String::as_str)
    }

    /// Whether nothing is set (such metadata is not stored in a definition).
    pub fn is_empty(&self) -> bool {
        self.description.is_empty() && !self.ignore_cache && self.source_location.is_none()
    }
}
