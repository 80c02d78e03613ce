use std::path::Path;
use std::time::Duration;

use dray_cache::{Committed, Digest, Error, FileStamp, LayerRecord};

use crate::store;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[test]
fn save_then_lookup_round_trips_and_bumps_last_used() {
    let (_dir, store) = store();
    let a = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let b = store.commit(store.prepare(Some(&a)).unwrap(), "b").unwrap();
    let key = Digest::of(b"step key");
    let preimage = r#"{"digest":"sha256:00","deps":["k:abc"]}"#;
    assert_eq!(store.lookup(&key).unwrap(), None);

    store.save(&key, preimage, &b).unwrap();
    let saved = store.cache_record(&key).unwrap().unwrap();
    assert_eq!(saved.snapshot, b.id);
    assert_eq!(saved.preimage, preimage);
    assert_eq!(saved.created, saved.last_used);

    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        store.lookup(&key).unwrap(),
        Some(b.clone()),
        "chain included"
    );
    let looked = store.cache_record(&key).unwrap().unwrap();
    assert!(
        looked.last_used > saved.last_used,
        "{looked:?} vs {saved:?}"
    );
    assert_eq!(looked.created, saved.created);

    // Re-saving points the key elsewhere but keeps `created`.
    std::thread::sleep(Duration::from_millis(5));
    store.save(&key, "{}", &a).unwrap();
    let resaved = store.cache_record(&key).unwrap().unwrap();
    assert_eq!(resaved.snapshot, a.id);
    assert_eq!(resaved.created, saved.created);
    assert_eq!(store.cache_records().unwrap().len(), 1);
}

#[test]
fn records_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dray_cache::Root::at(dir.path());
    let key = Digest::of(b"k");
    let c = {
        let store = dray_cache::Store::open(&root).unwrap();
        let c = store.commit(store.prepare(None).unwrap(), "a").unwrap();
        store.save(&key, "[]", &c).unwrap();
        c
    };
    let store = dray_cache::Store::open(&root).unwrap();
    assert_eq!(store.lookup(&key).unwrap(), Some(c));
}

#[test]
fn a_record_cannot_reference_an_uncommitted_snapshot() {
    let (_dir, store) = store();
    let active = store.prepare(None).unwrap();
    let forged = Committed {
        id: active.id().clone(),
        parent: None,
        chain: vec![active.id().clone()],
    };
    let key = Digest::of(b"k");
    match store.save(&key, "{}", &forged).unwrap_err() {
        Error::SnapshotNotFound { id } => assert_eq!(&id, active.id()),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.cache_record(&key).unwrap(), None);
    assert_eq!(store.lookup(&key).unwrap(), None);
}

#[test]
fn preimage_must_be_json() {
    let (_dir, store) = store();
    let c = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let key = Digest::of(b"k");
    assert!(
        matches!(store.save(&key, "{not json", &c), Err(Error::InvalidPreimage { key: k, .. }) if k == key)
    );
}

#[test]
fn layer_records_round_trip_and_need_their_blob() {
    let (_dir, store) = store();
    let c = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let blob = store.blobs().put_bytes(b"fake gzip layer").unwrap();
    let rec = LayerRecord {
        snapshot: c.id.clone(),
        media_type: GZIP.into(),
        diff_id: Digest::of(b"fake tar"),
        blob: blob.digest,
        size: blob.size,
    };
    assert_eq!(store.layer(&c.id, GZIP).unwrap(), None);
    store.put_layer(&rec).unwrap();
    assert_eq!(store.layer(&c.id, GZIP).unwrap(), Some(rec.clone()));
    assert_eq!(store.layers(&c.id).unwrap(), std::slice::from_ref(&rec));

    let missing = LayerRecord {
        blob: Digest::of(b"absent"),
        media_type: "x".into(),
        ..rec.clone()
    };
    assert!(matches!(
        store.put_layer(&missing),
        Err(Error::BlobNotFound { .. })
    ));
    assert_eq!(store.layers(&c.id).unwrap().len(), 1);

    // Layer records go with their snapshot.
    store.remove(&c.id).unwrap();
    assert_eq!(store.layer(&c.id, GZIP).unwrap(), None);
    assert!(matches!(
        store.put_layer(&rec),
        Err(Error::SnapshotNotFound { .. })
    ));
}

#[test]
fn contenthash_memo_matches_only_the_same_stamp() {
    let (_dir, store) = store();
    let stamp = FileStamp {
        dev: 1,
        ino: u64::MAX,
        size: 5,
        mtime_ns: 1_000,
        ctime_ns: 2_000,
    };
    let path = Path::new("src/main.rs");
    let d = Digest::of(b"hello");
    assert_eq!(store.contenthash_get("ctx", path, &stamp).unwrap(), None);
    assert!(store.contenthash_put("ctx", path, &stamp, &d).unwrap());
    assert_eq!(store.contenthash_get("ctx", path, &stamp).unwrap(), Some(d));
    assert_eq!(store.contenthash_get("other", path, &stamp).unwrap(), None);
    for changed in [
        FileStamp {
            mtime_ns: 1_001,
            ..stamp
        },
        FileStamp {
            ctime_ns: 2_001,
            ..stamp
        },
        FileStamp { size: 6, ..stamp },
        FileStamp { ino: 7, ..stamp },
    ] {
        assert_eq!(
            store.contenthash_get("ctx", path, &changed).unwrap(),
            None,
            "{changed:?}"
        );
    }
}

#[test]
fn contenthash_skips_racily_clean_files() {
    let (dir, store) = store();
    let file = dir.path().join("fresh");
    std::fs::write(&file, b"just written").unwrap();
    let stamp = FileStamp::of(&std::fs::symlink_metadata(&file).unwrap());
    assert_eq!(stamp.size, 12);
    let d = Digest::of(b"just written");
    assert!(!store.contenthash_put("ctx", &file, &stamp, &d).unwrap());
    assert_eq!(store.contenthash_get("ctx", &file, &stamp).unwrap(), None);
}

#[test]
fn find_does_not_write_and_touch_bumps_a_batch() {
    let (_dir, store) = store();
    let a = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let b = store.commit(store.prepare(Some(&a)).unwrap(), "b").unwrap();
    let (ka, kb, missing) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"none"));
    store.save(&ka, "{}", &a).unwrap();
    store.save(&kb, "[]", &b).unwrap();
    let saved_b = store.cache_record(&kb).unwrap().unwrap();

    std::thread::sleep(Duration::from_millis(20));
    let (record, committed) = store.find(&kb).unwrap().unwrap();
    assert_eq!(committed, b, "the chain is included");
    assert_eq!(
        record, saved_b,
        "find returns the record as it is, last_used untouched"
    );
    assert_eq!(store.cache_record(&kb).unwrap().unwrap(), saved_b);
    assert_eq!(store.find(&missing).unwrap(), None);

    store.touch(&[ka, kb, missing]).unwrap();
    for key in [ka, kb] {
        let r = store.cache_record(&key).unwrap().unwrap();
        assert!(r.last_used > saved_b.last_used, "{r:?}");
    }
    assert_eq!(store.cache_record(&missing).unwrap(), None);
    store.touch(&[]).unwrap();
}
