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
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugParseArgs {
    /// The Dockerfile to parse (`-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "Dockerfile")]
    pub(crate) file: PathBuf,
}
