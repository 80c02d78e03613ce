//! `dray builds ls|show|logs`: every build leaves a record with its steps.

use serde_json::Value;

use crate::harness::{TestDir, text};

/// `dray --root ROOT ARGS…` → (stdout, stderr, exit code).
pub(crate) fn run(dir: &TestDir, args: &[&str]) -> (String, String, Option<i32>) {
    let out = dir
        .dray()
        .arg("--root")
        .arg(dir.root())
        .args(args)
        .output()
        .expect("run dray");
    let (stdout, stderr) = text(&out);
    (stdout, stderr, out.status.code())
}

pub(crate) fn json(dir: &TestDir, args: &[&str]) -> Value {
    let (stdout, stderr, code) = run(dir, args);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// The IDs of every recorded build, oldest first.
pub(crate) fn build_ids(dir: &TestDir) -> Vec<String> {
    json(dir, &["builds", "ls", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_build_is_recorded_with_keys_hits_and_logs() {
    let dir = TestDir::new();
    dir.write("ctx/a.txt", "a\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nARG V=1\nCOPY a.txt /a/$V\n",
    );
    for _ in 0..2 {
        let out = dir.build(&["--build-arg", "V=2", "-t", "app"]);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let ids = build_ids(&dir);
    assert_eq!(ids.len(), 2);
    let first = json(&dir, &["builds", "show", &ids[0], "--format", "json"]);
    let second = json(&dir, &["builds", "show", &ids[1][..6], "--format", "json"]);
    assert_eq!(first["status"], "ok");
    assert_eq!(first["args"]["V"], "2", "build args are recorded: {first}");
    assert!(
        first["dockerfile"]
            .as_str()
            .unwrap()
            .ends_with("ctx/Dockerfile")
    );
    assert_eq!(first["tags"][0], "app");
    let copy = |b: &Value| {
        b["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "[1/1] COPY a.txt /a/2")
            .unwrap_or_else(|| panic!("no COPY step in {b}"))
            .clone()
    };
    let (a, b) = (copy(&first), copy(&second));
    assert_eq!(a["status"], "MISS");
    assert_eq!(b["status"], "HIT");
    assert_eq!(a["key"], b["key"], "the same step has the same key");
    assert!(a["key"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(a["kind"], "file");
    assert!(
        a["location"].as_str().unwrap().ends_with("Dockerfile:3"),
        "{a}"
    );
    assert_eq!(a["reason"], "no earlier record");
    assert!(b["reason"].is_null());
    assert_eq!(second["image"], first["image"]);

    let (text_out, _, code) = run(&dir, &["builds", "show", &ids[1]]);
    assert_eq!(code, Some(0));
    assert!(
        text_out.contains("HIT") && text_out.contains("build-arg:  V=2"),
        "{text_out}"
    );
    let (logs, _, code) = run(&dir, &["builds", "logs", &ids[1], "1"]);
    assert_eq!(code, Some(0));
    assert!(
        logs.contains("COPY a.txt /a/2") && logs.contains("CACHED"),
        "{logs}"
    );
    let (ls, _, _) = run(&dir, &["builds", "ls"]);
    assert!(ls.contains(&ids[0]) && ls.contains(&ids[1]), "{ls}");
}

#[test]
fn a_failed_build_is_recorded_with_its_error() {
    let dir = TestDir::new();
    dir.write("ctx/Dockerfile", "FROM scratch\nCOPY missing.txt /\n");
    let out = dir.build(&[]);
    assert!(!out.status.success());
    let ids = build_ids(&dir);
    assert_eq!(ids.len(), 1);
    let b = json(&dir, &["builds", "show", &ids[0], "--format", "json"]);
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("missing.txt"), "{b}");
    assert_eq!(b["steps"][0]["status"], "FAILED", "{b}");
    let (logs, _, _) = run(&dir, &["builds", "logs", &ids[0]]);
    assert!(
        logs.contains("not found"),
        "the error is in the step's log: {logs}"
    );
}

#[test]
fn unknown_build_ids_are_clear_errors() {
    let dir = TestDir::new();
    dir.write("ctx/Dockerfile", "FROM scratch\n");
    assert!(dir.build(&[]).status.success());
    for bad in ["ffffffffffff", "not-hex"] {
        let (_, stderr, code) = run(&dir, &["builds", "show", bad]);
        assert_eq!(code, Some(1));
        assert!(
            stderr.contains(&format!("no build record \"{bad}\"")),
            "{stderr}"
        );
    }
    let (_, stderr, code) = run(&dir, &["cache", "diff", "ffff", "eeee"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no build record"), "{stderr}");
}
