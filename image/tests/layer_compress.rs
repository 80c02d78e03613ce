//! Parallel compression is reproducible: the blob bytes do not depend on the thread count, and
//! the standard tools (`gzip -d`, `zstd -d`, flate2, the zstd crate) read them back to the
//! exact tar whose digest is the `diff_id`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{decompress, layer, opts, sha256, touch_all};
use dray_image::{Compression, DiffSource, LayerInfo};

const MIB: usize = 1 << 20;

/// xorshift64*: incompressible bytes, deterministic.
fn random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for chunk in v.chunks_mut(8) {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&x[..chunk.len()]);
    }
    v
}

fn text(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("{} line {} of {}\n", i * 7919 % 1009, i % 613, i).as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// About 9 MiB of mixed content: many gzip blocks (1 MiB) and zstd jobs (2 MiB), files that
/// straddle block boundaries, small files between them.
fn tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::write(root.join("bin/random"), random(3 * MIB + 123, 7)).unwrap();
    fs::write(root.join("bin/zeros"), vec![0u8; MIB + 1]).unwrap();
    fs::write(root.join("etc/log"), text(4 * MIB - 5)).unwrap();
    for i in 0..50 {
        fs::write(
            root.join(format!("etc/conf.d/{i:02}.conf")),
            text(i * 311 + 1),
        )
        .unwrap();
    }
    // Random data repeated within deflate's window: compressible only with matches that reach
    // back into the previous block, through the dictionary a block is primed with.
    let chunk = random(20_000, 11);
    fs::write(root.join("repeated"), chunk.repeat(60)).unwrap();
    touch_all(root, "@1700000000");
}

fn write(root: &Path, compression: Compression, threads: usize) -> (LayerInfo, Vec<u8>) {
    layer(
        root,
        &opts(DiffSource::Plain, compression).with_threads(threads),
    )
}

#[test]
fn gzip_and_zstd_bytes_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    for compression in [
        Compression::Gzip { level: 6 },
        Compression::Gzip { level: 1 },
        Compression::Gzip { level: 9 },
        Compression::Zstd { level: 3 },
        Compression::Zstd { level: -5 },
        Compression::Zstd { level: 12 },
        Compression::Uncompressed,
    ] {
        let (one, blob) = write(dir.path(), compression, 1);
        assert!(one.uncompressed_size > 9 * MIB as u64);
        for threads in [2, 4, 0] {
            let (info, other) = write(dir.path(), compression, threads);
            assert_eq!(info, one, "{compression:?}: {threads} threads vs 1");
            assert!(
                other == blob,
                "{compression:?}: {threads} threads vs 1: bytes differ"
            );
        }
        assert_eq!(
            sha256(&decompress(&blob, compression)),
            one.diff_id.to_string()
        );
    }
}

#[test]
fn the_standard_tools_read_the_blobs_back_to_the_tar() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    tree(&root);
    let (raw, tar) = write(&root, Compression::Uncompressed, 1);
    assert_eq!(sha256(&tar), raw.diff_id.to_string());

    for (compression, tool) in [
        (Compression::Gzip { level: 6 }, "gzip"),
        (Compression::Zstd { level: 3 }, "zstd"),
    ] {
        let (info, blob) = write(&root, compression, 4);
        assert_eq!(info.diff_id, raw.diff_id, "{tool}: same tar");
        assert_eq!(info.digest.to_string(), sha256(&blob));
        assert!(info.size < raw.size / 2, "{tool}: {} bytes", info.size);

        let path = dir.path().join(format!("blob.{tool}"));
        fs::write(&path, &blob).unwrap();
        let out = Command::new(tool)
            .args(["-d", "-c"])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{tool} must be installed for this test: {e}"));
        assert!(
            out.status.success(),
            "{tool} -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == tar, "{tool} -d gives another tar");
        assert!(
            decompress(&blob, compression) == tar,
            "{tool}: crate decoder"
        );
    }

    // One gzip member, read whole by a single-member decoder (flate2's `GzDecoder` stops at
    // the end of the first member).
    let (_, gz) = write(&root, Compression::Gzip { level: 6 }, 3);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
    assert!(out == tar);
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&gz[4..8], &[0; 4], "mtime 0");
    assert_eq!(gz[9], 255);
    let isize = u32::from_le_bytes(gz[gz.len() - 4..].try_into().unwrap());
    assert_eq!(isize as usize, tar.len());
}

#[test]
fn small_and_empty_layers_are_reproducible_too() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let small = dir.path().join("small");
    fs::create_dir(&empty).unwrap();
    fs::create_dir(&small).unwrap();
    fs::write(small.join("f"), b"hello").unwrap();
    touch_all(&small, "@1700000000");
    for root in [&empty, &small] {
        for compression in [
            Compression::Gzip { level: 6 },
            Compression::Zstd { level: 3 },
        ] {
            let (one, blob) = write(root, compression, 1);
            for threads in [2, 4, 0] {
                assert_eq!(
                    write(root, compression, threads),
                    (one.clone(), blob.clone())
                );
            }
            assert_eq!(
                sha256(&decompress(&blob, compression)),
                one.diff_id.to_string()
            );
        }
    }
}
