//! `dray build --executor runc` with `--secret`: the step reads the secret, and no trace of it
//! is left in the image, the store or the output. Runs real steps over a busybox `/bin`
//! copied from Debian's busybox-static (root and runc are required, as on CI).

use std::io::Read;
use std::path::Path;

use sha2::Digest as _;

use crate::harness::{TestDir, text};
use crate::store;

const SECRET: &str = "s3cr3t-from-the-cli";

/// A context whose `bin/` is busybox with the applets the Dockerfiles use.
fn busybox_context(dir: &TestDir) {
    let bin = dir.path().join("ctx/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in ["sh", "cat", "test", "echo", "sha256sum"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// The step checks the secret against its digest: the value itself must not appear in the
/// Dockerfile, which the image history and cache records keep.
fn dockerfile(dir: &TestDir, required: bool) {
    let digest = hex::encode(sha2::Sha256::digest(SECRET));
    dir.write(
        "ctx/Dockerfile",
        format!(
            "FROM scratch\nCOPY bin /bin\nENV PATH=/bin\n\
             RUN --mount=type=secret,id=token,required={required} \
             test \"$(sha256sum < /run/secrets/token)\" = \"{digest}  -\" && echo ok > /ok\n"
        ),
    );
}

/// Every byte dray keeps under its root, with layer blobs decompressed.
fn store_bytes(root: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut plain = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut plain)
                        .unwrap();
                    out.extend(plain);
                }
                out.extend(bytes);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn runc_build_mounts_a_file_secret_and_keeps_no_trace_of_it() {
    let dir = TestDir::new();
    busybox_context(&dir);
    dockerfile(&dir, true);
    dir.write("token.txt", SECRET);
    let output = dir.build(&[
        "--executor",
        "runc",
        "--secret",
        "id=token,src=token.txt",
        "-t",
        "secret-test",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    let files = store::files(&dir.root(), "docker.io/library/secret-test:latest");
    assert_eq!(files["ok"].data, b"ok\n");
    // The mount point and its parents stayed out of the layer.
    assert!(
        !files.keys().any(|p| p.starts_with("run")),
        "{:?}",
        files.keys()
    );
    assert!(!contains(&store_bytes(&dir.root()), SECRET));
}

#[test]
fn runc_build_takes_a_secret_from_the_environment() {
    let dir = TestDir::new();
    busybox_context(&dir);
    dockerfile(&dir, true);
    let mut cmd = dir.dray();
    cmd.arg("--root")
        .arg(dir.root())
        .args(["build", "--progress", "plain", "--executor", "runc"])
        .args(["--secret", "id=token,env=DRAY_TEST_TOKEN", "ctx"])
        .env("DRAY_TEST_TOKEN", SECRET);
    let output = cmd.output().unwrap();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(!contains(&store_bytes(&dir.root()), SECRET));
    // The temporary copy of the value is gone with the build.
    let tmp: Vec<_> = std::fs::read_dir(dir.root().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn a_missing_required_secret_fails_naming_its_id() {
    let dir = TestDir::new();
    busybox_context(&dir);
    dockerfile(&dir, true);
    let output = dir.build(&["--executor", "runc"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("secret \"token\" is required but was not provided"),
        "{stderr}"
    );
}

#[test]
fn bad_secret_flags_are_refused_before_building() {
    let dir = TestDir::new();
    busybox_context(&dir);
    dockerfile(&dir, false);
    let output = dir.build(&["--secret", "id=token,src=missing.txt"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("failed to stat missing.txt"), "{stderr}");
    let output = dir.build(&["--executor", "crun"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("invalid value 'crun'"));
}
