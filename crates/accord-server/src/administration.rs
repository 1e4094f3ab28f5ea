//! Administration of a tenant: the one service layer behind the admin center, My Apps, the
//! Graph-compatible API and the CLI. Every operation checks who acts (a directory role for a
//! signed-in person, an application permission for an app-only caller), validates its input,
//! writes its change together with an audit event in one transaction, and returns a specific
//! error otherwise. No page or endpoint implements a rule of its own.

use crate::consent::{self, audit, ConsentWorld, Grantee};
use crate::crypto::{hash_password, random_token, Keyring};
use crate::protocol::errors::Failure;
use accord_core::consent_engine::{Decision, PermissionRef};
use accord_core::consent_records::PermissionClassification;
use accord_core::directory::*;
use accord_core::scope::ScopeRequest;
use accord_core::well_known::DEFAULT_ACCESS_ROLE_ID;
use accord_core::{Aadsts, OAuthError};
use accord_store::{Change, Store};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who performs an operation.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A signed-in person (admin center, My Apps, delegated Graph calls).
    User { user: User, roles: Vec<DirectoryRole> },
    /// An app calling Graph with an app-only token; `permissions` are its Graph app roles.
    App { app_id: Uuid, sp_id: Uuid, permissions: Vec<String> },
}

impl Actor {
    pub async fn user(store: &dyn Store, user: User) -> Result<Actor, Failure> {
        let roles = store.user_roles(user.tenant_id, user.id).await?;
        Ok(Actor::User { user, roles })
    }

    pub fn roles(&self) -> &[DirectoryRole] {
        match self {
            Actor::User { roles, .. } => roles,
            Actor::App { .. } => &[],
        }
    }

    fn user_ref(&self) -> Option<&User> {
        match self {
            Actor::User { user, .. } => Some(user),
            Actor::App { .. } => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Actor::User { user, .. } => user.upn.clone(),
            Actor::App { app_id, .. } => format!("app {app_id}"),
        }
    }

    /// The audit change for an action by this actor.
    fn audit(&self, tenant_id: Uuid, action: &str, app_id: Option<Uuid>, detail: serde_json::Value) -> Change {
        match self {
            Actor::User { user, .. } => audit(tenant_id, Some(user), action, app_id, detail),
            Actor::App { .. } => {
                let mut change = audit(tenant_id, None, action, app_id, detail);
                if let Change::AppendAudit(e) = &mut change {
                    e.actor = self.label();
                }
                change
            }
        }
    }
}

/// What an operation needs: which directory roles may do it, and which Graph application
/// permission an app-only caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ReadDirectory,
    ManageUsers,
    ManageRoles,
    ManageGroups,
    ManageEnterpriseApps,
    ManageAppRegistrations,
    ManageGrants,
    ManageAssignments,
    ManageUserConsentSetting,
    ManageClassifications,
    ManageRequestPolicy,
    ReadAudit,
}

use DirectoryRole::*;

impl Operation {
    /// Directory roles allowed (Entra's built-in roles, narrowed to the four Accord models).
    pub fn roles(self) -> &'static [DirectoryRole] {
        match self {
            Operation::ReadDirectory | Operation::ReadAudit => {
                &[GlobalAdministrator, PrivilegedRoleAdministrator, CloudApplicationAdministrator, ApplicationAdministrator]
            }
            Operation::ManageUsers | Operation::ManageGroups => &[GlobalAdministrator],
            Operation::ManageRoles | Operation::ManageUserConsentSetting => &[GlobalAdministrator, PrivilegedRoleAdministrator],
            Operation::ManageEnterpriseApps
            | Operation::ManageAppRegistrations
            | Operation::ManageAssignments
            | Operation::ManageClassifications => {
                &[GlobalAdministrator, CloudApplicationAdministrator, ApplicationAdministrator]
            }
            Operation::ManageGrants => {
                &[GlobalAdministrator, PrivilegedRoleAdministrator, CloudApplicationAdministrator, ApplicationAdministrator]
            }
            // Turning the workflow on needs a Global Administrator (entra-reference §6).
            Operation::ManageRequestPolicy => &[GlobalAdministrator],
        }
    }

    /// The Graph application permission an app-only caller needs.
    pub fn app_permission(self) -> &'static [&'static str] {
        match self {
            Operation::ReadDirectory => &["Directory.Read.All", "Directory.ReadWrite.All", "User.Read.All", "Application.Read.All"],
            Operation::ManageUsers | Operation::ManageGroups => &["Directory.ReadWrite.All"],
            Operation::ManageRoles => &["RoleManagement.ReadWrite.Directory"],
            Operation::ManageEnterpriseApps | Operation::ManageAppRegistrations => &["Application.ReadWrite.All"],
            Operation::ManageGrants => &["DelegatedPermissionGrant.ReadWrite.All"],
            Operation::ManageAssignments => &["AppRoleAssignment.ReadWrite.All"],
            Operation::ManageUserConsentSetting => &["Policy.ReadWrite.Authorization"],
            Operation::ManageClassifications => &["Policy.ReadWrite.PermissionGrant"],
            Operation::ManageRequestPolicy => &["Policy.ReadWrite.ConsentRequest"],
            Operation::ReadAudit => &["AuditLog.Read.All", "Directory.Read.All"],
        }
    }
}

fn forbidden(actor: &Actor, what: &str) -> Failure {
    Aadsts::new(
        90093,
        OAuthError::AccessDenied,
        format!("{} does not have a role that allows {what} in this organisation.", actor.label()),
    )
    .into()
}

/// Checks `actor` may perform `op`.
pub fn authorize(actor: &Actor, op: Operation) -> Result<(), Failure> {
    let ok = match actor {
        Actor::User { roles, .. } => roles.iter().any(|r| op.roles().contains(r)),
        Actor::App { permissions, .. } => {
            op.app_permission().iter().any(|p| permissions.iter().any(|q| q.eq_ignore_ascii_case(p)))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden(actor, describe(op)))
    }
}

/// Whether `actor` may perform `op` (for pages deciding which actions to offer).
pub fn may(actor: &Actor, op: Operation) -> bool {
    authorize(actor, op).is_ok()
}

fn describe(op: Operation) -> &'static str {
    match op {
        Operation::ReadDirectory => "reading the directory",
        Operation::ManageUsers => "managing users",
        Operation::ManageRoles => "assigning directory roles",
        Operation::ManageGroups => "managing groups",
        Operation::ManageEnterpriseApps => "changing enterprise applications",
        Operation::ManageAppRegistrations => "changing app registrations",
        Operation::ManageGrants => "changing permission grants",
        Operation::ManageAssignments => "assigning users and groups to applications",
        Operation::ManageUserConsentSetting => "changing the user consent setting",
        Operation::ManageClassifications => "classifying permissions",
        Operation::ManageRequestPolicy => "changing the admin consent request settings",
        Operation::ReadAudit => "reading the audit log",
    }
}

fn invalid(field: &str, why: &str) -> Failure {
    Aadsts::invalid_parameter(field, why).into()
}

fn not_found(what: &str) -> Failure {
    Aadsts::new(90015, OAuthError::InvalidRequest, format!("{what} was not found in this organisation.")).into()
}

async fn apply(store: &dyn Store, changes: Vec<Change>) -> Result<(), Failure> {
    store.apply(&changes).await.map_err(|e| match e {
        accord_store::StoreError::Conflict(what) => Aadsts::new(90016, OAuthError::InvalidRequest, format!("Conflict: {what}.")).into(),
        accord_store::StoreError::NotFound(what) => not_found(&what),
        other => Failure::from(other),
    })
}

// ------------------------------------------------------------------ enterprise applications

pub async fn service_principal(store: &dyn Store, tenant: &Tenant, sp_id: Uuid) -> Result<ServicePrincipal, Failure> {
    store.service_principal(tenant.id, sp_id).await?.ok_or_else(|| not_found("The enterprise application"))
}

/// Enables/disables an enterprise application and sets whether assignment is required.
pub async fn set_service_principal(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: Uuid,
    enabled: Option<bool>,
    assignment_required: Option<bool>,
) -> Result<ServicePrincipal, Failure> {
    authorize(actor, Operation::ManageEnterpriseApps)?;
    let mut sp = service_principal(store, tenant, sp_id).await?;
    let before = (sp.enabled, sp.assignment_required);
    if let Some(e) = enabled {
        sp.enabled = e;
    }
    if let Some(a) = assignment_required {
        sp.assignment_required = a;
    }
    let detail = json!({ "enabled": [before.0, sp.enabled], "assignmentRequired": [before.1, sp.assignment_required] });
    let changes = vec![Change::PutServicePrincipal(sp.clone()), actor.audit(tenant.id, "enterprise_app.updated", Some(sp.app_id), detail)];
    apply(store, changes).await?;
    Ok(sp)
}

/// Assigns a user or group to an enterprise application ("Users and groups > Add user/group"),
/// optionally with one of the app's roles that users may hold.
pub async fn add_assignment(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: Uuid,
    principal_id: Uuid,
    app_role_id: Option<Uuid>,
) -> Result<AppRoleAssignment, Failure> {
    authorize(actor, Operation::ManageAssignments)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    let app = store.application_by_app_id(sp.app_id).await?.ok_or_else(|| not_found("The application"))?;
    let (principal_type, name) = if let Some(u) = store.user(tenant.id, principal_id).await? {
        (PrincipalType::User, u.upn)
    } else if let Some(g) = store.group(tenant.id, principal_id).await? {
        (PrincipalType::Group, g.display_name)
    } else {
        return Err(invalid("principalId", "no user or group with this id in the organisation"));
    };
    let role_id = match app_role_id.filter(|r| *r != DEFAULT_ACCESS_ROLE_ID) {
        Some(r) => {
            let role = app.app_role_by_id(r).ok_or_else(|| invalid("appRoleId", "the application has no such role"))?;
            if !role.allowed_member_types.contains(&AppRoleMemberType::User) {
                return Err(invalid("appRoleId", "this role is for applications, not users and groups"));
            }
            r
        }
        None => DEFAULT_ACCESS_ROLE_ID,
    };
    let existing = store.app_role_assignments_to(tenant.id, sp.id).await?;
    if let Some(a) = existing.iter().find(|a| a.principal_id == principal_id && a.app_role_id == role_id) {
        return Ok(a.clone());
    }
    let assignment = AppRoleAssignment {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        principal_id,
        principal_type,
        resource_sp_id: sp.id,
        app_role_id: role_id,
        created_at: OffsetDateTime::now_utc(),
    };
    let detail = json!({ "principal": name, "principalType": principal_type.as_str(), "appRoleId": role_id });
    apply(store, vec![Change::PutAppRoleAssignment(assignment.clone()), actor.audit(tenant.id, "assignment.added", Some(sp.app_id), detail)]).await?;
    Ok(assignment)
}

/// Removes an assignment or an application permission (both are app role assignments).
pub async fn remove_app_role_assignment(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    resource_sp_id: Uuid,
    assignment_id: Uuid,
) -> Result<(), Failure> {
    authorize(actor, Operation::ManageAssignments)?;
    let sp = service_principal(store, tenant, resource_sp_id).await?;
    let found = store.app_role_assignments_to(tenant.id, sp.id).await?.into_iter().find(|a| a.id == assignment_id);
    let Some(a) = found else { return Err(not_found("The app role assignment")) };
    let action = if a.principal_type == PrincipalType::ServicePrincipal { "app_permission.revoked" } else { "assignment.removed" };
    let detail = json!({ "principalId": a.principal_id, "principalType": a.principal_type.as_str(), "appRoleId": a.app_role_id });
    let client_app = if a.principal_type == PrincipalType::ServicePrincipal {
        store.service_principal(tenant.id, a.principal_id).await?.map(|s| s.app_id)
    } else {
        Some(sp.app_id)
    };
    apply(
        store,
        vec![Change::DeleteAppRoleAssignment { tenant_id: tenant.id, assignment_id }, actor.audit(tenant.id, action, client_app, detail)],
    )
    .await
}

// ------------------------------------------------------------------ delegated grants

/// Revokes a delegated grant. Administrators may revoke any; a user only their own consent.
pub async fn revoke_grant(store: &dyn Store, actor: &Actor, tenant: &Tenant, grant_id: Uuid) -> Result<(), Failure> {
    let grant = store.delegated_grant(tenant.id, grant_id).await?.ok_or_else(|| not_found("The permission grant"))?;
    let own = matches!(actor, Actor::User { user, .. } if grant.principal_id == Some(user.id));
    if !own {
        authorize(actor, Operation::ManageGrants)?;
    }
    let client = store.service_principal(tenant.id, grant.client_sp_id).await?;
    let detail = json!({ "consentType": grant.consent_type.as_str(), "principalId": grant.principal_id, "scope": grant.scopes.join(" ") });
    apply(
        store,
        vec![
            Change::DeleteDelegatedGrant { tenant_id: tenant.id, grant_id },
            actor.audit(tenant.id, "consent.revoked", client.map(|c| c.app_id), detail),
        ],
    )
    .await
}

/// Replaces a grant's scopes (Graph `PATCH /oauth2PermissionGrants/{id}`).
pub async fn update_grant_scopes(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    grant_id: Uuid,
    scopes: &str,
) -> Result<DelegatedGrant, Failure> {
    authorize(actor, Operation::ManageGrants)?;
    let mut grant = store.delegated_grant(tenant.id, grant_id).await?.ok_or_else(|| not_found("The permission grant"))?;
    let resource_sp = service_principal(store, tenant, grant.resource_sp_id).await?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    grant.scopes = validate_scopes(&resource, scopes)?;
    let client = store.service_principal(tenant.id, grant.client_sp_id).await?;
    let detail = json!({ "scope": grant.scopes.join(" ") });
    apply(store, vec![Change::PutDelegatedGrant(grant.clone()), actor.audit(tenant.id, "consent.updated", client.map(|c| c.app_id), detail)]).await?;
    Ok(grant)
}

/// Creates a delegated grant (Graph `POST /oauth2PermissionGrants`).
pub async fn create_grant(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    client_sp_id: Uuid,
    resource_sp_id: Uuid,
    principal_id: Option<Uuid>,
    scopes: &str,
) -> Result<DelegatedGrant, Failure> {
    authorize(actor, Operation::ManageGrants)?;
    let client = service_principal(store, tenant, client_sp_id).await.map_err(|_| invalid("clientId", "no service principal with this id"))?;
    let resource_sp = service_principal(store, tenant, resource_sp_id).await.map_err(|_| invalid("resourceId", "no service principal with this id"))?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    if let Some(p) = principal_id {
        store.user(tenant.id, p).await?.ok_or_else(|| invalid("principalId", "no user with this id"))?;
    }
    let scopes = validate_scopes(&resource, scopes)?;
    let consent_type = if principal_id.is_some() { ConsentType::Principal } else { ConsentType::AllPrincipals };
    let existing = store.delegated_grants_of_client(tenant.id, client.id).await?;
    if existing.iter().any(|g| g.resource_sp_id == resource_sp.id && g.consent_type == consent_type && g.principal_id == principal_id) {
        return Err(Aadsts::new(90016, OAuthError::InvalidRequest, "A permission grant already exists for this client, resource and principal; update its scope instead.").into());
    }
    let grant = DelegatedGrant {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        client_sp_id: client.id,
        resource_sp_id: resource_sp.id,
        consent_type,
        principal_id,
        scopes,
        created_at: OffsetDateTime::now_utc(),
    };
    let detail = json!({ "consentType": consent_type.as_str(), "principalId": principal_id, "scope": grant.scopes.join(" ") });
    apply(store, vec![Change::PutDelegatedGrant(grant.clone()), actor.audit(tenant.id, "consent.created", Some(client.app_id), detail)]).await?;
    Ok(grant)
}

fn validate_scopes(resource: &Application, scopes: &str) -> Result<Vec<String>, Failure> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.split_whitespace() {
        let scope = resource.scope(s).ok_or_else(|| invalid("scope", &format!("'{s}' is not a delegated permission of {}", resource.display_name)))?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&scope.value)) {
            out.push(scope.value.clone());
        }
    }
    if out.is_empty() {
        return Err(invalid("scope", "at least one permission is required"));
    }
    Ok(out)
}

/// "Grant admin consent for <tenant>": what the app's static list would grant (for the
/// confirmation page), decided by the engine for this administrator.
pub async fn admin_consent_preview(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: &Application,
) -> Result<Vec<PermissionRef>, Failure> {
    let Actor::User { user, .. } = actor else {
        return Err(forbidden(actor, "granting admin consent (it needs a signed-in administrator)"));
    };
    let scope = ScopeRequest::default();
    let world = ConsentWorld::load(store, tenant, app, user, &scope).await?;
    match world.decide_admin_consent(&scope, true).decision {
        Decision::PromptAdminConsent { delegated, application } => Ok(delegated.into_iter().chain(application).collect()),
        Decision::Refuse(e) => Err(e.into()),
        other => Err(Failure::Internal(format!("admin consent produced {}", other.kind()))),
    }
}

/// Grants admin consent for the app's static permissions, completing pending requests.
pub async fn grant_admin_consent(store: &dyn Store, actor: &Actor, tenant: &Tenant, app: &Application) -> Result<(), Failure> {
    let permissions = admin_consent_preview(store, actor, tenant, app).await?;
    let Actor::User { user, .. } = actor else { unreachable!("checked by the preview") };
    let completions = crate::admin_consent_requests::complete_pending_changes(store, tenant, app, user).await?;
    consent::grant(store, tenant, app, Grantee::Organisation { admin: user }, &permissions, completions).await
}

// ------------------------------------------------------------------ consent settings

pub async fn set_user_consent(store: &dyn Store, actor: &Actor, tenant: &Tenant, setting: UserConsent) -> Result<Tenant, Failure> {
    authorize(actor, Operation::ManageUserConsentSetting)?;
    let mut t = tenant.clone();
    let before = t.user_consent;
    t.user_consent = setting;
    let detail = json!({ "from": before.as_str(), "to": setting.as_str() });
    apply(store, vec![Change::PutTenant(t.clone()), actor.audit(tenant.id, "settings.user_consent", None, detail)]).await?;
    Ok(t)
}

pub async fn set_request_policy(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    mut policy: AdminConsentRequestPolicy,
) -> Result<Tenant, Failure> {
    authorize(actor, Operation::ManageRequestPolicy)?;
    if !(1..=30).contains(&policy.expire_after_days) {
        return Err(invalid("requestDurationInDays", "it must be between 1 and 30"));
    }
    if policy.enabled && policy.reviewers.is_empty() {
        return Err(invalid("reviewers", "an enabled workflow needs at least one reviewer"));
    }
    for r in &policy.reviewers {
        let exists = match r {
            ReviewerRef::User(id) => store.user(tenant.id, *id).await?.is_some(),
            ReviewerRef::Group(id) => store.group(tenant.id, *id).await?.is_some(),
        };
        if !exists {
            return Err(invalid("reviewers", "a reviewer is not a user or group of this organisation"));
        }
    }
    policy.version = tenant.admin_consent_requests.version + 1;
    let mut t = tenant.clone();
    t.admin_consent_requests = policy;
    let detail = json!({ "enabled": t.admin_consent_requests.enabled, "reviewers": t.admin_consent_requests.reviewers.len(), "expireAfterDays": t.admin_consent_requests.expire_after_days });
    apply(store, vec![Change::PutTenant(t.clone()), actor.audit(tenant.id, "settings.admin_consent_requests", None, detail)]).await?;
    Ok(t)
}

/// Marks a delegated permission of a resource as low impact (or removes the classification).
pub async fn classify(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    resource_sp_id: Uuid,
    permission: &str,
    low: bool,
) -> Result<(), Failure> {
    authorize(actor, Operation::ManageClassifications)?;
    let sp = service_principal(store, tenant, resource_sp_id).await?;
    let resource = store.application_by_app_id(sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    let scope = resource.scope(permission).ok_or_else(|| invalid("permissionName", &format!("'{permission}' is not a delegated permission of {}", resource.display_name)))?;
    let existing = store.permission_classifications(tenant.id, sp.id).await?;
    let found = existing.iter().find(|c| c.permission_id == scope.id);
    let mut changes = Vec::new();
    match (low, found) {
        (true, None) => changes.push(Change::PutPermissionClassification(PermissionClassification {
            tenant_id: tenant.id,
            id: Uuid::new_v4(),
            resource_sp_id: sp.id,
            permission_id: scope.id,
            permission_value: scope.value.clone(),
            classification: "low".into(),
        })),
        (false, Some(c)) => changes.push(Change::DeletePermissionClassification { tenant_id: tenant.id, classification_id: c.id }),
        _ => return Ok(()),
    }
    changes.push(actor.audit(tenant.id, "settings.classification", None, json!({ "resource": resource.display_name, "permission": scope.value, "low": low })));
    apply(store, changes).await
}

// ------------------------------------------------------------------ users, roles, groups

fn valid_upn(tenant: &Tenant, upn: &str) -> Result<String, Failure> {
    let upn = upn.trim().to_ascii_lowercase();
    let Some((name, domain)) = upn.split_once('@') else {
        return Err(invalid("userPrincipalName", "expected name@domain"));
    };
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c)) {
        return Err(invalid("userPrincipalName", "the part before @ may use letters, digits and . _ - + '"));
    }
    if !tenant.domains.iter().any(|d| d == domain) {
        return Err(invalid("userPrincipalName", &format!("the domain must be one of the organisation's: {}", tenant.domains.join(", "))));
    }
    Ok(upn)
}

fn valid_password(password: &str) -> Result<(), Failure> {
    if password.chars().count() < 8 || password.len() > 256 {
        return Err(invalid("password", "it must be 8 to 256 characters"));
    }
    Ok(())
}

fn valid_name(field: &str, name: &str) -> Result<String, Failure> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(invalid(field, "it must be 1 to 256 printable characters"));
    }
    Ok(name.to_string())
}

pub async fn create_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    upn: &str,
    display_name: &str,
    password: &str,
) -> Result<User, Failure> {
    authorize(actor, Operation::ManageUsers)?;
    let upn = valid_upn(tenant, upn)?;
    let display_name = valid_name("displayName", display_name)?;
    valid_password(password)?;
    if store.user_by_upn(tenant.id, &upn).await?.is_some() {
        return Err(Aadsts::new(90016, OAuthError::InvalidRequest, format!("Another user already has the user principal name {upn}.")).into());
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| Failure::Internal(e.to_string()))?;
    let user = User {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        upn: upn.clone(),
        display_name,
        password_hash: Some(hash),
        enabled: true,
        failed_sign_ins: 0,
        locked_until: None,
    };
    apply(store, vec![Change::PutUser(user.clone()), actor.audit(tenant.id, "user.created", None, json!({ "user": upn }))]).await?;
    Ok(user)
}

pub async fn set_user_enabled(store: &dyn Store, actor: &Actor, tenant: &Tenant, user_id: Uuid, enabled: bool) -> Result<User, Failure> {
    authorize(actor, Operation::ManageUsers)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    if !enabled && actor.user_ref().is_some_and(|a| a.id == user.id) {
        return Err(invalid("accountEnabled", "you cannot disable your own account"));
    }
    user.enabled = enabled;
    let action = if enabled { "user.enabled" } else { "user.disabled" };
    apply(store, vec![Change::PutUser(user.clone()), actor.audit(tenant.id, action, None, json!({ "user": user.upn }))]).await?;
    Ok(user)
}

pub async fn reset_password(store: &dyn Store, actor: &Actor, tenant: &Tenant, user_id: Uuid, password: &str) -> Result<(), Failure> {
    authorize(actor, Operation::ManageUsers)?;
    valid_password(password)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    let password = password.to_string();
    user.password_hash = Some(tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| Failure::Internal(e.to_string()))?);
    user.failed_sign_ins = 0;
    user.locked_until = None;
    apply(store, vec![Change::PutUser(user.clone()), actor.audit(tenant.id, "user.password_reset", None, json!({ "user": user.upn }))]).await
}

pub async fn set_user_roles(store: &dyn Store, actor: &Actor, tenant: &Tenant, user_id: Uuid, roles: Vec<DirectoryRole>) -> Result<(), Failure> {
    authorize(actor, Operation::ManageRoles)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    // A Privileged Role Administrator cannot make anyone a Global Administrator.
    if roles.contains(&GlobalAdministrator) && !actor.roles().contains(&GlobalAdministrator) && matches!(actor, Actor::User { .. }) {
        return Err(forbidden(actor, "assigning the Global Administrator role"));
    }
    if actor.user_ref().is_some_and(|a| a.id == user.id) && !roles.contains(&GlobalAdministrator) && actor.roles().contains(&GlobalAdministrator) {
        return Err(invalid("roles", "you cannot remove your own Global Administrator role"));
    }
    let names: Vec<&str> = roles.iter().map(|r| r.display_name()).collect();
    apply(
        store,
        vec![
            Change::SetUserRoles { tenant_id: tenant.id, user_id, roles: roles.clone() },
            actor.audit(tenant.id, "user.roles", None, json!({ "user": user.upn, "roles": names })),
        ],
    )
    .await
}

pub async fn create_group(store: &dyn Store, actor: &Actor, tenant: &Tenant, display_name: &str) -> Result<Group, Failure> {
    authorize(actor, Operation::ManageGroups)?;
    let display_name = valid_name("displayName", display_name)?;
    if store.group_by_name(tenant.id, &display_name).await?.is_some() {
        return Err(Aadsts::new(90016, OAuthError::InvalidRequest, format!("A group named '{display_name}' already exists.")).into());
    }
    let group = Group { tenant_id: tenant.id, id: Uuid::new_v4(), display_name };
    apply(store, vec![Change::PutGroup(group.clone()), actor.audit(tenant.id, "group.created", None, json!({ "group": group.display_name }))]).await?;
    Ok(group)
}

/// Adds a user or a group (nesting) to a group; refuses membership cycles.
pub async fn add_group_member(store: &dyn Store, actor: &Actor, tenant: &Tenant, group_id: Uuid, member_id: Uuid) -> Result<(), Failure> {
    authorize(actor, Operation::ManageGroups)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let kind = if store.user(tenant.id, member_id).await?.is_some() {
        MemberKind::User
    } else if store.group(tenant.id, member_id).await?.is_some() {
        if member_id == group_id || store.transitive_groups_of(tenant.id, group_id).await?.contains(&member_id) {
            return Err(invalid("member", "adding this group would make a membership cycle"));
        }
        MemberKind::Group
    } else {
        return Err(invalid("member", "no user or group with this id in the organisation"));
    };
    let mut members = store.group_members(tenant.id, group_id).await?;
    if members.iter().any(|m| m.member_id == member_id) {
        return Ok(());
    }
    members.push(GroupMember { group_id, member_id, kind });
    apply(
        store,
        vec![
            Change::SetGroupMembers { tenant_id: tenant.id, group_id, members },
            actor.audit(tenant.id, "group.member_added", None, json!({ "group": group.display_name, "member": member_id })),
        ],
    )
    .await
}

pub async fn remove_group_member(store: &dyn Store, actor: &Actor, tenant: &Tenant, group_id: Uuid, member_id: Uuid) -> Result<(), Failure> {
    authorize(actor, Operation::ManageGroups)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let mut members = store.group_members(tenant.id, group_id).await?;
    let before = members.len();
    members.retain(|m| m.member_id != member_id);
    if members.len() == before {
        return Err(not_found("The member"));
    }
    apply(
        store,
        vec![
            Change::SetGroupMembers { tenant_id: tenant.id, group_id, members },
            actor.audit(tenant.id, "group.member_removed", None, json!({ "group": group.display_name, "member": member_id })),
        ],
    )
    .await
}

// ------------------------------------------------------------------ app registrations

/// An app registration homed in this tenant (others' apps are not editable here).
pub async fn own_application(store: &dyn Store, tenant: &Tenant, app_id: Uuid) -> Result<Application, Failure> {
    store
        .application_by_app_id(app_id)
        .await?
        .filter(|a| a.home_tenant_id == tenant.id)
        .ok_or_else(|| not_found("The app registration"))
}

pub async fn create_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    display_name: &str,
    audience: SignInAudience,
) -> Result<Application, Failure> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        home_tenant_id: tenant.id,
        display_name: valid_name("displayName", display_name)?,
        sign_in_audience: audience,
        redirect_uris: Vec::new(),
        public_client: false,
        verified_publisher: false,
        identifier_uri: None,
        scopes: Vec::new(),
        app_roles: Vec::new(),
        required: Vec::new(),
    };
    // The home tenant gets the app's service principal at once, as the portal does.
    let sp = ServicePrincipal {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        app_id: app.app_id,
        display_name: app.display_name.clone(),
        app_owner_tenant_id: tenant.id,
        enabled: true,
        assignment_required: false,
        created_at: OffsetDateTime::now_utc(),
    };
    apply(
        store,
        vec![
            Change::PutApplication(app.clone()),
            Change::PutServicePrincipal(sp),
            actor.audit(tenant.id, "app.created", Some(app.app_id), json!({ "displayName": app.display_name })),
        ],
    )
    .await?;
    Ok(app)
}

/// Validates and saves changed registration fields (redirect URIs, scopes, roles, required).
pub async fn update_application(store: &dyn Store, actor: &Actor, tenant: &Tenant, app: Application) -> Result<Application, Failure> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let current = own_application(store, tenant, app.app_id).await?;
    if app.id != current.id || app.home_tenant_id != current.home_tenant_id {
        return Err(invalid("id", "the object id and home tenant cannot change"));
    }
    for uri in &app.redirect_uris {
        valid_redirect_uri(uri)?;
    }
    let mut seen = std::collections::HashSet::new();
    for value in app.scopes.iter().map(|s| &s.value).chain(app.app_roles.iter().map(|r| &r.value)) {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(invalid("value", "permission values are non-empty and have no spaces"));
        }
        if !seen.insert(value.to_ascii_lowercase()) {
            return Err(invalid("value", &format!("'{value}' is used twice")));
        }
    }
    let app = Application { display_name: valid_name("displayName", &app.display_name)?, ..app };
    apply(store, vec![Change::PutApplication(app.clone()), actor.audit(tenant.id, "app.updated", Some(app.app_id), json!({ "displayName": app.display_name }))]).await?;
    Ok(app)
}

pub fn valid_redirect_uri(uri: &str) -> Result<(), Failure> {
    let parsed = url::Url::parse(uri).map_err(|_| invalid("redirectUris", &format!("'{uri}' is not an absolute URL")))?;
    let local = matches!(parsed.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]"));
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(invalid("redirectUris", &format!("'{uri}' must use https (http only for localhost)"))),
    }
    if parsed.fragment().is_some() {
        return Err(invalid("redirectUris", &format!("'{uri}' must not contain a fragment")));
    }
    Ok(())
}

/// Adds a client secret and returns its value: shown once, stored only as a keyed hash.
pub async fn add_client_secret(
    store: &dyn Store,
    keyring: &Keyring,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Uuid,
    description: &str,
    valid_days: u32,
) -> Result<(ClientSecret, String), Failure> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    if !(1..=730).contains(&valid_days) {
        return Err(invalid("endDateTime", "a secret is valid for 1 to 730 days"));
    }
    let value = format!("acc~{}", random_token());
    let now = OffsetDateTime::now_utc();
    let secret = ClientSecret {
        id: Uuid::new_v4(),
        app_object_id: app.id,
        display_name: valid_name("displayName", if description.trim().is_empty() { "secret" } else { description })?,
        hint: value.chars().take(3).collect(),
        hash: keyring.secret_hash(&value),
        created_at: now,
        expires_at: Some(now + time::Duration::days(i64::from(valid_days))),
    };
    apply(
        store,
        vec![Change::PutClientSecret(secret.clone()), actor.audit(tenant.id, "app.secret_added", Some(app.app_id), json!({ "secret": secret.id, "displayName": secret.display_name }))],
    )
    .await?;
    Ok((secret, value))
}

pub async fn delete_client_secret(store: &dyn Store, actor: &Actor, tenant: &Tenant, app_id: Uuid, secret_id: Uuid) -> Result<(), Failure> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    if !store.client_secrets(app.id).await?.iter().any(|s| s.id == secret_id) {
        return Err(not_found("The secret"));
    }
    apply(
        store,
        vec![
            Change::DeleteClientSecret { app_object_id: app.id, secret_id },
            actor.audit(tenant.id, "app.secret_deleted", Some(app.app_id), json!({ "secret": secret_id })),
        ],
    )
    .await
}
