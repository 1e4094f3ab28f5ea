//! `/subscriptions`: Graph change notifications on a mailbox's events (`me/events`,
//! `users/{id|upn}/events`, and the same under `calendar/`), for delegated and app-only
//! callers with a calendar permission. The rules (URLs, the validation handshake, access,
//! limits) and the delivery live in `service::calendar_sync`; this module reads and writes
//! Graph's JSON.
//!
//! A subscription belongs to the client app that made it (and, for a delegated one, to the
//! signed-in user): another app or user does not see it (404).

use super::auth::Caller;
use super::calendar::{self, CalendarAccess, Target};
use super::errors::GraphError;
use super::odata;
use super::request::{json_object, json_response};
use crate::service::calendar_sync::{self, SubscribeError, MAX_CLIENT_STATE_CHARS, MAX_LIFETIME_MINUTES};
use crate::state::{AppState, SharedState};
use accord_core::microsoft_graph::permissions as graph;
use accord_store::{GraphSubscription, SubscriptionStatus};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CHANGE_TYPES: &[&str] = &["created", "updated", "deleted"];
const TLS_VERSIONS: &[&str] = &["v1_0", "v1_1", "v1_2", "v1_3"];

fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

fn not_found(id: &str) -> GraphError {
    GraphError::new(StatusCode::NOT_FOUND, "ResourceNotFound", format!("The subscription '{id}' was not found."))
}

/// The mailbox a `resource` names: `me/events`, `users/{id|upn}/events`, or either with
/// `calendar/events` (a leading `/` is allowed).
fn mailbox_of_resource(resource: &str) -> Option<Target> {
    let segments: Vec<&str> = resource.trim().trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["me", "events"] | ["me", "calendar", "events"] => Some(Target::Me),
        ["users", _, "events"] | ["users", _, "calendar", "events"] if !segments[1].is_empty() => {
            Some(Target::User(segments[1].to_string()))
        }
        _ => None,
    }
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("'{name}' must be a string."))),
    }
}

fn required<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, GraphError> {
    string_field(body, name)?.filter(|s| !s.is_empty()).ok_or_else(|| invalid(format!("'{name}' is required.")))
}

fn change_types(raw: &str) -> Result<String, GraphError> {
    let mut out: Vec<&str> = Vec::new();
    for part in raw.split(',').map(str::trim) {
        let Some(known) = CHANGE_TYPES.iter().find(|c| c.eq_ignore_ascii_case(part)) else {
            return Err(invalid(format!(
                "'changeType' value '{part}' is not supported; use created, updated and/or deleted, comma-separated."
            )));
        };
        if out.contains(known) {
            return Err(invalid(format!("'changeType' names '{known}' twice.")));
        }
        out.push(known);
    }
    Ok(out.join(","))
}

fn expiration(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, GraphError> {
    let at = odata::parse_datetime(raw)
        .ok_or_else(|| invalid(format!("'expirationDateTime' value '{raw}' is not an ISO 8601 date-time.")))?;
    if at <= now {
        return Err(invalid("Subscription expiration must be in the future."));
    }
    if at - now > Duration::minutes(MAX_LIFETIME_MINUTES) {
        return Err(invalid(format!(
            "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future for events."
        )));
    }
    Ok(at)
}

fn tls_version(body: &Map<String, Value>) -> Result<String, GraphError> {
    match string_field(body, "latestSupportedTlsVersion")? {
        None => Ok("v1_2".into()),
        Some(v) => {
            TLS_VERSIONS.iter().find(|t| t.eq_ignore_ascii_case(v)).map(|t| t.to_string()).ok_or_else(|| {
                invalid(format!("'latestSupportedTlsVersion' must be one of {}.", TLS_VERSIONS.join(", ")))
            })
        }
    }
}

/// The calendar permissions the caller's token carries, as the subscription records them.
fn calendar_permissions(caller: &Caller) -> String {
    let names: Vec<&str> = if caller.is_app() {
        graph::CALENDAR_READ_APP.to_vec()
    } else {
        [graph::CALENDAR_BASIC, graph::CALENDAR_FULL_READ, graph::CALENDAR_WRITE].concat()
    };
    names.into_iter().filter(|p| caller.first_of(&[p]).is_some()).collect::<Vec<_>>().join(" ")
}

fn require_calendar(caller: &Caller) -> Result<(), GraphError> {
    if CalendarAccess::of(caller).is_some() {
        return Ok(());
    }
    let needed = if caller.is_app() { "Calendars.Read" } else { "Calendars.ReadBasic or Calendars.Read" };
    Err(GraphError::new(
        StatusCode::FORBIDDEN,
        "ExtensionError",
        format!("Operation: Create; Exception: [Status Code: Forbidden; Reason: The caller needs the permission {needed} to subscribe to events.]"),
    ))
}

fn subscribe_error(e: SubscribeError) -> GraphError {
    match e {
        SubscribeError::Url(m) => invalid(m),
        SubscribeError::Validation(m) => GraphError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("Subscription validation request failed. {m}"),
        ),
        SubscribeError::AccessDenied(why) => GraphError::new(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            format!("Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied: {why}.]"),
        ),
        SubscribeError::Limit => GraphError::new(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            "The mailbox has reached its limit of 1000 subscriptions.",
        ),
        SubscribeError::Service(e) => e.into(),
    }
}

async fn subscription_json(
    state: &AppState,
    sub: &GraphSubscription,
    with_client_state: bool,
) -> Result<Value, GraphError> {
    let creator = match sub.creator_id {
        Some(user) => Some(user.to_string()),
        None => {
            state.store.service_principal_by_app_id(sub.tenant_id, sub.client_app_id).await?.map(|sp| sp.id.to_string())
        }
    };
    let client_state = with_client_state.then(|| calendar_sync::client_state(state, sub)).flatten();
    Ok(json!({
        "@odata.context": format!("{}/v1.0/$metadata#subscriptions/$entity", state.settings.public_url),
        "id": sub.id.to_string(),
        "resource": sub.resource,
        "applicationId": sub.client_app_id.to_string(),
        "changeType": sub.change_types,
        "clientState": client_state,
        "notificationUrl": sub.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": odata::format_utc(sub.expires_at),
        "creatorId": creator,
        "includeResourceData": false,
        "latestSupportedTlsVersion": sub.tls_version,
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    }))
}

const CREATE_KEYS: &[&str] = &[
    "resource",
    "changeType",
    "notificationUrl",
    "lifecycleNotificationUrl",
    "expirationDateTime",
    "clientState",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "encryptionCertificate",
    "encryptionCertificateId",
    "notificationQueryOptions",
    "notificationUrlAppId",
    "@odata.type",
];

fn check_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), GraphError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if k == "lifecycleNotificationUrl" => {
            Err(invalid("'lifecycleNotificationUrl' can only be set when the subscription is created."))
        }
        Some(k) => Err(invalid(format!("Property '{k}' is not supported on a subscription here."))),
        None => Ok(()),
    }
}

/// `POST /subscriptions`
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let body = json_object(body)?;
    check_keys(&body, CREATE_KEYS)?;
    if body.get("includeResourceData").is_some_and(|v| v.as_bool() == Some(true)) {
        return Err(invalid("Notifications with resource data (includeResourceData) are not supported for events here; subscribe without them and read the event."));
    }
    for unsupported in
        ["encryptionCertificate", "encryptionCertificateId", "notificationQueryOptions", "notificationUrlAppId"]
    {
        if body.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!("'{unsupported}' is not supported for event subscriptions.")));
        }
    }
    let resource = required(&body, "resource")?;
    let target = mailbox_of_resource(resource).ok_or_else(|| {
        invalid(format!(
            "Resource '{resource}' is not supported: subscribe to me/events or users/{{id}}/events (or their calendar/events)."
        ))
    })?;
    let change_types = change_types(required(&body, "changeType")?)?;
    let notification_url = required(&body, "notificationUrl")?.to_string();
    let lifecycle_url = string_field(&body, "lifecycleNotificationUrl")?.map(str::to_string);
    let now = accord_core::clock::now();
    let expires_at = expiration(required(&body, "expirationDateTime")?, now)?;
    let client_state = string_field(&body, "clientState")?;
    if client_state.is_some_and(|c| c.chars().count() > MAX_CLIENT_STATE_CHARS) {
        return Err(invalid(format!("'clientState' may be at most {MAX_CLIENT_STATE_CHARS} characters.")));
    }
    let tls = tls_version(&body)?;
    require_calendar(&caller)?;
    let app =
        caller.client_app_id.ok_or_else(|| GraphError::access_denied("The token names no client application."))?;
    let owner = calendar::mailbox(&state, &caller, &target).await?;
    let sub = GraphSubscription {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        client_app_id: app,
        creator_id: caller.user_id(),
        mailbox_id: owner.id,
        resource: resource.to_string(),
        change_types,
        notification_url,
        lifecycle_url,
        sealed_client_state: client_state.map(|c| calendar_sync::seal_client_state(&state, c)),
        tls_version: tls,
        permissions: calendar_permissions(&caller),
        authorized_at: now,
        access_expires_at: now + Duration::seconds(state.settings.access_token_seconds),
        expires_at,
        status: SubscriptionStatus::Active,
        noticed_at: None,
        created_at: now,
    };
    calendar_sync::subscribe(&state, &sub).await.map_err(subscribe_error)?;
    Ok(json_response(StatusCode::CREATED, subscription_json(&state, &sub, true).await?, None))
}

/// The caller's own subscription `id`: made by its app (and, delegated, by its user).
async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<GraphSubscription, GraphError> {
    let parsed = Uuid::parse_str(id).map_err(|_| not_found(id))?;
    let sub = state.store.subscription(caller.tenant_id, parsed).await?.ok_or_else(|| not_found(id))?;
    let mine = Some(sub.client_app_id) == caller.client_app_id
        && sub.creator_id == caller.user_id()
        && sub.status != SubscriptionStatus::Removed;
    if mine {
        Ok(sub)
    } else {
        Err(not_found(id))
    }
}

/// `GET /subscriptions`: the caller's subscriptions.
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, GraphError> {
    // Graph takes no OData query options on subscriptions.
    let query = query.unwrap_or_default();
    if let Some((name, _)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k.starts_with('$')) {
        return Err(invalid(format!("Query option '{name}' is not supported on subscriptions.")));
    }
    let Some(app) = caller.client_app_id else {
        return Err(GraphError::access_denied("The token names no client application."));
    };
    let mut value = Vec::new();
    for sub in state.store.subscriptions_of_app(caller.tenant_id, app).await? {
        if sub.creator_id == caller.user_id() && sub.status != SubscriptionStatus::Removed {
            let mut v = subscription_json(&state, &sub, false).await?;
            if let Value::Object(m) = &mut v {
                m.remove("@odata.context");
            }
            value.push(v);
        }
    }
    let context = format!("{}/v1.0/$metadata#subscriptions", state.settings.public_url);
    Ok(json_response(StatusCode::OK, json!({"@odata.context": context, "value": value}), None))
}

/// `GET /subscriptions/{id}`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let sub = owned(&state, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, subscription_json(&state, &sub, false).await?, None))
}

/// The subscription as renewed by the caller: its permissions now, authorized now.
fn reauthorized(caller: &Caller, sub: GraphSubscription, now: OffsetDateTime, token_seconds: i64) -> GraphSubscription {
    GraphSubscription {
        permissions: calendar_permissions(caller),
        authorized_at: now,
        access_expires_at: now + Duration::seconds(token_seconds),
        noticed_at: None,
        ..sub
    }
}

/// `PATCH /subscriptions/{id}`: renews (`expirationDateTime`) or moves (`notificationUrl`),
/// and reauthorizes with the caller's token.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let body = json_object(body)?;
    check_keys(&body, &["expirationDateTime", "notificationUrl", "@odata.type"])?;
    let sub = owned(&state, &caller, &id).await?;
    require_calendar(&caller)?;
    let now = accord_core::clock::now();
    let mut renewed = reauthorized(&caller, sub.clone(), now, state.settings.access_token_seconds);
    if let Some(raw) = string_field(&body, "expirationDateTime")? {
        renewed.expires_at = expiration(raw, now)?;
    }
    if let Some(url) = string_field(&body, "notificationUrl")? {
        renewed.notification_url = url.to_string();
    }
    let url_changed = renewed.notification_url != sub.notification_url;
    calendar_sync::renew(&state, &renewed, url_changed).await.map_err(subscribe_error)?;
    Ok(json_response(StatusCode::OK, subscription_json(&state, &renewed, true).await?, None))
}

/// `POST /subscriptions/{id}/reauthorize`: resumes a paused subscription with the caller's
/// token, when its access holds again.
pub async fn reauthorize(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let sub = owned(&state, &caller, &id).await?;
    require_calendar(&caller)?;
    let renewed = reauthorized(&caller, sub, accord_core::clock::now(), state.settings.access_token_seconds);
    calendar_sync::renew(&state, &renewed, false).await.map_err(subscribe_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /subscriptions/{id}`
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let sub = owned(&state, &caller, &id).await?;
    calendar_sync::unsubscribe(&state, &sub).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_a_mailbox() {
        assert!(matches!(mailbox_of_resource("me/events"), Some(Target::Me)));
        assert!(matches!(mailbox_of_resource("/me/calendar/events"), Some(Target::Me)));
        assert!(
            matches!(mailbox_of_resource("/Users/Alice@Contoso.test/Events"), Some(Target::User(u)) if u == "Alice@Contoso.test")
        );
        assert!(mailbox_of_resource("me/messages").is_none());
        assert!(mailbox_of_resource("users//events").is_none());
        assert!(mailbox_of_resource("groups/x/events").is_none());
    }

    #[test]
    fn change_types_and_expiry() {
        assert_eq!(change_types("Created, updated").unwrap(), "created,updated");
        assert!(change_types("created,created").is_err());
        assert!(change_types("moved").unwrap_err().message.contains("'moved'"));
        let now = time::macros::datetime!(2026-12-01 00:00 UTC);
        assert!(expiration("2026-12-07T23:59:00Z", now).is_ok());
        assert!(expiration("2026-12-08T00:01:00Z", now).unwrap_err().message.contains("10080 minutes"));
        assert!(expiration("2026-11-30T00:00:00Z", now).is_err());
        assert!(expiration("soon", now).is_err());
    }
}
