//! One module per command. Each returns `anyhow::Result`; `main` turns errors into output and
//! exit codes.

mod debug;

use anyhow::Result;

use crate::cli::{Cli, Command, DebugCommand};

pub(crate) fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Debug(DebugCommand::Parse(args)) => debug::parse(&args),
        Command::Debug(DebugCommand::Stages(args)) => debug::stages(&args),
    }
}
