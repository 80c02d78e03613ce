//! `dray build --secret` and `--ssh`, parsed as `docker buildx build` parses them.
//!
//! | flag | meaning |
//! |---|---|
//! | `--secret id=ID,src=PATH` (`source=`, `type=file`) | the file's bytes (at most 500 KiB, as BuildKit) |
//! | `--secret id=ID,env=VAR` (`type=env`, `type=env,src=VAR`) | the variable's value |
//! | `--secret id=ID` | the variable `ID` if it is set, else the file `ID` |
//! | `--ssh default` | the agent at `$SSH_AUTH_SOCK` |
//! | `--ssh ID=SOCKET` | the agent listening on `SOCKET` |
//!
//! `--ssh ID=KEYFILE[,KEYFILE]` (buildx runs an in-process agent holding those keys) is refused
//! with a hint: start `ssh-agent`, `ssh-add` the keys and pass its socket.
//!
//! Errors name the id, the variable and the path, never a value.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dray_solver::{SecretSource, SecretValue, Secrets};

/// BuildKit's limit on one secret (`secretsprovider.MaxSecretSize`).
const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// `SSH_AUTH_SOCK`: the default agent of `--ssh default`.
const SSH_AUTH_SOCK: &str = "SSH_AUTH_SOCK";

/// The build's secrets and agents from the flags, reading the process environment.
pub(crate) fn from_args(secrets: &[String], ssh: &[String]) -> Result<Secrets> {
    let env = |name: &str| std::env::var_os(name);
    let mut out = Secrets::new();
    for spec in secrets {
        let (id, source) = parse_secret(spec, &env)?;
        out = out.with_secret(id, source);
    }
    for spec in ssh {
        let (id, socket) = parse_ssh(spec, &env)?;
        out = out.with_ssh(id, socket);
    }
    Ok(out)
}

/// Splits `a=1,"b=2,3"` at commas outside double quotes, as Go's `csv.Reader` (buildx).
fn csv_fields(text: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// One `--secret` value.
pub(crate) fn parse_secret(
    spec: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(String, SecretSource)> {
    let (mut id, mut src, mut var, mut typ) = (None, None, None, None);
    for field in csv_fields(spec) {
        let Some((key, value)) = field.split_once('=') else {
            bail!("invalid --secret {spec:?}: field {field:?} must be a key=value pair");
        };
        match key.to_ascii_lowercase().as_str() {
            "type" if value == "file" || value == "env" => typ = Some(value.to_owned()),
            "type" => bail!("invalid --secret {spec:?}: unsupported secret type {value:?}"),
            "id" => id = Some(value.to_owned()),
            "src" | "source" => src = Some(value.to_owned()),
            "env" => var = Some(value.to_owned()),
            _ => bail!("invalid --secret {spec:?}: unexpected key {key:?}"),
        }
    }
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        bail!("invalid --secret {spec:?}: the id is missing (id=ID)");
    };
    if typ.as_deref() == Some("env") && var.is_none() {
        var = src.take();
    }
    if src.is_none() && var.is_none() {
        // Buildx: a bare id names a variable if one is set, else a file.
        if env(&id).is_some() {
            var = Some(id.clone());
        } else {
            src = Some(id.clone());
        }
    }
    if let Some(var) = var {
        let value = env(&var)
            .with_context(|| format!("secret {id:?}: the environment variable {var} is not set"))?;
        return Ok((
            id,
            SecretSource::Value(SecretValue::new(value.into_encoded_bytes())),
        ));
    }
    let path = PathBuf::from(src.unwrap_or_default());
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("secret {id:?}: failed to stat {}", path.display()))?;
    if !meta.is_file() {
        bail!("secret {id:?}: {} is not a regular file", path.display());
    }
    if meta.len() > MAX_SECRET_BYTES {
        bail!(
            "secret {id:?}: {} is larger than {} KiB",
            path.display(),
            MAX_SECRET_BYTES / 1024
        );
    }
    let path = std::path::absolute(&path)
        .with_context(|| format!("secret {id:?}: failed to resolve {}", path.display()))?;
    Ok((id, SecretSource::File(path)))
}

/// One `--ssh` value: the id and the agent's socket.
pub(crate) fn parse_ssh(
    spec: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(String, PathBuf)> {
    let (id, paths) = match spec.split_once('=') {
        Some((id, paths)) => (id, Some(paths)),
        None => (spec, None),
    };
    if id.is_empty() {
        bail!("invalid --ssh {spec:?}: the id is missing (default or ID=SOCKET)");
    }
    let socket = match paths {
        None | Some("") => match env(SSH_AUTH_SOCK).filter(|v| !v.is_empty()) {
            Some(sock) => PathBuf::from(sock),
            None => bail!(
                "--ssh {id}: no agent socket given and {SSH_AUTH_SOCK} is not set (start ssh-agent, or pass --ssh {id}=SOCKET)"
            ),
        },
        Some(paths) => {
            let paths: Vec<&str> = paths.split(',').collect();
            if paths.len() > 1 || !is_socket(Path::new(paths[0])) {
                bail!(
                    "--ssh {id}: {} is not an agent socket; loading keys from files is not supported yet (run ssh-agent, ssh-add the keys and pass --ssh {id}=$SSH_AUTH_SOCK)",
                    paths.join(",")
                );
            }
            PathBuf::from(paths[0])
        }
    };
    if !is_socket(&socket) {
        bail!("--ssh {id}: {} is not a socket", socket.display());
    }
    let socket = std::path::absolute(&socket)
        .with_context(|| format!("--ssh {id}: failed to resolve {}", socket.display()))?;
    Ok((id.to_owned(), socket))
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let vars: BTreeMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn value(v: &str) -> SecretSource {
        SecretSource::Value(SecretValue::new(v))
    }

    #[test]
    fn secret_forms_as_buildx_reads_them() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("token.txt");
        std::fs::write(&file, "from file").unwrap();
        let f = file.display().to_string();
        let env = env_of(&[("TOKEN", "from env"), ("API", "api value")]);
        let cases = [
            (
                format!("id=a,src={f}"),
                "a",
                SecretSource::File(file.clone()),
            ),
            (
                format!("id=a,source={f}"),
                "a",
                SecretSource::File(file.clone()),
            ),
            (
                format!("type=file,id=a,src={f}"),
                "a",
                SecretSource::File(file.clone()),
            ),
            ("id=b,env=TOKEN".to_owned(), "b", value("from env")),
            ("type=env,id=b,src=TOKEN".to_owned(), "b", value("from env")),
            ("TYPE=env,ID=b,ENV=TOKEN".to_owned(), "b", value("from env")),
            // A bare id: the variable of that name first...
            ("id=API".to_owned(), "API", value("api value")),
        ];
        for (spec, id, source) in cases {
            let parsed = parse_secret(&spec, &env).unwrap();
            assert_eq!(parsed, (id.to_owned(), source), "{spec}");
        }
        // ...else the file of that name.
        let (id, source) = parse_secret(&format!("id={f}"), &env).unwrap();
        assert_eq!((id, source), (f.clone(), SecretSource::File(file.clone())));
        // Quoted fields may hold commas.
        let comma = tmp.path().join("a,b");
        std::fs::write(&comma, "x").unwrap();
        let spec = format!("id=c,\"src={}\"", comma.display());
        assert_eq!(
            parse_secret(&spec, &env).unwrap().1,
            SecretSource::File(comma)
        );
    }

    #[test]
    fn bad_secrets_are_clear_errors_without_values() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![b'x'; 600 * 1024]).unwrap();
        let env = env_of(&[("SET", "hunter2")]);
        let cases = [
            ("src=/x".to_owned(), "the id is missing"),
            ("id=a,src".to_owned(), "must be a key=value pair"),
            (
                "id=a,type=ssh".to_owned(),
                "unsupported secret type \"ssh\"",
            ),
            ("id=a,mode=0400".to_owned(), "unexpected key \"mode\""),
            ("id=a,env=UNSET".to_owned(), "UNSET is not set"),
            (
                "id=a,src=/does/not/exist".to_owned(),
                "failed to stat /does/not/exist",
            ),
            (format!("id=a,src={}", big.display()), "larger than 500 KiB"),
            (
                format!("id=a,src={}", tmp.path().display()),
                "not a regular file",
            ),
        ];
        for (spec, expected) in cases {
            let err = format!("{:#}", parse_secret(&spec, &env).unwrap_err());
            assert!(err.contains(expected), "{spec}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn ssh_defaults_to_the_agent_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let s = sock.display().to_string();
        let env = env_of(&[("SSH_AUTH_SOCK", &s)]);
        assert_eq!(
            parse_ssh("default", &env).unwrap(),
            ("default".into(), sock.clone())
        );
        assert_eq!(
            parse_ssh(&format!("work={s}"), &env_of(&[])).unwrap(),
            ("work".into(), sock.clone())
        );
        let key = tmp.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let cases = [
            (
                "default".to_owned(),
                env_of(&[]),
                "SSH_AUTH_SOCK is not set",
            ),
            (
                format!("default={}", key.display()),
                env_of(&[]),
                "loading keys from files",
            ),
            (format!("default={s},{s}"), env_of(&[]), "not supported yet"),
            ("=x".to_owned(), env_of(&[]), "the id is missing"),
        ];
        for (spec, env, expected) in cases {
            let err = format!("{:#}", parse_ssh(&spec, &env).unwrap_err());
            assert!(err.contains(expected), "{spec}: {err}");
        }
        let stale = tmp.path().join("gone.sock");
        let err = parse_ssh(
            "default",
            &env_of(&[("SSH_AUTH_SOCK", &stale.display().to_string())]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
    }
}
