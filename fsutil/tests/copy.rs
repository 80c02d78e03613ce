//! `Copy` onto an upper layer: the Docker/BuildKit copy matrix.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use dray_fsutil::Error;
use dray_fsutil::fileop::{Action, ApplyContext, Copy, Mode, Owner, apply};
use dray_fsutil::tree::{ChainTree, DirTree};

/// A build context, a lower chain (one layer, `lower/`), and a fresh upper.
struct Fx {
    _tmp: tempfile::TempDir,
    ctx: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        // Writing a layer sets owners (root's for created parents) and makes whiteouts.
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let ctx = dir(tmp.path(), "ctx", 0o755);
        let lower = dir(tmp.path(), "lower", 0o755);
        let upper = dir(tmp.path(), "upper", 0o755);
        Fx {
            _tmp: tmp,
            ctx,
            lower,
            upper,
        }
    }

    fn copy(&self, c: Copy) -> Result<(), Error> {
        let src = DirTree::open(&self.ctx).unwrap();
        let lower = ChainTree::new([&self.lower]).unwrap();
        apply(
            &Action::Copy(c),
            Some(&src),
            &lower,
            &self.upper,
            &ApplyContext::default(),
        )
        .map(drop)
    }

    fn up(&self, rel: &str) -> PathBuf {
        self.upper.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.up(rel)).unwrap()
    }
}

fn cp(src: &str, dest: &str) -> Copy {
    Copy {
        src: src.into(),
        dest: dest.into(),
        create_dest_path: true,
        follow_symlinks: true,
        dir_copy_contents: true,
        allow_wildcard: true,
        ..Default::default()
    }
}

#[test]
fn file_to_new_file_name() {
    let fx = Fx::new();
    file(&fx.ctx, "a.txt", "A", 0o640);
    fx.copy(cp("a.txt", "/b.txt")).unwrap();
    assert_eq!(fx.read("b.txt"), "A");
    assert_eq!(mode(&fx.up("b.txt")), 0o640);
    assert_eq!(listing(&fx.upper), ["b.txt"]);
}

#[test]
fn file_into_dir_with_trailing_slash_or_existing_dir() {
    let fx = Fx::new();
    file(&fx.ctx, "a.txt", "A", 0o644);
    dir(&fx.lower, "existing", 0o755);
    fx.copy(cp("/a.txt", "/new/")).unwrap();
    fx.copy(cp("/a.txt", "/existing")).unwrap();
    assert_eq!(fx.read("new/a.txt"), "A");
    assert_eq!(fx.read("existing/a.txt"), "A");
    assert_eq!(mode(&fx.up("new")), 0o755);
}

#[test]
fn dir_contents_into_dir() {
    let fx = Fx::new();
    file(&fx.ctx, "src/main.rs", "fn main() {}", 0o644);
    file(&fx.ctx, "src/lib/mod.rs", "", 0o600);
    dir(&fx.ctx, "src/lib", 0o700);
    fx.copy(cp("src", "/app")).unwrap();
    assert_eq!(
        listing(&fx.upper),
        ["app", "app/lib", "app/lib/mod.rs", "app/main.rs"]
    );
    // A created top directory is 0755 (MkdirAll), subdirectories keep the source's mode.
    assert_eq!(mode(&fx.up("app")), 0o755);
    assert_eq!(mode(&fx.up("app/lib")), 0o700);
    assert_eq!(mode(&fx.up("app/lib/mod.rs")), 0o600);
}

#[test]
fn dir_without_copy_contents_goes_inside_an_existing_dest() {
    let fx = Fx::new();
    file(&fx.ctx, "src/f", "f", 0o644);
    dir(&fx.lower, "app", 0o755);
    fx.copy(Copy {
        dir_copy_contents: false,
        ..cp("src", "/app")
    })
    .unwrap();
    assert_eq!(fx.read("app/src/f"), "f");
}

#[test]
fn wildcard_copies_each_match() {
    let fx = Fx::new();
    file(&fx.ctx, "a.txt", "a", 0o644);
    file(&fx.ctx, "b.txt", "b", 0o644);
    file(&fx.ctx, "c.md", "c", 0o644);
    file(&fx.ctx, "sub/d.txt", "d", 0o644);
    fx.copy(cp("/*.txt", "/out/")).unwrap();
    assert_eq!(listing(&fx.upper), ["out", "out/a.txt", "out/b.txt"]);
    fx.copy(cp("s?b/[a-d].txt", "/out2/")).unwrap();
    assert_eq!(fx.read("out2/d.txt"), "d");
}

#[test]
fn empty_wildcard_fails_unless_allowed() {
    let fx = Fx::new();
    let err = fx.copy(cp("*.nothing", "/out/")).unwrap_err();
    assert!(matches!(err, Error::NoWildcardMatch { .. }), "{err}");
    fx.copy(Copy {
        allow_empty_wildcard: true,
        ..cp("*.nothing", "/out/")
    })
    .unwrap();
    assert!(listing(&fx.upper).is_empty());
}

#[test]
fn missing_source_is_not_found() {
    let fx = Fx::new();
    let err = fx.copy(cp("nope.txt", "/x")).unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { path } if path == Path::new("/nope.txt")),
        "{err}"
    );
}

#[test]
fn dest_parent_must_exist_without_create_dest_path() {
    let fx = Fx::new();
    file(&fx.ctx, "a", "a", 0o644);
    let err = fx
        .copy(Copy {
            create_dest_path: false,
            ..cp("a", "/missing/dir/a")
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn existing_parents_are_copied_up_with_their_metadata() {
    require_root();
    let fx = Fx::new();
    file(&fx.ctx, "x", "x", 0o755);
    let usr = dir(&fx.lower, "usr", 0o750);
    file(&fx.lower, "usr/keep", "k", 0o644);
    rustix::fs::chown(
        &usr,
        Some(rustix::fs::Uid::from_raw(12)),
        Some(rustix::fs::Gid::from_raw(34)),
    )
    .unwrap();
    xattr::set(&usr, "user.note", b"lower").ok();
    set_mtime(&usr, 1_000_000);
    fx.copy(Copy {
        owner: Some(Owner { uid: 7, gid: 8 }),
        ..cp("x", "/usr/local/bin/")
    })
    .unwrap();
    let up_usr = fx.up("usr");
    assert_eq!(mode(&up_usr), 0o750);
    assert_eq!(owner(&up_usr), (12, 34));
    assert_eq!(
        mtime(&up_usr),
        1_000_000,
        "copy-up must keep the lower mtime"
    );
    assert!(!is_opaque(&up_usr), "a copied-up dir merges with lower");
    if let Ok(Some(v)) = xattr::get(&usr, "user.note") {
        assert_eq!(xattr::get(&up_usr, "user.note").unwrap(), Some(v));
    }
    // Only the new path is in the layer, not the lower sibling.
    assert_eq!(
        listing(&fx.upper),
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/x"]
    );
    // Missing parents are created 0755 and owned by --chown, as fsutil's MkdirAll does.
    assert_eq!(mode(&fx.up("usr/local")), 0o755);
    assert_eq!(owner(&fx.up("usr/local")), (7, 8));
    assert_eq!(owner(&fx.up("usr/local/bin/x")), (7, 8));
}

#[test]
fn parents_keeps_source_directories() {
    let fx = Fx::new();
    file(&fx.ctx, "a/b/c.txt", "c", 0o644);
    file(&fx.ctx, "a/d.txt", "d", 0o644);
    dir(&fx.ctx, "a/b", 0o711);
    fx.copy(Copy {
        parents: true,
        ..cp("a/*/c.txt", "/out/")
    })
    .unwrap();
    assert_eq!(fx.read("out/a/b/c.txt"), "c");
    assert_eq!(mode(&fx.up("out/a/b")), 0o711);
    assert!(!fx.up("out/a/d.txt").exists());
    // A `/./` pivot keeps only the part after it.
    fx.copy(Copy {
        parents: true,
        ..cp("a/./b/c.txt", "/pivot/")
    })
    .unwrap();
    assert_eq!(fx.read("pivot/b/c.txt"), "c");
}

#[test]
fn exclude_and_include_patterns() {
    let fx = Fx::new();
    file(&fx.ctx, "app/main.go", "m", 0o644);
    file(&fx.ctx, "app/debug.log", "l", 0o644);
    file(&fx.ctx, "app/logs/x.log", "x", 0o644);
    file(&fx.ctx, "app/logs/keep.txt", "k", 0o644);
    file(&fx.ctx, "app/vendor/v.go", "v", 0o644);
    fx.copy(Copy {
        exclude_patterns: vec!["*.log".into(), "logs/*.log".into(), "vendor".into()],
        ..cp("app", "/dst")
    })
    .unwrap();
    assert_eq!(listing(&fx.up("dst")), ["logs", "logs/keep.txt", "main.go"]);

    fx.copy(Copy {
        include_patterns: vec!["logs/*.txt".into()],
        ..cp("app", "/inc")
    })
    .unwrap();
    assert_eq!(listing(&fx.up("inc")), ["logs", "logs/keep.txt"]);
}

#[test]
fn chown_numeric() {
    require_root();
    let fx = Fx::new();
    file(&fx.ctx, "d/f", "f", 0o644);
    symlink(&fx.ctx, "d/l", "f");
    fx.copy(Copy {
        owner: Some(Owner {
            uid: 1000,
            gid: 1001,
        }),
        ..cp("d", "/d")
    })
    .unwrap();
    for p in ["d", "d/f", "d/l"] {
        assert_eq!(owner(&fx.up(p)), (1000, 1001), "{p}");
    }
}

#[test]
fn chmod_octal_and_symbolic() {
    let fx = Fx::new();
    file(&fx.ctx, "d/script", "#!/bin/sh", 0o744);
    file(&fx.ctx, "d/data", "x", 0o600);
    dir(&fx.ctx, "d/sub", 0o700);
    fx.copy(Copy {
        mode: Some(Mode::Octal(0o640)),
        ..cp("d", "/oct")
    })
    .unwrap();
    assert_eq!(mode(&fx.up("oct/script")), 0o640);
    assert_eq!(mode(&fx.up("oct/sub")), 0o640);
    fx.copy(Copy {
        mode: Some(Mode::Symbolic("u=rwX,go=rX".into())),
        ..cp("d", "/sym")
    })
    .unwrap();
    assert_eq!(mode(&fx.up("sym/script")), 0o755);
    assert_eq!(mode(&fx.up("sym/data")), 0o644);
    assert_eq!(mode(&fx.up("sym/sub")), 0o755);
    let err = fx
        .copy(Copy {
            mode: Some(Mode::Symbolic("u+q".into())),
            ..cp("d", "/bad")
        })
        .unwrap_err();
    assert!(matches!(err, Error::ModeSpec { .. }), "{err}");
}

#[test]
fn timestamp_sets_mtimes() {
    let fx = Fx::new();
    file(&fx.ctx, "d/f", "f", 0o644);
    file(&fx.ctx, "d/sub/g", "g", 0o644);
    fx.copy(Copy {
        timestamp: Some(1_234_567),
        ..cp("d", "/t/d")
    })
    .unwrap();
    for p in ["t", "t/d", "t/d/f", "t/d/sub", "t/d/sub/g"] {
        assert_eq!(mtime(&fx.up(p)), 1_234_567, "{p}");
    }
}

#[test]
fn source_times_are_kept_without_timestamp() {
    let fx = Fx::new();
    let f = file(&fx.ctx, "d/sub/f", "f", 0o644);
    set_mtime(&f, 111);
    set_mtime(&fx.ctx.join("d/sub"), 222);
    fx.copy(cp("d", "/d")).unwrap();
    assert_eq!(mtime(&fx.up("d/sub/f")), 111);
    assert_eq!(
        mtime(&fx.up("d/sub")),
        222,
        "directory times are restored after writing"
    );
}

#[test]
fn an_existing_top_dir_keeps_its_mode_and_takes_the_source_times() {
    let fx = Fx::new();
    file(&fx.ctx, "src/f", "f", 0o644);
    dir(&fx.ctx, "src", 0o700);
    set_mtime(&fx.ctx.join("src"), 4_000);
    dir(&fx.lower, "app", 0o751);
    set_mtime(&fx.lower.join("app"), 9_000);
    fx.copy(cp("src", "/app")).unwrap();
    assert_eq!(mode(&fx.up("app")), 0o751);
    assert_eq!(mtime(&fx.up("app")), 4_000);
}

#[test]
fn octal_chmod_sets_special_bits_too() {
    let fx = Fx::new();
    file(&fx.ctx, "tool", "t", 0o755);
    fx.copy(Copy {
        mode: Some(Mode::Octal(0o4750)),
        ..cp("tool", "/bin/tool")
    })
    .unwrap();
    assert_eq!(mode(&fx.up("bin/tool")), 0o4750);
}

#[test]
fn hard_links_are_preserved() {
    let fx = Fx::new();
    let a = file(&fx.ctx, "d/a", "same", 0o644);
    fs::hard_link(&a, fx.ctx.join("d/b")).unwrap();
    file(&fx.ctx, "d/c", "same", 0o644);
    fx.copy(cp("d", "/d")).unwrap();
    let ino = |p: &str| fs::metadata(fx.up(p)).unwrap().ino();
    assert_eq!(ino("d/a"), ino("d/b"));
    assert_ne!(ino("d/a"), ino("d/c"));
    assert_eq!(fs::metadata(fx.up("d/a")).unwrap().nlink(), 2);
}

#[test]
fn symlinks_devices_and_fifos_are_copied_as_such() {
    require_root();
    let fx = Fx::new();
    symlink(&fx.ctx, "d/link", "/etc/shadow");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        fx.ctx.join("d/fifo"),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fx.ctx.join("d/null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    // mknod applies the umask; set the mode we mean.
    rustix::fs::chmod(
        fx.ctx.join("d/null"),
        rustix::fs::Mode::from_raw_mode(0o666),
    )
    .unwrap();
    fx.copy(cp("d", "/d")).unwrap();
    assert_eq!(
        fs::read_link(fx.up("d/link")).unwrap(),
        Path::new("/etc/shadow")
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(fx.up("d/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = fs::symlink_metadata(fx.up("d/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(mode(&fx.up("d/null")), 0o666);
}

#[test]
fn copying_a_link_to_outside_never_reads_the_host_file() {
    let fx = Fx::new();
    let secret = file(fx.ctx.parent().unwrap(), "host-secret", "TOP SECRET", 0o644);
    symlink(&fx.ctx, "abs", secret.to_str().unwrap());
    symlink(&fx.ctx, "rel", "../host-secret");
    for link in ["abs", "rel"] {
        // Followed: resolved inside the context, where there is no such file.
        let err = fx.copy(cp(link, &format!("/{link}"))).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{link}: {err}");
        // Not followed: the link itself is copied.
        fx.copy(Copy {
            follow_symlinks: false,
            ..cp(link, &format!("/{link}"))
        })
        .unwrap();
        assert!(
            fs::symlink_metadata(fx.up(link))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    for entry in listing(&fx.upper) {
        let path = fx.up(&entry);
        if path.is_file() && !path.is_symlink() {
            assert_ne!(fs::read_to_string(&path).unwrap(), "TOP SECRET");
        }
    }
}

#[test]
fn dest_symlinks_resolve_inside_the_layer() {
    let fx = Fx::new();
    file(&fx.ctx, "a", "a", 0o644);
    let outside = fx.lower.parent().unwrap().join("escape");
    fs::create_dir(&outside).unwrap();
    symlink(&fx.lower, "link", "/real");
    symlink(&fx.lower, "esc", "../../escape");
    dir(&fx.lower, "real", 0o755);
    fx.copy(cp("a", "/link/")).unwrap();
    assert_eq!(fx.read("real/a"), "a");
    fx.copy(cp("a", "/esc/")).unwrap();
    assert_eq!(fx.read("escape/a"), "a", "`..` stops at the layer root");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
}

#[test]
fn long_names() {
    let fx = Fx::new();
    let name = "n".repeat(255);
    file(&fx.ctx, &format!("d/{name}"), "long", 0o644);
    let deep: String = (0..30)
        .map(|i| format!("level-{i:02}-{}/", "x".repeat(100)))
        .collect();
    file(&fx.ctx, &format!("d/{deep}f"), "deep", 0o644);
    fx.copy(cp("d", "/d")).unwrap();
    assert_eq!(fx.read(&format!("d/{name}")), "long");
    assert_eq!(fx.read(&format!("d/{deep}f")), "deep");
}

#[test]
fn overwriting_files_and_type_conflicts() {
    require_root();
    let fx = Fx::new();
    file(&fx.ctx, "f", "new", 0o644);
    file(&fx.ctx, "d/x", "x", 0o644);
    file(&fx.lower, "etc/conf", "old", 0o600);
    file(&fx.lower, "dir/keep", "k", 0o644);
    file(&fx.lower, "file", "f", 0o644);
    // A file over a lower file just appears in upper.
    fx.copy(cp("f", "/etc/conf")).unwrap();
    assert_eq!(fx.read("etc/conf"), "new");
    assert_eq!(mode(&fx.up("etc/conf")), 0o644);
    // A file over a directory, or a directory over a file, needs always_replace_existing.
    dir(&fx.lower, "dir/x", 0o755);
    file(&fx.lower, "dir/x/inner", "i", 0o644);
    let err = fx.copy(cp("d", "/dir")).unwrap_err();
    assert!(matches!(err, Error::ReplaceDirectory { .. }), "{err}");
    fx.copy(Copy {
        always_replace_existing: true,
        ..cp("d", "/dir")
    })
    .unwrap();
    assert_eq!(
        fx.read("dir/x"),
        "x",
        "a file in upper hides the lower directory"
    );
    assert!(
        fx.up("dir/keep").symlink_metadata().is_err(),
        "lower siblings stay in lower"
    );
    let err = fx.copy(cp("d", "/file")).unwrap_err();
    assert!(matches!(err, Error::CopyToNonDirectory { .. }), "{err}");
    fx.copy(Copy {
        always_replace_existing: true,
        ..cp("d", "/file")
    })
    .unwrap();
    assert_eq!(fx.read("file/x"), "x");
    assert!(
        is_opaque(&fx.up("file")),
        "a dir replacing a lower file is opaque"
    );
}

#[test]
fn copy_into_lower_dir_over_whiteout_makes_it_opaque() {
    require_root();
    let fx = Fx::new();
    file(&fx.ctx, "x", "x", 0o644);
    file(&fx.lower, "gone/old", "o", 0o644);
    // The step already removed /gone (whiteout in upper); a copy recreates it.
    whiteout(&fx.upper, "gone");
    fx.copy(cp("x", "/gone/")).unwrap();
    assert!(fx.up("gone").is_dir());
    assert!(is_opaque(&fx.up("gone")), "old contents must stay hidden");
    assert_eq!(listing(&fx.upper), ["gone", "gone/x"]);
}

#[test]
fn xattrs_are_copied_except_overlay_ones() {
    require_root();
    let fx = Fx::new();
    let f = file(&fx.ctx, "d/f", "f", 0o644);
    let d = fx.ctx.join("d");
    xattr::set(&f, "user.origin", b"ci").unwrap();
    xattr::set(&f, "trusted.note", b"t").unwrap();
    xattr::set(&d, "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(&d, "user.overlay.opaque", b"y").unwrap();
    fx.copy(cp("d", "/d")).unwrap();
    let up_f = fx.up("d/f");
    assert_eq!(
        xattr::get(&up_f, "user.origin").unwrap(),
        Some(b"ci".to_vec())
    );
    assert_eq!(
        xattr::get(&up_f, "trusted.note").unwrap(),
        Some(b"t".to_vec())
    );
    let up_d = fx.up("d");
    assert_eq!(xattr::get(&up_d, "trusted.overlay.opaque").unwrap(), None);
    assert_eq!(xattr::get(&up_d, "user.overlay.opaque").unwrap(), None);
}

/// `cap_net_bind_service=ep` as a `security.capability` value (VFS_CAP_REVISION_2).
fn net_bind_cap() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes()); // revision 2, effective
    v.extend_from_slice(&(1u32 << 10).to_le_bytes()); // permitted: CAP_NET_BIND_SERVICE
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

#[test]
fn file_capabilities_survive_chown() {
    let fx = Fx::new();
    let f = file(&fx.ctx, "server", "bin", 0o755);
    xattr::set(&f, "security.capability", &net_bind_cap()).unwrap();
    fx.copy(Copy {
        owner: Some(Owner { uid: 10, gid: 10 }),
        ..cp("server", "/usr/bin/server")
    })
    .unwrap();
    // chown(2) clears security.capability, so xattrs must be set after the owner.
    assert_eq!(
        xattr::get(fx.up("usr/bin/server"), "security.capability").unwrap(),
        Some(net_bind_cap())
    );
    assert_eq!(owner(&fx.up("usr/bin/server")), (10, 10));
}
