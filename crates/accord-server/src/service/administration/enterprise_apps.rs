//! Enterprise applications: their settings, and who is assigned to them.

use super::*;
use accord_core::ids::{GroupId, ServicePrincipalId, UserId};

pub async fn service_principal(
    store: &dyn Store,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
) -> Result<ServicePrincipal, ServiceError> {
    store.service_principal(tenant.id, sp_id).await?.ok_or_else(|| not_found("The enterprise application"))
}

/// Enables/disables an enterprise application and sets whether assignment is required.
pub async fn set_service_principal(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
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
    // Only what changed is logged, and saving the same values writes nothing.
    let mut detail = serde_json::Map::new();
    if before.0 != sp.enabled {
        detail.insert("accountEnabled".into(), super::modified(before.0, sp.enabled));
    }
    if before.1 != sp.assignment_required {
        detail.insert("appRoleAssignmentRequired".into(), super::modified(before.1, sp.assignment_required));
    }
    if detail.is_empty() {
        return Ok(sp);
    }
    let detail = serde_json::Value::Object(detail);
    let changes = vec![
        Change::PutServicePrincipal(sp.clone()),
        actor.audit(tenant.id, "enterprise_app.updated", Some(sp.app_id), detail),
    ];
    apply(store, changes).await?;
    Ok(sp)
}

/// Deletes the organisation's enterprise application for an app: every grant, assignment and
/// application permission of it here goes, its refresh tokens stop working, and its vendor's
/// consent webhooks hear `app.deleted`. The app can come back only by consent. Microsoft Graph
/// cannot be deleted (every app's sign-in needs it).
pub async fn delete_service_principal(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageEnterpriseApps)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    if sp.app_id == accord_core::well_known::GRAPH_APP_ID {
        return Err(invalid("servicePrincipal", "Microsoft Graph cannot be deleted"));
    }
    let changes = vec![
        Change::DeleteServicePrincipal { tenant_id: tenant.id, sp_id },
        actor.audit(tenant.id, "enterprise_app.deleted", Some(sp.app_id), json!({ "servicePrincipalId": sp.id })),
    ];
    apply(store, changes).await?;
    Ok(())
}

/// Assigns a user or group to an enterprise application ("Users and groups > Add user/group"),
/// optionally with one of the app's roles that users may hold.
pub async fn add_assignment(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
    principal_id: Uuid,
    app_role_id: Option<Uuid>,
    expires_at: Option<time::OffsetDateTime>,
) -> Result<AppRoleAssignment, ServiceError> {
    let mut added = add_assignments(store, actor, tenant, sp_id, &[principal_id], app_role_id, expires_at).await?;
    added.pop().ok_or_else(|| invalid("principalId", "choose a user or group"))
}

/// The most users and groups one "Add assignment" takes.
pub const MAX_ASSIGNMENTS_AT_ONCE: usize = 100;

/// Assigns several users and groups at once, with the same role and end, in one transaction
/// (one audit event each). A principal already assigned that role keeps its assignment, which
/// is returned as it is.
pub async fn add_assignments(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
    principal_ids: &[Uuid],
    app_role_id: Option<Uuid>,
    expires_at: Option<time::OffsetDateTime>,
) -> Result<Vec<AppRoleAssignment>, ServiceError> {
    authorize(actor, Operation::ManageAssignments)?;
    if principal_ids.is_empty() {
        return Err(invalid("principalId", "choose a user or group"));
    }
    if principal_ids.len() > MAX_ASSIGNMENTS_AT_ONCE {
        return Err(invalid("principalId", "at most 100 users and groups can be assigned at once"));
    }
    if expires_at.is_some_and(|t| t <= accord_core::clock::now()) {
        return Err(invalid("accord.expiresDateTime", "the end of a time-bound assignment must be in the future"));
    }
    let sp = service_principal(store, tenant, sp_id).await?;
    let app = store.application_by_app_id(sp.app_id).await?.ok_or_else(|| not_found("The application"))?;
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
    let mut out = Vec::with_capacity(principal_ids.len());
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &principal_id in principal_ids.iter().filter(|p| seen.insert(**p)) {
        let (principal_type, name) = if let Some(u) = store.user(tenant.id, UserId::from(principal_id)).await? {
            (PrincipalType::User, u.upn)
        } else if let Some(g) = store.group(tenant.id, GroupId::from(principal_id)).await? {
            (PrincipalType::Group, g.display_name)
        } else {
            return Err(invalid("principalId", "no user or group with this id in the organisation"));
        };
        if let Some(a) = existing.iter().find(|a| a.principal_id == principal_id && a.app_role_id == role_id) {
            out.push(a.clone());
            continue;
        }
        let assignment = AppRoleAssignment {
            tenant_id: tenant.id,
            id: Uuid::new_v4(),
            principal_id,
            principal_type,
            resource_sp_id: sp.id,
            app_role_id: role_id,
            created_at: accord_core::clock::now(),
            expires_at,
        };
        let detail = json!({ "principal": name, "principalType": principal_type.as_str(), "appRoleId": role_id });
        changes.push(Change::PutAppRoleAssignment(assignment.clone()));
        changes.push(actor.audit(tenant.id, "assignment.added", Some(sp.app_id), detail));
        out.push(assignment);
    }
    if !changes.is_empty() {
        apply(store, changes).await?;
    }
    Ok(out)
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
    resource_sp_id: ServicePrincipalId,
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
        store.service_principal(tenant.id, ServicePrincipalId::from(a.principal_id)).await?.map(|s| s.app_id)
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
