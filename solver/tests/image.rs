//! Images in the local store as bases, and file actions that need the destination (`--chown`
//! by name through its `/etc/passwd`, `rm` whiteouts).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{Fixture, def, read_in};
use dray_cache::{Descriptor, LayerRecord};
use dray_llb::{Chown, Copy, FileAction, FileChain, ImageRef, Mkfile, Rm, State, UserOpt};
use dray_solver::{RecordingReporter, SolveError};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Tags `name` as a one-layer image whose layer is a committed snapshot holding `/etc/passwd`,
/// `/etc/group` and `/old`, as images dray built have. `label` varies the config (and so the
/// manifest digest) without changing the layer.
fn tag_image(fx: &Fixture, name: &str, label: &str) -> dray_cache::Committed {
    let store = &fx.store;
    let active = store.prepare(None).unwrap();
    let fs = active.fs();
    std::fs::create_dir_all(fs.join("etc")).unwrap();
    std::fs::write(
        fs.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(fs.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    std::fs::write(fs.join("old"), "old").unwrap();
    let layer = store.commit(active, "base layer").unwrap();
    let blob = store.blobs().put_bytes(b"not really a tar").unwrap();
    let diff_id = dray_cache::Digest::of(format!("diff of {}", layer.id).as_bytes());
    store
        .put_layer(&LayerRecord {
            snapshot: layer.id.clone(),
            media_type: LAYER.into(),
            diff_id,
            blob: blob.digest,
            size: blob.size,
        })
        .unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"v": label}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    let config = store
        .blobs()
        .put_bytes(config.to_string().as_bytes())
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest.to_string(), "size": config.size},
        "layers": [{"mediaType": LAYER, "digest": blob.digest.to_string(), "size": blob.size}],
    });
    let manifest = store
        .blobs()
        .put_bytes(manifest.to_string().as_bytes())
        .unwrap();
    store
        .tag(
            name,
            &Descriptor::new(MANIFEST, manifest.digest, manifest.size),
        )
        .unwrap();
    layer
}

fn build_on_image() -> State {
    let base = State::image(ImageRef::parse("base:1").unwrap()).named("FROM base:1");
    base.file(
        FileChain::new()
            .copy(
                &common::context(),
                Copy {
                    src: "/a.txt".into(),
                    dest: "/home/app/".into(),
                    owner: Some(Chown {
                        user: Some(UserOpt::Name("app".into())),
                        group: Some(UserOpt::Name("staff".into())),
                    }),
                    create_dest_path: true,
                    ..Copy::default()
                },
            )
            .then(FileAction::Rm(Rm {
                path: "/old".into(),
                allow_not_found: false,
                allow_wildcard: false,
            }))
            .then(FileAction::Mkfile(Mkfile {
                path: "/hello".into(),
                mode: 0o640,
                data: "hi\n".into(),
                owner: None,
                timestamp: Some(0),
            })),
    )
    .named("COPY --chown=app:staff a.txt")
}

#[test]
fn builds_on_an_image_from_the_store_with_owners_from_its_passwd() {
    let fx = Fixture::new();
    let layer = tag_image(&fx, "docker.io/library/base:1", "one");
    fx.write("a.txt", "A");
    let d = def(&build_on_image());
    let rep = RecordingReporter::new();
    let out = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(
        rep.started(),
        ["FROM base:1", "COPY --chown=app:staff a.txt"]
    );
    let chain = out.head.chain_ids();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        chain[0], layer.id,
        "the image's layer is its committed snapshot"
    );
    let top = fx.store.fs_path(&chain[1]);
    let copied = std::fs::metadata(top.join("home/app/a.txt")).unwrap();
    assert_eq!((copied.uid(), copied.gid()), (1000, 50));
    let whiteout = std::fs::symlink_metadata(top.join("old")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "rm of a lower file leaves a whiteout"
    );
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/hello").as_deref(), Some("hi\n"));

    // Rebuild: nothing is loaded, not even the image.
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty());

    // Re-tagging the name to another manifest re-keys everything built on it.
    tag_image(&fx, "docker.io/library/base:1", "two");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(
        rep.started(),
        ["FROM base:1", "COPY --chown=app:staff a.txt"]
    );
}

#[test]
fn an_unknown_chown_name_fails_the_step() {
    let fx = Fixture::new();
    tag_image(&fx, "docker.io/library/base:1", "one");
    fx.write("a.txt", "A");
    let head = State::image(ImageRef::parse("base:1").unwrap())
        .file(FileChain::new().copy(
            &common::context(),
            Copy {
                src: "/a.txt".into(),
                dest: "/a.txt".into(),
                owner: Some(Chown {
                    user: Some(UserOpt::Name("nobody-here".into())),
                    group: None,
                }),
                ..Copy::default()
            },
        ))
        .named("COPY --chown=nobody-here");
    let err = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap_err();
    let SolveError::Step { name, source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "COPY --chown=nobody-here");
    assert!(source.to_string().contains("nobody-here"), "{source}");
}

#[test]
fn a_missing_copy_source_fails_the_copy_step() {
    let fx = Fixture::new();
    let head = common::copy(&State::scratch(), "/nope.txt", "/x", "COPY nope.txt");
    let err = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap_err();
    let SolveError::Step { name, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "COPY nope.txt");
    let rendered = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(rendered.contains("nope.txt"), "{rendered}");
}

#[test]
fn oci_layout_bases_map_layers_to_chain_id_snapshots() {
    let fx = Fixture::new();
    // Two layers, unpacked under their ChainIDs as base images are.
    let (d1, d2) = (
        dray_llb::Digest::of("layer1"),
        dray_llb::Digest::of("layer2"),
    );
    let c1: dray_cache::SnapshotId = d1.to_string().parse().unwrap();
    let c2: dray_cache::SnapshotId = dray_llb::Digest::of(format!("{d1} {d2}"))
        .to_string()
        .parse()
        .unwrap();
    let a = fx.store.prepare_with_id(None, c1.clone()).unwrap();
    std::fs::write(a.fs().join("one"), "1").unwrap();
    let l1 = fx.store.commit(a, "layer 1").unwrap();
    let b = fx.store.prepare_with_id(Some(&l1), c2.clone()).unwrap();
    std::fs::write(b.fs().join("two"), "2").unwrap();
    fx.store.commit(b, "layer 2").unwrap();

    let layout = fx.tmp.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = dray_llb::Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        (d, bytes.len())
    };
    let (cfg, cfg_len) = put(serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d1.to_string(), d2.to_string()]}})
    .to_string()
    .as_bytes());
    let layer = |d: &dray_llb::Digest| serde_json::json!({"mediaType": LAYER, "digest": d.to_string(), "size": 1});
    let (man, man_len) = put(
        serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cfg.to_string(), "size": cfg_len},
            "layers": [layer(&d1), layer(&d2)]})
        .to_string()
        .as_bytes(),
    );
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": MANIFEST, "digest": man.to_string(), "size": man_len,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    let base = State::source(
        dray_llb::SourceOp::oci_layout(layout.to_str().unwrap(), "v1"),
        None,
    )
    .named("FROM oci-layout");
    let head = common::run(&base, 0, "/three", "3", "RUN");
    let out = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap();
    let chain = out.head.chain_ids();
    assert_eq!(&chain[..2], &[c1, c2]);
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/one").as_deref(), Some("1"));
    assert_eq!(read_in(&layers, "/three").as_deref(), Some("3"));

    // A ref name the layout does not have.
    let missing = State::source(
        dray_llb::SourceOp::oci_layout(layout.to_str().unwrap(), "v2"),
        None,
    )
    .named("FROM missing");
    let err = rt()
        .block_on(fx.solver().solve(
            &def(&common::run(&missing, 0, "/x", "x", "RUN")),
            &RecordingReporter::new(),
        ))
        .unwrap_err();
    assert!(
        matches!(&err, SolveError::Step { name, .. } if name == "FROM missing"),
        "{err:?}"
    );
}

#[test]
fn an_image_with_an_empty_step_keeps_its_empty_snapshot_in_the_chain() {
    let fx = Fixture::new();
    let store = &fx.store;
    let mut ids = Vec::new();
    let mut parent: Option<dray_cache::Committed> = None;
    let mut layers = Vec::new();
    for (i, file) in [Some("one"), None, Some("three")].into_iter().enumerate() {
        let a = store.prepare(parent.as_ref()).unwrap();
        if let Some(f) = file {
            std::fs::write(a.fs().join(f), f).unwrap();
        }
        let c = store.commit(a, &format!("step {i}")).unwrap();
        if file.is_some() {
            let blob = store
                .blobs()
                .put_bytes(format!("layer {i}").as_bytes())
                .unwrap();
            let diff_id = dray_llb::Digest::of(format!("diff {i}"));
            store
                .put_layer(&LayerRecord {
                    snapshot: c.id.clone(),
                    media_type: LAYER.into(),
                    diff_id,
                    blob: blob.digest,
                    size: blob.size,
                })
                .unwrap();
            layers.push((diff_id, blob));
        }
        ids.push(c.id.clone());
        parent = Some(c);
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>()}});
    let config = store
        .blobs()
        .put_bytes(config.to_string().as_bytes())
        .unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest.to_string(), "size": config.size},
        "layers": layers.iter().map(|(_, b)| serde_json::json!({"mediaType": LAYER, "digest": b.digest.to_string(), "size": b.size})).collect::<Vec<_>>()});
    let manifest = store
        .blobs()
        .put_bytes(manifest.to_string().as_bytes())
        .unwrap();
    store
        .tag(
            "docker.io/library/gappy:1",
            &Descriptor::new(MANIFEST, manifest.digest, manifest.size),
        )
        .unwrap();
    let head = common::run(
        &State::image(ImageRef::parse("gappy:1").unwrap()).named("FROM gappy"),
        0,
        "/four",
        "4",
        "RUN",
    );
    let out = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap();
    assert_eq!(&out.head.chain_ids()[..3], ids.as_slice());
}
