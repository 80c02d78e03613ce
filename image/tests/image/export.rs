//! The exporters and the loader against a real store: flattening a snapshot chain with overlay
//! semantics (dir and tar agree), deterministic archives, corrupt blobs refused on the way out
//! and on the way in (nothing published), force-compression.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use dray_image::export::{
    ArchiveFormat, ArchiveImage, ExportError, RootfsOptions, force_compression, load_archive,
    write_archive, write_rootfs_dir, write_rootfs_tar,
};
use dray_image::{Compression, assemble, tag_image};
use dray_llb::ImageRef;

use crate::support::{config, opts, snapshot, store};

/// A three-layer chain exercising every overlay rule: a whiteout, an opaque directory, a file
/// replaced by a directory, a hard link, a symlink, an xattr, a setuid mode.
fn chain(store: &dray_cache::Store) -> dray_cache::Committed {
    let s0 = snapshot(
        store,
        None,
        &[
            ("etc/", None),
            ("etc/passwd", Some(b"root")),
            ("etc/gone", Some(b"deleted later")),
            ("opaque/", None),
            ("opaque/old", Some(b"hidden by opaque")),
            ("swap", Some(b"file, then a dir")),
        ],
        "base",
    );
    let active = store.prepare(Some(&s0)).unwrap();
    let fs_dir = active.fs();
    fs::create_dir_all(fs_dir.join("etc")).unwrap();
    crate::support::mknod_whiteout(&fs_dir.join("etc/gone"));
    fs::create_dir_all(fs_dir.join("opaque")).unwrap();
    xattr::set(fs_dir.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(fs_dir.join("opaque/new"), b"new").unwrap();
    fs::create_dir_all(fs_dir.join("swap")).unwrap();
    fs::write(fs_dir.join("swap/inner"), b"inner").unwrap();
    fs::write(fs_dir.join("bin"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(fs_dir.join("bin"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(fs_dir.join("bin"), fs_dir.join("bin2")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", fs_dir.join("pw")).unwrap();
    fs::write(fs_dir.join("etc/passwd2"), b"x").unwrap();
    xattr::set(fs_dir.join("etc/passwd2"), "user.k", b"v").unwrap();
    store.commit(active, "layer 1").unwrap()
}

/// (kind, mode, content or link target, xattr `user.k`).
type Listed = (char, u32, Vec<u8>, Option<Vec<u8>>);

/// path → [`Listed`] for every entry of a directory tree.
fn listing(root: &Path) -> BTreeMap<String, Listed> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let md = fs::symlink_metadata(e.path()).unwrap();
        let (kind, data) = if md.is_dir() {
            ('d', Vec::new())
        } else if md.file_type().is_symlink() {
            (
                'l',
                fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else {
            ('f', fs::read(e.path()).unwrap())
        };
        let x = if kind == 'l' {
            None
        } else {
            xattr::get(e.path(), "user.k").unwrap()
        };
        out.insert(rel, (kind, md.mode() & 0o7777, data, x));
    }
    out
}

#[test]
fn the_chain_flattens_with_overlay_semantics_and_dir_and_tar_agree() {
    let (dir, store) = store();
    let top = chain(&store);
    let out = dir.path().join("rootfs");
    let opts = RootfsOptions::new();
    write_rootfs_dir(&store, &top.chain, &out, &opts).unwrap();
    let got = listing(&out);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin2",
            "etc",
            "etc/passwd",
            "etc/passwd2",
            "opaque",
            "opaque/new",
            "pw",
            "swap",
            "swap/inner"
        ]
    );
    assert_eq!(got["bin"].1, 0o4755, "setuid survives chown");
    assert_eq!(got["pw"].2, b"/etc/passwd", "symlink target verbatim");
    assert_eq!(got["etc/passwd2"].3.as_deref(), Some(&b"v"[..]));
    assert_eq!(
        fs::metadata(out.join("bin")).unwrap().ino(),
        fs::metadata(out.join("bin2")).unwrap().ino(),
        "hard links stay linked"
    );
    assert!(
        xattr::get(out.join("opaque"), "trusted.overlay.opaque")
            .unwrap()
            .is_none()
    );

    // The tar of the same chain, unpacked by GNU tar, is the same tree.
    let tar_path = dir.path().join("rootfs.tar");
    write_rootfs_tar(
        &store,
        &top.chain,
        fs::File::create(&tar_path).unwrap(),
        &opts,
    )
    .unwrap();
    let unpacked = dir.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    crate::support::run(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "-xpf",
            tar_path.to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ],
    );
    assert_eq!(listing(&unpacked), got);
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(fs::File::open(&tar_path).unwrap());
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        members.push((
            e.path().unwrap().to_str().unwrap().to_owned(),
            e.header().entry_type(),
        ));
    }
    assert_eq!(members[0].0, "bin");
    assert_eq!(members[1], ("bin2".to_owned(), tar::EntryType::Link));
    assert!(
        members.iter().all(|(p, _)| !p.contains(".wh.")),
        "{members:?}"
    );
}

#[test]
fn mtimes_later_than_the_epoch_are_clamped_and_earlier_ones_kept() {
    let (dir, store) = store();
    let s0 = snapshot(&store, None, &[("old", Some(b"o"))], "s0"); // mtime 1600000000
    let active = store.prepare(Some(&s0)).unwrap();
    fs::write(active.fs().join("new"), b"n").unwrap(); // mtime: now
    let top = store.commit(active, "s1").unwrap();
    let opts = RootfsOptions::new().with_source_date_epoch(Some(1_650_000_000));
    let out = dir.path().join("out");
    write_rootfs_dir(&store, &top.chain, &out, &opts).unwrap();
    assert_eq!(
        fs::symlink_metadata(out.join("old")).unwrap().mtime(),
        1_600_000_000
    );
    assert_eq!(
        fs::symlink_metadata(out.join("new")).unwrap().mtime(),
        1_650_000_000
    );
    let tar = write_rootfs_tar(&store, &top.chain, Vec::new(), &opts).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let times: Vec<u64> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().mtime().unwrap())
        .collect();
    assert_eq!(times, [1_650_000_000, 1_600_000_000]);
}

fn built_image(store: &dray_cache::Store) -> (dray_image::BuiltImage, ImageRef) {
    let s0 = snapshot(
        store,
        None,
        &[("etc/", None), ("etc/os", Some(b"dray"))],
        "s0",
    );
    let s1 = snapshot(store, Some(&s0), &[("app", Some(b"#!/bin/sh\n"))], "s1");
    let built = assemble(
        store,
        &s1.chain,
        None,
        config(&[("A", true), ("B", true)]),
        &opts(),
    )
    .unwrap();
    let name = ImageRef::parse("app:1").unwrap();
    tag_image(store, &name, &built).unwrap();
    (built, name)
}

#[test]
fn archives_are_deterministic_and_round_trip_through_load() {
    let (_d, store) = store();
    let (built, name) = built_image(&store);
    let images = [ArchiveImage {
        manifest: built.manifest.clone(),
        names: vec![name.clone()],
    }];
    for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
        let a = write_archive(&store, &images, format, Vec::new()).unwrap();
        let b = write_archive(&store, &images, format, Vec::new()).unwrap();
        assert_eq!(a, b, "{format:?} archive bytes differ between two writes");
        let mut archive = tar::Archive::new(&a[..]);
        let mut paths = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(
                (e.header().mtime().unwrap(), e.header().uid().unwrap()),
                (0, 0)
            );
            paths.push(e.path().unwrap().to_str().unwrap().to_owned());
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "members are sorted");
        assert_eq!(
            paths.contains(&"manifest.json".to_owned()),
            format == ArchiveFormat::Docker
        );

        let (_d2, fresh) = crate::support::store();
        let loaded = load_archive(&fresh, &a[..], "test").unwrap();
        assert_eq!(loaded.len(), 1);
        if format == ArchiveFormat::Oci {
            assert_eq!(loaded[0].manifest.digest, built.manifest_digest);
        } else {
            // Docker media types: a rewritten manifest, the same config and layer blobs.
            assert_ne!(loaded[0].manifest.digest, built.manifest_digest);
            assert_eq!(
                loaded[0].manifest.media_type,
                "application/vnd.docker.distribution.manifest.v2+json"
            );
            let m =
                dray_image::manifest::read_manifest(&fresh, &loaded[0].manifest.digest).unwrap();
            assert_eq!(
                m.config.media_type,
                "application/vnd.docker.container.image.v1+json"
            );
            let digests: Vec<_> = m.layers.iter().map(|l| l.digest).collect();
            let built_digests: Vec<_> = built.layers.iter().map(|l| l.digest).collect();
            assert_eq!(digests, built_digests);
            assert!(
                m.layers
                    .iter()
                    .all(|l| l.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"),
                "{m:?}"
            );
        }
        assert_eq!(loaded[0].names, std::slice::from_ref(&name));
        let image = dray_image::load_image(&fresh, "app:1").unwrap();
        assert_eq!(image.config_digest, built.config_digest);
        for d in fresh.blobs().list().unwrap() {
            fresh.blobs().verify(&d).unwrap();
        }
    }
}

#[test]
fn a_corrupt_store_blob_fails_the_export() {
    let (_d, store) = store();
    let (built, _) = built_image(&store);
    let layer = &built.layers[0];
    let path = store.blobs().path(&layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, &bytes).unwrap();
    let images = [ArchiveImage {
        manifest: built.manifest.clone(),
        names: Vec::new(),
    }];
    let err = write_archive(&store, &images, ArchiveFormat::Oci, Vec::new()).unwrap_err();
    assert!(
        matches!(&err, ExportError::CorruptBlob { digest, .. } if *digest == layer.digest),
        "{err}"
    );
}

#[test]
fn a_bad_blob_in_an_archive_is_named_and_nothing_is_published() {
    let (_d, store) = store();
    let (built, name) = built_image(&store);
    let images = [ArchiveImage {
        manifest: built.manifest.clone(),
        names: vec![name],
    }];
    let good = write_archive(&store, &images, ArchiveFormat::Oci, Vec::new()).unwrap();
    // Flip one byte of the second layer's data inside the tar.
    let layer = built.layers[1].digest;
    let mut archive = tar::Archive::new(&good[..]);
    let mut offset = None;
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().ends_with(layer.hex()) {
            offset = Some(e.raw_file_position() as usize);
        }
    }
    let mut bad = good.clone();
    bad[offset.unwrap()] ^= 0xff;

    let (_d2, fresh) = crate::support::store();
    let err = load_archive(&fresh, &bad[..], "bad.tar").unwrap_err();
    match &err {
        ExportError::BlobDigest { path, expected, .. } => {
            assert_eq!(*expected, layer);
            assert_eq!(*path, format!("blobs/sha256/{}", layer.hex()));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(fresh.list_images().unwrap().is_empty());
    assert!(
        fresh.blobs().list().unwrap().is_empty(),
        "no blob was published"
    );
    let ingest = fresh.root().path().join("ingest");
    assert_eq!(
        fs::read_dir(ingest).unwrap().count(),
        0,
        "staged files are removed"
    );
}

#[test]
fn force_compression_converts_layers_and_keeps_the_image_id() {
    let (_d, store) = store();
    let (built, _) = built_image(&store);
    for compression in [Compression::Zstd { level: 3 }, Compression::Uncompressed] {
        let converted = force_compression(&store, &built.manifest, compression).unwrap();
        assert_ne!(converted.digest, built.manifest_digest);
        let m = dray_image::manifest::read_manifest(&store, &converted.digest).unwrap();
        assert_eq!(m.config.digest, built.config_digest);
        for (layer, old) in m.layers.iter().zip(&built.layers) {
            assert_eq!(layer.media_type, compression.media_type());
            let mut tar = Vec::new();
            let file = store.blobs().open(&layer.digest).unwrap();
            match compression {
                Compression::Zstd { .. } => zstd::stream::read::Decoder::new(file)
                    .unwrap()
                    .read_to_end(&mut tar)
                    .unwrap(),
                _ => {
                    let mut f = file;
                    f.read_to_end(&mut tar).unwrap()
                }
            };
            assert_eq!(tar, crate::support::gunzip(&store, &old.digest));
        }
        // Already in that compression: unchanged.
        assert_eq!(
            force_compression(&store, &converted, compression).unwrap(),
            converted
        );
    }
}

#[test]
fn a_local_export_replaces_what_is_in_its_way_and_never_follows_a_symlink_out() {
    let (dir, store) = store();
    let top = chain(&store);
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    // `etc` is a directory in the image: a symlink there must be replaced, not followed.
    std::os::unix::fs::symlink(&outside, out.join("etc")).unwrap();
    // `bin` is a file in the image: a directory there is replaced.
    fs::create_dir_all(out.join("bin/sub")).unwrap();
    fs::write(out.join("keep"), b"not in the image").unwrap();
    write_rootfs_dir(&store, &top.chain, &out, &RootfsOptions::new()).unwrap();
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through a symlink"
    );
    assert!(fs::symlink_metadata(out.join("etc")).unwrap().is_dir());
    assert_eq!(fs::read(out.join("etc/passwd")).unwrap(), b"root");
    assert_eq!(fs::read(out.join("bin")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(fs::read(out.join("keep")).unwrap(), b"not in the image");
    // A file as the destination is refused.
    let err =
        write_rootfs_dir(&store, &top.chain, &out.join("keep"), &RootfsOptions::new()).unwrap_err();
    assert!(matches!(err, ExportError::NotADirectory { .. }), "{err}");
}
