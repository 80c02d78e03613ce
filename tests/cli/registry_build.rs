//! Builds upon images pulled from a registry: pulled layers are unpacked into snapshots (the
//! applier, `image/src/apply/`) and `COPY --from` / `RUN` work on them.

use std::process::Output;

use crate::harness::{TestDir, text};
use crate::registry_harness::{TestRegistry, umoci_busybox_image, umoci_image};

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "dray failed:\n{stdout}\n{stderr}");
    stdout
}

/// The files of the top layer of a local image, read from its blob (gzip tar).
fn top_layer_files(t: &TestDir, name: &str) -> Vec<(String, Vec<u8>)> {
    let out = t
        .dray()
        .arg("--root")
        .arg(t.root())
        .args(["inspect", name])
        .output()
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let manifest_digest = inspected[0]["Descriptor"]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        t.root()
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).unwrap()).unwrap();
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = std::fs::File::open(blob(&top)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        out.push((path, bytes));
    }
    out
}

#[test]
fn build_upon_an_umoci_image_pulled_from_the_registry_with_copy_from_the_image() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let layout = t.path().join("layout");
    umoci_image(
        &layout,
        "v1",
        "amd64",
        &[
            &[("etc/base.txt", "base layer\n")],
            &[("app/hello.txt", "hello from umoci\n")],
        ],
    );
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "x:1", false);
    let base = format!("{}/x:1", reg.host());
    t.write("ctx/mine.txt", "mine\n");
    t.write(
        "ctx/Dockerfile",
        format!(
            "FROM {base}\nCOPY mine.txt /mine.txt\nCOPY --from={base} /app/hello.txt /copied.txt\n"
        ),
    );
    ok(&t.build(&["-t", "app"]));
    let files = top_layer_files(&t, "app");
    assert!(
        files
            .iter()
            .any(|(p, b)| p.ends_with("copied.txt") && b == b"hello from umoci\n"),
        "{files:?}"
    );
    // The base's two layers come first, unchanged.
    let raw = reg.skopeo_inspect("x:1", true);
    let out = t
        .dray()
        .arg("--root")
        .arg(t.root())
        .args(["inspect", "app"])
        .output()
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        inspected[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        4
    );
    let _ = raw;
}

#[test]
fn rebuilding_with_everything_cached_downloads_no_layer() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let layout = t.path().join("layout");
    umoci_image(&layout, "v1", "amd64", &[&[("a", "a\n")], &[("b", "b\n")]]);
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "x:1", false);
    let base = format!("{}/x:1", reg.host());
    t.write("ctx/f.txt", "f\n");
    t.write(
        "ctx/Dockerfile",
        format!("FROM {base}\nCOPY f.txt /f.txt\n"),
    );

    let before = reg.blob_gets().len();
    let first = t.build(&["-t", "app"]);
    ok(&first);
    let downloaded = reg.blob_gets().len() - before;
    assert_eq!(downloaded, 3, "config + 2 layers:\n{}", reg.log());

    let gets = reg.blob_gets().len();
    let again = t.build(&["--pull", "-t", "app"]);
    ok(&again);
    assert_eq!(
        reg.blob_gets().len(),
        gets,
        "no blob downloaded:\n{}",
        reg.log()
    );
    assert_eq!(text(&again).0, text(&first).0);
}

/// The "built upon (RUN on it)": an image made by umoci (with Debian's static busybox as
/// its shell) and pushed by skopeo is pulled by dray, and a `RUN` step executes inside it, reading
/// a file of the base and writing one into the new layer.
#[test]
fn a_run_step_executes_inside_an_umoci_image_pulled_from_the_registry() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let layout = t.path().join("layout");
    umoci_busybox_image(&layout, "v1", &[("etc/base.txt", "made by umoci\n")]);
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "shell:1", false);
    let base = format!("{}/shell:1", reg.host());
    t.write(
        "ctx/Dockerfile",
        format!(
            "FROM {base}\nRUN cat /etc/base.txt > /ran.txt && echo \"ran in $0\" >> /ran.txt\n"
        ),
    );
    ok(&t.build(&["-t", "app"]));
    let files = top_layer_files(&t, "app");
    let ran = files
        .iter()
        .find(|(p, _)| p.trim_start_matches("./") == "ran.txt")
        .unwrap_or_else(|| panic!("the RUN step wrote /ran.txt into its layer: {files:?}"));
    let ran = String::from_utf8_lossy(&ran.1);
    assert_eq!(ran, "made by umoci\nran in /bin/sh\n");
    // The base's busybox layers stay below the RUN's layer, untouched.
    assert!(
        !files.iter().any(|(p, _)| p.ends_with("busybox")),
        "the RUN layer holds only what RUN changed: {files:?}"
    );
    let raw = reg.skopeo_inspect("shell:1", true);
    let out = t
        .dray()
        .arg("--root")
        .arg(t.root())
        .args(["inspect", "app"])
        .output()
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        inspected[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        raw["layers"].as_array().unwrap().len() + 1
    );
}

/// `RUN --mount=from=IMAGE` with an image pulled from the registry, and
/// `--output type=image,name=…,push=true` pushing the result back: skopeo reads the pushed
/// manifest, whose digest is the one dray recorded.
#[test]
fn run_mount_from_a_registry_image_and_push_true_output() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let layout = t.path().join("layout");
    umoci_busybox_image(&layout, "v1", &[]);
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "shell:1", false);
    let data = t.path().join("data");
    umoci_image(
        &data,
        "v1",
        "amd64",
        &[&[("etc/data.txt", "mounted data\n")]],
    );
    reg.skopeo_push(&format!("oci:{}:v1", data.display()), "data:1", false);
    let (base, mounted) = (
        format!("{}/shell:1", reg.host()),
        format!("{}/data:1", reg.host()),
    );
    t.write(
        "ctx/Dockerfile",
        format!(
            "FROM {base}\nRUN --mount=type=bind,from={mounted},source=/etc,target=/m cat /m/data.txt > /got.txt\n"
        ),
    );
    let target = format!("{}/result:1", reg.host());
    let meta = t.path().join("meta.json");
    ok(&t.build(&[
        "-t",
        "app",
        "--output",
        &format!("type=image,name={target},push=true"),
        "--metadata-file",
        meta.to_str().unwrap(),
    ]));
    let files = top_layer_files(&t, "app");
    assert!(
        files
            .iter()
            .any(|(p, b)| p.trim_start_matches("./") == "got.txt" && b == b"mounted data\n"),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|(p, _)| p.contains("data.txt")),
        "the mount is not part of the layer: {files:?}"
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        meta["containerimage.pushed.digest"],
        reg.skopeo_inspect("result:1", false)["Digest"]
    );
}
