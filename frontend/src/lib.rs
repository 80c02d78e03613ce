//! The Dockerfile frontend of dray: from Dockerfile bytes to typed, validated stages.
//!
//! The pipeline has three layers, each usable and tested on its own, as in BuildKit's
//! `frontend/dockerfile`:
//!
//! 1. [`parser`] turns bytes into an [`parser::Ast`]: directives, continuation lines, heredocs,
//!    JSON (exec) form, flags and per-instruction argument shapes. It is checked byte-for-byte
//!    against BuildKit's parser fixtures through [`parser::Ast::dump`].
//! 2. [`shell`] is the word lexer: quote removal, escapes and `${VAR:-word}`-style expansion,
//!    checked against BuildKit's lexer vectors.
//! 3. [`instructions`] turns nodes into typed commands with validated flags, and groups them into
//!    stages with the stage graph (`--target`, `COPY --from`, ARG scoping).
//!
//! What this crate is **not**: it does no I/O beyond what its caller hands it, knows nothing of
//! images, registries or the op graph, and never runs anything. Turning stages into an op graph
//! is the converter's job.
//!
//! Start reading at [`parser::parse`], then [`instructions`].
//!
//! Every error carries a [`Span`] into the original source, so the binary can print the file,
//! line and column with a caret under the offending text.

#![deny(missing_docs)]

pub mod instructions;
pub mod parser;
pub mod shell;
pub mod span;
pub mod stages;

pub use span::{LineColumn, LineIndex, Span};
