//! [`marshal`]: from a [`State`] to a deduplicated, topologically ordered [`Definition`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{State, Vertex};
use crate::definition::Definition;
use crate::digest::Digest;

/// Why a state cannot be marshaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    /// The head of a [`Definition`] is output 0 of its last node; a state that is another output
    /// (a mount of an exec) cannot be the head. Copy it into a new state first.
    #[error("the head must be output 0 of its node, but the state is output {output} of {digest}")]
    HeadNotFirstOutput {
        /// The producing node.
        digest: Digest,
        /// The state's output index.
        output: u32,
    },
}

/// Turns the graph reachable from `head` into a [`Definition`].
///
/// - Nodes with equal digests are emitted once, however many `Arc`s or branches lead to them.
/// - Order is a depth-first post-order over inputs in input order: deterministic, every input
///   before its consumer, and the head last.
/// - Metadata: for each digest, the first non-empty metadata met in that order wins.
pub fn marshal(head: &State) -> Result<Definition, MarshalError> {
    if head.output.index != 0 {
        return Err(MarshalError::HeadNotFirstOutput {
            digest: head.output.vertex.digest,
            output: head.output.index,
        });
    }
    let mut def = Definition::default();
    let mut emitted: HashSet<Digest> = HashSet::new();
    let mut metadata: BTreeMap<Digest, crate::OpMetadata> = BTreeMap::new();
    // Iterative post-order, so a long Dockerfile cannot overflow the stack.
    let mut stack: Vec<(Arc<Vertex>, usize)> = vec![(head.output.vertex.clone(), 0)];
    while let Some((vertex, next)) = stack.pop() {
        if next == 0 && !vertex.metadata.is_empty() {
            metadata
                .entry(vertex.digest)
                .or_insert_with(|| vertex.metadata.clone());
        }
        if emitted.contains(&vertex.digest) {
            continue;
        }
        if let Some(dep) = vertex.deps.get(next) {
            let dep = dep.vertex.clone();
            stack.push((vertex, next + 1));
            stack.push((dep, 0));
        } else {
            emitted.insert(vertex.digest);
            def.nodes.push(vertex.node.clone());
        }
    }
    def.metadata = metadata;
    Ok(def)
}
