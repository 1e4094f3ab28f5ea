//! The periodic work of a server, in one place: replicas pick up rotated signing keys, admin
//! consent requests past their date expire (and reviewers are reminded of those about to),
//! expired protocol state is swept. `serve` runs it every minute; test mode runs it at once
//! after advancing the clock, so what a test made expire has expired when the call returns.

use crate::state::AppState;
use serde_json::json;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub requests_expired: usize,
    pub reviewers_reminded: usize,
    pub rows_purged: u64,
    pub grants_expired: usize,
    pub subscriptions_changed: usize,
}

/// Runs every periodic job once; failures are logged, the others still run.
pub async fn run_due(state: &AppState) -> Report {
    let mut report = Report::default();
    if let Err(e) = state.signer.reload(&*state.store, &state.keyring).await {
        tracing::error!(error = %e, "reloading signing keys failed");
    }
    let now = accord_core::clock::now();
    match super::admin_consent_requests::expire_due(&*state.store, now).await {
        Ok(n) => {
            report.requests_expired = n;
            if n > 0 {
                tracing::info!(requests = n, "expired admin consent requests");
            }
        }
        Err(e) => tracing::error!(error = ?e, "expiring admin consent requests failed"),
    }
    match super::admin_consent_requests::remind_expiring(&*state.store, now).await {
        Ok(n) => {
            report.reviewers_reminded = n;
            if n > 0 {
                tracing::info!(requests = n, "reminded reviewers of expiring admin consent requests");
            }
        }
        Err(e) => tracing::error!(error = ?e, "reminding reviewers of expiring requests failed"),
    }
    match expire_grants(state, now).await {
        Ok(n) => {
            report.grants_expired = n;
            if n > 0 {
                tracing::info!(grants = n, "time-bound grants and assignments ended");
            }
        }
        Err(e) => tracing::error!(error = ?e, "ending time-bound grants failed"),
    }
    match state.store.purge_expired(now).await {
        Ok(n) => {
            report.rows_purged = n;
            if n > 0 {
                tracing::info!(rows = n, "purged expired sessions, codes and refresh tokens");
            }
        }
        Err(e) => tracing::error!(error = %e, "purging expired state failed"),
    }
    report
}

/// [`run_due`], then the review of change-notification subscribers (test mode's `advance`: a
/// subscription's last hour, or its expiry, may have come).
pub async fn run_all_due(state: &AppState) -> Report {
    let mut report = run_due(state).await;
    match super::calendar_sync::review(state, accord_core::clock::now()).await {
        Ok(n) => report.subscriptions_changed = n,
        Err(e) => tracing::error!(error = ?e, "reviewing subscriptions failed"),
    }
    report
}

/// Deletes time-bound grants and assignments past their end, as a revocation would (the
/// consent journal tells consent webhooks; the audit log says why).
async fn expire_grants(state: &AppState, now: time::OffsetDateTime) -> Result<usize, super::ServiceError> {
    use accord_store::Change;
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
        let subject = if a.principal_type == accord_core::directory::PrincipalType::ServicePrincipal {
            a.principal_id
        } else {
            a.resource_sp_id.into()
        };
        let audit = expiry_audit(
            state,
            a.tenant_id,
            "assignment.expired",
            subject,
            json!({"assignmentId": a.id, "appRoleId": a.app_role_id}),
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
    tenant_id: accord_core::ids::TenantId,
    action: &str,
    sp_id: uuid::Uuid,
    detail: serde_json::Value,
) -> Result<Option<accord_store::Change>, super::ServiceError> {
    let app = state.store.service_principal(tenant_id, sp_id.into()).await?.map(|sp| sp.app_id);
    Ok(Some(accord_store::Change::AppendAudit(accord_core::consent_records::AuditEvent {
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
