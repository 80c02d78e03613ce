//! ONBUILD triggers of a base *stage*: BuildKit runs them at the start of every stage built
//! `FROM` that stage (`initOnBuildTriggers`), parsing each trigger text again. Triggers do not
//! carry over further: a grandchild does not run them. (Triggers stored in a base *image*'s
//! config need the image, which the converter has.)

use crate::instructions::{self, Command, Origin, Stage};
use crate::parser::{self, Node};

use super::error::{Error, TriggerError};
use super::graph::Dependency;

/// The triggers a stage runs and the dependencies they add.
#[derive(Debug, Clone, Default)]
pub(crate) struct Triggers {
    /// The trigger commands, unexpanded, in order.
    pub(crate) commands: Vec<Command>,
    /// Stages they use.
    pub(crate) deps: Vec<Dependency>,
    /// Images they use as sources.
    pub(crate) images: Vec<String>,
}

/// Points every span of `node` at the FROM that runs it, as BuildKit resets a trigger's
/// location to the stage's.
pub(crate) fn relocate(node: &mut Node, origin: &Origin) {
    node.span = origin.span;
    node.keyword_span = origin.span;
    node.start_line = origin.start_line;
    node.end_line = origin.end_line;
    node.flags.iter_mut().for_each(|f| f.span = origin.span);
    node.args.iter_mut().for_each(|a| a.span = origin.span);
    node.heredocs.iter_mut().for_each(|h| h.span = origin.span);
    if let Some(inner) = node.onbuild.as_deref_mut() {
        relocate(inner, origin);
    }
}

/// The commands the ONBUILD instructions of `parent` add to a stage whose FROM is `origin`.
pub(crate) fn triggers(parent: &Stage, origin: &Origin) -> Result<Vec<Command>, Error> {
    let mut commands = Vec::new();
    for command in &parent.commands {
        let Command::Onbuild(onbuild) = command else {
            continue;
        };
        let fail = |reason: TriggerError| Error::OnbuildTrigger {
            expression: onbuild.expression.clone(),
            reason,
            span: origin.span,
        };
        let mut ast = parser::parse(onbuild.expression.as_bytes()).map_err(|e| fail(e.into()))?;
        if ast.instructions.len() != 1 {
            return Err(fail(TriggerError::NotSingle));
        }
        let mut node = ast.instructions.remove(0);
        relocate(&mut node, origin);
        commands.push(instructions::parse_command(&node)?);
    }
    Ok(commands)
}
