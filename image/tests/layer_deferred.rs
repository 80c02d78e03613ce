//! Deferred copies: the layer written from a snapshot whose copied directories were deferred
//! (filled in from the copy's source while the tar is written) is byte for byte the layer of
//! the same copy done in full, and unpacking it gives the full copy's files.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use dray_fsutil::fileop::{
    Action, ApplyContext, Copy, DeferredDir, Mode, Owner, ReplayLinks, ReplaySink, apply, replay,
};
use dray_fsutil::tree::{ChainTree, DEFERRED_XATTR, DirTree};
use dray_image::apply::{ApplyMode, ApplyOptions, apply_layer};
use dray_image::layer::{DiffSource, LayerOptions, write_layer, write_layer_replaying};

fn write(root: &Path, rel: &str, data: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A context with nested directories, modes (setuid too), symlinks, a hard link pair, a FIFO,
/// an empty directory, an xattr and files to exclude.
fn context(root: &Path) {
    write(root, "src/a.txt", "a\n", 0o644);
    write(root, "src/run.sh", "#!/bin/sh\n", 0o4755);
    write(root, "src/deep/er/x.txt", "x\n", 0o600);
    write(root, "src/deep/skip.log", "log\n", 0o644);
    write(root, "src/logs/only.log", "only\n", 0o644);
    write(root, "src/links/one", "shared\n", 0o644);
    fs::hard_link(root.join("src/links/one"), root.join("src/links/two")).unwrap();
    symlink("../a.txt", root.join("src/deep/to-a")).unwrap();
    symlink("/etc/passwd", root.join("src/deep/abs")).unwrap();
    fs::create_dir_all(root.join("src/empty")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("src/deep/pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    xattr::set(root.join("src/deep"), "user.note", b"kept").unwrap();
    write(root, "top.txt", "top\n", 0o644);
}

fn copy(src: &str, dest: &str) -> Copy {
    Copy {
        src: src.into(),
        dest: dest.into(),
        owner: None,
        mode: None,
        follow_symlinks: false,
        dir_copy_contents: true,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: false,
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
        parents: false,
        always_replace_existing: false,
        timestamp: None,
        attempt_unpack: false,
    }
}

struct Run {
    upper: PathBuf,
    deferred: Vec<DeferredDir>,
}

fn run(tmp: &Path, name: &str, ctx: &Path, lower: &[PathBuf], copies: &[Copy], defer: bool) -> Run {
    let upper = tmp.join(name);
    fs::create_dir(&upper).unwrap();
    let src = DirTree::open(ctx).unwrap();
    let lower = ChainTree::new(lower.iter().rev()).unwrap();
    let mut deferred = Vec::new();
    for c in copies {
        let ctx = ApplyContext::default().with_defer_copies(defer);
        deferred.extend(apply(&Action::Copy(c.clone()), Some(&src), &lower, &upper, &ctx).unwrap());
    }
    Run { upper, deferred }
}

fn layer_of(run: &Run, ctx: &Path, epoch: Option<i64>) -> (Vec<u8>, dray_image::LayerInfo) {
    let opts = LayerOptions::new(DiffSource::OverlayUpper).with_source_date_epoch(epoch);
    let mut out = Vec::new();
    let info = if run.deferred.is_empty() {
        write_layer(&run.upper, &opts, &mut out).unwrap()
    } else {
        let src = DirTree::open(ctx).unwrap();
        let mut links = ReplayLinks::default();
        let mut replayer = |rel: &Path, sink: &mut dyn ReplaySink| {
            let dir = run
                .deferred
                .iter()
                .find(|d| d.target() == rel)
                .unwrap_or_else(|| panic!("no deferred record for {}", rel.display()));
            replay(dir, &src, &mut links, sink)
        };
        write_layer_replaying(&run.upper, &opts, &mut out, &mut replayer).unwrap()
    };
    (out, info)
}

fn check_same(copies: &[Copy], with_lower: bool, epoch: Option<i64>) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let mut lower = Vec::new();
    if with_lower {
        let l = tmp.path().join("lower");
        write(&l, "app/old.txt", "old\n", 0o644);
        fs::set_permissions(l.join("app"), fs::Permissions::from_mode(0o750)).unwrap();
        lower.push(l);
    }
    let full = run(tmp.path(), "full", &ctx, &lower, copies, false);
    let lazy = run(tmp.path(), "lazy", &ctx, &lower, copies, true);
    assert!(full.deferred.is_empty());
    assert!(!lazy.deferred.is_empty(), "nothing was deferred");
    // The deferred directories are marked and empty on disk.
    for d in &lazy.deferred {
        let on_disk = lazy.upper.join(d.target());
        assert!(xattr::get(&on_disk, DEFERRED_XATTR).unwrap().is_some());
        assert_eq!(fs::read_dir(&on_disk).unwrap().count(), 0);
    }
    let (full_bytes, full_info) = layer_of(&full, &ctx, epoch);
    let (lazy_bytes, lazy_info) = layer_of(&lazy, &ctx, epoch);
    assert_eq!(full_info, lazy_info);
    assert!(full_bytes == lazy_bytes, "the layers differ");

    // Unpacking the deferred layer gives what the full copy wrote.
    let unpacked = tmp.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    apply_layer(
        &lazy_bytes[..],
        &unpacked,
        "lazy",
        &ApplyOptions::new(ApplyMode::OverlayDiff),
    )
    .unwrap();
    let (_, again) = layer_of(
        &Run {
            upper: unpacked,
            deferred: Vec::new(),
        },
        &ctx,
        epoch,
    );
    assert_eq!(again.diff_id, full_info.diff_id);
}

#[test]
fn a_deferred_copy_gives_the_layer_of_the_full_copy() {
    check_same(&[copy("src/", "/app/src/")], false, None);
}

#[test]
fn over_a_lower_layer_with_chmod_chown_timestamp_and_excludes() {
    let mut c = copy("src", "/app/");
    c.dir_copy_contents = false;
    c.mode = Some(Mode::Octal(0o751));
    c.owner = Some(Owner { uid: 1234, gid: 99 });
    c.timestamp = Some(1_700_000_000);
    c.exclude_patterns = vec!["**/*.log".into(), "!logs/only.log".into()];
    check_same(&[c, copy("top.txt", "/app/")], true, Some(1_600_000_000));
}

#[test]
fn include_patterns_create_directories_only_above_what_they_take() {
    let mut c = copy("src/", "/dst/");
    c.include_patterns = vec!["deep/er".into(), "logs".into()];
    check_same(&[c], false, None);
}

#[test]
fn a_hard_link_outside_the_deferred_directories_asks_to_redo_without_deferring() {
    // `links/two` is taken on its own (its directory is only descended into), so its other
    // name could be anywhere: the copy gives up deferring.
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let mut c = copy("src/", "/dst/");
    c.include_patterns = vec!["links/two".into()];
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    let src = DirTree::open(&ctx).unwrap();
    let lower = ChainTree::new(Vec::<PathBuf>::new()).unwrap();
    let err = apply(
        &Action::Copy(c),
        Some(&src),
        &lower,
        &upper,
        &ApplyContext::default().with_defer_copies(true),
    )
    .unwrap_err();
    assert!(
        matches!(err, dray_fsutil::Error::Deferred { .. }),
        "{err:?}"
    );
}

#[test]
fn a_lookup_inside_a_deferred_directory_asks_to_redo_without_deferring() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let lazy = run(
        tmp.path(),
        "lazy",
        &ctx,
        &[],
        &[copy("src/", "/app/")],
        true,
    );
    assert!(!lazy.deferred.is_empty());
    // A second copy into a deferred directory has to look inside it.
    let src = DirTree::open(&ctx).unwrap();
    let lower = ChainTree::new(Vec::<PathBuf>::new()).unwrap();
    let err = apply(
        &Action::Copy(copy("top.txt", "/app/deep/")),
        Some(&src),
        &lower,
        &lazy.upper,
        &ApplyContext::default().with_defer_copies(true),
    )
    .unwrap_err();
    assert!(
        matches!(err, dray_fsutil::Error::Deferred { ref path } if path == Path::new("/app/deep")),
        "{err:?}"
    );
    // Without a replay function, the layer writer refuses the partial snapshot.
    let err = write_layer(
        &lazy.upper,
        &LayerOptions::new(DiffSource::OverlayUpper),
        std::io::sink(),
    )
    .unwrap_err();
    assert!(
        matches!(err, dray_image::Error::NotMaterialized { .. }),
        "{err:?}"
    );
}
