//! The small actions: mkdir, mkfile, symlink, rm.

use std::io::Write;
use std::path::Path;

use super::upper::{NewDir, Slot, Upper};
use super::wildcard::{has_wildcards, resolve_wildcards};
use super::{Mkdir, Mkfile, Owner, Rm, Symlink};
use crate::error::{Error, Result};
use crate::sys::{shown, split};
use crate::tree::{FileKind, Tree};

fn secs(t: i64) -> i64 {
    t.saturating_mul(1_000_000_000)
}

/// `mkdir [-p]`: BuildKit's `mkdir`. An existing path (of any type, as `os.Mkdir`'s
/// `EEXIST` is ignored) is left alone.
pub(crate) fn mkdir(m: &Mkdir, up: &mut Upper<'_>) -> Result<()> {
    let path = up.resolve(Path::new(&m.path), true)?;
    let Some((parent, _)) = split(&path) else {
        // The root always exists.
        return Ok(());
    };
    let new = NewDir {
        mode: m.mode & 0o777,
        owner: m.owner.unwrap_or_default(),
        timestamp: m.timestamp,
    };
    if m.make_parents {
        // `mkdir -p` of a directory that already exists changes nothing (Go's MkdirAll, as
        // BuildKit runs it): the layer must stay empty instead of copying the directory up.
        if up.merged().lstat(&path)?.is_some_and(|meta| meta.is_dir()) {
            return Ok(());
        }
        return up.ensure_dir(&path, &new);
    }
    require_dir(up, parent)?;
    if up.merged().lstat(&path)?.is_some() {
        return Ok(());
    }
    up.ensure_dir(parent, &new)?;
    up.create_dir(&path, new.mode, new.owner)?;
    if let Some(t) = m.timestamp {
        up.set_times(&path, FileKind::Dir, secs(t), secs(t))?;
    }
    Ok(())
}

/// Fails with [`Error::NotFound`] unless `dir` is a directory in the merged view.
fn require_dir(up: &Upper<'_>, dir: &Path) -> Result<()> {
    match up.merged().lstat(dir)? {
        Some(meta) if meta.is_dir() => Ok(()),
        Some(_) => Err(Error::NotADirectory { path: shown(dir) }),
        None => Err(Error::NotFound { path: shown(dir) }),
    }
}

/// Writes a file with the given content: BuildKit's `mkfile`. The parent must exist.
pub(crate) fn mkfile(m: &Mkfile, up: &mut Upper<'_>) -> Result<()> {
    let path = up.resolve(Path::new(&m.path), true)?;
    let (parent, _) = split(&path).ok_or_else(|| Error::InvalidPath { path: shown(&path) })?;
    require_dir(up, parent)?;
    // os.WriteFile on an existing file keeps its mode, and BuildKit chowns only when an owner
    // is given.
    let (mut owner, mut mode) = (m.owner.unwrap_or_default(), m.mode & 0o777);
    if let Some(existing) = up.merged().lstat(&path)?
        && existing.kind == FileKind::File
    {
        mode = existing.mode;
        if m.owner.is_none() {
            owner = Owner {
                uid: existing.uid,
                gid: existing.gid,
            };
        }
    }
    let parents = NewDir {
        mode: 0o755,
        owner: Owner::default(),
        timestamp: None,
    };
    up.ensure_dir(parent, &parents)?;
    if up.prepare(&path, false, false)? != Slot::Empty {
        return Err(Error::ReplaceDirectory { path: shown(&path) });
    }
    let mut file = up.create_file(&path)?;
    file.write_all(&m.data)
        .map_err(Error::io("write", shown(&path)))?;
    drop(file);
    up.set_owner_mode(&path, owner.uid, owner.gid, Some(mode), FileKind::File)?;
    if let Some(t) = m.timestamp {
        up.set_times(&path, FileKind::File, secs(t), secs(t))?;
    }
    Ok(())
}

/// Creates a symlink: BuildKit's `symlink`. The parent must exist and the path must not.
pub(crate) fn symlink(s: &Symlink, up: &mut Upper<'_>) -> Result<()> {
    let path = up.resolve(Path::new(&s.newpath), false)?;
    let (parent, _) = split(&path).ok_or_else(|| Error::InvalidPath { path: shown(&path) })?;
    require_dir(up, parent)?;
    if up.merged().lstat(&path)?.is_some() {
        return Err(Error::AlreadyExists { path: shown(&path) });
    }
    let owner = s.owner.unwrap_or_default();
    up.ensure_dir(
        parent,
        &NewDir {
            mode: 0o755,
            owner,
            timestamp: None,
        },
    )?;
    up.prepare(&path, false, false)?;
    up.create_symlink(&path, Path::new(&s.oldpath))?;
    up.set_owner_mode(&path, owner.uid, owner.gid, None, FileKind::Symlink)?;
    if let Some(t) = s.timestamp {
        up.set_times(&path, FileKind::Symlink, secs(t), secs(t))?;
    }
    Ok(())
}

/// Removes paths: BuildKit's `rm`. Wildcards are expanded in the merged view; a wildcard
/// matching nothing removes nothing.
pub(crate) fn rm(r: &Rm, up: &mut Upper<'_>) -> Result<()> {
    if r.allow_wildcard && has_wildcards(&r.path) {
        let merged = up.merged().clone();
        for path in resolve_wildcards(&merged, &r.path, false)? {
            rm_one(&path, r.allow_not_found, up)?;
        }
        return Ok(());
    }
    rm_one(Path::new(&r.path), r.allow_not_found, up)
}

fn rm_one(path: &Path, allow_not_found: bool, up: &mut Upper<'_>) -> Result<()> {
    let path = up.resolve(path, false)?;
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidPath { path: shown(&path) });
    }
    if up.merged().lstat(&path)?.is_none() {
        if allow_not_found {
            return Ok(());
        }
        return Err(Error::NotFound { path: shown(&path) });
    }
    let (parent, _) = split(&path).ok_or_else(|| Error::InvalidPath { path: shown(&path) })?;
    // Copy-up of the parents; they exist (the path does), so `new` is never used.
    up.ensure_dir(
        parent,
        &NewDir {
            mode: 0o755,
            owner: Default::default(),
            timestamp: None,
        },
    )?;
    up.remove(&path)
}
