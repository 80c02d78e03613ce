//! A layer compressed for an earlier export is reused, not recompressed: one layer record per
//! (snapshot, compression), and a second export with a compression already recorded writes no
//! blob and no record — asserted on the store's state, not on timings.

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, SystemTime};

use dray_cache::{Committed, Digest, LayerRecord, Root, Store};
use dray_image::{AssembleOptions, Compression, LayerOutcome, assemble};
use dray_llb::ImageConfig;

fn snapshot(store: &Store, parent: Option<&Committed>, name: &str, size: usize) -> Committed {
    let active = store.prepare(parent).unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(active.fs().join(name), data).unwrap();
    store.commit(active, &format!("COPY {name}")).unwrap()
}

fn opts(compression: Compression) -> AssembleOptions {
    AssembleOptions::new()
        .with_compression(compression)
        .with_now(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn blobs(store: &Store) -> BTreeSet<Digest> {
    store.blobs().list().unwrap().into_iter().collect()
}

/// Every layer record of the chain, sorted by media type per snapshot.
fn records(store: &Store, chain: &[dray_cache::SnapshotId]) -> Vec<LayerRecord> {
    let mut all = Vec::new();
    for id in chain {
        let mut r = store.layers(id).unwrap();
        r.sort_by(|a, b| a.media_type.cmp(&b.media_type));
        all.extend(r);
    }
    all
}

fn layer_blobs(outcomes: &[(dray_cache::SnapshotId, LayerOutcome)]) -> BTreeSet<Digest> {
    outcomes
        .iter()
        .filter_map(|(_, o)| o.record().map(|r| r.blob))
        .collect()
}

#[test]
fn a_second_export_with_the_same_compression_writes_no_blob_and_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Root::at(dir.path().join("root"))).unwrap();
    let s0 = snapshot(&store, None, "a", 3 << 20);
    let s1 = snapshot(&store, Some(&s0), "b", 100_000);
    let chain = s1.chain.clone();
    let gzip = opts(Compression::Gzip { level: 6 });
    let zstd = opts(Compression::Zstd { level: 3 });

    // First gzip export: both layers are written, one gzip record each.
    let first = assemble(&store, &chain, None, ImageConfig::default(), &gzip).unwrap();
    assert!(
        first
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Written(_)))
    );
    let gz_records = records(&store, &chain);
    assert_eq!(gz_records.len(), 2);
    assert!(gz_records.iter().all(|r| r.media_type.ends_with("+gzip")));
    let after_gzip = blobs(&store);

    // zstd is another compression: new blobs and a second record per snapshot.
    let z = assemble(&store, &chain, None, ImageConfig::default(), &zstd).unwrap();
    assert!(
        z.outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Written(_)))
    );
    let both = records(&store, &chain);
    assert_eq!(both.len(), 4, "one record per (snapshot, compression)");
    let after_zstd = blobs(&store);
    let new_blobs: BTreeSet<Digest> = after_zstd.difference(&after_gzip).copied().collect();
    assert!(layer_blobs(&z.outcomes).is_subset(&new_blobs));

    // gzip again, then zstd again: every layer is reused from its own record, the store gains
    // no blob (the manifest and config are the same bytes too) and no record changes.
    for (again_opts, earlier) in [(&gzip, &first), (&zstd, &z)] {
        let again = assemble(&store, &chain, None, ImageConfig::default(), again_opts).unwrap();
        for ((_, now), (_, before)) in again.outcomes.iter().zip(&earlier.outcomes) {
            match now {
                LayerOutcome::Reused(r) => assert_eq!(Some(r), before.record()),
                other => panic!("expected a reused layer, got {other:?}"),
            }
        }
        assert_eq!(again.manifest_digest, earlier.manifest_digest);
        assert_eq!(blobs(&store), after_zstd, "no new blob");
        assert_eq!(records(&store, &chain), both, "no new or changed record");
    }

    // gzip at another level shares the gzip record (the memo is keyed by media type, as
    // BuildKit's blob cache is): no recompression either.
    let gzip9 = opts(Compression::Gzip { level: 9 });
    let nine = assemble(&store, &chain, None, ImageConfig::default(), &gzip9).unwrap();
    assert!(
        nine.outcomes
            .iter()
            .all(|(_, o)| matches!(o, LayerOutcome::Reused(_)))
    );
    assert_eq!(nine.layers, first.layers);
    assert_eq!(blobs(&store), after_zstd);
}

#[test]
fn a_record_whose_blob_is_gone_is_rewritten_to_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Root::at(dir.path().join("root"))).unwrap();
    let s0 = snapshot(&store, None, "a", 2 << 20);
    let gzip = opts(Compression::Gzip { level: 6 });
    let first = assemble(&store, &s0.chain, None, ImageConfig::default(), &gzip).unwrap();
    let record = first.outcomes[0].1.record().unwrap().clone();
    assert!(store.blobs().remove(&record.blob).unwrap());

    // One layer job this time: the rewritten blob is still byte-identical, so the record holds.
    let again = assemble(
        &store,
        &s0.chain,
        None,
        ImageConfig::default(),
        &gzip.clone().with_jobs(1),
    )
    .unwrap();
    match &again.outcomes[0].1 {
        LayerOutcome::Written(r) => assert_eq!(r, &record),
        other => panic!("expected a rewritten layer, got {other:?}"),
    }
    assert!(store.blobs().contains(&record.blob).unwrap());
    assert_eq!(store.layers(&s0.id).unwrap(), vec![record]);
}
