//! Where the state directory is ([`Root::resolve`]) and the names inside it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use dray_llb::Digest;

use crate::env;
use crate::error::{Error, Result};
use crate::snapshots::SnapshotId;

/// The system-wide root used when running as (effective) uid 0.
pub const SYSTEM_ROOT: &str = "/var/lib/dray";

/// A dray state directory. It only names paths; [`crate::Store::open`] creates and locks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// Picks the state directory, first match wins:
    ///
    /// 1. `explicit` (the CLI's `--root`);
    /// 2. `$DRAY_ROOT`;
    /// 3. [`SYSTEM_ROOT`] (`/var/lib/dray`) when the effective uid is 0;
    /// 4. `$XDG_DATA_HOME/dray`, else `$HOME/.local/share/dray`.
    ///
    /// Relative paths are kept as given (they resolve against the current directory).
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Root> {
        let euid_is_root = rustix::process::geteuid().is_root();
        Root::resolve_with(explicit, env::var_os, euid_is_root)
    }

    /// [`Root::resolve`] with the environment and the uid check injected, for tests.
    pub fn resolve_with(
        explicit: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
        euid_is_root: bool,
    ) -> Result<Root> {
        let path = if let Some(p) = explicit {
            p
        } else if let Some(p) = env(env::DRAY_ROOT) {
            PathBuf::from(p)
        } else if euid_is_root {
            PathBuf::from(SYSTEM_ROOT)
        } else if let Some(data) = env(env::XDG_DATA_HOME) {
            PathBuf::from(data).join("dray")
        } else if let Some(home) = env(env::HOME) {
            PathBuf::from(home).join(".local/share/dray")
        } else {
            return Err(Error::NoRoot);
        };
        Ok(Root { path })
    }

    /// A root at exactly `path`.
    pub fn at(path: impl Into<PathBuf>) -> Root {
        Root { path: path.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn version_file(&self) -> PathBuf {
        self.path.join("VERSION")
    }
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
    }
    pub(crate) fn index_lock_file(&self) -> PathBuf {
        self.path.join("index.lock")
    }
    pub(crate) fn oci_layout_file(&self) -> PathBuf {
        self.path.join("oci-layout")
    }
    pub(crate) fn index_json(&self) -> PathBuf {
        self.path.join("index.json")
    }
    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.path.join("blobs").join("sha256")
    }
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }
    pub(crate) fn ingest_dir(&self) -> PathBuf {
        self.path.join("ingest")
    }
    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.path.join("snapshots")
    }
    pub(crate) fn snapshot_dir(&self, id: &SnapshotId) -> PathBuf {
        self.snapshots_dir().join(id.as_str())
    }
    pub(crate) fn cache_mounts_dir(&self) -> PathBuf {
        self.path.join("cache-mounts")
    }
    pub(crate) fn mounts_dir(&self) -> PathBuf {
        self.path.join("mounts")
    }
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }
    pub(crate) fn config_file(&self) -> PathBuf {
        self.path.join("dray.toml")
    }
    pub(crate) fn metadata_db(&self) -> PathBuf {
        self.path.join("metadata.db")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn resolution_order() {
        let all = env_of(&[
            ("DRAY_ROOT", "/env"),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        let r = |explicit: Option<&str>, env: &dyn Fn(&str) -> Option<OsString>, root: bool| {
            Root::resolve_with(explicit.map(PathBuf::from), env, root).map(|r| r.path)
        };
        assert_eq!(r(Some("/cli"), &all, true).unwrap(), Path::new("/cli"));
        assert_eq!(r(None, &all, true).unwrap(), Path::new("/env"));
        let no_dray = env_of(&[("XDG_DATA_HOME", "/xdg"), ("HOME", "/home/u")]);
        assert_eq!(r(None, &no_dray, true).unwrap(), Path::new("/var/lib/dray"));
        assert_eq!(r(None, &no_dray, false).unwrap(), Path::new("/xdg/dray"));
        let home_only = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            r(None, &home_only, false).unwrap(),
            Path::new("/home/u/.local/share/dray")
        );
        assert!(matches!(r(None, &env_of(&[]), false), Err(Error::NoRoot)));
    }
}
