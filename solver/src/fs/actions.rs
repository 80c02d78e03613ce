//! LLB file actions onto `dray_fsutil::fileop`: owners resolved in the destination, modes and
//! data converted, then [`apply`](dray_fsutil::fileop::apply) into the new snapshot's directory.

use std::path::Path;

use dray_fsutil::fileop::{self, Action, ApplyContext, DeferredDir, IdOrName, Owner};
use dray_fsutil::tree::ChainTree;
use dray_llb::{Chown, FileAction, Mode, UserOpt};

use super::Tree;
use crate::error::OpError;

fn id_or_name(u: &UserOpt) -> IdOrName {
    match u {
        UserOpt::Id(id) => IdOrName::Id(*id),
        UserOpt::Name(n) => IdOrName::Name(n.clone()),
    }
}

/// `--chown` resolved against the destination (`/etc/passwd`, `/etc/group` of `view`).
fn owner(view: &ChainTree, chown: Option<&Chown>) -> Result<Option<Owner>, OpError> {
    let Some(c) = chown else { return Ok(None) };
    let user = c.user.as_ref().map(id_or_name);
    let group = c.group.as_ref().map(id_or_name);
    Ok(Some(fileop::resolve_owner(
        view,
        user.as_ref(),
        group.as_ref(),
    )?))
}

/// What [`apply`] leaves for the layer writer: the directories a copy deferred, and the
/// source view they are to be replayed from.
pub(crate) struct Applied {
    pub source: Option<Box<dyn dray_fsutil::tree::Tree>>,
    pub deferred: Vec<DeferredDir>,
}

/// Applies one LLB action: `lower` is the base (root first), `upper` the new snapshot's
/// directory (holding earlier actions of the same op), `src` the copy source. With `defer`,
/// the directories a copy creates are deferred (see `dray_fsutil::fileop`'s deferred copies).
pub(crate) fn apply(
    action: &FileAction,
    src: Option<&Tree>,
    lower: &ChainTree,
    upper: &Path,
    defer: bool,
) -> Result<Applied, OpError> {
    let view = lower.with_top(upper)?;
    let converted = match action {
        FileAction::Copy(c) => Action::Copy(fileop::Copy {
            src: c.src.clone(),
            dest: c.dest.clone(),
            owner: owner(&view, c.owner.as_ref())?,
            mode: c.mode.as_ref().map(|m| match m {
                Mode::Octal(o) => fileop::Mode::Octal(*o),
                Mode::Symbolic(s) => fileop::Mode::Symbolic(s.clone()),
            }),
            follow_symlinks: c.follow_symlinks,
            dir_copy_contents: c.dir_copy_contents,
            create_dest_path: c.create_dest_path,
            allow_wildcard: c.allow_wildcard,
            allow_empty_wildcard: c.allow_empty_wildcard,
            include_patterns: c.include_patterns.clone(),
            exclude_patterns: c.exclude_patterns.clone(),
            parents: c.parents,
            always_replace_existing: c.always_replace_existing,
            timestamp: c.timestamp,
            attempt_unpack: c.attempt_unpack,
        }),
        FileAction::Mkdir(m) => Action::Mkdir(fileop::Mkdir {
            path: m.path.clone(),
            mode: m.mode,
            make_parents: m.make_parents,
            owner: owner(&view, m.owner.as_ref())?,
            timestamp: m.timestamp,
        }),
        FileAction::Mkfile(m) => Action::Mkfile(fileop::Mkfile {
            path: m.path.clone(),
            mode: m.mode,
            data: m.data.clone().into_bytes(),
            owner: owner(&view, m.owner.as_ref())?,
            timestamp: m.timestamp,
        }),
        FileAction::Rm(r) => Action::Rm(fileop::Rm {
            path: r.path.clone(),
            allow_not_found: r.allow_not_found,
            allow_wildcard: r.allow_wildcard,
        }),
        FileAction::Symlink(s) => Action::Symlink(fileop::Symlink {
            oldpath: s.oldpath.clone(),
            newpath: s.newpath.clone(),
            owner: owner(&view, s.owner.as_ref())?,
            timestamp: s.timestamp,
        }),
    };
    let src_view = src.map(Tree::open).transpose()?;
    let deferred = fileop::apply(
        &converted,
        src_view.as_deref(),
        lower,
        upper,
        &ApplyContext::default().with_defer_copies(defer),
    )?;
    Ok(Applied {
        source: src_view,
        deferred,
    })
}
