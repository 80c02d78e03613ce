//! Hostile layers: crafted tars that try to create, change or delete something outside the
//! directory they are applied to. Every test applies its layer in both modes (an overlay diff
//! and a merged root) beside a sentinel tree, and [`Fx::apply`] fails the test if anything
//! outside the target changed, whatever the applier returned. Then each test checks what the
//! target holds, or that the layer was refused.
//!
//! The scenarios follow containerd's `pkg/archive` breakout tests (`SymlinkAbsolute`,
//! `SymlinkUpAndOut`, `HardlinkSymlinkChmod`, `WhiteoutRootParent`, ...; named in each test's
//! doc), plus PAX and GNU long-name overrides, overlayfs xattrs smuggled in the tar, device
//! nodes, setuid bits and replacements.

mod apply_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use apply_support::*;
use dray_image::apply::ApplyMode::{self, Merged, OverlayDiff};

const MODES: [ApplyMode; 2] = [OverlayDiff, Merged];

/// Applies `entries` in each mode into a fresh target and hands it to `check`.
fn each_mode(entries: &[Entry], check: impl Fn(&Fx, ApplyMode, Result<(), String>)) {
    require_root();
    for mode in MODES {
        let fx = Fx::new();
        let result = fx.apply(entries, mode).map(|_| ()).map_err(|e| chain(&e));
        check(&fx, mode, result);
    }
}

/// Like [`each_mode`] for a layer built from the fixture (it names the sentinel's absolute
/// path).
fn each_mode_with(
    build: impl Fn(&Fx) -> Vec<Entry>,
    check: impl Fn(&Fx, ApplyMode, Result<(), String>),
) {
    require_root();
    for mode in MODES {
        let fx = Fx::new();
        let entries = build(&fx);
        let result = fx.apply(&entries, mode).map(|_| ()).map_err(|e| chain(&e));
        check(&fx, mode, result);
    }
}

fn pwned(fx: &Fx, rel: &str) {
    assert_eq!(
        read(&fx.t(rel)).as_deref(),
        Some("pwned"),
        "{rel} is not in the target"
    );
}

/// The harness itself: content, mode and new entries outside the target are all noticed.
#[test]
fn the_outside_comparison_notices_changes() {
    let fx = Fx::new();
    let before = fx.outside();
    fs::write(fx.sentinel.join("file"), "changed").unwrap();
    assert_ne!(fx.outside(), before);
    let before = fx.outside();
    fs::set_permissions(
        fx.sentinel.join("dir/inner"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert_ne!(fx.outside(), before);
    let before = fx.outside();
    fs::write(fx.tmp.path().join("new"), "").unwrap();
    assert_ne!(fx.outside(), before);
    let before = fx.outside();
    fs::write(fx.t("inside"), "").unwrap();
    assert_eq!(fx.outside(), before);
}

// --- names ------------------------------------------------------------------------------

/// containerd `BreakoutParent`-style: `../` climbs to the root and stops there.
#[test]
fn dotdot_name_stops_at_the_root() {
    each_mode(&[file("../sentinel/pwned", "pwned")], |fx, _, r| {
        r.unwrap();
        pwned(fx, "sentinel/pwned");
    });
}

#[test]
fn dotdot_inside_a_name_stops_at_the_root() {
    each_mode(
        &[dir("a/"), file("a/../../../sentinel/pwned", "pwned")],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
        },
    );
}

/// A GNU long name (over 100 bytes) full of `..`.
#[test]
fn long_dotdot_name_stops_at_the_root() {
    let name = format!("a/{}sentinel/pwned", "../".repeat(60));
    assert!(name.len() > 100);
    each_mode(&[file(&name, "pwned")], |fx, _, r| {
        r.unwrap();
        pwned(fx, "sentinel/pwned");
    });
}

/// containerd `AbsolutePath`: absolute names are taken below the root.
#[test]
fn absolute_names_are_taken_below_the_root() {
    each_mode_with(
        |fx| {
            vec![
                file("/etc/passwd", "pwned"),
                file(&format!("{}/pwned", fx.abs_sentinel()), "pwned"),
                file("/../../root/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "etc/passwd");
            pwned(fx, &format!("{}/pwned", &fx.abs_sentinel()[1..]));
            pwned(fx, "root/pwned");
        },
    );
}

/// A PAX `path` record overrides the header's innocent name.
#[test]
fn pax_path_override_is_contained() {
    each_mode(
        &[file("innocent", "pwned").pax("path", b"../../sentinel/pwned")],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
            assert!(!fx.t("innocent").exists());
        },
    );
}

/// A PAX `linkpath` record turns a harmless symlink into one to the sentinel; writing
/// through it stays inside.
#[test]
fn pax_linkpath_override_is_contained() {
    each_mode_with(
        |fx| {
            vec![
                symlink("l", "harmless").pax("linkpath", fx.abs_sentinel().as_bytes()),
                file("l/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            assert_eq!(fs::read_link(fx.t("l")).unwrap(), fx.sentinel);
            pwned(fx, &format!("{}/pwned", &fx.abs_sentinel()[1..]));
        },
    );
}

// --- symlinks -----------------------------------------------------------------------------

/// containerd `SymlinkAbsolute`: a symlink to an absolute path outside, then a file through
/// it.
#[test]
fn symlink_absolute_then_file_through_it() {
    each_mode_with(
        |fx| {
            vec![
                symlink("escape", &fx.abs_sentinel()),
                file("escape/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            pwned(fx, &format!("{}/pwned", &fx.abs_sentinel()[1..]));
        },
    );
}

/// containerd `SymlinkUpAndOut`: a relative symlink that climbs out.
#[test]
fn symlink_up_and_out_then_file_through_it() {
    each_mode(
        &[
            symlink("escape", "../../../../sentinel"),
            file("escape/pwned", "pwned"),
        ],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
        },
    );
}

/// containerd `SymlinkMultipleAbsolute`: a chain of absolute links.
#[test]
fn symlink_chain_absolute() {
    each_mode_with(
        |fx| {
            vec![
                symlink("a", "/b"),
                symlink("b", &format!("{}/..", fx.abs_sentinel())),
                file("a/sentinel/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            // `/b` → `<tmp>/sentinel/..` inside the root: `<tmp>`, created there.
            let tmp = &fx.abs_sentinel()[1..fx.abs_sentinel().len() - "/sentinel".len()];
            pwned(fx, &format!("{tmp}/sentinel/pwned"));
        },
    );
}

/// containerd `SymlinkMultipleRelative`: `d/up2 -> up/..` is lexically inside, but
/// `d/up -> ..` makes it climb twice.
#[test]
fn symlink_chain_relative() {
    each_mode(
        &[
            dir("d/"),
            symlink("d/up", ".."),
            symlink("d/up2", "up/.."),
            symlink("d/up3", "up2/../../../sentinel"),
            file("d/up3/pwned", "pwned"),
        ],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
        },
    );
}

/// containerd `SymlinkParentDirectory`: a symlink to `..` used as a directory.
#[test]
fn symlink_to_parent_directory() {
    each_mode(
        &[
            symlink("parent", ".."),
            file("parent/sentinel/pwned", "pwned"),
        ],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
        },
    );
}

/// containerd `SymlinkSlashEnded`: a target ending in `/`.
#[test]
fn symlink_slash_ended() {
    each_mode(
        &[
            symlink("escape", "../sentinel/"),
            file("escape/pwned", "pwned"),
        ],
        |fx, _, r| {
            r.unwrap();
            pwned(fx, "sentinel/pwned");
        },
    );
}

/// containerd `SymlinkOverrideDirectory`: a directory replaced by a symlink out, then written
/// through.
#[test]
fn directory_replaced_by_symlink_then_written_through() {
    each_mode_with(
        |fx| {
            vec![
                dir("d/"),
                file("d/f", "kept?"),
                symlink("d", &fx.abs_sentinel()),
                file("d/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            assert!(fs::symlink_metadata(fx.t("d")).unwrap().is_symlink());
            pwned(fx, &format!("{}/pwned", &fx.abs_sentinel()[1..]));
        },
    );
}

/// A symlink to a file outside, then a regular file of the same name: the file replaces the
/// link (it is not written through it).
#[test]
fn file_replaces_a_symlink_instead_of_writing_through_it() {
    each_mode_with(
        |fx| {
            vec![
                symlink("f", &format!("{}/file", fx.abs_sentinel())),
                file("f", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            assert!(fs::symlink_metadata(fx.t("f")).unwrap().is_file());
            pwned(fx, "f");
        },
    );
}

/// A directory entry where a symlink out was: the directory replaces the link; it does not
/// merge into (and chmod) the link's target.
#[test]
fn directory_replaces_a_symlink_instead_of_merging_into_its_target() {
    each_mode_with(
        |fx| {
            vec![
                symlink("d", &fx.abs_sentinel()),
                dir("d/").mode(0o700),
                file("d/pwned", "pwned"),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            assert!(fs::symlink_metadata(fx.t("d")).unwrap().is_dir());
            assert_eq!(mode_of(&fx.t("d")), 0o700);
            pwned(fx, "d/pwned");
        },
    );
}

/// A symlink entry's mode is never applied through it (`lchmod` does not exist; the target
/// must keep its mode).
#[test]
fn symlink_mode_is_not_applied_to_its_target() {
    each_mode_with(
        |fx| vec![symlink("s", &format!("{}/file", fx.abs_sentinel())).mode(0o4777)],
        |fx, _, r| {
            r.unwrap();
            assert!(fs::symlink_metadata(fx.t("s")).unwrap().is_symlink());
        },
    );
}

#[test]
fn symlink_loop_fails() {
    each_mode(
        &[
            symlink("l1", "l2"),
            symlink("l2", "l1"),
            file("l1/x", "pwned"),
        ],
        |_, _, r| {
            let err = r.unwrap_err();
            assert!(err.contains("too many levels of symbolic links"), "{err}");
        },
    );
}

// --- hard links -----------------------------------------------------------------------------

fn refused(fx: &Fx, r: Result<(), String>, entry: &str) {
    let err = r.unwrap_err();
    assert!(err.contains(entry), "error does not name {entry}: {err}");
    assert!(
        err.contains("test-layer"),
        "error does not name the layer: {err}"
    );
    assert!(!fx.t(entry).exists(), "{entry} was created");
}

/// containerd `HardlinkRelative`: a hard link to `../sentinel/file` names the target's own
/// `sentinel/file`, which is not there.
#[test]
fn hardlink_relative_out_is_refused() {
    each_mode(&[hardlink("hl", "../sentinel/file")], |fx, _, r| {
        refused(fx, r, "hl")
    });
}

/// containerd `HardlinkDownAndOut`.
#[test]
fn hardlink_down_and_out_is_refused() {
    each_mode(
        &[dir("d/"), hardlink("d/hl", "d/../../sentinel/file")],
        |fx, _, r| refused(fx, r, "d/hl"),
    );
}

/// containerd `HardlinkAbsolute`.
#[test]
fn hardlink_absolute_is_refused() {
    each_mode_with(
        |fx| vec![hardlink("hl", &format!("{}/file", fx.abs_sentinel()))],
        |fx, _, r| refused(fx, r, "hl"),
    );
}

#[test]
fn hardlink_to_host_file_is_refused() {
    each_mode(&[hardlink("hl", "/etc/passwd")], |fx, _, r| {
        refused(fx, r, "hl")
    });
}

/// A hard link through a symlink to the outside resolves inside the root, where there is no
/// such file.
#[test]
fn hardlink_through_a_symlink_out_is_refused() {
    each_mode_with(
        |fx| vec![symlink("l", &fx.abs_sentinel()), hardlink("hl", "l/file")],
        |fx, _, r| refused(fx, r, "hl"),
    );
}

/// containerd `HardlinkSymlinkChmod`: a hard link to a symlink pointing out links the symlink
/// itself; a later entry's mode applies to the link's own inode, never to `/etc/passwd`.
#[test]
fn hardlink_to_a_symlink_out_links_the_symlink() {
    each_mode_with(
        |fx| {
            vec![
                symlink("s", &format!("{}/file", fx.abs_sentinel())),
                hardlink("hl", "s"),
                symlink("passwd", "/etc/passwd"),
                hardlink("hl2", "passwd"),
                file("hl2", "pwned").mode(0o777),
            ]
        },
        |fx, _, r| {
            r.unwrap();
            assert_eq!(fs::read_link(fx.t("hl")).unwrap(), fx.sentinel.join("file"));
            assert_eq!(
                fs::symlink_metadata(fx.t("hl")).unwrap().ino(),
                fs::symlink_metadata(fx.t("s")).unwrap().ino()
            );
            assert!(fs::symlink_metadata(fx.t("passwd")).unwrap().is_symlink());
            pwned(fx, "hl2");
            assert_eq!(mode_of(&fx.t("hl2")), 0o777);
        },
    );
}

#[test]
fn hardlink_to_a_directory_is_refused() {
    each_mode(&[dir("d/"), hardlink("hl", "d")], |fx, _, r| {
        refused(fx, r, "hl")
    });
}

// --- whiteouts and opaque directories ------------------------------------------------------

/// containerd `WhiteoutRootParent`: `.wh...` names `..`.
#[test]
fn whiteout_of_dotdot_is_refused() {
    each_mode(&[file(".wh...", "")], |_, _, r| {
        let err = r.unwrap_err();
        assert!(err.contains("invalid whiteout"), "{err}");
    });
}

/// containerd `WhiteoutParent`: `d/.wh...`.
#[test]
fn whiteout_of_parent_is_refused() {
    each_mode(&[dir("d/"), file("d/.wh...", "")], |_, _, r| {
        let err = r.unwrap_err();
        assert!(err.contains("invalid whiteout"), "{err}");
    });
}

/// containerd `WhiteoutRoot`: `.wh..` names `.`, the root itself.
#[test]
fn whiteout_of_the_root_is_refused() {
    each_mode(&[file("keep", "k"), file(".wh..", "")], |fx, _, r| {
        let err = r.unwrap_err();
        assert!(err.contains("invalid whiteout"), "{err}");
        assert!(fx.target.is_dir());
    });
}

/// A whiteout whose name climbs out (`../.wh.sentinel`) hides the root's own `sentinel`.
#[test]
fn whiteout_climbing_out_hides_inside_the_root() {
    each_mode(
        &[
            file("sentinel/file", "inside"),
            file("a/../../sentinel/.wh.dir", ""),
            file("../.wh.sentinel", ""),
        ],
        |fx, mode, r| {
            r.unwrap();
            match mode {
                OverlayDiff => assert!(is_whiteout(&fx.t("sentinel"))),
                Merged => assert!(!fx.t("sentinel").exists()),
            }
            assert!(fx.sentinel.join("dir/inner").exists());
        },
    );
}

/// containerd `WhiteoutRelativePath`: `d/../../sentinel/.wh.file`.
#[test]
fn whiteout_relative_path_is_contained() {
    each_mode(
        &[
            dir("d/"),
            file("sentinel/file", "inside"),
            file("d/../../sentinel/.wh.file", ""),
        ],
        |fx, mode, r| {
            r.unwrap();
            match mode {
                OverlayDiff => assert!(is_whiteout(&fx.t("sentinel/file"))),
                Merged => assert!(!fx.t("sentinel/file").exists()),
            }
        },
    );
}

/// containerd `WhiteoutSymlink`: the whiteout of a symlink removes the symlink, not what it
/// points to.
#[test]
fn whiteout_of_a_symlink_hides_the_symlink() {
    each_mode_with(
        |fx| {
            vec![
                symlink("l", &fx.abs_sentinel()),
                symlink("f", &format!("{}/file", fx.abs_sentinel())),
                whiteout("l"),
                whiteout("f"),
            ]
        },
        |fx, mode, r| {
            r.unwrap();
            match mode {
                OverlayDiff => {
                    assert!(is_whiteout(&fx.t("l")));
                    assert!(is_whiteout(&fx.t("f")));
                }
                Merged => assert_eq!(listing(&fx.target), Vec::<String>::new()),
            }
        },
    );
}

/// containerd `WhiteoutSymlinkPath`: a whiteout *through* a symlink out.
#[test]
fn whiteout_through_a_symlink_out_is_contained() {
    each_mode_with(
        |fx| {
            vec![
                symlink("l", &fx.abs_sentinel()),
                file("l/.wh.file", ""),
                file("l/dir/.wh..wh..opq", ""),
            ]
        },
        |fx, mode, r| {
            r.unwrap();
            let inside = fx.t(&fx.abs_sentinel()[1..]);
            match mode {
                OverlayDiff => {
                    assert!(is_whiteout(&inside.join("file")));
                    assert!(is_opaque(&inside.join("dir")));
                }
                // Nothing there to delete inside the root.
                Merged => assert!(!inside.exists()),
            }
        },
    );
}

/// containerd `WhiteoutDeadSymlinkParent`: a whiteout below a dangling symlink.
#[test]
fn whiteout_below_a_dangling_symlink() {
    each_mode(
        &[symlink("dead", "/nonexistent/dir"), file("dead/.wh.x", "")],
        |fx, mode, r| {
            r.unwrap();
            match mode {
                OverlayDiff => assert!(is_whiteout(&fx.t("nonexistent/dir/x"))),
                Merged => assert!(!fx.t("nonexistent").exists()),
            }
            assert!(fs::symlink_metadata(fx.t("dead")).unwrap().is_symlink());
        },
    );
}

/// An opaque marker at the root: an opaque root directory in overlay form; in a merged root,
/// everything earlier layers left is deleted — inside the root only.
#[test]
fn opaque_whiteout_at_the_root() {
    require_root();
    for mode in MODES {
        let fx = Fx::new();
        fs::create_dir_all(fx.t("old/dir")).unwrap();
        fs::write(fx.t("old/dir/f"), "old").unwrap();
        std::os::unix::fs::symlink(&fx.sentinel, fx.t("old-link")).unwrap();
        fx.apply(
            &[
                dir("new/"),
                file("new/f", "new"),
                opaque(""),
                file("later", "l"),
            ],
            mode,
        )
        .unwrap();
        match mode {
            OverlayDiff => {
                assert!(is_opaque(&fx.target));
                assert!(fx.t("old/dir/f").exists());
            }
            Merged => assert_eq!(listing(&fx.target), ["later", "new", "new/f"]),
        }
    }
}

/// An opaque marker through a symlink to the outside prunes the root's own directory.
#[test]
fn opaque_whiteout_through_a_symlink_out_is_contained() {
    require_root();
    for mode in MODES {
        let fx = Fx::new();
        fs::create_dir_all(fx.t("sentinel")).unwrap();
        fs::write(fx.t("sentinel/old"), "old").unwrap();
        fx.apply(
            &[symlink("l", "../sentinel"), file("l/.wh..wh..opq", "")],
            mode,
        )
        .unwrap();
        match mode {
            OverlayDiff => assert!(is_opaque(&fx.t("sentinel"))),
            Merged => assert!(!fx.t("sentinel/old").exists()),
        }
        assert!(fx.t("sentinel").is_dir());
    }
}

/// Overlayfs's own xattrs in a tar (`trusted.overlay.opaque`, `redirect`, `metacopy`) would
/// change how snapshots stack: they are dropped; other xattrs are kept.
#[test]
fn overlay_xattrs_in_the_tar_are_dropped() {
    each_mode(
        &[
            dir("d/")
                .pax("SCHILY.xattr.trusted.overlay.opaque", b"y")
                .pax("SCHILY.xattr.trusted.overlay.redirect", b"/etc")
                .pax("SCHILY.xattr.user.overlay.opaque", b"y")
                .pax("SCHILY.xattr.user.kept", b"yes"),
            file("m", "x").pax("SCHILY.xattr.trusted.overlay.metacopy", b""),
        ],
        |fx, _, r| {
            r.unwrap();
            let names = |p: &std::path::Path| -> Vec<String> {
                xattr::list(p)
                    .unwrap()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect()
            };
            assert_eq!(names(&fx.t("d")), ["user.kept"]);
            assert!(names(&fx.t("m")).is_empty());
        },
    );
}

// --- special files and replacements -------------------------------------------------------

/// Device nodes are created as root, with their numbers; a device named with `..` stays
/// inside.
#[test]
fn device_nodes_are_created_inside() {
    each_mode(
        &[
            node('c', "dev/null", 1, 3),
            node('b', "dev/loop0", 7, 0),
            node('p', "dev/fifo", 0, 0),
            node('c', "../sentinel/evil-null", 1, 3),
        ],
        |fx, _, r| {
            r.unwrap();
            let null = fs::symlink_metadata(fx.t("dev/null")).unwrap();
            assert!(null.file_type().is_char_device());
            assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
            let lo = fs::symlink_metadata(fx.t("dev/loop0")).unwrap();
            assert!(lo.file_type().is_block_device());
            assert_eq!(lo.rdev(), rustix::fs::makedev(7, 0));
            assert!(
                fs::symlink_metadata(fx.t("dev/fifo"))
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
            assert!(
                fs::symlink_metadata(fx.t("sentinel/evil-null"))
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
        },
    );
}

/// setuid, setgid and sticky bits survive the owner change (chown clears them, so the mode is
/// set after it).
#[test]
fn setuid_setgid_and_sticky_bits_are_kept() {
    each_mode(
        &[
            file("bin/su", "su").mode(0o4755).owner(1000, 1000),
            file("bin/wall", "w").mode(0o2755).owner(0, 5),
            dir("tmp/").mode(0o1777),
            dir("shared/").mode(0o2775).owner(1000, 100),
        ],
        |fx, _, r| {
            r.unwrap();
            assert_eq!(mode_of(&fx.t("bin/su")), 0o4755);
            let su = fs::metadata(fx.t("bin/su")).unwrap();
            assert_eq!((su.uid(), su.gid()), (1000, 1000));
            assert_eq!(mode_of(&fx.t("bin/wall")), 0o2755);
            assert_eq!(mode_of(&fx.t("tmp")), 0o1777);
            assert_eq!(mode_of(&fx.t("shared")), 0o2775);
        },
    );
}

/// GNU long names and long link targets (over 100 bytes) are read whole.
#[test]
fn long_names_and_long_link_targets() {
    let deep = format!("{}/file", "d".repeat(60).repeat(2));
    let target = format!("../{}", "t".repeat(120));
    each_mode(
        &[file(&deep, "deep"), symlink("long-link", &target)],
        |fx, _, r| {
            r.unwrap();
            assert_eq!(read(&fx.t(&deep)).as_deref(), Some("deep"));
            assert_eq!(
                fs::read_link(fx.t("long-link")).unwrap().to_str(),
                Some(target.as_str())
            );
        },
    );
}

/// Duplicate entries: the last one wins (content and metadata); a duplicate directory keeps
/// what was written into it.
#[test]
fn duplicate_entries_last_one_wins() {
    each_mode(
        &[
            file("f", "first").mode(0o600),
            dir("d/").mode(0o700),
            file("d/x", "x"),
            file("f", "second").mode(0o640),
            dir("d/").mode(0o750),
        ],
        |fx, _, r| {
            r.unwrap();
            assert_eq!(read(&fx.t("f")).as_deref(), Some("second"));
            assert_eq!(mode_of(&fx.t("f")), 0o640);
            assert_eq!(mode_of(&fx.t("d")), 0o750);
            assert_eq!(read(&fx.t("d/x")).as_deref(), Some("x"));
        },
    );
}

/// A file replaces a directory (and everything in it), and a directory replaces a file.
#[test]
fn file_replaces_directory_and_directory_replaces_file() {
    each_mode(
        &[
            dir("d/"),
            file("d/x", "x"),
            file("d", "now a file"),
            file("f", "a file"),
            dir("f/"),
            file("f/y", "y"),
        ],
        |fx, _, r| {
            r.unwrap();
            assert_eq!(read(&fx.t("d")).as_deref(), Some("now a file"));
            assert!(fx.t("f").is_dir());
            assert_eq!(read(&fx.t("f/y")).as_deref(), Some("y"));
            assert_eq!(listing(&fx.target), ["d", "f", "f/y"]);
        },
    );
}

/// A path through a regular file cannot be created.
#[test]
fn path_through_a_file_fails() {
    each_mode(&[file("f", "f"), file("f/x", "pwned")], |_, _, r| {
        let err = r.unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    });
}

/// Compression does not change containment: the same breakout, gzip and zstd.
#[test]
fn compressed_breakouts_are_contained() {
    require_root();
    let layer = tar_of(&[
        symlink("escape", "../../sentinel"),
        file("escape/pwned", "pwned"),
        file("../sentinel/file", "pwned"),
    ]);
    for bytes in [gzip(&layer), zstd(&layer)] {
        for mode in MODES {
            let fx = Fx::new();
            fx.apply_bytes(&bytes, mode).unwrap();
            pwned(&fx, "sentinel/pwned");
            pwned(&fx, "sentinel/file");
        }
    }
}

/// A layer cut short fails, having written nothing outside.
#[test]
fn truncated_layer_fails() {
    require_root();
    let layer = tar_of(&[file("a", &"x".repeat(4000)), file("b", "b")]);
    for bytes in [layer[..1500].to_vec(), {
        let mut g = gzip(&layer);
        g.truncate(g.len() / 2);
        g
    }] {
        for mode in MODES {
            let fx = Fx::new();
            let err = fx.apply_bytes(&bytes, mode).unwrap_err();
            assert!(chain(&err).contains("test-layer"), "{}", chain(&err));
        }
    }
}

/// An entry type no layer has (here `V`, a GNU volume header) is refused, not guessed at.
#[test]
fn unknown_entry_types_are_refused() {
    let mut e = file("vol", "");
    e.kind = EntryType::new(b'V');
    each_mode(&[e], |_, _, r| {
        let err = r.unwrap_err();
        assert!(err.contains("unhandled tar entry type"), "{err}");
    });
}
