//! Reading dray's store back in tests: images by name, their config, and their merged files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// A file in an image's merged filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileEntry {
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) kind: char,
    pub(crate) data: Vec<u8>,
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

pub(crate) fn blob_path(root: &Path, digest: &str) -> std::path::PathBuf {
    root.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
}

/// The manifest of the image tagged `name` (normalized, e.g. `docker.io/library/app:latest`).
pub(crate) fn manifest(root: &Path, name: &str) -> (String, Value) {
    let index = read_json(&root.join("index.json"));
    let descriptor = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in {index}"))
        .clone();
    let digest = descriptor["digest"].as_str().unwrap().to_owned();
    (digest.clone(), read_json(&blob_path(root, &digest)))
}

pub(crate) fn config(root: &Path, name: &str) -> Value {
    let (_, manifest) = manifest(root, name);
    read_json(&blob_path(
        root,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
}

/// The image's filesystem: layers applied in order, OCI whiteouts honoured.
pub(crate) fn files(root: &Path, name: &str) -> BTreeMap<String, FileEntry> {
    let (_, manifest) = manifest(root, name);
    let mut files = BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let blob = std::fs::File::open(blob_path(root, layer["digest"].as_str().unwrap())).unwrap();
        let reader: Box<dyn Read> = if layer["mediaType"].as_str().unwrap().ends_with("+gzip") {
            Box::new(flate2::read::GzDecoder::new(blob))
        } else {
            Box::new(blob)
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", &path));
            if base == ".wh..wh..opq" {
                let prefix = format!("{dir}/");
                files.retain(|p: &String, _| !p.starts_with(&prefix));
                continue;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                let gone = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                let prefix = format!("{gone}/");
                files.retain(|p: &String, _| p != &gone && !p.starts_with(&prefix));
                continue;
            }
            let header = entry.header().clone();
            let kind = match header.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            };
            let mut data = Vec::new();
            if kind == 'l' || kind == 'h' {
                data = entry.link_name_bytes().unwrap_or_default().into_owned();
            } else {
                entry.read_to_end(&mut data).unwrap();
            }
            files.insert(
                path,
                FileEntry {
                    mode: header.mode().unwrap() & 0o7777,
                    uid: header.uid().unwrap(),
                    gid: header.gid().unwrap(),
                    kind,
                    data,
                },
            );
        }
    }
    files
}

/// Every blob under `root/blobs/sha256` hashes to its name; returns how many were checked.
pub(crate) fn verify_blobs(root: &Path) -> usize {
    let dir = root.join("blobs/sha256");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let actual = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        assert_eq!(
            actual,
            path.file_name().unwrap().to_string_lossy(),
            "corrupt blob {}",
            path.display()
        );
        count += 1;
    }
    count
}
