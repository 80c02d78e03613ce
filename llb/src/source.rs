//! Source ops: the leaves of the graph, named by a scheme-routed [`SourceId`].
//!
//! | scheme | example | attributes |
//! |---|---|---|
//! | `docker-image://` | `docker-image://docker.io/library/alpine:latest` | none |
//! | `oci-layout://` | `oci-layout:///srv/layouts/busybox#latest` (path `#` ref name) | none |
//! | `local://` | `local://context` | [`LocalAttrs`]: include, exclude, follow paths |
//! | `http://`, `https://` | `https://example.com/a.tar.gz` (the URL itself) | [`HttpAttrs`]: checksum, file name, mode |
//! | `scratch://` | `scratch://` (the empty filesystem) | none |
//!
//! The solver routes on the scheme, as BuildKit's source manager does, so adding a scheme is
//! local work: a variant here and a source implementation there.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;
use crate::reference::{ImageRef, ReferenceError};

/// The identity of a source: what to fetch, without how (the attributes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceId {
    /// A registry image (or one in the local store), by normalized reference.
    Image(ImageRef),
    /// An image inside an OCI image layout directory on this machine, for offline bases.
    OciLayout {
        /// The layout directory.
        path: String,
        /// The `org.opencontainers.image.ref.name` annotation to pick from its index.
        reference: String,
    },
    /// A directory the client hands in; `context` is the build context.
    Local {
        /// The name the client registered it under.
        name: String,
    },
    /// A file downloaded over HTTP(S) (`ADD <url>`).
    Http {
        /// The full URL, `http://` or `https://`.
        url: String,
    },
    /// The empty filesystem (`FROM scratch`).
    Scratch,
}

/// Why a string is not a valid [`SourceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceIdError {
    /// No `scheme://` prefix, or a scheme we do not know.
    #[error(
        "unknown source scheme in {input:?}: expected docker-image://, oci-layout://, local://, http(s):// or scratch://"
    )]
    UnknownScheme {
        /// The rejected input.
        input: String,
    },
    /// The image reference after `docker-image://` is invalid.
    #[error("invalid image in source {input:?}")]
    BadImage {
        /// The rejected input.
        input: String,
        /// Why the reference was rejected.
        #[source]
        source: ReferenceError,
    },
    /// The scheme is known but the rest is empty or malformed for it.
    #[error("invalid {scheme} source {input:?}: {reason}")]
    Malformed {
        /// The scheme, without `://`.
        scheme: &'static str,
        /// What is wrong.
        reason: &'static str,
        /// The rejected input.
        input: String,
    },
}

impl SourceId {
    /// The scheme the solver routes on, without `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Image(_) => "docker-image",
            Self::OciLayout { .. } => "oci-layout",
            Self::Local { .. } => "local",
            Self::Http { url } if url.starts_with("http://") => "http",
            Self::Http { .. } => "https",
            Self::Scratch => "scratch",
        }
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image(r) => write!(f, "docker-image://{r}"),
            Self::OciLayout { path, reference } => write!(f, "oci-layout://{path}#{reference}"),
            Self::Local { name } => write!(f, "local://{name}"),
            Self::Http { url } => f.write_str(url),
            Self::Scratch => f.write_str("scratch://"),
        }
    }
}

impl FromStr for SourceId {
    type Err = SourceIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = |scheme, reason| SourceIdError::Malformed {
            scheme,
            reason,
            input: input.to_owned(),
        };
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(SourceIdError::UnknownScheme {
                input: input.to_owned(),
            });
        };
        match scheme {
            "docker-image" => {
                ImageRef::parse(rest)
                    .map(Self::Image)
                    .map_err(|source| SourceIdError::BadImage {
                        input: input.to_owned(),
                        source,
                    })
            }
            "oci-layout" => {
                // Ref names never contain `#`, so the last `#` separates it from the path.
                let Some((path, reference)) = rest.rsplit_once('#') else {
                    return Err(malformed("oci-layout", "expected `<path>#<ref name>`"));
                };
                if path.is_empty() || !is_ref_name(reference) {
                    return Err(malformed("oci-layout", "empty path or invalid ref name"));
                }
                Ok(Self::OciLayout {
                    path: path.to_owned(),
                    reference: reference.to_owned(),
                })
            }
            "local" => {
                if rest.is_empty() || rest.chars().any(char::is_control) {
                    return Err(malformed(
                        "local",
                        "the name must be non-empty printable text",
                    ));
                }
                Ok(Self::Local {
                    name: rest.to_owned(),
                })
            }
            "http" | "https" => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if host.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(malformed("http", "expected a URL with a host"));
                }
                Ok(Self::Http {
                    url: input.to_owned(),
                })
            }
            "scratch" if rest.is_empty() => Ok(Self::Scratch),
            "scratch" => Err(malformed("scratch", "nothing may follow `scratch://`")),
            _ => Err(SourceIdError::UnknownScheme {
                input: input.to_owned(),
            }),
        }
    }
}

/// The OCI `org.opencontainers.image.ref.name` character set.
fn is_ref_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b))
}

impl Serialize for SourceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SourceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A source node: an identifier plus the attributes its scheme understands.
///
/// Build it with the constructors so that the attributes match the scheme;
/// [`Definition::validate`](crate::Definition::validate) rejects a mismatch in decoded input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceOp {
    /// What to fetch.
    pub id: SourceId,
    /// How to fetch it.
    pub attrs: SourceAttrs,
}

/// Scheme-specific source attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceAttrs {
    /// The scheme takes no attributes (image, OCI layout, scratch).
    None,
    /// For `local://`.
    Local(LocalAttrs),
    /// For `http(s)://`.
    Http(HttpAttrs),
}

/// Which part of a local directory to transfer.
///
/// Patterns use `.dockerignore` syntax. They are part of the node digest, because a different
/// selection is a different source, even though the local source itself is never cached across
/// builds (consumers key on content).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalAttrs {
    /// Only paths matching one of these are sent (empty: everything).
    pub include_patterns: Vec<String>,
    /// Paths matching these are left out (the `.dockerignore` lines).
    pub exclude_patterns: Vec<String>,
    /// Paths that consumers read, so a transfer can stop at them (BuildKit's `followpaths`).
    pub follow_paths: Vec<String>,
}

/// How to download and place an HTTP source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpAttrs {
    /// The expected digest of the body (`ADD --checksum`); a mismatch fails the build.
    pub checksum: Option<Digest>,
    /// The file name to store the body under (default: the last URL path segment).
    pub filename: Option<String>,
    /// Permission bits of the stored file (default 0o600, as BuildKit).
    pub mode: Option<u32>,
}

impl SourceOp {
    /// `docker-image://<reference>`.
    pub fn image(reference: ImageRef) -> Self {
        Self {
            id: SourceId::Image(reference),
            attrs: SourceAttrs::None,
        }
    }

    /// `oci-layout://<path>#<reference>`.
    pub fn oci_layout(path: impl Into<String>, reference: impl Into<String>) -> Self {
        Self {
            id: SourceId::OciLayout {
                path: path.into(),
                reference: reference.into(),
            },
            attrs: SourceAttrs::None,
        }
    }

    /// `local://<name>` with the given selection.
    pub fn local(name: impl Into<String>, attrs: LocalAttrs) -> Self {
        Self {
            id: SourceId::Local { name: name.into() },
            attrs: SourceAttrs::Local(attrs),
        }
    }

    /// An HTTP(S) download.
    pub fn http(url: impl Into<String>, attrs: HttpAttrs) -> Self {
        Self {
            id: SourceId::Http { url: url.into() },
            attrs: SourceAttrs::Http(attrs),
        }
    }

    /// The empty filesystem.
    pub fn scratch() -> Self {
        Self {
            id: SourceId::Scratch,
            attrs: SourceAttrs::None,
        }
    }

    /// Whether the attributes are the kind the scheme takes.
    pub fn attrs_match_scheme(&self) -> bool {
        matches!(
            (&self.id, &self.attrs),
            (
                SourceId::Image(_) | SourceId::OciLayout { .. } | SourceId::Scratch,
                SourceAttrs::None
            ) | (SourceId::Local { .. }, SourceAttrs::Local(_))
                | (SourceId::Http { .. }, SourceAttrs::Http(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_round_trip() {
        for s in [
            "docker-image://docker.io/library/alpine:latest",
            "docker-image://127.0.0.1:5000/busybox:latest",
            "oci-layout:///srv/layouts/bu#sy#box:latest",
            "local://context",
            "https://example.com/a.tar.gz?x=1",
            "http://127.0.0.1:8080/f",
            "scratch://",
        ] {
            let id: SourceId = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.to_string(), s);
        }
        let id: SourceId = "docker-image://alpine".parse().unwrap();
        assert_eq!(
            id.to_string(),
            "docker-image://docker.io/library/alpine:latest"
        );
        assert_eq!(id.scheme(), "docker-image");
        let id: SourceId = "oci-layout:///a#b#tag".parse().unwrap();
        assert_eq!(
            id,
            SourceId::OciLayout {
                path: "/a#b".into(),
                reference: "tag".into()
            }
        );
    }

    #[test]
    fn source_ids_reject_garbage() {
        for s in [
            "alpine",
            "git://github.com/x",
            "docker-image://Alpine",
            "oci-layout:///a",
            "oci-layout://#tag",
            "local://",
            "https://",
            "https:///path",
            "http://a b",
            "scratch://x",
        ] {
            assert!(s.parse::<SourceId>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn constructors_keep_attrs_consistent() {
        assert!(SourceOp::scratch().attrs_match_scheme());
        assert!(SourceOp::local("context", LocalAttrs::default()).attrs_match_scheme());
        assert!(SourceOp::http("https://x/y", HttpAttrs::default()).attrs_match_scheme());
        let bad = SourceOp {
            id: SourceId::Scratch,
            attrs: SourceAttrs::Local(LocalAttrs::default()),
        };
        assert!(!bad.attrs_match_scheme());
    }
}
