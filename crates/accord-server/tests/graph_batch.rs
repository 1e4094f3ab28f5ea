//! JSON batching (issue 15, part 3): `POST /v1.0/$batch` runs each request as if it were sent
//! alone — same token, same permission checks, same tenant — and reports each one's status,
//! headers and body; a failed request fails those that depend on it (424); the batch is 200
//! once it parses, and 400 when it does not.

mod support;

use serde_json::{json, Value};
use support::*;

async fn alice(server: &TestServer) -> String {
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "password"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("username", "alice@contoso.test"),
            ("password", "alice-password-1"),
            ("scope", "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Calendars.Read"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
}

/// `YYYY-MM-DDThh:mm:ss` (UTC) of now plus `days`: test windows and events move with the clock,
/// so nothing here depends on today's date.
fn days_from_now(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:00", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

async fn batch(server: &TestServer, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = server.client().post(server.url("/v1.0/$batch")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn each_request_is_answered_as_if_sent_alone() {
    let server = TestServer::start();
    let token = alice(&server).await;
    let (status, body) = batch(
        &server,
        Some(&token),
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/v1.0/me?$select=displayName"},
            {"id": "2", "method": "GET", "url": "/me/events?$top=1&$select=subject"},
            {"id": "3", "method": "GET", "url": "/users/frank@fabrikam.test"},
            {"id": "4", "method": "GET", "url": "/me", "dependsOn": ["3"]},
            {"id": "5", "method": "POST", "url": "/me/events", "headers": {"Content-Type": "application/json"},
             "body": {"subject": "Planning", "start": {"dateTime": days_from_now(1), "timeZone": "UTC"},
                      "end": {"dateTime": days_from_now(2), "timeZone": "UTC"}}},
            {"id": "6", "method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"}, "body": {"requests": []}},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answers = body["responses"].as_array().unwrap();
    let by_id = |id: &str| answers.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("no {id} in {body}"));
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["displayName"], "Alice Adams");
    assert!(by_id("1")["headers"]["Content-Type"].as_str().unwrap().starts_with("application/json"));
    assert_eq!(by_id("2")["status"], 200);
    assert!(by_id("2")["body"]["value"].is_array(), "{}", by_id("2"));
    // Another tenant's user does not exist for Alice, in a batch as alone.
    assert_eq!(by_id("3")["status"], 404, "{}", by_id("3"));
    assert_eq!(by_id("4")["status"], 424, "depends on a failed request");
    // Calendars.Read does not create events: 403, as alone.
    assert_eq!(by_id("5")["status"], 403, "{}", by_id("5"));
    assert_eq!(by_id("6")["status"], 400, "no batch inside a batch");

    // Without a token the batch is refused as a whole.
    let (status, _) = batch(&server, None, json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}]})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_malformed_batch_is_400() {
    let server = TestServer::start();
    let token = alice(&server).await;
    let get = |id: &str| json!({"id": id, "method": "GET", "url": "/me"});
    let too_many: Vec<Value> = (0..21).map(|i| get(&i.to_string())).collect();
    for (body, mentions) in [
        (json!({"requests": [get("a"), get("A")]}), "used twice"),
        (json!({"requests": too_many}), "1 to 20"),
        (json!({"requests": []}), "1 to 20"),
        (json!({"nope": []}), "'requests'"),
        (json!({"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}]}), "relative"),
        (json!({"requests": [{"id": "1", "method": "TRACE", "url": "/me"}]}), "method"),
        (
            json!({"requests": [{"id": "1", "method": "POST", "url": "/me/events", "body": {"subject": "x"}}]}),
            "Content-Type",
        ),
        (json!({"requests": [{"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]}, get("2")]}), "earlier"),
    ] {
        let (status, answer) = batch(&server, Some(&token), body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(mentions), "'{mentions}' not in {answer}");
    }
}

/// Mailbox data is throttled per app and mailbox as Outlook does (here 3 requests per ten
/// minutes): the fourth gets 429 `ApplicationThrottled` with `Retry-After`, another mailbox and
/// directory reads are not affected, a throttled part of a batch is a 429 inside a 200, and the
/// count shows in /metrics.
#[tokio::test]
async fn mailbox_requests_are_throttled_per_app_and_mailbox() {
    let dir = std::env::temp_dir().join(format!("accord-throttle-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::launch_with_env(dir, &world(), &["--graph-requests-per-10-minutes", "3"], &[]);
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let app: Value = res.json().await.unwrap();
    let app = app["access_token"].as_str().unwrap().to_string();
    let get = |path: &str| server.client().get(server.url(path)).bearer_auth(&app).send();
    for _ in 0..3 {
        assert_eq!(get("/v1.0/users/alice@contoso.test/events").await.unwrap().status(), 200);
    }
    let res = get("/v1.0/users/alice@contoso.test/events").await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=200).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ApplicationThrottled", "{body}");
    // Another mailbox, and the directory, are not this mailbox's budget.
    assert_eq!(get("/v1.0/users/bob@contoso.test/events").await.unwrap().status(), 200);
    assert_eq!(get("/v1.0/users/alice@contoso.test").await.unwrap().status(), 200);
    // In a batch, each part is throttled on its own.
    let (status, answer) = batch(
        &server,
        Some(&app),
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/alice@contoso.test/events"},
            {"id": "2", "method": "GET", "url": format!(
                "/users/bob@contoso.test/calendarView?startDateTime={}Z&endDateTime={}Z",
                days_from_now(-1),
                days_from_now(1)
            )},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let parts = answer["responses"].as_array().unwrap();
    assert_eq!(parts[0]["status"], 429, "{answer}");
    assert!(parts[0]["headers"]["Retry-After"].is_string(), "{answer}");
    assert_eq!(parts[1]["status"], 200, "{answer}");
    let metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_graph_throttled_total{limit=\"rate\"}"), "{metrics}");
}
