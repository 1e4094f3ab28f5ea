//! `/{tenant}/oauth2/v2.0/authorize` and the sign-in form it leads to.
//!
//! Validation order matters: until the client and redirect URI are known to be registered,
//! failures render a page and never redirect (no open redirector). After that, request errors
//! go back to the app in the chosen response mode.
//!
//! The pending request travels in the sign-in form as a sealed (AEAD) value, so nothing is
//! written to the database before the user has signed in.

use super::errors::{Failure, PageFailure};
use crate::crypto::random_token;
use crate::service::sign_in;
use crate::service::tokens;
use crate::state::{AppState, SharedState};
use crate::tenancy::{TenantPath, TenantPathError};
use crate::web::cookies;
use crate::web::forms::{found, params};
use crate::web::session::{csrf_cookie, current_session};
use crate::web::templates::Templates;
use accord_core::directory::{Application, Tenant, User};
use accord_core::scope::ScopeRequest;
use accord_core::Aadsts;
use accord_store::{AuthCodeRecord, SessionRecord};
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const FLOW_PURPOSE: &str = "authorize-flow";
const FLOW_MAX_AGE_SECONDS: i64 = 3600;
/// Longest value accepted for free-form parameters (state, nonce, hints).
const MAX_PARAM_LEN: usize = 2048;

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
}

/// A validated authorization request; sealed into the sign-in form while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub kind: FlowKind,
    pub tenant_segment: String,
    pub client_id: Uuid,
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
}

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
    let prompt = req.prompt.clone();
    if prompt.as_deref() != Some("login") && prompt.as_deref() != Some("select_account") {
        match current_session(state, headers).await {
            Ok(Some((session, user))) if session_fits(&path, &user, &req) => {
                let tenant = match state.store.tenant(user.tenant_id).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return PageFailure(Failure::Internal("session user's tenant vanished".into())).into_response()
                    }
                    Err(e) => return PageFailure(e.into()).into_response(),
                };
                return complete(state, headers, &req, &client, &tenant, &user, session.auth_time).await;
            }
            Ok(_) => {}
            Err(e) => return PageFailure(e.into()).into_response(),
        }
    }
    if prompt.as_deref() == Some("none") {
        return redirect_error(&req, Aadsts::login_required());
    }
    sign_in_page(state, headers, &path, &client, &req, None, StatusCode::OK)
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
    let client_id = Uuid::parse_str(client_id_raw.trim())
        .map_err(|_| Aadsts::unknown_client(&crate::tenancy::sanitize(client_id_raw)))?;
    let client = state
        .store
        .application_by_app_id(client_id)
        .await?
        .ok_or_else(|| Aadsts::unknown_client(&client_id.to_string()))?;
    let redirect_uri = match p.get("redirect_uri") {
        Some(uri) => uri.clone(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(Aadsts::missing_parameter("redirect_uri").into()),
    };
    // Exact string match against the registration: no prefix, case or port tolerance.
    if !client.redirect_uris.contains(&redirect_uri) {
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
        issued_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    Ok((path, client, req))
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
        (None, None) if client.public_client => fail!(Aadsts::pkce_required()),
        (None, None) => {}
    }
    Ok(())
}

/// An SSO session is reused only for the same tenant and a matching login hint.
pub(crate) fn session_fits(path: &TenantPath, user: &User, req: &AuthorizeRequest) -> bool {
    let tenant_ok = path.tenant().is_none_or(|t| t.id == user.tenant_id);
    let hint_ok = req.login_hint.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(&user.upn));
    tenant_ok && hint_ok
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
            && OffsetDateTime::now_utc().unix_timestamp() - r.issued_at < FLOW_MAX_AGE_SECONDS
    }) else {
        return PageFailure(Failure::Protocol(Aadsts::form_expired("The sign-in request expired."))).into_response();
    };
    let (path, client) = match reload_client(&state, &req).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    let login = form.login.trim().to_string();
    let outcome = async {
        let home = sign_in::home_tenant(&state, &path, &login).await?;
        let user = sign_in::authenticate(&state, &home, &login, &form.passwd).await?;
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
    let now = OffsetDateTime::now_utc();
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
    let client = state
        .store
        .application_by_app_id(req.client_id)
        .await?
        .filter(|c| c.redirect_uris.contains(&req.redirect_uri))
        .ok_or_else(|| Aadsts::unknown_client(&req.client_id.to_string()))?;
    Ok((path, client))
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

/// Mints an authorization code and sends the browser back to the app.
pub(crate) async fn issue_code(
    state: &AppState,
    req: &AuthorizeRequest,
    client: &Application,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
) -> Response {
    let code = random_token();
    let now = OffsetDateTime::now_utc();
    let record = AuthCodeRecord {
        code_hash: state.keyring.secret_hash(&code),
        tenant_id: tenant.id,
        client_app_id: client.app_id,
        user_id: user.id,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        auth_time,
        expires_at: now + Duration::seconds(state.settings.code_seconds),
        family_id: Uuid::new_v4(),
    };
    if let Err(e) = state.store.put_auth_code(&record).await {
        return PageFailure(e.into()).into_response();
    }
    let mut fields = vec![("code".to_string(), code)];
    if let Some(s) = &req.state {
        fields.push(("state".into(), s.clone()));
    }
    fields.push(("client_info".into(), tokens::client_info(user)));
    fields.push(("session_state".into(), Uuid::new_v4().to_string()));
    respond(req, fields)
}

/// Sends an authorize error back to the registered redirect URI.
pub fn redirect_error(req: &AuthorizeRequest, e: Aadsts) -> Response {
    super::errors::count_error(&e);
    let trace_id = Uuid::new_v4();
    let mut fields = vec![
        ("error".to_string(), e.error.as_str().to_string()),
        (
            "error_description".to_string(),
            format!(
                "{e}\r\nTrace ID: {trace_id}\r\nTimestamp: {}",
                super::errors::entra_timestamp(OffsetDateTime::now_utc())
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
