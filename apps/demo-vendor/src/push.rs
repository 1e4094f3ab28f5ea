//! Sync by push: a Graph change-notification subscription on every synced calendar, and the
//! two endpoints Graph (or Accord) calls.
//!
//! * After a user's calendar is synced, [`ensure_subscription`] makes sure a subscription on it
//!   exists (with the app's token for an organisation-wide sync, the user's own otherwise),
//!   renewing it in its last day.
//! * `POST /graph/notifications`: a change in a subscribed calendar. The body is checked against
//!   the subscriptions' `clientState`s, answered 202 at once, and the instance is synced shortly
//!   after (notifications arriving together cause one sync).
//! * `POST /graph/lifecycle`: `reauthorizationRequired` is answered by checking access again —
//!   the user's connection is refreshed (a withdrawn consent marks it revoked right away, with
//!   the reason) or the app's token fetched anew — then the subscription is reauthorized;
//!   `subscriptionRemoved` forgets the subscription (the next sync makes a new one); `missed`
//!   syncs again.
//!
//! Both endpoints answer Graph's validation request (`?validationToken=`) first.

use crate::db::{now, Instance, PushSubscription};
use crate::web::AppState;
use accord_connect::{
    events_resource, parse_notifications, validation_token, CalendarUser, ConnectError, Incoming, LifecycleEvent,
    SubscriptionRequest, UserKey, EVENT_SUBSCRIPTION_LIFETIME,
};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// A subscription is renewed when it has less than this left.
const RENEW_WITHIN_SECONDS: i64 = 24 * 3600;
/// Notifications arriving within this of each other cause one sync.
const COALESCE: Duration = Duration::from_millis(300);

/// The two endpoints, for the main router or the loopback webhook listener.
pub fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/graph/notifications", post(notifications))
        .route("/graph/lifecycle", post(notifications))
        .with_state(state)
}

/// Makes sure `object_id`'s calendar has a live subscription of this `kind` (`application` with
/// the app's token, `delegated` with the user's). Failures are logged: polling still works.
pub async fn ensure_subscription(state: &AppState, inst: &Instance, object_id: &str, kind: &str, token: &str) {
    let Some(base) = state.settings.notification_base.clone() else { return };
    let Some(tenant) = inst.tenant_id.clone() else { return };
    if let Err(e) = ensure(state, inst, &tenant, object_id, kind, token, &base).await {
        tracing::warn!(instance = %inst.id, user = %object_id, error = %e, "no push subscription; syncing by polling");
    }
}

async fn ensure(
    state: &AppState,
    inst: &Instance,
    tenant: &str,
    object_id: &str,
    kind: &str,
    token: &str,
    base: &str,
) -> anyhow::Result<()> {
    let calendar = state.kit.calendar();
    let existing = state.db.subscription_of(&inst.id, object_id).await?;
    let expiration = time::OffsetDateTime::now_utc() + EVENT_SUBSCRIPTION_LIFETIME;
    if let Some(sub) = &existing {
        if sub.kind == kind {
            if sub.expires_at - now() > RENEW_WITHIN_SECONDS {
                return Ok(());
            }
            match calendar.renew_subscription(token, &sub.id, expiration).await {
                Ok(_) => {
                    let renewed = PushSubscription { expires_at: expiration.unix_timestamp(), ..sub.clone() };
                    state.db.put_subscription(&renewed).await?;
                    return Ok(());
                }
                Err(e) => tracing::info!(subscription = %sub.id, error = %e, "renewal failed; subscribing again"),
            }
        }
        // Another kind (the instance changed mode) or not renewable: replace it.
        let _ = calendar.delete_subscription(token, &sub.id).await;
        state.db.delete_subscription(&sub.id).await?;
    }
    let user = match kind {
        "application" => CalendarUser::UserId(object_id.to_string()),
        _ => CalendarUser::Me,
    };
    let client_state = accord_connect::random_token();
    let request = SubscriptionRequest {
        resource: events_resource(&user),
        change_types: vec!["created".into(), "updated".into(), "deleted".into()],
        notification_url: format!("{base}/graph/notifications"),
        lifecycle_url: Some(format!("{base}/graph/lifecycle")),
        client_state: client_state.clone(),
        expiration,
    };
    let created = calendar.create_subscription(token, &request).await?;
    state
        .db
        .put_subscription(&PushSubscription {
            id: created.id.clone(),
            instance_id: inst.id.clone(),
            tenant_id: tenant.to_string(),
            object_id: object_id.to_string(),
            kind: kind.to_string(),
            client_state,
            expires_at: expiration.unix_timestamp(),
        })
        .await?;
    tracing::info!(instance = %inst.id, user = %object_id, subscription = %created.id, kind, "subscribed to calendar changes");
    Ok(())
}

/// Both endpoints: the validation handshake, then notifications checked against our
/// subscriptions' client states.
async fn notifications(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    if let Some(token) = query.as_deref().and_then(validation_token) {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response();
    }
    let subs = match state.db.subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "reading subscriptions failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response(); // Graph retries
        }
    };
    let known = |id: &str| subs.iter().find(|s| s.id == id).map(|s| s.client_state.clone());
    let parsed = match parse_notifications(&body, known) {
        Ok(p) => p,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    if parsed.rejected > 0 {
        tracing::warn!(rejected = parsed.rejected, "notifications with an unknown subscription or clientState ignored");
    }
    for incoming in parsed.accepted {
        let Some(sub) = subs.iter().find(|s| s.id == incoming.subscription_id()).cloned() else { continue };
        let state = state.clone();
        tokio::spawn(async move { handle(&state, incoming, sub).await });
    }
    StatusCode::ACCEPTED.into_response()
}

async fn handle(state: &Arc<AppState>, incoming: Incoming, sub: PushSubscription) {
    match incoming {
        Incoming::Change { .. } | Incoming::Lifecycle { event: LifecycleEvent::Missed, .. } => {
            sync_soon(state, &sub.instance_id, false).await
        }
        Incoming::Lifecycle { event: LifecycleEvent::SubscriptionRemoved, .. } => {
            if let Err(e) = state.db.delete_subscription(&sub.id).await {
                tracing::error!(error = %e, "forgetting a removed subscription failed");
            }
            sync_soon(state, &sub.instance_id, true).await
        }
        Incoming::Lifecycle { event: LifecycleEvent::ReauthorizationRequired, .. } => {
            reauthorize(state, &sub).await;
            // Access changed somewhere: check every user's connection, as "Sync now" does.
            sync_soon(state, &sub.instance_id, true).await
        }
        Incoming::Lifecycle { event: LifecycleEvent::Other(e), .. } => {
            tracing::info!(lifecycle_event = %e, "unknown lifecycle event ignored")
        }
    }
}

/// Checks access again and resumes the subscription with a fresh token; when access is gone
/// the connection (or the organisation's sync) shows why at once.
async fn reauthorize(state: &AppState, sub: &PushSubscription) {
    let token = if sub.kind == "application" {
        state.kit.forget_app_token(&sub.tenant_id);
        match state.kit.app_token(&sub.tenant_id).await {
            Ok(t) => Ok(t.access_token),
            Err(e) => {
                let _ = state.db.set_tenant_sync(&sub.instance_id, Some(&e.human())).await;
                Err(e)
            }
        }
    } else {
        let key = UserKey::new(&sub.tenant_id, &sub.object_id);
        match state.kit.refresh_now(&key).await {
            Ok(t) => Ok(t),
            Err(e) => {
                let withdrawn = matches!(e, ConnectError::Revoked { .. } | ConnectError::SignInRequired { .. });
                let _ = state.db.user_sync_failed(&sub.instance_id, &sub.object_id, &e.human(), withdrawn).await;
                Err(e)
            }
        }
    };
    let result = match token {
        Ok(token) => state.kit.calendar().reauthorize_subscription(&token, &sub.id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::info!(subscription = %sub.id, "subscription reauthorized"),
        Err(e) => {
            tracing::info!(subscription = %sub.id, error = %e, "access is gone; the subscription stays paused");
            let _ = state.db.delete_subscription(&sub.id).await;
        }
    }
}

/// Syncs the instance shortly, once for notifications that arrive together; `verify` refreshes
/// every user's connection first (after a lifecycle event: access changed).
pub async fn sync_soon(state: &Arc<AppState>, instance: &str, verify: bool) {
    let key = format!("{instance}/{verify}");
    if !state.push_pending.lock().expect("pending lock").insert(key.clone()) {
        return; // a sync is already on its way
    }
    tokio::time::sleep(COALESCE).await;
    state.push_pending.lock().expect("pending lock").remove(&key);
    match crate::sync::sync_instance(state, instance, verify).await {
        Ok(r) => tracing::info!(instance, ?r, "synced on a change notification"),
        Err(e) => tracing::warn!(instance, error = %e, "sync on a change notification failed"),
    }
}
