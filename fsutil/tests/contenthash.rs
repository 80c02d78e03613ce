//! Content hashes: what changes them, what does not, memoisation, and pinned digests.

mod common;

use std::cell::Cell;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use common::*;
use dray_fsutil::contenthash::{Digest, FileStamp, HashMapMemo, Memo, NoMemo, Selector, checksum};
use dray_fsutil::tree::{DirEntry, DirTree, Metadata, Tree};

/// The fixture of the golden digests. Every mode is set explicitly (no umask dependence).
fn fixture(root: &Path) {
    dir(root, "", 0o755);
    file(root, "a.txt", "hello\n", 0o644);
    file(root, "b.txt", "world\n", 0o600);
    file(root, "bin/tool", "#!/bin/sh\necho hi\n", 0o755);
    dir(root, "bin", 0o755);
    file(root, "docs/readme.md", "# readme\n", 0o644);
    dir(root, "docs", 0o750);
    symlink(root, "link", "a.txt");
}

fn sel(path: &str) -> Selector {
    Selector {
        path: path.into(),
        ..Default::default()
    }
}

fn hash(root: &Path, selector: &Selector) -> Digest {
    checksum(&DirTree::open(root).unwrap(), selector, &mut NoMemo).unwrap()
}

/// Pinned digests (schema v1). Changing the preimage must change these *and* the table in
/// `contenthash`'s docs. The first is re-derived below from the documented table alone.
#[test]
fn golden_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let cases = [
        (
            sel("/a.txt"),
            "75174300641e7b1e1db9461729bf5fd1c79f9db3b7258a54e68f6fc20151b93d",
        ),
        (
            sel("/"),
            "707a861d198411a747255c0b23a1549ad36ca4d37534d0d123efa673b43bb37e",
        ),
        (
            sel("link"),
            "886b8677893e4d8a35cc96d4a42f05e0feb54b5e83ba1fbdf0115513be847461",
        ),
        (
            Selector {
                wildcard: true,
                ..sel("/*.txt")
            },
            "14a337043d29f21b070f8ebc7ef0f2158bec3b3f2bb18ff9be76b143c72bbdbd",
        ),
        (
            Selector {
                exclude_patterns: vec!["docs".into(), "*.txt".into(), "!b.txt".into()],
                ..sel("/")
            },
            "b421f04426e5fa1f507c344c4c20ed6e1712726646a0a29562d538e1d89e017d",
        ),
    ];
    let got: Vec<String> = cases.iter().map(|(s, _)| hash(root, s).to_hex()).collect();
    let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
}

/// The documented preimage, computed independently of the implementation.
#[test]
fn preimage_table_matches_the_implementation() {
    use sha2::{Digest as _, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let content = hex::encode(Sha256::digest(b"hello\n"));
    let mut file = b"v1\0type=file\0mode=644\0size=6\0content=".to_vec();
    file.extend_from_slice(content.as_bytes());
    file.push(0);
    let file = Sha256::digest(&file);
    assert_eq!(hash(tmp.path(), &sel("a.txt")).0, <[u8; 32]>::from(file));
    let link = Sha256::digest(b"v1\0type=symlink\0mode=777\0link=a.txt\0");
    assert_eq!(hash(tmp.path(), &sel("link")).0, <[u8; 32]>::from(link));
    // bin: a directory with one entry, `tool`.
    let tool_content = hex::encode(Sha256::digest(b"#!/bin/sh\necho hi\n"));
    let mut tool = b"v1\0type=file\0mode=755\0size=18\0content=".to_vec();
    tool.extend_from_slice(tool_content.as_bytes());
    tool.push(0);
    let mut bin = b"v1\0type=dir\0mode=755\0tool\0".to_vec();
    bin.extend_from_slice(&Sha256::digest(&tool));
    assert_eq!(
        hash(tmp.path(), &sel("bin")).0,
        <[u8; 32]>::from(Sha256::digest(&bin))
    );
}

#[test]
fn mtime_is_not_hashed_but_content_and_mode_are() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let whole = sel("/");
    let before = hash(root, &whole);
    set_mtime(&root.join("a.txt"), 1);
    set_mtime(&root.join("bin"), 2);
    assert_eq!(
        hash(root, &whole),
        before,
        "mtime must not change the digest"
    );

    file(root, "a.txt", "hellO\n", 0o644);
    let content_changed = hash(root, &whole);
    assert_ne!(content_changed, before);

    file(root, "a.txt", "hello\n", 0o644);
    assert_eq!(
        hash(root, &whole),
        before,
        "same content and mode again: same digest"
    );
    file(root, "a.txt", "hello\n", 0o664);
    assert_ne!(hash(root, &whole), before, "mode is hashed");
    file(root, "a.txt", "hello\n", 0o644);
    dir(root, "bin", 0o4755);
    assert_ne!(hash(root, &whole), before, "special bits are hashed");
    dir(root, "bin", 0o755);
    assert_eq!(hash(root, &whole), before);

    std::fs::rename(root.join("b.txt"), root.join("c.txt")).unwrap();
    assert_ne!(hash(root, &whole), before, "names are hashed");
}

#[test]
fn owner_is_hashed_only_when_asked() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let without = sel("/");
    let with = Selector {
        owner: true,
        ..sel("/")
    };
    let (a, b) = (hash(root, &without), hash(root, &with));
    rustix::fs::chown(
        root.join("a.txt"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(1234)),
    )
    .unwrap();
    assert_eq!(hash(root, &without), a);
    assert_ne!(hash(root, &with), b);
}

#[test]
fn xattrs_are_hashed_except_ignored_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let before = hash(root, &sel("/a.txt"));
    match xattr::set(root.join("a.txt"), "user.origin", b"ci") {
        Ok(()) => assert_ne!(hash(root, &sel("/a.txt")), before),
        // The temp filesystem has no user xattrs: nothing to check here.
        Err(e) => assert_eq!(e.raw_os_error(), Some(95), "{e}"),
    }
}

#[test]
fn file_capabilities_are_hashed() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let before = hash(root, &sel("bin/tool"));
    let mut cap = (0x0200_0000u32 | 1).to_le_bytes().to_vec();
    cap.extend_from_slice(&(1u32 << 10).to_le_bytes());
    cap.extend_from_slice(&[0; 12]);
    xattr::set(root.join("bin/tool"), "security.capability", &cap).unwrap();
    assert_ne!(
        hash(root, &sel("bin/tool")),
        before,
        "security.capability is hashed"
    );
}

#[test]
fn selector_symlinks_resolve_inside_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = file(tmp.path(), "host/passwd", "host", 0o644);
    let root = tmp.path().join("ctx");
    file(&root, "etc/passwd", "ctx", 0o644);
    symlink(&root, "abs", outside.to_str().unwrap());
    symlink(&root, "p", "/etc/passwd");
    let follow = |p: &str| Selector {
        follow_links: true,
        ..sel(p)
    };
    assert_eq!(hash(&root, &follow("p")), hash(&root, &sel("etc/passwd")));
    assert_ne!(
        hash(&root, &sel("p")),
        hash(&root, &follow("p")),
        "a link hashes as a link"
    );
    // A link to a host path resolves to a missing path in the tree: an error, not the file.
    let err = checksum(&DirTree::open(&root).unwrap(), &follow("abs"), &mut NoMemo).unwrap_err();
    assert!(matches!(err, dray_fsutil::Error::NotFound { .. }), "{err}");
}

#[test]
fn wildcards_hash_matches_with_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let wild = Selector {
        wildcard: true,
        ..sel("*.txt")
    };
    let before = hash(root, &wild);
    file(root, "notes.md", "unrelated", 0o644);
    assert_eq!(hash(root, &wild), before, "non-matching files do not count");
    std::fs::rename(root.join("b.txt"), root.join("z.txt")).unwrap();
    assert_ne!(hash(root, &wild), before);
    let none = Selector {
        wildcard: true,
        ..sel("*.nothing")
    };
    hash(root, &none);
}

#[test]
fn include_and_exclude_select_what_is_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let ex = Selector {
        exclude_patterns: vec!["docs".into()],
        ..sel("/")
    };
    let before = hash(root, &ex);
    file(root, "docs/other.md", "x", 0o644);
    assert_eq!(hash(root, &ex), before, "excluded paths do not count");
    file(root, "bin/tool", "changed", 0o755);
    assert_ne!(hash(root, &ex), before);

    let inc = Selector {
        include_patterns: vec!["bin".into()],
        ..sel("/")
    };
    let before = hash(root, &inc);
    file(root, "a.txt", "changed", 0o644);
    assert_eq!(hash(root, &inc), before, "not included paths do not count");
}

/// A tree that counts `open` calls.
struct Counting<'a> {
    inner: &'a dyn Tree,
    opens: Cell<usize>,
}

impl Tree for Counting<'_> {
    fn lstat(&self, path: &Path) -> dray_fsutil::Result<Option<Metadata>> {
        self.inner.lstat(path)
    }
    fn read_dir(&self, path: &Path) -> dray_fsutil::Result<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }
    fn open(&self, path: &Path) -> dray_fsutil::Result<File> {
        self.opens.set(self.opens.get() + 1);
        self.inner.open(path)
    }
    fn read_link(&self, path: &Path) -> dray_fsutil::Result<PathBuf> {
        self.inner.read_link(path)
    }
    fn xattrs(&self, path: &Path) -> dray_fsutil::Result<Vec<(OsString, Vec<u8>)>> {
        self.inner.xattrs(path)
    }
}

/// A memo that records its calls.
#[derive(Default)]
struct Recording {
    inner: HashMapMemo,
    hits: usize,
    misses: usize,
    puts: Vec<PathBuf>,
}

impl Memo for Recording {
    fn get(&mut self, path: &Path, stamp: &FileStamp) -> Option<Digest> {
        let got = self.inner.get(path, stamp);
        if got.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        got
    }
    fn put(&mut self, path: &Path, stamp: &FileStamp, digest: Digest) {
        self.puts.push(path.to_owned());
        self.inner.put(path, stamp, digest);
    }
}

#[test]
fn memo_hit_reads_no_file_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let dir_tree = DirTree::open(root).unwrap();
    let tree = Counting {
        inner: &dir_tree,
        opens: Cell::new(0),
    };
    let mut memo = Recording::default();
    let first = checksum(&tree, &sel("/"), &mut memo).unwrap();
    assert_eq!(tree.opens.get(), 4, "four regular files");
    let mut puts = memo.puts.clone();
    puts.sort();
    let want: Vec<PathBuf> = ["a.txt", "b.txt", "bin/tool", "docs/readme.md"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(puts, want);

    // No-op rebuild: every file from the memo, nothing opened.
    tree.opens.set(0);
    let second = checksum(&tree, &sel("/"), &mut memo).unwrap();
    assert_eq!(second, first);
    assert_eq!((tree.opens.get(), memo.hits), (0, 4));

    // The memo is trusted for a matching stamp: replace b.txt's bytes, then record the *old*
    // content digest under the new stamp. The digest comes out as before and nothing is
    // opened, which shows the bytes behind a memo hit are never read.
    file(root, "b.txt", "WORLD\n", 0o600);
    let meta = dir_tree.lstat(Path::new("b.txt")).unwrap().unwrap();
    let old_content = {
        use sha2::{Digest as _, Sha256};
        Digest(Sha256::digest(b"world\n").into())
    };
    memo.put(Path::new("b.txt"), &FileStamp::of(&meta), old_content);
    tree.opens.set(0);
    assert_eq!(checksum(&tree, &sel("/"), &mut memo).unwrap(), first);
    assert_eq!(tree.opens.get(), 0);
    // Any change of the stamp misses.
    let mut other = FileStamp::of(&meta);
    other.ctime_ns += 1;
    assert_eq!(memo.inner.get(Path::new("b.txt"), &other), None);

    // Changing a file's content changes its stamp: exactly that file is read again.
    file(root, "b.txt", "world\n", 0o600);
    file(root, "a.txt", "changed\n", 0o644);
    tree.opens.set(0);
    memo.hits = 0;
    let third = checksum(&tree, &sel("/"), &mut memo).unwrap();
    assert_ne!(third, first);
    assert_eq!(
        tree.opens.get(),
        2,
        "only the rewritten a.txt and b.txt are read"
    );
    assert_eq!(memo.hits, 2);
}

/// A memo that keeps whole file digests as well, counting its whole-file hits.
#[derive(Default)]
struct WholeFile {
    content: HashMapMemo,
    files: std::collections::HashMap<(PathBuf, bool), (FileStamp, Digest)>,
    file_hits: usize,
}

impl Memo for WholeFile {
    fn get(&mut self, path: &Path, stamp: &FileStamp) -> Option<Digest> {
        self.content.get(path, stamp)
    }
    fn put(&mut self, path: &Path, stamp: &FileStamp, digest: Digest) {
        self.content.put(path, stamp, digest);
    }
    fn get_file(&mut self, path: &Path, stamp: &FileStamp, owner: bool) -> Option<Digest> {
        match self.files.get(&(path.to_owned(), owner)) {
            Some((s, d)) if s == stamp => {
                self.file_hits += 1;
                Some(*d)
            }
            _ => None,
        }
    }
    fn put_file(&mut self, path: &Path, stamp: &FileStamp, owner: bool, digest: Digest) {
        self.files
            .insert((path.to_owned(), owner), (*stamp, digest));
    }
}

#[test]
fn whole_file_memo_gives_the_same_digests_and_misses_on_metadata_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fixture(root);
    let tree = DirTree::open(root).unwrap();
    let plain = checksum(&tree, &sel("/"), &mut NoMemo).unwrap();
    let mut memo = WholeFile::default();
    assert_eq!(checksum(&tree, &sel("/"), &mut memo).unwrap(), plain);
    assert_eq!(memo.file_hits, 0);
    assert_eq!(checksum(&tree, &sel("/"), &mut memo).unwrap(), plain);
    assert_eq!(
        memo.file_hits, 4,
        "every regular file from the whole-file memo"
    );

    // A mode change bumps ctime, so the stamp misses and the new header is hashed.
    std::fs::set_permissions(
        root.join("a.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let changed = checksum(&tree, &sel("/"), &mut NoMemo).unwrap();
    assert_ne!(changed, plain);
    assert_eq!(checksum(&tree, &sel("/"), &mut memo).unwrap(), changed);
}
