//! [`Digest`]: the `sha256:<64 lowercase hex>` content address used across dray.
//!
//! Every node of the op graph, every blob in the content store and every cache key is named by a
//! `Digest`. Only sha256 is accepted: it is what OCI registries, BuildKit and our own cache keys
//! use, and one algorithm means one canonical spelling per content. A `sha512:` digest from a
//! registry is rejected with [`DigestError::UnsupportedAlgorithm`] rather than half-supported.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// The only algorithm dray accepts, as spelled before the `:`.
pub const ALGORITHM: &str = "sha256";

/// Number of hex characters in a sha256 digest.
const HEX_LEN: usize = 64;

/// A validated `sha256:<64 lowercase hex>` digest.
///
/// Parsed and validated on construction, so holding a `Digest` means holding a well-formed one.
/// Ordering is by the raw bytes, which makes `BTreeMap<Digest, _>` iterate deterministically.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

/// Why a string is not a valid [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("invalid digest {input:?}: expected `sha256:<64 hex>`")]
    MissingAlgorithm {
        /// The rejected input.
        input: String,
    },
    /// The algorithm is not sha256.
    #[error("unsupported digest algorithm {algorithm:?} in {input:?}: only sha256 is supported")]
    UnsupportedAlgorithm {
        /// The algorithm found before the `:`.
        algorithm: String,
        /// The rejected input.
        input: String,
    },
    /// The encoded part has the wrong length.
    #[error("invalid digest {input:?}: expected 64 hex characters after `sha256:`, found {len}")]
    BadLength {
        /// Number of characters found after the `:`.
        len: usize,
        /// The rejected input.
        input: String,
    },
    /// The encoded part contains a character that is not lowercase hex.
    #[error("invalid digest {input:?}: {found:?} is not a lowercase hex digit")]
    BadHex {
        /// The first offending character.
        found: char,
        /// The rejected input.
        input: String,
    },
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: impl AsRef<[u8]>) -> Self {
        Self(sha2::Sha256::digest(bytes.as_ref()).into())
    }

    /// Wraps 32 raw sha256 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The algorithm name, always `sha256`.
    pub const fn algorithm(&self) -> &'static str {
        ALGORITHM
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix (the blob file name).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex characters, as `docker images` shows IDs; for humans, never for lookups.
    pub fn short(&self) -> String {
        let mut s = self.hex();
        s.truncate(12);
        s
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: input.to_owned(),
            });
        };
        if algorithm != ALGORITHM {
            return Err(DigestError::UnsupportedAlgorithm {
                algorithm: algorithm.to_owned(),
                input: input.to_owned(),
            });
        }
        if let Some(found) = encoded
            .bytes()
            .position(|c| !matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            .and_then(|at| encoded[at..].chars().next())
        {
            return Err(DigestError::BadHex {
                found,
                input: input.to_owned(),
            });
        }
        if encoded.len() != HEX_LEN {
            return Err(DigestError::BadLength {
                len: encoded.len(),
                input: input.to_owned(),
            });
        }
        // Checked above: 64 lowercase hex digits. Decoded by hand: digests are parsed by the
        // tens of thousands (a memo row per context file), and this is several times faster
        // than the general decoder.
        fn nibble(c: u8) -> u8 {
            if c <= b'9' { c - b'0' } else { c - b'a' + 10 }
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(encoded.as_bytes().chunks_exact(2)) {
            *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ALGORITHM}:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming sha256 hasher: write bytes in (it is an [`io::Write`]), take a [`Digest`] out.
///
/// Used to hash while copying, so content is never read twice and never published unverified.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: sha2::Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes` into the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes have been hashed so far (the blob size, for descriptors).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes have been hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything written.
    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_empty_matches_known_value() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn round_trips_through_string() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(""));
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::from_bytes(*d.as_bytes()), d);
    }

    #[test]
    fn hasher_matches_one_shot() {
        let mut h = Hasher::new();
        assert!(h.is_empty());
        h.write_all(b"hello ").unwrap();
        h.write_all(b"world").unwrap();
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), Digest::of("hello world"));
        assert_eq!(
            Digest::of("hello world").to_string(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn rejects_bad_input() {
        let hex64 = &EMPTY[7..];
        let cases: Vec<(String, DigestError)> = vec![
            (
                hex64.to_owned(),
                DigestError::MissingAlgorithm {
                    input: hex64.to_owned(),
                },
            ),
            (
                format!("sha512:{hex64}"),
                DigestError::UnsupportedAlgorithm {
                    algorithm: "sha512".into(),
                    input: format!("sha512:{hex64}"),
                },
            ),
            (
                format!("SHA256:{hex64}"),
                DigestError::UnsupportedAlgorithm {
                    algorithm: "SHA256".into(),
                    input: format!("SHA256:{hex64}"),
                },
            ),
            (
                format!("sha256:{}", &hex64[..63]),
                DigestError::BadLength {
                    len: 63,
                    input: format!("sha256:{}", &hex64[..63]),
                },
            ),
            (
                format!("sha256:{hex64}0"),
                DigestError::BadLength {
                    len: 65,
                    input: format!("sha256:{hex64}0"),
                },
            ),
            (
                "sha256:".into(),
                DigestError::BadLength {
                    len: 0,
                    input: "sha256:".into(),
                },
            ),
            (
                format!("sha256:{}", hex64.to_uppercase()),
                DigestError::BadHex {
                    found: 'E',
                    input: format!("sha256:{}", hex64.to_uppercase()),
                },
            ),
            (
                format!("sha256:{}g", &hex64[..63]),
                DigestError::BadHex {
                    found: 'g',
                    input: format!("sha256:{}g", &hex64[..63]),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>(), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let err = "md5:abc".parse::<Digest>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported digest algorithm \"md5\" in \"md5:abc\": only sha256 is supported"
        );
    }

    #[test]
    fn serde_is_a_string() {
        let d = Digest::of("x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }
}
