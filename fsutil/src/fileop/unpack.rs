//! `ADD`'s archive extraction (`attempt_unpack`): BuildKit's `unpack` in
//! `solver/llbsolver/file/backend.go`, which calls moby's `chrootarchive.Untar`.
//!
//! # Detection
//!
//! By content, never by name (moby's `IsArchivePath`): the first bytes select a decompressor
//! ([`crate::archive::decompress`]), and the first 512 decompressed bytes must be a tar
//! header with a valid checksum. A file that fails either test is copied as a file.
//!
//! # Extraction
//!
//! The archive is streamed (decompressor → `tar` reader → upper), never held in memory, by
//! the entry writer [`crate::archive`] shares with the layer applier; its module docs give
//! the containment and metadata rules. `ADD` runs it with moby's policy: the extraction
//! directory `dest` acts as the root, as moby's chroot into it does, and
//!
//! * a name that climbs above `dest` (`../x`) is refused with [`Error::ArchiveBreakout`]
//!   (moby's `breakoutError`); an absolute name is taken below `dest`;
//! * a symlink whose target, joined to its directory, climbs above `dest` is refused, as is a
//!   hard link whose target does; a hard link must name a file this step wrote;
//! * directories of lower that an entry goes into are copied up.
//!
//! `owner` (`--chown`) replaces the owner of every entry, as BuildKit has done since v0.23
//! (moby/buildkit#5991, `ChownOpts`); `--chmod` and the copy timestamp do not apply to
//! entries. OCI whiteout names (`.wh.*`) are plain files here: `ADD` does not interpret them.

use std::io::{BufReader, Read};
use std::path::Path;

use super::upper::{NewDir, Upper};
use super::user::Owner;
use crate::archive::{Containment, Extraction, Policy, decompress, is_tar_header};
use crate::error::{Error, Result};
use crate::sys::shown;
use crate::tree::Tree;

/// moby's `IsArchivePath`: whether the regular file at `path` in `src` is a (possibly
/// compressed) tar archive. Read errors of the content mean "not an archive".
pub(crate) fn is_archive(src: &dyn Tree, path: &Path) -> Result<bool> {
    let file = src.open(path)?;
    let Ok((_, mut reader)) = decompress(BufReader::new(file)) else {
        return Ok(false);
    };
    let mut block = [0u8; 512];
    if reader.read_exact(&mut block).is_err() {
        return Ok(false);
    }
    Ok(is_tar_header(&block))
}

/// Extracts the archive at `path` in `src` into the directory `dest` (a resolved destination
/// path, created as `new_dir` says if missing). See the module docs.
pub(crate) fn unpack(
    src: &dyn Tree,
    path: &Path,
    dest: &Path,
    owner: Option<Owner>,
    new_dir: &NewDir,
    up: &mut Upper<'_>,
) -> Result<()> {
    up.ensure_dir(dest, new_dir)?;
    let archive = shown(path);
    let read_err = |source| Error::Archive {
        archive: archive.clone(),
        source,
    };
    let (_, reader) = decompress(BufReader::new(src.open(path)?)).map_err(read_err)?;
    let mut tar = tar::Archive::new(reader);
    let policy = Policy {
        containment: Containment::Refuse,
        owner,
        devices: rustix::process::geteuid().is_root(),
    };
    let mut x = Extraction::new(dest.to_owned(), policy, archive.clone(), false);
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        x.entry(up, &mut entry)?;
    }
    Ok(())
}
