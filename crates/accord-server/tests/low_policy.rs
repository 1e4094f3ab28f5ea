//! The "low" user-consent policy end to end (Entra's `microsoft-user-default-low`): users may
//! consent only to permissions their tenant classifies low, and only for apps from a verified
//! publisher or registered in their own tenant. Otherwise they are sent to "Approval required"
//! (workflow on) or "Need admin approval" (workflow off, AADSTS90094). Also how scenario files
//! load classifications: idempotently, with the file's entry as the truth for its resource.

mod support;

use accord_core::consent_records::PermissionClassification;
use accord_core::ids::TenantId;
use accord_core::scenario::GRAPH_APP_ID;
use accord_server::crypto::Keyring;
use accord_server::service::scenario_loader;
use accord_store::{Change, SqlStore, Store};
use std::path::{Path, PathBuf};
use support::*;
use uuid::Uuid;

const LOWLAND_ID: &str = "10000000-0000-4000-8000-000000000002";
const STRICTHAM_ID: &str = "10000000-0000-4000-8000-000000000003";

/// A client app of the fixture: id, secret, redirect URI.
struct Client {
    id: &'static str,
    secret: &'static str,
    redirect: &'static str,
}

const UNVERIFIED: Client = Client {
    id: "20000000-0000-4000-8000-000000000001",
    secret: "unverified-secret-1",
    redirect: "https://unverified.example/cb",
};
const VERIFIED: Client = Client {
    id: "20000000-0000-4000-8000-000000000002",
    secret: "verified-secret-1",
    redirect: "https://verified.example/cb",
};
const LOWLAND_EXPENSES: Client = Client {
    id: "20000000-0000-4000-8000-000000000003",
    secret: "lowland-expenses-secret-1",
    redirect: "https://localhost:9444/callback",
};
const STRICT_EXPENSES: Client = Client {
    id: "20000000-0000-4000-8000-000000000004",
    secret: "strict-expenses-secret-1",
    redirect: "https://localhost:9445/callback",
};

/// The classified low permissions of the fixture (both customer tenants).
const LOW: &[&str] = &["openid", "profile", "offline_access", "User.Read"];

fn low_world() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/low_world.toml")
}

fn authorize(server: &TestServer, tenant: &str, client: &Client, scope: &str) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{tenant}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client.id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", client.redirect)
        .append_pair("scope", scope)
        .append_pair("state", "low-1");
    url.to_string()
}

/// Signs a fresh browser in; returns the page that follows (consent, approval, …).
async fn page_after_sign_in(server: &TestServer, url: &str, upn: &str, pw: &str) -> (reqwest::Client, u16, String) {
    let browser = server.client();
    match sign_in(&browser, server, url, upn, pw).await {
        Ok(loc) => panic!("expected a page for {upn}, got a redirect to {loc}"),
        Err((status, page)) => (browser, status, page),
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The user's own consent prompt, not an administrator's: no organisation option.
#[track_caller]
fn assert_consent_prompt(page: &str) {
    assert!(page.contains("Permissions requested"), "a consent prompt: {page}");
    assert!(!page.contains("on behalf of your organisation"), "ordinary users see no organisation option: {page}");
    assert!(!page.contains("Approval required") && !page.contains("Need admin approval"), "{page}");
}

/// Accepts a consent prompt; returns the code sent to the app.
async fn accept(browser: &reqwest::Client, server: &TestServer, page: &str, client: &Client) -> String {
    let res = submit(browser, server, page, &[("decision", "accept")]).await;
    assert_eq!(res.status().as_u16(), 302, "accept redirects to the app");
    let loc = location(&res);
    assert!(loc.starts_with(client.redirect), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("low-1"));
    query_param(&loc, "code").unwrap_or_else(|| panic!("a code after consent: {loc}"))
}

/// Redeems a code; returns the access token's `scp`.
async fn redeem_scp(server: &TestServer, tenant: &str, client: &Client, code: &str, scope: &str) -> String {
    let res = server
        .client()
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.id),
            ("client_secret", client.secret),
            ("code", code),
            ("redirect_uri", client.redirect),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    jwt_claims(body["access_token"].as_str().unwrap())["scp"].as_str().unwrap().to_string()
}

/// A scope string's scopes, in any order.
fn scope_set(scopes: &str) -> std::collections::BTreeSet<&str> {
    scopes.split_whitespace().collect()
}

/// Not self-consentable with the workflow on: "Approval required", with a form to ask.
#[track_caller]
fn assert_approval_required(status: u16, page: &str) {
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Approval required") && page.contains("Request approval"), "{page}");
    assert!(!page.contains("Permissions requested"), "no consent prompt: {page}");
}

/// Not self-consentable with the workflow off: "Need admin approval".
#[track_caller]
fn assert_need_admin_approval(status: u16, page: &str) {
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Need admin approval"), "{page}");
    assert!(!page.contains("Permissions requested") && !page.contains("Request approval"), "{page}");
    // Another account may be allowed (issue 18: no dead ends).
    assert!(page.contains(">Sign in with a different account<") && page.contains("prompt=login"), "{page}");
}

#[tokio::test]
async fn low_policy_lets_users_consent_to_low_permissions_of_their_own_tenants_apps() {
    let server = TestServer::start_with(&low_world());
    for (tenant, tenant_id, client, upn, pw) in [
        ("lowland.test", LOWLAND_ID, &LOWLAND_EXPENSES, "ann@lowland.test", "ann-password-1"),
        ("strict.test", STRICTHAM_ID, &STRICT_EXPENSES, "sue@strict.test", "sue-password-1"),
    ] {
        // (a) Registered in the user's tenant, only low permissions: the user consents.
        let scope = "openid profile User.Read";
        let (browser, status, page) =
            page_after_sign_in(&server, &authorize(&server, tenant, client, scope), upn, pw).await;
        assert_eq!(status, 200, "{page}");
        assert_consent_prompt(&page);
        assert!(page.contains("Sign you in and read your profile"), "User.Read listed: {page}");
        let code = accept(&browser, &server, &page, client).await;
        let scp = redeem_scp(&server, tenant_id, client, &code, "openid User.Read").await;
        assert_eq!(scope_set(&scp), scope_set("openid profile User.Read"), "exactly what was consented: {scp}");

        // (b) The same app and user, with Calendars.Read, which is not classified: no
        // self-consent, even though Calendars.Read needs no admin consent.
        let scope = "openid User.Read Calendars.Read";
        let res = browser.get(authorize(&server, tenant, client, scope)).send().await.unwrap();
        assert!(!res.status().is_redirection(), "no code without consent to Calendars.Read: {}", location(&res));
        let status = res.status().as_u16();
        let page = res.text().await.unwrap();
        if tenant == "lowland.test" {
            assert_approval_required(status, &page);
        } else {
            assert_need_admin_approval(status, &page);
        }
        assert!(page.contains("Read your calendars") || page.contains("Calendars.Read"), "{page}");
    }
}

#[tokio::test]
async fn low_policy_needs_a_verified_publisher_for_apps_of_other_tenants() {
    let server = TestServer::start_with(&low_world());
    let scope = "openid profile User.Read";
    for (tenant, tenant_id, upn, pw) in [
        ("lowland.test", LOWLAND_ID, "ben@lowland.test", "ben-password-1"),
        ("strict.test", STRICTHAM_ID, "sid@strict.test", "sid-password-1"),
    ] {
        // (c) Multi-tenant, unverified, from another tenant: not self-consentable although it
        // asks only for low permissions.
        let (_, status, page) =
            page_after_sign_in(&server, &authorize(&server, tenant, &UNVERIFIED, scope), upn, pw).await;
        if tenant == "lowland.test" {
            assert_approval_required(status, &page);
        } else {
            assert_need_admin_approval(status, &page);
        }
        assert!(page.contains("Unverified Insights"), "{page}");

        // (d) Multi-tenant from another tenant, verified publisher, only low permissions: the
        // user consents.
        let (browser, status, page) =
            page_after_sign_in(&server, &authorize(&server, tenant, &VERIFIED, scope), upn, pw).await;
        assert_eq!(status, 200, "{page}");
        assert_consent_prompt(&page);
        assert!(
            page.contains("Verified Notes") && page.contains("Verified publisher"),
            "publisher shown verified: {page}"
        );
        let code = accept(&browser, &server, &page, &VERIFIED).await;
        let scp = redeem_scp(&server, tenant_id, &VERIFIED, &code, "openid profile User.Read").await;
        assert!(scp.split(' ').any(|s| s == "User.Read"), "{scp}");
    }
}

/// The demo world tells the same story in Contoso: its own "Contoso Expenses" is
/// self-consentable, the vendor's unverified "Meeting Insights" goes to approval.
#[tokio::test]
async fn demo_world_contoso_self_consents_to_its_own_app_only() {
    let server = TestServer::start_with(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo_world.toml"));
    let expenses = Client {
        id: "5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a71",
        secret: "contoso-expenses-secret-change-me",
        redirect: "https://localhost:9444/callback",
    };
    let insights = Client {
        id: "3bcad3f8-39bc-495b-b118-04d692e0bb31",
        secret: "demo-vendor-secret-change-me",
        redirect: "https://localhost:9443/auth/callback",
    };
    let (bob, pw) = ("bob@contoso.test", "Passw0rd!contoso-bob");
    let scope = "openid profile User.Read";
    let (browser, status, page) =
        page_after_sign_in(&server, &authorize(&server, "contoso.test", &expenses, scope), bob, pw).await;
    assert_eq!(status, 200, "{page}");
    assert_consent_prompt(&page);
    let code = accept(&browser, &server, &page, &expenses).await;
    let scp = redeem_scp(&server, "contoso.test", &expenses, &code, scope).await;
    assert_eq!(scope_set(&scp), scope_set(scope), "the code redeems for what Bob consented to: {scp}");
    let res = browser.get(authorize(&server, "contoso.test", &insights, scope)).send().await.unwrap();
    let status = res.status().as_u16();
    assert_approval_required(status, &res.text().await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Loading classifications
// ---------------------------------------------------------------------------------------------

/// The tenant's classifications of Microsoft Graph, by permission value.
async fn graph_classifications(store: &SqlStore, tenant_id: TenantId) -> Vec<PermissionClassification> {
    let graph_sp = store.service_principal_by_app_id(tenant_id, GRAPH_APP_ID).await.unwrap().expect("Graph's SP");
    let mut list = store.permission_classifications(tenant_id, graph_sp.id).await.unwrap();
    list.sort_by(|a, b| a.permission_value.cmp(&b.permission_value));
    list
}

fn values(list: &[PermissionClassification]) -> Vec<&str> {
    list.iter().map(|c| c.permission_value.as_str()).collect()
}

async fn load_text(store: &SqlStore, keyring: &Keyring, text: &str) {
    let scenario = accord_core::scenario::parse("low_world.toml", text).unwrap_or_else(|e| panic!("{e}"));
    scenario_loader::load(store, keyring, &scenario).await.unwrap();
}

#[tokio::test]
async fn loading_classifications_is_idempotent_and_follows_the_file() {
    let dir = std::env::temp_dir().join(format!("accord-low-load-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::connect_sqlite_file(&dir.join("accord.db")).await.unwrap();
    let keyring = Keyring::from_master(&[7; 32]);
    let text = std::fs::read_to_string(low_world()).unwrap();
    let lowland = LOWLAND_ID.parse().unwrap();
    let strictham = STRICTHAM_ID.parse().unwrap();
    let graph = accord_core::microsoft_graph::application();

    let scenario = accord_core::scenario::parse("low_world.toml", &text).unwrap();
    let summary = scenario_loader::load(&store, &keyring, &scenario).await.unwrap();
    assert_eq!(summary.classifications, 8, "four in each customer tenant");
    let first = graph_classifications(&store, lowland).await;
    let mut expected = LOW.to_vec();
    expected.sort();
    assert_eq!(values(&first), expected);
    for c in &first {
        assert_eq!(c.tenant_id, lowland);
        assert_eq!(c.classification, "low");
        assert_eq!(Some(c.permission_id), graph.scope(&c.permission_value).map(|s| s.id), "Graph's real scope id");
    }
    assert_eq!(values(&graph_classifications(&store, strictham).await), expected);
    let vendor = "10000000-0000-4000-8000-000000000001".parse().unwrap();
    assert!(graph_classifications(&store, vendor).await.is_empty());

    // Loading the same file again changes nothing: same rows, same ids.
    load_text(&store, &keyring, &text).await;
    assert_eq!(graph_classifications(&store, lowland).await, first);

    // What was classified at run time for a resource the file classifies goes at the next load,
    // and a medium classification of a listed permission becomes low again, keeping its id.
    let graph_sp = store.service_principal_by_app_id(lowland, GRAPH_APP_ID).await.unwrap().unwrap();
    let email = PermissionClassification {
        tenant_id: lowland,
        id: Uuid::new_v4(),
        resource_sp_id: graph_sp.id,
        permission_id: graph.scope("email").unwrap().id,
        permission_value: "email".into(),
        classification: "low".into(),
    };
    let profile = first.iter().find(|c| c.permission_value == "profile").unwrap();
    let medium = PermissionClassification { classification: "medium".into(), ..profile.clone() };
    store
        .apply(&[Change::PutPermissionClassification(email), Change::PutPermissionClassification(medium)])
        .await
        .unwrap();
    assert_eq!(graph_classifications(&store, lowland).await.len(), 5);
    load_text(&store, &keyring, &text).await;
    assert_eq!(graph_classifications(&store, lowland).await, first);

    // A value removed from the file is removed from the store; the others keep their ids.
    let lowland_entry = "low = [\"openid\", \"profile\", \"offline_access\", \"User.Read\"]";
    let fewer = text.replacen(lowland_entry, "low = [\"openid\", \"profile\", \"User.Read\"]", 1);
    assert_ne!(fewer, text);
    load_text(&store, &keyring, &fewer).await;
    let now = graph_classifications(&store, lowland).await;
    assert_eq!(values(&now), ["User.Read", "openid", "profile"]);
    assert!(now.iter().all(|c| first.contains(c)), "kept rows keep their ids");
    assert_eq!(graph_classifications(&store, strictham).await.len(), 4, "other tenants untouched");
    // Added back: a new row.
    load_text(&store, &keyring, &text).await;
    assert_eq!(values(&graph_classifications(&store, lowland).await), expected);

    // `low = []` clears the resource; an entry dropped from the file leaves the store as it is.
    let cleared = text.replacen(lowland_entry, "low = []", 1);
    load_text(&store, &keyring, &cleared).await;
    assert!(graph_classifications(&store, lowland).await.is_empty());
    let strict_entry = "[[tenant.classification]]\nresource = \"00000003-0000-0000-c000-000000000000\"\nlow = [\"openid\", \"profile\", \"offline_access\", \"User.Read\"]\n";
    let dropped = cleared.replacen(strict_entry, "", 1);
    assert_ne!(dropped, cleared);
    load_text(&store, &keyring, &dropped).await;
    assert_eq!(values(&graph_classifications(&store, strictham).await), expected);
}

/// A classification of an app's API creates the app's service principal in the tenant, in the
/// same transaction as everything else.
#[tokio::test]
async fn classifying_an_apis_permissions_creates_its_service_principal() {
    let dir = std::env::temp_dir().join(format!("accord-low-api-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::connect_sqlite_file(&dir.join("accord.db")).await.unwrap();
    let keyring = Keyring::from_master(&[7; 32]);
    let text = r#"
[[tenant]]
id = "30000000-0000-4000-8000-000000000001"
display_name = "Api Home"
domains = ["api-home.test"]

[[tenant.app]]
app_id = "40000000-0000-4000-8000-000000000001"
display_name = "Notes API"
sign_in_audience = "multiple_orgs"
identifier_uri = "api://notes"

  [[tenant.app.scope]]
  value = "Notes.Read"
  admin_consent_required = false

[[tenant]]
id = "30000000-0000-4000-8000-000000000002"
display_name = "Customer"
domains = ["customer.test"]
user_consent = "low"

[[tenant.classification]]
resource = "api://notes"
low = ["Notes.Read"]
"#;
    load_text(&store, &keyring, text).await;
    let customer = "30000000-0000-4000-8000-000000000002".parse().unwrap();
    let api = "40000000-0000-4000-8000-000000000001".parse().unwrap();
    let sp = store.service_principal_by_app_id(customer, api).await.unwrap().expect("the API's SP in Customer");
    let app = store.application_by_app_id(api).await.unwrap().unwrap();
    let list = store.permission_classifications(customer, sp.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].permission_id, list[0].permission_value.as_str()), (app.scopes[0].id, "Notes.Read"));
    load_text(&store, &keyring, text).await;
    assert_eq!(store.permission_classifications(customer, sp.id).await.unwrap(), list);
}
