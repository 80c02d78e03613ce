use std::fs;

use dray_cache::{Committed, Digest, Error, Root, SnapshotId, SnapshotKind, SnapshotUser, Store};

use crate::{names, store};

#[test]
fn prepare_then_commit() {
    let (dir, store) = store();
    let active = store.prepare(None).unwrap();
    let sdir = dir.path().join("snapshots").join(active.id().as_str());
    assert!(active.fs().is_dir() && active.work().is_dir());
    assert!(active.fs().starts_with(&sdir));
    fs::write(active.fs().join("hello"), vec![1u8; 10_000]).unwrap();
    // Not visible before commit.
    assert!(matches!(
        store.get(active.id()),
        Err(Error::SnapshotNotFound { .. })
    ));

    let id = active.id().clone();
    let c = store.commit(active, "RUN echo hi").unwrap();
    assert_eq!(c.id, id);
    assert_eq!(c.parent, None);
    assert_eq!(c.chain, std::slice::from_ref(&id));
    assert_eq!(names(&sdir), ["fs"], "work/ is removed on commit");
    assert_eq!(fs::read(sdir.join("fs/hello")).unwrap().len(), 10_000);
    assert_eq!(store.get(&id).unwrap(), c);
    assert_eq!(store.fs_path(&id), sdir.join("fs"));

    let info = store.snapshot_info(&id).unwrap().unwrap();
    assert_eq!(info.kind, SnapshotKind::Diff);
    assert_eq!(info.description, "RUN echo hi");
    assert!(info.size >= 10_000, "size {}", info.size);
    assert_eq!(store.list_snapshots().unwrap(), [info]);
}

#[test]
fn dropping_an_active_snapshot_removes_it() {
    let (dir, store) = store();
    let active = store.prepare(None).unwrap();
    fs::write(active.fs().join("junk"), b"x").unwrap();
    drop(active);
    assert!(names(&dir.path().join("snapshots")).is_empty());
    assert!(store.list_snapshots().unwrap().is_empty());
}

#[test]
fn chain_runs_root_to_top() {
    let (_dir, store) = store();
    let a = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let b = store.commit(store.prepare(Some(&a)).unwrap(), "b").unwrap();
    let c = store.commit(store.prepare(Some(&b)).unwrap(), "c").unwrap();
    assert_eq!(c.chain, [a.id.clone(), b.id.clone(), c.id.clone()]);
    assert_eq!(c.parent.as_ref(), Some(&b.id));
    // Read back from the database, not just carried along in memory.
    assert_eq!(store.get(&c.id).unwrap(), c);
    assert_eq!(
        store.get(&b.id).unwrap().chain,
        [a.id.clone(), b.id.clone()]
    );
    assert_ne!(a.id, b.id);
}

#[test]
fn prepare_with_id_uses_the_given_name_once() {
    let (_dir, store) = store();
    let id: SnapshotId = format!("sha256:{}", Digest::of(b"chain").hex())
        .parse()
        .unwrap();
    let c = store
        .commit_as(
            store.prepare_with_id(None, id.clone()).unwrap(),
            SnapshotKind::Unpacked,
            "layer",
        )
        .unwrap();
    assert_eq!(c.id, id);
    assert_eq!(
        store.snapshot_info(&id).unwrap().unwrap().kind,
        SnapshotKind::Unpacked
    );
    match store.prepare_with_id(None, id.clone()).unwrap_err() {
        Error::SnapshotExists { id: e } => assert_eq!(e, id),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn snapshot_ids_are_single_path_components() {
    for bad in ["", ".", "..", "a/b", ".hidden", "a b", &"x".repeat(129)] {
        assert!(bad.parse::<SnapshotId>().is_err(), "{bad:?} accepted");
    }
    assert!("sha256:abc-DEF_1.2".parse::<SnapshotId>().is_ok());
}

#[test]
fn commit_fails_if_the_parent_was_removed() {
    let (dir, store) = store();
    let a = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let active = store.prepare(Some(&a)).unwrap();
    store.remove(&a.id).unwrap();
    assert!(matches!(store.commit(active, "b"), Err(Error::SnapshotNotFound { id }) if id == a.id));
    // The failed commit dropped the active snapshot's directory.
    assert!(names(&dir.path().join("snapshots")).is_empty());
}

#[test]
fn remove_refuses_used_snapshots() {
    let (dir, store) = store();
    let a = store.commit(store.prepare(None).unwrap(), "a").unwrap();
    let b = store.commit(store.prepare(Some(&a)).unwrap(), "b").unwrap();
    let key = Digest::of(b"key");
    store.save(&key, "{}", &b).unwrap();

    match store.remove(&a.id).unwrap_err() {
        Error::SnapshotInUse {
            by: SnapshotUser::Child(c),
            ..
        } => assert_eq!(c, b.id),
        other => panic!("unexpected {other:?}"),
    }
    match store.remove(&b.id).unwrap_err() {
        Error::SnapshotInUse {
            by: SnapshotUser::CacheKey(k),
            ..
        } => assert_eq!(k, key),
        other => panic!("unexpected {other:?}"),
    }
    assert!(store.forget(&key).unwrap());

    let lease = store.lease().unwrap();
    lease.protect(&b).unwrap();
    // Until persisted, a lease is only in memory (a build that hits the cache writes nothing).
    assert!(store.leases().unwrap().is_empty());
    assert!(store.leased_snapshots().unwrap().is_empty());
    lease.persist().unwrap();
    assert_eq!(
        store
            .leased_snapshots()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        std::slice::from_ref(&b.id)
    );
    match store.remove(&b.id).unwrap_err() {
        Error::SnapshotInUse {
            by: SnapshotUser::Lease { pid, .. },
            ..
        } => {
            assert_eq!(pid, std::process::id())
        }
        other => panic!("unexpected {other:?}"),
    }
    // After persisting, protecting writes at once.
    let c = store.commit(store.prepare(Some(&b)).unwrap(), "c").unwrap();
    lease.protect(&c).unwrap();
    assert_eq!(store.leased_snapshots().unwrap().len(), 2);
    drop(lease);
    assert!(store.leases().unwrap().is_empty());
    store.remove(&c.id).unwrap();

    store.remove(&b.id).unwrap();
    store.remove(&a.id).unwrap();
    assert!(names(&dir.path().join("snapshots")).is_empty());
    assert!(names(&dir.path().join("tmp")).is_empty());
    assert!(matches!(
        store.get(&a.id),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        store.remove(&a.id),
        Err(Error::SnapshotNotFound { .. })
    ));
}

#[test]
fn exclusive_open_deletes_uncommitted_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let kept: Committed;
    {
        let store = Store::open(&root).unwrap();
        kept = store.commit(store.prepare(None).unwrap(), "kept").unwrap();
        // As if the process died: the Active's destructor never runs.
        std::mem::forget(store.prepare(Some(&kept)).unwrap());
        std::mem::forget(store.blobs().writer().unwrap());
        fs::write(dir.path().join("tmp/scratch"), b"x").unwrap();
    }
    assert_eq!(names(&dir.path().join("snapshots")).len(), 2);
    assert_eq!(names(&dir.path().join("ingest")).len(), 1);

    let store = Store::open_exclusive(&root).unwrap();
    assert_eq!(names(&dir.path().join("snapshots")), [kept.id.to_string()]);
    assert!(names(&dir.path().join("ingest")).is_empty());
    assert!(names(&dir.path().join("tmp")).is_empty());
    assert_eq!(store.get(&kept.id).unwrap(), kept);
}
