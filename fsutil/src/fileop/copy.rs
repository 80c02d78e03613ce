//! `Copy`: BuildKit's `docopy` and fsutil's `copy.Copy`, writing into an upper layer.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chmod::ModeSpec;
use super::deferred::{CopySettings, DeferredDir, ModeChange};
use super::upper::{NewDir, Slot, Upper};
use super::user::Owner;
use super::wildcard::{has_wildcards, resolve_wildcards};
use super::{Copy, Mode};
use crate::error::{Error, Result};
use crate::select::{Filter, Selection};
use crate::sys::{clean_lexical, read_sized, shown};
use crate::tree::{FileKind, Metadata, Tree, file_xattrs};

/// A directory on the way to an included entry, created only once something below it is.
struct Pending {
    src: PathBuf,
    meta: Metadata,
    target: PathBuf,
    done: bool,
}

struct Copier<'s, 'u, 'l> {
    src: &'s dyn Tree,
    up: &'u mut Upper<'l>,
    /// Owner, mode, times and filter: what every copied entry goes through (shared with the
    /// deferred directories, whose entries are produced later from the same settings).
    settings: Arc<CopySettings>,
    replace: bool,
    /// `Some`: directories this copy creates are deferred (created with their metadata and
    /// marked, their contents left for the layer writer), and recorded here.
    deferred: Option<&'u mut Vec<DeferredDir>>,
    /// Source `(dev, ino)` of multiply-linked files → where the first copy went.
    inodes: HashMap<(u64, u64), PathBuf>,
    /// The data buffer, reused from file to file.
    buf: Vec<u8>,
}

/// Files up to this size are copied with `read`/`write` through [`Copier::buf`], sized so that
/// each takes one call of each; larger ones with `copy_file_range` (which a filesystem with
/// reflinks turns into a clone), via `io::copy`.
const SMALL_FILE: u64 = 64 * 1024;

/// Copies as `c` says from `src` into `up`. With `deferred`, every directory the copy creates
/// is deferred and recorded there instead of being filled (see the `deferred` module).
pub(crate) fn copy(
    c: &Copy,
    src: &dyn Tree,
    up: &mut Upper<'_>,
    deferred: Option<&mut Vec<DeferredDir>>,
) -> Result<()> {
    let mode = match &c.mode {
        None => None,
        Some(Mode::Octal(m)) => Some(ModeChange::Octal(m & 0o7777)),
        Some(Mode::Symbolic(spec)) => Some(ModeChange::Spec(ModeSpec::parse(spec)?)),
    };
    let filter = Filter::new(&c.include_patterns, &c.exclude_patterns)?;
    let new_dir = NewDir {
        mode: 0o755,
        owner: c.owner.unwrap_or_default(),
        timestamp: c.timestamp,
    };
    let dest_is_dir = c.parents
        || c.dest.is_empty()
        || c.dest.ends_with('/')
        || c.dest.ends_with("/.")
        || c.dest == ".";

    let dest = up.resolve(Path::new(&c.dest), true)?;
    if !c.create_dest_path {
        let parent = dest.parent().unwrap_or(Path::new(""));
        if up.merged().lstat(parent)?.is_none() {
            return Err(Error::NotFound {
                path: shown(&clean_lexical(Path::new(&c.dest))),
            });
        }
    }

    let sources: Vec<PathBuf> = if c.allow_wildcard && has_wildcards(&c.src) {
        let matches = resolve_wildcards(src, &c.src, c.follow_symlinks)?;
        if matches.is_empty() {
            if c.allow_empty_wildcard {
                return Ok(());
            }
            return Err(Error::NoWildcardMatch {
                pattern: c.src.clone(),
            });
        }
        matches
    } else {
        vec![PathBuf::from(&c.src)]
    };

    // fsutil's `ensureDstPath`: the destination directory, or the target's parent.
    let ensure = if dest_is_dir {
        dest.clone()
    } else {
        dest.parent().unwrap_or(Path::new("")).to_owned()
    };
    up.ensure_dir(&ensure, &new_dir)?;

    let pivot = match (c.parents, c.src.find("/./")) {
        (true, Some(at)) => src.resolve(Path::new(&c.src[..at]), true)?,
        _ => PathBuf::new(),
    };

    let mut copier = Copier {
        src,
        up,
        settings: Arc::new(CopySettings {
            owner: c.owner,
            mode,
            timestamp: c.timestamp,
            filter,
        }),
        replace: c.always_replace_existing,
        deferred,
        inodes: HashMap::new(),
        buf: Vec::new(),
    };
    for source in sources {
        let followed = src.resolve(&source, c.follow_symlinks)?;
        let meta = src.lstat(&followed)?.ok_or_else(|| Error::NotFound {
            path: shown(&clean_lexical(&source)),
        })?;
        // `ADD`: an archive (by content) is extracted into `dest` instead (BuildKit's `unpack`).
        if c.attempt_unpack
            && meta.kind == FileKind::File
            && super::unpack::is_archive(src, &followed)?
        {
            super::unpack::unpack(src, &followed, &dest, c.owner, &new_dir, copier.up)?;
            continue;
        }
        let base = clean_lexical(&source)
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_default();
        let target = if c.parents {
            copier
                .parents_target(&clean_lexical(&source), &pivot, &dest)?
                .join(&base)
        } else {
            let dest_meta = copier.up.merged().lstat(&dest)?;
            let dest_dir = dest_meta.as_ref().is_some_and(Metadata::is_dir);
            let into = (!c.dir_copy_contents && meta.is_dir() && dest_meta.is_some())
                || (!meta.is_dir() && dest_dir);
            let target = if into { dest.join(&base) } else { dest.clone() };
            let parent = if c.dir_copy_contents && meta.is_dir() && dest_meta.is_none() {
                target.clone()
            } else {
                target.parent().unwrap_or(Path::new("")).to_owned()
            };
            copier.up.ensure_dir(&parent, &new_dir)?;
            target
        };
        copier.copy_entry(
            &followed,
            &meta,
            Path::new(""),
            &target,
            false,
            false,
            &mut Vec::new(),
        )?;
    }
    Ok(())
}

impl Copier<'_, '_, '_> {
    /// For `--parents`: creates `dest/<source's parent dirs below the pivot>` with the
    /// source directories' metadata, and returns it. `source` is the path as named (not
    /// followed), so a followed link keeps its own place.
    fn parents_target(&mut self, source: &Path, pivot: &Path, dest: &Path) -> Result<PathBuf> {
        let parent = source.parent().unwrap_or(Path::new(""));
        let rel = parent.strip_prefix(pivot).unwrap_or(parent);
        let mut pending = Vec::new();
        let mut src_dir = pivot.to_owned();
        let mut target = dest.to_owned();
        for comp in rel.iter() {
            src_dir.push(comp);
            target.push(comp);
            let resolved = self.src.resolve(&src_dir, true)?;
            let meta = self.src.lstat(&resolved)?.ok_or_else(|| Error::NotFound {
                path: shown(&src_dir),
            })?;
            pending.push(Pending {
                src: resolved,
                meta,
                target: target.clone(),
                done: false,
            });
        }
        self.flush(&mut pending)?;
        Ok(target)
    }

    /// Creates the pending directories not created yet, outermost first.
    fn flush(&mut self, pending: &mut [Pending]) -> Result<()> {
        for p in pending.iter_mut().filter(|p| !p.done) {
            if self.up.prepare(&p.target, true, self.replace)? == Slot::Empty {
                self.up.create_dir(&p.target, 0o700, Owner::default())?;
                self.apply_meta(&p.src, &p.meta, &p.target)?;
            }
            p.done = true;
        }
        Ok(())
    }

    /// Copies one source entry (and what is below it) to `target`. `fresh`: `target`'s parent
    /// is a directory this copy created, empty in the merged view (a new directory hides what
    /// lower has at its path), so nothing is at `target` yet and the lookups that
    /// [`Upper::prepare`] makes can be skipped: that is most entries of a large `COPY`.
    #[allow(clippy::too_many_arguments)]
    fn copy_entry(
        &mut self,
        src_path: &Path,
        meta: &Metadata,
        rel: &Path,
        target: &Path,
        overwrite_meta: bool,
        fresh: bool,
        pending: &mut Vec<Pending>,
    ) -> Result<()> {
        match self.settings.filter.select(rel, meta.is_dir()) {
            Selection::Skip => return Ok(()),
            Selection::Take => {}
            Selection::Descend => {
                pending.push(Pending {
                    src: src_path.to_owned(),
                    meta: meta.clone(),
                    target: target.to_owned(),
                    done: false,
                });
                for entry in self.src.read_dir(src_path)? {
                    self.copy_entry(
                        &src_path.join(&entry.name),
                        &entry.metadata,
                        &rel.join(&entry.name),
                        &target.join(&entry.name),
                        true,
                        false,
                        pending,
                    )?;
                }
                pending.pop();
                return Ok(());
            }
        }
        self.flush(pending)?;
        match meta.kind {
            FileKind::Dir => {
                let created = if fresh {
                    self.up.create_fresh_dir(target)?;
                    true
                } else {
                    self.up.prepare(target, true, self.replace)? == Slot::Empty
                };
                if created && !fresh {
                    self.up.create_dir(target, 0o700, Owner::default())?;
                }
                if created && let Some(deferred) = self.deferred.as_deref_mut() {
                    // Nothing is below a directory this copy just created: what goes there
                    // is a function of the source and the settings alone, so it can be
                    // written straight into the layer later, and onto disk only if needed.
                    self.up.mark_deferred(target)?;
                    deferred.push(DeferredDir {
                        target: target.to_owned(),
                        src_path: src_path.to_owned(),
                        rel: rel.to_owned(),
                        settings: self.settings.clone(),
                    });
                    return self.apply_meta(src_path, meta, target);
                }
                let mut inner = Vec::new();
                for entry in self.src.read_dir(src_path)? {
                    self.copy_entry(
                        &src_path.join(&entry.name),
                        &entry.metadata,
                        &rel.join(&entry.name),
                        &target.join(&entry.name),
                        true,
                        created,
                        &mut inner,
                    )?;
                }
                if created || overwrite_meta {
                    self.apply_meta(src_path, meta, target)?;
                } else {
                    let (atime, mtime) = self.times(meta);
                    self.up.set_times(target, FileKind::Dir, atime, mtime)?;
                }
                Ok(())
            }
            FileKind::File => {
                if !fresh {
                    self.up.prepare(target, false, self.replace)?;
                }
                if meta.nlink > 1 {
                    if self.deferred.is_some() {
                        // Its other names may be in a deferred directory, where this copy
                        // cannot link to: redo the copy without deferring.
                        return Err(Error::Deferred {
                            path: shown(target),
                        });
                    }
                    if let Some(first) = self.inodes.get(&(meta.dev, meta.ino)) {
                        let first = first.clone();
                        return self.up.create_hardlink(target, &first);
                    }
                    self.inodes.insert((meta.dev, meta.ino), target.to_owned());
                }
                self.copy_file(src_path, meta, target)
            }
            FileKind::Symlink => {
                if !fresh {
                    self.up.prepare(target, false, self.replace)?;
                }
                let link = self.src.read_link(src_path)?;
                self.up.create_symlink(target, &link)?;
                self.apply_meta(src_path, meta, target)
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo | FileKind::Socket => {
                if !fresh {
                    self.up.prepare(target, false, self.replace)?;
                }
                self.up.create_node(target, meta.kind, meta.rdev)?;
                self.apply_meta(src_path, meta, target)
            }
        }
    }

    /// A regular file: data, then owner, mode, times and xattrs, all through the two open
    /// descriptors (the source's xattrs are read from it, the copy's set on it), so a small
    /// file costs two opens, one read, one write and the metadata calls that change
    /// something, with no lookup by name after the opens.
    fn copy_file(&mut self, src_path: &Path, meta: &Metadata, target: &Path) -> Result<()> {
        let mut from = self.src.open_listed(src_path)?;
        let mode = self.mode_of(meta);
        let mut to = self.up.create_file_mode(target, mode)?;
        if meta.size > SMALL_FILE {
            io::copy(&mut from, &mut to).map_err(Error::io("copy to", shown(target)))?;
        } else {
            read_sized(&mut from, meta.size, &mut self.buf, |chunk| {
                to.write_all(chunk)
            })
            .map_err(Error::io("copy to", shown(target)))?;
        }
        let (uid, gid) = self.settings.owner_of(meta);
        self.up.set_file_owner_mode(&to, target, uid, gid, mode)?;
        let (atime, mtime) = self.times(meta);
        self.up.set_file_times(&to, target, atime, mtime)?;
        let xattrs = file_xattrs(&from, src_path)?;
        self.up.set_file_xattrs(&to, target, &xattrs)
    }

    /// The times to give a copy of `meta`: the source's, or `timestamp`.
    fn times(&self, meta: &Metadata) -> (i64, i64) {
        self.settings.times(meta)
    }

    /// The mode a copy of `meta` ends with (`--chmod` applied).
    fn mode_of(&self, meta: &Metadata) -> u32 {
        self.settings.mode_of(meta)
    }

    /// fsutil's `copyFileInfo` + `copyXAttrs`: owner, mode, times, then xattrs (after
    /// `chown`, which would clear `security.capability`).
    fn apply_meta(&mut self, src_path: &Path, meta: &Metadata, target: &Path) -> Result<()> {
        let (uid, gid) = self.settings.owner_of(meta);
        let mode = self.mode_of(meta);
        self.up
            .set_owner_mode(target, uid, gid, Some(mode), meta.kind)?;
        let (atime, mtime) = self.times(meta);
        self.up.set_times(target, meta.kind, atime, mtime)?;
        let xattrs = self.src.xattrs(src_path)?;
        self.up.set_xattrs(target, &xattrs)
    }
}
