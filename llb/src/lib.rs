//! `dray-llb`: the content-addressed op graph shared by the frontend's converter and the solver.
//!
//! Like BuildKit's LLB, a build is a DAG of [`Node`]s (source, exec, file, merge). A node's
//! [`Digest`] is the sha256 of its canonical encoding, which includes its inputs' digests, so
//! identical work anywhere in a build (or in two builds) has one name and runs once. Metadata that
//! must not change identity (progress names, source spans, `--no-cache`) lives beside the graph in
//! [`OpMetadata`].
//!
//! What this crate is **for**: the vocabulary ([`Digest`], [`ImageRef`], [`Platform`],
//! [`SourceId`]), the graph types, the canonical encoding ([`encoding`], with its table of what
//! feeds a digest), the immutable [`State`] builder with [`marshal`], structural validation
//! ([`Definition::validate`]) and printers for `dray debug llb`.
//!
//! What it is **not** for: it does no I/O, resolves nothing (tags, user names, paths), and knows
//! nothing of caches or execution. Cache keys are built *from* node digests by the solver
//! (architecture §B3); node digests alone never decide a cache hit.
//!
//! Where to start: [`State`] (how the converter builds graphs), then [`Definition`] and [`Op`]
//! (what the solver consumes), then [`encoding`] (what a digest covers).

#![deny(missing_docs)]

pub mod definition;
pub mod digest;
pub mod encoding;
pub mod exec;
pub mod file;
pub mod image;
pub mod op;
pub mod platform;
mod print;
pub mod reference;
pub mod source;
pub mod state;

pub use definition::{Definition, OpProblem, ValidateError};
pub use digest::{Digest, DigestError, Hasher};
pub use exec::{
    ExecMeta, ExecMount, ExecOp, MountKind, NetMode, SecretMount, SecurityMode, Sharing,
};
pub use file::{
    ActionInput, Chown, Copy, FileAction, FileOp, FileStep, Mkdir, Mkfile, Mode, Rm, Symlink,
    UserOpt,
};
pub use image::{ContainerConfig, Empty, HealthConfig, History, ImageConfig, RootFs};
pub use op::{CUSTOM_NAME, Input, MergeOp, Node, Op, OpMetadata, SourceLocation};
pub use platform::{Platform, PlatformError};
pub use reference::{ImageRef, ReferenceError};
pub use source::{HttpAttrs, LocalAttrs, SourceAttrs, SourceId, SourceIdError, SourceOp};
pub use state::{ExecSpec, ExecState, FileChain, MarshalError, Mount, State, marshal};
