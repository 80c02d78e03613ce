use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use dray_cache::{Digest, Error, Store};

use crate::{names, store};

#[test]
fn writer_hashes_and_publishes() {
    let (dir, store) = store();
    let mut w = store.blobs().writer().unwrap();
    for chunk in [&b"hello "[..], b"blob ", b"world"] {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.written(), 16);
    let info = w.commit(None).unwrap();
    assert_eq!(info.digest, Digest::of(b"hello blob world"));
    assert_eq!(info.size, 16);

    let path = dir.path().join("blobs/sha256").join(info.digest.hex());
    assert_eq!(fs::read(&path).unwrap(), b"hello blob world");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert!(names(&dir.path().join("ingest")).is_empty());
    assert!(store.blobs().contains(&info.digest).unwrap());
    assert_eq!(store.blobs().size(&info.digest).unwrap(), 16);
    assert_eq!(store.blobs().verify(&info.digest).unwrap(), info);
    assert_eq!(store.blobs().list().unwrap(), [info.digest]);
}

#[test]
fn digest_mismatch_leaves_no_blob_and_no_temp() {
    let (dir, store) = store();
    let wrong = Digest::of(b"something else");
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"actual").unwrap();
    match w.commit(Some((wrong, 6))).unwrap_err() {
        Error::DigestMismatch { expected, found } => {
            assert_eq!(expected, wrong);
            assert_eq!(found, Digest::of(b"actual"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    assert!(names(&dir.path().join("ingest")).is_empty());
}

#[test]
fn size_mismatch_leaves_no_blob_and_no_temp() {
    let (dir, store) = store();
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"actual").unwrap();
    match w.commit(Some((Digest::of(b"actual"), 7))).unwrap_err() {
        Error::SizeMismatch {
            expected: 7,
            found: 6,
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    assert!(names(&dir.path().join("ingest")).is_empty());
}

#[test]
fn dropped_writer_removes_its_temp_file() {
    let (dir, store) = store();
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"partial").unwrap();
    w.flush().unwrap();
    assert_eq!(names(&dir.path().join("ingest")).len(), 1);
    drop(w);
    assert!(names(&dir.path().join("ingest")).is_empty());
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
}

#[test]
fn put_bytes_is_idempotent_and_remove_works() {
    let (_dir, store) = store();
    let a = store.blobs().put_bytes(b"{}").unwrap();
    let b = store.blobs().put_bytes(b"{}").unwrap();
    assert_eq!(a, b);
    assert_eq!(store.blobs().list().unwrap().len(), 1);
    assert!(store.blobs().remove(&a.digest).unwrap());
    assert!(!store.blobs().remove(&a.digest).unwrap());
    assert!(
        matches!(store.blobs().open(&a.digest), Err(Error::BlobNotFound { digest }) if digest == a.digest)
    );
}

#[test]
fn put_reader_verifies_expected() {
    let (_dir, store) = store();
    let data = vec![7u8; 300_000];
    let want = (Digest::of(&data), data.len() as u64);
    let info = store
        .blobs()
        .put_reader(&mut &data[..], Some(want))
        .unwrap();
    assert_eq!((info.digest, info.size), want);
    let err = store
        .blobs()
        .put_reader(&mut &data[1..], Some(want))
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
}

#[test]
fn concurrent_writers_of_the_same_blob() {
    let (dir, store) = store();
    let data: Arc<Vec<u8>> = Arc::new((0..2_000_000u32).map(|i| (i % 251) as u8).collect());
    let want = (Digest::of(data.as_slice()), data.len() as u64);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut w = store.blobs().writer().unwrap();
                barrier.wait();
                for chunk in data.chunks(65_536) {
                    w.write_all(chunk).unwrap();
                }
                w.commit(Some(want)).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().digest, want.0);
    }
    assert_eq!(names(&dir.path().join("blobs/sha256")), [want.0.hex()]);
    assert!(names(&dir.path().join("ingest")).is_empty());
    store.blobs().verify(&want.0).unwrap();
}

#[test]
fn verify_catches_a_corrupted_blob() {
    let (_dir, store) = store();
    let info = store.blobs().put_bytes(b"pristine content").unwrap();
    let path = store.blobs().path(&info.digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"pristine c0ntent").unwrap();
    match store.blobs().verify(&info.digest).unwrap_err() {
        Error::BlobCorrupt { digest, found, .. } => {
            assert_eq!(digest, info.digest);
            assert_eq!(found, Digest::of(b"pristine c0ntent"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_partial_download_survives_its_writer_and_a_new_open_and_resumes() {
    let (dir, store) = store();
    let content = b"the first half|the second half";
    let digest = Digest::of(content);
    let size = content.len() as u64;
    let mut w = store.blobs().resumable_writer(&digest, size).unwrap();
    assert_eq!(w.written(), 0);
    w.write_all(&content[..15]).unwrap();
    drop(w); // an interrupted download
    let partial = format!("{}.partial", digest.hex());
    assert_eq!(names(&dir.path().join("ingest")), [partial]);
    assert!(!store.blobs().contains(&digest).unwrap());

    // Another process (another Store) opens the root: the partial is still there.
    drop(store);
    let store = Store::open(&dray_cache::Root::at(dir.path())).unwrap();
    let mut w = store.blobs().resumable_writer(&digest, size).unwrap();
    assert_eq!(w.written(), 15, "resumes after the bytes already written");
    w.write_all(&content[15..]).unwrap();
    let info = w.commit(Some((digest, size))).unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(store.blobs().read(&digest).unwrap(), content);
    assert!(names(&dir.path().join("ingest")).is_empty());

    // An exclusive open (prune, rmi) deletes stale partials.
    let other = Digest::of(b"other");
    let mut w = store.blobs().resumable_writer(&other, 5).unwrap();
    w.write_all(b"ot").unwrap();
    drop(w);
    drop(store);
    let _ = Store::open_exclusive(&dray_cache::Root::at(dir.path())).unwrap();
    assert!(names(&dir.path().join("ingest")).is_empty());
}

#[test]
fn a_partial_with_wrong_bytes_fails_verification_over_the_whole_file_and_is_deleted() {
    let (dir, store) = store();
    let content = b"0123456789";
    let digest = Digest::of(content);
    let mut w = store.blobs().resumable_writer(&digest, 10).unwrap();
    w.write_all(b"XXXXX").unwrap(); // corrupt prefix from an earlier run
    drop(w);
    let mut w = store.blobs().resumable_writer(&digest, 10).unwrap();
    assert_eq!(w.written(), 5);
    w.write_all(&content[5..]).unwrap();
    assert!(matches!(
        w.commit(Some((digest, 10))).unwrap_err(),
        Error::DigestMismatch { .. }
    ));
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    assert!(names(&dir.path().join("ingest")).is_empty());

    // A partial longer than the blob can be starts over; discard deletes it.
    let path = dir
        .path()
        .join("ingest")
        .join(format!("{}.partial", digest.hex()));
    fs::write(&path, b"much too long for ten bytes").unwrap();
    let w = store.blobs().resumable_writer(&digest, 10).unwrap();
    assert_eq!(w.written(), 0);
    w.discard();
    assert!(!path.exists());
}

#[test]
fn a_partial_being_written_is_not_shared_with_a_second_writer() {
    let (dir, store) = store();
    let content = b"written by two";
    let digest = Digest::of(content);
    let mut first = store.blobs().resumable_writer(&digest, 14).unwrap();
    first.write_all(b"written").unwrap();
    first.flush().unwrap();
    // The partial is locked: the second writer gets a private temp file.
    let mut second = store.blobs().resumable_writer(&digest, 14).unwrap();
    assert_eq!(second.written(), 0);
    assert!(
        second
            .temp_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("blob-")
    );
    second.write_all(content).unwrap();
    second.commit(Some((digest, 14))).unwrap();
    first.write_all(b" by two").unwrap();
    first.commit(Some((digest, 14))).unwrap();
    assert_eq!(store.blobs().read(&digest).unwrap(), content);
    assert!(names(&dir.path().join("ingest")).is_empty());
}
