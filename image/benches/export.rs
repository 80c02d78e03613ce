//! Layer export throughput and memory: each given snapshot directory → a layer blob, all layers
//! at once (as `assemble` writes them), for one compression.
//!
//! ```text
//! export [--compression gzip|zstd|none] [--level N] [--threads N] [--out DIR] LAYER_DIR...
//! ```
//!
//! With `--out`, blobs are written to files in DIR (and deleted after); without, discarded.
//!
//! Prints one line per layer and a total (MiB/s of uncompressed tar, wall clock), plus the
//! process's CPU time. Peak RSS is measured from outside (`/usr/bin/time -v`), which is what
//! `bench/export.sh` does with the snapshot directories of an image built by dray.
//!
//! Without directories (`cargo bench -p dray-image --bench export`) it makes a tree of its own
//! (256 MiB of random data and 256 MiB of zeros, as two layers) and runs every compression.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dray_image::{Compression, DiffSource, LayerOptions, write_layer};

const MIB: f64 = (1 << 20) as f64;

struct Args {
    compressions: Vec<Compression>,
    threads: usize,
    out: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn parse() -> Args {
    let mut args = Args {
        compressions: Vec::new(),
        threads: 0,
        out: None,
        dirs: Vec::new(),
    };
    let mut codec: Option<String> = None;
    let mut level: Option<i32> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--compression" => codec = Some(value()),
            "--level" => level = Some(value().parse().expect("--level")),
            "--threads" => args.threads = value().parse().expect("--threads"),
            "--out" => args.out = Some(value().into()),
            s if s.starts_with("--") => panic!("unknown option {s}"),
            dir => args.dirs.push(dir.into()),
        }
    }
    args.compressions = match codec.as_deref() {
        None => vec![
            Compression::Uncompressed,
            Compression::Zstd { level: 3 },
            Compression::Gzip { level: 6 },
        ],
        Some("gzip") => vec![Compression::Gzip {
            level: u32::try_from(level.unwrap_or(6)).expect("gzip level"),
        }],
        Some("zstd") => vec![Compression::Zstd {
            level: level.unwrap_or(3),
        }],
        Some("none" | "uncompressed") => vec![Compression::Uncompressed],
        Some(other) => panic!("unknown compression {other}"),
    };
    args
}

/// user + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; the split starts at field 3 (after ")").
    (ticks(11) + ticks(12)) / 100.0
}

/// xorshift64*: incompressible for gzip and zstd.
fn fill_random(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        let v = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn make_tree(root: &Path, size: usize) -> Vec<PathBuf> {
    let random = root.join("random");
    let zeros = root.join("zeros");
    fs::create_dir_all(&random).unwrap();
    fs::create_dir_all(&zeros).unwrap();
    let mut f = BufWriter::new(File::create(random.join("random.bin")).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        fill_random(&mut buf, &mut seed);
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
    File::create(zeros.join("zeros.bin"))
        .unwrap()
        .set_len(size as u64)
        .unwrap();
    vec![random, zeros]
}

fn run(dirs: &[PathBuf], compression: Compression, threads: usize, out: Option<&Path>) {
    let opts = LayerOptions::new(DiffSource::Plain)
        .with_compression(compression)
        .with_threads(threads);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let opts = &opts;
                s.spawn(move || {
                    let t = Instant::now();
                    let info = match out {
                        Some(out) => {
                            let path = out.join(format!("blob-{i}"));
                            let file = File::create(&path).unwrap();
                            let info =
                                write_layer(dir, opts, BufWriter::with_capacity(1 << 20, file));
                            fs::remove_file(&path).unwrap();
                            info
                        }
                        None => write_layer(dir, opts, io::sink()),
                    }
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                    (dir, info, t.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let name = match compression {
        Compression::Gzip { level } => format!("gzip-{level}"),
        Compression::Zstd { level } => format!("zstd-{level}"),
        Compression::Uncompressed => "uncompressed".to_owned(),
    };
    let mut total = 0;
    for (dir, info, secs) in &results {
        total += info.uncompressed_size;
        println!(
            "{name:<13} {:<40} {:>7.0} MiB → {:>7.1} MiB in {secs:>6.2} s: {:>7.1} MiB/s",
            dir.display(),
            info.uncompressed_size as f64 / MIB,
            info.size as f64 / MIB,
            info.uncompressed_size as f64 / MIB / secs,
        );
    }
    println!(
        "{name:<13} {:<40} {:>7.0} MiB in {wall:>6.2} s: {:>7.1} MiB/s (cpu {cpu:.1} s, threads {})",
        "all layers at once",
        total as f64 / MIB,
        total as f64 / MIB / wall,
        if threads == 0 {
            "auto".to_owned()
        } else {
            threads.to_string()
        },
    );
}

fn main() {
    let args = parse();
    let scratch = tempfile::tempdir().unwrap();
    let dirs = if args.dirs.is_empty() {
        make_tree(scratch.path(), 256 << 20)
    } else {
        args.dirs.clone()
    };
    for &c in &args.compressions {
        run(&dirs, c, args.threads, args.out.as_deref());
    }
}
