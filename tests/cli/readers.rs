//! dray's outputs handed to real readers: skopeo (`oci-archive:`, `docker-archive:`, `oci:` on
//! the store), umoci (unpacking the OCI tar; its rootfs equals dray's `type=local` output),
//! the OCI JSON schemas (python `jsonschema`, installed by `scripts/test`) and
//! `oci-image-tool validate`. Every tool must be installed: a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{TestDir, repo_path};
use crate::output::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, member, member_json, ok, sample, tree,
};
use crate::store;

/// Runs a command, failing the test (never skipping) if it cannot start or fails; its stdout.
pub(crate) fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (it must be installed for this test): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds `sample` as `app` with an OCI tar, a docker tar, a layout dir and a local dir.
struct Built {
    dir: TestDir,
    image_id: String,
    manifest_digest: String,
}

impl Built {
    fn new() -> Built {
        let dir = TestDir::new();
        sample(&dir);
        let p = |s: &str| dir.path().join(s).display().to_string();
        let stdout = ok(&dir.build(&[
            "-t",
            "app",
            "--output",
            &format!("type=oci,dest={}", p("img.tar")),
            "--output",
            &format!("type=docker,dest={}", p("docker.tar")),
            "--output",
            &format!("type=oci,dest={},tar=false", p("layout")),
            "--output",
            &format!("type=local,dest={}", p("rootfs")),
        ]));
        let (manifest_digest, _) = store::manifest(&dir.root(), "docker.io/library/app:latest");
        Built {
            image_id: stdout.trim().to_owned(),
            manifest_digest,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, prefix: &str, name: &str) -> String {
        format!("{prefix}{}", self.path(name).display())
    }
}

#[test]
fn skopeo_reads_the_oci_and_docker_archives() {
    let b = Built::new();
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &b.arg("oci-archive:", "img.tar")],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], b.manifest_digest);
    assert_eq!(inspect["Os"], "linux");
    // By the OCI ref name (the tag), as containerd's convention writes it.
    let by_tag: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            &format!("{}:latest", b.arg("oci-archive:", "img.tar")),
        ],
    ))
    .unwrap();
    assert_eq!(by_tag["Digest"], b.manifest_digest);
    let raw_config = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--config",
            &b.arg("oci-archive:", "img.tar"),
        ],
    );
    assert_eq!(sha256_hex(raw_config.as_bytes()), b.image_id);

    // docker-archive: found by its RepoTag; the config (image ID) is the same.
    let tagged = format!("{}:app:latest", b.arg("docker-archive:", "docker.tar"));
    let config = run("skopeo", &["inspect", "--raw", "--config", &tagged]);
    assert_eq!(sha256_hex(config.as_bytes()), b.image_id);
    let d: Value = serde_json::from_str(&run("skopeo", &["inspect", &tagged])).unwrap();
    let (_, manifest) = store::manifest(&b.dir.root(), "docker.io/library/app:latest");
    assert_eq!(
        d["Layers"].as_array().unwrap().len(),
        manifest["layers"].as_array().unwrap().len()
    );
    // The docker archive is an OCI layout too: read that way, skopeo sees the manifest dray
    // wrote (skopeo's `docker-archive:` synthesizes its own from manifest.json), in docker
    // media types, naming the same compressed layer blobs as the OCI archive.
    let as_layout = b.arg("oci-archive:", "docker.tar");
    let raw: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--raw", &as_layout])).unwrap();
    assert_eq!(raw["mediaType"], DOCKER_MANIFEST);
    assert_eq!(raw["config"]["mediaType"], DOCKER_CONFIG);
    assert_eq!(raw["config"]["digest"], b.image_id.as_str());
    let layers = |m: &Value| -> Vec<(Value, Value)> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["mediaType"].clone(), l["digest"].clone()))
            .collect()
    };
    let expected: Vec<(Value, Value)> = layers(&manifest)
        .into_iter()
        .map(|(_, digest)| (Value::from(DOCKER_LAYER_GZIP), digest))
        .collect();
    assert_eq!(layers(&raw), expected);
    let by_layout: Value = serde_json::from_str(&run("skopeo", &["inspect", &as_layout])).unwrap();
    let index = member_json(&std::fs::read(b.path("docker.tar")).unwrap(), "index.json");
    assert_eq!(by_layout["Digest"], index["manifests"][0]["digest"]);
    run(
        "skopeo",
        &["copy", &as_layout, &b.arg("dir:", "docker-as-layout")],
    );
    // A copy out of the docker archive verifies every blob digest on the way.
    run(
        "skopeo",
        &["copy", &tagged, &b.arg("oci:", "from-docker:x")],
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn skopeo_copies_from_the_store_to_a_directory() {
    let b = Built::new();
    let source = format!(
        "oci:{}:docker.io/library/app:latest",
        b.dir.root().display()
    );
    run("skopeo", &["copy", &source, &b.arg("dir:", "copied")]);
    let manifest = std::fs::read(b.path("copied/manifest.json")).unwrap();
    assert_eq!(sha256_hex(&manifest), b.manifest_digest);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    for d in m["layers"].as_array().unwrap().iter().chain([&m["config"]]) {
        let digest = d["digest"].as_str().unwrap();
        let copied = std::fs::read(
            b.path("copied")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap();
        assert_eq!(sha256_hex(&copied), digest);
    }
}

#[test]
fn umoci_unpacks_the_oci_archive_to_the_local_output() {
    let b = Built::new();
    let layout = b.path("extracted");
    std::fs::create_dir(&layout).unwrap();
    run(
        "tar",
        &[
            "-xf",
            b.path("img.tar").to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ],
    );
    let bundle = b.path("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let unpacked = tree(&bundle.join("rootfs"));
    let local = tree(&b.path("rootfs"));
    assert!(
        local.contains_key("app/sub/link") && local.contains_key("usr/bin/run"),
        "{local:?}"
    );
    assert_eq!(
        unpacked.keys().collect::<Vec<_>>(),
        local.keys().collect::<Vec<_>>(),
        "names differ"
    );
    for (path, node) in &local {
        assert_eq!(&unpacked[path], node, "{path} differs");
    }
}

/// Validates `(schema, file)` pairs with the repository's schema helper.
fn validate(pairs: &[(&str, &Path)]) -> String {
    let schema_dir = "/work/shared/conformance/oci-image-spec-schema/schema";
    let script = repo_path("image/tests/image/oci_schema.py");
    let mut args = vec![script.to_str().unwrap().to_owned(), schema_dir.to_owned()];
    for (schema, file) in pairs {
        args.push((*schema).to_owned());
        args.push(file.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("python3", &args)
}

#[test]
fn every_manifest_index_and_config_validates_and_oci_image_tool_accepts_the_layout() {
    let b = Built::new();
    let extract = |archive: &str| {
        let dir = b.path(&format!("{archive}.d"));
        std::fs::create_dir(&dir).unwrap();
        run(
            "tar",
            &[
                "-xf",
                b.path(archive).to_str().unwrap(),
                "-C",
                dir.to_str().unwrap(),
            ],
        );
        dir
    };
    let extracted = extract("img.tar");
    // The docker archive's manifest is in docker media types (no OCI schema applies), but its
    // index.json and oci-layout are OCI's.
    let docker = extract("docker.tar");
    let tar = std::fs::read(b.path("img.tar")).unwrap();
    let index = member_json(&tar, "index.json");
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned();
    let config_hex = b.image_id.strip_prefix("sha256:").unwrap().to_owned();
    let manifest = extracted.join("blobs/sha256").join(&manifest_hex);
    let config = extracted.join("blobs/sha256").join(&config_hex);
    let root = b.dir.root();
    let layout = b.path("layout");
    let out = validate(&[
        ("image-index-schema.json", &extracted.join("index.json")),
        ("image-layout-schema.json", &extracted.join("oci-layout")),
        ("image-manifest-schema.json", &manifest),
        ("config-schema.json", &config),
        ("image-index-schema.json", &layout.join("index.json")),
        ("image-layout-schema.json", &layout.join("oci-layout")),
        ("image-index-schema.json", &docker.join("index.json")),
        ("image-layout-schema.json", &docker.join("oci-layout")),
        ("image-index-schema.json", &root.join("index.json")),
        (
            "image-manifest-schema.json",
            &store::blob_path(&root, &b.manifest_digest),
        ),
    ]);
    assert_eq!(out.matches(": valid ").count(), 10, "{out}");
    assert_eq!(
        member(&tar, &format!("blobs/sha256/{manifest_hex}")),
        std::fs::read(&manifest).unwrap()
    );

    // oci-image-tool 1.0.0-rc1 leaves `--type imageLayout` unimplemented; `--type image` on the
    // layout directory validates the layout (it autodetects "imageLayout"), the index, the
    // manifest, the config and every layer digest.
    for dir in [&layout, &extracted] {
        let out = run(
            "oci-image-tool",
            &[
                "validate",
                "--type",
                "image",
                "--ref",
                "name=latest",
                dir.to_str().unwrap(),
            ],
        );
        assert!(out.contains("Validation succeeded"), "{out}");
    }
    for (kind, file) in [
        ("manifest", &manifest),
        ("config", &config),
        ("imageIndex", &layout.join("index.json")),
    ] {
        run(
            "oci-image-tool",
            &["validate", "--type", kind, file.to_str().unwrap()],
        );
    }
    // The validator can fail: a layout with a corrupt layer is rejected.
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let layer = layout.join("blobs/sha256").join(
        m["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let status = Command::new("oci-image-tool")
        .args([
            "validate",
            "--type",
            "image",
            "--ref",
            "name=latest",
            layout.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "a corrupt layout passed oci-image-tool"
    );
}
