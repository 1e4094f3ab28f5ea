//! Consent webhooks of an app registration (an Accord extension, not Microsoft Graph):
//! `/v1.0/applications/{id}/accord.consentWebhooks`. The vendor registers endpoints in its home
//! tenant and hears, signed, of consent changes for the app in every customer tenant. Rules and
//! delivery are `service::consent_webhooks`'.
//!
//! * `POST …/accord.consentWebhooks` `{"url"}` → 201 with the signing `secret` (shown once)
//! * `GET …/accord.consentWebhooks` → the app's webhooks (never their secrets)
//! * `DELETE …/accord.consentWebhooks/{id}` → 204
//! * `POST …/accord.consentWebhooks/{id}/accord.rotateSecret` → 200 with the new `secret`;
//!   the previous one signs too until the next rotation
//! * `GET …/accord.consentWebhooks/{id}/deliveries` → the delivery log, newest first

use super::applications::{bad, one_app, path_key, string_field};
use super::auth::Caller;
use super::errors::GraphError;
use super::odata;
use super::request::{json_object, json_response, require, GraphPath};
use crate::service::consent_webhooks::{self, Registered};
use crate::state::{AppState, SharedState};
use accord_core::microsoft_graph::permissions::{APP_READ, APP_READ_APP, APP_WRITE, APP_WRITE_APP};
use accord_store::{ConsentWebhook, WebhookDelivery};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

fn webhook_json(r: &Registered) -> Value {
    let w = &r.webhook;
    let mut v = json!({"id": w.id, "url": w.url, "createdDateTime": odata::format_utc(w.created_at)});
    if let Some(secret) = &r.secret {
        v["secret"] = json!(secret);
    }
    v
}

fn delivery_json(d: &WebhookDelivery) -> Value {
    json!({
        "id": format!("msg_{}", d.id.simple()),
        "eventType": d.kind,
        "createdDateTime": odata::format_utc(d.created_at),
        "attempts": d.attempts,
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "deliveredDateTime": d.delivered_at.map(odata::format_utc),
        "nextAttemptDateTime": d.next_attempt_at.map(odata::format_utc),
        "payload": serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
    })
}

/// The app's webhook named in the path.
async fn webhook_of(state: &AppState, caller: &Caller, path: &GraphPath) -> Result<ConsentWebhook, GraphError> {
    let (d, _) = one_app(state, caller, path_key(path)?).await?;
    let raw = path.0.get("webhook").map(String::as_str).unwrap_or_default();
    let not_found = || GraphError::resource_not_found(raw);
    let id = Uuid::parse_str(raw).map_err(|_| not_found())?;
    match state.store.consent_webhook(id).await? {
        Some(w) if w.app_id == d.app.app_id => Ok(w),
        _ => Err(not_found()),
    }
}

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "url" && !k.starts_with("@odata.")) {
        return Err(bad(format!("Property '{k}' does not exist on a consent webhook; give only 'url'.")));
    }
    let url = string_field(&m, "url")?.ok_or_else(|| bad("A value is required for property 'url'."))?;
    let (d, _) = one_app(&state, &caller, path_key(&path)?).await?;
    let registered = consent_webhooks::register(&state, &d.app, &url).await?;
    Ok(json_response(StatusCode::CREATED, webhook_json(&registered), None))
}

pub async fn list(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    require(&caller, APP_READ, APP_READ_APP, "Application.Read.All")?;
    let (d, _) = one_app(&state, &caller, path_key(&path)?).await?;
    let value: Vec<Value> = state
        .store
        .consent_webhooks_of(d.app.app_id)
        .await?
        .into_iter()
        .map(|webhook| webhook_json(&Registered { webhook, secret: None }))
        .collect();
    Ok(json_response(StatusCode::OK, json!({"value": value}), None))
}

pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let webhook = webhook_of(&state, &caller, &path).await?;
    consent_webhooks::remove(&state, &webhook).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn rotate_secret(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let webhook = webhook_of(&state, &caller, &path).await?;
    let rotated = consent_webhooks::rotate_secret(&state, &webhook).await?;
    Ok(json_response(StatusCode::OK, webhook_json(&rotated), None))
}

pub async fn deliveries(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    require(&caller, APP_READ, APP_READ_APP, "Application.Read.All")?;
    let webhook = webhook_of(&state, &caller, &path).await?;
    let value: Vec<Value> = state.store.webhook_deliveries(webhook.id, 200).await?.iter().map(delivery_json).collect();
    Ok(json_response(StatusCode::OK, json!({"value": value}), None))
}
