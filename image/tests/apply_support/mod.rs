//! Helpers of the layer-applier tests: crafting layer tars entry by entry (names and link
//! targets written verbatim, as a hostile tool would), and describing directory trees so that
//! a test can prove nothing outside the target changed.

#![allow(dead_code, unreachable_pub)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use dray_image::Error;
use dray_image::apply::{ApplyMode, ApplyOptions, ApplyStats, apply_layer};
pub use tar::EntryType;

/// Fails the calling test when not running as root: whiteouts need `CAP_MKNOD`, opaque
/// markers `CAP_SYS_ADMIN`, owners `CAP_CHOWN`. CI runs as root; a skipped test would hide a
/// regression.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (mknod, trusted.* xattrs, chown); run the tests as root, as CI does"
    );
}

/// One entry of a crafted layer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryType,
    pub name: String,
    pub link: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub device: (u32, u32),
    /// PAX records written before the entry (`path`, `linkpath`, `mtime`, `SCHILY.xattr.*`).
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn new(kind: EntryType, name: &str) -> Entry {
        Entry {
            kind,
            name: name.to_owned(),
            link: String::new(),
            data: Vec::new(),
            mode: if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: 1_234_567_890,
            device: (0, 0),
            pax: Vec::new(),
        }
    }

    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    pub fn pax(mut self, key: &str, value: &[u8]) -> Entry {
        self.pax.push((key.to_owned(), value.to_vec()));
        self
    }
}

/// A regular file holding `data`.
pub fn file(name: &str, data: &str) -> Entry {
    Entry {
        data: data.as_bytes().to_vec(),
        ..Entry::new(EntryType::Regular, name)
    }
}

/// A directory.
pub fn dir(name: &str) -> Entry {
    Entry::new(EntryType::Directory, name)
}

/// A symlink `name -> target`.
pub fn symlink(name: &str, target: &str) -> Entry {
    Entry {
        link: target.to_owned(),
        mode: 0o777,
        ..Entry::new(EntryType::Symlink, name)
    }
}

/// A hard link `name` to the entry named `target`.
pub fn hardlink(name: &str, target: &str) -> Entry {
    Entry {
        link: target.to_owned(),
        ..Entry::new(EntryType::Link, name)
    }
}

/// A character (`c`), block (`b`) device or fifo (`p`).
pub fn node(kind: char, name: &str, major: u32, minor: u32) -> Entry {
    let kind = match kind {
        'c' => EntryType::Char,
        'b' => EntryType::Block,
        _ => EntryType::Fifo,
    };
    Entry {
        device: (major, minor),
        ..Entry::new(kind, name)
    }
}

/// An OCI whiteout of `path` (`dir/name` → `dir/.wh.name`).
pub fn whiteout(path: &str) -> Entry {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), path),
    };
    file(&format!("{dir}.wh.{name}"), "")
}

/// The opaque marker of `dir` (`""` for the root).
pub fn opaque(dir: &str) -> Entry {
    if dir.is_empty() {
        file(".wh..wh..opq", "")
    } else {
        file(&format!("{dir}/.wh..wh..opq"), "")
    }
}

/// A GNU long-name (`L`) or long-link (`K`) record carrying `value`.
fn gnu_long(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, value: &str) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let mut bytes = value.as_bytes().to_vec();
    bytes.push(0);
    h.set_size(bytes.len() as u64);
    h.set_cksum();
    b.append(&h, bytes.as_slice()).unwrap();
}

/// The uncompressed layer tar of `entries`, names and link targets written verbatim (GNU
/// long-name records for the long ones), ended by two zero blocks.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.pax.is_empty() {
            b.append_pax_extensions(e.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        if e.name.len() > 99 {
            gnu_long(&mut b, EntryType::GNULongName, &e.name);
        }
        if e.link.len() > 99 {
            gnu_long(&mut b, EntryType::GNULongLink, &e.link);
        }
        let mut h = tar::Header::new_gnu();
        let n = e.name.len().min(99);
        h.as_old_mut().name[..n].copy_from_slice(&e.name.as_bytes()[..n]);
        let l = e.link.len().min(99);
        h.as_old_mut().linkname[..l].copy_from_slice(&e.link.as_bytes()[..l]);
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.device.0).unwrap();
            h.set_device_minor(e.device.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// One line describing the entry at `p` (not following a symlink): type, mode, owner, mtime,
/// link count, and content, link target or device number.
pub fn describe(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    let ft = m.file_type();
    let content = if ft.is_file() {
        String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned()
    } else if ft.is_symlink() {
        fs::read_link(p).unwrap().display().to_string()
    } else if ft.is_char_device() || ft.is_block_device() {
        format!("dev {}", m.rdev())
    } else {
        String::new()
    };
    let xattrs: Vec<String> = xattr::list(p)
        .map(|names| {
            names
                .map(|n| {
                    let v = xattr::get(p, &n).ok().flatten().unwrap_or_default();
                    format!("{}={}", n.to_string_lossy(), String::from_utf8_lossy(&v))
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{:o} {}:{} {}.{} n{} [{}] {content}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.mtime_nsec(),
        m.nlink(),
        xattrs.join(",")
    )
}

/// Every entry below `root` (but `skip` and what is below it), described.
pub fn tree(root: &Path, skip: Option<&Path>) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if Some(p.as_path()) == skip {
                continue;
            }
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.insert(p.clone(), describe(&p));
        }
    }
    out
}

/// The paths below `root`, relative, sorted.
pub fn listing(root: &Path) -> Vec<String> {
    tree(root, None)
        .keys()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

/// A target directory (what the layer is applied into) beside a sentinel tree that no layer
/// may touch: files, a directory, a symlink to `/etc`, and a file named like what hostile
/// layers aim at.
pub struct Fx {
    pub tmp: tempfile::TempDir,
    pub target: PathBuf,
    pub sentinel: PathBuf,
}

impl Fx {
    pub fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let sentinel = tmp.path().join("sentinel");
        fs::create_dir(&target).unwrap();
        fs::create_dir_all(sentinel.join("dir")).unwrap();
        fs::write(sentinel.join("file"), "sentinel").unwrap();
        fs::write(sentinel.join("dir/inner"), "inner").unwrap();
        fs::write(sentinel.join("pwned"), "not yet").unwrap();
        std::os::unix::fs::symlink("/etc", sentinel.join("etc")).unwrap();
        Fx {
            tmp,
            target,
            sentinel,
        }
    }

    /// The sentinel's absolute path, as a hostile layer would aim at it.
    pub fn abs_sentinel(&self) -> String {
        self.sentinel.display().to_string()
    }

    /// A path in the target.
    pub fn t(&self, rel: &str) -> PathBuf {
        self.target.join(rel)
    }

    /// Everything outside the target: the temp dir around it (the sentinel), and the host
    /// files hostile layers aim at.
    pub fn outside(&self) -> BTreeMap<PathBuf, String> {
        let mut out = tree(self.tmp.path(), Some(&self.target));
        out.insert(self.tmp.path().to_owned(), describe(self.tmp.path()));
        for host in ["/etc/passwd", "/etc/shadow", "/etc/hostname", "/root"] {
            let p = Path::new(host);
            if p.exists() {
                out.insert(p.to_owned(), describe(p));
            }
        }
        out
    }

    /// Applies `layer` in `mode` and checks that nothing outside the target changed.
    pub fn apply_bytes(&self, layer: &[u8], mode: ApplyMode) -> Result<ApplyStats, Error> {
        let before = self.outside();
        let result = apply_layer(layer, &self.target, "test-layer", &ApplyOptions::new(mode));
        assert_eq!(
            self.outside(),
            before,
            "something outside the target changed ({mode:?}, result {result:?})"
        );
        result
    }

    /// [`apply_bytes`](Self::apply_bytes) of the tar of `entries`.
    pub fn apply(&self, entries: &[Entry], mode: ApplyMode) -> Result<ApplyStats, Error> {
        self.apply_bytes(&tar_of(entries), mode)
    }
}

/// Whether `path` is an overlay whiteout (a 0:0 character device).
pub fn is_whiteout(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// Whether `path` carries `trusted.overlay.opaque=y`.
pub fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// `st_mode & 0o7777`.
pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The content of a file, or `None`.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The error's message with its sources.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
