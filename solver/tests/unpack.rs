//! Unpacking image layers on demand: layers without a snapshot are applied from their blobs
//! (the store's, or an OCI layout's copied into the store) into snapshots named by ChainID,
//! checked against the config's diff_ids; a cache hit on the head reads no layer at all.

mod common;

use common::{Fixture, def, read_in};
use dray_cache::{Descriptor, Digest, SnapshotId, SnapshotKind};
use dray_llb::{ImageRef, SourceOp, State};
use dray_solver::{OpError, RecordingReporter, SolveError};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An uncompressed layer tar of `(name, content)` files; a `None` content is a whiteout entry
/// for that name.
fn layer(files: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        let (name, data) = match content {
            Some(c) => (name.to_string(), c.as_bytes()),
            None => {
                let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
                let dir = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                (format!("{dir}.wh.{base}"), &b""[..])
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The manifest and config JSON of an image of `layers` (uncompressed tars).
fn image_json(layers: &[Vec<u8>]) -> (serde_json::Value, serde_json::Value) {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let descriptors: Vec<_> = layers
        .iter()
        .map(|l| {
            serde_json::json!({"mediaType": LAYER, "digest": Digest::of(l).to_string(),
                "size": l.len()})
        })
        .collect();
    let config_bytes = config.to_string();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(config_bytes.as_bytes()).to_string(),
                   "size": config_bytes.len()},
        "layers": descriptors});
    (manifest, config)
}

/// Tags `name` in the store as an image of `layers` whose blobs are in the store and which
/// has no snapshots.
fn tag_blobs_only(fx: &Fixture, name: &str, layers: &[Vec<u8>]) {
    let blobs = fx.store.blobs();
    for l in layers {
        blobs.put_bytes(l).unwrap();
    }
    let (manifest, config) = image_json(layers);
    blobs.put_bytes(config.to_string().as_bytes()).unwrap();
    let m = blobs.put_bytes(manifest.to_string().as_bytes()).unwrap();
    fx.store
        .tag(name, &Descriptor::new(MANIFEST, m.digest, m.size))
        .unwrap();
}

fn two_layers() -> Vec<Vec<u8>> {
    vec![
        layer(&[("etc/os", Some("dray-test")), ("old", Some("old"))]),
        layer(&[("old", None), ("new", Some("new"))]),
    ]
}

fn chain_snapshot_ids(layers: &[Vec<u8>]) -> Vec<SnapshotId> {
    let diff_ids: Vec<Digest> = layers.iter().map(Digest::of).collect();
    dray_image::config::chain_ids(&diff_ids)
        .iter()
        .map(|c| c.to_string().parse().unwrap())
        .collect()
}

#[test]
fn store_images_without_snapshots_are_unpacked() {
    let fx = Fixture::new();
    let layers = two_layers();
    tag_blobs_only(&fx, "docker.io/library/base:1", &layers);
    let base = State::image(ImageRef::parse("base:1").unwrap()).named("FROM base:1");
    let head = common::run(&base, 0, "/three", "3", "RUN");
    let out = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap();
    let chain = out.head.chain_ids();
    assert_eq!(&chain[..2], chain_snapshot_ids(&layers).as_slice());
    let dirs = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&dirs, "/etc/os").as_deref(), Some("dray-test"));
    assert_eq!(read_in(&dirs, "/new").as_deref(), Some("new"));
    assert_eq!(read_in(&dirs, "/old"), None, "the whiteout hides /old");
    for id in &chain[..2] {
        let info = fx.store.snapshot_info(id).unwrap().unwrap();
        assert_eq!(info.kind, SnapshotKind::Unpacked);
        assert!(info.description.contains("base:1"), "{}", info.description);
    }
}

#[test]
fn a_layer_without_snapshot_or_blob_fails_naming_it() {
    let fx = Fixture::new();
    let layers = two_layers();
    tag_blobs_only(&fx, "docker.io/library/base:1", &layers);
    std::fs::remove_file(fx.store.blobs().path(&Digest::of(&layers[1]))).unwrap();
    let base = State::image(ImageRef::parse("base:1").unwrap()).named("FROM base:1");
    let head = common::run(&base, 0, "/x", "x", "RUN");
    let err = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap_err();
    let SolveError::Step { name, source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "FROM base:1");
    // The solver asks its blob fetcher for the missing blob; with no registry configured the
    // fetcher's error names the blob.
    assert!(
        matches!(source, OpError::Fetch { source, .. }
            if source.to_string().contains(&Digest::of(&layers[1]).to_string())),
        "{source:?}"
    );
    // Missing blobs are fetched before any layer is unpacked: nothing was committed.
    let snapshots = fx.store.list_snapshots().unwrap();
    assert!(snapshots.is_empty(), "{snapshots:?}");
}

/// A layout image: its layers are copied into the store (verified) and unpacked; once the
/// head is cached, a second solve reads no layer (the layout's layer blobs are gone by then).
#[test]
fn oci_layout_layers_are_copied_in_and_unpacked_and_a_head_hit_reads_none() {
    let fx = Fixture::new();
    let layers = two_layers();
    let layout = fx.tmp.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let (manifest, config) = image_json(&layers);
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        (d, bytes.len())
    };
    for l in &layers {
        put(l);
    }
    put(config.to_string().as_bytes());
    let (m, m_len) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": MANIFEST, "digest": m.to_string(), "size": m_len,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    // Pinned by manifest digest, as the converter pins layout bases.
    let base = State::source(
        SourceOp::oci_layout(layout.to_str().unwrap(), m.to_string()),
        None,
    )
    .named("FROM layout");
    let head = common::run(&base, 0, "/three", "3", "RUN");
    let out = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap();
    assert_eq!(
        &out.head.chain_ids()[..2],
        chain_snapshot_ids(&layers).as_slice()
    );
    for l in &layers {
        assert!(fx.store.blobs().contains(&Digest::of(l)).unwrap());
    }
    let dirs = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&dirs, "/new").as_deref(), Some("new"));

    for l in &layers {
        std::fs::remove_file(blobs.join(Digest::of(l).hex())).unwrap();
    }
    let again = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap();
    assert_eq!(again.head.chain_ids(), out.head.chain_ids());
}
