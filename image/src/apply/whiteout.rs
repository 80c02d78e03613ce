//! OCI whiteout names (image-spec `layer.md`, "Whiteouts").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The prefix of a whiteout file's name.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name of an opaque whiteout: everything of the lower layers in its directory is gone.
const OPAQUE: &[u8] = b".wh..wh..opq";
/// The prefix of AUFS's own metadata (`.wh..wh.plnk/`, `.wh..wh.aufs`), which old docker
/// layers may carry; moby skips it.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// What an entry's name says about whiteouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Whiteout {
    /// Not a whiteout: a plain entry.
    None,
    /// `DIR/.wh..wh..opq`: the directory `DIR` (as named in the layer) is opaque.
    Opaque(PathBuf),
    /// `DIR/.wh.NAME`: the entry `DIR/NAME` is deleted.
    Hide(PathBuf),
    /// AUFS metadata, skipped.
    AufsMeta,
    /// `.wh.`, `.wh..` or `.wh...`: hides nothing that can be named.
    Invalid,
}

/// Classifies the entry named `name` (as stored in the layer).
pub(super) fn classify(name: &Path) -> Whiteout {
    // `file_name` ignores a trailing `/` and `.` components; a name ending in `..` has
    // none, and cannot be a whiteout.
    let Some(base) = name.file_name().map(OsStr::as_bytes) else {
        return Whiteout::None;
    };
    // Anything inside an AUFS metadata directory (`.wh..wh.plnk/<inode>`) is skipped too.
    let in_aufs_dir = name.parent().is_some_and(|dir| {
        dir.components()
            .any(|c| c.as_os_str().as_bytes().starts_with(AUFS_META_PREFIX))
    });
    if in_aufs_dir {
        return Whiteout::AufsMeta;
    }
    let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) else {
        return Whiteout::None;
    };
    let dir = name.parent().unwrap_or(Path::new("")).to_owned();
    if base == OPAQUE {
        return Whiteout::Opaque(dir);
    }
    if base.starts_with(AUFS_META_PREFIX) {
        return Whiteout::AufsMeta;
    }
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Whiteout::Invalid;
    }
    Whiteout::Hide(dir.join(OsStr::from_bytes(hidden)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Whiteout {
        classify(Path::new(name))
    }

    #[test]
    fn classifies_names() {
        assert_eq!(c("a/b"), Whiteout::None);
        assert_eq!(c("a/.whx"), Whiteout::None);
        assert_eq!(c("a/.wh.b"), Whiteout::Hide("a/b".into()));
        assert_eq!(c(".wh.b"), Whiteout::Hide("b".into()));
        assert_eq!(c("./a/.wh.b"), Whiteout::Hide("./a/b".into()));
        assert_eq!(c("a/.wh..wh..opq"), Whiteout::Opaque("a".into()));
        assert_eq!(c(".wh..wh..opq"), Whiteout::Opaque("".into()));
        assert_eq!(c("./.wh..wh..opq"), Whiteout::Opaque(".".into()));
        assert_eq!(c(".wh..wh.plnk/123"), Whiteout::AufsMeta);
        assert_eq!(c("./.wh..wh.plnk/d/x"), Whiteout::AufsMeta);
        assert_eq!(c(".wh..wh.plnk"), Whiteout::AufsMeta);
        assert_eq!(c("a/.wh..wh.aufs"), Whiteout::AufsMeta);
        assert_eq!(c("a/.wh."), Whiteout::Invalid);
        assert_eq!(c("a/.wh.."), Whiteout::Invalid);
        assert_eq!(c("a/.wh..."), Whiteout::Invalid);
        assert_eq!(c("a/.wh.b/"), Whiteout::Hide("a/b".into()));
        assert_eq!(c(".."), Whiteout::None);
    }
}
