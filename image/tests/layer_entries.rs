//! What a layer contains: entry types, modes, owners, order, hard links, long names, xattrs.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::os::unix::net::UnixListener;

use common::{entries, find, paths, require_root, touch_all};
use dray_image::DiffSource;
use tar::EntryType;

fn chmod(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn every_file_type_with_mode_owner_and_target() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir(r.join("bin")).unwrap();
    fs::write(r.join("bin/su"), b"#!/bin/sh\n").unwrap();
    chmod(&r.join("bin/su"), 0o4755);
    fs::create_dir(r.join("shared")).unwrap();
    chmod(&r.join("shared"), 0o2775);
    fs::create_dir(r.join("tmp")).unwrap();
    chmod(&r.join("tmp"), 0o1777);
    fs::write(r.join("owned"), b"x".repeat(513)).unwrap();
    chmod(&r.join("owned"), 0o640);
    lchown(r.join("owned"), Some(1234), Some(5678)).unwrap();
    symlink("/etc/passwd", r.join("abs")).unwrap();
    symlink("../../x", r.join("rel")).unwrap();
    lchown(r.join("rel"), Some(7), Some(8)).unwrap();
    common::mkfifo(&r.join("fifo"));
    common::mknod(&r.join("null"), "c", 1, 3);
    common::mknod(&r.join("loop9"), "b", 7, 9);
    let _socket = UnixListener::bind(r.join("sock")).unwrap();
    touch_all(r, "@1000");

    let items = entries(r, DiffSource::Plain);
    assert_eq!(
        paths(&items),
        [
            "abs", "bin/", "bin/su", "fifo", "loop9", "null", "owned", "rel", "shared/", "tmp/"
        ],
        "sorted, root omitted, socket skipped"
    );

    let su = find(&items, "bin/su");
    assert_eq!(
        (su.kind, su.mode, su.data.as_slice()),
        (EntryType::Regular, 0o4755, &b"#!/bin/sh\n"[..])
    );
    assert_eq!(find(&items, "shared/").mode, 0o2775);
    assert_eq!(find(&items, "tmp/").mode, 0o1777);
    assert_eq!(find(&items, "tmp/").kind, EntryType::Directory);

    let owned = find(&items, "owned");
    assert_eq!(
        (owned.uid, owned.gid, owned.mode, owned.size),
        (1234, 5678, 0o640, 513)
    );
    assert_eq!(owned.data, b"x".repeat(513));

    let abs = find(&items, "abs");
    assert_eq!(
        (abs.kind, abs.link.as_deref(), abs.size),
        (EntryType::Symlink, Some("/etc/passwd"), 0)
    );
    let rel = find(&items, "rel");
    assert_eq!(
        (rel.kind, rel.link.as_deref()),
        (EntryType::Symlink, Some("../../x"))
    );
    assert_eq!(
        (rel.uid, rel.gid),
        (7, 8),
        "symlink owner is the link's, not the target's"
    );

    assert_eq!(find(&items, "fifo").kind, EntryType::Fifo);
    assert_eq!(find(&items, "fifo").device, None);
    let null = find(&items, "null");
    assert_eq!((null.kind, null.device), (EntryType::Char, Some((1, 3))));
    let lp = find(&items, "loop9");
    assert_eq!((lp.kind, lp.device), (EntryType::Block, Some((7, 9))));

    for item in &items {
        assert_eq!(item.mtime, 1000, "{}", item.path);
        assert!(
            item.uname.is_empty() && item.gname.is_empty(),
            "{} has owner names",
            item.path
        );
        assert!(
            item.pax.is_empty(),
            "{} has PAX records {:?}",
            item.path,
            item.pax
        );
    }
}

#[test]
fn siblings_sort_bytewise_and_parents_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in ["a", "a/b", "B", "a-c"] {
        fs::create_dir(r.join(d)).unwrap();
    }
    for f in ["z", "a/b/f", "a/0", "B/x", ".hidden", "_u", "a.txt"] {
        fs::write(r.join(f), b"").unwrap();
    }
    let items = entries(r, DiffSource::Plain);
    assert_eq!(
        paths(&items),
        [
            ".hidden", "B/", "B/x", "_u", "a/", "a/0", "a/b/", "a/b/f", "a-c/", "a.txt", "z"
        ]
    );
}

#[test]
fn hard_links_point_at_the_first_path_in_layer_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir(r.join("sub")).unwrap();
    fs::write(r.join("sub/orig"), b"shared data").unwrap();
    // Created after `sub/orig` but sorts before it: it must become the data-carrying entry.
    fs::hard_link(r.join("sub/orig"), r.join("a-first")).unwrap();
    fs::hard_link(r.join("sub/orig"), r.join("zz")).unwrap();
    fs::write(r.join("single"), b"alone").unwrap();
    symlink("target", r.join("sl")).unwrap();
    fs::hard_link(r.join("sl"), r.join("sl2")).unwrap();

    let items = entries(r, DiffSource::Plain);
    assert_eq!(
        paths(&items),
        ["a-first", "single", "sl", "sl2", "sub/", "sub/orig", "zz"]
    );
    let first = find(&items, "a-first");
    assert_eq!(
        (first.kind, first.data.as_slice()),
        (EntryType::Regular, &b"shared data"[..])
    );
    for later in ["sub/orig", "zz"] {
        let l = find(&items, later);
        assert_eq!(
            (l.kind, l.link.as_deref(), l.size),
            (EntryType::Link, Some("a-first"), 0)
        );
    }
    assert_eq!(find(&items, "single").kind, EntryType::Regular);
    assert_eq!(find(&items, "sl").kind, EntryType::Symlink);
    let sl2 = find(&items, "sl2");
    assert_eq!(
        (sl2.kind, sl2.link.as_deref()),
        (EntryType::Link, Some("sl"))
    );
}

#[test]
fn long_names_and_link_targets_use_pax() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let deep = format!("{}/{}", "d".repeat(90), "e".repeat(90));
    fs::create_dir_all(r.join(&deep)).unwrap();
    let long_file = format!("{deep}/{}", "f".repeat(120));
    fs::write(r.join(&long_file), b"deep").unwrap();
    let long_target = format!("../{}", "t".repeat(150));
    symlink(&long_target, r.join("ln")).unwrap();
    // A name of exactly 100 bytes still fits the ustar field.
    let hundred = "h".repeat(100);
    fs::write(r.join(&hundred), b"").unwrap();

    let items = entries(r, DiffSource::Plain);
    let d = "d".repeat(90);
    assert_eq!(
        paths(&items),
        [
            format!("{d}/"),
            format!("{deep}/"),
            long_file.clone(),
            hundred.clone(),
            "ln".into()
        ]
    );
    let f = find(&items, &long_file);
    assert_eq!(f.data, b"deep");
    assert_eq!(f.pax, [("path".to_owned(), long_file.clone().into_bytes())]);
    let ln = find(&items, "ln");
    assert_eq!(ln.link.as_deref(), Some(long_target.as_str()));
    assert_eq!(
        ln.pax,
        [("linkpath".to_owned(), long_target.clone().into_bytes())]
    );
    assert!(find(&items, &hundred).pax.is_empty());

    // GNU tar, an independent reader, agrees.
    let (_, blob) = common::layer(
        r,
        &common::opts(DiffSource::Plain, dray_image::Compression::Uncompressed),
    );
    let tarball = dir.path().with_extension("tar");
    fs::write(&tarball, &blob).unwrap();
    if let Ok(out) = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
    {
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success());
        assert!(listing.lines().any(|l| l == long_file), "{listing}");
    }
    fs::remove_file(tarball).unwrap();
}

#[test]
fn xattr_rule_keeps_capability_user_and_trusted_only() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let f = r.join("ping");
    fs::write(&f, b"").unwrap();
    // A VFS_CAP_REVISION_2 blob: cap_net_raw (bit 13) permitted and effective.
    let cap: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    xattr::set(&f, "security.capability", &cap).unwrap();
    xattr::set(&f, "user.comment", b"hi\n=\0bin").unwrap();
    xattr::set(&f, "trusted.app", b"t").unwrap();
    xattr::set(&f, "trusted.overlay.origin", b"x").unwrap();
    xattr::set(&f, "user.overlay.impure", b"y").unwrap();
    fs::create_dir(r.join("dir")).unwrap();
    xattr::set(r.join("dir"), "user.dir", b"1").unwrap();

    for source in [DiffSource::Plain, DiffSource::OverlayUpper] {
        let items = entries(r, source);
        assert_eq!(
            find(&items, "ping").xattrs(),
            [
                ("security.capability", &cap[..]),
                ("trusted.app", &b"t"[..]),
                ("user.comment", &b"hi\n=\0bin"[..]),
            ],
            "{source:?}"
        );
        assert_eq!(find(&items, "dir/").xattrs(), [("user.dir", &b"1"[..])]);
    }

    // GNU tar, an independent reader, restores the binary values byte for byte.
    let (_, blob) = common::layer(
        r,
        &common::opts(DiffSource::Plain, dray_image::Compression::Uncompressed),
    );
    let work = tempfile::tempdir().unwrap();
    let tarball = work.path().join("layer.tar");
    fs::write(&tarball, &blob).unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let Ok(status) = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-xf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&out)
        .status()
    else {
        return; // no GNU tar on this host
    };
    assert!(status.success());
    let got = |name: &str| xattr::get(out.join("ping"), name).unwrap();
    assert_eq!(got("user.comment").as_deref(), Some(&b"hi\n=\0bin"[..]));
    assert_eq!(got("security.capability").as_deref(), Some(&cap[..]));
    assert_eq!(got("trusted.overlay.origin"), None);
}
