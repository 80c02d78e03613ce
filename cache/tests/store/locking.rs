use std::sync::mpsc;
use std::time::Duration;

use dray_cache::{Error, LockMode, Root, Store};

#[test]
fn shared_opens_coexist_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let first = Store::open(&root).unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let s = Store::open(&root).unwrap();
                assert_eq!(s.lock_mode(), LockMode::Shared);
                let c = s.commit(s.prepare(None).unwrap(), "t").unwrap();
                s.save(&dray_cache::Digest::of([i]), "{}", &c).unwrap();
                s.blobs().put_bytes(&[i]).unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(first.blobs().list().unwrap().len(), 4);
    assert_eq!(first.cache_records().unwrap().len(), 4);
}

#[test]
fn exclusive_fails_fast_while_shared_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let shared = Store::open(&root).unwrap();
    let clone = shared.clone();
    drop(shared);
    // A clone keeps the lock.
    match Store::try_open_exclusive(&root).unwrap_err() {
        Error::Locked { path } => assert_eq!(path, dir.path().join("lock")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        Store::try_open_exclusive(&root)
            .unwrap_err()
            .to_string()
            .contains("in use")
    );
    drop(clone);
    let excl = when_released(|| Store::try_open_exclusive(&root));
    assert_eq!(excl.lock_mode(), LockMode::Exclusive);
    assert!(matches!(
        Store::try_open_exclusive(&root),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(Store::try_open(&root), Err(Error::Locked { .. })));
    drop(excl);
    assert_eq!(
        when_released(|| Store::try_open(&root)).lock_mode(),
        LockMode::Shared
    );
}

#[test]
fn open_exclusive_waits_for_shared_holders() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let shared = Store::open(&root).unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let root = root.clone();
        std::thread::spawn(move || {
            let s = Store::open_exclusive(&root).unwrap();
            tx.send(()).unwrap();
            drop(s);
        })
    };
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "exclusive open succeeded while a shared lock was held"
    );
    drop(shared);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("exclusive open never got the lock");
    waiter.join().unwrap();
}

/// Opens a store right after the last holder of the lock dropped it. flock locks belong to the
/// open file description, so a child process that another test thread forks inherits the lock
/// file's descriptor until its `exec` closes it (`O_CLOEXEC`); on a loaded machine that window
/// can be seen. Retry `Locked` for up to 2 s; any other error fails at once.
fn when_released(open: impl Fn() -> Result<Store, Error>) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match open() {
            Ok(store) => return store,
            Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(other) => panic!("the lock was released, but opening failed: {other:?}"),
        }
    }
}
