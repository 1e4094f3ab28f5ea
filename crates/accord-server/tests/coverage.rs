//! `accord coverage`: per customer tenant, what a multi-tenant app's static permissions have
//! been granted — for the organisation, by some users, as application permissions —, what is
//! missing with an admin-consent link for exactly that, and who is assigned.

mod support;

use serde_json::Value;
use support::{accord, TestServer};

const APP: &str = "c0ffee00-0000-4000-8000-000000000001";

const WORLD: &str = r#"
[[tenant]]
id = "c0ffee00-1000-4000-8000-000000000001"
display_name = "Vendor"
domains = ["vendor.test"]

[[tenant.app]]
app_id = "c0ffee00-0000-4000-8000-000000000001"
display_name = "Coverage App"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://vendor.example/consent-callback"]
secrets = ["coverage-secret-1"]

  [[tenant.app.required]]
  resource = "https://graph.microsoft.com"
  delegated = ["openid", "User.Read", "Calendars.Read"]
  application = ["Calendars.Read"]

# Consented for the organisation to part of the list; Alice added Calendars.Read for herself.
[[tenant]]
id = "c0ffee00-2000-4000-8000-000000000002"
display_name = "Partly"
domains = ["partly.test"]

[[tenant.user]]
upn = "alice@partly.test"
display_name = "Alice"
password = "alice-password-1"

[[tenant.group]]
display_name = "Sales"
members = ["alice@partly.test"]

[[tenant.enterprise_app]]
app = "c0ffee00-0000-4000-8000-000000000001"
assignment_required = true

[[tenant.assignment]]
app = "c0ffee00-0000-4000-8000-000000000001"
principal = "group:Sales"

[[tenant.grant]]
app = "c0ffee00-0000-4000-8000-000000000001"
delegated = ["openid", "User.Read"]

[[tenant.grant]]
app = "c0ffee00-0000-4000-8000-000000000001"
delegated = ["Calendars.Read"]
for = "alice@partly.test"

# Everything granted.
[[tenant]]
id = "c0ffee00-3000-4000-8000-000000000003"
display_name = "Fully"
domains = ["fully.test"]

[[tenant.grant]]
app = "c0ffee00-0000-4000-8000-000000000001"
delegated = ["openid", "User.Read", "Calendars.Read"]
application = ["Calendars.Read"]

# Never consented.
[[tenant]]
id = "c0ffee00-4000-4000-8000-000000000004"
display_name = "Never"
domains = ["never.test"]
"#;

fn tenant<'a>(coverage: &'a Value, name: &str) -> &'a Value {
    coverage["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["displayName"] == name)
        .unwrap_or_else(|| panic!("{name}"))
}

fn granted(t: &Value, kind: &str, permission: &str) -> String {
    let p = t["permissions"].as_array().unwrap().iter().find(|p| p["kind"] == kind && p["permission"] == permission);
    p.unwrap_or_else(|| panic!("{kind} {permission} in {t}"))["granted"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn coverage_shows_what_each_tenant_granted_and_links_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("accord-coverage-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = dir.join("world.toml");
    std::fs::write(&world, WORLD).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let server = TestServer::launch_with_env(dir.join("data"), &world, &[], &[]);
    let data = server.stop();
    let data = data.to_string_lossy().to_string();

    let (code, out, err) = accord(&["coverage", "--data-dir", &data, "--app", APP, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let coverage: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(coverage["displayName"], "Coverage App");

    let partly = tenant(&coverage, "Partly");
    assert_eq!((partly["consented"].as_bool(), partly["assignmentRequired"].as_bool()), (Some(true), Some(true)));
    assert_eq!(granted(partly, "delegated", "User.Read"), "all_users");
    assert_eq!(granted(partly, "delegated", "Calendars.Read"), "not_in_consent", "{partly}");
    assert_eq!(granted(partly, "application", "Calendars.Read"), "missing");
    let cal = partly["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["permission"] == "Calendars.Read" && p["kind"] == "delegated")
        .unwrap();
    assert_eq!(cal["users"], 1, "Alice consented for herself");
    assert_eq!(partly["assigned"], serde_json::json!(["group Sales"]));
    let link = partly["adminConsentLink"].as_str().unwrap();
    assert!(
        link.contains(
            "/c0ffee00-2000-4000-8000-000000000002/v2.0/adminconsent?client_id=c0ffee00-0000-4000-8000-000000000001"
        ),
        "{link}"
    );
    assert!(
        link.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        "the application permission needs .default: {link}"
    );
    assert!(link.contains("redirect_uri=https%3A%2F%2Fvendor.example%2Fconsent-callback"), "{link}");

    let fully = tenant(&coverage, "Fully");
    assert!(fully["missing"].as_array().unwrap().is_empty(), "{fully}");
    assert!(fully["adminConsentLink"].is_null());
    assert_eq!(granted(fully, "application", "Calendars.Read"), "granted");

    let never = tenant(&coverage, "Never");
    assert_eq!(never["consented"], false);
    assert_eq!(granted(never, "delegated", "openid"), "missing");
    assert_eq!(never["missing"].as_array().unwrap().len(), 4, "{never}");
    assert!(never["adminConsentLink"]
        .as_str()
        .unwrap()
        .contains("scope=openid+https%3A%2F%2Fgraph.microsoft.com%2F.default"));

    // Text for people; errors that say what is wrong.
    let (code, text, err) = accord(&["coverage", "--data-dir", &data, "--app", APP]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("Partly (c0ffee00-2000-4000-8000-000000000002): consented; assignment required"), "{text}");
    assert!(text.contains("not in the organisation's consent; 1 user consented"), "{text}");
    assert!(text.contains("Never (c0ffee00-4000-4000-8000-000000000004): never consented"), "{text}");
    let (code, _, err) = accord(&["coverage", "--data-dir", &data, "--app", "c0ffee00-0000-4000-8000-0000000000ff"]);
    assert_ne!(code, 0);
    assert!(err.contains("no app registration"), "{err}");
    let (code, _, err) = accord(&["coverage", "--data-dir", &data, "--app", APP, "--format", "yaml"]);
    assert_ne!(code, 0);
    assert!(err.contains("--format"), "{err}");
}

/// The vendor's view in its admin center: "Consent coverage" lists the organisations that
/// consented (not the one that never did), what each lacks with its link, and how many are
/// assigned but not who. Adding a permission to the registration ("API permissions") makes it
/// missing everywhere and tells the app's consent webhook `app.permissions_changed`.
#[tokio::test]
async fn the_coverage_page_and_a_webhook_when_the_permissions_change() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let inbox = received.clone();
    let receiver = axum::Router::new().route(
        "/consent",
        axum::routing::post(move |body: String| {
            let inbox = inbox.clone();
            async move {
                inbox.lock().unwrap().push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/consent", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let world = WORLD
        .replacen(
            "domains = [\"vendor.test\"]\n",
            "domains = [\"vendor.test\"]\n\n[[tenant.user]]\nupn = \"owner@vendor.test\"\ndisplay_name = \"Owner\"\npassword = \"owner-password-1\"\nroles = [\"Global Administrator\"]\n",
            1,
        )
        .replacen(
            "  application = [\"Calendars.Read\"]\n",
            &format!("  application = [\"Calendars.Read\"]\n\n  [[tenant.app.webhook]]\n  url = \"{url}\"\n  secret = \"whsec_Y292ZXJhZ2Utd2ViaG9vay1zZWNyZXQtMDEyMzQ1\"\n"),
            1,
        );
    let dir = std::env::temp_dir().join(format!("accord-coverage-page-{}", support::uuid_like()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let file = dir.join("world.toml");
    std::fs::write(&file, world).unwrap();
    let server = TestServer::launch_with_env(dir.join("data"), &file, &["--allow-http-notification-urls"], &[]);
    let browser = server.client();
    let page_url = format!("/admin/app-registrations/{APP}/coverage");
    let landing = support::sign_in(
        &browser,
        &server,
        &server.url(&format!("/portal/signin?return_to={}", page_url.replace('/', "%2F"))),
        "owner@vendor.test",
        "owner-password-1",
    )
    .await
    .unwrap_or_else(|(s, p)| panic!("sign-in failed ({s}): {p}"));
    assert_eq!(landing, page_url);
    let get = |path: String| {
        let browser = &browser;
        let server = &server;
        async move {
            let res = browser.get(server.url(&path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            res.text().await.unwrap()
        }
    };
    let page = get(page_url.clone()).await;
    assert!(page.contains("aria-current=\"page\">Consent coverage"), "a tab of the registration: {page}");
    let section = |page: &str, tenant: &str| -> String {
        let start = page.find(&format!("id=\"tenant-{tenant}\"")).unwrap_or_else(|| panic!("{tenant} in {page}"));
        page[start..].split("</section>").next().unwrap().to_string()
    };
    let partly = section(&page, "c0ffee00-2000-4000-8000-000000000002");
    assert!(partly.contains("data-missing=\"2\""), "{partly}");
    assert!(partly.contains("only 1 user consented") || partly.contains("not in the organisation"), "{partly}");
    assert!(partly.contains("assignment required, 1 user or group assignment<"), "{partly}");
    assert!(!page.contains("(s)"), "counts are worded with plurals: {page}");
    assert!(partly.contains("adminconsent?client_id=c0ffee00-0000-4000-8000-000000000001"), "{partly}");
    let fully = section(&page, "c0ffee00-3000-4000-8000-000000000003");
    assert!(fully.contains("data-missing=\"0\"") && fully.contains("Everything Coverage App asks for"), "{fully}");
    assert!(!page.contains("c0ffee00-4000-4000-8000-000000000004"), "never consented: not the vendor's to see");
    assert!(!page.contains("alice@partly.test") && !page.contains("Sales"), "who is assigned stays the customer's");

    // API permissions > add OnlineMeetings.Read: the registration's list changes.
    let perms = get(format!("/admin/app-registrations/{APP}/api-permissions")).await;
    let csrf = support::form_fields(&perms).1.into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    let res = browser
        .post(server.url(&format!("/admin/app-registrations/{APP}/api-permissions")))
        .form(&[("csrf", csrf.as_str()), ("permission", "delegated:OnlineMeetings.Read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let page = get(page_url).await;
    let fully = section(&page, "c0ffee00-3000-4000-8000-000000000003");
    assert!(
        fully.contains("data-missing=\"1\"") && fully.contains("OnlineMeetings.Read"),
        "added since they consented: {fully}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let event: Value = loop {
        let found = received.lock().unwrap().iter().find_map(|b| {
            let v: Value = serde_json::from_str(b).ok()?;
            (v["type"] == "app.permissions_changed").then_some(v)
        });
        if let Some(v) = found {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no app.permissions_changed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        event["data"]["added"],
        serde_json::json!(["00000003-0000-0000-c000-000000000000/OnlineMeetings.Read (delegated)"])
    );
    assert_eq!(event["data"]["removed"], serde_json::json!([]));
    assert_eq!(event["data"]["appId"], APP);
    assert_eq!(event["data"]["tenantId"], "c0ffee00-1000-4000-8000-000000000001", "the home tenant");
}
