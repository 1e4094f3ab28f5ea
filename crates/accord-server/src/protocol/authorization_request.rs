//! The authorization request as it travels through sign-in and consent, and the answers sent
//! back to the app: the code, an error, in the request's response mode. Both the `/authorize`
//! endpoint (`authorize.rs`) and the consent pages (`consent_pages.rs`) build on it, so neither
//! needs the other's internals.

use super::auth_codes::CodeGrant;
use super::errors::{Failure, PageFailure};
use crate::service::{device_authorization, tokens};
use crate::state::AppState;
use crate::tenancy::{TenantPath, TenantPathError};
use crate::web::forms::found;
use crate::web::session::csrf_cookie;
use crate::web::templates::Templates;
use accord_core::directory::{Application, Tenant, User};
use accord_core::ids::AppId;
use accord_core::Aadsts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Purpose label of the sealed request carried by the sign-in form.
pub(super) const FLOW_PURPOSE: &str = "authorize-flow";
/// Longest value accepted for free-form parameters (state, nonce, hints).
pub(super) const MAX_PARAM_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// What the browser came for: a sign-in to an app, or an administrator's consent for the
/// organisation (`/adminconsent`, v1 consents to the static list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FlowKind {
    #[default]
    Authorize,
    AdminConsent {
        v1: bool,
    },
    /// Signing in to Accord's own pages (My Apps, the admin center); `redirect_uri` holds the
    /// local path to return to.
    Portal,
    /// Signing in for a device (the device authorization grant): no redirect URI; the outcome
    /// is recorded for the device's poll (`device_code_hash`) and shown to the person.
    Device,
}

/// A validated authorization request; sealed into the sign-in form while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub kind: FlowKind,
    pub tenant_segment: String,
    pub client_id: AppId,
    pub redirect_uri: String,
    pub scope: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub issued_at: i64,
    /// The device authorization a [`FlowKind::Device`] sign-in answers.
    #[serde(default)]
    pub device_code_hash: Option<String>,
    /// A claims challenge's `nbf`: an SSO session older than this does not do; sign in again.
    #[serde(default)]
    pub claims_not_before: Option<i64>,
}

/// Steps that must pass before any redirect: tenant, client, redirect URI.
pub(crate) async fn validate_client(
    state: &AppState,
    tenant: &str,
    p: &HashMap<String, String>,
) -> Result<(TenantPath, Application, AuthorizeRequest), Failure> {
    let path = match TenantPath::resolve(&*state.store, tenant).await {
        Ok(path) => path,
        Err(TenantPathError::NotFound(e)) => return Err(e.into()),
        Err(TenantPathError::Store(e)) => return Err(e.into()),
    };
    let client_id_raw = p.get("client_id").ok_or_else(|| Aadsts::missing_parameter("client_id"))?;
    let client_id: AppId =
        client_id_raw.trim().parse().map_err(|_| Aadsts::unknown_client(&crate::tenancy::sanitize(client_id_raw)))?;
    let client = state
        .store
        .application_by_app_id(client_id)
        .await?
        .ok_or_else(|| Aadsts::unknown_client(&client_id.to_string()))?;
    let redirect_uri = match p.get("redirect_uri") {
        Some(uri) => uri.clone(),
        None if client.redirect_uris.len() == 1 && client.spa_redirect_uris.is_empty() => {
            client.redirect_uris[0].clone()
        }
        None => return Err(Aadsts::missing_parameter("redirect_uri").into()),
    };
    // Exact string match against the registration: no prefix, case or port tolerance.
    if !client.has_redirect_uri(&redirect_uri) {
        return Err(Aadsts::redirect_uri_mismatch(&client_id.to_string()).into());
    }
    let response_mode = match p.get("response_mode").map(String::as_str) {
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    let req = AuthorizeRequest {
        kind: FlowKind::Authorize,
        tenant_segment: path.url_segment(),
        client_id,
        redirect_uri,
        scope: String::new(),
        response_mode,
        state: p.get("state").filter(|s| s.len() <= MAX_PARAM_LEN).cloned(),
        nonce: None,
        prompt: None,
        login_hint: None,
        code_challenge: None,
        code_challenge_method: None,
        issued_at: accord_core::clock::now().unix_timestamp(),
        device_code_hash: None,
        claims_not_before: None,
    };
    Ok((path, client, req))
}

/// An SSO session is reused only for the same tenant and a matching login hint.
pub(crate) fn session_fits(path: &TenantPath, user: &User, req: &AuthorizeRequest) -> bool {
    let tenant_ok = path.tenant().is_none_or(|t| t.id == user.tenant_id);
    let hint_ok = req.login_hint.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(&user.upn));
    tenant_ok && hint_ok
}

/// The same sign-in request again, asking the person for an account (`prompt=login`): the
/// "sign in with a different account" of an error page. Only for sign-ins to an app, whose
/// request is all in these parameters.
pub(crate) fn switch_account_url(req: &AuthorizeRequest) -> Option<String> {
    if req.kind != FlowKind::Authorize {
        return None;
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &req.client_id.to_string())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &req.redirect_uri)
        .append_pair("scope", &req.scope);
    match req.response_mode {
        ResponseMode::Query => {}
        ResponseMode::Fragment => {
            query.append_pair("response_mode", "fragment");
        }
        ResponseMode::FormPost => {
            query.append_pair("response_mode", "form_post");
        }
    }
    let optional = [
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("code_challenge", &req.code_challenge),
        ("code_challenge_method", &req.code_challenge_method),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    query.append_pair("prompt", "login");
    Some(format!("/{}/oauth2/v2.0/authorize?{}", req.tenant_segment, query.finish()))
}

pub(crate) fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    path: &TenantPath,
    client: &Application,
    req: &AuthorizeRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf_secret, set_cookie) = csrf_cookie(state, headers);
    let flow = state.keyring.seal_text(FLOW_PURPOSE, &serde_json::to_vec(req).expect("request serialises"));
    let html = Templates::render(
        "signin.html",
        context! {
            app_name => client.display_name,
            action => format!("/{}/login", req.tenant_segment),
            flow, csrf => state.keyring.csrf_token(&csrf_secret),
            login_hint => req.login_hint.clone().unwrap_or_default(),
            error => error.unwrap_or(""),
            tenant_name => path.tenant().map(|t| t.display_name.clone()).unwrap_or_default(),
        },
    );
    let mut res = (status, Html(html)).into_response();
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub(crate) async fn reload_client(
    state: &AppState,
    req: &AuthorizeRequest,
) -> Result<(TenantPath, Application), Failure> {
    let path = match TenantPath::resolve(&*state.store, &req.tenant_segment).await {
        Ok(p) => p,
        Err(TenantPathError::NotFound(e)) => return Err(e.into()),
        Err(TenantPathError::Store(e)) => return Err(e.into()),
    };
    if req.kind == FlowKind::Portal {
        // Accord's own pages (My Apps, admin center) have no registration: their stand-in client,
        // returning only to our own pages.
        let return_to = super::portal_client::safe_return_to(Some(&req.redirect_uri));
        return Ok((path, super::portal_client::portal_application(&return_to)));
    }
    // A device sign-in returns nowhere: it has no redirect URI to check.
    let client = state
        .store
        .application_by_app_id(req.client_id)
        .await?
        .filter(|c| req.kind == FlowKind::Device || c.has_redirect_uri(&req.redirect_uri))
        .ok_or_else(|| Aadsts::unknown_client(&req.client_id.to_string()))?;
    Ok((path, client))
}

/// Mints an authorization code and sends the browser back to the app.
pub(crate) async fn issue_code(
    state: &AppState,
    req: &AuthorizeRequest,
    client: &Application,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
) -> Response {
    if req.kind == FlowKind::Device {
        return device_outcome(state, req, client, DeviceAnswer::Approve { tenant, user, auth_time }).await;
    }
    let now = accord_core::clock::now();
    let code = CodeGrant {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        client_app_id: client.app_id,
        user_id: user.id,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        auth_time,
        issued_at: now,
        expires_at: now + Duration::seconds(state.settings.code_seconds),
        family_id: Uuid::new_v4(),
    }
    .seal(&state.keyring);
    let mut fields = vec![("code".to_string(), code)];
    if let Some(s) = &req.state {
        fields.push(("state".into(), s.clone()));
    }
    fields.push(("client_info".into(), tokens::client_info(user)));
    fields.push(("session_state".into(), Uuid::new_v4().to_string()));
    respond(req, fields)
}

/// Ends the flow with an error: back to the app's registered redirect URI, or — for a device
/// sign-in, which has none — recorded for the device's poll and shown to the person.
pub(crate) async fn refuse(state: &AppState, req: &AuthorizeRequest, client: &Application, e: Aadsts) -> Response {
    match req.kind {
        FlowKind::Device => device_outcome(state, req, client, DeviceAnswer::Refuse(e)).await,
        _ => redirect_error(req, e),
    }
}

enum DeviceAnswer<'a> {
    Approve { tenant: &'a Tenant, user: &'a User, auth_time: OffsetDateTime },
    Refuse(Aadsts),
}

/// Records a device sign-in's outcome and tells the person what the device will do.
async fn device_outcome(
    state: &AppState,
    req: &AuthorizeRequest,
    client: &Application,
    answer: DeviceAnswer<'_>,
) -> Response {
    let Some(device) = req.device_code_hash.as_deref() else {
        return PageFailure(Failure::Internal("a device sign-in without its device".into())).into_response();
    };
    let store = &*state.store;
    let (recorded, approved, reason) = match answer {
        DeviceAnswer::Approve { tenant, user, auth_time } => {
            tracing::info!(tenant = %tenant.id, user = %user.id, client = %client.app_id, "device sign-in approved");
            (device_authorization::approve(store, device, tenant, user, auth_time).await, true, None)
        }
        DeviceAnswer::Refuse(e) => {
            super::errors::count_error(&e);
            // Cancel on the consent prompt is the device flow's "declined".
            let e = if e.code == Aadsts::user_declined_consent().code {
                Aadsts::device_authorization_declined()
            } else {
                e
            };
            let declined = e.error == accord_core::OAuthError::AuthorizationDeclined;
            let reason = (!declined).then(|| e.to_string());
            (device_authorization::refuse(store, device, &e).await, false, reason)
        }
    };
    match recorded {
        Ok(true) => {
            let html =
                Templates::render("device_done.html", context! { app_name => client.display_name, approved, reason });
            Html(html).into_response()
        }
        Ok(false) => PageFailure(Failure::Protocol(Aadsts::device_code_expired())).into_response(),
        Err(e) => PageFailure(e.into()).into_response(),
    }
}

/// Sends an authorize error back to the registered redirect URI.
pub fn redirect_error(req: &AuthorizeRequest, e: Aadsts) -> Response {
    super::errors::count_error(&e);
    error_response(req, e)
}

/// The error response to the app, not counted: also what a page's "back to the app" link
/// carries, which is only offered (counted if the page itself is an error).
pub(crate) fn error_response(req: &AuthorizeRequest, e: Aadsts) -> Response {
    let trace_id = Uuid::new_v4();
    let mut fields = vec![
        ("error".to_string(), e.error.as_str().to_string()),
        (
            "error_description".to_string(),
            format!(
                "{e}\r\nTrace ID: {trace_id}\r\nTimestamp: {}",
                super::errors::entra_timestamp(accord_core::clock::now())
            ),
        ),
        ("error_codes".to_string(), e.code.to_string()),
    ];
    if let Some(sub) = e.suberror {
        fields.push(("error_subcode".into(), sub.to_string()));
    }
    if let Some(s) = &req.state {
        fields.push(("state".into(), s.clone()));
    }
    respond(req, fields)
}

pub(crate) fn respond(req: &AuthorizeRequest, fields: Vec<(String, String)>) -> Response {
    match req.response_mode {
        ResponseMode::Query | ResponseMode::Fragment => {
            let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish();
            let target = if req.response_mode == ResponseMode::Fragment {
                format!("{}#{encoded}", req.redirect_uri.split('#').next().unwrap_or_default())
            } else if req.redirect_uri.contains('?') {
                format!("{}&{encoded}", req.redirect_uri)
            } else {
                format!("{}?{encoded}", req.redirect_uri)
            };
            found(&target)
        }
        ResponseMode::FormPost => {
            let html = Templates::render("form_post.html", context! { action => req.redirect_uri, fields });
            Html(html).into_response()
        }
    }
}
