//! Mkdir, Mkfile, Symlink and Rm onto an upper layer, and `--chown` name resolution.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use dray_fsutil::Error;
use dray_fsutil::fileop::{
    Action, ApplyContext, IdOrName, Mkdir, Mkfile, Owner, Rm, Symlink, apply, resolve_owner,
};
use dray_fsutil::tree::ChainTree;

/// Two lower layers (`l1` over `l2`) and an upper.
struct Fx {
    _tmp: tempfile::TempDir,
    l1: PathBuf,
    l2: PathBuf,
    upper: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        Fx {
            l1: dir(tmp.path(), "l1", 0o755),
            l2: dir(tmp.path(), "l2", 0o755),
            upper: dir(tmp.path(), "upper", 0o755),
            _tmp: tmp,
        }
    }

    fn chain(&self) -> ChainTree {
        ChainTree::new([&self.l1, &self.l2]).unwrap()
    }

    fn run(&self, action: Action) -> Result<(), Error> {
        self.run_with(action, &ApplyContext::default())
    }

    fn run_with(&self, action: Action, ctx: &ApplyContext) -> Result<(), Error> {
        // Writing a layer sets owners (root's for created entries) and makes whiteouts.
        require_root();
        apply(&action, None, &self.chain(), &self.upper, ctx).map(drop)
    }

    fn up(&self, rel: &str) -> PathBuf {
        self.upper.join(rel)
    }
}

fn rm(path: &str) -> Action {
    Action::Rm(Rm {
        path: path.into(),
        allow_not_found: false,
        allow_wildcard: false,
    })
}

#[test]
fn rm_of_a_lower_path_leaves_a_whiteout() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "etc/foo", "foo", 0o644);
    file(&fx.l2, "etc/bar", "bar", 0o644);
    let etc = fx.l2.join("etc");
    set_mtime(&etc, 5_000);
    fx.run(rm("/etc/foo")).unwrap();
    assert!(is_whiteout(&fx.up("etc/foo")));
    assert_eq!(listing(&fx.upper), ["etc", "etc/foo"]);
    assert_eq!(
        mtime(&fx.up("etc")),
        5_000,
        "the copied-up parent keeps its time"
    );
    // And the merged view no longer has it.
    let merged = fx.chain().with_top(&fx.upper).unwrap();
    use dray_fsutil::tree::Tree;
    assert!(merged.lstat(Path::new("etc/foo")).unwrap().is_none());
    assert!(merged.lstat(Path::new("etc/bar")).unwrap().is_some());
}

#[test]
fn rm_of_an_upper_only_path_just_deletes_it() {
    let fx = Fx::new();
    file(&fx.upper, "tmp/build/out.o", "o", 0o644);
    fx.run(rm("/tmp/build")).unwrap();
    assert_eq!(listing(&fx.upper), ["tmp"]);
}

#[test]
fn rm_of_a_path_in_both_removes_upper_and_whites_out_lower() {
    require_root();
    let fx = Fx::new();
    file(&fx.l1, "d/a", "lower", 0o644);
    dir(&fx.upper, "d/a", 0o755);
    file(&fx.upper, "d/a/inner", "upper", 0o644);
    fx.run(rm("/d/a")).unwrap();
    assert!(is_whiteout(&fx.up("d/a")));
    assert_eq!(listing(&fx.upper), ["d", "d/a"]);
}

#[test]
fn rm_not_found_and_wildcards() {
    require_root();
    let fx = Fx::new();
    let err = fx.run(rm("/missing")).unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { path } if path == Path::new("/missing")),
        "{err}"
    );
    fx.run(Action::Rm(Rm {
        path: "/missing".into(),
        allow_not_found: true,
        allow_wildcard: false,
    }))
    .unwrap();
    file(&fx.l1, "logs/a.log", "a", 0o644);
    file(&fx.l2, "logs/b.log", "b", 0o644);
    file(&fx.l2, "logs/keep.txt", "k", 0o644);
    fx.run(Action::Rm(Rm {
        path: "/logs/*.log".into(),
        allow_not_found: false,
        allow_wildcard: true,
    }))
    .unwrap();
    assert!(is_whiteout(&fx.up("logs/a.log")));
    assert!(is_whiteout(&fx.up("logs/b.log")));
    assert!(!fx.up("logs/keep.txt").exists());
    // The root cannot be removed.
    assert!(matches!(fx.run(rm("/")), Err(Error::InvalidPath { .. })));
}

#[test]
fn rm_does_not_follow_a_final_symlink() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "target", "t", 0o644);
    symlink(&fx.l2, "link", "/target");
    fx.run(rm("/link")).unwrap();
    assert!(is_whiteout(&fx.up("link")));
    assert!(!fx.up("target").exists());
}

#[test]
fn mkdir_with_parents_owner_and_time() {
    require_root();
    let fx = Fx::new();
    dir(&fx.l2, "srv", 0o700);
    set_mtime(&fx.l2.join("srv"), 42);
    fx.run(Action::Mkdir(Mkdir {
        path: "/srv/app/data".into(),
        mode: 0o750,
        make_parents: true,
        owner: Some(Owner { uid: 5, gid: 6 }),
        timestamp: Some(777),
    }))
    .unwrap();
    assert_eq!((mode(&fx.up("srv")), mtime(&fx.up("srv"))), (0o700, 42));
    for p in ["srv/app", "srv/app/data"] {
        assert_eq!(mode(&fx.up(p)), 0o750, "{p}");
        assert_eq!(owner(&fx.up(p)), (5, 6), "{p}");
        assert_eq!(mtime(&fx.up(p)), 777, "{p}");
    }
    // Existing: fine with make_parents, and left alone.
    fx.run(Action::Mkdir(Mkdir {
        path: "/srv".into(),
        mode: 0o777,
        make_parents: true,
        owner: None,
        timestamp: None,
    }))
    .unwrap();
    assert_eq!(mode(&fx.up("srv")), 0o700);
    // Without parents the parent must exist.
    let err = fx
        .run(Action::Mkdir(Mkdir {
            path: "/no/such".into(),
            mode: 0o755,
            make_parents: false,
            owner: None,
            timestamp: None,
        }))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn mkdir_with_parents_of_an_existing_lower_dir_leaves_the_layer_empty() {
    // WORKDIR of a directory an earlier step made: BuildKit's MkdirAll changes nothing, so the
    // step adds no layer. Copying the directory up would add one.
    require_root();
    let fx = Fx::new();
    dir(&fx.l2, "srv", 0o755);
    dir(&fx.l2, "srv/www", 0o755);
    fx.run(Action::Mkdir(Mkdir {
        path: "/srv/www".into(),
        mode: 0o755,
        make_parents: true,
        owner: None,
        timestamp: Some(1),
    }))
    .unwrap();
    assert_eq!(
        fs::read_dir(&fx.upper).unwrap().count(),
        0,
        "upper must stay empty"
    );
}

#[test]
fn mkdir_over_a_whiteout_is_opaque() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "work/old", "o", 0o644);
    fx.run(rm("/work")).unwrap();
    fx.run(Action::Mkdir(Mkdir {
        path: "/work".into(),
        mode: 0o755,
        make_parents: false,
        owner: None,
        timestamp: None,
    }))
    .unwrap();
    assert!(fx.up("work").is_dir());
    assert!(is_opaque(&fx.up("work")));
    assert_eq!(listing(&fx.upper), ["work"]);
}

#[test]
fn mkfile_writes_data_mode_and_owner() {
    require_root();
    let fx = Fx::new();
    dir(&fx.l2, "etc", 0o755);
    file(&fx.l2, "etc/motd", "old", 0o600);
    fx.run(Action::Mkfile(Mkfile {
        path: "/etc/motd".into(),
        mode: 0o644,
        data: b"hello\n".to_vec(),
        owner: Some(Owner { uid: 3, gid: 4 }),
        timestamp: Some(99),
    }))
    .unwrap();
    assert_eq!(fs::read_to_string(fx.up("etc/motd")).unwrap(), "hello\n");
    // Like os.WriteFile, an existing file keeps its mode.
    assert_eq!(mode(&fx.up("etc/motd")), 0o600);
    assert_eq!(owner(&fx.up("etc/motd")), (3, 4));
    assert_eq!(mtime(&fx.up("etc/motd")), 99);
    fx.run(Action::Mkfile(Mkfile {
        path: "/etc/new".into(),
        mode: 0o4751,
        data: b"x".to_vec(),
        owner: None,
        timestamp: None,
    }))
    .unwrap();
    assert_eq!(mode(&fx.up("etc/new")), 0o751, "mode & 0o777, as BuildKit");
    assert_eq!(owner(&fx.up("etc/new")), (0, 0));
    let err = fx
        .run(Action::Mkfile(Mkfile {
            path: "/nodir/f".into(),
            mode: 0o644,
            data: vec![],
            owner: None,
            timestamp: None,
        }))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn symlink_is_created_verbatim_and_must_not_exist() {
    let fx = Fx::new();
    dir(&fx.l2, "usr/bin", 0o755);
    let link = |newpath: &str| {
        Action::Symlink(Symlink {
            oldpath: "../../etc/x".into(),
            newpath: newpath.into(),
            owner: None,
            timestamp: None,
        })
    };
    fx.run(link("/usr/bin/x")).unwrap();
    assert_eq!(
        fs::read_link(fx.up("usr/bin/x")).unwrap(),
        Path::new("../../etc/x")
    );
    let err = fx.run(link("/usr/bin/x")).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
}

#[test]
fn resolve_owner_reads_passwd_and_group_through_the_chain() {
    let fx = Fx::new();
    file(
        &fx.l2,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        0o644,
    );
    file(&fx.l2, "etc/group", "root:x:0:\nstaff:x:50:app\n", 0o644);
    // The top layer replaces group: the chain must be read merged.
    file(&fx.l1, "etc/group", "root:x:0:\nstaff:x:51:app\n", 0o644);
    let chain = fx.chain();
    let name = |s: &str| IdOrName::Name(s.into());
    let owner =
        |u: Option<IdOrName>, g: Option<IdOrName>| resolve_owner(&chain, u.as_ref(), g.as_ref());
    assert_eq!(
        owner(Some(name("app")), None).unwrap(),
        Owner {
            uid: 1000,
            gid: 1001
        }
    );
    assert_eq!(
        owner(Some(name("app")), Some(name("staff"))).unwrap(),
        Owner { uid: 1000, gid: 51 }
    );
    assert_eq!(
        owner(Some(IdOrName::Id(33)), None).unwrap(),
        Owner { uid: 33, gid: 33 }
    );
    assert_eq!(
        owner(None, Some(IdOrName::Id(7))).unwrap(),
        Owner { uid: 0, gid: 7 }
    );
    assert_eq!(
        owner(Some(name("4242")), None).unwrap(),
        Owner {
            uid: 4242,
            gid: 4242
        }
    );
    let err = owner(Some(name("ghost")), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    let err = owner(Some(name("app")), Some(name("nogroup"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find group nogroup: no matching entries in group file"
    );
}

#[test]
fn resolve_owner_follows_an_etc_symlink_inside_the_chain() {
    let fx = Fx::new();
    file(&fx.l2, "real/passwd", "svc:x:70:71::/:/bin/false\n", 0o644);
    symlink(&fx.l2, "etc", "/real");
    let chain = fx.chain();
    let owner = resolve_owner(&chain, Some(&IdOrName::Name("svc".into())), None).unwrap();
    assert_eq!(owner, Owner { uid: 70, gid: 71 });
}

#[test]
fn a_file_written_over_a_whiteout_replaces_it() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "etc/conf", "old", 0o644);
    fx.run(rm("/etc/conf")).unwrap();
    assert!(is_whiteout(&fx.up("etc/conf")));
    fx.run(Action::Mkfile(Mkfile {
        path: "/etc/conf".into(),
        mode: 0o640,
        data: b"new".to_vec(),
        owner: None,
        timestamp: None,
    }))
    .unwrap();
    assert_eq!(fs::read_to_string(fx.up("etc/conf")).unwrap(), "new");
    assert_eq!(
        mode(&fx.up("etc/conf")),
        0o640,
        "a new file, not the removed one's mode"
    );
    // Removing it again brings the whiteout back, since lower still has the path.
    fx.run(rm("/etc/conf")).unwrap();
    assert!(is_whiteout(&fx.up("etc/conf")));
}

#[test]
fn rm_under_an_opaque_upper_dir_needs_no_whiteout() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "cache/old", "o", 0o644);
    fx.run(rm("/cache")).unwrap();
    fx.run(Action::Mkdir(Mkdir {
        path: "/cache".into(),
        mode: 0o755,
        make_parents: false,
        owner: None,
        timestamp: None,
    }))
    .unwrap();
    file(&fx.upper, "cache/old", "new", 0o644);
    fx.run(rm("/cache/old")).unwrap();
    // lower's cache/old is hidden by the opaque dir: plain removal is enough.
    assert_eq!(listing(&fx.upper), ["cache"]);
}

#[test]
fn userxattr_marks_opaque_dirs_in_the_user_namespace() {
    require_root();
    let fx = Fx::new();
    file(&fx.l2, "work/old", "o", 0o644);
    let ctx = ApplyContext::new().with_userxattr(true);
    fx.run_with(rm("/work"), &ctx).unwrap();
    fx.run_with(
        Action::Mkdir(Mkdir {
            path: "/work".into(),
            mode: 0o755,
            make_parents: false,
            owner: None,
            timestamp: None,
        }),
        &ctx,
    )
    .unwrap();
    let work = fx.up("work");
    assert_eq!(
        xattr::get(&work, "user.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(xattr::get(&work, "trusted.overlay.opaque").unwrap(), None);
    // And a chain reads it back as opaque.
    use dray_fsutil::tree::Tree;
    let merged = fx.chain().with_top(&fx.upper).unwrap();
    assert!(merged.read_dir(Path::new("work")).unwrap().is_empty());
}
