//! The HTTP application: routes and the middleware every request passes through.

use crate::ops;
use crate::protocol::{authorize, consent_pages, device_flow, discovery, session_end, token};
use crate::state::SharedState;
use crate::web::{cors, security, templates};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Router};
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub fn router(state: SharedState) -> Router {
    let secure = state.settings.secure_cookies;
    // The test control API exists only in test mode: without it the paths are plain 404s.
    let test_mode = state.test_mode;
    let test_control = if test_mode { crate::test_control::routes() } else { Router::new() };
    Router::new()
        .merge(test_control)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_endpoint))
        .route("/static/accord.css", get(stylesheet))
        .route("/portal/signin", get(crate::portal::portal_sign_in))
        .merge(crate::admin_center::routes())
        .merge(crate::my_apps::routes())
        .merge(crate::graph::routes().layer(middleware::from_fn(cors::graph)))
        .merge(browser_callable(state.clone()))
        // Public metadata: readable from any origin (`Access-Control-Allow-Origin: *`).
        .route("/common/discovery/instance", get(discovery::instance_discovery))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/common/userrealm/{upn}", get(discovery::user_realm))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_flow::device_code))
        .route("/devicelogin", get(device_flow::verification_page).post(device_flow::verification_post))
        .route("/devicelogin/continue", post(device_flow::verification_continue))
        .route("/{tenant}/oauth2/v2.0/logout", get(session_end::logout_get).post(session_end::logout_post))
        .route("/{tenant}/login", post(authorize::sign_in_post))
        .route("/{tenant}/consent", post(consent_pages::consent_post))
        .route("/{tenant}/consent/request", post(consent_pages::approval_request_post))
        .route("/{tenant}/v2.0/adminconsent", get(consent_pages::admin_consent_v2))
        .route("/{tenant}/adminconsent", get(consent_pages::admin_consent_v1))
        .route("/{tenant}/adminconsent/decide", post(consent_pages::admin_consent_decide))
        .fallback(not_found)
        .layer(middleware::from_fn(move |req, next| faults(test_mode, req, next)))
        .layer(middleware::from_fn(ops::track_requests))
        .layer(middleware::from_fn(move |req, next| security::security_headers(secure, req, next)))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        // The request span names the method and path only: queries carry codes, hints and state
        // (`id_token_hint`, `login_hint`), which no log level may record.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// Test mode's fault injection, and the SQL statements each response cost in its
/// `x-accord-statements` header (for tests that hold a request's cost to a number); without
/// test mode, nothing.
async fn faults(test_mode: bool, req: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
    if !test_mode {
        return next.run(req).await;
    }
    let (statements, mut res) = accord_store::count_statements(crate::test_control::faults::inject(req, next)).await;
    res.headers_mut().insert("x-accord-statements", axum::http::HeaderValue::from(statements));
    res
}

/// The identity endpoints a single-page app calls with `fetch` that answer with tokens or a
/// user's claims: under the registered-origin CORS policy.
fn browser_callable(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/oidc/userinfo", get(session_end::userinfo).post(session_end::userinfo))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .layer(middleware::from_fn_with_state(state, cors::identity))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        templates::STYLESHEET,
    )
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "NotFound", "message": "No such endpoint."}})),
    )
}
