//! Exporters (architecture B2/B5): a built or stored image → something outside the store, and
//! back in.
//!
//! | output (`--output type=…`) | function | what it writes |
//! |---|---|---|
//! | `oci,dest=x.tar` | [`write_archive`] + [`ArchiveFormat::Oci`] | an OCI image layout as a tar |
//! | `oci,dest=dir,tar=false` | [`write_layout_dir`] | the same layout as a directory |
//! | `docker,dest=x.tar` | [`write_archive`] + [`ArchiveFormat::Docker`] | the layout in docker media types ([`docker`](mod@docker)) plus `manifest.json` and `repositories` (`docker load`) |
//! | `local,dest=dir` | [`write_rootfs_dir`] | the image's final filesystem |
//! | `tar,dest=x.tar` | [`write_rootfs_tar`] | that filesystem as a tar |
//! | `dray load` | [`load_archive`] | an OCI or docker archive → store blobs and tags |
//! | `compression=…,force-compression=true` | [`force_compression`] | every layer in one compression |
//!
//! **Start at** [`archive`](mod@archive) for the archive layout and naming rules, [`load`](mod@load) for what an import checks, and at
//! [`rootfs`](mod@rootfs) for how the snapshot chain is flattened. Everything streams: blobs go
//! from the content store to the output (hashed on the way, so a corrupt store blob fails the
//! export), and files from the snapshots; nothing holds a layer in memory.
//!
//! **Determinism.** Archives are a function of the images and names only: members sorted, owned
//! by 0:0, mtime 0, fixed modes, compact JSON. Root filesystem tars follow the layer writer's
//! rules (sorted, numeric owners, whole-second mtimes clamped to `SOURCE_DATE_EPOCH`).
//!
//! **Not here.** Choosing layer compression for new layers is assembly's job
//! ([`assemble`](mod@crate::assemble), memoized per media type); registry push is not written yet.

pub mod archive;
mod convert;
pub mod docker;
mod error;
pub mod load;
pub mod rootfs;
mod tarball;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub use archive::{
    ArchiveFormat, ArchiveImage, IMAGE_NAME_ANNOTATION, write_archive, write_layout_dir,
};
pub use convert::force_compression;
pub use error::ExportError;
pub use load::{LoadedImage, load_archive};
pub use rootfs::{RootfsOptions, write_rootfs_dir, write_rootfs_tar};

/// Runs `write` on a temp file next to `target`, then renames it over `target`: readers see the
/// old file or the complete new one, and a failure leaves no partial file.
pub fn write_atomically(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io_err = |source| ExportError::Write {
        path: target.to_owned(),
        source,
    };
    let name = target
        .file_name()
        .map(|n| format!(".{}.", n.to_string_lossy()))
        .unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&name)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err)?;
    let mut out = BufWriter::with_capacity(256 * 1024, temp);
    write(&mut out)?;
    let temp = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    temp.as_file().sync_all().map_err(io_err)?;
    set_default_mode(temp.as_file()).map_err(io_err)?;
    temp.persist(target).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// Temp files are created 0o600; an exported file gets the usual 0o644.
fn set_default_mode(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}
