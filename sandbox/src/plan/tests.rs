use std::path::{Path, PathBuf};

use dray_llb::Sharing;

use super::*;
use crate::spec::{Kind, Mount, Overlay, Secret};
use crate::syscall::test::RecordingSyscall;

fn spec(lowers: &[&str], mounts: Vec<Mount>) -> InitSpec {
    InitSpec {
        args: vec!["true".into()],
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "box".into(),
        isolated_network: false,
        insecure: false,
        root: Overlay {
            lowers: lowers.iter().map(PathBuf::from).collect(),
            upper: "/s/9/fs".into(),
            work: "/s/9/work".into(),
        },
        mounts,
        pids_limit: None,
        resolv_conf: String::new(),
    }
}

fn layout() -> Layout {
    Layout::under(Path::new("/tmp/x"))
}

fn position(calls: &[MountCall], pred: impl Fn(&MountCall) -> bool) -> usize {
    calls.iter().position(pred).expect("call is planned")
}

#[test]
fn root_is_an_overlay_of_the_chain_top_first() {
    let calls = plan(&spec(&["/s/2/fs", "/s/1/fs"], vec![]), &layout());
    assert_eq!(calls[0], MountCall::MakePrivate);
    assert_eq!(
        calls[1],
        MountCall::Overlay {
            target: "/tmp/x/root".into(),
            lowers: vec!["/s/2/fs".into(), "/s/1/fs".into()],
            upper_work: Some(("/s/9/fs".into(), "/s/9/work".into())),
        }
    );
}

#[test]
fn a_scratch_root_gets_the_empty_directory_as_its_lower() {
    let calls = plan(&spec(&[], vec![]), &layout());
    let MountCall::Overlay { lowers, .. } = &calls[1] else {
        panic!("{:?}", calls[1])
    };
    assert_eq!(lowers, &[PathBuf::from("/tmp/x/empty")]);
}

#[test]
fn host_sources_are_opened_before_pivot_root_and_attached_after() {
    let calls = plan(
        &spec(
            &["/s/1/fs"],
            vec![Mount {
                dest: "/src".into(),
                kind: Kind::Bind {
                    lowers: vec![],
                    local_dir: Some("/ctx".into()),
                    hidden: vec![],
                    selector: Some("sub".into()),
                    readonly: true,
                },
            }],
        ),
        &layout(),
    );
    let pivot = position(&calls, |c| matches!(c, MountCall::PivotRoot { .. }));
    let open = position(
        &calls,
        |c| matches!(c, MountCall::OpenTree { root, .. } if root == Path::new("/ctx")),
    );
    let MountCall::OpenTree {
        handle, selector, ..
    } = &calls[open]
    else {
        unreachable!()
    };
    assert_eq!(selector.as_deref(), Some("sub"));
    let attach = position(
        &calls,
        |c| matches!(c, MountCall::Attach { handle: h, .. } if h == handle),
    );
    assert!(open < pivot && pivot < attach);
    // Read-only by default, right after attaching.
    assert!(
        matches!(&calls[attach + 1], MountCall::ReadOnly { target, .. } if target == Path::new("/src"))
    );
    // Every kernel filesystem is mounted after pivot_root, inside the new root.
    for fs in ["proc", "sysfs", "devpts"] {
        let i = position(
            &calls,
            |c| matches!(c, MountCall::Mount { fstype, .. } if fstype == fs),
        );
        assert!(i > pivot, "{fs} before pivot_root");
    }
}

#[test]
fn etc_files_are_read_only_binds_on_stub_mount_points() {
    let calls = plan(&spec(&["/s/1/fs"], vec![]), &layout());
    for name in ["hosts", "hostname", "resolv.conf"] {
        let target = Path::new("/etc").join(name);
        let stub = position(
            &calls,
            |c| matches!(c, MountCall::Mountpoint { path, stub: Stub::File } if *path == target),
        );
        assert!(matches!(&calls[stub + 1], MountCall::Attach { target: t, .. } if *t == target));
        assert!(matches!(&calls[stub + 2], MountCall::ReadOnly { target: t, .. } if *t == target));
    }
}

#[test]
fn sys_is_read_only_and_sysrq_cannot_be_written() {
    let calls = plan(&spec(&["/s/1/fs"], vec![]), &layout());
    assert!(calls.iter().any(|c| matches!(c,
        MountCall::Mount { fstype, flags, .. } if fstype == "sysfs" && flags.contains(MsFlags::MS_RDONLY))));
    assert!(calls.contains(&MountCall::ReadOnlyPath {
        path: "/proc/sysrq-trigger".into()
    }));
    assert!(calls.contains(&MountCall::Mask {
        path: "/proc/kcore".into()
    }));
}

#[test]
fn writable_binds_get_a_throwaway_upper_and_layers_a_staging_overlay() {
    let calls = plan(
        &spec(
            &["/s/1/fs"],
            vec![
                Mount {
                    dest: "/w".into(),
                    kind: Kind::Bind {
                        lowers: vec!["/s/5/fs".into(), "/s/4/fs".into()],
                        local_dir: None,
                        hidden: vec![],
                        selector: None,
                        readonly: false,
                    },
                },
                Mount {
                    dest: "/r".into(),
                    kind: Kind::Bind {
                        lowers: vec!["/s/5/fs".into()],
                        local_dir: None,
                        hidden: vec![],
                        selector: Some("/etc".into()),
                        readonly: true,
                    },
                },
            ],
        ),
        &layout(),
    );
    assert!(calls.contains(&MountCall::Overlay {
        target: "/tmp/x/stage/0".into(),
        lowers: vec!["/s/5/fs".into(), "/s/4/fs".into(), "/tmp/x/empty".into()],
        upper_work: Some(("/tmp/x/rw/0/upper".into(), "/tmp/x/rw/0/work".into())),
    }));
    assert!(calls.contains(&MountCall::Overlay {
        target: "/tmp/x/stage/1".into(),
        lowers: vec!["/s/5/fs".into(), "/tmp/x/empty".into()],
        upper_work: None,
    }));
    assert!(calls.iter().any(|c| matches!(c,
        MountCall::OpenTree { root, selector: Some(s), .. } if root == Path::new("/tmp/x/stage/1") && s == "/etc")));
    // The writable one is not remounted read-only.
    assert!(!calls.contains(&MountCall::ReadOnly {
        target: "/w".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV
    }));
}

#[test]
fn secrets_are_copied_into_a_private_tmpfs_with_their_owner_and_mode() {
    let secret = |id: &str, source: Option<&str>| Secret {
        id: id.into(),
        source: source.map(PathBuf::from),
        uid: 1000,
        gid: 1000,
        mode: 0o400,
        optional: true,
    };
    let calls = plan(
        &spec(
            &["/s/1/fs"],
            vec![
                Mount {
                    dest: "/run/secrets/tok".into(),
                    kind: Kind::Secret(secret("tok", Some("/host/tok"))),
                },
                Mount {
                    dest: "/run/secrets/absent".into(),
                    kind: Kind::Secret(secret("absent", None)),
                },
            ],
        ),
        &layout(),
    );
    let tmpfs = position(
        &calls,
        |c| matches!(c, MountCall::Mount { target, .. } if target == Path::new("/tmp/x/secrets")),
    );
    let copy = position(
        &calls,
        |c| matches!(c, MountCall::CopyFile { from, uid: 1000, mode: 0o400, .. } if from == Path::new("/host/tok")),
    );
    assert!(tmpfs < copy);
    assert!(calls.iter().any(|c| matches!(c,
        MountCall::ReadOnly { target, .. } if target == Path::new("/run/secrets/tok"))));
    // A missing optional secret mounts nothing.
    assert!(!calls.iter().any(|c| matches!(c,
        MountCall::Mountpoint { path, .. } if path == Path::new("/run/secrets/absent"))));
}

#[test]
fn parents_are_mounted_before_children() {
    let cache = |dest: &str| Mount {
        dest: dest.into(),
        kind: Kind::Cache {
            dir: format!("/c{}", dest.len()).into(),
            sharing: Sharing::Shared,
            readonly: false,
        },
    };
    let calls = plan(
        &spec(&["/s/1/fs"], vec![cache("/a/b/c"), cache("/a")]),
        &layout(),
    );
    let deep = position(
        &calls,
        |c| matches!(c, MountCall::Attach { target, .. } if target == Path::new("/a/b/c")),
    );
    let shallow = position(
        &calls,
        |c| matches!(c, MountCall::Attach { target, .. } if target == Path::new("/a")),
    );
    assert!(shallow < deep);
}

#[test]
fn tmpfs_mounts_carry_their_size() {
    let calls = plan(
        &spec(
            &["/s/1/fs"],
            vec![Mount {
                dest: "/t".into(),
                kind: Kind::Tmpfs {
                    size: Some(1 << 20),
                },
            }],
        ),
        &layout(),
    );
    assert!(calls.iter().any(|c| matches!(c,
        MountCall::Mount { target, data, .. } if target == Path::new("/t") && data == "mode=1777,size=1048576")));
}

#[test]
fn apply_records_stubs_and_the_directories_they_were_created_in() {
    let mut sys = RecordingSyscall::with_dirs(&["/etc"]);
    let calls = [
        MountCall::Mountpoint {
            path: "/etc/hosts".into(),
            stub: Stub::File,
        },
        MountCall::Mountpoint {
            path: "/run/secrets/tok".into(),
            stub: Stub::File,
        },
        MountCall::Mountpoint {
            path: "/etc".into(),
            stub: Stub::Dir,
        },
    ];
    let stubs = apply(&calls, &mut sys).unwrap();
    assert_eq!(
        stubs.created,
        ["/etc/hosts", "/run", "/run/secrets", "/run/secrets/tok"]
            .map(PathBuf::from)
            .to_vec()
    );
    assert_eq!(
        stubs
            .touched
            .iter()
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>(),
        vec![PathBuf::from("/etc"), PathBuf::from("/")]
    );
    assert_eq!(
        sys.calls,
        [
            "create /etc/hosts",
            "mkdir /run 755",
            "mkdir /run/secrets 755",
            "create /run/secrets/tok"
        ]
    );
}

#[test]
fn a_symlinked_mount_point_is_created_where_it_points() {
    let mut sys = RecordingSyscall::with_dirs(&["/etc", "/run"]);
    sys.tree
        .insert("/etc/resolv.conf".into(), crate::syscall::FileKind::Symlink);
    sys.links.insert(
        "/etc/resolv.conf".into(),
        "../run/systemd/resolve/stub-resolv.conf".into(),
    );
    let stubs = apply(
        &[MountCall::Mountpoint {
            path: "/etc/resolv.conf".into(),
            stub: Stub::File,
        }],
        &mut sys,
    )
    .unwrap();
    assert_eq!(
        stubs.created.last(),
        Some(&PathBuf::from("/run/systemd/resolve/stub-resolv.conf"))
    );
}

#[test]
fn deep_chains_fall_back_to_relative_paths_on_old_kernels() {
    let lowers: Vec<String> = (0..200)
        .map(|i| format!("/var/lib/dray/snapshots/{i:032x}/fs"))
        .collect();
    let lowers: Vec<&str> = lowers.iter().map(String::as_str).collect();
    let mut s = spec(&lowers, vec![]);
    s.root.upper = "/var/lib/dray/snapshots/top/fs".into();
    s.root.work = "/var/lib/dray/snapshots/top/work".into();
    let calls = plan(&s, &layout());

    let mut new_kernel = RecordingSyscall::default();
    apply(&calls[1..2], &mut new_kernel).unwrap();
    assert!(new_kernel.calls[0].starts_with("fsmount overlay /tmp/x/root lowers=/var/lib"));

    let mut old = RecordingSyscall {
        old_kernel: true,
        ..Default::default()
    };
    apply(&calls[1..2], &mut old).unwrap();
    assert_eq!(old.calls[0], "mkdir /tmp/x/root.l 700");
    assert_eq!(
        old.calls[1],
        "symlink /tmp/x/root.l/0 -> /var/lib/dray/snapshots/00000000000000000000000000000000/fs"
    );
    assert_eq!(old.calls[201], "chdir /tmp/x/root.l");
    let mount = &old.calls[202];
    assert!(
        mount.starts_with("mount overlay /tmp/x/root overlay"),
        "{mount}"
    );
    assert!(mount.contains(" lowerdir=0:1:2:3:"), "{mount}");
    assert!(
        mount.len() < crate::overlay::MOUNT_DATA_MAX,
        "{}",
        mount.len()
    );
}

#[test]
fn a_short_chain_uses_absolute_paths_on_old_kernels() {
    let calls = plan(&spec(&["/s/1/fs"], vec![]), &layout());
    let mut old = RecordingSyscall {
        old_kernel: true,
        ..Default::default()
    };
    apply(&calls[1..2], &mut old).unwrap();
    assert_eq!(
        old.calls,
        [
            "mount overlay /tmp/x/root overlay MsFlags(0x0) lowerdir=/s/1/fs,upperdir=/s/9/fs,workdir=/s/9/work,redirect_dir=off,metacopy=off,index=off"
        ]
    );
}

#[test]
fn a_context_bind_with_ignored_paths_stacks_the_whiteout_layer_over_the_context() {
    let calls = plan(
        &spec(
            &["/s/1/fs"],
            vec![Mount {
                dest: "/ctx".into(),
                kind: Kind::Bind {
                    lowers: vec![],
                    local_dir: Some("/ctx".into()),
                    hidden: vec!["secret.key".into()],
                    selector: Some("sub".into()),
                    readonly: true,
                },
            }],
        ),
        &layout(),
    );
    let overlay = position(
        &calls,
        |c| matches!(c, MountCall::Overlay { target, .. } if target == Path::new("/tmp/x/stage/0")),
    );
    assert_eq!(
        calls[overlay],
        MountCall::Overlay {
            target: "/tmp/x/stage/0".into(),
            lowers: vec!["/tmp/x/hide/0".into(), "/ctx".into(), "/tmp/x/empty".into()],
            upper_work: None,
        }
    );
    // The selector applies inside the filtered view, never to the raw context.
    assert!(calls.iter().any(|c| matches!(c,
        MountCall::OpenTree { root, selector, .. }
            if root == Path::new("/tmp/x/stage/0") && selector.as_deref() == Some("sub"))));
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, MountCall::OpenTree { root, .. } if root == Path::new("/ctx")))
    );
}
