//! Graph change notifications against a real `accord` process and a real webhook receiver
//! (plain HTTP on 127.0.0.1, which the server accepts with `--allow-http-notification-urls`):
//! the validation handshake, notifications as Graph shapes them, renewal and deletion, lifecycle
//! events when an administrator takes access away, reauthorization, retries and `missed`.
//! The world is tests/fixtures/calendar_sync_world.toml.

mod support;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::graph_api::GraphApi;
use support::TestServer;

const CONTOSO: &str = "eeeeeeee-5000-4000-8000-000000000001";
const ALICE: &str = "eeeeeeee-5000-4000-8000-0000000000a1";
const BOB: &str = "eeeeeeee-5000-4000-8000-0000000000b1";
const VENDOR: &str = "ffffffff-5000-4000-8000-000000000001";
const PROFILE: &str = "ffffffff-5000-4000-8000-000000000002";
const DAEMON: (&str, &str) = ("ffffffff-5000-4000-8000-000000000003", "sync-daemon-secret-1");
const ADMIN: (&str, &str) = ("ffffffff-5000-4000-8000-000000000004", "admin-daemon-secret-1");

// ---------------------------------------------------------------------------------------------
// A webhook receiver

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Handshake {
    Echo,
    WrongToken,
}

#[derive(Default)]
struct Received {
    /// (endpoint, decoded validation token)
    validations: Vec<(String, String)>,
    /// (endpoint, body) of every delivery, failed ones included.
    deliveries: Vec<(String, Value)>,
    handshake: Option<Handshake>,
    /// Change notifications (`/hook`) answer 500 while set.
    failing: bool,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Received>>);

async fn endpoint(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut s = r.0.lock().unwrap();
    if let Some(token) = q.get("validationToken") {
        s.validations.push((name, token.clone()));
        let answer = match s.handshake.unwrap_or(Handshake::Echo) {
            Handshake::Echo => token.clone(),
            Handshake::WrongToken => "not the token".to_string(),
        };
        return (StatusCode::OK, [("content-type", "text/plain")], answer).into_response();
    }
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let fail = s.failing && name == "hook";
    s.deliveries.push((name, value));
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else {
        StatusCode::ACCEPTED.into_response()
    }
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().route("/{name}", axum::routing::post(endpoint)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, base)
    }

    fn set(&self, f: impl FnOnce(&mut Received)) {
        f(&mut self.0.lock().unwrap())
    }

    /// Every notification item posted to `name` so far.
    fn items(&self, name: &str) -> Vec<Value> {
        let s = self.0.lock().unwrap();
        s.deliveries
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, b)| b["value"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits (at most 20 s) for an item on `name` that satisfies `pred`.
    async fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = self.items(name).into_iter().find(|v| pred(v)) {
                return v;
            }
            assert!(Instant::now() < deadline, "no {what} on /{name}; got {:?}", self.items(name));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server and its callers

async fn start() -> (GraphApi, Receiver, String) {
    let dir = std::env::temp_dir().join(format!("accord-notify-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_sync_world.toml");
    let flags = [
        "--allow-http-notification-urls",
        "--subscription-review-ms",
        "200",
        "--notification-retry-seconds",
        "3",
        "--test-mode",
    ];
    let server = TestServer::launch_with_env(dir, &world, &flags, &[]);
    let (receiver, base) = Receiver::start().await;
    (GraphApi { c: server.client(), server }, receiver, base)
}

async fn alice(g: &GraphApi, app: &str) -> String {
    g.ropc_token(CONTOSO, app, "alice@contoso.test", "alice-password-1").await
}

fn in_days(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn subscription(resource: &str, base: &str) -> Value {
    json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": format!("{base}/hook?tenant=contoso"),
        "lifecycleNotificationUrl": format!("{base}/life"),
        "resource": resource,
        "expirationDateTime": in_days(2),
        "clientState": "secret-client-state",
        "latestSupportedTlsVersion": "v1_2",
    })
}

/// A meeting a week from now (notifications do not depend on the date; nothing here is).
fn event(subject: &str) -> Value {
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(7)).date();
    json!({"subject": subject,
           "start": {"dateTime": format!("{day}T10:00:00"), "timeZone": "UTC"},
           "end": {"dateTime": format!("{day}T11:00:00"), "timeZone": "UTC"}})
}

/// The administrator's daemon writes an event into a mailbox; its id.
async fn write_event(g: &GraphApi, admin: &str, user: &str, subject: &str) -> String {
    let (s, ev) = g.post(admin, &format!("/v1.0/users/{user}/events"), event(subject)).await;
    assert_eq!(s, 201, "{ev}");
    ev["id"].as_str().unwrap().to_string()
}

async fn sp_id(g: &GraphApi, admin: &str, app: &str) -> String {
    let (s, body) = g.get(admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app}'")).await;
    assert_eq!(s, 200, "{body}");
    body["value"][0]["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Creation runs the handshake on both URLs; created, updated and deleted events arrive as
/// Graph shapes them, with the clientState; renewal, listing, isolation between apps, and
/// deletion behave as Graph's.
#[tokio::test]
async fn subscribe_receive_renew_and_delete() {
    let (g, hooks, base) = start().await;
    let token = alice(&g, VENDOR).await;
    let admin = g.app_token(CONTOSO, ADMIN).await;

    let (s, sub) = g.post(&token, "/v1.0/subscriptions", subscription("me/events", &base)).await;
    assert_eq!(s, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["resource"], "me/events");
    assert_eq!(sub["applicationId"], VENDOR);
    assert_eq!(sub["creatorId"], ALICE);
    assert_eq!(sub["changeType"], "created,updated,deleted");
    assert_eq!(sub["clientState"], "secret-client-state");
    assert_eq!(sub["lifecycleNotificationUrl"], format!("{base}/life"));
    assert!(sub["expirationDateTime"].as_str().unwrap().ends_with('Z'));
    {
        let seen = hooks.0.lock().unwrap();
        let names: Vec<&str> = seen.validations.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["hook", "life"], "both URLs are validated");
        assert!(seen.validations[0].1.contains(' '), "the token is sent URL-encoded and must be decoded");
    }

    // Created, updated, deleted.
    let ev = write_event(&g, &admin, ALICE, "Kick-off").await;
    let created = hooks.wait_for("hook", "created", |v| v["changeType"] == "created").await;
    assert_eq!(created["subscriptionId"], id.as_str());
    assert_eq!(created["clientState"], "secret-client-state");
    assert_eq!(created["tenantId"], CONTOSO);
    assert_eq!(created["resource"], format!("Users/{ALICE}/Events/{ev}"));
    assert_eq!(created["resourceData"]["@odata.type"], "#Microsoft.Graph.Event");
    assert_eq!(created["resourceData"]["@odata.id"], format!("Users/{ALICE}/Events/{ev}"));
    assert_eq!(created["resourceData"]["id"], ev.as_str());
    assert!(created["resourceData"]["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(created["subscriptionExpirationDateTime"].is_string());
    assert_eq!(
        g.patch(&admin, &format!("/v1.0/users/{ALICE}/events/{ev}"), json!({"subject": "Kick-off!"})).await.0,
        200
    );
    hooks.wait_for("hook", "updated", |v| v["changeType"] == "updated" && v["resourceData"]["id"] == ev.as_str()).await;
    assert_eq!(g.delete(&admin, &format!("/v1.0/users/{ALICE}/events/{ev}")).await.0, 204);
    hooks.wait_for("hook", "deleted", |v| v["changeType"] == "deleted" && v["resourceData"]["id"] == ev.as_str()).await;
    // Bob's mailbox is not Alice's subscription.
    write_event(&g, &admin, BOB, "Bob's own").await;

    // Listing and reading: the owner sees it (without clientState); other apps do not.
    let (s, list) = g.get(&token, "/v1.0/subscriptions").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["id"], id.as_str());
    assert!(list["value"][0]["clientState"].is_null());
    let (s, one) = g.get(&token, &format!("/v1.0/subscriptions/{id}")).await;
    assert_eq!((s, one["id"].as_str()), (200, Some(id.as_str())), "{one}");
    let daemon = g.app_token(CONTOSO, DAEMON).await;
    assert_eq!(g.get(&daemon, &format!("/v1.0/subscriptions/{id}")).await.0, 404);
    assert_eq!(g.delete(&daemon, &format!("/v1.0/subscriptions/{id}")).await.0, 404);
    let (_, theirs) = g.get(&daemon, "/v1.0/subscriptions").await;
    assert!(theirs["value"].as_array().unwrap().is_empty(), "{theirs}");

    // Renewal: within Graph's maximum, not beyond; the lifecycle URL is fixed at creation.
    let (s, renewed) =
        g.patch(&token, &format!("/v1.0/subscriptions/{id}"), json!({"expirationDateTime": in_days(6)})).await;
    assert_eq!(s, 200, "{renewed}");
    assert_ne!(renewed["expirationDateTime"], sub["expirationDateTime"]);
    let (s, e) = g.patch(&token, &format!("/v1.0/subscriptions/{id}"), json!({"expirationDateTime": in_days(8)})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("InvalidRequest")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("10080 minutes"));
    let (s, e) = g
        .patch(&token, &format!("/v1.0/subscriptions/{id}"), json!({"lifecycleNotificationUrl": format!("{base}/x")}))
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("only be set when the subscription is created"));

    // Deleted: a second subscription gets the next event, the first one nothing more.
    assert_eq!(g.delete(&token, &format!("/v1.0/subscriptions/{id}")).await.0, 204);
    assert_eq!(g.get(&token, &format!("/v1.0/subscriptions/{id}")).await.0, 404);
    let (s, second) = g.post(&token, "/v1.0/subscriptions", subscription("me/events", &base)).await;
    assert_eq!(s, 201, "{second}");
    let ev2 = write_event(&g, &admin, ALICE, "After delete").await;
    hooks
        .wait_for("hook", "the second subscription's notice", |v| {
            v["subscriptionId"] == second["id"] && v["resourceData"]["id"] == ev2.as_str()
        })
        .await;
    let stale = hooks
        .items("hook")
        .into_iter()
        .filter(|v| v["subscriptionId"] == id.as_str() && v["resourceData"]["id"] == ev2.as_str())
        .count();
    assert_eq!(stale, 0, "the deleted subscription was told nothing");
}

/// A subscription is refused when the handshake fails, the URL is not acceptable, the body is
/// wrong, the caller lacks the permission, or the mailbox is not the caller's to read.
#[tokio::test]
async fn refusals() {
    let (g, hooks, base) = start().await;
    let token = alice(&g, VENDOR).await;
    let refused = |(s, body): (u16, Value), status: u16, code: &str, needle: &str| {
        assert_eq!(s, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {body}");
    };
    let post = |body: Value| {
        let (g, token) = (&g, &token);
        async move { g.post(token, "/v1.0/subscriptions", body).await }
    };

    hooks.set(|s| s.handshake = Some(Handshake::WrongToken));
    refused(post(subscription("me/events", &base)).await, 400, "ValidationError", "validationToken");
    hooks.set(|s| s.handshake = None);
    // Nobody listens on port 9 of the loopback.
    let mut down = subscription("me/events", &base);
    down["notificationUrl"] = json!("http://127.0.0.1:9/hook");
    refused(post(down).await, 400, "ValidationError", "cannot connect");
    // A cloud's metadata address is never called, test mode or not (`egress.rs`).
    let mut metadata = subscription("me/events", &base);
    metadata["notificationUrl"] = json!("https://169.254.169.254/latest/meta-data/");
    refused(post(metadata).await, 400, "ValidationError", "169.254.169.254 is on a loopback, private or link-local");
    let mut plain = subscription("me/events", &base);
    plain["notificationUrl"] = json!("http://vendor.example/hook");
    refused(post(plain).await, 400, "InvalidRequest", "https");
    let mut far = subscription("me/events", &base);
    far["expirationDateTime"] = json!(in_days(30));
    refused(post(far).await, 400, "InvalidRequest", "10080 minutes");
    let mut bad = subscription("me/events", &base);
    bad["changeType"] = json!("created,moved");
    refused(post(bad).await, 400, "InvalidRequest", "'moved'");
    let mut long = subscription("me/events", &base);
    long["clientState"] = json!("x".repeat(129));
    refused(post(long).await, 400, "InvalidRequest", "clientState");
    let mut rich = subscription("me/events", &base);
    rich["includeResourceData"] = json!(true);
    refused(post(rich).await, 400, "InvalidRequest", "includeResourceData");
    refused(post(subscription("me/messages", &base)).await, 400, "InvalidRequest", "me/messages");
    let mut missing = subscription("me/events", &base);
    missing.as_object_mut().unwrap().remove("notificationUrl");
    refused(post(missing).await, 400, "InvalidRequest", "'notificationUrl' is required");

    // Permissions and mailboxes.
    let profile = alice(&g, PROFILE).await;
    refused(
        g.post(&profile, "/v1.0/subscriptions", subscription("me/events", &base)).await,
        403,
        "ExtensionError",
        "Calendars.Read",
    );
    refused(post(subscription(&format!("users/{BOB}/events"), &base)).await, 403, "ErrorAccessDenied", "");
    let daemon = g.app_token(CONTOSO, DAEMON).await;
    let (s, body) =
        g.post(&daemon, "/v1.0/subscriptions", subscription("users/frank@fabrikam.test/events", &base)).await;
    assert_eq!(s, 404, "another tenant's mailbox does not exist here: {body}");
    let (s, body) = g.post(&daemon, "/v1.0/subscriptions", subscription("users/bob@contoso.test/events", &base)).await;
    assert_eq!(s, 201, "the daemon may read any mailbox of its tenant: {body}");

    // Graph takes no query options on the list.
    refused(g.get(&token, "/v1.0/subscriptions?$top=1").await, 400, "InvalidRequest", "'$top'");

    // Nothing refused was kept.
    let (_, list) = g.get(&token, "/v1.0/subscriptions").await;
    assert!(list["value"].as_array().unwrap().is_empty(), "{list}");
}

/// Revoking consent pauses a delegated subscription and sends `reauthorizationRequired`;
/// notifications wait; once consent is back, `reauthorize` resumes them. Removing an app's
/// permission does the same to an app-only subscription; deleting the mailbox's user ends a
/// subscription with `subscriptionRemoved`.
#[tokio::test]
async fn lost_access_becomes_lifecycle_events() {
    let (g, hooks, base) = start().await;
    let token = alice(&g, VENDOR).await;
    let admin = g.app_token(CONTOSO, ADMIN).await;
    let (s, sub) = g.post(&token, "/v1.0/subscriptions", subscription("me/events", &base)).await;
    assert_eq!(s, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();

    // The administrator revokes the vendor's consent.
    let vendor_sp = sp_id(&g, &admin, VENDOR).await;
    let (_, grants) = g.get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{vendor_sp}'")).await;
    let grant = grants["value"][0].clone();
    assert_eq!(
        g.delete(&admin, &format!("/v1.0/oauth2PermissionGrants/{}", grant["id"].as_str().unwrap())).await.0,
        204
    );
    let notice =
        hooks.wait_for("life", "reauthorizationRequired", |v| v["lifecycleEvent"] == "reauthorizationRequired").await;
    assert_eq!(notice["subscriptionId"], id.as_str());
    assert_eq!(notice["clientState"], "secret-client-state");
    assert_eq!(notice["tenantId"], CONTOSO);

    // While paused, changes wait in the outbox.
    let ev = write_event(&g, &admin, ALICE, "While paused").await;
    let (s, e) = g.send(g.c.post(g.url(&format!("/v1.0/subscriptions/{id}/reauthorize"))).bearer_auth(&token)).await;
    assert_eq!(s, 403, "consent is still revoked: {e}");
    assert!(
        hooks.items("hook").iter().all(|v| v["resourceData"]["id"] != ev.as_str()),
        "nothing delivered while paused"
    );

    // Consent comes back; a fresh token reauthorizes; the waiting notification arrives.
    let restore = json!({"clientId": vendor_sp, "consentType": "AllPrincipals", "resourceId": grant["resourceId"], "scope": grant["scope"]});
    let (s, body) = g.post(&admin, "/v1.0/oauth2PermissionGrants", restore).await;
    assert_eq!(s, 201, "{body}");
    let fresh = alice(&g, VENDOR).await;
    let (s, body) = g.send(g.c.post(g.url(&format!("/v1.0/subscriptions/{id}/reauthorize"))).bearer_auth(&fresh)).await;
    assert_eq!(s, 204, "{body}");
    hooks.wait_for("hook", "the waiting notification", |v| v["resourceData"]["id"] == ev.as_str()).await;

    // Sessions revoked: reauthorization again.
    let before = hooks.items("life").len();
    assert_eq!(
        g.send(g.c.post(g.url(&format!("/v1.0/users/{ALICE}/revokeSignInSessions"))).bearer_auth(&admin)).await.0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while hooks.items("life").len() == before {
        assert!(Instant::now() < deadline, "no lifecycle event after revokeSignInSessions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.items("life")[before]["lifecycleEvent"], "reauthorizationRequired");

    // App-only: the daemon's permission is removed.
    let daemon = g.app_token(CONTOSO, DAEMON).await;
    let (s, app_sub) =
        g.post(&daemon, "/v1.0/subscriptions", subscription(&format!("users/{BOB}/events"), &base)).await;
    assert_eq!(s, 201, "{app_sub}");
    let daemon_sp = sp_id(&g, &admin, DAEMON.0).await;
    let (_, assignments) = g.get(&admin, &format!("/v1.0/servicePrincipals/{daemon_sp}/appRoleAssignments")).await;
    for a in assignments["value"].as_array().unwrap() {
        let path = format!(
            "/v1.0/servicePrincipals/{}/appRoleAssignedTo/{}",
            a["resourceId"].as_str().unwrap(),
            a["id"].as_str().unwrap()
        );
        assert_eq!(g.delete(&admin, &path).await.0, 204);
    }
    hooks
        .wait_for("life", "the daemon's reauthorizationRequired", |v| {
            v["subscriptionId"] == app_sub["id"] && v["lifecycleEvent"] == "reauthorizationRequired"
        })
        .await;

    // The mailbox's user is deleted: the subscription is removed.
    assert_eq!(g.delete(&admin, &format!("/v1.0/users/{BOB}")).await.0, 204);
    hooks
        .wait_for("life", "subscriptionRemoved", |v| {
            v["subscriptionId"] == app_sub["id"] && v["lifecycleEvent"] == "subscriptionRemoved"
        })
        .await;
}

/// A notification endpoint that fails is retried with backoff; after the retry window (3 s in
/// this test) the notification is dropped and the subscriber is told it `missed` changes.
#[tokio::test]
async fn failed_deliveries_are_retried_then_missed() {
    let (g, hooks, base) = start().await;
    let token = alice(&g, VENDOR).await;
    let admin = g.app_token(CONTOSO, ADMIN).await;
    let (s, sub) = g.post(&token, "/v1.0/subscriptions", subscription("me/events", &base)).await;
    assert_eq!(s, 201, "{sub}");
    hooks.set(|s| s.failing = true);
    let ev = write_event(&g, &admin, ALICE, "Into the void").await;
    let missed = hooks.wait_for("life", "missed", |v| v["lifecycleEvent"] == "missed").await;
    assert_eq!(missed["subscriptionId"], sub["id"]);
    let attempts = hooks.items("hook").iter().filter(|v| v["resourceData"]["id"] == ev.as_str()).count();
    assert!(attempts >= 2, "retried before giving up: {attempts} attempt(s)");

    // The endpoint recovers: the next change is delivered.
    hooks.set(|s| s.failing = false);
    let ev2 = write_event(&g, &admin, ALICE, "Back again").await;
    hooks.wait_for("hook", "the next notification", |v| v["resourceData"]["id"] == ev2.as_str()).await;
}

/// On Accord's clock (test mode): in a subscription's last hour the subscriber is told to renew
/// (`reauthorizationRequired`), and once it expires it is gone — without waiting hours.
#[tokio::test]
async fn subscriptions_near_their_end_are_told_and_then_end() {
    let (g, hooks, base) = start().await;
    let token = alice(&g, VENDOR).await;
    let mut request = subscription("me/events", &base);
    let two_hours = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    request["expirationDateTime"] = json!(two_hours.format(&time::format_description::well_known::Rfc3339).unwrap());
    let (s, sub) = g.post(&token, "/v1.0/subscriptions", request).await;
    assert_eq!(s, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    assert!(hooks.items("life").is_empty(), "nothing to say two hours ahead");

    let advance = |minutes: i64| {
        let g = &g;
        async move {
            let res =
                g.c.post(g.url("/_accord/test/clock/advance")).json(&json!({"minutes": minutes})).send().await.unwrap();
            assert_eq!(res.status(), 200);
        }
    };
    advance(70).await;
    let notice = hooks.wait_for("life", "the last hour's notice", |v| v["subscriptionId"] == id.as_str()).await;
    assert_eq!(notice["lifecycleEvent"], "reauthorizationRequired");

    advance(60).await;
    let fresh = alice(&g, VENDOR).await;
    assert_eq!(g.get(&fresh, &format!("/v1.0/subscriptions/{id}")).await.0, 404, "expired and gone");
}
