//! Which delegated permissions a user's token may carry: the grants that exist for the client
//! in the tenant (admin consent for everyone, plus the user's own), checked against what the
//! request asks for. The full consent engine (prompts, policies, requests) builds on this.

use crate::protocol::errors::Failure;
use accord_core::directory::{Application, ConsentType, ServicePrincipal, SignInAudience, Tenant, User};
use accord_core::scope::{OidcScopes, ScopeRequest};
use accord_core::well_known::{DEFAULT_ACCESS_ROLE_ID, GRAPH_APP_ID};
use accord_core::Aadsts;
use accord_store::Store;
use uuid::Uuid;

/// A resource API as seen from one tenant.
#[derive(Debug, Clone)]
pub struct TenantResource {
    pub app: Application,
    pub sp: ServicePrincipal,
}

/// Finds an API by identifier URI or application id, and its service principal in the tenant.
pub async fn resolve_resource(store: &dyn Store, tenant_id: Uuid, name: &str) -> Result<TenantResource, Failure> {
    let app = match Uuid::parse_str(name) {
        Ok(app_id) => store.application_by_app_id(app_id).await?,
        Err(_) => store.application_by_identifier_uri(name).await?,
    };
    let Some(app) = app else {
        return Err(Aadsts::resource_not_found(&crate::tenancy::sanitize(name)).into());
    };
    match store.service_principal_by_app_id(tenant_id, app.app_id).await? {
        Some(sp) => Ok(TenantResource { app, sp }),
        None => Err(Aadsts::resource_not_found(&app.display_name).into()),
    }
}

/// Refuses clients that cannot be used in the tenant at all.
pub fn check_client_audience(client: &Application, tenant: &Tenant) -> Result<(), Aadsts> {
    if client.sign_in_audience == SignInAudience::SingleOrg && client.home_tenant_id != tenant.id {
        return Err(Aadsts::single_tenant_app(&client.app_id.to_string()));
    }
    Ok(())
}

/// What a user token may carry for one resource.
#[derive(Debug, Clone)]
pub struct DelegatedDecision {
    pub resource: TenantResource,
    /// Every permission granted to this client for the resource on the user's behalf.
    pub scopes: Vec<String>,
    pub oidc: OidcScopes,
}

/// Checks that grants cover the request and returns what the token carries. In this version a
/// missing grant is AADSTS65001; the consent pages turn it into a prompt.
pub async fn delegated_access(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    user: &User,
    request: &ScopeRequest,
) -> Result<DelegatedDecision, Failure> {
    check_client_audience(client, tenant)?;
    let client_id = client.app_id.to_string();
    let Some(client_sp) = store.service_principal_by_app_id(tenant.id, client.app_id).await? else {
        return Err(Aadsts::consent_missing(
            &client_id,
            "The application has no service principal in this tenant yet.",
        )
        .into());
    };
    if !client_sp.enabled {
        return Err(Aadsts::app_disabled(&client_id).into());
    }
    if client_sp.assignment_required && !is_assigned(store, tenant.id, &client_sp, user.id).await? {
        return Err(Aadsts::new(
            50105,
            accord_core::OAuthError::InvalidGrant,
            format!(
                "Your administrator has configured the application {} ('{client_id}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
                client.display_name, user.upn
            ),
        )
        .into());
    }
    let wanted = request.single_resource()?;
    let resource_name = wanted.map(|r| r.resource.clone()).unwrap_or_else(|| GRAPH_APP_ID.to_string());
    let resource = resolve_resource(store, tenant.id, &resource_name).await?;
    let grants = store.delegated_grants_of_client(tenant.id, client_sp.id).await?;
    let granted_for = |resource_sp_id: Uuid| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in grants.iter().filter(|g| g.resource_sp_id == resource_sp_id) {
            let applies = match g.consent_type {
                ConsentType::AllPrincipals => true,
                ConsentType::Principal => g.principal_id == Some(user.id),
            };
            if applies {
                for s in &g.scopes {
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                        out.push(s.clone());
                    }
                }
            }
        }
        out
    };
    let scopes = granted_for(resource.sp.id);
    let mut missing: Vec<String> = match wanted {
        Some(r) if r.default => {
            if scopes.is_empty() {
                vec![".default".into()]
            } else {
                Vec::new()
            }
        }
        Some(r) => r.permissions.iter().filter(|p| !contains(&scopes, p)).cloned().collect(),
        None => Vec::new(),
    };
    // OIDC scopes are Microsoft Graph permissions and need consent like any other.
    let oidc_values: Vec<&str> = request.oidc.values();
    if !oidc_values.is_empty() {
        let graph_scopes = if resource.app.app_id == GRAPH_APP_ID {
            scopes.clone()
        } else {
            let graph = resolve_resource(store, tenant.id, &GRAPH_APP_ID.to_string()).await?;
            granted_for(graph.sp.id)
        };
        missing.extend(oidc_values.iter().filter(|v| !contains(&graph_scopes, v)).map(|v| v.to_string()));
    }
    if !missing.is_empty() {
        return Err(Aadsts::consent_missing(&client_id, &format!("Missing consent for: {}.", missing.join(" "))).into());
    }
    if scopes.is_empty() && wanted.is_some() {
        return Err(Aadsts::consent_missing(&client_id, "No permission has been granted for this resource.").into());
    }
    Ok(DelegatedDecision { resource, scopes, oidc: request.oidc })
}

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(value))
}

/// A user is assigned when they, or a group they belong to (transitively), hold an assignment.
pub async fn is_assigned(
    store: &dyn Store,
    tenant_id: Uuid,
    sp: &ServicePrincipal,
    user_id: Uuid,
) -> Result<bool, Failure> {
    let assignments = store.app_role_assignments_to(tenant_id, sp.id).await?;
    if assignments.iter().any(|a| a.principal_id == user_id) {
        return Ok(true);
    }
    let groups = store.transitive_groups_of(tenant_id, user_id).await?;
    Ok(assignments.iter().any(|a| groups.contains(&a.principal_id)))
}

/// The app roles (values) granted to a client service principal on a resource.
pub async fn application_roles(
    store: &dyn Store,
    tenant_id: Uuid,
    client_sp: &ServicePrincipal,
    resource: &TenantResource,
) -> Result<Vec<String>, Failure> {
    let assignments = store.app_role_assignments_of(tenant_id, client_sp.id).await?;
    Ok(assignments
        .iter()
        .filter(|a| a.resource_sp_id == resource.sp.id && a.app_role_id != DEFAULT_ACCESS_ROLE_ID)
        .filter_map(|a| resource.app.app_role_by_id(a.app_role_id).map(|r| r.value.clone()))
        .collect())
}
