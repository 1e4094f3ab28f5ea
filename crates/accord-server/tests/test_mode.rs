//! Test mode (`accord serve --test-mode`) through its real interface, the control API over
//! HTTPS: absent without the flag and refused on a public address; the virtual clock expires
//! tokens without sleeping; the decision journal says which rule decided; a scenario loads over
//! the world and a reset brings the world (and nothing else) back.
//! The world is tests/fixtures/calendar_world.toml. Its events, the windows and the event a test
//! writes have fixed dates that are only compared with each other; what is measured from now
//! (token lifetimes, the delta journal's retention, replication lag) is moved by the virtual
//! clock, never by the date the tests run on.

mod support;

use serde_json::{json, Value};
use support::graph_api::GraphApi;
use support::TestServer;

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const WRITE_APP: &str = "ffffffff-0000-4000-8000-000000000003";
const PROFILE_APP: &str = "ffffffff-0000-4000-8000-000000000004";
const DAEMON_READ: (&str, &str) = ("ffffffff-0000-4000-8000-000000000005", "reader-secret-1");

// The calendar-sync world's tenant, its vendor app, and two daemons: the vendor's sync daemon
// and an administrator's, which makes directory changes through Graph as a customer's would.
const SYNC_TENANT: &str = "eeeeeeee-5000-4000-8000-000000000001";
const SYNC_VENDOR: &str = "ffffffff-5000-4000-8000-000000000001";
const SYNC_DAEMON: (&str, &str) = ("ffffffff-5000-4000-8000-000000000003", "sync-daemon-secret-1");
const SYNC_ADMIN: (&str, &str) = ("ffffffff-5000-4000-8000-000000000004", "admin-daemon-secret-1");

fn start() -> GraphApi {
    start_in("calendar_world.toml")
}

/// A `--test-mode` server with `tests/fixtures/{world}` loaded.
fn start_in(world: &str) -> GraphApi {
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(world);
    let server = TestServer::start_test_mode(&world);
    GraphApi { c: server.client(), server }
}

async fn control(g: &GraphApi, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = g.c.request(method, g.url(&format!("/_accord/test{path}")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    g.send(req).await
}

/// An RFC 3339 time the control API returned (`now` of `/clock` and `/clock/advance`).
fn rfc3339(v: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(v.as_str().expect("an RFC 3339 string"), &time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The server's own clock: what a test measures from now is counted from here, never from
/// the date the test runs on.
async fn server_now(g: &GraphApi) -> time::OffsetDateTime {
    let (s, clock) = control(g, reqwest::Method::GET, "/clock", None).await;
    assert_eq!(s, 200, "{clock}");
    rfc3339(&clock["now"])
}

async fn ropc(g: &GraphApi, app: &str, scope: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "password"),
        ("client_id", app),
        ("username", "alice@contoso.test"),
        ("password", "alice-password-1"),
        ("scope", scope),
    ];
    g.try_token(CONTOSO, &form).await
}

#[tokio::test]
async fn the_control_api_is_absent_without_the_flag_and_refused_in_public() {
    let server = TestServer::start();
    for (method, path) in
        [("GET", "/_accord/test/clock"), ("POST", "/_accord/test/reset"), ("GET", "/_accord/test/journal")]
    {
        let res = server.client().request(method.parse().unwrap(), server.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 404, "{method} {path}");
    }
    let dir = std::env::temp_dir().join(format!("accord-test-mode-public-{}", support::uuid_like()));
    let dir = dir.to_string_lossy().to_string();
    let (code, _, err) = support::accord(&["serve", "--test-mode", "--listen", "0.0.0.0:0", "--data-dir", &dir]);
    assert_ne!(code, 0);
    assert!(err.contains("loopback") && err.contains("--test-mode-on-any-address"), "{err}");
}

/// Two hours pass in one call: the access token issued before is expired at Graph, a new one
/// works; the journal names the rule behind each decision.
#[tokio::test]
async fn the_clock_expires_tokens_and_the_journal_says_why() {
    let g = start();
    let (s, clock) = control(&g, reqwest::Method::GET, "/clock", None).await;
    assert_eq!((s, clock["offsetSeconds"].as_i64()), (200, Some(0)), "{clock}");

    let (s, body) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(g.get(&token, "/v1.0/me/events").await.0, 200);

    let (s, moved) = control(&g, reqwest::Method::POST, "/clock/advance", Some(json!({"hours": 2}))).await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["offsetSeconds"], 7200);
    assert!(moved["ran"]["rowsPurged"].is_number(), "the periodic jobs ran: {moved}");
    let after = rfc3339(&moved["now"]);
    assert!(after - rfc3339(&clock["now"]) >= time::Duration::hours(2));

    let (s, body) = g.get(&token, "/v1.0/me/events").await;
    assert_eq!(s, 401, "an hour-long token is expired two hours later: {body}");
    let (_, fresh) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    let fresh = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(g.get(&fresh, "/v1.0/me/events").await.0, 200, "a token issued on the moved clock works");
    let claims = support::jwt_claims(&fresh);
    assert!(claims["iat"].as_i64().unwrap() >= after.unix_timestamp() - 5, "stamped on Accord's clock: {claims}");

    // The journal: an issue, a consent that is missing (the profile app asks for calendars),
    // and an app-only decision, each with the rule that decided.
    let (s, body) = ropc(&g, PROFILE_APP, "https://graph.microsoft.com/Calendars.Read").await;
    assert_eq!(s, 400, "{body}");
    g.app_token(CONTOSO, DAEMON_READ).await;
    let (s, journal) = control(&g, reqwest::Method::GET, "/journal", None).await;
    assert_eq!(s, 200, "{journal}");
    let entries = journal["entries"].as_array().unwrap();
    let issued = entries.iter().find(|e| e["clientAppId"] == WRITE_APP && e["decision"] == "issue").unwrap();
    assert_eq!((issued["kind"].as_str(), issued["user"].as_str()), (Some("token"), Some("alice@contoso.test")));
    assert!(issued["asked"].as_str().unwrap().contains("https://graph.microsoft.com/.default"), "{issued}");
    let missing = entries.iter().find(|e| e["clientAppId"] == PROFILE_APP).unwrap_or_else(|| panic!("{journal}"));
    assert_eq!(
        (missing["decision"].as_str(), missing["aadsts"].as_u64()),
        (Some("refuse"), Some(65001)),
        "the journal says what the client was told: {missing}"
    );
    assert!(!missing["rule"].as_str().unwrap().is_empty() && !missing["ruleText"].as_str().unwrap().is_empty());
    let app_only = entries.iter().find(|e| e["kind"] == "app_only").unwrap();
    assert_eq!((app_only["decision"].as_str(), app_only["user"].as_str()), (Some("issue"), None));
    let last = journal["last"].as_u64().unwrap();
    let (_, newer) = control(&g, reqwest::Method::GET, &format!("/journal?after={last}"), None).await;
    assert!(newer["entries"].as_array().unwrap().is_empty(), "nothing after the last: {newer}");

    // The same through the CLI.
    let ca = g.server.data_dir.join("tls/ca.pem").to_string_lossy().to_string();
    let (code, out, err) =
        support::accord(&["test", "--url", &g.server.base, "--ca", &ca, "advance", "--minutes", "30"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"offsetSeconds\": 9000"), "{out}");
    let (code, out, err) =
        support::accord(&["test", "--url", &g.server.base, "--ca", &ca, "journal", "--after", &last.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"entries\": []"), "{out}");
    let (code, _, err) = support::accord(&["test", "--url", &g.server.base, "--ca", &ca, "advance"]);
    assert_ne!(code, 0);
    assert!(err.contains("advance by 1 second"), "{err}");

    // Bad requests are explained.
    for bad in [json!({}), json!({"days": -1}), json!({"weeks": 1}), json!({"days": 100_000})] {
        let (s, e) = control(&g, reqwest::Method::POST, "/clock/advance", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
}

/// A scenario loads over the world; a reset brings back exactly the world the server started
/// with: the added tenant is gone, refresh tokens issued before are gone, the journal is empty.
#[tokio::test]
async fn scenarios_load_and_reset_brings_the_world_back() {
    let g = start();
    let northwind = r#"
[[tenant]]
id = "eeeeeeee-9000-4000-8000-000000000009"
display_name = "Northwind"
domains = ["northwind.test"]

[[tenant.user]]
upn = "nina@northwind.test"
display_name = "Nina North"
password = "nina-password-1"
"#;
    let discovery = |domain: &str| g.c.get(g.url(&format!("/{domain}/v2.0/.well-known/openid-configuration"))).send();
    assert_ne!(discovery("northwind.test").await.unwrap().status(), 200);
    let res = g.c.post(g.url("/_accord/test/scenario")).body(northwind).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let loaded: Value = res.json().await.unwrap();
    assert_eq!(loaded["loaded"]["tenants"], 1, "{loaded}");
    assert_eq!(discovery("northwind.test").await.unwrap().status(), 200);

    let res = g.c.post(g.url("/_accord/test/scenario")).body("[[tenant]]\ndisplay_name = 5\n").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let e: Value = res.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("display_name"), "the problem is named: {e}");

    let (s, body) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    // A fixed date inside the world's calendar, never compared with today: the reset deletes it.
    let event = json!({"subject": "Made at run time",
        "start": {"dateTime": "2026-12-20T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-20T11:00:00", "timeZone": "UTC"}});
    let (s, made) = g.post(&token, "/v1.0/me/events", event).await;
    assert_eq!(s, 201, "{made}");
    let made = format!("/v1.0/me/events/{}", made["id"].as_str().unwrap());

    let (s, reset) = control(&g, reqwest::Method::POST, "/reset", None).await;
    assert_eq!(s, 200, "{reset}");
    assert_eq!(reset["loaded"]["tenants"], 2, "calendar_world.toml's two tenants: {reset}");
    let (_, journal) = control(&g, reqwest::Method::GET, "/journal", None).await;
    assert_eq!(journal["entries"], json!([]), "the journal starts again: {journal}");
    assert_ne!(discovery("northwind.test").await.unwrap().status(), 200, "the loaded tenant is gone");
    assert_eq!(discovery("contoso.test").await.unwrap().status(), 200);
    // What was made at run time is gone; the world's own events are back. Tokens stay
    // verifiable (the signing keys are kept).
    assert_eq!(g.get(&token, &made).await.0, 404);
    let (s, events) = g.get(&token, "/v1.0/me/events?$top=50").await;
    assert_eq!(s, 200, "{events}");
    assert_eq!(events["value"].as_array().unwrap().len(), 13, "alice's 13 events from the file");
    // The world works after the reset.
    let (s, body) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{body}");
}

/// Retention on Accord's clock: a delta link older than the journal's 30 days is
/// `410 SyncStateNotFound` a month later, without waiting a month.
#[tokio::test]
async fn a_month_later_a_delta_link_is_gone() {
    let g = start();
    let token = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let window = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z";
    let (s, page) = g.get(&token, &format!("/v1.0/me/calendarView/delta?{window}&$select=subject")).await;
    assert_eq!(s, 200, "{page}");
    // The window and the world's events have fixed dates, compared only with each other: the
    // first page holds all 13 of Alice's events (default pages of 50) and ends in the delta link.
    assert_eq!(page["value"].as_array().map(Vec::len), Some(13), "{page}");
    let link = page["@odata.deltaLink"].as_str().unwrap().to_string();
    assert_eq!(g.get(&token, &link).await.0, 200, "fresh");
    let (s, moved) = control(&g, reqwest::Method::POST, "/clock/advance", Some(json!({"days": 31}))).await;
    assert_eq!(s, 200, "{moved}");
    let token = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = g.get(&token, &link).await;
    assert_eq!((s, body["error"]["code"].as_str()), (410, Some("SyncStateNotFound")), "{body}");
}

/// Fault rules make the platform fail as the Microsoft cloud does, for exactly the requests
/// they match; each injected fault shows in /metrics and the journal.
#[tokio::test]
async fn fault_rules_fail_the_requests_they_match() {
    let g = start();
    let add = |rule: Value| {
        let g = &g;
        async move { control(g, reqwest::Method::POST, "/faults", Some(rule)).await }
    };
    // The token endpoint: AADSTS65001 once for this app, then normal service.
    let (s, rule) =
        add(json!({"match": {"endpoint": "token", "app": WRITE_APP}, "times": 1, "action": {"aadsts": 65001}})).await;
    assert_eq!(s, 201, "{rule}");
    let (s, body) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    assert_eq!(
        (s, body["error_codes"][0].as_u64(), body["suberror"].as_str()),
        (400, Some(65001), Some("consent_required")),
        "{body}"
    );
    let (s, body) = ropc(&g, WRITE_APP, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "the rule fired once: {body}");
    let token = body["access_token"].as_str().unwrap().to_string();

    // Graph: the second read of the events is throttled, the others are not.
    add(json!({"match": {"endpoint": "graph", "method": "GET", "path": "/v1.0/me/events"}, "after": 1, "times": 1,
               "action": {"status": 429, "retryAfter": 2}}))
    .await;
    assert_eq!(g.get(&token, "/v1.0/me/events").await.0, 200);
    let res = g.c.get(g.url("/v1.0/me/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "2");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    assert_eq!(g.get(&token, "/v1.0/me/events").await.0, 200);

    // A delay, and a dropped connection.
    add(json!({"match": {"endpoint": "graph", "path": "/v1.0/me/calendarView"}, "times": 1, "action": {"delayMs": 400}})).await;
    let started = std::time::Instant::now();
    let window = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z";
    assert_eq!(g.get(&token, &format!("/v1.0/me/calendarView?{window}")).await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    add(json!({"match": {"endpoint": "discovery"}, "times": 1, "action": {"drop": true}})).await;
    let discovery = g.url(&format!("/{CONTOSO}/v2.0/.well-known/openid-configuration"));
    let dropped = async { g.c.get(&discovery).send().await?.bytes().await }.await;
    assert!(dropped.is_err(), "the connection closed without an answer");
    assert_eq!(g.c.get(&discovery).send().await.unwrap().status(), 200, "once");

    // A rule that matches nothing stays at zero; counts, the journal and /metrics show the rest.
    add(json!({"match": {"app": "00000000-0000-0000-0000-00000000dead"}, "action": {"status": 500}})).await;
    g.get(&token, "/v1.0/me/events").await;
    let (_, list) = control(&g, reqwest::Method::GET, "/faults", None).await;
    let rules = list["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5, "{list}");
    assert_eq!((rules[0]["matched"].as_u64(), rules[0]["injected"].as_u64()), (Some(2), Some(1)), "{list}");
    assert_eq!((rules[4]["matched"].as_u64(), rules[4]["injected"].as_u64()), (Some(0), Some(0)), "{list}");
    let (_, journal) = control(&g, reqwest::Method::GET, "/journal", None).await;
    let faults: Vec<&Value> = journal["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "fault").collect();
    assert_eq!(faults.len(), 4, "{journal}");
    assert_eq!(faults[0]["rule"], rules[0]["id"]);
    assert_eq!(
        (faults[0]["aadsts"].as_u64(), faults[0]["clientAppId"].as_str()),
        (Some(65001), Some(WRITE_APP)),
        "{journal}"
    );
    assert_eq!(faults[0]["user"], "alice@contoso.test");
    let metrics = g.c.get(g.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_faults_injected_total{action=\"aadsts\"}"), "{metrics}");

    // Bad rules are refused and explained; DELETE removes every rule.
    for bad in [
        json!({"action": {}}),
        json!({"action": {"aadsts": 65001}}),
        json!({"match": {"endpoint": "mail"}, "action": {"drop": true}}),
    ] {
        let (s, e) = add(bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(control(&g, reqwest::Method::DELETE, "/faults", None).await.0, 204);
    let (_, list) = control(&g, reqwest::Method::GET, "/faults", None).await;
    assert_eq!(list["rules"], json!([]));
}

/// Replication lag: for 20 seconds after each change the token endpoint answers as before it —
/// a revoked grant still honoured, a new one not yet seen, a revoked application permission
/// still in the token, a new secret refused — and the clock, not a sleep, lets it arrive. The
/// world is tests/fixtures/calendar_sync_world.toml (an administrator's daemon makes the changes
/// through Graph, as a customer's admin would).
#[tokio::test]
async fn replication_lag_keeps_the_token_endpoint_behind_the_directory() {
    let g = start_in("calendar_sync_world.toml");
    let admin = g.app_token(SYNC_TENANT, SYNC_ADMIN).await;
    let vendor_signs_in = || {
        let g = &g;
        async move {
            let form = support::graph_api::ropc_form(SYNC_VENDOR, "alice@contoso.test", "alice-password-1");
            let mut form = form.to_vec();
            form.retain(|(k, _)| *k != "scope");
            form.push(("scope", "https://graph.microsoft.com/User.Read"));
            g.try_token(SYNC_TENANT, &form).await
        }
    };
    let advance = |seconds: i64| {
        let g = &g;
        async move { control(g, reqwest::Method::POST, "/clock/advance", Some(json!({"seconds": seconds}))).await }
    };
    let sp_of = |app: &'static str| {
        let (g, admin) = (&g, &admin);
        async move {
            let (s, body) = g.get(admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app}'")).await;
            assert_eq!(s, 200, "{body}");
            body["value"][0]["id"].as_str().unwrap().to_string()
        }
    };
    let (vendor_sp, daemon_sp, graph_sp) =
        (sp_of(SYNC_VENDOR).await, sp_of(SYNC_DAEMON.0).await, sp_of("00000003-0000-0000-c000-000000000000").await);

    // Bad lag rules are explained.
    for bad in [
        json!({"match": {"method": "POST"}, "action": {"replicationLagSeconds": 20}}),
        json!({"times": 1, "action": {"replicationLagSeconds": 20}}),
        json!({"action": {"replicationLagSeconds": 0}}),
        json!({"action": {"replicationLagSeconds": 20, "status": 503}}),
    ] {
        let (s, e) = control(&g, reqwest::Method::POST, "/faults", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    // A lag for another tenant changes nothing here; then one for this tenant.
    let (s, other) = control(
        &g,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"match": {"tenant": "fabrikam.test"}, "action": {"replicationLagSeconds": 20}})),
    )
    .await;
    assert_eq!(s, 201, "{other}");
    let (s, rule) = control(
        &g,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"match": {"tenant": "contoso.test"}, "action": {"replicationLagSeconds": 20}})),
    )
    .await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(vendor_signs_in().await.0, 200, "what existed before the rule has arrived");

    // The admin revokes the vendor's consent: the old grant is honoured for 20 seconds.
    let (_, grants) = g.get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{vendor_sp}'")).await;
    let grant = grants["value"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(g.delete(&admin, &format!("/v1.0/oauth2PermissionGrants/{grant}")).await.0, 204);
    let (s, body) = vendor_signs_in().await;
    assert_eq!(s, 200, "a replica has not seen the revocation: {body}");
    advance(21).await;
    let (s, body) = vendor_signs_in().await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (400, Some(65001)), "the revocation arrived: {body}");

    // The admin consents again: AADSTS65001 until the consent arrives.
    let (s, body) = g
        .post(
            &admin,
            "/v1.0/oauth2PermissionGrants",
            json!({"clientId": vendor_sp, "consentType": "AllPrincipals", "resourceId": graph_sp, "scope": "User.Read"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = vendor_signs_in().await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (400, Some(65001)), "consent not yet seen: {body}");
    advance(21).await;
    assert_eq!(vendor_signs_in().await.0, 200, "consent arrived");

    // An application permission revoked: still in the daemon's token for 20 seconds.
    let (_, held) = g.get(&admin, &format!("/v1.0/servicePrincipals/{daemon_sp}/appRoleAssignments")).await;
    let assignment = held["value"][0]["id"].as_str().unwrap().to_string();
    let (s, body) =
        g.delete(&admin, &format!("/v1.0/servicePrincipals/{graph_sp}/appRoleAssignedTo/{assignment}")).await;
    assert_eq!(s, 204, "{body}");
    let roles = |token: &str| support::jwt_claims(token)["roles"].clone();
    assert_eq!(roles(&g.app_token(SYNC_TENANT, SYNC_DAEMON).await), json!(["Calendars.Read"]), "not yet revoked");
    advance(21).await;
    assert_eq!(roles(&g.app_token(SYNC_TENANT, SYNC_DAEMON).await), Value::Null, "revoked");

    // A new secret: refused (AADSTS7000215) until it has replicated; the old one works.
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{}'", SYNC_DAEMON.0)).await;
    let object_id = apps["value"][0]["id"].as_str().unwrap().to_string();
    let (s, added) =
        g.post(&admin, &format!("/v1.0/applications/{object_id}/addPassword"), json!({"passwordCredential": {}})).await;
    assert_eq!(s, 200, "{added}");
    let fresh = added["secretText"].as_str().unwrap().to_string();
    let form = |secret: &str| {
        [
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), SYNC_DAEMON.0.to_string()),
            ("client_secret".to_string(), secret.to_string()),
            ("scope".to_string(), "https://graph.microsoft.com/.default".to_string()),
        ]
    };
    let try_secret = |secret: String| {
        let g = &g;
        async move {
            let f = form(&secret);
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            g.try_token(SYNC_TENANT, &pairs).await
        }
    };
    let (s, body) = try_secret(fresh.clone()).await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (401, Some(7000215)), "{body}");
    assert_eq!(try_secret(SYNC_DAEMON.1.to_string()).await.0, 200, "the old secret still works");
    advance(21).await;
    assert_eq!(try_secret(fresh.clone()).await.0, 200, "the new secret replicated");

    // Every changed answer is counted and journalled; the other tenant's rule never acted.
    let (_, list) = control(&g, reqwest::Method::GET, "/faults", None).await;
    let rules = list["rules"].as_array().unwrap();
    assert_eq!(rules[0]["injected"], 0, "{list}");
    assert_eq!(rules[1]["id"], rule["id"]);
    assert_eq!(rules[1]["injected"], 4, "revoked grant, unseen consent, revoked role, new secret: {list}");
    let (_, journal) = control(&g, reqwest::Method::GET, "/journal", None).await;
    let lagged: Vec<&Value> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "fault" && e["rule"] == rule["id"])
        .collect();
    assert_eq!(lagged.len(), 4, "{journal}");
    assert!(lagged[0]["ruleText"].as_str().unwrap().contains("consent.revoked"), "{}", lagged[0]);
    assert!(lagged[3]["ruleText"].as_str().unwrap().contains("client secret"), "{}", lagged[3]);
    let metrics = g.c.get(g.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_faults_injected_total{action=\"replication_lag\"} 4"), "{metrics}");

    // Without the rules, a change is seen at once; numbering starts again.
    assert_eq!(control(&g, reqwest::Method::DELETE, "/faults", None).await.0, 204);
    let (_, grants) = g.get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{vendor_sp}'")).await;
    let grant = grants["value"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(g.delete(&admin, &format!("/v1.0/oauth2PermissionGrants/{grant}")).await.0, 204);
    assert_eq!(vendor_signs_in().await.0, 400, "no lag: revoked at once");
    let (_, again) =
        control(&g, reqwest::Method::POST, "/faults", Some(json!({"action": {"replicationLagSeconds": 5}}))).await;
    assert_eq!(again["id"], "fault-1");
}

/// A client secret ends at its `endDateTime` on Accord's clock: then it is refused as expired
/// (AADSTS7000222, Entra's code), not as a wrong secret; the app's other secrets still work.
#[tokio::test]
async fn a_client_secret_ends_on_the_clock_and_is_refused_as_expired() {
    let g = start_in("calendar_sync_world.toml");
    let admin = g.app_token(SYNC_TENANT, SYNC_ADMIN).await;
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{}'", SYNC_DAEMON.0)).await;
    let object_id = apps["value"][0]["id"].as_str().unwrap().to_string();
    // Two days from the server's clock, not the test machine's date.
    let end = (server_now(&g).await + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, added) = g
        .post(
            &admin,
            &format!("/v1.0/applications/{object_id}/addPassword"),
            json!({"passwordCredential": {"displayName": "two days", "endDateTime": end}}),
        )
        .await;
    assert_eq!(s, 200, "{added}");
    let short_lived = added["secretText"].as_str().unwrap().to_string();
    let try_secret = |secret: String| {
        let g = &g;
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_DAEMON.0),
                ("client_secret", secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            g.try_token(SYNC_TENANT, &form).await
        }
    };
    assert_eq!(try_secret(short_lived.clone()).await.0, 200, "valid until its end");
    let (s, _) = control(&g, reqwest::Method::POST, "/clock/advance", Some(json!({"days": 3}))).await;
    assert_eq!(s, 200);
    let (s, body) = try_secret(short_lived).await;
    assert_eq!(
        (s, body["error"].as_str(), body["error_codes"][0].as_u64()),
        (401, Some("invalid_client"), Some(7000222)),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(&format!("client secret keys for app '{}' are expired", SYNC_DAEMON.0)),
        "{description}"
    );
    let (s, body) = try_secret("not-the-secret".into()).await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (401, Some(7000215)), "a wrong secret is still wrong: {body}");
    assert_eq!(try_secret(SYNC_DAEMON.1.to_string()).await.0, 200, "the secret without an end still works");
}
