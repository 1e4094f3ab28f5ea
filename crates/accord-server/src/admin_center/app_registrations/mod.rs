//! App registrations of the tenant's own apps: overview and redirect URIs (web, mobile and
//! single-page app), certificates, client secrets (the value shown once), federated credentials, required permissions on Microsoft Graph, exposed scopes and app roles.
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
use accord_core::ids::AppId;
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::Aadsts;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

mod api_permissions;
mod app_roles;
mod coverage;
mod exposed_api;
mod federated_credentials;
mod secrets;
mod token_configuration;
mod webhooks;

pub use api_permissions::*;
pub use app_roles::*;
pub use coverage::*;
pub use exposed_api::*;
pub use federated_credentials::*;
pub use secrets::*;
pub use token_configuration::*;
pub use webhooks::*;

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

/// Every redirect URI with its platform, as the portal lists them (removal is by position).
fn platform_redirect_uris(app: &Application) -> Vec<(&'static str, String)> {
    let own = if app.public_client { "Mobile and desktop" } else { "Web" };
    let web = app.redirect_uris.iter().map(|u| (own, u.clone()));
    web.chain(app.spa_redirect_uris.iter().map(|u| ("Single-page application", u.clone()))).collect()
}

async fn reg(state: &AppState, portal: &PortalUser, raw: &str) -> Result<Reg, ServiceError> {
    let app = administration::app_registration(&*state.store, &portal.actor, &portal.tenant, parse_id(raw)?).await?;
    let sp = state.store.service_principal_by_app_id(portal.tenant.id, app.app_id).await?;
    let uris: Vec<Value> = platform_redirect_uris(&app)
        .into_iter()
        .enumerate()
        .map(|(index, (platform, uri))| context! { index, uri, platform })
        .collect();
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
const TOKENS: (&str, &str, &str) = ("tokens", "Token configuration", "/token-configuration");
const WEBHOOKS: (&str, &str, &str) = ("webhooks", "Consent webhooks", "/webhooks");

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
        let list = if form.get("platform") == "spa" { &mut app.spa_redirect_uris } else { &mut app.redirect_uris };
        if !list.contains(&uri) {
            list.push(uri);
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
        let (platform, uri) = platform_redirect_uris(&reg.app).into_iter().nth(index).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove redirect URI".into(),
            message: format!(
                "Sign-ins that return to this address will fail with AADSTS50011 for {}.",
                reg.app.display_name
            ),
            details: vec![("Redirect URI".into(), uri.clone()), ("Platform".into(), platform.into())],
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
        let uri = form.get("uri");
        let spa_had = app.spa_redirect_uris.iter().any(|u| u == uri);
        app.spa_redirect_uris.retain(|u| u != uri);
        if spa_had {
            return Ok(());
        }
        remove_from(&mut app.redirect_uris, |u| u == uri)
    })
    .await
}
