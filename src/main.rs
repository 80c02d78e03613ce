//! `dray`: a daemonless, BuildKit-style Dockerfile image builder.
//!
//! This binary is only the command line and the renderers; the work happens in the library
//! crates of the workspace:
//!
//! | crate | what it does |
//! |---|---|
//! | `dray-frontend` (`frontend/`) | Dockerfile parser, shell-word expansion, typed instructions, stage graph |
//! | `dray-fsutil` (`fsutil/`) | `.dockerignore` patterns and filesystem helpers |
//!
//! In this crate: [`cli`] holds the clap types only, `commands/<verb>.rs` one command each,,
//! the renderers turn library errors and progress into output.

mod cli;
mod commands;
mod diagnostic;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    commands::run(cli)
}
