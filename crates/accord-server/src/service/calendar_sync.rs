//! Calendar sync below the Graph surface: event writes that tell their subscribers, change
//! notification subscriptions (URL rules, the validation handshake, whether the subscriber's
//! access still holds), the outbox's delivery, and the review that turns lost access into
//! lifecycle notifications.
//!
//! * An event write and the notifications it causes are one transaction ([`save_event`]), so a
//!   notification is never lost to a crash between the two, nor sent for a write that failed.
//! * The outbox is delivered by one worker per process ([`spawn_worker`]): woken at once by a
//!   write, and every second besides. Each attempt is claimed in the store first (replicas
//!   never send one twice). A failed delivery is retried with exponential backoff for the retry
//!   window (Graph's four hours by default); then it is dropped and the subscriber gets a
//!   `missed` lifecycle notification, which tells it to resync with delta.
//! * The review ([`review`], every few seconds) asks the consent engine whether each
//!   subscriber may still read the mailbox. When an administrator revokes consent, removes the
//!   app permission or the user's assignment, disables the app, or ends the user's sessions, the
//!   subscription pauses and its owner gets `reauthorizationRequired`; `POST …/reauthorize` (or
//!   a renewing `PATCH`) with a token that has access again resumes it. When the mailbox, the
//!   user or the app is gone, it gets `subscriptionRemoved` and the subscription ends.
//!   Accord evaluates access continuously, so unlike Graph it does not ask for reauthorization
//!   merely because the token that created a subscription expired.

use crate::egress::Egress;
use crate::service::{consent, ServiceError};
use crate::state::{AppState, NotificationSettings};
use accord_core::directory::CalendarEvent;
use accord_core::microsoft_graph::permissions as graph;
use accord_store::{Change, GraphNotification, GraphNotificationKind, GraphSubscription, Store, SubscriptionStatus};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Graph's longest lifetime for an Outlook event subscription without resource data.
pub const MAX_LIFETIME_MINUTES: i64 = 10_080;
/// Graph's limit of active Outlook subscriptions per mailbox (all apps).
pub const MAX_PER_MAILBOX: usize = 1_000;
/// `clientState` on a subscription.
pub const MAX_CLIENT_STATE_CHARS: usize = 128;
/// The handshake's answer must come within this.
const HANDSHAKE_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// A notification endpoint must answer within this (Graph: 3 s).
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(3);
/// Notifications posted to one URL at once.
const DELIVERY_BATCH: usize = 100;
/// How long one replica's claim on an attempt keeps the others off it.
const CLAIM_SECONDS: i64 = 60;
const BACKOFF_CAP_SECONDS: i64 = 600;
const CLIENT_STATE_PURPOSE: &str = "graph/subscription-client-state/v1";

// ---------------------------------------------------------------------------------------------
// Event writes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventChange {
    Created,
    Updated,
    Deleted,
}

impl EventChange {
    pub fn as_str(self) -> &'static str {
        match self {
            EventChange::Created => "created",
            EventChange::Updated => "updated",
            EventChange::Deleted => "deleted",
        }
    }
}

/// An event's change key (its `@odata.etag` is `W/"{key}"`): changes with every write.
pub fn change_key(ev: &CalendarEvent) -> String {
    let micros = (ev.modified_at.unix_timestamp_nanos() / 1000) as i64;
    base64::engine::general_purpose::STANDARD.encode(micros.to_be_bytes())
}

/// Writes (or deletes) an event and queues a change notification for every subscription on its
/// mailbox that asked for this kind of change, in one transaction.
pub async fn save_event(state: &AppState, ev: &CalendarEvent, change: EventChange) -> Result<(), ServiceError> {
    let now = accord_core::clock::now();
    let mut changes = vec![match change {
        EventChange::Deleted => Change::DeleteEvent { tenant_id: ev.tenant_id, event_id: ev.id },
        _ => Change::PutEvent(ev.clone()),
    }];
    for sub in state.store.subscriptions_of_mailbox(ev.tenant_id, ev.owner_id).await? {
        let wanted = sub.change_types.split(',').any(|c| c.trim() == change.as_str());
        if wanted && sub.status != SubscriptionStatus::Removed && sub.expires_at > now {
            changes.push(Change::EnqueueGraphNotification(change_notification(&sub, ev, change, now)));
        }
    }
    let notify = changes.len() > 1;
    state.store.apply(&changes).await?;
    if notify {
        state.graph_outbox.notify_one();
    }
    Ok(())
}

fn change_notification(
    sub: &GraphSubscription,
    ev: &CalendarEvent,
    change: EventChange,
    now: OffsetDateTime,
) -> GraphNotification {
    // Graph's own spelling for Outlook resources (PascalCase segments).
    let resource = format!("Users/{}/Events/{}", ev.owner_id, ev.id);
    let payload = json!({
        "changeType": change.as_str(),
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": format!("W/\"{}\"", change_key(ev)),
            "id": ev.id.to_string(),
        },
    });
    queued(sub, GraphNotificationKind::Change, payload, now)
}

fn queued(
    sub: &GraphSubscription,
    kind: GraphNotificationKind,
    payload: Value,
    now: OffsetDateTime,
) -> GraphNotification {
    GraphNotification {
        id: Uuid::new_v4(),
        subscription_id: sub.id,
        tenant_id: sub.tenant_id,
        kind,
        payload: payload.to_string(),
        created_at: now,
        next_attempt_at: now,
        attempts: 0,
        last_error: None,
    }
}

fn lifecycle(sub: &GraphSubscription, event: &str, now: OffsetDateTime) -> Option<GraphNotification> {
    sub.lifecycle_url.as_ref()?;
    Some(queued(sub, GraphNotificationKind::Lifecycle, json!({ "lifecycleEvent": event }), now))
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// Why a subscription could not be made or changed.
#[derive(Debug)]
pub enum SubscribeError {
    /// A notification URL Accord will not call.
    Url(String),
    /// The endpoint did not answer the validation request as it must.
    Validation(String),
    /// The subscriber may not read the mailbox.
    AccessDenied(String),
    /// The mailbox has as many subscriptions as Graph allows.
    Limit,
    Service(ServiceError),
}

impl From<ServiceError> for SubscribeError {
    fn from(e: ServiceError) -> Self {
        SubscribeError::Service(e)
    }
}

impl From<accord_store::StoreError> for SubscribeError {
    fn from(e: accord_store::StoreError) -> Self {
        SubscribeError::Service(e.into())
    }
}

/// A notification URL Accord will call: `https`, or `http` on a loopback host when allowed;
/// no user info, no fragment.
pub fn check_notification_url(url: &str, settings: &NotificationSettings, field: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| format!("'{field}' is not an absolute URL."))?;
    let loopback = accord_core::directory::is_loopback_url(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if loopback && settings.allow_http_loopback => {}
        "http" if loopback => {
            return Err(format!(
                "'{field}' must use https; http on localhost is accepted only when the server runs with --allow-http-notification-urls."
            ))
        }
        _ => return Err(format!("'{field}' must use https.")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return Err(format!("'{field}' must not carry user information or a fragment."));
    }
    Ok(())
}

/// Graph's validation handshake: `POST {url}?validationToken=…` (text/plain); the endpoint must
/// answer 200, `text/plain`, with the decoded token as the whole body, within 10 seconds.
pub async fn validate_endpoint(egress: &Egress, url: &str) -> Result<(), String> {
    egress.check(url).await?;
    let token =
        format!("Validation: Testing client application reachability for subscription Request-Id: {}", Uuid::new_v4());
    let mut target = url::Url::parse(url).map_err(|_| "the URL is not valid".to_string())?;
    target.query_pairs_mut().append_pair("validationToken", &token);
    let res = egress
        .request(reqwest::Method::POST, target.as_str(), HANDSHAKE_TIMEOUT)?
        .header("content-type", "text/plain; charset=utf-8")
        .body("")
        .send()
        .await
        .map_err(|e| {
            format!("the validation request to {} failed: {}", host_of(url), crate::egress::failure_reason(&e))
        })?;
    let status = res.status().as_u16();
    let text_plain = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/plain"));
    let body = res.text().await.unwrap_or_default();
    if status != 200 {
        return Err(format!("the notification endpoint answered {status}; it must answer 200 OK."));
    }
    if body != token {
        return Err(
            "Response must exactly match validationToken query parameter (decoded), as the whole body.".to_string()
        );
    }
    if !text_plain {
        return Err("the validation response must have Content-Type text/plain.".to_string());
    }
    Ok(())
}

/// Makes a subscription: checks its URLs, that the subscriber may read the mailbox now, the
/// mailbox's limit, and runs the handshake on each URL; then stores it.
pub async fn subscribe(state: &AppState, sub: &GraphSubscription) -> Result<(), SubscribeError> {
    let settings = &state.settings.notifications;
    check_notification_url(&sub.notification_url, settings, "notificationUrl").map_err(SubscribeError::Url)?;
    if let Some(url) = &sub.lifecycle_url {
        check_notification_url(url, settings, "lifecycleNotificationUrl").map_err(SubscribeError::Url)?;
    }
    require_access(&*state.store, sub).await?;
    let existing = state.store.subscriptions_of_mailbox(sub.tenant_id, sub.mailbox_id).await?;
    if existing.iter().filter(|s| s.status != SubscriptionStatus::Removed).count() >= MAX_PER_MAILBOX {
        return Err(SubscribeError::Limit);
    }
    validate_endpoint(&state.egress, &sub.notification_url).await.map_err(SubscribeError::Validation)?;
    if let Some(url) = &sub.lifecycle_url {
        validate_endpoint(&state.egress, url).await.map_err(SubscribeError::Validation)?;
    }
    state.store.apply(&[Change::PutSubscription(sub.clone())]).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, app = %sub.client_app_id, mailbox = %sub.mailbox_id,
        "graph: subscription created");
    metrics::counter!("accord_graph_subscriptions_total", "event" => "created").increment(1);
    Ok(())
}

/// Renews or reauthorizes: the subscriber's access is checked again with the caller's
/// permissions, the notification URL (when it changes) is validated again, and a paused
/// subscription resumes.
pub async fn renew(state: &AppState, sub: &GraphSubscription, url_changed: bool) -> Result<(), SubscribeError> {
    if url_changed {
        check_notification_url(&sub.notification_url, &state.settings.notifications, "notificationUrl")
            .map_err(SubscribeError::Url)?;
    }
    require_access(&*state.store, sub).await?;
    if url_changed {
        validate_endpoint(&state.egress, &sub.notification_url).await.map_err(SubscribeError::Validation)?;
    }
    let renewed = GraphSubscription { status: SubscriptionStatus::Active, ..sub.clone() };
    state.store.apply(&[Change::PutSubscription(renewed)]).await?;
    state.graph_outbox.notify_one(); // paused notifications may flow again
    Ok(())
}

/// Ends a subscription at its owner's request: it and its queue go.
pub async fn unsubscribe(state: &AppState, sub: &GraphSubscription) -> Result<(), ServiceError> {
    state.store.apply(&[Change::DeleteSubscription { tenant_id: sub.tenant_id, subscription_id: sub.id }]).await?;
    metrics::counter!("accord_graph_subscriptions_total", "event" => "deleted").increment(1);
    Ok(())
}

async fn require_access(store: &dyn Store, sub: &GraphSubscription) -> Result<(), SubscribeError> {
    match subscriber_access(store, sub).await? {
        Access::Holds => Ok(()),
        Access::Lost(why) | Access::Gone(why) => Err(SubscribeError::AccessDenied(why)),
    }
}

/// Whether a subscriber may still read the mailbox it subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Holds,
    /// Access ended but may come back (consent, permission, assignment, a disabled app or
    /// user, ended sessions): reauthorization is required.
    Lost(String),
    /// What the subscription needs is gone (the mailbox, the user or the app): it ends.
    Gone(String),
}

/// Asks the consent engine, as for a token: delegated subscriptions by the creator's grants
/// and assignment with the permissions their token carried; app-only ones by the app's
/// application permissions.
pub async fn subscriber_access(store: &dyn Store, sub: &GraphSubscription) -> Result<Access, ServiceError> {
    let tenant_id = sub.tenant_id;
    if store.user(tenant_id, sub.mailbox_id).await?.is_none() {
        return Ok(Access::Gone("the mailbox no longer exists".into()));
    }
    let Some(client) = store.application_by_app_id(sub.client_app_id).await? else {
        return Ok(Access::Gone("the application was deleted".into()));
    };
    let Some(sp) = store.service_principal_by_app_id(tenant_id, sub.client_app_id).await? else {
        return Ok(Access::Gone("the application was removed from the organisation".into()));
    };
    if !sp.enabled {
        return Ok(Access::Lost("the application is disabled in the organisation".into()));
    }
    match sub.creator_id {
        Some(user_id) => {
            let Some(user) = store.user(tenant_id, user_id).await? else {
                return Ok(Access::Gone("the user who subscribed no longer exists".into()));
            };
            if !user.enabled {
                return Ok(Access::Lost("the user's account is disabled".into()));
            }
            if user.sign_ins_valid_from.is_some_and(|t| t > sub.authorized_at) {
                return Ok(Access::Lost("the user's sign-in sessions were revoked".into()));
            }
            if !consent::still_granted(store, tenant_id, Some(sub.client_app_id), &user, &sub.permissions).await? {
                return Ok(Access::Lost(format!(
                    "consent for {} was revoked, or the user is no longer assigned to the application",
                    sub.permissions
                )));
            }
            Ok(Access::Holds)
        }
        None => {
            let Some(tenant) = store.tenant(tenant_id).await? else {
                return Ok(Access::Gone("the organisation no longer exists".into()));
            };
            let resource = accord_core::well_known::GRAPH_RESOURCE_URI;
            let roles = match consent::app_only_access(store, &tenant, &client, resource).await {
                Ok(access) => access.roles,
                Err(e @ (ServiceError::Unavailable(_) | ServiceError::Internal(_))) => return Err(e),
                Err(_) => Vec::new(),
            };
            let reads = roles.iter().any(|r| graph::CALENDAR_READ_APP.iter().any(|p| p.eq_ignore_ascii_case(r)));
            if reads {
                Ok(Access::Holds)
            } else {
                Ok(Access::Lost("the application permission to read calendars was removed".into()))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The review

/// Reviews every live subscription's access; returns how many changed state.
pub async fn review(state: &AppState, now: OffsetDateTime) -> Result<usize, ServiceError> {
    let store = &*state.store;
    let mut changed = 0;
    let mut after = None;
    loop {
        let page = store.live_subscriptions(after, 200).await?;
        for sub in &page {
            if sub.expires_at > now && review_one(state, sub, now).await? {
                changed += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = Some(last.id),
            _ => break,
        }
    }
    if changed > 0 {
        state.graph_outbox.notify_one();
    }
    Ok(changed)
}

async fn review_one(state: &AppState, sub: &GraphSubscription, now: OffsetDateTime) -> Result<bool, ServiceError> {
    let verdict = subscriber_access(&*state.store, sub).await?;
    let (status, event, reason) = match (&sub.status, verdict) {
        (SubscriptionStatus::Active, Access::Lost(why)) => {
            (SubscriptionStatus::ReauthorizationRequired, "reauthorizationRequired", why)
        }
        (_, Access::Gone(why)) => (SubscriptionStatus::Removed, "subscriptionRemoved", why),
        (SubscriptionStatus::Active, Access::Holds) if expiry_notice_due(sub, now) => {
            (SubscriptionStatus::Active, "reauthorizationRequired", "the subscription expires within the hour".into())
        }
        _ => return Ok(false),
    };
    // Written only if the subscription did not change meanwhile (a renewal wins over the review).
    if state.store.subscription(sub.tenant_id, sub.id).await?.as_ref() != Some(sub) {
        return Ok(false);
    }
    let updated = GraphSubscription { status, noticed_at: Some(now), ..sub.clone() };
    let mut changes = vec![Change::PutSubscription(updated)];
    changes.extend(lifecycle(sub, event, now).map(Change::EnqueueGraphNotification));
    state.store.apply(&changes).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, app = %sub.client_app_id, lifecycle_event = event,
        reason = %reason, "graph: subscription lifecycle");
    metrics::counter!("accord_graph_subscriptions_total", "event" => event).increment(1);
    Ok(true)
}

/// In a subscription's last hour, `reauthorizationRequired` every 15 minutes (Graph's rhythm).
fn expiry_notice_due(sub: &GraphSubscription, now: OffsetDateTime) -> bool {
    sub.expires_at - now <= Duration::hours(1) && sub.noticed_at.is_none_or(|t| now - t >= Duration::minutes(15))
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// The host of a URL, for messages and logs: a query string may hold the subscriber's secrets.
fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "the endpoint".into())
}

/// Graph's date-time with seven fractional digits.
fn graph_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// The notification as sent: the queued payload with the subscription's id, expiry, tenant
/// and `clientState`.
fn compose(state: &AppState, n: &GraphNotification, sub: &GraphSubscription) -> Value {
    let mut item: Map<String, Value> = match serde_json::from_str(&n.payload) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if n.kind == GraphNotificationKind::Change {
        item.insert("id".into(), json!(n.id.to_string()));
    }
    item.insert("subscriptionId".into(), json!(sub.id.to_string()));
    item.insert("subscriptionExpirationDateTime".into(), json!(graph_time(sub.expires_at)));
    item.insert("tenantId".into(), json!(sub.tenant_id.to_string()));
    item.insert("clientState".into(), json!(client_state(state, sub)));
    Value::Object(item)
}

/// Seals a `clientState` for storage.
pub fn seal_client_state(state: &AppState, client_state: &str) -> String {
    state.keyring.seal_text(CLIENT_STATE_PURPOSE, client_state.as_bytes())
}

/// The subscription's `clientState`, opened.
pub fn client_state(state: &AppState, sub: &GraphSubscription) -> Option<String> {
    let sealed = sub.sealed_client_state.as_deref()?;
    state.keyring.open_text(CLIENT_STATE_PURPOSE, sealed).and_then(|b| String::from_utf8(b).ok())
}

/// The wait after the `attempts`-th failed delivery: 1 s, doubling, at most `cap_seconds`.
/// Graph notifications and consent webhooks retry on it.
pub(crate) fn backoff(attempts: u32, cap_seconds: i64) -> Duration {
    let exp = attempts.saturating_sub(1).min(12);
    Duration::seconds((1i64 << exp).min(cap_seconds))
}

/// Delivers what is due; returns how many notifications were delivered.
pub async fn deliver_due(state: &AppState, now: OffsetDateTime) -> Result<usize, ServiceError> {
    let store = &*state.store;
    let mut subs: HashMap<Uuid, Option<GraphSubscription>> = HashMap::new();
    let mut batches: BTreeMap<String, Vec<(GraphNotification, GraphSubscription, Value)>> = BTreeMap::new();
    for n in store.due_graph_notifications(now, 500).await? {
        if let std::collections::hash_map::Entry::Vacant(slot) = subs.entry(n.subscription_id) {
            slot.insert(store.subscription(n.tenant_id, n.subscription_id).await?);
        }
        let Some(sub) = subs[&n.subscription_id].clone() else {
            store.finish_graph_notification(n.id).await?; // its subscription is gone
            continue;
        };
        let url = match n.kind {
            GraphNotificationKind::Change => match sub.status {
                SubscriptionStatus::Active => Some(sub.notification_url.clone()),
                SubscriptionStatus::Removed => None,
                SubscriptionStatus::ReauthorizationRequired => {
                    // Paused until the subscriber reauthorizes; looked at again later.
                    let later =
                        now + Duration::seconds(state.settings.notifications.review_interval.as_secs().max(1) as i64);
                    store.claim_graph_notification(n.id, n.next_attempt_at, later).await?;
                    continue;
                }
            },
            GraphNotificationKind::Lifecycle => sub.lifecycle_url.clone(),
        };
        let Some(url) = url else {
            store.finish_graph_notification(n.id).await?;
            continue;
        };
        if !store.claim_graph_notification(n.id, n.next_attempt_at, now + Duration::seconds(CLAIM_SECONDS)).await? {
            continue; // another replica has it
        }
        let item = compose(state, &n, &sub);
        batches.entry(url).or_default().push((n, sub, item));
    }
    let mut delivered = 0;
    for (url, items) in batches {
        for chunk in items.chunks(DELIVERY_BATCH) {
            let body = json!({ "value": chunk.iter().map(|(_, _, v)| v.clone()).collect::<Vec<_>>() });
            match post(&state.egress, &url, &body).await {
                Ok(()) => {
                    for (n, _, _) in chunk {
                        store.finish_graph_notification(n.id).await?;
                        metrics::counter!("accord_graph_notifications_total", "kind" => n.kind.as_str(), "outcome" => "delivered").increment(1);
                    }
                    delivered += chunk.len();
                }
                Err(reason) => {
                    tracing::warn!(host = %host_of(&url), notifications = chunk.len(), reason = %reason, "graph: notification delivery failed");
                    failed(state, chunk, &reason, now).await?;
                }
            }
        }
    }
    Ok(delivered)
}

async fn post(egress: &Egress, url: &str, body: &Value) -> Result<(), String> {
    let res = egress
        .request(reqwest::Method::POST, url, DELIVERY_TIMEOUT)?
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| crate::egress::failure_reason(&e))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", res.status().as_u16()))
    }
}

/// A failed attempt: retried with backoff within the retry window; past it the notification is
/// dropped, and a change notification's subscriber is told it `missed` something.
async fn failed(
    state: &AppState,
    chunk: &[(GraphNotification, GraphSubscription, Value)],
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let store = &*state.store;
    let mut missed: BTreeMap<Uuid, GraphSubscription> = BTreeMap::new();
    for (n, sub, _) in chunk {
        let attempts = n.attempts + 1;
        let next = now + backoff(attempts, BACKOFF_CAP_SECONDS);
        if next - n.created_at > state.settings.notifications.retry_window {
            store.finish_graph_notification(n.id).await?;
            metrics::counter!("accord_graph_notifications_total", "kind" => n.kind.as_str(), "outcome" => "dropped")
                .increment(1);
            if n.kind == GraphNotificationKind::Change {
                missed.insert(sub.id, sub.clone());
            }
        } else {
            store.retry_graph_notification(n.id, attempts, next, reason).await?;
        }
    }
    for sub in missed.values() {
        if let Some(note) = lifecycle(sub, "missed", now) {
            store.apply(&[Change::EnqueueGraphNotification(note)]).await?;
            tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "graph: notifications dropped, lifecycle event missed");
        }
    }
    Ok(())
}

/// The outbox worker: delivers at once when woken by a write, every second otherwise, and
/// reviews subscribers' access every `review_interval`.
pub fn spawn_worker(state: std::sync::Arc<AppState>) {
    tokio::spawn(async move {
        let review_every = state.settings.notifications.review_interval;
        let mut next_review = tokio::time::Instant::now();
        loop {
            let now = accord_core::clock::now();
            if tokio::time::Instant::now() >= next_review {
                if let Err(e) = review(&state, now).await {
                    tracing::error!(error = ?e, "graph: reviewing subscriptions failed");
                }
                next_review = tokio::time::Instant::now() + review_every;
            }
            if let Err(e) = deliver_due(&state, now).await {
                tracing::error!(error = ?e, "graph: delivering notifications failed");
            }
            let tick = review_every.min(StdDuration::from_secs(1));
            tokio::select! {
                _ = state.graph_outbox.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_urls() {
        let strict = NotificationSettings::default();
        let dev = NotificationSettings { allow_http_loopback: true, ..NotificationSettings::default() };
        assert!(check_notification_url("https://vendor.test/hook?tenant=1", &strict, "notificationUrl").is_ok());
        let e = check_notification_url("http://127.0.0.1:9/hook", &strict, "notificationUrl").unwrap_err();
        assert!(e.contains("--allow-http-notification-urls"), "{e}");
        assert!(check_notification_url("http://127.0.0.1:9/hook", &dev, "notificationUrl").is_ok());
        assert!(check_notification_url("http://localhost:9/hook", &dev, "notificationUrl").is_ok());
        assert!(check_notification_url("http://vendor.test/hook", &dev, "notificationUrl").is_err(), "not loopback");
        assert!(check_notification_url("ftp://vendor.test/", &dev, "x").is_err());
        assert!(check_notification_url("https://u:p@vendor.test/", &dev, "x").is_err());
        assert!(check_notification_url("https://vendor.test/#x", &dev, "x").is_err());
        assert!(check_notification_url("/relative", &dev, "lifecycleNotificationUrl")
            .unwrap_err()
            .contains("lifecycleNotificationUrl"));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1, BACKOFF_CAP_SECONDS), Duration::seconds(1));
        assert_eq!(backoff(2, BACKOFF_CAP_SECONDS), Duration::seconds(2));
        assert_eq!(backoff(5, BACKOFF_CAP_SECONDS), Duration::seconds(16));
        assert_eq!(backoff(40, BACKOFF_CAP_SECONDS), Duration::seconds(BACKOFF_CAP_SECONDS));
    }

    #[test]
    fn graph_times_have_seven_digits() {
        let t = time::macros::datetime!(2026-03-19 22:11:09.952 UTC);
        assert_eq!(graph_time(t), "2026-03-19T22:11:09.9520000Z");
    }

    #[test]
    fn expiry_notices_in_the_last_hour_every_quarter() {
        let now = time::macros::datetime!(2026-03-19 12:00 UTC);
        let sub = |expires: OffsetDateTime, noticed: Option<OffsetDateTime>| GraphSubscription {
            id: Uuid::nil(),
            tenant_id: Uuid::nil().into(),
            client_app_id: Uuid::nil().into(),
            creator_id: None,
            mailbox_id: Uuid::nil().into(),
            resource: String::new(),
            change_types: String::new(),
            notification_url: String::new(),
            lifecycle_url: None,
            sealed_client_state: None,
            tls_version: String::new(),
            permissions: String::new(),
            authorized_at: now,
            access_expires_at: now,
            expires_at: expires,
            status: SubscriptionStatus::Active,
            noticed_at: noticed,
            created_at: now,
        };
        assert!(!expiry_notice_due(&sub(now + Duration::hours(2), None), now));
        assert!(expiry_notice_due(&sub(now + Duration::minutes(50), None), now));
        assert!(!expiry_notice_due(&sub(now + Duration::minutes(50), Some(now - Duration::minutes(5))), now));
        assert!(expiry_notice_due(&sub(now + Duration::minutes(50), Some(now - Duration::minutes(15))), now));
    }
}
