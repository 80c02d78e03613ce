//! Content hashes for `COPY` keys: `dray_fsutil::contenthash` per selector, memoized in the
//! store, combined as [`crate::key`] documents.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dray_cache::{FileStamp, MemoScope, Store};
use dray_fsutil::contenthash::{self as ch, Memo};
use dray_llb::{Digest, Hasher};

use super::Tree;
use crate::error::OpError;

/// What one `COPY` reads from its source: the options that change what is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentSelector {
    /// The full source path (absolute in the source).
    pub path: String,
    /// Follow a symlink at the path itself.
    pub follow_links: bool,
    /// The path may be a wildcard.
    pub wildcard: bool,
    /// Include patterns below the path.
    pub include: Vec<String>,
    /// Exclude patterns below the path.
    pub exclude: Vec<String>,
}

/// File content digests memoized in the store's `contenthash` table, counting the bytes of
/// files that had to be read.
#[derive(Debug)]
pub(crate) struct StoreMemo {
    store: Option<Store>,
    bytes_read: AtomicU64,
}

impl StoreMemo {
    /// A memo over `store` (`None`: nothing memoized).
    pub(crate) fn new(store: Option<Store>) -> Self {
        Self {
            store,
            bytes_read: AtomicU64::new(0),
        }
    }

    /// Bytes of files read (memo misses) so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// The memo of one tree for one checksum. It keeps whole file digests
/// ([`Memo::get_file`]), under the tree's scope with a `|file-v1|owner=` suffix so they never
/// mix with rows that hold content digests: an unchanged file then costs only its `stat`. The
/// scope's rows are read in one query on first use, and new digests are written back in one
/// transaction by [`Scoped::flush`] (a transaction per file costs a WAL sync each, which
/// dominated a cold build of many small files). Before any of that, a directory selection
/// whose [`ch::TreeStamp`] is unchanged is answered by one row under `|tree-v1`
/// ([`Memo::get_tree`]), so a no-op rebuild does not load the per-file rows at all.
struct Scoped<'a> {
    memo: &'a StoreMemo,
    scope: String,
    /// Where whole-selection digests are memoized ([`ch::Memo::get_tree`]).
    tree_scope: String,
    known: Option<MemoScope>,
    new: Vec<(PathBuf, FileStamp, Digest)>,
}

impl<'a> Scoped<'a> {
    fn new(memo: &'a StoreMemo, tree: &Tree) -> Self {
        Scoped {
            memo,
            scope: format!(
                "{}|file-v1|owner={}",
                tree.memo_scope(),
                tree.hashes_owner()
            ),
            tree_scope: format!("{}|tree-v1", tree.memo_scope()),
            known: None,
            new: Vec::new(),
        }
    }

    /// Saves the digests computed since the last flush.
    fn flush(&mut self) {
        let new = std::mem::take(&mut self.new);
        if let (Some(store), false) = (&self.memo.store, new.is_empty()) {
            // A failing memo is only a slower hash next time.
            let _ = store
                .contenthash_put_many(&self.scope, new.iter().map(|(p, s, d)| (p.as_path(), s, d)));
        }
    }
}

fn stamp(s: &ch::FileStamp) -> FileStamp {
    FileStamp {
        dev: s.dev,
        ino: s.ino,
        size: s.size,
        mtime_ns: s.mtime_ns,
        ctime_ns: s.ctime_ns,
    }
}

impl Memo for Scoped<'_> {
    // Content digests alone are not kept: the whole-file memo covers every unchanged file,
    // and a file whose metadata changed is short enough to read again.
    fn get(&mut self, _: &Path, _: &ch::FileStamp) -> Option<ch::Digest> {
        None
    }

    fn put(&mut self, _: &Path, s: &ch::FileStamp, _: ch::Digest) {
        self.memo.bytes_read.fetch_add(s.size, Ordering::Relaxed);
    }

    fn get_file(&mut self, path: &Path, s: &ch::FileStamp, owner: bool) -> Option<ch::Digest> {
        let store = self.memo.store.as_ref()?;
        let scope = &self.scope;
        let known = self
            .known
            .get_or_insert_with(|| store.contenthash_scope(scope).unwrap_or_default());
        match known.get(path) {
            Some((recorded, d)) if *recorded == stamp(s) => {
                // The scope names the owner setting; a caller asking otherwise gets no hit.
                (owner == scope.ends_with("owner=true")).then(|| ch::Digest(*d.as_bytes()))
            }
            _ => None,
        }
    }

    fn put_file(&mut self, path: &Path, s: &ch::FileStamp, owner: bool, digest: ch::Digest) {
        if self.memo.store.is_some() && owner == self.scope.ends_with("owner=true") {
            self.new
                .push((path.to_owned(), stamp(s), Digest::from_bytes(digest.0)));
        }
    }

    fn get_tree(&mut self, key: &[u8], s: &ch::TreeStamp) -> Option<ch::Digest> {
        let store = self.memo.store.as_ref()?;
        let found = store
            .contenthash_get(&self.tree_scope, key_path(key), &tree_stamp(s))
            .ok()??;
        Some(ch::Digest(*found.as_bytes()))
    }

    fn put_tree(&mut self, key: &[u8], s: &ch::TreeStamp, digest: ch::Digest) {
        if let Some(store) = &self.memo.store {
            // Refused (not an error) when an entry is racily clean; failing is a slower hash.
            let _ = store.contenthash_put(
                &self.tree_scope,
                key_path(key),
                &tree_stamp(s),
                &Digest::from_bytes(digest.0),
            );
        }
    }
}

/// A selection key as the memo table's `path` (raw bytes, so any key fits).
fn key_path(key: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(key))
}

/// A [`ch::TreeStamp`] in the memo table's stamp columns: the 256-bit stamp digest in the four
/// 64-bit columns, and the newest ctime where a file's own goes, so the store's racily-clean
/// rule applies to the whole selection.
fn tree_stamp(s: &ch::TreeStamp) -> FileStamp {
    let b = s.digest.as_bytes();
    let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    FileStamp {
        dev: word(0),
        ino: word(1),
        size: word(2),
        mtime_ns: word(3) as i64,
        ctime_ns: s.newest_ctime_ns,
    }
}

/// `sha256(for each selector: path ‖ 0x00 ‖ text(digest) ‖ 0x00)`.
pub(crate) fn checksum(
    tree: &Tree,
    selectors: &[ContentSelector],
    memo: &StoreMemo,
) -> Result<Digest, OpError> {
    let view = tree.open()?;
    let mut scoped = Scoped::new(memo, tree);
    let mut h = Hasher::new();
    for sel in selectors {
        let s = ch::Selector {
            path: sel.path.clone(),
            follow_links: sel.follow_links,
            wildcard: sel.wildcard,
            include_patterns: sel.include.clone(),
            exclude_patterns: sel.exclude.clone(),
            owner: tree.hashes_owner(),
        };
        let d = ch::checksum(view.as_ref(), &s, &mut scoped)?;
        h.update(sel.path.as_bytes());
        h.update(b"\0");
        h.update(d.to_string().as_bytes());
        h.update(b"\0");
    }
    scoped.flush();
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use dray_fsutil::dockerignore::Patterns;

    use super::*;

    fn ctx(dir: &Path, ignore: &str) -> Tree {
        Tree::Dir {
            root: dir.to_owned(),
            patterns: Arc::new(Patterns::parse(ignore).unwrap()),
        }
    }

    fn sel(path: &str) -> Vec<ContentSelector> {
        vec![ContentSelector {
            path: path.into(),
            follow_links: true,
            wildcard: true,
            include: vec![],
            exclude: vec![],
        }]
    }

    #[test]
    fn mode_counts_mtime_does_not() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "hello").unwrap();
        let tree = ctx(t.path(), "");
        let memo = StoreMemo::new(None);
        let d0 = checksum(&tree, &sel("/a"), &memo).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(t.path().join("a"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(checksum(&tree, &sel("/a"), &memo).unwrap(), d0);
        fs::set_permissions(t.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(checksum(&tree, &sel("/a"), &memo).unwrap(), d0);
    }

    #[test]
    fn ignored_paths_do_not_count_and_paths_are_part_of_the_hash() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "a").unwrap();
        fs::write(t.path().join("b"), "a").unwrap();
        fs::write(t.path().join("c.log"), "c").unwrap();
        let tree = ctx(t.path(), "*.log\n");
        let memo = StoreMemo::new(None);
        let d0 = checksum(&tree, &sel("/"), &memo).unwrap();
        fs::write(t.path().join("c.log"), "changed").unwrap();
        assert_eq!(checksum(&tree, &sel("/"), &memo).unwrap(), d0);
        // Equal content under another name is another selector.
        assert_ne!(
            checksum(&tree, &sel("/b"), &memo).unwrap(),
            checksum(&tree, &sel("/a"), &memo).unwrap()
        );
        fs::write(t.path().join("a"), "changed").unwrap();
        assert_ne!(checksum(&tree, &sel("/"), &memo).unwrap(), d0);
    }
}
