//! Docker image references, normalized exactly as `FROM` and `docker build -t` do.
//!
//! The grammar is distribution/reference's (`reference.go`, `regexp.go`), and the normalization
//! is its `ParseNormalizedNamed` followed by `TagNameOnly`:
//!
//! | input | [`ImageRef`] (`Display`) | [`ImageRef::familiar`] |
//! |---|---|---|
//! | `alpine` | `docker.io/library/alpine:latest` | `alpine:latest` |
//! | `user/app:1.0` | `docker.io/user/app:1.0` | `user/app:1.0` |
//! | `index.docker.io/library/alpine` | `docker.io/library/alpine:latest` | `alpine:latest` |
//! | `localhost:5000/x` | `localhost:5000/x:latest` | `localhost:5000/x:latest` |
//! | `alpine@sha256:…` | `docker.io/library/alpine@sha256:…` (no tag added) | `alpine@sha256:…` |
//!
//! The first `/`-separated component is a registry host iff it contains `.` or `:`, is
//! `localhost`, or has an uppercase letter (docker's rule: an uppercase first component cannot be
//! a repository, so it is read as a host). Repository path components are lowercase
//! `[a-z0-9]+` joined by the separators `.`, `_`, `__` or one or more `-`. A tag is
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. The full name (domain and path) is at most 255 characters.
//!
//! One deliberate difference from distribution: a digest must be a dray [`Digest`] (sha256), so
//! `name@sha512:…` is rejected with [`ReferenceError::BadDigest`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestError};

/// The registry that short names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of [`DEFAULT_DOMAIN`], rewritten to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag that `TagNameOnly` adds to a bare name.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's `NameTotalLengthMax`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag: one leading character plus 127 more.
const TAG_LENGTH_MAX: usize = 128;

/// A normalized image reference: `domain/path[:tag][@digest]`.
///
/// Always fully qualified (`docker.io/library/alpine`), and always carries a tag, a digest or
/// both: a bare name gets `:latest`, as BuildKit's `FROM` and `docker build -t` do. Serialized as
/// its [`Display`](fmt::Display) string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference. Every variant names the rejected input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("invalid reference format: repository name must have at least one component")]
    Empty,
    /// A 64-hex string alone looks like an image ID, which docker refuses as a name.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier {
        /// The rejected input.
        input: String,
    },
    /// The repository path has uppercase letters.
    #[error("invalid reference format: repository name ({path}) must be lowercase")]
    Uppercase {
        /// The offending repository path.
        path: String,
        /// The rejected input.
        input: String,
    },
    /// The registry host (or its port) does not match the domain grammar.
    #[error("invalid reference format: bad registry host {domain:?} in {input:?}")]
    BadDomain {
        /// The offending domain.
        domain: String,
        /// The rejected input.
        input: String,
    },
    /// A repository path component is empty or breaks the component grammar.
    #[error("invalid reference format: bad repository path component {component:?} in {input:?}")]
    BadPathComponent {
        /// The offending component.
        component: String,
        /// The rejected input.
        input: String,
    },
    /// The tag breaks `[\w][\w.-]{0,127}`.
    #[error("invalid reference format: bad tag {tag:?} in {input:?}")]
    BadTag {
        /// The offending tag.
        tag: String,
        /// The rejected input.
        input: String,
    },
    /// The part after `@` is not a valid sha256 digest.
    #[error("invalid reference format: bad digest in {input:?}")]
    BadDigest {
        /// The rejected input.
        input: String,
        /// Why the digest was rejected.
        #[source]
        source: DigestError,
    },
    /// `domain/path` is longer than 255 characters.
    #[error(
        "invalid reference format: repository name must not be more than 255 characters (found {len})"
    )]
    NameTooLong {
        /// The length of `domain/path`.
        len: usize,
        /// The rejected input.
        input: String,
    },
}

impl ImageRef {
    /// Parses and normalizes `input` the way `FROM` and `docker build -t` do.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err_input = || input.to_owned();
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ReferenceError::HexIdentifier { input: err_input() });
        }

        let (domain, remainder) = split_docker_domain(input);

        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((n, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|source| ReferenceError::BadDigest {
                        input: err_input(),
                        source,
                    })?;
                (n, Some(digest))
            }
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_and_tag, None),
        };

        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase {
                path: path.to_owned(),
                input: err_input(),
            });
        }
        if !is_domain(&domain) {
            return Err(ReferenceError::BadDomain {
                domain,
                input: err_input(),
            });
        }
        for component in path.split('/') {
            if !is_path_component(component) {
                return Err(ReferenceError::BadPathComponent {
                    component: component.to_owned(),
                    input: err_input(),
                });
            }
        }
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(ReferenceError::BadTag {
                tag: tag.to_owned(),
                input: err_input(),
            });
        }
        let len = domain.len() + 1 + path.len();
        if len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                len,
                input: err_input(),
            });
        }

        // TagNameOnly: a bare name means `:latest`; a digest alone stays untagged.
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            domain,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The registry host, with port if any: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/alpine`, `user/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any (absent only when a digest pins the image).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned manifest digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, without tag or digest: the repository a registry client talks to.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same reference pinned to `digest` (keeping the tag), as a resolver does after asking
    /// the registry what a tag points to.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Docker's short form for UI: `alpine:latest`, `user/app:1.0`, `localhost:5000/x:latest`.
    ///
    /// Never use it as a key: it is ambiguous by design, exactly as docker's `FamiliarString`:
    /// `docker.io/a.b/c` shortens to `a.b/c`, which would parse with `a.b` as the registry.
    pub fn familiar(&self) -> String {
        let mut out = String::new();
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => out.push_str(rest),
                _ => out.push_str(&self.path),
            }
        } else {
            out.push_str(&self.domain);
            out.push('/');
            out.push_str(&self.path);
        }
        self.push_tag_digest(&mut out);
        out
    }

    fn push_tag_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

/// distribution's `splitDockerDomain`: decide whether the first component is a registry host.
fn split_docker_domain(input: &str) -> (String, String) {
    let (mut domain, mut remainder) = match input.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), input.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `host (":" [0-9]+)?` where host is a dotted domain name or a bracketed IPv6 address.
fn is_domain(domain: &str) -> bool {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return addr_ok && port_ok;
    }
    let (host, port_ok) = match domain.split_once(':') {
        Some((h, p)) => (h, is_port(p)),
        None => (domain, true),
    };
    port_ok && host.split('.').all(is_domain_component)
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]+ (([._]|__|[-]+) [a-z0-9]+)*`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let mut need_alnum = true;
    while i < b.len() {
        if alnum(&b[i]) {
            need_alnum = false;
            i += 1;
            continue;
        }
        if need_alnum {
            return false;
        }
        // A separator: `.`, `_`, `__` or a run of `-`.
        let sep_len = match b[i] {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|x| **x == b'-').count(),
            _ => return false,
        };
        i += sep_len;
        need_alnum = true;
    }
    !need_alnum
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= TAG_LENGTH_MAX
                && word(*first)
                && rest.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
        }
        None => false,
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!("{}/{}", self.domain, self.path);
        self.push_tag_digest(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// (input, normalized Display, familiar form)
    fn valid_cases() -> Vec<(String, String, String)> {
        let t = |a: &str, b: &str, c: &str| {
            (
                a.replace("{D}", D),
                b.replace("{D}", D),
                c.replace("{D}", D),
            )
        };
        vec![
            t("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
            t(
                "alpine:3.19",
                "docker.io/library/alpine:3.19",
                "alpine:3.19",
            ),
            t(
                "library/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            t(
                "docker.io/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            t(
                "docker.io/library/alpine:edge",
                "docker.io/library/alpine:edge",
                "alpine:edge",
            ),
            t(
                "index.docker.io/library/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            t(
                "index.docker.io/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            t("user/app", "docker.io/user/app:latest", "user/app:latest"),
            t("user/app:tag", "docker.io/user/app:tag", "user/app:tag"),
            t("docker.io/user/app:1", "docker.io/user/app:1", "user/app:1"),
            t(
                "library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            t("a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"),
            t("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            t(
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            t(
                "127.0.0.1:5000/x:tag",
                "127.0.0.1:5000/x:tag",
                "127.0.0.1:5000/x:tag",
            ),
            t(
                "127.0.0.1:5000/busybox",
                "127.0.0.1:5000/busybox:latest",
                "127.0.0.1:5000/busybox:latest",
            ),
            t(
                "ghcr.io/o/r:v1.2.3",
                "ghcr.io/o/r:v1.2.3",
                "ghcr.io/o/r:v1.2.3",
            ),
            t(
                "quay.io/coreos/etcd",
                "quay.io/coreos/etcd:latest",
                "quay.io/coreos/etcd:latest",
            ),
            t(
                "example.com:8443/team/app",
                "example.com:8443/team/app:latest",
                "example.com:8443/team/app:latest",
            ),
            t(
                "Example.COM/app",
                "Example.COM/app:latest",
                "Example.COM/app:latest",
            ),
            t(
                "Uppercase/lower",
                "Uppercase/lower:latest",
                "Uppercase/lower:latest",
            ),
            t("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            t("[fe80::1]/x", "[fe80::1]/x:latest", "[fe80::1]/x:latest"),
            t(
                "localhost",
                "docker.io/library/localhost:latest",
                "localhost:latest",
            ),
            t("alpine@{D}", "docker.io/library/alpine@{D}", "alpine@{D}"),
            t(
                "alpine:3@{D}",
                "docker.io/library/alpine:3@{D}",
                "alpine:3@{D}",
            ),
            t(
                "localhost:5000/x@{D}",
                "localhost:5000/x@{D}",
                "localhost:5000/x@{D}",
            ),
            t(
                "a.b_c__d-e--f",
                "docker.io/library/a.b_c__d-e--f:latest",
                "a.b_c__d-e--f:latest",
            ),
            t("x:_tag", "docker.io/library/x:_tag", "x:_tag"),
            t(
                "x:Tag.With-Mixed_Case",
                "docker.io/library/x:Tag.With-Mixed_Case",
                "x:Tag.With-Mixed_Case",
            ),
            t(
                "foo/bar:localhost",
                "docker.io/foo/bar:localhost",
                "foo/bar:localhost",
            ),
            t("0123", "docker.io/library/0123:latest", "0123:latest"),
            // docker's familiar form is ambiguous here too (`a.b` would read as a registry).
            t("docker.io/a.b/c", "docker.io/a.b/c:latest", "a.b/c:latest"),
            // From distribution/reference's normalize tests.
            t(
                "192.168.0.1",
                "docker.io/library/192.168.0.1:latest",
                "192.168.0.1:latest",
            ),
            t(
                "192.168.0.1:80",
                "docker.io/library/192.168.0.1:80",
                "192.168.0.1:80",
            ),
            t(
                "192.168.0.1:8/debian",
                "192.168.0.1:8/debian:latest",
                "192.168.0.1:8/debian:latest",
            ),
            t(
                "DOCKER/docker",
                "DOCKER/docker:latest",
                "DOCKER/docker:latest",
            ),
            t(
                "test_com/foo",
                "docker.io/test_com/foo:latest",
                "test_com/foo:latest",
            ),
            t(
                "xn--n3h.com:18080/foo",
                "xn--n3h.com:18080/foo:latest",
                "xn--n3h.com:18080/foo:latest",
            ),
            t(
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
            ),
            t(
                "docker---rules/docker",
                "docker.io/docker---rules/docker:latest",
                "docker---rules/docker:latest",
            ),
            t(
                "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
            ),
        ]
    }

    #[test]
    fn normalizes_like_docker() {
        for (input, full, familiar) in valid_cases() {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "Display of {input}");
            assert_eq!(r.familiar(), familiar, "familiar of {input}");
            // The normalized form is a fixed point.
            assert_eq!(ImageRef::parse(&full).unwrap(), r, "re-parse of {full}");
        }
    }

    #[test]
    fn accessors_split_the_parts() {
        let r = ImageRef::parse(&format!("localhost:5000/team/app:1.0@{D}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D));
        assert_eq!(r.name(), "localhost:5000/team/app");

        let bare = ImageRef::parse(&format!("alpine@{D}")).unwrap();
        assert_eq!(bare.tag(), None, "a digest alone gets no :latest");

        let pinned = ImageRef::parse("alpine")
            .unwrap()
            .with_digest(D.parse().unwrap());
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/alpine:latest@{D}")
        );
    }

    #[test]
    fn rejects_invalid_references() {
        use ReferenceError as E;
        let hex64 = &D[7..];
        let long_path = "a".repeat(250);
        let long_tag = format!("x:{}", "t".repeat(129));
        let max_tag = format!("x:{}", "t".repeat(128));
        assert!(ImageRef::parse(&max_tag).is_ok(), "128-char tag is allowed");

        let cases: Vec<(String, &str)> = vec![
            (String::new(), "Empty"),
            (hex64.to_owned(), "HexIdentifier"),
            ("Alpine".into(), "Uppercase"),
            ("user/App".into(), "Uppercase"),
            ("localhost:5000/Foo".into(), "Uppercase"),
            ("alpine:".into(), "BadTag"),
            ("alpine:-x".into(), "BadTag"),
            ("alpine:.x".into(), "BadTag"),
            ("alpine:a+b".into(), "BadTag"),
            (long_tag, "BadTag"),
            ("alpine@sha256:abc".into(), "BadDigest"),
            (format!("alpine@sha512:{hex64}{hex64}"), "BadDigest"),
            ("alpine@".into(), "BadDigest"),
            ("-alpine".into(), "BadPathComponent"),
            ("alpine-".into(), "BadPathComponent"),
            ("a..b".into(), "BadPathComponent"),
            ("a___b".into(), "BadPathComponent"),
            ("a/".into(), "BadPathComponent"),
            ("a//b".into(), "BadPathComponent"),
            ("a b".into(), "BadPathComponent"),
            ("localhost:port/x".into(), "BadDomain"),
            ("-host.com/x".into(), "BadDomain"),
            ("host..com/x".into(), "BadDomain"),
            ("[::1/x".into(), "BadDomain"),
            ("localhost:5000/".into(), "BadPathComponent"),
            // From distribution/reference's normalize tests.
            ("https://github.com/docker/docker".into(), "BadDomain"),
            ("[fc00::1]".into(), "BadPathComponent"),
            ("[fc00::1]:5000".into(), "BadPathComponent"),
            ("fc00::1:5000/debian".into(), "BadDomain"),
            ("[fe80::1%eth0]:5000/debian".into(), "BadDomain"),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), "BadDomain"),
            ("-docker.io/docker/docker".into(), "BadDomain"),
            ("docker-/docker".into(), "BadPathComponent"),
            ("____/____".into(), "BadPathComponent"),
            ("dock_.er/docker".into(), "BadDomain"),
            ("dock-.er/docker".into(), "BadDomain"),
            ("docker.io/docker///docker".into(), "BadPathComponent"),
            (format!("example.com/{long_path}"), "NameTooLong"),
        ];
        for (input, want) in cases {
            match ImageRef::parse(&input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert_eq!(kind(&e), want, "{input:?}: {e:?}"),
            }
        }
        assert!(matches!(
            ImageRef::parse(&format!("example.com/{long_path}")),
            Err(E::NameTooLong { len: 262, .. })
        ));
    }

    fn kind(e: &ReferenceError) -> &'static str {
        match e {
            ReferenceError::Empty => "Empty",
            ReferenceError::HexIdentifier { .. } => "HexIdentifier",
            ReferenceError::Uppercase { .. } => "Uppercase",
            ReferenceError::BadDomain { .. } => "BadDomain",
            ReferenceError::BadPathComponent { .. } => "BadPathComponent",
            ReferenceError::BadTag { .. } => "BadTag",
            ReferenceError::BadDigest { .. } => "BadDigest",
            ReferenceError::NameTooLong { .. } => "NameTooLong",
        }
    }

    #[test]
    fn uppercase_error_message_matches_docker() {
        let err = ImageRef::parse("Alpine").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference format: repository name (library/Alpine) must be lowercase"
        );
    }

    #[test]
    fn serde_is_the_normalized_string() {
        let r = ImageRef::parse("alpine").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/alpine:latest\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
    }
}
