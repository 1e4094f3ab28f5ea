//! The Graph-compatible calendar API over real HTTPS against a real `accord` process: each
//! permission level, tenant isolation, OData options, paging, calendar views, time zones and
//! writes. The world is tests/fixtures/calendar_world.toml.
//!
//! The dates here are fixed on purpose and never meet today's: the fixture's events are
//! absolute, and every window, filter and write names its own dates, so each is compared only
//! with another fixed date (run under `faketime` 700 days back and 20 years on: the same
//! results). A test that needs "now" would use relative scenario times or the server's clock.

mod support;

use serde_json::{json, Value};
use support::graph_api::GraphApi;

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const FABRIKAM: &str = "eeeeeeee-0000-4000-8000-000000000002";
const ALICE: &str = "eeeeeeee-0000-4000-8000-0000000000a1";
const BOB: &str = "eeeeeeee-0000-4000-8000-0000000000b1";
const FRANK: &str = "eeeeeeee-0000-4000-8000-0000000000f1";
const BASIC_APP: &str = "ffffffff-0000-4000-8000-000000000001";
const READ_APP: &str = "ffffffff-0000-4000-8000-000000000002";
const WRITE_APP: &str = "ffffffff-0000-4000-8000-000000000003";
const PROFILE_APP: &str = "ffffffff-0000-4000-8000-000000000004";
const DAEMON_READ: (&str, &str) = ("ffffffff-0000-4000-8000-000000000005", "reader-secret-1");
const DAEMON_WRITE: (&str, &str) = ("ffffffff-0000-4000-8000-000000000006", "writer-secret-1");
const DAEMON_DIRECTORY: (&str, &str) = ("ffffffff-0000-4000-8000-000000000007", "directory-secret-1");
const FABRIKAM_DAEMON: (&str, &str) = ("ffffffff-0000-4000-8000-000000000008", "fabrikam-secret-1");

type Graph = GraphApi;

impl Graph {
    fn start() -> Graph {
        GraphApi::with_world("calendar_world.toml")
    }

    /// A delegated Graph token by ROPC through a public client.
    async fn user_token(&self, app: &str, upn: &str, password: &str) -> String {
        self.ropc_token(CONTOSO, app, upn, password).await
    }

    async fn alice(&self, app: &str) -> String {
        self.user_token(app, "alice@contoso.test", "alice-password-1").await
    }

    async fn get_tz(&self, token: &str, path: &str, zone: &str) -> (u16, Value, Option<String>) {
        let res = self
            .c
            .get(self.url(path))
            .bearer_auth(token)
            .header("Prefer", format!("outlook.timezone=\"{zone}\""))
            .send()
            .await
            .unwrap();
        let applied = res.headers().get("preference-applied").map(|v| v.to_str().unwrap().to_string());
        let status = res.status().as_u16();
        (status, res.json().await.unwrap(), applied)
    }
}

fn subjects(body: &Value) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|e| e["subject"].as_str().unwrap().to_string()).collect()
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let inner = &body["error"]["innerError"];
    assert!(inner["date"].is_string() && inner["request-id"].is_string() && inner["client-request-id"].is_string());
}

#[tokio::test]
async fn authentication_errors_and_request_ids() {
    let g = Graph::start();
    // No token: 401 with WWW-Authenticate and Graph's error body.
    let res = g.c.get(g.server.url("/v1.0/me/events")).header("client-request-id", "my-call-1").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert_eq!(
        www,
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            g.server.url("/common/oauth2/v2.0/authorize")
        ),
        "no token: a challenge without an error"
    );
    let request_id = res.headers()["request-id"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["client-request-id"], "my-call-1");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_graph_error(&body, "InvalidAuthenticationToken");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert_eq!(body["error"]["innerError"]["client-request-id"], "my-call-1");

    // A tampered token, and a token for another audience (an id token), are refused the same way.
    let token = g.alice(READ_APP).await;
    let (status, body) = g.get(&format!("{token}x"), "/v1.0/me/events").await;
    assert_eq!(status, 401);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    let res = g.c.get(g.server.url("/v1.0/me")).bearer_auth(format!("{token}x")).send().await.unwrap();
    let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(www.ends_with(", error=\"invalid_token\""), "a bad token: {www}");
    // A valid token under another scheme is no bearer token.
    for scheme in ["Basic", "DPoP", "Bearerx"] {
        let res =
            g.c.get(g.server.url("/v1.0/me"))
                .header("authorization", format!("{scheme} {token}"))
                .send()
                .await
                .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{scheme}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["message"], "Access token is empty.", "{scheme}");
    }
    let res =
        g.c.post(g.server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "password"),
                ("client_id", BASIC_APP),
                ("username", "alice@contoso.test"),
                ("password", "alice-password-1"),
                ("scope", "openid User.Read"),
            ])
            .send()
            .await
            .unwrap();
    let tokens: Value = res.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("an id token");
    let (status, body) = g.get(id_token, "/v1.0/me").await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("audience"), "{body}");

    // Without a client-request-id, Graph echoes the request id.
    let res = g.c.get(g.server.url("/v1.0/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["client-request-id"], res.headers()["request-id"]);

    // Unknown segments and methods.
    let (status, body) = g.get(&token, "/v1.0/me/mailFolders").await;
    assert_eq!(status, 400);
    assert_graph_error(&body, "BadRequest");
    assert!(body["error"]["message"].as_str().unwrap().contains("'mailFolders'"), "{body}");
    let (status, body) = g.send(g.c.put(g.server.url("/v1.0/me/events")).bearer_auth(&token)).await;
    assert_eq!(status, 405);
    assert!(body["error"]["code"].is_string());
}

#[tokio::test]
async fn delegated_permission_levels() {
    let g = Graph::start();
    let basic = g.alice(BASIC_APP).await;
    let read = g.alice(READ_APP).await;
    let write = g.alice(WRITE_APP).await;
    let profile = g.alice(PROFILE_APP).await;

    // /me with User.Read.
    let (status, me) = g.get(&basic, "/v1.0/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], ALICE);
    assert_eq!(me["userPrincipalName"], "alice@contoso.test");
    assert_eq!(me["displayName"], "Alice Adams");
    assert_eq!((me["givenName"].as_str(), me["surname"].as_str()), (Some("Alice"), Some("Adams")));
    assert_eq!(me["jobTitle"], Value::Null);
    assert_eq!(me["businessPhones"], json!([]));
    assert!(me["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users/$entity"));
    let (_, me) = g.get(&basic, "/v1.0/me?$select=displayName,mail").await;
    assert_eq!(me["mail"], "alice@contoso.test");
    assert!(me.get("surname").is_none());
    assert!(me["@odata.context"].as_str().unwrap().ends_with("#users(displayName,mail)/$entity"));

    // Another user's profile needs User.ReadBasic.All (the writer app has it); one's own does not.
    let (status, body) = g.get(&read, &format!("/v1.0/users/{BOB}")).await;
    assert_eq!(status, 403);
    assert_graph_error(&body, "Authorization_RequestDenied");
    assert!(body["error"]["message"].as_str().unwrap().contains("User.ReadBasic.All"));
    assert_eq!(g.get(&read, "/v1.0/users/alice@contoso.test").await.0, 200);
    let (status, bob) = g.get(&write, "/v1.0/users/bob@contoso.test").await;
    assert_eq!((status, bob["id"].as_str()), (200, Some(BOB)));

    // No calendar permission: 403 naming what is needed.
    let (status, body) = g.get(&profile, "/v1.0/me/events").await;
    assert_eq!(status, 403);
    assert_graph_error(&body, "ErrorAccessDenied");
    assert!(body["error"]["message"].as_str().unwrap().contains("Calendars.Read"), "{body}");

    // Calendars.ReadBasic: events without body, bodyPreview, attendees, onlineMeeting.
    let (status, page) = g.get(&basic, "/v1.0/me/events?$filter=subject eq 'Quarterly review'").await;
    assert_eq!(status, 200, "{page}");
    let ev = &page["value"][0];
    assert_eq!(ev["subject"], "Quarterly review");
    assert_eq!(ev["start"], json!({"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}));
    assert_eq!(ev["organizer"]["emailAddress"], json!({"name": "Alice Adams", "address": "alice@contoso.test"}));
    assert_eq!(ev["isOnlineMeeting"], true);
    for hidden in ["body", "bodyPreview", "attendees", "onlineMeeting"] {
        assert!(ev.get(hidden).is_none(), "{hidden} must not show with Calendars.ReadBasic: {ev}");
    }
    // … even when selected, and filters cannot probe them.
    let (_, page) =
        g.get(&basic, "/v1.0/me/events?$select=subject,attendees&$filter=subject eq 'Quarterly review'").await;
    assert!(page["value"][0].get("attendees").is_none());
    let (_, page) =
        g.get(&basic, "/v1.0/me/events?$filter=attendees/any(a: a/emailAddress/address eq 'bob@contoso.test')").await;
    assert_eq!(page["value"], json!([]));

    // Calendars.Read: the whole event, as Graph shapes it.
    let (_, page) = g.get(&read, "/v1.0/me/events?$filter=subject eq 'Quarterly review'").await;
    let ev = &page["value"][0];
    assert_eq!(ev["attendees"][0]["emailAddress"], json!({"name": "Bob Brown", "address": "bob@contoso.test"}));
    assert_eq!(ev["attendees"][1]["emailAddress"]["address"], "dana@partner.test");
    assert_eq!(ev["attendees"][0]["type"], "required");
    assert_eq!(ev["attendees"][0]["status"]["response"], "none");
    assert_eq!(ev["onlineMeeting"]["joinUrl"], "https://meet.example/quarterly");
    assert_eq!(ev["body"]["content"], "");
    for (k, v) in [("isCancelled", json!(false)), ("showAs", json!("busy")), ("type", json!("singleInstance"))] {
        assert_eq!(ev[k], v, "{k}");
    }
    for k in ["id", "webLink", "createdDateTime", "lastModifiedDateTime", "iCalUId", "bodyPreview", "@odata.etag"] {
        assert!(ev[k].is_string(), "{k}: {ev}");
    }
    let (_, page) =
        g.get(&read, "/v1.0/me/events?$filter=attendees/any(a: a/emailAddress/address eq 'bob@contoso.test')").await;
    assert_eq!(subjects(&page), ["Quarterly review"]);

    // A single event, through both paths.
    let id = ev["id"].as_str().unwrap();
    let (status, one) = g.get(&read, &format!("/v1.0/me/events/{id}")).await;
    assert_eq!((status, one["subject"].as_str()), (200, Some("Quarterly review")));
    assert!(one["@odata.context"].as_str().unwrap().ends_with(&format!("#users('{ALICE}')/events/$entity")));
    let (status, _) = g.get(&read, &format!("/v1.0/me/calendar/events/{id}")).await;
    assert_eq!(status, 200);
    let (status, body) = g.get(&read, "/v1.0/me/events/not-an-id").await;
    assert_eq!(status, 400);
    assert_graph_error(&body, "ErrorInvalidIdMalformed");

    // Own calendar through /users/{id|upn} works with delegated permissions; another user's does not.
    for path in [format!("/v1.0/users/{ALICE}/events"), "/v1.0/users/ALICE@contoso.test/calendar/events".into()] {
        let (status, page) = g.get(&read, &path).await;
        assert_eq!((status, page["value"].as_array().unwrap().len()), (200, 10), "{path}");
    }
    for path in [
        format!("/v1.0/users/{BOB}/events"),
        "/v1.0/users/bob@contoso.test/calendarView?startDateTime=2026-01-01&endDateTime=2027-01-01".into(),
    ] {
        let (status, body) = g.get(&write, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_graph_error(&body, "ErrorAccessDenied");
    }
    // Bob's event by id, through Alice's calendar: not found.
    let bob_token = g.user_token(READ_APP, "bob@contoso.test", "bob-password-1").await;
    let (_, bobs) = g.get(&bob_token, "/v1.0/me/events").await;
    let bob_event = bobs["value"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = g.get(&read, &format!("/v1.0/me/events/{bob_event}")).await;
    assert_eq!(status, 404);
    assert_graph_error(&body, "ErrorItemNotFound");
}

#[tokio::test]
async fn application_permissions_and_tenant_isolation() {
    let g = Graph::start();
    let reader = g.app_token(CONTOSO, DAEMON_READ).await;
    let directory = g.app_token(CONTOSO, DAEMON_DIRECTORY).await;
    let fabrikam = g.app_token(FABRIKAM, FABRIKAM_DAEMON).await;

    // Application Calendars.Read: any user of the token's tenant, by id or UPN.
    let (status, page) = g.get(&reader, &format!("/v1.0/users/{BOB}/events")).await;
    assert_eq!((status, subjects(&page)), (200, vec!["Bob's dentist".to_string()]));
    assert!(page["@odata.context"].as_str().unwrap().ends_with(&format!("/v1.0/$metadata#users('{BOB}')/events")));
    let (status, page) = g.get(&reader, "/v1.0/users/alice@contoso.test/calendar/events?$top=3").await;
    assert_eq!((status, page["value"].as_array().unwrap().len()), (200, 3));
    assert!(page["value"][0]["attendees"].is_array(), "Calendars.Read shows attendees");
    let (status, user) = g.get(&reader, &format!("/v1.0/users/{ALICE}")).await;
    assert_eq!((status, user["displayName"].as_str()), (200, Some("Alice Adams")));

    // /me means nothing without a user.
    let (status, body) = g.get(&reader, "/v1.0/me/events").await;
    assert_eq!(status, 400);
    assert_graph_error(&body, "BadRequest");

    // No calendar permission: 403 naming it; users still readable with User.Read.All.
    let (status, body) = g.get(&directory, &format!("/v1.0/users/{ALICE}/events")).await;
    assert_eq!(status, 403);
    assert_graph_error(&body, "ErrorAccessDenied");
    assert!(body["error"]["message"].as_str().unwrap().contains("Calendars.Read"));
    assert_eq!(g.get(&directory, &format!("/v1.0/users/{ALICE}")).await.0, 200);
    let writer = g.app_token(CONTOSO, DAEMON_WRITE).await;
    let (status, body) = g.get(&writer, &format!("/v1.0/users/{ALICE}")).await;
    assert_eq!(status, 403, "Calendars.ReadWrite alone does not read profiles");
    assert!(body["error"]["message"].as_str().unwrap().contains("User.Read.All"));

    // Across tenants: the other tenant's users do not exist, whichever way they are named.
    for path in [
        format!("/v1.0/users/{FRANK}/events"),
        "/v1.0/users/frank@fabrikam.test/events".into(),
        format!("/v1.0/users/{FRANK}/calendarView?startDateTime=2026-01-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z"),
    ] {
        let (status, body) = g.get(&reader, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains("Fabrikam board"));
    }
    let (status, body) = g.get(&reader, &format!("/v1.0/users/{FRANK}")).await;
    assert_eq!(status, 404);
    assert_graph_error(&body, "Request_ResourceNotFound");
    for path in [format!("/v1.0/users/{ALICE}/events"), "/v1.0/users/alice@contoso.test".into()] {
        let (status, body) = g.get(&fabrikam, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains("Quarterly"));
    }
    let (status, page) = g.get(&fabrikam, "/v1.0/users/frank@fabrikam.test/events").await;
    assert_eq!((status, subjects(&page)), (200, vec!["Fabrikam board meeting".to_string()]));

    // A delegated Contoso user cannot reach Fabrikam either.
    let alice = g.alice(WRITE_APP).await;
    assert_eq!(g.get(&alice, &format!("/v1.0/users/{FRANK}/events")).await.0, 404);
    assert_eq!(g.get(&alice, "/v1.0/users/frank@fabrikam.test").await.0, 404);
}

#[tokio::test]
async fn odata_query_options_and_paging() {
    let g = Graph::start();
    let read = g.alice(READ_APP).await;

    // Default page size 10; follow @odata.nextLink to the end.
    let mut url = "/v1.0/me/events".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = g.get(&read, &url).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(subjects(&page));
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&g.server.base), "absolute, from the public URL: {next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (2, 13));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 13, "no event twice: {seen:?}");

    // $top with $orderby and $filter: the options travel in the nextLink.
    let mut url = "/v1.0/me/events?$top=4&$orderby=start/dateTime desc&$filter=startswith(subject,'Standup')&$select=subject,start&$count=true".to_string();
    let mut seen = Vec::new();
    loop {
        let (status, page) = g.get(&read, &url).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["@odata.count"], 10);
        assert!(page["@odata.context"].as_str().unwrap().ends_with(&format!("users('{ALICE}')/events(subject,start)")));
        for ev in page["value"].as_array().unwrap() {
            let keys: Vec<&str> = ev.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["@odata.etag", "id", "start", "subject"], "$select");
        }
        seen.extend(subjects(&page));
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=10).rev().map(|n| format!("Standup {n:02}")).collect();
    assert_eq!(seen, expected);

    // $filter on start/dateTime (UTC), with and/or/not and parentheses.
    let (_, page) = g
        .get(&read, "/v1.0/me/events?$filter=start/dateTime ge '2026-12-01T00:00:00' and start/dateTime lt '2026-12-02T00:00:00'&$orderby=start/dateTime")
        .await;
    assert_eq!(subjects(&page), ["Standup 01", "Quarterly review"]);
    let (_, page) = g
        .get(&read, "/v1.0/me/events?$filter=not (startswith(subject,'Standup') or start/dateTime gt 2026-12-05T00:00:00Z)&$orderby=subject")
        .await;
    assert_eq!(subjects(&page), ["Quarterly review", "Summer planning"]);
    let (_, page) = g.get(&read, "/v1.0/me/events?$filter=isOnlineMeeting eq true").await;
    assert_eq!(subjects(&page), ["Quarterly review"]);
    let (_, page) = g.get(&read, "/v1.0/me/events?$orderby=end/dateTime desc&$top=1").await;
    assert_eq!(subjects(&page), ["Standup 10"]);

    // Bad OData: 400 naming the problem.
    for (query, needle) in [
        ("$select=colour", "'colour'"),
        ("$top=0", "between 1 and 999"),
        ("$top=1000", "between 1 and 999"),
        ("$skip=x", "$skip"),
        ("$orderby=body desc", "'body'"),
        ("$orderby=subject upward", "'upward'"),
        ("$filter=subject eq", "Invalid filter clause"),
        ("$filter=subject eq 3", "incompatible types"),
        ("$filter=start/dateTime ge 'soon'", "not a valid date-time"),
        ("$filter=nope eq 'x'", "'nope'"),
        ("$filter=(subject eq 'x'", "expected ')'"),
        ("$expand=attachments", "$expand"),
        ("$top=1&$top=2", "more than once"),
    ] {
        let (status, body) = g.get(&read, &format!("/v1.0/me/events?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_graph_error(&body, "BadRequest");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query}: {message}");
    }
}

#[tokio::test]
async fn calendar_view_and_time_zones() {
    let g = Graph::start();
    let read = g.alice(READ_APP).await;

    // Overlap semantics: events that end after the start and begin before the end.
    let (status, page) =
        g.get(&read, "/v1.0/me/calendarView?startDateTime=2026-12-08T00:00:00Z&endDateTime=2026-12-09T00:00:00Z").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(subjects(&page), ["Offsite workshop", "Standup 08"]);
    assert!(page["@odata.context"].as_str().unwrap().ends_with(&format!("users('{ALICE}')/calendarView")));
    // An event ending exactly at the window's start is outside it.
    let (_, page) = g
        .get(&read, "/v1.0/me/calendar/calendarView?startDateTime=2026-12-01T09:30:00&endDateTime=2026-12-01T12:00:00")
        .await;
    assert_eq!(subjects(&page), Vec::<String>::new());
    // Offsets are honoured (+ encoded).
    let (_, page) = g
        .get(
            &read,
            "/v1.0/me/calendarView?startDateTime=2026-12-01T10:00:00%2B01:00&endDateTime=2026-12-01T10:15:00%2B01:00",
        )
        .await;
    assert_eq!(subjects(&page), ["Quarterly review"]);

    // Paging a view with $skiptoken to the end.
    let mut url =
        "/v1.0/me/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z&$top=5".to_string();
    let mut seen = Vec::new();
    loop {
        let (status, page) = g.get(&read, &url).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(subjects(&page));
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken=") && next.contains("startDateTime="), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 12, "all but the July event: {seen:?}");

    // Missing or bad parameters: 400 naming them.
    for (query, needle) in [
        ("", "startDateTime"),
        ("startDateTime=2026-12-01T00:00:00Z", "'endDateTime' is missing"),
        ("endDateTime=2026-12-01T00:00:00Z", "'startDateTime' is missing"),
        ("startDateTime=yesterday&endDateTime=2026-12-01T00:00:00Z", "'yesterday'"),
        ("startDateTime=2026-12-02T00:00:00Z&endDateTime=2026-12-01T00:00:00Z", "later than"),
    ] {
        let (status, body) = g.get(&read, &format!("/v1.0/me/calendarView?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{query}: {body}");
    }

    // Prefer: outlook.timezone with a Windows name: winter is UTC-8, summer UTC-7.
    let path =
        "/v1.0/me/events?$filter=subject eq 'Quarterly review' or subject eq 'Summer planning'&$orderby=start/dateTime";
    let (status, page, applied) = g.get_tz(&read, path, "Pacific Standard Time").await;
    assert_eq!(status, 200);
    assert_eq!(applied.as_deref(), Some("outlook.timezone=\"Pacific Standard Time\""));
    assert_eq!(
        page["value"][0]["start"],
        json!({"dateTime": "2026-07-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"})
    );
    assert_eq!(
        page["value"][1]["start"],
        json!({"dateTime": "2026-12-01T01:00:00.0000000", "timeZone": "Pacific Standard Time"})
    );
    assert_eq!(page["value"][1]["end"]["dateTime"], "2026-12-01T01:30:00.0000000");
    // An IANA name.
    let (_, page, applied) = g.get_tz(&read, path, "Europe/Paris").await;
    assert_eq!(applied.as_deref(), Some("outlook.timezone=\"Europe/Paris\""));
    assert_eq!(page["value"][0]["start"]["dateTime"], "2026-07-01T18:00:00.0000000");
    assert_eq!(page["value"][1]["start"]["dateTime"], "2026-12-01T10:00:00.0000000");
    assert_eq!(page["value"][1]["start"]["timeZone"], "Europe/Paris");
    // An unknown zone: UTC, and no Preference-Applied.
    let (_, page, applied) = g.get_tz(&read, path, "Atlantis Standard Time").await;
    assert_eq!(applied, None);
    assert_eq!(page["value"][1]["start"]["timeZone"], "UTC");
    // Single events and views honour it too.
    let (_, page, _) = g
        .get_tz(
            &read,
            "/v1.0/me/calendarView?startDateTime=2026-12-01T09:00:00Z&endDateTime=2026-12-01T09:10:00Z",
            "Tokyo Standard Time",
        )
        .await;
    assert_eq!(page["value"][0]["start"]["dateTime"], "2026-12-01T18:00:00.0000000");
    let id = page["value"][0]["id"].as_str().unwrap();
    let (_, one, applied) = g.get_tz(&read, &format!("/v1.0/me/events/{id}"), "Asia/Kolkata").await;
    assert!(applied.is_some());
    assert_eq!(one["end"]["dateTime"], "2026-12-01T15:00:00.0000000");
}

#[tokio::test]
async fn create_update_and_delete_events() {
    let g = Graph::start();
    let write = g.alice(WRITE_APP).await;
    let read = g.alice(READ_APP).await;

    let new_event = json!({
        "subject": "Design review",
        "body": {"contentType": "HTML", "content": "<p>Agenda: <b>the API</b></p>"},
        "start": {"dateTime": "2026-12-15T09:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-12-15T10:00:00", "timeZone": "Pacific Standard Time"},
        "location": {"displayName": "Room 4"},
        "attendees": [{"emailAddress": {"address": "bob@contoso.test", "name": "Bob"}, "type": "required"}],
        "isOnlineMeeting": true,
        "onlineMeetingProvider": "teamsForBusiness",
    });
    // Calendars.Read cannot write.
    let (status, body) = g.send(g.c.post(g.server.url("/v1.0/me/events")).bearer_auth(&read).json(&new_event)).await;
    assert_eq!(status, 403);
    assert_graph_error(&body, "ErrorAccessDenied");
    assert!(body["error"]["message"].as_str().unwrap().contains("Calendars.ReadWrite"));

    // Calendars.ReadWrite creates in the signed-in user's calendar.
    let res =
        g.c.post(g.server.url("/v1.0/me/events"))
            .bearer_auth(&write)
            .header("Prefer", "outlook.timezone=\"Pacific Standard Time\"")
            .json(&new_event)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["subject"], "Design review");
    assert_eq!(
        created["start"],
        json!({"dateTime": "2026-12-15T09:00:00.0000000", "timeZone": "Pacific Standard Time"})
    );
    assert_eq!(created["bodyPreview"], "Agenda: the API");
    assert_eq!(created["body"]["contentType"], "html");
    assert_eq!(created["location"]["displayName"], "Room 4");
    assert_eq!(created["attendees"][0]["emailAddress"], json!({"name": "Bob Brown", "address": "bob@contoso.test"}));
    assert_eq!(created["isOnlineMeeting"], true);
    assert!(created["onlineMeeting"]["joinUrl"].is_string());
    let id = created["id"].as_str().unwrap().to_string();

    // Stored in UTC, readable by others with the right permission.
    let (_, one) = g.get(&read, &format!("/v1.0/me/events/{id}")).await;
    assert_eq!(one["start"]["dateTime"], "2026-12-15T17:00:00.0000000");
    let daemon = g.app_token(CONTOSO, DAEMON_READ).await;
    let (status, one) = g.get(&daemon, &format!("/v1.0/users/{ALICE}/events/{id}")).await;
    assert_eq!((status, one["subject"].as_str()), (200, Some("Design review")));

    // Update: only the fields given change.
    let (status, updated) = g
        .send(
            g.c.patch(g.server.url(&format!("/v1.0/me/calendar/events/{id}")))
                .bearer_auth(&write)
                .json(&json!({"subject": "Design review (moved)", "end": {"dateTime": "2026-12-15T19:00:00Z", "timeZone": "UTC"}, "isOnlineMeeting": false})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["subject"], "Design review (moved)");
    assert_eq!(updated["end"]["dateTime"], "2026-12-15T19:00:00.0000000");
    assert_eq!(updated["start"]["dateTime"], "2026-12-15T17:00:00.0000000");
    assert_eq!(updated["location"]["displayName"], "Room 4");
    assert_eq!(updated["onlineMeeting"], Value::Null);
    assert!(updated["lastModifiedDateTime"].as_str() >= created["lastModifiedDateTime"].as_str());

    // Validation: Graph-style 400s naming the field.
    for (payload, needle) in [
        (json!({"subject": "x"}), "'start' is required"),
        (json!({"subject": "x", "start": {"dateTime": "2026-12-15T09:00:00", "timeZone": "UTC"}}), "'end' is required"),
        (
            json!({"start": {"dateTime": "2026-12-15T09:00:00"}, "end": {"dateTime": "2026-12-15T10:00:00", "timeZone": "UTC"}}),
            "'start.timeZone'",
        ),
        (
            json!({"start": {"dateTime": "15/12/2026", "timeZone": "UTC"}, "end": {"dateTime": "2026-12-15T10:00:00", "timeZone": "UTC"}}),
            "'start.dateTime'",
        ),
        (
            json!({"start": {"dateTime": "2026-12-15T11:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-12-15T10:00:00", "timeZone": "UTC"}}),
            "'end' must not be before",
        ),
        (
            json!({"start": {"dateTime": "2026-12-15T09:00:00", "timeZone": "Nowhere"}, "end": {"dateTime": "2026-12-15T10:00:00", "timeZone": "UTC"}}),
            "unknown time zone",
        ),
        (json!({"subject": 7}), "'subject'"),
        (json!({"attendees": [{"emailAddress": {"address": "bob"}}]}), "attendees[0].emailAddress.address"),
        (json!({"colour": "blue"}), "'colour'"),
    ] {
        let (status, body) = g.send(g.c.post(g.server.url("/v1.0/me/events")).bearer_auth(&write).json(&payload)).await;
        assert_eq!(status, 400, "{payload}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{payload}: {body}");
    }
    let (status, body) = g
        .send(
            g.c.post(g.server.url("/v1.0/me/events"))
                .bearer_auth(&write)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, 400);
    assert_graph_error(&body, "UnableToDeserializePostBody");
    let (status, body) = g
        .send(
            g.c.patch(g.server.url(&format!("/v1.0/me/events/{id}")))
                .bearer_auth(&write)
                .json(&json!({"end": {"dateTime": "2026-12-01T00:00:00Z", "timeZone": "UTC"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Read-only tokens cannot update or delete; delegated writers cannot touch others' calendars.
    let (status, _) = g
        .send(
            g.c.patch(g.server.url(&format!("/v1.0/me/events/{id}"))).bearer_auth(&read).json(&json!({"subject": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = g.send(g.c.delete(g.server.url(&format!("/v1.0/me/events/{id}"))).bearer_auth(&read)).await;
    assert_eq!(status, 403);
    let (status, _) =
        g.send(g.c.delete(g.server.url(&format!("/v1.0/users/{ALICE}/events/{id}"))).bearer_auth(&daemon)).await;
    assert_eq!(status, 403, "application Calendars.Read does not write");
    let (status, _) =
        g.send(g.c.post(g.server.url(&format!("/v1.0/users/{BOB}/events"))).bearer_auth(&write).json(&new_event)).await;
    assert_eq!(status, 403);

    // Delete: 204, then gone.
    let (status, body) = g.send(g.c.delete(g.server.url(&format!("/v1.0/me/events/{id}"))).bearer_auth(&write)).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = g.get(&read, &format!("/v1.0/me/events/{id}")).await;
    assert_eq!(status, 404);
    assert_graph_error(&body, "ErrorItemNotFound");
    let (status, _) = g.send(g.c.delete(g.server.url(&format!("/v1.0/me/events/{id}"))).bearer_auth(&write)).await;
    assert_eq!(status, 404);

    // Application Calendars.ReadWrite writes any user's calendar in its tenant, but no other tenant's.
    let booking = g.app_token(CONTOSO, DAEMON_WRITE).await;
    let (status, created) = g
        .send(g.c.post(g.server.url("/v1.0/users/bob@contoso.test/calendar/events")).bearer_auth(&booking).json(
            &json!({
                "subject": "Booked by the daemon",
                "start": {"dateTime": "2026-12-16T09:00:00", "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": "2026-12-16T09:30:00", "timeZone": "W. Europe Standard Time"},
            }),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["organizer"]["emailAddress"]["address"], "bob@contoso.test");
    assert_eq!(created["start"]["dateTime"], "2026-12-16T08:00:00.0000000");
    let bob = g.user_token(READ_APP, "bob@contoso.test", "bob-password-1").await;
    let (_, page) = g.get(&bob, "/v1.0/me/events?$orderby=start/dateTime").await;
    assert_eq!(subjects(&page), ["Bob's dentist", "Booked by the daemon"]);
    let (status, _) = g
        .send(g.c.post(g.server.url(&format!("/v1.0/users/{FRANK}/events"))).bearer_auth(&booking).json(&new_event))
        .await;
    assert_eq!(status, 404);
}
