//! Content hashes of paths in a [`Tree`], for `COPY` cache keys (architecture §B3 rule 5).
//!
//! | node | what is hashed |
//! |---|---|
//! | regular file | `file` ‖ perm bits ‖ uid ‖ gid ‖ size ‖ sha256(bytes) |
//! | symlink | `symlink` ‖ perm bits ‖ uid ‖ gid ‖ target |
//! | directory | `dir` ‖ perm bits ‖ uid ‖ gid ‖ for each entry by name: name ‖ digest |
//! | other | `other` ‖ file type bits ‖ perm bits ‖ uid ‖ gid ‖ rdev |
//! | missing | `missing` |
//!
//! Fields are `\0`-separated decimal text. **mtime is never hashed.** In the build context
//! ([`Tree::Dir`]) uid and gid are recorded as 0. File bytes are memoized in the store per
//! `(scope, path)` under the file's `(dev, ino, size, mtime, ctime)` stamp, so an unchanged
//! context is hashed without reading a byte.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use dray_cache::{FileStamp, Store};
use dray_llb::{Digest, Hasher};

use super::{Found, Tree, expand, has_wildcard};
use crate::error::OpError;

/// Where file digests are memoized, and a count of bytes actually read.
#[derive(Debug)]
pub(crate) struct Memo {
    store: Option<Store>,
    bytes_read: AtomicU64,
}

impl Memo {
    /// A memo backed by `store` (`None`: no memo, every file is read).
    pub(crate) fn new(store: Option<Store>) -> Self {
        Self {
            store,
            bytes_read: AtomicU64::new(0),
        }
    }

    /// File bytes read so far (memo misses).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    fn file_digest(&self, found: &Found, rel: &str) -> Result<Digest, OpError> {
        let stamp = FileStamp::of(&found.meta);
        let key = Path::new(rel);
        if let Some(store) = &self.store
            && let Some(d) = store.contenthash_get(&found.scope, key, &stamp)?
        {
            return Ok(Digest::from_bytes(*d.as_bytes()));
        }
        let mut f = File::open(&found.host).map_err(OpError::io("open", &found.host))?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(OpError::io("read", &found.host))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        }
        let d = h.finish();
        if let Some(store) = &self.store {
            store.contenthash_put(
                &found.scope,
                key,
                &stamp,
                &dray_cache::Digest::from_sha256(*d.as_bytes()),
            )?;
        }
        Ok(d)
    }
}

/// The content hash of `selectors` in `tree` (see [`crate::key`] for how they combine).
pub(crate) fn checksum(tree: &Tree, selectors: &[String], memo: &Memo) -> Result<Digest, OpError> {
    let mut h = Hasher::new();
    for sel in selectors {
        let d = if has_wildcard(sel) {
            let mut w = Hasher::new();
            w.update(b"wildcard");
            for path in expand(tree, sel)? {
                w.update(b"\0");
                w.update(path.as_bytes());
                w.update(b"\0");
                w.update(path_digest(tree, &path, memo)?.to_string().as_bytes());
            }
            w.finish()
        } else {
            path_digest(tree, sel, memo)?
        };
        h.update(sel.as_bytes());
        h.update(b"\0");
        h.update(d.to_string().as_bytes());
        h.update(b"\0");
    }
    Ok(h.finish())
}

/// The digest of the node at `path` (not following a symlink there).
pub(crate) fn path_digest(tree: &Tree, path: &str, memo: &Memo) -> Result<Digest, OpError> {
    match tree.lookup(path)? {
        None => Ok(Digest::of("missing")),
        Some(found) => node_digest(tree, path, &found, memo),
    }
}

fn node_digest(tree: &Tree, path: &str, found: &Found, memo: &Memo) -> Result<Digest, OpError> {
    let meta = &found.meta;
    let (uid, gid) = match tree {
        Tree::Dir { .. } => (0, 0),
        _ => (meta.uid(), meta.gid()),
    };
    let perm = meta.permissions().mode() & 0o7777;
    let mut h = Hasher::new();
    let ft = meta.file_type();
    let header = |h: &mut Hasher, kind: &str| {
        h.update(format!("{kind}\0{perm:o}\0{uid}\0{gid}\0").as_bytes());
    };
    if ft.is_file() {
        header(&mut h, "file");
        h.update(format!("{}\0", meta.size()).as_bytes());
        let rel = path.trim_start_matches('/');
        h.update(memo.file_digest(found, rel)?.to_string().as_bytes());
    } else if ft.is_symlink() {
        header(&mut h, "symlink");
        let target =
            std::fs::read_link(&found.host).map_err(OpError::io("read link", &found.host))?;
        h.update(target.to_string_lossy().as_bytes());
    } else if ft.is_dir() {
        header(&mut h, "dir");
        let base = path.trim_end_matches('/');
        for (name, child) in tree.read_dir(path)? {
            let child_path = format!("{base}/{name}");
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(
                node_digest(tree, &child_path, &child, memo)?
                    .to_string()
                    .as_bytes(),
            );
            h.update(b"\0");
        }
    } else {
        header(&mut h, "other");
        h.update(format!("{:o}\0{}", meta.mode() & 0o170000, meta.rdev()).as_bytes());
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use dray_fsutil::dockerignore::Patterns;

    use super::*;

    fn ctx(dir: &Path, ignore: &str) -> Tree {
        Tree::Dir {
            root: dir.to_owned(),
            patterns: Arc::new(Patterns::parse(ignore).unwrap()),
        }
    }

    #[test]
    fn mode_counts_mtime_does_not() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "hello").unwrap();
        let tree = ctx(t.path(), "");
        let memo = Memo::new(None);
        let sel = vec!["/a".to_owned()];
        let d0 = checksum(&tree, &sel, &memo).unwrap();
        let f = File::options()
            .write(true)
            .open(t.path().join("a"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(checksum(&tree, &sel, &memo).unwrap(), d0);
        fs::set_permissions(t.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(checksum(&tree, &sel, &memo).unwrap(), d0);
    }

    #[test]
    fn ignored_paths_do_not_count() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "a").unwrap();
        fs::write(t.path().join("b.log"), "b").unwrap();
        let tree = ctx(t.path(), "*.log\n");
        let memo = Memo::new(None);
        let sel = vec!["/".to_owned()];
        let d0 = checksum(&tree, &sel, &memo).unwrap();
        fs::write(t.path().join("b.log"), "changed").unwrap();
        assert_eq!(checksum(&tree, &sel, &memo).unwrap(), d0);
        fs::write(t.path().join("a"), "changed").unwrap();
        assert_ne!(checksum(&tree, &sel, &memo).unwrap(), d0);
    }
}
