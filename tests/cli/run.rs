//! `RUN` through the native sandbox, end to end: the busybox base built with dray itself
//! (`examples/busybox`), shell/exec/heredoc forms, `SHELL`, the layers the steps produce
//! (whiteouts and opaque directories read back from the tars), failures. CI runs as root;
//! these tests never skip.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::harness::{TestDir, repo_path, text};
use crate::store;

/// The base image's name (what `examples/hello` builds on, and `scripts/demo` tags).
pub(crate) const BASE: &str = "dray-example/busybox";

/// A store holding the busybox base, built once per test run from `examples/busybox` with
/// Debian's static busybox. Tests build into it concurrently (the store takes shared locks).
pub(crate) fn base_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-tests-root");
        let _ = std::fs::remove_dir_all(&root);
        build_base(&root);
        root
    })
}

/// Builds the busybox base into the store at `root`.
pub(crate) fn build_base(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install busybox-static (scripts/test does)"
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_path("examples/busybox/Dockerfile"),
        ctx.path().join("Dockerfile"),
    )
    .unwrap();
    std::fs::copy(busybox, ctx.path().join("busybox")).unwrap();
    let out = assert_cmd::Command::cargo_bin("dray")
        .unwrap()
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "-t", BASE])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "building the base: {}", text(&out).1);
}

/// Writes `dockerfile` as `ctx/Dockerfile` and builds it into `root`.
pub(crate) fn build_in(root: &Path, dir: &TestDir, dockerfile: &str, args: &[&str]) -> Output {
    dir.write("ctx/Dockerfile", dockerfile);
    dir.dray()
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg("ctx")
        .output()
        .unwrap()
}

/// Builds and asserts success; returns stderr (the progress).
pub(crate) fn build_ok(root: &Path, dir: &TestDir, dockerfile: &str, args: &[&str]) -> String {
    let out = build_in(root, dir, dockerfile, args);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// A unique image name per test (the store is shared).
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One tar entry: path (as in the tar), type, content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) kind: char,
    pub(crate) data: Vec<u8>,
}

/// Each layer of image `name`, as the list of its tar entries.
pub(crate) fn layers(root: &Path, name: &str) -> Vec<Vec<Entry>> {
    let (_, manifest) = store::manifest(root, &format!("docker.io/library/{name}:latest"));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let blob =
                std::fs::File::open(store::blob_path(root, layer["digest"].as_str().unwrap()))
                    .unwrap();
            let reader: Box<dyn Read> = if layer["mediaType"].as_str().unwrap().ends_with("+gzip") {
                Box::new(flate2::read::GzDecoder::new(blob))
            } else {
                Box::new(blob)
            };
            let mut archive = tar::Archive::new(reader);
            let mut out = Vec::new();
            for e in archive.entries().unwrap() {
                let mut e = e.unwrap();
                let kind = match e.header().entry_type() {
                    tar::EntryType::Directory => 'd',
                    tar::EntryType::Symlink => 'l',
                    tar::EntryType::Char => 'c',
                    _ => 'f',
                };
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.push(Entry { path, kind, data });
            }
            out
        })
        .collect()
}

fn paths(layer: &[Entry]) -> Vec<&str> {
    layer.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn shell_exec_and_heredoc_forms_and_the_shell_instruction_run() {
    let dir = TestDir::new();
    let name = unique("forms");
    let progress = build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN echo shell-form > /shell.txt && echo said hello\n\
             RUN [\"/bin/sh\", \"-c\", \"echo exec-form > /exec.txt\"]\n\
             RUN <<EOF\n\
             set -e\n\
             echo heredoc > /heredoc.txt\n\
             EOF\n\
             SHELL [\"/bin/busybox\", \"sh\", \"-c\"]\n\
             RUN cat /proc/$$/cmdline > /shell-instruction.txt; true\n"
        ),
        &["-t", &name],
    );
    // Output streams into the progress, BuildKit-style.
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("#") && l.ends_with(" said hello")),
        "{progress}"
    );
    let files = store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["shell.txt"].data, b"shell-form\n");
    assert_eq!(files["exec.txt"].data, b"exec-form\n");
    assert_eq!(files["heredoc.txt"].data, b"heredoc\n");
    let cmdline = String::from_utf8_lossy(&files["shell-instruction.txt"].data).into_owned();
    assert!(
        cmdline.starts_with("/bin/busybox\0sh\0-c\0cat "),
        "{cmdline:?}"
    );
}

#[test]
fn whiteouts_opaque_dirs_and_transient_files_in_the_layers() {
    let dir = TestDir::new();
    let name = unique("layers");
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN mkdir -p /d/sub && echo a > /a && echo f > /d/f && echo s > /d/sub/s\n\
             RUN rm /a && rm -rf /d && mkdir /d && echo g > /d/g\n\
             RUN echo transient > /t && rm /t\n\
             RUN true\n"
        ),
        &["-t", &name],
    );
    let layers = layers(base_root(), &name);
    assert_eq!(layers.len(), 4, "2 base layers + 2 RUN layers with content");
    let [added, deleted] = &layers[2..] else {
        unreachable!()
    };
    // The image still carries /a in the layer that added it…
    assert_eq!(paths(added), ["a", "d/", "d/f", "d/sub/", "d/sub/s"]);
    assert_eq!(added[0].data, b"a\n");
    // …and the next layer deletes it with a whiteout; /d was replaced: an opaque directory.
    assert_eq!(paths(deleted), [".wh.a", "d/", "d/.wh..wh..opq", "d/g"]);
    // Created and deleted in one step, or nothing at all: no content, so no layer (an empty
    // layer in the history, as BuildKit does). The mount points the sandbox made (/proc,
    // /dev, /sys, /etc/hosts, …: the base has none) left nothing either.
    let config = store::config(base_root(), &format!("docker.io/library/{name}:latest"));
    let history = config["history"].as_array().unwrap();
    let empty: Vec<bool> = history[history.len() - 2..]
        .iter()
        .map(|h| h["empty_layer"] == true)
        .collect();
    assert_eq!(empty, [true, true], "{history:?}");
    let files = store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert!(!files.contains_key("a") && !files.contains_key("d/f") && !files.contains_key("d/sub"));
    assert_eq!(files["d/g"].data, b"g\n");
}

#[test]
fn a_failing_command_names_its_line_commits_nothing_and_the_rest_stays_cached() {
    let dir = TestDir::new();
    let marker = unique("failing-marker");
    let good = format!("FROM {BASE}\nRUN echo step one > /one\n");
    let failing = format!(
        "{good}RUN echo {marker} > /{marker} && echo about to fail && echo to stderr >&2 && exit 7\n"
    );
    let out = build_in(base_root(), &dir, &failing, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exited with code 7"), "{stderr}");
    assert!(
        stderr.contains("Dockerfile:3"),
        "the Dockerfile line: {stderr}"
    );
    // The error ends with the step's last output lines.
    let (_, note) = stderr
        .split_once("the last lines of its output:\n")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        note.contains("  about to fail\n") && note.contains("  to stderr\n"),
        "{stderr}"
    );
    // Nothing the failed step wrote was kept.
    let leftovers: Vec<_> = walkdir(base_root().join("snapshots"))
        .into_iter()
        .filter(|p| p.ends_with(&marker))
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new());
    // The next build reuses everything before the failed step.
    let progress = build_ok(base_root(), &dir, &format!("{good}RUN echo fixed\n"), &[]);
    assert_eq!(
        steps_with(&progress, "CACHED"),
        BTreeSet::from(["[2/3] RUN echo step one > /one".to_owned()]),
        "{progress}"
    );
}

/// The step names (`[2/3] RUN …`) whose progress ended with `status` (`DONE`, `CACHED`).
pub(crate) fn steps_with(stderr: &str, status: &str) -> BTreeSet<String> {
    let mut names = std::collections::HashMap::new();
    let mut out = BTreeSet::new();
    for line in stderr.lines() {
        let Some((number, what)) = line.strip_prefix('#').and_then(|r| r.split_once(' ')) else {
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

pub(crate) fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn users_and_workdirs_resolve_inside_the_image() {
    let dir = TestDir::new();
    let name = unique("user");
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN mkdir -p /etc /home/app && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd \
                 && echo 'app:x:1500:1600:App:/home/app:/bin/sh' >> /etc/passwd \
                 && printf 'root:x:0:\\napp:x:1600:\\n' > /etc/group\n\
             USER app\n\
             WORKDIR /home/app/work\n\
             RUN id -u > ids && id -g >> ids && pwd >> ids && echo $HOME >> ids\n"
        ),
        &["-t", &name],
    );
    let files = store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(
        String::from_utf8_lossy(&files["home/app/work/ids"].data),
        "1500\n1600\n/home/app/work\n/home/app\n"
    );
    assert_eq!(files["home/app/work/ids"].uid, 1500);
}

/// The runc backend is the oracle for the native one: the same steps, run by each (the second
/// with `--no-cache`, so they really run), give the same layers, byte for byte, and so the same
/// image. Covers new files, a hard link, a symlink, a chmod, a whiteout, an opaque directory,
/// a created working directory, the hostname, the user's ids and the environment.
#[test]
fn native_and_runc_backends_produce_identical_layers() {
    let dir = TestDir::new();
    let dockerfile = format!(
        "FROM {BASE}\n\
         ENV GREETING=hello\n\
         RUN mkdir -p /d/sub /d/keep && echo a > /a && echo f > /d/f && echo s > /d/sub/s \
             && ln -s /a /d/link && ln /d/f /d/hard && chmod 640 /d/f\n\
         RUN rm /a && rm -rf /d/sub && mkdir /d/sub && echo new > /d/sub/n\n\
         WORKDIR /work/dir\n\
         RUN hostname > host && id > ids && echo \"$GREETING $HOME $PWD\" > env\n"
    );
    let native = unique("native");
    let runc = unique("runc");
    for (name, extra) in [
        (&native, &["--executor", "native"][..]),
        (&runc, &["--executor", "runc", "--no-cache"][..]),
    ] {
        dir.write("ctx/Dockerfile", &dockerfile);
        let out = dir
            .dray()
            .arg("--root")
            .arg(base_root())
            .args(["build", "--progress", "plain", "-t", name])
            .args(extra)
            .arg("ctx")
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stderr}");
    }
    let (native_layers, runc_layers) = (layers(base_root(), &native), layers(base_root(), &runc));
    assert_eq!(
        native_layers.len(),
        6,
        "2 base layers, 3 RUN layers and WORKDIR's"
    );
    for (n, (a, b)) in native_layers.iter().zip(&runc_layers).enumerate() {
        assert_eq!(
            a, b,
            "layer {n} differs between the native and runc backends"
        );
    }
    assert_eq!(native_layers.len(), runc_layers.len());
    let last = &native_layers[5];
    let file = |p: &str| {
        last.iter()
            .find(|e| e.path == p)
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
    };
    // The base has no /etc/passwd: HOME is `/`, as runc sets it for a user without an entry.
    assert_eq!(file("work/dir/env").as_deref(), Some("hello / /work/dir\n"));
    let config =
        |name: &str| store::config(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(
        config(&native)["rootfs"],
        config(&runc)["rootfs"],
        "the diff_ids differ"
    );
}
