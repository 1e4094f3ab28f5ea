//! The periodic work of a server, in one place: replicas pick up rotated signing keys, admin
//! consent requests past their date expire (and reviewers are reminded of those about to),
//! time-bound grants end (and administrators are reminded a week before), expired protocol
//! state is swept. `serve` runs it every minute; test mode runs it at once
//! after advancing the clock, so what a test made expire has expired when the call returns.

use crate::state::AppState;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub requests_expired: usize,
    pub reviewers_reminded: usize,
    pub rows_purged: u64,
    pub grants_expired: usize,
    pub endings_reminded: usize,
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
    match super::grant_expiry::remind_ending(&*state.store, now).await {
        Ok(n) => {
            report.endings_reminded = n;
            if n > 0 {
                tracing::info!(grants = n, "reminded administrators of ending time-bound grants");
            }
        }
        Err(e) => tracing::error!(error = ?e, "reminding administrators of ending grants failed"),
    }
    match super::grant_expiry::expire_due(state, now).await {
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
