//! After sign-in, the consent engine decides; this module turns its decision into pages and
//! their forms: the consent prompt (user and organisation), "approval required" with the
//! request form, "need admin approval", and the `/adminconsent` flow.
//!
//! Every form carries a sealed copy of what was shown (AEAD, bound to the signed-in user and
//! single use), so a submission can only accept what that user saw, once.

use super::authorization_request::{
    error_response, issue_code, redirect_error, refuse, reload_client, respond, sign_in_page, switch_account_url,
    validate_client, AuthorizeRequest, FlowKind,
};
use super::errors::{refusal_page, Failure, PageActions, PageFailure};
use crate::service::admin_consent_requests;
use crate::service::consent::{self, ConsentWorld, Grantee};
use crate::state::{AppState, SharedState};
use crate::web::cookies;
use crate::web::session::{csrf_cookie, current_session};
use crate::web::templates::Templates;
use accord_core::consent_engine::{Decision, PermissionKind, PermissionRef, Prompt};
use accord_core::directory::{Application, Tenant, User};
use accord_core::ids::{AppId, ServicePrincipalId, TenantId, UserId};
use accord_core::scope::ScopeRequest;
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::{Aadsts, OAuthError};
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CONSENT_PURPOSE: &str = "consent-form";
const FORM_MAX_AGE_SECONDS: i64 = 3600;
const MAX_REASON_LEN: usize = 500;

/// A permission as a form remembers it: (resource service principal, permission id,
/// application permission?).
type ShownKey = (ServicePrincipalId, Uuid, bool);
/// What a form showed for each API riding along with the client's consent, by its client id.
type ShownCompanions = Vec<(AppId, Vec<ShownKey>)>;

/// What a consent, approval or admin-consent form stands for; sealed into the form.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingDecision {
    flow: AuthorizeRequest,
    tenant_id: TenantId,
    user_id: UserId,
    auth_time: i64,
    /// (resource service principal, permission id, application?) of what the page listed.
    shown: Vec<(ServicePrincipalId, Uuid, bool)>,
    org_option: bool,
    org_required: bool,
    form_id: String,
    issued_at: i64,
    /// What was shown for APIs that ride along (knownClientApplications), by API client id.
    #[serde(default)]
    companions: ShownCompanions,
}

fn key(p: &PermissionRef) -> (ServicePrincipalId, Uuid, bool) {
    (p.resource_sp_id, p.id, p.kind == PermissionKind::Application)
}

pub(crate) async fn after_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    client: &Application,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
) -> Response {
    let scope = match ScopeRequest::parse(&req.scope) {
        Ok(s) => s,
        Err(e) => return refuse(state, req, client, e).await,
    };
    let world = match ConsentWorld::load(&*state.store, tenant, client, user, &scope).await {
        Ok(w) => w,
        Err(e) => return PageFailure(e.into()).into_response(),
    };
    match req.kind {
        FlowKind::Portal => crate::web::forms::found(&req.redirect_uri),
        FlowKind::Authorize | FlowKind::Device => {
            let prompt = req.prompt.as_deref().and_then(Prompt::parse).unwrap_or(Prompt::Default);
            let outcome = world.decide_sign_in(&scope, prompt);
            tracing::info!(tenant = %tenant.id, client = %client.app_id, user = %user.id, decision = outcome.decision.kind(), "consent decision");
            render_sign_in_decision(state, headers, req, &world, outcome.decision, auth_time).await
        }
        FlowKind::AdminConsent { v1 } => {
            let static_default = v1 || scope.resources.iter().any(|r| r.default);
            let outcome = world.decide_admin_consent(&scope, static_default);
            tracing::info!(tenant = %tenant.id, client = %client.app_id, user = %user.id, decision = outcome.decision.kind(), "admin consent decision");
            match outcome.decision {
                Decision::PromptAdminConsent { delegated, application } => {
                    let shown: Vec<PermissionRef> = delegated.iter().chain(&application).cloned().collect();
                    let mut pending = pending(req, &world, auth_time, &shown, true, true);
                    let (companions, keys) = match ride_along(state, req, &world, true, static_default).await {
                        Ok(v) => v,
                        Err(e) => return PageFailure(e).into_response(),
                    };
                    pending.companions = keys;
                    let ctx = context! {
                        delegated => views(&delegated), application => views(&application),
                        tenant_name => tenant.display_name, companions,
                    };
                    form_page(state, headers, "admin_consent.html", &world, pending, ctx, "adminconsent/decide").await
                }
                Decision::Refuse(e) | Decision::NotPermitted(e) => redirect_error(req, e),
                other => {
                    PageFailure(Failure::Internal(format!("admin consent produced {}", other.kind()))).into_response()
                }
            }
        }
    }
}

async fn render_sign_in_decision(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    world: &ConsentWorld,
    decision: Decision,
    auth_time: OffsetDateTime,
) -> Response {
    match decision {
        Decision::Issue { .. } => issue_code(state, req, &world.client, &world.tenant, &world.user, auth_time).await,
        Decision::PromptConsent { permissions, org_option, org_required } => {
            let mut pending = pending(req, world, auth_time, &permissions, org_option, org_required);
            let (companions, keys) = match ride_along(state, req, world, org_required, false).await {
                Ok(v) => v,
                Err(e) => return PageFailure(e).into_response(),
            };
            pending.companions = keys;
            let ctx = context! { permissions => views(&permissions), org_option, org_required, companions };
            form_page(state, headers, "consent.html", world, pending, ctx, "consent").await
        }
        Decision::ApprovalRequired { permissions, existing_request } => {
            let existing = match existing_request {
                Some(id) => state.store.consent_request(world.tenant.id, id).await.ok().flatten(),
                None => None,
            };
            // Told before asking again: the last answer, who gave it, when and why.
            let denied = match existing {
                Some(_) => None,
                None => admin_consent_requests::last_denial(
                    &*state.store,
                    world.tenant.id,
                    world.client.app_id,
                    world.user.id,
                )
                .await
                .ok()
                .flatten(),
            };
            let pending = pending(req, world, auth_time, &permissions, false, false);
            let ctx = context! {
                permissions => views(&permissions),
                existing => existing.map(|r| context! { created => day(r.created_at), expires => day(r.expires_at) }),
                denied => denied.map(|(r, reviewer)| context! {
                    created => day(r.created_at),
                    reviewed => r.reviewed_at.map(day),
                    reviewer => reviewer.map(|u| u.display_name).unwrap_or_else(|| "an administrator".into()),
                    reason => r.review_justification,
                }),
            };
            form_page(state, headers, "approval_required.html", world, pending, ctx, "consent/request").await
        }
        Decision::NeedAdminApproval { permissions } => {
            let refusal = Aadsts::admin_consent_required(&world.client.display_name);
            if req.kind == FlowKind::Device {
                // The device learns why at its next poll; the person sees the page below.
                if let Err(e) = crate::service::device_authorization::refuse(
                    &*state.store,
                    req.device_code_hash.as_deref().unwrap_or_default(),
                    &refusal,
                )
                .await
                {
                    return PageFailure(e.into()).into_response();
                }
            }
            let back = back_link(req, refusal);
            let html = Templates::render(
                "need_admin_approval.html",
                context! {
                    app => app_view(state, &world.client).await, user_upn => world.user.upn,
                    permissions => views(&permissions), back, switch_account => switch_account_url(req),
                },
            );
            (StatusCode::FORBIDDEN, Html(html)).into_response()
        }
        Decision::Refuse(e) => {
            // The app can act on these; the rest (not assigned, disabled, …) are for the person.
            let to_app = matches!(
                e.error,
                OAuthError::InteractionRequired
                    | OAuthError::LoginRequired
                    | OAuthError::ConsentRequired
                    | OAuthError::InvalidScope
            );
            if to_app || req.kind == FlowKind::Device {
                refuse(state, req, &world.client, e).await
            } else {
                // Not a dead end: another account may have access, and the app can be told.
                let mut to_app = e.clone();
                to_app.error = OAuthError::AccessDenied;
                let actions = PageActions {
                    app_name: Some(world.client.display_name.clone()),
                    switch_account: switch_account_url(req),
                    back: back_link(req, to_app),
                };
                refusal_page(&e, &actions)
            }
        }
        // Only admin consent asks what the signed-in user may grant for the organisation.
        other @ (Decision::PromptAdminConsent { .. } | Decision::NotPermitted(_)) => {
            PageFailure(Failure::Internal(format!("sign-in produced {}", other.kind()))).into_response()
        }
    }
}

fn pending(
    req: &AuthorizeRequest,
    world: &ConsentWorld,
    auth_time: OffsetDateTime,
    shown: &[PermissionRef],
    org_option: bool,
    org_required: bool,
) -> PendingDecision {
    PendingDecision {
        flow: req.clone(),
        tenant_id: world.tenant.id,
        user_id: world.user.id,
        auth_time: auth_time.unix_timestamp(),
        shown: shown.iter().map(key).collect(),
        org_option,
        org_required,
        form_id: crate::crypto::random_token(),
        issued_at: accord_core::clock::now().unix_timestamp(),
        companions: Vec::new(),
    }
}

/// The APIs this consent also consents to (knownClientApplications), for a `.default`
/// request: their permissions for the page, and their keys for the sealed form.
async fn ride_along(
    state: &AppState,
    req: &AuthorizeRequest,
    world: &ConsentWorld,
    org: bool,
    static_default: bool,
) -> Result<(Vec<minijinja::Value>, ShownCompanions), Failure> {
    let default =
        static_default || ScopeRequest::parse(&req.scope).is_ok_and(|s| s.resources.iter().any(|r| r.default));
    if !default {
        return Ok((Vec::new(), Vec::new()));
    }
    let found = consent::companions(&*state.store, &world.tenant, &world.client, &world.user, org).await?;
    let views_of =
        found.iter().map(|c| context! { name => c.api.display_name, permissions => views(&c.permissions) }).collect();
    let keys = found.iter().map(|c| (c.api.app_id, c.permissions.iter().map(key).collect())).collect();
    Ok((views_of, keys))
}

/// Grants what was shown for each API that rides along with the client's consent.
async fn grant_ride_along(
    state: &AppState,
    pending: &PendingDecision,
    world: &ConsentWorld,
    grantee: Grantee<'_>,
) -> Result<(), Failure> {
    if pending.companions.is_empty() {
        return Ok(());
    }
    let org = matches!(grantee, Grantee::Organisation { .. });
    for c in consent::companions(&*state.store, &world.tenant, &world.client, &world.user, org).await? {
        let Some((_, shown)) = pending.companions.iter().find(|(id, _)| *id == c.api.app_id) else { continue };
        let permissions: Vec<PermissionRef> = c.permissions.into_iter().filter(|p| shown.contains(&key(p))).collect();
        if !permissions.is_empty() {
            consent::grant(&*state.store, &world.tenant, &c.api, grantee, &permissions, Vec::new()).await?;
        }
    }
    Ok(())
}

/// Renders a page whose form posts the sealed decision back to `/{tenant}/{path}`.
async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    template: &str,
    world: &ConsentWorld,
    pending: PendingDecision,
    extra: minijinja::Value,
    path: &str,
) -> Response {
    let csrf_secret = csrf_cookie(state, headers);
    let form = state.keyring.seal_text(CONSENT_PURPOSE, &serde_json::to_vec(&pending).expect("serialises"));
    let ctx = context! {
        app => app_view(state, &world.client).await,
        user_upn => world.user.upn,
        action => format!("/{}/{path}", pending.flow.tenant_segment),
        form, csrf => state.keyring.csrf_token(&csrf_secret.0),
        ..extra
    };
    let mut res = Html(Templates::render(template, ctx)).into_response();
    if let Some(c) = csrf_secret.1 {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    res
}

#[derive(Serialize)]
struct PermissionView {
    display_name: String,
    description: String,
    value: String,
    resource: String,
    admin_only: bool,
}

fn views(permissions: &[PermissionRef]) -> Vec<PermissionView> {
    permissions
        .iter()
        .map(|p| PermissionView {
            display_name: p.display_name.clone(),
            description: p.description.clone(),
            value: p.value.clone(),
            resource: p.resource_display_name.clone(),
            admin_only: p.admin_consent_required,
        })
        .collect()
}

#[derive(Serialize)]
struct AppView {
    name: String,
    verified: bool,
    home_tenant: String,
}

async fn app_view(state: &AppState, app: &Application) -> AppView {
    let home = if app.app_id == GRAPH_APP_ID {
        "Microsoft".to_string()
    } else {
        match state.store.tenant(app.home_tenant_id).await {
            Ok(Some(t)) => t.display_name,
            _ => "another organisation".to_string(),
        }
    };
    AppView { name: app.display_name.clone(), verified: app.verified_publisher, home_tenant: home }
}

fn day(t: OffsetDateTime) -> String {
    format!("{} {} {}", t.day(), t.month(), t.year())
}

/// A link that returns to the app with an error, for pages that end the flow (a device
/// sign-in has nowhere to return to).
fn back_link(req: &AuthorizeRequest, e: Aadsts) -> Option<String> {
    if req.kind == FlowKind::Device {
        return None;
    }
    let res = error_response(req, e);
    res.headers().get(axum::http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Opens and checks a submitted form: CSRF, seal, age, the signed-in user, single use.
async fn open_form(
    state: &AppState,
    headers: &HeaderMap,
    tenant_segment: &str,
    fields: &std::collections::HashMap<String, String>,
) -> Result<PendingDecision, Failure> {
    let csrf_ok = cookies::get(headers, cookies::CSRF, state.settings.secure_cookies)
        .zip(fields.get("csrf"))
        .is_some_and(|(secret, token)| state.keyring.csrf_valid(&secret, token));
    if !csrf_ok {
        return Err(Aadsts::form_expired("The form did not come from this site or has expired.").into());
    }
    let pending: PendingDecision = fields
        .get("form")
        .and_then(|f| state.keyring.open_text(CONSENT_PURPOSE, f))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Aadsts::form_expired("The form is not valid."))?;
    let age = accord_core::clock::now().unix_timestamp() - pending.issued_at;
    if !pending.flow.tenant_segment.eq_ignore_ascii_case(tenant_segment) || !(0..FORM_MAX_AGE_SECONDS).contains(&age) {
        return Err(Aadsts::form_expired("The form has expired.").into());
    }
    match current_session(state, headers).await? {
        Some((_, user)) if user.id == pending.user_id && user.tenant_id == pending.tenant_id => {}
        _ => return Err(Aadsts::form_expired("You are no longer signed in as the user this form was shown to.").into()),
    }
    let once = state.keyring.secret_hash(&format!("form:{}", pending.form_id));
    let expires = accord_core::clock::now() + Duration::seconds(FORM_MAX_AGE_SECONDS);
    if !state.store.consume_once(&once, expires).await? {
        return Err(Aadsts::form_expired("This form was already submitted.").into());
    }
    Ok(pending)
}

/// Reloads what a submitted form needs, and decides afresh: nothing is granted on the
/// strength of a stale page.
async fn reload(state: &AppState, pending: &PendingDecision) -> Result<(ConsentWorld, ScopeRequest), Failure> {
    let (_, client) = reload_client(state, &pending.flow).await?;
    let tenant =
        state.store.tenant(pending.tenant_id).await?.ok_or_else(|| Failure::Internal("tenant vanished".into()))?;
    let user = state
        .store
        .user(pending.tenant_id, pending.user_id)
        .await?
        .filter(|u| u.enabled)
        .ok_or_else(Aadsts::account_disabled)?;
    let scope = ScopeRequest::parse(&pending.flow.scope)?;
    let world = ConsentWorld::load(&*state.store, &tenant, &client, &user, &scope).await?;
    Ok((world, scope))
}

fn auth_time(pending: &PendingDecision) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(pending.auth_time).unwrap_or_else(|_| accord_core::clock::now())
}

/// `POST /{tenant}/consent`: Accept or Cancel on the consent prompt.
pub async fn consent_post(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let fields = crate::web::forms::params(&body);
    let pending = match open_form(&state, &headers, &tenant, &fields).await {
        Ok(p) => p,
        Err(e) => return PageFailure(e).into_response(),
    };
    if fields.get("decision").map(String::as_str) != Some("accept") {
        return match reload_client(&state, &pending.flow).await {
            Ok((_, client)) => refuse(&state, &pending.flow, &client, Aadsts::user_declined_consent()).await,
            Err(e) => PageFailure(e).into_response(),
        };
    }
    match accept_consent(&state, &headers, &pending, fields.get("org").is_some_and(|v| v == "on")).await {
        Ok(res) => res,
        Err(e) => PageFailure(e).into_response(),
    }
}

async fn accept_consent(
    state: &AppState,
    headers: &HeaderMap,
    pending: &PendingDecision,
    org: bool,
) -> Result<Response, Failure> {
    let (world, scope) = reload(state, pending).await?;
    let prompt = pending.flow.prompt.as_deref().and_then(Prompt::parse).unwrap_or(Prompt::Default);
    // Decide as the page was decided (prompt=consent re-prompts for what is already granted).
    let outcome = world.decide_sign_in(&scope, prompt);
    let Decision::PromptConsent { permissions, org_option, org_required } = outcome.decision else {
        // Something changed since the page was shown: show what applies now.
        return Ok(render_sign_in_decision(
            state,
            headers,
            &pending.flow,
            &world,
            outcome.decision,
            auth_time(pending),
        )
        .await);
    };
    if permissions.iter().any(|p| !pending.shown.contains(&key(p))) {
        return Err(Aadsts::form_expired("The permissions requested changed since the page was shown.").into());
    }
    let for_org = org && org_option;
    if org_required && !for_org {
        return Err(Aadsts::admin_consent_required(&world.client.display_name).into());
    }
    let grantee =
        if for_org { Grantee::Organisation { admin: &world.user, until: None } } else { Grantee::User(&world.user) };
    consent::grant(&*state.store, &world.tenant, &world.client, grantee, &permissions, Vec::new()).await?;
    grant_ride_along(state, pending, &world, grantee).await?;
    Ok(issue_code(state, &pending.flow, &world.client, &world.tenant, &world.user, auth_time(pending)).await)
}

/// `POST /{tenant}/consent/request`: "Request approval" with a justification.
pub async fn approval_request_post(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let fields = crate::web::forms::params(&body);
    let pending = match open_form(&state, &headers, &tenant, &fields).await {
        Ok(p) => p,
        Err(e) => return PageFailure(e).into_response(),
    };
    let reason = fields.get("reason").map(|r| r.trim().to_string()).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_LEN {
        return PageFailure(Failure::Protocol(Aadsts::invalid_parameter(
            "reason",
            &format!("a justification of 1 to {MAX_REASON_LEN} characters is required"),
        )))
        .into_response();
    }
    let result = async {
        let (world, scope) = reload(&state, &pending).await?;
        let outcome = world.decide_sign_in(&scope, Prompt::Default);
        let Decision::ApprovalRequired { permissions, existing_request: None } = outcome.decision else {
            return Ok(render_sign_in_decision(
                &state,
                &headers,
                &pending.flow,
                &world,
                outcome.decision,
                auth_time(&pending),
            )
            .await);
        };
        let request = admin_consent_requests::file(
            &*state.store,
            &world.tenant,
            &world.client,
            &world.user,
            &permissions,
            &reason,
        )
        .await?;
        let device = pending.flow.kind == FlowKind::Device;
        if device {
            // The device stops polling: the sign-in waits on an administrator now.
            let refusal = Aadsts::admin_consent_required(&world.client.display_name);
            let device_code = pending.flow.device_code_hash.as_deref().unwrap_or_default();
            crate::service::device_authorization::refuse(&*state.store, device_code, &refusal).await?;
        }
        let back = back_link(&pending.flow, Aadsts::admin_consent_required(&world.client.display_name));
        let html = Templates::render(
            "request_sent.html",
            context! { app => app_view(&state, &world.client).await, expires => day(request.expires_at), device, back },
        );
        Ok::<_, Failure>(Html(html).into_response())
    }
    .await;
    result.unwrap_or_else(|e| PageFailure(e).into_response())
}

/// `GET /{tenant}/v2.0/adminconsent`: an administrator consents for the organisation to the
/// requested scopes (`/.default`: the static list, application permissions included).
pub async fn admin_consent_v2(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    admin_consent(&state, &tenant, &headers, q, false).await
}

/// `GET /{tenant}/adminconsent`: v1, consents to every statically listed permission.
pub async fn admin_consent_v1(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    admin_consent(&state, &tenant, &headers, q, true).await
}

async fn admin_consent(state: &AppState, tenant: &str, headers: &HeaderMap, q: Option<String>, v1: bool) -> Response {
    if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("consumers") {
        return PageFailure(Failure::Protocol(Aadsts::admin_consent_not_on_common())).into_response();
    }
    let p = crate::web::forms::params(q.unwrap_or_default().as_bytes());
    let (path, client, mut req) = match validate_client(state, tenant, &p).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    req.kind = FlowKind::AdminConsent { v1 };
    req.response_mode = super::authorization_request::ResponseMode::Query;
    req.scope = if v1 { String::new() } else { p.get("scope").cloned().unwrap_or_default() };
    if !v1 {
        if req.scope.trim().is_empty() {
            return redirect_error(&req, Aadsts::missing_parameter("scope"));
        }
        if let Err(e) = ScopeRequest::parse(&req.scope) {
            return redirect_error(&req, e);
        }
    }
    // Real Entra ignores prompt and login_hint here; so do we, and reuse an SSO session.
    match current_session(state, headers).await {
        Ok(Some((session, user))) if path.tenant().is_none_or(|t| t.id == user.tenant_id) => {
            match state.store.tenant(user.tenant_id).await {
                Ok(Some(home)) => after_sign_in(state, headers, &req, &client, &home, &user, session.auth_time).await,
                Ok(None) => PageFailure(Failure::Internal("tenant vanished".into())).into_response(),
                Err(e) => PageFailure(e.into()).into_response(),
            }
        }
        Ok(_) => sign_in_page(state, headers, &path, &client, &req, None, StatusCode::OK),
        Err(e) => PageFailure(e.into()).into_response(),
    }
}

/// `POST /{tenant}/adminconsent/decide`: Accept or Cancel on the admin-consent page.
pub async fn admin_consent_decide(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let fields = crate::web::forms::params(&body);
    let pending = match open_form(&state, &headers, &tenant, &fields).await {
        Ok(p) => p,
        Err(e) => return PageFailure(e).into_response(),
    };
    if fields.get("decision").map(String::as_str) != Some("accept") {
        return redirect_error(&pending.flow, Aadsts::user_declined_consent());
    }
    let result = async {
        let (world, scope) = reload(&state, &pending).await?;
        let static_default = matches!(pending.flow.kind, FlowKind::AdminConsent { v1: true })
            || scope.resources.iter().any(|r| r.default);
        let outcome = world.decide_admin_consent(&scope, static_default);
        let (delegated, application) = match outcome.decision {
            Decision::PromptAdminConsent { delegated, application } => (delegated, application),
            Decision::Refuse(e) | Decision::NotPermitted(e) => return Ok(redirect_error(&pending.flow, e)),
            other => return Err(Failure::Internal(format!("admin consent produced {}", other.kind()))),
        };
        let all: Vec<PermissionRef> = delegated.iter().chain(&application).cloned().collect();
        if all.iter().any(|p| !pending.shown.contains(&key(p))) {
            return Err(Aadsts::form_expired("The permissions requested changed since the page was shown.").into());
        }
        // Consenting for the organisation completes any pending requests for this app.
        admin_consent_requests::grant_for_organisation(
            &*state.store,
            &world.tenant,
            &world.client,
            &world.user,
            &all,
            None,
            Vec::new(),
        )
        .await?;
        grant_ride_along(&state, &pending, &world, Grantee::Organisation { admin: &world.user, until: None }).await?;
        let scope_text = all
            .iter()
            .filter(|p| p.kind == PermissionKind::Delegated)
            .map(PermissionRef::qualified_scope)
            .collect::<Vec<_>>()
            .join(" ");
        let mut out = vec![
            ("admin_consent".to_string(), "True".to_string()),
            ("tenant".to_string(), world.tenant.id.to_string()),
            ("scope".to_string(), scope_text),
        ];
        if let Some(s) = &pending.flow.state {
            out.push(("state".into(), s.clone()));
        }
        Ok::<_, Failure>(respond(&pending.flow, out))
    }
    .await;
    result.unwrap_or_else(|e| PageFailure(e).into_response())
}
