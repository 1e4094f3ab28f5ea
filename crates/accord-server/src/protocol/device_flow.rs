//! The device authorization grant's endpoints (RFC 8628, as Entra serves it):
//! `POST /{tenant}/oauth2/v2.0/devicecode` gives a device its codes; `/devicelogin` is the
//! verification page where a person types the user code, confirms the app, and then meets the
//! ordinary sign-in and consent pages (`authorize::proceed`). The device's polling is a grant of
//! the token endpoint (`token.rs`); the rules live in `service::device_authorization`.

use super::authorization_request::{AuthorizeRequest, FlowKind, ResponseMode};
use super::errors::{Failure, JsonFailure, PageFailure};
use crate::service::device_authorization::{self, POLL_INTERVAL_SECONDS};
use crate::state::{AppState, SharedState};
use crate::tenancy::{TenantPath, TenantPathError};
use crate::web::client_address::ClientAddress;
use crate::web::cookies;
use crate::web::forms::params;
use crate::web::session::csrf_cookie;
use crate::web::templates::Templates;
use accord_core::directory::Application;
use accord_core::ids::AppId;
use accord_core::scope::ScopeRequest;
use accord_core::Aadsts;
use axum::extract::{Path, RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Purpose label of the sealed device reference the confirmation form carries.
const DEVICE_PURPOSE: &str = "device-confirm";

/// `POST /{tenant}/oauth2/v2.0/devicecode` with `client_id` and `scope`.
pub async fn device_code(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    ClientAddress(address): ClientAddress,
    RawForm(body): RawForm,
) -> Result<Response, JsonFailure> {
    super::token::reject_repeated(&body)?;
    let p = params(&body);
    let path = match TenantPath::resolve(&*state.store, &tenant).await {
        Ok(p) => p,
        Err(TenantPathError::NotFound(e)) => return Err(e.into()),
        Err(TenantPathError::Store(e)) => return Err(e.into()),
    };
    // Each request writes a row: an address gets them at the password-check pace.
    let now = accord_core::clock::now();
    if let Err(wait) = state.lockout.allow_password_check(address, now) {
        return Err(Aadsts::throttled(wait).into());
    }
    let client = client(&state, &p).await?;
    let scope = p.get("scope").filter(|s| !s.trim().is_empty()).ok_or_else(|| Aadsts::missing_parameter("scope"))?;
    ScopeRequest::parse(scope)?;
    let segment = path.url_segment();
    let started = device_authorization::start(&*state.store, &state.keyring, &segment, &client, scope, now).await?;
    let verification_uri = format!("{}/devicelogin", state.settings.public_url);
    let body = json!({
        "user_code": started.user_code,
        "device_code": started.device_code,
        "verification_uri": verification_uri,
        "expires_in": started.expires_in,
        "interval": POLL_INTERVAL_SECONDS,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {} to authenticate.",
            started.user_code
        ),
    });
    tracing::info!(client = %client.app_id, "device code issued");
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    Ok(res)
}

async fn client(state: &AppState, p: &std::collections::HashMap<String, String>) -> Result<Application, Failure> {
    let raw = p.get("client_id").ok_or_else(|| Aadsts::missing_parameter("client_id"))?;
    let app_id: AppId = raw.trim().parse().map_err(|_| Aadsts::unknown_client(&crate::tenancy::sanitize(raw)))?;
    Ok(state.store.application_by_app_id(app_id).await?.ok_or_else(|| Aadsts::unknown_client(&app_id.to_string()))?)
}

/// What the confirmation form carries, sealed: which authorization, and since when.
#[derive(Serialize, Deserialize)]
struct Confirming {
    user_code: String,
    issued_at: i64,
}

fn code_page(state: &AppState, headers: &HeaderMap, typed: &str, error: Option<&str>, status: StatusCode) -> Response {
    let (secret, set_cookie) = csrf_cookie(state, headers);
    let html = Templates::render(
        "device_code.html",
        context! { csrf => state.keyring.csrf_token(&secret), typed, error => error.unwrap_or("") },
    );
    let mut res = (status, Html(html)).into_response();
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

fn csrf_ok(state: &AppState, headers: &HeaderMap, token: Option<&String>) -> bool {
    cookies::get(headers, cookies::CSRF, state.settings.secure_cookies)
        .zip(token)
        .is_some_and(|(secret, token)| state.keyring.csrf_valid(&secret, token))
}

/// `GET /devicelogin`: the code form.
pub async fn verification_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    code_page(&state, &headers, "", None, StatusCode::OK)
}

/// `POST /devicelogin`: the typed code; a pending one leads to the confirmation page.
pub async fn verification_post(
    State(state): State<SharedState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = params(&body);
    let typed = f.get("otc").map(|s| s.chars().take(40).collect::<String>()).unwrap_or_default();
    if !csrf_ok(&state, &headers, f.get("csrf")) {
        let why = "The form expired or did not come from this site. Enter the code again.";
        return code_page(&state, &headers, &typed, Some(why), StatusCode::BAD_REQUEST);
    }
    // Guessing codes costs what guessing passwords costs.
    let now = accord_core::clock::now();
    if state.lockout.allow_password_check(address, now).is_err() {
        let why = "Too many codes were tried from your network. Wait a minute and try again.";
        return code_page(&state, &headers, &typed, Some(why), StatusCode::TOO_MANY_REQUESTS);
    }
    let found = async {
        let Some(record) = device_authorization::pending(&*state.store, &state.keyring, &typed, now).await? else {
            return Ok::<_, Failure>(None);
        };
        let app = state.store.application_by_app_id(record.client_app_id).await?;
        Ok(app.map(|a| (record, a)))
    }
    .await;
    let (_, app) = match found {
        Ok(Some(v)) => v,
        Ok(None) => {
            let why = Aadsts::user_code_invalid().message;
            return code_page(&state, &headers, &typed, Some(&why), StatusCode::BAD_REQUEST);
        }
        Err(e) => return PageFailure(e).into_response(),
    };
    let confirming =
        Confirming { user_code: device_authorization::normalize_user_code(&typed), issued_at: now.unix_timestamp() };
    let sealed = state.keyring.seal_text(DEVICE_PURPOSE, &serde_json::to_vec(&confirming).expect("serialises"));
    let (secret, set_cookie) = csrf_cookie(&state, &headers);
    let home = match state.store.tenant(app.home_tenant_id).await {
        Ok(Some(t)) => t.display_name,
        _ => "another organisation".into(),
    };
    let html = Templates::render(
        "device_confirm.html",
        context! {
            app => context! { name => app.display_name, verified => app.verified_publisher, home_tenant => home },
            csrf => state.keyring.csrf_token(&secret), device => sealed,
        },
    );
    let mut res = Html(html).into_response();
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// `POST /devicelogin/continue`: Continue leads to sign-in and consent for the device; Cancel
/// declines (the device's poll gets `authorization_declined`).
pub async fn verification_continue(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = params(&body);
    let expired = || PageFailure(Failure::Protocol(Aadsts::device_code_expired())).into_response();
    if !csrf_ok(&state, &headers, f.get("csrf")) {
        return PageFailure(Failure::Protocol(Aadsts::form_expired("The form did not come from this site.")))
            .into_response();
    }
    let now = accord_core::clock::now();
    let Some(confirming) = f
        .get("device")
        .and_then(|d| state.keyring.open_text(DEVICE_PURPOSE, d))
        .and_then(|b| serde_json::from_slice::<Confirming>(&b).ok())
        .filter(|c| {
            (0..device_authorization::LIFETIME.whole_seconds()).contains(&(now.unix_timestamp() - c.issued_at))
        })
    else {
        return expired();
    };
    let record = match device_authorization::pending(&*state.store, &state.keyring, &confirming.user_code, now).await {
        Ok(Some(r)) => r,
        Ok(None) => return expired(),
        Err(e) => return PageFailure(e.into()).into_response(),
    };
    let (path, client) = match reload(&state, &record.tenant_segment, record.client_app_id).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    let req = AuthorizeRequest {
        kind: FlowKind::Device,
        tenant_segment: path.url_segment(),
        client_id: client.app_id,
        redirect_uri: String::new(),
        scope: record.scope.clone(),
        response_mode: ResponseMode::Query,
        state: None,
        nonce: None,
        prompt: None,
        login_hint: None,
        code_challenge: None,
        code_challenge_method: None,
        issued_at: now.unix_timestamp(),
        device_code_hash: Some(record.device_code_hash.clone()),
        claims_not_before: None,
    };
    if f.get("decision").map(String::as_str) != Some("continue") {
        return super::authorization_request::refuse(&state, &req, &client, Aadsts::device_authorization_declined())
            .await;
    }
    super::authorize::proceed(&state, &headers, &path, &client, &req).await
}

async fn reload(state: &AppState, segment: &str, app_id: AppId) -> Result<(TenantPath, Application), Failure> {
    let path = match TenantPath::resolve(&*state.store, segment).await {
        Ok(p) => p,
        Err(TenantPathError::NotFound(e)) => return Err(e.into()),
        Err(TenantPathError::Store(e)) => return Err(e.into()),
    };
    let client =
        state.store.application_by_app_id(app_id).await?.ok_or_else(|| Aadsts::unknown_client(&app_id.to_string()))?;
    Ok((path, client))
}
