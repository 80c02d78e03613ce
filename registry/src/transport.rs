//! Which scheme and certificate checks a registry host gets, decided once per host per command.
//!
//! | host | tries | certificate | falls back to plain HTTP when |
//! |---|---|---|---|
//! | any other | HTTPS only | verified (system trust store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`) | never |
//! | loopback (`localhost`, `127.0.0.0/8`, `[::1]`) | HTTPS first (a `GET /v2/` probe), then HTTP | **verified** | the host does not speak TLS (or cannot be reached) |
//! | listed with `--insecure-registry` | HTTPS first, then HTTP | not verified | the host does not speak TLS (or cannot be reached) |
//!
//! This is docker's rule, with one difference: docker skips certificate verification for
//! loopback registries; dray verifies it, because a registry that speaks TLS on loopback has a
//! certificate worth checking. A loopback registry whose certificate is not trusted is an error
//! ([`Error::UntrustedCertificate`]) naming the registry and the two ways out (trust its CA, or
//! list it with `--insecure-registry`).

use std::time::Duration;

use crate::client::{Registry, error_chain, is_insecure};
use crate::error::Error;

/// How to talk to one registry host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transport {
    /// HTTPS (else plain HTTP).
    pub https: bool,
    /// Skip certificate verification (`--insecure-registry` hosts only).
    pub accept_invalid_certificates: bool,
}

/// How long the HTTPS probe of a loopback or insecure host may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl Registry {
    /// The transport for `host`, probed on first use (see the module table).
    pub(crate) async fn transport(&self, host: &str) -> Result<Transport, Error> {
        if let Some(t) = self.cached_transport(host) {
            return Ok(t);
        }
        let listed = self.options().insecure_registries.iter().any(|h| h == host);
        let transport = if is_insecure(host, &self.options().insecure_registries) {
            probe(host, listed).await?
        } else {
            Transport {
                https: true,
                accept_invalid_certificates: false,
            }
        };
        self.cache_transport(host, transport);
        Ok(transport)
    }
}

/// `GET https://HOST/v2/`: any HTTP answer means the host speaks TLS with an acceptable
/// certificate; a certificate error is fatal unless `listed`; anything else (a plain-HTTP server
/// answering a TLS hello with garbage, a refused connection) means plain HTTP.
async fn probe(host: &str, listed: bool) -> Result<Transport, Error> {
    let plain = Transport {
        https: false,
        accept_invalid_certificates: false,
    };
    let Ok(http) = reqwest::Client::builder()
        .connect_timeout(PROBE_TIMEOUT)
        .timeout(PROBE_TIMEOUT)
        .tls_danger_accept_invalid_certs(listed)
        .user_agent(concat!("dray/", env!("CARGO_PKG_VERSION")))
        .build()
    else {
        return Ok(plain);
    };
    match http.get(format!("https://{host}/v2/")).send().await {
        Ok(_) => Ok(Transport {
            https: true,
            accept_invalid_certificates: listed,
        }),
        Err(e) => {
            let detail = error_chain(&e);
            if is_certificate_error(&detail) {
                return Err(Error::UntrustedCertificate {
                    image: host.to_owned(),
                    registry: host.to_owned(),
                    detail,
                });
            }
            Ok(plain)
        }
    }
}

/// Whether a TLS error chain (rustls' wording) is about the peer's certificate.
pub(crate) fn is_certificate_error(chain: &str) -> bool {
    chain.contains("certificate")
}
