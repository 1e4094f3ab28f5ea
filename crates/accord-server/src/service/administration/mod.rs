//! Administration of a tenant: the one service layer behind the admin center, My Apps, the
//! Graph-compatible API and the CLI. Every operation checks who acts (a directory role for a
//! signed-in person, an application permission for an app-only caller), validates its input,
//! writes its change together with an audit event in one transaction, and returns a specific
//! error otherwise. No page or endpoint implements a rule of its own.

use crate::crypto::{random_token, Keyring};
use crate::service::consent::{audit, ConsentWorld};
use crate::service::ServiceError;
use accord_core::consent_engine::{Decision, PermissionRef};
use accord_core::consent_records::PermissionClassification;
use accord_core::directory::*;
use accord_core::ids::{AppId, ServicePrincipalId, TenantId};
use accord_core::scope::ScopeRequest;
use accord_core::well_known::DEFAULT_ACCESS_ROLE_ID;
use accord_core::Aadsts;
use accord_store::{
    AuditQuery, Change, DirectoryObject, MemberPosition, MemberQuery, Membership, NamePosition, NameQuery, Store,
};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who performs an operation.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A signed-in person (admin center, My Apps, delegated Graph calls).
    User { user: User, roles: Vec<DirectoryRole> },
    /// An app calling Graph with an app-only token; `permissions` are its Graph app roles.
    App { app_id: AppId, sp_id: ServicePrincipalId, permissions: Vec<String> },
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
    fn audit(&self, tenant_id: TenantId, action: &str, app_id: Option<AppId>, detail: serde_json::Value) -> Change {
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
    /// Setting another user's password (Graph's `passwordProfile`), which Entra keeps apart from
    /// other user writes.
    ResetPasswords,
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
            Operation::ManageUsers | Operation::ManageGroups | Operation::ResetPasswords => &[GlobalAdministrator],
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
        use accord_core::microsoft_graph::permissions as graph;
        match self {
            Operation::ReadDirectory => graph::DIRECTORY_READ_APP,
            Operation::ManageUsers => graph::USER_WRITE_APP,
            Operation::ResetPasswords => graph::PASSWORD_RESET_APP,
            Operation::ManageGroups => graph::GROUP_WRITE_APP,
            Operation::ManageRoles => graph::ROLE_WRITE,
            Operation::ManageEnterpriseApps | Operation::ManageAppRegistrations => graph::APP_WRITE_APP,
            Operation::ManageGrants => graph::GRANT_WRITE,
            Operation::ManageAssignments => graph::ASSIGNMENT_WRITE,
            Operation::ManageUserConsentSetting => graph::AUTH_POLICY_WRITE,
            Operation::ManageClassifications => graph::CLASSIFICATION_WRITE,
            Operation::ManageRequestPolicy => graph::REQUEST_POLICY_WRITE,
            Operation::ReadAudit => graph::AUDIT_READ_APP,
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

/// A user who holds a directory role is privileged: resetting their password, disabling or
/// deleting them could hand over their role. Only a Global Administrator may (Entra also lets a
/// Privileged Authentication Administrator, a role Accord does not model); an app never may,
/// whatever its permissions, since no directory role can be given to an app here.
async fn guard_privileged_target(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    target: &User,
    what: &str,
) -> Result<(), ServiceError> {
    let roles = store.user_roles(tenant.id, target.id).await?;
    if roles.is_empty() {
        return Ok(());
    }
    match actor {
        Actor::User { roles: own, .. } if own.contains(&GlobalAdministrator) => Ok(()),
        _ => Err(ServiceError::forbidden(format!(
            "{} holds a privileged directory role ({}); only a Global Administrator may {what} them.",
            target.upn,
            roles.iter().map(|r| r.display_name()).collect::<Vec<_>>().join(", ")
        ))),
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
        Operation::ResetPasswords => "resetting passwords",
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

/// A property's change as the audit log records it (Entra's `modifiedProperties` words it
/// so): the admin center shows it as "old → new".
fn modified(old: impl serde::Serialize, new: impl serde::Serialize) -> serde_json::Value {
    json!({ "oldValue": old, "newValue": new })
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

/// Read-modify-write of the tenant row: `change` edits a copy of the tenant and names the other
/// changes to write with it. When another write moved the row since it was read (`Stale`), the
/// tenant is read again and `change` applied to it afresh, a few times at most, so concurrent
/// edits of different settings both land and none undoes the other.
async fn update_tenant<F>(store: &dyn Store, tenant: &Tenant, mut change: F) -> Result<Tenant, ServiceError>
where
    F: FnMut(&mut Tenant) -> Result<Vec<Change>, ServiceError>,
{
    const ATTEMPTS: u64 = 10;
    let mut current = tenant.clone();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            // Writers that collided should not collide again in lockstep.
            let jitter = u64::from(crate::crypto::random_bytes::<1>()[0]) % (attempt * 4);
            tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
        }
        let mut edited = current.clone();
        let mut changes = change(&mut edited)?;
        changes.insert(0, Change::PutTenant(edited.clone()));
        match store.apply(&changes).await {
            Ok(()) => {
                edited.revision += 1;
                return Ok(edited);
            }
            Err(accord_store::StoreError::Stale(_)) if attempt < ATTEMPTS => {
                current = store.tenant(tenant.id).await?.ok_or_else(|| not_found("The organisation"))?;
            }
            Err(e) => return Err(ServiceError::from(e)),
        }
    }
    unreachable!("the last attempt returns")
}

fn valid_name(field: &str, name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(invalid(field, "it must be 1 to 256 printable characters"));
    }
    Ok(name.to_string())
}

mod app_registrations;
mod consent_settings;
mod directory;
mod enterprise_apps;
mod grants;
mod queries;
#[cfg(test)]
mod tests;

pub use app_registrations::*;
pub use consent_settings::*;
pub use directory::*;
pub use enterprise_apps::*;
pub use grants::*;
pub use queries::*;
