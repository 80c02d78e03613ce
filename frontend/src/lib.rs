//! The Dockerfile frontend of dray: from Dockerfile bytes to typed, validated stages.
//!
//! The pipeline has five layers, each usable and tested on its own, as in BuildKit's
//! `frontend/dockerfile`:
//!
//! 1. [`parser`] turns bytes into an [`parser::Ast`]: directives, continuation lines, heredocs,
//!    JSON (exec) form, flags and per-instruction argument shapes. It is checked byte-for-byte
//!    against BuildKit's parser fixtures through [`parser::Ast::dump`].
//! 2. [`shell`] is the word lexer: quote removal, escapes and `${VAR:-word}`-style expansion,
//!    checked against BuildKit's lexer vectors.
//! 3. [`instructions`] turns nodes into typed commands with validated flags, grouped by stage.
//! 4. [`stages`] resolves the stage graph for a build (`--target`, `COPY --from`, global and
//!    stage ARGs, build args, platform ARGs) and expands every instruction's words with the
//!    environment in effect at its line.
//!
//! 5. [`convert`] turns the stages into an op graph ([`dray_llb::Definition`]) and the image
//!    config, as BuildKit's `dockerfile2llb`, asking an [`convert::ImageResolver`] for base
//!    images.
//!
//! What this crate is **not**: it does no I/O beyond what its caller hands it, knows nothing of
//! registries or image stores (base images come through [`convert::ImageResolver`]), and never
//! runs anything.
//!
//! Start reading at [`load`], which runs the first four layers; then [`parser::parse`],
//! [`instructions`], [`stages::resolve`] and [`convert::convert`].
//!
//! Every error carries a [`Span`] into the original source, so the binary can print the file,
//! line and column with a caret under the offending text.

#![deny(missing_docs)]

pub mod convert;
pub mod instructions;
pub mod parser;
pub mod shell;
pub mod span;
pub mod stages;

pub use span::{LineColumn, LineIndex, Span};

/// The op-graph vocabulary of [`convert`]'s API, re-exported so callers use the same version.
pub use dray_llb;

/// Any error of the frontend. Every variant knows where in the Dockerfile it happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a Dockerfile (BuildKit's parser would reject them too).
    #[error(transparent)]
    Parse(#[from] parser::Error),
    /// An instruction is unknown or malformed (a bad flag, a missing argument, ...).
    #[error(transparent)]
    Instruction(#[from] instructions::Error),
    /// The stages do not form a valid graph, or a variable could not be expanded.
    #[error(transparent)]
    Stage(#[from] stages::Error),
    /// The stages could not be turned into an op graph (an unknown base image, a bad
    /// `--checksum`, ...).
    #[error(transparent)]
    Convert(#[from] convert::Error),
}

impl Error {
    /// Where in the Dockerfile the error is.
    pub fn span(&self) -> Span {
        match self {
            Error::Parse(err) => err.span(),
            Error::Instruction(err) => err.span(),
            Error::Stage(err) => err.span(),
            Error::Convert(err) => err.span(),
        }
    }
}

/// The frontend's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Dockerfile taken through every frontend layer.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parse tree (with the parser's warnings).
    pub ast: parser::Ast,
    /// The typed stages, unexpanded.
    pub dockerfile: instructions::Dockerfile,
    /// The stages the build needs, in dependency order, with variables expanded.
    pub graph: stages::StageGraph,
}

/// Parses `source`, types its instructions and resolves the stage graph for `options`, with
/// no knowledge of base images (their environment is empty).
///
/// ```
/// let options = dray_frontend::stages::ResolveOptions::default();
/// let loaded = dray_frontend::load(b"FROM scratch AS a\nENV X=1\nWORKDIR /$X\n", &options)?;
/// assert_eq!(loaded.graph.stages.len(), 1);
/// # Ok::<(), dray_frontend::Error>(())
/// ```
pub fn load(source: &[u8], options: &stages::ResolveOptions) -> Result<Loaded> {
    let ast = parser::parse(source)?;
    let dockerfile = instructions::parse(&ast)?;
    let graph = stages::resolve(&dockerfile, options)?;
    Ok(Loaded {
        ast,
        dockerfile,
        graph,
    })
}
