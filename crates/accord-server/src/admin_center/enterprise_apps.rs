//! Enterprise applications > All applications > app > Overview, Properties, Users and groups,
//! Permissions, Activity.

use super::layout::{
    self, crumbs, done, fmt_time, need, not_found, parse_id, respond, Confirm, Crumb, Destructive, Page, Section,
};
use crate::portal::PortalUser;
use crate::service::admin_consent_requests;
use crate::service::administration::{self, EnterpriseAppFilter, Operation};
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use accord_core::consent_engine::{PermissionKind, PermissionRef};
use accord_core::directory::{AppRoleMemberType, Application, ServicePrincipal};
use accord_core::ids::ServicePrincipalId;
use accord_core::Aadsts;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

fn yes_no(q: &HashMap<String, String>, key: &str) -> Option<bool> {
    match q.get(key).map(String::as_str) {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// `GET /admin/enterprise-apps`: All applications, with search and filters.
pub async fn list(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let filter = EnterpriseAppFilter {
            search: q.get("q").cloned().unwrap_or_default(),
            enabled: yes_no(&q, "enabled"),
            assignment_required: yes_no(&q, "assignment"),
            has_pending_requests: yes_no(&q, "pending"),
        };
        let apps = administration::enterprise_apps(&*state.store, &portal.actor, &portal.tenant, &filter).await?;
        let total = apps.len();
        let (apps, paging) = layout::in_pages(apps, "/admin/enterprise-apps", &q)?;
        let publishers = administration::publishers(&*state.store, &apps).await?;
        let rows: Vec<Value> = apps
            .iter()
            .zip(publishers)
            .map(|(a, p)| {
                context! {
                    name => a.sp.display_name, href => format!("/admin/enterprise-apps/{}", a.sp.id),
                    app_id => a.sp.app_id.to_string(), publisher => p.name, verified => p.verified,
                    enabled => a.sp.enabled, assignment_required => a.sp.assignment_required,
                    pending => a.pending_requests,
                }
            })
            .collect();
        let echo = |k: &str| match yes_no(&q, k) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let filter_view = context! {
            q => filter.search, enabled => echo("enabled"), assignment => echo("assignment"),
            pending => echo("pending"),
        };
        let page = Page {
            section: Section::EnterpriseApps,
            crumbs: crumbs([
                ("Enterprise applications", "/admin/enterprise-apps"),
                ("All applications", "/admin/enterprise-apps"),
            ]),
            template: "admin/enterprise_apps.html",
            ctx: context! { apps => rows, total, paging, filter => filter_view },
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// An enterprise application with what its header shows.
struct AppHead {
    sp: ServicePrincipal,
    app: Option<Application>,
    view: Value,
}

impl AppHead {
    fn href(&self) -> String {
        format!("/admin/enterprise-apps/{}", self.sp.id)
    }

    /// Home > Enterprise applications > All applications > {app} > {tab}
    fn crumbs(&self, tab: &str, tab_path: &str) -> Vec<Crumb> {
        crumbs([
            ("Enterprise applications".to_string(), "/admin/enterprise-apps".to_string()),
            ("All applications".to_string(), "/admin/enterprise-apps".to_string()),
            (self.sp.display_name.clone(), self.href()),
            (tab.to_string(), format!("{}{tab_path}", self.href())),
        ])
    }

    /// The application's registration (the engine needs it for admin consent).
    fn registration(&self) -> Result<&Application, ServiceError> {
        self.app
            .as_ref()
            .ok_or_else(|| ServiceError::Internal(format!("service principal {} has no application", self.sp.id)))
    }
}

async fn head(state: &AppState, portal: &PortalUser, raw_id: &str) -> Result<AppHead, ServiceError> {
    need(portal, Operation::ReadDirectory)?;
    let store = &*state.store;
    let sp = administration::service_principal(store, &portal.tenant, parse_id(raw_id)?).await?;
    let app = store.application_by_app_id(sp.app_id).await?;
    let publisher = administration::publisher_name(store, sp.app_owner_tenant_id).await?;
    let pending = admin_consent_requests::pending_for_app(store, portal.tenant.id, sp.app_id).await?.len();
    let view = context! {
        name => sp.display_name, href => format!("/admin/enterprise-apps/{}", sp.id),
        app_id => sp.app_id.to_string(), sp_id => sp.id.to_string(),
        publisher, home_tenant => publisher, home_tenant_id => sp.app_owner_tenant_id.to_string(),
        own => sp.app_owner_tenant_id == portal.tenant.id,
        verified => app.as_ref().is_some_and(|a| a.verified_publisher),
        enabled => sp.enabled, assignment_required => sp.assignment_required,
        created => fmt_time(sp.created_at), pending,
        is_graph => sp.app_id == accord_core::well_known::GRAPH_APP_ID,
    };
    Ok(AppHead { sp, app, view })
}

/// The confirmation page before a destructive change to enterprise application `raw_id`, under
/// `tab`, for those allowed `op`: `describe` finds what goes (or fails with "not found") and says
/// what removing it does.
async fn confirm_change(
    state: &AppState,
    portal: &PortalUser,
    raw_id: &str,
    (op, tab): (Operation, (&str, &str, &str)),
    q: &HashMap<String, String>,
    describe: impl AsyncFnOnce(&AppHead) -> Result<Confirm<'static>, ServiceError>,
) -> Response {
    let result = async {
        need(portal, op)?;
        let head = head(state, portal, raw_id).await?;
        let confirm = describe(&head).await?;
        Ok(confirm.page(state, portal, Section::EnterpriseApps, head.crumbs(tab.1, tab.2), q).await)
    }
    .await;
    respond(state, portal, result).await
}

async fn tab_page(
    state: &AppState,
    portal: &PortalUser,
    head: &AppHead,
    (tab, label, path): (&str, &str, &str),
    template: &str,
    extra: Value,
    q: &HashMap<String, String>,
) -> Response {
    let ctx = context! { app => head.view, tab, ..extra };
    let page = Page { section: Section::EnterpriseApps, crumbs: head.crumbs(label, path), template, ctx, query: q };
    layout::page(state, portal, page).await
}

const OVERVIEW: (&str, &str, &str) = ("overview", "Overview", "");
const PROPERTIES: (&str, &str, &str) = ("properties", "Properties", "/properties");
const USERS: (&str, &str, &str) = ("users", "Users and groups", "/users-and-groups");
const PERMISSIONS: (&str, &str, &str) = ("permissions", "Permissions", "/permissions");
const ACTIVITY: (&str, &str, &str) = ("activity", "Activity", "/activity");

pub async fn overview(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        Ok(tab_page(&state, &portal, &head, OVERVIEW, "admin/app_overview.html", context! {}, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn properties(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        // Assignment required with nobody assigned locks everyone out, the administrator too:
        // say so, and offer to assign the administrator (issue 18).
        let nobody_assigned = head.sp.assignment_required
            && administration::app_assignments(&*state.store, &portal.actor, &portal.tenant, head.sp.id)
                .await?
                .is_empty();
        let ctx = context! { nobody_assigned, my_id => portal.user.id.to_string() };
        Ok(tab_page(&state, &portal, &head, PROPERTIES, "admin/app_properties.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/properties`: enabled and assignment required.
pub async fn properties_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(sp): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let sp_id = parse_id(&sp)?;
        let (enabled, assignment) = (form.yes_no("enabled"), form.yes_no("assignment_required"));
        administration::set_service_principal(&*state.store, &portal.actor, &portal.tenant, sp_id, enabled, assignment)
            .await?;
        Ok(done(&format!("/admin/enterprise-apps/{sp_id}/properties"), "saved"))
    })
    .await
}

pub async fn delete_app(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &sp, (Operation::ManageEnterpriseApps, PROPERTIES), &q, async |head| {
        let p = administration::app_permissions(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        let assigned =
            administration::app_assignments(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        Ok(Confirm {
            heading: "Delete enterprise application".into(),
            message: format!(
                "{} will be removed from {}: every permission granted to it and every assignment. Users can no \
                 longer sign in to it and it gets no more tokens; it comes back only if someone consents again.",
                head.sp.display_name, portal.tenant.display_name
            ),
            details: vec![
                ("Application".into(), head.sp.display_name.clone()),
                ("Application (client) ID".into(), head.sp.app_id.to_string()),
                (
                    "Permission grants".into(),
                    (p.admin_consented.len() + p.user_consented.len() + p.application.len()).to_string(),
                ),
                ("Users and groups assigned".into(), assigned.len().to_string()),
            ],
            action: format!("{}/delete", head.href()),
            button: "Delete",
            cancel: format!("{}/properties", head.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn delete_app_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(sp): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        administration::delete_service_principal(&*state.store, &portal.actor, &portal.tenant, parse_id(&sp)?).await?;
        Ok(done("/admin/enterprise-apps", "app_deleted"))
    })
    .await
}

pub async fn users_and_groups(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        let assignments =
            administration::app_assignments(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        let rows: Vec<Value> = assignments
            .iter()
            .map(|a| {
                context! {
                    id => a.assignment.id.to_string(), name => a.principal.display_name, upn => a.principal.upn,
                    kind => a.principal.kind.as_str(), role => a.role, created => fmt_time(a.assignment.created_at),
                    ends => a.assignment.expires_at.map(fmt_time),
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &head, USERS, "admin/app_users.html", context! { assignments => rows }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `GET …/users-and-groups/add?q=`: "Add user/group" — search, pick a user or group and a role.
/// What the add-assignment page shows: the search, the users and groups chosen so far, the
/// role and the end. "Search" posts the form back (CSRF-checked) and keeps every choice.
#[derive(Default)]
struct AssignmentPick {
    q: String,
    chosen: Vec<Uuid>,
    role: String,
    ends: String,
}

impl AssignmentPick {
    fn from_form(form: &layout::Form) -> Result<Self, ServiceError> {
        let chosen = form
            .all("principal")
            .into_iter()
            .map(Uuid::parse_str)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Aadsts::invalid_parameter("principal", "choose users or groups from the list"))?;
        if chosen.len() > administration::MAX_ASSIGNMENTS_AT_ONCE {
            return Err(
                Aadsts::invalid_parameter("principal", "at most 100 users and groups can be assigned at once").into()
            );
        }
        Ok(AssignmentPick {
            q: form.get("q").to_string(),
            chosen,
            role: form.get("role").to_string(),
            ends: form.get("ends_after_days").to_string(),
        })
    }
}

pub async fn add_assignment(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        let pick = AssignmentPick { q: q.get("q").cloned().unwrap_or_default(), ..Default::default() };
        add_assignment_page(&state, &portal, &head, pick, &q).await
    }
    .await;
    respond(&state, &portal, result).await
}

/// The most search results the picker lists (narrow the search for more).
const PICKER_RESULTS: usize = 50;

async fn add_assignment_page(
    state: &AppState,
    portal: &PortalUser,
    head: &AppHead,
    pick: AssignmentPick,
    q: &HashMap<String, String>,
) -> Result<Response, ServiceError> {
    need(portal, Operation::ManageAssignments)?;
    let (store, actor, tenant) = (&*state.store, &portal.actor, &portal.tenant);
    let view = |p: &administration::PrincipalSummary| {
        context! {
            id => p.id.to_string(), name => p.display_name, upn => p.upn, kind => p.kind.as_str(), enabled => p.enabled,
        }
    };
    let chosen = administration::principals_by_ids(store, actor, tenant, &pick.chosen).await?;
    let found = administration::find_principals(store, actor, tenant, &pick.q, true, PICKER_RESULTS + 1).await?;
    let more = found.len() > PICKER_RESULTS;
    let results: Vec<Value> =
        found.iter().take(PICKER_RESULTS).filter(|p| !pick.chosen.contains(&p.id)).map(view).collect();
    let default_access = "Access to the app without a specific role.";
    let mut roles = vec![context! { id => "", name => "Default Access", description => default_access }];
    if let Some(app) = &head.app {
        for r in app.app_roles.iter().filter(|r| r.allowed_member_types.contains(&AppRoleMemberType::User)) {
            let name = administration::app_role_name(Some(app), r.id);
            roles.push(context! { id => r.id.to_string(), name, description => r.description });
        }
    }
    let ctx = context! {
        q => pick.q, chosen => chosen.iter().map(view).collect::<Vec<_>>(), results, more, roles,
        role_chosen => pick.role, ends_chosen => pick.ends, app => head.view,
    };
    let mut crumbs = head.crumbs(USERS.1, USERS.2);
    crumbs.push(Crumb { label: "Add Assignment".into(), href: format!("{}/users-and-groups/add", head.href()) });
    let template = "admin/app_add_assignment.html";
    let page = Page { section: Section::EnterpriseApps, crumbs, template, ctx, query: q };
    Ok(layout::page(state, portal, page).await)
}

pub async fn add_assignment_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(sp): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let pick = AssignmentPick::from_form(&form)?;
        if form.get("op") == "search" {
            let head = head(state, portal, &sp).await?;
            return add_assignment_page(state, portal, &head, pick, &HashMap::new()).await;
        }
        let sp_id = parse_id(&sp)?;
        if pick.chosen.is_empty() {
            return Err(Aadsts::invalid_parameter("principal", "choose at least one user or group").into());
        }
        let role = match pick.role.as_str() {
            "" => None,
            r => Some(
                Uuid::parse_str(r).map_err(|_| Aadsts::invalid_parameter("role", "choose one of the app's roles"))?,
            ),
        };
        let ends = ends_after(&pick.ends)?;
        let (store, actor, tenant) = (&*state.store, &portal.actor, &portal.tenant);
        let added = administration::add_assignments(store, actor, tenant, sp_id, &pick.chosen, role, ends).await?;
        let code = if added.len() == 1 { "assigned" } else { "assigned_many" };
        Ok(done(&format!("/admin/enterprise-apps/{sp_id}/users-and-groups"), code))
    })
    .await
}

pub async fn remove_assignment(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((sp, assignment)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &sp, (Operation::ManageAssignments, USERS), &q, async |head| {
        let id: Uuid = parse_id(&assignment)?;
        let found = administration::app_assignments(&*state.store, &portal.actor, &portal.tenant, head.sp.id)
            .await?
            .into_iter()
            .find(|a| a.assignment.id == id)
            .ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove assignment".into(),
            message: format!(
                "{} will no longer be assigned to {}.{}",
                found.principal.display_name,
                head.sp.display_name,
                if head.sp.assignment_required {
                    " As assignment is required, they lose access unless assigned another way."
                } else {
                    ""
                }
            ),
            details: vec![
                ("Name".into(), found.principal.display_name.clone()),
                ("Type".into(), found.principal.kind.as_str().into()),
                ("Role".into(), found.role.clone()),
            ],
            action: format!("{}/users-and-groups/{id}/remove", head.href()),
            button: "Remove",
            cancel: format!("{}/users-and-groups", head.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_assignment_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((sp, assignment)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (sp_id, id) = (parse_id(&sp)?, parse_id(&assignment)?);
        administration::remove_app_role_assignment(&*state.store, &portal.actor, &portal.tenant, sp_id, id).await?;
        Ok(done(&format!("/admin/enterprise-apps/{sp_id}/users-and-groups"), "unassigned"))
    })
    .await
}

pub async fn permissions(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        let p = administration::app_permissions(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        let grant = |g: &administration::GrantSummary| {
            context! {
                id => g.grant.id.to_string(), resource => g.resource, scopes => g.grant.scopes,
                created => fmt_time(g.grant.created_at), ends => g.grant.expires_at.map(fmt_time),
                principal => g.principal.as_ref().map(|p| format!("{} ({})", p.display_name, p.upn)),
            }
        };
        let application: Vec<Value> = p
            .application
            .iter()
            .map(|a| {
                context! {
                    id => a.assignment.id.to_string(), resource => a.resource, value => a.value,
                    display_name => a.display_name, created => fmt_time(a.assignment.created_at),
                    ends => a.assignment.expires_at.map(fmt_time),
                }
            })
            .collect();
        let ctx = context! {
            admin_grants => p.admin_consented.iter().map(grant).collect::<Vec<_>>(),
            user_grants => p.user_consented.iter().map(grant).collect::<Vec<_>>(),
            application,
        };
        Ok(tab_page(&state, &portal, &head, PERMISSIONS, "admin/app_permissions.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// What a confirmation page showed, so the POST grants nothing else.
pub fn fingerprint(permissions: &[PermissionRef]) -> String {
    let mut keys: Vec<String> =
        permissions.iter().map(|p| format!("{}:{}:{}", p.resource_sp_id, p.id, p.kind.as_str())).collect();
    keys.sort();
    keys.join(",")
}

pub fn permission_views(permissions: &[PermissionRef], kind: PermissionKind) -> Vec<Value> {
    permissions
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| {
            context! {
                resource => p.resource_display_name, value => p.value, display_name => p.display_name,
                description => p.description, admin_only => p.admin_consent_required,
            }
        })
        .collect()
}

/// `GET …/permissions/admin-consent`: "Grant admin consent for <tenant>" — what the app's
/// static list would grant, decided by the engine for this administrator.
pub async fn admin_consent(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        let app = head.registration()?;
        let ctx = match administration::admin_consent_preview(&*state.store, &portal.actor, &portal.tenant, app).await {
            Ok(perms) => context! {
                delegated => permission_views(&perms, PermissionKind::Delegated),
                application => permission_views(&perms, PermissionKind::Application),
                shown => fingerprint(&perms),
            },
            Err(
                ServiceError::Refused(e)
                | ServiceError::Forbidden(e)
                | ServiceError::Conflict(e)
                | ServiceError::NotFound(e),
            ) => context! { refusal => e.to_string() },
            Err(other) => return Err(other),
        };
        let ctx = context! { app => head.view, ..ctx };
        let mut crumbs = head.crumbs(PERMISSIONS.1, PERMISSIONS.2);
        crumbs.push(Crumb {
            label: format!("Grant admin consent for {}", portal.tenant.display_name),
            href: String::new(),
        });
        let page =
            Page { section: Section::EnterpriseApps, crumbs, template: "admin/app_admin_consent.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn admin_consent_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(sp): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let store = &*state.store;
        let sp = administration::service_principal(store, &portal.tenant, parse_id(&sp)?).await?;
        let app = store.application_by_app_id(sp.app_id).await?.ok_or_else(not_found)?;
        let now = administration::admin_consent_preview(store, &portal.actor, &portal.tenant, &app).await?;
        if fingerprint(&now) != form.get("shown") {
            return Err(changed_since_shown());
        }
        let ends = ends_after(form.get("ends_after_days"))?;
        administration::grant_admin_consent(store, &portal.actor, &portal.tenant, &app, ends).await?;
        Ok(done(&format!("/admin/enterprise-apps/{}/permissions", sp.id), "consented"))
    })
    .await
}

/// The end a form's "How long it lasts" chose: none, or 1 to 3,650 days from now.
fn ends_after(days: &str) -> Result<Option<time::OffsetDateTime>, ServiceError> {
    if days.is_empty() {
        return Ok(None);
    }
    match days.parse::<i64>() {
        Ok(n) if (1..=3_650).contains(&n) => Ok(Some(accord_core::clock::now() + time::Duration::days(n))),
        _ => Err(ServiceError::Refused(Aadsts::invalid_parameter("ends_after_days", "choose how long it lasts"))),
    }
}

pub fn changed_since_shown() -> ServiceError {
    ServiceError::conflict("The permissions changed since the page was shown. Nothing was granted; review them again.")
}

pub async fn revoke_grant(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((sp, grant)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &sp, (Operation::ManageGrants, PERMISSIONS), &q, async |head| {
        let id: Uuid = parse_id(&grant)?;
        let p = administration::app_permissions(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        let g = p.admin_consented.iter().chain(&p.user_consented).find(|g| g.grant.id == id).ok_or_else(not_found)?;
        let who = match &g.principal {
            Some(p) => format!("{} ({}), who consented for themselves", p.display_name, p.upn),
            None => format!("every user of {} (admin consent)", portal.tenant.display_name),
        };
        Ok(Confirm {
            heading: "Revoke permission grant".into(),
            message: format!(
                "{} will lose these delegated permissions for {who}. It can no longer refresh its tokens for \
                 them; users will be asked again (or need an administrator).",
                head.sp.display_name
            ),
            details: vec![
                ("API".into(), g.resource.clone()),
                ("Permissions".into(), g.grant.scopes.join(" ")),
                ("Granted for".into(), who.clone()),
                ("Granted".into(), fmt_time(g.grant.created_at)),
            ],
            action: format!("{}/permissions/grants/{id}/revoke", head.href()),
            button: "Revoke",
            cancel: format!("{}/permissions", head.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn revoke_grant_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((sp, grant)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (sp_id, id): (ServicePrincipalId, Uuid) = (parse_id(&sp)?, parse_id(&grant)?);
        administration::revoke_grant(&*state.store, &portal.actor, &portal.tenant, id).await?;
        Ok(done(&format!("/admin/enterprise-apps/{sp_id}/permissions"), "revoked"))
    })
    .await
}

pub async fn remove_app_permission(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((sp, assignment)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &sp, (Operation::ManageGrants, PERMISSIONS), &q, async |head| {
        let id: Uuid = parse_id(&assignment)?;
        let p = administration::app_permissions(&*state.store, &portal.actor, &portal.tenant, head.sp.id).await?;
        let a = p.application.iter().find(|a| a.assignment.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove application permission".into(),
            message: format!(
                "{} will no longer hold this application permission: its next app-only token for {} will not carry it.",
                head.sp.display_name, a.resource
            ),
            details: vec![
                ("API".into(), a.resource.clone()),
                ("Permission".into(), a.value.clone()),
                ("Granted".into(), fmt_time(a.assignment.created_at)),
            ],
            action: format!("{}/permissions/application/{id}/remove", head.href()),
            button: "Remove",
            cancel: format!("{}/permissions", head.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_app_permission_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((sp, assignment)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (sp_id, id) = (parse_id(&sp)?, parse_id(&assignment)?);
        let store = &*state.store;
        // An application permission is an assignment *to the resource* (e.g. Microsoft Graph).
        let held = administration::app_permissions(store, &portal.actor, &portal.tenant, sp_id).await?;
        let a = held.application.iter().find(|a| a.assignment.id == id).ok_or_else(not_found)?;
        administration::remove_app_role_assignment(
            store,
            &portal.actor,
            &portal.tenant,
            a.assignment.resource_sp_id,
            id,
        )
        .await?;
        Ok(done(&format!("/admin/enterprise-apps/{sp_id}/permissions"), "app_permission_removed"))
    })
    .await
}

pub async fn activity(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(sp): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let head = head(&state, &portal, &sp).await?;
        let events = if administration::may(&portal.actor, Operation::ReadAudit) {
            let names = HashMap::from([(head.sp.app_id, head.sp.display_name.clone())]);
            let latest = accord_store::AuditQuery::latest(Some(head.sp.app_id), 100);
            let events = administration::audit_log(&*state.store, &portal.actor, &portal.tenant, &latest).await?;
            super::audit::event_views(&events, &names)
        } else {
            Vec::new()
        };
        Ok(tab_page(&state, &portal, &head, ACTIVITY, "admin/app_activity.html", context! { events }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}
