//! File ops: filesystem edits without running a process (`COPY`, `ADD`, `WORKDIR`'s mkdir).
//!
//! A [`FileOp`] is a chain of [`FileStep`]s, as BuildKit's `FileOp` is a chain of actions: each
//! step edits a base ([`FileStep::input`]), optionally reading from a second filesystem
//! ([`FileStep::secondary_input`], the copy source), and the result of a step can be the base of a
//! later one ([`ActionInput::Action`]). Steps with an [`output`](FileStep::output) are outputs of
//! the node.

use serde::{Deserialize, Serialize};

/// A chain of file actions. Everything here is part of the node digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileOp {
    /// The actions with their wiring, in execution order.
    pub actions: Vec<FileStep>,
}

/// One action of a [`FileOp`] with its wiring.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStep {
    /// The filesystem the action edits.
    pub input: ActionInput,
    /// The filesystem a copy reads from; `None` for the other actions.
    pub secondary_input: Option<ActionInput>,
    /// The node output this step's result becomes; `None` for intermediate steps.
    pub output: Option<u32>,
    /// What to do.
    pub action: FileAction,
}

/// Where a [`FileStep`] reads a filesystem from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionInput {
    /// The node input with this index.
    Input(u32),
    /// The result of the earlier step with this index.
    Action(u32),
}

/// A filesystem edit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// Copy from the secondary input into the input.
    Copy(Copy),
    /// Create a directory.
    Mkdir(Mkdir),
    /// Create a file with given content (heredocs).
    Mkfile(Mkfile),
    /// Remove a path.
    Rm(Rm),
    /// Create a symlink.
    Symlink(Symlink),
}

/// Copy `src` (in the secondary input) to `dest` (in the input), with Docker's `COPY` semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Copy {
    /// Source path (absolute, in the secondary input); may be a wildcard if allowed.
    pub src: String,
    /// Destination path; a trailing `/` means "into this directory".
    pub dest: String,
    /// New owner of the copied files; `None` keeps 0:0 as Docker does.
    pub owner: Option<Chown>,
    /// New permission bits (`--chmod`); `None` keeps the source's.
    pub mode: Option<Mode>,
    /// Follow a symlink at `src` itself instead of copying the link.
    pub follow_symlinks: bool,
    /// Copy a directory's contents rather than the directory.
    pub dir_copy_contents: bool,
    /// Unpack a local tar archive at `src` (`ADD` of an archive).
    pub attempt_unpack: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Expand wildcards in `src`.
    pub allow_wildcard: bool,
    /// Let a wildcard that matches nothing succeed.
    pub allow_empty_wildcard: bool,
    /// Only copy paths matching these patterns (empty: all).
    pub include_patterns: Vec<String>,
    /// Skip paths matching these patterns (`COPY --exclude`).
    pub exclude_patterns: Vec<String>,
    /// Keep the source's parent directories under `dest` (`COPY --parents`).
    pub parents: bool,
    /// Replace an existing destination even when its type differs (a dir over a file).
    pub always_replace_existing: bool,
    /// Modification time to set, in seconds since the epoch (`SOURCE_DATE_EPOCH`).
    pub timestamp: Option<i64>,
}

/// Create a directory (`WORKDIR`, `COPY` destination parents).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mkdir {
    /// Absolute path to create.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Create missing parents, and succeed if it exists (`mkdir -p`).
    pub make_parents: bool,
    /// Owner of the created directories.
    pub owner: Option<Chown>,
    /// Modification time to set, in seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Create a file with given content (`COPY <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mkfile {
    /// Absolute path to create.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// The content. Text only: Dockerfiles (and so heredocs) are UTF-8.
    pub data: String,
    /// Owner of the file.
    pub owner: Option<Chown>,
    /// Modification time to set, in seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Remove a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rm {
    /// Absolute path to remove.
    pub path: String,
    /// Succeed if it does not exist.
    pub allow_not_found: bool,
    /// Expand wildcards in `path`.
    pub allow_wildcard: bool,
}

/// Create a symlink `newpath -> oldpath`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Symlink {
    /// The link target, stored verbatim.
    pub oldpath: String,
    /// Absolute path of the link to create.
    pub newpath: String,
    /// Owner of the link.
    pub owner: Option<Chown>,
    /// Modification time to set, in seconds since the epoch.
    pub timestamp: Option<i64>,
}

/// `--chown=user[:group]`. Names are resolved at solve time against the destination's
/// `/etc/passwd` and `/etc/group`, which the converter cannot see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chown {
    /// The user; `None` means root.
    pub user: Option<UserOpt>,
    /// The group; `None` means the user's primary group (or root when the user is an id).
    pub group: Option<UserOpt>,
}

/// A user or group, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOpt {
    /// A numeric id, used as is.
    Id(u32),
    /// A name, resolved in the destination filesystem.
    Name(String),
}

/// `--chmod`: octal bits or a symbolic spec (`u+x,g-w`), which is applied per file at solve time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Absolute permission bits, at most `0o7777`.
    Octal(u32),
    /// A `chmod(1)`-style symbolic spec, kept verbatim.
    Symbolic(String),
}

impl FileOp {
    /// The number of outputs: one past the largest step output index.
    pub fn num_outputs(&self) -> u32 {
        self.actions
            .iter()
            .filter_map(|s| s.output)
            .map(|o| o.saturating_add(1))
            .max()
            .unwrap_or(0)
    }
}

impl FileAction {
    /// A short name for printers: `copy`, `mkdir`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Copy(_) => "copy",
            Self::Mkdir(_) => "mkdir",
            Self::Mkfile(_) => "mkfile",
            Self::Rm(_) => "rm",
            Self::Symlink(_) => "symlink",
        }
    }
}
