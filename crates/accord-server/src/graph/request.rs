//! What every Graph handler shares: path parameters, JSON bodies in and out, the permission
//! check, and the caller's tenant and administration actor.

use super::auth::{Caller, Principal};
use super::errors::{GraphError, JSON_CONTENT_TYPE};
use crate::service::administration::{self, Actor};
use crate::state::AppState;
use accord_core::directory::Tenant;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;

/// Path parameters, with a Graph error when they cannot be decoded.
pub struct GraphPath(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for GraphPath {
    type Rejection = GraphError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|p| GraphPath(p.0))
            .map_err(|_| GraphError::bad_request("A path segment is not valid UTF-8 after percent-decoding."))
    }
}

pub fn json_response(status: StatusCode, body: Value, extra: Option<(HeaderName, HeaderValue)>) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    if let Some((name, value)) = extra {
        res.headers_mut().insert(name, value);
    }
    res
}

/// 403 `Authorization_RequestDenied` naming the permission the token lacks.
pub fn denied(needed: &str, caller: &Caller) -> GraphError {
    let kind = if caller.is_app() { "application" } else { "delegated" };
    GraphError::directory_denied(format!(
        "Insufficient privileges to complete the operation. This operation requires the {kind} permission {needed}, which the access token does not carry."
    ))
}

/// Checks the token carries one of `delegated` (or `app` for app-only tokens); `needed` names the
/// least of them in the error.
pub fn require(caller: &Caller, delegated: &[&str], app: &[&str], needed: &str) -> Result<(), GraphError> {
    let held = if caller.is_app() { app } else { delegated };
    match caller.first_of(held) {
        Some(_) => Ok(()),
        None => Err(denied(needed, caller)),
    }
}

pub async fn tenant(state: &AppState, caller: &Caller) -> Result<Tenant, GraphError> {
    state.store.tenant(caller.tenant_id).await?.ok_or_else(|| GraphError::internal("the token's tenant is gone"))
}

/// The administration actor behind the token.
pub async fn actor(state: &AppState, caller: &Caller, tenant: &Tenant) -> Result<Actor, GraphError> {
    let roles = match &caller.principal {
        Principal::App { roles } => roles.clone(),
        Principal::Delegated { .. } => Vec::new(),
    };
    Ok(administration::graph_actor(state.store.as_ref(), tenant, caller.user_id(), caller.client_app_id, &roles)
        .await?)
}

/// A JSON object body, or Graph's 400.
pub fn json_object(body: Result<Bytes, BytesRejection>) -> Result<serde_json::Map<String, Value>, GraphError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GraphError::payload_too_large()
        } else {
            GraphError::new(StatusCode::BAD_REQUEST, "UnableToDeserializePostBody", "Unable to read the request body.")
        }
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "UnableToDeserializePostBody",
            "The request body is not a JSON object.",
        )),
    }
}

/// `accord.expiresDateTime` of a grant or an assignment (an Accord extension): absent or null
/// for no end, else an ISO 8601 instant (the service checks it lies ahead).
pub fn expires_field(m: &serde_json::Map<String, Value>) -> Result<Option<time::OffsetDateTime>, GraphError> {
    const NAME: &str = "accord.expiresDateTime";
    let invalid = |message: String| GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message);
    match m.get(NAME) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => super::odata::parse_datetime(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("Property '{NAME}' value '{s}' is not an ISO 8601 date-time."))),
        Some(_) => Err(invalid(format!("Property '{NAME}' must be a string."))),
    }
}
