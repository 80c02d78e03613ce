//! `dray login`: check credentials against the registry as docker does (`GET /v2/` with Basic
//! auth; for a token registry, a token request to the realm with Basic auth), then store them.

use std::time::Duration;

use crate::client::{Registry, error_chain};
use crate::credentials;
use crate::error::Error;

impl Registry {
    /// Verifies `user`/`password` against `host` and stores them in docker's `config.json` (or
    /// its credential helper). Returns where they were stored.
    pub async fn login(&self, host: &str, user: &str, password: &str) -> Result<String, Error> {
        let transport = self.transport(host).await?;
        let scheme = if transport.https { "https" } else { "http" };
        let api = match host {
            "docker.io" => "registry-1.docker.io",
            other => other,
        };
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            image: host.to_owned(),
            registry: host.to_owned(),
            digest: None,
            detail: error_chain(&e),
        };
        let denied = |detail: String| Error::Unauthorized {
            image: host.to_owned(),
            registry: host.to_owned(),
            detail,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .tls_danger_accept_invalid_certs(transport.accept_invalid_certificates)
            .user_agent(concat!("dray/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(unreachable)?;
        let url = format!("{scheme}://{api}/v2/");
        let res = http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .map_err(unreachable)?;
        let status = res.status();
        if status.is_success() {
            return credentials::store(
                self.options().docker_config_dir.as_deref(),
                host,
                user,
                password,
            );
        }
        if status != reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::Registry {
                image: host.to_owned(),
                digest: None,
                detail: format!("GET {url}: HTTP {status}"),
            });
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(denied("HTTP 401: username or password rejected".to_owned()));
        };
        let param = |key: &str| {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_owned())
            })
        };
        let Some(realm) = param("realm") else {
            return Err(denied(format!("unusable challenge {challenge:?}")));
        };
        let mut req = http.get(&realm).basic_auth(user, Some(password));
        if let Some(service) = param("service") {
            req = req.query(&[("service", service)]);
        }
        let token = req.send().await.map_err(unreachable)?;
        if !token.status().is_success() {
            return Err(denied(format!("token request: HTTP {}", token.status())));
        }
        credentials::store(
            self.options().docker_config_dir.as_deref(),
            host,
            user,
            password,
        )
    }

    /// Removes the stored credentials for `host`; `Ok(false)` when there were none.
    pub fn logout(&self, host: &str) -> Result<bool, Error> {
        credentials::erase(self.options().docker_config_dir.as_deref(), host)
    }
}
