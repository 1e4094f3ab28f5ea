//! The guide's stories through the real pages over HTTPS: pre-authorization for everyone,
//! pre-authorization for assigned users and groups, user consent, approval requests (approve,
//! deny, block, expiry) and revocation at refresh — plus the negative cases.

mod support;

use accord_core::consent_records::RequestStatus;
use accord_core::ids::{AppId, TenantId};
use accord_store::{Change, SqlStore, Store};
use serde_json::Value;
use support::*;

const VENDOR_APP: &str = "dddddddd-0000-4000-8000-000000000001";
const VENDOR_SECRET: &str = "vendor-secret-1";
const VENDOR_CB: &str = "https://vendor.example/cb";
const VENDOR_ADMIN_CB: &str = "https://vendor.example/admin-consent";
const CONTOSO_ID: &str = "cccccccc-0000-4000-8000-000000000002";
const FABRIKAM_ID: &str = "cccccccc-0000-4000-8000-000000000003";

fn authorize(server: &TestServer, tenant: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{tenant}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", VENDOR_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", VENDOR_CB)
        .append_pair("scope", scope)
        .append_pair("state", "st");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

fn admin_consent_url(server: &TestServer, tenant: &str, scope: Option<&str>, redirect: &str) -> String {
    let path = if scope.is_some() { format!("/{tenant}/v2.0/adminconsent") } else { format!("/{tenant}/adminconsent") };
    let mut url = reqwest::Url::parse(&server.url(&path)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", VENDOR_APP)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "ac-1");
    if let Some(s) = scope {
        url.query_pairs_mut().append_pair("scope", s);
    }
    url.to_string()
}

/// Signs in; returns the page that follows (consent, approval, …) or panics on a redirect.
async fn page_after_sign_in(c: &reqwest::Client, server: &TestServer, url: &str, upn: &str, pw: &str) -> (u16, String) {
    match sign_in(c, server, url, upn, pw).await {
        Ok(loc) => panic!("expected a page, got a redirect to {loc}"),
        Err(page) => page,
    }
}

async fn redeem(server: &TestServer, tenant: &str, code: &str, scope: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", VENDOR_APP),
            ("client_secret", VENDOR_SECRET),
            ("code", code),
            ("redirect_uri", VENDOR_CB),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn refresh(server: &TestServer, tenant: &str, rt: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", VENDOR_APP),
            ("client_secret", VENDOR_SECRET),
            ("refresh_token", rt),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn store_of(server: &TestServer) -> SqlStore {
    SqlStore::connect_sqlite_file(&server.data_dir.join("accord.db")).await.unwrap()
}

/// A scope string's scopes, in any order.
fn scope_set(scopes: &str) -> std::collections::BTreeSet<&str> {
    scopes.split_whitespace().collect()
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn pre_authorization_for_all_users() {
    let server = TestServer::start_with(&consent_world());
    let admin = server.client();
    let url =
        admin_consent_url(&server, "fabrikam.test", Some("https://graph.microsoft.com/.default"), VENDOR_ADMIN_CB);
    let (status, page) = page_after_sign_in(&admin, &server, &url, "admin@fabrikam.test", "admin-password-1").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Accept for your organisation"), "{page}");
    assert!(
        page.contains("Read all users&#x27; full profiles") || page.contains("Read all users' full profiles"),
        "application permission listed: {page}"
    );
    assert!(page.contains("Unverified"), "publisher shown as unverified");

    let res = submit(&admin, &server, &page, &[("decision", "accept")]).await;
    assert_eq!(res.status().as_u16(), 302);
    let loc = location(&res);
    assert!(loc.starts_with(VENDOR_ADMIN_CB), "{loc}");
    assert_eq!(query_param(&loc, "admin_consent").as_deref(), Some("True"));
    assert_eq!(query_param(&loc, "tenant").as_deref(), Some(FABRIKAM_ID));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("ac-1"));
    assert!(query_param(&loc, "scope").unwrap().contains("https://graph.microsoft.com/Calendars.Read"));

    // Every user now signs in without a prompt (user consent is off in Fabrikam).
    let frank = server.client();
    let loc = sign_in(
        &frank,
        &server,
        &authorize(&server, "fabrikam.test", "openid profile offline_access User.Read Calendars.Read", &[]),
        "frank@fabrikam.test",
        "frank-password-1",
    )
    .await
    .expect("no prompt after admin consent");
    let code = query_param(&loc, "code").unwrap();
    let (status, tokens) = redeem(&server, FABRIKAM_ID, &code, "openid offline_access User.Read Calendars.Read").await;
    assert_eq!(status, 200, "{tokens}");
    let scp = jwt_claims(tokens["access_token"].as_str().unwrap())["scp"].as_str().unwrap().to_string();
    // Exactly the organisation's grant (what the admin consented to with .default): the app's
    // configured Graph permissions, the OpenID ones included.
    let grant = "openid profile email offline_access User.Read Calendars.Read";
    assert_eq!(scope_set(&scp), scope_set(grant), "exactly the grant: {scp}");

    // And client credentials carry the application permissions granted.
    let body: Value = server
        .client()
        .post(server.url(&format!("/{FABRIKAM_ID}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", VENDOR_APP),
            ("client_secret", VENDOR_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles = jwt_claims(body["access_token"].as_str().unwrap())["roles"].clone();
    assert!(roles.as_array().unwrap().iter().any(|r| r == "User.Read.All"), "{roles}");

    // Back, then Accept again (issue 18): the app hears success again, but nothing changed,
    // so the audit log keeps one event.
    let page = admin.get(&url).send().await.unwrap().text().await.unwrap();
    let res = submit(&admin, &server, &page, &[("decision", "accept")]).await;
    assert_eq!(query_param(&location(&res), "admin_consent").as_deref(), Some("True"));

    // The audit log recorded the admin consent, once.
    let store = store_of(&server).await;
    let events = store
        .audit_events(FABRIKAM_ID.parse::<TenantId>().unwrap(), &accord_store::AuditQuery::latest(None, 50))
        .await
        .unwrap();
    let granted: Vec<_> = events.iter().filter(|e| e.action == "consent.admin.granted").collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0].actor, "admin@fabrikam.test");
}

#[tokio::test]
async fn admin_consent_refusals() {
    let server = TestServer::start_with(&consent_world());
    // Cancel: back to the app with access_denied and AADSTS65004.
    let c = server.client();
    let url = admin_consent_url(&server, "fabrikam.test", None, VENDOR_ADMIN_CB);
    let (_, page) = page_after_sign_in(&c, &server, &url, "admin@fabrikam.test", "admin-password-1").await;
    let res = submit(&c, &server, &page, &[("decision", "cancel")]).await;
    let loc = location(&res);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert!(query_param(&loc, "error_description").unwrap().starts_with("AADSTS65004"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("ac-1"));

    // A user without an admin role.
    let c = server.client();
    let loc = sign_in(&c, &server, &url, "frank@fabrikam.test", "frank-password-1").await.expect("redirect with error");
    assert!(query_param(&loc, "error_description").unwrap().starts_with("AADSTS90094"), "{loc}");
    assert!(query_param(&loc, "admin_consent").is_none());

    // A Cloud Application Administrator cannot grant Graph application permissions (/.default).
    let c = server.client();
    let loc =
        sign_in(&c, &server, &url, "appadmin@fabrikam.test", "appadmin-password-1").await.expect("redirect with error");
    let desc = query_param(&loc, "error_description").unwrap();
    assert!(desc.contains("Cloud Application Administrator") && desc.contains("User.Read.All"), "{desc}");
    // ...but may grant delegated Graph permissions with dynamic scopes.
    let url2 = admin_consent_url(&server, "fabrikam.test", Some("openid User.Read Calendars.Read"), VENDOR_ADMIN_CB);
    let res = c.get(&url2).send().await.unwrap();
    let page = res.text().await.unwrap();
    assert!(page.contains("Accept for your organisation"), "{page}");

    // Unregistered redirect URI: a page, never a redirect.
    let url = admin_consent_url(&server, "fabrikam.test", None, "https://evil.example/");
    let res = server.client().get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(location(&res).is_empty());
    assert!(res.text().await.unwrap().contains("AADSTS50011"));
    // /common is not an admin-consent authority.
    let res = server.client().get(admin_consent_url(&server, "common", None, VENDOR_ADMIN_CB)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(location(&res).is_empty());
}

#[tokio::test]
async fn pre_authorization_for_assigned_users_and_groups_only() {
    let server = TestServer::start_with(&consent_world());
    let scope = "openid profile User.Read";
    // Nina is in Team Leads, nested in the assigned group Sales.
    let nina = server.client();
    let loc = sign_in(
        &nina,
        &server,
        &authorize(&server, "northwind.test", scope, &[]),
        "nina@northwind.test",
        "nina-password-1",
    )
    .await
    .expect("assigned through a nested group");
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    // Paul is assigned directly with an app role, which appears in his id token.
    let paul = server.client();
    let loc = sign_in(
        &paul,
        &server,
        &authorize(&server, "northwind.test", scope, &[]),
        "paul@northwind.test",
        "paul-password-1",
    )
    .await
    .unwrap();
    let (_, tokens) = redeem(&server, "northwind.test", &query_param(&loc, "code").unwrap(), scope).await;
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["roles"], serde_json::json!(["Insights.Admin"]));
    // Oscar is not assigned: AADSTS50105, naming the app and the user.
    let oscar = server.client();
    let (status, page) = page_after_sign_in(
        &oscar,
        &server,
        &authorize(&server, "northwind.test", scope, &[]),
        "oscar@northwind.test",
        "oscar-password-1",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("AADSTS50105") && page.contains("Meeting Insights") && page.contains("oscar@northwind.test"),
        "{page}"
    );
    // Not a dead end (issue 18): the page offers another account and the way back to the app,
    // and shows no raw OAuth error row.
    assert!(page.contains("Ask your administrator to assign you access"), "{page}");
    assert!(!page.contains("invalid_grant"), "{page}");
    let link = |label: &str| {
        let end = page.find(label).unwrap_or_else(|| panic!("no {label:?} link: {page}"));
        let start = page[..end].rfind("href=\"").expect("a link") + 6;
        let href = &page[start..];
        html_unescape(&href[..href.find('"').unwrap()])
    };
    let back = link(">Back to Meeting Insights<");
    assert!(back.starts_with(VENDOR_CB), "back to the registered redirect URI: {back}");
    assert_eq!(query_param(&back, "error").as_deref(), Some("access_denied"));
    assert!(query_param(&back, "error_description").unwrap().starts_with("AADSTS50105"));
    assert_eq!(query_param(&back, "state").as_deref(), Some("st"));
    // Oscar's browser still holds his session; the link asks for an account again, and Nina,
    // who is assigned, gets a code there.
    let switch = link(">Sign in with a different account<");
    assert!(switch.contains("prompt=login") && switch.contains("state=st"), "{switch}");
    let loc = sign_in(&oscar, &server, &server.url(&switch), "nina@northwind.test", "nina-password-1")
        .await
        .expect("the sign-in page, then a code for Nina");
    assert!(loc.starts_with(VENDOR_CB) && query_param(&loc, "code").is_some(), "{loc}");
}

#[tokio::test]
async fn user_consent_incremental_cancel_org_option_and_form_safety() {
    let server = TestServer::start_with(&consent_world());
    let alice = server.client();
    let url = authorize(&server, "contoso.test", "openid profile offline_access User.Read", &[]);
    let (status, page) = page_after_sign_in(&alice, &server, &url, "alice@contoso.test", "alice-password-1").await;
    assert_eq!(status, 200);
    assert!(page.contains("Permissions requested") && page.contains("Sign you in and read your profile"), "{page}");
    assert!(!page.contains("on behalf of your organisation"), "ordinary users see no organisation option");

    // A forged CSRF token, then a forged form value, are refused.
    let res = submit(&alice, &server, &page, &[("decision", "accept"), ("csrf", "forged")]).await;
    assert_eq!(res.status().as_u16(), 400);
    let res = submit(&alice, &server, &page, &[("decision", "accept"), ("form", "forged")]).await;
    assert_eq!(res.status().as_u16(), 400);
    // Accept: a code, and the form cannot be replayed.
    let res = submit(&alice, &server, &page, &[("decision", "accept")]).await;
    assert_eq!(res.status().as_u16(), 302);
    let code = query_param(&location(&res), "code").expect("code after consent");
    let res = submit(&alice, &server, &page, &[("decision", "accept")]).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("already submitted"));
    // The token endpoint refuses scopes never consented (the code is for User.Read only).
    let (status, err) = redeem(&server, CONTOSO_ID, &code, "openid User.Read Calendars.Read").await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(err["suberror"], "consent_required");
    assert_eq!(err["error_codes"][0], 65001);
    // What was consented to is what a code redeems for: her session gets one without a prompt.
    let res = alice.get(authorize(&server, "contoso.test", "openid User.Read", &[])).send().await.unwrap();
    let code = query_param(&location(&res), "code").expect("a code without a prompt");
    let (status, tokens) = redeem(&server, CONTOSO_ID, &code, "openid User.Read").await;
    assert_eq!(status, 200, "{tokens}");
    let scp = jwt_claims(tokens["access_token"].as_str().unwrap())["scp"].as_str().unwrap().to_string();
    let consented = "openid profile offline_access User.Read";
    assert_eq!(scope_set(&scp), scope_set(consented), "what she consented to, no Calendars.Read: {scp}");

    // Incremental: only Calendars.Read is asked for now.
    let url = authorize(&server, "contoso.test", "openid User.Read Calendars.Read", &[]);
    let page = alice.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Read your calendars"), "{page}");
    assert!(
        !page.contains("Sign you in and read your profile"),
        "already granted permissions are not asked again: {page}"
    );
    // Cancel: access_denied, AADSTS65004, error_subcode=cancel.
    let res = submit(&alice, &server, &page, &[("decision", "cancel")]).await;
    let loc = location(&res);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "error_subcode").as_deref(), Some("cancel"));
    assert!(query_param(&loc, "error_description").unwrap().starts_with("AADSTS65004"));
    // prompt=consent re-prompts for what is already granted.
    let url = authorize(&server, "contoso.test", "openid User.Read", &[("prompt", "consent")]);
    let page = alice.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Permissions requested"), "{page}");

    // A Global Administrator sees the organisation option; checked, Bob needs no prompt.
    let admin = server.client();
    let url = authorize(&server, "contoso.test", "openid profile User.Read Calendars.Read", &[]);
    let (_, page) = page_after_sign_in(&admin, &server, &url, "admin@contoso.test", "admin-password-1").await;
    assert!(page.contains("Consent on behalf of your organisation"), "{page}");
    let res = submit(&admin, &server, &page, &[("decision", "accept"), ("org", "on")]).await;
    assert_eq!(res.status().as_u16(), 302);
    let bob = server.client();
    let loc = sign_in(&bob, &server, &url, "bob@contoso.test", "bob-password-1")
        .await
        .expect("organisation consent covers Bob");
    assert!(query_param(&loc, "code").is_some());

    // A single-org app from another tenant does not exist here.
    let mut other = reqwest::Url::parse(&server.url("/contoso.test/oauth2/v2.0/authorize")).unwrap();
    other
        .query_pairs_mut()
        .append_pair("client_id", "dddddddd-0000-4000-8000-000000000002")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", "https://internal.example/cb")
        .append_pair("scope", "openid");
    let res = bob.get(other.as_str()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS700016"));
    // Scopes that do not exist, or resources that are not here.
    let loc = location(&bob.get(authorize(&server, "contoso.test", "openid Mail.Fly", &[])).send().await.unwrap());
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_scope"), "{loc}");
    let res = bob.get(authorize(&server, "contoso.test", "api://nowhere/Read", &[])).send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("AADSTS500011"), "{body}");
}

async fn file_request(server: &TestServer, upn: &str, pw: &str) -> reqwest::Client {
    let c = server.client();
    let url = authorize(server, "fabrikam.test", "openid profile User.Read Calendars.Read", &[]);
    let (status, page) = page_after_sign_in(&c, server, &url, upn, pw).await;
    assert_eq!(status, 200);
    assert!(page.contains("Approval required"), "{page}");
    let res = submit(&c, server, &page, &[("reason", "")]).await;
    assert_eq!(res.status().as_u16(), 400, "an empty justification is refused");
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let res = submit(&c, server, &page, &[("reason", "I need my meetings in <b>Insights</b>")]).await;
    assert_eq!(res.status().as_u16(), 200);
    let sent = res.text().await.unwrap();
    assert!(sent.contains("Request sent"), "{sent}");
    // It says where the answer will be, and leads back to the app (issue 18).
    assert!(sent.contains("href=\"&#x2f;myapps\"") || sent.contains("href=\"/myapps\""), "{sent}");
    assert!(sent.contains(&format!("href=\"{}", VENDOR_CB.replace('/', "&#x2f;"))), "{sent}");
    // Offering the way back is not an error: no AADSTS90094 is counted for a request sent.
    let metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("code=\"90094\""), "{metrics}");
    c
}

#[tokio::test]
async fn approval_request_then_approve() {
    let server = TestServer::start_sharing_store(&consent_world());
    let frank = file_request(&server, "frank@fabrikam.test", "frank-password-1").await;
    // A repeat visit shows the pending request instead of filing another.
    let url = authorize(&server, "fabrikam.test", "openid profile User.Read Calendars.Read", &[]);
    let page = frank.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("waiting for an administrator"), "{page}");

    let data = server.data_dir.to_str().unwrap().to_string();
    let (code, out, err) = accord(&["requests", "list", "--data-dir", &data, "--tenant", "fabrikam.test"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "one request: {out}");
    let id = lines[0].split_whitespace().next().unwrap().to_string();
    let (_, show, _) = accord(&["requests", "show", "--data-dir", &data, "--tenant", "fabrikam.test", &id]);
    assert!(show.contains("I need my meetings") && show.contains("frank@fabrikam.test"), "{show}");

    // A reviewer without a granting role cannot approve; one with it can.
    let (code, _, err) = accord(&[
        "requests",
        "approve",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "rita@fabrikam.test",
        &id,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("AADSTS90094"), "{err}");
    let (code, _, err) = accord(&[
        "requests",
        "approve",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "admin@fabrikam.test",
        &id,
    ]);
    assert_eq!(code, 0, "{err}");

    // Frank now gets in, and was told.
    let loc = sign_in(&frank, &server, &url, "frank@fabrikam.test", "frank-password-1").await.expect("approved");
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    let store = store_of(&server).await;
    let fab = FABRIKAM_ID.parse::<TenantId>().unwrap();
    let notes = store.notifications(fab).await.unwrap();
    assert!(
        notes.iter().any(|n| n.kind == "request.new" && n.recipient_address == "rita@fabrikam.test"),
        "reviewers in a group are notified"
    );
    assert!(notes.iter().any(|n| n.kind == "request.approved" && n.recipient_address == "frank@fabrikam.test"));
    let (code, _, err) = accord(&[
        "requests",
        "approve",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "admin@fabrikam.test",
        &id,
    ]);
    assert_ne!(code, 0, "a decided request cannot be approved twice");
    assert!(err.contains("already"), "{err}");
}

#[tokio::test]
async fn approval_request_deny_block_and_expiry() {
    let server = TestServer::start_sharing_store(&consent_world());
    let data = server.data_dir.to_str().unwrap().to_string();
    let store = store_of(&server).await;
    let fab = FABRIKAM_ID.parse::<TenantId>().unwrap();
    let app = VENDOR_APP.parse::<AppId>().unwrap();

    let grace = file_request(&server, "grace@fabrikam.test", "grace-password-1").await;
    let id = store.consent_requests(fab, Some(app)).await.unwrap()[0].id.to_string();
    let (code, _, err) = accord(&[
        "requests",
        "deny",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "rita@fabrikam.test",
        "--justification",
        " ",
        &id,
    ]);
    assert_ne!(code, 0, "a justification is required");
    assert!(err.contains("justification"), "{err}");
    let (code, _, err) = accord(&[
        "requests",
        "deny",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "rita@fabrikam.test",
        "--justification",
        "Not approved vendor",
        &id,
    ]);
    assert_eq!(code, 0, "{err}");
    // Denied: Grace may ask again, and is told who said no, when and why (issue 18).
    let url = authorize(&server, "fabrikam.test", "openid profile User.Read Calendars.Read", &[]);
    let page = grace.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Request approval") && !page.contains("waiting for"), "{page}");
    assert!(page.contains("id=\"last-denial\""), "{page}");
    assert!(page.contains("<strong>denied</strong> by Rita") && page.contains("“Not approved vendor”"), "{page}");
    assert!(page.contains("You may ask again"), "{page}");

    // Expiry: a request past its date expires (the background job's function).
    let _ = file_request(&server, "frank@fabrikam.test", "frank-password-1").await;
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(8);
    let n = accord_server::service::admin_consent_requests::expire_due(&store, later).await.unwrap();
    assert_eq!(n, 1);
    let requests = store.consent_requests(fab, Some(app)).await.unwrap();
    assert!(requests.iter().any(|r| r.status == RequestStatus::Expired));
    assert!(store.notifications(fab).await.unwrap().iter().any(|n| n.kind == "request.expired"));

    // Block: the app is disabled in Fabrikam; users are refused and cannot ask again.
    let _ = file_request(&server, "frank@fabrikam.test", "frank-password-1").await;
    let pending = store
        .consent_requests(fab, Some(app))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.status == RequestStatus::InProgress)
        .unwrap();
    let (code, _, err) = accord(&[
        "requests",
        "block",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--as",
        "admin@fabrikam.test",
        "--justification",
        "Blocked by policy",
        &pending.id.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let res = grace.get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // Entra's wording names the app after its id, and the page says who did it and offers
    // another account (issue 18).
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "AADSTS7000112</strong>: Application &#x27;{VENDOR_APP}&#x27;(Meeting Insights) is disabled."
        )),
        "{page}"
    );
    assert!(
        page.contains("An administrator of your organisation has disabled this application or blocked it"),
        "{page}"
    );
    assert!(page.contains(">Sign in with a different account<"), "{page}");
}

#[tokio::test]
async fn revocation_takes_effect_at_refresh() {
    let server = TestServer::start_sharing_store(&consent_world());
    let alice = server.client();
    let scope = "openid offline_access User.Read";
    let (_, page) = page_after_sign_in(
        &alice,
        &server,
        &authorize(&server, "contoso.test", scope, &[]),
        "alice@contoso.test",
        "alice-password-1",
    )
    .await;
    let res = submit(&alice, &server, &page, &[("decision", "accept")]).await;
    let code = query_param(&location(&res), "code").unwrap();
    let (_, tokens) = redeem(&server, CONTOSO_ID, &code, scope).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, next) = refresh(&server, CONTOSO_ID, &rt).await;
    assert_eq!(status, 200, "{next}");

    // Alice's grant is revoked.
    let store = store_of(&server).await;
    let contoso = CONTOSO_ID.parse::<TenantId>().unwrap();
    let grants = store.delegated_grants(contoso).await.unwrap();
    let changes: Vec<Change> =
        grants.iter().map(|g| Change::DeleteDelegatedGrant { tenant_id: contoso, grant_id: g.id }).collect();
    store.apply(&changes).await.unwrap();
    let (status, err) = refresh(&server, CONTOSO_ID, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(err["suberror"], "consent_required", "{err}");
    assert_eq!(err["error_codes"][0], 65001);
}

#[tokio::test]
async fn explain_prints_the_rules() {
    let server = TestServer::start_with(&consent_world());
    let data = server.data_dir.to_str().unwrap().to_string();
    let (code, out, err) = accord(&[
        "explain",
        "--data-dir",
        &data,
        "--tenant",
        "northwind.test",
        "--user",
        "oscar@northwind.test",
        "--app",
        VENDOR_APP,
        "--scope",
        "openid User.Read",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("AADSTS50105") && out.contains("Meeting Insights"), "{out}");
    let (_, out, _) = accord(&[
        "explain",
        "--data-dir",
        &data,
        "--tenant",
        "fabrikam.test",
        "--user",
        "frank@fabrikam.test",
        "--app",
        VENDOR_APP,
        "--scope",
        "openid User.Read",
    ]);
    assert!(out.contains("approval required"), "{out}");
}
