//! Helpers shared by the layer tests: building trees (with the `mknod`/`touch` binaries, since
//! the workspace denies `unsafe`), writing layers and reading them back with the `tar` crate.

#![allow(dead_code, unreachable_pub)] // each test crate uses a different subset

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use dray_image::{Compression, DiffSource, LayerInfo, LayerOptions, write_layer};
use sha2::{Digest as _, Sha256};
use tar::EntryType;

/// Device nodes and `trusted.*` xattrs need root. dray's tests run as root (CI is root), and a
/// test that needs root fails, never skips, without it.
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Fails the calling test when not running as root.
#[allow(unused_macros)]
macro_rules! require_root {
    () => {
        assert!(
            common::is_root(),
            "this test needs root (mknod, trusted.* xattrs, chown); run the tests as root, as CI does"
        );
    };
}
#[allow(unused_imports)]
pub(crate) use require_root;

pub fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().expect(cmd);
    assert!(status.success(), "{cmd} {args:?} failed");
}

pub fn mknod(path: &Path, kind: &str, major: u32, minor: u32) {
    let p = path.to_str().unwrap();
    run("mknod", &[p, kind, &major.to_string(), &minor.to_string()]);
}

pub fn mkfifo(path: &Path) {
    run("mknod", &[path.to_str().unwrap(), "p"]);
}

/// Sets the mtime of `path` (not following symlinks), e.g. `"@1500"` or `"@1500.75"`.
pub fn touch(path: &Path, when: &str) {
    run("touch", &["-h", "-d", when, path.to_str().unwrap()]);
}

/// Sets every mtime under `root` (children first, so directories keep theirs).
pub fn touch_all(root: &Path, when: &str) {
    let mut paths: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    paths.reverse();
    for p in paths {
        touch(&p, when);
    }
}

pub fn opts(source: DiffSource, compression: Compression) -> LayerOptions {
    LayerOptions::new(source).with_compression(compression)
}

/// Writes the layer into memory and returns it with its info.
pub fn layer(root: &Path, opts: &LayerOptions) -> (LayerInfo, Vec<u8>) {
    let mut blob = Vec::new();
    let info = write_layer(root, opts, &mut blob).expect("write_layer");
    (info, blob)
}

pub fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        Compression::Gzip { .. } => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd { .. } => {
            zstd::stream::read::Decoder::new(blob)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Uncompressed => out.extend_from_slice(blob),
    }
    out
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// One archive member as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub device: Option<(u32, u32)>,
    /// All PAX records of the entry, in archive order.
    pub pax: Vec<(String, Vec<u8>)>,
    pub data: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
}

impl Item {
    pub fn xattrs(&self) -> Vec<(&str, &[u8])> {
        self.pax
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("SCHILY.xattr.")?, v.as_slice())))
            .collect()
    }
}

/// Parses PAX records by their length prefix, as POSIX defines them. (The `tar` crate's own
/// parser splits on newlines, so it rejects binary xattr values that contain `\n`.)
pub fn parse_pax(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').expect("record length");
        let len: usize = std::str::from_utf8(&data[..space])
            .unwrap()
            .parse()
            .unwrap();
        let record = &data[space + 1..len];
        assert_eq!(data[len - 1], b'\n', "record ends in a newline");
        let eq = record.iter().position(|&b| b == b'=').expect("key=value");
        let key = String::from_utf8(record[..eq].to_vec()).unwrap();
        out.push((key, record[eq + 1..record.len() - 1].to_vec()));
        data = &data[len..];
    }
    out
}

/// Reads every member, attaching each PAX extended header to the member that follows it.
pub fn read_tar(tar_bytes: &[u8]) -> Vec<Item> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut items = Vec::new();
    let mut pending: Option<Vec<(String, Vec<u8>)>> = None;
    for entry in archive.entries().unwrap().raw(true) {
        let mut e = entry.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let kind = h.entry_type();
        if kind == EntryType::XHeader {
            assert!(pending.is_none(), "two PAX headers in a row");
            assert_eq!(h.path_bytes().as_ref(), b"././@PaxHeader");
            pending = Some(parse_pax(&data));
            continue;
        }
        assert!(
            !matches!(kind, EntryType::GNULongName | EntryType::GNULongLink),
            "GNU header"
        );
        let pax = pending.take().unwrap_or_default();
        let record = |key: &str| pax.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let path = record("path").unwrap_or_else(|| h.path_bytes().into_owned());
        let link = record("linkpath").or_else(|| h.link_name_bytes().map(|l| l.into_owned()));
        let device = matches!(kind, EntryType::Char | EntryType::Block).then(|| {
            (
                h.device_major().unwrap().unwrap(),
                h.device_minor().unwrap().unwrap(),
            )
        });
        items.push(Item {
            path: String::from_utf8(path).unwrap(),
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            size: h.size().unwrap(),
            link: link.map(|l| String::from_utf8(l).unwrap()),
            device,
            pax,
            data,
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
        });
    }
    assert!(pending.is_none(), "dangling PAX header");
    items
}

pub fn paths(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.path.as_str()).collect()
}

pub fn find<'a>(items: &'a [Item], path: &str) -> &'a Item {
    items
        .iter()
        .find(|i| i.path == path)
        .unwrap_or_else(|| panic!("no entry {path}"))
}

/// Writes an uncompressed layer and reads it back.
pub fn entries(root: &Path, source: DiffSource) -> Vec<Item> {
    let (_, blob) = layer(root, &opts(source, Compression::Uncompressed));
    read_tar(&blob)
}

/// `io::Write` into a SHA-256 (sha2 0.11 hashers are not writers).
#[derive(Default)]
pub struct HashWriter(pub Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashWriter {
    pub fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}
