//! [`ResultRef`]: one output of a solved vertex.

use std::path::PathBuf;
use std::sync::Arc;

use dray_cache::{Committed, Lease, SnapshotId, Store};

use crate::fs::Tree;

/// One output of a solved vertex: a stack of committed snapshots (root first), a view of a
/// local directory, or nothing (scratch).
///
/// A merge's result is the concatenation of its inputs' chains, so a chain is a list of
/// snapshot IDs rather than one [`Committed`]: it may not follow the snapshots' parent links.
/// Holding a `ResultRef` keeps the solve's [`Lease`] alive, so a concurrent prune cannot remove
/// its snapshots.
#[derive(Debug, Clone)]
pub struct ResultRef {
    kind: Kind,
    _lease: Arc<Lease>,
}

#[derive(Debug, Clone)]
enum Kind {
    Snapshots {
        chain: Vec<SnapshotId>,
        top: Option<Committed>,
    },
    Local(Tree),
}

impl ResultRef {
    /// The empty filesystem (scratch, or a merge of empty inputs).
    pub(crate) fn empty(lease: Arc<Lease>) -> Self {
        Self::chain(Vec::new(), None, lease)
    }

    /// A chain of committed snapshots; `top` is the record-able snapshot when the chain follows
    /// parent links (not for merges).
    pub(crate) fn chain(chain: Vec<SnapshotId>, top: Option<Committed>, lease: Arc<Lease>) -> Self {
        Self {
            kind: Kind::Snapshots { chain, top },
            _lease: lease,
        }
    }

    /// A committed snapshot with its whole chain.
    pub(crate) fn committed(c: Committed, lease: Arc<Lease>) -> Self {
        let chain = c.chain.clone();
        Self::chain(chain, Some(c), lease)
    }

    /// A local directory view (the build context).
    pub(crate) fn local(tree: Tree, lease: Arc<Lease>) -> Self {
        Self {
            kind: Kind::Local(tree),
            _lease: lease,
        }
    }

    /// The snapshot chain, root first; empty for scratch and for a local view.
    pub fn chain_ids(&self) -> &[SnapshotId] {
        match &self.kind {
            Kind::Snapshots { chain, .. } => chain,
            Kind::Local(_) => &[],
        }
    }

    /// The top snapshot with its parent-linked chain, when the result is one (not a merge,
    /// not empty, not a local view).
    pub fn committed_top(&self) -> Option<&Committed> {
        match &self.kind {
            Kind::Snapshots { top, .. } => top.as_ref(),
            Kind::Local(_) => None,
        }
    }

    /// Whether this is the empty filesystem.
    pub fn is_empty(&self) -> bool {
        matches!(&self.kind, Kind::Snapshots { chain, .. } if chain.is_empty())
    }

    /// The host directories of the chain's layers, root first (`snapshots/<id>/fs`).
    pub fn layer_dirs(&self, store: &Store) -> Vec<PathBuf> {
        self.chain_ids()
            .iter()
            .map(|id| store.fs_path(id))
            .collect()
    }

    /// For a local directory view: the host directory.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Local(Tree::Dir { root, .. }) => Some(root),
            _ => None,
        }
    }

    /// A read-only view of the result.
    pub(crate) fn tree(&self, store: &Store) -> Tree {
        match &self.kind {
            Kind::Local(t) => t.clone(),
            Kind::Snapshots { chain, .. } if chain.is_empty() => Tree::Empty,
            Kind::Snapshots { chain, .. } => Tree::Chain {
                layers: chain.iter().map(|id| store.fs_path(id)).collect(),
            },
        }
    }

    /// A `Committed` to prepare a new snapshot on: the top with this result's full chain (which,
    /// after a merge, is longer than the top's parent links).
    pub(crate) fn as_parent(&self) -> Option<Committed> {
        let chain = self.chain_ids();
        let id = chain.last()?.clone();
        Some(Committed {
            parent: chain.len().checked_sub(2).map(|i| chain[i].clone()),
            id,
            chain: chain.to_vec(),
        })
    }
}
