//! The Dockerfile parser: bytes in, [`Ast`] out. (Being written.)

pub mod ast;

pub use ast::{Arg, Ast, Directive, Directives, Flag, Heredoc, Node, Warning};
