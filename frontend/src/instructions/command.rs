//! The typed commands: one struct per Dockerfile instruction, as BuildKit's `commands.go`.
//!
//! Values are kept *unexpanded* here (quotes and `$var` as written); the stage walker in
//! [`crate::stages`] expands the instructions that BuildKit expands, with the environment in
//! effect at that point. Every command keeps its [`Origin`] (span, keyword, original text) for
//! diagnostics and for the image history.

use std::time::Duration;

use serde::Serialize;

use crate::span::Span;

use super::chmod::ChmodSpec;
use super::mount::{Mount, NetworkMode, SecurityMode};
use super::serde_span;

/// Where an instruction came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The keyword as written (`RUN`, `run`).
    pub keyword: String,
    /// The whole instruction, heredoc bodies included.
    #[serde(serialize_with = "serde_span::span")]
    pub span: Span,
    /// The keyword alone.
    #[serde(serialize_with = "serde_span::span")]
    pub keyword_span: Span,
    /// The instruction text after joining continuation lines (BuildKit's `Original`), used for
    /// the image history's `created_by`.
    pub original: String,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line.
    pub end_line: usize,
}

/// A word of an instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    /// The text (unexpanded in [`super::Dockerfile`], expanded in a [`crate::stages::StageGraph`]).
    pub value: String,
    /// Where the word (or the flag carrying it) is.
    #[serde(serialize_with = "serde_span::span")]
    pub span: Span,
}

impl Word {
    pub(crate) fn new(value: impl Into<String>, span: Span) -> Self {
        Word {
            value: value.into(),
            span,
        }
    }
}

/// One `key=value` entry of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value; quotes are still in it until expansion removes them.
    pub value: String,
    /// Whether the legacy `ENV key value` form (no `=`) was used.
    pub legacy: bool,
    /// Where the entry is (best effort: the key's argument node).
    #[serde(serialize_with = "serde_span::span")]
    pub span: Span,
}

/// One `name[=default]` of an ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The variable name.
    pub name: String,
    /// The default, unexpanded (quotes kept) in the parse; `None` when declared without one.
    pub default: Option<String>,
    /// Where the word is.
    #[serde(serialize_with = "serde_span::span")]
    pub span: Span,
}

/// A heredoc made into a file for a RUN (BuildKit's `ShellInlineFile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    /// The heredoc delimiter word.
    pub name: String,
    /// The body.
    pub data: String,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
    /// Whether `$var` in the body is expanded (unquoted delimiter).
    pub expand: bool,
}

/// A command line of RUN, CMD or ENTRYPOINT (BuildKit's `ShellDependantCmdLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// The arguments: one string in shell form, the array elements in exec (JSON) form.
    pub args: Vec<String>,
    /// Shell form: the stage's SHELL is prepended when run.
    pub prepend_shell: bool,
    /// Heredoc bodies referenced by the command line.
    pub files: Vec<InlineFile>,
}

/// A source of COPY/ADD given inline as a heredoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceContent {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The body (leading tabs already removed for `<<-`).
    pub data: String,
    /// Whether `$var` in the body is expanded.
    pub expand: bool,
}

/// The sources and destination of COPY/ADD. The last argument is the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcesAndDest {
    /// Source paths (context paths, URLs, or stage paths with `--from`).
    pub sources: Vec<Word>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// The destination.
    pub dest: Word,
}

/// A `--chmod` value: the text as written and, once it is known (a literal, or after
/// expansion), the parsed mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chmod {
    /// The flag value.
    pub value: Word,
    /// The parsed mode; `None` while the value still contains a variable.
    pub mode: Option<ChmodSpec>,
}

/// `RUN [--mount=…] [--network=…] [--security=…] <command>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The command.
    pub command: CommandLine,
    /// `--mount` flags, in order.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
}

/// `COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]… <src>… <dest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyCommand {
    /// Where it came from.
    pub origin: Origin,
    /// Sources and destination.
    pub files: SourcesAndDest,
    /// `--from`: a stage name, a stage index, or an image reference. Never expanded.
    pub from: Option<Word>,
    /// `--chown=user[:group]`.
    pub chown: Option<Word>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<Word>,
}

/// `ADD [--chown] [--chmod] [--link] [--checksum] [--keep-git-dir] [--unpack] [--exclude]… <src>… <dest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddCommand {
    /// Where it came from.
    pub origin: Origin,
    /// Sources and destination.
    pub files: SourcesAndDest,
    /// `--chown=user[:group]`.
    pub chown: Option<Word>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// `--link`.
    pub link: bool,
    /// `--checksum=<digest>` for HTTP and git sources.
    pub checksum: Option<Word>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--unpack[=bool]`; `None` when not given (archives from the context are unpacked, URLs not).
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub exclude: Vec<Word>,
}

/// `ARG name[=default] …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The declarations, in order.
    pub args: Vec<ArgDecl>,
}

/// `ENV key=value …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The entries, in order.
    pub env: Vec<KeyValue>,
}

/// `LABEL key=value …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The entries, in order.
    pub labels: Vec<KeyValue>,
}

/// `WORKDIR <path>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkdirCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The path.
    pub path: Word,
}

/// `USER <user>[:<group>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The whole `user[:group]` value.
    pub user: Word,
}

impl UserCommand {
    /// The user and the optional group (split at the first `:`).
    pub fn user_and_group(&self) -> (&str, Option<&str>) {
        match self.user.value.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (&self.user.value, None),
        }
    }
}

/// `EXPOSE <port>[/<proto>] …`. Ports are checked with [`super::parse_port`] after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposeCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The port words, as written.
    pub ports: Vec<Word>,
}

/// `VOLUME <path> …` or `VOLUME ["path", …]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The paths.
    pub volumes: Vec<Word>,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmdCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The command.
    pub command: CommandLine,
}

/// `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntrypointCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The command (`ENTRYPOINT []` gives no arguments, which clears the entrypoint).
    pub command: CommandLine,
}

/// `SHELL ["executable", "parameters"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShellCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The shell and its arguments.
    pub shell: Vec<String>,
}

/// `STOPSIGNAL <signal>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignalCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The signal, checked with [`super::parse_signal`] after expansion.
    pub signal: Word,
}

/// The test of a HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Cmd {
        /// The test as stored in the image config: `["CMD", args…]` (exec form) or
        /// `["CMD-SHELL", "command"]` (shell form).
        test: Vec<String>,
        /// `--interval`; `None` when not given or 0.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`; `None` when not given.
        retries: Option<u32>,
    },
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The check.
    pub health: Healthcheck,
}

/// `ONBUILD <instruction>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnbuildCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The trigger keyword, uppercase (`RUN`).
    pub trigger: String,
    /// The trigger as stored in the image config: the original text with `ONBUILD` removed,
    /// heredoc bodies appended (as BuildKit does). Not expanded: it runs in the child build.
    pub expression: String,
}

/// `MAINTAINER <name>` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintainerCommand {
    /// Where it came from.
    pub origin: Origin,
    /// The maintainer.
    pub maintainer: String,
}

/// One instruction inside a stage (FROM starts a [`super::Stage`] instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "instruction")]
#[allow(missing_docs)]
pub enum Command {
    Add(AddCommand),
    Arg(ArgCommand),
    Cmd(CmdCommand),
    Copy(CopyCommand),
    Entrypoint(EntrypointCommand),
    Env(EnvCommand),
    Expose(ExposeCommand),
    Healthcheck(HealthcheckCommand),
    Label(LabelCommand),
    Maintainer(MaintainerCommand),
    Onbuild(OnbuildCommand),
    Run(RunCommand),
    Shell(ShellCommand),
    StopSignal(StopSignalCommand),
    User(UserCommand),
    Volume(VolumeCommand),
    Workdir(WorkdirCommand),
}

impl Command {
    /// Where the command came from.
    pub fn origin(&self) -> &Origin {
        match self {
            Command::Add(c) => &c.origin,
            Command::Arg(c) => &c.origin,
            Command::Cmd(c) => &c.origin,
            Command::Copy(c) => &c.origin,
            Command::Entrypoint(c) => &c.origin,
            Command::Env(c) => &c.origin,
            Command::Expose(c) => &c.origin,
            Command::Healthcheck(c) => &c.origin,
            Command::Label(c) => &c.origin,
            Command::Maintainer(c) => &c.origin,
            Command::Onbuild(c) => &c.origin,
            Command::Run(c) => &c.origin,
            Command::Shell(c) => &c.origin,
            Command::StopSignal(c) => &c.origin,
            Command::User(c) => &c.origin,
            Command::Volume(c) => &c.origin,
            Command::Workdir(c) => &c.origin,
        }
    }

    /// The instruction's span.
    pub fn span(&self) -> Span {
        self.origin().span
    }

    /// The instruction name, uppercase.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Add(_) => "ADD",
            Command::Arg(_) => "ARG",
            Command::Cmd(_) => "CMD",
            Command::Copy(_) => "COPY",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env(_) => "ENV",
            Command::Expose(_) => "EXPOSE",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Onbuild(_) => "ONBUILD",
            Command::Run(_) => "RUN",
            Command::Shell(_) => "SHELL",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::User(_) => "USER",
            Command::Volume(_) => "VOLUME",
            Command::Workdir(_) => "WORKDIR",
        }
    }
}
