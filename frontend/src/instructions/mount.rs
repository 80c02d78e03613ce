//! `RUN --mount`, `--network` and `--security`, as BuildKit's `commands_runmount.go`,
//! `commands_runnetwork.go` and `commands_runsecurity.go`.
//!
//! A `--mount` value is one CSV line of `key=value` fields (Go `encoding/csv` rules: a field may
//! be double-quoted, `""` inside quotes is a quote). Keys are case-insensitive: `type` (default
//! `bind`), `from`, `source`/`src`, `target`/`dst`/`destination`, `readonly`/`ro`,
//! `readwrite`/`rw` (both also as bare words), `id`, `sharing` (`shared`/`private`/`locked`,
//! cache only), `mode` (octal), `uid`, `gid` (secret, ssh and cache only), `required` (secret and
//! ssh only, also bare), `size` (tmpfs only) and `env` (secret only). Mounts are read-only by
//! default except cache and tmpfs.
//!
//! Values are expanded with the stage environment at RUN time; `from` is the exception, since
//! stage dependencies must be known before anything runs. At parse time a value with a `$` is
//! left unchecked, and the whole mount is checked again after expansion
//! ([`crate::stages`]).

use serde::Serialize;

use crate::span::Span;

use super::error::MountError;
use super::suggest::did_you_mean;

/// Every key `--mount` accepts, for suggestions.
const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "size",
    "env",
];

fn unknown_key(key: String, field: &str) -> MountError {
    let suggestion = did_you_mean(&key, MOUNT_KEYS.iter().copied(), true);
    MountError::UnknownKey {
        key,
        field: field.to_string(),
        suggestion,
    }
}

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    /// The name used in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

/// Parses a `--network` value.
pub fn parse_network(value: &str) -> Option<NetworkMode> {
    match value {
        "default" => Some(NetworkMode::Default),
        "none" => Some(NetworkMode::None),
        "host" => Some(NetworkMode::Host),
        _ => None,
    }
}

/// Parses a `--security` value.
pub fn parse_security(value: &str) -> Option<SecurityMode> {
    match value {
        "sandbox" => Some(SecurityMode::Sandbox),
        "insecure" => Some(SecurityMode::Insecure),
        _ => None,
    }
}

/// One `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `type=`.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// `from=`: a stage name or an image reference (never expanded).
    pub from: Option<String>,
    /// `source=`.
    pub source: Option<String>,
    /// `target=`.
    pub target: Option<String>,
    /// Whether the mount is read-only (explicit, or the per-type default).
    pub readonly: bool,
    /// `id=` (cache id, or secret/ssh id).
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<CacheSharing>,
    /// `required` (secret and ssh only).
    pub required: bool,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `size=` in bytes (tmpfs only).
    pub size: Option<u64>,
    /// `env=`: expose the secret as this environment variable (secret only).
    pub env: Option<String>,
    /// The flag value as written, for re-parsing after expansion.
    pub raw: String,
    /// Whether some value still contains a variable (so the fields are not final).
    pub unexpanded: bool,
    /// The flag.
    #[serde(serialize_with = "super::serde_span::span")]
    pub span: Span,
}

/// Splits a CSV line like Go's `encoding/csv` reader with default settings.
fn split_csv(line: &str) -> Result<Vec<String>, MountError> {
    let csv_error = |reason: &str| MountError::Csv {
        reason: reason.to_string(),
    };
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(csv_error("extraneous or missing \" in quoted-field")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(csv_error("extraneous or missing \" in quoted-field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(csv_error("bare \" in non-quoted-field")),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Parses a go-units size (`512`, `64k`, `1.5g`, `10MiB`): binary multiples.
fn parse_size(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(digits_end);
    let suffix = suffix.trim_start_matches(' ');
    let number: f64 = number.parse().ok()?;
    let mut unit = suffix.chars();
    let multiplier: u64 = match unit.next() {
        None => return Some(number as u64),
        Some('b') if unit.as_str().is_empty() => 1,
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        Some('p') => 1 << 50,
        _ => return None,
    };
    match unit.as_str() {
        "" | "b" | "i" | "ib" => Some((number * multiplier as f64) as u64),
        _ => None,
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, MountError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(MountError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

fn parse_u32(key: &str, value: &str, radix: u32) -> Result<u32, MountError> {
    u32::from_str_radix(value, radix).map_err(|_| MountError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// Expands one `--mount` value (RUN time).
pub type MountExpander<'a> = &'a mut dyn FnMut(&str) -> Result<String, MountError>;

/// Parses one `--mount` value.
///
/// With `expand` set, every value is expanded first (RUN time). Without it (parse time), a
/// `from` value with a `$` is an error and other values with a `$` are left as written and
/// unchecked, as are the checks that depend on them.
pub fn parse_mount(
    raw: &str,
    span: Span,
    mut expand: Option<MountExpander<'_>>,
) -> Result<Mount, MountError> {
    let fields = split_csv(raw)?;
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        readonly: false,
        id: None,
        sharing: None,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
        raw: raw.to_string(),
        unexpanded: false,
        span,
    };
    let mut ro_auto = true;
    let mut type_known = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if !type_known => m.required = true,
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(MountError::KeyNotForType {
                        key,
                        mount_type: m.kind.as_str().to_string(),
                    });
                }
                _ => {
                    return Err(MountError::NotKeyValue {
                        field: field.clone(),
                    });
                }
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(expand) if key != "from" => expand(value)?,
            Some(_) => value.to_string(),
            None if value.contains('$') => {
                if key == "from" {
                    return Err(MountError::FromVariable);
                }
                m.unexpanded = true;
                if key == "type" {
                    type_known = false;
                }
                // Keep the raw text where it is a plain string; check it after expansion.
                match key.as_str() {
                    "source" | "src" => m.source = Some(value.to_string()),
                    "target" | "dst" | "destination" => m.target = Some(value.to_string()),
                    "id" => m.id = Some(value.to_string()),
                    "env" => m.env = Some(value.to_string()),
                    "type" | "readonly" | "ro" | "readwrite" | "rw" | "required" | "sharing"
                    | "mode" | "uid" | "gid" | "size" => {}
                    _ => {
                        return Err(unknown_key(key, field));
                    }
                }
                continue;
            }
            None => value.to_string(),
        };
        let for_type = |allowed: &[MountType], m: &Mount| {
            if !type_known || allowed.contains(&m.kind) {
                Ok(())
            } else {
                Err(MountError::KeyNotForType {
                    key: key.clone(),
                    mount_type: m.kind.as_str().to_string(),
                })
            }
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let suggestion =
                            did_you_mean(&value, ["bind", "cache", "tmpfs", "secret", "ssh"], true);
                        return Err(MountError::UnsupportedType { value, suggestion });
                    }
                };
                type_known = true;
            }
            "from" => m.from = Some(value).filter(|v| !v.is_empty()),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly = parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "required" => {
                for_type(&[MountType::Secret, MountType::Ssh], &m)?;
                m.required = parse_bool(&key, &value)?;
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(MountError::UnsupportedSharing { value }),
                });
            }
            "mode" => m.mode = Some(parse_u32(&key, &value, 8)?),
            "uid" => m.uid = Some(parse_u32(&key, &value, 10)?),
            "gid" => m.gid = Some(parse_u32(&key, &value, 10)?),
            "size" => {
                for_type(&[MountType::Tmpfs], &m)?;
                m.size = Some(parse_size(&value).ok_or(MountError::InvalidValue {
                    key: key.clone(),
                    value,
                })?);
            }
            "env" => {
                for_type(&[MountType::Secret], &m)?;
                m.env = Some(value);
            }
            _ => {
                return Err(unknown_key(key, field));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.unexpanded {
        return Ok(m);
    }
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    for (key, set) in [
        ("mode", m.mode.is_some()),
        ("uid", m.uid.is_some()),
        ("gid", m.gid.is_some()),
    ] {
        if set && !file_info_allowed {
            return Err(MountError::FileInfoNotAllowed {
                key: key.to_string(),
                mount_type: m.kind.as_str().to_string(),
            });
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::SharingNotCache {
            mount_type: m.kind.as_str().to_string(),
        });
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err(MountError::SecretMissingTarget);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Mount, MountError> {
        parse_mount(raw, Span::new(0, raw.len()), None)
    }

    #[test]
    fn csv_splitting_follows_go() {
        assert_eq!(split_csv("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(split_csv("\"a=1,2\",b").unwrap(), ["a=1,2", "b"]);
        assert_eq!(split_csv("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert!(split_csv("a=\"1\"").is_err());
        assert!(split_csv("\"a").is_err());
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("10x"), None);
    }

    #[test]
    fn bind_is_the_default_and_read_only() {
        let m = parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        assert!(!parse("target=/src,rw").unwrap().readonly);
        assert!(!parse("target=/src,readwrite=true").unwrap().readonly);
    }

    #[test]
    fn every_type_parses() {
        let m = parse("type=cache,target=/root/.cache,id=go,sharing=LOCKED,mode=0700,uid=1,gid=2")
            .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(
            (m.sharing, m.mode, m.uid, m.gid),
            (Some(CacheSharing::Locked), Some(0o700), Some(1), Some(2))
        );
        let m = parse("type=tmpfs,dst=/tmp,size=64m").unwrap();
        assert_eq!(
            (m.kind, m.size, m.readonly),
            (MountType::Tmpfs, Some(64 << 20), false)
        );
        let m = parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert_eq!(
            (m.kind, m.required, m.env.as_deref()),
            (MountType::Secret, true, Some("TOKEN"))
        );
        let m = parse("type=ssh,required=true,destination=/agent").unwrap();
        assert_eq!(
            (m.kind, m.required, m.target.as_deref()),
            (MountType::Ssh, true, Some("/agent"))
        );
        let m = parse("TYPE=Bind,Target=/x,ro=false").unwrap();
        assert!(!m.readonly);
    }

    #[test]
    fn errors_name_the_bad_key() {
        let e = |raw| parse(raw).unwrap_err().to_string();
        assert_eq!(e("type=nfs,target=/x"), "unsupported mount type \"nfs\"");
        assert_eq!(
            e("typ=cache,target=/x"),
            "unexpected key 'typ' in 'typ=cache' (did you mean type?)"
        );
        assert_eq!(
            e("type=cahce,target=/x"),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert_eq!(
            e("target=/x,bogus"),
            "invalid field 'bogus' must be a key=value pair"
        );
        assert_eq!(
            e("type=bind,target=/x,required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            e("type=cache,target=/x,sharing=all"),
            "unsupported sharing value \"all\""
        );
        assert_eq!(
            e("type=cache,target=/x,mode=0999"),
            "invalid value \"0999\" for mode"
        );
        assert_eq!(
            e("type=bind,target=/x,uid=0"),
            "uid not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            e("type=tmpfs,target=/x,sharing=shared"),
            "invalid cache sharing set for tmpfs mount"
        );
        assert_eq!(
            e("type=bind,target=/x,size=1m"),
            "unexpected key 'size' for mount type 'bind'"
        );
        assert_eq!(
            e("type=secret,from=x,id=a"),
            "secret mount should not have a from"
        );
        assert_eq!(
            e("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            e("type=secret,source=a,id=b"),
            "both source and id can't be set"
        );
        assert_eq!(e("target=/x,ro=maybe"), "invalid value \"maybe\" for ro");
        assert_eq!(
            e("target=/x,from=$STAGE"),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
    }

    #[test]
    fn variables_defer_checks_until_expansion() {
        let m = parse("type=$T,target=$DIR,uid=$UID").unwrap();
        assert!(m.unexpanded);
        assert_eq!(m.target.as_deref(), Some("$DIR"));
        let mut expand = |v: &str| -> Result<String, MountError> {
            Ok(v.replace("$T", "cache")
                .replace("$DIR", "/c")
                .replace("$UID", "7"))
        };
        let m = parse_mount(&m.raw, m.span, Some(&mut expand)).unwrap();
        assert_eq!(
            (m.kind, m.target.as_deref(), m.uid),
            (MountType::Cache, Some("/c"), Some(7))
        );
        assert!(!m.unexpanded);
    }
}
