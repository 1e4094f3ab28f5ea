//! Test mode's replication lag applied to consent: the world the token endpoint decides on,
//! rewound to how it was `seconds` ago by undoing the journal of consent changes (newest
//! first). What a change undoes is the opposite of what the store journalled for it
//! (`accord-store`'s `consent_webhooks.rs` writes the events): a grant given is taken away, a
//! revoked one comes back with the scopes it had, an assignment added is not there yet, an
//! enterprise app disabled is still enabled. An enterprise app created within the lag does not
//! exist yet — the client is unknown to the tenant, as just after the first admin consent.

use crate::replication_lag::{self, Lag};
use crate::service::ServiceError;
use accord_core::directory::{AppRoleAssignment, ConsentType, DelegatedGrant, PrincipalType, ServicePrincipal, Tenant};
use accord_core::ids::AppId;
use accord_store::{ConsentEvent, Store};
use serde_json::Value;
use uuid::Uuid;

/// Changes looked at, at most (a test's burst of changes is far fewer).
const MAX_EVENTS: u32 = 1_000;

/// The parts of a tenant's consent for one client that replication lag can rewind.
pub struct ConsentParts<'a> {
    pub client_sp: &'a mut Option<ServicePrincipal>,
    pub delegated_grants: &'a mut Vec<DelegatedGrant>,
    /// The client's application permissions (app role assignments it holds).
    pub app_role_grants: &'a mut Vec<AppRoleAssignment>,
    /// Users and groups assigned to the client.
    pub assignments_to_client: &'a mut Vec<AppRoleAssignment>,
}

/// The lag in force for `client` in `tenant`, and the consent changes it hides (oldest first).
/// `None` when no rule applies or nothing changed within the lag.
pub async fn hidden_changes(
    store: &dyn Store,
    tenant: &Tenant,
    client: AppId,
) -> Result<Option<(Lag, Vec<ConsentEvent>)>, ServiceError> {
    if !replication_lag::active() {
        return Ok(None);
    }
    let mut names = vec![tenant.id.to_string()];
    names.extend(tenant.domains.iter().cloned());
    let Some(lag) = replication_lag::lag_for(&names, client) else { return Ok(None) };
    let events = store.consent_events_since(tenant.id, client, lag.horizon, MAX_EVENTS).await?;
    Ok(Some((lag, events)))
}

/// Undoes `events` (oldest first, as read) on `parts`; the kinds of change undone, in words.
pub fn rewind(parts: ConsentParts<'_>, lag: &Lag, events: &[ConsentEvent]) -> Vec<String> {
    let mut undone = Vec::new();
    if parts.client_sp.as_ref().is_some_and(|sp| sp.created_at > lag.horizon) {
        *parts.client_sp = None;
        parts.delegated_grants.clear();
        parts.app_role_grants.clear();
        parts.assignments_to_client.clear();
        undone.push("the enterprise app's creation".to_string());
        return undone;
    }
    let Some(sp) = parts.client_sp.as_mut() else { return undone };
    for event in events.iter().rev() {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { continue };
        let changed =
            undo(event, &data, sp, parts.delegated_grants, parts.app_role_grants, parts.assignments_to_client);
        if changed {
            undone.push(event.kind.clone());
        }
    }
    undone
}

fn uuid_of(data: &Value, key: &str) -> Option<Uuid> {
    data.get(key).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn strings(data: &Value, key: &str) -> Vec<String> {
    data.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Undoes one change; whether anything changed.
fn undo(
    event: &ConsentEvent,
    data: &Value,
    sp: &mut ServicePrincipal,
    grants: &mut Vec<DelegatedGrant>,
    app_roles: &mut Vec<AppRoleAssignment>,
    assignments: &mut Vec<AppRoleAssignment>,
) -> bool {
    let application = data.get("permissionType").and_then(Value::as_str) == Some("application");
    let before = (grants.len(), app_roles.len(), assignments.len(), sp.enabled);
    match (event.kind.as_str(), application) {
        ("consent.granted", false) => {
            let Some(id) = uuid_of(data, "grantId") else { return false };
            grants.retain(|g| g.id != id);
        }
        ("consent.changed", _) => {
            let Some(id) = uuid_of(data, "grantId") else { return false };
            let previous = strings(data, "previousScopes");
            let Some(grant) = grants.iter_mut().find(|g| g.id == id) else { return false };
            if grant.scopes == previous {
                return false;
            }
            grant.scopes = previous;
            return true;
        }
        ("consent.revoked", false) => {
            let (Some(id), Some(resource)) = (uuid_of(data, "grantId"), uuid_of(data, "resourceId")) else {
                return false;
            };
            if !grants.iter().any(|g| g.id == id) {
                let consent_type = match data.get("consentType").and_then(Value::as_str) {
                    Some("Principal") => ConsentType::Principal,
                    _ => ConsentType::AllPrincipals,
                };
                grants.push(DelegatedGrant {
                    tenant_id: sp.tenant_id,
                    id,
                    client_sp_id: sp.id,
                    resource_sp_id: resource.into(),
                    consent_type,
                    principal_id: uuid_of(data, "principalId").map(Into::into),
                    scopes: strings(data, "scopes"),
                    created_at: event.at,
                    expires_at: None,
                });
            }
        }
        ("consent.granted", true) => {
            let Some(id) = uuid_of(data, "assignmentId") else { return false };
            app_roles.retain(|a| a.id != id);
        }
        ("consent.revoked", true) => {
            let (Some(id), Some(resource), Some(role)) =
                (uuid_of(data, "assignmentId"), uuid_of(data, "resourceId"), uuid_of(data, "appRoleId"))
            else {
                return false;
            };
            if !app_roles.iter().any(|a| a.id == id) {
                app_roles.push(AppRoleAssignment {
                    tenant_id: sp.tenant_id,
                    id,
                    principal_id: sp.id.into(),
                    principal_type: PrincipalType::ServicePrincipal,
                    resource_sp_id: resource.into(),
                    app_role_id: role,
                    created_at: event.at,
                    expires_at: None,
                });
            }
        }
        ("assignment.added", _) => {
            let Some(id) = uuid_of(data, "assignmentId") else { return false };
            assignments.retain(|a| a.id != id);
        }
        ("assignment.removed", _) => {
            let (Some(id), Some(principal), Some(role)) =
                (uuid_of(data, "assignmentId"), uuid_of(data, "principalId"), uuid_of(data, "appRoleId"))
            else {
                return false;
            };
            let principal_type = match data.get("principalType").and_then(Value::as_str) {
                Some("Group") => PrincipalType::Group,
                _ => PrincipalType::User,
            };
            if !assignments.iter().any(|a| a.id == id) {
                assignments.push(AppRoleAssignment {
                    tenant_id: sp.tenant_id,
                    id,
                    principal_id: principal,
                    principal_type,
                    resource_sp_id: sp.id,
                    app_role_id: role,
                    created_at: event.at,
                    expires_at: None,
                });
            }
        }
        ("app.disabled", _) => sp.enabled = true,
        ("app.enabled", _) => sp.enabled = false,
        _ => return false,
    }
    before != (grants.len(), app_roles.len(), assignments.len(), sp.enabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::ids::{ServicePrincipalId, TenantId};
    use serde_json::json;
    use time::macros::datetime;

    fn event(seq: i64, kind: &str, data: Value) -> ConsentEvent {
        ConsentEvent {
            seq,
            tenant_id: TenantId::from(Uuid::nil()),
            app_id: AppId::from(Uuid::nil()),
            kind: kind.into(),
            data: data.to_string(),
            at: datetime!(2030-01-01 0:00 UTC),
        }
    }

    fn sp(created: time::OffsetDateTime) -> ServicePrincipal {
        ServicePrincipal {
            tenant_id: TenantId::from(Uuid::nil()),
            id: ServicePrincipalId::random(),
            app_id: AppId::from(Uuid::nil()),
            display_name: "Vendor".into(),
            app_owner_tenant_id: TenantId::from(Uuid::nil()),
            enabled: false,
            assignment_required: true,
            created_at: created,
        }
    }

    fn lag() -> Lag {
        Lag { rule: "fault-1".into(), seconds: 20, horizon: datetime!(2029-12-31 23:59:40 UTC) }
    }

    #[test]
    fn changes_within_the_lag_are_undone_newest_first() {
        let mut client = Some(sp(datetime!(2029-01-01 0:00 UTC)));
        let (graph, grant, role, assignment) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (mut grants, mut roles, mut assigned) = (Vec::new(), Vec::new(), Vec::new());
        let sp_id = client.as_ref().unwrap().id;
        assigned.push(AppRoleAssignment {
            tenant_id: TenantId::from(Uuid::nil()),
            id: assignment,
            principal_id: Uuid::new_v4(),
            principal_type: PrincipalType::User,
            resource_sp_id: sp_id,
            app_role_id: Uuid::nil(),
            created_at: datetime!(2030-01-01 0:00 UTC),
            expires_at: None,
        });
        let events = [
            // Granted, then extended, then revoked: rewinding ends with nothing.
            event(
                1,
                "consent.granted",
                json!({"grantId": grant, "permissionType": "delegated", "resourceId": graph, "scopes": ["User.Read"]}),
            ),
            event(
                2,
                "consent.changed",
                json!({"grantId": grant, "permissionType": "delegated", "scopes": ["User.Read", "Calendars.Read"], "previousScopes": ["User.Read"]}),
            ),
            event(
                3,
                "consent.revoked",
                json!({"grantId": grant, "permissionType": "delegated", "consentType": "AllPrincipals", "resourceId": graph, "scopes": ["User.Read", "Calendars.Read"]}),
            ),
            event(
                4,
                "consent.revoked",
                json!({"assignmentId": role, "permissionType": "application", "resourceId": graph, "appRoleId": Uuid::nil()}),
            ),
            event(
                5,
                "assignment.added",
                json!({"assignmentId": assignment, "principalId": Uuid::nil(), "principalType": "User", "appRoleId": Uuid::nil()}),
            ),
            event(6, "app.disabled", json!({})),
            event(7, "consent_request.filed", json!({})),
        ];
        // Only the last three: the revoked grant is back with its scopes, the role back,
        // the assignment gone, the app enabled.
        let undone = rewind(
            ConsentParts {
                client_sp: &mut client,
                delegated_grants: &mut grants,
                app_role_grants: &mut roles,
                assignments_to_client: &mut assigned,
            },
            &lag(),
            &events[2..],
        );
        assert_eq!(undone, ["app.disabled", "assignment.added", "consent.revoked", "consent.revoked"]);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].scopes, ["User.Read", "Calendars.Read"]);
        assert_eq!(grants[0].consent_type, ConsentType::AllPrincipals);
        assert_eq!(roles.len(), 1);
        assert!(assigned.is_empty());
        assert!(client.as_ref().unwrap().enabled);
        // All of them: nothing was granted before the lag began.
        let mut grants = Vec::new();
        let mut roles = Vec::new();
        let undone = rewind(
            ConsentParts {
                client_sp: &mut client,
                delegated_grants: &mut grants,
                app_role_grants: &mut roles,
                assignments_to_client: &mut Vec::new(),
            },
            &lag(),
            &events[..3],
        );
        assert_eq!(undone, ["consent.revoked", "consent.changed", "consent.granted"]);
        assert!(grants.is_empty());
    }

    #[test]
    fn an_enterprise_app_created_within_the_lag_does_not_exist_yet() {
        let mut client = Some(sp(datetime!(2029-12-31 23:59:50 UTC)));
        let undone = rewind(
            ConsentParts {
                client_sp: &mut client,
                delegated_grants: &mut Vec::new(),
                app_role_grants: &mut Vec::new(),
                assignments_to_client: &mut Vec::new(),
            },
            &lag(),
            &[],
        );
        assert!(client.is_none());
        assert_eq!(undone.len(), 1);
    }
}
