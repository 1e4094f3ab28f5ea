//! Graph's error body and the request ids every Graph response carries.
//!
//! A handler returns a [`GraphError`]; the [`context`] middleware (layered on every `/v1.0` route)
//! gives each request a `request-id`, echoes the caller's `client-request-id`, sets both response
//! headers and writes the error body
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
//! Internal failures are logged with the request id; the client sees a generic message.

use crate::service::ServiceError;
use accord_store::StoreError;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// The content type Graph answers JSON with; SDKs only look at the media type.
pub const JSON_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One failed Graph request: an HTTP status, Graph's `code` and a message for the caller.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Detail for the log only (internal failures).
    internal: Option<String>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for GraphError {}

impl GraphError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        GraphError { status, code: code.into(), message: message.into(), headers: Vec::new(), internal: None }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 `BadRequest`: malformed query options, unknown segments, bad ids.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 400 `invalidRequest`: a request body that names a field wrongly or with a bad value.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    /// 401 `InvalidAuthenticationToken` with `WWW-Authenticate: Bearer …`.
    pub fn unauthenticated(message: impl Into<String>, www_authenticate: &str) -> Self {
        let value = HeaderValue::from_str(www_authenticate).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
            .with_header(header::WWW_AUTHENTICATE, value)
    }

    /// 403 `Authorization_RequestDenied` (directory objects).
    pub fn directory_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Authorization_RequestDenied", message)
    }

    /// 403 `ErrorAccessDenied` (mailbox data: calendars).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ErrorAccessDenied", message)
    }

    /// 404 `Request_ResourceNotFound` (directory objects).
    pub fn resource_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    /// 404 `ErrorItemNotFound` (mailbox items: events).
    pub fn item_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ErrorItemNotFound", "The specified object was not found in the store.")
    }

    /// 405 with the `Allow` header RFC 9110 requires: the methods `path` (below `/v1.0`, as the
    /// OpenAPI catalogue writes it) serves.
    pub fn method_not_allowed(path: &str) -> Self {
        let allow =
            HeaderValue::from_str(&super::openapi::allowed_methods(path)).unwrap_or(HeaderValue::from_static(""));
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "The requested HTTP method is not supported on this resource.",
        )
        .with_header(header::ALLOW, allow)
    }

    /// 429 with `Retry-After`, as Graph throttles.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests. Please retry later.")
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds))
    }

    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "The request body is too large.")
    }

    /// 429 with `Retry-After`: as Outlook throttles mailbox data (`ApplicationThrottled`), or
    /// as Graph throttles a tenant's traffic (`TooManyRequests`).
    pub fn throttled(t: crate::throttle::Throttled) -> Self {
        use crate::throttle::Limit;
        let (code, message) = match t.limit {
            Limit::MailboxConcurrency => {
                ("ApplicationThrottled", "Application is over its MailboxConcurrency limit.".to_string())
            }
            Limit::MailboxRate => (
                "ApplicationThrottled",
                format!(
                    "Application is over its request limit for this mailbox. Retry after {} seconds.",
                    t.retry_after
                ),
            ),
            Limit::Tenant => (
                "TooManyRequests",
                format!(
                    "Application is over its request limit for this tenant. Retry after {} seconds.",
                    t.retry_after
                ),
            ),
        };
        let value = HeaderValue::from_str(&t.retry_after.to_string()).unwrap_or_else(|_| HeaderValue::from_static("1"));
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message).with_header(header::RETRY_AFTER, value)
    }

    /// 503: the service cannot answer for now (its database is away); retry after the delay.
    pub fn service_not_available(retry_after_seconds: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds))
    }

    /// 500: our fault. `detail` is logged with the request id and never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e =
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", "General exception while processing.");
        e.internal = Some(detail.into());
        e
    }

    /// The JSON body, for the given ids and time.
    pub fn body(&self, ids: &RequestIds, at: OffsetDateTime) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": inner_error_date(at),
                "request-id": ids.request_id.to_string(),
                "client-request-id": ids.client_request_id,
            }
        }})
    }
}

impl From<ServiceError> for GraphError {
    /// A refusal of the service layer, in Graph's terms: a missing role is a 403, an object that
    /// is not the tenant's a 404, anything else the caller sent a 400 (Graph answers duplicate
    /// values with 400 `Request_BadRequest` too).
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Forbidden(a) => GraphError::directory_denied(a.message),
            ServiceError::NotFound(a) => GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", a.message),
            ServiceError::Refused(a) if a.retry_after.is_some() => {
                GraphError::too_many_requests(a.retry_after.unwrap_or_default())
            }
            ServiceError::Conflict(a) | ServiceError::Refused(a) => {
                GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", a.message)
            }
            ServiceError::Unavailable(a) => GraphError::service_not_available(a.retry_after.unwrap_or(5)),
            ServiceError::Internal(detail) => GraphError::internal(detail),
        }
    }
}

impl From<StoreError> for GraphError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Stale(_) => GraphError::from(ServiceError::from(e)),
            e => GraphError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        // Rendered here with fresh ids (so the body is whole even without the middleware);
        // the middleware re-renders it with the request's ids.
        let ids = RequestIds::fresh();
        let body = self.body(&ids, accord_core::clock::now()).to_string();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
        for (name, value) in &self.headers {
            res.headers_mut().insert(name.clone(), value.clone());
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// `2026-12-01T09:00:00`, as in Graph's innerError.
fn inner_error_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The ids of one Graph request, available to handlers as a request extension.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: Uuid,
    /// The caller's `client-request-id`, or the request id when it sent none (as Graph does).
    pub client_request_id: String,
}

impl RequestIds {
    fn fresh() -> Self {
        let request_id = Uuid::new_v4();
        RequestIds { request_id, client_request_id: request_id.to_string() }
    }

    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut ids = Self::fresh();
        if let Some(v) = headers.get(&CLIENT_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()) {
                ids.client_request_id = v.to_string();
            }
        }
        ids
    }
}

/// Middleware for every Graph route: request ids, their headers, and the final error body.
pub async fn context(mut req: Request, next: Next) -> Response {
    let ids = RequestIds::from_headers(req.headers());
    req.extensions_mut().insert(ids.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    if let Some(err) = res.extensions_mut().remove::<GraphError>() {
        if let Some(detail) = &err.internal {
            tracing::error!(request_id = %ids.request_id, %method, %path, error = %detail, "graph request failed");
        }
        let body = err.body(&ids, accord_core::clock::now()).to_string();
        let (parts, _) = res.into_parts();
        res = Response::from_parts(parts, axum::body::Body::from(body));
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let h = res.headers_mut();
    h.insert(REQUEST_ID, HeaderValue::from_str(&ids.request_id.to_string()).expect("a uuid is a header value"));
    if let Ok(v) = HeaderValue::from_str(&ids.client_request_id) {
        h.insert(CLIENT_REQUEST_ID, v);
    }
    h.insert(HeaderName::from_static("odata-version"), HeaderValue::from_static("4.0"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn body_has_graph_shape() {
        let ids = RequestIds { request_id: Uuid::nil(), client_request_id: "abc".into() };
        let e = GraphError::bad_request("Invalid filter clause");
        let body = e.body(&ids, datetime!(2026-12-01 09:05:07 UTC));
        assert_eq!(
            body,
            json!({"error": {"code": "BadRequest", "message": "Invalid filter clause", "innerError": {
                "date": "2026-12-01T09:05:07",
                "request-id": "00000000-0000-0000-0000-000000000000",
                "client-request-id": "abc"}}})
        );
    }

    #[test]
    fn client_request_id_is_echoed_only_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(CLIENT_REQUEST_ID, HeaderValue::from_static("5a0d-11"));
        assert_eq!(RequestIds::from_headers(&h).client_request_id, "5a0d-11");
        h.insert(CLIENT_REQUEST_ID, HeaderValue::from_static("has space"));
        let ids = RequestIds::from_headers(&h);
        assert_eq!(ids.client_request_id, ids.request_id.to_string());
    }

    #[test]
    fn internal_detail_is_never_in_the_body() {
        let e = GraphError::internal("database password is hunter2");
        let ids = RequestIds::fresh();
        let text = e.body(&ids, accord_core::clock::now()).to_string();
        assert!(!text.contains("hunter2"));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
