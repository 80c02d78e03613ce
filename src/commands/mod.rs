//! One module per command. Each returns `anyhow::Result`; `main` turns errors into output and
//! exit codes.

mod build;
pub(crate) mod builds;
pub(crate) mod cache;
mod debug;
mod explain;
mod images;
pub(crate) mod output;
mod record;
mod registry;
mod secrets;
mod transfer;

use anyhow::{Context, Result};
use dray_cache::{Root, Store};

use crate::cli::{Cli, Command, DebugCommand};

pub(crate) fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Debug(DebugCommand::Parse(args)) => debug::parse(args),
        Command::Debug(DebugCommand::Stages(args)) => debug::stages(args),
        Command::Debug(DebugCommand::Llb(args)) => debug::llb(&open_store(&cli)?, args),
        Command::Build(args) => {
            let store = open_store(&cli)?;
            let built = build::build(&store, args);
            // GC after the build, successful or not, and only when the store is over policy.
            cache::auto_gc(store);
            built
        }
        Command::Cache(command) => cache::run(&cli, command),
        Command::Builds(command) => builds::run(&open_store(&cli)?, command),
        Command::Images => images::list(&open_store(&cli)?),
        Command::Inspect(args) => images::inspect(&open_store(&cli)?, args),
        Command::History(args) => images::history(&open_store(&cli)?, args),
        Command::Tag(args) => images::tag(&open_store(&cli)?, args),
        Command::Rmi(args) => images::rmi(&open_store(&cli)?, args),
        Command::Save(args) => transfer::save(&open_store(&cli)?, args),
        Command::Load(args) => transfer::load(&open_store(&cli)?, args),
        Command::Pull(args) => registry::pull(&open_store(&cli)?, args),
        Command::Push(args) => registry::push(&open_store(&cli)?, args),
        Command::Login(args) => registry::login(args),
        Command::Logout(args) => registry::logout(args),
    }
}

/// Opens the store at `--root`, `$DRAY_ROOT`, or the default, with a shared lock.
pub(crate) fn open_store(cli: &Cli) -> Result<Store> {
    let root = Root::resolve(cli.root.clone()).context("failed to find dray's root directory")?;
    Store::open(&root)
        .with_context(|| format!("failed to open dray's store at {}", root.path().display()))
}
