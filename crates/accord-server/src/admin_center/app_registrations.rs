//! App registrations of the tenant's own apps: overview and redirect URIs, client secrets (the
//! value shown once), required permissions on Microsoft Graph, exposed scopes and app roles.
//! Pages build the changed registration; `administration::update_application` validates it.

use super::layout::{
    self, crumbs, done, fmt_time, need, not_found, parse_id, respond, Confirm, Crumb, Destructive, Form, Page, Section,
};
use crate::portal::PortalUser;
use crate::service::administration::{self, Operation};
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use accord_core::directory::{
    AppRole, AppRoleMemberType, Application, PermissionScope, RequiredResourceAccess, SignInAudience,
};
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::Aadsts;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

fn audience_label(a: SignInAudience) -> &'static str {
    match a {
        SignInAudience::SingleOrg => "My organisation only (single tenant)",
        SignInAudience::MultipleOrgs => "Multiple organisations (multitenant)",
    }
}

fn list_crumbs(extra: Vec<(String, String)>) -> Vec<Crumb> {
    let mut items = vec![("App registrations".to_string(), "/admin/app-registrations".to_string())];
    items.extend(extra);
    crumbs(items)
}

/// `GET /admin/app-registrations`
pub async fn list(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let apps = administration::app_registrations(&*state.store, &portal.actor, &portal.tenant).await?;
        let rows: Vec<Value> = apps
            .iter()
            .map(|(a, secrets)| {
                context! {
                    app_id => a.app_id.to_string(), name => a.display_name,
                    audience => audience_label(a.sign_in_audience), secrets => *secrets,
                }
            })
            .collect();
        let ctx = context! { apps => rows };
        let crumbs = list_crumbs(vec![]);
        let page = Page {
            section: Section::AppRegistrations,
            crumbs,
            template: "admin/app_registrations.html",
            ctx,
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `GET /admin/app-registrations/new`
pub async fn new(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        need(&portal, Operation::ManageAppRegistrations)?;
        let crumbs = list_crumbs(vec![("Register an application".into(), "/admin/app-registrations/new".into())]);
        let page = Page {
            section: Section::AppRegistrations,
            crumbs,
            template: "admin/app_registration_new.html",
            ctx: context! {},
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn new_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let audience = match form.get("audience") {
            "multiple_orgs" => SignInAudience::MultipleOrgs,
            "single_org" | "" => SignInAudience::SingleOrg,
            _ => return Err(Aadsts::invalid_parameter("audience", "choose the supported account types").into()),
        };
        let app = administration::create_application(
            &*state.store,
            &portal.actor,
            &portal.tenant,
            form.get("display_name"),
            audience,
        )
        .await?;
        Ok(done(&format!("/admin/app-registrations/{}", app.app_id), "app_created"))
    })
    .await
}

/// A registration with what its header shows.
struct Reg {
    app: Application,
    view: Value,
}

impl Reg {
    fn href(&self) -> String {
        format!("/admin/app-registrations/{}", self.app.app_id)
    }

    fn crumbs(&self, tab: &str, path: &str) -> Vec<Crumb> {
        list_crumbs(vec![
            (self.app.display_name.clone(), self.href()),
            (tab.to_string(), format!("{}{path}", self.href())),
        ])
    }
}

async fn reg(state: &AppState, portal: &PortalUser, raw: &str) -> Result<Reg, ServiceError> {
    let app = administration::app_registration(&*state.store, &portal.actor, &portal.tenant, parse_id(raw)?).await?;
    let sp = state.store.service_principal_by_app_id(portal.tenant.id, app.app_id).await?;
    let uris: Vec<Value> = app.redirect_uris.iter().enumerate().map(|(index, uri)| context! { index, uri }).collect();
    let view = context! {
        name => app.display_name, app_id => app.app_id.to_string(), object_id => app.id.to_string(),
        href => format!("/admin/app-registrations/{}", app.app_id), audience => audience_label(app.sign_in_audience),
        public_client => app.public_client, verified => app.verified_publisher, identifier_uri => app.identifier_uri,
        redirect_uris => uris, sp_href => sp.map(|s| format!("/admin/enterprise-apps/{}", s.id)),
    };
    Ok(Reg { app, view })
}

const OVERVIEW: (&str, &str, &str) = ("overview", "Overview and authentication", "");
const SECRETS: (&str, &str, &str) = ("secrets", "Certificates & secrets", "/secrets");
const API: (&str, &str, &str) = ("api", "API permissions", "/api-permissions");
const EXPOSE: (&str, &str, &str) = ("expose", "Expose an API", "/expose-api");
const ROLES: (&str, &str, &str) = ("roles", "App roles", "/app-roles");

async fn tab_page(
    state: &AppState,
    portal: &PortalUser,
    reg: &Reg,
    (tab, label, path): (&str, &str, &str),
    template: &str,
    extra: Value,
    q: &HashMap<String, String>,
) -> Response {
    let page = Page {
        section: Section::AppRegistrations,
        crumbs: reg.crumbs(label, path),
        template,
        ctx: context! { app => reg.view, tab, ..extra },
        query: q,
    };
    layout::page(state, portal, page).await
}

/// Saves a changed registration through the service, then shows `tab` with a message.
async fn save(
    state: &AppState,
    portal: &PortalUser,
    app: Application,
    path: &str,
    code: &str,
) -> Result<Response, ServiceError> {
    let app = administration::update_application(&*state.store, &portal.actor, &portal.tenant, app).await?;
    Ok(done(&format!("/admin/app-registrations/{}{path}", app.app_id), code))
}

/// The registration a POST changes (the service checks the role when saving).
async fn own(state: &AppState, portal: &PortalUser, raw: &str) -> Result<Application, ServiceError> {
    administration::own_application(&*state.store, &portal.tenant, parse_id(raw)?).await
}

/// The confirmation page before a destructive change to registration `raw`, under `tab`:
/// `describe` finds what goes (or fails with "not found") and says what removing it does.
/// Shown only to those who may manage registrations.
async fn confirm_change(
    state: &AppState,
    portal: &PortalUser,
    raw: &str,
    tab: (&str, &str, &str),
    q: &HashMap<String, String>,
    describe: impl AsyncFnOnce(&Reg) -> Result<Confirm<'static>, ServiceError>,
) -> Response {
    let result = async {
        need(portal, Operation::ManageAppRegistrations)?;
        let reg = reg(state, portal, raw).await?;
        let confirm = describe(&reg).await?;
        Ok(confirm.page(state, portal, Section::AppRegistrations, reg.crumbs(tab.1, tab.2), q).await)
    }
    .await;
    respond(state, portal, result).await
}

/// A form that edits registration `raw`: `edit` changes it (failing with "not found" when what
/// it names is gone), the service saves it, and the tab at `path` shows the message `code`.
#[allow(clippy::too_many_arguments)]
async fn edit_post(
    state: &AppState,
    portal: &PortalUser,
    headers: &HeaderMap,
    body: &[u8],
    destructive: Destructive,
    raw: &str,
    (path, code): (&str, &str),
    edit: impl FnOnce(&mut Application, &Form) -> Result<(), ServiceError>,
) -> Response {
    layout::post(state, portal, headers, body, destructive, |form| async move {
        let mut app = own(state, portal, raw).await?;
        edit(&mut app, &form)?;
        save(state, portal, app, path, code).await
    })
    .await
}

/// Removes the entries of `list` that `goes` picks; "not found" when there were none.
fn remove_from<T>(list: &mut Vec<T>, goes: impl Fn(&T) -> bool) -> Result<(), ServiceError> {
    let before = list.len();
    list.retain(|x| !goes(x));
    if list.len() == before {
        return Err(not_found());
    }
    Ok(())
}

pub async fn overview(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        Ok(tab_page(&state, &portal, &reg, OVERVIEW, "admin/reg_overview.html", context! {}, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn add_redirect_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, ("", "redirect_added"), |app, form| {
        let uri = form.get("uri").trim().to_string();
        if !app.redirect_uris.contains(&uri) {
            app.redirect_uris.push(uri);
        }
        Ok(())
    })
    .await
}

pub async fn remove_redirect(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, OVERVIEW, &q, async |reg| {
        let index: usize = q.get("i").and_then(|i| i.parse().ok()).ok_or_else(not_found)?;
        let uri = reg.app.redirect_uris.get(index).cloned().ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove redirect URI".into(),
            message: format!(
                "Sign-ins that return to this address will fail with AADSTS50011 for {}.",
                reg.app.display_name
            ),
            details: vec![("Redirect URI".into(), uri.clone())],
            action: format!("{}/redirect-uris/remove", reg.href()),
            button: "Remove",
            cancel: reg.href(),
            hidden: vec![("uri", uri)],
        })
    })
    .await
}

pub async fn remove_redirect_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, ("", "redirect_removed"), |app, form| {
        remove_from(&mut app.redirect_uris, |u| u == form.get("uri"))
    })
    .await
}

pub async fn secrets(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let list = administration::client_secrets(&*state.store, &portal.actor, &portal.tenant, reg.app.app_id).await?;
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                context! {
                    id => s.id.to_string(), name => s.display_name, hint => s.hint, created => fmt_time(s.created_at),
                    expires => s.expires_at.map(fmt_time).unwrap_or_else(|| "Never".into()),
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &reg, SECRETS, "admin/reg_secrets.html", context! { secrets => rows }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/secrets`: a new secret, whose value this response shows once (no redirect, so it
/// is in no URL and no later page; responses are `no-store`).
pub async fn add_secret_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let app_id = parse_id(&app)?;
        let days: u32 = form
            .get("days")
            .parse()
            .map_err(|_| Aadsts::invalid_parameter("days", "choose when the secret expires"))?;
        let (secret, value) = administration::add_client_secret(
            &*state.store,
            &state.keyring,
            &portal.actor,
            &portal.tenant,
            app_id,
            form.get("description"),
            days,
        )
        .await?;
        let reg = reg(state, portal, &app).await?;
        let ctx = context! {
            secret => context! {
                id => secret.id.to_string(), name => secret.display_name,
                expires => secret.expires_at.map(fmt_time).unwrap_or_else(|| "Never".into()),
            },
            secret_value => value,
        };
        let res = tab_page(state, portal, &reg, SECRETS, "admin/reg_secret_created.html", ctx, &HashMap::new()).await;
        Ok(res)
    })
    .await
}

pub async fn delete_secret(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, secret)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, SECRETS, &q, async |reg| {
        let id = parse_id(&secret)?;
        let s = administration::client_secrets(&*state.store, &portal.actor, &portal.tenant, reg.app.app_id)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Delete client secret".into(),
            message: format!(
                "{} can no longer authenticate with this secret. This cannot be undone.",
                reg.app.display_name
            ),
            details: vec![
                ("Description".into(), s.display_name.clone()),
                ("Value".into(), format!("{}••••••••", s.hint)),
                ("Secret ID".into(), s.id.to_string()),
            ],
            action: format!("{}/secrets/{id}/delete", reg.href()),
            button: "Delete",
            cancel: format!("{}/secrets", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn delete_secret_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, secret)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (app_id, id) = (parse_id(&app)?, parse_id(&secret)?);
        administration::delete_client_secret(&*state.store, &portal.actor, &portal.tenant, app_id, id).await?;
        Ok(done(&format!("/admin/app-registrations/{app_id}/secrets"), "secret_deleted"))
    })
    .await
}

/// Names of a required permission for lists: (resource name, display name, admin consent required).
async fn describe_required(
    state: &AppState,
    resource_app_id: Uuid,
    value: &str,
    application: bool,
) -> Result<(String, String, bool), ServiceError> {
    let resource = state.store.application_by_app_id(resource_app_id).await?;
    let Some(r) = resource else { return Ok((resource_app_id.to_string(), String::new(), true)) };
    let (name, admin) = if application {
        (r.app_role(value).map(|x| x.display_name.clone()).unwrap_or_default(), true)
    } else {
        r.scope(value).map(|s| (s.admin_consent_display_name.clone(), s.admin_consent_required)).unwrap_or_default()
    };
    Ok((r.display_name, name, admin))
}

pub async fn api_permissions(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let mut required = Vec::new();
        for (r, req) in reg.app.required.iter().enumerate() {
            let lists = [("d", "Delegated", &req.delegated, false), ("a", "Application", &req.application, true)];
            for (k, kind, values, application) in lists {
                for (i, value) in values.iter().enumerate() {
                    let (resource, display_name, admin_only) =
                        describe_required(&state, req.resource_app_id, value, application).await?;
                    required.push(context! { r, k, i, kind, value, resource, display_name, admin_only });
                }
            }
        }
        let graph = state.store.application_by_app_id(GRAPH_APP_ID).await?.ok_or_else(not_found)?;
        let graph_delegated: Vec<Value> = graph
            .scopes
            .iter()
            .map(|s| {
                context! {
                    value => s.value, display_name => s.admin_consent_display_name,
                    admin_only => s.admin_consent_required,
                }
            })
            .collect();
        let graph_application: Vec<Value> = graph
            .app_roles
            .iter()
            .filter(|r| r.allowed_member_types.contains(&AppRoleMemberType::Application))
            .map(|r| context! { value => r.value, display_name => r.display_name })
            .collect();
        let ctx = context! { required, graph_delegated, graph_application };
        Ok(tab_page(&state, &portal, &reg, API, "admin/reg_api_permissions.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/api-permissions`: `permission=delegated:User.Read` or `application:User.Read.All`
/// on Microsoft Graph.
pub async fn add_permission_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/api-permissions", "permission_added");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let (kind, value) = form
            .get("permission")
            .split_once(':')
            .ok_or_else(|| Aadsts::invalid_parameter("permission", "choose a permission"))?;
        let index = match app.required.iter().position(|r| r.resource_app_id == GRAPH_APP_ID) {
            Some(i) => i,
            None => {
                app.required.push(RequiredResourceAccess {
                    resource_app_id: GRAPH_APP_ID,
                    delegated: Vec::new(),
                    application: Vec::new(),
                });
                app.required.len() - 1
            }
        };
        let entry = &mut app.required[index];
        let list = match kind {
            "delegated" => &mut entry.delegated,
            "application" => &mut entry.application,
            _ => {
                return Err(
                    Aadsts::invalid_parameter("permission", "choose a delegated or an application permission").into()
                )
            }
        };
        if !list.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            list.push(value.to_string());
        }
        Ok(())
    })
    .await
}

pub async fn remove_permission(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, API, &q, async |reg| {
        let index = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
        let req = index("r").and_then(|r| reg.app.required.get(r)).ok_or_else(not_found)?;
        let application = q.get("k").map(String::as_str) == Some("a");
        let list = if application { &req.application } else { &req.delegated };
        let value = index("i").and_then(|i| list.get(i)).cloned().ok_or_else(not_found)?;
        let (resource, display_name, _) = describe_required(&state, req.resource_app_id, &value, application).await?;
        Ok(Confirm {
            heading: "Remove permission".into(),
            message: format!(
                "{} will no longer ask for this permission. Consent already granted stays until it is \
                 revoked on the enterprise application.",
                reg.app.display_name
            ),
            details: vec![
                ("API".into(), resource),
                ("Permission".into(), format!("{value} — {display_name}")),
                ("Type".into(), if application { "Application" } else { "Delegated" }.into()),
            ],
            action: format!("{}/api-permissions/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/api-permissions", reg.href()),
            hidden: vec![
                ("resource", req.resource_app_id.to_string()),
                ("kind", if application { "application" } else { "delegated" }.to_string()),
                ("value", value),
            ],
        })
    })
    .await
}

pub async fn remove_permission_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/api-permissions", "permission_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, form| {
        let resource = Uuid::parse_str(form.get("resource")).map_err(|_| not_found())?;
        let entry = app.required.iter_mut().find(|r| r.resource_app_id == resource).ok_or_else(not_found)?;
        let list = if form.get("kind") == "application" { &mut entry.application } else { &mut entry.delegated };
        remove_from(list, |v| v == form.get("value"))?;
        app.required.retain(|r| !(r.delegated.is_empty() && r.application.is_empty()));
        Ok(())
    })
    .await
}

pub async fn expose_api(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let scopes: Vec<Value> = reg
            .app
            .scopes
            .iter()
            .map(|s| {
                context! {
                    id => s.id.to_string(), value => s.value, admin_only => s.admin_consent_required,
                    admin_name => s.admin_consent_display_name, user_name => s.user_consent_display_name,
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &reg, EXPOSE, "admin/reg_expose_api.html", context! { scopes }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn add_scope_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, ("/expose-api", "scope_added"), |app, form| {
        let admin_name = form.get("admin_name").trim().to_string();
        let admin_description = form.get("admin_description").trim().to_string();
        let user_name = match form.get("user_name").trim() {
            "" => admin_name.clone(),
            n => n.to_string(),
        };
        let user_description = match form.get("user_description").trim() {
            "" => admin_description.clone(),
            d => d.to_string(),
        };
        app.scopes.push(PermissionScope {
            id: Uuid::new_v4(),
            value: form.get("value").trim().to_string(),
            admin_consent_required: form.get("who") != "users",
            admin_consent_display_name: admin_name,
            admin_consent_description: admin_description,
            user_consent_display_name: user_name,
            user_consent_description: user_description,
        });
        Ok(())
    })
    .await
}

pub async fn remove_scope(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, id)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, EXPOSE, &q, async |reg| {
        let id = parse_id(&id)?;
        let s = reg.app.scopes.iter().find(|s| s.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove scope".into(),
            message: format!(
                "Apps can no longer ask for {} on {}; tokens stop carrying it.",
                s.value, reg.app.display_name
            ),
            details: vec![
                ("Scope".into(), s.value.clone()),
                ("Admin consent display name".into(), s.admin_consent_display_name.clone()),
            ],
            action: format!("{}/scopes/{id}/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/expose-api", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_scope_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/expose-api", "scope_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id = parse_id(&id)?;
        remove_from(&mut app.scopes, |s| s.id == id)
    })
    .await
}

pub async fn app_roles(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let roles: Vec<Value> = reg
            .app
            .app_roles
            .iter()
            .map(|r| {
                let members: Vec<&str> = r
                    .allowed_member_types
                    .iter()
                    .map(|m| match m {
                        AppRoleMemberType::User => "Users/Groups",
                        AppRoleMemberType::Application => "Applications",
                    })
                    .collect();
                context! {
                    id => r.id.to_string(), name => r.display_name, value => r.value,
                    description => r.description, members,
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &reg, ROLES, "admin/reg_app_roles.html", context! { roles }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn add_role_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, ("/app-roles", "role_added"), |app, form| {
        let mut members = Vec::new();
        for m in form.all("member") {
            members.push(match m {
                "User" => AppRoleMemberType::User,
                "Application" => AppRoleMemberType::Application,
                _ => return Err(Aadsts::invalid_parameter("member", "Users/Groups or Applications").into()),
            });
        }
        let value = form.get("value").trim().to_string();
        let display_name = match form.get("display_name").trim() {
            "" => value.clone(),
            n => n.to_string(),
        };
        app.app_roles.push(AppRole {
            id: Uuid::new_v4(),
            value,
            display_name,
            description: form.get("description").trim().to_string(),
            allowed_member_types: members,
        });
        Ok(())
    })
    .await
}

pub async fn remove_role(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, id)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, ROLES, &q, async |reg| {
        let id = parse_id(&id)?;
        let r = reg.app.app_roles.iter().find(|r| r.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove app role".into(),
            message: format!(
                "Users, groups and apps assigned {} lose it: it no longer appears in their tokens for {}.",
                r.value, reg.app.display_name
            ),
            details: vec![("Display name".into(), r.display_name.clone()), ("Value".into(), r.value.clone())],
            action: format!("{}/app-roles/{id}/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/app-roles", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_role_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/app-roles", "role_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id = parse_id(&id)?;
        remove_from(&mut app.app_roles, |r| r.id == id)
    })
    .await
}
