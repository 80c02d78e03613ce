//! File actions (`COPY`, `WORKDIR`'s mkdir, heredoc files, `rm`, symlinks) written into a fresh
//! snapshot's directory (the upper layer) over the base's layers (the lower [`Tree`]).
//!
//! Overlay form: a removed lower path becomes a whiteout (a 0:0 character device, which needs
//! `CAP_MKNOD`); a directory edited in the upper layer is created there with the lower one's
//! permissions and owner, and merges with it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dray_llb::{Chown, Copy, FileAction, Mode, UserOpt};
use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_OMIT};

use super::{Found, Tree, components, expand, has_wildcard, is_whiteout};
use crate::error::OpError;

/// Where an action writes and what it sees.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    /// The base's layers.
    pub lower: &'a Tree,
    /// The new snapshot's directory.
    pub upper: &'a Path,
}

impl Target<'_> {
    /// The destination as it currently looks: the upper directory over the lower layers.
    fn view(&self) -> Tree {
        let mut layers = match self.lower {
            Tree::Chain { layers } => layers.clone(),
            Tree::Empty | Tree::Dir { .. } => Vec::new(),
        };
        layers.push(("upper".to_owned(), self.upper.to_owned()));
        Tree::Chain { layers }
    }

    fn host(&self, comps: &[&str]) -> PathBuf {
        let mut p = self.upper.to_owned();
        p.extend(comps);
        p
    }

    /// Makes every parent of `comps` exist as a directory in the upper layer, copying lower
    /// directories' metadata; missing ones are created with `create` (mode, uid, gid) or fail.
    fn ensure_parents(
        &self,
        comps: &[&str],
        create: Option<(u32, u32, u32)>,
    ) -> Result<(), OpError> {
        let view = self.view();
        for n in 1..comps.len() {
            let prefix = &comps[..n];
            let host = self.host(prefix);
            if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            match view.lookup(&prefix.join("/"))? {
                Some(f) if f.meta.is_dir() => {
                    let m = &f.meta;
                    make_dir(&host, m.permissions().mode() & 0o7777, m.uid(), m.gid())?;
                }
                Some(_) => {
                    return Err(OpError::BadPath {
                        path: format!("/{}", prefix.join("/")),
                        reason: "a parent is not a directory",
                    });
                }
                None => match create {
                    Some((mode, uid, gid)) => make_dir(&host, mode, uid, gid)?,
                    None => {
                        return Err(OpError::BadPath {
                            path: format!("/{}", prefix.join("/")),
                            reason: "the parent directory does not exist",
                        });
                    }
                },
            }
        }
        Ok(())
    }
}

fn make_dir(host: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), OpError> {
    match fs::create_dir(host) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(OpError::io("create directory", host)(e)),
    }
    fs::set_permissions(host, fs::Permissions::from_mode(mode))
        .map_err(OpError::io("chmod", host))?;
    chown(host, uid, gid)
}

/// `lchown`; without root, a failure to give files away is ignored (a rootless build's files are
/// mapped to the caller anyway).
fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), OpError> {
    let r = rustix::fs::chownat(
        CWD,
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    );
    match r {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM) if !rustix::process::geteuid().is_root() => Ok(()),
        Err(e) => Err(OpError::io("chown", path)(e.into())),
    }
}

fn set_mtime(path: &Path, secs: Option<i64>) -> Result<(), OpError> {
    let Some(secs) = secs else { return Ok(()) };
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| OpError::io("set mtime of", path)(e.into()))
}

/// Resolves `--chown` against the destination's `/etc/passwd` and `/etc/group`.
fn resolve_owner(view: &Tree, owner: Option<&Chown>) -> Result<(u32, u32), OpError> {
    let Some(owner) = owner else {
        return Ok((0, 0));
    };
    let (uid, primary) = match &owner.user {
        None => (0, 0),
        Some(UserOpt::Id(id)) => (*id, 0),
        Some(UserOpt::Name(name)) => {
            let line =
                find_entry(view, "/etc/passwd", name)?.ok_or_else(|| OpError::UnknownUser {
                    kind: "user",
                    name: name.clone(),
                })?;
            let f: Vec<&str> = line.split(':').collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
            (num(2).unwrap_or(0), num(3).unwrap_or(0))
        }
    };
    let gid = match &owner.group {
        None => primary,
        Some(UserOpt::Id(id)) => *id,
        Some(UserOpt::Name(name)) => {
            let line =
                find_entry(view, "/etc/group", name)?.ok_or_else(|| OpError::UnknownUser {
                    kind: "group",
                    name: name.clone(),
                })?;
            line.split(':')
                .nth(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        }
    };
    Ok((uid, gid))
}

fn find_entry(view: &Tree, file: &str, name: &str) -> Result<Option<String>, OpError> {
    let Some(found) = view.lookup(file)? else {
        return Ok(None);
    };
    if !found.meta.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&found.host).map_err(OpError::io("read", &found.host))?;
    Ok(text
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_owned))
}

/// Applies one action. `src` is the copy source (the secondary input) for a copy.
pub(crate) fn apply(
    action: &FileAction,
    src: Option<&Tree>,
    target: &Target<'_>,
) -> Result<(), OpError> {
    let view = target.view();
    match action {
        FileAction::Mkdir(m) => {
            let (uid, gid) = resolve_owner(&view, m.owner.as_ref())?;
            let comps = components(&m.path)?;
            let create = m.make_parents.then_some((m.mode, uid, gid));
            target.ensure_parents(&comps, create)?;
            if let Some(f) = view.lookup(&m.path)? {
                if f.meta.is_dir() && m.make_parents {
                    return Ok(());
                }
                return Err(OpError::BadPath {
                    path: m.path.clone(),
                    reason: "already exists",
                });
            }
            let host = target.host(&comps);
            make_dir(&host, m.mode, uid, gid)?;
            set_mtime(&host, m.timestamp)
        }
        FileAction::Mkfile(m) => {
            let (uid, gid) = resolve_owner(&view, m.owner.as_ref())?;
            let comps = components(&m.path)?;
            target.ensure_parents(&comps, None)?;
            let host = target.host(&comps);
            fs::write(&host, &m.data).map_err(OpError::io("write", &host))?;
            fs::set_permissions(&host, fs::Permissions::from_mode(m.mode))
                .map_err(OpError::io("chmod", &host))?;
            chown(&host, uid, gid)?;
            set_mtime(&host, m.timestamp)
        }
        FileAction::Symlink(s) => {
            let (uid, gid) = resolve_owner(&view, s.owner.as_ref())?;
            let comps = components(&s.newpath)?;
            target.ensure_parents(&comps, None)?;
            let host = target.host(&comps);
            std::os::unix::fs::symlink(&s.oldpath, &host).map_err(OpError::io("symlink", &host))?;
            chown(&host, uid, gid)?;
            set_mtime(&host, s.timestamp)
        }
        FileAction::Rm(r) => {
            let paths = if r.allow_wildcard && has_wildcard(&r.path) {
                expand(&view, &r.path)?
            } else {
                vec![r.path.clone()]
            };
            let mut any = false;
            for path in paths {
                any |= remove(target, &path)?;
            }
            if !any && !r.allow_not_found {
                return Err(OpError::SourceNotFound {
                    path: r.path.clone(),
                });
            }
            Ok(())
        }
        FileAction::Copy(c) => copy(c, src.unwrap_or(&Tree::Empty), target, &view),
    }
}

/// Removes `path` from the view; returns whether it existed.
fn remove(target: &Target<'_>, path: &str) -> Result<bool, OpError> {
    let comps = components(path)?;
    let host = target.host(&comps);
    let in_upper = fs::symlink_metadata(&host).ok();
    if let Some(m) = &in_upper {
        let r = if m.is_dir() {
            fs::remove_dir_all(&host)
        } else {
            fs::remove_file(&host)
        };
        r.map_err(OpError::io("remove", &host))?;
    }
    let in_lower = target.lower.lookup(path)?.is_some();
    if in_lower {
        target.ensure_parents(&comps, None)?;
        rustix::fs::mknodat(
            CWD,
            &host,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| OpError::io("create whiteout", &host)(e.into()))?;
    }
    Ok(in_upper.is_some_and(|m| !is_whiteout(&m)) || in_lower)
}

fn copy(c: &Copy, src: &Tree, target: &Target<'_>, view: &Tree) -> Result<(), OpError> {
    let unsupported = |option| OpError::UnsupportedFileOption {
        action: "copy",
        option,
    };
    if !c.include_patterns.is_empty() || !c.exclude_patterns.is_empty() {
        return Err(unsupported("--exclude and include patterns"));
    }
    if c.parents {
        return Err(unsupported("--parents"));
    }
    if let Some(Mode::Symbolic(_)) = c.mode {
        return Err(unsupported("symbolic --chmod"));
    }
    let mode = match c.mode {
        Some(Mode::Octal(m)) => Some(m),
        _ => None,
    };
    let (uid, gid) = resolve_owner(view, c.owner.as_ref())?;
    let matches = if c.allow_wildcard && has_wildcard(&c.src) {
        let m = expand(src, &c.src)?;
        if m.is_empty() && !c.allow_empty_wildcard {
            return Err(OpError::SourceNotFound {
                path: c.src.clone(),
            });
        }
        m
    } else {
        vec![c.src.clone()]
    };
    let dest_comps = components(&c.dest)?;
    let dest_is_dir = c.dest.ends_with('/')
        || matches.len() > 1
        || view.lookup(&c.dest)?.is_some_and(|f| f.meta.is_dir());
    let opts = CopyOpts {
        uid,
        gid,
        mode,
        timestamp: c.timestamp,
    };
    for path in matches {
        let mut found = src
            .lookup(&path)?
            .ok_or_else(|| OpError::SourceNotFound { path: path.clone() })?;
        let mut src_path = path.clone();
        if c.follow_symlinks {
            (src_path, found) = follow(src, &src_path, found)?;
        }
        let name = crate::cachemap::base_name(&path);
        let mut to: Vec<&str> = dest_comps.clone();
        let into_dir = found.meta.is_dir() && c.dir_copy_contents;
        if !into_dir && dest_is_dir && name != "/" {
            to.push(&name);
        }
        let parent_mode = c.create_dest_path.then_some((0o755, 0, 0));
        if to.is_empty() {
            // Copying into `/`: only a directory's contents can go there.
            if !found.meta.is_dir() {
                return Err(OpError::BadPath {
                    path: c.dest.clone(),
                    reason: "cannot copy a file over the root directory",
                });
            }
        } else {
            target.ensure_parents(&to, parent_mode)?;
        }
        let dest = target.host(&to);
        if into_dir {
            if !to.is_empty() {
                make_dir(&dest, opts.mode_for(&found), uid, gid)?;
                set_mtime(&dest, opts.timestamp)?;
            }
            for (child, f) in src.read_dir(&src_path)? {
                let child_src = format!("{}/{child}", src_path.trim_end_matches('/'));
                copy_node(src, &child_src, &f, &dest.join(&child), &opts)?;
            }
        } else {
            copy_node(src, &src_path, &found, &dest, &opts)?;
        }
    }
    Ok(())
}

/// Follows a symlink at the copy source itself (within the source tree), at most 40 times.
fn follow(src: &Tree, path: &str, mut found: Found) -> Result<(String, Found), OpError> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        if !found.meta.is_symlink() {
            return Ok((path, found));
        }
        let target = fs::read_link(&found.host).map_err(OpError::io("read link", &found.host))?;
        let target = target.to_string_lossy();
        path = if target.starts_with('/') {
            target.into_owned()
        } else {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            format!("{parent}/{target}")
        };
        let mut clean: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    clean.pop();
                }
                c => clean.push(c),
            }
        }
        path = format!("/{}", clean.join("/"));
        found = src
            .lookup(&path)?
            .ok_or_else(|| OpError::SourceNotFound { path: path.clone() })?;
    }
    Err(OpError::BadPath {
        path,
        reason: "too many levels of symbolic links",
    })
}

struct CopyOpts {
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    timestamp: Option<i64>,
}

impl CopyOpts {
    fn mode_for(&self, f: &Found) -> u32 {
        self.mode
            .unwrap_or_else(|| f.meta.permissions().mode() & 0o7777)
    }
}

fn copy_node(
    src: &Tree,
    src_path: &str,
    found: &Found,
    dest: &Path,
    opts: &CopyOpts,
) -> Result<(), OpError> {
    let existing = fs::symlink_metadata(dest).ok();
    let ft = found.meta.file_type();
    if let Some(m) = &existing
        && !(m.is_dir() && ft.is_dir())
    {
        if m.is_dir() {
            fs::remove_dir_all(dest).map_err(OpError::io("replace", dest))?;
        } else {
            fs::remove_file(dest).map_err(OpError::io("replace", dest))?;
        }
    }
    if ft.is_dir() {
        make_dir(dest, opts.mode_for(found), opts.uid, opts.gid)?;
        for (child, f) in src.read_dir(src_path)? {
            let child_src = format!("{}/{child}", src_path.trim_end_matches('/'));
            copy_node(src, &child_src, &f, &dest.join(&child), opts)?;
        }
    } else if ft.is_symlink() {
        let t = fs::read_link(&found.host).map_err(OpError::io("read link", &found.host))?;
        std::os::unix::fs::symlink(&t, dest).map_err(OpError::io("symlink", dest))?;
        chown(dest, opts.uid, opts.gid)?;
    } else if ft.is_file() {
        fs::copy(&found.host, dest).map_err(OpError::io("copy to", dest))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(opts.mode_for(found)))
            .map_err(OpError::io("chmod", dest))?;
        chown(dest, opts.uid, opts.gid)?;
    } else {
        return Err(OpError::UnsupportedFileOption {
            action: "copy",
            option: "copying devices, sockets or fifos",
        });
    }
    set_mtime(dest, opts.timestamp)
}
