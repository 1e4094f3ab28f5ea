//! Consent webhooks: what Entra does not give a SaaS vendor — a push, from every customer
//! tenant, when consent for its app changes.
//!
//! The store journals every consent change in the changing transaction (grants given, changed
//! and revoked; application permissions; assignments; enterprise apps disabled or enabled;
//! admin-consent requests filed and decided — `accord-store/src/sql/consent_webhooks.rs`). A
//! worker hands each app's new events to its webhooks' outboxes, then delivers them signed as
//! the Standard Webhooks specification says: `webhook-id`, `webhook-timestamp` (the wall clock:
//! receivers compare it with theirs) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` with the secret after `whsec_`; during a rotation one signature per
//! secret, space-separated). Failed deliveries are retried with backoff for the retry window;
//! every attempt is kept as the delivery log (30 days). A new webhook hears of events from its
//! creation on.

use crate::service::ServiceError;
use crate::state::AppState;
use accord_core::aadsts::{Aadsts, OAuthError};
use accord_core::directory::Application;
use accord_core::scenario::Scenario;
use accord_store::{Change, ConsentEvent, ConsentWebhook, StoreError, WebhookDelivery};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const SECRET_PURPOSE: &str = "consent-webhook-secret/v1";
/// Webhooks per app.
pub const MAX_PER_APP: usize = 10;
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(15);
const CLAIM_SECONDS: i64 = 60;
const BACKOFF_CAP_SECONDS: i64 = 3_600;
const FAN_OUT_BATCH: u32 = 200;

/// A webhook as its owner sees it; the secret only when it was just made or rotated.
#[derive(Debug, Clone)]
pub struct Registered {
    pub webhook: ConsentWebhook,
    pub secret: Option<String>,
}

fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", B64.encode(key))
}

/// Registers `url` for `app`'s consent events (the URL rules of change notifications apply).
pub async fn register(state: &AppState, app: &Application, url: &str) -> Result<Registered, ServiceError> {
    let refuse = |m: String| ServiceError::Refused(Aadsts::new(90014, OAuthError::InvalidRequest, m));
    super::calendar_sync::check_notification_url(url, &state.settings.notifications, "url").map_err(refuse)?;
    state.egress.check(url).await.map_err(|why| refuse(format!("'url': {why}.")))?;
    if state.store.consent_webhooks_of(app.app_id).await?.len() >= MAX_PER_APP {
        return Err(refuse(format!("An app may have at most {MAX_PER_APP} consent webhooks.")));
    }
    let secret = new_secret();
    let webhook = ConsentWebhook {
        id: Uuid::new_v4(),
        app_id: app.app_id,
        url: url.to_string(),
        sealed_secrets: vec![state.keyring.seal_text(SECRET_PURPOSE, secret.as_bytes())],
        created_at: accord_core::clock::now(),
        cursor: state.store.consent_event_watermark().await?,
    };
    state.store.apply(&[Change::PutConsentWebhook(webhook.clone())]).await?;
    tracing::info!(app = %app.app_id, webhook = %webhook.id, "consent webhook registered");
    Ok(Registered { webhook, secret: Some(secret) })
}

/// The scenario's `[[tenant.app.webhook]]`s. The n-th webhook of an app has an id of its own
/// (derived from the app and n), so a later load — another port in the URL, another secret —
/// updates it in place and keeps its place in the event stream; failing that, a webhook the
/// app already has at that URL takes the secret. Returns how many were new. The URL rules of
/// change notifications apply, as to a webhook registered through Graph.
pub async fn load_from_scenario(state: &AppState, scenario: &Scenario) -> anyhow::Result<usize> {
    let mut added = 0;
    for app in scenario.tenants.iter().flat_map(|t| &t.apps) {
        for (n, spec) in app.webhooks.iter().enumerate() {
            super::calendar_sync::check_notification_url(&spec.url, &state.settings.notifications, "url")
                .map_err(|why| anyhow::anyhow!("the webhook {} of app {}: {why}", spec.url, app.app_id))?;
            let existing = state.store.consent_webhooks_of(app.app_id).await?;
            let sealed = state.keyring.seal_text(SECRET_PURPOSE, spec.secret.as_bytes());
            let declared = declared_id(app.app_id, n);
            let same =
                existing.iter().find(|w| w.id == declared).or_else(|| existing.iter().find(|w| w.url == spec.url));
            let webhook = match same {
                Some(w) if w.url == spec.url && secrets(state, w).first() == secret_key(&spec.secret).as_ref() => {
                    continue
                }
                Some(w) => ConsentWebhook { url: spec.url.clone(), sealed_secrets: vec![sealed], ..w.clone() },
                None if existing.len() >= MAX_PER_APP => {
                    anyhow::bail!("app {} has {MAX_PER_APP} consent webhooks already", app.app_id)
                }
                None => {
                    added += 1;
                    ConsentWebhook {
                        id: declared,
                        app_id: app.app_id,
                        url: spec.url.clone(),
                        sealed_secrets: vec![sealed],
                        created_at: accord_core::clock::now(),
                        cursor: state.store.consent_event_watermark().await?,
                    }
                }
            };
            state.store.apply(&[Change::PutConsentWebhook(webhook)]).await?;
        }
    }
    Ok(added)
}

/// The id of an app's `n`-th webhook declared in a scenario.
fn declared_id(app: accord_core::ids::AppId, n: usize) -> Uuid {
    use sha2::Digest;
    let digest = Sha256::digest(format!("accord-scenario-webhook:{app}:{n}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A new signing secret; the previous one keeps signing too until the next rotation, so
/// receivers can switch without losing a delivery.
pub async fn rotate_secret(state: &AppState, webhook: &ConsentWebhook) -> Result<Registered, ServiceError> {
    let secret = new_secret();
    let mut updated = webhook.clone();
    updated.sealed_secrets.insert(0, state.keyring.seal_text(SECRET_PURPOSE, secret.as_bytes()));
    updated.sealed_secrets.truncate(2);
    state.store.apply(&[Change::PutConsentWebhook(updated.clone())]).await?;
    Ok(Registered { webhook: updated, secret: Some(secret) })
}

pub async fn remove(state: &AppState, webhook: &ConsentWebhook) -> Result<(), ServiceError> {
    state.store.apply(&[Change::DeleteConsentWebhook { app_id: webhook.app_id, webhook_id: webhook.id }]).await?;
    Ok(())
}

fn secrets(state: &AppState, webhook: &ConsentWebhook) -> Vec<Vec<u8>> {
    webhook
        .sealed_secrets
        .iter()
        .filter_map(|s| state.keyring.open_text(SECRET_PURPOSE, s))
        .filter_map(|plain| String::from_utf8(plain).ok())
        .filter_map(|s| secret_key(&s))
        .collect()
}

/// The HMAC key of a `whsec_` secret.
fn secret_key(secret: &str) -> Option<Vec<u8>> {
    secret.strip_prefix("whsec_").and_then(|k| B64.decode(k).ok())
}

/// `v1,<base64>` per key, space-separated (Standard Webhooks).
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key");
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The event as delivered: `{"type", "timestamp", "data"}`, the data naming tenant and app.
fn payload(e: &ConsentEvent) -> String {
    let mut data: Map<String, Value> = match serde_json::from_str(&e.data) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    data.insert("tenantId".into(), json!(e.tenant_id.to_string()));
    data.insert("appId".into(), json!(e.app_id.to_string()));
    let at = e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({"type": e.kind, "timestamp": at, "data": data}).to_string()
}

/// Hands every webhook's new events to its outbox; how many deliveries were queued.
pub async fn fan_out(state: &AppState) -> Result<usize, ServiceError> {
    let now = accord_core::clock::now();
    let mut queued = 0;
    for webhook in state.store.consent_webhooks().await? {
        let events = state.store.consent_events_after(webhook.app_id, webhook.cursor, FAN_OUT_BATCH).await?;
        let Some(last) = events.last().map(|e| e.seq) else { continue };
        let deliveries: Vec<WebhookDelivery> = events
            .iter()
            .map(|e| WebhookDelivery {
                id: Uuid::new_v4(),
                webhook_id: webhook.id,
                event_seq: e.seq,
                kind: e.kind.clone(),
                payload: payload(e),
                created_at: now,
                next_attempt_at: Some(now),
                attempts: 0,
                last_status: None,
                last_error: None,
                delivered_at: None,
            })
            .collect();
        let change =
            Change::EnqueueWebhookDeliveries { webhook_id: webhook.id, from: webhook.cursor, to: last, deliveries };
        match state.store.apply(&[change]).await {
            Ok(()) => queued += events.len(),
            Err(StoreError::Stale(_)) => {} // another replica took these events
            Err(e) => return Err(e.into()),
        }
    }
    Ok(queued)
}

/// Delivers what is due; how many were delivered.
pub async fn deliver_due(state: &AppState) -> Result<usize, ServiceError> {
    let now = accord_core::clock::now();
    let mut delivered = 0;
    for mut d in state.store.due_webhook_deliveries(now, 100).await? {
        let Some(seen) = d.next_attempt_at else { continue };
        if !state.store.claim_webhook_delivery(d.id, seen, now + Duration::seconds(CLAIM_SECONDS)).await? {
            continue;
        }
        let Some(webhook) = state.store.consent_webhook(d.webhook_id).await? else { continue };
        let msg_id = format!("msg_{}", d.id.simple());
        // The wall clock: the receiver checks the timestamp against its own.
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = signature(&secrets(state, &webhook), &msg_id, timestamp, &d.payload);
        let (status, error) = match state.egress.request(reqwest::Method::POST, &webhook.url, DELIVERY_TIMEOUT) {
            // The URL's host is an address this server does not call: retried like any failure
            // (an operator may open the network), and never sent.
            Err(why) => (None, Some(why)),
            Ok(request) => {
                let sent = request
                    .header("content-type", "application/json")
                    .header("webhook-id", &msg_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(d.payload.clone())
                    .send()
                    .await;
                match sent {
                    Ok(res) => (
                        Some(res.status().as_u16()),
                        (!res.status().is_success()).then(|| format!("HTTP {}", res.status().as_u16())),
                    ),
                    Err(e) => (None, Some(crate::egress::failure_reason(&e))),
                }
            }
        };
        d.attempts += 1;
        d.last_status = status;
        d.last_error = error.clone();
        match error {
            None => {
                d.next_attempt_at = None;
                d.delivered_at = Some(now);
                delivered += 1;
                metrics::counter!("accord_consent_webhooks_total", "outcome" => "delivered").increment(1);
            }
            // 410 Gone: the receiver wants no more of this (Standard Webhooks); stop retrying.
            Some(_) if status == Some(410) => d.next_attempt_at = None,
            Some(_) => {
                let next = now + super::calendar_sync::backoff(d.attempts, BACKOFF_CAP_SECONDS);
                if next - d.created_at > state.settings.notifications.retry_window {
                    d.next_attempt_at = None;
                    metrics::counter!("accord_consent_webhooks_total", "outcome" => "dropped").increment(1);
                } else {
                    d.next_attempt_at = Some(next);
                }
            }
        }
        state.store.record_webhook_attempt(&d).await?;
    }
    Ok(delivered)
}

/// The worker: every second, new events to the outboxes, then due deliveries.
pub fn spawn_worker(state: std::sync::Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(StdDuration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = fan_out(&state).await {
                tracing::error!(error = ?e, "consent webhooks: queueing events failed");
            }
            if let Err(e) = deliver_due(&state).await {
                tracing::error!(error = ?e, "consent webhooks: delivering failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_follow_standard_webhooks() {
        let key = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            std::slice::from_ref(&key),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature(&[key.clone(), key], "m", 1, "b");
        assert_eq!(two.split(' ').count(), 2);
    }

    #[test]
    fn secrets_are_whsec_base64_of_32_bytes() {
        let s = new_secret();
        let key = B64.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(new_secret(), s);
    }
}
