//! The parse tree: a flat list of instruction nodes, as BuildKit's parser produces it.
//!
//! This is deliberately *syntax only*. Nothing here knows what a flag means, whether an
//! instruction exists, or what a variable expands to; that is the job of
//! [`crate::instructions`] and [`crate::shell`]. Keeping the tree this dumb is what lets it be
//! checked byte-for-byte against BuildKit's own fixtures through [`Ast::dump`].

use crate::span::Span;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// Parser directives found at the top of the file (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Directives,
    /// The instructions, in file order. ONBUILD's inner instruction is nested in its node.
    pub instructions: Vec<Node>,
    /// Non-fatal findings, such as empty continuation lines.
    pub warnings: Vec<Warning>,
    /// The escape token in effect: `\` unless `# escape=`` ` `` changed it.
    pub escape: char,
}

/// The parser directives of a file. Each may appear at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=<frontend image>`.
    pub syntax: Option<Directive>,
    /// `# escape=<\ or `>`.
    pub escape: Option<Directive>,
    /// `# check=<linter options>`.
    pub check: Option<Directive>,
}

/// One parser directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's value, trimmed.
    pub value: String,
    /// Where the directive's line is in the source.
    pub span: Span,
}

/// One instruction: BuildKit's instruction-level `Node`.
///
/// BuildKit keeps arguments as a linked list of nodes (`Next`); here they are a `Vec`. ONBUILD is
/// the one compound instruction: its inner instruction lives in [`Node::onbuild`] and its `args`
/// are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword exactly as written (`FROM`, `from`, `From`).
    pub keyword: String,
    /// Where the keyword is in the source.
    pub keyword_span: Span,
    /// Leading `--name[=value]` flags, with quotes and escapes removed, in order.
    pub flags: Vec<Flag>,
    /// The argument nodes, shaped by the per-instruction rule (see the parser module docs).
    pub args: Vec<Arg>,
    /// Whether the arguments came from a JSON array (exec form).
    pub json: bool,
    /// For ONBUILD: the wrapped instruction, if any.
    pub onbuild: Option<Box<Node>>,
    /// Heredoc bodies that follow the instruction line (RUN, COPY and ADD in shell form only).
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text after joining continuation lines, as BuildKit's `Original`
    /// (used for error messages and for the image history's `created_by`).
    pub original: String,
    /// The whole instruction in the source: from the keyword to the end of its last line,
    /// heredoc bodies included.
    pub span: Span,
    /// 1-based physical line of the keyword.
    pub start_line: usize,
    /// 1-based physical line of the last line consumed for this instruction.
    pub end_line: usize,
    /// Comment lines directly above the instruction, `#` and leading whitespace removed.
    pub prev_comment: Vec<String>,
}

/// A `--name[=value]` flag as written before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag text with quotes and escapes removed, e.g. `--from=builder`.
    pub text: String,
    /// Where the flag is in the source.
    pub span: Span,
}

/// One argument node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The argument text. Quotes are kept where BuildKit keeps them (ENV/LABEL values, ARG).
    pub value: String,
    /// Best-effort location in the source (continuation lines make the joined text differ
    /// from the source; the span points at where the argument starts in the source).
    pub span: Span,
}

/// A heredoc body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body: every line up to the delimiter, each with its `\n`; leading tabs removed when
    /// [`Heredoc::chomp`] is set.
    pub content: String,
    /// The file descriptor before `<<` (`3<<EOF`); 0 when absent.
    pub file_descriptor: u32,
    /// Whether `$var` in the body is expanded: false when any part of the delimiter was quoted.
    pub expand: bool,
    /// Whether this was a `<<-` heredoc (leading tabs stripped).
    pub chomp: bool,
    /// Where the body and its terminator are in the source.
    pub span: Span,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// A one-line description, e.g. `Empty continuation line found in: RUN a b`.
    pub message: String,
    /// Where it was found.
    pub span: Span,
}

impl Node {
    /// The instruction keyword in lowercase, for matching.
    pub fn keyword_lowercase(&self) -> String {
        self.keyword.to_lowercase()
    }
}
