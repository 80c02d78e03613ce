//! `assemble`: blobs, manifest and config shape, memo, reproducibility, empty diffs, bases.

use dray_image::{
    AssembleOptions, BaseImage, Compression, Error, LayerOutcome, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST, assemble,
};

use crate::support::{blob_count, config, gunzip, json, opts, sha256, snapshot, store, tar_paths};

#[test]
fn writes_verified_blobs_and_a_well_formed_manifest_and_config() {
    let (_d, store) = store();
    let s0 = snapshot(
        &store,
        None,
        &[("etc/", None), ("etc/hosts", Some(b"h"))],
        "base",
    );
    let s1 = snapshot(
        &store,
        Some(&s0),
        &[("app/main", Some(b"bin")), ("etc/hosts", None)],
        "RUN x",
    );
    let cfg = config(&[("RUN a", true), ("ENV X=1", false), ("RUN b", true)]);
    let built = assemble(&store, &s1.chain, None, cfg, &opts()).unwrap();

    for d in store.blobs().list().unwrap() {
        store.blobs().verify(&d).unwrap();
    }
    let manifest = json(&store, &built.manifest_digest);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], MEDIA_TYPE_CONFIG);
    assert_eq!(
        manifest["config"]["digest"],
        built.config_digest.to_string()
    );
    assert_eq!(
        manifest["config"]["size"],
        store.blobs().size(&built.config_digest).unwrap()
    );
    assert_eq!(
        built.manifest.size,
        store.blobs().size(&built.manifest_digest).unwrap()
    );
    assert_eq!(built.manifest.media_type, MEDIA_TYPE_MANIFEST);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);

    let config = json(&store, &built.config_digest);
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(diff_ids.len(), 2);
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let digest = layer["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(layer["size"], store.blobs().size(&digest).unwrap());
        // diff_id = sha256 of the decompressed layer, recomputed independently.
        assert_eq!(diff_id.as_str().unwrap(), sha256(&gunzip(&store, &digest)));
    }
    // The second layer carries the whiteout as an OCI `.wh.` entry.
    let top = gunzip(
        &store,
        &layers[1]["digest"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(
        tar_paths(&top),
        ["app/", "app/main", "etc/", "etc/.wh.hosts"]
    );

    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert!(
        history
            .iter()
            .all(|h| h["created"] == "2023-11-14T22:13:20Z")
    );
    assert_eq!(history[1]["empty_layer"], true);
    assert!(history[0].get("empty_layer").is_none());
    // Canonical bytes: the stored config is exactly the serialization of the returned one.
    assert_eq!(
        store.blobs().read(&built.config_digest).unwrap(),
        serde_json::to_vec(&built.config).unwrap()
    );
}

#[test]
fn a_second_assembly_reuses_layer_records_and_writes_no_layer() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("a", Some(b"1"))], "one");
    let s1 = snapshot(&store, Some(&s0), &[("b", Some(b"2"))], "two");
    let cfg = config(&[("RUN a", true), ("RUN b", true)]);
    let first = assemble(&store, &s1.chain, None, cfg.clone(), &opts()).unwrap();
    assert!(
        first
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Written(_)))
    );
    let blobs = blob_count(&store);
    assert_eq!(blobs, 4, "2 layers + config + manifest");

    let again = assemble(&store, &s1.chain, None, cfg.clone(), &opts()).unwrap();
    assert!(
        again
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Reused(_)))
    );
    assert_eq!(again.manifest_digest, first.manifest_digest);
    assert_eq!(blob_count(&store), blobs, "no new blob");

    // Another compression is another media type: new layers, new manifest.
    let zstd = opts().with_compression(Compression::Zstd { level: 3 });
    let z = assemble(&store, &s1.chain, None, cfg, &zstd).unwrap();
    assert!(
        z.outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Written(_)))
    );
    assert_ne!(z.manifest_digest, first.manifest_digest);
    assert_eq!(
        z.config.rootfs.diff_ids, first.config.rootfs.diff_ids,
        "same tars"
    );
    assert_eq!(
        json(&store, &z.manifest_digest)["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
}

#[test]
fn source_date_epoch_gives_the_same_manifest_digest_in_two_fresh_stores() {
    let build = |now: u64, jobs: usize| {
        let (d, store) = store();
        let s0 = snapshot(&store, None, &[("x/", None), ("x/y", Some(b"data"))], "s0");
        let s1 = snapshot(&store, Some(&s0), &[("z", Some(b"zz"))], "s1");
        let s2 = snapshot(&store, Some(&s1), &[("w", Some(b"ww"))], "s2");
        let o = opts()
            .with_source_date_epoch(Some(1_000_000_000))
            .with_now(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now))
            .with_jobs(jobs);
        let cfg = config(&[("RUN a", true), ("RUN b", true), ("RUN c", true)]);
        let built = assemble(&store, &s2.chain, None, cfg, &o).unwrap();
        (d, store, built)
    };
    let (_d1, s1, a) = build(1_700_000_000, 1);
    let (_d2, _s2, b) = build(1_800_000_000, 3);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.config_digest, b.config_digest);
    let config = json(&s1, &a.config_digest);
    assert_eq!(config["created"], "2001-09-09T01:46:40Z");
    for h in config["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2001-09-09T01:46:40Z");
    }
    // Without the epoch, `now` leaks into the config and the digests differ.
    let (_d3, store3) = store();
    let t = snapshot(&store3, None, &[("a", Some(b"1"))], "t");
    let c1 = assemble(&store3, &t.chain, None, config_one(), &opts()).unwrap();
    let later = opts().with_now(std::time::UNIX_EPOCH + std::time::Duration::from_secs(5));
    let c2 = assemble(&store3, &t.chain, None, config_one(), &later).unwrap();
    assert_ne!(c1.config_digest, c2.config_digest);
}

fn config_one() -> dray_llb::ImageConfig {
    config(&[("RUN a", true)])
}

#[test]
fn empty_diffs_are_dropped_and_their_history_entries_become_empty() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("app/", None)], "RUN mkdir /app");
    let s1 = snapshot(&store, Some(&s0), &[], "WORKDIR /app");
    let s2 = snapshot(&store, Some(&s1), &[("app/f", Some(b"f"))], "COPY f .");
    let cfg = config(&[
        ("RUN mkdir /app", true),
        ("WORKDIR /app", true),
        ("CMD x", false),
        ("COPY f .", true),
    ]);
    let built = assemble(&store, &s2.chain, None, cfg, &opts()).unwrap();
    assert_eq!(built.layers.len(), 2);
    assert_eq!(built.config.rootfs.diff_ids.len(), 2);
    assert_eq!(built.outcomes[1], (s1.id.clone(), LayerOutcome::Empty));
    let flags: Vec<bool> = built.config.history.iter().map(|h| h.empty_layer).collect();
    assert_eq!(flags, [false, true, true, false]);
    // Non-empty history entries and manifest layers still pair up one to one.
    assert_eq!(flags.iter().filter(|e| !**e).count(), built.layers.len());
    // No blob was written for the empty diff: 2 layers + config + manifest.
    assert_eq!(blob_count(&store), 4);
}

#[test]
fn history_is_normalized_like_buildkit_when_it_does_not_match_the_chain() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("a", Some(b"1"))], "RUN one");
    let s1 = snapshot(&store, Some(&s0), &[("b", Some(b"2"))], "RUN two");
    // Too few entries: one is appended from the snapshot description.
    let built = assemble(
        &store,
        &s1.chain,
        None,
        config(&[("RUN one", true)]),
        &opts(),
    )
    .unwrap();
    let h = &built.config.history;
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].created_by.as_deref(), Some("RUN two"));
    assert_eq!(
        h[1].comment.as_deref(),
        Some(dray_image::assemble::EXPORTER_COMMENT)
    );
    assert!(!h[1].empty_layer);
    // Too many: the surplus becomes empty.
    let cfg = config(&[("RUN one", true), ("RUN two", true), ("RUN three", true)]);
    let built = assemble(&store, &s1.chain, None, cfg, &opts()).unwrap();
    let flags: Vec<bool> = built.config.history.iter().map(|h| h.empty_layer).collect();
    assert_eq!(flags, [false, false, true]);
}

#[test]
fn base_layers_are_reused_and_base_history_kept() {
    let (_d, store) = store();
    let b0 = snapshot(
        &store,
        None,
        &[("bin/", None), ("bin/sh", Some(b"sh"))],
        "base",
    );
    let base_cfg = config(&[("ADD rootfs /", true), ("CMD sh", false)]);
    let base = assemble(&store, &b0.chain, None, base_cfg, &opts()).unwrap();
    let base_image = BaseImage {
        layers: base.layers.clone(),
        config: base.config.clone(),
    };
    let s1 = snapshot(&store, Some(&b0), &[("app", Some(b"app"))], "COPY app /");
    let mut cfg = config(&[("COPY app /", true)]);
    // The converter starts from the base config, so its history comes first.
    cfg.history.splice(0..0, base.config.history.clone());
    let blobs = blob_count(&store);
    let built = assemble(&store, &s1.chain, Some(&base_image), cfg.clone(), &opts()).unwrap();
    assert_eq!(built.layers[0], base.layers[0]);
    assert_eq!(built.layers.len(), 2);
    assert_eq!(built.outcomes.len(), 1, "only the new snapshot is exported");
    assert_eq!(
        built.config.rootfs.diff_ids[0],
        base.config.rootfs.diff_ids[0]
    );
    assert_eq!(built.config.history.len(), 3);
    assert_eq!(built.config.history[..2], base.config.history[..]);
    assert_eq!(blob_count(&store), blobs + 3, "one layer, config, manifest");

    // A history without the base's entries gets them prepended: same result.
    let cfg2 = config(&[("COPY app /", true)]);
    let again = assemble(&store, &s1.chain, Some(&base_image), cfg2, &opts()).unwrap();
    assert_eq!(again.manifest_digest, built.manifest_digest);

    // A chain shorter than the base is refused.
    let err = assemble(&store, &[], Some(&base_image), cfg, &opts()).unwrap_err();
    assert!(
        matches!(err, Error::ChainShorterThanBase { chain: 0, base: 1 }),
        "{err}"
    );
}

#[test]
fn an_unknown_snapshot_fails_naming_it() {
    let (_d, store) = store();
    let id: dray_cache::SnapshotId = "does-not-exist".parse().unwrap();
    let err = assemble(&store, &[id], None, config(&[]), &AssembleOptions::new()).unwrap_err();
    match &err {
        Error::ExportLayer { snapshot, .. } => assert_eq!(snapshot.as_str(), "does-not-exist"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("does-not-exist"));
}

#[test]
fn a_failing_layer_among_parallel_ones_is_reported_in_chain_order() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("a", Some(b"1"))], "one");
    let bad: dray_cache::SnapshotId = "missing-1".parse().unwrap();
    let bad2: dray_cache::SnapshotId = "missing-2".parse().unwrap();
    let chain = [s0.id.clone(), bad, bad2];
    let err = assemble(&store, &chain, None, config(&[]), &opts().with_jobs(3)).unwrap_err();
    assert!(
        matches!(&err, Error::ExportLayer { snapshot, .. } if snapshot.as_str() == "missing-1"),
        "{err:?}"
    );
}

#[test]
fn scratch_with_only_empty_diffs_has_no_layers() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[], "WORKDIR /");
    let built = assemble(
        &store,
        &s0.chain,
        None,
        config(&[("WORKDIR /", true)]),
        &opts(),
    )
    .unwrap();
    assert!(built.layers.is_empty());
    assert!(built.config.history[0].empty_layer);
    let manifest = json(&store, &built.manifest_digest);
    assert_eq!(manifest["layers"], serde_json::json!([]));
    assert_eq!(
        manifest["config"]["digest"],
        built.config_digest.to_string()
    );
}

#[test]
fn uncompressed_layers_have_digest_equal_to_diff_id() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("a", Some(b"1"))], "one");
    let o = opts().with_compression(Compression::Uncompressed);
    let built = assemble(&store, &s0.chain, None, config(&[("RUN", true)]), &o).unwrap();
    assert_eq!(
        built.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        built.layers[0].digest.to_string(),
        built.config.rootfs.diff_ids[0]
    );
}

#[test]
fn source_date_epoch_clamps_later_history_times_and_keeps_earlier_ones() {
    let (_d, store) = store();
    let s0 = snapshot(&store, None, &[("a", Some(b"1"))], "one");
    let mut cfg = config(&[("RUN a", true), ("ENV x", false), ("CMD y", false)]);
    cfg.history[0].created = Some("2000-01-01T00:00:00Z".to_owned());
    cfg.history[1].created = Some("2030-01-01T00:00:00Z".to_owned());
    let o = opts().with_source_date_epoch(Some(1_000_000_000));
    let built = assemble(&store, &s0.chain, None, cfg.clone(), &o).unwrap();
    let times: Vec<_> = built
        .config
        .history
        .iter()
        .map(|h| h.created.clone().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2000-01-01T00:00:00Z",
            "2001-09-09T01:46:40Z",
            "2001-09-09T01:46:40Z"
        ]
    );
    // Without the epoch, given times are kept and missing ones get `now`.
    let built = assemble(&store, &s0.chain, None, cfg, &opts()).unwrap();
    let times: Vec<_> = built
        .config
        .history
        .iter()
        .map(|h| h.created.clone().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2000-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
            "2023-11-14T22:13:20Z"
        ]
    );
}
