use std::fs;

use dray_cache::{Descriptor, Digest, Error, REF_NAME_ANNOTATION, Store};
use serde_json::{Value, json};

use crate::store;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Stores a config, a layer and a manifest naming them; returns the manifest descriptor.
fn put_image(store: &Store, seed: &str) -> Descriptor {
    let config = store
        .blobs()
        .put_bytes(format!("{{\"seed\":\"{seed}\"}}").as_bytes())
        .unwrap();
    let layer = store.blobs().put_bytes(seed.as_bytes()).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest, "size": layer.size}],
    });
    let m = store
        .blobs()
        .put_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    Descriptor::new(MANIFEST, m.digest, m.size)
}

fn index_json(store: &Store) -> Value {
    serde_json::from_slice(&fs::read(store.root().path().join("index.json")).unwrap()).unwrap()
}

#[test]
fn tag_list_retag_untag() {
    let (_dir, store) = store();
    let one = put_image(&store, "one");
    let two = put_image(&store, "two");
    let name = "docker.io/library/app:latest";

    store.tag(name, &one).unwrap();
    store.tag("docker.io/library/other:1", &two).unwrap();
    let images = store.list_images().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].name, name);
    assert_eq!(images[0].descriptor.digest, one.digest);

    // The file itself is a valid OCI index with the ref-name annotation.
    let idx = index_json(&store);
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        idx["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
        name
    );
    assert_eq!(idx["manifests"][0]["digest"], one.digest.to_string());
    assert_eq!(idx["manifests"][0]["mediaType"], MANIFEST);
    assert_eq!(idx["manifests"][0]["size"], one.size);

    // Re-tagging replaces, in place.
    store.tag(name, &two).unwrap();
    let images = store.list_images().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].name, name);
    assert_eq!(store.image(name).unwrap().unwrap().digest, two.digest);

    assert!(store.untag(name).unwrap());
    assert!(!store.untag(name).unwrap());
    assert_eq!(store.image(name).unwrap(), None);
    assert_eq!(store.list_images().unwrap().len(), 1);
    assert!(
        store
            .root()
            .path()
            .join("tmp")
            .read_dir()
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn tag_refuses_missing_content() {
    let (_dir, store) = store();
    let absent = Descriptor::new(MANIFEST, Digest::of(b"nope"), 4);
    match store.tag("x:1", &absent).unwrap_err() {
        Error::ManifestMissing { name, digest } => {
            assert_eq!(name, "x:1");
            assert_eq!(digest, absent.digest);
        }
        other => panic!("unexpected {other:?}"),
    }
    let img = put_image(&store, "partial");
    let layer = Digest::of(b"partial");
    store.blobs().remove(&layer).unwrap();
    assert!(
        matches!(store.tag("x:1", &img), Err(Error::BlobNotFound { digest }) if digest == layer)
    );
    assert!(store.list_images().unwrap().is_empty());
}

#[test]
fn foreign_entries_and_fields_survive_a_tag() {
    let (_dir, store) = store();
    let img = put_image(&store, "mine");
    let foreign = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": Digest::of(b"someone else's").to_string(),
            "size": 1,
            "platform": {"architecture": "arm64", "os": "linux"}
        }],
        "annotations": {"com.example": "kept"}
    });
    fs::write(store.root().path().join("index.json"), foreign.to_string()).unwrap();
    store.tag("mine:1", &img).unwrap();
    let idx = index_json(&store);
    assert_eq!(idx["annotations"]["com.example"], "kept");
    assert_eq!(idx["manifests"][0]["platform"]["architecture"], "arm64");
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(store.list_images().unwrap().len(), 1);
}

#[test]
fn concurrent_tags_are_not_lost() {
    let (_dir, store) = store();
    let img = put_image(&store, "shared");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            // Separate handles, as separate processes would have.
            let (root, img) = (store.root().clone(), img.clone());
            std::thread::spawn(move || {
                let s = Store::open(&root).unwrap();
                s.tag(&format!("img:{i}"), &img).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.list_images().unwrap().len(), 8);
}
