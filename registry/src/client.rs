//! The connection to registries: one `oci_client::Client` per registry host (plain HTTP only for
//! loopback hosts and `--insecure-registry` names), credentials, retries and error mapping.
//!
//! | concern | rule |
//! |---|---|
//! | scheme | HTTPS with the system trust store (rustls-platform-verifier, which reads `SSL_CERT_FILE` too); `localhost`, `127.0.0.0/8`, `[::1]` and names given to [`RegistryOptions::insecure_registries`] are probed for HTTPS first and fall back to HTTP (docker's rule; the table is in `transport.rs`) |
//! | proxy | reqwest reads `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment |
//! | auth | `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`): `credHelpers`, `auths`, `credsStore`; anonymous otherwise. Docker Hub's token flow and Basic auth are oci-client's; an `identitytoken` is exchanged for a Bearer token by dray (`identity_token.rs`) |
//! | retries | connection failures, resets and 5xx answers are retried [`RETRIES`] times with exponential backoff from [`BACKOFF_START`]; 4xx answers are not |

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dray_llb::{Digest, ImageRef};
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::credentials::{self, Credential};
use crate::error::Error;
use crate::transport::{Transport, is_certificate_error};

/// How many times a failed transfer is retried (so `RETRIES + 1` attempts).
pub const RETRIES: u32 = 3;
/// The first backoff; it doubles per retry.
pub const BACKOFF_START: Duration = Duration::from_millis(250);

/// Settings for a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registry hosts (`host[:port]`) reached over plain HTTP besides the loopback ones.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// Where `config.json` is; `None`: `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            docker_config_dir: None,
        }
    }
}

/// A handle on every registry a command talks to. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    options: RegistryOptions,
    clients: Mutex<HashMap<String, Arc<oci_client::Client>>>,
    /// What the docker config holds, by host.
    stored: Mutex<HashMap<String, Credential>>,
    /// Access tokens exchanged for an identity token, by `host scope`.
    auths: Mutex<HashMap<String, RegistryAuth>>,
    transports: Mutex<HashMap<String, Transport>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// Whether `host` (`name[:port]`) is served over plain HTTP.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|h| h == host) {
        return true;
    }
    let name = host_name(host);
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` → `host`, `[::1]:5000` → `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

impl Registry {
    /// A registry handle with `options`.
    pub fn new(options: RegistryOptions) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                options,
                clients: Mutex::new(HashMap::new()),
                stored: Mutex::new(HashMap::new()),
                auths: Mutex::new(HashMap::new()),
                transports: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// The transport already chosen for `host`, if any.
    pub(crate) fn cached_transport(&self, host: &str) -> Option<Transport> {
        self.inner
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .copied()
    }

    pub(crate) fn cache_transport(&self, host: &str, transport: Transport) {
        self.inner
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_owned(), transport);
    }

    /// The client for `host`, made on first use (after choosing its transport).
    pub(crate) async fn client(&self, host: &str) -> Result<Arc<oci_client::Client>, Error> {
        if let Some(c) = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
        {
            return Ok(c.clone());
        }
        let transport = self.transport(host).await?;
        let protocol = if transport.https {
            ClientProtocol::Https
        } else {
            ClientProtocol::Http
        };
        let config = ClientConfig {
            protocol,
            accept_invalid_certificates: transport.accept_invalid_certificates,
            max_concurrent_download: self.inner.options.max_concurrent_downloads.max(1),
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("dray/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client =
            Arc::new(
                oci_client::Client::try_from(config).map_err(|e| Error::Registry {
                    image: host.to_owned(),
                    digest: None,
                    detail: format!("cannot set up the HTTP client: {e}"),
                })?,
            );
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(host.to_owned())
            .or_insert(client.clone());
        Ok(client)
    }

    /// The credentials for `operation` on `image` at `host`: what the docker config holds
    /// (read once per command), or, for an identity token, an access token from the registry's
    /// token service for this repository and operation (exchanged once per command).
    pub(crate) async fn auth(
        &self,
        host: &str,
        image: &oci_client::Reference,
        operation: RegistryOperation,
    ) -> Result<RegistryAuth, Error> {
        let stored = {
            let mut stored = self
                .inner
                .stored
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match stored.get(host) {
                Some(c) => c.clone(),
                None => {
                    let c =
                        credentials::lookup(self.inner.options.docker_config_dir.as_deref(), host)?;
                    stored.insert(host.to_owned(), c.clone());
                    c
                }
            }
        };
        let refresh_token = match stored {
            Credential::Auth(auth) => return Ok(auth),
            Credential::IdentityToken(t) => t,
        };
        let scope = match operation {
            RegistryOperation::Pull => format!("repository:{}:pull", image.repository()),
            RegistryOperation::Push => format!("repository:{}:pull,push", image.repository()),
        };
        let key = format!("{host} {scope}");
        if let Some(a) = self
            .inner
            .auths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(a.clone());
        }
        let transport = self.transport(host).await?;
        let scheme = if transport.https { "https" } else { "http" };
        let api = image.resolve_registry();
        let token = crate::identity_token::exchange(
            &format!("{scheme}://{api}"),
            host,
            &refresh_token,
            &scope,
            transport.accept_invalid_certificates,
        )
        .await?;
        let auth = RegistryAuth::Bearer(token);
        self.inner
            .auths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, auth.clone());
        Ok(auth)
    }
}

/// A dray reference as oci-client's (same normalization: `docker.io/library/x:tag[@digest]`).
pub(crate) fn oci_reference(image: &ImageRef) -> Result<oci_client::Reference, Error> {
    let text = image.to_string();
    text.parse().map_err(|e| Error::BadReference {
        reference: text,
        detail: format!("{e}"),
    })
}

/// An oci-client reference to `digest` in the repository of `image`.
pub(crate) fn by_digest(image: &oci_client::Reference, digest: &Digest) -> oci_client::Reference {
    oci_client::Reference::with_digest(
        image.registry().to_owned(),
        image.repository().to_owned(),
        digest.to_string(),
    )
}

/// What one failed request means.
pub(crate) enum Failure {
    /// Try again after a pause.
    Transient(Error),
    /// Give up now.
    Fatal(Error),
}

impl Failure {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::Transient(e) | Failure::Fatal(e) => e,
        }
    }
}

/// Maps an oci-client error to ours; connection trouble and 5xx are transient.
pub(crate) fn classify(
    err: OciDistributionError,
    image: &ImageRef,
    digest: Option<Digest>,
) -> Failure {
    let name = image.to_string();
    let registry = image.domain().to_owned();
    let unreachable = |detail: String| {
        Failure::Transient(Error::Unreachable {
            image: name.clone(),
            registry: registry.clone(),
            digest,
            detail,
        })
    };
    let other = |detail: String| Error::Registry {
        image: name.clone(),
        digest,
        detail,
    };
    match err {
        OciDistributionError::RequestError(e) if is_certificate_error(&error_chain(&e)) => {
            Failure::Fatal(Error::UntrustedCertificate {
                image: name.clone(),
                registry: registry.clone(),
                detail: error_chain(&e),
            })
        }
        OciDistributionError::RequestError(e) => {
            if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() {
                unreachable(error_chain(&e))
            } else if e.status().is_some_and(|s| s.is_server_error()) {
                Failure::Transient(other(error_chain(&e)))
            } else {
                Failure::Fatal(other(error_chain(&e)))
            }
        }
        OciDistributionError::IoError(e) => unreachable(error_chain(&e)),
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => Failure::Fatal(Error::Unauthorized {
                image: name.clone(),
                registry: registry.clone(),
                detail: format!("HTTP {code} {}", message.trim()),
            }),
            404 => Failure::Fatal(Error::NotFound {
                image: name.clone(),
            }),
            500.. => Failure::Transient(other(format!("HTTP {code} {}", message.trim()))),
            _ => Failure::Fatal(other(format!("HTTP {code} {}", message.trim()))),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Failure::Fatal(Error::Unauthorized {
            image: name.clone(),
            registry: registry.clone(),
            detail: "HTTP 401 unauthorized".to_owned(),
        }),
        OciDistributionError::ImageManifestNotFoundError(_) => {
            Failure::Fatal(Error::NotFound { image: name })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let detail = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Failure::Fatal(Error::Unauthorized {
                    image: name,
                    registry,
                    detail,
                })
            } else if digest.is_none()
                && codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                })
            {
                Failure::Fatal(Error::NotFound { image: name })
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                Failure::Transient(other(detail))
            } else {
                Failure::Fatal(other(detail))
            }
        }
        e => Failure::Fatal(other(e.to_string())),
    }
}

/// An error with its sources, `: `-joined (reqwest hides the useful part in the chain).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        let s = inner.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = inner.source();
    }
    out
}

/// Runs `op` until it succeeds, fails fatally, or has been retried [`RETRIES`] times.
pub(crate) async fn with_retries<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut delay = BACKOFF_START;
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(Failure::Transient(_)) if attempt < RETRIES => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(f) => return Err(f.into_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_hosts_are_insecure() {
        let listed = vec!["reg.example:5000".to_owned()];
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.3.2.1", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(is_insecure("reg.example:5000", &listed));
        assert!(!is_insecure("reg.example", &listed));
        assert!(!is_insecure("docker.io", &[]));
        assert!(!is_insecure("10.0.0.1:5000", &[]));
    }
}
