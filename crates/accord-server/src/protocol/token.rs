//! `POST /{tenant}/oauth2/v2.0/token`: one handler per grant type behind one client
//! authentication step and one response builder.

use super::auth_codes::CodeGrant;
use super::errors::{Failure, JsonFailure};
use crate::client_certificates;
use crate::crypto::random_token;
use crate::service::consent::{self, DelegatedDecision};
use crate::service::tokens::ClientAuth;
use crate::service::tokens::{self, IdTokenInput, UserTokenInput};
use crate::service::{device_authorization, sign_in};
use crate::state::{AppState, SharedState};
use crate::tenancy::{TenantPath, TenantPathError};
use crate::web::client_address::ClientAddress;
use crate::web::forms::params;
use accord_core::claims_request::ClaimsRequest;
use accord_core::directory::{Application, Tenant, User};
use accord_core::ids::{AppId, TenantId, UserId};
use accord_core::scope::ScopeRequest;
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::{Aadsts, OAuthError};
use accord_store::{RefreshTokenRecord, RotateOutcome};
use axum::extract::{Path, RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

type Params = HashMap<String, String>;

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An authenticated (confidential) or identified (public) client.
pub struct Client {
    pub app: Application,
    pub auth: ClientAuth,
    /// The browser origin of a cross-origin (single-page app) request.
    pub origin: Option<String>,
    /// What the request's `claims` parameter asks: capabilities (`cp1`), a challenge's `nbf`.
    pub claims: ClaimsRequest,
}

impl Client {
    pub fn confidential(&self) -> bool {
        self.auth != ClientAuth::Public
    }
}

pub async fn token(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, JsonFailure> {
    let p = params(&body);
    reject_repeated(&body)?;
    // Abusive clients are turned away before any credential is checked.
    let client_id = p.get("client_id").map(String::as_str).unwrap_or_default();
    if let Err(wait) = state.throttles.admit_token_request(client_id, address, std::time::Instant::now()) {
        metrics::counter!("accord_token_requests_throttled_total").increment(1);
        return Err(Aadsts::throttled(wait).into());
    }
    let path = match TenantPath::resolve(&*state.store, &tenant).await {
        Ok(p) => p,
        Err(TenantPathError::NotFound(e)) => return Err(e.into()),
        Err(TenantPathError::Store(e)) => return Err(e.into()),
    };
    let grant_type = p.get("grant_type").ok_or_else(|| Aadsts::missing_parameter("grant_type"))?.clone();
    let mut client = authenticate_client(&state, &headers, &p, &tenant, &path).await?;
    // MSAL sends `claims` on every request; what Accord acts on: cp1 and a challenge's nbf.
    if let Some(text) = p.get("claims").filter(|c| !c.trim().is_empty()) {
        client.claims = ClaimsRequest::parse(text).map_err(|why| Aadsts::invalid_parameter("claims", &why))?;
    }
    // A browser redeems codes and refresh tokens; no other grant may come cross-origin.
    if let Some(origin) = &client.origin {
        if !matches!(grant_type.as_str(), "authorization_code" | "refresh_token") {
            return Err(Aadsts::cross_origin_not_spa(origin).into());
        }
    }
    let body = match grant_type.as_str() {
        "authorization_code" => authorization_code(&state, &path, &client, &p).await?,
        "refresh_token" => refresh_token(&state, &path, &client, &p).await?,
        "client_credentials" => client_credentials(&state, &path, &client, &p).await?,
        "password" => password(&state, &path, &client, &p, address).await?,
        // msal-node sends the short name, MSAL Python and azure-identity the URN; Entra takes both.
        DEVICE_CODE_GRANT | "device_code" => device_code(&state, &path, &client, &p).await?,
        JWT_BEARER_GRANT => on_behalf_of(&state, &path, &client, &p).await?,
        other => return Err(Aadsts::unsupported_grant_type(&crate::tenancy::sanitize(other)).into()),
    };
    metrics::counter!("accord_tokens_issued_total", "grant_type" => grant_type).increment(1);
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    Ok(res)
}

/// RFC 6749 §3.2: parameters must not be included more than once.
pub(super) fn reject_repeated(body: &[u8]) -> Result<(), Aadsts> {
    let mut seen = std::collections::HashSet::new();
    for (k, _) in form_urlencoded::parse(body) {
        if !seen.insert(k.clone()) {
            return Err(Aadsts::invalid_parameter(&crate::tenancy::sanitize(&k), "it was sent more than once"));
        }
    }
    Ok(())
}

/// `Authorization: Basic` with the id and secret form-urlencoded before base64 (RFC 6749 §2.3.1).
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Aadsts> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let bad = || {
        Aadsts::bad_client_authentication(
            OAuthError::InvalidClient,
            "The Authorization header is not valid HTTP Basic client authentication.",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic ")) else {
        return Ok(None);
    };
    let decoded = B64.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
    tenant_segment: &str,
    path: &TenantPath,
) -> Result<Client, Failure> {
    let basic = basic_credentials(headers)?;
    let body_secret = p.get("client_secret").filter(|s| !s.is_empty());
    let assertion = p.get("client_assertion").filter(|s| !s.is_empty());
    if usize::from(basic.is_some()) + usize::from(body_secret.is_some()) + usize::from(assertion.is_some()) > 1 {
        return Err(Aadsts::bad_client_authentication(
            OAuthError::InvalidRequest,
            "Use one client authentication method: HTTP Basic, client_secret or client_assertion.",
        )
        .into());
    }
    let client_id = match (&basic, p.get("client_id")) {
        (Some((id, _)), Some(body_id)) if id != body_id => {
            return Err(Aadsts::bad_client_authentication(
                OAuthError::InvalidRequest,
                "client_id in the body does not match the Authorization header.",
            )
            .into())
        }
        (Some((id, _)), _) => id.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => return Err(Aadsts::missing_parameter("client_id").into()),
    };
    let app_id =
        client_id.trim().parse::<AppId>().map_err(|_| Aadsts::unknown_client(&crate::tenancy::sanitize(&client_id)))?;
    let app =
        state.store.application_by_app_id(app_id).await?.ok_or_else(|| Aadsts::unknown_client(&app_id.to_string()))?;
    let secret = basic.map(|(_, s)| s).or_else(|| body_secret.cloned());
    // Entra refuses client credentials whenever an `Origin` is present: a browser request is a
    // public client's, whatever the app otherwise is (its grant must be a single-page app's).
    if let Some(origin) = cross_origin(headers) {
        if secret.is_some() || assertion.is_some() {
            return Err(Aadsts::credentials_in_cross_origin_request().into());
        }
        return Ok(Client { app, auth: ClientAuth::Public, origin: Some(origin), claims: ClaimsRequest::default() });
    }
    if app.public_client {
        if secret.is_some() || assertion.is_some() {
            return Err(Aadsts::public_client_sent_secret().into());
        }
        return Ok(Client { app, auth: ClientAuth::Public, origin: None, claims: ClaimsRequest::default() });
    }
    if let Some(assertion) = assertion {
        if p.get("client_assertion_type").map(String::as_str) != Some(client_certificates::JWT_BEARER) {
            return Err(Aadsts::invalid_parameter(
                "client_assertion_type",
                "expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .into());
        }
        // An assertion issued by someone other than the app is an external issuer's token:
        // workload identity federation.
        let issuer = crate::federation::unverified_issuer(assertion).unwrap_or_default();
        if !issuer.eq_ignore_ascii_case(&app.app_id.to_string()) {
            let now = accord_core::clock::now();
            crate::federation::verify_assertion(&state.issuer_keys, &app, assertion, now).await?;
            return Ok(Client { app, auth: ClientAuth::Federated, origin: None, claims: ClaimsRequest::default() });
        }
        // The assertion's audience: the URL the client posted to, or the tenant's token
        // endpoint as discovery names it.
        let base = &state.settings.public_url;
        let audiences = [
            format!("{base}/{tenant_segment}/oauth2/v2.0/token"),
            format!("{base}/{}/oauth2/v2.0/token", path.url_segment()),
        ];
        let now = accord_core::clock::now();
        // Only under test mode's replication lag are the credentials filtered (and copied).
        let lag = credential_lag(path, tenant_segment, &app);
        let lagging: Vec<_>;
        let seen = match &lag {
            None => &app.key_credentials,
            Some(_) => {
                lagging = app.key_credentials.iter().filter(|k| seen_by_replica(&lag, k.added_at)).cloned().collect();
                &lagging
            }
        };
        if let Err(e) = client_certificates::verify_assertion(assertion, &client_id, seen, &audiences, now) {
            if let Some(lag) = &lag {
                if client_certificates::verify_assertion(assertion, &client_id, &app.key_credentials, &audiences, now)
                    .is_ok()
                {
                    record_credential_lag(lag, tenant_segment, &app, "a certificate");
                }
            }
            return Err(e.into());
        }
        return Ok(Client { app, auth: ClientAuth::Certificate, origin: None, claims: ClaimsRequest::default() });
    }
    let Some(secret) = secret else {
        return Err(Aadsts::client_secret_required().into());
    };
    let now = accord_core::clock::now();
    let secrets = state.store.client_secrets(app.id).await?;
    let (matching, expired): (Vec<_>, Vec<_>) = secrets
        .iter()
        .filter(|s| state.keyring.secret_matches(&secret, &s.hash))
        .partition(|s| s.expires_at.is_none_or(|e| e > now));
    if matching.is_empty() && !expired.is_empty() {
        return Err(Aadsts::client_secret_expired(&app.app_id.to_string()).into());
    }
    let lag = if matching.is_empty() { None } else { credential_lag(path, tenant_segment, &app) };
    if !matching.iter().any(|s| seen_by_replica(&lag, Some(s.created_at))) {
        if let (Some(lag), false) = (&lag, matching.is_empty()) {
            record_credential_lag(lag, tenant_segment, &app, "a client secret");
        }
        return Err(Aadsts::invalid_client_secret(&app.app_id.to_string()).into());
    }
    Ok(Client { app, auth: ClientAuth::Secret, origin: None, claims: ClaimsRequest::default() })
}

/// Test mode's replication lag for the app's credentials, as the tenant of the request sees it.
fn credential_lag(path: &TenantPath, segment: &str, app: &Application) -> Option<crate::replication_lag::Lag> {
    if !crate::replication_lag::active() {
        return None;
    }
    let names = match path {
        TenantPath::Tenant(t) => std::iter::once(t.id.to_string()).chain(t.domains.iter().cloned()).collect(),
        TenantPath::MultiTenant { .. } => vec![segment.to_string()],
    };
    crate::replication_lag::lag_for(&names, app.app_id)
}

/// Whether a replica lagging by `lag` has seen a credential added at `added_at` (one added
/// before Accord kept the time, always).
fn seen_by_replica(lag: &Option<crate::replication_lag::Lag>, added_at: Option<OffsetDateTime>) -> bool {
    match (lag, added_at) {
        (Some(lag), Some(at)) => at <= lag.horizon,
        _ => true,
    }
}

fn record_credential_lag(lag: &crate::replication_lag::Lag, segment: &str, app: &Application, what: &str) {
    crate::replication_lag::record(
        lag,
        &crate::tenancy::sanitize(segment),
        app.app_id,
        None,
        "client authentication",
        format!("refused {what} added less than {} s ago (not yet replicated)", lag.seconds),
    );
}

/// The `Origin` of a cross-origin request; browsers send `null` from opaque origins, which
/// counts as cross-origin too.
fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?;
    // Shown in error texts: only the characters an origin has, bounded.
    let shown = String::from_utf8_lossy(origin.as_bytes())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":/.-_[]".contains(*c))
        .take(200)
        .collect();
    Some(shown)
}

/// Single-page-app grants are redeemed cross-origin only, and only they may be.
fn check_spa_redemption(issued_to_spa: bool, client: &Client) -> Result<(), Aadsts> {
    match (issued_to_spa, &client.origin) {
        (true, None) => Err(Aadsts::spa_redemption_not_cross_origin()),
        (false, Some(origin)) => Err(Aadsts::cross_origin_not_spa(origin)),
        _ => Ok(()),
    }
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, Aadsts> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| Aadsts::missing_parameter(name))
}

async fn tenant_of(state: &AppState, id: TenantId) -> Result<Tenant, Failure> {
    state.store.tenant(id).await?.ok_or_else(|| Failure::Internal(format!("tenant {id} vanished")))
}

async fn user_of(state: &AppState, tenant_id: TenantId, id: UserId) -> Result<User, Failure> {
    match state.store.user(tenant_id, id).await? {
        Some(u) if u.enabled => Ok(u),
        Some(_) => Err(Aadsts::account_disabled().into()),
        None => Err(Aadsts::user_not_found().into()),
    }
}

async fn authorization_code(
    state: &AppState,
    path: &TenantPath,
    client: &Client,
    p: &Params,
) -> Result<Value, Failure> {
    let code = required(p, "code")?;
    let redirect_uri = required(p, "redirect_uri")?;
    let Some(record) = CodeGrant::open(&state.keyring, code) else {
        return Err(Aadsts::code_invalid().into());
    };
    // The marker outlives the code by a day, so a replay is told apart from a stale code.
    let marker_expires = record.expires_at + Duration::days(1);
    if !state.store.consume_once(&record.marker(&state.keyring), marker_expires).await? {
        // A replayed code may be stolen: revoke what the first redemption produced.
        state.store.revoke_refresh_family(record.family_id).await?;
        tracing::warn!(client = %record.client_app_id, "authorization code replayed; token family revoked");
        return Err(Aadsts::code_already_redeemed().into());
    }
    if record.client_app_id != client.app.app_id {
        return Err(Aadsts::code_invalid().into());
    }
    let spa = client.app.is_spa_redirect_uri(&record.redirect_uri);
    check_spa_redemption(spa, client)?;
    if record.expires_at <= accord_core::clock::now() {
        return Err(Aadsts::refresh_token_expired().into());
    }
    if path.tenant().is_some_and(|t| t.id != record.tenant_id) {
        return Err(Aadsts::code_wrong_tenant().into());
    }
    if record.redirect_uri != redirect_uri {
        return Err(Aadsts::redirect_uri_mismatch_at_redemption().into());
    }
    if let Some(challenge) = &record.code_challenge {
        let verifier = required(p, "code_verifier")?;
        let derived = match record.code_challenge_method.as_deref() {
            Some("S256") => B64URL.encode(Sha256::digest(verifier.as_bytes())),
            _ => verifier.to_string(),
        };
        if derived.len() != challenge.len() || !constant_time_eq(derived.as_bytes(), challenge.as_bytes()) {
            return Err(Aadsts::pkce_failed().into());
        }
    } else if p.contains_key("code_verifier") {
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade attempt.
        return Err(Aadsts::pkce_not_requested().into());
    }
    let tenant = tenant_of(state, record.tenant_id).await?;
    let user = user_of(state, tenant.id, record.user_id).await?;
    if user.sign_ins_valid_from.is_some_and(|ended| record.issued_at < ended) {
        // The user's sign-ins were ended (revoked, password reset) after the code was issued.
        return Err(Aadsts::code_invalid().into());
    }
    let scope = p.get("scope").filter(|s| !s.trim().is_empty()).unwrap_or(&record.scope);
    let request = ScopeRequest::parse(scope)?;
    let decision = consent::delegated_access(&*state.store, &tenant, &client.app, &user, &request).await?;
    let refresh = Refresh::Start { family_id: record.family_id, scope: record.scope.clone(), spa };
    user_token_response(state, client, &tenant, &user, &decision, record.nonce.as_deref(), record.auth_time, refresh)
        .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn refresh_token(state: &AppState, path: &TenantPath, client: &Client, p: &Params) -> Result<Value, Failure> {
    let presented = required(p, "refresh_token")?;
    let hash = state.keyring.secret_hash(presented);
    let Some(record) = state.store.refresh_token(&hash).await? else {
        return Err(Aadsts::refresh_token_invalid().into());
    };
    if record.client_app_id != client.app.app_id {
        return Err(Aadsts::refresh_token_client_mismatch().into());
    }
    check_spa_redemption(record.spa, client)?;
    if record.expires_at <= accord_core::clock::now() {
        if record.spa {
            let issued = record.expires_at - SPA_REFRESH_LIFETIME;
            let issued = issued.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            return Err(Aadsts::spa_refresh_token_expired(&issued).into());
        }
        return Err(Aadsts::refresh_token_expired().into());
    }
    if path.tenant().is_some_and(|t| t.id != record.tenant_id) {
        return Err(Aadsts::code_wrong_tenant().into());
    }
    let tenant = tenant_of(state, record.tenant_id).await?;
    // A disabled account is refused as such (AADSTS50057), as Entra does, before the family's
    // revocation (disabling an account also ends its sign-ins) is reported.
    let user = user_of(state, tenant.id, record.user_id).await?;
    if record.revoked {
        return Err(Aadsts::refresh_token_revoked().into());
    }
    // Consent is checked again on every refresh, so revocation takes effect.
    let scope = p.get("scope").filter(|s| !s.trim().is_empty()).unwrap_or(&record.scope);
    let request = ScopeRequest::parse(scope)?;
    let decision =
        match consent::refresh_access(&*state.store, &tenant, &client.app, &user, &request, &record.scope).await {
            Ok(d) => d,
            Err(refusal) => {
                if refusal.revoke_family {
                    state.store.revoke_refresh_family(record.family_id).await?;
                }
                return Err(refusal.error.into());
            }
        };
    let auth_time = record.auth_time;
    let refresh = Refresh::Rotate { previous: record };
    user_token_response(state, client, &tenant, &user, &decision, None, auth_time, refresh).await
}

async fn client_credentials(
    state: &AppState,
    path: &TenantPath,
    client: &Client,
    p: &Params,
) -> Result<Value, Failure> {
    let Some(tenant) = path.tenant() else {
        return Err(Aadsts::not_allowed_on_common("client_credentials").into());
    };
    if !client.confidential() {
        return Err(Aadsts::public_client_credentials().into());
    }
    let request = ScopeRequest::parse(required(p, "scope")?)?;
    let resource_req = match (request.single_resource()?, request.oidc.values().is_empty()) {
        (Some(r), true) if r.default => r,
        _ => return Err(Aadsts::client_credentials_scope().into()),
    };
    let access = consent::app_only_access(&*state.store, tenant, &client.app, &resource_req.resource).await?;
    let access_token = tokens::app_access_token(
        state,
        tenant.id,
        &client.app,
        access.client_sp_id,
        &access.resource.app,
        &access.roles,
        client.auth,
    );
    let lifetime = state.settings.access_token_seconds;
    Ok(
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}),
    )
}

async fn password(
    state: &AppState,
    path: &TenantPath,
    client: &Client,
    p: &Params,
    address: std::net::IpAddr,
) -> Result<Value, Failure> {
    if !state.settings.allow_ropc {
        return Err(Aadsts::ropc_disabled().into());
    }
    let username = required(p, "username")?;
    let password = required(p, "password")?;
    let request = ScopeRequest::parse(required(p, "scope")?)?;
    // No browser: the attempt's origin is its address.
    let origin = sign_in::SignInOrigin::address(address);
    let tenant = sign_in::home_tenant(state, path, username, &origin).await?;
    let user = sign_in::authenticate(state, &tenant, username, password, &origin).await?;
    let decision = consent::delegated_access(&*state.store, &tenant, &client.app, &user, &request).await?;
    let scope = p.get("scope").cloned().unwrap_or_default();
    let refresh = Refresh::Start { family_id: Uuid::new_v4(), scope, spa: false };
    user_token_response(state, client, &tenant, &user, &decision, None, accord_core::clock::now(), refresh).await
}

/// A single-page app's refresh tokens end this long after sign-in, however often they rotate
/// (Entra's fixed SPA lifetime).
const SPA_REFRESH_LIFETIME: Duration = Duration::hours(24);

/// The device's poll (RFC 8628 §3.4): pending, declined, expired, or — once — its tokens. The
/// consent engine is asked again at redemption, as for a code.
async fn device_code(state: &AppState, path: &TenantPath, client: &Client, p: &Params) -> Result<Value, Failure> {
    let device_code = required(p, "device_code")?;
    let now = accord_core::clock::now();
    let poll = device_authorization::poll(&*state.store, &state.keyring, &client.app, device_code, now).await?;
    let (record, tenant_id, user_id, auth_time) = match poll {
        device_authorization::Poll::Refused(e) => return Err(e.into()),
        device_authorization::Poll::Approved { record, tenant_id, user_id, auth_time } => {
            (record, tenant_id, user_id, auth_time)
        }
    };
    if path.tenant().is_some_and(|t| t.id != tenant_id) {
        return Err(Aadsts::code_wrong_tenant().into());
    }
    let tenant = tenant_of(state, tenant_id).await?;
    let user = user_of(state, tenant.id, user_id).await?;
    let request = ScopeRequest::parse(&record.scope)?;
    let decision = consent::delegated_access(&*state.store, &tenant, &client.app, &user, &request).await?;
    let refresh = Refresh::Start { family_id: record.family_id, scope: record.scope.clone(), spa: false };
    user_token_response(state, client, &tenant, &user, &decision, None, auth_time, refresh).await
}

/// On-behalf-of: an API (a confidential client) exchanges the access token a user's client sent
/// it for a token to call another API as that user. The assertion must be a user's token of this
/// platform, unexpired, issued for this very API; the downstream scopes are granted only where
/// the API itself holds consent in the user's tenant (the consent engine decides, assignment and
/// policy included), else AADSTS65001 `consent_required` for the API to pass back to its client.
async fn on_behalf_of(state: &AppState, path: &TenantPath, client: &Client, p: &Params) -> Result<Value, Failure> {
    if !client.confidential() {
        return Err(Aadsts::client_secret_required().into());
    }
    if p.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return Err(Aadsts::invalid_parameter("requested_token_use", "expected on_behalf_of").into());
    }
    let assertion = required(p, "assertion")?;
    let claims = super::bearer::validate_access_token(state, assertion.trim()).map_err(|e| match e {
        super::bearer::BearerError::Expired => Aadsts::obo_assertion_expired(),
        other => Aadsts::obo_assertion_invalid(other.message()),
    })?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    if text("idtyp") == "app" || claims.get("scp").is_none() {
        return Err(
            Aadsts::obo_assertion_invalid("the assertion is an app-only token; on-behalf-of needs a user's").into()
        );
    }
    let aud = text("aud");
    if !client.app.is_named_by(&aud) {
        let app_id = client.app.app_id.to_string();
        return Err(
            Aadsts::obo_wrong_audience(&crate::tenancy::sanitize(&aud), &app_id, &client.app.display_name).into()
        );
    }
    let tenant_id: TenantId = text("tid").parse().map_err(|_| Aadsts::obo_assertion_invalid("no tenant"))?;
    if path.tenant().is_some_and(|t| t.id != tenant_id) {
        return Err(Aadsts::code_wrong_tenant().into());
    }
    let user_id: UserId = text("oid").parse().map_err(|_| Aadsts::obo_assertion_invalid("no user"))?;
    let tenant = tenant_of(state, tenant_id).await?;
    let user = user_of(state, tenant.id, user_id).await?;
    let scope = required(p, "scope")?;
    let request = ScopeRequest::parse(scope)?;
    let decision = consent::delegated_access(&*state.store, &tenant, &client.app, &user, &request).await?;
    let auth_time = claims
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(accord_core::clock::now);
    let refresh = Refresh::Start { family_id: Uuid::new_v4(), scope: scope.to_string(), spa: false };
    user_token_response(state, client, &tenant, &user, &decision, None, auth_time, refresh).await
}

enum Refresh {
    /// A new family (code redemption, ROPC); `spa` for a single-page app's code.
    Start { family_id: Uuid, scope: String, spa: bool },
    /// Successor of a presented refresh token.
    Rotate { previous: RefreshTokenRecord },
}

#[allow(clippy::too_many_arguments)]
async fn user_token_response(
    state: &AppState,
    client: &Client,
    tenant: &Tenant,
    user: &User,
    decision: &DelegatedDecision,
    nonce: Option<&str>,
    auth_time: OffsetDateTime,
    refresh: Refresh,
) -> Result<Value, Failure> {
    // A claims challenge wants a sign-in newer than the revocation it answers.
    if client.claims.not_before.is_some_and(|nbf| auth_time.unix_timestamp() < nbf) {
        return Err(Aadsts::claims_challenge_needs_sign_in().into());
    }
    let continuous_access = tokens::continuous_access(&decision.resource, client.claims.cp1);
    let roles = state.store.user_roles(tenant.id, user.id).await?;
    let resource_groups = tokens::groups_claim(&*state.store, tenant.id, user, &decision.resource).await?;
    let access_token = tokens::user_access_token(
        state,
        &UserTokenInput {
            tenant_id: tenant.id,
            client: &client.app,
            resource: &decision.resource,
            app_roles: &decision.roles,
            user,
            roles: &roles,
            scopes: &decision.scopes,
            client_auth: client.auth,
            groups: &resource_groups,
            continuous_access,
        },
    );
    let lifetime = tokens::access_token_lifetime(state, continuous_access);
    let mut body = Map::new();
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("scope".into(), json!(response_scope(decision)));
    body.insert("expires_in".into(), json!(lifetime));
    body.insert("ext_expires_in".into(), json!(lifetime));
    body.insert("access_token".into(), json!(access_token));
    let wants_refresh = match &refresh {
        Refresh::Start { .. } => decision.oidc.offline_access,
        Refresh::Rotate { .. } => true,
    };
    if wants_refresh {
        let token = issue_refresh_token(state, client, tenant, user, auth_time, refresh).await?;
        body.insert("refresh_token".into(), json!(token));
    }
    if decision.oidc.openid {
        let client_groups = tokens::groups_claim(&*state.store, tenant.id, user, &client.app).await?;
        let id_token = tokens::id_token(
            state,
            &IdTokenInput {
                tenant_id: tenant.id,
                client: &client.app,
                user,
                oidc: decision.oidc,
                nonce,
                auth_time,
                app_roles: &decision.roles,
                roles: &roles,
                groups: &client_groups,
            },
        );
        body.insert("id_token".into(), json!(id_token));
    }
    body.insert("client_info".into(), json!(tokens::client_info(user)));
    Ok(Value::Object(body))
}

/// Graph permissions are echoed bare (as Entra does, and as MSAL's cache expects); other
/// APIs' permissions carry their resource prefix.
fn response_scope(decision: &DelegatedDecision) -> String {
    let app = &decision.resource;
    let prefix = if app.app_id == GRAPH_APP_ID {
        None
    } else {
        Some(app.identifier_uri.clone().unwrap_or_else(|| app.app_id.to_string()))
    };
    let mut out: Vec<String> = decision
        .scopes
        .iter()
        .map(|s| match &prefix {
            Some(p) => format!("{p}/{s}"),
            None => s.clone(),
        })
        .collect();
    for v in decision.oidc.values() {
        if !out.iter().any(|s| s.eq_ignore_ascii_case(v)) {
            out.push(v.to_string());
        }
    }
    out.join(" ")
}

/// When a new refresh token ends: a single-page app's family 24 hours after it began, however
/// often it rotates (`family_expiry` is its predecessor's); any other token `days` from now.
fn refresh_expiry(spa: bool, family_expiry: Option<OffsetDateTime>, now: OffsetDateTime, days: i64) -> OffsetDateTime {
    match (spa, family_expiry) {
        (true, Some(fixed)) => fixed,
        (true, None) => now + SPA_REFRESH_LIFETIME,
        (false, _) => now + Duration::days(days),
    }
}

/// A new family starts with the sign-in's `auth_time` (not the redemption's): refreshed ID
/// tokens report when the user authenticated, and a claims challenge's `nbf` is compared with
/// that.
async fn issue_refresh_token(
    state: &AppState,
    client: &Client,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
    refresh: Refresh,
) -> Result<String, Failure> {
    let token = random_token();
    let now = accord_core::clock::now();
    let days = state.settings.refresh_token_days;
    let hash = state.keyring.secret_hash(&token);
    match refresh {
        Refresh::Start { family_id, scope, spa } => {
            let expires_at = refresh_expiry(spa, None, now, days);
            let record = RefreshTokenRecord {
                token_hash: hash,
                family_id,
                tenant_id: tenant.id,
                client_app_id: client.app.app_id,
                user_id: user.id,
                scope,
                auth_time,
                created_at: now,
                expires_at,
                used_at: None,
                revoked: false,
                spa,
            };
            state.store.put_refresh_token(&record).await?;
        }
        Refresh::Rotate { previous } => {
            let expires_at = refresh_expiry(previous.spa, Some(previous.expires_at), now, days);
            let next = RefreshTokenRecord {
                token_hash: hash,
                created_at: now,
                expires_at,
                used_at: None,
                revoked: false,
                ..previous.clone()
            };
            match state.store.rotate_refresh_token(&previous.token_hash, &next, now).await? {
                RotateOutcome::Rotated => {}
                RotateOutcome::ReuseDetected => {
                    tracing::warn!(client = %client.app.app_id, user = %user.id, "refresh token reuse detected; family revoked");
                    return Err(Aadsts::refresh_token_revoked().into());
                }
                RotateOutcome::Revoked => return Err(Aadsts::refresh_token_revoked().into()),
                RotateOutcome::NotFound => return Err(Aadsts::refresh_token_invalid().into()),
            }
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_url_decoded_after_base64() {
        let enc = B64.encode("my%3Aid:s%2Bcret%20x");
        let (id, secret) = basic_credentials(&basic(&format!("Basic {enc}"))).unwrap().unwrap();
        assert_eq!(id, "my:id");
        assert_eq!(secret, "s+cret x");
        assert!(basic_credentials(&basic("Bearer abc")).unwrap().is_none());
        assert_eq!(basic_credentials(&basic("Basic !!!")).unwrap_err().error, OAuthError::InvalidClient);
        let no_colon = B64.encode("justid");
        assert!(basic_credentials(&basic(&format!("Basic {no_colon}"))).is_err());
    }

    #[test]
    fn single_page_app_refresh_tokens_never_outlive_their_first_day() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let first = refresh_expiry(true, None, t0, 90);
        assert_eq!(first, t0 + Duration::hours(24));
        // Rotated an hour later, and again a day later: the family's end stays.
        assert_eq!(refresh_expiry(true, Some(first), t0 + Duration::hours(1), 90), first);
        assert_eq!(refresh_expiry(true, Some(first), t0 + Duration::hours(23), 90), first);
        // Other clients' tokens slide with each rotation.
        assert_eq!(refresh_expiry(false, None, t0, 90), t0 + Duration::days(90));
        assert_eq!(
            refresh_expiry(false, Some(first), t0 + Duration::hours(1), 90),
            t0 + Duration::hours(1) + Duration::days(90)
        );
    }

    #[test]
    fn spa_grants_are_redeemed_cross_origin_only() {
        let app = accord_core::microsoft_graph::application();
        let client = |origin: Option<&str>| Client {
            app: app.clone(),
            auth: ClientAuth::Public,
            origin: origin.map(String::from),
            claims: ClaimsRequest::default(),
        };
        assert_eq!(check_spa_redemption(true, &client(None)).unwrap_err().code, 9002327);
        let e = check_spa_redemption(false, &client(Some("https://app.example"))).unwrap_err();
        assert_eq!(e.code, 9002326);
        assert!(e.message.contains("Request origin: 'https://app.example'"), "{e}");
        assert!(check_spa_redemption(true, &client(Some("https://app.example"))).is_ok());
        assert!(check_spa_redemption(false, &client(None)).is_ok());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(reject_repeated(b"grant_type=a&grant_type=b").is_err());
        assert!(reject_repeated(b"grant_type=a&scope=b").is_ok());
    }

    proptest! {
        #[test]
        fn basic_header_parsing_never_panics(s in ".{0,120}") {
            if let Ok(v) = HeaderValue::from_str(&format!("Basic {s}")) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, v);
                let _ = basic_credentials(&h);
            }
            let enc = B64.encode(s.as_bytes());
            let _ = basic_credentials(&basic(&format!("Basic {enc}")));
        }

        #[test]
        fn form_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = params(&bytes);
            let _ = reject_repeated(&bytes);
        }
    }
}
