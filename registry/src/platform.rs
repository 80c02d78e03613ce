//! Picking a manifest out of an OCI image index or a Docker manifest list for a platform.

use dray_llb::Platform;
use serde::Deserialize;

/// The platform of this machine (dray builds Linux images only).
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    Platform::linux(arch)
}

/// One `manifests[]` entry of an index.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// `os/arch[/variant]`.
pub(crate) fn show(p: &Platform) -> String {
    p.to_string()
}

/// Same os and architecture; variants must agree when both name one (`arm64` = `arm64/v8`).
pub(crate) fn matches(found: &Platform, wanted: &Platform) -> bool {
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) | ("amd64", Some("v1")) => None,
        (_, v) => v.map(str::to_owned),
    };
    let variant_ok = match (norm(found), norm(wanted)) {
        (Some(a), Some(b)) => a == b,
        (None, Some(_)) => found.architecture != "arm", // arm with no variant: ambiguous, refuse
        _ => true,
    };
    found.os == wanted.os && found.architecture == wanted.architecture && variant_ok
}

/// The entry for `wanted`: an exact variant match first, then a compatible one. Entries without a
/// platform (attestations, unknown artifacts) are never picked.
pub(crate) fn pick<'a>(entries: &'a [IndexEntry], wanted: &Platform) -> Option<&'a IndexEntry> {
    let with_platform = || {
        entries
            .iter()
            .filter_map(|e| e.platform.as_ref().map(|p| (e, p)))
            .filter(|(_, p)| p.os != "unknown")
    };
    with_platform()
        .find(|(_, p)| *p == wanted)
        .or_else(|| with_platform().find(|(_, p)| matches(p, wanted)))
        .map(|(e, _)| e)
}

/// The platforms an index lists, for the "no match" error.
pub(crate) fn listing(entries: &[IndexEntry]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(show)
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str) -> IndexEntry {
        IndexEntry {
            media_type: String::new(),
            digest: format!("sha256:{p}"),
            size: 1,
            platform: Some(p.parse().unwrap()),
        }
    }

    #[test]
    fn picks_exact_then_compatible_variant() {
        let entries = vec![
            entry("linux/arm/v6"),
            entry("linux/arm/v7"),
            entry("linux/arm64/v8"),
            entry("linux/amd64"),
        ];
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(
            pick(&entries, &p("linux/amd64")).unwrap().digest,
            "sha256:linux/amd64"
        );
        assert_eq!(
            pick(&entries, &p("linux/arm/v7")).unwrap().digest,
            "sha256:linux/arm/v7"
        );
        assert_eq!(
            pick(&entries, &p("linux/arm64")).unwrap().digest,
            "sha256:linux/arm64/v8"
        );
        assert!(pick(&entries, &p("linux/s390x")).is_none());
        assert_eq!(
            listing(&entries),
            ["linux/arm/v6", "linux/arm/v7", "linux/arm64", "linux/amd64"]
        );
    }
}
