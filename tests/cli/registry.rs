//! Registries end to end against a real `docker-registry` on loopback (see
//! `registry_harness.rs`): pull of an image made by umoci and copied in by skopeo, push read back
//! by skopeo, platform selection, credentials, and faults. Tests that need pulled layers
//! *unpacked* live in `registry_build.rs`.

use std::process::Output;

use crate::harness::{TestDir, text};
use crate::registry_harness::{TestRegistry, layout_descriptor, layout_index, umoci_image};

/// `dray --root ROOT ARGS…` with docker's config in the test dir (never the user's).
fn dray(t: &TestDir, args: &[&str]) -> Output {
    t.dray()
        .arg("--root")
        .arg(t.root())
        .args(args)
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run dray")
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "dray failed:\n{stdout}\n{stderr}");
    stdout
}

fn fails(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        !out.status.success(),
        "dray should fail:\n{stdout}\n{stderr}"
    );
    stderr
}

fn store_has_blob(t: &TestDir, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    t.root().join("blobs/sha256").join(hex).exists()
}

fn ingest_is_empty(t: &TestDir) -> bool {
    std::fs::read_dir(t.root().join("ingest"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// A two-layer image made by umoci, pushed by skopeo as `NAME`; returns the layout.
fn umoci_pushed(t: &TestDir, reg: &TestRegistry, name: &str) -> std::path::PathBuf {
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
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), name, false);
    layout
}

#[test]
fn pull_of_an_image_made_by_umoci_stores_verified_blobs_and_names_it() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "x:1");
    let name = format!("{}/x:1", reg.host());
    let raw = reg.skopeo_inspect("x:1", true);
    let inspect = reg.skopeo_inspect("x:1", false);

    let out = dray(&t, &["pull", &name]);
    ok(&out);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!("Digest: {}", inspect["Digest"].as_str().unwrap())),
        "{stderr}"
    );
    for layer in raw["layers"].as_array().unwrap() {
        assert!(
            store_has_blob(&t, layer["digest"].as_str().unwrap()),
            "{layer}"
        );
    }
    assert!(store_has_blob(
        &t,
        raw["config"]["digest"].as_str().unwrap()
    ));
    assert!(ingest_is_empty(&t));
    let images = ok(&dray(&t, &["images"]));
    assert!(images.contains(&format!("{}/x", reg.host())), "{images}");
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&dray(&t, &["inspect", &name]))).unwrap();
    assert_eq!(inspected[0]["Descriptor"]["digest"], inspect["Digest"]);

    // Pulled again: nothing is downloaded (verified blobs are never fetched twice).
    let before = reg.blob_gets().len();
    let out = dray(&t, &["pull", &name]);
    ok(&out);
    assert_eq!(reg.blob_gets().len(), before, "{}", reg.log());
    assert!(
        text(&out).1.contains("0 layers downloaded"),
        "{}",
        text(&out).1
    );
}

fn build_three_layers(t: &TestDir, tag: &str) -> Output {
    t.write("ctx/a.txt", "layer a\n");
    t.write("ctx/b.txt", "layer b ".repeat(1000));
    t.write("ctx/c.txt", "layer c\n");
    t.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nCOPY c.txt /c.txt\n",
    );
    t.dray()
        .arg("--root")
        .arg(t.root())
        .args(["build", "-q", "-t", tag, "ctx"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run dray build")
}

#[test]
fn push_of_a_multi_layer_image_reads_back_with_skopeo_with_the_same_digests() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let name = format!("{}/app:1", reg.host());
    ok(&build_three_layers(&t, &name));
    let local: serde_json::Value =
        serde_json::from_str(&ok(&dray(&t, &["inspect", &name]))).unwrap();
    let local_digest = local[0]["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    let meta = t.path().join("push.json");
    let out = dray(
        &t,
        &["push", &name, "--metadata-file", meta.to_str().unwrap()],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("1: digest: {local_digest}")),
        "{stdout}"
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], local_digest.as_str());

    let inspect = reg.skopeo_inspect("app:1", false);
    assert_eq!(inspect["Digest"], local_digest.as_str());
    let raw = reg.skopeo_inspect("app:1", true);
    assert_eq!(raw["layers"].as_array().unwrap().len(), 3);
    // The registry holds the exact local bytes, and skopeo copies every blob back (verifying).
    let local_manifest = std::fs::read(
        t.root()
            .join("blobs/sha256")
            .join(local_digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    assert_eq!(
        raw,
        serde_json::from_slice::<serde_json::Value>(&local_manifest).unwrap()
    );
    let back = t.path().join("back");
    reg.skopeo_pull("app:1", &back, "1");
    assert_eq!(
        layout_descriptor(&back, "1")["digest"],
        local_digest.as_str()
    );

    // A second push uploads nothing; a push to another repository mounts every blob.
    let out = dray(&t, &["push", &name]);
    ok(&out);
    assert!(
        text(&out).1.contains("0 blobs uploaded"),
        "{}",
        text(&out).1
    );
    let other = format!("{}/other:1", reg.host());
    ok(&dray(&t, &["tag", &name, &other]));
    let out = dray(&t, &["push", &other]);
    ok(&out);
    assert!(text(&out).1.contains("4 mounted"), "{}", text(&out).1);
    assert_eq!(
        reg.skopeo_inspect("other:1", false)["Digest"],
        local_digest.as_str()
    );
}

#[test]
fn build_output_type_registry_pushes_and_records_the_digest() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let name = format!("{}/out:2", reg.host());
    t.write("ctx/f.txt", "pushed by build\n");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY f.txt /f.txt\n");
    let meta = t.path().join("meta.json");
    let out = t.build(&[
        "--output",
        &format!("type=registry,name={name}"),
        "--metadata-file",
        meta.to_str().unwrap(),
    ]);
    ok(&out);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let inspect = reg.skopeo_inspect("out:2", false);
    assert_eq!(meta["containerimage.digest"], inspect["Digest"]);
    assert_eq!(meta["containerimage.pushed.digest"], inspect["Digest"]);
}

#[test]
fn a_multi_platform_index_resolves_to_the_platform_asked_for() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let layout = t.path().join("multi");
    umoci_image(&layout, "amd", "amd64", &[&[("arch", "amd64\n")]]);
    umoci_image(&layout, "arm", "arm64", &[&[("arch", "arm64\n")]]);
    layout_index(&layout, "all", &[("amd", "amd64"), ("arm", "arm64")]);
    reg.skopeo_push(
        &format!("oci:{}:all", layout.display()),
        "multi:latest",
        true,
    );
    let name = format!("{}/multi", reg.host());

    for (platform, tag, arch) in [
        ("linux/arm64", "arm", "arm64"),
        ("linux/amd64", "amd", "amd64"),
    ] {
        ok(&dray(&t, &["pull", "--platform", platform, &name]));
        let inspected: serde_json::Value =
            serde_json::from_str(&ok(&dray(&t, &["inspect", &name]))).unwrap();
        assert_eq!(inspected[0]["Architecture"], arch);
        assert_eq!(
            inspected[0]["Descriptor"]["digest"],
            layout_descriptor(&layout, tag)["digest"]
        );
    }

    let stderr = fails(&dray(&t, &["pull", "--platform", "linux/s390x", &name]));
    assert!(
        stderr.contains("no manifest for platform linux/s390x"),
        "{stderr}"
    );
    assert!(
        stderr.contains("available: linux/amd64, linux/arm64"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}/multi:latest", reg.host())),
        "{stderr}"
    );

    // The same images behind a Docker manifest list (Docker schema 2 manifests).
    reg.skopeo_push_docker_list(&format!("oci:{}:all", layout.display()), "list:latest");
    assert_eq!(
        reg.skopeo_inspect("list:latest", true)["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let list = format!("{}/list", reg.host());
    ok(&dray(&t, &["pull", "--platform", "linux/arm64", &list]));
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&dray(&t, &["inspect", &list]))).unwrap();
    assert_eq!(inspected[0]["Architecture"], "arm64");
    assert_eq!(
        inspected[0]["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let stderr = fails(&dray(&t, &["pull", "--platform", "linux/s390x", &list]));
    assert!(
        stderr.contains("available: linux/amd64, linux/arm64"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_or_truncated_blob_is_rejected_naming_its_digest_and_nothing_is_published() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "x:1");
    let raw = reg.skopeo_inspect("x:1", true);
    let layers: Vec<String> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();

    // Same size, other bytes.
    let path = reg.blob_path(&layers[1]);
    let original = std::fs::read(&path).unwrap();
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let name = format!("{}/x:1", reg.host());
    let stderr = fails(&dray(&t, &["pull", &name]));
    assert!(
        stderr.contains(&format!("blob {} failed verification", layers[1])),
        "{stderr}"
    );
    assert!(stderr.contains(&name), "{stderr}");
    assert!(!store_has_blob(&t, &layers[1]));
    assert_eq!(partial_len(&t, &layers[1]), None, "bad bytes are not kept");
    assert!(only_partials_of(&t, &[&layers[0]]));
    assert!(!ok(&dray(&t, &["images"])).contains("/x"));

    // Truncated (with the other layer restored: layers download concurrently, so two bad blobs
    // would race for the error).
    std::fs::write(reg.blob_path(&layers[1]), &original).unwrap();
    let path = reg.blob_path(&layers[0]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let t2 = TestDir::new();
    let stderr = fails(&dray(&t2, &["pull", &name]));
    assert!(stderr.contains(&layers[0]), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(!store_has_blob(&t2, &layers[0]));
    assert_eq!(partial_len(&t2, &layers[0]), None, "bad bytes are not kept");
    assert!(only_partials_of(&t2, &[&layers[1]]));
}

/// Whether `ingest/` holds nothing but partial downloads of `good` blobs (a download cancelled
/// because another layer failed keeps its bytes for the next run).
fn only_partials_of(t: &TestDir, good: &[&str]) -> bool {
    std::fs::read_dir(t.root().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .all(|n| good.iter().any(|g| n == format!("{}.partial", &g[7..])))
}

#[test]
fn unknown_images_and_a_registry_that_is_down_give_one_clear_error() {
    let t = TestDir::new();
    let mut reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "x:1");
    let host = reg.host();

    let stderr = fails(&dray(&t, &["pull", &format!("{host}/nosuch:1")]));
    assert!(
        stderr.contains(&format!("image {host}/nosuch:1 not found")),
        "{stderr}"
    );
    let stderr = fails(&dray(&t, &["pull", &format!("{host}/x:2")]));
    assert!(
        stderr.contains(&format!("image {host}/x:2 not found")),
        "{stderr}"
    );

    t.write("ctx/Dockerfile", format!("FROM {host}/x:nosuch\n"));
    let stderr = text(&t.build(&[])).1;
    assert!(
        stderr.contains(&format!("{host}/x:nosuch not found in the registry")),
        "{stderr}"
    );

    reg.stop();
    let stderr = fails(&dray(&t, &["pull", &format!("{host}/x:1")]));
    assert!(
        stderr.contains(&format!("registry {host} is unreachable")),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn basic_auth_registry_works_after_login_and_not_before_or_after_logout() {
    let t = TestDir::new();
    let reg = TestRegistry::start_with_auth("alice", "wonderland");
    umoci_pushed(&t, &reg, "x:1");
    let host = reg.host();
    let name = format!("{host}/x:1");
    let config = t.path().join("docker-config/config.json");

    let stderr = fails(&dray(&t, &["pull", &name]));
    assert!(stderr.contains("access denied"), "{stderr}");
    assert!(stderr.contains(&name), "{stderr}");

    let stderr = fails(&dray(&t, &["login", &host, "-u", "alice", "-p", "wrong"]));
    assert!(
        stderr.contains("login to") && stderr.contains("rejected"),
        "{stderr}"
    );
    assert!(!config.exists());

    let out = t
        .dray()
        .arg("--root")
        .arg(t.root())
        .args(["login", &host, "-u", "alice", "--password-stdin"])
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .write_stdin("wonderland\n")
        .output()
        .unwrap();
    assert!(ok(&out).contains("Login Succeeded"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(saved["auths"][&host]["auth"], "YWxpY2U6d29uZGVybGFuZA==");

    ok(&dray(&t, &["pull", &name]));
    let pushed = format!("{host}/copy:1");
    ok(&dray(&t, &["tag", &name, &pushed]));
    ok(&dray(&t, &["push", &pushed]));
    assert!(reg.skopeo_inspect("copy:1", false)["Digest"].is_string());

    assert!(ok(&dray(&t, &["logout", &host])).contains("Removing login credentials"));
    let t2 = TestDir::new();
    std::fs::create_dir_all(t2.path().join("docker-config")).unwrap();
    std::fs::copy(&config, t2.path().join("docker-config/config.json")).unwrap();
    let stderr = fails(&dray(&t2, &["pull", &name]));
    assert!(stderr.contains("access denied"), "{stderr}");
}

/// `FROM` an image that is in the registry but whose layers dray already has as snapshots (it
/// built and pushed it): the build resolves the tag and downloads no blob; with `--pull` and the
/// registry down it still builds, with a warning.
#[test]
fn a_build_resolves_the_tag_and_downloads_no_layer_it_has_and_survives_a_down_registry() {
    let t = TestDir::new();
    let mut reg = TestRegistry::start();
    let base = format!("{}/base:1", reg.host());
    ok(&build_three_layers(&t, &base));
    ok(&dray(&t, &["push", &base]));
    ok(&dray(&t, &["rmi", &base]));

    std::fs::remove_dir_all(t.path().join("ctx")).unwrap();
    t.write("ctx/top.txt", "on top\n");
    t.write(
        "ctx/Dockerfile",
        format!("FROM {base}\nCOPY top.txt /top.txt\n"),
    );
    let gets = reg.blob_gets().len();
    let first = t.build(&["-t", "app"]);
    ok(&first);
    assert_eq!(
        reg.blob_gets().len(),
        gets,
        "no blob is downloaded:\n{}",
        reg.log()
    );
    // The base is named locally once all its blobs are here, as after `docker build`.
    assert!(ok(&dray(&t, &["images"])).contains("/base"));

    // --pull asks the registry again; the head key hits, so no blob is fetched.
    let manifests = |reg: &TestRegistry| reg.log().matches("/manifests/1 HTTP").count();
    let m = manifests(&reg);
    let out = t.build(&["--pull", "-t", "app"]);
    ok(&out);
    assert!(manifests(&reg) > m, "--pull resolved against the registry");
    assert_eq!(reg.blob_gets().len(), gets);
    assert_eq!(text(&out).0, text(&first).0, "same image ID");

    reg.stop();
    let out = t.build(&["--pull", "-t", "app"]);
    ok(&out);
    let (stdout, stderr) = text(&out);
    assert!(
        stderr.contains("warning:") && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert_eq!(stdout, text(&first).0);
}

#[test]
fn insecure_registry_flag_and_bad_output_specs_are_checked() {
    let t = TestDir::new();
    t.write("ctx/Dockerfile", "FROM scratch\n");
    let stderr = fails(&t.build(&["--output", "type=registry"]));
    assert!(stderr.contains("need name=REGISTRY/NAME:TAG"), "{stderr}");
    let stderr = fails(&t.build(&["--output", "type=nosuch,name=x"]));
    assert!(
        stderr.contains("unknown output type \"nosuch\""),
        "{stderr}"
    );
    let stderr = fails(&t.build(&["--output", "type=registry,name=x,dest=y"]));
    assert!(stderr.contains("dest= and tar= do not apply"), "{stderr}");
}

/// Incompressible bytes (so a gzip layer stays this big), from a fixed xorshift seed.
pub(crate) fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 94) as u8)
        })
        .collect()
}

/// The bytes of `ingest/<hex>.partial` for `digest`, if that partial download exists.
fn partial_len(t: &TestDir, digest: &str) -> Option<u64> {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    std::fs::metadata(t.root().join("ingest").join(format!("{hex}.partial")))
        .ok()
        .map(|m| m.len())
}

#[test]
fn a_registry_stopped_mid_pull_gives_a_clear_error_and_a_rerun_resumes_and_completes() {
    let t = TestDir::new();
    let mut reg = TestRegistry::start();
    let layout = t.path().join("big");
    let data = noise(6 << 20);
    umoci_image(&layout, "v1", "amd64", &[&[("big.bin", data.as_str())]]);
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "big:1", false);
    let raw = reg.skopeo_inspect("big:1", true);
    let layer = raw["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_size = raw["layers"][0]["size"].as_u64().unwrap();
    // ~3 MiB/s: the 6 MiB layer takes about two seconds, long enough to stop the registry.
    let proxy = crate::registry_harness::SlowProxy::start(reg.host(), 3 << 20);
    let name = format!("{}/big:1", proxy.host());

    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dray"))
        .arg("--root")
        .arg(t.root())
        .args(["pull", &name])
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.relayed() < (1 << 20) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    reg.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = fails(&out);
    assert!(stderr.contains("is unreachable"), "{stderr}");
    assert!(stderr.contains(&layer), "names the blob: {stderr}");
    assert!(!store_has_blob(&t, &layer), "nothing unverified is visible");
    // The bytes that arrived are kept for the next run, outside blobs/.
    let kept = partial_len(&t, &layer).expect("the partial download is kept in ingest/");
    assert!(kept > 0 && kept < layer_size, "{kept} of {layer_size}");

    reg.restart();
    let relayed_before = proxy.relayed();
    ok(&dray(&t, &["pull", &name]));
    assert!(store_has_blob(&t, &layer));
    assert_eq!(partial_len(&t, &layer), None, "the partial became the blob");
    assert!(ingest_is_empty(&t));
    // Resumed, not restarted: the registry answered a Range request with 206, and the rerun
    // moved fewer bytes than the layer minus what was already there (plus headers and config).
    let log = reg.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("/blobs/{layer} HTTP")) && l.contains("\" 206 ")),
        "a 206 Partial Content answer for {layer}:\n{log}"
    );
    let rerun = proxy.relayed() - relayed_before;
    assert!(
        rerun < layer_size - kept + (64 << 10),
        "the rerun moved {rerun} bytes; {kept} of {layer_size} were already here"
    );
    // And the blob is the right one.
    let stored = std::fs::read(t.root().join("blobs/sha256").join(&layer[7..])).unwrap();
    use sha2::Digest as _;
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&stored))),
        layer
    );
}

#[test]
fn an_unsupported_layer_media_type_is_refused_naming_the_layer() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "weird:base");
    let mut manifest = reg.skopeo_inspect("weird:base", true);
    let layer = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    manifest["layers"][1]["mediaType"] = "application/vnd.example.not-a-layer".into();
    let status = reg.put_manifest(
        "weird",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert!(status.contains("201"), "{status}");
    let name = format!("{}/weird:1", reg.host());
    let stderr = fails(&dray(&t, &["pull", &name]));
    assert!(
        stderr.contains(&format!(
            "unsupported media type \"application/vnd.example.not-a-layer\" ({layer})"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&name), "{stderr}");
    assert!(!store_has_blob(&t, &layer));
}

/// HTTPS end to end: a loopback registry speaking TLS with a certificate from a test CA. dray
/// probes HTTPS first on loopback; with the CA given through `SSL_CERT_FILE` it pulls and pushes
/// over TLS; without it the error names the registry and says the certificate is not trusted;
/// `--insecure-registry` accepts the certificate unverified, as docker does.
#[test]
fn an_https_registry_is_used_with_its_ca_from_ssl_cert_file_and_refused_without_it() {
    let t = TestDir::new();
    let reg = TestRegistry::start_with_tls();
    umoci_pushed(&t, &reg, "x:1");
    let host = reg.host();
    let name = format!("{host}/x:1");
    let with_ca = |args: &[&str]| {
        t.dray()
            .arg("--root")
            .arg(t.root())
            .args(args)
            .env("DOCKER_CONFIG", t.path().join("docker-config"))
            .env("SSL_CERT_FILE", reg.ca_certificate())
            .output()
            .expect("run dray")
    };

    let raw = reg.skopeo_inspect("x:1", true);
    let handshake_errors = |reg: &TestRegistry| reg.log().matches("TLS handshake error").count();
    let before = handshake_errors(&reg);
    ok(&with_ca(&["pull", &name]));
    for layer in raw["layers"].as_array().unwrap() {
        assert!(store_has_blob(&t, layer["digest"].as_str().unwrap()));
    }
    let pushed = format!("{host}/copy:1");
    ok(&with_ca(&["tag", &name, &pushed]));
    ok(&with_ca(&["push", &pushed]));
    assert_eq!(
        reg.skopeo_inspect("copy:1", false)["Digest"],
        reg.skopeo_inspect("x:1", false)["Digest"]
    );
    // Every request dray made went over TLS: the registry logs a plain-HTTP request to its TLS
    // port (or a refused certificate) as a handshake error.
    let log = reg.log();
    assert_eq!(handshake_errors(&reg), before, "{log}");
    assert!(log.contains("\"GET /v2/x/blobs/"), "{log}");

    // Without the CA: one clear error, nothing pulled.
    let t2 = TestDir::new();
    let stderr = fails(&dray(&t2, &["pull", &name]));
    assert!(
        stderr.contains(&format!(
            "the TLS certificate of registry {host} is not trusted"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("SSL_CERT_FILE"), "{stderr}");
    assert!(!ok(&dray(&t2, &["images"])).contains("/x"));

    // Listed as insecure: HTTPS without verification.
    ok(&dray(&t2, &["pull", "--insecure-registry", &host, &name]));
    assert!(ok(&dray(&t2, &["images"])).contains(&format!("{host}/x")));
}

/// docker's credential helpers: `credHelpers[host]` (and then `credsStore`) name a
/// `docker-credential-<name>` program on `PATH`; `dray login` stores through it (leaving
/// `config.json` alone) and pulls get the credentials from it. The helper here is a small shell
/// program speaking docker's protocol (`store` JSON on stdin; `get` the server URL on stdin).
#[test]
fn credential_helpers_store_and_supply_the_credentials() {
    let t = TestDir::new();
    let reg = TestRegistry::start_with_auth("alice", "wonderland");
    umoci_pushed(&t, &reg, "x:1");
    let host = reg.host();
    let name = format!("{host}/x:1");
    let bin = t.path().join("bin");
    let saved = bin.join("saved.json");
    t.write(
        "bin/docker-credential-dray-test",
        format!(
            "#!/bin/sh\nset -e\ncase \"$1\" in\n  store) cat > {saved} ;;\n  get) read -r url || true; if [ -f {saved} ] && grep -qF \"\\\"ServerURL\\\":\\\"$url\\\"\" {saved}; then cat {saved}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) rm -f {saved} ;;\nesac\n",
            saved = saved.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("docker-credential-dray-test"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config = t.path().join("docker-config/config.json");
    let with_helper = |t: &TestDir, args: &[&str]| {
        t.dray()
            .arg("--root")
            .arg(t.root())
            .args(args)
            .env("DOCKER_CONFIG", config.parent().unwrap())
            .env("PATH", &path)
            .output()
            .expect("run dray")
    };
    let helpers = format!("{{\"credHelpers\":{{\"{host}\":\"dray-test\"}}}}");
    t.write("docker-config/config.json", &helpers);

    let stderr = fails(&with_helper(&t, &["pull", &name]));
    assert!(stderr.contains("access denied"), "{stderr}");
    let out = with_helper(&t, &["login", &host, "-u", "alice", "-p", "wonderland"]);
    assert!(ok(&out).contains("Login Succeeded"));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(stored["Username"], "alice");
    assert_eq!(stored["Secret"], "wonderland");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        helpers,
        "the helper holds the secret, not config.json"
    );
    ok(&with_helper(&t, &["pull", &name]));

    // `credsStore`: the default helper for every registry.
    t.write(
        "docker-config/config.json",
        "{\"credsStore\":\"dray-test\"}",
    );
    let t2 = TestDir::new();
    ok(&with_helper(&t2, &["pull", &name]));
    assert!(ok(&dray(&t2, &["images"])).contains(&format!("{host}/x")));
}

/// A partial download whose kept bytes are garbage (as a crash can leave): the resumed blob fails
/// verification, the partial is thrown away, and the same pull downloads the blob whole.
#[test]
fn a_corrupt_partial_download_is_replaced_by_a_whole_download() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "x:1");
    let raw = reg.skopeo_inspect("x:1", true);
    let layer = raw["layers"][1]["digest"].as_str().unwrap().to_owned();
    let size = raw["layers"][1]["size"].as_u64().unwrap() as usize;
    t.write(
        &format!("root/ingest/{}.partial", &layer[7..]),
        vec![0x5a; size / 2],
    );
    let name = format!("{}/x:1", reg.host());
    ok(&dray(&t, &["pull", &name]));
    assert!(store_has_blob(&t, &layer));
    assert!(ingest_is_empty(&t));
    assert!(
        reg.log()
            .lines()
            .any(|l| l.contains(&format!("/blobs/{layer} HTTP")) && l.contains("\" 200 ")),
        "downloaded whole:\n{}",
        reg.log()
    );
}

/// 5xx answers are retried with backoff: a registry that fails the first requests with 503 is
/// pulled from anyway; one that keeps failing gives one clear error after the retries.
#[test]
fn service_unavailable_answers_are_retried_then_reported() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    umoci_pushed(&t, &reg, "x:1");
    let flaky = crate::registry_harness::FlakyProxy::start(reg.host(), 2);
    let name = format!("{}/x:1", flaky.host());
    ok(&dray(&t, &["pull", &name]));
    assert_eq!(flaky.refused(), 2);
    let raw = reg.skopeo_inspect("x:1", true);
    for layer in raw["layers"].as_array().unwrap() {
        assert!(store_has_blob(&t, layer["digest"].as_str().unwrap()));
    }

    let down = crate::registry_harness::FlakyProxy::start(reg.host(), u64::MAX);
    let name = format!("{}/x:1", down.host());
    let t2 = TestDir::new();
    let stderr = fails(&dray(&t2, &["pull", &name]));
    assert!(stderr.contains("503"), "{stderr}");
    assert!(stderr.contains(&name), "{stderr}");
    // One try and three retries of the manifest request, at least.
    assert!(down.refused() >= 4, "retried: {} requests", down.refused());
}
