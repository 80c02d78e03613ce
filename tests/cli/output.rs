//! `dray build --output`: every exporter type, the store left alone without `-t`, stdout,
//! compression options, usage errors, and reproducible archives from two fresh roots.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::harness::{TestDir, text};
use crate::store::{self, blob_path, read_json};

/// A context using only COPY, file ops and metadata: owners, modes, a symlink inside a copied
/// directory, an empty directory, a WORKDIR.
pub(crate) fn sample(dir: &TestDir) {
    dir.write("ctx/files/a.txt", "alpha\n");
    dir.write("ctx/files/sub/b.bin", [0u8, 1, 2, 255]);
    std::fs::create_dir_all(dir.path().join("ctx/files/empty")).unwrap();
    std::os::unix::fs::symlink("../a.txt", dir.path().join("ctx/files/sub/link")).unwrap();
    dir.write("ctx/run.sh", "#!/bin/sh\necho hi\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\n\
         COPY --chown=1000:1000 files/ /app/\n\
         COPY --chmod=0755 run.sh /usr/bin/run\n\
         WORKDIR /data\n\
         ENV A=1\n\
         CMD [\"/usr/bin/run\"]\n",
    );
}

/// One entry of a directory tree: kind (`d`, `f`, `l`), mode, owner, content or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) kind: char,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) data: Vec<u8>,
}

/// Every entry under `root` (not `root` itself), by relative path.
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let md = std::fs::symlink_metadata(&path).unwrap();
            let (kind, data) = if md.is_dir() {
                todo.push(path.clone());
                ('d', Vec::new())
            } else if md.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                ('l', target.into_os_string().into_encoded_bytes())
            } else {
                ('f', std::fs::read(&path).unwrap())
            };
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            out.insert(
                rel,
                Node {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    data,
                },
            );
        }
    }
    out
}

/// (path, type, mode, uid, gid, mtime) of every tar member, in order.
pub(crate) fn members(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, u64, u64)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_str().unwrap().to_owned(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
            )
        })
        .collect()
}

/// The bytes of `name` inside a tar.
pub(crate) fn member(tar: &[u8], name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str().unwrap() == name {
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("no {name} in the archive");
}

pub(crate) fn member_json(tar: &[u8], name: &str) -> Value {
    serde_json::from_slice(&member(tar, name)).unwrap()
}

pub(crate) fn ok(output: &Output) -> String {
    let (stdout, stderr) = text(output);
    assert!(output.status.success(), "dray failed:\n{stderr}");
    stdout
}

#[test]
fn every_output_type_writes_its_format() {
    let dir = TestDir::new();
    sample(&dir);
    let out = |s: &str| dir.path().join(s).to_str().unwrap().to_owned();
    let stdout = ok(&dir.build(&[
        "-t",
        "app",
        "--output",
        &format!("type=oci,dest={}", out("img.tar")),
        "--output",
        &format!("type=oci,dest={},tar=false", out("layout")),
        "--output",
        &format!("type=docker,dest={}", out("docker.tar")),
        "--output",
        &format!("type=local,dest={}", out("rootfs")),
        "--output",
        &format!("type=tar,dest={}", out("rootfs.tar")),
    ]));
    let image_id = stdout.trim();
    let root = dir.root();
    let (manifest_digest, manifest) = store::manifest(&root, "docker.io/library/app:latest");
    assert_eq!(manifest["config"]["digest"], image_id);

    // type=oci: the tagged image's manifest, named as containerd names it.
    let oci = std::fs::read(out("img.tar")).unwrap();
    let index = member_json(&oci, "index.json");
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], manifest_digest.as_str());
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:latest"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert_eq!(
        member(&oci, "oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let paths: Vec<String> = members(&oci).into_iter().map(|m| m.0).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "archive members are sorted");
    for m in members(&oci) {
        assert_eq!(
            (m.3, m.4, m.5),
            (0, 0, 0),
            "{}: owner and mtime are fixed",
            m.0
        );
    }
    let layers = manifest["layers"].as_array().unwrap();
    for digest in layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .chain([image_id, manifest_digest.as_str()])
    {
        let hex = digest.strip_prefix("sha256:").unwrap();
        assert_eq!(
            member(&oci, &format!("blobs/sha256/{hex}")),
            std::fs::read(blob_path(&root, digest)).unwrap()
        );
    }

    // tar=false: the same layout as a directory.
    let layout = out("layout");
    assert_eq!(
        std::fs::read(Path::new(&layout).join("index.json")).unwrap(),
        member(&oci, "index.json")
    );
    for p in paths
        .iter()
        .filter(|p| p.starts_with("blobs/sha256/") && p.len() > 13)
    {
        assert_eq!(
            std::fs::read(Path::new(&layout).join(p)).unwrap(),
            member(&oci, p),
            "{p}"
        );
    }

    // type=docker: the layout in docker media types plus manifest.json and repositories.
    let docker = std::fs::read(out("docker.tar")).unwrap();
    let dm = member_json(&docker, "manifest.json");
    assert_eq!(dm[0]["RepoTags"], serde_json::json!(["app:latest"]));
    assert_eq!(
        dm[0]["Config"],
        format!("blobs/sha256/{}", image_id.strip_prefix("sha256:").unwrap())
    );
    assert_eq!(dm[0]["Layers"].as_array().unwrap().len(), layers.len());
    let repos = member_json(&docker, "repositories");
    assert!(repos["app"]["latest"].is_string(), "{repos}");
    let docker_entry = &member_json(&docker, "index.json")["manifests"][0];
    assert_eq!(docker_entry["annotations"], entry["annotations"]);
    assert_eq!(docker_entry["mediaType"], DOCKER_MANIFEST);
    let docker_manifest_bytes = member(&docker, &archive_blob(&docker_entry["digest"]));
    assert_eq!(
        docker_entry["digest"],
        format!("sha256:{}", sha256_hex(&docker_manifest_bytes)),
        "the rewritten manifest is named by its own digest"
    );
    assert_ne!(docker_entry["digest"], manifest_digest.as_str());
    let docker_manifest: Value = serde_json::from_slice(&docker_manifest_bytes).unwrap();
    assert_eq!(docker_manifest["mediaType"], DOCKER_MANIFEST);
    assert_eq!(docker_manifest["config"]["mediaType"], DOCKER_CONFIG);
    assert_eq!(docker_manifest["config"]["digest"], image_id);
    for (d, o) in docker_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(layers)
    {
        assert_eq!(d["mediaType"], DOCKER_LAYER_GZIP);
        assert_eq!((&d["digest"], &d["size"]), (&o["digest"], &o["size"]));
        // Config and layer blobs are the store's bytes.
        assert_eq!(
            member(&docker, &archive_blob(&d["digest"])),
            member(&oci, &archive_blob(&o["digest"]))
        );
    }
    assert!(
        !members(&docker)
            .iter()
            .any(|m| m.0 == archive_blob(&Value::from(manifest_digest.as_str()))),
        "the OCI manifest is not shipped in the docker archive"
    );

    // type=local: the final filesystem, equal to the layers applied by an independent reader.
    let rootfs = tree(Path::new(&out("rootfs")));
    let from_layers = store::files(&root, "docker.io/library/app:latest");
    assert_eq!(
        rootfs.keys().collect::<Vec<_>>(),
        from_layers.keys().collect::<Vec<_>>()
    );
    for (path, node) in &rootfs {
        let layer = &from_layers[path];
        assert_eq!(
            (node.kind, node.mode, node.data.clone()),
            (layer.kind, layer.mode, layer.data.clone()),
            "{path}"
        );
        assert_eq!(
            (u64::from(node.uid), u64::from(node.gid)),
            (layer.uid, layer.gid),
            "{path}"
        );
    }
    assert_eq!(rootfs["app/sub/link"].data, b"../a.txt");
    assert_eq!(
        (rootfs["app/a.txt"].uid, rootfs["app/a.txt"].gid),
        (1000, 1000)
    );
    assert_eq!(rootfs["usr/bin/run"].mode, 0o755);
    assert_eq!(rootfs["data"].kind, 'd');

    // type=tar: the same tree as a tar, mtimes clamped to SOURCE_DATE_EPOCH.
    let fs_tar = std::fs::read(out("rootfs.tar")).unwrap();
    let listed = members(&fs_tar);
    let names: Vec<String> = listed
        .iter()
        .map(|m| m.0.trim_end_matches('/').to_owned())
        .collect();
    let set: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(set.len(), names.len(), "no duplicate members");
    assert_eq!(
        set.into_iter().collect::<Vec<_>>(),
        rootfs.keys().collect::<Vec<_>>()
    );
    for (i, name) in names.iter().enumerate() {
        if let Some((parent, _)) = name.rsplit_once('/') {
            assert!(
                names[..i].iter().any(|n| n == parent),
                "{name} comes before its parent"
            );
        }
    }
    for m in &listed {
        assert!(m.5 <= 1_700_000_000, "{} has mtime {}", m.0, m.5);
    }
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    crate::readers::run(
        "tar",
        &["-xpf", &out("rootfs.tar"), "-C", unpacked.to_str().unwrap()],
    );
    assert_eq!(tree(&unpacked), rootfs);
}

#[test]
fn outputs_without_a_tag_leave_the_store_index_alone() {
    let dir = TestDir::new();
    sample(&dir);
    let img = dir.path().join("img.tar");
    ok(&dir.build(&["--output", &format!("type=oci,dest={}", img.display())]));
    let index = read_json(&dir.root().join("index.json"));
    assert_eq!(index["manifests"], serde_json::json!([]), "{index}");
    // The results stay in the cache: the archive's blobs are in the store.
    let oci = std::fs::read(&img).unwrap();
    let digest = member_json(&oci, "index.json")["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(blob_path(&dir.root(), &digest).exists());
    assert_eq!(
        member_json(&oci, "index.json")["manifests"][0].get("annotations"),
        None,
        "no -t and no name=: the entry is unnamed"
    );
}

#[test]
fn dest_dash_streams_the_archive_to_stdout_and_prints_no_id() {
    let dir = TestDir::new();
    sample(&dir);
    let file = dir.path().join("img.tar");
    let output = dir.build(&[
        "-t",
        "app",
        "--output",
        "type=oci,dest=-",
        "--output",
        &format!("type=oci,dest={}", file.display()),
    ]);
    ok(&output);
    assert_eq!(output.stdout, std::fs::read(&file).unwrap());
    let tar_out = dir.build(&["--output", "-"]);
    ok(&tar_out);
    assert!(
        members(&tar_out.stdout)
            .iter()
            .any(|m| m.0 == "usr/bin/run")
    );
}

/// Docker's media types, written by `type=docker`.
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `blobs/sha256/<hex>` for a `"sha256:<hex>"` JSON string.
pub(crate) fn archive_blob(digest: &Value) -> String {
    let digest = digest.as_str().unwrap();
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn layer_types(tar: &[u8]) -> (String, Vec<String>) {
    let index = member_json(tar, "index.json");
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = member_json(
        tar,
        &format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap()),
    );
    (
        manifest["config"]["digest"].as_str().unwrap().to_owned(),
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_owned())
            .collect(),
    )
}

#[test]
fn compression_options_choose_layer_media_types() {
    let dir = TestDir::new();
    dir.write("ctx/base.txt", "base\n");
    dir.write("ctx/Dockerfile", "FROM scratch\nCOPY base.txt /\n");
    ok(&dir.build(&["-t", "base"]));
    dir.write("ctx/top.txt", "top\n");
    dir.write("ctx/Dockerfile", "FROM base\nCOPY top.txt /\n");
    let p = |s: &str| dir.path().join(s).display().to_string();
    ok(&dir.build(&[
        "--output",
        &format!("type=oci,dest={},compression=zstd", p("zstd.tar")),
        "--output",
        &format!(
            "type=oci,dest={},compression=zstd,compression-level=19,force-compression=true",
            p("forced.tar")
        ),
        "--output",
        &format!(
            "type=oci,dest={},compression=uncompressed,force-compression=true",
            p("plain.tar")
        ),
        "--output",
        &format!("type=docker,dest={},compression=gzip", p("gzip.tar")),
        "--output",
        &format!(
            "type=docker,dest={},compression=zstd,force-compression=true",
            p("zstd-docker.tar")
        ),
    ]));
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    let plain = "application/vnd.oci.image.layer.v1.tar";
    let read = |s: &str| std::fs::read(p(s)).unwrap();
    let (id_zstd, zstd_layers) = layer_types(&read("zstd.tar"));
    assert_eq!(
        zstd_layers,
        [gzip, zstd],
        "without force, the base layer keeps its compression"
    );
    let (id_forced, forced) = layer_types(&read("forced.tar"));
    assert_eq!(forced, [zstd, zstd]);
    let (id_plain, plain_layers) = layer_types(&read("plain.tar"));
    assert_eq!(plain_layers, [plain, plain]);
    let (id_gzip, gzip_layers) = layer_types(&read("gzip.tar"));
    assert_eq!(gzip_layers, [DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP]);
    // Docker has no zstd layer type: such an image keeps its OCI media types, as in BuildKit.
    let zstd_docker = read("zstd-docker.tar");
    assert_eq!(layer_types(&zstd_docker).1, [zstd, zstd]);
    assert_eq!(
        member_json(&zstd_docker, "index.json")["manifests"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // The config (diff_ids) does not depend on compression: one image ID.
    assert_eq!([&id_zstd, &id_forced, &id_plain], [&id_gzip; 3]);
    // Only -t adds to the index: still just "base".
    let index = read_json(&dir.root().join("index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn name_option_overrides_the_tags_in_archives() {
    let dir = TestDir::new();
    sample(&dir);
    let img = dir.path().join("img.tar");
    ok(&dir.build(&[
        "-t",
        "app",
        "--output",
        &format!(
            "type=docker,dest={},\"name=one:1,reg.example:5000/two\"",
            img.display()
        ),
    ]));
    let tar = std::fs::read(&img).unwrap();
    assert_eq!(
        member_json(&tar, "manifest.json")[0]["RepoTags"],
        serde_json::json!(["one:1", "reg.example:5000/two:latest"])
    );
    let names: Vec<Value> = member_json(&tar, "index.json")["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["io.containerd.image.name"].clone())
        .collect();
    assert_eq!(
        names,
        ["docker.io/library/one:1", "reg.example:5000/two:latest"]
    );
}

#[test]
fn two_outputs_on_stdout_are_refused_before_building() {
    let dir = TestDir::new();
    sample(&dir);
    let output = dir.build(&["--output", "type=oci,dest=-", "--output", "-"]);
    assert_eq!(output.status.code(), Some(1));
    let (stdout, stderr) = text(&output);
    assert!(
        stderr.contains("only one --output can write to stdout"),
        "{stderr}"
    );
    assert!(stdout.is_empty());
}

#[test]
fn bad_outputs_are_usage_errors() {
    let dir = TestDir::new();
    sample(&dir);
    for (value, says) in [
        ("type=zip,dest=x", "unknown output type"),
        ("type=oci", "missing dest"),
        ("type=local,dest=-", "stdout"),
        ("type=oci,dest=x,compression=lz4", "unknown compression"),
        (
            "type=oci,dest=x,compression=gzip,compression-level=12",
            "out of range",
        ),
        ("type=oci,dest=x,frobnicate=1", "unknown output option"),
    ] {
        let output = dir.build(&["--output", value]);
        assert_eq!(output.status.code(), Some(2), "{value}");
        let (_, stderr) = text(&output);
        assert!(stderr.contains(says), "{value}: {stderr}");
        assert!(
            !dir.root().join("index.json").exists(),
            "a usage error touches no store"
        );
    }
}

/// Builds `sample` in a fresh directory whose context files have mtimes of `when` (all later
/// than the epoch), with the epoch given by `epoch_by` (`env` or `build-arg`).
fn reproducible_build(when: &str, epoch_by: &str) -> (TestDir, Vec<u8>, Vec<u8>, String) {
    let dir = TestDir::new();
    sample(&dir);
    crate::readers::run(
        "touch",
        &[
            "-h",
            "-d",
            when,
            dir.path().join("ctx/files/a.txt").to_str().unwrap(),
        ],
    );
    crate::readers::run(
        "touch",
        &[
            "-h",
            "-d",
            when,
            dir.path().join("ctx/run.sh").to_str().unwrap(),
        ],
    );
    let p = |s: &str| dir.path().join(s).display().to_string();
    let mut cmd = dir.dray();
    cmd.arg("--root")
        .arg(dir.root())
        .args(["build", "--progress", "plain"]);
    cmd.args(["--output", &format!("type=oci,dest={}", p("img.tar"))]);
    cmd.args(["--output", &format!("type=tar,dest={}", p("fs.tar"))]);
    match epoch_by {
        "env" => {
            cmd.env("SOURCE_DATE_EPOCH", "1700000000");
        }
        _ => {
            cmd.env_remove("SOURCE_DATE_EPOCH")
                .args(["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
        }
    }
    let output = cmd.arg("ctx").output().unwrap();
    let id = ok(&output).trim().to_owned();
    let oci = std::fs::read(p("img.tar")).unwrap();
    let fs_tar = std::fs::read(p("fs.tar")).unwrap();
    (dir, oci, fs_tar, id)
}

#[test]
fn two_fresh_roots_give_identical_manifests_and_archives() {
    let (_a, oci_a, fs_a, id_a) = reproducible_build("2024-01-02 03:04:05", "env");
    let (_b, oci_b, fs_b, id_b) = reproducible_build("2025-06-07 08:09:10", "build-arg");
    assert_eq!(id_a, id_b);
    let manifest = |oci: &[u8]| member_json(oci, "index.json")["manifests"][0]["digest"].clone();
    assert_eq!(manifest(&oci_a), manifest(&oci_b));
    assert!(oci_a == oci_b, "the type=oci archives differ");
    assert!(fs_a == fs_b, "the type=tar archives differ");
    // And the times in them are the epoch's.
    let index = member_json(&oci_a, "index.json");
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let m = member_json(
        &oci_a,
        &format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap()),
    );
    let config = member_json(
        &oci_a,
        &format!(
            "blobs/sha256/{}",
            m["config"]["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap()
        ),
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    for h in config["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z", "{h}");
    }
    for m in members(&fs_a) {
        assert!(m.5 <= 1_700_000_000, "{} has mtime {}", m.0, m.5);
    }
}

#[test]
fn a_global_arg_source_date_epoch_sets_the_image_times() {
    let dir = TestDir::new();
    dir.write("ctx/new.txt", "written now, after the epoch\n");
    dir.write(
        "ctx/Dockerfile",
        "ARG SOURCE_DATE_EPOCH=1600000000\nFROM scratch\nCOPY new.txt /\n",
    );
    let fs_tar = dir.path().join("fs.tar");
    let output = dir
        .dray()
        .arg("--root")
        .arg(dir.root())
        .args(["build", "--progress", "plain", "-t", "app", "--output"])
        .arg(format!("type=tar,dest={}", fs_tar.display()))
        .arg("ctx")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    ok(&output);
    let config = store::config(&dir.root(), "docker.io/library/app:latest");
    assert_eq!(config["created"], "2020-09-13T12:26:40Z");
    let listed = members(&std::fs::read(&fs_tar).unwrap());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].5, 1_600_000_000);
}
