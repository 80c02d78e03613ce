//! `dray build --explain-cache`, the compact reason in `--progress plain`, and `cache diff`:
//! why each step missed.

use crate::builds::{build_ids, run};
use crate::harness::{TestDir, text};

/// Builds with `--explain-cache` and returns the `MISS` lines.
fn explain(dir: &TestDir, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--explain-cache"];
    all.extend_from_slice(args);
    let out = dir.build(&all);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("MISS "))
        .map(str::to_owned)
        .collect()
}

fn project(dir: &TestDir) {
    dir.write("ctx/a.txt", "a\n");
    dir.write("ctx/b.txt", "b\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nARG V=1\nCOPY a.txt /a.txt\nCOPY b.txt /opt/$V/b.txt\nENV DEST=/d\nCOPY a.txt $DEST/\n",
    );
}

#[test]
fn the_first_build_has_no_earlier_record() {
    let dir = TestDir::new();
    project(&dir);
    let misses = explain(&dir, &[]);
    assert_eq!(misses.len(), 3, "{misses:?}");
    assert!(
        misses.iter().all(|m| m.ends_with(": no earlier record")),
        "{misses:?}"
    );
    assert!(explain(&dir, &[]).is_empty(), "a rebuild misses nothing");
}

#[test]
fn an_edited_file_is_named() {
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &[]);
    dir.write("ctx/b.txt", "b, edited\n");
    let misses = explain(&dir, &[]);
    assert_eq!(
        misses[0],
        "[2/3] COPY b.txt /opt/1/b.txt (".to_owned()
            + &dir.path().join("ctx/Dockerfile:4").display().to_string()
            + "): context file /b.txt: content changed",
    );
    assert!(
        misses[1].ends_with(
            "input [2/3] COPY b.txt /opt/1/b.txt changed: context file /b.txt: content changed"
        ),
        "a later step names the input that changed: {misses:?}"
    );
}

#[test]
fn a_chmod_only_change_is_a_mode_change() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &[]);
    let path = dir.path().join("ctx/a.txt");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let misses = explain(&dir, &[]);
    assert!(
        misses[0].ends_with("context file /a.txt: mode changed (644 -> 755)"),
        "{misses:?}"
    );
}

#[test]
fn a_changed_arg_is_named_with_both_values() {
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &[]);
    let misses = explain(&dir, &["--build-arg", "V=2"]);
    assert_eq!(misses.len(), 2, "{misses:?}");
    assert!(
        misses[0].ends_with(r#"ARG V changed: "1" -> "2""#),
        "{misses:?}"
    );
}

#[test]
fn a_changed_env_is_named_with_both_values() {
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &[]);
    let dockerfile = dir.path().join("ctx/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(&dockerfile, text.replace("DEST=/d", "DEST=/e")).unwrap();
    let misses = explain(&dir, &[]);
    assert_eq!(misses.len(), 1, "{misses:?}");
    assert!(
        misses[0].ends_with(r#"ENV DEST changed: "/d" -> "/e""#),
        "{misses:?}"
    );
}

#[test]
fn a_changed_instruction_is_shown() {
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &[]);
    let dockerfile = dir.path().join("ctx/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        text.replace("COPY a.txt /a.txt", "COPY --chmod=600 a.txt /a.txt"),
    )
    .unwrap();
    let misses = explain(&dir, &[]);
    assert!(
        misses[0].ends_with(
            "instruction changed: `COPY a.txt /a.txt` -> `COPY --chmod=600 a.txt /a.txt`"
        ),
        "{misses:?}"
    );
}

#[test]
fn a_changed_base_image_digest_is_named() {
    let dir = TestDir::new();
    dir.write(
        "base/Dockerfile",
        "FROM scratch\nCOPY Dockerfile /base-v1\n",
    );
    let base = |dir: &TestDir| {
        let out = dir
            .dray()
            .arg("--root")
            .arg(dir.root())
            .args(["build", "--progress", "quiet", "-t", "base", "base"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0.trim().to_owned()
    };
    base(&dir);
    dir.write("ctx/a.txt", "a\n");
    dir.write("ctx/Dockerfile", "FROM base\nCOPY a.txt /a.txt\n");
    explain(&dir, &[]);
    dir.write(
        "base/Dockerfile",
        "FROM scratch\nCOPY Dockerfile /base-v2\n",
    );
    base(&dir);
    let misses = explain(&dir, &[]);
    assert_eq!(misses.len(), 1, "{misses:?}");
    assert!(
        misses[0].contains("base image digest changed: sha256:")
            && misses[0].contains(" -> sha256:")
            && misses[0].contains("FROM docker.io/library/base:latest"),
        "{misses:?}"
    );
}

#[test]
fn plain_progress_shows_a_compact_reason() {
    let dir = TestDir::new();
    project(&dir);
    assert!(dir.build(&[]).status.success());
    dir.write("ctx/a.txt", "edited\n");
    let out = dir.build(&[]);
    let (_, stderr) = text(&out);
    assert!(
        stderr
            .contains("#cache MISS [1/3] COPY a.txt /a.txt: context file /a.txt: content changed"),
        "{stderr}"
    );
}

#[test]
fn cache_diff_compares_two_builds_step_by_step() {
    let dir = TestDir::new();
    project(&dir);
    assert!(dir.build(&[]).status.success());
    assert!(dir.build(&["--build-arg", "V=9"]).status.success());
    let ids = build_ids(&dir);
    let (out, stderr, code) = run(&dir, &["cache", "diff", &ids[0], &ids[1]]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        out.contains("same") && out.contains("[1/3] COPY a.txt /a.txt"),
        "{out}"
    );
    assert!(out.contains(r#"ARG V changed: "1" -> "9""#), "{out}");
    assert!(out.contains("2 steps differ"), "{out}");
}

#[test]
fn a_changed_source_date_epoch_is_named_with_both_values() {
    let dir = TestDir::new();
    project(&dir);
    explain(&dir, &["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    let misses = explain(&dir, &["--build-arg", "SOURCE_DATE_EPOCH=1700000001"]);
    assert_eq!(misses.len(), 3, "{misses:?}");
    assert!(
        misses[0].ends_with("): SOURCE_DATE_EPOCH changed: 1700000000 -> 1700000001"),
        "{misses:?}"
    );
    assert!(
        misses.iter().all(|m| !m.contains('{')),
        "no raw op JSON: {misses:?}"
    );
    let ids = build_ids(&dir);
    let (out, stderr, code) = run(&dir, &["cache", "diff", &ids[0], &ids[1]]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        out.contains("SOURCE_DATE_EPOCH changed: 1700000000 -> 1700000001"),
        "{out}"
    );
}
