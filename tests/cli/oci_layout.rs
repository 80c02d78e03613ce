//! `FROM oci-layout://PATH[:TAG|@DIGEST]` and `--build-context NAME=oci-layout://…|DIR` end
//! to end. The base layout is made by an independent tool (umoci: two repacks, the second with
//! whiteouts), and the built image is read back by independent tools too (skopeo copies it out
//! of the store, verifying every digest; umoci unpacks it).

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::harness::{TestDir, text};
use crate::store;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed by this test (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `L:base`, made with umoci: layer 1 adds `/etc/greeting`, `/app/{old,tool,link,hard}` and
/// `/app/sub/s`; layer 2 deletes `/app/old` and `/app/sub` (whiteouts) and adds `/app/new`.
fn umoci_layout(dir: &TestDir) -> PathBuf {
    let layout = dir.path().join("L");
    let bundle = dir.path().join("B");
    let image = format!("{}:base", s(&layout));
    run("umoci", &["init", "--layout", s(&layout)]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, s(&bundle)]);
    let rootfs = bundle.join("rootfs");
    dir.write("B/rootfs/etc/greeting", "hello from umoci\n");
    dir.write("B/rootfs/app/old", "old\n");
    dir.write("B/rootfs/app/sub/s", "s\n");
    dir.write("B/rootfs/app/tool", "#!/bin/sh\n");
    fs::set_permissions(
        rootfs.join("app/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    std::os::unix::fs::symlink("../etc/greeting", rootfs.join("app/link")).unwrap();
    fs::hard_link(rootfs.join("etc/greeting"), rootfs.join("app/hard")).unwrap();
    run(
        "umoci",
        &["repack", "--refresh-bundle", "--image", &image, s(&bundle)],
    );
    fs::remove_file(rootfs.join("app/old")).unwrap();
    fs::remove_dir_all(rootfs.join("app/sub")).unwrap();
    dir.write("B/rootfs/app/new", "new\n");
    run("umoci", &["repack", "--image", &image, s(&bundle)]);
    layout
}

/// The manifest `tag` names in a layout, and its digest.
fn layout_manifest(layout: &Path, tag: &str) -> (String, Value) {
    let index = store::read_json(&layout.join("index.json"));
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        digest.clone(),
        store::read_json(&store::blob_path(layout, &digest)),
    )
}

/// The image `name` of the store copied out by skopeo (which verifies every blob) and
/// unpacked by umoci: its root filesystem.
fn unpacked_by_umoci(dir: &TestDir, name: &str) -> PathBuf {
    let copy = dir.path().join(format!("copy-{name}"));
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:docker.io/library/{name}:latest", s(&dir.root())),
            &format!("oci:{}:{name}", s(&copy)),
        ],
    );
    let bundle = dir.path().join(format!("bundle-{name}"));
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{name}", s(&copy)),
            s(&bundle),
        ],
    );
    bundle.join("rootfs")
}

fn build_ok(dir: &TestDir, args: &[&str]) -> (String, String) {
    let output = dir.build(args);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    (stdout, stderr)
}

#[test]
fn from_an_oci_layout_made_by_umoci() {
    let dir = TestDir::new();
    let layout = umoci_layout(&dir);
    dir.write("ctx/hello.txt", "hello from the context\n");
    dir.write(
        "ctx/Dockerfile",
        format!(
            "FROM oci-layout://{}:base\nCOPY hello.txt /app/hello.txt\nWORKDIR /app\n",
            s(&layout)
        ),
    );
    let (image_id, stderr) = build_ok(&dir, &["-t", "out"]);
    assert!(
        stderr.contains(&format!("FROM oci-layout://{}@sha256:", s(&layout))),
        "{stderr}"
    );

    // Read back by other tools: the base's files, its whiteouts applied, and the COPY.
    let rootfs = unpacked_by_umoci(&dir, "out");
    let read = |p: &str| fs::read_to_string(rootfs.join(p)).unwrap();
    assert_eq!(read("etc/greeting"), "hello from umoci\n");
    assert_eq!(read("app/new"), "new\n");
    assert_eq!(read("app/hello.txt"), "hello from the context\n");
    assert_eq!(
        fs::read_link(rootfs.join("app/link")).unwrap(),
        Path::new("../etc/greeting")
    );
    assert_eq!(
        fs::metadata(rootfs.join("app/tool")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::metadata(rootfs.join("app/hard")).unwrap().ino(),
        fs::metadata(rootfs.join("etc/greeting")).unwrap().ino()
    );
    assert!(!rootfs.join("app/old").exists());
    assert!(!rootfs.join("app/sub").exists());

    // The base's layers are reused verbatim; the COPY adds one.
    let (_, base) = layout_manifest(&layout, "base");
    let (_, built) = store::manifest(&dir.root(), "docker.io/library/out:latest");
    let digests = |m: &Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(digests(&built)[..2], digests(&base)[..]);
    assert_eq!(digests(&built).len(), 3);
    assert!(store::verify_blobs(&dir.root()) >= 6);

    // The base layers were unpacked into snapshots named by their ChainIDs.
    let base_config = store::read_json(&store::blob_path(
        &layout,
        base["config"]["digest"].as_str().unwrap(),
    ));
    let diff_ids: Vec<&str> = base_config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let chain2 = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(format!("{} {}", diff_ids[0], diff_ids[1])))
    );
    for id in [diff_ids[0].to_owned(), chain2] {
        assert!(
            dir.root().join("snapshots").join(&id).join("fs").is_dir(),
            "no snapshot {id}"
        );
    }

    // Nothing changed: everything is cached, the image is the same.
    let (again, stderr) = build_ok(&dir, &["-t", "out"]);
    assert_eq!(again, image_id);
    assert!(!stderr.contains(" DONE"), "{stderr}");

    // Pinned by digest, the same image again (the source is keyed by its manifest digest).
    let (digest, _) = layout_manifest(&layout, "base");
    dir.write(
        "ctx/Dockerfile",
        format!(
            "FROM oci-layout://{}@{digest}\nCOPY hello.txt /app/hello.txt\nWORKDIR /app\n",
            s(&layout)
        ),
    );
    let (pinned, _) = build_ok(&dir, &["-t", "out"]);
    assert_eq!(pinned, image_id);
}

#[test]
fn build_contexts_name_an_oci_layout_and_a_directory() {
    let dir = TestDir::new();
    let layout = umoci_layout(&dir);
    dir.write("files/note.txt", "a note\n");
    dir.write("files/.dockerignore", "*.tmp\n");
    dir.write("files/skip.tmp", "ignored\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM base\nCOPY --from=files / /notes/\nCOPY --from=base /etc/greeting /copied\n",
    );
    let layout_arg = format!("base=oci-layout://{}:base", s(&layout));
    let files_arg = format!("files={}", s(&dir.path().join("files")));
    build_ok(
        &dir,
        &[
            "-t",
            "ctx-out",
            "--build-context",
            &layout_arg,
            "--build-context",
            &files_arg,
        ],
    );
    let files = store::files(&dir.root(), "docker.io/library/ctx-out:latest");
    assert_eq!(files["notes/note.txt"].data, b"a note\n");
    assert!(!files.contains_key("notes/skip.tmp"));
    assert_eq!(files["copied"].data, b"hello from umoci\n");
    assert_eq!(files["app/new"].data, b"new\n");
    assert!(!files.contains_key("app/old"));

    // A named context that is a directory cannot be built on.
    dir.write("ctx/Dockerfile", "FROM files\n");
    let output = dir.build(&["--build-context", &files_arg]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("COPY --from=files"), "{stderr}");
}

#[test]
fn concurrent_builds_unpack_the_same_layers() {
    let dir = TestDir::new();
    let layout = umoci_layout(&dir);
    for ctx in ["ctx", "ctx2"] {
        dir.write(
            &format!("{ctx}/Dockerfile"),
            format!("FROM oci-layout://{}:base\n", s(&layout)),
        );
    }
    let spawn = |ctx: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dray"));
        cmd.current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("DRAY_ROOT")
            .arg("--root")
            .arg(dir.root())
            .args(["build", "--progress", "plain", ctx])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn("ctx"), spawn("ctx2"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snapshots: Vec<String> = fs::read_dir(dir.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
}

#[test]
fn a_missing_tag_names_the_layout() {
    let dir = TestDir::new();
    let layout = umoci_layout(&dir);
    dir.write(
        "ctx/Dockerfile",
        format!("FROM oci-layout://{}:nope\n", s(&layout)),
    );
    let output = dir.build(&[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no image tagged \"nope\""), "{stderr}");
    assert!(stderr.contains(s(&layout)), "{stderr}");
}

// --- hand-made layouts ------------------------------------------------------------------------

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layout holding one image (tag `t`) of the given uncompressed layers, gzip-compressed;
/// `diff_ids` overrides what the config claims.
fn hand_made_layout(path: &Path, layers: &[Vec<u8>], diff_ids: Option<Vec<String>>) {
    let blobs = path.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha(bytes);
        fs::write(blobs.join(&d[7..]), bytes).unwrap();
        (d, bytes.len())
    };
    let mut descriptors = Vec::new();
    for layer in layers {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(layer).unwrap();
        let (d, n) = put(&gz.finish().unwrap());
        descriptors.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d, "size": n}),
        );
    }
    let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha(l)).collect());
    let (config, config_len) = put(json!({"architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    .to_string()
    .as_bytes());
    let (manifest, manifest_len) = put(
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config, "size": config_len},
            "layers": descriptors})
        .to_string()
        .as_bytes(),
    );
    fs::write(path.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        path.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest, "size": manifest_len,
            "annotations": {"org.opencontainers.image.ref.name": "t"}}]})
        .to_string(),
    )
    .unwrap();
}

/// A raw tar of `(type, name, link, data)` entries, names written verbatim.
fn raw_tar(entries: &[(tar::EntryType, &str, &str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A base layer that tries to write beside the store through `..` and a symlink: it lands
/// inside the image's filesystem, and nothing beside the store changes.
#[test]
fn a_hostile_base_layer_stays_inside_its_snapshot() {
    use tar::EntryType::{Regular, Symlink};
    let dir = TestDir::new();
    dir.write("beside/victim", "untouched\n");
    let layer = raw_tar(&[
        (Regular, "../../../../../../beside/victim", "", "pwned\n"),
        (Symlink, "escape", "../../../../../../beside", ""),
        (Regular, "escape/planted", "", "pwned\n"),
    ]);
    let diff_id = sha(&layer);
    let layout = dir.path().join("evil");
    hand_made_layout(&layout, &[layer], None);
    dir.write(
        "ctx/Dockerfile",
        format!("FROM oci-layout://{}:t\n", s(&layout)),
    );
    build_ok(&dir, &["-t", "evil"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("beside/victim")).unwrap(),
        "untouched\n"
    );
    assert!(!dir.path().join("beside/planted").exists());
    // The unpacked base layer (its snapshot is named by its ChainID, here its diff_id).
    let snapshot = dir.root().join("snapshots").join(&diff_id).join("fs");
    let read = |p: &str| fs::read_to_string(snapshot.join(p)).unwrap();
    assert_eq!(read("beside/victim"), "pwned\n");
    assert_eq!(read("beside/planted"), "pwned\n");
    assert!(
        fs::symlink_metadata(snapshot.join("escape"))
            .unwrap()
            .is_symlink()
    );
}

/// A layer whose content does not hash to the config's diff_id fails the build, and leaves
/// no snapshot behind.
#[test]
fn a_diff_id_mismatch_fails_and_commits_nothing() {
    let dir = TestDir::new();
    let layer = raw_tar(&[(tar::EntryType::Regular, "a", "", "a\n")]);
    let layout = dir.path().join("bad");
    hand_made_layout(&layout, &[layer], Some(vec![sha(b"something else")]));
    dir.write(
        "ctx/Dockerfile",
        format!("FROM oci-layout://{}:t\n", s(&layout)),
    );
    let output = dir.build(&[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("diff_id mismatch"), "{stderr}");
    let left: Vec<_> = fs::read_dir(dir.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
