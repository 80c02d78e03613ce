//! `dray debug …`: look inside the frontend.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::DebugParseArgs;
use crate::diagnostic;

/// Reads a Dockerfile from `path`, or from standard input when `path` is `-`.
pub(crate) fn read_dockerfile(path: &Path) -> Result<(String, Vec<u8>)> {
    if path == Path::new("-") {
        let mut source = Vec::new();
        std::io::stdin()
            .read_to_end(&mut source)
            .context("failed to read the Dockerfile from standard input")?;
        return Ok(("<stdin>".to_owned(), source));
    }
    let source = std::fs::read(path)
        .with_context(|| format!("failed to read the Dockerfile {}", path.display()))?;
    Ok((path.display().to_string(), source))
}

/// `dray debug parse`: print BuildKit's AST dump.
pub(crate) fn parse(args: &DebugParseArgs) -> Result<()> {
    let (name, source) = read_dockerfile(&args.file)?;
    let ast = dray_frontend::parser::parse(&source)
        .map_err(|err| diagnostic::render(&name, &source, err.span(), &err.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", ast.dump())?;
    Ok(())
}

/// `dray debug stages`: print the resolved stage graph as JSON.
pub(crate) fn stages(args: &crate::cli::DebugStagesArgs) -> Result<()> {
    let _ = args;
    anyhow::bail!("the stage graph is being written")
}
