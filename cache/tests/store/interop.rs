//! The root is an OCI image layout that other tools read: `skopeo` must be able
//! to inspect and copy a tagged image as `oci:<root>:<name>`.

use std::process::Command;

use dray_cache::{Descriptor, Digest, Store};
use serde_json::json;

use crate::store;

const NAME: &str = "docker.io/library/app:latest";

/// Tags a one-layer image (an empty tar) under [`NAME`].
fn tag_minimal_image(store: &Store) {
    let tar = vec![0u8; 1024]; // an empty tar archive: two zero blocks
    let layer = store.blobs().put_bytes(&tar).unwrap();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar)]},
    });
    let config = store
        .blobs()
        .put_bytes(&serde_json::to_vec(&config).unwrap())
        .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest, "size": layer.size}],
    });
    let m = store
        .blobs()
        .put_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    let desc = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        m.digest,
        m.size,
    );
    store.tag(NAME, &desc).unwrap();
}

/// skopeo is a real reader of our output and `.ci/run` installs it: a missing skopeo is a
/// broken test machine, not a reason to skip.
fn require_skopeo() {
    let found = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "skopeo is not installed (apt-get install skopeo; .ci/run does this)"
    );
}

#[test]
fn skopeo_reads_a_tagged_image() {
    require_skopeo();
    let (dir, store) = store();
    tag_minimal_image(&store);
    let src = format!("oci:{}:{NAME}", dir.path().display());

    let out = Command::new("skopeo")
        .args(["inspect", &src])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        info["Digest"],
        store.image(NAME).unwrap().unwrap().digest.to_string()
    );

    // A full copy re-verifies every blob digest.
    let dest = dir.path().join("copy");
    let dest = format!("oci:{}:copied", dest.display());
    let out = Command::new("skopeo")
        .args(["copy", "-q", &src, &dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
