//! The local image store: tag, list, load (by name and ID prefix), inspect, history, untag,
//! resolve_local and layer_snapshots.

use dray_cache::Store;
use dray_image::{
    BuiltImage, Error, assemble, history_rows, inspect_json, layer_snapshots, list_images,
    load_image, resolve_local, tag_descriptor, tag_image, untag,
};
use dray_llb::{ImageRef, Platform};

use crate::support::{config, opts, snapshot, store};

fn r(name: &str) -> ImageRef {
    ImageRef::parse(name).unwrap()
}

/// Two layers (one 3-byte and one 5-byte file) and an empty WORKDIR step, tagged `app`.
fn built(store: &Store, marker: &[u8]) -> (BuiltImage, Vec<dray_cache::SnapshotId>) {
    let s0 = snapshot(store, None, &[("a", Some(b"aaa"))], "RUN a");
    let s1 = snapshot(store, Some(&s0), &[], "WORKDIR /");
    let s2 = snapshot(store, Some(&s1), &[("m", Some(marker))], "COPY m /");
    let cfg = config(&[
        ("RUN a", true),
        ("WORKDIR /", true),
        ("ENV A=1", false),
        ("COPY m /", true),
    ]);
    let b = assemble(store, &s2.chain, None, cfg, &opts()).unwrap();
    (b, s2.chain)
}

#[test]
fn tag_and_list_show_familiar_names_image_ids_and_sizes() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"12345");
    tag_image(&store, &r("app"), &b).unwrap();
    tag_image(&store, &r("localhost:5000/team/app:v1"), &b).unwrap();
    // Stored under the full normalized name.
    assert!(
        store
            .image("docker.io/library/app:latest")
            .unwrap()
            .is_some()
    );

    let list = list_images(&store).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0].repository.as_str(), list[0].tag.as_str()),
        ("app", "latest")
    );
    assert_eq!(
        (list[1].repository.as_str(), list[1].tag.as_str()),
        ("localhost:5000/team/app", "v1")
    );
    for s in &list {
        assert_eq!(s.image_id, b.config_digest);
        assert_eq!(s.manifest_digest, b.manifest_digest);
        assert_eq!(s.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        let blobs: u64 = b.layers.iter().map(|l| l.size).sum::<u64>()
            + b.manifest.size
            + store.blobs().size(&b.config_digest).unwrap();
        assert_eq!(s.content_size, blobs);
        // Unpacked size: the snapshots' disk usage, at least the 8 bytes of file data.
        assert!(s.size >= 8 && s.size != s.content_size, "{s:?}");
    }
    // A digest reference cannot be a tag.
    let pinned = r("app").with_digest(b.manifest_digest);
    assert!(matches!(
        tag_image(&store, &pinned, &b),
        Err(Error::TagWithDigest { .. })
    ));
}

#[test]
fn load_resolves_names_digests_and_image_id_prefixes() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"one");
    tag_image(&store, &r("app"), &b).unwrap();
    let id = b.config_digest.hex();

    for name in [
        "app".to_owned(),
        "app:latest".to_owned(),
        "docker.io/library/app:latest".to_owned(),
        format!("app@{}", b.manifest_digest),
        id[..12].to_owned(),
        id[..4].to_owned(),
        format!("sha256:{}", &id[..10]),
        b.config_digest.to_string(),
    ] {
        let img = load_image(&store, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.config_digest, b.config_digest, "{name}");
        assert_eq!(img.repo_tags, ["app:latest"]);
    }

    let err = load_image(&store, "nope:1").unwrap_err();
    assert!(matches!(&err, Error::ImageNotFound { name } if name == "nope:1"));
    assert!(err.to_string().contains("nope:1"), "{err}");
    // A hex string that matches no ID is also unknown, not a parse error.
    assert!(matches!(
        load_image(&store, "ffffffffffff0000"),
        Err(Error::ImageNotFound { .. })
    ));
}

#[test]
fn an_id_prefix_matching_two_images_is_ambiguous() {
    let (_d, store) = store();
    let mut images = Vec::new();
    // Different content gives different IDs; find two sharing a first hex digit.
    for i in 0..40u32 {
        let (b, _) = built(&store, format!("m{i}").as_bytes());
        tag_image(&store, &r(&format!("img{i}")), &b).unwrap();
        images.push(b.config_digest);
    }
    let (a, c) = images
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            images[i + 1..]
                .iter()
                .find(|c| c.hex()[..1] == a.hex()[..1])
                .map(|c| (a, c))
        })
        .expect("40 IDs share a first hex digit");
    let prefix = &a.hex()[..1];
    match load_image(&store, prefix) {
        Err(Error::AmbiguousImageId { prefix: p, matches }) => {
            assert_eq!(p, prefix);
            assert!(matches.contains(&a.to_string()) && matches.contains(&c.to_string()));
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
}

#[test]
fn inspect_has_dockers_shape() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"x");
    tag_image(&store, &r("app:2"), &b).unwrap();
    tag_image(&store, &r("other"), &b).unwrap();
    let img = load_image(&store, "app:2").unwrap();
    let v = inspect_json(&img);
    assert_eq!(v["Id"], b.config_digest.to_string());
    assert_eq!(v["RepoTags"], serde_json::json!(["app:2", "other:latest"]));
    assert_eq!(v["RepoDigests"], serde_json::json!([]));
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(v["Config"]["WorkingDir"], "/app");
    assert_eq!(v["Size"], img.size);
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!(b.config.rootfs.diff_ids)
    );
    assert!(v["Metadata"].is_object());
    assert!(v.get("Variant").is_none());
}

#[test]
fn history_rows_are_newest_first_with_layer_sizes() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"12345");
    tag_image(&store, &r("app"), &b).unwrap();
    let img = load_image(&store, "app").unwrap();
    let rows = history_rows(&img);
    let by: Vec<&str> = rows.iter().map(|r| r.created_by.as_str()).collect();
    assert_eq!(by, ["COPY m /", "ENV A=1", "WORKDIR /", "RUN a"]);
    assert_eq!(rows[0].id, b.config_digest.to_string());
    assert!(rows[1..].iter().all(|r| r.id == "<missing>"));
    // Steps without a layer (ENV, and the empty WORKDIR) have size 0; layers have theirs.
    assert_eq!(rows[1].size, 0);
    assert_eq!(rows[2].size, 0);
    assert_eq!(rows[0].size, img.layers[1].size);
    assert_eq!(rows[3].size, img.layers[0].size);
    assert!(rows[0].size > 0 && rows[3].size > 0);
    assert!(rows.iter().all(|r| r.comment == "buildkit.dockerfile.v0"));
    assert!(
        rows.iter()
            .all(|r| r.created.as_deref() == Some("2023-11-14T22:13:20Z"))
    );
}

#[test]
fn untag_removes_names_and_leaves_blobs() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"x");
    tag_image(&store, &r("app"), &b).unwrap();
    tag_image(&store, &r("app:2"), &b).unwrap();
    let blobs = store.blobs().list().unwrap();

    // By ID with two tags: refused without force (docker's rule).
    let id = &b.config_digest.hex()[..12];
    match untag(&store, id, false) {
        Err(Error::MultipleTags { names, .. }) => assert_eq!(names, ["app:latest", "app:2"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(untag(&store, "app", false).unwrap(), ["app:latest"]);
    assert!(load_image(&store, "app").is_err());
    assert_eq!(list_images(&store).unwrap().len(), 1);
    // Now one tag is left: by ID works.
    assert_eq!(untag(&store, id, false).unwrap(), ["app:2"]);
    assert!(list_images(&store).unwrap().is_empty());
    assert_eq!(
        store.blobs().list().unwrap(),
        blobs,
        "blobs are left for GC"
    );
    assert!(matches!(
        untag(&store, "app", false),
        Err(Error::ImageNotFound { name }) if name == "app"
    ));

    // `dray tag SRC DST` through the loaded descriptor.
    tag_image(&store, &r("src"), &b).unwrap();
    let src = load_image(&store, "src").unwrap();
    tag_descriptor(&store, &r("dst:9"), &src.manifest_descriptor).unwrap();
    assert_eq!(
        load_image(&store, "dst:9").unwrap().config_digest,
        b.config_digest
    );
}

#[test]
fn resolve_local_finds_tagged_images_for_their_platform_only() {
    let (_d, store) = store();
    let (b, _) = built(&store, b"x");
    tag_image(&store, &r("app"), &b).unwrap();
    let (digest, config) = resolve_local(&store, &r("app"), &Platform::linux("amd64"))
        .unwrap()
        .unwrap();
    assert_eq!(digest, b.manifest_digest);
    assert_eq!(config, b.config);
    assert!(
        resolve_local(&store, &r("app"), &Platform::linux("arm64"))
            .unwrap()
            .is_none()
    );
    assert!(
        resolve_local(&store, &r("absent"), &Platform::linux("amd64"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn layer_snapshots_maps_layers_back_to_the_chain_skipping_empty_diffs() {
    let (_d, store) = store();
    let (b, chain) = built(&store, b"x");
    tag_image(&store, &r("app"), &b).unwrap();
    let img = load_image(&store, "app").unwrap();
    // chain = [RUN a, WORKDIR (empty), COPY]; the manifest has 2 layers.
    assert_eq!(
        layer_snapshots(&store, &img).unwrap(),
        [chain[0].clone(), chain[2].clone()]
    );
    assert_eq!(img.layers[0].snapshot.as_ref(), Some(&chain[0]));

    // The same diff on another parent does not match: the chain must be the image's.
    let other = snapshot(&store, None, &[("zzz", Some(b"z"))], "other base");
    let on_other = snapshot(&store, Some(&other), &[("a", Some(b"aaa"))], "RUN a");
    let cfg = config(&[("X", true), ("RUN a", true)]);
    let b2 = assemble(&store, &on_other.chain, None, cfg, &opts()).unwrap();
    assert_eq!(
        b2.config.rootfs.diff_ids[1], b.config.rootfs.diff_ids[0],
        "same tar"
    );
    tag_image(&store, &r("two"), &b2).unwrap();
    let img2 = load_image(&store, "two").unwrap();
    assert_eq!(layer_snapshots(&store, &img2).unwrap(), on_other.chain);
}

#[test]
fn resolve_local_picks_the_platform_from_an_index() {
    let (_d, store) = store();
    let (amd, _) = built(&store, b"amd");
    let s = snapshot(&store, None, &[("arm", Some(b"arm"))], "arm");
    let mut cfg = config(&[("RUN", true)]);
    cfg.architecture = "arm64".to_owned();
    let arm = assemble(&store, &s.chain, None, cfg, &opts()).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": amd.manifest.media_type, "digest": amd.manifest_digest, "size": amd.manifest.size,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": arm.manifest.media_type, "digest": arm.manifest_digest, "size": arm.manifest.size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    let blob = store
        .blobs()
        .put_bytes(&serde_json::to_vec(&index).unwrap())
        .unwrap();
    let desc = dray_cache::Descriptor::new(
        "application/vnd.oci.image.index.v1+json",
        blob.digest,
        blob.size,
    );
    store.tag("docker.io/library/multi:latest", &desc).unwrap();
    let pick = |p: &str| {
        resolve_local(&store, &r("multi"), &p.parse().unwrap())
            .unwrap()
            .map(|(d, _)| d)
    };
    assert_eq!(pick("linux/amd64"), Some(amd.manifest_digest));
    assert_eq!(pick("linux/arm64"), Some(arm.manifest_digest));
    assert_eq!(pick("linux/s390x"), None);
    // `images` skips the index entry rather than failing.
    assert!(list_images(&store).unwrap().is_empty());
}
