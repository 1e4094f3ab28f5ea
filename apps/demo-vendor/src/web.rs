//! Pages and their handlers. Every page works without JavaScript: links for navigation and
//! the sign-in redirects, forms with a CSRF token for changes.

use crate::app::{scopes, SIGN_IN_SCOPES};
use crate::db::{now, ConsentMode, Db, Instance};
use crate::session::{same, PendingEntry, Session, SessionUser};
use crate::sync;
use accord_connect::{ConnectClient, ConnectError, PermissionKind, ScopeChoice, TenantHint};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use minijinja::{context, Environment, Value};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The Microsoft Entra admin center's Enterprise applications blade.
const ENTRA_APPS: &str = "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/StartboardApplicationsMenuBlade";

/// What pages need to know besides the database and the kit.
pub struct Settings {
    pub public_url: String,
    pub accord_url: String,
    pub client_id: String,
    pub support_password: String,
    pub sync_days: u32,
    /// The customer's admin center: its name, "All applications" filtered to this app, and the
    /// admin-consent requests.
    pub admin_center_name: String,
    pub enterprise_app_url: String,
    pub requests_url: String,
    /// Where Graph sends change notifications (`{base}/graph/notifications`); `None`: no push,
    /// polling only.
    pub notification_base: Option<String>,
    /// The signing secret of Accord's consent webhook (`whsec_…`); `None`: no such endpoint.
    pub consent_webhook_secret: Option<String>,
}

impl Settings {
    pub fn new(
        public_url: &str,
        accord_url: &str,
        client_id: &str,
        support_password: &str,
        microsoft_cloud: bool,
        sync_days: u32,
    ) -> Settings {
        let accord = accord_url.trim_end_matches('/');
        let (admin_center_name, enterprise_app_url, requests_url) = if microsoft_cloud {
            (
                "Microsoft Entra admin center".to_string(),
                format!("{ENTRA_APPS}/~/AppAppsPreview/menuId~/null?appId={client_id}"),
                format!("{ENTRA_APPS}/~/AccessRequests"),
            )
        } else {
            (
                "Accord admin center".to_string(),
                format!("{accord}/admin/enterprise-apps?q={client_id}"),
                format!("{accord}/admin/requests"),
            )
        };
        Settings {
            public_url: public_url.trim_end_matches('/').to_string(),
            accord_url: accord.to_string(),
            client_id: client_id.to_string(),
            support_password: support_password.to_string(),
            sync_days,
            admin_center_name,
            enterprise_app_url,
            requests_url,
            notification_base: None,
            consent_webhook_secret: None,
        }
    }
}

pub struct AppState {
    pub db: Db,
    pub kit: ConnectClient,
    pub settings: Settings,
    pub templates: Environment<'static>,
    /// One sync at a time (background and "Sync now").
    pub sync_lock: tokio::sync::Mutex<()>,
    /// Instances with a push-triggered sync on its way.
    pub push_pending: std::sync::Mutex<std::collections::HashSet<String>>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("onboarding.html", include_str!("../templates/onboarding.html")),
    ("technical_guide.html", include_str!("../templates/technical_guide.html")),
    ("consent_result.html", include_str!("../templates/consent_result.html")),
    ("signin.html", include_str!("../templates/signin.html")),
    ("signin_failed.html", include_str!("../templates/signin_failed.html")),
    ("meetings.html", include_str!("../templates/meetings.html")),
    ("support.html", include_str!("../templates/support.html")),
    ("support_login.html", include_str!("../templates/support_login.html")),
    ("message.html", include_str!("../templates/message.html")),
];
const CSS: &str = include_str!("../templates/app.css");

fn when(ts: i64) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short] [day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    time::OffsetDateTime::from_unix_timestamp(ts).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

fn day_time(ts: i64) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short] [day padding:none] [month repr:short] [year], [hour]:[minute]"
    );
    time::OffsetDateTime::from_unix_timestamp(ts).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

/// `{{ n | count("meeting") }}`: "1 meeting", "3 meetings" (the nouns on these pages all take
/// an s), never "meeting(s)".
fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn clock(ts: i64) -> String {
    let fmt = time::macros::format_description!("[hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(ts).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

impl AppState {
    pub fn new(db: Db, kit: ConnectClient, settings: Settings) -> anyhow::Result<AppState> {
        let mut env = Environment::new();
        // `.html` templates are autoescaped (minijinja's default for that extension).
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_filter("when", when);
        env.add_filter("day_time", day_time);
        env.add_filter("clock", clock);
        env.add_filter("count", count);
        Ok(AppState {
            db,
            kit,
            settings,
            templates: env,
            sync_lock: tokio::sync::Mutex::new(()),
            push_pending: Default::default(),
        })
    }

    fn render(&self, session: &Session, status: StatusCode, name: &str, ctx: Value) -> Response {
        let user = session.user();
        let staff = session.is_staff();
        // A CSRF token is made (and the session stored) only for people who have forms to post.
        let csrf = if user.is_some() || staff { Some(session.csrf()) } else { None };
        let base = context! {
            current_user => user, staff, csrf, client_id => self.settings.client_id,
            accord_url => self.settings.accord_url, public_url => self.settings.public_url,
        };
        let ctx = context! { ..ctx, ..base };
        match self.templates.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "rendering failed");
                internal_error()
            }
        }
    }

    fn message(
        &self,
        session: &Session,
        status: StatusCode,
        title: &str,
        text: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        let ctx = context! { title, text, link_href => link.map(|l| l.0), link_label => link.map(|l| l.1) };
        self.render(session, status, "message.html", ctx)
    }
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Error</title><h1>Something went wrong on our side</h1><p>Please try again later.</p>",
    )
        .into_response()
}

/// An unexpected failure (database, template): logged, and a generic page for the browser.
pub struct AppError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = format!("{:#}", self.0), "request failed");
        internal_error()
    }
}

type Result<T, E = AppError> = std::result::Result<T, E>;
type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .route("/technical-guide", get(technical_guide))
        .route("/onboarding/{instance}", get(onboarding))
        .route("/admin-consent/callback", get(admin_consent_callback))
        .route("/signin/{instance}", get(sign_in_page))
        .route("/signin/{instance}/start", get(sign_in_start))
        .route("/auth/callback", get(sign_in_callback))
        .route("/signout", post(sign_out))
        .route("/meetings/{instance}", get(meetings))
        .route("/meetings/{instance}/sync", post(sync_now))
        .route("/support", get(support))
        .route("/support/login", post(support_login))
        .route("/support/logout", post(support_logout))
        .route("/support/instances", post(support_new_instance))
        .route("/support/instances/{instance}/mode", post(support_mode))
        .route("/support/instances/{instance}/disconnect", post(support_disconnect))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), session_layer))
        .with_state(state.clone())
        // Graph's calls carry no session and no CSRF token: they are checked by clientState.
        .merge(crate::push::routes(state.clone()))
        .merge(crate::consent_events::routes(state))
}

/// Loads the session before the handler and stores it after; adds the security headers.
async fn session_layer(State(state): Shared, mut req: Request, next: Next) -> Response {
    let session = Session::load(&state.db, req.headers()).await;
    req.extensions_mut().insert(session.clone());
    let mut res = next.run(req).await;
    session.persist(&state.db, &mut res).await;
    let h = res.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The sign-in callback's URL carries a code: never send it onwards.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        // No Strict-Transport-Security: on localhost it would pin every other local port to HTTPS.
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], CSS).into_response()
}

async fn not_found(State(state): Shared, Extension(session): Extension<Session>) -> Response {
    state.message(&session, StatusCode::NOT_FOUND, "Page not found", "There is no such page.", Some(("/", "Home")))
}

async fn instance_or_404(state: &AppState, session: &Session, id: &str) -> Result<Result<Instance, Response>> {
    Ok(match state.db.instance(id).await? {
        Some(i) => Ok(i),
        None => Err(state.message(
            session,
            StatusCode::NOT_FOUND,
            "Unknown organisation",
            &format!("There is no Meeting Insights instance called \u{201c}{id}\u{201d}."),
            Some(("/", "All instances")),
        )),
    })
}

macro_rules! instance {
    ($state:expr, $session:expr, $id:expr) => {
        match instance_or_404(&$state, &$session, &$id).await? {
            Ok(i) => i,
            Err(page) => return Ok(page),
        }
    };
}

fn forbidden_form(state: &AppState, session: &Session) -> Response {
    state.message(
        session,
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The page was open for too long or in another session. Reload it and try again.",
        Some(("/", "Home")),
    )
}

fn instance_view(inst: &Instance) -> Value {
    let status = sync::tenant_status(inst);
    context! {
        id => inst.id, name => inst.name, mode => inst.mode.as_str(), mode_label => inst.mode.label(),
        tenant_id => inst.tenant_id, tenant_domain => inst.tenant_domain, app_roles => inst.app_roles,
        tenant_wide => inst.tenant_wide(), status, last_sync_at => inst.last_sync_at,
    }
}

// ---------------------------------------------------------------------- public pages

async fn home(State(state): Shared, Extension(session): Extension<Session>) -> Result<Response> {
    let instances: Vec<Value> = state.db.instances().await?.iter().map(instance_view).collect();
    Ok(state.render(&session, StatusCode::OK, "home.html", context! { instances }))
}

async fn technical_guide(State(state): Shared, Extension(session): Extension<Session>) -> Response {
    let view = |kind: PermissionKind| -> Vec<Value> {
        scopes()
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| context! { scope => s.scope, purpose => s.purpose })
            .collect()
    };
    let ctx = context! {
        delegated => view(PermissionKind::Delegated), application => view(PermissionKind::Application),
        sign_in_scopes => SIGN_IN_SCOPES,
    };
    state.render(&session, StatusCode::OK, "technical_guide.html", ctx)
}

async fn onboarding(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response> {
    let inst = instance!(state, session, id);
    // A tenant id once known; before that any organisation's administrator may consent.
    let tenant =
        inst.tenant_id.as_deref().and_then(|t| t.parse::<TenantHint>().ok()).unwrap_or(TenantHint::Organizations);
    // Fresh single-use links, bound to this instance, on every view (they expire in 10 minutes).
    let all = state.kit.admin_consent_link(&inst.id, &tenant, &ScopeChoice::StaticDefault).await?;
    let delegated_scopes: Vec<String> = ["openid", "profile", "offline_access"]
        .iter()
        .map(|s| s.to_string())
        .chain(SIGN_IN_SCOPES.iter().map(|s| s.to_string()))
        .collect();
    let delegated = state.kit.admin_consent_link(&inst.id, &tenant, &ScopeChoice::Named(delegated_scopes)).await?;
    let ctx = context! {
        instance => instance_view(&inst),
        admin_consent_link => all.to_string(),
        delegated_consent_link => delegated.to_string(),
        admin_center_name => state.settings.admin_center_name,
        enterprise_app_url => state.settings.enterprise_app_url,
        requests_url => state.settings.requests_url,
        sign_in_url => format!("{}/signin/{}", state.settings.public_url, inst.id),
    };
    Ok(state.render(&session, StatusCode::OK, "onboarding.html", ctx))
}

/// A failure's headline, in plain words.
fn headline(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::Declined { .. } => "The consent was cancelled",
        ConnectError::NotAdmin { .. } => "Only an administrator can grant this consent",
        ConnectError::RoleCannotGrant { .. } => "Your administrator role cannot grant these permissions",
        ConnectError::AdminConsentRequired { .. } => "Your administrator has to grant access first",
        ConnectError::ApprovalRequired { .. } => "Waiting for your administrator's approval",
        ConnectError::ConsentRequired { .. } => "Permission is needed",
        ConnectError::NotAssigned { .. } => "You are not assigned to Meeting Insights",
        ConnectError::AppDisabled { .. } => "Meeting Insights is disabled in your organisation",
        ConnectError::StateInvalid => "This link expired or was already used",
        ConnectError::TenantNotConfirmed { .. } => "We could not confirm access to your organisation",
        ConnectError::IdTokenRejected(_) => "We could not verify your sign-in",
        _ => "That did not work",
    }
}

fn error_view(e: &ConnectError) -> Value {
    let human = e.human();
    // The kit's wording usually names the code already: print it once (issue 18).
    let code = e.code().map(|c| format!("AADSTS{c}")).filter(|c| !human.contains(c.as_str()));
    context! { title => headline(e), human, kind => e.kind(), code }
}

/// `GET /admin-consent/callback`: the end of Option 1.
async fn admin_consent_callback(
    State(state): Shared,
    Extension(session): Extension<Session>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let outcome = state.kit.process_admin_consent_callback(query.as_deref().unwrap_or_default()).await;
    let inst = match &outcome.customer {
        Some(c) => state.db.instance(c).await?,
        None => None,
    };
    let instance = inst.as_ref().map(instance_view);
    let consented = match outcome.result {
        Ok(t) => t,
        Err(e) => {
            let status = if matches!(e, ConnectError::StateInvalid) { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            let ctx = context! { ok => false, error => error_view(&e), instance };
            return Ok(state.render(&session, status, "consent_result.html", ctx));
        }
    };
    let Some(inst) = inst else {
        return Ok(state.message(
            &session,
            StatusCode::NOT_FOUND,
            "Unknown organisation",
            "The instance this consent was for no longer exists.",
            Some(("/", "Home")),
        ));
    };
    let tenant = consented.tenant_id.hyphenated().to_string();
    if let Some(existing) = inst.tenant_id.as_deref().filter(|t| !t.eq_ignore_ascii_case(&tenant)) {
        let text = format!(
            "{} is already connected to the organisation (tenant) {existing}, \
             but this consent was given in tenant {tenant}. Sign in with an administrator account \
             of the right organisation, or ask our support team to disconnect the instance first.",
            inst.name
        );
        return Ok(state.message(
            &session,
            StatusCode::CONFLICT,
            "Another organisation",
            &text,
            Some((&format!("/onboarding/{}", inst.id), "Back to onboarding")),
        ));
    }
    state.db.connect_by_admin_consent(&inst.id, &tenant, &consented.roles).await?;
    let background = state.clone();
    let id = inst.id.clone();
    tokio::spawn(async move {
        if let Err(e) = sync::sync_instance(&background, &id, false).await {
            tracing::warn!(instance = id, error = %e, "sync after admin consent failed");
        }
    });
    let inst = state.db.instance(&inst.id).await?.unwrap_or(inst);
    let ctx = context! {
        ok => true, tenant_id => tenant, roles => consented.roles, instance => instance_view(&inst),
        sign_in_url => format!("{}/signin/{}", state.settings.public_url, inst.id),
    };
    Ok(state.render(&session, StatusCode::OK, "consent_result.html", ctx))
}

// ---------------------------------------------------------------------- users

/// `GET /signin/{instance}`: what happens next, before leaving for the identity platform.
async fn sign_in_page(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response> {
    let inst = instance!(state, session, id);
    // A sign-in that left for the identity platform and never came back: most likely the
    // "Approval required" page, which ends the flow there.
    let waiting = session.pending().is_some_and(|p| p.instance == inst.id);
    let signed_in = session.user().filter(|u| u.instance == inst.id);
    let ctx = context! { instance => instance_view(&inst), waiting, signed_in };
    Ok(state.render(&session, StatusCode::OK, "signin.html", ctx))
}

/// `GET /signin/{instance}/start`: authorization code + PKCE + nonce through the kit.
async fn sign_in_start(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response> {
    let inst = instance!(state, session, id);
    let tenant =
        inst.tenant_id.as_deref().and_then(|t| t.parse::<TenantHint>().ok()).unwrap_or(TenantHint::Organizations);
    let scopes: Vec<String> = SIGN_IN_SCOPES.iter().map(|s| s.to_string()).collect();
    let (url, pending) = state.kit.begin_sign_in(&tenant, &scopes);
    session.set_pending(PendingEntry { instance: inst.id, pending });
    Ok(Redirect::to(url.as_str()).into_response())
}

/// `GET /auth/callback`: the end of a sign-in (and of "Connect my calendar").
async fn sign_in_callback(
    State(state): Shared,
    Extension(session): Extension<Session>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let Some(entry) = session.take_pending() else {
        let e = ConnectError::StateInvalid;
        let ctx = context! { error => error_view(&e), instance => None::<Value> };
        return Ok(state.render(&session, StatusCode::BAD_REQUEST, "signin_failed.html", ctx));
    };
    let inst = instance!(state, session, entry.instance);
    let user = match state.kit.complete_sign_in(&entry.pending, query.as_deref().unwrap_or_default()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(instance = inst.id, kind = e.kind(), code = ?e.code(), "sign-in failed");
            let ctx = context! { error => error_view(&e), instance => instance_view(&inst) };
            return Ok(state.render(&session, StatusCode::OK, "signin_failed.html", ctx));
        }
    };
    let key = user.key();
    if let Some(existing) = inst.tenant_id.as_deref().filter(|t| !t.eq_ignore_ascii_case(&user.tenant_id)) {
        // Not this customer's user: forget the tokens we were just given.
        state.kit.disconnect(&key).await?;
        let text = format!(
            "You signed in with an account of another organisation (tenant {}). {} is connected to tenant {existing}.",
            user.tenant_id, inst.name
        );
        return Ok(state.message(
            &session,
            StatusCode::FORBIDDEN,
            "Another organisation",
            &text,
            Some((&format!("/signin/{}", inst.id), "Sign in with another account")),
        ));
    }
    if inst.tenant_id.is_none() {
        state.db.bind_tenant_by_sign_in(&inst.id, &user.tenant_id).await?;
    }
    if let Some(domain) = user.upn.as_deref().and_then(|u| u.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()) {
        state.db.set_tenant_domain(&inst.id, &domain).await?;
    }
    state.db.upsert_user(&inst.id, &key, user.upn.as_deref(), user.name.as_deref(), true).await?;
    session.sign_in(SessionUser {
        instance: inst.id.clone(),
        tenant_id: user.tenant_id.clone(),
        object_id: user.object_id.clone(),
        upn: user.upn.clone(),
        name: user.name.clone(),
        org_admin: is_org_admin(&user.claims.raw),
    });
    // The meetings page should show this user's meetings straight away.
    match tokio::time::timeout(Duration::from_secs(30), sync::sync_instance(&state, &inst.id, false)).await {
        Ok(Ok(r)) => tracing::info!(instance = inst.id, ?r, "synced after sign-in"),
        Ok(Err(e)) => tracing::warn!(instance = inst.id, error = %e, "sync after sign-in failed"),
        Err(_) => tracing::warn!(instance = inst.id, "sync after sign-in timed out"),
    }
    Ok(Redirect::to(&format!("/meetings/{}", inst.id)).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return forbidden_form(&state, &session);
    }
    let back = session.user().map(|u| format!("/signin/{}", u.instance)).unwrap_or_else(|| "/".into());
    session.sign_out_user();
    Redirect::to(&back).into_response()
}

/// Directory roles (template ids, as the `wids` claim carries them) that administer a customer's
/// apps: Global, Application, Cloud Application and Privileged Role Administrator.
const ADMIN_ROLE_TEMPLATES: [&str; 4] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "158c047a-c907-4556-b7ef-446551a6b5f7",
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
];

/// Whether the ID token's `wids` names an administrator role (the app asks for `wids` as an
/// optional claim; without it nobody counts as an administrator here).
fn is_org_admin(claims: &serde_json::Value) -> bool {
    claims["wids"]
        .as_array()
        .is_some_and(|ids| ids.iter().filter_map(|v| v.as_str()).any(|id| ADMIN_ROLE_TEMPLATES.contains(&id)))
}

/// `GET /meetings/{instance}`: upcoming meetings and the connection status.
async fn meetings(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let inst = instance!(state, session, id);
    let me = session.user().filter(|u| u.instance == inst.id);
    if me.is_none() && !session.is_staff() {
        let text = format!("Sign in with your {} work account to see your organisation's meetings.", inst.name);
        return Ok(state.message(
            &session,
            StatusCode::OK,
            "Sign in to see meetings",
            &text,
            Some((&format!("/signin/{}", inst.id), "Sign in")),
        ));
    }
    let users = sync::user_statuses(&state, &inst).await?;
    let names: HashMap<&str, &str> = users.iter().map(|u| (u.object_id.as_str(), u.upn.as_str())).collect();
    let meetings: Vec<Value> = state
        .db
        .upcoming_meetings(&inst.id, now(), 300)
        .await?
        .iter()
        .map(|m| {
            context! {
                subject => m.subject, start_at => m.start_at, end_at => m.end_at, organizer => m.organizer,
                location => m.location, join_url => m.join_url, attendees => m.attendees, source => m.source,
                calendar => names.get(m.object_id.as_str()).copied().unwrap_or(m.object_id.as_str()),
            }
        })
        .collect();
    let my_status = me.as_ref().and_then(|me| users.iter().find(|u| u.object_id == me.object_id));
    // Colleagues' connections are the organisation's administrators' business (and the
    // vendor's support): an ordinary user sees their own and how many others are connected.
    let sees_everyone = session.is_staff() || me.as_ref().is_some_and(|me| me.org_admin);
    let colleagues = users.iter().filter(|u| Some(u.object_id.as_str()) != me.as_ref().map(|m| m.object_id.as_str()));
    let others = context! {
        connected => colleagues.clone().filter(|u| matches!(u.state, "connected" | "tenant_wide")).count(),
        total => colleagues.count(),
    };
    let shown: Vec<_> = if sees_everyone { users.iter().collect() } else { my_status.into_iter().collect() };
    let synced = q.get("synced").map(|_| {
        let n = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        context! { users => n("users"), meetings => n("meetings"), failures => n("failures") }
    });
    let ctx = context! {
        instance => instance_view(&inst), tenant => sync::tenant_status(&inst), users => shown, sees_everyone, others,
        meetings, my_status,
        synced, sync_days => state.settings.sync_days,
    };
    Ok(state.render(&session, StatusCode::OK, "meetings.html", ctx))
}

/// `POST /meetings/{instance}/sync`: "Sync now", checking every connection is still consented.
async fn sync_now(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    let inst = instance!(state, session, id);
    let allowed = session.is_staff() || session.user().is_some_and(|u| u.instance == inst.id);
    if !allowed || !session.csrf_ok(&form.csrf) {
        return Ok(forbidden_form(&state, &session));
    }
    let r = sync::sync_instance(&state, &inst.id, true).await?;
    let to =
        format!("/meetings/{}?synced=1&users={}&meetings={}&failures={}", inst.id, r.users, r.meetings, r.failures);
    Ok(Redirect::to(&to).into_response())
}

// ---------------------------------------------------------------------- vendor support

async fn support(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    if !session.is_staff() {
        let csrf = session.csrf();
        let failed = q.contains_key("failed");
        return Ok(state.render(
            &session,
            StatusCode::OK,
            "support_login.html",
            context! { login_csrf => csrf, failed },
        ));
    }
    let mut instances = Vec::new();
    let mut notice = None;
    let saved = q.get("done").and_then(|d| d.strip_prefix("mode-"));
    for inst in state.db.instances().await? {
        let users = state.db.users(&inst.id).await?.len();
        if saved == Some(inst.id.as_str()) {
            notice = Some(format!("{} now uses {}", inst.name, inst.mode.label()));
        }
        instances.push(context! { users, ..instance_view(&inst) });
    }
    let error = q.get("error").cloned();
    Ok(state.render(&session, StatusCode::OK, "support.html", context! { instances, notice, error }))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn support_login(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return forbidden_form(&state, &session);
    }
    if !same(&form.password, &state.settings.support_password) {
        tracing::warn!("vendor support sign-in with a wrong password");
        // A little friction against guessing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        return Redirect::to("/support?failed=1").into_response();
    }
    session.set_staff(true);
    Redirect::to("/support").into_response()
}

async fn support_logout(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return forbidden_form(&state, &session);
    }
    session.set_staff(false);
    Redirect::to("/support").into_response()
}

fn staff_form_ok(session: &Session, csrf: &str) -> bool {
    session.is_staff() && session.csrf_ok(csrf)
}

#[derive(Deserialize)]
struct ModeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
}

async fn support_mode(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<ModeForm>,
) -> Result<Response> {
    if !staff_form_ok(&session, &form.csrf) {
        return Ok(forbidden_form(&state, &session));
    }
    let Some(mode) = ConsentMode::parse(&form.mode) else {
        return Ok(Redirect::to("/support?error=unknown+mode").into_response());
    };
    if !state.db.set_mode(&id, mode).await? {
        return Ok(Redirect::to("/support?error=unknown+instance").into_response());
    }
    tracing::info!(instance = id, mode = mode.as_str(), "consent mode changed by vendor support");
    Ok(Redirect::to(&format!("/support?done=mode-{id}")).into_response())
}

#[derive(Deserialize)]
struct NewInstanceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

async fn support_new_instance(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<NewInstanceForm>,
) -> Result<Response> {
    if !staff_form_ok(&session, &form.csrf) {
        return Ok(forbidden_form(&state, &session));
    }
    let id = form.id.trim().to_ascii_lowercase();
    let name = form.name.trim();
    let valid = !id.is_empty()
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.is_empty()
        && name.len() <= 80;
    if !valid {
        return Ok(Redirect::to("/support?error=invalid+instance").into_response());
    }
    if !state.db.create_instance(&id, name).await? {
        return Ok(Redirect::to("/support?error=instance+exists").into_response());
    }
    Ok(Redirect::to(&format!("/support?done=created-{id}")).into_response())
}

async fn support_disconnect(
    State(state): Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    if !staff_form_ok(&session, &form.csrf) {
        return Ok(forbidden_form(&state, &session));
    }
    state.db.disconnect(&id).await?;
    Ok(Redirect::to(&format!("/support?done=disconnected-{id}")).into_response())
}
