//! Administration of a tenant: the one service layer behind the admin center, My Apps, the
//! Graph-compatible API and the CLI. Every operation checks who acts (a directory role for a
//! signed-in person, an application permission for an app-only caller), validates its input,
//! writes its change together with an audit event in one transaction, and returns a specific
//! error otherwise. No page or endpoint implements a rule of its own.

use crate::crypto::{hash_password, random_token, Keyring};
use crate::service::consent::{audit, ConsentWorld};
use crate::service::ServiceError;
use accord_core::consent_engine::{Decision, PermissionRef};
use accord_core::consent_records::PermissionClassification;
use accord_core::directory::*;
use accord_core::scope::ScopeRequest;
use accord_core::well_known::DEFAULT_ACCESS_ROLE_ID;
use accord_core::Aadsts;
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
    pub async fn user(store: &dyn Store, user: User) -> Result<Actor, ServiceError> {
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
            Operation::ReadDirectory | Operation::ReadAudit => &[
                GlobalAdministrator,
                PrivilegedRoleAdministrator,
                CloudApplicationAdministrator,
                ApplicationAdministrator,
            ],
            Operation::ManageUsers | Operation::ManageGroups => &[GlobalAdministrator],
            Operation::ManageRoles | Operation::ManageUserConsentSetting => {
                &[GlobalAdministrator, PrivilegedRoleAdministrator]
            }
            Operation::ManageEnterpriseApps
            | Operation::ManageAppRegistrations
            | Operation::ManageAssignments
            | Operation::ManageClassifications => {
                &[GlobalAdministrator, CloudApplicationAdministrator, ApplicationAdministrator]
            }
            Operation::ManageGrants => &[
                GlobalAdministrator,
                PrivilegedRoleAdministrator,
                CloudApplicationAdministrator,
                ApplicationAdministrator,
            ],
            // Turning the workflow on needs a Global Administrator (entra-reference §6).
            Operation::ManageRequestPolicy => &[GlobalAdministrator],
        }
    }

    /// The Graph application permission an app-only caller needs.
    pub fn app_permission(self) -> &'static [&'static str] {
        match self {
            Operation::ReadDirectory => {
                &["Directory.Read.All", "Directory.ReadWrite.All", "User.Read.All", "Application.Read.All"]
            }
            // Graph's narrower write permissions count as well as Directory.ReadWrite.All.
            Operation::ManageUsers => &["Directory.ReadWrite.All", "User.ReadWrite.All"],
            Operation::ManageGroups => &["Directory.ReadWrite.All", "Group.ReadWrite.All"],
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

fn forbidden(actor: &Actor, what: &str) -> ServiceError {
    ServiceError::forbidden(format!("{} does not have a role that allows {what} in this organisation.", actor.label()))
}

/// Checks `actor` may perform `op`.
pub fn authorize(actor: &Actor, op: Operation) -> Result<(), ServiceError> {
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

fn invalid(field: &str, why: &str) -> ServiceError {
    Aadsts::invalid_parameter(field, why).into()
}

fn not_found(what: &str) -> ServiceError {
    ServiceError::not_found(format!("{what} was not found in this organisation."))
}

async fn apply(store: &dyn Store, changes: Vec<Change>) -> Result<(), ServiceError> {
    store.apply(&changes).await.map_err(|e| match e {
        accord_store::StoreError::Conflict(what) => ServiceError::conflict(format!("Conflict: {what}.")),
        accord_store::StoreError::NotFound(what) => not_found(&what),
        other => ServiceError::from(other),
    })
}

// ------------------------------------------------------------------ enterprise applications

pub async fn service_principal(
    store: &dyn Store,
    tenant: &Tenant,
    sp_id: Uuid,
) -> Result<ServicePrincipal, ServiceError> {
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
) -> Result<ServicePrincipal, ServiceError> {
    authorize(actor, Operation::ManageEnterpriseApps)?;
    let mut sp = service_principal(store, tenant, sp_id).await?;
    // Microsoft Graph carries the sign-in permissions of every app: disabling it, or
    // requiring assignment to it, would lock the whole organisation out.
    if sp.app_id == accord_core::well_known::GRAPH_APP_ID
        && (enabled == Some(false) || assignment_required == Some(true))
    {
        return Err(invalid("accountEnabled", "Microsoft Graph cannot be disabled or restricted to assigned users"));
    }
    let before = (sp.enabled, sp.assignment_required);
    if let Some(e) = enabled {
        sp.enabled = e;
    }
    if let Some(a) = assignment_required {
        sp.assignment_required = a;
    }
    let detail = json!({ "enabled": [before.0, sp.enabled], "assignmentRequired": [before.1, sp.assignment_required] });
    let changes = vec![
        Change::PutServicePrincipal(sp.clone()),
        actor.audit(tenant.id, "enterprise_app.updated", Some(sp.app_id), detail),
    ];
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
) -> Result<AppRoleAssignment, ServiceError> {
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
    apply(
        store,
        vec![
            Change::PutAppRoleAssignment(assignment.clone()),
            actor.audit(tenant.id, "assignment.added", Some(sp.app_id), detail),
        ],
    )
    .await?;
    Ok(assignment)
}

/// Removes an assignment or an application permission (both are app role assignments).
/// Who may remove an app role assignment: those who manage assignments; an application
/// permission (`to_app`: assigned to an app) also a user whose role lets them grant it — a
/// Privileged Role Administrator, as in Entra.
fn authorize_unassign(actor: &Actor, to_app: bool) -> Result<(), ServiceError> {
    match authorize(actor, Operation::ManageAssignments) {
        Err(_) if to_app && matches!(actor, Actor::User { .. }) => authorize(actor, Operation::ManageGrants),
        other => other,
    }
}

pub async fn remove_app_role_assignment(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    resource_sp_id: Uuid,
    assignment_id: Uuid,
) -> Result<(), ServiceError> {
    authorize_unassign(actor, true)?;
    let sp = service_principal(store, tenant, resource_sp_id).await?;
    let found = store.app_role_assignments_to(tenant.id, sp.id).await?.into_iter().find(|a| a.id == assignment_id);
    let Some(a) = found else { return Err(not_found("The app role assignment")) };
    authorize_unassign(actor, a.principal_type == PrincipalType::ServicePrincipal)?;
    let action = if a.principal_type == PrincipalType::ServicePrincipal {
        "app_permission.revoked"
    } else {
        "assignment.removed"
    };
    let detail = json!({ "principalId": a.principal_id, "principalType": a.principal_type.as_str(), "appRoleId": a.app_role_id });
    let client_app = if a.principal_type == PrincipalType::ServicePrincipal {
        store.service_principal(tenant.id, a.principal_id).await?.map(|s| s.app_id)
    } else {
        Some(sp.app_id)
    };
    apply(
        store,
        vec![
            Change::DeleteAppRoleAssignment { tenant_id: tenant.id, assignment_id },
            actor.audit(tenant.id, action, client_app, detail),
        ],
    )
    .await
}

// ------------------------------------------------------------------ delegated grants

/// Revokes a delegated grant. Administrators may revoke any; a user only their own consent.
pub async fn revoke_grant(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    grant_id: Uuid,
) -> Result<(), ServiceError> {
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
) -> Result<DelegatedGrant, ServiceError> {
    authorize(actor, Operation::ManageGrants)?;
    let mut grant =
        store.delegated_grant(tenant.id, grant_id).await?.ok_or_else(|| not_found("The permission grant"))?;
    let resource_sp = service_principal(store, tenant, grant.resource_sp_id).await?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    grant.scopes = validate_scopes(&resource, scopes)?;
    let client = store.service_principal(tenant.id, grant.client_sp_id).await?;
    let detail = json!({ "scope": grant.scopes.join(" ") });
    apply(
        store,
        vec![
            Change::PutDelegatedGrant(grant.clone()),
            actor.audit(tenant.id, "consent.updated", client.map(|c| c.app_id), detail),
        ],
    )
    .await?;
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
) -> Result<DelegatedGrant, ServiceError> {
    authorize(actor, Operation::ManageGrants)?;
    let client = service_principal(store, tenant, client_sp_id)
        .await
        .map_err(|_| invalid("clientId", "no service principal with this id"))?;
    let resource_sp = service_principal(store, tenant, resource_sp_id)
        .await
        .map_err(|_| invalid("resourceId", "no service principal with this id"))?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    if let Some(p) = principal_id {
        store.user(tenant.id, p).await?.ok_or_else(|| invalid("principalId", "no user with this id"))?;
    }
    let scopes = validate_scopes(&resource, scopes)?;
    let consent_type = if principal_id.is_some() { ConsentType::Principal } else { ConsentType::AllPrincipals };
    let existing = store.delegated_grants_of_client(tenant.id, client.id).await?;
    if existing
        .iter()
        .any(|g| g.resource_sp_id == resource_sp.id && g.consent_type == consent_type && g.principal_id == principal_id)
    {
        return Err(ServiceError::conflict(
            "A permission grant already exists for this client, resource and principal; update its scope instead.",
        ));
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
    let detail =
        json!({ "consentType": consent_type.as_str(), "principalId": principal_id, "scope": grant.scopes.join(" ") });
    apply(
        store,
        vec![
            Change::PutDelegatedGrant(grant.clone()),
            actor.audit(tenant.id, "consent.created", Some(client.app_id), detail),
        ],
    )
    .await?;
    Ok(grant)
}

fn validate_scopes(resource: &Application, scopes: &str) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.split_whitespace() {
        let scope = resource.scope(s).ok_or_else(|| {
            invalid("scope", &format!("'{s}' is not a delegated permission of {}", resource.display_name))
        })?;
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
) -> Result<Vec<PermissionRef>, ServiceError> {
    let Actor::User { user, .. } = actor else {
        return Err(forbidden(actor, "granting admin consent (it needs a signed-in administrator)"));
    };
    let scope = ScopeRequest::default();
    let world = ConsentWorld::load(store, tenant, app, user, &scope).await?;
    match world.decide_admin_consent(&scope, true).decision {
        Decision::PromptAdminConsent { delegated, application } => {
            Ok(delegated.into_iter().chain(application).collect())
        }
        Decision::Refuse(e) => Err(crate::service::consent::admin_consent_refusal(e)),
        other => Err(ServiceError::Internal(format!("admin consent produced {}", other.kind()))),
    }
}

/// Grants admin consent for the app's static permissions, completing pending requests.
pub async fn grant_admin_consent(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: &Application,
) -> Result<(), ServiceError> {
    let permissions = admin_consent_preview(store, actor, tenant, app).await?;
    let Actor::User { user, .. } = actor else {
        return Err(forbidden(actor, "granting admin consent (it needs a signed-in administrator)"));
    };
    crate::service::admin_consent_requests::grant_for_organisation(store, tenant, app, user, &permissions, Vec::new())
        .await
}

// ------------------------------------------------------------------ consent settings

pub async fn set_user_consent(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    setting: UserConsent,
) -> Result<Tenant, ServiceError> {
    authorize(actor, Operation::ManageUserConsentSetting)?;
    let mut t = tenant.clone();
    let before = t.user_consent;
    t.user_consent = setting;
    let detail = json!({ "from": before.as_str(), "to": setting.as_str() });
    apply(store, vec![Change::PutTenant(t.clone()), actor.audit(tenant.id, "settings.user_consent", None, detail)])
        .await?;
    Ok(t)
}

/// The admin consent request settings, for a person who may read the directory or an app
/// holding a Graph permission that reads or manages them (the Graph read of the policy).
pub fn request_policy(actor: &Actor, tenant: &Tenant) -> Result<AdminConsentRequestPolicy, ServiceError> {
    let app_may_read = match actor {
        Actor::App { permissions, .. } => ["Policy.Read.All", "Policy.ReadWrite.ConsentRequest"]
            .iter()
            .any(|p| permissions.iter().any(|q| q.eq_ignore_ascii_case(p))),
        Actor::User { .. } => false,
    };
    if !app_may_read {
        authorize(actor, Operation::ReadDirectory)?;
    }
    Ok(tenant.admin_consent_requests.clone())
}

pub async fn set_request_policy(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    mut policy: AdminConsentRequestPolicy,
) -> Result<Tenant, ServiceError> {
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
    apply(
        store,
        vec![Change::PutTenant(t.clone()), actor.audit(tenant.id, "settings.admin_consent_requests", None, detail)],
    )
    .await?;
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
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageClassifications)?;
    let sp = service_principal(store, tenant, resource_sp_id).await?;
    let resource = store.application_by_app_id(sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    let scope = resource.scope(permission).ok_or_else(|| {
        invalid("permissionName", &format!("'{permission}' is not a delegated permission of {}", resource.display_name))
    })?;
    // As in Entra (and scenario files): only permissions users could consent to are classified.
    if low && scope.admin_consent_required {
        let why = format!("'{}' requires admin consent and cannot be classified low impact", scope.value);
        return Err(invalid("permissionName", &why));
    }
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
        (false, Some(c)) => {
            changes.push(Change::DeletePermissionClassification { tenant_id: tenant.id, classification_id: c.id })
        }
        _ => return Ok(()),
    }
    changes.push(actor.audit(
        tenant.id,
        "settings.classification",
        None,
        json!({ "resource": resource.display_name, "permission": scope.value, "low": low }),
    ));
    apply(store, changes).await
}

// ------------------------------------------------------------------ users, roles, groups

fn valid_upn(tenant: &Tenant, upn: &str) -> Result<String, ServiceError> {
    let upn = upn.trim().to_ascii_lowercase();
    let Some((name, domain)) = upn.split_once('@') else {
        return Err(invalid("userPrincipalName", "expected name@domain"));
    };
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c)) {
        return Err(invalid("userPrincipalName", "the part before @ may use letters, digits and . _ - + '"));
    }
    if !tenant.domains.iter().any(|d| d == domain) {
        return Err(invalid(
            "userPrincipalName",
            &format!("the domain must be one of the organisation's: {}", tenant.domains.join(", ")),
        ));
    }
    Ok(upn)
}

fn valid_password(password: &str) -> Result<(), ServiceError> {
    if password.chars().count() < 8 || password.len() > 256 {
        return Err(invalid("password", "it must be 8 to 256 characters"));
    }
    Ok(())
}

fn valid_name(field: &str, name: &str) -> Result<String, ServiceError> {
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
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let upn = valid_upn(tenant, upn)?;
    let display_name = valid_name("displayName", display_name)?;
    valid_password(password)?;
    if store.user_by_upn(tenant.id, &upn).await?.is_some() {
        return Err(ServiceError::conflict(format!("Another user already has the user principal name {upn}.")));
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
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
    apply(
        store,
        vec![Change::PutUser(user.clone()), actor.audit(tenant.id, "user.created", None, json!({ "user": upn }))],
    )
    .await?;
    Ok(user)
}

pub async fn set_user_enabled(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
    enabled: bool,
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    if !enabled && actor.user_ref().is_some_and(|a| a.id == user.id) {
        return Err(invalid("accountEnabled", "you cannot disable your own account"));
    }
    user.enabled = enabled;
    let action = if enabled { "user.enabled" } else { "user.disabled" };
    apply(
        store,
        vec![Change::PutUser(user.clone()), actor.audit(tenant.id, action, None, json!({ "user": user.upn }))],
    )
    .await?;
    Ok(user)
}

/// Deletes a user, as Graph's `DELETE /users/{id}`, with what exists only through them (their
/// roles, memberships, own consent, assignments, calendar, requests, sessions and tokens; see
/// the store's `DeleteUser`), and takes them off the admin-consent reviewers. Accord keeps no
/// deleted-items bin to restore them from; the audit log keeps their UPN. Nobody deletes their
/// own account.
pub async fn delete_user(store: &dyn Store, actor: &Actor, tenant: &Tenant, user_id: Uuid) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    if actor.user_ref().is_some_and(|a| a.id == user.id) {
        return Err(invalid("id", "you cannot delete your own account"));
    }
    let mut changes = vec![Change::DeleteUser { tenant_id: tenant.id, user_id }];
    let reviewer = ReviewerRef::User(user_id);
    if tenant.admin_consent_requests.reviewers.contains(&reviewer) {
        let mut t = tenant.clone();
        t.admin_consent_requests.reviewers.retain(|r| *r != reviewer);
        t.admin_consent_requests.version += 1;
        changes.push(Change::PutTenant(t));
    }
    changes.push(actor.audit(tenant.id, "user.deleted", None, json!({ "user": user.upn, "id": user.id })));
    apply(store, changes).await
}

pub async fn rename_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
    display_name: &str,
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let display_name = valid_name("displayName", display_name)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    user.display_name = display_name;
    apply(
        store,
        vec![
            Change::PutUser(user.clone()),
            actor.audit(tenant.id, "user.renamed", None, json!({ "user": user.upn, "displayName": user.display_name })),
        ],
    )
    .await?;
    Ok(user)
}

pub async fn reset_password(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
    password: &str,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    valid_password(password)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    let password = password.to_string();
    user.password_hash = Some(
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?,
    );
    user.failed_sign_ins = 0;
    user.locked_until = None;
    apply(
        store,
        vec![
            Change::PutUser(user.clone()),
            actor.audit(tenant.id, "user.password_reset", None, json!({ "user": user.upn })),
        ],
    )
    .await
}

pub async fn set_user_roles(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
    roles: Vec<DirectoryRole>,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageRoles)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    // A Privileged Role Administrator cannot make anyone a Global Administrator.
    if roles.contains(&GlobalAdministrator)
        && !actor.roles().contains(&GlobalAdministrator)
        && matches!(actor, Actor::User { .. })
    {
        return Err(forbidden(actor, "assigning the Global Administrator role"));
    }
    if actor.user_ref().is_some_and(|a| a.id == user.id)
        && !roles.contains(&GlobalAdministrator)
        && actor.roles().contains(&GlobalAdministrator)
    {
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

pub async fn create_group(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    display_name: &str,
) -> Result<Group, ServiceError> {
    authorize(actor, Operation::ManageGroups)?;
    let display_name = valid_name("displayName", display_name)?;
    if store.group_by_name(tenant.id, &display_name).await?.is_some() {
        return Err(ServiceError::conflict(format!("A group named '{display_name}' already exists.")));
    }
    let group = Group { tenant_id: tenant.id, id: Uuid::new_v4(), display_name };
    apply(
        store,
        vec![
            Change::PutGroup(group.clone()),
            actor.audit(tenant.id, "group.created", None, json!({ "group": group.display_name })),
        ],
    )
    .await?;
    Ok(group)
}

/// Adds a user or a group (nesting) to a group; refuses membership cycles.
pub async fn add_group_member(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: Uuid,
    member_id: Uuid,
) -> Result<(), ServiceError> {
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
            actor.audit(
                tenant.id,
                "group.member_added",
                None,
                json!({ "group": group.display_name, "member": member_id }),
            ),
        ],
    )
    .await
}

pub async fn remove_group_member(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: Uuid,
    member_id: Uuid,
) -> Result<(), ServiceError> {
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
            actor.audit(
                tenant.id,
                "group.member_removed",
                None,
                json!({ "group": group.display_name, "member": member_id }),
            ),
        ],
    )
    .await
}

// ------------------------------------------------------------------ app registrations

/// An app registration homed in this tenant (others' apps are not editable here).
pub async fn own_application(store: &dyn Store, tenant: &Tenant, app_id: Uuid) -> Result<Application, ServiceError> {
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
) -> Result<Application, ServiceError> {
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
pub async fn update_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: Application,
) -> Result<Application, ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let current = own_application(store, tenant, app.app_id).await?;
    if app.id != current.id || app.home_tenant_id != current.home_tenant_id {
        return Err(invalid("id", "the object id and home tenant cannot change"));
    }
    for uri in &app.redirect_uris {
        valid_redirect_uri(uri)?;
    }
    valid_required_access(store, &app).await?;
    let mut seen = std::collections::HashSet::new();
    for value in app.scopes.iter().map(|s| &s.value).chain(app.app_roles.iter().map(|r| &r.value)) {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(invalid("value", "permission values are non-empty and have no spaces"));
        }
        if !seen.insert(value.to_ascii_lowercase()) {
            return Err(invalid("value", &format!("'{value}' is used twice")));
        }
    }
    if let Some(r) = app.app_roles.iter().find(|r| r.allowed_member_types.is_empty()) {
        let why = format!("the app role '{}' must allow users/groups, applications or both", r.value);
        return Err(invalid("allowedMemberTypes", &why));
    }
    let app = Application { display_name: valid_name("displayName", &app.display_name)?, ..app };
    apply(
        store,
        vec![
            Change::PutApplication(app.clone()),
            actor.audit(tenant.id, "app.updated", Some(app.app_id), json!({ "displayName": app.display_name })),
        ],
    )
    .await?;
    Ok(app)
}

/// Every permission an app asks for (`requiredResourceAccess`) exists on its resource: a
/// delegated permission as a scope, an application permission as a role applications may hold.
async fn valid_required_access(store: &dyn Store, app: &Application) -> Result<(), ServiceError> {
    let mut seen = std::collections::HashSet::new();
    for req in &app.required {
        if !seen.insert(req.resource_app_id) {
            return Err(invalid("requiredResourceAccess", "each resource may be listed once"));
        }
        let resource = if req.resource_app_id == app.app_id {
            Some(app.clone())
        } else {
            store.application_by_app_id(req.resource_app_id).await?
        };
        let Some(resource) = resource else {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("there is no resource with the application id {}", req.resource_app_id),
            ));
        };
        if let Some(v) = req.delegated.iter().find(|v| resource.scope(v).is_none()) {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("'{v}' is not a delegated permission of {}", resource.display_name),
            ));
        }
        let is_app_permission = |v: &String| {
            resource.app_role(v).is_some_and(|r| r.allowed_member_types.contains(&AppRoleMemberType::Application))
        };
        if let Some(v) = req.application.iter().find(|v| !is_app_permission(v)) {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("'{v}' is not an application permission of {}", resource.display_name),
            ));
        }
    }
    Ok(())
}
pub fn valid_redirect_uri(uri: &str) -> Result<(), ServiceError> {
    let parsed =
        url::Url::parse(uri).map_err(|_| invalid("redirectUris", &format!("'{uri}' is not an absolute URL")))?;
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
) -> Result<(ClientSecret, String), ServiceError> {
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
        vec![
            Change::PutClientSecret(secret.clone()),
            actor.audit(
                tenant.id,
                "app.secret_added",
                Some(app.app_id),
                json!({ "secret": secret.id, "displayName": secret.display_name }),
            ),
        ],
    )
    .await?;
    Ok((secret, value))
}

pub async fn delete_client_secret(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Uuid,
    secret_id: Uuid,
) -> Result<(), ServiceError> {
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

/// Deletes one of the tenant's own app registrations, as Graph's `DELETE /applications/{id}`:
/// its enterprise application goes in every tenant that has one, with the consent granted to
/// it, the assignments to it, its pending requests and its unredeemed codes and refresh tokens,
/// so nothing can sign in as it any more (AADSTS700016). The audit log keeps what went.
pub async fn delete_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Uuid,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    let detail = json!({ "displayName": app.display_name, "objectId": app.id });
    apply(
        store,
        vec![
            Change::DeleteApplication { app_object_id: app.id },
            actor.audit(tenant.id, "app.deleted", Some(app.app_id), detail),
        ],
    )
    .await
}

// ------------------------------------------------------------------ reads for the admin center
//
// What the admin center's pages list, gathered here and checked like the writes (reading needs
// `ReadDirectory`, the audit log `ReadAudit`, requests a reviewer or `ReadDirectory`), so pages
// never assemble store reads of their own.

use accord_core::consent_records::{AuditEvent, ConsentRequest, RequestStatus};
use accord_core::well_known::{GRAPH_APP_ID, MICROSOFT_SERVICES_TENANT_ID};

/// The organisation that publishes an app: Microsoft for first-party apps, else its home tenant.
pub async fn publisher_name(store: &dyn Store, owner_tenant_id: Uuid) -> Result<String, ServiceError> {
    if owner_tenant_id == MICROSOFT_SERVICES_TENANT_ID {
        return Ok("Microsoft".into());
    }
    Ok(store.tenant(owner_tenant_id).await?.map(|t| t.display_name).unwrap_or_else(|| "another organisation".into()))
}

/// A user, group or service principal of the tenant, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSummary {
    pub id: Uuid,
    pub kind: PrincipalType,
    pub display_name: String,
    /// The UPN of a user; empty otherwise.
    pub upn: String,
    pub enabled: bool,
}

impl PrincipalSummary {
    fn of_user(u: &User) -> Self {
        Self {
            id: u.id,
            kind: PrincipalType::User,
            display_name: u.display_name.clone(),
            upn: u.upn.clone(),
            enabled: u.enabled,
        }
    }

    fn of_group(g: &Group) -> Self {
        Self {
            id: g.id,
            kind: PrincipalType::Group,
            display_name: g.display_name.clone(),
            upn: String::new(),
            enabled: true,
        }
    }
}

/// Looks a principal up by object id (users, then groups, then service principals).
pub async fn principal(store: &dyn Store, tenant: &Tenant, id: Uuid) -> Result<Option<PrincipalSummary>, ServiceError> {
    if let Some(u) = store.user(tenant.id, id).await? {
        return Ok(Some(PrincipalSummary::of_user(&u)));
    }
    if let Some(g) = store.group(tenant.id, id).await? {
        return Ok(Some(PrincipalSummary::of_group(&g)));
    }
    Ok(store.service_principal(tenant.id, id).await?.map(|sp| PrincipalSummary {
        id: sp.id,
        kind: PrincipalType::ServicePrincipal,
        display_name: sp.display_name,
        upn: String::new(),
        enabled: sp.enabled,
    }))
}

async fn principal_or_deleted(
    store: &dyn Store,
    tenant: &Tenant,
    id: Uuid,
    kind: PrincipalType,
) -> Result<PrincipalSummary, ServiceError> {
    Ok(principal(store, tenant, id).await?.unwrap_or(PrincipalSummary {
        id,
        kind,
        display_name: format!("(deleted {id})"),
        upn: String::new(),
        enabled: false,
    }))
}

/// Users and (optionally) groups whose name, UPN or object id contains `query` (any case);
/// everyone when `query` is blank. Users first, each kind by display name; at most `limit`.
pub async fn find_principals(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &str,
    include_groups: bool,
    limit: usize,
) -> Result<Vec<PrincipalSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let needle = query.trim().to_lowercase();
    let hit = |texts: &[&str]| needle.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(&needle));
    let mut users: Vec<PrincipalSummary> = store
        .users(tenant.id)
        .await?
        .iter()
        .filter(|u| hit(&[&u.display_name, &u.upn, &u.id.to_string()]))
        .map(PrincipalSummary::of_user)
        .collect();
    users.sort_by_key(|p| p.display_name.to_lowercase());
    if include_groups {
        let mut groups: Vec<PrincipalSummary> = store
            .groups(tenant.id)
            .await?
            .iter()
            .filter(|g| hit(&[&g.display_name, &g.id.to_string()]))
            .map(PrincipalSummary::of_group)
            .collect();
        groups.sort_by_key(|p| p.display_name.to_lowercase());
        users.extend(groups);
    }
    users.truncate(limit);
    Ok(users)
}

/// One enterprise application of the tenant, as "All applications" lists it.
#[derive(Debug, Clone)]
pub struct EnterpriseAppSummary {
    pub sp: ServicePrincipal,
    pub publisher: String,
    pub verified_publisher: bool,
    /// In-progress admin consent requests for the app.
    pub pending_requests: usize,
}

/// "All applications" search and filters; `None` means either.
#[derive(Debug, Clone, Default)]
pub struct EnterpriseAppFilter {
    /// Part of the display name (any case) or of the application (client) id.
    pub search: String,
    pub enabled: Option<bool>,
    pub assignment_required: Option<bool>,
    pub has_pending_requests: Option<bool>,
}

/// The tenant's enterprise applications matching `filter`, by display name.
pub async fn enterprise_apps(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    filter: &EnterpriseAppFilter,
) -> Result<Vec<EnterpriseAppSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let pending: Vec<Uuid> = store
        .consent_requests(tenant.id, None)
        .await?
        .into_iter()
        .filter(|r| r.status == RequestStatus::InProgress)
        .map(|r| r.client_app_id)
        .collect();
    let needle = filter.search.trim().to_lowercase();
    let mut out = Vec::new();
    for sp in store.service_principals(tenant.id).await? {
        let pending_requests = pending.iter().filter(|a| **a == sp.app_id).count();
        let found = needle.is_empty()
            || sp.display_name.to_lowercase().contains(&needle)
            || sp.app_id.to_string().contains(&needle);
        let keep = found
            && filter.enabled.is_none_or(|e| e == sp.enabled)
            && filter.assignment_required.is_none_or(|a| a == sp.assignment_required)
            && filter.has_pending_requests.is_none_or(|p| p == (pending_requests > 0));
        if !keep {
            continue;
        }
        let verified_publisher = store.application_by_app_id(sp.app_id).await?.is_some_and(|a| a.verified_publisher);
        let publisher = publisher_name(store, sp.app_owner_tenant_id).await?;
        out.push(EnterpriseAppSummary { sp, publisher, verified_publisher, pending_requests });
    }
    out.sort_by_key(|a| (a.sp.display_name.to_lowercase(), a.sp.id));
    Ok(out)
}

/// An app role's name for lists: "Default Access" for the default role.
pub fn app_role_name(app: Option<&Application>, app_role_id: Uuid) -> String {
    if app_role_id == DEFAULT_ACCESS_ROLE_ID {
        return "Default Access".into();
    }
    match app.and_then(|a| a.app_role_by_id(app_role_id)) {
        Some(r) if !r.display_name.is_empty() && r.display_name != r.value => {
            format!("{} ({})", r.display_name, r.value)
        }
        Some(r) => r.value.clone(),
        None => format!("(removed role {app_role_id})"),
    }
}

/// A user or group assigned to an enterprise application ("Users and groups").
#[derive(Debug, Clone)]
pub struct AssignmentSummary {
    pub assignment: AppRoleAssignment,
    pub principal: PrincipalSummary,
    pub role: String,
}

/// The users and groups assigned to an enterprise application, by name.
pub async fn app_assignments(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: Uuid,
) -> Result<Vec<AssignmentSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    let app = store.application_by_app_id(sp.app_id).await?;
    let mut out = Vec::new();
    for a in store.app_role_assignments_to(tenant.id, sp.id).await? {
        if a.principal_type == PrincipalType::ServicePrincipal {
            continue; // an application permission on this app as an API, not a user or group
        }
        let principal = principal_or_deleted(store, tenant, a.principal_id, a.principal_type).await?;
        let role = app_role_name(app.as_ref(), a.app_role_id);
        out.push(AssignmentSummary { assignment: a, principal, role });
    }
    out.sort_by_key(|a| (a.principal.display_name.to_lowercase(), a.assignment.id));
    Ok(out)
}

/// A delegated grant with the names a page shows.
#[derive(Debug, Clone)]
pub struct GrantSummary {
    pub grant: DelegatedGrant,
    pub resource: String,
    /// The consenting user of a `Principal` grant.
    pub principal: Option<PrincipalSummary>,
}

/// An application permission held by a client (an app role assignment to its service principal).
#[derive(Debug, Clone)]
pub struct AppPermissionSummary {
    pub assignment: AppRoleAssignment,
    pub resource: String,
    pub value: String,
    pub display_name: String,
}

/// What an enterprise application holds: the organisation's and users' delegated grants, and
/// its application permissions.
#[derive(Debug, Clone, Default)]
pub struct AppPermissions {
    pub admin_consented: Vec<GrantSummary>,
    pub user_consented: Vec<GrantSummary>,
    pub application: Vec<AppPermissionSummary>,
}

pub async fn app_permissions(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: Uuid,
) -> Result<AppPermissions, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    let mut out = AppPermissions::default();
    for grant in store.delegated_grants_of_client(tenant.id, sp.id).await? {
        let resource =
            store.service_principal(tenant.id, grant.resource_sp_id).await?.map(|r| r.display_name).unwrap_or_default();
        match (grant.consent_type, grant.principal_id) {
            (ConsentType::Principal, Some(p)) => {
                let principal = Some(principal_or_deleted(store, tenant, p, PrincipalType::User).await?);
                out.user_consented.push(GrantSummary { grant, resource, principal });
            }
            _ => out.admin_consented.push(GrantSummary { grant, resource, principal: None }),
        }
    }
    for assignment in store.app_role_assignments_of(tenant.id, sp.id).await? {
        let resource_sp = store.service_principal(tenant.id, assignment.resource_sp_id).await?;
        let resource_app = match &resource_sp {
            Some(r) => store.application_by_app_id(r.app_id).await?,
            None => None,
        };
        let role = resource_app.as_ref().and_then(|a| a.app_role_by_id(assignment.app_role_id));
        out.application.push(AppPermissionSummary {
            resource: resource_sp.map(|r| r.display_name).unwrap_or_default(),
            value: role.map(|r| r.value.clone()).unwrap_or_else(|| assignment.app_role_id.to_string()),
            display_name: role.map(|r| r.display_name.clone()).unwrap_or_default(),
            assignment,
        });
    }
    out.user_consented.sort_by_key(|g| (g.principal.as_ref().map(|p| p.upn.clone()), g.grant.id));
    Ok(out)
}

/// A user with their directory roles.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub user: User,
    pub roles: Vec<DirectoryRole>,
}

/// The tenant's users whose name or UPN contains `query` (any case), by display name.
pub async fn users(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &str,
) -> Result<Vec<UserSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let needle = query.trim().to_lowercase();
    let mut out = Vec::new();
    for user in store.users(tenant.id).await? {
        if needle.is_empty() || user.upn.contains(&needle) || user.display_name.to_lowercase().contains(&needle) {
            let roles = store.user_roles(tenant.id, user.id).await?;
            out.push(UserSummary { user, roles });
        }
    }
    out.sort_by_key(|u| (u.user.display_name.to_lowercase(), u.user.id));
    Ok(out)
}

/// One user with roles and the groups they belong to (transitively).
pub async fn user_details(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
) -> Result<(UserSummary, Vec<Group>), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    let roles = store.user_roles(tenant.id, user.id).await?;
    let ids = store.transitive_groups_of(tenant.id, user.id).await?;
    let mut groups: Vec<Group> = store.groups(tenant.id).await?.into_iter().filter(|g| ids.contains(&g.id)).collect();
    groups.sort_by_key(|g| g.display_name.to_lowercase());
    Ok((UserSummary { user, roles }, groups))
}

/// A group's members: direct ones, the users who belong through nested groups (with the
/// nested group they come through), and the groups it belongs to.
#[derive(Debug, Clone)]
pub struct GroupDetails {
    pub group: Group,
    pub direct: Vec<PrincipalSummary>,
    pub nested_users: Vec<(PrincipalSummary, String)>,
    pub member_of: Vec<Group>,
}

pub async fn groups(store: &dyn Store, actor: &Actor, tenant: &Tenant) -> Result<Vec<(Group, usize)>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let mut out = Vec::new();
    for g in store.groups(tenant.id).await? {
        let members = store.group_members(tenant.id, g.id).await?.len();
        out.push((g, members));
    }
    out.sort_by_key(|(g, _)| g.display_name.to_lowercase());
    Ok(out)
}

pub async fn group_details(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: Uuid,
) -> Result<GroupDetails, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let all_groups = store.groups(tenant.id).await?;
    let name_of = |id: Uuid| all_groups.iter().find(|g| g.id == id).map(|g| g.display_name.clone()).unwrap_or_default();
    let mut direct = Vec::new();
    let mut queue: std::collections::VecDeque<Uuid> = std::collections::VecDeque::new();
    for m in store.group_members(tenant.id, group.id).await? {
        let kind = if m.kind == MemberKind::User { PrincipalType::User } else { PrincipalType::Group };
        direct.push(principal_or_deleted(store, tenant, m.member_id, kind).await?);
        if m.kind == MemberKind::Group {
            queue.push_back(m.member_id);
        }
    }
    direct.sort_by_key(|p| (p.kind != PrincipalType::User, p.display_name.to_lowercase()));
    // Breadth-first through nested groups, each group once (cycles are allowed).
    let mut seen = std::collections::HashSet::from([group.id]);
    let mut nested_users: Vec<(PrincipalSummary, String)> = Vec::new();
    while let Some(g) = queue.pop_front() {
        if !seen.insert(g) {
            continue;
        }
        for m in store.group_members(tenant.id, g).await? {
            match m.kind {
                MemberKind::Group => queue.push_back(m.member_id),
                MemberKind::User => {
                    let known = direct.iter().any(|d| d.id == m.member_id)
                        || nested_users.iter().any(|(u, _)| u.id == m.member_id);
                    if !known {
                        if let Some(u) = store.user(tenant.id, m.member_id).await? {
                            nested_users.push((PrincipalSummary::of_user(&u), name_of(g)));
                        }
                    }
                }
            }
        }
    }
    nested_users.sort_by_key(|(u, _)| u.display_name.to_lowercase());
    let parents = store.transitive_groups_of(tenant.id, group.id).await?;
    let mut member_of: Vec<Group> =
        all_groups.iter().filter(|g| g.id != group.id && parents.contains(&g.id)).cloned().collect();
    member_of.sort_by_key(|g| g.display_name.to_lowercase());
    Ok(GroupDetails { group, direct, nested_users, member_of })
}

/// The tenant's users, by display name, for Graph directory reads. The caller has checked the
/// token's permission (Graph lets any delegated caller with a directory-read scope read users,
/// without a directory role); only the tenant's own objects are ever returned.
pub async fn directory_users(store: &dyn Store, tenant_id: Uuid) -> Result<Vec<User>, ServiceError> {
    let mut users = store.users(tenant_id).await?;
    users.sort_by_key(|u| (u.display_name.to_lowercase(), u.id));
    Ok(users)
}

/// The tenant's groups, by display name (Graph directory reads; see [`directory_users`]).
pub async fn directory_groups(store: &dyn Store, tenant_id: Uuid) -> Result<Vec<Group>, ServiceError> {
    let mut groups = store.groups(tenant_id).await?;
    groups.sort_by_key(|g| (g.display_name.to_lowercase(), g.id));
    Ok(groups)
}

/// A group's members as Graph lists them: users and groups, direct only or transitive (through
/// nested groups, each group once even in a cycle, never the group itself). `None` when the
/// group is not one of the tenant's.
pub async fn directory_group_members(
    store: &dyn Store,
    tenant_id: Uuid,
    group_id: Uuid,
    transitive: bool,
) -> Result<Option<(Vec<User>, Vec<Group>)>, ServiceError> {
    let Some(group) = store.group(tenant_id, group_id).await? else { return Ok(None) };
    let mut seen = std::collections::HashSet::from([group.id]);
    let mut queue = std::collections::VecDeque::from([group.id]);
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    let mut user_ids = std::collections::HashSet::new();
    while let Some(g) = queue.pop_front() {
        for m in store.group_members(tenant_id, g).await? {
            match m.kind {
                MemberKind::User => {
                    if user_ids.insert(m.member_id) {
                        if let Some(u) = store.user(tenant_id, m.member_id).await? {
                            users.push(u);
                        }
                    }
                }
                MemberKind::Group => {
                    if seen.insert(m.member_id) {
                        if let Some(sub) = store.group(tenant_id, m.member_id).await? {
                            groups.push(sub);
                        }
                        if transitive {
                            queue.push_back(m.member_id);
                        }
                    }
                }
            }
        }
        if !transitive {
            break;
        }
    }
    users.sort_by_key(|u| (u.display_name.to_lowercase(), u.id));
    groups.sort_by_key(|g| (g.display_name.to_lowercase(), g.id));
    Ok(Some((users, groups)))
}

/// One of the tenant's own app registrations as Graph reads it: with its client secrets (hashes
/// stay inside the server) and when its home service principal was created.
#[derive(Debug, Clone)]
pub struct DirectoryApplication {
    pub app: Application,
    pub secrets: Vec<ClientSecret>,
    pub created_at: Option<OffsetDateTime>,
}

/// The tenant's own app registrations, by display name (Graph directory reads; see
/// [`directory_users`]). Apps homed in other tenants are never returned: there they are only
/// service principals.
pub async fn directory_applications(
    store: &dyn Store,
    tenant_id: Uuid,
) -> Result<Vec<DirectoryApplication>, ServiceError> {
    let mut out = Vec::new();
    for app in store.applications_homed_in(tenant_id).await? {
        let mut secrets = store.client_secrets(app.id).await?;
        secrets.sort_by_key(|s| (s.created_at, s.id));
        let created_at = store.service_principal_by_app_id(tenant_id, app.app_id).await?.map(|sp| sp.created_at);
        out.push(DirectoryApplication { app, secrets, created_at });
    }
    out.sort_by_key(|a| (a.app.display_name.to_lowercase(), a.app.id));
    Ok(out)
}

/// The tenant's users who hold a directory role, with their roles, by display name (Graph
/// `directoryRoles` reads; see [`directory_users`]).
pub async fn directory_role_holders(
    store: &dyn Store,
    tenant_id: Uuid,
) -> Result<Vec<(User, Vec<DirectoryRole>)>, ServiceError> {
    let mut out = Vec::new();
    for user in directory_users(store, tenant_id).await? {
        let roles = store.user_roles(tenant_id, user.id).await?;
        if !roles.is_empty() {
            out.push((user, roles));
        }
    }
    Ok(out)
}

/// The tenant's service principals with their applications, by display name (Graph directory
/// reads; see [`directory_users`]).
pub async fn directory_service_principals(
    store: &dyn Store,
    tenant_id: Uuid,
) -> Result<Vec<(ServicePrincipal, Option<Application>)>, ServiceError> {
    let mut out = Vec::new();
    for sp in store.service_principals(tenant_id).await? {
        let app = store.application_by_app_id(sp.app_id).await?;
        out.push((sp, app));
    }
    out.sort_by_key(|(sp, _)| (sp.display_name.to_lowercase(), sp.id));
    Ok(out)
}

/// The actor behind a Graph token of `tenant`: the signed-in user with their directory roles, or
/// the calling application (its service principal in the tenant) with its Graph app roles.
pub async fn graph_actor(
    store: &dyn Store,
    tenant: &Tenant,
    user_id: Option<Uuid>,
    client_app_id: Option<Uuid>,
    app_roles: &[String],
) -> Result<Actor, ServiceError> {
    match user_id {
        Some(id) => {
            let user = store.user(tenant.id, id).await?.ok_or_else(|| not_found("The signed-in user"))?;
            Actor::user(store, user).await
        }
        None => {
            let app_id = client_app_id.ok_or_else(|| invalid("azp", "the token names no application"))?;
            let sp = store
                .service_principal_by_app_id(tenant.id, app_id)
                .await?
                .ok_or_else(|| not_found("The calling application"))?;
            Ok(Actor::App { app_id, sp_id: sp.id, permissions: app_roles.to_vec() })
        }
    }
}

/// The audit log, newest first: optionally one app's events, optionally actions starting with
/// `action_prefix` (e.g. `consent.`), at most `limit`.
pub async fn audit_log(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Option<Uuid>,
    action_prefix: &str,
    limit: u32,
) -> Result<Vec<AuditEvent>, ServiceError> {
    authorize(actor, Operation::ReadAudit)?;
    let prefix = action_prefix.trim();
    let fetch = if prefix.is_empty() { limit } else { limit.saturating_mul(20).max(1000) };
    let mut events = store.audit_events(tenant.id, app_id, fetch).await?;
    events.retain(|e| e.action.starts_with(prefix));
    events.truncate(limit as usize);
    Ok(events)
}

/// How the signed-in person may see admin consent requests: as a reviewer (approve, deny and
/// block, subject to the workflow's own checks) and/or as a directory reader (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestAccess {
    pub reviewer: bool,
    pub read_directory: bool,
}

impl RequestAccess {
    pub fn may_view(self) -> bool {
        self.reviewer || self.read_directory
    }
}

pub async fn request_access(store: &dyn Store, actor: &Actor, tenant: &Tenant) -> Result<RequestAccess, ServiceError> {
    let reviewer = match actor.user_ref() {
        Some(u) => crate::service::admin_consent_requests::reviewers(store, tenant).await?.iter().any(|r| r.id == u.id),
        None => false,
    };
    // Graph lets an app holding a ConsentRequest permission read the requests without a
    // directory-reading one; a person still needs a role that reads the directory.
    let read_directory = may(actor, Operation::ReadDirectory)
        || matches!(actor, Actor::App { permissions, .. } if permissions.iter().any(|p| {
            p.eq_ignore_ascii_case("ConsentRequest.Read.All") || p.eq_ignore_ascii_case("ConsentRequest.ReadWrite.All")
        }));
    Ok(RequestAccess { reviewer, read_directory })
}

/// A permission a request asks for, with its texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPermission {
    pub resource: String,
    pub value: String,
    pub display_name: String,
    pub description: String,
    pub admin_consent_required: bool,
}

/// One user's request with the requester's and reviewer's names.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    pub request: ConsentRequest,
    pub requester: PrincipalSummary,
    pub reviewer: Option<PrincipalSummary>,
}

/// Graph's `appConsentRequest`: one app's requests, with what the pending ones ask for (or, with
/// none pending, what the requests asked for).
#[derive(Debug, Clone)]
pub struct AppConsentRequests {
    pub app_id: Uuid,
    pub display_name: String,
    pub publisher: String,
    pub verified_publisher: bool,
    /// The app's enterprise application here, if it has one.
    pub sp_id: Option<Uuid>,
    pub permissions: Vec<RequestedPermission>,
    /// Newest first.
    pub requests: Vec<RequestSummary>,
}

impl AppConsentRequests {
    pub fn pending(&self) -> impl Iterator<Item = &RequestSummary> {
        self.requests.iter().filter(|r| r.request.status == RequestStatus::InProgress)
    }
}

/// The tenant's admin consent requests grouped per app (apps with pending requests first, then
/// by latest request), or one app's when `app_id` is given. For reviewers and directory readers.
pub async fn app_consent_requests(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Option<Uuid>,
) -> Result<Vec<AppConsentRequests>, ServiceError> {
    if !request_access(store, actor, tenant).await?.may_view() {
        return Err(forbidden(actor, "viewing admin consent requests (it needs a reviewer or a directory role)"));
    }
    let mut groups: Vec<AppConsentRequests> = Vec::new();
    for request in store.consent_requests(tenant.id, app_id).await? {
        let index = match groups.iter().position(|g| g.app_id == request.client_app_id) {
            Some(i) => i,
            None => {
                let app = store.application_by_app_id(request.client_app_id).await?;
                let sp = store.service_principal_by_app_id(tenant.id, request.client_app_id).await?;
                let publisher = match &app {
                    Some(a) => publisher_name(store, a.home_tenant_id).await?,
                    None => String::new(),
                };
                groups.push(AppConsentRequests {
                    app_id: request.client_app_id,
                    display_name: app
                        .as_ref()
                        .map(|a| a.display_name.clone())
                        .unwrap_or_else(|| request.client_app_id.to_string()),
                    publisher,
                    verified_publisher: app.as_ref().is_some_and(|a| a.verified_publisher),
                    sp_id: sp.map(|s| s.id),
                    permissions: Vec::new(),
                    requests: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let requester = principal_or_deleted(store, tenant, request.user_id, PrincipalType::User).await?;
        let reviewer = match request.reviewed_by {
            Some(r) => Some(principal_or_deleted(store, tenant, r, PrincipalType::User).await?),
            None => None,
        };
        groups[index].requests.push(RequestSummary { request, requester, reviewer });
    }
    for g in &mut groups {
        let any_pending = g.pending().next().is_some();
        let mut keys: Vec<accord_core::consent_records::PermissionKey> = Vec::new();
        for r in g.requests.iter().filter(|r| !any_pending || r.request.status == RequestStatus::InProgress) {
            for p in &r.request.permissions {
                if !keys.contains(p) {
                    keys.push(p.clone());
                }
            }
        }
        for key in keys {
            let resource = store.application_by_app_id(key.resource_app_id).await?;
            let scope = resource.as_ref().and_then(|r| r.scope(&key.value));
            g.permissions.push(RequestedPermission {
                resource: resource.as_ref().map(|r| r.display_name.clone()).unwrap_or_default(),
                value: key.value.clone(),
                display_name: scope
                    .map(|s| s.admin_consent_display_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or(key.value.clone()),
                description: scope.map(|s| s.admin_consent_description.clone()).unwrap_or_default(),
                admin_consent_required: scope.is_some_and(|s| s.admin_consent_required),
            });
        }
    }
    let latest = |g: &AppConsentRequests| g.requests.iter().map(|r| r.request.created_at).max();
    groups.sort_by(|a, b| {
        let pa = a.pending().next().is_some();
        let pb = b.pending().next().is_some();
        pb.cmp(&pa).then_with(|| latest(b).cmp(&latest(a)))
    });
    Ok(groups)
}

/// The delegated permissions of Microsoft Graph users could consent to (so may be classified
/// low impact), with whether this tenant classified each low.
pub async fn graph_classifications(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
) -> Result<(Uuid, Vec<(PermissionScope, bool)>), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = store
        .service_principal_by_app_id(tenant.id, GRAPH_APP_ID)
        .await?
        .ok_or_else(|| not_found("Microsoft Graph"))?;
    let graph = store.application_by_app_id(GRAPH_APP_ID).await?.ok_or_else(|| not_found("Microsoft Graph"))?;
    let low: Vec<Uuid> = store
        .permission_classifications(tenant.id, sp.id)
        .await?
        .into_iter()
        .filter(|c| c.classification.eq_ignore_ascii_case("low"))
        .map(|c| c.permission_id)
        .collect();
    let list = graph.scopes.into_iter().filter(|s| !s.admin_consent_required).map(|s| {
        let is_low = low.contains(&s.id);
        (s, is_low)
    });
    Ok((sp.id, list.collect()))
}

/// The tenant's own app registrations with how many client secrets each has, by name.
pub async fn app_registrations(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
) -> Result<Vec<(Application, usize)>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let mut out = Vec::new();
    for app in store.applications_homed_in(tenant.id).await? {
        let secrets = store.client_secrets(app.id).await?.len();
        out.push((app, secrets));
    }
    out.sort_by_key(|(a, _)| (a.display_name.to_lowercase(), a.app_id));
    Ok(out)
}

/// One of the tenant's own app registrations, for reading.
pub async fn app_registration(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Uuid,
) -> Result<Application, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    own_application(store, tenant, app_id).await
}

/// The client secrets of one of the tenant's apps (their keyed hashes stay inside), newest first.
pub async fn client_secrets(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Uuid,
) -> Result<Vec<ClientSecret>, ServiceError> {
    let app = app_registration(store, actor, tenant, app_id).await?;
    let mut secrets = store.client_secrets(app.id).await?;
    secrets.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(secrets)
}

#[cfg(test)]
mod admin_center_tests {
    use super::*;
    use accord_core::consent_records::{PermissionKey, ReviewResult};
    use accord_store::SqlStore;

    const WORLD: &str = r#"
[[tenant]]
id = "12345678-0000-4000-8000-000000000001"
display_name = "Vendor"
domains = ["vendor.test"]

[[tenant.app]]
app_id = "12345678-0000-4000-8000-0000000000a1"
display_name = "Meeting Insights"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://vendor.example/cb"]

  [[tenant.app.role]]
  value = "Insights.Admin"
  allowed_member_types = ["User"]

[[tenant]]
id = "12345678-0000-4000-8000-000000000002"
display_name = "Contoso"
domains = ["contoso.test"]
user_consent = "none"

[tenant.admin_consent_requests]
enabled = true
reviewers = ["admin@contoso.test", "group:Reviewers"]

[[tenant.user]]
upn = "admin@contoso.test"
display_name = "Admin"
password = "admin-password"
roles = ["Global Administrator"]

[[tenant.user]]
upn = "rita@contoso.test"
display_name = "Rita"
password = "rita-password"

[[tenant.user]]
upn = "alice@contoso.test"
display_name = "Alice"
password = "alice-password"

[[tenant.group]]
display_name = "Reviewers"
members = ["rita@contoso.test"]

[[tenant.group]]
display_name = "Outer"
members = ["alice@contoso.test", "group:Inner"]

[[tenant.group]]
display_name = "Inner"
members = ["rita@contoso.test", "group:Outer"]

[[tenant.enterprise_app]]
app = "12345678-0000-4000-8000-0000000000a1"
assignment_required = true
"#;

    const CONTOSO: Uuid = uuid::uuid!("12345678-0000-4000-8000-000000000002");
    const INSIGHTS: Uuid = uuid::uuid!("12345678-0000-4000-8000-0000000000a1");

    struct World {
        store: SqlStore,
        path: std::path::PathBuf,
        tenant: Tenant,
        admin: Actor,
        rita: Actor,
        alice: Actor,
    }

    impl Drop for World {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
        }
    }

    impl World {
        async fn new() -> World {
            let path = std::env::temp_dir().join(format!("accord-admin-center-{}.db", Uuid::new_v4().simple()));
            let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
            let scenario = accord_core::scenario::parse("world.toml", WORLD).unwrap();
            crate::service::scenario_loader::load(&store, &Keyring::from_master(&[9; 32]), &scenario).await.unwrap();
            let tenant = store.tenant(CONTOSO).await.unwrap().unwrap();
            let actor = |upn: &'static str| {
                let store = store.clone();
                async move {
                    let user = store.user_by_upn(CONTOSO, upn).await.unwrap().unwrap();
                    Actor::user(&store, user).await.unwrap()
                }
            };
            World {
                path,
                admin: actor("admin@contoso.test").await,
                rita: actor("rita@contoso.test").await,
                alice: actor("alice@contoso.test").await,
                store,
                tenant,
            }
        }

        fn user(actor: &Actor) -> &User {
            actor.user_ref().unwrap()
        }
    }

    fn is_forbidden(r: Result<impl std::fmt::Debug, ServiceError>) -> bool {
        matches!(r, Err(ServiceError::Forbidden(_)))
    }

    #[tokio::test]
    async fn enterprise_apps_search_and_filter_for_directory_readers_only() {
        let w = World::new().await;
        let all = enterprise_apps(&w.store, &w.admin, &w.tenant, &EnterpriseAppFilter::default()).await.unwrap();
        let names: Vec<&str> = all.iter().map(|a| a.sp.display_name.as_str()).collect();
        assert_eq!(names, ["Meeting Insights", "Microsoft Graph"]);
        assert_eq!(all[0].publisher, "Vendor");
        assert_eq!(all[1].publisher, "Microsoft");
        assert!(all[1].verified_publisher && !all[0].verified_publisher);
        let by_id = EnterpriseAppFilter { search: "0000000000a1".into(), ..Default::default() };
        assert_eq!(enterprise_apps(&w.store, &w.admin, &w.tenant, &by_id).await.unwrap().len(), 1);
        let by_name =
            EnterpriseAppFilter { search: "GRAPH".into(), assignment_required: Some(false), ..Default::default() };
        assert_eq!(
            enterprise_apps(&w.store, &w.admin, &w.tenant, &by_name).await.unwrap()[0].sp.display_name,
            "Microsoft Graph"
        );
        let pending = EnterpriseAppFilter { has_pending_requests: Some(true), ..Default::default() };
        assert!(enterprise_apps(&w.store, &w.admin, &w.tenant, &pending).await.unwrap().is_empty());
        assert!(is_forbidden(enterprise_apps(&w.store, &w.alice, &w.tenant, &EnterpriseAppFilter::default()).await));
        assert!(is_forbidden(find_principals(&w.store, &w.rita, &w.tenant, "", true, 10).await));
        let found = find_principals(&w.store, &w.admin, &w.tenant, "r", true, 10).await.unwrap();
        let kinds: Vec<(&str, PrincipalType)> = found.iter().map(|p| (p.display_name.as_str(), p.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("Rita", PrincipalType::User),
                ("Inner", PrincipalType::Group),
                ("Outer", PrincipalType::Group),
                ("Reviewers", PrincipalType::Group)
            ]
        );
    }

    #[tokio::test]
    async fn group_details_walk_nested_groups_once_even_in_a_cycle() {
        let w = World::new().await;
        let outer = w.store.group_by_name(CONTOSO, "Outer").await.unwrap().unwrap();
        let d = group_details(&w.store, &w.admin, &w.tenant, outer.id).await.unwrap();
        let direct: Vec<&str> = d.direct.iter().map(|p| p.display_name.as_str()).collect();
        assert_eq!(direct, ["Alice", "Inner"], "users first");
        let nested: Vec<(&str, &str)> =
            d.nested_users.iter().map(|(u, via)| (u.display_name.as_str(), via.as_str())).collect();
        assert_eq!(nested, [("Rita", "Inner")]);
        assert_eq!(d.member_of.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>(), ["Inner"]);
    }

    #[tokio::test]
    async fn assignments_permissions_and_audit_reads() {
        let w = World::new().await;
        let sp = w.store.service_principal_by_app_id(CONTOSO, INSIGHTS).await.unwrap().unwrap();
        let app = w.store.application_by_app_id(INSIGHTS).await.unwrap().unwrap();
        let role = app.app_role("Insights.Admin").unwrap().id;
        let reviewers = w.store.group_by_name(CONTOSO, "Reviewers").await.unwrap().unwrap();
        add_assignment(&w.store, &w.admin, &w.tenant, sp.id, reviewers.id, Some(role)).await.unwrap();
        add_assignment(&w.store, &w.admin, &w.tenant, sp.id, World::user(&w.alice).id, None).await.unwrap();
        let list = app_assignments(&w.store, &w.admin, &w.tenant, sp.id).await.unwrap();
        let rows: Vec<(&str, &str)> =
            list.iter().map(|a| (a.principal.display_name.as_str(), a.role.as_str())).collect();
        assert_eq!(rows, [("Alice", "Default Access"), ("Reviewers", "Insights.Admin")]);
        let graph = w.store.service_principal_by_app_id(CONTOSO, GRAPH_APP_ID).await.unwrap().unwrap();
        create_grant(&w.store, &w.admin, &w.tenant, sp.id, graph.id, None, "User.Read").await.unwrap();
        create_grant(
            &w.store,
            &w.admin,
            &w.tenant,
            sp.id,
            graph.id,
            Some(World::user(&w.alice).id),
            "openid Calendars.Read",
        )
        .await
        .unwrap();
        let p = app_permissions(&w.store, &w.admin, &w.tenant, sp.id).await.unwrap();
        assert_eq!(p.admin_consented.len(), 1);
        assert_eq!(p.admin_consented[0].resource, "Microsoft Graph");
        assert_eq!(p.user_consented[0].principal.as_ref().unwrap().upn, "alice@contoso.test");
        assert_eq!(p.user_consented[0].grant.scopes, ["openid", "Calendars.Read"]);
        assert!(p.application.is_empty());
        let events = audit_log(&w.store, &w.admin, &w.tenant, Some(INSIGHTS), "assignment.", 10).await.unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.action == "assignment.added"));
        assert_eq!(audit_log(&w.store, &w.admin, &w.tenant, None, "consent.", 10).await.unwrap().len(), 2);
        assert!(is_forbidden(audit_log(&w.store, &w.rita, &w.tenant, None, "", 10).await));
    }

    #[tokio::test]
    async fn requests_are_grouped_per_app_for_reviewers_and_readers() {
        let w = World::new().await;
        let now = OffsetDateTime::now_utc();
        let request = ConsentRequest {
            tenant_id: CONTOSO,
            id: Uuid::new_v4(),
            client_app_id: INSIGHTS,
            user_id: World::user(&w.alice).id,
            reason: "for the sales calls".into(),
            permissions: vec![PermissionKey { resource_app_id: GRAPH_APP_ID, value: "Calendars.Read".into() }],
            status: RequestStatus::InProgress,
            result: ReviewResult::NotReviewed,
            reviewed_by: None,
            review_justification: None,
            created_at: now,
            reviewed_at: None,
            completed_at: None,
            expires_at: now + time::Duration::days(7),
        };
        w.store.apply(&[Change::PutConsentRequest(request.clone())]).await.unwrap();
        assert_eq!(
            request_access(&w.store, &w.rita, &w.tenant).await.unwrap(),
            RequestAccess { reviewer: true, read_directory: false }
        );
        assert!(!request_access(&w.store, &w.alice, &w.tenant).await.unwrap().may_view());
        assert!(is_forbidden(app_consent_requests(&w.store, &w.alice, &w.tenant, None).await));
        let groups = app_consent_requests(&w.store, &w.rita, &w.tenant, None).await.unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!((g.display_name.as_str(), g.publisher.as_str()), ("Meeting Insights", "Vendor"));
        assert_eq!(g.pending().count(), 1);
        assert_eq!(g.requests[0].requester.upn, "alice@contoso.test");
        assert_eq!(g.permissions[0].display_name, "Read user calendars");
        assert_eq!(g.permissions[0].resource, "Microsoft Graph");
        // The workflow's rule: Rita reviews but holds no role that may grant; the admin may.
        let app = w.store.application_by_app_id(INSIGHTS).await.unwrap().unwrap();
        let refused =
            crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.rita))
                .await;
        assert!(matches!(refused, Err(ServiceError::Forbidden(ref e)) if e.code == 90094), "{refused:?}");
        let granted =
            crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.admin))
                .await
                .unwrap();
        assert_eq!(granted.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), ["Calendars.Read"]);
        let alice_refused =
            crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.alice))
                .await;
        assert!(is_forbidden(alice_refused), "not a reviewer");
    }

    #[tokio::test]
    async fn registrations_must_ask_for_real_permissions_and_roles_for_someone() {
        let w = World::new().await;
        let app =
            create_application(&w.store, &w.admin, &w.tenant, "Reports", SignInAudience::SingleOrg).await.unwrap();
        let invalid_field = |r: Result<Application, ServiceError>| match r {
            Err(ServiceError::Refused(e)) => e.message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let mut bad = app.clone();
        bad.required = vec![RequiredResourceAccess {
            resource_app_id: GRAPH_APP_ID,
            delegated: vec!["Nope.Read".into()],
            application: vec![],
        }];
        assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await)
            .contains("'Nope.Read' is not a delegated permission"));
        let mut bad = app.clone();
        bad.required = vec![RequiredResourceAccess {
            resource_app_id: GRAPH_APP_ID,
            delegated: vec![],
            application: vec!["User.Read".into()],
        }];
        assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await)
            .contains("not an application permission"));
        let mut bad = app.clone();
        bad.app_roles = vec![AppRole {
            id: Uuid::new_v4(),
            value: "X".into(),
            display_name: "X".into(),
            description: String::new(),
            allowed_member_types: vec![],
        }];
        assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await).contains("must allow"));
        let mut good = app.clone();
        good.required = vec![RequiredResourceAccess {
            resource_app_id: GRAPH_APP_ID,
            delegated: vec!["User.Read".into()],
            application: vec!["User.Read.All".into()],
        }];
        update_application(&w.store, &w.admin, &w.tenant, good).await.unwrap();
        let regs = app_registrations(&w.store, &w.admin, &w.tenant).await.unwrap();
        assert_eq!(regs.iter().map(|(a, n)| (a.display_name.as_str(), *n)).collect::<Vec<_>>(), [("Reports", 0)]);
        assert!(client_secrets(&w.store, &w.admin, &w.tenant, INSIGHTS).await.is_err(), "another tenant's app");

        // Classifications: only what users could consent to.
        let (graph, list) = graph_classifications(&w.store, &w.admin, &w.tenant).await.unwrap();
        assert!(list.iter().all(|(s, low)| !s.admin_consent_required && !low));
        let refused = classify(&w.store, &w.admin, &w.tenant, graph, "User.Read.All", true).await;
        assert!(
            matches!(refused, Err(ServiceError::Refused(ref e)) if e.message.contains("requires admin consent")),
            "{refused:?}"
        );
        classify(&w.store, &w.admin, &w.tenant, graph, "User.Read", true).await.unwrap();
        let (_, list) = graph_classifications(&w.store, &w.admin, &w.tenant).await.unwrap();
        assert!(list.iter().any(|(s, low)| s.value == "User.Read" && *low));
    }

    #[tokio::test]
    async fn microsoft_graph_cannot_be_disabled_or_restricted() {
        let w = World::new().await;
        let graph =
            w.store.service_principal_by_app_id(CONTOSO, accord_core::well_known::GRAPH_APP_ID).await.unwrap().unwrap();
        for (enabled, required) in [(Some(false), None), (None, Some(true))] {
            let err =
                set_service_principal(&w.store, &w.admin, &w.tenant, graph.id, enabled, required).await.unwrap_err();
            assert!(matches!(err, ServiceError::Refused(ref e) if e.message.contains("Microsoft Graph")), "{err:?}");
        }
        let sp = w.store.service_principal(CONTOSO, graph.id).await.unwrap().unwrap();
        assert!(sp.enabled && !sp.assignment_required);
    }

    /// A deleted reviewer leaves the admin-consent request policy (which names reviewers by id
    /// and would otherwise keep a dangling one); nobody deletes themselves; Rita may not delete.
    #[tokio::test]
    async fn deleting_a_user_takes_them_off_the_reviewers() {
        let w = World::new().await;
        let admin_id = World::user(&w.admin).id;
        let refused = delete_user(&w.store, &w.admin, &w.tenant, admin_id).await;
        assert!(
            matches!(refused, Err(ServiceError::Refused(ref e)) if e.message.contains("own account")),
            "{refused:?}"
        );
        assert!(is_forbidden(delete_user(&w.store, &w.rita, &w.tenant, World::user(&w.alice).id).await));
        let daemon =
            Actor::App { app_id: INSIGHTS, sp_id: Uuid::new_v4(), permissions: vec!["User.ReadWrite.All".into()] };
        delete_user(&w.store, &daemon, &w.tenant, admin_id).await.unwrap();
        let tenant = w.store.tenant(CONTOSO).await.unwrap().unwrap();
        let policy = &tenant.admin_consent_requests;
        assert!(!policy.reviewers.contains(&ReviewerRef::User(admin_id)), "{policy:?}");
        assert_eq!(policy.reviewers.len(), 1, "the Reviewers group stays: {policy:?}");
        assert_eq!(policy.version, w.tenant.admin_consent_requests.version + 1);
        assert_eq!(w.store.user(CONTOSO, admin_id).await.unwrap(), None);
        let again = delete_user(&w.store, &daemon, &tenant, admin_id).await;
        assert!(matches!(again, Err(ServiceError::NotFound(_))), "{again:?}");
    }
}
