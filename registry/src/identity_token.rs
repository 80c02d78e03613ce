//! Identity tokens: what `docker login` stores (`auths[host].identitytoken`) when a registry's
//! token service hands out an OAuth2 refresh token instead of keeping the password.
//!
//! Docker uses one as the refresh token of an OAuth2 exchange (the distribution spec's
//! "token authentication" with `grant_type=refresh_token`), per repository and operation; dray
//! does the same, and hands the access token it gets to oci-client as a Bearer token.
//!
//! | step | request | answer used |
//! |---|---|---|
//! | 1 | `GET <scheme>://<host>/v2/` | the `WWW-Authenticate: Bearer realm=…,service=…` challenge |
//! | 2 | `POST <realm>`, form `grant_type=refresh_token`, `refresh_token`, `service`, `scope` (`repository:<name>:pull` or `:pull,push`), `client_id=dray` | JSON `access_token` (or `token`) |

use std::time::Duration;

use crate::client::error_chain;
use crate::error::Error;

/// The `client_id` of the token request (docker sends `docker`).
const CLIENT_ID: &str = "dray";

/// Exchanges `refresh_token` for an access token to `scope` at `host`'s token service.
pub(crate) async fn exchange(
    base_url: &str,
    host: &str,
    refresh_token: &str,
    scope: &str,
    accept_invalid_certificates: bool,
) -> Result<String, Error> {
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
        .tls_danger_accept_invalid_certs(accept_invalid_certificates)
        .user_agent(concat!("dray/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(unreachable)?;
    let ping = http
        .get(format!("{base_url}/v2/"))
        .send()
        .await
        .map_err(unreachable)?;
    let challenge = ping
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some((realm, service)) = bearer_challenge(&challenge) else {
        return Err(Error::Credentials {
            registry: host.to_owned(),
            detail: format!(
                "the stored identity token needs a registry with token authentication, but {host} answered /v2/ with {:?}",
                challenge
            ),
        });
    };
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
        ("scope", scope),
    ];
    if let Some(service) = service.as_deref() {
        form.push(("service", service));
    }
    let answer = http
        .post(&realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_body(&form))
        .send()
        .await
        .map_err(unreachable)?;
    let status = answer.status();
    if !status.is_success() {
        return Err(denied(format!(
            "the token service {realm} refused the identity token: HTTP {status}"
        )));
    }
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| denied(format!("the token service {realm} answered: {e}")))?;
    body.get("access_token")
        .or_else(|| body.get("token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| denied(format!("the token service {realm} sent no access_token")))
}

/// `Bearer realm="…",service="…"` → (realm, service).
pub(crate) fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    let params = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))?;
    let param = |key: &str| {
        params.split(',').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.eq_ignore_ascii_case(key)).then(|| v.trim_matches('"').to_owned())
        })
    };
    Some((param("realm")?, param("service")))
}

/// `application/x-www-form-urlencoded` of `pairs` (RFC 3986 unreserved bytes kept, others
/// `%XX`).
fn form_body(pairs: &[(&str, &str)]) -> String {
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-shot token service on loopback: answers `GET /v2/` with a Bearer challenge and
    /// `POST /token` with an access token; returns the POST's body.
    fn token_service() -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let realm = format!("{base}/token");
        let handle = std::thread::spawn(move || {
            let mut posted = String::new();
            for _ in 0..2 {
                let (conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut conn = conn;
                let response = if request_line.starts_with("GET /v2/") {
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"test-registry\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    assert!(request_line.starts_with("POST /token "), "{request_line}");
                    posted = String::from_utf8(body).unwrap();
                    let json = r#"{"access_token":"the-access-token","expires_in":300}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    )
                };
                conn.write_all(response.as_bytes()).unwrap();
            }
            posted
        });
        (base, handle)
    }

    #[tokio::test]
    async fn an_identity_token_is_sent_as_the_refresh_token_of_an_oauth2_exchange() {
        let (base, server) = token_service();
        let token = exchange(
            &base,
            "127.0.0.1",
            "refresh/me+please",
            "repository:team/app:pull,push",
            false,
        )
        .await
        .unwrap();
        assert_eq!(token, "the-access-token");
        let posted = server.join().unwrap();
        let mut fields: Vec<&str> = posted.split('&').collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "client_id=dray",
                "grant_type=refresh_token",
                "refresh_token=refresh%2Fme%2Bplease",
                "scope=repository%3Ateam%2Fapp%3Apull%2Cpush",
                "service=test-registry",
            ]
        );
    }

    #[test]
    fn bearer_challenges_are_parsed() {
        assert_eq!(
            bearer_challenge(r#"Bearer realm="https://auth.example/token",service="reg.example""#),
            Some((
                "https://auth.example/token".to_owned(),
                Some("reg.example".to_owned())
            ))
        );
        assert_eq!(bearer_challenge(r#"Basic realm="x""#), None);
    }
}
