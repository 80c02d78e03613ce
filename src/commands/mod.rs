//! One module per command.

use std::process::ExitCode;

use crate::cli::{Cli, Command, DebugCommand};

pub(crate) fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Debug(DebugCommand::Parse(args)) => {
            eprintln!("dray debug parse {}: the parser is being written", args.file.display());
            ExitCode::FAILURE
        }
    }
}
