use std::fs;

use dray_cache::{Error, LAYOUT_VERSION, Root, SCHEMA_VERSION, Store};

use crate::names;

#[test]
fn open_creates_the_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/root");
    let _store = Store::open(&Root::at(&root)).unwrap();

    assert_eq!(
        names(&root),
        [
            "VERSION",
            "blobs",
            "cache-mounts",
            "index.json",
            "ingest",
            "lock",
            "metadata.db",
            "metadata.db-shm",
            "metadata.db-wal",
            "mounts",
            "oci-layout",
            "snapshots",
            "tmp"
        ]
    );
    assert!(root.join("blobs/sha256").is_dir());
    assert_eq!(
        fs::read_to_string(root.join("VERSION")).unwrap(),
        format!("{LAYOUT_VERSION}\n")
    );
    let layout: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout, serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index,
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": []
        })
    );
}

#[test]
fn reopen_keeps_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let info = {
        let store = Store::open(&root).unwrap();
        store.blobs().put_bytes(b"kept").unwrap()
    };
    let store = Store::open(&root).unwrap();
    assert_eq!(store.blobs().read(&info.digest).unwrap(), b"kept");
}

#[test]
fn another_layout_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("VERSION"), "7\n").unwrap();
    let err = Store::open(&Root::at(dir.path())).unwrap_err();
    match &err {
        Error::LayoutVersion {
            found, expected, ..
        } => {
            assert_eq!(found, "7");
            assert_eq!(*expected, LAYOUT_VERSION);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("version 7") && msg.contains(&format!("version {LAYOUT_VERSION}")),
        "{msg}"
    );
    // Nothing else was created in a root we refused.
    assert!(!dir.path().join("metadata.db").exists());
    assert!(!dir.path().join("index.json").exists());
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    drop(Store::open(&root).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Store::open(&root).unwrap_err() {
        Error::SchemaVersion {
            found, expected, ..
        } => {
            assert_eq!(found, 99);
            assert_eq!(expected, SCHEMA_VERSION);
        }
        other => panic!("unexpected {other:?}"),
    }
}
