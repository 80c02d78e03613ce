//! Interop: skopeo reads the store as an OCI layout, and the manifest, config and `index.json`
//! validate against the OCI image-spec JSON schemas. Both tools must be installed: a missing one
//! fails the test.

use std::fs;
use std::path::Path;

use dray_image::{assemble, tag_image};
use dray_llb::ImageRef;
use serde_json::Value;

use crate::support::{config, opts, run, snapshot, store};

#[test]
fn skopeo_inspects_and_copies_a_tagged_image_with_the_same_digests() {
    let (dir, store) = store();
    let s0 = snapshot(
        &store,
        None,
        &[("etc/", None), ("etc/os", Some(b"dray"))],
        "s0",
    );
    let s1 = snapshot(&store, Some(&s0), &[("app", Some(b"#!/bin/sh\n"))], "s1");
    let built = assemble(
        &store,
        &s1.chain,
        None,
        config(&[("A", true), ("B", true)]),
        &opts(),
    )
    .unwrap();
    let name = ImageRef::parse("app").unwrap();
    tag_image(&store, &name, &built).unwrap();

    let root = store.root().path().to_str().unwrap().to_owned();
    let oci = format!("oci:{root}:docker.io/library/app:latest");
    let inspect: Value = serde_json::from_str(&run("skopeo", &["inspect", &oci])).unwrap();
    assert_eq!(inspect["Digest"], built.manifest_digest.to_string());
    let layers: Vec<String> = built.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(inspect["Layers"], serde_json::json!(layers));
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");

    let raw_config = run("skopeo", &["inspect", "--raw", "--config", &oci]);
    assert_eq!(
        raw_config.as_bytes(),
        store.blobs().read(&built.config_digest).unwrap().as_slice()
    );

    let out = dir.path().join("copy");
    run("skopeo", &["copy", &oci, &format!("dir:{}", out.display())]);
    let manifest = fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(dray_llb::Digest::of(&manifest), built.manifest_digest);
    for d in layers.iter().chain([&built.config_digest.to_string()]) {
        let hex = d.strip_prefix("sha256:").unwrap();
        let copied = fs::read(out.join(hex)).unwrap();
        assert_eq!(dray_llb::Digest::of(&copied).to_string(), *d);
    }
}

#[test]
fn manifest_config_and_index_validate_against_the_oci_schemas() {
    let (dir, store) = store();
    let s0 = snapshot(&store, None, &[("f", Some(b"x"))], "s0");
    let s1 = snapshot(&store, Some(&s0), &[], "empty");
    let cfg = config(&[("RUN f", true), ("WORKDIR /", true), ("CMD x", false)]);
    let built = assemble(&store, &s1.chain, None, cfg, &opts()).unwrap();
    tag_image(&store, &ImageRef::parse("schema/check:1").unwrap(), &built).unwrap();

    let m = dir.path().join("manifest.json");
    let c = dir.path().join("config.json");
    fs::write(&m, store.blobs().read(&built.manifest_digest).unwrap()).unwrap();
    fs::write(&c, store.blobs().read(&built.config_digest).unwrap()).unwrap();
    let index = store.root().path().join("index.json");
    let layout = store.root().path().join("oci-layout");
    let schema_dir = Path::new("/work/shared/conformance/oci-image-spec-schema/schema");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image/oci_schema.py");
    let args = [
        script.to_str().unwrap(),
        schema_dir.to_str().unwrap(),
        "image-manifest-schema.json",
        m.to_str().unwrap(),
        "config-schema.json",
        c.to_str().unwrap(),
        "image-index-schema.json",
        index.to_str().unwrap(),
        "image-layout-schema.json",
        layout.to_str().unwrap(),
    ];
    let out = run("python3", &args);
    assert_eq!(out.matches(": valid ").count(), 4, "{out}");

    // The check can fail: a manifest with a bad schemaVersion is rejected.
    let mut bad: Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    bad["schemaVersion"] = 3.into();
    fs::write(&m, serde_json::to_vec(&bad).unwrap()).unwrap();
    let status = std::process::Command::new("python3")
        .args(&args[..4])
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "an invalid manifest passed the schema check"
    );
}
