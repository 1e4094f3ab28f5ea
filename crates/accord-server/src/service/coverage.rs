//! Consent coverage of a multi-tenant app: per customer tenant, which of the permissions the
//! registration asks for (its static list) are granted — delegated for all users or for some,
//! application — which are missing (never consented, or added to the registration after the
//! tenant consented), who is assigned, and an admin-consent link asking for exactly what is
//! missing. `accord coverage` prints it.

use crate::service::ServiceError;
use accord_core::directory::{Application, ConsentType, PrincipalType, ServicePrincipal};
use accord_core::ids::{AppId, TenantId};
use accord_core::wording::count;
use accord_store::Store;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCoverage {
    pub app_id: AppId,
    pub display_name: String,
    pub tenants: Vec<TenantCoverage>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantCoverage {
    pub tenant_id: TenantId,
    pub display_name: String,
    /// The app has an enterprise app (service principal) in the tenant: someone consented.
    pub consented: bool,
    pub enabled: bool,
    pub assignment_required: bool,
    pub permissions: Vec<PermissionCoverage>,
    /// Users and groups assigned to the app ("Users and groups").
    pub assigned: Vec<String>,
    /// The permissions not granted for the organisation (`resource/permission`).
    pub missing: Vec<String>,
    /// An admin-consent link asking for exactly what is missing (none when nothing is).
    pub admin_consent_link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCoverage {
    pub resource: String,
    pub permission: String,
    /// `delegated` or `application`.
    pub kind: &'static str,
    /// Delegated: `all_users`, `some_users`, `not_in_consent` (the organisation consented to
    /// other permissions of this resource but not this one: added to the registration since, or
    /// left out) or `missing`; application: `granted` or `missing`.
    pub granted: &'static str,
    /// Users who consented for themselves (delegated, not granted for all users).
    pub users: usize,
}

/// The coverage of `app_id` in every tenant of this Accord.
pub async fn of_app(store: &dyn Store, app_id: AppId, public_url: &str) -> Result<AppCoverage, ServiceError> {
    let Some(app) = store.application_by_app_id(app_id).await? else {
        return Err(ServiceError::not_found(format!("no app registration with the application id {app_id}")));
    };
    let mut tenants = Vec::new();
    for tenant in store.tenants().await? {
        let sp = store.service_principal_by_app_id(tenant.id, app.app_id).await?;
        let mut coverage = TenantCoverage {
            tenant_id: tenant.id,
            display_name: tenant.display_name.clone(),
            consented: sp.is_some(),
            enabled: sp.as_ref().is_some_and(|s| s.enabled),
            assignment_required: sp.as_ref().is_some_and(|s| s.assignment_required),
            permissions: Vec::new(),
            assigned: Vec::new(),
            missing: Vec::new(),
            admin_consent_link: None,
        };
        let mut missing_scopes: Vec<String> = Vec::new();
        for required in &app.required {
            let resource_app = store.application_by_app_id(required.resource_app_id).await?;
            let resource_sp = store.service_principal_by_app_id(tenant.id, required.resource_app_id).await?;
            let name = resource_app.as_ref().map(resource_name).unwrap_or_else(|| required.resource_app_id.to_string());
            let found = granted_in(store, tenant.id, sp.as_ref(), resource_sp.as_ref(), resource_app.as_ref()).await?;
            let mut application_missing = false;
            for p in &required.delegated {
                let (mut granted, users) = found.delegated(p);
                if granted != "all_users" && !found.all_users.is_empty() {
                    granted = "not_in_consent";
                }
                coverage.permissions.push(PermissionCoverage {
                    resource: label_resource(&name, p),
                    permission: p.clone(),
                    kind: "delegated",
                    granted,
                    users,
                });
                if granted != "all_users" {
                    coverage.missing.push(scope_of(&name, p));
                    missing_scopes.push(scope_of(&name, p));
                }
            }
            for p in &required.application {
                let granted = if found.application(p) { "granted" } else { "missing" };
                coverage.permissions.push(PermissionCoverage {
                    resource: name.clone(),
                    permission: p.clone(),
                    kind: "application",
                    granted,
                    users: 0,
                });
                if granted == "missing" {
                    coverage.missing.push(format!("{name}/{p} (application)"));
                    application_missing = true;
                }
            }
            if application_missing {
                // Application permissions are consented through `.default` only.
                missing_scopes.retain(|s| !s.starts_with(&format!("{name}/")));
                missing_scopes.push(scope_of(&name, ".default"));
            }
        }
        if let Some(sp) = &sp {
            coverage.assigned = assigned_names(store, sp).await?;
        }
        if !missing_scopes.is_empty() {
            coverage.admin_consent_link = Some(admin_consent_link(public_url, tenant.id, &app, &missing_scopes));
        }
        tenants.push(coverage);
    }
    Ok(AppCoverage { app_id: app.app_id, display_name: app.display_name.clone(), tenants })
}

/// OpenID Connect scopes belong to no resource in what a person reads.
fn label_resource(resource: &str, permission: &str) -> String {
    if accord_core::microsoft_graph::is_oidc_scope(permission) {
        String::new()
    } else {
        resource.to_string()
    }
}

fn resource_name(app: &Application) -> String {
    app.identifier_uri.clone().unwrap_or_else(|| app.app_id.to_string())
}

/// `resource/permission` as a scope parameter value (OIDC scopes stay bare).
fn scope_of(resource: &str, permission: &str) -> String {
    if accord_core::microsoft_graph::is_oidc_scope(permission) {
        permission.to_string()
    } else {
        format!("{resource}/{permission}")
    }
}

/// What a tenant granted the client on one resource.
struct Found {
    all_users: Vec<String>,
    per_user: Vec<Vec<String>>,
    roles: Vec<String>,
}

impl Found {
    fn delegated(&self, p: &str) -> (&'static str, usize) {
        let has = |scopes: &Vec<String>| scopes.iter().any(|s| s.eq_ignore_ascii_case(p));
        if has(&self.all_users) {
            return ("all_users", 0);
        }
        let users = self.per_user.iter().filter(|s| has(s)).count();
        (if users > 0 { "some_users" } else { "missing" }, users)
    }

    fn application(&self, p: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(p))
    }
}

async fn granted_in(
    store: &dyn Store,
    tenant_id: TenantId,
    client_sp: Option<&ServicePrincipal>,
    resource_sp: Option<&ServicePrincipal>,
    resource_app: Option<&Application>,
) -> Result<Found, ServiceError> {
    let mut found = Found { all_users: Vec::new(), per_user: Vec::new(), roles: Vec::new() };
    let (Some(client_sp), Some(resource_sp)) = (client_sp, resource_sp) else { return Ok(found) };
    let now = accord_core::clock::now();
    for g in store.delegated_grants_of_client(tenant_id, client_sp.id).await? {
        if g.resource_sp_id != resource_sp.id || !g.in_force(now) {
            continue;
        }
        match g.consent_type {
            ConsentType::AllPrincipals => found.all_users.extend(g.scopes),
            ConsentType::Principal => found.per_user.push(g.scopes),
        }
    }
    for a in store.app_role_assignments_of(tenant_id, client_sp.id.into()).await? {
        if a.resource_sp_id != resource_sp.id || !a.in_force(now) {
            continue;
        }
        if let Some(role) = resource_app.and_then(|app| app.app_roles.iter().find(|r| r.id == a.app_role_id)) {
            found.roles.push(role.value.clone());
        }
    }
    Ok(found)
}

async fn assigned_names(store: &dyn Store, sp: &ServicePrincipal) -> Result<Vec<String>, ServiceError> {
    let mut names = Vec::new();
    for a in store.app_role_assignments_to(sp.tenant_id, sp.id).await? {
        let name = match a.principal_type {
            PrincipalType::User => store.user(sp.tenant_id, a.principal_id.into()).await?.map(|u| u.upn),
            PrincipalType::Group => {
                store.group(sp.tenant_id, a.principal_id.into()).await?.map(|g| format!("group {}", g.display_name))
            }
            PrincipalType::ServicePrincipal => None,
        };
        if let Some(n) = name.filter(|n| !names.contains(n)) {
            names.push(n);
        }
    }
    Ok(names)
}

fn admin_consent_link(public_url: &str, tenant_id: TenantId, app: &Application, scopes: &[String]) -> String {
    let mut url = format!("{public_url}/{tenant_id}/v2.0/adminconsent?");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", &app.app_id.to_string());
    query.append_pair("scope", &scopes.join(" "));
    if let Some(redirect) = app.redirect_uris.first() {
        query.append_pair("redirect_uri", redirect);
    }
    url.push_str(&query.finish());
    url
}

/// The coverage as a person reads it.
pub fn render(c: &AppCoverage) -> String {
    let tenants = count(c.tenants.len() as i64, "tenant");
    let mut out = format!("{} ({}) in {tenants}\n", c.display_name, c.app_id);
    for t in &c.tenants {
        let state = match (t.consented, t.enabled) {
            (false, _) => "never consented",
            (true, false) => "consented, disabled",
            (true, true) => "consented",
        };
        let assignment = if t.assignment_required { "assignment required" } else { "everyone may sign in" };
        out.push_str(&format!("\n{} ({}): {state}; {assignment}\n", t.display_name, t.tenant_id));
        for p in &t.permissions {
            let granted = match (p.granted, p.users) {
                ("some_users", n) => format!("some users ({n})"),
                ("not_in_consent", 0) => "not in the organisation's consent".to_string(),
                ("not_in_consent", n) => {
                    format!("not in the organisation's consent; {} consented", count(n as i64, "user"))
                }
                (g, _) => g.replace('_', " "),
            };
            let name =
                if p.resource.is_empty() { p.permission.clone() } else { format!("{}/{}", p.resource, p.permission) };
            out.push_str(&format!("  {:<11} {name:<55} {granted}\n", p.kind));
        }
        if !t.assigned.is_empty() {
            out.push_str(&format!("  assigned: {}\n", t.assigned.join(", ")));
        }
        match &t.admin_consent_link {
            Some(link) => {
                out.push_str(&format!("  missing: {}\n  admin consent for them: {link}\n", t.missing.join(", ")))
            }
            None => out.push_str("  nothing missing\n"),
        }
    }
    out
}
