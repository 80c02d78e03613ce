//! Shared helpers: stores, hand-made snapshots, configs, blob reading.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use dray_cache::{Committed, Digest, Root, Store};
use dray_image::{AssembleOptions, Compression};
use dray_llb::{ContainerConfig, History, ImageConfig};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

pub(crate) fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Root::at(dir.path().join("root"))).unwrap();
    (dir, store)
}

/// Commits a snapshot on `parent` whose diff holds `files` (`path`, content); a path ending in
/// `/` is a directory, a content of `None` is a whiteout (char device 0:0).
pub(crate) fn snapshot(
    store: &Store,
    parent: Option<&Committed>,
    files: &[(&str, Option<&[u8]>)],
    description: &str,
) -> Committed {
    let active = store.prepare(parent).unwrap();
    let fs_dir = active.fs();
    for (path, content) in files {
        let p = fs_dir.join(path.trim_end_matches('/'));
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        match content {
            _ if path.ends_with('/') => fs::create_dir_all(&p).unwrap(),
            Some(bytes) => fs::write(&p, bytes).unwrap(),
            None => mknod_whiteout(&p),
        }
    }
    touch_all(&fs_dir, "@1600000000");
    store.commit(active, description).unwrap()
}

pub(crate) fn mknod_whiteout(path: &Path) {
    let status = Command::new("mknod")
        .args([path.to_str().unwrap(), "c", "0", "0"])
        .status()
        .expect("mknod");
    assert!(
        status.success(),
        "mknod {path:?} failed: these tests need root, as CI runs them"
    );
}

fn touch_all(root: &Path, when: &str) {
    let mut paths: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    paths.reverse();
    for p in paths {
        let ok = Command::new("touch")
            .args(["-h", "-d", when, p.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

/// A config as the converter would hand it over: runtime config and one history entry per
/// instruction; `layers[i]` says whether instruction `i` makes a layer.
pub(crate) fn config(steps: &[(&str, bool)]) -> ImageConfig {
    ImageConfig {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        config: ContainerConfig {
            env: Some(vec!["PATH=/usr/bin:/bin".to_owned()]),
            cmd: Some(vec!["/bin/sh".to_owned()]),
            working_dir: Some("/app".to_owned()),
            ..ContainerConfig::default()
        },
        history: steps
            .iter()
            .map(|(by, layer)| History {
                created_by: Some((*by).to_owned()),
                comment: Some("buildkit.dockerfile.v0".to_owned()),
                empty_layer: !layer,
                ..History::default()
            })
            .collect(),
        ..ImageConfig::default()
    }
}

pub(crate) fn opts() -> AssembleOptions {
    AssembleOptions::new()
        .with_compression(Compression::Gzip { level: 6 })
        .with_now(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

pub(crate) fn json(store: &Store, digest: &Digest) -> Value {
    serde_json::from_slice(&store.blobs().read(digest).unwrap()).unwrap()
}

pub(crate) fn gunzip(store: &Store, digest: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(store.blobs().open(digest).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Paths in a layer tar, in order.
pub(crate) fn tar_paths(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

pub(crate) fn blob_count(store: &Store) -> usize {
    store.blobs().list().unwrap().len()
}

/// Runs a command, failing the test (never skipping) if it cannot start or fails.
pub(crate) fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (it must be installed for this test): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
