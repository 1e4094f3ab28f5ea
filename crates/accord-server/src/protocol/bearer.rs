//! Bearer access tokens that Accord issued, as the resources it serves (the Graph API,
//! userinfo) accept them: the `Authorization` header, the signature, the lifetime and the issuer.

use crate::state::AppState;
use axum::http::{header, HeaderMap};
use serde_json::Value;

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// Not a token we signed, or missing the claims every token has.
    Invalid,
    Expired,
    /// Signed by us, but for another tenant's issuer.
    WrongIssuer,
}

impl BearerError {
    /// Graph's wording for each case.
    pub fn message(self) -> &'static str {
        match self {
            BearerError::Missing => "Access token is empty.",
            BearerError::Invalid => "Access token validation failure. Invalid signature or malformed token.",
            BearerError::Expired => "Lifetime validation failed, the token is expired.",
            BearerError::WrongIssuer => "Access token validation failure. Invalid issuer.",
        }
    }
}

/// Validates the `Authorization: Bearer` access token of a request. The audience is the
/// caller's business.
pub fn validate_bearer(state: &AppState, headers: &HeaderMap) -> Result<Value, BearerError> {
    let value = headers.get(header::AUTHORIZATION).ok_or(BearerError::Missing)?;
    let value = value.to_str().map_err(|_| BearerError::Invalid)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(BearerError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(BearerError::Missing);
    }
    validate_access_token(state, token.trim())
}

/// Validates an access token we issued, however it arrived (a bearer header, an on-behalf-of
/// assertion): signature, expiry (and `nbf`, with 5 minutes of skew) and issuer.
pub fn validate_access_token(state: &AppState, token: &str) -> Result<Value, BearerError> {
    let claims = state.signer.verify(token).ok_or(BearerError::Invalid)?;
    let now = accord_core::clock::now().unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(BearerError::Invalid)?;
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    let tid = claims.get("tid").and_then(Value::as_str).ok_or(BearerError::Invalid)?;
    let iss = claims.get("iss").and_then(Value::as_str).ok_or(BearerError::Invalid)?;
    if exp <= now || nbf > now + 300 {
        return Err(BearerError::Expired);
    }
    if iss != state.settings.issuer(tid) && iss != state.settings.issuer_v1(tid) {
        return Err(BearerError::WrongIssuer);
    }
    Ok(claims)
}

/// Whether the token was issued for Microsoft Graph (`aud` its URI or app id): what Graph and
/// userinfo (a Graph endpoint in Entra) accept.
pub fn is_for_graph(claims: &Value) -> bool {
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
    aud.trim_end_matches('/').eq_ignore_ascii_case(accord_core::well_known::GRAPH_RESOURCE_URI)
        || aud.eq_ignore_ascii_case(&accord_core::well_known::GRAPH_APP_ID.to_string())
}
