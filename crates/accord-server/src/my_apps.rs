//! My Apps (`/myapps`): for the signed-in person, every app they can use in their organisation
//! and why (the organisation's consent, their own consent, an assignment), the permissions each
//! app holds on their behalf, their own consent to revoke, and their admin-consent requests.
//!
//! No consent rule lives here. Whether an app is usable is the consent engine's sign-in
//! decision (`ConsentWorld::decide_sign_in`, the check every sign-in and refresh makes) over the
//! permissions the app holds for the user; who is assigned comes from the engine's
//! `is_assigned`, what is held from its `granted_scopes`, and revocation goes through
//! `administration::revoke_grant`, which lets a user revoke their own consent only.

use crate::portal::PortalUser;
use crate::protocol::errors::{Failure, PageFailure};
use crate::service::administration;
use crate::service::consent::ConsentWorld;
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use crate::web::forms::params;
use crate::web::templates::Templates;
use accord_core::consent_engine::{
    granted_scopes, is_assigned, AssignmentPath, Decision, GroupMembership, Prompt, Verdict,
};
use accord_core::consent_records::{ConsentRequest, RequestStatus, ReviewResult};
use accord_core::directory::{
    AppRoleAssignment, Application, ConsentType, DelegatedGrant, ServicePrincipal, Tenant, User,
};
use accord_core::ids::{AppId, GroupId, ServicePrincipalId, TenantId, UserId};
use accord_core::microsoft_graph::is_oidc_scope;
use accord_core::scope::ScopeRequest;
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::Aadsts;
use accord_store::Store;
use axum::extract::{Query, RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most grants one revoke form may name (an app holds one grant per resource).
const MAX_GRANTS_PER_FORM: usize = 50;

const STYLESHEET: &str = include_str!("../templates/my_apps.css");

/// The routes of My Apps, merged into the application router.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/myapps", get(page))
        .route("/myapps/revoke", get(back_to_list).post(revoke))
        .route("/static/my_apps.css", get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

/// The fixed messages shown after a form (POST-redirect-GET); the query names one, never text.
fn notice_text(key: &str) -> Option<&'static str> {
    match key {
        "revoked" => Some(
            "Your consent was revoked. The app can no longer use the permissions you granted it, and will ask you again the next time you use it.",
        ),
        "unconfirmed" => Some("Nothing was revoked: tick the confirmation box to revoke your consent."),
        _ => None,
    }
}

/// `GET /myapps`.
pub async fn page(State(state): State<SharedState>, me: PortalUser, Query(q): Query<PageQuery>) -> Response {
    let view = match gather(&state, &me).await {
        Ok(v) => v,
        Err(e) => return PageFailure(e).into_response(),
    };
    let html = Templates::render(
        "my_apps.html",
        context! {
            user => context! { display_name => me.user.display_name, upn => me.user.upn },
            tenant_name => me.tenant.display_name,
            admin_center => !me.actor.roles().is_empty(),
            sign_out => format!("/{}/oauth2/v2.0/logout", me.tenant.id),
            notice => q.notice.as_deref().and_then(notice_text),
            csrf => me.csrf,
            apps => view.apps,
            unavailable => view.unavailable,
            pending => view.pending,
            past => view.past,
        },
    );
    let mut res = Html(html).into_response();
    if let Some(c) = me.set_csrf_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// `GET /myapps/revoke` (e.g. after signing in again from a revoke form): back to the list.
async fn back_to_list() -> Response {
    see_other("/myapps")
}

/// `POST /myapps/revoke`: revokes the signed-in user's own consent to one app (one grant per
/// resource). The service refuses anything else, such as the organisation's consent.
pub async fn revoke(
    State(state): State<SharedState>,
    headers: HeaderMap,
    me: PortalUser,
    RawForm(body): RawForm,
) -> Response {
    let fields = params(&body);
    if let Err(e) = me.check_csrf(&state, &headers, &fields) {
        return PageFailure(e.into()).into_response();
    }
    if fields.get("confirm").map(String::as_str) != Some("yes") {
        return see_other("/myapps?notice=unconfirmed");
    }
    let ids = match grant_ids(fields.get("grants").map(String::as_str).unwrap_or("")) {
        Ok(ids) => ids,
        Err(e) => return PageFailure(e).into_response(),
    };
    for id in ids {
        if let Err(e) = administration::revoke_grant(&*state.store, &me.actor, &me.tenant, id).await {
            tracing::info!(tenant = %me.tenant.id, user = %me.user.id, grant = %id, "My Apps revocation refused");
            return refusal(e);
        }
    }
    tracing::info!(tenant = %me.tenant.id, user = %me.user.id, "consent revoked in My Apps");
    see_other("/myapps?notice=revoked")
}

fn grant_ids(raw: &str) -> Result<Vec<Uuid>, Failure> {
    let ids: Result<Vec<Uuid>, _> =
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Uuid::parse_str).collect();
    match ids {
        Ok(ids) if !ids.is_empty() && ids.len() <= MAX_GRANTS_PER_FORM => Ok(ids),
        _ => Err(Aadsts::invalid_parameter("grants", "expected the ids of the permission grants to revoke").into()),
    }
}

/// The service's refusal as a page: 403 when the person may not do it, 400 otherwise.
fn refusal(e: ServiceError) -> Response {
    let forbidden = matches!(e, ServiceError::Forbidden(_));
    let mut res = PageFailure(e.into()).into_response();
    if forbidden {
        *res.status_mut() = StatusCode::FORBIDDEN;
    }
    res
}

/// `303 See Other` to a local path: the GET after a POST.
fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static(location))]).into_response()
}

// ------------------------------------------------------------------ what the page shows

#[derive(Serialize, Default)]
struct PageView {
    apps: Vec<AppView>,
    unavailable: Vec<AppView>,
    pending: Vec<RequestView>,
    past: Vec<RequestView>,
}

#[derive(Serialize)]
struct AppView {
    /// The enterprise application's object id (anchors).
    id: String,
    name: String,
    app_id: String,
    verified: bool,
    home_tenant: String,
    /// Why the user has the app, in order: organisation consent, own consent, assignment.
    reasons: Vec<String>,
    /// A note when the app cannot be used right away (or at all), from the engine's decision.
    status: Option<String>,
    roles: Vec<String>,
    resources: Vec<ResourceView>,
    /// The organisation consented: only an administrator can take that away.
    org_granted: bool,
    /// Comma-separated ids of the user's own grants to the app; empty when there are none.
    own_grants: String,
    /// The engine's checks, for "How Accord decided".
    rules: Vec<RuleView>,
}

#[derive(Serialize)]
struct ResourceView {
    name: String,
    permissions: Vec<PermissionView>,
}

#[derive(Serialize)]
struct PermissionView {
    display_name: String,
    description: String,
    value: String,
    granted_by: &'static str,
    since: String,
    /// The API no longer defines it, so tokens do not carry it.
    retired: bool,
}

#[derive(Serialize)]
struct RuleView {
    verdict: &'static str,
    text: String,
}

#[derive(Serialize)]
struct RequestView {
    app: String,
    permissions: Vec<String>,
    reason: String,
    created: String,
    expires: String,
    outcome: &'static str,
    reviewer: Option<String>,
    review_justification: Option<String>,
    decided: Option<String>,
}

fn day(t: OffsetDateTime) -> String {
    format!("{} {} {}", t.day(), t.month(), t.year())
}

/// Registrations and tenants read once per page.
struct Lookups<'a> {
    store: &'a dyn Store,
    apps: HashMap<AppId, Option<Application>>,
    tenants: HashMap<TenantId, String>,
    users: HashMap<UserId, Option<String>>,
}

impl<'a> Lookups<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Lookups { store, apps: HashMap::new(), tenants: HashMap::new(), users: HashMap::new() }
    }

    async fn app(&mut self, app_id: AppId) -> Result<Option<Application>, Failure> {
        if !self.apps.contains_key(&app_id) {
            let app = self.store.application_by_app_id(app_id).await?;
            self.apps.insert(app_id, app);
        }
        Ok(self.apps[&app_id].clone())
    }

    async fn home_tenant(&mut self, app: &Application) -> Result<String, Failure> {
        if app.app_id == GRAPH_APP_ID {
            return Ok("Microsoft".into());
        }
        if !self.tenants.contains_key(&app.home_tenant_id) {
            let name = self
                .store
                .tenant(app.home_tenant_id)
                .await?
                .map(|t| t.display_name)
                .unwrap_or_else(|| "another organisation".into());
            self.tenants.insert(app.home_tenant_id, name);
        }
        Ok(self.tenants[&app.home_tenant_id].clone())
    }

    async fn user_name(&mut self, tenant_id: TenantId, user_id: UserId) -> Result<Option<String>, Failure> {
        if !self.users.contains_key(&user_id) {
            let name = self.store.user(tenant_id, user_id).await?.map(|u| u.display_name);
            self.users.insert(user_id, name);
        }
        Ok(self.users[&user_id].clone())
    }
}

async fn gather(state: &AppState, me: &PortalUser) -> Result<PageView, Failure> {
    let store = &*state.store;
    let (tenant, user) = (&me.tenant, &me.user);
    let mut lookups = Lookups::new(store);

    // The grants that act for this user: the organisation's and their own.
    let grants: Vec<DelegatedGrant> = store
        .delegated_grants(tenant.id)
        .await?
        .into_iter()
        .filter(|g| g.consent_type == ConsentType::AllPrincipals || g.principal_id == Some(user.id))
        .collect();

    // Their groups (transitively) and the assignments held by them or their groups.
    let group_ids = store.transitive_groups_of(tenant.id, user.id.into()).await?;
    let group_names: Vec<(GroupId, String)> = if group_ids.is_empty() {
        Vec::new()
    } else {
        let all = store.groups(tenant.id).await?;
        group_ids
            .iter()
            .map(|id| (*id, all.iter().find(|g| g.id == *id).map(|g| g.display_name.clone()).unwrap_or_default()))
            .collect()
    };
    let memberships: Vec<GroupMembership<'_>> =
        group_names.iter().map(|(id, name)| GroupMembership { id: *id, display_name: name, via: None }).collect();
    let mut assignments: Vec<AppRoleAssignment> = store.app_role_assignments_of(tenant.id, user.id.into()).await?;
    for id in &group_ids {
        assignments.extend(store.app_role_assignments_of(tenant.id, id.as_uuid()).await?);
    }

    // Every enterprise application that holds a grant for them or to which they are assigned.
    let mut candidates: Vec<ServicePrincipalId> = Vec::new();
    for sp_id in grants.iter().map(|g| g.client_sp_id).chain(assignments.iter().map(|a| a.resource_sp_id)) {
        if !candidates.contains(&sp_id) {
            candidates.push(sp_id);
        }
    }

    let mut view = PageView::default();
    for sp_id in candidates {
        let Some(sp) = store.service_principal(tenant.id, sp_id).await? else { continue };
        let Some(client) = lookups.app(sp.app_id).await? else { continue };
        let client_grants: Vec<DelegatedGrant> = grants.iter().filter(|g| g.client_sp_id == sp.id).cloned().collect();
        let ctx = AppContext { tenant, user, sp: &sp, client: &client, grants: &client_grants };
        let (usable, entry) = app_view(&mut lookups, &ctx, &memberships, &assignments).await?;
        if usable {
            view.apps.push(entry);
        } else if !entry.own_grants.is_empty() {
            // Refused, but the user's own consent remains theirs to revoke.
            view.unavailable.push(entry);
        }
    }
    view.apps.sort_by_key(|a| a.name.to_lowercase());
    view.unavailable.sort_by_key(|a| a.name.to_lowercase());

    for request in store.consent_requests(tenant.id, None).await?.into_iter().filter(|r| r.user_id == user.id) {
        let entry = request_view(&mut lookups, tenant, &request).await?;
        if request.status == RequestStatus::InProgress {
            view.pending.push(entry);
        } else {
            view.past.push(entry);
        }
    }
    Ok(view)
}

struct AppContext<'a> {
    tenant: &'a Tenant,
    user: &'a User,
    sp: &'a ServicePrincipal,
    client: &'a Application,
    /// The client's grants that act for the user (organisation's and own).
    grants: &'a [DelegatedGrant],
}

/// One app: why the user has it, what it holds for them, and the engine's verdict. Returns
/// whether the engine lets the user sign in to it (possibly after consenting or approval).
async fn app_view(
    lookups: &mut Lookups<'_>,
    ctx: &AppContext<'_>,
    memberships: &[GroupMembership<'_>],
    assignments: &[AppRoleAssignment],
) -> Result<(bool, AppView), Failure> {
    let (tenant, user, sp, client) = (ctx.tenant, ctx.user, ctx.sp, ctx.client);
    let org: Vec<&DelegatedGrant> =
        ctx.grants.iter().filter(|g| g.consent_type == ConsentType::AllPrincipals).collect();
    let own: Vec<&DelegatedGrant> = ctx.grants.iter().filter(|g| g.consent_type == ConsentType::Principal).collect();

    let mut reasons = Vec::new();
    if let Some(first) = org.iter().map(|g| g.created_at).min() {
        reasons.push(format!("Your organisation's administrator consented on {}", day(first)));
    }
    if let Some(first) = own.iter().map(|g| g.created_at).min() {
        reasons.push(format!("You consented on {}", day(first)));
    }
    match is_assigned(sp.id, user.id, memberships, assignments) {
        Some(AssignmentPath::Direct) => reasons.push("Assigned to you".into()),
        Some(AssignmentPath::Group(chain)) => {
            let group = chain.last().map(|g| g.display_name).unwrap_or("a group");
            reasons.push(format!("Assigned to your group {group}"));
        }
        None => {}
    }

    // The permissions held on the user's behalf, per resource, and the request that asks the
    // engine exactly for them (a sign-in with nothing granted asks for "openid").
    let mut resources = Vec::new();
    let mut scope_tokens: Vec<String> = Vec::new();
    let mut resource_ids: Vec<ServicePrincipalId> = Vec::new();
    for g in ctx.grants {
        if !resource_ids.contains(&g.resource_sp_id) {
            resource_ids.push(g.resource_sp_id);
        }
    }
    for resource_sp_id in resource_ids {
        let resource = if resource_sp_id == sp.id {
            Some(client.clone())
        } else {
            match lookups.store.service_principal(tenant.id, resource_sp_id).await? {
                Some(rsp) => lookups.app(rsp.app_id).await?,
                None => None,
            }
        };
        let Some(resource) = resource else { continue };
        let held = granted_scopes(ctx.grants, sp.id, resource_sp_id, user.id);
        let mut permissions = Vec::new();
        for value in held {
            let from = |list: &[&DelegatedGrant]| {
                list.iter()
                    .filter(|g| g.resource_sp_id == resource_sp_id)
                    .find(|g| g.scopes.iter().any(|s| s.eq_ignore_ascii_case(&value)))
                    .map(|g| g.created_at)
            };
            let (by_org, by_me) = (from(&org), from(&own));
            let granted_by = match (by_org, by_me) {
                (Some(_), Some(_)) => "Your organisation and you",
                (Some(_), None) => "Your organisation",
                _ => "You",
            };
            let since = by_org.into_iter().chain(by_me).min().map(day).unwrap_or_default();
            let scope = resource.scope(&value);
            if scope.is_some() {
                let resource_name = resource.identifier_uri.clone().unwrap_or_else(|| resource.app_id.to_string());
                scope_tokens.push(if resource.app_id == GRAPH_APP_ID && is_oidc_scope(&value) {
                    value.clone()
                } else {
                    format!("{}/{}", resource_name.trim_end_matches('/'), value)
                });
            }
            let (display_name, description) = match scope {
                Some(s) => (
                    first_non_empty(&[&s.user_consent_display_name, &s.admin_consent_display_name, &s.value]),
                    first_non_empty(&[&s.user_consent_description, &s.admin_consent_description]),
                ),
                None => (value.clone(), String::new()),
            };
            permissions.push(PermissionView {
                display_name,
                description,
                value,
                granted_by,
                since,
                retired: scope.is_none(),
            });
        }
        if !permissions.is_empty() {
            resources.push(ResourceView { name: resource.display_name.clone(), permissions });
        }
    }

    // The engine decides, exactly as at sign-in and at every refresh.
    let scope_text = if scope_tokens.is_empty() { "openid".to_string() } else { scope_tokens.join(" ") };
    let request = match ScopeRequest::parse(&scope_text) {
        Ok(r) => r,
        Err(_) => ScopeRequest::parse("openid")?,
    };
    let world = ConsentWorld::load(lookups.store, tenant, client, user, &request).await?;
    let outcome = world.decide_sign_in(&request, Prompt::Default);
    let mut roles = Vec::new();
    let (usable, status) = match &outcome.decision {
        Decision::Issue { roles: values, .. } => {
            for v in values {
                roles.push(client.app_role(v).map(|r| r.display_name.clone()).unwrap_or_else(|| v.clone()));
            }
            (true, None)
        }
        Decision::PromptConsent { .. } => (
            true,
            Some(
                "You have not consented to this app yet: it will ask for your permission the first time you sign in."
                    .into(),
            ),
        ),
        Decision::ApprovalRequired { existing_request: Some(_), .. } => {
            (true, Some("Your request to use this app is waiting for an administrator's approval.".into()))
        }
        Decision::ApprovalRequired { existing_request: None, .. } => (
            true,
            Some(
                "An administrator must approve this app before you can use it. Sign in to it to send a request.".into(),
            ),
        ),
        Decision::NeedAdminApproval { .. } => {
            (true, Some("An administrator must consent to this app before you can use it.".into()))
        }
        Decision::PromptAdminConsent { .. } => (true, None),
        Decision::Refuse(e) | Decision::NotPermitted(e) => {
            (false, Some(format!("You cannot sign in to this app: {e}")))
        }
    };
    let rules = outcome
        .rules
        .iter()
        .map(|r| RuleView {
            verdict: match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Info => "info",
            },
            text: r.text.clone(),
        })
        .collect();
    let entry = AppView {
        id: sp.id.to_string(),
        name: client.display_name.clone(),
        app_id: client.app_id.to_string(),
        verified: client.verified_publisher,
        home_tenant: lookups.home_tenant(client).await?,
        reasons,
        status,
        roles,
        resources,
        org_granted: !org.is_empty(),
        own_grants: own.iter().map(|g| g.id.to_string()).collect::<Vec<_>>().join(","),
        rules,
    };
    Ok((usable, entry))
}

fn first_non_empty(candidates: &[&String]) -> String {
    candidates.iter().find(|s| !s.trim().is_empty()).map(|s| s.to_string()).unwrap_or_default()
}

async fn request_view(lookups: &mut Lookups<'_>, tenant: &Tenant, r: &ConsentRequest) -> Result<RequestView, Failure> {
    let app =
        lookups.app(r.client_app_id).await?.map(|a| a.display_name).unwrap_or_else(|| r.client_app_id.to_string());
    let mut permissions = Vec::new();
    for p in &r.permissions {
        let name = match lookups.app(p.resource_app_id).await? {
            Some(resource) => match resource.scope(&p.value) {
                Some(s) => first_non_empty(&[&s.user_consent_display_name, &s.admin_consent_display_name, &s.value]),
                None => p.value.clone(),
            },
            None => p.value.clone(),
        };
        permissions.push(name);
    }
    let outcome = match (r.status, r.result) {
        (RequestStatus::InProgress, _) => "Pending",
        (RequestStatus::Expired, _) => "Expired",
        (RequestStatus::Completed, ReviewResult::Approved) => "Approved",
        (RequestStatus::Completed, ReviewResult::Denied) => "Denied",
        (RequestStatus::Completed, ReviewResult::Blocked) => "Blocked",
        (RequestStatus::Completed, ReviewResult::NotReviewed) => "Completed",
    };
    let reviewer = match r.reviewed_by {
        Some(id) => lookups.user_name(tenant.id, id).await?,
        None => None,
    };
    let decided = r.reviewed_at.or(r.completed_at).or((r.status == RequestStatus::Expired).then_some(r.expires_at));
    Ok(RequestView {
        app,
        permissions,
        reason: r.reason.clone(),
        created: day(r.created_at),
        expires: day(r.expires_at),
        outcome,
        reviewer,
        review_justification: r.review_justification.clone(),
        decided: decided.map(day),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_and_escapes() {
        let app = context! {
            id => "sp-1", name => "<script>x</script>", app_id => "a", verified => false, home_tenant => "<b>Vendor</b>",
            reasons => vec!["You consented on 1 May 2025"], status => None::<String>, roles => Vec::<String>::new(),
            resources => vec![context! { name => "Microsoft Graph", permissions => vec![context! {
                display_name => "<i>Read</i>", description => "", value => "User.Read", granted_by => "You",
                since => "1 May 2025", retired => false,
            }] }],
            org_granted => true, own_grants => "g-1,g-2",
            rules => vec![context! { verdict => "pass", text => "<u>ok</u>" }],
        };
        let request = context! {
            app => "<em>HR</em>", permissions => vec!["Read all users' full profiles"], reason => "<b>please</b>",
            created => "1 May 2025", expires => "8 May 2025", outcome => "Denied", reviewer => "Admin",
            review_justification => "<s>no</s>", decided => "2 May 2025",
        };
        let html = Templates::render(
            "my_apps.html",
            context! {
                user => context! { display_name => "Mia", upn => "mia@x.test" }, tenant_name => "<T>",
                admin_center => false, sign_out => "/t/oauth2/v2.0/logout", notice => notice_text("revoked"),
                csrf => "tok", apps => vec![app], unavailable => Vec::<()>::new(),
                pending => Vec::<()>::new(), past => vec![request],
            },
        );
        assert!(html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"), "{html}");
        for raw in ["<script>x", "<b>Vendor", "<i>Read", "<u>ok", "<em>HR", "<b>please", "<s>no", "<T>"] {
            assert!(!html.contains(raw), "{raw} escaped");
        }
        assert!(html.contains("name=\"grants\" value=\"g-1,g-2\""), "{html}");
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(html.contains("Granted by your organisation; ask an administrator"));
        assert!(html.contains("Your consent was revoked"));
        assert!(!html.contains("href=\"/admin\""), "no admin link without a role");
    }

    #[test]
    fn grant_ids_are_validated() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(grant_ids(&format!("{a}, {b},")).unwrap(), vec![a, b]);
        assert!(grant_ids("").is_err());
        assert!(grant_ids("not-a-uuid").is_err());
        let many = (0..=MAX_GRANTS_PER_FORM).map(|_| Uuid::new_v4().to_string()).collect::<Vec<_>>().join(",");
        assert!(grant_ids(&many).is_err());
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert!(notice_text("revoked").is_some());
        assert!(notice_text("unconfirmed").is_some());
        assert!(notice_text("<script>").is_none());
    }
}
