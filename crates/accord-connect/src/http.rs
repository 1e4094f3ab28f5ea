//! The HTTP client and the token endpoint's request/response shapes.

use crate::config::Config;
use crate::error::{ConnectError, OAuthErrorBody};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// rustls with the public web roots, plus the configured extra root; no redirects are followed
/// (token and Graph endpoints never redirect, and a redirect must not carry a bearer token).
pub(crate) fn build_client(config: &Config) -> Result<reqwest::Client, ConnectError> {
    let mut b = reqwest::Client::builder()
        .timeout(config.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("accord-connect/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &config.extra_root_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ConnectError::Config(format!("extra root CA is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ConnectError::Config("extra root CA contains no certificate".into()));
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| ConnectError::Config(format!("HTTP client: {e}")))
}

pub(crate) fn transport(e: reqwest::Error) -> ConnectError {
    ConnectError::Http { status: e.status().map(|s| s.as_u16()), message: e.to_string() }
}

/// GET a JSON document (discovery, JWKS).
pub(crate) async fn get_json<T: DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, ConnectError> {
    let res = http.get(url).send().await.map_err(transport)?;
    let status = res.status();
    let body = res.bytes().await.map_err(transport)?;
    if !status.is_success() {
        if let Ok(e) = serde_json::from_slice::<OAuthErrorBody>(&body) {
            return Err(ConnectError::Protocol {
                error: e.error.clone(),
                code: e.code(),
                description: e.description(),
            });
        }
        return Err(ConnectError::Http { status: Some(status.as_u16()), message: format!("GET {url}: {status}") });
    }
    serde_json::from_slice(&body).map_err(|e| ConnectError::Http {
        status: Some(status.as_u16()),
        message: format!("GET {url}: unexpected body: {e}"),
    })
}

/// A successful token response (entra-reference §8).
#[derive(Clone, Debug)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

/// What a token endpoint answered.
pub(crate) enum TokenOutcome {
    Ok(TokenResponse),
    /// An OAuth error body (usually 400; `invalid_client` is 401).
    Refused(OAuthErrorBody),
}

/// POST a form to a token endpoint (`client_secret_post`, as MSAL does).
pub(crate) async fn post_token(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<TokenOutcome, ConnectError> {
    let res = http.post(url).form(form).send().await.map_err(transport)?;
    let status = res.status();
    let body = res.bytes().await.map_err(transport)?;
    if !status.is_success() {
        return match serde_json::from_slice::<OAuthErrorBody>(&body) {
            Ok(e) if !e.error.is_empty() => Ok(TokenOutcome::Refused(e)),
            _ => Err(ConnectError::Http {
                status: Some(status.as_u16()),
                message: format!("token endpoint answered {status} without an OAuth error body"),
            }),
        };
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| ConnectError::Http {
        status: Some(status.as_u16()),
        message: format!("token endpoint answered with a body that is not JSON: {e}"),
    })?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let access_token = text("access_token").ok_or_else(|| ConnectError::Http {
        status: Some(status.as_u16()),
        message: "token response without access_token".into(),
    })?;
    // An integer normally; some older endpoints send a string.
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    Ok(TokenOutcome::Ok(TokenResponse {
        access_token,
        expires_in: if expires_in > 0 { expires_in } else { 600 },
        refresh_token: text("refresh_token"),
        id_token: text("id_token"),
        scope: text("scope"),
    }))
}
