//! The layer applier: formats detected by content, the diff_id, metadata, the two modes
//! (overlay diff vs merged root, checked against a real overlayfs mount), a round trip through
//! the layer writer, and unpacking into ChainID snapshots of a store (failures, concurrency).
//! The hostile layers are in `apply_hostile.rs`.

mod apply_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use apply_support::*;
use dray_cache::{Root, SnapshotKind, Store};
use dray_image::apply::{ApplyMode, ApplyOptions, StreamCompression, apply_layer, unpack_layer};
use dray_image::{Digest, Error};

/// `etc/` (0755), `etc/motd` (0640, 1000:1001, mtime with nanoseconds), a symlink, a hard
/// link, an xattr.
fn sample() -> Vec<Entry> {
    vec![
        dir("etc/").mtime(1_600_000_000),
        file("etc/motd", "hello\n")
            .mode(0o640)
            .owner(1000, 1001)
            .pax("mtime", b"1600000001.123456789")
            .pax("SCHILY.xattr.user.origin", b"layer"),
        symlink("etc/localtime", "/usr/share/zoneinfo/UTC").mtime(1_600_000_002),
        hardlink("etc/motd.hard", "etc/motd"),
    ]
}

fn check_sample(target: &Path) {
    let motd = target.join("etc/motd");
    let m = fs::metadata(&motd).unwrap();
    assert_eq!(fs::read_to_string(&motd).unwrap(), "hello\n");
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_001, 123_456_789));
    assert_eq!(m.nlink(), 2);
    assert_eq!(
        fs::metadata(target.join("etc/motd.hard")).unwrap().ino(),
        m.ino()
    );
    assert_eq!(
        xattr::get(&motd, "user.origin").unwrap().as_deref(),
        Some(&b"layer"[..])
    );
    let link = target.join("etc/localtime");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(fs::symlink_metadata(&link).unwrap().mtime(), 1_600_000_002);
    // Written into after its entry, the directory still has the entry's time.
    assert_eq!(
        fs::metadata(target.join("etc")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn formats_are_detected_by_content_and_the_diff_id_is_of_the_tar() {
    require_root();
    let layer = tar_of(&sample());
    for (bytes, compression) in [
        (layer.clone(), StreamCompression::None),
        (gzip(&layer), StreamCompression::Gzip),
        (zstd(&layer), StreamCompression::Zstd),
    ] {
        for mode in [ApplyMode::OverlayDiff, ApplyMode::Merged] {
            let fx = Fx::new();
            let stats = fx.apply_bytes(&bytes, mode).unwrap();
            check_sample(&fx.target);
            assert_eq!(stats.compression, compression);
            assert_eq!(stats.diff_id, Digest::of(&layer));
            assert_eq!(stats.uncompressed_size, layer.len() as u64);
            assert_eq!(stats.compressed_size, bytes.len() as u64);
            assert_eq!((stats.entries, stats.hardlinks), (4, 1));
            stats.verify_diff_id("l", &Digest::of(&layer)).unwrap();
            let err = stats.verify_diff_id("l", &Digest::of(b"x")).unwrap_err();
            assert!(matches!(err, Error::DiffIdMismatch { .. }), "{err}");
        }
    }
}

/// Padding after the end-of-archive blocks (GNU tar pads to 10 KiB records) is part of the
/// stream, so part of the diff_id.
#[test]
fn the_diff_id_covers_padding_after_the_archive() {
    require_root();
    let mut layer = tar_of(&[file("a", "a")]);
    layer.resize(10240, 0);
    let fx = Fx::new();
    let stats = fx.apply_bytes(&gzip(&layer), ApplyMode::Merged).unwrap();
    assert_eq!(stats.diff_id, Digest::of(&layer));
    assert_eq!(stats.uncompressed_size, 10240);
}

/// The tar `sha256sum` sees and the diff_id agree (an independent hash of the same bytes).
#[test]
fn the_diff_id_matches_sha256sum() {
    require_root();
    let fx = Fx::new();
    let layer = tar_of(&sample());
    let path = fx.tmp.path().join("layer.tar");
    fs::write(&path, &layer).unwrap();
    let out = Command::new("sha256sum").arg(&path).output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let stats = apply_layer(
        fs::File::open(&path).unwrap(),
        &fx.target,
        "l",
        &ApplyOptions::new(ApplyMode::OverlayDiff),
    )
    .unwrap();
    assert_eq!(stats.diff_id.hex(), hex.split_whitespace().next().unwrap());
}

/// Old (pre-POSIX) archives mark a directory with a trailing `/` on a regular entry.
#[test]
fn a_regular_entry_with_a_trailing_slash_is_a_directory() {
    require_root();
    let fx = Fx::new();
    fx.apply(
        &[file("legacy/", "").mode(0o750), file("legacy/f", "f")],
        ApplyMode::Merged,
    )
    .unwrap();
    assert!(fx.t("legacy").is_dir());
    assert_eq!(mode_of(&fx.t("legacy")), 0o750);
    assert_eq!(read(&fx.t("legacy/f")).as_deref(), Some("f"));
}

#[test]
fn overlay_diff_keeps_whiteouts_as_overlay_markers() {
    require_root();
    let fx = Fx::new();
    let stats = fx
        .apply(
            &[
                dir("a/"),
                opaque("a"),
                file("a/new", "n"),
                whiteout("gone"),
                whiteout("b/gone-dir"),
                dir(".wh..wh.plnk/"),
                file(".wh..wh.plnk/1234", "aufs"),
                file("c/.wh..wh.aufs", ""),
            ],
            ApplyMode::OverlayDiff,
        )
        .unwrap();
    assert!(is_opaque(&fx.t("a")));
    assert!(is_whiteout(&fx.t("gone")));
    assert!(is_whiteout(&fx.t("b/gone-dir")));
    // The parent a whiteout needs is made like any missing parent.
    assert_eq!(mode_of(&fx.t("b")), 0o755);
    // AUFS metadata is skipped whole: nothing of it, not even a parent, is written.
    assert_eq!(
        listing(&fx.target),
        ["a", "a/new", "b", "b/gone-dir", "gone"]
    );
    assert_eq!(
        (stats.whiteouts, stats.opaque_dirs, stats.skipped_entries),
        (2, 1, 3)
    );
}

#[test]
fn userxattr_puts_opaque_markers_in_the_user_namespace() {
    require_root();
    let fx = Fx::new();
    apply_layer(
        &tar_of(&[dir("a/"), opaque("a")])[..],
        &fx.target,
        "l",
        &ApplyOptions::new(ApplyMode::OverlayDiff).with_userxattr(true),
    )
    .unwrap();
    assert!(!is_opaque(&fx.t("a")));
    assert_eq!(
        xattr::get(fx.t("a"), "user.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
}

/// A layer that deletes `d` and creates a new `d` in the same diff: the new directory must not
/// merge with the lower one, so it is opaque.
#[test]
fn a_directory_over_a_whiteout_of_the_same_diff_is_opaque() {
    require_root();
    let fx = Fx::new();
    fx.apply(
        &[whiteout("d"), file("d/x", "x"), whiteout("e"), dir("e/")],
        ApplyMode::OverlayDiff,
    )
    .unwrap();
    assert!(is_opaque(&fx.t("d")));
    assert!(is_opaque(&fx.t("e")));
    assert_eq!(listing(&fx.target), ["d", "d/x", "e"]);
}

#[test]
fn merged_mode_deletes_and_prunes_opaque_directories() {
    require_root();
    let fx = Fx::new();
    fx.apply(
        &[
            dir("keep/"),
            file("keep/a", "a"),
            dir("o/"),
            file("o/old", "old"),
            dir("o/sub/"),
            file("o/sub/old", "old"),
            file("gone", "g"),
            dir("gone-dir/"),
            file("gone-dir/f", "f"),
        ],
        ApplyMode::Merged,
    )
    .unwrap();
    let stats = fx
        .apply(
            &[
                dir("o/"),
                opaque("o"),
                dir("o/sub/"),
                file("o/sub/new", "new"),
                whiteout("gone"),
                whiteout("gone-dir"),
                whiteout("never-was"),
            ],
            ApplyMode::Merged,
        )
        .unwrap();
    assert_eq!(
        listing(&fx.target),
        ["keep", "keep/a", "o", "o/sub", "o/sub/new"]
    );
    assert_eq!((stats.whiteouts, stats.opaque_dirs), (3, 1));
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A description of every entry below `root` that two ways of building the same filesystem
/// must agree on (directory times aside: overlayfs shows the top layer's).
fn fs_view(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (path, _) in tree(root, None) {
        let m = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let what = if m.is_dir() {
            "dir".to_owned()
        } else if m.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&path).unwrap().display())
        } else {
            format!("{} @{}", fs::read_to_string(&path).unwrap(), m.mtime())
        };
        out.push(format!(
            "{rel} {:o} {}:{} {what}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ));
    }
    out
}

/// Three layers applied as overlay diffs and stacked with a real overlayfs mount give the same
/// filesystem as the same layers applied onto one merged directory.
#[test]
fn overlay_diffs_stacked_by_overlayfs_equal_the_merged_application() {
    require_root();
    let layers = [
        tar_of(&[
            dir("etc/"),
            file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            dir("usr/"),
            dir("usr/lib/"),
            file("usr/lib/old", "old"),
            dir("usr/lib/sub/"),
            file("usr/lib/sub/deep", "deep"),
            dir("var/"),
            file("var/log", "log"),
            symlink("lib", "usr/lib"),
        ]),
        tar_of(&[
            dir("etc/"),
            file("etc/hosts", "127.0.0.1 localhost\n"),
            dir("usr/"),
            dir("usr/lib/").mode(0o750),
            opaque("usr/lib"),
            file("usr/lib/new", "new"),
            dir("var/"),
            whiteout("var/log"),
            file("gone-later", "g"),
        ]),
        tar_of(&[
            whiteout("gone-later"),
            dir("etc/"),
            file("etc/passwd", "root:x:0:0::/root:/bin/bash\n").mode(0o600),
            whiteout("var"),
            dir("var/"),
            file("var/fresh", "f"),
        ]),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let mut diffs = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let diff = tmp.path().join(format!("diff{i}"));
        fs::create_dir(&diff).unwrap();
        apply_layer(
            &layer[..],
            &diff,
            "l",
            &ApplyOptions::new(ApplyMode::OverlayDiff),
        )
        .unwrap();
        apply_layer(
            &layer[..],
            &merged,
            "l",
            &ApplyOptions::new(ApplyMode::Merged),
        )
        .unwrap();
        diffs.push(diff);
    }
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let lower: Vec<String> = diffs
        .iter()
        .rev()
        .map(|d| d.display().to_string())
        .collect();
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={}", lower.join(":")))
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "mounting the overlay failed");
    let _mount = Mount(mnt.clone());
    let via_overlay = fs_view(&mnt);
    assert_eq!(via_overlay, fs_view(&merged));
    let names: Vec<&str> = via_overlay
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/hosts",
            "etc/passwd",
            "lib",
            "usr",
            "usr/lib",
            "usr/lib/new",
            "var",
            "var/fresh"
        ]
    );
}

/// A snapshot dir in overlay form → the layer writer → the applier gives the same dir back.
#[test]
fn round_trip_through_the_layer_writer() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    let fx = Fx::new();
    fx.apply(
        &[
            dir("app/").mode(0o750).owner(1000, 1000),
            file("app/run", "#!/bin/sh\n").mode(0o4755),
            hardlink("app/run2", "app/run"),
            symlink("app/link", "run"),
            dir("dev/"),
            node('c', "dev/null", 1, 3),
            dir("o/"),
            opaque("o"),
            file("o/x", "x").pax("SCHILY.xattr.user.k", b"v"),
            whiteout("gone"),
        ],
        ApplyMode::OverlayDiff,
    )
    .unwrap();
    fs::rename(&fx.target, &upper).unwrap();
    fs::create_dir(&fx.target).unwrap();
    let mut blob = Vec::new();
    let opts = dray_image::LayerOptions::new(dray_image::DiffSource::OverlayUpper)
        .with_compression(dray_image::Compression::Zstd { level: 3 });
    let info = dray_image::write_layer(&upper, &opts, &mut blob).unwrap();
    let stats = fx.apply_bytes(&blob, ApplyMode::OverlayDiff).unwrap();
    assert_eq!(stats.diff_id, info.diff_id);
    // A whiteout's own times are not part of a layer: compare everything else.
    let strip = |root: &Path| -> Vec<(PathBuf, String)> {
        tree(root, None)
            .into_iter()
            .map(|(p, d)| {
                let d = if is_whiteout(&p) {
                    "whiteout".into()
                } else {
                    d
                };
                (p.strip_prefix(root).unwrap().to_owned(), d)
            })
            .collect()
    };
    assert_eq!(strip(&fx.target), strip(&upper));
    assert!(is_whiteout(&fx.t("gone")));
}

// --- unpacking into the store --------------------------------------------------------------

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Root::at(dir.path().join("root"))).unwrap();
    (dir, store)
}

fn put_layer(store: &Store, entries: &[Entry]) -> (Digest, Digest) {
    let layer = tar_of(entries);
    let blob = store.blobs().put_bytes(&gzip(&layer)).unwrap();
    (blob.digest, Digest::of(&layer))
}

fn snapshot_dirs(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store.root().path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unpack_layer_commits_a_chain_id_snapshot() {
    require_root();
    let (_tmp, store) = store();
    let (blob1, diff1) = put_layer(&store, &[file("a", "1")]);
    let (blob2, diff2) = put_layer(&store, &[whiteout("a"), file("b", "2")]);
    let chain = dray_image::config::chain_ids(&[diff1, diff2]);
    let s1 = unpack_layer(&store, None, &chain[0], &blob1, &diff1, "layer 1").unwrap();
    let s2 = unpack_layer(&store, Some(&s1), &chain[1], &blob2, &diff2, "layer 2").unwrap();
    assert_eq!(s1.id.as_str(), chain[0].to_string());
    assert_eq!(s2.chain, [s1.id.clone(), s2.id.clone()]);
    let info = store.snapshot_info(&s2.id).unwrap().unwrap();
    assert_eq!(info.kind, SnapshotKind::Unpacked);
    assert_eq!(info.description, "layer 2");
    assert!(is_whiteout(&store.fs_path(&s2.id).join("a")));
    // Already there: returned as is, nothing applied.
    let again = unpack_layer(&store, Some(&s1), &chain[1], &blob2, &diff2, "x").unwrap();
    assert_eq!(again, s2);
}

#[test]
fn a_diff_id_mismatch_commits_nothing() {
    require_root();
    let (_tmp, store) = store();
    let (blob, _) = put_layer(&store, &[file("a", "1")]);
    let claimed = Digest::of(b"another layer");
    let err = unpack_layer(&store, None, &claimed, &blob, &claimed, "bad").unwrap_err();
    assert!(matches!(err, Error::DiffIdMismatch { .. }), "{err}");
    assert!(store.list_snapshots().unwrap().is_empty());
    assert!(
        snapshot_dirs(&store).is_empty(),
        "{:?}",
        snapshot_dirs(&store)
    );
}

#[test]
fn a_hostile_layer_commits_nothing() {
    require_root();
    let (_tmp, store) = store();
    let (blob, diff) = put_layer(&store, &[file("a", "1"), hardlink("h", "/etc/shadow")]);
    let err = unpack_layer(&store, None, &diff, &blob, &diff, "hostile").unwrap_err();
    assert!(chain(&err).contains("hard link"), "{}", chain(&err));
    assert!(store.list_snapshots().unwrap().is_empty());
    assert!(snapshot_dirs(&store).is_empty());
}

/// What a killed unpack leaves (a snapshot directory without a row) does not block the next
/// one: the claimant removes it.
#[test]
fn the_remains_of_a_killed_unpack_are_replaced() {
    require_root();
    let (_tmp, store) = store();
    let (blob, diff) = put_layer(&store, &[file("a", "1")]);
    let stale = store.root().path().join("snapshots").join(diff.to_string());
    fs::create_dir_all(stale.join("fs/half-written")).unwrap();
    let s = unpack_layer(&store, None, &diff, &blob, &diff, "layer").unwrap();
    assert_eq!(listing(&store.fs_path(&s.id)), ["a"]);
}

/// Builds unpacking the same layer at once (threads with their own store handles, as separate
/// processes would have) all get the one snapshot.
#[test]
fn concurrent_unpacks_of_one_layer_all_succeed() {
    require_root();
    let (tmp, store) = store();
    let big: Vec<Entry> = (0..300)
        .map(|i| file(&format!("d{}/f{i}", i % 7), &"x".repeat(i)))
        .collect();
    let (blob, diff) = put_layer(&store, &big);
    let root = Root::at(tmp.path().join("root"));
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let root = root.clone();
                s.spawn(move || {
                    let store = Store::open(&root).unwrap();
                    unpack_layer(&store, None, &diff, &blob, &diff, "layer").unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.list_snapshots().unwrap().len(), 1);
    assert_eq!(listing(&store.fs_path(&results[0].id)).len(), 300 + 7);
    assert_eq!(snapshot_dirs(&store), [diff.to_string()]);
}
