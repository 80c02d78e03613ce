//! First smoke test of the file-op API.

use std::fs;
use std::path::Path;

use dray_fsutil::fileop::{Action, ApplyContext, Copy, apply};
use dray_fsutil::tree::{ChainTree, DirTree};

#[test]
fn copy_file_into_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    let upper = tmp.path().join("upper");
    fs::create_dir_all(ctx.join("src")).unwrap();
    fs::create_dir(&upper).unwrap();
    fs::write(ctx.join("src/a.txt"), "hello").unwrap();
    let src = DirTree::open(&ctx).unwrap();
    let lower = ChainTree::new(Vec::<&Path>::new()).unwrap();
    let action = Action::Copy(Copy {
        src: "/src/a.txt".into(),
        dest: "/app/".into(),
        create_dest_path: true,
        ..Default::default()
    });
    apply(
        &action,
        Some(&src),
        &lower,
        &upper,
        &ApplyContext::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(upper.join("app/a.txt")).unwrap(),
        "hello"
    );
}
