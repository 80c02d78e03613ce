//! Multi-process tests: the child side runs in `child_main`, inside a re-run of this binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dray_cache::{Digest, Root, SnapshotId, Store};

use crate::names;

const CHILD: &str = "DRAY_CACHE_TEST_CHILD";
const ROOT: &str = "DRAY_CACHE_TEST_ROOT";
const ARG: &str = "DRAY_CACHE_TEST_ARG";

fn spawn_child(mode: &str, root: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_helper",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD, mode)
        .env(ROOT, root)
        .env(ARG, arg)
        // The child's own libtest summary would read like this binary's closing line.
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs in the child process; a no-op in a normal test run.
pub(crate) fn child_main() {
    let Some(mode) = std::env::var_os(CHILD) else {
        return;
    };
    let root = Root::at(PathBuf::from(std::env::var_os(ROOT).unwrap()));
    let arg = std::env::var(ARG).unwrap();
    let store = Store::open(&root).unwrap();
    match mode.to_str().unwrap() {
        "blob" => {
            let mut w = store.blobs().writer().unwrap();
            w.write_all(&vec![0xabu8; 1 << 20]).unwrap();
            w.flush().unwrap();
            std::fs::write(&arg, b"ready").unwrap();
            std::thread::sleep(Duration::from_secs(120));
            panic!("the parent should have killed this process");
        }
        "lease" => {
            let id: SnapshotId = arg.parse().unwrap();
            let lease = store.lease().unwrap();
            lease.protect(&store.get(&id).unwrap()).unwrap();
            lease.persist().unwrap();
            // Exit without releasing, as a killed build would.
            std::mem::forget(lease);
        }
        "build" => {
            for i in 0..20 {
                let c = store.commit(store.prepare(None).unwrap(), &arg).unwrap();
                store
                    .save(&Digest::of(format!("{arg}/{i}").as_bytes()), "{}", &c)
                    .unwrap();
                store
                    .blobs()
                    .put_bytes(format!("{arg}/{i}").as_bytes())
                    .unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn sigkill_mid_blob_write_leaves_no_visible_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let marker = dir.path().join("ready");
    let mut child = spawn_child("blob", &root, marker.to_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "child never got mid-write");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The write is in flight: a temp file in ingest/, nothing in blobs/.
    assert_eq!(names(&root.join("ingest")).len(), 1);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    assert!(
        names(&root.join("blobs/sha256")).is_empty(),
        "a partial blob became visible"
    );
    assert_eq!(
        names(&root.join("ingest")).len(),
        1,
        "the orphan temp file is left"
    );
    // The kernel released the dead child's lock, and recovery deletes the temp file.
    let store = Store::try_open_exclusive(&Root::at(&root)).unwrap();
    assert!(names(&root.join("ingest")).is_empty());
    assert!(store.blobs().list().unwrap().is_empty());
}

#[test]
fn leases_of_dead_processes_are_ignored_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let id = {
        let store = Store::open(&root).unwrap();
        let c = store
            .commit(store.prepare(None).unwrap(), "leased")
            .unwrap();
        c.id
    };
    let status = spawn_child("lease", dir.path(), id.as_str())
        .wait()
        .unwrap();
    assert!(status.success());

    let store = Store::open(&root).unwrap();
    let leases = store.leases().unwrap();
    assert_eq!(leases.len(), 1, "the child's lease row outlived it");
    assert!(!leases[0].alive);
    assert!(store.leased_snapshots().unwrap().is_empty());
    drop(store);

    let store = Store::open_exclusive(&root).unwrap();
    assert!(store.leases().unwrap().is_empty(), "stale lease reaped");
    store.remove(&id).unwrap();
}

#[test]
fn two_processes_build_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let store = Store::open(&root).unwrap();
    let children: Vec<_> = ["left", "right"]
        .iter()
        .map(|arg| spawn_child("build", dir.path(), arg))
        .collect();
    for i in 0..20 {
        let c = store
            .commit(store.prepare(None).unwrap(), "parent")
            .unwrap();
        store
            .save(&Digest::of(format!("parent/{i}").as_bytes()), "{}", &c)
            .unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(store.cache_records().unwrap().len(), 60);
    assert_eq!(store.list_snapshots().unwrap().len(), 60);
    assert_eq!(store.blobs().list().unwrap().len(), 40);
}
