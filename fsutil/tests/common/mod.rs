//! Helpers shared by the integration tests: fixture trees, whiteouts, metadata checks.
//!
//! Tests that need root (whiteouts need `CAP_MKNOD`, opaque markers and `chown` need more)
//! call [`require_root`], which **fails** the test without root: CI runs as root, and a
//! skipped test would hide a regression.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Fails the test unless running as root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (CAP_MKNOD, CAP_CHOWN, CAP_SYS_ADMIN); run the suite as root"
    );
}

/// Writes `content` to `root/rel`, creating parents, with `mode`.
pub fn file(root: &Path, rel: &str, content: &str, mode: u32) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Creates the directory `root/rel` (and parents) with `mode`.
pub fn dir(root: &Path, rel: &str, mode: u32) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Creates a symlink `root/rel -> target`.
pub fn symlink(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// Creates an overlayfs whiteout (char device 0:0) at `root/rel`. Needs root.
pub fn whiteout(root: &Path, rel: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
}

/// Marks `root/rel` opaque. Needs root.
pub fn opaque(root: &Path, rel: &str) {
    xattr::set(root.join(rel), "trusted.overlay.opaque", b"y").unwrap();
}

/// Whether `path` is a whiteout.
pub fn is_whiteout(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    match fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_char_device() && m.rdev() == 0,
        Err(_) => false,
    }
}

/// Whether `path` carries the opaque marker.
pub fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// `st_mode & 0o7777`.
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// `(uid, gid)`.
pub fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

/// mtime in seconds.
pub fn mtime(path: &Path) -> i64 {
    fs::symlink_metadata(path).unwrap().mtime()
}

/// Sets atime and mtime of `path` (not following a symlink) to `secs`.
pub fn set_mtime(path: &Path, secs: i64) {
    let ts = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Every path below `root`, relative, sorted (for whole-layer assertions).
pub fn listing(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir(root)
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.push(path.clone());
        if entry.file_type().unwrap().is_dir() {
            out.extend(walkdir(&path));
        }
    }
    out
}
