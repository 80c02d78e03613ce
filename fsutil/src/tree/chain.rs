//! [`ChainTree`]: snapshot diff directories stacked and merged as overlayfs merges them.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::dir::{is_not_found, read_xattrs};
use super::{DEFERRED_XATTR, DirEntry, Metadata, Tree};
use crate::error::{Error, Result};
use crate::sys::{DirFd, ParentCache, ProcPath, Resolve, shown, split};

/// The xattr that marks a directory in an upper layer as opaque: nothing of the same
/// directory in lower layers shows through (overlayfs.rst, "whiteouts and opaque
/// directories"). Needs `CAP_SYS_ADMIN` to set.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same marker as overlayfs writes it when mounted with `userxattr` (rootless; see
/// overlayfs.rst, "User xattr").
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// A stack of layer diff directories (`snapshots/<id>/fs`), **top first**, seen as one merged
/// filesystem with overlayfs's rules:
///
/// * an entry in a higher layer hides the same path in lower ones;
/// * a whiteout (a character device 0:0) hides the path and everything below it in lower
///   layers, and is itself invisible;
/// * a non-directory hides everything below its path in lower layers;
/// * a directory with `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`) hides the lower
///   layers' contents of that directory; a plain directory merges with lower directories.
///
/// Lookups go directory by directory as overlayfs does: an entry is looked for only in the
/// layers whose directories merge at its parent. Those per-directory layer lists are cached,
/// so **the layers must not change** while a chain made by [`new`](ChainTree::new) is in use
/// (committed snapshots do not); [`uncached`](ChainTree::uncached) and
/// [`with_top`](ChainTree::with_top) give chains that read everything live.
///
/// Cheap to clone (clones share descriptors and the cache); `Send` and `Sync`.
#[derive(Debug, Clone)]
pub struct ChainTree {
    layers: Vec<Layer>,
    /// Directory path → the layers whose directories merge there, top first. `None` for a
    /// chain whose layers may change (the merged view of a layer being written).
    dirs: Option<Arc<DirCache>>,
    /// For a chain made by [`with_top`](ChainTree::with_top): the chain below the live top
    /// layer, whose own cache serves every lookup below the top.
    below: Option<Arc<ChainTree>>,
    /// For a top written by one writer ([`with_written_top`](ChainTree::with_written_top)):
    /// the top's directories seen so far, with whether each is opaque. Directories only
    /// disappear through that writer, which calls [`forget_top`](ChainTree::forget_top).
    top_dirs: Option<Arc<Mutex<HashMap<PathBuf, bool>>>>,
}

/// See [`ChainTree::dir_layers`].
type DirCache = Mutex<HashMap<PathBuf, Arc<[usize]>>>;

#[derive(Debug, Clone)]
struct Layer {
    path: PathBuf,
    dir: Arc<DirFd>,
    /// The last parent directory opened in this layer; `None` for a live top whose
    /// directories may be replaced under us.
    parent: Option<Arc<ParentCache>>,
}

/// One layer's entry for a path: which layer, and its metadata.
type Hit = (usize, Metadata);

impl ChainTree {
    /// Opens the layers, given top first. No layers is the empty filesystem (`scratch`),
    /// where even the root does not exist until something is written above it.
    pub fn new<I, P>(layers: I) -> Result<ChainTree>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let layers = layers
            .into_iter()
            .map(|p| {
                Ok(Layer {
                    path: p.as_ref().to_owned(),
                    dir: Arc::new(DirFd::open_host(p.as_ref())?),
                    parent: Some(Arc::default()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ChainTree {
            layers,
            dirs: Some(Arc::default()),
            below: None,
            top_dirs: None,
        })
    }

    /// This chain without the directory cache, for layers that change while it is used.
    pub fn uncached(&self) -> ChainTree {
        ChainTree {
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    parent: None,
                    ..l.clone()
                })
                .collect(),
            dirs: None,
            below: None,
            top_dirs: None,
        }
    }

    /// This chain with one more layer on top (the upper directory of a step being applied).
    /// The top is always read live, so it may change while the result is used; lookups below
    /// it use this chain (and its cache).
    pub fn with_top(&self, top: &Path) -> Result<ChainTree> {
        let mut layers = vec![Layer {
            path: top.to_owned(),
            dir: Arc::new(DirFd::open_host(top)?),
            parent: None,
        }];
        layers.extend(self.layers.iter().cloned());
        // The new top is being written: nothing about it is cached; what is below keeps its
        // cache.
        Ok(ChainTree {
            layers,
            dirs: None,
            below: Some(Arc::new(self.clone())),
            top_dirs: None,
        })
    }

    /// [`with_top`](ChainTree::with_top) for a top that only the caller writes: the top's
    /// directories (and the last parent descriptor) are cached, and the caller must call
    /// [`forget_top`](ChainTree::forget_top) after removing a directory from the top.
    pub(crate) fn with_written_top(&self, top: &Path) -> Result<ChainTree> {
        let mut tree = self.with_top(top)?;
        tree.layers[0].parent = Some(Arc::default());
        tree.top_dirs = Some(Arc::default());
        Ok(tree)
    }

    /// Forgets what [`with_written_top`](ChainTree::with_written_top) cached about the top.
    pub(crate) fn forget_top(&self) {
        if let Some(parent) = &self.layers.first().and_then(|l| l.parent.clone()) {
            parent.clear();
        }
        if let Some(dirs) = &self.top_dirs {
            dirs.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Whether the top directory `path` is opaque, if the top cache knows it is a directory.
    fn top_cached(&self, path: &Path) -> Option<bool> {
        let dirs = self.top_dirs.as_ref()?;
        dirs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .copied()
    }

    /// Whether the top directory `path` is opaque, read from the top (and cached).
    fn top_opaque(&self, path: &Path) -> Result<bool> {
        if let Some(opaque) = self.top_cached(path) {
            return Ok(opaque);
        }
        let opaque = self.is_opaque(0, path)?;
        if let Some(dirs) = &self.top_dirs {
            dirs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_owned(), opaque);
        }
        Ok(opaque)
    }

    /// The layer directories, top first.
    pub fn layers(&self) -> impl Iterator<Item = &Path> {
        self.layers.iter().map(|l| l.path.as_path())
    }

    /// The layer (index, top first) that provides the visible entry at `path`, with its
    /// metadata; `None` if nothing is visible there.
    pub fn lookup(&self, path: &Path) -> Result<Option<(usize, Metadata)>> {
        Ok(self.stack(path)?.into_iter().next())
    }

    /// The entry at `path` in one layer alone, not following a final symlink.
    pub(crate) fn layer_lstat(&self, layer: usize, path: &Path) -> Result<Option<Metadata>> {
        let Some(proc) = self.layer_proc(layer, path)? else {
            return Ok(None);
        };
        let meta = proc.lstat();
        match meta {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::io("stat", self.layers[layer].path.join(path))(e)),
        }
    }

    /// The `/proc` path of `path` in one layer; `None` if its parent does not exist there.
    pub(crate) fn layer_proc(&self, layer: usize, path: &Path) -> Result<Option<ProcPath>> {
        let (parent, name) = match split(path) {
            Some((parent, name)) => (parent, Some(name)),
            None => (Path::new(""), None),
        };
        // Ancestors were checked to be directories in this layer before we get here, so a
        // symlink on the way means the layer is not what the merge rules assumed: refuse it.
        let l = &self.layers[layer];
        let opened = match &l.parent {
            Some(cache) => cache.open_dir(&l.dir, parent, Resolve::NoSymlinks),
            None => l.dir.open_dir(parent, Resolve::NoSymlinks),
        };
        match opened {
            Ok(dir) => Ok(Some(ProcPath::new(dir, name))),
            Err(e)
                if e == rustix::io::Errno::NOENT
                    || e == rustix::io::Errno::NOTDIR
                    || e == rustix::io::Errno::LOOP =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io("open", self.layers[layer].path.join(parent))(
                e.into(),
            )),
        }
    }

    /// Whether the directory `path` of `layer` is opaque. Every directory a lookup merges
    /// passes through here, so this is also where a deferred directory (one whose contents
    /// are only in the layer blob) stops the lookup with [`Error::Deferred`].
    fn is_opaque(&self, layer: usize, path: &Path) -> Result<bool> {
        let Some(proc) = self.layer_proc(layer, path)? else {
            return Ok(false);
        };
        let is_root = path.as_os_str().is_empty();
        let get = |name: &str| {
            let value = if is_root {
                xattr::get_deref(&proc, name)
            } else {
                xattr::get(&proc, name)
            };
            match value {
                Err(e) if e.raw_os_error() == Some(95) => Ok(None), // EOPNOTSUPP
                other => other.map_err(Error::io(
                    "read xattrs of",
                    self.layers[layer].path.join(path),
                )),
            }
        };
        if !is_root && get(DEFERRED_XATTR)?.is_some() {
            return Err(Error::Deferred { path: shown(path) });
        }
        for name in [OVERLAY_OPAQUE_XATTR, USER_OPAQUE_XATTR] {
            if get(name)?.as_deref() == Some(b"y") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The visible entries for `path`, top first: one non-directory, or a run of directories
    /// that merge (ending at an opaque one).
    fn stack(&self, path: &Path) -> Result<Vec<Hit>> {
        if let Some(below) = &self.below {
            return self.stack_live_top(below, path);
        }
        let Some((parent, _)) = split(path) else {
            // The root: every layer's root merges, down to an opaque one.
            let mut out = Vec::new();
            for layer in 0..self.layers.len() {
                if let Some(meta) = self.layer_lstat(layer, path)? {
                    out.push((layer, meta));
                    if self.is_opaque(layer, path)? {
                        break;
                    }
                }
            }
            return Ok(out);
        };
        let mut out: Vec<Hit> = Vec::new();
        for &layer in self.dir_layers(parent)?.iter() {
            let Some(meta) = self.layer_lstat(layer, path)? else {
                continue;
            };
            if meta.is_whiteout() {
                break;
            }
            if !meta.is_dir() {
                // A non-directory hides what is below it, and is hidden by a directory above.
                if out.is_empty() {
                    out.push((layer, meta));
                }
                break;
            }
            let opaque = self.is_opaque(layer, path)?;
            out.push((layer, meta));
            if opaque {
                break;
            }
        }
        Ok(out)
    }

    /// [`stack`](Self::stack) for a live top layer (index 0) over a chain `below`: the top's
    /// ancestors are walked in the top alone, then `below` answers for the rest.
    fn stack_live_top(&self, below: &ChainTree, path: &Path) -> Result<Vec<Hit>> {
        // Is the top's view of `path` reachable (all ancestors directories in the top), and
        // does an opaque ancestor hide what is below?
        let mut hide_below = self.top_opaque(Path::new(""))?;
        let mut top_reaches = true;
        if let Some((parent, _)) = split(path) {
            let mut prefix = PathBuf::new();
            for comp in parent.iter() {
                prefix.push(comp);
                if let Some(opaque) = self.top_cached(&prefix) {
                    hide_below |= opaque;
                    continue;
                }
                match self.layer_lstat(0, &prefix)? {
                    None => {
                        top_reaches = false;
                        break;
                    }
                    // Nothing exists below a whiteout or a non-directory of the top.
                    Some(meta) if !meta.is_dir() => return Ok(Vec::new()),
                    Some(_) => hide_below |= self.top_opaque(&prefix)?,
                }
            }
        }
        let top = if top_reaches {
            self.layer_lstat(0, path)?
        } else {
            None
        };
        let lower = |hits: Vec<Hit>| hits.into_iter().map(|(layer, meta)| (layer + 1, meta));
        match top {
            Some(meta) if meta.is_whiteout() => Ok(Vec::new()),
            Some(meta) if !meta.is_dir() => Ok(vec![(0, meta)]),
            Some(meta) => {
                let opaque = !path.as_os_str().is_empty() && self.top_opaque(path)?;
                let mut out = vec![(0, meta)];
                if !(opaque || hide_below) {
                    out.extend(lower(below.stack(path)?).take_while(|(_, m)| m.is_dir()));
                }
                Ok(out)
            }
            None if hide_below => Ok(Vec::new()),
            None => Ok(lower(below.stack(path)?).collect()),
        }
    }

    /// The layers whose directories merge at `path`, top first (empty if `path` is not a
    /// directory in the merged view).
    fn dir_layers(&self, path: &Path) -> Result<Arc<[usize]>> {
        if let Some(cache) = &self.dirs
            && let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(path)
        {
            return Ok(hit.clone());
        }
        let stack = self.stack(path)?;
        let layers: Arc<[usize]> = match stack.first() {
            Some((_, meta)) if meta.is_dir() => stack.iter().map(|(layer, _)| *layer).collect(),
            _ => Arc::from([]),
        };
        if let Some(cache) = &self.dirs {
            cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_owned(), layers.clone());
        }
        Ok(layers)
    }

    fn top_proc(&self, path: &Path) -> Result<(usize, ProcPath)> {
        let (layer, _) = self
            .lookup(path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        let proc = self
            .layer_proc(layer, path)?
            .ok_or_else(|| Error::NotFound { path: shown(path) })?;
        Ok((layer, proc))
    }
}

impl Tree for ChainTree {
    fn lstat(&self, path: &Path) -> Result<Option<Metadata>> {
        Ok(self.lookup(path)?.map(|(_, meta)| meta))
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let stack = self.stack(path)?;
        match stack.first() {
            None => return Err(Error::NotFound { path: shown(path) }),
            Some((_, meta)) if !meta.is_dir() => {
                return Err(Error::NotADirectory { path: shown(path) });
            }
            Some(_) => {}
        }
        let mut seen: HashSet<OsString> = HashSet::new();
        let mut out = Vec::new();
        for (layer, _) in stack {
            let Some(proc) = self.layer_proc(layer, path)? else {
                continue;
            };
            let read = std::fs::read_dir(&proc).map_err(Error::io(
                "read directory",
                self.layers[layer].path.join(path),
            ))?;
            for entry in read {
                let entry = entry.map_err(Error::io(
                    "read directory",
                    self.layers[layer].path.join(path),
                ))?;
                let name = entry.file_name();
                if !seen.insert(name.clone()) {
                    continue;
                }
                let meta = std::fs::symlink_metadata(entry.path()).map_err(Error::io(
                    "stat",
                    self.layers[layer].path.join(path).join(&name),
                ))?;
                let meta = Metadata::from_std(&meta);
                if meta.is_whiteout() {
                    continue;
                }
                out.push(DirEntry {
                    name,
                    metadata: meta,
                });
            }
        }
        out.sort_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
        Ok(out)
    }

    fn open(&self, path: &Path) -> Result<File> {
        let (_, proc) = self.top_proc(path)?;
        OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&*proc)
            .map_err(Error::io("open", shown(path)))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf> {
        let (_, proc) = self.top_proc(path)?;
        std::fs::read_link(&*proc).map_err(Error::io("read link", shown(path)))
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let (_, proc) = self.top_proc(path)?;
        read_xattrs(&proc, path.as_os_str().is_empty(), path)
    }
}
