//! How failures reach clients: JSON for endpoints called by code (token, discovery), an HTML
//! page for browser-facing failures that must not redirect, and a redirect carrying the error
//! for authorize failures once the redirect URI is known to be registered.
//! Internal detail is logged with the trace id and never sent.

use crate::web::templates::Templates;
use accord_core::{Aadsts, OAuthError};
use accord_store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug)]
pub enum Failure {
    Protocol(Aadsts),
    /// Our fault (store unavailable, bug). The string is for logs only.
    Internal(String),
}

impl From<Aadsts> for Failure {
    fn from(e: Aadsts) -> Self {
        Failure::Protocol(e)
    }
}

/// A service's refusal reaches a protocol client as its AADSTS error, whatever kind it is.
impl From<crate::service::ServiceError> for Failure {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError as E;
        match e {
            E::Forbidden(a) | E::NotFound(a) | E::Conflict(a) | E::Refused(a) | E::Unavailable(a) => {
                Failure::Protocol(a)
            }
            E::Internal(detail) => Failure::Internal(detail),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::from(crate::service::ServiceError::from(e))
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(format!("{e:#}"))
    }
}

impl Failure {
    /// The protocol error a client sees; internal failures become a bare server_error.
    pub fn into_aadsts(self, trace_id: Uuid) -> Aadsts {
        match self {
            Failure::Protocol(e) => e,
            Failure::Internal(detail) => {
                tracing::error!(%trace_id, error = %detail, "internal failure");
                Aadsts::transient_failure()
            }
        }
    }
}

/// Entra's timestamp format in error bodies: `2016-01-09 02:02:12Z`.
pub fn entra_timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn count_error(e: &Aadsts) {
    metrics::counter!("accord_protocol_errors_total", "code" => e.code.to_string(), "error" => e.error.as_str())
        .increment(1);
}

/// JSON error body of the token and discovery endpoints (entra-reference.md §9).
pub struct JsonFailure(pub Failure);

impl<T: Into<Failure>> From<T> for JsonFailure {
    fn from(e: T) -> Self {
        JsonFailure(e.into())
    }
}

impl IntoResponse for JsonFailure {
    fn into_response(self) -> Response {
        let trace_id = Uuid::new_v4();
        let correlation_id = Uuid::new_v4();
        let e = self.0.into_aadsts(trace_id);
        count_error(&e);
        let now = accord_core::clock::now();
        let ts = entra_timestamp(now);
        let mut body = json!({
            "error": e.error.as_str(),
            "error_description": format!("{e}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}"),
            "error_codes": [e.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
        });
        if let Some(sub) = e.suberror {
            body["suberror"] = json!(sub);
        }
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (status, axum::Json(body)).into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
        with_retry_after(res, &e)
    }
}

/// `Retry-After` on a throttled answer.
pub fn with_retry_after(mut res: Response, e: &Aadsts) -> Response {
    if let Some(seconds) = e.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    res
}

/// A sign-in error page: used when redirecting would be unsafe (unknown client, unregistered
/// redirect URI) or when there is nowhere to redirect to.
pub struct PageFailure(pub Failure);

impl<T: Into<Failure>> From<T> for PageFailure {
    fn from(e: T) -> Self {
        PageFailure(e.into())
    }
}

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        let trace_id = Uuid::new_v4();
        let e = self.0.into_aadsts(trace_id);
        count_error(&e);
        error_page(&e, trace_id)
    }
}

pub fn error_page(e: &Aadsts, trace_id: Uuid) -> Response {
    error_page_with(e, trace_id, &PageActions::default())
}

/// What a person can do from an error page besides reading it: Entra's pages offer to sign in
/// with a different account; Accord also offers the way back to the application (its
/// registered redirect URI, carrying the error).
#[derive(Debug, Default)]
pub struct PageActions {
    /// The application the person was signing in to.
    pub app_name: Option<String>,
    /// The same sign-in again, asking for the account (`prompt=login`).
    pub switch_account: Option<String>,
    /// Back to the application with the error.
    pub back: Option<String>,
}

/// A refusal the person must see (not the app): counted like every error, with its actions.
pub fn refusal_page(e: &Aadsts, actions: &PageActions) -> Response {
    count_error(e);
    error_page_with(e, Uuid::new_v4(), actions)
}

pub fn error_page_with(e: &Aadsts, trace_id: Uuid, actions: &PageActions) -> Response {
    let advice = advice_for(e.code);
    let html = Templates::render(
        "error.html",
        context! {
            code => e.code, message => e.message, advice,
            app_name => actions.app_name, switch_account => actions.switch_account, back => actions.back,
            trace_id => trace_id.to_string(),
            timestamp => accord_core::clock::now().format(&Rfc3339).unwrap_or_default(),
        },
    );
    let status = if e.retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if e.error == OAuthError::TemporarilyUnavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    with_retry_after((status, Html(html)).into_response(), e)
}

/// What a person can do about an error, in plain words.
fn advice_for(code: u32) -> &'static str {
    match code {
        50011 => "The application sent you here with a return address it has not registered. Contact the application's publisher.",
        700016 => "The application is not known here. Check the link you followed, or contact the application's publisher.",
        90002 => "Check the organisation name or ID in the link you followed.",
        65001 => "Nobody has consented to this application yet. Ask your administrator to grant consent.",
        50053 => "Wait a minute and try again, or ask your administrator to unlock your account.",
        50105 => "Ask your administrator to assign you access to this application, or sign in with a different account that has access.",
        7000112 => "An administrator of your organisation has disabled this application or blocked it. Ask your administrator if you need it.",
        50057 => "Your account is disabled. Ask your administrator, or sign in with a different account.",
        _ => "",
    }
}
