//! ONBUILD triggers stored in a base *image*'s config: BuildKit runs them first in every stage
//! built `FROM` that image (`initOnBuildTriggers`), parsing each text again, and does not pass
//! them on. Triggers of a base *stage* are handled by [`crate::stages`]; these need the image
//! config, so the converter puts them in front of the stage's commands and resolves again.

use crate::instructions::{self, Dockerfile};
use crate::parser;
use crate::stages::onbuild::relocate;
use crate::stages::{Base, StageGraph};

use super::error::Error;
use super::images::{Memo, llb_platform};

/// A Dockerfile with image triggers put first in their stages.
pub(super) struct Injected {
    /// The Dockerfile to resolve and convert instead.
    pub(super) dockerfile: Dockerfile,
    /// Per stage index: how many of its first commands are image triggers.
    pub(super) counts: Vec<usize>,
}

/// `None` when no reachable image-based stage has triggers.
pub(super) fn inject(
    df: &Dockerfile,
    graph: &StageGraph,
    memo: &Memo<'_>,
) -> Result<Option<Injected>, Error> {
    let mut out: Option<Injected> = None;
    for rs in &graph.stages {
        let Base::Image { reference } = &rs.base else {
            continue;
        };
        let Ok(source) = memo.source(reference) else {
            continue; // reported when the stage is converted
        };
        let Some(config) = memo.peek(&source, &llb_platform(&rs.platform)) else {
            continue;
        };
        let triggers = config.config.on_build.unwrap_or_default();
        if triggers.is_empty() {
            continue;
        }
        let fail = |trigger: &str, source: crate::Error| Error::ImageTrigger {
            trigger: trigger.to_owned(),
            reference: reference.clone(),
            source: Box::new(source),
            span: rs.origin.span,
        };
        let mut commands = Vec::with_capacity(triggers.len());
        for trigger in &triggers {
            let mut ast = parser::parse(trigger.as_bytes()).map_err(|e| fail(trigger, e.into()))?;
            if ast.instructions.len() != 1 {
                let span = rs.origin.span;
                return Err(fail(
                    trigger,
                    crate::stages::Error::OnbuildTrigger {
                        expression: trigger.clone(),
                        reason: crate::stages::TriggerError::NotSingle,
                        span,
                    }
                    .into(),
                ));
            }
            let mut node = ast.instructions.remove(0);
            relocate(&mut node, &rs.origin);
            commands.push(instructions::parse_command(&node).map_err(|e| fail(trigger, e.into()))?);
        }
        let injected = out.get_or_insert_with(|| Injected {
            dockerfile: df.clone(),
            counts: vec![0; df.stages.len()],
        });
        if let (Some(stage), Some(count)) = (
            injected.dockerfile.stages.get_mut(rs.index),
            injected.counts.get_mut(rs.index),
        ) {
            stage.commands.splice(0..0, commands);
            *count = triggers.len();
        }
    }
    Ok(out)
}
