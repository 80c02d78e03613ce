//! Renderers of build progress. Libraries report through [`dray_solver::Reporter`]; only the
//! binary decides what a person sees.

mod json;
mod plain;
mod tty;

use std::io::IsTerminal;

use dray_solver::{Event, Reporter};

use crate::cli::ProgressMode;

/// The renderer for `mode`. `auto` is `tty` when stderr is a terminal and `CI` is unset, as
/// `docker build` decides.
pub(crate) fn reporter(mode: ProgressMode) -> Box<dyn Reporter> {
    match resolve(
        mode,
        std::io::stderr().is_terminal(),
        std::env::var_os("CI").is_some(),
    ) {
        ProgressMode::Tty => Box::new(tty::TtyReporter::new()),
        ProgressMode::Rawjson => Box::new(json::JsonReporter),
        ProgressMode::Quiet => Box::new(Quiet),
        ProgressMode::Plain | ProgressMode::Auto => Box::new(plain::PlainReporter::default()),
    }
}

fn resolve(mode: ProgressMode, terminal: bool, ci: bool) -> ProgressMode {
    match mode {
        ProgressMode::Auto if terminal && !ci => ProgressMode::Tty,
        ProgressMode::Auto => ProgressMode::Plain,
        other => other,
    }
}

/// Shows nothing.
struct Quiet;

impl Reporter for Quiet {
    fn on_event(&self, _: &Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_tty_only_on_a_terminal_outside_ci() {
        assert_eq!(resolve(ProgressMode::Auto, true, false), ProgressMode::Tty);
        assert_eq!(resolve(ProgressMode::Auto, true, true), ProgressMode::Plain);
        assert_eq!(
            resolve(ProgressMode::Auto, false, false),
            ProgressMode::Plain
        );
        assert_eq!(
            resolve(ProgressMode::Rawjson, true, false),
            ProgressMode::Rawjson
        );
    }
}
