//! `dray save` and `dray load`: images between the local store and OCI / docker archives.
//!
//! `save` writes the archive of `dray_image::export` (the same bytes as `build --output`), with
//! every image under the names given (an image named by ID is saved without a name, as docker
//! does). `load` verifies every blob before it publishes anything, then tags the names the
//! archive carries; it unpacks no layer (that happens when the image is used as a base).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use dray_cache::Store;
use dray_image::export::{self, ArchiveFormat, ArchiveImage};
use dray_llb::ImageRef;

use crate::cli::{ArchiveFormatArg, LoadArgs, SaveArgs};
use crate::commands::output::{Dest, write_stream};

pub(crate) fn save(store: &Store, args: &SaveArgs) -> Result<()> {
    let mut images: Vec<ArchiveImage> = Vec::new();
    for name in &args.images {
        let image = dray_image::load_image(store, name)
            .with_context(|| format!("failed to save {name}"))?;
        // Named by reference (a tag in the store): saved under that name; by ID: unnamed.
        let reference = ImageRef::parse(name)
            .ok()
            .filter(|r| r.digest().is_none())
            .filter(|r| store.image(&r.to_string()).ok().flatten().is_some());
        match images
            .iter_mut()
            .find(|i| i.manifest.digest == image.manifest_descriptor.digest)
        {
            Some(existing) => existing.names.extend(reference),
            None => images.push(ArchiveImage {
                manifest: image.manifest_descriptor.clone(),
                names: reference.into_iter().collect(),
            }),
        }
    }
    for image in &mut images {
        image.names.dedup();
    }
    let format = match args.format {
        ArchiveFormatArg::Oci => ArchiveFormat::Oci,
        ArchiveFormatArg::Docker => ArchiveFormat::Docker,
    };
    let dest = match args.output.as_deref() {
        None => Dest::Stdout,
        Some(p) if p == Path::new("-") => Dest::Stdout,
        Some(p) => Dest::Path(p.to_owned()),
    };
    write_stream(&dest, |out| {
        export::write_archive(store, &images, format, out).map(|_| ())
    })
    .context("failed to write the archive")
}

pub(crate) fn load(store: &Store, args: &LoadArgs) -> Result<()> {
    let loaded = match args.input.as_deref() {
        None => export::load_archive(store, std::io::stdin().lock(), "-"),
        Some(p) if p == Path::new("-") => export::load_archive(store, std::io::stdin().lock(), "-"),
        Some(p) => {
            let file = std::fs::File::open(p)
                .with_context(|| format!("failed to open {}", p.display()))?;
            export::load_archive(
                store,
                std::io::BufReader::with_capacity(256 * 1024, file),
                &p.display().to_string(),
            )
        }
    }
    .context("failed to load the archive")?;
    let mut stdout = std::io::stdout().lock();
    for image in &loaded {
        if image.names.is_empty() {
            let id = dray_image::manifest::read_manifest(store, &image.manifest.digest)
                .map(|m| m.config.digest.to_string())
                .unwrap_or_else(|_| image.manifest.digest.to_string());
            writeln!(stdout, "Loaded image ID: {id}")?;
        }
        for name in &image.names {
            writeln!(stdout, "Loaded image: {}", name.familiar())?;
        }
    }
    Ok(())
}
