//! Time-bound grants and assignments (an Accord extension): a week before one ends, the
//! tenant's administrators are reminded (the notification outbox), once per grant and end;
//! at its end it is deleted as a revocation would delete it — the consent journal tells consent
//! webhooks, the audit log says why, and the next refresh fails (AADSTS65001 or 50105).

use super::admin_consent_requests::notification;
use super::ServiceError;
use crate::state::AppState;
use accord_core::directory::{DirectoryRole, PrincipalType, User};
use accord_core::ids::TenantId;
use accord_store::{Change, Store};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// How long before its end a grant's administrators are reminded.
pub const REMIND_BEFORE: Duration = Duration::days(7);
/// Grants looked at per run.
const BATCH: u32 = 500;

/// Reminds the administrators of each tenant (Global, Privileged Role, Cloud Application and
/// Application Administrators) of its grants and assignments that end within a week; returns
/// how many were reminded of. A grant whose end moves is reminded of again for the new end.
pub async fn remind_ending(store: &dyn Store, now: OffsetDateTime) -> Result<usize, ServiceError> {
    use sha2::Digest;
    let (grants, assignments) = store.expired_grants(now + REMIND_BEFORE, BATCH).await?;
    let mut endings: Vec<Ending> = Vec::new();
    for g in grants.iter().filter(|g| g.expires_at.is_some_and(|e| e > now)) {
        let Some(sp) = store.service_principal(g.tenant_id, g.client_sp_id).await? else { continue };
        let resource = store.service_principal(g.tenant_id, g.resource_sp_id).await?;
        endings.push(Ending {
            tenant_id: g.tenant_id,
            id: g.id,
            ends: g.expires_at.unwrap_or(now),
            what: format!(
                "the consent to {} ({}) for {}",
                resource.map(|r| r.display_name).unwrap_or_default(),
                g.scopes.join(" "),
                if g.principal_id.is_some() { "one user" } else { "all users" }
            ),
            app: sp.display_name,
        });
    }
    for a in assignments.iter().filter(|a| a.expires_at.is_some_and(|e| e > now)) {
        let (app_sp, what) = if a.principal_type == PrincipalType::ServicePrincipal {
            (a.principal_id.into(), "an application permission".to_string())
        } else {
            let name = match a.principal_type {
                PrincipalType::User => store.user(a.tenant_id, a.principal_id.into()).await?.map(|u| u.upn),
                _ => store.group(a.tenant_id, a.principal_id.into()).await?.map(|g| g.display_name),
            };
            (a.resource_sp_id, format!("the assignment of {}", name.unwrap_or_else(|| "a principal".into())))
        };
        let Some(sp) = store.service_principal(a.tenant_id, app_sp).await? else { continue };
        endings.push(Ending {
            tenant_id: a.tenant_id,
            id: a.id,
            ends: a.expires_at.unwrap_or(now),
            what,
            app: sp.display_name,
        });
    }
    let mut count = 0;
    for e in endings {
        let digest = sha2::Sha256::digest(format!("end-reminder:{}:{}", e.id, e.ends.unix_timestamp()).as_bytes());
        let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        // Claimed first: one reminder per grant and end, whichever replica runs.
        if !store.consume_once(&key, e.ends + Duration::days(1)).await? {
            continue;
        }
        let Some(tenant) = store.tenant(e.tenant_id).await? else { continue };
        let when = e
            .ends
            .to_offset(time::UtcOffset::UTC)
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
            .unwrap_or_default();
        let changes: Vec<Change> = administrators(store, e.tenant_id)
            .await?
            .iter()
            .map(|admin| {
                notification(
                    e.tenant_id,
                    admin,
                    "grant.ending",
                    format!("Reminder: {} of {} ends at {when}", e.what, e.app),
                    format!(
                        "In {}, {} of {} ends at {when}. After that the app can no longer get tokens for it \
                         (its next refresh fails), as after a revocation.\n\nTo keep it, grant it again in the admin \
                         center (Enterprise applications > {} > Permissions or Users and groups), or move its end \
                         with Graph (accord.expiresDateTime).",
                        tenant.display_name, e.what, e.app, e.app
                    ),
                )
            })
            .collect();
        if !changes.is_empty() {
            store.apply(&changes).await?;
        }
        count += 1;
    }
    Ok(count)
}

struct Ending {
    tenant_id: TenantId,
    id: uuid::Uuid,
    ends: OffsetDateTime,
    what: String,
    app: String,
}

/// The tenant's enabled users who administer its apps' consent.
async fn administrators(store: &dyn Store, tenant_id: TenantId) -> Result<Vec<User>, ServiceError> {
    let mut ids = Vec::new();
    for role in DirectoryRole::ALL {
        for id in store.role_holders(tenant_id, role).await? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut users = Vec::new();
    for id in ids {
        if let Some(u) = store.user(tenant_id, id).await?.filter(|u| u.enabled) {
            users.push(u);
        }
    }
    Ok(users)
}

/// Deletes time-bound grants and assignments past their end, as a revocation would (the
/// consent journal tells consent webhooks; the audit log says why).
pub async fn expire_due(state: &AppState, now: OffsetDateTime) -> Result<usize, ServiceError> {
    let (grants, assignments) = state.store.expired_grants(now, 500).await?;
    let mut ended = 0;
    for g in grants {
        let audit = expiry_audit(
            state,
            g.tenant_id,
            "consent.expired",
            g.client_sp_id.into(),
            json!({"grantId": g.id, "scope": g.scopes.join(" ")}),
        )
        .await?;
        let mut changes = vec![Change::DeleteDelegatedGrant { tenant_id: g.tenant_id, grant_id: g.id }];
        changes.extend(audit);
        state.store.apply(&changes).await?;
        ended += 1;
    }
    for a in assignments {
        let subject =
            if a.principal_type == PrincipalType::ServicePrincipal { a.principal_id } else { a.resource_sp_id.into() };
        let audit = expiry_audit(
            state,
            a.tenant_id,
            "assignment.expired",
            subject,
            json!({
                "assignmentId": a.id, "appRoleId": a.app_role_id, "principalId": a.principal_id,
                "principalType": format!("{:?}", a.principal_type),
            }),
        )
        .await?;
        let mut changes = vec![Change::DeleteAppRoleAssignment { tenant_id: a.tenant_id, assignment_id: a.id }];
        changes.extend(audit);
        state.store.apply(&changes).await?;
        ended += 1;
    }
    Ok(ended)
}

/// The audit line of an ending grant, naming the app of the service principal it was about.
async fn expiry_audit(
    state: &AppState,
    tenant_id: TenantId,
    action: &str,
    sp_id: uuid::Uuid,
    detail: serde_json::Value,
) -> Result<Option<Change>, ServiceError> {
    let app = state.store.service_principal(tenant_id, sp_id.into()).await?.map(|sp| sp.app_id);
    Ok(Some(Change::AppendAudit(accord_core::consent_records::AuditEvent {
        tenant_id,
        id: uuid::Uuid::new_v4(),
        at: accord_core::clock::now(),
        actor_id: None,
        actor: "system".into(),
        action: action.to_string(),
        app_id: app,
        detail,
    })))
}
