//! `--chown` names to numbers, read from the destination's `/etc/passwd` and `/etc/group`.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::tree::{FileKind, Tree};

/// A numeric owner for written files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A user or group as written in `--chown`: a number, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdOrName {
    /// Used as is.
    Id(u32),
    /// Looked up in the destination's `/etc/passwd` or `/etc/group`.
    Name(String),
}

/// Resolves `--chown=user[:group]` as BuildKit's `readUser` does, reading the files through
/// `tree` (the destination, e.g. the [`ChainTree`](crate::tree::ChainTree) a copy writes
/// onto; symlinks are resolved inside it):
///
/// * no user is root (0);
/// * a user id `n` gives `n:n`; a user name gives its uid and **primary** gid from
///   `/etc/passwd`;
/// * a group, when given, replaces the gid (a name is looked up in `/etc/group`).
///
/// A name that is not found is an error ([`Error::UnknownUser`], [`Error::UnknownGroup`]),
/// unless it is all digits, which is then used as a number.
pub fn resolve_owner(
    tree: &dyn Tree,
    user: Option<&IdOrName>,
    group: Option<&IdOrName>,
) -> Result<Owner> {
    let mut owner = match user {
        Some(user) => resolve_user(tree, user)?,
        None => Owner::default(),
    };
    if let Some(group) = group {
        owner.gid = resolve_group(tree, group)?;
    }
    Ok(owner)
}

/// A user alone: `n` is `n:n`; a name is its uid and primary gid from `/etc/passwd`.
pub fn resolve_user(tree: &dyn Tree, user: &IdOrName) -> Result<Owner> {
    match user {
        IdOrName::Id(id) => Ok(Owner { uid: *id, gid: *id }),
        IdOrName::Name(name) => {
            let passwd = read_db(tree, "/etc/passwd")?;
            // name:password:uid:gid:gecos:home:shell
            for fields in entries(&passwd) {
                if fields.first() == Some(&name.as_str())
                    && let (Some(uid), Some(gid)) =
                        (parse_id(fields.get(2)), parse_id(fields.get(3)))
                {
                    return Ok(Owner { uid, gid });
                }
            }
            match name.parse::<u32>() {
                Ok(id) => Ok(Owner { uid: id, gid: id }),
                Err(_) => Err(Error::UnknownUser { name: name.clone() }),
            }
        }
    }
}

/// A group alone: `n`, or the gid of a name in `/etc/group`.
pub fn resolve_group(tree: &dyn Tree, group: &IdOrName) -> Result<u32> {
    match group {
        IdOrName::Id(id) => Ok(*id),
        IdOrName::Name(name) => {
            let groups = read_db(tree, "/etc/group")?;
            // name:password:gid:members
            for fields in entries(&groups) {
                if fields.first() == Some(&name.as_str())
                    && let Some(gid) = parse_id(fields.get(2))
                {
                    return Ok(gid);
                }
            }
            name.parse::<u32>()
                .map_err(|_| Error::UnknownGroup { name: name.clone() })
        }
    }
}

fn parse_id(field: Option<&&str>) -> Option<u32> {
    field?.trim().parse().ok()
}

/// The colon-separated fields of each non-comment line.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Reads a user database file through the tree; a missing one reads as empty.
fn read_db(tree: &dyn Tree, path: &str) -> Result<String> {
    let resolved = tree.resolve(Path::new(path), true)?;
    match tree.lstat(&resolved)? {
        Some(meta) if meta.kind == FileKind::File => {}
        _ => return Ok(String::new()),
    }
    let mut bytes = Vec::new();
    tree.open(&resolved)?
        .read_to_end(&mut bytes)
        .map_err(Error::io("read", path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
