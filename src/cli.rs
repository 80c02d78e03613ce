//! Command-line argument types (clap). No logic lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A daemonless, BuildKit-style Dockerfile image builder.
#[derive(Debug, Parser)]
#[command(name = "dray", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Tools for looking inside dray's frontend.
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum DebugCommand {
    /// Print the parse tree of a Dockerfile in BuildKit's dump format.
    Parse(DebugParseArgs),
    /// Print the stages a build would run, in dependency order, with variables expanded (JSON).
    Stages(DebugStagesArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugParseArgs {
    /// The Dockerfile to parse (`-` reads standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    pub(crate) file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugStagesArgs {
    /// The Dockerfile to read (`-` reads standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    pub(crate) file: PathBuf,
    /// Set a build-time variable, as `docker build --build-arg` does. `NAME` alone takes the
    /// value from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub(crate) build_args: Vec<String>,
    /// The stage to build; stages it does not depend on are dropped.
    #[arg(long, value_name = "STAGE")]
    pub(crate) target: Option<String>,
    /// The target platform (`os/arch[/variant]`); the host's by default.
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
}
