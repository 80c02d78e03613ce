//! `dray`: a daemonless, BuildKit-style Dockerfile image builder.
//!
//! This binary is only the command line and the renderers; the work happens in the library
//! crates of the workspace:
//!
//! | crate | what it does |
//! |---|---|
//! | `dray-frontend` (`frontend/`) | Dockerfile parser, shell-word expansion, typed instructions, stage graph, conversion to the op graph |
//! | `dray-llb` (`llb/`) | the op graph, digests, image references, the image config type |
//! | `dray-solver` (`solver/`) | scheduling, cache keys, ops, the `Reporter` trait |
//! | `dray-cache` (`cache/`) | the on-disk store: blobs, snapshots, SQLite index, tagged images |
//! | `dray-image` (`image/`) | layer writing, image assembly, the local image commands |
//! | `dray-fsutil` (`fsutil/`) | `.dockerignore`, in-root trees, file operations, content hashes |
//! | `dray-sandbox` (`sandbox/`) | runs `RUN` steps: namespaces, overlayfs, the `__sandbox-init` helper |
//!
//! In this crate: [`cli`] holds the clap types only, `commands/<verb>.rs` one command each
//! (`build` shows the whole data flow), [`ui`] renders progress (tty, plain, rawjson), and
//! [`diagnostic`] renders Dockerfile errors with file, line, column and a caret snippet.
//!
//! `dray __sandbox-init` is a hidden subcommand: the sandbox's init helper, which `dray build`
//! starts as `/proc/self/exe __sandbox-init` for each `RUN` step (see `dray_sandbox`). It is
//! matched before any argument parsing, so the helper stays a small single-threaded process.
//!
//! Exit codes: 0 success, 1 the command failed (a bad Dockerfile, a failed build), 2 bad
//! command-line usage (clap's own exit code), 130 / 143 a build cancelled by SIGINT / SIGTERM
//! (see [`interrupt`]).

mod cli;
mod commands;
mod diagnostic;
mod interrupt;
mod ui;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(dray_sandbox::INIT_ARG)) {
        return ExitCode::from(u8::try_from(dray_sandbox::init_main()).unwrap_or(1));
    }
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints `err` to stderr and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    // A closed stdout (`dray debug parse | head -1`) is not a failure: the reader got what it
    // wanted. ripgrep treats it the same way.
    if err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let mut stderr = std::io::stderr().lock();
    if let Some(interrupted) = err.downcast_ref::<interrupt::Interrupted>() {
        let _ = writeln!(stderr, "{interrupted}");
        return ExitCode::from(interrupted.exit_code());
    }
    if let Some(rendered) = err.downcast_ref::<diagnostic::Rendered>() {
        let _ = write!(stderr, "{rendered}");
    } else {
        let _ = writeln!(stderr, "error: {err}");
        for cause in err.chain().skip(1) {
            let _ = writeln!(stderr, "  caused by: {cause}");
        }
    }
    ExitCode::FAILURE
}
