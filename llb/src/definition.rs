//! [`Definition`]: a marshaled graph, and its structural [`validate`](Definition::validate).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::exec::MountKind;
use crate::file::{ActionInput, FileAction, Mode};
use crate::op::{Input, Node, Op, OpMetadata};

/// A whole build graph, as the converter hands it to the solver.
///
/// `nodes` are in topological order (every input refers to an earlier node) and the **last node
/// is the head**: its output 0 is the build result. [`crate::marshal`] produces this shape;
/// [`Definition::validate`] checks it for definitions from elsewhere (files, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// The nodes, topologically ordered, head last.
    pub nodes: Vec<Node>,
    /// Per-node metadata by node digest; not part of any digest.
    pub metadata: BTreeMap<Digest, OpMetadata>,
}

/// A structural problem in a [`Definition`]. Each variant names the node by digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// There are no nodes, so there is no head.
    #[error("the definition has no nodes, so no head")]
    Empty,
    /// The same node appears twice.
    #[error("node {digest} appears more than once")]
    DuplicateNode {
        /// The repeated node.
        digest: Digest,
    },
    /// An input names a node that is not earlier in the list: unknown, later (which is how a
    /// cycle would have to look), or the node itself.
    #[error("node {digest} input {index} refers to {input}, which is not an earlier node")]
    InputNotEarlier {
        /// The consuming node.
        digest: Digest,
        /// The position in its inputs.
        index: usize,
        /// The missing producer.
        input: Digest,
    },
    /// An input names an output the producer does not have.
    #[error("node {digest} input {index} uses output {output} of {input}, which has {outputs}")]
    OutputOutOfRange {
        /// The consuming node.
        digest: Digest,
        /// The position in its inputs.
        index: usize,
        /// The producer.
        input: Digest,
        /// The requested output.
        output: u32,
        /// How many outputs the producer has.
        outputs: u32,
    },
    /// The op itself is inconsistent (a bad index, a missing root mount, …).
    #[error("node {digest} ({kind}) is invalid: {problem}")]
    BadOp {
        /// The node.
        digest: Digest,
        /// Its op kind.
        kind: &'static str,
        /// What is wrong.
        problem: OpProblem,
    },
    /// The head node has no output 0.
    #[error("the head node {digest} has no output 0")]
    HeadWithoutOutput {
        /// The head.
        digest: Digest,
    },
    /// Metadata is attached to a digest that is not a node of this definition.
    #[error("metadata refers to {digest}, which is not a node of this definition")]
    OrphanMetadata {
        /// The unknown digest.
        digest: Digest,
    },
}

/// What is wrong inside one op (see [`ValidateError::BadOp`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpProblem {
    /// A source node has inputs.
    #[error("a source takes no inputs, found {count}")]
    SourceWithInputs {
        /// How many inputs it has.
        count: usize,
    },
    /// The source attributes do not fit its scheme.
    #[error("attributes do not match the {scheme} scheme")]
    SourceAttrsMismatch {
        /// The scheme of the identifier.
        scheme: &'static str,
    },
    /// The source identifier does not survive its own string form (e.g. an empty local name),
    /// so the node could not be stored and read back.
    #[error("source identifier {id:?} does not parse back to itself")]
    SourceIdNotCanonical {
        /// The identifier as displayed.
        id: String,
    },
    /// An exec has no arguments.
    #[error("exec has no arguments")]
    EmptyArgs,
    /// An env entry is not `KEY=value` with a non-empty key.
    #[error("env entry {entry:?} is not KEY=value")]
    BadEnv {
        /// The entry.
        entry: String,
    },
    /// An exec does not have exactly one mount at `/`.
    #[error("exec needs exactly one mount at `/`, found {count}")]
    RootMount {
        /// How many mounts target `/`.
        count: usize,
    },
    /// A path that must be absolute is not.
    #[error("{what} path {path:?} is not absolute")]
    RelativePath {
        /// Which path (`cwd`, `mount`, `mkdir`, …).
        what: &'static str,
        /// The path.
        path: String,
    },
    /// A mount or step refers to an input index past the node's inputs.
    #[error("refers to input {index}, but the node has {count} inputs")]
    InputIndex {
        /// The index used.
        index: u32,
        /// How many inputs there are.
        count: usize,
    },
    /// A file step refers to itself or a later step.
    #[error("step {step} refers to step {action}, which is not earlier")]
    ActionIndex {
        /// The step.
        step: usize,
        /// The referenced step.
        action: u32,
    },
    /// A copy has no secondary input, or another action has one.
    #[error("step {step}: {action} {expectation}")]
    SecondaryInput {
        /// The step.
        step: usize,
        /// The action kind.
        action: &'static str,
        /// What was expected.
        expectation: &'static str,
    },
    /// Two mounts or steps claim the same output, or outputs leave a gap.
    #[error("outputs must be 0..n, each used once")]
    Outputs,
    /// A file op has no actions.
    #[error("file op has no actions")]
    NoSteps,
    /// A merge has no inputs.
    #[error("merge has no inputs")]
    EmptyMerge,
    /// An octal mode above `0o7777`.
    #[error("mode {mode:#o} is out of range")]
    BadMode {
        /// The mode.
        mode: u32,
    },
}

impl Definition {
    /// The digest of every node, in order.
    pub fn digests(&self) -> Vec<Digest> {
        self.nodes.iter().map(Node::digest).collect()
    }

    /// The head: output 0 of the last node.
    pub fn head(&self) -> Option<Input> {
        self.nodes.last().map(|n| Input {
            node: n.digest(),
            output: 0,
        })
    }

    /// Checks the structure: a head exists, nodes are unique, every input refers to an existing
    /// output of an earlier node (so there are no cycles), ops are internally consistent, and
    /// metadata belongs to nodes.
    pub fn validate(&self) -> Result<(), ValidateError> {
        let mut outputs: HashMap<Digest, u32> = HashMap::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let digest = node.digest();
            for (index, input) in node.inputs.iter().enumerate() {
                let Some(&count) = outputs.get(&input.node) else {
                    return Err(ValidateError::InputNotEarlier {
                        digest,
                        index,
                        input: input.node,
                    });
                };
                if input.output >= count {
                    return Err(ValidateError::OutputOutOfRange {
                        digest,
                        index,
                        input: input.node,
                        output: input.output,
                        outputs: count,
                    });
                }
            }
            check_op(node).map_err(|problem| ValidateError::BadOp {
                digest,
                kind: node.op.kind(),
                problem,
            })?;
            if outputs.insert(digest, node.op.num_outputs()).is_some() {
                return Err(ValidateError::DuplicateNode { digest });
            }
        }
        let head = self.nodes.last().ok_or(ValidateError::Empty)?;
        if head.op.num_outputs() == 0 {
            return Err(ValidateError::HeadWithoutOutput {
                digest: head.digest(),
            });
        }
        if let Some(digest) = self.metadata.keys().find(|d| !outputs.contains_key(d)) {
            return Err(ValidateError::OrphanMetadata { digest: *digest });
        }
        Ok(())
    }
}

fn check_op(node: &Node) -> Result<(), OpProblem> {
    let n_inputs = node.inputs.len();
    let input_index = |index: u32| {
        if (index as usize) < n_inputs {
            Ok(())
        } else {
            Err(OpProblem::InputIndex {
                index,
                count: n_inputs,
            })
        }
    };
    match &node.op {
        Op::Source(s) => {
            if n_inputs != 0 {
                return Err(OpProblem::SourceWithInputs { count: n_inputs });
            }
            if s.id.to_string().parse::<crate::SourceId>().as_ref() != Ok(&s.id) {
                return Err(OpProblem::SourceIdNotCanonical {
                    id: s.id.to_string(),
                });
            }
            if let crate::SourceAttrs::Http(h) = &s.attrs
                && let Some(mode) = h.mode
                && mode > 0o7777
            {
                return Err(OpProblem::BadMode { mode });
            }
            if !s.attrs_match_scheme() {
                return Err(OpProblem::SourceAttrsMismatch {
                    scheme: s.id.scheme(),
                });
            }
        }
        Op::Exec(e) => {
            if e.meta.args.is_empty() {
                return Err(OpProblem::EmptyArgs);
            }
            if let Some(entry) = e
                .meta
                .env
                .iter()
                .find(|v| v.split_once('=').is_none_or(|(k, _)| k.is_empty()))
            {
                return Err(OpProblem::BadEnv {
                    entry: entry.clone(),
                });
            }
            absolute("cwd", &e.meta.cwd)?;
            let roots = e.mounts.iter().filter(|m| m.dest == "/").count();
            if roots != 1 {
                return Err(OpProblem::RootMount { count: roots });
            }
            for m in &e.mounts {
                absolute("mount", &m.dest)?;
                if let Some(i) = m.input {
                    input_index(i)?;
                }
                if let MountKind::Secret(s) | MountKind::Ssh(s) = &m.kind
                    && s.mode > 0o7777
                {
                    return Err(OpProblem::BadMode { mode: s.mode });
                }
            }
            contiguous(e.mounts.iter().filter_map(|m| m.output))?;
        }
        Op::File(f) => {
            if f.actions.is_empty() {
                return Err(OpProblem::NoSteps);
            }
            for (step, s) in f.actions.iter().enumerate() {
                for input in std::iter::once(&s.input).chain(&s.secondary_input) {
                    match *input {
                        ActionInput::Input(i) => input_index(i)?,
                        ActionInput::Action(a) if (a as usize) < step => {}
                        ActionInput::Action(action) => {
                            return Err(OpProblem::ActionIndex { step, action });
                        }
                    }
                }
                let is_copy = matches!(s.action, FileAction::Copy(_));
                if is_copy != s.secondary_input.is_some() {
                    let expectation = if is_copy {
                        "needs a secondary input"
                    } else {
                        "takes no secondary input"
                    };
                    return Err(OpProblem::SecondaryInput {
                        step,
                        action: s.action.kind(),
                        expectation,
                    });
                }
                check_action(&s.action)?;
            }
            contiguous(f.actions.iter().filter_map(|s| s.output))?;
        }
        Op::Merge(_) => {
            if n_inputs == 0 {
                return Err(OpProblem::EmptyMerge);
            }
        }
    }
    Ok(())
}

fn check_action(action: &FileAction) -> Result<(), OpProblem> {
    let mode = |mode: u32| {
        if mode > 0o7777 {
            Err(OpProblem::BadMode { mode })
        } else {
            Ok(())
        }
    };
    match action {
        FileAction::Copy(c) => {
            absolute("copy destination", &c.dest)?;
            if let Some(Mode::Octal(m)) = c.mode {
                mode(m)?;
            }
        }
        FileAction::Mkdir(m) => {
            absolute("mkdir", &m.path)?;
            mode(m.mode)?;
        }
        FileAction::Mkfile(m) => {
            absolute("mkfile", &m.path)?;
            mode(m.mode)?;
        }
        FileAction::Rm(r) => absolute("rm", &r.path)?,
        FileAction::Symlink(s) => absolute("symlink", &s.newpath)?,
    }
    Ok(())
}

/// A path the executor will use as-is must be absolute.
fn absolute(what: &'static str, path: &str) -> Result<(), OpProblem> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(OpProblem::RelativePath {
            what,
            path: path.to_owned(),
        })
    }
}

/// Output indices must be exactly `0..n`, each once.
fn contiguous(outputs: impl Iterator<Item = u32>) -> Result<(), OpProblem> {
    let mut seen: Vec<u32> = outputs.collect();
    seen.sort_unstable();
    if seen
        .iter()
        .enumerate()
        .all(|(i, o)| i as u64 == u64::from(*o))
    {
        Ok(())
    } else {
        Err(OpProblem::Outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecSpec, FileChain, ImageRef, Mkdir, Mount, State, marshal};

    /// image -> exec (with a writable bind mount of the context) -> file (mkdir).
    fn sample() -> Definition {
        let ctx = State::local("context", crate::LocalAttrs::default());
        let run = State::image(ImageRef::parse("alpine").unwrap())
            .run(ExecSpec::new(["make"]).mount(Mount::bind("/src", ctx)))
            .root()
            .named("RUN make");
        let head = run.file(FileChain::new().then(FileAction::Mkdir(Mkdir {
            path: "/out".into(),
            mode: 0o755,
            make_parents: false,
            owner: None,
            timestamp: None,
        })));
        let def = marshal(&head).unwrap();
        def.validate().unwrap();
        def
    }

    fn exec_mut(def: &mut Definition) -> &mut crate::ExecOp {
        def.nodes
            .iter_mut()
            .find_map(|n| match &mut n.op {
                Op::Exec(e) => Some(e),
                _ => None,
            })
            .unwrap()
    }

    /// Validates `def`, expecting a `BadOp` naming the exec node.
    fn bad_exec(def: &Definition) -> OpProblem {
        let exec = def
            .nodes
            .iter()
            .find(|n| n.op.kind() == "exec")
            .unwrap()
            .digest();
        match def.validate() {
            Err(ValidateError::BadOp {
                digest,
                kind: "exec",
                problem,
            }) if digest == exec => problem,
            other => panic!("expected BadOp on the exec node, got {other:?}"),
        }
    }

    #[test]
    fn empty_definition_has_no_head() {
        assert_eq!(Definition::default().validate(), Err(ValidateError::Empty));
        assert_eq!(Definition::default().head(), None);
    }

    #[test]
    fn out_of_order_nodes_are_rejected_naming_the_consumer() {
        let mut def = sample();
        def.nodes.swap(0, 2); // the exec now comes before the image it runs on
        let exec = def.nodes[0].digest();
        let err = def.validate().unwrap_err();
        assert!(
            matches!(err, ValidateError::InputNotEarlier { digest, index: 0, .. } if digest == exec),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&exec.to_string()),
            "the message names the digest"
        );
    }

    #[test]
    fn unknown_and_self_inputs_are_rejected() {
        let mut def = sample();
        let last = def.nodes.len() - 1;
        def.nodes[last].inputs[0].node = Digest::of("nowhere");
        let head = def.nodes[last].digest();
        assert_eq!(
            def.validate(),
            Err(ValidateError::InputNotEarlier {
                digest: head,
                index: 0,
                input: Digest::of("nowhere")
            })
        );
    }

    #[test]
    fn output_index_must_exist() {
        let mut def = sample();
        let last = def.nodes.len() - 1;
        let producer = def.nodes[last].inputs[0].node;
        def.nodes[last].inputs[0].output = 2; // the exec has outputs 0 (root) and 1 (/src)
        let head = def.nodes[last].digest();
        assert_eq!(
            def.validate(),
            Err(ValidateError::OutputOutOfRange {
                digest: head,
                index: 0,
                input: producer,
                output: 2,
                outputs: 2
            })
        );
        def.nodes[last].inputs[0].output = 1;
        def.validate().unwrap();
    }

    #[test]
    fn duplicate_nodes_and_orphan_metadata_are_rejected() {
        let mut def = sample();
        let first = def.nodes[0].clone();
        def.nodes.push(first.clone());
        assert_eq!(
            def.validate(),
            Err(ValidateError::DuplicateNode {
                digest: first.digest()
            })
        );

        let mut def = sample();
        def.metadata
            .insert(Digest::of("stray"), OpMetadata::named("ghost"));
        assert_eq!(
            def.validate(),
            Err(ValidateError::OrphanMetadata {
                digest: Digest::of("stray")
            })
        );
    }

    #[test]
    fn exec_consistency_is_checked() {
        let mut def = sample();
        exec_mut(&mut def).mounts.retain(|m| m.dest != "/");
        assert_eq!(bad_exec(&def), OpProblem::RootMount { count: 0 });

        let mut def = sample();
        exec_mut(&mut def).meta.args.clear();
        assert_eq!(bad_exec(&def), OpProblem::EmptyArgs);

        let mut def = sample();
        exec_mut(&mut def).meta.env = vec!["=x".into()];
        assert_eq!(bad_exec(&def), OpProblem::BadEnv { entry: "=x".into() });

        let mut def = sample();
        exec_mut(&mut def).meta.cwd = "rel".into();
        assert_eq!(
            bad_exec(&def),
            OpProblem::RelativePath {
                what: "cwd",
                path: "rel".into()
            }
        );

        let mut def = sample();
        exec_mut(&mut def).mounts[1].input = Some(7);
        assert_eq!(bad_exec(&def), OpProblem::InputIndex { index: 7, count: 2 });

        let mut def = sample();
        exec_mut(&mut def).mounts[1].output = Some(0);
        assert_eq!(bad_exec(&def), OpProblem::Outputs);

        let mut def = sample();
        exec_mut(&mut def).mounts[1].output = Some(2);
        assert_eq!(bad_exec(&def), OpProblem::Outputs, "a gap in outputs");
    }

    #[test]
    fn file_and_source_consistency_is_checked() {
        let mut def = sample();
        let last = def.nodes.len() - 1;
        let Op::File(f) = &mut def.nodes[last].op else {
            panic!()
        };
        f.actions[0].input = ActionInput::Action(0);
        let head = def.nodes[last].digest();
        assert_eq!(
            def.validate(),
            Err(ValidateError::BadOp {
                digest: head,
                kind: "file",
                problem: OpProblem::ActionIndex { step: 0, action: 0 }
            })
        );

        let mut def = sample();
        let Op::File(f) = &mut def.nodes[last].op else {
            panic!()
        };
        f.actions[0].secondary_input = Some(ActionInput::Input(0));
        assert!(matches!(
            def.validate(),
            Err(ValidateError::BadOp {
                problem: OpProblem::SecondaryInput { step: 0, .. },
                ..
            })
        ));

        let mut def = sample();
        let Op::File(f) = &mut def.nodes[last].op else {
            panic!()
        };
        let FileAction::Mkdir(m) = &mut f.actions[0].action else {
            panic!()
        };
        m.mode = 0o17777;
        assert!(matches!(
            def.validate(),
            Err(ValidateError::BadOp {
                problem: OpProblem::BadMode { mode: 0o17777 },
                ..
            })
        ));

        let mut def = sample();
        let Op::Source(s) = &mut def.nodes[0].op else {
            panic!()
        };
        s.attrs = crate::SourceAttrs::Local(crate::LocalAttrs::default());
        assert!(matches!(
            def.validate(),
            Err(ValidateError::BadOp {
                kind: "source",
                problem: OpProblem::SourceAttrsMismatch {
                    scheme: "docker-image"
                },
                ..
            })
        ));
    }

    #[test]
    fn source_ids_must_round_trip() {
        for (op, id) in [
            (
                crate::SourceOp::local("", crate::LocalAttrs::default()),
                "local://",
            ),
            (
                crate::SourceOp::oci_layout("/l", "bad ref"),
                "oci-layout:///l#bad ref",
            ),
            (
                crate::SourceOp::http("ftp://x", crate::HttpAttrs::default()),
                "ftp://x",
            ),
        ] {
            let node = Node {
                inputs: vec![],
                op: Op::Source(op),
                platform: None,
            };
            let def = Definition {
                nodes: vec![node.clone()],
                metadata: BTreeMap::new(),
            };
            assert_eq!(
                def.validate(),
                Err(ValidateError::BadOp {
                    digest: node.digest(),
                    kind: "source",
                    problem: OpProblem::SourceIdNotCanonical { id: id.into() }
                })
            );
        }
        let http = crate::SourceOp::http(
            "https://x/y",
            crate::HttpAttrs {
                mode: Some(0o10000),
                ..Default::default()
            },
        );
        let def = Definition {
            nodes: vec![Node {
                inputs: vec![],
                op: Op::Source(http),
                platform: None,
            }],
            metadata: BTreeMap::new(),
        };
        assert!(matches!(
            def.validate(),
            Err(ValidateError::BadOp {
                problem: OpProblem::BadMode { mode: 0o10000 },
                ..
            })
        ));
    }

    #[test]
    fn head_needs_an_output() {
        let mut def = sample();
        def.nodes.pop();
        def.metadata.clear();
        exec_mut(&mut def)
            .mounts
            .iter_mut()
            .for_each(|m| m.output = None);
        let head = def.nodes.last().unwrap().digest();
        assert_eq!(
            def.validate(),
            Err(ValidateError::HeadWithoutOutput { digest: head })
        );
    }

    #[test]
    fn serde_round_trips() {
        let def = sample();
        let json = serde_json::to_string(&def).unwrap();
        let back: Definition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, def);
        assert_eq!(back.digests(), def.digests());
    }
}
