//! Cross-origin requests (CORS) from single-page apps.
//!
//! Two policies, because the two kinds of endpoint carry different risks:
//! - **Identity endpoints** that answer with tokens or claims (token, userinfo) answer only
//!   origins that some app registers as a single-page-app redirect URI's origin. An origin nobody registered gets no `Access-Control-Allow-Origin`,
//!   so the browser withholds the response from its script, and a preflight from it is refused.
//! - **Graph** authenticates with bearer tokens only (no cookies), so, as Microsoft Graph does,
//!   it lets any origin call it: an origin gains nothing it does not already hold a token for.
//!
//! Public metadata (discovery, keys, instance discovery) is readable from anywhere, as every
//! OpenID provider's is (`protocol::discovery`). No policy allows credentials (cookies)
//! cross-origin.

use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Request headers browser identity libraries send (MSAL's telemetry and correlation headers).
const IDENTITY_REQUEST_HEADERS: &str = "content-type, authorization, client-request-id, return-client-request-id, \
     x-client-sku, x-client-ver, x-client-os, x-client-cpu, x-client-current-telemetry, x-client-last-telemetry, \
     x-anchormailbox, x-ms-lib-capability";
/// Request headers Graph SDKs send.
const GRAPH_REQUEST_HEADERS: &str =
    "authorization, content-type, accept, client-request-id, return-client-request-id, \
     consistencylevel, prefer, if-match, if-none-match, sdkversion, x-ms-throttle-priority";
/// Response headers a script may read: what clients act on (throttling, correlation, paging).
const EXPOSED_HEADERS: &str = "retry-after, client-request-id, request-id, x-ms-ags-diagnostic, location, etag, \
     www-authenticate";
/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS: &str = "3600";
/// The longest `Origin` looked up (an origin is `scheme://host:port`).
const MAX_ORIGIN_LEN: usize = 300;

/// Identity endpoints: registered single-page-app origins only.
pub async fn identity(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let Some(origin) = origin(req.headers()) else { return next.run(req).await };
    // Only a well-formed origin is looked up; anything else is answered as unregistered.
    let registered = origin.len() <= MAX_ORIGIN_LEN
        && accord_core::directory::origin_of(&origin).as_deref() == Some(origin.as_str())
        && match state.store.spa_origin_registered(&origin).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "CORS origin lookup failed; answering as unregistered");
                false
            }
        };
    answer(req, next, registered.then_some(origin), "GET, POST, OPTIONS", IDENTITY_REQUEST_HEADERS).await
}

/// Graph: every origin, never with credentials.
pub async fn graph(req: Request, next: Next) -> Response {
    let Some(origin) = origin(req.headers()) else { return next.run(req).await };
    answer(req, next, Some(origin), "GET, POST, PUT, PATCH, DELETE, OPTIONS", GRAPH_REQUEST_HEADERS).await
}

fn origin(headers: &HeaderMap) -> Option<String> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

async fn answer(
    req: Request,
    next: Next,
    allowed: Option<String>,
    methods: &'static str,
    request_headers: &'static str,
) -> Response {
    if is_preflight(&req) {
        let Some(origin) = allowed else {
            let mut res = (StatusCode::FORBIDDEN, "This origin is not allowed.").into_response();
            res.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
            return res;
        };
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        allow_origin(h, &origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(request_headers));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS));
        return res;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    match allowed {
        Some(origin) => {
            allow_origin(h, &origin);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
        None => {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    res
}

fn allow_origin(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.remove(HeaderName::from_static("access-control-allow-credentials"));
}
