//! Trees: overlay merging of snapshot chains, in-root symlink resolution, ignore filtering.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use dray_fsutil::Error;
use dray_fsutil::dockerignore::Patterns;
use dray_fsutil::tree::{ChainTree, DirTree, FileKind, Tree};

fn names(tree: &dyn Tree, path: &str) -> Vec<OsString> {
    tree.read_dir(Path::new(path))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn read(tree: &dyn Tree, path: &str) -> String {
    let mut s = String::new();
    tree.open(Path::new(path))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn chain_merges_whiteouts_and_opaque_dirs() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (l1, l2, l3) = (
        tmp.path().join("l1"),
        tmp.path().join("l2"),
        tmp.path().join("l3"),
    );
    // bottom layer
    file(&l3, "a/x", "x3", 0o644);
    file(&l3, "a/y", "y3", 0o644);
    file(&l3, "b/f", "f3", 0o644);
    file(&l3, "c/deep/z", "z3", 0o644);
    file(&l3, "e", "file-e", 0o644);
    // middle: whiteout a/y, opaque b with a new g, replace x, remove c entirely
    file(&l2, "a/x", "x2", 0o600);
    whiteout(&l2, "a/y");
    file(&l2, "b/g", "g2", 0o644);
    opaque(&l2, "b");
    whiteout(&l2, "c");
    // top: recreate c as a plain dir with one file; e becomes a dir; an opaque g over l3's
    file(&l1, "c/new", "n1", 0o644);
    dir(&l1, "e", 0o755);
    file(&l3, "g/old", "o3", 0o644);
    file(&l3, "g/sub/deep", "d3", 0o644);
    file(&l1, "g/sub/new", "n1", 0o644);
    opaque(&l1, "g");
    let chain = ChainTree::new([&l1, &l2, &l3]).unwrap();

    assert_eq!(names(&chain, ""), ["a", "b", "c", "e", "g"]);
    assert_eq!(names(&chain, "g"), ["sub"]);
    assert_eq!(names(&chain, "g/sub"), ["new"]);
    assert!(chain.lstat(Path::new("g/sub/deep")).unwrap().is_none());
    assert_eq!(names(&chain, "a"), ["x"]);
    assert_eq!(read(&chain, "a/x"), "x2");
    assert_eq!(chain.lstat(Path::new("a/x")).unwrap().unwrap().mode, 0o600);
    assert!(chain.lstat(Path::new("a/y")).unwrap().is_none());
    assert_eq!(names(&chain, "b"), ["g"]);
    assert!(chain.lstat(Path::new("b/f")).unwrap().is_none());
    // c was whited out below the top layer: the old c/deep must not show through.
    assert_eq!(names(&chain, "c"), ["new"]);
    assert!(chain.lstat(Path::new("c/deep/z")).unwrap().is_none());
    // A directory over a file hides the file.
    assert_eq!(
        chain.lstat(Path::new("e")).unwrap().unwrap().kind,
        FileKind::Dir
    );
    assert!(names(&chain, "e").is_empty());
    // Which layer serves what.
    assert_eq!(chain.lookup(Path::new("a/x")).unwrap().unwrap().0, 1);
    assert_eq!(chain.lookup(Path::new("b/g")).unwrap().unwrap().0, 1);
    // The cached chain, a live one, and a live top over a cached rest all agree.
    let live = chain.uncached();
    let top = ChainTree::new([&l2, &l3]).unwrap().with_top(&l1).unwrap();
    for other in [&live, &top] {
        for path in ["", "a", "b", "c", "e", "g", "g/sub"] {
            assert_eq!(names(other, path), names(&chain, path), "{path}");
        }
        for path in [
            "a/x", "a/y", "b/f", "b/g", "c/deep", "c/deep/z", "c/new", "e", "nope/x",
        ] {
            let p = Path::new(path);
            assert_eq!(other.lookup(p).unwrap(), chain.lookup(p).unwrap(), "{path}");
        }
    }
    // Whiteouts never appear as entries, and overlay xattrs are not reported.
    assert!(
        chain
            .xattrs(Path::new("b"))
            .unwrap()
            .iter()
            .all(|(k, _)| !k.to_string_lossy().starts_with("trusted.overlay."))
    );
}

#[test]
fn resolve_clamps_absolute_links_and_dotdot_to_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    file(&ctx, "etc/passwd", "ctx-passwd", 0o644);
    symlink(&ctx, "passwd", "/etc/passwd");
    symlink(&ctx, "sub/up", "../../../x");
    symlink(&ctx, "sub/self", ".");
    symlink(&ctx, "loop", "loop");
    let tree = DirTree::open(&ctx).unwrap();

    let r = |p: &str, follow| tree.resolve(Path::new(p), follow).unwrap();
    assert_eq!(r("passwd", true), PathBuf::from("etc/passwd"));
    assert_eq!(r("/passwd", false), PathBuf::from("passwd"));
    assert_eq!(r("sub/up", true), PathBuf::from("x"));
    assert_eq!(r("/../../etc/./passwd", true), PathBuf::from("etc/passwd"));
    assert_eq!(r("sub/self/self/up", true), PathBuf::from("x"));
    // `..` applies after the link: `passwd/..` is the context's `/etc`.
    assert_eq!(r("passwd/../group", true), PathBuf::from("etc/group"));
    assert!(matches!(
        tree.resolve(Path::new("loop"), true),
        Err(Error::SymlinkLoop { .. })
    ));
    // Through the link, the context's own file is read, not the host's.
    assert_eq!(
        read(&tree, r("passwd", true).to_str().unwrap()),
        "ctx-passwd"
    );
}

#[test]
fn tree_never_reads_through_a_link_to_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = file(tmp.path(), "outside/secret.txt", "host secret", 0o644);
    let ctx = tmp.path().join("ctx");
    dir(&ctx, "", 0o755);
    symlink(&ctx, "rel", "../outside/secret.txt");
    symlink(&ctx, "abs", secret.to_str().unwrap());
    symlink(&ctx, "dirlink", "../outside");
    let tree = DirTree::open(&ctx).unwrap();
    for link in ["rel", "abs"] {
        let resolved = tree.resolve(Path::new(link), true).unwrap();
        assert!(
            tree.lstat(&resolved).unwrap().is_none(),
            "{link} resolved to {resolved:?}"
        );
        // Opening the link itself is refused (O_NOFOLLOW), never the host file.
        assert!(tree.open(Path::new(link)).is_err());
    }
    // An unresolved path through a directory link is still kept inside (RESOLVE_IN_ROOT).
    assert!(
        tree.lstat(Path::new("dirlink/secret.txt"))
            .unwrap()
            .is_none()
    );
    assert!(tree.open(Path::new("dirlink/secret.txt")).is_err());
}

#[test]
fn dir_tree_hides_ignored_paths_and_resets_owners() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path();
    file(ctx, "keep.txt", "k", 0o644);
    file(ctx, "node_modules/x/index.js", "x", 0o644);
    file(ctx, "docs/a.md", "a", 0o644);
    file(ctx, "docs/README.md", "r", 0o644);
    file(ctx, "empty/x.txt", "x", 0o644);
    let patterns =
        Patterns::parse("node_modules\ndocs\n!docs/README.md\nempty\n!empty/README.md\n").unwrap();
    let tree = DirTree::open(ctx)
        .unwrap()
        .with_patterns(patterns)
        .with_owner_reset();
    assert_eq!(names(&tree, ""), ["docs", "keep.txt"]);
    assert_eq!(names(&tree, "docs"), ["README.md"]);
    assert!(tree.lstat(Path::new("node_modules")).unwrap().is_none());
    assert!(tree.lstat(Path::new("docs/a.md")).unwrap().is_none());
    // An exception that matches nothing inside does not bring the directory back.
    assert!(tree.lstat(Path::new("empty")).unwrap().is_none());
    let meta = tree.lstat(Path::new("keep.txt")).unwrap().unwrap();
    assert_eq!((meta.uid, meta.gid), (0, 0));
}

#[test]
fn dir_tree_reports_metadata_and_sorted_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path();
    for name in ["b", "a", "C", "_"] {
        file(ctx, name, name, 0o640);
    }
    symlink(ctx, "link", "a");
    let tree = DirTree::open(ctx).unwrap();
    assert_eq!(names(&tree, ""), ["C", "_", "a", "b", "link"]);
    let meta = tree.lstat(Path::new("a")).unwrap().unwrap();
    assert_eq!(
        (meta.kind, meta.mode, meta.size),
        (FileKind::File, 0o640, 1)
    );
    assert_eq!(
        tree.lstat(Path::new("link")).unwrap().unwrap().kind,
        FileKind::Symlink
    );
    assert_eq!(
        tree.read_link(Path::new("link")).unwrap(),
        PathBuf::from("a")
    );
    assert!(tree.lstat(Path::new("missing/x")).unwrap().is_none());
    assert!(tree.lstat(Path::new("a/x")).unwrap().is_none());
}
