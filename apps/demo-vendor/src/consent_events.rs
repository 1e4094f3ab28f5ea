//! Consent webhooks from Accord (an Accord extension; Entra has none): a customer's
//! administrator revokes, grants or disables Meeting Insights, and Accord tells us at once,
//! signed as Standard Webhooks specifies. `POST /webhooks/consent` verifies the signature with
//! accord-connect, answers 204 at once, and re-checks the customer's connection shortly after,
//! as "Sync now" does: the app's token is fetched anew and every user's connection refreshed, so
//! a withdrawn consent shows as "revoked" (with Accord's reason) without waiting for a sync or a
//! Graph lifecycle notification. The same event delivered twice causes one more check, no harm.

use crate::web::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;

/// The endpoint, when the app has a consent-webhook secret.
pub fn routes(state: Arc<AppState>) -> Router {
    Router::new().route("/webhooks/consent", post(receive)).with_state(state)
}

/// Events that change what the customer's connection may do.
fn changes_access(kind: &str) -> bool {
    kind.starts_with("consent.")
        || kind.starts_with("assignment.")
        || matches!(kind, "app.disabled" | "app.enabled" | "app.deleted")
}

async fn receive(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(secret) = state.settings.consent_webhook_secret.clone() else { return StatusCode::NOT_FOUND };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = match accord_connect::verify_consent_webhook(
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        &[secret],
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "consent webhook refused");
            return StatusCode::UNAUTHORIZED;
        }
    };
    let Some(tenant) = event.tenant_id.clone() else { return StatusCode::NO_CONTENT };
    tracing::info!(event = %event.kind, tenant = %tenant, id = %event.id, "consent webhook received");
    if !changes_access(&event.kind) {
        return StatusCode::NO_CONTENT; // admin-consent requests: nothing to re-check
    }
    let instances = match state.db.instances().await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "reading instances failed");
            return StatusCode::SERVICE_UNAVAILABLE; // Accord retries
        }
    };
    // Cached app tokens were issued before the change.
    state.kit.forget_app_token(&tenant);
    for inst in instances.into_iter().filter(|i| i.tenant_id.as_deref() == Some(tenant.as_str())) {
        let state = state.clone();
        tokio::spawn(async move { crate::push::sync_soon(&state, &inst.id, true).await });
    }
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_changing_events() {
        for kind in ["consent.revoked", "consent.granted", "assignment.removed", "app.disabled"] {
            assert!(changes_access(kind), "{kind}");
        }
        assert!(!changes_access("consent_request.filed"));
        assert!(!changes_access("app.permissions_changed"), "the registration's list, not a customer's consent");
    }
}
