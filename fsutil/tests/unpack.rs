//! `ADD`'s archive extraction (`Copy::attempt_unpack`) onto an upper layer: formats,
//! metadata, and hostile archives that must not write outside the extraction directory.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::*;
use dray_fsutil::Error;
use dray_fsutil::fileop::{Action, ApplyContext, Copy, Owner, apply};
use dray_fsutil::tree::{ChainTree, DirTree};

/// A context, a lower layer with `/opt`, `/etc/passwd` and `/secret`, an upper, and a
/// sentinel directory beside them that nothing may touch.
struct Fx {
    tmp: tempfile::TempDir,
    ctx: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let ctx = dir(tmp.path(), "ctx", 0o755);
        let lower = dir(tmp.path(), "lower", 0o755);
        let upper = dir(tmp.path(), "upper", 0o755);
        dir(&lower, "opt", 0o711);
        file(&lower, "opt/keep", "kept", 0o644);
        set_mtime(&lower.join("opt"), 1_000_000);
        file(&lower, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644);
        file(&lower, "secret", "s", 0o600);
        file(tmp.path(), "sentinel/x", "sentinel", 0o644);
        symlink(tmp.path(), "sentinel/etc", "/etc");
        Fx {
            tmp,
            ctx,
            lower,
            upper,
        }
    }

    fn add_with(&self, src: &str, dest: &str, edit: impl FnOnce(&mut Copy)) -> Result<(), Error> {
        let mut c = Copy {
            src: src.into(),
            dest: dest.into(),
            create_dest_path: true,
            follow_symlinks: true,
            dir_copy_contents: true,
            allow_wildcard: true,
            attempt_unpack: true,
            ..Default::default()
        };
        edit(&mut c);
        let src = DirTree::open(&self.ctx).unwrap();
        let lower = ChainTree::new([&self.lower]).unwrap();
        apply(
            &Action::Copy(c),
            Some(&src),
            &lower,
            &self.upper,
            &ApplyContext::default(),
        )
        .map(drop)
    }

    fn add(&self, src: &str, dest: &str) -> Result<(), Error> {
        self.add_with(src, dest, |_| {})
    }

    fn up(&self, rel: &str) -> PathBuf {
        self.upper.join(rel)
    }

    fn write_ctx(&self, name: &str, bytes: &[u8]) {
        fs::write(self.ctx.join(name), bytes).unwrap();
    }

    /// Everything outside the upper layer (the context, lower, the sentinel dir), plus the
    /// host's `/etc/passwd`.
    fn outside(&self) -> BTreeMap<PathBuf, String> {
        let mut out = snapshot(self.tmp.path(), &self.upper);
        out.insert("/etc/passwd".into(), describe(Path::new("/etc/passwd")));
        out
    }
}

/// One line per entry below `root` (except `skip`): kind, mode, owner, mtime, content or
/// link target.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == skip {
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

fn describe(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    let content = if m.is_file() {
        fs::read_to_string(p).unwrap_or_default()
    } else if m.file_type().is_symlink() {
        fs::read_link(p).unwrap().display().to_string()
    } else {
        String::new()
    };
    format!(
        "{:o} {}:{} {} {} {content}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.nlink()
    )
}

// --- building archives -------------------------------------------------------------------

/// A raw tar entry, name and link written verbatim (no sanitising, as a hostile tool would).
fn raw(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) {
    if name.len() > 99 {
        // GNU long name: a `././@LongLink` entry of type `L` holding the name.
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_mode(0o644);
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        long.set_size(bytes.len() as u64);
        long.set_cksum();
        b.append(&long, bytes.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(99);
    h.as_old_mut().name[..n].copy_from_slice(&name.as_bytes()[..n]);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(1_234_567_890);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

/// `app/` (0750, 1000:1001), `app/run.sh` (0755), `app/link -> run.sh`, `app/hard` (hard
/// link to `app/run.sh`), `app/.wh.gone`, all with mtime 1600000000.
fn app_tar() -> Vec<u8> {
    tar_of(|b| {
        let header = |kind, mode, size| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(1000);
            h.set_gid(1001);
            h.set_mtime(1_600_000_000);
            h.set_size(size);
            h
        };
        let mut h = header(tar::EntryType::Directory, 0o750, 0);
        b.append_data(&mut h, "app/", &[][..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o755, 14);
        b.append_data(&mut h, "app/run.sh", &b"#!/bin/sh\necho"[..])
            .unwrap();
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "app/link", "run.sh").unwrap();
        let mut h = header(tar::EntryType::Link, 0o755, 0);
        b.append_link(&mut h, "app/hard", "app/run.sh").unwrap();
        let mut h = header(tar::EntryType::Regular, 0o600, 1);
        b.append_data(&mut h, "app/.wh.gone", &b"w"[..]).unwrap();
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

// --- formats and metadata ----------------------------------------------------------------

fn assert_app_extracted(fx: &Fx) {
    let app = fx.up("opt/app");
    assert_eq!(mode(&app), 0o750);
    assert_eq!(owner(&app), (1000, 1001));
    assert_eq!(mtime(&app), 1_600_000_000);
    let run = app.join("run.sh");
    assert_eq!(fs::read_to_string(&run).unwrap(), "#!/bin/sh\necho");
    assert_eq!(mode(&run), 0o755);
    assert_eq!(owner(&run), (1000, 1001));
    assert_eq!(mtime(&run), 1_600_000_000);
    assert_eq!(
        fs::read_link(app.join("link")).unwrap(),
        Path::new("run.sh")
    );
    assert_eq!(owner(&app.join("link")), (1000, 1001));
    let hard = fs::symlink_metadata(app.join("hard")).unwrap();
    assert_eq!(hard.ino(), fs::metadata(&run).unwrap().ino());
    assert_eq!(hard.nlink(), 2);
    // A `.wh.` name inside an ADD archive is a plain file, not a whiteout.
    let wh = app.join(".wh.gone");
    assert!(fs::symlink_metadata(&wh).unwrap().is_file());
    assert_eq!(fs::read_to_string(&wh).unwrap(), "w");
    // `/opt` of lower was copied up with its metadata, and `keep` shows through from lower.
    assert_eq!(mode(&fx.up("opt")), 0o711);
    assert_eq!(mtime(&fx.up("opt")), 1_000_000);
    assert!(!fx.up("opt/keep").exists());
    assert!(!fx.up("opt/app.tar").exists() && !fx.up("opt/app.tgz").exists());
    assert_eq!(
        listing(&fx.upper),
        [
            "opt",
            "opt/app",
            "opt/app/.wh.gone",
            "opt/app/hard",
            "opt/app/link",
            "opt/app/run.sh"
        ]
    );
}

fn extracts(name: &str, bytes: Vec<u8>) {
    let fx = Fx::new();
    fx.write_ctx(name, &bytes);
    let before = fx.outside();
    fx.add(name, "/opt/").unwrap();
    assert_app_extracted(&fx);
    assert_eq!(fx.outside(), before);
}

#[test]
fn extracts_plain_tar() {
    extracts("app.tar", app_tar());
}

#[test]
fn extracts_gzip_tar() {
    extracts("app.tgz", gzip(&app_tar()));
}

#[test]
fn extracts_bzip2_tar() {
    extracts("app.tar.bz2", bzip2(&app_tar()));
}

#[test]
fn extracts_xz_tar() {
    extracts("app.tar.xz", xz(&app_tar()));
}

#[test]
fn extracts_zstd_tar() {
    extracts("app.tar.zst", zstd(&app_tar()));
}

#[test]
fn detection_is_by_content_not_name() {
    // An archive named like a text file is still extracted.
    extracts("notes.txt", gzip(&app_tar()));
}

#[test]
fn non_archive_with_archive_name_is_copied() {
    let fx = Fx::new();
    fx.write_ctx("fake.tar.gz", b"just text, not gzip");
    fx.write_ctx("fake2.tar.gz", &gzip(b"gzip, but no tar inside"));
    fx.add("fake.tar.gz", "/opt/").unwrap();
    fx.add("fake2.tar.gz", "/opt/").unwrap();
    assert_eq!(
        fs::read_to_string(fx.up("opt/fake.tar.gz")).unwrap(),
        "just text, not gzip"
    );
    assert_eq!(
        fs::read(fx.up("opt/fake2.tar.gz")).unwrap(),
        gzip(b"gzip, but no tar inside")
    );
}

#[test]
fn copy_without_unpack_keeps_the_archive() {
    let fx = Fx::new();
    let bytes = gzip(&app_tar());
    fx.write_ctx("app.tar.gz", &bytes);
    fx.add_with("app.tar.gz", "/opt/", |c| c.attempt_unpack = false)
        .unwrap();
    assert_eq!(fs::read(fx.up("opt/app.tar.gz")).unwrap(), bytes);
    assert!(!fx.up("opt/app").exists());
}

#[test]
fn chown_overrides_entry_owners_but_not_modes_or_times() {
    let fx = Fx::new();
    fx.write_ctx("app.tar", &app_tar());
    fx.add_with("app.tar", "/opt/", |c| {
        c.owner = Some(Owner { uid: 7, gid: 8 });
        c.mode = Some(dray_fsutil::fileop::Mode::Octal(0o600));
        c.timestamp = Some(42);
    })
    .unwrap();
    for p in ["opt/app", "opt/app/run.sh", "opt/app/link"] {
        assert_eq!(owner(&fx.up(p)), (7, 8), "{p}");
    }
    assert_eq!(mode(&fx.up("opt/app/run.sh")), 0o755);
    assert_eq!(mtime(&fx.up("opt/app/run.sh")), 1_600_000_000);
}

#[test]
fn dest_without_slash_is_created_as_a_directory() {
    let fx = Fx::new();
    fx.write_ctx("app.tar", &app_tar());
    fx.add("app.tar", "/srv/new").unwrap();
    assert!(fx.up("srv/new").is_dir());
    assert_eq!(mode(&fx.up("srv/new")), 0o755);
    assert!(fx.up("srv/new/app/run.sh").is_file());
}

#[test]
fn wildcard_sources_unpack_archives_and_copy_the_rest() {
    let fx = Fx::new();
    fx.write_ctx("a.tar", &app_tar());
    fx.write_ctx("b.txt", b"plain");
    fx.add("*", "/opt/").unwrap();
    assert!(fx.up("opt/app/run.sh").is_file());
    assert!(!fx.up("opt/a.tar").exists());
    assert_eq!(fs::read_to_string(fx.up("opt/b.txt")).unwrap(), "plain");
}

#[test]
fn replaces_lower_entries_and_merges_directories() {
    let fx = Fx::new();
    file(&fx.lower, "opt/app/run.sh", "old", 0o644);
    file(&fx.lower, "opt/app/other", "other", 0o644);
    fx.write_ctx("app.tar", &app_tar());
    fx.add("app.tar", "/opt").unwrap();
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/run.sh")).unwrap(),
        "#!/bin/sh\necho"
    );
    // The existing directory takes the archive's metadata (moby sets it on merge).
    assert_eq!(mode(&fx.up("opt/app")), 0o750);
    assert!(!fx.up("opt/app/other").exists());
}

/// `tar -C dir -c .`: a `./` entry first, then `./`-prefixed names.
fn dot_tar() -> Vec<u8> {
    tar_of(|b| {
        raw(b, tar::EntryType::Directory, "./", "", b"");
        raw(b, tar::EntryType::Directory, "./etc/", "", b"");
        raw(b, tar::EntryType::Regular, "./etc/os-release", "", b"ID=x");
    })
}

#[test]
fn dot_entry_sets_the_extraction_directory_metadata() {
    let fx = Fx::new();
    fx.write_ctx("rootfs.tar", &dot_tar());
    fx.add("rootfs.tar", "/opt/app").unwrap();
    assert_eq!(mode(&fx.up("opt/app")), 0o755);
    assert_eq!(mtime(&fx.up("opt/app")), 1_234_567_890);
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/etc/os-release")).unwrap(),
        "ID=x"
    );
}

#[test]
fn rootfs_archive_extracts_at_the_layer_root() {
    let fx = Fx::new();
    fx.write_ctx("rootfs.tar", &dot_tar());
    fx.add("rootfs.tar", "/").unwrap();
    assert_eq!(fs::read_to_string(fx.up("etc/os-release")).unwrap(), "ID=x");
    // `/etc` of lower merged into: `passwd` still shows through from lower.
    assert!(!fx.up("etc/passwd").exists());
    assert_eq!(mtime(&fx.up("etc")), 1_234_567_890);
}

#[test]
fn pax_xattrs_are_restored() {
    let fx = Fx::new();
    let bytes = tar_of(|b| {
        b.append_pax_extensions([("SCHILY.xattr.user.origin", &b"archive"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(1);
        b.append_data(&mut h, "tagged", &b"t"[..]).unwrap();
    });
    fx.write_ctx("x.tar", &bytes);
    fx.add("x.tar", "/x/").unwrap();
    assert_eq!(
        xattr::get(fx.up("x/tagged"), "user.origin").unwrap(),
        Some(b"archive".to_vec())
    );
}

#[test]
fn device_nodes_are_created_as_root() {
    let fx = Fx::new();
    let bytes = tar_of(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_mode(0o666);
        h.set_size(0);
        b.append_data(&mut h, "null", &[][..]).unwrap();
    });
    fx.write_ctx("dev.tar", &bytes);
    fx.add("dev.tar", "/d/").unwrap();
    let m = fs::symlink_metadata(fx.up("d/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(m.mode() & 0o7777, 0o666);
}

#[test]
fn corrupt_stream_after_a_valid_header_fails_naming_the_archive() {
    let fx = Fx::new();
    let mut bytes = gzip(&app_tar());
    let n = bytes.len();
    bytes.truncate(n - 40);
    bytes.extend_from_slice(&[0xff; 16]);
    fx.write_ctx("bad.tgz", &bytes);
    let err = fx.add("bad.tgz", "/opt/").unwrap_err().to_string();
    assert!(err.contains("/bad.tgz"), "{err}");
}

// --- hostile archives --------------------------------------------------------------------

use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

/// Extracts `entries` into `/opt/app` and checks that nothing outside the upper layer
/// changed and that upper holds nothing outside `/opt/app` (but `/opt` itself). Returns the
/// error, if any.
fn hostile(entries: &[(tar::EntryType, &str, &str)]) -> (Fx, Option<String>) {
    let fx = Fx::new();
    let bytes = tar_of(|b| {
        for (kind, name, link) in entries {
            let data: &[u8] = if *kind == F { b"pwned" } else { b"" };
            raw(b, *kind, name, link, data);
        }
    });
    fx.write_ctx("evil.tar", &bytes);
    let before = fx.outside();
    let result = fx.add("evil.tar", "/opt/app");
    assert_eq!(fx.outside(), before, "something outside the layer changed");
    for p in listing(&fx.upper) {
        assert!(
            p == "opt" || p == "opt/app" || p.starts_with("opt/app/"),
            "{p} is outside the extraction directory"
        );
    }
    (fx, result.err().map(|e| e.to_string()))
}

fn refused(entries: &[(tar::EntryType, &str, &str)], entry: &str) {
    let (_fx, err) = hostile(entries);
    let err = err.unwrap_or_else(|| panic!("{entry} was accepted"));
    assert!(err.contains(entry), "error does not name {entry}: {err}");
    assert!(
        err.contains("/evil.tar"),
        "error does not name the archive: {err}"
    );
}

#[test]
fn hostile_dotdot_name_is_refused() {
    refused(&[(F, "../escape", "")], "../escape");
}

#[test]
fn hostile_dotdot_inside_name_is_refused() {
    refused(
        &[(D, "a/", ""), (F, "a/../../escape", "")],
        "a/../../escape",
    );
}

#[test]
fn hostile_long_dotdot_name_is_refused() {
    let name = format!("a/{}escape", "../".repeat(60));
    assert!(name.len() > 100);
    refused(&[(F, &name, "")], "escape");
}

#[test]
fn hostile_absolute_name_is_contained() {
    let (fx, err) = hostile(&[(F, "/abs", ""), (F, "/../etc/passwd", "")]);
    assert_eq!(err, None);
    assert_eq!(fs::read_to_string(fx.up("opt/app/abs")).unwrap(), "pwned");
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/etc/passwd")).unwrap(),
        "pwned"
    );
}

#[test]
fn hostile_symlink_to_root_then_file_through_it_is_contained() {
    let (fx, err) = hostile(&[(S, "root", "/"), (F, "root/etc/passwd", "")]);
    assert_eq!(err, None);
    assert_eq!(
        fs::read_link(fx.up("opt/app/root")).unwrap(),
        Path::new("/")
    );
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/etc/passwd")).unwrap(),
        "pwned"
    );
}

#[test]
fn hostile_symlink_chain_out_is_contained() {
    // `d/up2 -> up/..` is lexically inside, but `d/up -> ..` makes it resolve to `dest/..`
    // without the chroot: it must stop at the extraction directory.
    let (fx, err) = hostile(&[
        (D, "d/", ""),
        (S, "d/up", ".."),
        (S, "d/up2", "up/.."),
        (F, "d/up2/x", ""),
    ]);
    assert_eq!(err, None);
    assert_eq!(fs::read_to_string(fx.up("opt/app/x")).unwrap(), "pwned");
}

#[test]
fn hostile_relative_symlink_out_is_refused() {
    refused(&[(S, "sym-out", "../../../etc")], "sym-out");
}

#[test]
fn hostile_dir_replaced_by_symlink_then_written_through_is_contained() {
    let (fx, err) = hostile(&[
        (D, "d/", ""),
        (F, "d/f", ""),
        (S, "d", "/"),
        (F, "d/secret", ""),
    ]);
    assert_eq!(err, None);
    assert!(
        fs::symlink_metadata(fx.up("opt/app/d"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/secret")).unwrap(),
        "pwned"
    );
}

#[test]
fn hostile_symlink_in_lower_is_followed_inside_dest_only() {
    let fx = Fx::new();
    symlink(&fx.lower, "opt/app/lnk", "/etc");
    symlink(&fx.lower, "opt/app/up", "../..");
    let bytes = tar_of(|b| {
        raw(b, F, "lnk/passwd", "", b"pwned");
        raw(b, F, "up/secret", "", b"pwned");
    });
    fx.write_ctx("evil.tar", &bytes);
    let before = fx.outside();
    fx.add("evil.tar", "/opt/app").unwrap();
    assert_eq!(fx.outside(), before);
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/etc/passwd")).unwrap(),
        "pwned"
    );
    assert_eq!(
        fs::read_to_string(fx.up("opt/app/secret")).unwrap(),
        "pwned"
    );
    assert!(!fx.up("etc").exists() && !fx.up("secret").exists());
}

#[test]
fn hostile_hardlink_to_etc_passwd_is_refused() {
    refused(&[(H, "hl-passwd", "/etc/passwd")], "hl-passwd");
}

#[test]
fn hostile_hardlink_to_dotdot_is_refused() {
    refused(&[(H, "hl-dotdot", "../x")], "hl-dotdot");
}

#[test]
fn hostile_hardlink_through_symlink_is_refused() {
    refused(
        &[(S, "root", "/"), (H, "hl-through", "root/etc/passwd")],
        "hl-through",
    );
}

#[test]
fn hostile_symlink_loop_fails() {
    let (_fx, err) = hostile(&[(S, "l1", "l2"), (S, "l2", "l1"), (F, "l1/x", "")]);
    let err = err.expect("a symlink loop was accepted");
    assert!(err.contains("symbolic links"), "{err}");
}

#[test]
fn hostile_hardlink_to_a_symlink_links_the_symlink() {
    // link(2) does not follow a final symlink: the hard link is a second name of the link.
    let (fx, err) = hostile(&[(S, "abs", "/etc/passwd"), (H, "h", "abs")]);
    assert_eq!(err, None);
    assert_eq!(
        fs::read_link(fx.up("opt/app/h")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn hostile_path_through_a_file_fails() {
    let (_fx, err) = hostile(&[(F, "f", ""), (F, "f/x", "")]);
    let err = err.expect("a path through a file was accepted");
    assert!(err.contains("not a directory"), "{err}");
}
