//! Consent webhooks (an Accord extension): the vendor registers an endpoint for its app and
//! hears, signed as Standard Webhooks specifies, when a tenant's consent for the app changes —
//! checked here by a real receiver that verifies every signature itself. Rotation signs with
//! both secrets; failures are retried and logged. World: tests/fixtures/calendar_sync_world.toml.
//! No fixed date is compared with today: grant ends are set relative to now, and the only
//! wall-clock check is that a delivery's `webhook-timestamp` is the time it was sent.

mod support;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::graph_api::GraphApi;
use support::TestServer;

const CONTOSO: &str = "eeeeeeee-5000-4000-8000-000000000001";
const VENDOR: &str = "ffffffff-5000-4000-8000-000000000001";
const ALICE: &str = "eeeeeeee-5000-4000-8000-0000000000a1";
const ADMIN: (&str, &str) = ("ffffffff-5000-4000-8000-000000000004", "admin-daemon-secret-1");

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: i64,
    signatures: Vec<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    failing: Arc<Mutex<bool>>,
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: String) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    inbox.received.lock().unwrap().push(Received {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp").parse().unwrap_or(0),
        signatures: h("webhook-signature").split(' ').map(str::to_string).collect(),
        body,
    });
    if *inbox.failing.lock().unwrap() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Inbox {
    /// A receiver on a free loopback port; its URL.
    async fn listen() -> (Inbox, String) {
        let inbox = Inbox::default();
        let app = axum::Router::new().route("/consent", axum::routing::post(receive)).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/consent", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (inbox, url)
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> (Received, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.received.lock().unwrap().iter().find_map(|r| {
                let v: Value = serde_json::from_str(&r.body).ok()?;
                pred(&v).then(|| (r.clone(), v))
            });
            if let Some(f) = found {
                return f;
            }
            assert!(Instant::now() < deadline, "no {what}; got {:?}", self.received.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The receiver's own check (Standard Webhooks): some `v1,` signature is the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under the secret's decoded key.
fn signed_with(r: &Received, secret: &str) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    r.signatures.contains(&expected)
}

#[tokio::test]
async fn consent_changes_are_pushed_signed_retried_and_logged() {
    let dir = std::env::temp_dir().join(format!("accord-webhooks-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_sync_world.toml");
    let flags = ["--allow-http-notification-urls", "--notification-retry-seconds", "3"];
    let server = TestServer::launch_with_env(dir, &world, &flags, &[]);
    let g = GraphApi { c: server.client(), server };
    let (inbox, url) = Inbox::listen().await;

    let admin = g.app_token(CONTOSO, ADMIN).await;
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{VENDOR}'")).await;
    let object = apps["value"][0]["id"].as_str().unwrap_or_else(|| panic!("{apps}")).to_string();
    let hooks = format!("/v1.0/applications/{object}/accord.consentWebhooks");

    // Registration: the secret is shown once; bad input is explained.
    let (s, hook) = g.post(&admin, &hooks, json!({"url": url})).await;
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let (s, list) = g.get(&admin, &hooks).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["value"][0]["url"], url.as_str());
    assert!(list["value"][0].get("secret").is_none(), "never shown again: {list}");
    let (s, e) = g.post(&admin, &hooks, json!({"url": "http://vendor.example/consent"})).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = g.post(&admin, &hooks, json!({"url": url, "events": ["all"]})).await;
    assert_eq!(s, 400, "{e}");
    // The server's own network is not the vendor's to call (`egress.rs`; this server lets only
    // loopback through, for the test's receiver): refused when registered.
    let (s, e) = g.post(&admin, &hooks, json!({"url": "https://10.1.2.3/consent"})).await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("10.1.2.3 is on a loopback, private or link-local network"), "{e}");

    // The administrator revokes the vendor's consent, then grants it again.
    let (_, sps) = g.get(&admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{VENDOR}'")).await;
    let vendor_sp = sps["value"][0]["id"].as_str().unwrap().to_string();
    let (_, grants) = g.get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{vendor_sp}'")).await;
    let grant = grants["value"][0].clone();
    assert_eq!(
        g.delete(&admin, &format!("/v1.0/oauth2PermissionGrants/{}", grant["id"].as_str().unwrap())).await.0,
        204
    );
    let (revoked, event) = inbox.wait_for("consent.revoked", |v| v["type"] == "consent.revoked").await;
    assert!(signed_with(&revoked, &secret), "{revoked:?}");
    assert!(revoked.id.starts_with("msg_"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((revoked.timestamp - now).abs() < 60, "a wall-clock timestamp");
    assert_eq!(event["data"]["tenantId"], CONTOSO);
    assert_eq!(event["data"]["appId"], VENDOR);
    assert_eq!(event["data"]["permissionType"], "delegated");
    assert_eq!(event["data"]["consentType"], "AllPrincipals");
    assert!(event["data"]["scopes"].as_array().unwrap().iter().any(|s| s == "Calendars.Read"), "{event}");
    let restore = json!({"clientId": vendor_sp, "consentType": "AllPrincipals", "resourceId": grant["resourceId"], "scope": grant["scope"]});
    assert_eq!(g.post(&admin, "/v1.0/oauth2PermissionGrants", restore).await.0, 201);
    let (granted, _) = inbox.wait_for("consent.granted", |v| v["type"] == "consent.granted").await;
    assert!(signed_with(&granted, &secret));

    // Rotation: the next delivery is signed with both secrets.
    let (s, rotated) =
        g.post(&admin, &format!("{hooks}/{}/accord.rotateSecret", hook["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(s, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let disable = json!({"accountEnabled": false});
    assert_eq!(g.patch(&admin, &format!("/v1.0/servicePrincipals/{vendor_sp}"), disable).await.0, 204);
    let (disabled, _) = inbox.wait_for("app.disabled", |v| v["type"] == "app.disabled").await;
    assert_eq!(disabled.signatures.len(), 2, "{disabled:?}");
    assert!(signed_with(&disabled, &secret) && signed_with(&disabled, &new_secret));
    let mut forged = disabled.clone();
    forged.body = forged.body.replace("app.disabled", "app.enabled");
    assert!(!signed_with(&forged, &new_secret), "a changed body does not verify");

    // A failing endpoint: retried, then given up; the log shows it all.
    *inbox.failing.lock().unwrap() = true;
    let enable = json!({"accountEnabled": true});
    assert_eq!(g.patch(&admin, &format!("/v1.0/servicePrincipals/{vendor_sp}"), enable).await.0, 204);
    let log_path = format!("{hooks}/{}/deliveries", hook["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let (_, log) = g.get(&admin, &log_path).await;
        let entry = log["value"].as_array().unwrap().iter().find(|d| d["eventType"] == "app.enabled").cloned();
        if let Some(e) = entry.filter(|e| e["nextAttemptDateTime"].is_null() && e["attempts"].as_u64() >= Some(2)) {
            break e;
        }
        assert!(Instant::now() < deadline, "the failing delivery was not retried and given up: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["lastStatus"], 500);
    assert!(failed["deliveredDateTime"].is_null());
    let (_, log) = g.get(&admin, &log_path).await;
    let delivered = log["value"].as_array().unwrap().iter().filter(|d| d["deliveredDateTime"].is_string()).count();
    assert_eq!(delivered, 3, "revoked, granted, disabled: {log}");

    // The admin center shows the log on the app registration's "Consent webhooks" tab.
    let browser = g.server.client();
    let portal = g.server.url("/portal/signin?return_to=/admin");
    let signed_in = support::sign_in(&browser, &g.server, &portal, "admin@contoso.test", "admin-password-1").await;
    assert_eq!(signed_in.as_deref(), Ok("/admin"));
    let page = browser.get(g.server.url(&format!("/admin/app-registrations/{VENDOR}/webhooks"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&url.replace('/', "&#x2f;")), "the URL, escaped: {page}");
    assert!(page.contains(r#"data-event="consent.revoked" data-outcome="delivered""#), "{page}");
    assert!(page.contains(r#"data-event="app.enabled" data-outcome="given up""#), "{page}");

    // Removal.
    assert_eq!(g.delete(&admin, &format!("{hooks}/{}", hook["id"].as_str().unwrap())).await.0, 204);
    let (_, list) = g.get(&admin, &hooks).await;
    assert_eq!(list["value"], json!([]));
}

/// Time-bound consent (an Accord extension): a grant made "for an hour" through Graph grants
/// until then; two hours later on Accord's clock (test mode) it has ended as a revocation
/// would — the user's next token request needs consent again, the grant is gone, and the
/// vendor's consent webhook says `consent.revoked`.
#[tokio::test]
async fn time_bound_grants_end_as_a_revocation() {
    let dir = std::env::temp_dir().join(format!("accord-expiring-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_sync_world.toml");
    let server = TestServer::launch_with_env(dir, &world, &["--allow-http-notification-urls", "--test-mode"], &[]);
    let g = GraphApi { c: server.client(), server };
    let (inbox, url) = Inbox::listen().await;

    let admin = g.app_token(CONTOSO, ADMIN).await;
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{VENDOR}'")).await;
    let object = apps["value"][0]["id"].as_str().unwrap().to_string();
    let (s, _) =
        g.post(&admin, &format!("/v1.0/applications/{object}/accord.consentWebhooks"), json!({"url": url})).await;
    assert_eq!(s, 201);

    // The organisation's grant is replaced by one for an hour.
    let (_, sps) = g.get(&admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{VENDOR}'")).await;
    let vendor_sp = sps["value"][0]["id"].as_str().unwrap().to_string();
    let (_, grants) = g.get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{vendor_sp}'")).await;
    let old = grants["value"][0].clone();
    assert_eq!(g.delete(&admin, &format!("/v1.0/oauth2PermissionGrants/{}", old["id"].as_str().unwrap())).await.0, 204);
    // Ends are relative to now (the server's clock starts at the wall clock in test mode).
    let from_now = |d: time::Duration| {
        (time::OffsetDateTime::now_utc() + d).format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let in_an_hour = from_now(time::Duration::hours(1));
    let mut grant = json!({"clientId": vendor_sp, "consentType": "AllPrincipals", "resourceId": old["resourceId"],
                           "scope": old["scope"], "accord.expiresDateTime": in_an_hour});
    let (s, made) = g.post(&admin, "/v1.0/oauth2PermissionGrants", grant.clone()).await;
    assert_eq!(s, 201, "{made}");
    assert!(made["accord.expiresDateTime"].is_string(), "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    grant["accord.expiresDateTime"] = json!(from_now(-time::Duration::days(1)));
    let (s, e) = g.post(&admin, "/v1.0/oauth2PermissionGrants", grant).await;
    assert_eq!(s, 400, "an end in the past: {e}");

    let ropc = || {
        let form = [
            ("grant_type", "password"),
            ("client_id", VENDOR),
            ("username", "alice@contoso.test"),
            ("password", "alice-password-1"),
            ("scope", "https://graph.microsoft.com/Calendars.Read"),
        ];
        let g = &g;
        async move { g.try_token(CONTOSO, &form).await }
    };
    assert_eq!(ropc().await.0, 200, "in force for now");
    // Alice is assigned to the app for an hour too.
    let assign = json!({"principalId": ALICE, "resourceId": vendor_sp, "appRoleId": "00000000-0000-0000-0000-000000000000",
                        "accord.expiresDateTime": in_an_hour});
    let (s, assigned) = g.post(&admin, &format!("/v1.0/servicePrincipals/{vendor_sp}/appRoleAssignedTo"), assign).await;
    assert_eq!(s, 201, "{assigned}");
    assert!(assigned["accord.expiresDateTime"].is_string(), "{assigned}");

    let res = g.c.post(g.url("/_accord/test/clock/advance")).json(&json!({"hours": 2})).send().await.unwrap();
    let moved: Value = res.json().await.unwrap();
    assert_eq!(moved["ran"]["grantsExpired"], 2, "the grant and the assignment: {moved}");
    let (s, body) = ropc().await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (400, Some(65001)), "consent is needed again: {body}");
    let admin = g.app_token(CONTOSO, ADMIN).await;
    assert_eq!(g.get(&admin, &format!("/v1.0/oauth2PermissionGrants/{id}")).await.0, 404, "the grant is gone");
    let (_, event) = inbox
        .wait_for("the expiry's consent.revoked", |v| {
            v["type"] == "consent.revoked" && v["data"]["grantId"] == id.as_str()
        })
        .await;
    assert_eq!(event["data"]["appId"], VENDOR);
    inbox
        .wait_for("the assignment's end", |v| v["type"] == "assignment.removed" && v["data"]["principalId"] == ALICE)
        .await;
}

/// A scenario declares the vendor's webhook with its secret (and a fault rule): at start, and
/// again after a test-mode reset, consent changes arrive signed with that secret, and the fault
/// rule is in force.
#[tokio::test]
async fn a_scenario_declares_webhooks_and_fault_rules() {
    const SECRET: &str = "whsec_c2NlbmFyaW8tc2VjcmV0LW9mLXRoaXJ0eS10d28h";
    let (inbox, url) = Inbox::listen().await;

    let dir = std::env::temp_dir().join(format!("accord-webhooks-scenario-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = dir.join("world.toml");
    std::fs::write(
        &world,
        format!(
            r#"
[[tenant]]
id = "{CONTOSO}"
display_name = "Contoso"
domains = ["contoso.test"]

[[tenant.app]]
app_id = "{VENDOR}"
display_name = "Sync Vendor"
redirect_uris = ["https://vendor.example/cb"]
secrets = ["vendor-secret-1"]

  [[tenant.app.required]]
  resource = "https://graph.microsoft.com"
  application = ["User.Read.All"]

  [[tenant.app.webhook]]
  url = "{url}"
  secret = "{SECRET}"

[[tenant.app]]
app_id = "{admin}"
display_name = "Admin Daemon"
redirect_uris = ["https://daemon.example/cb"]
secrets = ["{admin_secret}"]

  [[tenant.app.required]]
  resource = "https://graph.microsoft.com"
  application = ["AppRoleAssignment.ReadWrite.All", "Application.Read.All"]

[[tenant.grant]]
app = "{VENDOR}"
resource = "https://graph.microsoft.com"
application = ["User.Read.All"]

[[tenant.grant]]
app = "{admin}"
resource = "https://graph.microsoft.com"
application = ["AppRoleAssignment.ReadWrite.All", "Application.Read.All"]

[[fault]]
match = {{ endpoint = "graph", path = "/v1.0/organization" }}
action = {{ status = 503, retryAfter = 7 }}
"#,
            admin = ADMIN.0,
            admin_secret = ADMIN.1,
        ),
    )
    .unwrap();
    let flags = ["--allow-http-notification-urls", "--test-mode"];
    let server = TestServer::launch_with_env(dir, &world, &flags, &[]);
    let g = GraphApi { c: server.client(), server };

    let revoke_vendor = || {
        let g = &g;
        async move {
            let admin = g.app_token(CONTOSO, ADMIN).await;
            let (_, sps) = g.get(&admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{VENDOR}'")).await;
            let vendor_sp = sps["value"][0]["id"].as_str().unwrap().to_string();
            let (_, held) = g.get(&admin, &format!("/v1.0/servicePrincipals/{vendor_sp}/appRoleAssignments")).await;
            let assignment = &held["value"][0];
            let path = format!(
                "/v1.0/servicePrincipals/{}/appRoleAssignedTo/{}",
                assignment["resourceId"].as_str().unwrap(),
                assignment["id"].as_str().unwrap()
            );
            assert_eq!(g.delete(&admin, &path).await.0, 204);
            admin
        }
    };
    let admin = revoke_vendor().await;
    let (first, event) = inbox.wait_for("consent.revoked", |v| v["type"] == "consent.revoked").await;
    assert!(signed_with(&first, SECRET), "signed with the scenario's secret: {first:?}");
    assert_eq!(event["data"]["permissionType"], "application");

    // The scenario's fault rule is in force.
    let (s, body) = g.get(&admin, "/v1.0/organization").await;
    assert_eq!(s, 503, "{body}");

    // A reset brings the webhook back with the same secret, and the rule.
    let (s, reset) = g.send(g.c.post(g.url("/_accord/test/reset"))).await;
    assert_eq!(s, 200, "{reset}");
    assert_eq!(reset["loaded"]["faults"], json!(["fault-1"]), "{reset}");
    inbox.received.lock().unwrap().clear();
    revoke_vendor().await;
    let (again, _) = inbox.wait_for("consent.revoked after the reset", |v| v["type"] == "consent.revoked").await;
    assert!(signed_with(&again, SECRET));
    let admin = g.app_token(CONTOSO, ADMIN).await;
    assert_eq!(g.get(&admin, "/v1.0/organization").await.0, 503);
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{VENDOR}'")).await;
    let object = apps["value"][0]["id"].as_str().unwrap().to_string();
    let (_, hooks) = g.get(&admin, &format!("/v1.0/applications/{object}/accord.consentWebhooks")).await;
    assert_eq!(hooks["value"].as_array().map(Vec::len), Some(1), "one webhook, not one per load: {hooks}");
}

/// A customer deletes the vendor's enterprise app (Graph `DELETE /servicePrincipals/{id}`):
/// the vendor hears `app.deleted`, signed; its grants went with it, so a sign-in needs consent
/// again. Microsoft Graph's own enterprise app cannot be deleted.
#[tokio::test]
async fn deleting_the_enterprise_app_is_pushed() {
    let dir = std::env::temp_dir().join(format!("accord-webhooks-delete-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_sync_world.toml");
    let server = TestServer::launch_with_env(dir, &world, &["--allow-http-notification-urls"], &[]);
    let g = GraphApi { c: server.client(), server };
    let (inbox, url) = Inbox::listen().await;

    let admin = g.app_token(CONTOSO, ADMIN).await;
    let (_, apps) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{VENDOR}'")).await;
    let object = apps["value"][0]["id"].as_str().unwrap().to_string();
    let (s, hook) =
        g.post(&admin, &format!("/v1.0/applications/{object}/accord.consentWebhooks"), json!({"url": url})).await;
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    let sp_of = |app: &'static str| {
        let (g, admin) = (&g, &admin);
        async move {
            let (_, sps) = g.get(admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app}'")).await;
            sps["value"][0]["id"].as_str().map(str::to_string)
        }
    };
    let vendor_sp = sp_of(VENDOR).await.unwrap();
    let graph_sp = sp_of("00000003-0000-0000-c000-000000000000").await.unwrap();
    let (s, e) = g.delete(&admin, &format!("/v1.0/servicePrincipals/{graph_sp}")).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Microsoft Graph"), "{e}");
    let (s, _) = g.delete(&admin, "/v1.0/servicePrincipals/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(s, 404);

    let form = support::graph_api::ropc_form(VENDOR, "alice@contoso.test", "alice-password-1");
    let signs_in = || g.try_token(CONTOSO, &form);
    assert_eq!(signs_in().await.0, 200);
    assert_eq!(g.delete(&admin, &format!("/v1.0/servicePrincipals/{vendor_sp}")).await.0, 204);
    assert_eq!(sp_of(VENDOR).await, None, "gone");
    let (delivered, event) = inbox.wait_for("app.deleted", |v| v["type"] == "app.deleted").await;
    assert!(signed_with(&delivered, &secret));
    assert_eq!(
        (event["data"]["tenantId"].as_str(), event["data"]["servicePrincipalId"].as_str()),
        (Some(CONTOSO), Some(vendor_sp.as_str()))
    );
    let (s, body) = signs_in().await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (400, Some(65001)), "consent went with it: {body}");
}
