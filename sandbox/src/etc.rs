//! The files a step sees at `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
//!
//! They are bind-mounted read-only over the rootfs, so they never end up in the layer (the
//! mount points created for them are removed again, see `stubs`), as BuildKit does.

/// `/etc/hosts`: localhost and the step's hostname on the loopback addresses (BuildKit's
/// `executor/oci/hosts.go` content).
pub(crate) fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost {hostname}\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
}

/// `/etc/hostname`.
pub(crate) fn hostname(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `/etc/resolv.conf` from the host's. Steps share the host's network namespace (or have none),
/// so the host's resolvers, loopback ones included, are the right ones; with no host file the
/// step gets public resolvers, as docker does.
pub(crate) fn resolv_conf(host: Option<&str>) -> String {
    match host {
        Some(text)
            if text
                .lines()
                .any(|l| l.trim_start().starts_with("nameserver")) =>
        {
            text.to_owned()
        }
        _ => "nameserver 8.8.8.8\nnameserver 8.8.4.4\n".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_sandbox() {
        assert_eq!(
            hosts("box"),
            "127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
    }

    #[test]
    fn resolv_conf_falls_back_to_public_resolvers() {
        assert_eq!(
            resolv_conf(Some("nameserver 10.0.0.1\n")),
            "nameserver 10.0.0.1\n"
        );
        assert!(resolv_conf(None).contains("8.8.8.8"));
        assert!(resolv_conf(Some("# empty\n")).contains("8.8.8.8"));
    }
}
