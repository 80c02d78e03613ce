//! Writes one layer blob from a directory and prints its descriptor fields, for inspecting
//! output with other tools (`tar -tvvf`, `zstd -d`, `crane`…):
//!
//! ```text
//! cargo run -p dray-image --example write-layer -- <root> <out> [gzip|zstd|none] [plain|overlay] [epoch]
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use dray_image::{Compression, DiffSource, LayerOptions, write_layer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(root), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: write-layer <root> <out> [gzip|zstd|none] [plain|overlay] [epoch]");
        return ExitCode::FAILURE;
    };
    let compression = match args.get(2).map(String::as_str) {
        None | Some("gzip") => Compression::Gzip { level: 6 },
        Some("zstd") => Compression::Zstd { level: 3 },
        Some("none") => Compression::Uncompressed,
        Some(other) => {
            eprintln!("unknown compression {other:?}");
            return ExitCode::FAILURE;
        }
    };
    let source = match args.get(3).map(String::as_str) {
        Some("overlay") => DiffSource::OverlayUpper,
        _ => DiffSource::Plain,
    };
    let epoch = args.get(4).and_then(|e| e.parse().ok());
    let opts = LayerOptions::new(source)
        .with_compression(compression)
        .with_source_date_epoch(epoch);
    let file = match File::create(out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot create {out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match write_layer(&PathBuf::from(root), &opts, BufWriter::new(file)) {
        Ok(info) => {
            println!("mediaType:         {}", info.media_type);
            println!("digest:            {}", info.digest);
            println!("size:              {}", info.size);
            println!("diff_id:           {}", info.diff_id);
            println!("uncompressed size: {}", info.uncompressed_size);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
