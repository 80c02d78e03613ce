//! Secrets and SSH agents a build may mount (`RUN --mount=type=secret|ssh`), given with
//! `dray build --secret` and `--ssh`.
//!
//! A secret's **content is never part of anything the build keeps**: not of a cache key (the
//! exec key covers the mount's id, target, owner and mode, as BuildKit's), a layer (the
//! executor mounts it from outside the root filesystem, over a stub that stays out of the
//! upper directory), an image, a log, a build record or an error message (errors name the id
//! and the host path only). This module's [`Debug`] output shows ids, never values.
//!
//! | source | how the executor sees it ([`MountSpec::host_source`](crate::MountSpec::host_source)) |
//! |---|---|
//! | [`SecretSource::File`] | the file itself |
//! | [`SecretSource::Value`] (e.g. from an environment variable) | a 0600 file in a 0700 directory `<root>/tmp/secrets-<nonce>/`, written when the solve starts and removed when it ends (the store clears `tmp/` after a crash) |
//! | an SSH agent ([`Secrets::with_ssh`]) | the agent's socket |
//!
//! A mount whose id was not given is skipped when it is optional (BuildKit's default,
//! `required=false`) and fails the step with [`OpError::MissingSecret`] when `required=true`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::OpError;

/// A secret's bytes, held in memory. Its [`Debug`] output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> SecretValue {
        SecretValue(bytes.into())
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A host file (`--secret id=x,src=PATH`), read by the executor when it mounts it.
    File(PathBuf),
    /// Bytes given directly (`--secret id=x,env=VAR` reads the variable into one).
    Value(SecretValue),
}

/// The secrets and SSH agents of a build, by id. Cheap to clone; part of
/// [`SolveOptions`](crate::SolveOptions).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    secrets: BTreeMap<String, SecretSource>,
    ssh: BTreeMap<String, PathBuf>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("ssh", &self.ssh.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// No secrets, no agents.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// Adds (or replaces) the secret `id`.
    pub fn with_secret(mut self, id: impl Into<String>, source: SecretSource) -> Secrets {
        self.secrets.insert(id.into(), source);
        self
    }

    /// Adds (or replaces) the SSH agent `id` (`default` unless named), served by `socket`.
    pub fn with_ssh(mut self, id: impl Into<String>, socket: impl Into<PathBuf>) -> Secrets {
        self.ssh.insert(id.into(), socket.into());
        self
    }

    /// The secret ids.
    pub fn secret_ids(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// The SSH agent ids.
    pub fn ssh_ids(&self) -> impl Iterator<Item = &str> {
        self.ssh.keys().map(String::as_str)
    }

    /// Writes the in-memory secrets to files under `tmp_root` (the store's `tmp/`) for the
    /// executors; the files go when the result drops.
    pub(crate) fn materialize(&self, tmp_root: &Path) -> Result<Materialized, SecretsError> {
        let mut out = Materialized {
            files: BTreeMap::new(),
            ssh: self.ssh.clone(),
            dir: None,
        };
        for (id, source) in &self.secrets {
            let path = match source {
                SecretSource::File(path) => path.clone(),
                SecretSource::Value(SecretValue(bytes)) => {
                    let dir = match &out.dir {
                        Some(d) => d.0.clone(),
                        None => {
                            let d = tmp_root.join(format!("secrets-{}", crate::nonce()));
                            std::fs::DirBuilder::new()
                                .mode(0o700)
                                .recursive(false)
                                .create(&d)
                                .map_err(|source| SecretsError {
                                    id: id.clone(),
                                    path: d.clone(),
                                    source,
                                })?;
                            out.dir = Some(RemoveOnDrop(d.clone()));
                            d
                        }
                    };
                    // Named by position, not id: ids are user text.
                    let path = dir.join(out.files.len().to_string());
                    let write = || -> std::io::Result<()> {
                        let mut f = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .open(&path)?;
                        f.write_all(bytes)
                    };
                    write().map_err(|source| SecretsError {
                        id: id.clone(),
                        path: path.clone(),
                        source,
                    })?;
                    path
                }
            };
            out.files.insert(id.clone(), path);
        }
        Ok(out)
    }
}

/// A secret could not be written for the executors (the message names the id and the path,
/// never the value).
#[derive(Debug, thiserror::Error)]
#[error("failed to prepare secret {id:?} at {}", path.display())]
pub struct SecretsError {
    /// The secret's id.
    pub id: String,
    /// The file being written.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Secrets as host paths, for one solve.
#[derive(Debug, Default)]
pub(crate) struct Materialized {
    files: BTreeMap<String, PathBuf>,
    ssh: BTreeMap<String, PathBuf>,
    dir: Option<RemoveOnDrop>,
}

impl Materialized {
    /// The host path for a `secret` or `ssh` mount of `id`; `Ok(None)` when it was not given
    /// and the mount is optional.
    pub(crate) fn host_source(
        &self,
        kind: &dray_llb::MountKind,
    ) -> Result<Option<PathBuf>, OpError> {
        let (map, mount, what) = match kind {
            dray_llb::MountKind::Secret(m) => (&self.files, m, "secret"),
            dray_llb::MountKind::Ssh(m) => (&self.ssh, m, "ssh"),
            _ => return Ok(None),
        };
        match map.get(&mount.id) {
            Some(path) => Ok(Some(path.clone())),
            None if mount.optional => Ok(None),
            None => Err(OpError::MissingSecret {
                kind: what,
                id: mount.id.clone(),
            }),
        }
    }
}

/// Removes a directory tree when dropped.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use dray_llb::{MountKind, SecretMount};

    use super::*;

    fn mount(id: &str, optional: bool) -> SecretMount {
        SecretMount {
            id: id.into(),
            uid: 0,
            gid: 0,
            mode: 0o400,
            optional,
        }
    }

    #[test]
    fn values_become_private_files_removed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let secrets = Secrets::new()
            .with_secret("token", SecretSource::Value(SecretValue::new("s3cr3t")))
            .with_secret("file", SecretSource::File("/host/file".into()))
            .with_ssh("default", "/run/agent.sock");
        let m = secrets.materialize(tmp.path()).unwrap();
        let token = m
            .host_source(&MountKind::Secret(mount("token", false)))
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(&token).unwrap(), b"s3cr3t");
        let mode = std::fs::metadata(&token).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = token.parent().unwrap().to_owned();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            m.host_source(&MountKind::Secret(mount("file", false)))
                .unwrap(),
            Some(PathBuf::from("/host/file"))
        );
        assert_eq!(
            m.host_source(&MountKind::Ssh(mount("default", false)))
                .unwrap(),
            Some(PathBuf::from("/run/agent.sock"))
        );
        drop(m);
        assert!(!dir.exists());
    }

    #[test]
    fn missing_ids_are_skipped_when_optional_and_errors_when_required() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Secrets::new().materialize(tmp.path()).unwrap();
        assert_eq!(
            m.host_source(&MountKind::Secret(mount("npmrc", true)))
                .unwrap(),
            None
        );
        let err = m
            .host_source(&MountKind::Secret(mount("npmrc", false)))
            .unwrap_err();
        assert!(err.to_string().contains("\"npmrc\""), "{err}");
        let err = m
            .host_source(&MountKind::Ssh(mount("default", false)))
            .unwrap_err();
        assert!(err.to_string().contains("--ssh"), "{err}");
        // No file was written for a build without in-memory secrets.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn debug_output_never_shows_values() {
        let secrets =
            Secrets::new().with_secret("token", SecretSource::Value(SecretValue::new("s3cr3t")));
        let shown = format!("{secrets:?} {:?}", secrets.secrets);
        assert!(shown.contains("token"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
