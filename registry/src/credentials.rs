//! Registry credentials in docker's own file, so `docker login` and `dray login` share them.
//!
//! `config.json` lives in `$DOCKER_CONFIG`, else `~/.docker` (or the directory the caller
//! passes). Lookup order is docker's: `credHelpers[host]`, then `auths[host]`, then `credsStore`.
//! Docker Hub's key is `https://index.docker.io/v1/`. A helper is the program
//! `docker-credential-<name>` speaking docker's protocol (`get`/`store`/`erase` on stdin).
//!
//! | file key | written by `dray login` when |
//! |---|---|
//! | `auths[host].auth` = base64(`user:password`) | no helper is configured for the host |
//! | helper `store` | `credHelpers[host]` or `credsStore` is set (the file is then not changed) |

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;
use serde_json::{Map, Value, json};

use crate::error::Error;

/// Docker Hub's key in `config.json`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The `config.json` key for a registry host (`docker.io` → [`DOCKER_HUB_KEY`]).
pub fn server_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// The directory holding `config.json`.
pub fn config_dir(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = dir {
        return Some(d.to_path_buf());
    }
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
}

/// What `config.json` (or its helper) holds for a registry.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Anonymous, or a username and password.
    Auth(RegistryAuth),
    /// An OAuth2 refresh token (`identitytoken`), exchanged per repository for an access token
    /// (see `identity_token.rs`).
    IdentityToken(String),
}

/// The credentials for `host`; anonymous when none are configured.
pub fn lookup(dir: Option<&Path>, host: &str) -> Result<Credential, Error> {
    let anonymous = Ok(Credential::Auth(RegistryAuth::Anonymous));
    let Some(path) = config_dir(dir).map(|d| d.join("config.json")) else {
        return anonymous;
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return anonymous,
        Err(e) => {
            return Err(Error::Credentials {
                registry: host.to_owned(),
                detail: format!("cannot read {}: {e}", path.display()),
            });
        }
    };
    let key = server_key(host);
    match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), &key) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(Credential::Auth(RegistryAuth::Basic(user, password)))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(Credential::IdentityToken(token)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => anonymous,
        // A helper that knows nothing of this host answers "credentials not found": anonymous.
        Err(CredentialRetrievalError::HelperFailure { stdout, .. })
            if stdout.contains("credentials not found") =>
        {
            anonymous
        }
        Err(e) => Err(Error::Credentials {
            registry: host.to_owned(),
            detail: format!("{} ({})", e, path.display()),
        }),
    }
}

fn read_config(path: &Path, host: &str) -> Result<Map<String, Value>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Error::Credentials {
                registry: host.to_owned(),
                detail: format!("{} is not a JSON object", path.display()),
            }),
            Err(e) => Err(Error::Credentials {
                registry: host.to_owned(),
                detail: format!("{}: {e}", path.display()),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::Credentials {
            registry: host.to_owned(),
            detail: format!("cannot read {}: {e}", path.display()),
        }),
    }
}

/// Writes `config.json` atomically with mode 0600 (it holds secrets).
fn write_config(path: &Path, map: &Map<String, Value>, host: &str) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Credentials {
        registry: host.to_owned(),
        detail: format!("cannot write {}: {e}", path.display()),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::Builder::new()
        .prefix("config.json.")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(fail)?;
    let mut bytes = serde_json::to_vec_pretty(map).unwrap_or_default();
    bytes.push(b'\n');
    tmp.write_all(&bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// The helper configured for `key`, if any.
fn helper_for(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get("credHelpers")
        .and_then(|h| h.get(key))
        .and_then(Value::as_str)
        .or_else(|| map.get("credsStore").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn run_helper(helper: &str, verb: &str, input: &str, host: &str) -> Result<(), Error> {
    let program = format!("docker-credential-{helper}");
    let fail = |detail: String| Error::Credentials {
        registry: host.to_owned(),
        detail,
    };
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| fail(format!("{program} {verb}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("{program} {verb}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{program} {verb} failed: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(())
}

/// Stores `user`/`password` for `host` (after the caller checked them against the registry).
/// Returns the file or helper that now holds them.
pub fn store(dir: Option<&Path>, host: &str, user: &str, password: &str) -> Result<String, Error> {
    let path = config_path(dir, host)?;
    let key = server_key(host);
    let mut map = read_config(&path, host)?;
    if let Some(helper) = helper_for(&map, &key) {
        let input = json!({"ServerURL": key, "Username": user, "Secret": password}).to_string();
        run_helper(&helper, "store", &input, host)?;
        return Ok(format!("docker-credential-{helper}"));
    }
    let auths = map
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Some(auths) = auths.as_object_mut() {
        auths.insert(
            key,
            json!({"auth": STANDARD.encode(format!("{user}:{password}"))}),
        );
    }
    write_config(&path, &map, host)?;
    Ok(path.display().to_string())
}

/// Removes the credentials for `host`; `Ok(false)` if there were none in the file.
pub fn erase(dir: Option<&Path>, host: &str) -> Result<bool, Error> {
    let path = config_path(dir, host)?;
    let key = server_key(host);
    let mut map = read_config(&path, host)?;
    if let Some(helper) = helper_for(&map, &key) {
        run_helper(&helper, "erase", &key, host)?;
        return Ok(true);
    }
    let removed = map
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.remove(&key))
        .is_some();
    if removed {
        write_config(&path, &map, host)?;
    }
    Ok(removed)
}

fn config_path(dir: Option<&Path>, host: &str) -> Result<PathBuf, Error> {
    config_dir(dir)
        .map(|d| d.join("config.json"))
        .ok_or_else(|| Error::Credentials {
            registry: host.to_owned(),
            detail: "neither DOCKER_CONFIG nor HOME is set".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lookup_erase_round_trip_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"x"}"#,
        )
        .unwrap();
        assert!(matches!(
            lookup(Some(dir.path()), "127.0.0.1:5000").unwrap(),
            Credential::Auth(RegistryAuth::Anonymous)
        ));
        store(Some(dir.path()), "127.0.0.1:5000", "alice", "s3:cret").unwrap();
        match lookup(Some(dir.path()), "127.0.0.1:5000").unwrap() {
            Credential::Auth(RegistryAuth::Basic(u, p)) => {
                assert_eq!((u.as_str(), p.as_str()), ("alice", "s3:cret"))
            }
            other => panic!("expected basic auth, got {other:?}"),
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("psFormat") && text.contains("other:1"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(erase(Some(dir.path()), "127.0.0.1:5000").unwrap());
        assert!(!erase(Some(dir.path()), "127.0.0.1:5000").unwrap());
        assert!(matches!(
            lookup(Some(dir.path()), "127.0.0.1:5000").unwrap(),
            Credential::Auth(RegistryAuth::Anonymous)
        ));
    }

    #[test]
    fn an_identity_token_is_looked_up_as_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"reg.example":{"auth":"dXNlcjo=","identitytoken":"refresh-me"}}}"#,
        )
        .unwrap();
        match lookup(Some(dir.path()), "reg.example").unwrap() {
            Credential::IdentityToken(t) => assert_eq!(t, "refresh-me"),
            other => panic!("expected an identity token, got {other:?}"),
        }
    }

    #[test]
    fn docker_hub_uses_the_v1_key() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
