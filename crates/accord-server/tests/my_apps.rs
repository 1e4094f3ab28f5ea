//! My Apps over HTTPS: the apps a user can use and why, the permissions each holds on their
//! behalf, their approval requests, and revoking their own consent — which the token endpoint
//! then enforces at the next refresh — with the refusals (forged CSRF, the organisation's
//! consent, someone else's consent) and escaping.

mod support;

use accord_core::directory::ConsentType;
use accord_store::{SqlStore, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::*;

const WOODGROVE_ID: &str = "eeeeeeee-0000-4000-8000-000000000002";
const ORG_CALENDAR: &str = "ffffffff-0000-4000-8000-000000000001";
const NOTES_APP: &str = "ffffffff-0000-4000-8000-000000000002";
const NOTES_SECRET: &str = "notes-secret-1";
const NOTES_CB: &str = "https://notes.example/cb";
const NOTES_SCOPE: &str = "openid offline_access User.Read";
const HR_REPORTS: &str = "ffffffff-0000-4000-8000-00000000000a";
const PAYROLL_SYNC: &str = "ffffffff-0000-4000-8000-00000000000b";

fn my_apps_world() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/my_apps_world.toml")
}

fn authorize(server: &TestServer, client_id: &str, redirect: &str, scope: &str) -> String {
    let mut url = reqwest::Url::parse(&server.url("/woodgrove.test/oauth2/v2.0/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "st");
    url.to_string()
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

async fn store_of(server: &TestServer) -> SqlStore {
    SqlStore::connect_sqlite_file(&server.data_dir.join("accord.db")).await.unwrap()
}

/// Mia consents to Notes App on the consent page; returns her browser and a refresh token.
async fn consent_to_notes(server: &TestServer) -> (reqwest::Client, String) {
    let mia = server.client();
    let url = authorize(server, NOTES_APP, NOTES_CB, NOTES_SCOPE);
    let (status, page) = match sign_in(&mia, server, &url, "mia@woodgrove.test", "mia-password-1").await {
        Ok(loc) => panic!("expected the consent page, got {loc}"),
        Err(page) => page,
    };
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Permissions requested"), "{page}");
    let res = submit(&mia, server, &page, &[("decision", "accept")]).await;
    let code = query_param(&location(&res), "code").expect("a code after consent");
    let tokens: Value = server
        .client()
        .post(server.url(&format!("/{WOODGROVE_ID}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", NOTES_APP),
            ("client_secret", NOTES_SECRET),
            ("code", &code),
            ("redirect_uri", NOTES_CB),
            ("scope", NOTES_SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap_or_else(|| panic!("refresh token: {tokens}")).to_string();
    (mia, rt)
}

async fn refresh_notes(server: &TestServer, rt: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{WOODGROVE_ID}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", NOTES_APP),
            ("client_secret", NOTES_SECRET),
            ("refresh_token", rt),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Files an admin-consent request for `client_id` (it asks for an admin-only permission).
async fn request_approval(server: &TestServer, browser: &reqwest::Client, client_id: &str, redirect: &str, why: &str) {
    let url = authorize(server, client_id, redirect, "openid User.Read.All");
    let page = browser.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Approval required"), "{page}");
    let res = submit(browser, server, &page, &[("reason", why)]).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("Request sent"));
}

async fn my_apps(browser: &reqwest::Client, server: &TestServer) -> String {
    let res = browser.get(server.url("/myapps")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.unwrap()
}

/// The `<article>` of one app on the page, found by its (escaped) name.
fn entry<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let at = html.find(&format!(">{name}</h3>"))?;
    let start = html[..at].rfind("<article")?;
    let end = html[at..].find("</article>")? + at;
    Some(&html[start..end])
}

/// The section of the page under a heading, up to the next `</section>`.
fn section<'a>(html: &'a str, heading: &str) -> &'a str {
    let at = html.find(heading).unwrap_or_else(|| panic!("no section {heading}"));
    let end = html[at..].find("</section>").map(|e| e + at).unwrap_or(html.len());
    &html[at..end]
}

async fn post_revoke(browser: &reqwest::Client, server: &TestServer, fields: &[(&str, &str)]) -> reqwest::Response {
    browser.post(server.url("/myapps/revoke")).form(fields).send().await.unwrap()
}

#[tokio::test]
async fn my_apps_lists_apps_with_reasons_permissions_and_requests() {
    let server = TestServer::start_with(&my_apps_world());

    // Without a session: to the sign-in form and back.
    let res = server.client().get(server.url("/myapps")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(location(&res), "/portal/signin?return_to=%2Fmyapps");

    // Mia consents to Notes App, and asks for two apps that need an administrator.
    let (mia, _) = consent_to_notes(&server).await;
    request_approval(&server, &mia, HR_REPORTS, "https://hr.example/cb", "Quarterly <b>headcount</b> report").await;
    request_approval(&server, &mia, PAYROLL_SYNC, "https://payroll.example/cb", "I run the monthly payroll export")
        .await;
    let data = server.data_dir.to_str().unwrap().to_string();
    let store = store_of(&server).await;
    let woodgrove = WOODGROVE_ID.parse().unwrap();
    let hr = store.consent_requests(woodgrove, Some(HR_REPORTS.parse().unwrap())).await.unwrap();
    let (code, _, err) = accord(&[
        "requests",
        "deny",
        "--data-dir",
        &data,
        "--tenant",
        "woodgrove.test",
        "--as",
        "admin@woodgrove.test",
        "--justification",
        "Use the HR portal instead",
        &hr[0].id.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");

    // Signing in through the portal lands on My Apps.
    let browser = server.client();
    let loc = sign_in(
        &browser,
        &server,
        &server.url("/portal/signin?return_to=/myapps"),
        "mia@woodgrove.test",
        "mia-password-1",
    )
    .await
    .expect("signed in");
    assert_eq!(loc, "/myapps");
    let html = my_apps(&browser, &server).await;
    assert!(html.contains("Mia Moss") && html.contains("mia@woodgrove.test"), "{html}");
    assert!(
        html.contains(&format!("href=\"&#x2f;{WOODGROVE_ID}&#x2f;oauth2&#x2f;v2.0&#x2f;logout\"")),
        "sign-out link"
    );
    assert!(html.contains(">Sign out</a>"));
    assert!(!html.contains("href=\"/admin\""), "no admin center link for a user without a role");
    let usable = section(&html, "id=\"apps-heading\"");

    // The organisation's consent.
    let calendar = entry(usable, "Org Calendar").expect("Org Calendar listed");
    assert!(calendar.contains("Your organisation&#x27;s administrator consented on"), "{calendar}");
    assert!(calendar.contains("Read your calendars") && calendar.contains("Sign you in and read your profile"));
    assert!(calendar.contains("Microsoft Graph"));
    assert!(calendar.contains("Granted by your organisation; ask an administrator"));
    assert!(!calendar.contains("<form"), "no revoke form for the organisation's consent");
    assert!(!calendar.contains("You consented"));

    // Her own consent, with the permissions and a revoke form.
    let notes = entry(usable, "Notes App").expect("Notes App listed");
    assert!(notes.contains("You consented on"), "{notes}");
    assert!(notes.contains("Sign you in and read your profile") && notes.contains("Maintain access to data"));
    assert!(notes.contains("action=\"/myapps/revoke\"") && notes.contains("name=\"confirm\""));
    assert!(notes.contains("required"), "the confirmation box is required");
    assert!(!notes.contains("Granted by your organisation"));

    // Assigned through her nested group, with the role it gives.
    let dashboard = entry(usable, "Sales Dashboard").expect("Sales Dashboard listed");
    assert!(dashboard.contains("Assigned to your group Sales"), "{dashboard}");
    assert!(dashboard.contains("Your organisation&#x27;s administrator consented"));
    assert!(dashboard.contains("Dashboard viewer"));

    // Assigned to her directly, not consented yet.
    let wiki = entry(usable, "Team Wiki").expect("Team Wiki listed");
    assert!(wiki.contains("Assigned to you<"), "{wiki}");
    assert!(wiki.contains("You have not consented to this app yet"), "{wiki}");

    // Permissions per resource with the API's user-facing names.
    let expenses = entry(usable, "Expenses Web").expect("Expenses Web listed");
    assert!(expenses.contains("<caption>Expenses API</caption>"), "{expenses}");
    assert!(expenses.contains("Read your expense reports") && !expenses.contains("Read users&#x27; expense reports"));
    assert!(expenses.contains("<caption>Microsoft Graph</caption>") && expenses.contains("Sign you in"));

    // Not assigned, disabled: not usable, not listed.
    assert!(!html.contains("Restricted Tool"), "not assigned");
    assert!(!html.contains("Disabled App"), "disabled");
    // Consented, then disabled: shown apart, with her consent still revocable.
    assert!(entry(usable, "Old Tool").is_none());
    let gone = section(&html, "id=\"unavailable-heading\"");
    let old = entry(gone, "Old Tool").expect("Old Tool under apps you can no longer use");
    assert!(old.contains("AADSTS7000112"), "{old}");
    assert!(old.contains("name=\"grants\""));

    // Escaping: the app named <script>x</script>.
    assert!(usable.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"), "escaped name listed");
    assert!(!html.contains("<script>x"), "no markup from names");

    // Her requests: pending and past, with the reviewer's justification.
    let requests = section(&html, "id=\"requests-heading\"");
    let (pending, past) = requests.split_at(requests.find("<h3>Past</h3>").unwrap());
    assert!(pending.contains("Payroll Sync") && pending.contains("I run the monthly payroll export"), "{pending}");
    assert!(pending.contains("Read all users&#x27; full profiles"));
    assert!(!pending.contains("HR Reports"));
    assert!(
        past.contains("HR Reports") && past.contains("Denied") && past.contains("Use the HR portal instead"),
        "{past}"
    );
    assert!(past.contains("Woodgrove Admin"));
    assert!(past.contains("Quarterly &lt;b&gt;headcount&lt;&#x2f;b&gt; report"), "justification escaped");
    assert!(!html.contains("Payroll Sync</h3>"), "a requested app is not usable yet");

    // An administrator gets the admin center link.
    let admin = server.client();
    sign_in(
        &admin,
        &server,
        &server.url("/portal/signin?return_to=/myapps"),
        "admin@woodgrove.test",
        "admin-password-1",
    )
    .await
    .expect("signed in");
    let html = my_apps(&admin, &server).await;
    assert!(html.contains("href=\"&#x2f;admin\"") || html.contains("href=\"/admin\""), "admin center link");
    assert!(!html.contains("Notes App"), "Mia's own consent is hers");
}

#[tokio::test]
async fn revoking_own_consent_ends_refresh_and_other_grants_are_refused() {
    let server = TestServer::start_with(&my_apps_world());
    let (mia, rt) = consent_to_notes(&server).await;
    let (status, next) = refresh_notes(&server, &rt).await;
    assert_eq!(status, 200, "{next}");
    let rt = next["refresh_token"].as_str().unwrap().to_string();

    let html = my_apps(&mia, &server).await;
    let notes = entry(&html, "Notes App").expect("Notes App listed");
    let (action, fields) = form_fields(notes);
    assert_eq!(action, "/myapps/revoke");
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    let (csrf, grants) = (field("csrf"), field("grants"));
    assert_eq!(field("confirm"), "yes");

    // A forged CSRF token is refused, and nothing changes.
    let res = post_revoke(&mia, &server, &[("csrf", "forged"), ("grants", &grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS90014"));
    // Without the confirmation box, nothing is revoked either.
    let res = post_revoke(&mia, &server, &[("csrf", &csrf), ("grants", &grants)]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/myapps?notice=unconfirmed");
    let (status, next) = refresh_notes(&server, &rt).await;
    assert_eq!(status, 200, "still consented: {next}");
    let rt = next["refresh_token"].as_str().unwrap().to_string();

    // The organisation's consent cannot be revoked by Mia, even with a crafted form.
    let store = store_of(&server).await;
    let woodgrove = WOODGROVE_ID.parse().unwrap();
    let calendar_sp =
        store.service_principal_by_app_id(woodgrove, ORG_CALENDAR.parse().unwrap()).await.unwrap().unwrap();
    let org_grant = store
        .delegated_grants_of_client(woodgrove, calendar_sp.id)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.consent_type == ConsentType::AllPrincipals)
        .unwrap();
    let res =
        post_revoke(&mia, &server, &[("csrf", &csrf), ("grants", &org_grant.id.to_string()), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.text().await.unwrap().contains("AADSTS90093"));
    assert!(store.delegated_grant(woodgrove, org_grant.id).await.unwrap().is_some(), "organisation grant kept");

    // Nor can Leo revoke Mia's consent.
    let leo = server.client();
    sign_in(&leo, &server, &server.url("/portal/signin?return_to=/myapps"), "leo@woodgrove.test", "leo-password-1")
        .await
        .expect("signed in");
    let leo_page = my_apps(&leo, &server).await;
    assert!(!leo_page.contains("Notes App") && !leo_page.contains("<form"), "Leo has nothing to revoke");
    let res = post_revoke(&leo, &server, &[("csrf", &csrf), ("grants", &grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 400, "another browser's CSRF token is refused");
    // With a valid token of his own browser (any of our forms carries one), the service refuses.
    let signin = leo.get(server.url("/portal/signin?return_to=/myapps")).send().await.unwrap().text().await.unwrap();
    let leo_csrf = form_fields(&signin).1.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).unwrap();
    let res = post_revoke(&leo, &server, &[("csrf", &leo_csrf), ("grants", &grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 403);
    let (status, next) = refresh_notes(&server, &rt).await;
    assert_eq!(status, 200, "Mia's consent is intact: {next}");
    let rt = next["refresh_token"].as_str().unwrap().to_string();

    // Mia revokes her own consent: POST, then redirect to the list with the fixed message.
    let res = post_revoke(&mia, &server, &[("csrf", &csrf), ("grants", &grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/myapps?notice=revoked");
    let page = mia.get(server.url("/myapps?notice=revoked")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Your consent was revoked"), "{page}");
    assert!(entry(&page, "Notes App").is_none(), "no longer listed");
    assert!(entry(&page, "Org Calendar").is_some(), "the organisation's consent stays");
    let audit = store
        .audit_events(woodgrove, &accord_store::AuditQuery::latest(Some(NOTES_APP.parse().unwrap()), 10))
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "consent.revoked" && e.actor == "mia@woodgrove.test"));

    // The token endpoint re-checks consent at refresh: AADSTS65001.
    let (status, err) = refresh_notes(&server, &rt).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant", "{err}");
    assert_eq!(err["error_codes"], serde_json::json!([65001]), "{err}");
    assert_eq!(err["suberror"], "consent_required");

    // A second submission of the same form finds nothing to revoke.
    let res = post_revoke(&mia, &server, &[("csrf", &csrf), ("grants", &grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 400);

    // Her consent to an app disabled since is revocable too, from "Apps you can no longer use".
    let page = my_apps(&mia, &server).await;
    let old = entry(&page, "Old Tool").expect("Old Tool listed");
    let (_, fields) = form_fields(old);
    let old_grants = fields.iter().find(|(k, _)| k == "grants").map(|(_, v)| v.clone()).unwrap();
    let res = post_revoke(&mia, &server, &[("csrf", &csrf), ("grants", &old_grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 303);
    let page = my_apps(&mia, &server).await;
    assert!(!page.contains("Old Tool") && !page.contains("unavailable-heading"), "nothing left to revoke");

    // Without a session, a revoke goes to the sign-in form and comes back to the list.
    let res = post_revoke(&server.client(), &server, &[("grants", &old_grants), ("confirm", "yes")]).await;
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(location(&res), "/portal/signin?return_to=%2Fmyapps%2Frevoke");
    let res = mia.get(server.url("/myapps/revoke")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/myapps".to_string()));
}
