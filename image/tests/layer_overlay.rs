//! overlayfs upper dir → OCI whiteouts and opaque directories, and the unsupported features.

mod common;

use std::fs;
use std::path::Path;

use common::{entries, find, paths, require_root};
use dray_image::{Compression, DiffSource, Error, write_layer};
use tar::EntryType;

/// An upper dir as overlayfs leaves it after `rm /gone /d/gone2; rm -r /o; mkdir /o; touch /o/new`.
fn upper(r: &Path) {
    common::mknod(&r.join("gone"), "c", 0, 0);
    fs::create_dir(r.join("d")).unwrap();
    common::mknod(&r.join("d/gone2"), "c", 0, 0);
    fs::write(r.join("d/kept"), b"k").unwrap();
    fs::create_dir(r.join("o")).unwrap();
    xattr::set(r.join("o"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(r.join("o/new"), b"n").unwrap();
    // Under the `userxattr` mount option (rootless) overlay uses the user namespace.
    fs::create_dir(r.join("u")).unwrap();
    xattr::set(r.join("u"), "user.overlay.opaque", b"y").unwrap();
    // A whiteout hidden inside an opaque dir is harmless and still translated.
    common::mknod(&r.join("u/old"), "c", 0, 0);
    common::touch_all(r, "@1700000000");
}

#[test]
fn whiteouts_and_opaque_dirs_become_oci_markers() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    upper(dir.path());
    let items = entries(dir.path(), DiffSource::OverlayUpper);
    assert_eq!(
        paths(&items),
        [
            "d/",
            "d/.wh.gone2",
            "d/kept",
            ".wh.gone",
            "o/",
            "o/.wh..wh..opq",
            "o/new",
            "u/",
            "u/.wh..wh..opq",
            "u/.wh.old",
        ],
        "whiteouts sort under the name they hide; opaque markers follow their directory"
    );
    for marker in [
        "d/.wh.gone2",
        ".wh.gone",
        "o/.wh..wh..opq",
        "u/.wh..wh..opq",
        "u/.wh.old",
    ] {
        let m = find(&items, marker);
        assert_eq!(
            (m.kind, m.size, m.mode, m.uid, m.gid, m.mtime),
            (EntryType::Regular, 0, 0, 0, 0, 1_700_000_000),
            "{marker}"
        );
        assert!(m.pax.is_empty());
    }
    // The opaque xattr itself is never carried.
    assert!(find(&items, "o/").xattrs().is_empty());
    assert!(find(&items, "u/").xattrs().is_empty());
}

#[test]
fn plain_source_translates_nothing() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    upper(dir.path());
    let items = entries(dir.path(), DiffSource::Plain);
    assert_eq!(
        paths(&items),
        [
            "d/", "d/gone2", "d/kept", "gone", "o/", "o/new", "u/", "u/old"
        ]
    );
    let gone = find(&items, "gone");
    assert_eq!((gone.kind, gone.device), (EntryType::Char, Some((0, 0))));
    assert!(
        find(&items, "o/").xattrs().is_empty(),
        "overlay xattrs are dropped in plain mode too"
    );
}

#[test]
fn shared_whiteout_inodes_are_not_hard_links() {
    require_root!();
    // Since Linux 5.8 overlayfs may hard-link whiteouts to one shared inode.
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::mknod(&r.join("a"), "c", 0, 0);
    fs::hard_link(r.join("a"), r.join("b")).unwrap();
    let items = entries(r, DiffSource::OverlayUpper);
    assert_eq!(paths(&items), [".wh.a", ".wh.b"]);
    assert!(
        items
            .iter()
            .all(|i| i.kind == EntryType::Regular && i.link.is_none())
    );
}

#[test]
fn redirect_metacopy_and_unknown_opaque_values_are_errors() {
    require_root!();
    for (attr, value) in [
        ("trusted.overlay.redirect", &b"/elsewhere"[..]),
        ("trusted.overlay.metacopy", b""),
        ("user.overlay.redirect", b"x"),
        ("trusted.overlay.whiteout", b""),
        ("trusted.overlay.opaque", b"x"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/victim");
        fs::create_dir_all(&target).unwrap();
        xattr::set(&target, attr, value).unwrap();

        let opts = common::opts(DiffSource::OverlayUpper, Compression::Uncompressed);
        let err = write_layer(dir.path(), &opts, Vec::new()).unwrap_err();
        match &err {
            Error::UnsupportedOverlay { path, attr: got } => {
                assert_eq!(path, &target, "{attr}");
                assert!(
                    got.to_str().unwrap().starts_with(attr),
                    "{got:?} for {attr}"
                );
            }
            other => panic!("{attr}: unexpected {other:?}"),
        }
        assert!(
            err.to_string().contains("redirect_dir=off,metacopy=off"),
            "{err}"
        );

        // A plain directory is not an upper dir: the same xattr is just dropped.
        let opts = common::opts(DiffSource::Plain, Compression::Uncompressed);
        write_layer(dir.path(), &opts, Vec::new()).unwrap();
    }
}

#[test]
fn overlay_bookkeeping_xattrs_are_ignored() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    fs::write(&f, b"").unwrap();
    xattr::set(&f, "trusted.overlay.origin", b"\x00\xfb").unwrap();
    xattr::set(&f, "trusted.overlay.impure", b"y").unwrap();
    let items = entries(dir.path(), DiffSource::OverlayUpper);
    assert_eq!(paths(&items), ["f"]);
    assert!(items[0].pax.is_empty());
}
