//! Adapters from the solver's results to `dray_fsutil`'s filesystem views, content hashes and
//! file actions.
//!
//! A [`Tree`] describes a result as a filesystem: the build context (a host directory filtered
//! by `.dockerignore`, owners reported as 0:0, as BuildKit receives a context) or a stack of
//! snapshot layers merged with overlay rules. [`contenthash`] keys `COPY` on what it reads;
//! [`actions`] maps LLB file actions onto `dray_fsutil::fileop`.

pub(crate) mod actions;
pub(crate) mod contenthash;

use std::path::PathBuf;
use std::sync::Arc;

use dray_fsutil::dockerignore::Patterns;
use dray_fsutil::tree::{ChainTree, DirTree};

use crate::error::OpError;

/// A read-only filesystem a result stands for.
#[derive(Debug, Clone)]
pub(crate) enum Tree {
    /// Nothing (scratch).
    Empty,
    /// A host directory with `.dockerignore` patterns: excluded paths do not exist.
    Dir {
        /// The directory.
        root: PathBuf,
        /// The exclusions.
        patterns: Arc<Patterns>,
    },
    /// Snapshot layer directories, **root first**.
    Chain {
        /// The layers.
        layers: Vec<PathBuf>,
    },
}

impl Tree {
    /// Opens the view.
    pub(crate) fn open(&self) -> Result<Box<dyn dray_fsutil::tree::Tree>, OpError> {
        Ok(match self {
            Tree::Dir { root, patterns } => Box::new(
                DirTree::open(root)?
                    .with_patterns((**patterns).clone())
                    .with_owner_reset(),
            ),
            Tree::Empty | Tree::Chain { .. } => Box::new(self.chain()?),
        })
    }

    /// The view as a layer stack, for a destination. A local directory cannot be one.
    pub(crate) fn chain(&self) -> Result<ChainTree, OpError> {
        match self {
            Tree::Empty => Ok(ChainTree::new(Vec::<PathBuf>::new())?),
            Tree::Chain { layers } => Ok(ChainTree::new(layers.iter().rev())?),
            Tree::Dir { .. } => Err(OpError::UnsupportedSource {
                id: "local://context".into(),
                reason: "a local directory cannot be the base of a file op",
            }),
        }
    }

    /// Whether uids and gids are part of this tree's content (not for the build context).
    pub(crate) fn hashes_owner(&self) -> bool {
        !matches!(self, Tree::Dir { .. })
    }

    /// The scope of the content-hash memo: the context directory, or all snapshots (whose
    /// files' stamps include their inode, so one scope is enough).
    pub(crate) fn memo_scope(&self) -> String {
        match self {
            Tree::Dir { root, .. } => format!("context:{}", root.display()),
            Tree::Empty | Tree::Chain { .. } => "snapshots".to_owned(),
        }
    }
}
