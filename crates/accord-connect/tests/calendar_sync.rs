//! The kit's push sync against a real `accord` server: delta rounds (paged, then only changes,
//! then a reset on a token Graph no longer knows), a subscription whose validation handshake
//! and notifications a small receiver answers with the kit's own helpers, `clientState`
//! checks, and `$batch` fan-out. The world is tests/fixtures/sync_world.toml.

mod support;

use accord_connect::*;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{fixture, TestServer};

const TAILWIND: &str = "e5000000-0000-4000-8000-000000000002";
const ERIN: &str = "e5000000-0000-4000-8000-0000000000e1";
const SYNC: (&str, &str) = ("f5000000-0000-4000-8000-000000000001", "sync-secret-1");
const BOOKING: (&str, &str) = ("f5000000-0000-4000-8000-000000000002", "booking-secret-1");

fn kit(server: &TestServer, (app, secret): (&str, &str)) -> ConnectClient {
    let config =
        Config::accord(&server.base, app, secret, "https://vendor.example/auth/callback", "https://vendor.example/x")
            .with_extra_root_ca(server.ca_pem.clone());
    ConnectClient::new(config).unwrap()
}

async fn app_token(kit: &ConnectClient) -> String {
    kit.app_token(TAILWIND).await.unwrap().access_token
}

fn erin() -> CalendarUser {
    CalendarUser::UserId(ERIN.into())
}

/// The tests' window: yesterday to a month ahead (the world's meetings are in the coming days).
fn window() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (now - time::Duration::days(1), now + time::Duration::days(30))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A booking tool writes into Erin's calendar, four days ahead; the event's id.
async fn book(server: &TestServer, booking: &str, subject: &str) -> String {
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(4)).date();
    let res = server
        .browser()
        .post(server.url(&format!("/v1.0/users/{ERIN}/events")))
        .bearer_auth(booking)
        .json(&json!({"subject": subject,
            "start": {"dateTime": format!("{day}T09:00:00"), "timeZone": "UTC"},
            "end": {"dateTime": format!("{day}T10:00:00"), "timeZone": "UTC"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn delta_rounds_page_then_return_changes_then_reset() {
    let server = TestServer::start_with(&fixture("sync_world.toml"));
    let sync = kit(&server, SYNC);
    let token = app_token(&sync).await;
    let calendar = sync.calendar();
    let (start, end) = window();
    let window = DeltaStart::Window { start, end };

    let first = calendar.calendar_delta(&token, &erin(), &window, Some(2)).await.unwrap();
    let mut subjects: Vec<String> = first.changed.iter().filter_map(|e| e.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Planning", "Retro", "Review"], "all three over two pages");
    assert!(first.removed.is_empty());
    assert!(first.delta_link.contains("$deltatoken="), "{}", first.delta_link);

    let booking = kit(&server, BOOKING);
    let booking_token = app_token(&booking).await;
    let new_id = book(&server, &booking_token, "Booked").await;
    let planning = first.changed.iter().find(|e| e.subject.as_deref() == Some("Planning")).unwrap();
    let res = server
        .browser()
        .delete(server.url(&format!("/v1.0/users/{ERIN}/events/{}", planning.id)))
        .bearer_auth(&booking_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);

    let second =
        calendar.calendar_delta(&token, &erin(), &DeltaStart::Link(first.delta_link.clone()), None).await.unwrap();
    assert_eq!(second.changed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![new_id]);
    assert_eq!(second.removed, vec![planning.id.clone()]);

    // A link Graph does not know (altered) is a reset.
    let broken = format!("{}x", second.delta_link);
    let e = calendar.calendar_delta(&token, &erin(), &DeltaStart::Link(broken), None).await.unwrap_err();
    assert!(e.is_sync_reset(), "{e:?}");
    // A link to another origin is refused before the token is sent.
    let foreign = DeltaStart::Link("https://elsewhere.example/v1.0/me/calendarView/delta?$deltatoken=x".into());
    assert!(calendar.calendar_delta(&token, &erin(), &foreign, None).await.is_err());
}

#[derive(Default)]
struct Inbox {
    bodies: Vec<Vec<u8>>,
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(q.iter()).finish();
    if let Some(token) = validation_token(&query) {
        return (StatusCode::OK, [("content-type", "text/plain")], token).into_response();
    }
    inbox.lock().unwrap().bodies.push(body.to_vec());
    StatusCode::ACCEPTED.into_response()
}

#[tokio::test]
async fn subscriptions_notify_and_are_checked_and_batches_fan_out() {
    let server = TestServer::start_with_args(&fixture("sync_world.toml"), &["--allow-http-notification-urls"]);
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let app = axum::Router::new().route("/{name}", axum::routing::post(receive)).with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sync = kit(&server, SYNC);
    let token = app_token(&sync).await;
    let calendar = sync.calendar();
    let request = SubscriptionRequest {
        resource: events_resource(&erin()),
        change_types: vec!["created".into(), "updated".into(), "deleted".into()],
        notification_url: format!("{base}/notify"),
        lifecycle_url: Some(format!("{base}/lifecycle")),
        client_state: "kit-client-state".into(),
        expiration: time::OffsetDateTime::now_utc() + EVENT_SUBSCRIPTION_LIFETIME,
    };
    let sub = calendar.create_subscription(&token, &request).await.unwrap();
    assert_eq!(sub.resource.as_deref(), Some(format!("users/{ERIN}/events").as_str()));

    let booking_token = app_token(&kit(&server, BOOKING)).await;
    let id = book(&server, &booking_token, "Pushed").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let known = |s: &str| (s == sub.id).then(|| "kit-client-state".to_string());
    let change = loop {
        let bodies = inbox.lock().unwrap().bodies.clone();
        let found = bodies.iter().flat_map(|b| parse_notifications(b, known).unwrap().accepted).find(|n| {
            matches!(n, Incoming::Change { event_id: Some(e), change_type, .. } if *e == id && change_type == "created")
        });
        if let Some(n) = found {
            break n;
        }
        assert!(Instant::now() < deadline, "no notification for the booked event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(change.subscription_id(), sub.id);
    // Another vendor's secret does not pass.
    let body = inbox.lock().unwrap().bodies[0].clone();
    let strangers = parse_notifications(&body, |_| Some("someone else's".into())).unwrap();
    assert!(strangers.accepted.is_empty() && strangers.rejected > 0);

    let renewed = calendar
        .renew_subscription(&token, &sub.id, time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .await
        .unwrap();
    assert_ne!(renewed.expiration_date_time, None);
    calendar.reauthorize_subscription(&token, &sub.id).await.unwrap();
    calendar.delete_subscription(&token, &sub.id).await.unwrap();
    calendar.delete_subscription(&token, &sub.id).await.unwrap();

    // $batch: three views and one path the app may not read, answered in order.
    let (start, end) = window();
    let view = format!(
        "/users/{ERIN}/calendarView?startDateTime={}&endDateTime={}",
        rfc3339(start).replace(':', "%3A"),
        rfc3339(end).replace(':', "%3A")
    );
    let paths = vec![view.clone(), format!("/users/{ERIN}/events"), "/groups".to_string(), view];
    let answers = calendar.batch_get(&token, &paths).await.unwrap();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 403, 200]);
    assert_eq!(answers[0].body["value"].as_array().unwrap().len(), 4, "three meetings and the booked one");
}
