//! `dray build` end to end: real store, real file operations, images read back from the blobs.

use std::collections::BTreeSet;

use serde_json::json;

use crate::harness::{TestDir, text};
use crate::store;

/// The multi-stage example: users from a passwd file, ARG/ENV expansion, WORKDIR, COPY with
/// `--chown` by name, `--chmod`, `--exclude`, `--parents`, and `COPY --from --link`.
fn multi_stage(dir: &TestDir) {
    dir.write(
        "ctx/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    dir.write("ctx/group", "root:x:0:\nstaff:x:50:app\napp:x:1000:\n");
    dir.write("ctx/app.conf", "listen=8080\n");
    dir.write("ctx/data/keep.txt", "keep\n");
    dir.write("ctx/data/skip.tmp", "skip\n");
    dir.write("ctx/lib/a/one.txt", "one\n");
    dir.write("ctx/unused.txt", "not copied\n");
    dir.write("ctx/ignored.log", "excluded by .dockerignore\n");
    dir.write("ctx/.dockerignore", "*.log\n");
    dir.write(
        "ctx/Dockerfile",
        r#"ARG DIR=/srv
FROM scratch AS users
COPY passwd group /etc/

FROM users AS build
ARG DIR
ARG VERSION=1.0
ENV APP_HOME=${DIR}/app-${VERSION}
WORKDIR $APP_HOME
COPY --chown=app:staff --chmod=0640 app.conf ./
COPY --exclude=*.tmp data/ ./data/
COPY --parents lib/a/one.txt ./

FROM users
COPY --from=build --link /srv /srv
ENV PATH=/usr/bin
USER app
EXPOSE 8080/tcp 53/udp
VOLUME /data
LABEL version=2
STOPSIGNAL SIGTERM
ENTRYPOINT ["/srv/app"]
CMD ["--help"]
"#,
    );
}

/// `#N NAME` lines that were followed by `#N DONE` (the steps that ran).
fn ran(stderr: &str) -> BTreeSet<String> {
    steps_with(stderr, "DONE")
}

fn cached(stderr: &str) -> BTreeSet<String> {
    steps_with(stderr, "CACHED")
}

fn steps_with(stderr: &str, status: &str) -> BTreeSet<String> {
    let mut names = std::collections::HashMap::new();
    let mut out = BTreeSet::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((number, what)) = rest.split_once(' ') else {
            continue;
        };
        if what == status || what.starts_with(&format!("{status} ")) {
            if let Some(name) = names.get(number) {
                out.insert(String::clone(name));
            }
        } else if what.starts_with('[') {
            names
                .entry(number.to_owned())
                .or_insert_with(|| what.to_owned());
        }
    }
    out
}

#[test]
fn multi_stage_config_and_history_match_buildkit() {
    let dir = TestDir::new();
    multi_stage(&dir);
    let output = dir.build(&["-t", "app"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let config = store::config(&dir.root(), "docker.io/library/app:latest");
    assert_eq!(
        stdout.trim(),
        store::manifest(&dir.root(), "docker.io/library/app:latest").1["config"]["digest"]
    );

    // Written by hand from the Dockerfile reference and BuildKit's dispatch rules: a scratch
    // stage starts with the default PATH and WorkingDir "/"; CMD and ENTRYPOINT set
    // ArgsEscaped (for the Docker image spec); history messages are `commitToHistory`'s, with
    // " # buildkit" on the steps that add a layer; EXPOSE lists ports in source order.
    let created = "2023-11-14T22:13:20Z";
    let step = |created_by: &str, empty: bool| {
        let mut entry = json!({"created": created, "created_by": created_by, "comment": "buildkit.dockerfile.v0"});
        if empty {
            entry["empty_layer"] = json!(true);
        }
        entry
    };
    let expected = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "app",
            "ExposedPorts": {"53/udp": {}, "8080/tcp": {}},
            "Env": ["PATH=/usr/bin"],
            "Entrypoint": ["/srv/app"],
            "Cmd": ["--help"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/",
            "Labels": {"version": "2"},
            "StopSignal": "SIGTERM",
            "ArgsEscaped": true
        },
        "history": [
            step("COPY passwd group /etc/ # buildkit", false),
            step("COPY /srv /srv # buildkit", false),
            step("ENV PATH=/usr/bin", true),
            step("USER app", true),
            step("EXPOSE [8080/tcp 53/udp]", true),
            step("VOLUME [/data]", true),
            step("LABEL version=2", true),
            step("STOPSIGNAL SIGTERM", true),
            step("ENTRYPOINT [\"/srv/app\"]", true),
            step("CMD [\"--help\"]", true),
        ]
    });
    let mut actual = config.clone();
    let diff_ids = actual.as_object_mut().unwrap().remove("rootfs").unwrap();
    assert_eq!(
        actual,
        expected,
        "config:\n{}",
        serde_json::to_string_pretty(&config).unwrap()
    );
    assert_eq!(
        diff_ids["diff_ids"].as_array().unwrap().len(),
        2,
        "users' layer + the linked copy"
    );

    let files = store::files(&dir.root(), "docker.io/library/app:latest");
    let conf = &files["srv/app-1.0/app.conf"];
    assert_eq!(
        (conf.mode, conf.uid, conf.gid),
        (0o640, 1000, 50),
        "--chown=app:staff --chmod=0640"
    );
    assert_eq!(conf.data, b"listen=8080\n");
    assert!(files.contains_key("srv/app-1.0/data/keep.txt"));
    assert!(
        !files.contains_key("srv/app-1.0/data/skip.tmp"),
        "--exclude=*.tmp"
    );
    assert_eq!(
        files["srv/app-1.0/lib/a/one.txt"].data, b"one\n",
        "--parents keeps lib/a"
    );
    assert!(files.contains_key("etc/passwd") && files.contains_key("etc/group"));
    assert!(
        !files
            .keys()
            .any(|p| p.contains("unused") || p.contains("ignored")),
        "{files:?}"
    );
}

#[test]
fn rebuild_is_all_cached_and_edits_rerun_only_what_depends_on_them() {
    let dir = TestDir::new();
    multi_stage(&dir);
    let first = dir.build(&["-t", "app"]);
    assert!(first.status.success(), "{}", text(&first).1);
    let first_ran = ran(&text(&first).1);
    assert!(
        first_ran.len() >= 6,
        "every file step runs on a cold build: {first_ran:?}"
    );

    let again = dir.build(&["-t", "app"]);
    let (stdout, stderr) = text(&again);
    assert!(again.status.success(), "{stderr}");
    assert!(
        ran(&stderr).is_empty(),
        "nothing may run on a no-op rebuild:\n{stderr}"
    );
    assert_eq!(
        cached(&stderr),
        first_ran,
        "every step is reported CACHED:\n{stderr}"
    );
    assert_eq!(stdout, text(&first).0, "same image ID");

    // A file excluded by .dockerignore, and one no COPY reads: nothing reruns.
    dir.write("ctx/ignored.log", "changed\n");
    let excluded = dir.build(&["-t", "app"]);
    assert!(ran(&text(&excluded).1).is_empty(), "{}", text(&excluded).1);

    // One copied file: its COPY reruns, and what consumes the stage after it.
    dir.write("ctx/data/keep.txt", "keep, edited\n");
    let edited = dir.build(&["-t", "app"]);
    let (_, stderr) = text(&edited);
    let reran = ran(&stderr);
    assert!(
        reran
            .iter()
            .any(|s| s.contains("COPY --exclude=*.tmp data/")),
        "{stderr}"
    );
    assert!(
        reran.iter().any(|s| s.contains("COPY --from=build")),
        "{stderr}"
    );
    assert!(
        !reran.iter().any(|s| s.contains("COPY passwd group")),
        "{stderr}"
    );
    assert!(!reran.iter().any(|s| s.contains("app.conf")), "{stderr}");
    let files = store::files(&dir.root(), "docker.io/library/app:latest");
    assert_eq!(files["srv/app-1.0/data/keep.txt"].data, b"keep, edited\n");

    // A mode change is an edit; a touch (mtime only) is not.
    let conf = dir.path().join("ctx/app.conf");
    let touched = std::fs::File::options().write(true).open(&conf).unwrap();
    touched
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let touch = dir.build(&["-t", "app"]);
    assert!(
        ran(&text(&touch).1).is_empty(),
        "mtime is not part of a content hash:\n{}",
        text(&touch).1
    );

    // --no-cache runs every step again.
    let no_cache = dir.build(&["-t", "app", "--no-cache"]);
    assert!(no_cache.status.success());
    assert_eq!(ran(&text(&no_cache).1), first_ran, "{}", text(&no_cache).1);
}

#[test]
fn source_date_epoch_gives_the_same_image_in_two_fresh_roots() {
    let one = TestDir::new();
    let two = TestDir::new();
    for dir in [&one, &two] {
        multi_stage(dir);
        let output = dir.build(&["-t", "app", "--metadata-file", "meta.json"]);
        assert!(output.status.success(), "{}", text(&output).1);
    }
    let meta = |dir: &TestDir| store::read_json(&dir.path().join("meta.json"));
    assert_eq!(
        meta(&one)["containerimage.digest"],
        meta(&two)["containerimage.digest"]
    );
    assert_eq!(
        meta(&one)["containerimage.config.digest"],
        meta(&two)["containerimage.config.digest"]
    );
    assert_eq!(meta(&one)["image.name"], "docker.io/library/app:latest");
}

#[test]
fn copy_of_a_symlink_out_of_the_context_never_reads_the_host_file() {
    let dir = TestDir::new();
    let secret = "host secret 7f3a9c";
    let outside = dir.write("outside/secret.txt", secret);
    dir.write("ctx/keep.txt", "ok");
    std::os::unix::fs::symlink("../outside/secret.txt", dir.path().join("ctx/relative")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.path().join("ctx/absolute")).unwrap();
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY relative /r\nCOPY absolute /a\nCOPY keep.txt /k\n",
    );
    let output = dir.build(&["-t", "links"]);
    if output.status.success() {
        let files = store::files(&dir.root(), "docker.io/library/links:latest");
        for (path, entry) in &files {
            assert!(
                !String::from_utf8_lossy(&entry.data).contains(secret),
                "{path} carries the host file's content"
            );
        }
    }
    // Whatever the outcome, no blob in the store may hold the secret.
    for blob in std::fs::read_dir(dir.root().join("blobs/sha256")).unwrap() {
        let path = blob.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let plain = match flate2::read::GzDecoder::new(&bytes[..]) {
            mut gz if gz.header().is_some() => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut gz, &mut out).unwrap();
                out
            }
            _ => bytes,
        };
        assert!(
            !String::from_utf8_lossy(&plain).contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
}

#[test]
fn missing_copy_source_names_the_path_and_the_dockerfile_line() {
    let dir = TestDir::new();
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nWORKDIR /app\nCOPY missing.txt ./\n",
    );
    let output = dir.build(&[]);
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("Dockerfile:3:1"), "{stderr}");
    assert!(stderr.contains("missing.txt"), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn unknown_copy_from_stage_index_is_a_dockerfile_error() {
    let dir = TestDir::new();
    dir.write("ctx/Dockerfile", "FROM scratch\nCOPY --from=3 /a /b\n");
    let output = dir.build(&[]);
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("Dockerfile:2:"), "{stderr}");
}

#[test]
fn unreadable_dockerfile_names_the_path() {
    let dir = TestDir::new();
    dir.write("ctx/keep.txt", "x");
    let output = dir.build(&["-f", "nowhere/Dockerfile"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).1.contains("nowhere/Dockerfile"),
        "{}",
        text(&output).1
    );
}

#[test]
fn two_builds_on_one_root_at_once_both_succeed() {
    let dir = TestDir::new();
    multi_stage(&dir);
    let spawn = |tag: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("dray"))
            .current_dir(dir.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("--root")
            .arg(dir.root())
            .args(["build", "--progress", "quiet", "-t", tag, "ctx"])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("one"));
        let b = s.spawn(|| spawn("two"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", text(&a).1);
    assert!(b.status.success(), "{}", text(&b).1);
    assert_eq!(text(&a).0, text(&b).0, "same inputs, same image");
    assert!(store::verify_blobs(&dir.root()) > 0);
}

#[test]
fn a_build_killed_mid_way_leaves_a_store_that_verifies_and_builds() {
    let dir = TestDir::new();
    // Enough data that a build takes a while: 48 MiB over 96 files.
    for i in 0..96 {
        let chunk: Vec<u8> = (0..512 * 1024)
            .map(|j| ((i * 31 + j * 7) % 251) as u8)
            .collect();
        dir.write(&format!("ctx/data/f{i}.bin"), chunk);
    }
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY data/ /data/\nCOPY data/f1.bin /one.bin\n",
    );
    for delay_ms in [50, 150, 400] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dray"))
            .current_dir(dir.path())
            .arg("--root")
            .arg(dir.root())
            .args([
                "build",
                "--progress",
                "quiet",
                "--no-cache",
                "-t",
                "big",
                "ctx",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if dir.root().join("blobs/sha256").is_dir() {
            store::verify_blobs(&dir.root());
        }
    }
    let output = dir.build(&["-t", "big"]);
    assert!(output.status.success(), "{}", text(&output).1);
    assert!(
        store::verify_blobs(&dir.root()) >= 3,
        "manifest, config and layers"
    );
    let files = store::files(&dir.root(), "docker.io/library/big:latest");
    assert_eq!(files["data/f95.bin"].data.len(), 512 * 1024);
}
