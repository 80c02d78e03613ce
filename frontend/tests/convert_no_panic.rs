//! The converter never panics: every Dockerfile of BuildKit's parser fixtures and of the
//! stage fixtures converts to a valid graph or fails with an error, with every image known.

mod convert_support;

use std::path::{Path, PathBuf};

use dray_frontend::convert::{self, ImageResolver, ResolveError, ResolvedImage};
use dray_llb::{Digest, ImageConfig, ImageRef, Platform};

/// Knows every image: a one-layer linux image with a shell, a PATH and a trigger-free config.
struct AnyImage;

impl ImageResolver for AnyImage {
    fn resolve(&self, r: &ImageRef, p: &Platform) -> Result<Option<ResolvedImage>, ResolveError> {
        let mut config: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"WorkingDir":"/w","User":"u"},"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#,
        )
        .unwrap();
        config.architecture = p.architecture.clone();
        Ok(Some(ResolvedImage {
            manifest_digest: Digest::of(r.to_string()),
            config,
        }))
    }
}

fn dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            dockerfiles(&path, out);
        } else if path.file_name().is_some_and(|n| n == "Dockerfile") {
            out.push(path);
        }
    }
}

#[test]
fn fixtures_convert_or_fail_cleanly() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    dockerfiles(
        &manifest.join("../../shared/conformance/buildkit-parser"),
        &mut files,
    );
    dockerfiles(&manifest.join("tests/stages_fixtures"), &mut files);
    dockerfiles(&convert_support::root(), &mut files);
    assert!(files.len() > 50, "fixtures are missing: {}", files.len());
    let mut converted = 0;
    for path in &files {
        let src = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| {
            convert::convert_source(&src, &convert_support::base_options(), &AnyImage)
        });
        match result {
            Err(_) => panic!("{} panicked", path.display()),
            Ok(Ok(out)) => {
                out.definition
                    .validate()
                    .unwrap_or_else(|e| panic!("{}: invalid graph: {e}", path.display()));
                converted += 1;
            }
            Ok(Err(e)) => {
                // Errors point into the file.
                assert!(
                    e.span().end <= src.len(),
                    "{}: {e} out of range",
                    path.display()
                );
            }
        }
    }
    assert!(
        converted >= 35,
        "only {converted} of {} converted",
        files.len()
    );
}
