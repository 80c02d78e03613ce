//! Content digests of paths in a tree: the content part of `COPY`'s cache key
//! (architecture B3 rule 5, after BuildKit's `cache/contenthash`).
//!
//! [`checksum`] hashes what a [`Selector`] picks in a [`Tree`]: a file's metadata header and
//! bytes, a directory's header and sorted entries, or the matches of a wildcard with their
//! names. **Modification times are never hashed**, so touching a file, a fresh checkout or a
//! new context transfer does not invalidate a `COPY`; owner ids are hashed only when asked
//! ([`Selector::owner`]; the build context's are not, as BuildKit resets them).
//!
//! File bytes are hashed once per file state: a [`Memo`] keyed by path and [`FileStamp`]
//! (device, inode, size, mtime, ctime — git's index rule) returns the content digest of an
//! unchanged file without opening it, so a no-op rebuild reads no file bytes. It may also
//! keep a file's whole digest ([`Memo::get_file`]); the stamp covers the header as well
//! (mode, owner and xattr changes bump ctime), so an unchanged file then costs no syscall
//! beyond its `stat`.
//!
//! # Preimage (schema `v1`)
//!
//! Every digest is SHA-256. `‖` is concatenation, `hex` lowercase hex, numbers are decimal
//! ASCII, and each header field is `name=value` followed by a NUL byte, in this order:
//!
//! | field | present for | value |
//! |---|---|---|
//! | `type` | all | `file`, `dir`, `symlink`, `char`, `block`, `fifo`, `socket` |
//! | `mode` | all | octal permission **and** setuid/setgid/sticky bits (`st_mode & 0o7777`), e.g. `4755` |
//! | `uid`, `gid` | all, only with [`Selector::owner`] | owner ids |
//! | `size` | `file` | size in bytes |
//! | `link` | `symlink` | the target, verbatim bytes |
//! | `devmajor`, `devminor` | `char`, `block` | device numbers |
//! | `xattr.<name>` | each xattr, sorted by name | hex of the value; `security.*` left out except `security.capability`, `system.*`, `trusted.overlay.*` and `user.overlay.*` left out |
//!
//! Never hashed: mtime, atime, ctime, inode, link count, the entry's own name (its parent
//! hashes that).
//!
//! | what | digest |
//! |---|---|
//! | content of a file | `sha256(bytes)` (this is what the [`Memo`] stores) |
//! | file | `sha256("v1\0" ‖ header ‖ "content=" ‖ hex(content digest) ‖ "\0")` |
//! | symlink, device, fifo, socket | `sha256("v1\0" ‖ header)` |
//! | directory | `sha256("v1\0" ‖ header ‖ for each entry, sorted by name bytes: name ‖ "\0" ‖ entry digest (32 raw bytes))` |
//! | selector, plain path | the digest of the entry at the (resolved) path |
//! | selector, wildcard | `sha256("v1-wildcard\0" ‖ for each match in sorted order: path ‖ "\0" ‖ digest (32 bytes))`, `path` relative to the tree root; no match hashes the empty list |
//!
//! With include/exclude patterns, a directory's entry list holds only selected entries; a
//! directory that is not itself selected but holds selected entries keeps its header. A
//! selected path that does not exist is an error ([`Error::NotFound`]).
//!
//! Changing anything here changes every key: bump `v1` and the golden digests in
//! `tests/contenthash.rs` together.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::fileop::has_wildcards;
use crate::select::{Filter, Selection};
use crate::sys::{clean_lexical, read_sized, shown};
use crate::tree::{FileKind, Metadata, Tree, file_xattrs};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, without an algorithm prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    /// `sha256:<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What to hash in a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The path (absolute or relative to the tree root); resolved inside the tree.
    pub path: String,
    /// Follow a symlink at `path` itself (else the link is hashed as a link).
    pub follow_links: bool,
    /// `path` may contain wildcards (as `COPY`'s `allow_wildcard`).
    pub wildcard: bool,
    /// Only hash paths below `path` matching these (`.dockerignore` syntax, relative to
    /// `path`).
    pub include_patterns: Vec<String>,
    /// Leave out paths below `path` matching these.
    pub exclude_patterns: Vec<String>,
    /// Hash uid and gid. Off for the build context, whose owners the copy resets.
    pub owner: bool,
}

/// The state of a file that decides whether its content digest can be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` in nanoseconds.
    pub mtime_ns: i64,
    /// `st_ctime` in nanoseconds (changes on any write or metadata change).
    pub ctime_ns: i64,
}

impl FileStamp {
    /// The stamp of an entry.
    pub fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev,
            ino: meta.ino,
            size: meta.size,
            mtime_ns: meta.mtime_ns,
            ctime_ns: meta.ctime_ns,
        }
    }
}

/// The state of a whole directory selection, for [`Memo::get_tree`]: a digest of the path and
/// stat fields ([`FileStamp`] plus type, mode, owner and device number) of every selected
/// entry in walk order, the resolved root's path first. Any change the content digest sees
/// changes one of those: data (size, mtime, ctime), mode, owner and xattrs (ctime), a symlink's
/// target (a new inode), an entry added, removed or renamed (the paths). So an equal stamp
/// means an equal selection digest, as an equal [`FileStamp`] does for one file, and an
/// unchanged context costs its `stat` walk and one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeStamp {
    /// sha256 of the entries' paths and stat fields.
    pub digest: Digest,
    /// The newest `st_ctime` of any entry, in nanoseconds: a memo must not record a stamp
    /// whose entries could still change without changing it (as for one file).
    pub newest_ctime_ns: i64,
}

impl TreeStamp {
    fn of(root: &Path, node: &Node) -> TreeStamp {
        let mut h = Sha256::new();
        h.update(b"tree-stamp-v1\0");
        h.update(root.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        let mut newest = i64::MIN;
        node.stamp(&mut h, &mut Vec::new(), &mut newest);
        TreeStamp {
            digest: Digest(h.finalize().into()),
            newest_ctime_ns: newest,
        }
    }
}

/// A store of file content digests, so unchanged files are not read again. The solver keeps
/// one in its database; [`HashMapMemo`] is the in-memory one.
pub trait Memo {
    /// The content digest recorded for `path` (a tree path) if it was recorded with exactly
    /// this `stamp`.
    fn get(&mut self, path: &Path, stamp: &FileStamp) -> Option<Digest>;
    /// Records the content digest of `path` at `stamp`.
    fn put(&mut self, path: &Path, stamp: &FileStamp, digest: Digest);

    /// The whole digest of the regular file `path` (header and content, as hashed with
    /// [`Selector::owner`] = `owner`) if it was recorded with exactly this `stamp`. The stamp
    /// covers the header too: a change of mode, owner or xattrs bumps ctime. A hit saves the
    /// xattr read and the content lookup, so an unchanged file costs only its `stat` from the
    /// directory walk. Optional; the default remembers nothing.
    fn get_file(&mut self, path: &Path, stamp: &FileStamp, owner: bool) -> Option<Digest> {
        let _ = (path, stamp, owner);
        None
    }

    /// Records the whole digest of the regular file `path` at `stamp` (see
    /// [`get_file`](Memo::get_file)).
    fn put_file(&mut self, path: &Path, stamp: &FileStamp, owner: bool, digest: Digest) {
        let _ = (path, stamp, owner, digest);
    }

    /// The digest of a whole directory selection (`key` names the selector and its options)
    /// if it was recorded with exactly this `stamp`. A hit skips every per-file lookup, so a
    /// no-op rebuild of a large context costs its `stat` walk only. Optional; the default
    /// remembers nothing.
    fn get_tree(&mut self, key: &[u8], stamp: &TreeStamp) -> Option<Digest> {
        let _ = (key, stamp);
        None
    }

    /// Records the digest of a whole directory selection at `stamp` (see
    /// [`get_tree`](Memo::get_tree)).
    fn put_tree(&mut self, key: &[u8], stamp: &TreeStamp, digest: Digest) {
        let _ = (key, stamp, digest);
    }
}

/// A [`Memo`] in a `HashMap`, for one process.
#[derive(Debug, Clone, Default)]
pub struct HashMapMemo {
    entries: HashMap<PathBuf, (FileStamp, Digest)>,
}

impl HashMapMemo {
    /// An empty memo.
    pub fn new() -> HashMapMemo {
        HashMapMemo::default()
    }

    /// How many files are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Memo for HashMapMemo {
    fn get(&mut self, path: &Path, stamp: &FileStamp) -> Option<Digest> {
        match self.entries.get(path) {
            Some((s, d)) if s == stamp => Some(*d),
            _ => None,
        }
    }

    fn put(&mut self, path: &Path, stamp: &FileStamp, digest: Digest) {
        self.entries.insert(path.to_owned(), (*stamp, digest));
    }
}

/// A [`Memo`] that remembers nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMemo;

impl Memo for NoMemo {
    fn get(&mut self, _: &Path, _: &FileStamp) -> Option<Digest> {
        None
    }
    fn put(&mut self, _: &Path, _: &FileStamp, _: Digest) {}
}

/// The digest of what `selector` picks in `tree` (see the [module docs](self) for the exact
/// preimage).
pub fn checksum(tree: &dyn Tree, selector: &Selector, memo: &mut dyn Memo) -> Result<Digest> {
    let hasher = Hasher {
        tree,
        filter: Filter::new(&selector.include_patterns, &selector.exclude_patterns)?,
        owner: selector.owner,
        buf: RefCell::new(Vec::new()),
    };
    if selector.wildcard && has_wildcards(&selector.path) {
        let matches = crate::fileop::wildcard_matches(tree, &selector.path, selector.follow_links)?;
        let mut h = Sha256::new();
        h.update(b"v1-wildcard\0");
        for path in matches {
            let resolved = tree.resolve(&path, selector.follow_links)?;
            let meta = tree.lstat(&resolved)?.ok_or_else(|| Error::NotFound {
                path: shown(&resolved),
            })?;
            let digest = hasher.entry(&resolved, &meta, Path::new(""), memo)?;
            h.update(path.as_os_str().as_encoded_bytes());
            h.update(b"\0");
            h.update(digest.unwrap_or(Digest([0; 32])).0);
        }
        return Ok(Digest(h.finalize().into()));
    }
    let path = tree.resolve(Path::new(&selector.path), selector.follow_links)?;
    let meta = tree.lstat(&path)?.ok_or_else(|| Error::NotFound {
        path: shown(&clean_lexical(Path::new(&selector.path))),
    })?;
    if !meta.is_dir() {
        let digest = hasher.entry(&path, &meta, Path::new(""), memo)?;
        // The selected root itself is always taken, so there is a digest.
        return Ok(digest.unwrap_or(Digest([0; 32])));
    }
    // A directory: walk it once, then try the whole selection's memo before any per-file one.
    let Some(node) = hasher.collect(&path, meta, Path::new(""))? else {
        return Ok(Digest([0; 32]));
    };
    let key = tree_key(selector);
    let stamp = TreeStamp::of(&path, &node);
    if let Some(digest) = memo.get_tree(&key, &stamp) {
        return Ok(digest);
    }
    let digest = hasher
        .digest(&path, &node, memo)?
        .unwrap_or(Digest([0; 32]));
    memo.put_tree(&key, &stamp, digest);
    Ok(digest)
}

/// What identifies a selection for [`Memo::get_tree`]: the selector as given, every option
/// that changes what is hashed, and the preimage version.
fn tree_key(selector: &Selector) -> Vec<u8> {
    let mut key = b"tree-v1\0".to_vec();
    let mut push = |bytes: &[u8]| {
        key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        key.extend_from_slice(bytes);
    };
    push(selector.path.as_bytes());
    push(&[
        u8::from(selector.follow_links),
        u8::from(selector.wildcard),
        u8::from(selector.owner),
    ]);
    for patterns in [&selector.include_patterns, &selector.exclude_patterns] {
        push(&(patterns.len() as u64).to_le_bytes());
        for p in patterns {
            push(p.as_bytes());
        }
    }
    key
}

/// The content digest of a file alone: `sha256(bytes)`, through the memo.
pub fn file_content(
    tree: &dyn Tree,
    path: &Path,
    meta: &Metadata,
    memo: &mut dyn Memo,
) -> Result<Digest> {
    let stamp = FileStamp::of(meta);
    if let Some(d) = memo.get(path, &stamp) {
        return Ok(d);
    }
    let mut file = tree.open(path)?;
    let d = hash_content(&mut file, path, meta.size, &mut Vec::new())?;
    memo.put(path, &stamp, d);
    Ok(d)
}

/// `sha256` of an open file's bytes (`size` from its `stat` sizes the reads).
fn hash_content(file: &mut File, path: &Path, size: u64, buf: &mut Vec<u8>) -> Result<Digest> {
    let mut h = Sha256::new();
    read_sized(file, size, buf, |chunk| {
        h.update(chunk);
        Ok(())
    })
    .map_err(Error::io("read", shown(path)))?;
    Ok(Digest(h.finalize().into()))
}

struct Hasher<'t> {
    tree: &'t dyn Tree,
    filter: Filter,
    owner: bool,
    /// The read buffer, reused from file to file.
    buf: RefCell<Vec<u8>>,
}

fn field(h: &mut Sha256, name: &str, value: &[u8]) {
    h.update(name.as_bytes());
    h.update(b"=");
    h.update(value);
    h.update(b"\0");
}

/// Whether an xattr takes part in the hash (architecture B3 rule 5).
fn hashed_xattr(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    if name.starts_with(b"security.") {
        return name == b"security.capability";
    }
    !name.starts_with(b"system.")
        && !name.starts_with(b"trusted.overlay.")
        && !name.starts_with(b"user.overlay.")
}

impl Hasher<'_> {
    /// The header fields; `xattrs` when the caller already read them (from an open file),
    /// else they are read from the tree.
    fn header(
        &self,
        h: &mut Sha256,
        path: &Path,
        meta: &Metadata,
        xattrs: Option<Vec<(OsString, Vec<u8>)>>,
    ) -> Result<()> {
        h.update(b"v1\0");
        let kind = match meta.kind {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "char",
            FileKind::BlockDevice => "block",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        };
        field(h, "type", kind.as_bytes());
        field(h, "mode", format!("{:o}", meta.mode & 0o7777).as_bytes());
        if self.owner {
            field(h, "uid", meta.uid.to_string().as_bytes());
            field(h, "gid", meta.gid.to_string().as_bytes());
        }
        match meta.kind {
            FileKind::File => field(h, "size", meta.size.to_string().as_bytes()),
            FileKind::Symlink => {
                let target = self.tree.read_link(path)?;
                field(h, "link", target.as_os_str().as_encoded_bytes());
            }
            FileKind::CharDevice | FileKind::BlockDevice => {
                let dev = meta.rdev;
                let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
                field(h, "devmajor", major.to_string().as_bytes());
                field(h, "devminor", minor.to_string().as_bytes());
            }
            _ => {}
        }
        let xattrs = match xattrs {
            Some(xattrs) => xattrs,
            None => self.tree.xattrs(path)?,
        };
        for (name, value) in xattrs {
            if hashed_xattr(&name) {
                let key = format!("xattr.{}", name.to_string_lossy());
                field(h, &key, hex::encode(value).as_bytes());
            }
        }
        Ok(())
    }

    /// Walks the entry at `path` (`rel` to the selected root): its metadata and, for a
    /// directory, its selected entries, recursively. `None` when the filter leaves it (and
    /// everything in it) out. The walk comes first, so that the selection's [`TreeStamp`] is
    /// known before any digest is looked up or computed.
    fn collect(&self, path: &Path, meta: Metadata, rel: &Path) -> Result<Option<Node>> {
        let selection = self.filter.select(rel, meta.is_dir());
        if selection == Selection::Skip {
            return Ok(None);
        }
        let mut children = Vec::new();
        if meta.is_dir() {
            for child in self.tree.read_dir(path)? {
                let child_path = path.join(&child.name);
                let child_rel = rel.join(&child.name);
                if let Some(node) = self.collect(&child_path, child.metadata, &child_rel)? {
                    children.push((child.name, node));
                }
            }
        }
        Ok(Some(Node {
            meta,
            descend: selection == Selection::Descend,
            children,
        }))
    }

    /// The digest of a collected entry at `path`, or `None` for a directory that was only
    /// looked into and holds nothing selected.
    fn digest(&self, path: &Path, node: &Node, memo: &mut dyn Memo) -> Result<Option<Digest>> {
        let meta = &node.meta;
        let mut h = Sha256::new();
        match meta.kind {
            FileKind::File => {
                let stamp = FileStamp::of(meta);
                if let Some(d) = memo.get_file(path, &stamp, self.owner) {
                    return Ok(Some(d));
                }
                // Content and xattrs from one open descriptor: no lookup by path per read.
                let (content, xattrs) = match memo.get(path, &stamp) {
                    Some(content) => (content, None),
                    None => {
                        let mut file = self.tree.open_listed(path)?;
                        let mut buf = self.buf.borrow_mut();
                        let content = hash_content(&mut file, path, meta.size, &mut buf)?;
                        memo.put(path, &stamp, content);
                        (content, Some(file_xattrs(&file, path)?))
                    }
                };
                self.header(&mut h, path, meta, xattrs)?;
                field(&mut h, "content", content.to_hex().as_bytes());
                let d = Digest(h.finalize().into());
                memo.put_file(path, &stamp, self.owner, d);
                return Ok(Some(d));
            }
            FileKind::Dir => {
                self.header(&mut h, path, meta, None)?;
                let mut any = false;
                for (name, child) in &node.children {
                    if let Some(d) = self.digest(&path.join(name), child, memo)? {
                        any = true;
                        h.update(name.as_encoded_bytes());
                        h.update(b"\0");
                        h.update(d.0);
                    }
                }
                if node.descend && !any {
                    return Ok(None);
                }
            }
            _ => self.header(&mut h, path, meta, None)?,
        }
        Ok(Some(Digest(h.finalize().into())))
    }

    /// The digest of the entry at `path` (`rel` to the selected root), or `None` when the
    /// filter leaves it out.
    fn entry(
        &self,
        path: &Path,
        meta: &Metadata,
        rel: &Path,
        memo: &mut dyn Memo,
    ) -> Result<Option<Digest>> {
        match self.collect(path, meta.clone(), rel)? {
            Some(node) => self.digest(path, &node, memo),
            None => Ok(None),
        }
    }
}

/// One walked entry: its metadata and, for a directory, its selected entries by name.
struct Node {
    meta: Metadata,
    /// A directory not selected itself, only looked into ([`Selection::Descend`]).
    descend: bool,
    children: Vec<(OsString, Node)>,
}

impl Node {
    /// Feeds this entry and everything below it, in walk order, into a [`TreeStamp`].
    fn stamp(&self, h: &mut Sha256, rel: &mut Vec<u8>, newest_ctime_ns: &mut i64) {
        let m = &self.meta;
        h.update((rel.len() as u64).to_le_bytes());
        h.update(&rel[..]);
        h.update([m.kind as u8, u8::from(self.descend)]);
        for n in [
            m.mode as u64,
            m.uid as u64,
            m.gid as u64,
            m.size,
            m.rdev,
            m.dev,
            m.ino,
        ] {
            h.update(n.to_le_bytes());
        }
        for t in [m.mtime_ns, m.ctime_ns] {
            h.update(t.to_le_bytes());
        }
        *newest_ctime_ns = (*newest_ctime_ns).max(m.ctime_ns);
        h.update((self.children.len() as u64).to_le_bytes());
        for (name, child) in &self.children {
            let len = rel.len();
            if len > 0 {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_encoded_bytes());
            child.stamp(h, rel, newest_ctime_ns);
            rel.truncate(len);
        }
    }
}
