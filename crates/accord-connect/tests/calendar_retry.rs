//! The calendar client's paging and retries against a small local stand-in for Graph: pages
//! linked by `@odata.nextLink`, a 429 with `Retry-After` (seconds), a 503 with `Retry-After`
//! (an HTTP date), and an endpoint that never stops throttling: shapes Accord's own limits and
//! fault rules do not produce in one place, exercised here.
//! The dates in it are only data handed to the stand-in; nothing is compared with today (the
//! HTTP-date `Retry-After` is computed from now).

use accord_connect::{CalendarClient, CalendarUser, ConnectError, RetryPolicy};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::macros::datetime;
use url::Url;

#[derive(Default)]
struct Stub {
    hits: Mutex<HashMap<String, u32>>,
    authorizations: Mutex<Vec<String>>,
    prefer: Mutex<Vec<String>>,
    throttled_forever: AtomicU32,
    base: Mutex<String>,
}

impl Stub {
    fn hit(&self, key: &str, headers: &HeaderMap) -> u32 {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        self.authorizations.lock().unwrap().push(auth);
        let prefer = headers.get("prefer").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        self.prefer.lock().unwrap().push(prefer);
        let mut hits = self.hits.lock().unwrap();
        let n = hits.entry(key.to_string()).or_default();
        *n += 1;
        *n
    }

    fn hits(&self, key: &str) -> u32 {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

fn event(id: &str, subject: &str, day: u32) -> serde_json::Value {
    json!({
        "id": id, "subject": subject, "bodyPreview": "",
        "start": {"dateTime": format!("2026-12-0{day}T09:00:00.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": format!("2026-12-0{day}T09:30:00.0000000"), "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "Alice", "address": "alice@contoso.test"}},
        "attendees": [{"type": "required", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                       "emailAddress": {"name": "Bob", "address": "bob@contoso.test"}}],
        "isOnlineMeeting": true, "onlineMeeting": {"joinUrl": format!("https://meet.example/{id}")},
        "webLink": format!("https://outlook.example/{id}")
    })
}

fn throttled(retry_after: &str, status: StatusCode, code: &str) -> Response {
    let mut res = (
        status,
        Json(json!({"error": {"code": code, "message": "Application is over its MailboxConcurrency limit."}})),
    )
        .into_response();
    res.headers_mut().insert("retry-after", retry_after.parse().unwrap());
    res
}

/// `/v1.0/me/events`: page 1 is throttled once (429, Retry-After: 1), then links to page 2.
/// Page 2 fails once with 503 and an HTTP-date Retry-After, then links to page 3, the last.
async fn events(
    State(stub): State<Arc<Stub>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = stub.base.lock().unwrap().clone();
    let page = q.get("$skiptoken").cloned().unwrap_or_else(|| "1".into());
    let n = stub.hit(&format!("events:{page}"), &headers);
    match (page.as_str(), n) {
        ("1", 1) => throttled("1", StatusCode::TOO_MANY_REQUESTS, "ApplicationThrottled"),
        ("1", _) => Json(json!({
            "@odata.context": format!("{base}/v1.0/$metadata#users('me')/events"),
            "value": [event("e1", "Standup", 1), event("e2", "Planning", 1)],
            "@odata.nextLink": format!("{base}/v1.0/me/events?$skiptoken=2"),
        }))
        .into_response(),
        ("2", 1) => {
            // An HTTP date one second ahead (whole seconds: the wait is between 0 and 1 s).
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
            let date = at
                .format(time::macros::format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                ))
                .unwrap();
            throttled(&date, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
        }
        ("2", _) => Json(json!({
            "value": [event("e3", "Review", 2)],
            "@odata.nextLink": format!("{base}/v1.0/me/events?$skiptoken=3"),
        }))
        .into_response(),
        ("3", _) => Json(json!({"value": [event("e4", "Retro", 4)]})).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/v1.0/users/{id}/calendarView`: always 429.
async fn always_throttled(State(stub): State<Arc<Stub>>, headers: HeaderMap) -> Response {
    stub.hit("view", &headers);
    stub.throttled_forever.fetch_add(1, Ordering::SeqCst);
    throttled("0", StatusCode::TOO_MANY_REQUESTS, "ApplicationThrottled")
}

/// `/v1.0/users/{id}/events`: a next link to another origin.
async fn foreign_link(State(stub): State<Arc<Stub>>, headers: HeaderMap) -> Response {
    stub.hit("foreign", &headers);
    Json(json!({"value": [event("x1", "One", 1)], "@odata.nextLink": "https://evil.example/v1.0/steal"}))
        .into_response()
}

/// `/v1.0/users/loop/calendarView`: links to itself forever.
async fn endless(
    State(stub): State<Arc<Stub>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = stub.base.lock().unwrap().clone();
    stub.hit("endless", &headers);
    let start = q.get("startDateTime").cloned().unwrap_or_default();
    let end = q.get("endDateTime").cloned().unwrap_or_default();
    Json(json!({
        "value": [event("l", "Again", 1)],
        "@odata.nextLink": format!("{base}/v1.0/users/loop/calendarView?startDateTime={start}&endDateTime={end}"),
    }))
    .into_response()
}

/// `/v1.0/$batch`: every part answered 200 with its url, except that the first time it is
/// seen, a part whose url ends in `throttle` is answered 429 with `Retry-After: 1`.
async fn batch(State(stub): State<Arc<Stub>>, headers: HeaderMap, Json(body): Json<serde_json::Value>) -> Response {
    let n = stub.hit("batch", &headers);
    let responses: Vec<serde_json::Value> = body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let url = r["url"].as_str().unwrap();
            if url.ends_with("throttle") && n == 1 {
                json!({"id": r["id"], "status": 429, "headers": {"Retry-After": "1"},
                       "body": {"error": {"code": "ApplicationThrottled", "message": "slow down"}}})
            } else {
                json!({"id": r["id"], "status": 200, "body": {"url": url, "round": n}})
            }
        })
        .rev() // Graph may answer in any order
        .collect();
    Json(json!({ "responses": responses })).into_response()
}

async fn start_stub() -> (Arc<Stub>, Url) {
    let stub = Arc::new(Stub::default());
    let app = Router::new()
        .route("/v1.0/me/events", get(events))
        .route("/v1.0/users/{id}/events", get(foreign_link))
        .route("/v1.0/users/loop/calendarView", get(endless))
        .route("/v1.0/users/{id}/calendarView", get(always_throttled))
        .route("/v1.0/$batch", axum::routing::post(batch))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *stub.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, Url::parse(&format!("{base}/v1.0")).unwrap())
}

fn client(base: Url, max_attempts: u32, max_pages: u32) -> CalendarClient {
    let retry = RetryPolicy { max_attempts, base_delay: Duration::from_millis(20), max_delay: Duration::from_secs(2) };
    CalendarClient::new(reqwest::Client::new(), base, retry, max_pages)
}

#[tokio::test]
async fn pages_are_followed_through_429_and_503_honouring_retry_after() {
    let (stub, base) = start_stub().await;
    let calendar = client(base, 4, 10);
    let started = Instant::now();
    let events = calendar.list_events("token-1", &CalendarUser::Me).await.unwrap();
    let elapsed = started.elapsed();

    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4"]);
    assert_eq!(events[0].join_url(), Some("https://meet.example/e1"));
    assert_eq!(events[3].start.as_ref().unwrap().to_utc(), Some(datetime!(2026-12-04 09:00 UTC)));
    assert_eq!(events[1].attendees[0].email_address.as_ref().unwrap().address.as_deref(), Some("bob@contoso.test"));
    assert_eq!((stub.hits("events:1"), stub.hits("events:2"), stub.hits("events:3")), (2, 2, 1));
    // Retry-After: 1 was honoured (the backoff alone would have been 20 ms).
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(stub.authorizations.lock().unwrap().iter().all(|a| a == "Bearer token-1"));
    assert!(stub.prefer.lock().unwrap().iter().all(|p| p == "outlook.timezone=\"UTC\""));
}

#[tokio::test]
async fn throttling_that_does_not_end_is_bounded() {
    let (stub, base) = start_stub().await;
    let calendar = client(base, 3, 10);
    let e = calendar
        .calendar_view(
            "t",
            &CalendarUser::UserId("alice@contoso.test".into()),
            datetime!(2026-11-30 00:00 UTC),
            datetime!(2026-12-05 00:00 UTC),
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, ConnectError::Graph { status: 429, code, .. } if code == "ApplicationThrottled"), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(stub.hits("view"), 3, "max_attempts requests, no more");
}

#[tokio::test]
async fn next_links_stay_on_the_graph_origin_and_paging_is_bounded() {
    let (stub, base) = start_stub().await;
    let calendar = client(base, 2, 5);
    let e = calendar.list_events("t", &CalendarUser::UserId("u1".into())).await.unwrap_err();
    assert!(matches!(&e, ConnectError::Http { message, .. } if message.contains("another origin")), "{e:?}");
    assert_eq!(stub.hits("foreign"), 1);

    let e = calendar
        .calendar_view(
            "t",
            &CalendarUser::UserId("loop".into()),
            datetime!(2026-11-30 00:00 UTC),
            datetime!(2026-12-05 00:00 UTC),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::TooManyPages { pages: 5 }), "{e:?}");
    assert_eq!(stub.hits("endless"), 5);
}

/// `$batch` fan-out: 25 paths make two batches; the throttled part is sent again alone after
/// its `Retry-After`, and the answers come back in the order asked.
#[tokio::test]
async fn batches_resend_throttled_parts_after_retry_after() {
    let (stub, base) = start_stub().await;
    let calendar = client(base, 3, 5);
    let mut paths: Vec<String> = (0..25).map(|i| format!("/users/u{i}/events")).collect();
    paths[3] = "/users/u3/throttle".into();
    let started = Instant::now();
    let answers = calendar.batch_get("t", &paths).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After: 1 was honoured");
    assert_eq!(answers.len(), 25);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "{i}: {a:?}");
        assert_eq!(a.body["url"], paths[i].as_str());
    }
    assert_eq!(answers[3].body["round"], 3, "the throttled part came back in a third batch");
    assert_eq!(answers[4].body["round"], 1);
    assert_eq!(stub.hits("batch"), 3, "two batches of at most 20, then one for the throttled part");
}
