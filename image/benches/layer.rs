//! Layer-writer throughput: a snapshot directory of ~256 MiB of incompressible data and
//! ~256 MiB of zeros → layer blob (discarded), for gzip, zstd and no compression.
//!
//! The figure covers the whole pipeline: walking, reading files (from the page cache after the
//! first iteration), tar framing, both SHA-256s and the compressor. Run with
//! `cargo bench -p dray-image --bench layer`. Samples are kept to criterion's minimum so the run
//! takes about two minutes; gzip dominates.

use std::fs;
use std::hint::black_box;
use std::io;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dray_image::{Compression, DiffSource, LayerOptions, write_layer};

const MIB: usize = 1 << 20;
const RANDOM_FILES: usize = 64;
const RANDOM_FILE_SIZE: usize = 4 * MIB;
const ZERO_FILES: usize = 4;
const ZERO_FILE_SIZE: usize = 64 * MIB;

/// xorshift64*: fast, deterministic, and incompressible enough for gzip and zstd.
fn fill_random(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        let v = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn make_tree(root: &Path) -> u64 {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; RANDOM_FILE_SIZE];
    fs::create_dir(root.join("random")).unwrap();
    for i in 0..RANDOM_FILES {
        fill_random(&mut buf, &mut seed);
        fs::write(root.join(format!("random/{i:03}.bin")), &buf).unwrap();
    }
    fs::create_dir(root.join("zeros")).unwrap();
    let zeros = vec![0u8; ZERO_FILE_SIZE];
    for i in 0..ZERO_FILES {
        fs::write(root.join(format!("zeros/{i}.bin")), &zeros).unwrap();
    }
    (RANDOM_FILES * RANDOM_FILE_SIZE + ZERO_FILES * ZERO_FILE_SIZE) as u64
}

fn bench_layer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = make_tree(dir.path());

    let mut group = c.benchmark_group("write_layer");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes));
    for (name, compression) in [
        ("uncompressed", Compression::Uncompressed),
        ("zstd-3", Compression::Zstd { level: 3 }),
        ("gzip-6", Compression::Gzip { level: 6 }),
    ] {
        let opts = LayerOptions::new(DiffSource::Plain).with_compression(compression);
        group.bench_function(name, |b| {
            b.iter(|| black_box(write_layer(dir.path(), &opts, io::sink()).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_layer);
criterion_main!(benches);
