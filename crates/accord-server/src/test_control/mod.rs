//! The test control API (`accord serve --test-mode` only; absent otherwise): a vendor's test
//! suite resets the world, loads scenarios, makes time pass and reads why the consent engine
//! decided what it did. JSON in and out; the operations are `service::test_mode`'s.
//!
//! * `GET  /_accord/test/clock` — `{"now", "offsetSeconds"}`
//! * `POST /_accord/test/clock/advance` — `{"seconds"|"minutes"|"hours"|"days": n}` (summed);
//!   runs what came due (request expiry, purges, subscription reviews) before answering
//! * `POST /_accord/test/reset` — back to the world the server started with (fault rules and
//!   the journal cleared)
//! * `POST /_accord/test/scenario` — a scenario file's text (TOML), loaded over what exists
//! * `GET  /_accord/test/journal?after=N` — consent decisions (and injected faults) numbered
//!   after `N`
//! * `POST /_accord/test/faults` — add a fault rule (`faults.rs`); `GET` lists them with their
//!   counts; `DELETE` removes them all

pub mod faults;

use crate::service::test_mode;
use crate::state::SharedState;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::Duration;

/// Scenario files may be larger than the 64 KiB every other request is held to.
const MAX_SCENARIO_BYTES: usize = 4 * 1024 * 1024;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/_accord/test/clock", get(clock))
        .route("/_accord/test/clock/advance", post(advance))
        .route("/_accord/test/reset", post(reset))
        .route("/_accord/test/scenario", post(scenario).layer(DefaultBodyLimit::max(MAX_SCENARIO_BYTES)))
        .route("/_accord/test/journal", get(journal))
        .route("/_accord/test/faults", get(list_faults).post(add_fault).delete(clear_faults))
}

async fn add_fault(body: axum::body::Bytes) -> Response {
    let spec: faults::RuleSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return refused(StatusCode::BAD_REQUEST, format!("not a fault rule: {e}")),
    };
    match faults::FAULTS.add(spec) {
        Ok(rule) => (StatusCode::CREATED, Json(json!(rule))).into_response(),
        Err(e) => refused(StatusCode::BAD_REQUEST, e),
    }
}

async fn list_faults() -> Json<Value> {
    Json(json!({"rules": faults::FAULTS.list()}))
}

async fn clear_faults() -> StatusCode {
    faults::FAULTS.clear();
    StatusCode::NO_CONTENT
}

fn refused(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn clock_json() -> Value {
    let now = accord_core::clock::now();
    json!({
        "now": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "offsetSeconds": accord_core::clock::offset().whole_seconds(),
    })
}

async fn clock() -> Json<Value> {
    Json(clock_json())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    minutes: i64,
    #[serde(default)]
    hours: i64,
    #[serde(default)]
    days: i64,
}

async fn advance(State(state): State<SharedState>, body: axum::body::Bytes) -> Response {
    let a: Advance = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON like {{\"days\": 31}} (seconds, minutes, hours, days): {e}"),
            )
        }
    };
    let total = [(a.seconds, 1), (a.minutes, 60), (a.hours, 3_600), (a.days, 86_400)]
        .iter()
        .try_fold(0i64, |acc, (n, unit)| n.checked_mul(*unit).and_then(|s| acc.checked_add(s)));
    let Some(seconds) = total.filter(|s| (1..=test_mode::MAX_ADVANCE_SECONDS).contains(s)) else {
        return refused(
            StatusCode::BAD_REQUEST,
            format!("advance by 1 second to {} seconds; the clock never goes back", test_mode::MAX_ADVANCE_SECONDS),
        );
    };
    let (_, ran) = test_mode::advance(&state, Duration::seconds(seconds)).await;
    let mut body = clock_json();
    body["ran"] = json!(ran);
    Json(body).into_response()
}

async fn reset(State(state): State<SharedState>) -> Response {
    // A reset starts a test from nothing: no fault rule survives it either.
    faults::FAULTS.clear();
    match test_mode::reset(&state).await {
        Ok(loaded) => answer_loaded(loaded),
        Err(e) => {
            tracing::error!(error = %e, "test mode: reset failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, format!("the reset failed: {e:#}"))
        }
    }
}

async fn scenario(State(state): State<SharedState>, body: axum::body::Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return refused(StatusCode::BAD_REQUEST, "the scenario must be UTF-8 text (TOML)");
    };
    match test_mode::load_scenario(&state, text).await {
        Ok(loaded) => answer_loaded(loaded),
        Err(e) => refused(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

/// Puts a loaded world's fault rules in force, and says what was loaded (`faults`: the ids).
fn answer_loaded(loaded: test_mode::Loaded) -> Response {
    let ids = match faults::FAULTS.install(loaded.faults) {
        Ok(ids) => ids,
        Err(e) => {
            return refused(StatusCode::BAD_REQUEST, format!("the world loaded, but its fault rules did not: {e}"))
        }
    };
    let mut summary = json!(loaded.summary);
    summary["faults"] = json!(ids);
    Json(json!({"loaded": summary})).into_response()
}

async fn journal(Query(q): Query<HashMap<String, String>>) -> Response {
    let after = match q.get("after").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return refused(StatusCode::BAD_REQUEST, "'after' must be a journal number (0 or more)"),
    };
    let entries = crate::decision_journal::since(after);
    let last = entries.last().map(|e| e.seq).unwrap_or(after);
    Json(json!({"entries": entries, "last": last})).into_response()
}
