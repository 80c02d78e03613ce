//! `ADD` of a local archive end to end: extracted into the image by `ADD`, copied as a file
//! by `COPY`, and refused (naming the entry) when it would escape its directory.

use std::io::Write;

use crate::harness::{TestDir, text};
use crate::store;

/// `app/` (0750, 1000:1000), `app/run.sh` (0755), `app/link -> run.sh`, `app/hard` (a hard
/// link to `app/run.sh`), gzip-compressed.
fn app_tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind, mode, size| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
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
    gzip(&b.into_inner().unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn add_extracts_a_local_archive_and_copy_does_not() {
    let dir = TestDir::new();
    let archive = app_tar_gz();
    dir.write("ctx/app.tar.gz", &archive);
    dir.write("ctx/notes.tar.gz", "not an archive\n");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nADD app.tar.gz /opt/\nADD notes.tar.gz /opt/\nCOPY app.tar.gz /x/\n",
    );
    let output = dir.build(&["-t", "add"]);
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");

    let files = store::files(&dir.root(), "docker.io/library/add:latest");
    // `run.sh` and `hard` are one inode: the layer holds the content once and a hard link.
    let (run, hard) = (&files["opt/app/run.sh"], &files["opt/app/hard"]);
    let (content, link) = if run.kind == 'f' {
        (run, hard)
    } else {
        (hard, run)
    };
    assert_eq!(content.data, b"#!/bin/sh\necho");
    assert_eq!(
        (content.kind, content.mode, content.uid, content.gid),
        ('f', 0o755, 1000, 1000)
    );
    assert_eq!(link.kind, 'h');
    assert!(link.data.starts_with(b"opt/app/"), "{link:?}");
    let app = &files["opt/app"];
    assert_eq!((app.kind, app.mode, app.uid), ('d', 0o750, 1000));
    assert_eq!(files["opt/app/link"].kind, 'l');
    assert_eq!(files["opt/app/link"].data, b"run.sh");
    assert!(!files.contains_key("opt/app.tar.gz"));
    // A file named like an archive but not one is copied.
    assert_eq!(files["opt/notes.tar.gz"].data, b"not an archive\n");
    // COPY never extracts.
    assert_eq!(files["x/app.tar.gz"].data, archive);
    assert!(!files.contains_key("x/app"));
}

#[test]
fn add_chown_owns_the_extracted_entries() {
    let dir = TestDir::new();
    dir.write("ctx/app.tar.gz", app_tar_gz());
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nADD --chown=7:8 app.tar.gz /opt\n",
    );
    let output = dir.build(&["-t", "owned"]);
    assert!(output.status.success(), "{}", text(&output).1);
    let files = store::files(&dir.root(), "docker.io/library/owned:latest");
    for path in ["opt/app", "opt/app/run.sh", "opt/app/link"] {
        assert_eq!((files[path].uid, files[path].gid), (7, 8), "{path}");
    }
}

#[test]
fn add_of_an_archive_escaping_its_directory_fails_naming_the_entry() {
    let dir = TestDir::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..16].copy_from_slice(b"../../escape.txt");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(5);
    h.set_cksum();
    b.append(&h, &b"pwned"[..]).unwrap();
    dir.write("ctx/evil.tar", b.into_inner().unwrap());
    dir.write("ctx/Dockerfile", "FROM scratch\nADD evil.tar /opt/\n");
    let output = dir.build(&["-t", "evil"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("../../escape.txt"), "{stderr}");
    assert!(!dir.path().join("escape.txt").exists());
}
