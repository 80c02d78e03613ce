//! Typed instructions: the parse tree turned into validated commands grouped into stages, as
//! BuildKit's `frontend/dockerfile/instructions`.
//!
//! [`parse`] checks every instruction (known keyword, accepted flags, argument counts, flag
//! values such as `--mount`, `--chmod`, `--network`, HEALTHCHECK durations) and groups commands
//! under their FROM. Nothing is expanded here: `$var` stays in the values, because what a
//! variable holds depends on the stage walk done by [`crate::stages`], which also checks the
//! values that may contain variables (EXPOSE ports, STOPSIGNAL, `--chmod`, `--mount`) once they
//! are expanded.
//!
//! Where BuildKit has an error message, [`Error`] uses its wording (first letter lowercased).
//!
//! Differences from BuildKit, on purpose: STOPSIGNAL and `HEALTHCHECK NONE` reject unknown
//! flags (BuildKit never looks at their flags); `--mount` and `--chmod` values without a
//! variable are checked here, at parse time, rather than when the stage runs (same messages);
//! EXPOSE keeps its ports in source order (BuildKit sorts the raw words, which only changes the
//! history text); WORKDIR has no Windows drive-letter handling.

mod chmod;
mod command;
mod error;
mod flags;
mod mount;
mod parse;
pub(crate) mod serde_span;
mod suggest;
mod values;

use serde::Serialize;

use crate::parser::Ast;
use crate::span::Span;

pub use chmod::{ChmodSpec, SymbolicAction, SymbolicClause, parse_chmod};
pub use command::{
    AddCommand, ArgCommand, ArgDecl, Chmod, CmdCommand, Command, CommandLine, CopyCommand,
    EntrypointCommand, EnvCommand, ExposeCommand, Healthcheck, HealthcheckCommand, InlineFile,
    KeyValue, LabelCommand, MaintainerCommand, OnbuildCommand, Origin, RunCommand, ShellCommand,
    SourceContent, SourcesAndDest, StopSignalCommand, UserCommand, VolumeCommand, Word,
    WorkdirCommand,
};
pub use error::{ChmodError, Error, MountError, PortError};
pub use mount::{
    CacheSharing, Mount, MountExpander, MountType, NetworkMode, SecurityMode, parse_mount,
    parse_network, parse_security,
};
pub use suggest::did_you_mean;
pub use values::{PortSpec, Protocol, parse_go_duration, parse_port, parse_signal};

/// A Dockerfile as typed instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// ARG instructions before the first FROM (global scope: usable in FROM lines only, and
    /// in a stage after re-declaring them).
    pub meta_args: Vec<ArgCommand>,
    /// The stages, in file order.
    pub stages: Vec<Stage>,
    /// The escape token of the file, which variable expansion must use too.
    pub escape: char,
}

/// One build stage: a FROM and the commands up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position in the file, from 0 (what `COPY --from=<index>` refers to).
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// Where the name is.
    #[serde(serialize_with = "serde_span::option_span")]
    pub name_span: Option<Span>,
    /// The base as written (unexpanded): an image reference, `scratch`, or an earlier stage.
    pub base: String,
    /// Where the base is.
    #[serde(serialize_with = "serde_span::span")]
    pub base_span: Span,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Where the `--platform` flag is.
    #[serde(serialize_with = "serde_span::option_span")]
    pub platform_span: Option<Span>,
    /// The FROM instruction.
    pub origin: Origin,
    /// The commands of the stage, in order.
    pub commands: Vec<Command>,
}

impl Stage {
    /// The FROM instruction's span.
    pub fn span(&self) -> Span {
        self.origin.span
    }

    /// The name used in messages: the `AS` name, or `stage-<index>` as BuildKit does.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// Turns a parse tree into typed instructions grouped into stages.
///
/// Errors: an unknown instruction, an instruction other than ARG before the first FROM, and
/// anything wrong with an instruction's flags or arguments. A file without FROM gives a
/// [`Dockerfile`] without stages (the stage graph rejects it).
pub fn parse(ast: &Ast) -> Result<Dockerfile, Error> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.instructions {
        match parse::parse_instruction(node)? {
            parse::Instruction::From(from) => stages.push(Stage {
                index: stages.len(),
                name: from.name.as_ref().map(|w| w.value.clone()),
                name_span: from.name.as_ref().map(|w| w.span),
                base: from.base.value,
                base_span: from.base.span,
                platform: from.platform.as_ref().map(|w| w.value.clone()),
                platform_span: from.platform.as_ref().map(|w| w.span),
                origin: parse::origin(node),
                commands: Vec::new(),
            }),
            parse::Instruction::Command(command) => match stages.last_mut() {
                Some(stage) => stage.commands.push(*command),
                None => match *command {
                    Command::Arg(arg) => meta_args.push(arg),
                    _ => {
                        return Err(Error::NoBuildStage {
                            keyword: node.keyword.clone(),
                            span: node.span,
                        });
                    }
                },
            },
        }
    }
    Ok(Dockerfile {
        meta_args,
        stages,
        escape: ast.escape,
    })
}

/// Parses one instruction node that must be a command (not FROM), as BuildKit's
/// `ParseCommand`; used for ONBUILD triggers.
pub fn parse_command(node: &crate::parser::Node) -> Result<Command, Error> {
    match parse::parse_instruction(node)? {
        parse::Instruction::Command(command) => Ok(*command),
        parse::Instruction::From(_) => Err(Error::NotACommand {
            keyword: node.keyword.clone(),
            span: node.span,
        }),
    }
}

#[cfg(test)]
mod tests;
