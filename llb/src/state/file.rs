//! [`State::file`]: file ops in the builder.

use super::exec::Inputs;
use super::{State, Vertex, paths};
use crate::file::{ActionInput, Copy, FileAction, FileOp, FileStep};
use crate::op::Op;

/// A chain of file actions applied one after another to a state (BuildKit's `FileAction`
/// chaining: `Mkdir(...).Copy(...)`). The whole chain becomes one file node.
#[derive(Debug, Clone, Default)]
pub struct FileChain {
    steps: Vec<(FileAction, Option<State>)>,
}

impl FileChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an action that needs no source (mkdir, mkfile, rm, symlink). A copy added here
    /// has no source and fails validation; use [`FileChain::copy`].
    pub fn then(mut self, action: FileAction) -> Self {
        self.steps.push((action, None));
        self
    }

    /// Appends a copy from `from` (its `src` is resolved against `from`'s working directory).
    pub fn copy(mut self, from: &State, mut copy: Copy) -> Self {
        copy.src = paths::join(from.cwd(), &copy.src);
        self.steps
            .push((FileAction::Copy(copy), Some(from.clone())));
        self
    }

    /// Whether the chain has no actions.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl State {
    /// Applies `chain` to this state. Relative target paths resolve against this state's
    /// working directory. An empty chain returns the state unchanged.
    pub fn file(&self, chain: FileChain) -> State {
        if chain.is_empty() {
            return self.clone();
        }
        let mut inputs = Inputs::default();
        let base = inputs.index_of(&self.output);
        let last = chain.steps.len() - 1;
        let mut steps = Vec::with_capacity(chain.steps.len());
        for (i, (mut action, from)) in chain.steps.into_iter().enumerate() {
            resolve_targets(&mut action, self.cwd());
            let input = match i {
                0 => ActionInput::Input(base),
                _ => ActionInput::Action(u32::try_from(i - 1).unwrap_or(u32::MAX)),
            };
            steps.push(FileStep {
                input,
                secondary_input: from.map(|s| ActionInput::Input(inputs.index_of(&s.output))),
                output: (i == last).then_some(0),
                action,
            });
        }
        let vertex = Vertex::new(
            Op::File(FileOp { actions: steps }),
            inputs.0,
            self.platform.clone(),
        );
        self.with_output(vertex, 0)
    }
}

fn resolve_targets(action: &mut FileAction, cwd: &str) {
    let target = match action {
        FileAction::Copy(c) => &mut c.dest,
        FileAction::Mkdir(m) => &mut m.path,
        FileAction::Mkfile(m) => &mut m.path,
        FileAction::Rm(r) => &mut r.path,
        FileAction::Symlink(s) => &mut s.newpath,
    };
    *target = paths::join(cwd, target);
}
