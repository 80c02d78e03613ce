//! Platforms (`os/arch[/variant]`), as containerd's `platforms` package parses and normalizes
//! them for `--platform`, `TARGETPLATFORM` and friends.

use std::fmt;

use serde::Serialize;

/// An OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// Go-style architecture (`amd64`, `arm64`, `arm`).
    pub architecture: String,
    /// Architecture variant (`v7`); empty when none.
    pub variant: String,
}

/// Why a platform string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Empty, or an empty component.
    #[error("invalid platform {value:?}: empty component")]
    Empty {
        /// The input.
        value: String,
    },
    /// More than three components, or a name that is neither an OS nor an architecture.
    #[error("invalid platform {value:?}: unknown operating system or architecture")]
    Unknown {
        /// The input.
        value: String,
    },
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "arm64",
    "arm64be",
    "armbe",
    "loong64",
    "mips",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "mipsle",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// Normalizes an architecture and variant like containerd (`aarch64` → `arm64`, `armhf` →
/// `arm`/`v7`, `x86_64` → `amd64`).
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = match arch {
        "i386" => ("386", variant),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
        "aarch64" | "arm64" => (
            "arm64",
            if matches!(variant, "8" | "v8") {
                ""
            } else {
                variant
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant {
                "" | "7" => "v7",
                "5" => "v5",
                "6" => "v6",
                "8" => "v8",
                v => v,
            },
        ),
        a => (a, variant),
    };
    (arch.to_string(), variant.to_string())
}

impl Platform {
    /// A platform from its parts, normalized.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        let (architecture, variant) = normalize_arch(
            &architecture.to_ascii_lowercase(),
            &variant.to_ascii_lowercase(),
        );
        Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
        }
    }

    /// The platform dray runs on: `linux` and the Go name of the compiled architecture.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform::new("linux", arch, "")
    }

    /// Parses `os`, `arch`, `os/arch` or `os/arch/variant` (case-insensitive). A single
    /// component that is an architecture means linux on it.
    pub fn parse(value: &str) -> Result<Platform, PlatformError> {
        let lower = value.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError::Empty {
                value: value.to_string(),
            });
        }
        let unknown = || PlatformError::Unknown {
            value: value.to_string(),
        };
        let platform = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => {
                let host = Platform::host();
                Platform::new(one, &host.architecture, &host.variant)
            }
            [one] => {
                let p = Platform::new("linux", one, "");
                if !KNOWN_ARCH.contains(&p.architecture.as_str()) {
                    return Err(unknown());
                }
                p
            }
            [os, arch] => Platform::new(os, arch, ""),
            [os, arch, variant] => Platform::new(os, arch, variant),
            _ => return Err(unknown()),
        };
        if !KNOWN_OS.contains(&platform.os.as_str())
            || !KNOWN_ARCH.contains(&platform.architecture.as_str())
        {
            return Err(unknown());
        }
        Ok(platform)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl Default for Platform {
    fn default() -> Self {
        Platform::host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/AARCH64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().architecture,
            "amd64"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        assert!(matches!(
            Platform::parse("linux//v7"),
            Err(PlatformError::Empty { .. })
        ));
        assert!(matches!(
            Platform::parse("linux/bogus"),
            Err(PlatformError::Unknown { .. })
        ));
        assert!(matches!(
            Platform::parse("a/b/c/d"),
            Err(PlatformError::Unknown { .. })
        ));
    }

    #[test]
    fn host_is_linux_with_a_go_arch() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(!host.architecture.contains('_'), "{host}");
    }
}
