//! `/{tenant}/oauth2/v2.0/authorize` and the sign-in form it leads to.
//!
//! Validation order matters: until the client and redirect URI are known to be registered,
//! failures render a page and never redirect (no open redirector). After that, request errors
//! go back to the app in the chosen response mode.
//!
//! The pending request travels in the sign-in form as a sealed (AEAD) value, so nothing is
//! written to the database before the user has signed in.

use super::authorization_request::{
    redirect_error, reload_client, session_fits, sign_in_page, validate_client, AuthorizeRequest, FlowKind,
    FLOW_PURPOSE, MAX_PARAM_LEN,
};
use super::errors::{Failure, PageFailure};
use crate::crypto::random_token;
use crate::service::sign_in;
use crate::state::{AppState, SharedState};
use crate::web::client_address::ClientAddress;
use crate::web::cookies;
use crate::web::device;
use crate::web::forms::{found, params};
use crate::web::session::current_session;
use accord_core::directory::{Application, Tenant, User};
use accord_core::scope::ScopeRequest;
use accord_core::Aadsts;
use accord_store::SessionRecord;
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

const FLOW_MAX_AGE_SECONDS: i64 = 3600;

pub async fn authorize_get(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = params(query.unwrap_or_default().as_bytes());
    authorize(&state, &tenant, &headers, p).await
}

pub async fn authorize_post(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    authorize(&state, &tenant, &headers, params(&body)).await
}

async fn authorize(state: &AppState, tenant: &str, headers: &HeaderMap, p: HashMap<String, String>) -> Response {
    let (path, client, req) = match validate_client(state, tenant, &p).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    let mut req = req;
    if let Err(e) = validate_request(&client, &p, &mut req) {
        return redirect_error(&req, e);
    }
    proceed(state, headers, &path, &client, &req).await
}

/// A validated request goes on: straight to the consent engine when the browser's session fits
/// (unless the request asks for a fresh sign-in), else to the sign-in page.
pub(crate) async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    path: &crate::tenancy::TenantPath,
    client: &Application,
    req: &AuthorizeRequest,
) -> Response {
    let prompt = req.prompt.clone();
    if prompt.as_deref() != Some("login") && prompt.as_deref() != Some("select_account") {
        match current_session(state, headers).await {
            Ok(Some((session, user)))
                if session_fits(path, &user, req)
                    && req.claims_not_before.is_none_or(|nbf| session.auth_time.unix_timestamp() >= nbf) =>
            {
                let tenant = match state.store.tenant(user.tenant_id).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return PageFailure(Failure::Internal("session user's tenant vanished".into())).into_response()
                    }
                    Err(e) => return PageFailure(e.into()).into_response(),
                };
                return complete(state, headers, req, client, &tenant, &user, session.auth_time).await;
            }
            Ok(_) => {}
            Err(e) => return PageFailure(e.into()).into_response(),
        }
    }
    if prompt.as_deref() == Some("none") {
        return redirect_error(req, Aadsts::login_required());
    }
    sign_in_page(state, headers, path, client, req, None, StatusCode::OK)
}

/// The rest of the request; failures go back to the (registered) redirect URI.
fn validate_request(
    client: &Application,
    p: &HashMap<String, String>,
    req: &mut AuthorizeRequest,
) -> Result<(), Aadsts> {
    macro_rules! fail {
        ($e:expr) => {
            return Err($e)
        };
    }
    if p.get("state").is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        fail!(Aadsts::invalid_parameter("state", "it is too long"));
    }
    if let Some(mode) = p.get("response_mode") {
        if !matches!(mode.as_str(), "query" | "fragment" | "form_post") {
            fail!(Aadsts::invalid_parameter("response_mode", "expected query, fragment or form_post"));
        }
    }
    match p.get("response_type").map(String::as_str) {
        None => fail!(Aadsts::missing_parameter("response_type")),
        Some("code") => {}
        Some(rt) if rt.split(' ').any(|t| t == "id_token" || t == "token") => {
            fail!(Aadsts::implicit_id_token_disabled())
        }
        Some(rt) => fail!(Aadsts::unsupported_response_type(&crate::tenancy::sanitize(rt))),
    }
    let Some(scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
        fail!(Aadsts::missing_parameter("scope"));
    };
    ScopeRequest::parse(scope)?;
    req.scope = scope.clone();
    for name in ["nonce", "login_hint", "domain_hint"] {
        if p.get(name).is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            fail!(Aadsts::invalid_parameter(name, "it is too long"));
        }
    }
    req.nonce = p.get("nonce").cloned();
    req.login_hint = p.get("login_hint").cloned();
    // A claims challenge's `nbf` rules out older sessions; MSAL's own `claims` is ignored.
    if let Some(text) = p.get("claims").filter(|c| !c.trim().is_empty()) {
        match accord_core::claims_request::ClaimsRequest::parse(text) {
            Ok(claims) => req.claims_not_before = claims.not_before,
            Err(why) => fail!(Aadsts::invalid_parameter("claims", &why)),
        }
    }
    if let Some(prompt) = p.get("prompt") {
        if !matches!(prompt.as_str(), "login" | "none" | "select_account" | "consent") {
            fail!(Aadsts::invalid_parameter("prompt", "expected login, none, select_account or consent"));
        }
        req.prompt = Some(prompt.clone());
    }
    match (p.get("code_challenge"), p.get("code_challenge_method").map(String::as_str)) {
        (Some(challenge), method) => {
            let method = method.unwrap_or("plain");
            if method != "S256" && method != "plain" {
                fail!(Aadsts::invalid_parameter("code_challenge_method", "expected S256 or plain"));
            }
            let ok_len = (43..=128).contains(&challenge.len());
            let ok_chars = challenge.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
            if !ok_len || !ok_chars {
                fail!(Aadsts::invalid_parameter("code_challenge", "it must be 43 to 128 unreserved characters"));
            }
            req.code_challenge = Some(challenge.clone());
            req.code_challenge_method = Some(method.to_string());
        }
        (None, Some(_)) => fail!(Aadsts::missing_parameter("code_challenge")),
        (None, None) if client.is_spa_redirect_uri(&req.redirect_uri) => fail!(Aadsts::spa_requires_pkce()),
        (None, None) if client.public_client => fail!(Aadsts::pkce_required()),
        (None, None) => {}
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    passwd: String,
}

/// `POST /{tenant}/login`: the sign-in form.
pub async fn sign_in_post(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let form: SignInForm = match serde_urlencoded_form(&body) {
        Some(f) => f,
        None => {
            return PageFailure(Failure::Protocol(Aadsts::invalid_parameter("form", "the sign-in form is malformed")))
                .into_response()
        }
    };
    let csrf_ok = cookies::get(&headers, cookies::CSRF, state.settings.secure_cookies)
        .is_some_and(|secret| state.keyring.csrf_valid(&secret, &form.csrf));
    if !csrf_ok {
        return PageFailure(Failure::Protocol(Aadsts::form_expired(
            "The sign-in form expired or did not come from this site.",
        )))
        .into_response();
    }
    let req: Option<AuthorizeRequest> =
        state.keyring.open_text(FLOW_PURPOSE, &form.flow).and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let Some(req) = req.filter(|r| {
        r.tenant_segment.eq_ignore_ascii_case(&tenant)
            && accord_core::clock::now().unix_timestamp() - r.issued_at < FLOW_MAX_AGE_SECONDS
    }) else {
        return PageFailure(Failure::Protocol(Aadsts::form_expired("The sign-in request expired."))).into_response();
    };
    let (path, client) = match reload_client(&state, &req).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    let login = form.login.trim().to_string();
    let origin = sign_in::SignInOrigin { address, device: device::read(&state, &headers) };
    let outcome = async {
        let home = sign_in::home_tenant(&state, &path, &login, &origin).await?;
        let user = sign_in::authenticate(&state, &home, &login, &form.passwd, &origin).await?;
        Ok::<_, Failure>((home, user))
    }
    .await;
    let (home, user) = match outcome {
        Ok(v) => v,
        Err(Failure::Protocol(e)) => {
            let message = sign_in_message(&e);
            let mut retry = req.clone();
            retry.login_hint = Some(login);
            // Throttled: the same form again, with 429 and Retry-After.
            let status = if e.retry_after.is_some() { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::OK };
            let page = sign_in_page(&state, &headers, &path, &client, &retry, Some(&message), status);
            return super::errors::with_retry_after(page, &e);
        }
        Err(e) => return PageFailure(e).into_response(),
    };
    let now = accord_core::clock::now();
    let token = random_token();
    let session = SessionRecord {
        id_hash: state.keyring.secret_hash(&token),
        tenant_id: home.id,
        user_id: user.id,
        auth_time: now,
        expires_at: now + Duration::hours(state.settings.session_hours),
    };
    if let Err(e) = state.store.put_session(&session).await {
        return PageFailure(e.into()).into_response();
    }
    tracing::info!(tenant = %home.id, user = %user.id, client = %client.app_id, "signed in");
    let mut res = complete(&state, &headers, &req, &client, &home, &user, now).await;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(cookies::SESSION, &token, state.settings.session_hours * 3600, state.settings.secure_cookies),
    );
    // This browser is familiar to the user from now on (smart lockout).
    let mut known = origin.device.unwrap_or_default();
    known.remember(home.id, user.id);
    res.headers_mut().append(header::SET_COOKIE, device::cookie(&state, &known));
    res
}

fn serde_urlencoded_form(body: &[u8]) -> Option<SignInForm> {
    let p = params(body);
    Some(SignInForm {
        flow: p.get("flow")?.clone(),
        csrf: p.get("csrf").cloned().unwrap_or_default(),
        login: p.get("login").cloned().unwrap_or_default(),
        passwd: p.get("passwd").cloned().unwrap_or_default(),
    })
}

/// What the sign-in page says; unknown accounts and wrong passwords read the same.
fn sign_in_message(e: &Aadsts) -> String {
    if e.retry_after.is_some() {
        return "Too many sign-ins are in progress. Wait a few seconds and try again.".into();
    }
    match e.code {
        50053 => "Your account is temporarily locked to prevent unauthorized use. Try again later.".into(),
        50057 => "Your account has been disabled. Contact your administrator.".into(),
        50020 => format!("AADSTS50020: {}", e.message),
        _ => "Your account or password is incorrect.".into(),
    }
}

/// The user is known: the consent engine decides what happens next.
async fn complete(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    client: &Application,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
) -> Response {
    if req.kind == FlowKind::Portal {
        return found(&req.redirect_uri);
    }
    super::consent_pages::after_sign_in(state, headers, req, client, tenant, user, auth_time).await
}
