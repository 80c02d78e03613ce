//! The byte stream: digests and sizes measured in one pass, determinism, SOURCE_DATE_EPOCH,
//! large files, and option and root errors.

mod common;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek};
use std::path::Path;

use common::{HashWriter, decompress, layer, opts, paths, read_tar, sha256, touch, touch_all};
use dray_image::{Compression, DiffSource, Error, LayerOptions, layer as l, write_layer};
use sha2::{Digest as _, Sha256};

const ALL: [Compression; 3] = [
    Compression::Gzip { level: 6 },
    Compression::Zstd { level: 3 },
    Compression::Uncompressed,
];

fn sample_tree(r: &Path, order_reversed: bool) {
    let mut files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                format!("dir{}/file{i:02}", i % 4),
                format!("content {i}\n").repeat(i * 37).into_bytes(),
            )
        })
        .collect();
    files.push(("top".into(), b"top".to_vec()));
    if order_reversed {
        files.reverse();
    }
    for (name, data) in &files {
        let path = r.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
    }
    let mut links = [("top", "ln1"), ("dir1", "ln2")];
    if order_reversed {
        links.reverse();
    }
    for (target, name) in links {
        std::os::unix::fs::symlink(target, r.join(name)).unwrap();
    }
}

#[test]
fn digests_and_sizes_match_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path(), false);
    for c in ALL {
        let (info, blob) = layer(dir.path(), &opts(DiffSource::Plain, c));
        let tar = decompress(&blob, c);
        assert_eq!(info.digest.to_string(), sha256(&blob), "{c:?} digest");
        assert_eq!(info.size, blob.len() as u64, "{c:?} size");
        assert_eq!(info.diff_id.to_string(), sha256(&tar), "{c:?} diff_id");
        assert_eq!(
            info.uncompressed_size,
            tar.len() as u64,
            "{c:?} uncompressed size"
        );
        assert_eq!(info.media_type, c.media_type());
        assert_eq!(tar.len() % 512, 0);
        assert!(tar.ends_with(&[0; 1024]));
        assert_eq!(read_tar(&tar).len(), 4 + 40 + 3);
    }
    let (gz, _) = layer(dir.path(), &opts(DiffSource::Plain, ALL[0]));
    let (zs, _) = layer(dir.path(), &opts(DiffSource::Plain, ALL[1]));
    let (raw, _) = layer(dir.path(), &opts(DiffSource::Plain, ALL[2]));
    assert_eq!(
        gz.diff_id, zs.diff_id,
        "diff_id does not depend on compression"
    );
    assert_eq!(raw.digest, raw.diff_id, "an uncompressed blob is its tar");
    assert!(gz.size < raw.size && zs.size < raw.size);
    assert_eq!(gz.media_type, l::MEDIA_TYPE_TAR_GZIP);
    assert_eq!(zs.media_type, l::MEDIA_TYPE_TAR_ZSTD);
    assert_eq!(raw.media_type, l::MEDIA_TYPE_TAR);
}

#[test]
fn gzip_header_has_no_time_name_or_host() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"x").unwrap();
    let (_, blob) = layer(
        dir.path(),
        &opts(DiffSource::Plain, Compression::Gzip { level: 6 }),
    );
    assert_eq!(&blob[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(blob[3], 0, "no FNAME/FCOMMENT/FEXTRA flags");
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "mtime 0");
    assert_eq!(blob[9], 255, "OS unknown");
}

#[test]
fn same_content_gives_same_bytes_whatever_the_inode_order() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    sample_tree(a.path(), false);
    sample_tree(b.path(), true);
    touch_all(a.path(), "@1600000000");
    touch_all(b.path(), "@1600000000");
    for c in ALL {
        let o = opts(DiffSource::Plain, c);
        let (first, blob1) = layer(a.path(), &o);
        let (again, blob2) = layer(a.path(), &o);
        let (other, blob3) = layer(b.path(), &o);
        assert_eq!(first, again, "{c:?}: same tree twice");
        assert_eq!(blob1, blob2);
        assert_eq!(first, other, "{c:?}: same content created in another order");
        assert_eq!(blob1, blob3);
    }
    // And a real difference shows: one mtime changed.
    touch(&a.path().join("top"), "@1600000001");
    let (changed, _) = layer(
        a.path(),
        &opts(DiffSource::Plain, Compression::Uncompressed),
    );
    let (base, _) = layer(
        b.path(),
        &opts(DiffSource::Plain, Compression::Uncompressed),
    );
    assert_ne!(changed.diff_id, base.diff_id);
}

#[test]
fn source_date_epoch_clamps_only_later_times() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir(r.join("d")).unwrap();
    fs::write(r.join("d/new"), b"").unwrap();
    fs::write(r.join("old"), b"").unwrap();
    std::os::unix::fs::symlink("old", r.join("sl")).unwrap();
    touch(&r.join("d/new"), "@2000000000.75");
    touch(&r.join("old"), "@500.5");
    touch(&r.join("sl"), "@3000000000");
    touch(&r.join("d"), "@1000000000");

    let mtimes = |o: &LayerOptions| -> Vec<(String, u64)> {
        let (_, blob) = layer(r, o);
        read_tar(&blob)
            .into_iter()
            .map(|i| (i.path, i.mtime))
            .collect()
    };
    let plain = opts(DiffSource::Plain, Compression::Uncompressed);
    let expect = |v: [u64; 4]| -> Vec<(String, u64)> {
        ["d/", "d/new", "old", "sl"]
            .iter()
            .map(|p| p.to_string())
            .zip(v)
            .collect()
    };
    assert_eq!(
        mtimes(&plain),
        expect([1_000_000_000, 2_000_000_000, 500, 3_000_000_000]),
        "whole seconds, sub-second part dropped"
    );
    let clamped = plain.clone().with_source_date_epoch(Some(1_500_000_000));
    assert_eq!(
        mtimes(&clamped),
        expect([1_000_000_000, 1_500_000_000, 500, 1_500_000_000])
    );

    // No PAX mtime record is needed for any of these.
    let (_, blob) = layer(r, &clamped);
    assert!(read_tar(&blob).iter().all(|i| i.pax.is_empty()));
}

#[test]
fn large_sparse_file_streams_through() {
    const SIZE: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    File::create(root.join("zeros"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    fs::write(root.join("after"), b"tail").unwrap();

    // Write to a file, not memory, and read it back as a stream.
    let blob_path = dir.path().join("blob");
    let mut blob = File::options()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&blob_path)
        .unwrap();
    let o = opts(DiffSource::Plain, Compression::Zstd { level: 3 });
    let info = write_layer(&root, &o, BufWriter::new(&mut blob)).unwrap();
    assert_eq!(info.size, blob.metadata().unwrap().len());
    assert!(
        info.size < 1 << 20,
        "64 MiB of zeros compress to {} bytes",
        info.size
    );
    assert_eq!(info.uncompressed_size, 512 + 512 + SIZE + 512 + 1024);

    blob.rewind().unwrap();
    let mut hasher = Sha256::new();
    let mut tee = TeeReader {
        inner: zstd::stream::read::Decoder::new(&mut blob).unwrap(),
        hasher: &mut hasher,
    };
    let mut archive = tar::Archive::new(&mut tee);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let mut h = HashWriter::default();
        let n = io::copy(&mut e, &mut h).unwrap();
        seen.push((path, n, h.hex()));
    }
    // Drain the end-of-archive blocks into the hash too.
    io::copy(&mut tee, &mut io::sink()).unwrap();
    let zeros = {
        let mut h = HashWriter::default();
        io::copy(&mut io::repeat(0).take(SIZE), &mut h).unwrap();
        h.hex()
    };
    assert_eq!(
        seen,
        [
            ("after".to_owned(), 4, hex::encode(Sha256::digest(b"tail"))),
            ("zeros".to_owned(), SIZE, zeros),
        ]
    );
    assert_eq!(
        format!("sha256:{}", hex::encode(hasher.finalize())),
        info.diff_id.to_string()
    );
}

struct TeeReader<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[test]
fn empty_directory_is_an_empty_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (info, blob) = layer(
        dir.path(),
        &opts(DiffSource::Plain, Compression::Uncompressed),
    );
    assert_eq!(blob, vec![0; 1024]);
    assert_eq!(info.diff_id.to_string(), sha256(&[0; 1024]));
    assert!(paths(&read_tar(&blob)).is_empty());
}

#[test]
fn bad_root_and_bad_levels_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, b"").unwrap();
    let o = LayerOptions::new(DiffSource::Plain);
    match write_layer(&file, &o, io::sink()) {
        Err(Error::NotADirectory { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("missing");
    match write_layer(&missing, &o, io::sink()) {
        Err(Error::Walk { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    for c in [
        Compression::Gzip { level: 10 },
        Compression::Zstd { level: 23 },
    ] {
        let o = LayerOptions::new(DiffSource::Plain).with_compression(c);
        assert!(matches!(
            write_layer(dir.path(), &o, io::sink()),
            Err(Error::CompressionLevel { .. })
        ));
    }
}

#[test]
fn write_errors_name_the_entry() {
    struct Full;
    impl io::Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // Larger than every internal buffer, so the failure surfaces while this file is written.
    fs::write(dir.path().join("big"), vec![7u8; 4 << 20]).unwrap();
    let o = opts(DiffSource::Plain, Compression::Uncompressed);
    match write_layer(dir.path(), &o, Full) {
        Err(Error::Write { entry, source }) => {
            assert_eq!(entry, dir.path().join("big"));
            assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        }
        other => panic!("{other:?}"),
    }
}
