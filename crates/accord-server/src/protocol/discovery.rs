//! Metadata endpoints: OpenID configuration, JWKS, MSAL instance discovery and user realm.

use super::errors::JsonFailure;
use crate::state::SharedState;
use crate::tenancy::{TenantPath, TenantPathError};
use accord_core::Aadsts;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

pub async fn resolve(state: &SharedState, segment: &str) -> Result<TenantPath, JsonFailure> {
    match TenantPath::resolve(&*state.store, segment).await {
        Ok(p) => Ok(p),
        Err(TenantPathError::NotFound(e)) => Err(e.into()),
        Err(TenantPathError::Store(e)) => Err(e.into()),
    }
}

fn public_metadata(body: serde_json::Value) -> Response {
    let mut res = Json(body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=86400, private"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

pub async fn openid_configuration(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
) -> Result<Response, JsonFailure> {
    let path = resolve(&state, &tenant).await?;
    let base = &state.settings.public_url;
    let seg = path.url_segment();
    let issuer = match &path {
        TenantPath::Tenant(t) => state.settings.issuer(&t.id.to_string()),
        TenantPath::MultiTenant { .. } => state.settings.issuer("{tenantid}"),
    };
    let host = url::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    Ok(public_metadata(json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/devicecode"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{seg}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{seg}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name", "tid", "ver", "oid", "email"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": base,
    })))
}

pub async fn jwks(State(state): State<SharedState>, Path(tenant): Path<String>) -> Result<Response, JsonFailure> {
    resolve(&state, &tenant).await?;
    Ok(public_metadata(state.signer.jwks()))
}

#[derive(Deserialize)]
pub struct InstanceQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery. The `authorization_endpoint` names the host clients were
/// configured with; we answer only for our own host (MSAL Python sends it without the port).
pub async fn instance_discovery(
    State(state): State<SharedState>,
    Query(q): Query<InstanceQuery>,
) -> Result<Response, JsonFailure> {
    if q.api_version.as_deref().is_some_and(|v| v != "1.1" && v != "1.0") {
        return Err(Aadsts::invalid_parameter("api-version", "only 1.0 and 1.1 are supported").into());
    }
    let Some(endpoint) = q.authorization_endpoint else {
        return Err(Aadsts::malformed_request("'authorization_endpoint' is required.").into());
    };
    let ours = url::Url::parse(&state.settings.public_url).map_err(|e| anyhow::anyhow!("public url: {e}"))?;
    let asked = url::Url::parse(&endpoint).map_err(|_| Aadsts::instance_unknown())?;
    if asked.host_str() != ours.host_str() || asked.scheme() != ours.scheme() {
        return Err(Aadsts::instance_unknown().into());
    }
    let tenant = asked.path_segments().and_then(|mut s| s.next()).filter(|s| !s.is_empty()).unwrap_or("common");
    let tenant = crate::tenancy::sanitize(tenant);
    let host = ours.host_str().unwrap_or("localhost");
    let authority_host = match ours.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Ok(public_metadata(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", state.settings.public_url),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": authority_host,
            "preferred_cache": authority_host,
            "aliases": [authority_host.clone(), host],
        }],
    })))
}

/// `/common/userrealm/{upn}`: MSAL asks whether an account is managed or federated.
pub async fn user_realm(
    State(state): State<SharedState>,
    Path(upn): Path<String>,
    Query(_q): Query<HashMap<String, String>>,
) -> Result<Response, JsonFailure> {
    let domain = upn.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let known = if domain.is_empty() { None } else { state.store.tenant_by_domain(&domain).await? };
    let host = url::Url::parse(&state.settings.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Json(json!({
        "ver": "1.0",
        "account_type": if known.is_some() { "Managed" } else { "Unknown" },
        "domain_name": crate::tenancy::sanitize(&domain),
        "cloud_instance_name": host,
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    }))
    .into_response())
}
