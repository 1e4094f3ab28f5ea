//! Graph delta queries on calendar views (`/calendarView/delta`) over real HTTPS against a real
//! `accord` process: rounds paged by `Prefer: odata.maxpagesize`, changes and removals in the
//! next round, tokens bound to their caller, mailbox and window, `410 SyncStateNotFound`, and
//! tokens that outlive a restart. The world is tests/fixtures/calendar_world.toml (Alice has 13
//! events between July and December 2026). Its dates are fixed, and so are the window and the
//! events the tests write in it or outside it: delta rounds compare them with each other, never
//! with today (token ages are the only thing measured from now, and they are fresh).

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::graph_api::GraphApi;
use support::TestServer;

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const BOB: &str = "eeeeeeee-0000-4000-8000-0000000000b1";
const ALICE: &str = "eeeeeeee-0000-4000-8000-0000000000a1";
const BASIC_APP: &str = "ffffffff-0000-4000-8000-000000000001";
const READ_APP: &str = "ffffffff-0000-4000-8000-000000000002";
const WRITE_APP: &str = "ffffffff-0000-4000-8000-000000000003";
const PROFILE_APP: &str = "ffffffff-0000-4000-8000-000000000004";
const DAEMON_READ: (&str, &str) = ("ffffffff-0000-4000-8000-000000000005", "reader-secret-1");
const WINDOW: &str = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z";

fn world() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_world.toml")
}

async fn alice(g: &GraphApi, app: &str) -> String {
    g.ropc_token(CONTOSO, app, "alice@contoso.test", "alice-password-1").await
}

/// One page with `Prefer: odata.maxpagesize`: status, body, `Preference-Applied`.
async fn page(g: &GraphApi, token: &str, url: &str, size: Option<u32>) -> (u16, Value, Option<String>) {
    let mut req = g.c.get(g.url(url)).bearer_auth(token);
    if let Some(n) = size {
        req = req.header("Prefer", format!("odata.maxpagesize={n}"));
    }
    let res = req.send().await.unwrap();
    let applied = res.headers().get("preference-applied").map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), res.json().await.unwrap(), applied)
}

/// A whole round from `url`: every item, the page sizes, and the delta link it ends with.
async fn round(g: &GraphApi, token: &str, url: &str, size: u32) -> (Vec<Value>, Vec<usize>, String) {
    let (mut items, mut sizes) = (Vec::new(), Vec::new());
    let mut next = url.to_string();
    loop {
        let (status, body, applied) = page(g, token, &next, Some(size)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(applied.as_deref(), Some(format!("odata.maxpagesize={size}").as_str()));
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#Collection(event)"), "{body}");
        let value = body["value"].as_array().unwrap();
        sizes.push(value.len());
        items.extend(value.iter().cloned());
        match (body["@odata.nextLink"].as_str(), body["@odata.deltaLink"].as_str()) {
            (Some(n), None) => {
                assert!(n.contains("/calendarView/delta?$skiptoken="), "{n}");
                next = n.to_string();
            }
            (None, Some(d)) => {
                assert!(d.contains("/calendarView/delta?$deltatoken="), "{d}");
                return (items, sizes, d.to_string());
            }
            _ => panic!("a page carries exactly one of nextLink and deltaLink: {body}"),
        }
        assert!(sizes.len() < 20, "the round does not end");
    }
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

fn removed(items: &[Value]) -> BTreeSet<String> {
    items.iter().filter(|e| e.get("@removed").is_some()).map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

fn event(subject: &str, start: &str, end: &str) -> Value {
    json!({"subject": subject, "start": {"dateTime": start, "timeZone": "UTC"}, "end": {"dateTime": end, "timeZone": "UTC"}})
}

/// A first round pages through the window; the next round returns exactly what changed: new and
/// updated events in full, deleted ones and ones moved out of the window as `@removed`; a round
/// with no change is empty and hands out a new delta link.
#[tokio::test]
async fn rounds_return_the_window_then_only_changes() {
    let g = GraphApi::with_world("calendar_world.toml");
    let token = alice(&g, WRITE_APP).await;
    let start = format!("/v1.0/me/calendarView/delta?{WINDOW}");
    let (items, sizes, delta) = round(&g, &token, &start, 5).await;
    assert_eq!(sizes, vec![5, 5, 3], "13 events in pages of 5");
    assert_eq!(ids(&items).len(), 13, "each event once");
    assert!(removed(&items).is_empty());
    let first = &items[0];
    assert_eq!(first["@odata.type"], "#microsoft.graph.event");
    assert!(first["@odata.etag"].is_string() && first["subject"].is_string() && first["body"].is_object(), "{first}");

    // Changes: one new event in the window, one outside it, one updated, one deleted, one moved out.
    let (s, created) =
        g.post(&token, "/v1.0/me/events", event("Delta new", "2026-12-20T10:00:00", "2026-12-20T11:00:00")).await;
    assert_eq!(s, 201, "{created}");
    let (s, outside) =
        g.post(&token, "/v1.0/me/events", event("Far away", "2028-03-01T10:00:00", "2028-03-01T11:00:00")).await;
    assert_eq!(s, 201, "{outside}");
    let by_subject = |subject: &str| {
        items.iter().find(|e| e["subject"] == subject).unwrap_or_else(|| panic!("{subject}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let updated = by_subject("Quarterly review");
    let deleted = by_subject("Summer planning");
    let moved =
        items.iter().find(|e| e["id"] != updated && e["id"] != deleted).unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(
        g.patch(&token, &format!("/v1.0/me/events/{updated}"), json!({"subject": "Quarterly review (moved)"})).await.0,
        200
    );
    assert_eq!(g.delete(&token, &format!("/v1.0/me/events/{deleted}")).await.0, 204);
    let later = json!({"start": {"dateTime": "2029-01-01T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2029-01-01T11:00:00", "timeZone": "UTC"}});
    assert_eq!(g.patch(&token, &format!("/v1.0/me/events/{moved}"), later).await.0, 200);

    let (changes, sizes, delta2) = round(&g, &token, &delta, 2).await;
    assert_eq!(sizes, vec![2, 2, 1], "five changes in pages of 2");
    let created_id = created["id"].as_str().unwrap().to_string();
    let outside_id = outside["id"].as_str().unwrap().to_string();
    assert_eq!(
        ids(&changes),
        BTreeSet::from([created_id.clone(), outside_id.clone(), updated.clone(), deleted.clone(), moved.clone()])
    );
    assert_eq!(removed(&changes), BTreeSet::from([outside_id, deleted.clone(), moved]), "outside the window or gone");
    let gone = changes.iter().find(|e| e["id"] == deleted.as_str()).unwrap();
    assert_eq!(
        gone,
        &json!({"@odata.type": "#microsoft.graph.event", "id": deleted, "@removed": {"reason": "deleted"}})
    );
    let upd = changes.iter().find(|e| e["id"] == updated.as_str()).unwrap();
    assert_eq!(upd["subject"], "Quarterly review (moved)");
    assert_eq!(changes.iter().find(|e| e["id"] == created_id.as_str()).unwrap()["subject"], "Delta new");

    // Nothing changed since: an empty round with a fresh link; the old link still replays.
    let (none, sizes, delta3) = round(&g, &token, &delta2, 10).await;
    assert!(none.is_empty() && sizes == vec![0], "{none:?}");
    assert_ne!(delta3, delta2);
    let (again, _, _) = round(&g, &token, &delta, 10).await;
    assert_eq!(ids(&again), ids(&changes), "a delta link can be replayed");

    // The SDKs' function syntax, `delta()`, is the same endpoint.
    let (s, body, _) = page(&g, &token, &format!("/v1.0/me/calendarView/delta()?{WINDOW}"), Some(50)).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["@odata.deltaLink"].is_string(), "{body}");

    // $select narrows what comes back; the removal shape stays.
    let (s, body, _) = page(&g, &token, &format!("{start}&$select=subject"), Some(50)).await;
    assert_eq!(s, 200, "{body}");
    let one = &body["value"][0];
    assert!(one["subject"].is_string() && one.get("body").is_none() && one["id"].is_string(), "{one}");
}

/// Tokens are opaque, sealed and bound: altered, foreign (another caller, another mailbox,
/// another window) and malformed tokens are all `410 SyncStateNotFound`; bad requests are 400;
/// permissions are those of calendarView.
#[tokio::test]
async fn tokens_are_bound_to_their_caller_and_errors_are_graphs() {
    let g = GraphApi::with_world("calendar_world.toml");
    let token = alice(&g, READ_APP).await;
    let (_, _, delta) = round(&g, &token, &format!("/v1.0/me/calendarView/delta?{WINDOW}"), 50).await;
    let raw = delta.split("$deltatoken=").nth(1).unwrap().to_string();
    let expect_gone = |(status, body, _): (u16, Value, Option<String>), why: &str| {
        assert_eq!(status, 410, "{why}: {body}");
        assert_eq!(body["error"]["code"], "SyncStateNotFound", "{why}: {body}");
    };
    let mut altered = raw.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    expect_gone(page(&g, &token, &format!("/v1.0/me/calendarView/delta?$deltatoken={altered}"), None).await, "altered");
    expect_gone(page(&g, &token, "/v1.0/me/calendarView/delta?$deltatoken=not-a-token", None).await, "malformed");
    expect_gone(
        page(&g, &token, &format!("/v1.0/me/calendarView/delta?$skiptoken={raw}"), None).await,
        "a delta token as a skip token",
    );
    let other_app = alice(&g, WRITE_APP).await;
    expect_gone(page(&g, &other_app, &delta, None).await, "another client app");
    let daemon = g.app_token(CONTOSO, DAEMON_READ).await;
    expect_gone(
        page(&g, &daemon, &format!("/v1.0/users/{ALICE}/calendarView/delta?$deltatoken={raw}"), None).await,
        "app-only",
    );
    let (s, body, _) = page(&g, &daemon, &format!("/v1.0/users/{BOB}/calendarView/delta?{WINDOW}"), None).await;
    assert_eq!(s, 200, "{body}");
    let bobs = body["@odata.deltaLink"].as_str().unwrap().split("$deltatoken=").nth(1).unwrap().to_string();
    expect_gone(
        page(&g, &daemon, &format!("/v1.0/users/{ALICE}/calendarView/delta?$deltatoken={bobs}"), None).await,
        "another mailbox",
    );
    let other_window = "startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-02-01T00:00:00Z";
    expect_gone(page(&g, &token, &format!("{delta}&{other_window}"), None).await, "another window");

    // Request errors.
    let (s, body, _) = page(&g, &token, "/v1.0/me/calendarView/delta", None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (400, Some("ErrorInvalidParameter")), "{body}");
    let (s, body, _) =
        page(&g, &token, &format!("/v1.0/me/calendarView/delta?{WINDOW}&$filter=subject eq 'x'"), None).await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("$filter"), "{body}");

    // Permissions as for calendarView: ReadBasic hides bodies; no calendar permission is 403;
    // a delegated caller reaches only its own mailbox.
    let basic = alice(&g, BASIC_APP).await;
    let (s, body, _) = page(&g, &basic, &format!("/v1.0/me/calendarView/delta?{WINDOW}"), None).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["value"].as_array().unwrap().iter().all(|e| e.get("body").is_none() && e.get("attendees").is_none()));
    let profile = alice(&g, PROFILE_APP).await;
    assert_eq!(page(&g, &profile, &format!("/v1.0/me/calendarView/delta?{WINDOW}"), None).await.0, 403);
    assert_eq!(page(&g, &token, &format!("/v1.0/users/{BOB}/calendarView/delta?{WINDOW}"), None).await.0, 403);
}

/// Tokens are sealed with the server's key, not kept in memory: a delta link from before a
/// restart still works after it.
#[tokio::test]
async fn delta_links_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("accord-delta-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::launch_with_env(dir.clone(), &world(), &[], &[]);
    let g = GraphApi { c: server.client(), server };
    let token = alice(&g, READ_APP).await;
    let (_, _, delta) = round(&g, &token, &format!("/v1.0/me/calendarView/delta?{WINDOW}"), 50).await;
    let path = delta.split_once("/v1.0/").map(|(_, p)| format!("/v1.0/{p}")).unwrap();
    drop(g);

    let server = TestServer::launch_with_env(dir, &world(), &[], &[]);
    let g = GraphApi { c: server.client(), server };
    let token = alice(&g, READ_APP).await;
    let (status, body, _) = page(&g, &token, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.deltaLink"].is_string(), "{body}");
}
