//! `/{tenant}/oauth2/v2.0/logout` and the OIDC userinfo endpoint.

use super::errors::JsonFailure;
use crate::state::{AppState, SharedState};
use crate::web::cookies;
use crate::web::forms::{found, params};
use crate::web::templates::Templates;
use accord_core::ids::{AppId, TenantId, UserId};
use accord_core::Aadsts;
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use minijinja::context;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn logout_get(
    State(state): State<SharedState>,
    Path(_t): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    logout(&state, &headers, params(q.unwrap_or_default().as_bytes())).await
}

pub async fn logout_post(
    State(state): State<SharedState>,
    Path(_t): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    logout(&state, &headers, params(&body)).await
}

async fn logout(state: &AppState, headers: &HeaderMap, p: HashMap<String, String>) -> Response {
    if let Some(token) = cookies::get(headers, cookies::SESSION, state.settings.secure_cookies) {
        if let Err(e) = state.store.delete_session(&state.keyring.secret_hash(&token)).await {
            tracing::error!(error = %e, "could not delete session at sign-out");
        }
    }
    let target = match p.get("post_logout_redirect_uri") {
        Some(uri) => registered_logout_target(state, &p, uri).await,
        None => None,
    };
    let mut res = match target {
        Some(uri) => {
            let uri = match p.get("state") {
                Some(s) => format!(
                    "{uri}{}state={}",
                    if uri.contains('?') { '&' } else { '?' },
                    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                ),
                None => uri,
            };
            found(&uri)
        }
        None => (StatusCode::OK, Html(Templates::render("signed_out.html", context! {}))).into_response(),
    };
    res.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::SESSION, state.settings.secure_cookies));
    res
}

/// A post-logout redirect is honoured only when it is registered for the client named by
/// `client_id` or by the `id_token_hint` we issued.
async fn registered_logout_target(state: &AppState, p: &HashMap<String, String>, uri: &str) -> Option<String> {
    let client_id = match p.get("client_id") {
        Some(id) => id.parse::<AppId>().ok()?,
        None => {
            let claims = state.signer.verify(p.get("id_token_hint")?)?;
            claims.get("aud")?.as_str()?.parse::<AppId>().ok()?
        }
    };
    let app = state.store.application_by_app_id(client_id).await.ok()??;
    app.has_redirect_uri(uri).then(|| uri.to_string())
}

/// Validates a bearer access token we issued: signature, expiry and issuer
/// (see [`super::bearer::validate_bearer`], which also says why a token was refused).
pub fn bearer_claims(state: &AppState, headers: &HeaderMap) -> Option<Value> {
    super::bearer::validate_bearer(state, headers).ok()
}

pub async fn userinfo(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, JsonFailure> {
    let Some(claims) = bearer_claims(&state, &headers).filter(|c| {
        // A user's token for Graph, as Entra's userinfo (a Graph endpoint) requires.
        c.get("idtyp").and_then(Value::as_str) == Some("user") && super::bearer::is_for_graph(c)
    }) else {
        let mut res = (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token is missing, invalid or expired."}}))).into_response();
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
        return Ok(res);
    };
    let (Some(tid), Some(oid)) = (
        claims.get("tid").and_then(Value::as_str).and_then(|s| s.parse::<TenantId>().ok()),
        claims.get("oid").and_then(Value::as_str).and_then(|s| s.parse::<UserId>().ok()),
    ) else {
        return Err(Aadsts::invalid_parameter("access_token", "it names no user").into());
    };
    let Some(user) = state.store.user(tid, oid).await? else {
        return Err(Aadsts::user_not_found().into());
    };
    let azp = claims.get("azp").and_then(Value::as_str).and_then(|s| s.parse::<AppId>().ok()).unwrap_or(AppId::NIL);
    let (given, family) = user.display_name.split_once(' ').unwrap_or((&user.display_name, ""));
    Ok(Json(json!({
        "sub": crate::service::tokens::pairwise_subject(&state, user.id.into(), azp),
        "name": user.display_name,
        "given_name": given,
        "family_name": family,
        "email": user.upn,
        "picture": format!("{}/v1.0/me/photo/$value", state.settings.public_url),
    }))
    .into_response())
}
