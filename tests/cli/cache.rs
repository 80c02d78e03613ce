//! `dray cache ls|du|inspect|prune|verify` and the automatic GC after builds.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::builds::{json, run};
use crate::harness::{TestDir, text};

fn build_ok(dir: &TestDir, args: &[&str]) {
    let out = dir.build(args);
    assert!(out.status.success(), "{}", text(&out).1);
}

fn ls(dir: &TestDir, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["cache", "ls", "--format", "json"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    json(dir, &args).as_array().unwrap().clone()
}

fn records(dir: &TestDir) -> Vec<Value> {
    ls(dir, &[])
        .into_iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("file" | "merge" | "exec" | "source.image")
            )
        })
        .collect()
}

fn verify_clean(dir: &TestDir) {
    let (out, stderr, code) = run(dir, &["cache", "verify"]);
    assert_eq!(code, Some(0), "verify failed:\n{out}\n{stderr}");
    assert!(out.contains("no problems found"), "{out}");
}

/// A two-step project whose content differs per `n` (so each variant has its own records).
fn variant(dir: &TestDir, n: usize, bytes: usize) {
    dir.write("ctx/big.bin", vec![b'0' + (n % 10) as u8; bytes]);
    dir.write(
        "ctx/Dockerfile",
        format!("FROM scratch\nCOPY big.bin /big-{n}.bin\nWORKDIR /w{n}\n"),
    );
}

#[test]
fn ls_shows_kind_location_size_usage_and_images() {
    let dir = TestDir::new();
    dir.write("ctx/a.txt", "hello\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch AS build\nCOPY a.txt /a.txt\nFROM build\nCOPY a.txt /b.txt\n",
    );
    build_ok(&dir, &["-t", "app"]);
    build_ok(&dir, &["-t", "app"]);
    let entries = ls(&dir, &[]);
    let copy = entries
        .iter()
        .find(|e| e["instruction"] == "[build 1/1] COPY a.txt /a.txt")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(copy["kind"], "file");
    assert!(
        copy["location"].as_str().unwrap().ends_with("Dockerfile:2"),
        "{copy}"
    );
    assert_eq!(copy["stage"], "build");
    assert_eq!(copy["size"], 6);
    assert_eq!(copy["usage_count"], 2, "two builds used it");
    assert_eq!(copy["in_use"], false);
    assert_eq!(copy["images"][0], "docker.io/library/app:latest");
    let layer = entries
        .iter()
        .find(|e| e["kind"] == "layer")
        .expect("a layer row");
    assert_eq!(layer["images"][0], "docker.io/library/app:latest");
    assert_eq!(ls(&dir, &["type=layer"]).len(), 2);
    assert!(ls(&dir, &["type=exec"]).is_empty());
    let (table, _, code) = run(&dir, &["cache", "ls"]);
    assert_eq!(code, Some(0));
    assert!(
        table.contains("Dockerfile:2") && table.contains("file"),
        "{table}"
    );
}

#[test]
fn du_agrees_with_du_sb() {
    let dir = TestDir::new();
    for d in 0..20 {
        for f in 0..30 {
            dir.write(
                &format!("ctx/src/d{d}/f{f}.txt"),
                format!("file {d}/{f}\n").repeat(f + 1),
            );
        }
    }
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY src/ /src/\nCOPY src/d1 /one/\n",
    );
    build_ok(&dir, &["-t", "app"]);
    variant(&dir, 1, 5000);
    build_ok(&dir, &[]);
    let usage = json(&dir, &["cache", "du", "--format", "json"]);
    let total = usage["total"].as_u64().unwrap();
    let du = Command::new("du")
        .arg("-sb")
        .arg(dir.root())
        .output()
        .unwrap();
    let du: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let diff = total.abs_diff(du) as f64 / du as f64;
    assert!(diff < 0.01, "dray cache du says {total}, du -sb says {du}");
    let (rec, inuse) = (
        usage["reclaimable"].as_u64().unwrap(),
        usage["in_use"].as_u64().unwrap(),
    );
    assert_eq!(rec + inuse, total);
    assert!(rec > 0 && inuse > 0, "{usage}");
    let (text_out, _, _) = run(&dir, &["cache", "du", "--verbose"]);
    assert!(
        text_out.contains("Reclaimable:") && text_out.contains("snapshots:"),
        "{text_out}"
    );
}

#[test]
fn inspect_shows_preimage_inputs_layer_and_why_it_is_kept() {
    let dir = TestDir::new();
    dir.write("ctx/a.txt", "a\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY a.txt /a.txt\nCOPY a.txt /b.txt\n",
    );
    build_ok(&dir, &["-t", "app"]);
    let second = records(&dir)
        .into_iter()
        .find(|e| e["instruction"] == "[2/2] COPY a.txt /b.txt")
        .unwrap();
    let key = second["id"].as_str().unwrap();
    let (out, stderr, code) = run(&dir, &["cache", "inspect", &key[7..19]]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.contains(&format!("key:        {key}")), "{out}");
    assert!(
        out.contains("input 0:  key sha256:") && out.contains("-> [1/2] COPY a.txt /a.txt"),
        "{out}"
    );
    assert!(
        out.contains("input 1:  content sha256:") && out.contains("of /a.txt"),
        "{out}"
    );
    assert!(
        out.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{out}"
    );
    assert!(
        out.contains("referenced by image docker.io/library/app:latest"),
        "{out}"
    );
    assert!(out.contains("within the keep policy"), "{out}");
    let (_, stderr, code) = run(&dir, &["cache", "inspect", "deadbeef"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no cache record with key deadbeef"),
        "{stderr}"
    );
    let (_, stderr, code) = run(&dir, &["cache", "inspect", "xyz"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("invalid cache key"), "{stderr}");
}

#[test]
fn prune_never_removes_tagged_images_unless_all() {
    let dir = TestDir::new();
    variant(&dir, 1, 100);
    build_ok(&dir, &["-t", "kept"]);
    variant(&dir, 2, 100);
    build_ok(&dir, &[]);
    let before = records(&dir).len();
    let (out, stderr, code) = run(&dir, &["cache", "prune", "--force"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.contains("Removed 2 records"), "{out}");
    let left = records(&dir);
    assert_eq!(left.len(), before - 2);
    assert!(
        left.iter()
            .all(|e| e["images"][0] == "docker.io/library/kept:latest"),
        "{left:?}"
    );
    verify_clean(&dir);
    // --all removes the image's records too; the image itself stays whole.
    let (out, _, code) = run(&dir, &["cache", "prune", "--all", "--force"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Removed 2 records"), "{out}");
    assert!(records(&dir).is_empty());
    let (_, stderr, code) = run(&dir, &["inspect", "kept"]);
    assert_eq!(code, Some(0), "{stderr}");
    verify_clean(&dir);
}

#[test]
fn prune_by_type_keeps_other_kinds() {
    let dir = TestDir::new();
    dir.write("ctx/a.txt", "a\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY a.txt /a\nCOPY --link a.txt /b\n",
    );
    build_ok(&dir, &[]);
    let kinds = |dir: &TestDir| {
        let mut k: Vec<String> = records(dir)
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    assert!(
        kinds(&dir).contains(&"merge".to_owned()),
        "{:?}",
        kinds(&dir)
    );
    let (_, stderr, code) = run(&dir, &["cache", "prune", "-f", "--filter", "type=merge"]);
    assert_eq!(code, Some(0), "{stderr}");
    let left = kinds(&dir);
    assert!(
        !left.contains(&"merge".to_owned()) && left.contains(&"file".to_owned()),
        "{left:?}"
    );
    let (_, stderr, code) = run(&dir, &["cache", "prune", "-f", "--filter", "type=bogus"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("unknown type \"bogus\""), "{stderr}");
    verify_clean(&dir);
}

#[test]
fn prune_by_age_removes_only_old_records() {
    let dir = TestDir::new();
    variant(&dir, 1, 100);
    build_ok(&dir, &[]);
    std::thread::sleep(Duration::from_secs(3));
    variant(&dir, 2, 100);
    build_ok(&dir, &[]);
    let names = |dir: &TestDir| -> Vec<String> {
        records(dir)
            .iter()
            .map(|e| e["instruction"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&dir).len(), 4);
    let (_, _, code) = run(&dir, &["cache", "prune", "-f", "--filter", "until=2s"]);
    assert_eq!(code, Some(0));
    let left = names(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|n| n.contains("big-2") || n.contains("/w2")),
        "{left:?}"
    );
    let (_, _, code) = run(&dir, &["cache", "prune", "-f", "--keep-duration", "1h"]);
    assert_eq!(code, Some(0));
    assert_eq!(names(&dir).len(), 2, "nothing is older than an hour");
    verify_clean(&dir);
}

#[test]
fn prune_by_size_removes_least_recently_used_first() {
    let dir = TestDir::new();
    for n in 1..=3 {
        variant(&dir, n, 100_000);
        build_ok(&dir, &[]);
    }
    // Keep room for about one and a half variants: the two oldest go.
    let (out, stderr, code) = run(&dir, &["cache", "prune", "-f", "--keep-storage", "150kB"]);
    assert_eq!(code, Some(0), "{stderr}");
    let left: Vec<String> = records(&dir)
        .iter()
        .map(|e| e["instruction"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        left.iter().any(|n| n.contains("big-3")),
        "the newest stays: {left:?} {out}"
    );
    assert!(
        !left
            .iter()
            .any(|n| n.contains("big-1") || n.contains("big-2")),
        "{left:?} {out}"
    );
    let (_, stderr, code) = run(&dir, &["cache", "prune", "-f", "--keep-storage", "lots"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("invalid --keep-storage"), "{stderr}");
    verify_clean(&dir);
}

#[test]
fn verify_reports_a_corrupt_blob_and_repair_removes_it() {
    let dir = TestDir::new();
    variant(&dir, 1, 1000);
    build_ok(&dir, &["-t", "app"]);
    verify_clean(&dir);
    let (_, manifest) = crate::store::manifest(&dir.root(), "docker.io/library/app:latest");
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let path = crate::store::blob_path(&dir.root(), &layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let (out, _, code) = run(&dir, &["cache", "verify"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&format!("PROBLEM: blob {layer}: its content hashes to")),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM: image docker.io/library/app:latest"),
        "{out}"
    );
    assert!(path.exists(), "verify alone changes nothing");
    let (out, stderr, code) = run(&dir, &["cache", "verify", "--repair"]);
    assert_eq!(code, Some(0), "{out}{stderr}");
    assert!(out.contains("no problems left"), "{out}");
    assert!(!path.exists());
    verify_clean(&dir);
}

#[test]
fn a_prune_during_a_build_never_removes_what_the_build_uses() {
    let dir = TestDir::new();
    for d in 0..30 {
        for f in 0..100 {
            dir.write(&format!("ctx/src/d{d}/f{f}.txt"), format!("{d}/{f}\n"));
        }
    }
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY src/ /src/\nCOPY src/d3 /three/\n",
    );
    for round in 0..3 {
        dir.write("ctx/src/d0/f0.txt", format!("round {round}\n"));
        let build = Command::new(env!("CARGO_BIN_EXE_dray"))
            .current_dir(dir.path())
            .arg("--root")
            .arg(dir.root())
            .args(["build", "--progress", "plain", "-t", "app", "ctx"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + 100 * round));
        let (out, stderr, code) = run(&dir, &["cache", "prune", "--all", "--force"]);
        assert_eq!(code, Some(0), "{out}{stderr}");
        let built = build.wait_with_output().unwrap();
        assert!(built.status.success(), "{}", text(&built).1);
        let files = crate::store::files(&dir.root(), "docker.io/library/app:latest");
        assert_eq!(
            files["src/d0/f0.txt"].data,
            format!("round {round}\n").as_bytes()
        );
        assert_eq!(
            files
                .keys()
                .filter(|p| p.starts_with("src/d") && p.ends_with(".txt"))
                .count(),
            3000
        );
        verify_clean(&dir);
    }
}

#[test]
fn a_prune_killed_at_any_point_leaves_a_store_that_verifies() {
    let dir = TestDir::new();
    let mut dockerfile = String::from("FROM scratch\n");
    for i in 0..40 {
        dir.write(&format!("ctx/f{i}.txt"), format!("{i}\n").repeat(200));
        dockerfile.push_str(&format!("COPY f{i}.txt /f{i}.txt\n"));
    }
    dir.write("ctx/Dockerfile", dockerfile);
    let dray = env!("CARGO_BIN_EXE_dray");
    let mut interrupted = 0;
    for delay_ms in [5u64, 20, 40, 80, 150] {
        for _ in 0..2 {
            build_ok(&dir, &["--no-cache"]);
        }
        let before = ls(&dir, &[]).len();
        let mut prune = Command::new(dray)
            .arg("--root")
            .arg(dir.root())
            .args(["cache", "prune", "--all", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        prune.kill().unwrap(); // SIGKILL
        prune.wait().unwrap();
        verify_clean(&dir);
        let after = ls(&dir, &[]).len();
        if after > 0 && after < before {
            interrupted += 1;
        }
        // The store still builds and prunes afterwards.
        build_ok(&dir, &[]);
    }
    // The kills must land mid-prune (some rows gone, some left) for this to prove anything;
    // a prune of 80 records takes about a second, so most of them do.
    assert!(interrupted > 0, "no kill interrupted a prune");
    let (_, _, code) = run(&dir, &["cache", "prune", "--all", "--force"]);
    assert_eq!(code, Some(0));
    verify_clean(&dir);
}

#[test]
fn automatic_gc_follows_the_policy_in_dray_toml_and_the_environment() {
    let dir = TestDir::new();
    variant(&dir, 1, 100);
    build_ok(&dir, &[]);
    variant(&dir, 2, 100);
    // Off in dray.toml: nothing is collected even with a tiny limit in the file.
    std::fs::write(
        dir.root().join("dray.toml"),
        "[gc]\nenabled = false\nkeep-storage = \"1\"\n",
    )
    .unwrap();
    build_ok(&dir, &[]);
    assert_eq!(records(&dir).len(), 4);
    // The environment turns it on: everything unreferenced goes, the tagged build stays.
    let out = dir
        .dray()
        .arg("--root")
        .arg(dir.root())
        .args(["build", "--progress", "plain", "-t", "app", "ctx"])
        // As `TestDir::build` sets it: the epoch stamps copied files, so it is in the keys.
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("DRAY_GC", "1")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("gc: removed 2 cache records"), "{stderr}");
    let left = records(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|e| e["images"][0] == "docker.io/library/app:latest")
    );
    std::fs::write(
        dir.root().join("dray.toml"),
        "[gc]\nkeep-storage = \"lots\"\n",
    )
    .unwrap();
    let out = dir.build(&[]);
    assert!(out.status.success(), "a bad GC setting never fails a build");
    assert!(
        text(&out).1.contains("invalid keep-storage \"lots\""),
        "{}",
        text(&out).1
    );
    verify_clean(&dir);
}

#[test]
fn prune_by_dockerfile_removes_only_that_dockerfiles_records() {
    let dir = TestDir::new();
    dir.write("ctx/a.txt", "a\n");
    dir.write("ctx/Dockerfile", "FROM scratch\nCOPY a.txt /main\n");
    dir.write("ctx/other.Dockerfile", "FROM scratch\nCOPY a.txt /other\n");
    build_ok(&dir, &[]);
    build_ok(&dir, &["-f", "ctx/other.Dockerfile"]);
    let (_, stderr, code) = run(
        &dir,
        &[
            "cache",
            "prune",
            "-f",
            "--filter",
            "dockerfile=other.Dockerfile",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let left: Vec<String> = records(&dir)
        .iter()
        .map(|e| e["instruction"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["[1/1] COPY a.txt /main"]);
    verify_clean(&dir);
}
