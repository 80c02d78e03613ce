//! [`Platform`]: the `os/architecture[/variant]` a node is built for.
//!
//! It is part of a node's digest (the same `RUN` for arm64 and amd64 is different work), so it is
//! normalized on parse: `x86_64` becomes `amd64`, `aarch64` becomes `arm64`, and `arm64/v8`
//! drops its default variant, as containerd's `platforms.Normalize` does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A target platform, as in the OCI image index (`os`, `architecture`, `variant`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// The operating system, e.g. `linux`.
    pub os: String,
    /// The CPU architecture in GOARCH spelling, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// The CPU variant, e.g. `v7` for `arm`; `None` when the architecture has no variant.
    pub variant: Option<String>,
}

/// Why a string is not a valid `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform {input:?}: expected `os/arch[/variant]` with lowercase alphanumeric parts"
)]
pub struct PlatformError {
    /// The rejected input.
    pub input: String,
}

impl Platform {
    /// `linux/<arch>`, for tests and defaults.
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError {
            input: input.to_owned(),
        };
        let lower = input.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let ok =
            |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(err());
        }
        let os = parts[0].to_owned();
        let (architecture, variant) = match (parts[1], parts.get(2).copied()) {
            ("x86_64" | "x86-64", v) => ("amd64", v),
            ("aarch64", v) => ("arm64", v),
            (a, v) => (a, v),
        };
        let variant = match (architecture, variant) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_owned),
        };
        Ok(Self {
            os,
            architecture: architecture.to_owned(),
            variant,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("Linux/AMD64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm/v7", "linux/arm/v7"),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<Platform>().unwrap().to_string(),
                want,
                "{input}"
            );
        }
        for bad in ["linux", "", "linux/", "linux/amd64/v1/x", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?} should fail");
        }
    }
}
