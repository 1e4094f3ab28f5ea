//! The admin center over HTTPS, walking the guide's stories as an administrator would:
//! "Enterprise Applications > All Applications > app > Users and Groups > Add User/Group",
//! "Grant admin consent", "requests pending approval in the admin center", revoking, the
//! consent settings, users and groups, app registrations with a secret shown once — and the
//! role gating, CSRF and escaping around them.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::*;

const INSIGHTS: &str = "ffffffff-0000-4000-8000-000000000001";
const INSIGHTS_SECRET: &str = "vendor-secret-1";
const INSIGHTS_CB: &str = "https://vendor.example/cb";
const EVIL: &str = "ffffffff-0000-4000-8000-000000000002";
const EVIL_CB: &str = "https://evil.example/cb";
const EVIL_NAME_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";
const CONTOSO_ID: &str = "eeeeeeee-0000-4000-8000-000000000002";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admin_center.toml")
}

/// A browser signed in to the admin center; remembers the CSRF token of the last form seen.
struct Browser<'a> {
    server: &'a TestServer,
    client: reqwest::Client,
    csrf: String,
}

struct Posted {
    status: u16,
    location: String,
    body: String,
}

impl<'a> Browser<'a> {
    async fn sign_in(server: &'a TestServer, upn: &str, password: &str) -> Browser<'a> {
        let client = server.client();
        let loc = sign_in(&client, server, &server.url("/portal/signin?return_to=/admin"), upn, password)
            .await
            .unwrap_or_else(|(s, page)| panic!("sign-in of {upn} failed ({s}): {page}"));
        assert_eq!(loc, "/admin");
        Browser { server, client, csrf: String::new() }
    }

    /// GETs an admin page; every page works without script.
    async fn get(&mut self, path: &str) -> (u16, String) {
        let res = self.client.get(self.server.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        let html = res.text().await.unwrap();
        assert!(!html.contains("<script"), "{path} carries no script: {html}");
        if let Some(token) = attr_value_after(&html, "name=\"csrf\"") {
            self.csrf = token;
        }
        (status, html)
    }

    async fn page(&mut self, path: &str) -> String {
        let (status, html) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {html}");
        html
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Posted {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Posted {
        let res = self.client.post(self.server.url(path)).form(form).send().await.unwrap();
        let status = res.status().as_u16();
        let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        Posted { status, location, body: res.text().await.unwrap() }
    }

    /// POSTs and follows the POST-redirect-GET; returns the page shown with its message.
    async fn post_ok(&mut self, path: &str, fields: &[(&str, &str)]) -> String {
        let p = self.post(path, fields).await;
        assert_eq!(p.status, 302, "POST {path} {fields:?}: {}", p.body);
        assert!(p.location.contains("?done="), "{}", p.location);
        self.page(&p.location.clone()).await
    }
}

/// Undoes the template engine's HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `value="…"` in the tag that contains `marker`.
fn attr_value_after(html: &str, marker: &str) -> Option<String> {
    let i = html.find(marker)?;
    let start = html[..i].rfind('<')?;
    let end = html[i..].find('>')? + i;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    Some(unescape(&tag[v..v + tag[v..].find('"')?]))
}

/// The last `value="…"` before `text` (a radio or checkbox and its label).
fn value_before(html: &str, text: &str) -> String {
    let i = html.find(text).unwrap_or_else(|| panic!("{text} not on the page: {html}"));
    let v = html[..i].rfind("value=\"").unwrap() + 7;
    unescape(&html[v..v + html[v..].find('"').unwrap()])
}

/// The href of the link whose text is `text`.
fn link(html: &str, text: &str) -> String {
    let i = html.find(&format!(">{text}</a>")).unwrap_or_else(|| panic!("no link {text}: {html}"));
    let h = html[..i].rfind("href=\"").unwrap() + 6;
    unescape(&html[h..h + html[h..].find('"').unwrap()])
}

/// The href of the first link whose address contains `part`.
fn link_containing(html: &str, part: &str) -> String {
    let html = unescape(html);
    let i = html.find(part).unwrap_or_else(|| panic!("no link to {part}: {html}"));
    let h = html[..i].rfind("href=\"").unwrap() + 6;
    html[h..h + html[h..].find('"').unwrap()].to_string()
}

/// The breadcrumb labels, in order.
fn crumbs(html: &str) -> Vec<String> {
    let nav = &html[html.find("aria-label=\"Breadcrumb\"").unwrap()..];
    let nav = &nav[..nav.find("</nav>").unwrap()];
    nav.split("<li>")
        .skip(1)
        .map(|li| {
            let text: String = li.split('>').filter_map(|s| s.split('<').next()).collect();
            text.trim().to_string()
        })
        .collect()
}

fn authorize_url(server: &TestServer, client_id: &str, redirect: &str, scope: &str) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{CONTOSO_ID}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "s");
    url.to_string()
}

/// A user's sign-in to an app: the redirect (with a code) or the page shown instead.
async fn user_signs_in(
    server: &TestServer,
    client_id: &str,
    redirect: &str,
    upn: &str,
    pw: &str,
) -> Result<String, (u16, String)> {
    let c = server.client();
    sign_in(&c, server, &authorize_url(server, client_id, redirect, "openid profile User.Read Calendars.Read"), upn, pw)
        .await
}

/// Files an admin consent request through the "Approval required" page.
async fn request_approval(
    server: &TestServer,
    client_id: &str,
    redirect: &str,
    scope: &str,
    upn: &str,
    pw: &str,
    reason: &str,
) {
    let c = server.client();
    let (status, page) = sign_in(&c, server, &authorize_url(server, client_id, redirect, scope), upn, pw)
        .await
        .expect_err("approval page, not a redirect");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Approval required"), "{page}");
    let res = submit(&c, server, &page, &[("reason", reason)]).await;
    let sent = res.text().await.unwrap();
    assert!(sent.contains("Request sent"), "{sent}");
}

async fn redeem(server: &TestServer, code: &str) -> Value {
    server
        .client()
        .post(server.url(&format!("/{CONTOSO_ID}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", INSIGHTS),
            ("client_secret", INSIGHTS_SECRET),
            ("code", code),
            ("redirect_uri", INSIGHTS_CB),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn client_credentials(server: &TestServer, client_id: &str, secret: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO_ID}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Option 1 of the guide for assigned users and groups only: assignment required, "Add
/// user/group" for yourself and a group, "Grant admin consent for Contoso" — then revoke.
#[tokio::test]
async fn assignment_required_admin_consent_and_revocation() {
    let server = TestServer::start_with(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;

    // The frame: who is signed in, the organisation, sign-out, the navigation.
    let home = admin.page("/admin").await;
    assert!(home.contains("Contoso Admin (admin@contoso.test)"), "{home}");
    assert_eq!(link(&home, "Sign out"), format!("/{CONTOSO_ID}/oauth2/v2.0/logout"));
    for item in [
        "Home",
        "Enterprise applications",
        "App registrations",
        "Users",
        "Groups",
        "Consent and permissions",
        "Admin consent requests",
        "Audit log",
    ] {
        assert!(home.contains(&format!(">{item}</a>")), "nav has {item}");
    }

    // Enterprise applications > All applications: search by name and by app id, filters.
    let list = admin.page("/admin/enterprise-apps?q=insights").await;
    assert!(list.contains("Meeting Insights") && !list.contains("Microsoft Graph"), "{list}");
    assert_eq!(crumbs(&list), ["Home", "Enterprise applications", "All applications"]);
    let by_id = admin.page(&format!("/admin/enterprise-apps?q={INSIGHTS}")).await;
    assert!(by_id.contains("Meeting Insights"));
    let filtered = admin.page("/admin/enterprise-apps?assignment=yes").await;
    assert!(filtered.contains("No application matches."), "{filtered}");
    let app = link(&list, "Meeting Insights");

    // Overview.
    let overview = admin.page(&app).await;
    assert!(
        overview.contains(INSIGHTS) && overview.contains("Vendor") && overview.contains("Unverified"),
        "{overview}"
    );
    assert_eq!(
        crumbs(&overview),
        ["Home", "Enterprise applications", "All applications", "Meeting Insights", "Overview"]
    );

    // Properties: assignment required.
    admin.page(&format!("{app}/properties")).await;
    let saved =
        admin.post_ok(&format!("{app}/properties"), &[("enabled", "yes"), ("assignment_required", "yes")]).await;
    assert!(saved.contains("Your changes were saved."), "{saved}");
    assert!(saved.contains("name=\"assignment_required\" value=\"yes\" checked"), "{saved}");
    // Nobody is assigned yet: the page warns that everyone is locked out (issue 18).
    assert!(saved.contains("id=\"nobody-assigned\"") && saved.contains("Nobody can sign in to Meeting Insights"));
    assert!(saved.contains("id=\"assign-me\""), "{saved}");
    // The page's own values never shadow the layout's: the header still names who is signed in.
    assert!(saved.contains("<span class=\"user\">Contoso Admin (admin@contoso.test)</span>"), "{saved}");
    let filtered = admin.page("/admin/enterprise-apps?assignment=yes").await;
    assert!(filtered.contains("Meeting Insights"));

    // Users and groups > Add user/group: yourself, and the Sales group with a role.
    let users = admin.page(&format!("{app}/users-and-groups")).await;
    assert_eq!(
        crumbs(&users),
        ["Home", "Enterprise applications", "All applications", "Meeting Insights", "Users and groups"]
    );
    assert_eq!(link(&users, "+ Add user/group"), format!("{app}/users-and-groups/add"));
    let add = admin.page(&format!("{app}/users-and-groups/add?q=admin")).await;
    assert!(add.contains("<legend>Users and groups"), "accessible fieldsets: {add}");
    let me = value_before(&add, "Contoso Admin<span");
    admin.post_ok(&format!("{app}/users-and-groups/add"), &[("principal", &me), ("role", "")]).await;
    let add = admin.page(&format!("{app}/users-and-groups/add?q=sales")).await;
    let sales = value_before(&add, "Sales<span");
    let role = value_before(&add, "Insights administrator (Insights.Admin)");
    let users = admin.post_ok(&format!("{app}/users-and-groups/add"), &[("principal", &sales), ("role", &role)]).await;
    assert!(users.contains("The user or group was assigned"), "{users}");
    assert!(users.contains("Contoso Admin") && users.contains("Default Access"), "{users}");
    assert!(users.contains("Sales") && users.contains("Insights administrator (Insights.Admin)"), "{users}");
    let properties = admin.page(&format!("{app}/properties")).await;
    assert!(!properties.contains("id=\"nobody-assigned\""), "assigned now: no warning");

    // Permissions > Grant admin consent for Contoso: a confirmation listing what is granted.
    let perms = admin.page(&format!("{app}/permissions")).await;
    assert!(perms.contains("No admin consent."), "{perms}");
    let confirm_url = link(&perms, "Grant admin consent for Contoso");
    let confirm = admin.page(&confirm_url).await;
    assert!(confirm.contains("Calendars.Read") && confirm.contains("Application permissions"), "{confirm}");
    let shown = attr_value_after(&confirm, "name=\"shown\"").unwrap();
    // A stale or forged confirmation grants nothing.
    let stale = admin.post(&confirm_url, &[("shown", "something else")]).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    let perms = admin.post_ok(&confirm_url, &[("shown", &shown)]).await;
    assert!(perms.contains("Admin consent was granted"), "{perms}");
    assert!(perms.contains("openid profile offline_access User.Read Calendars.Read"), "{perms}");

    // Alice is not assigned: AADSTS50105. Bob (Team Leads, nested in Sales) gets a code without
    // a prompt, with the group's role; the administrator, assigned directly, too.
    let (status, page) =
        user_signs_in(&server, INSIGHTS, INSIGHTS_CB, "alice@contoso.test", "alice-password-1").await.unwrap_err();
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS50105"), "{page}");
    let loc =
        user_signs_in(&server, INSIGHTS, INSIGHTS_CB, "bob@contoso.test", "bob-password-1").await.expect("no prompt");
    let tokens = redeem(&server, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["roles"],
        serde_json::json!(["Insights.Admin"]),
        "{tokens}"
    );
    let loc = user_signs_in(&server, INSIGHTS, INSIGHTS_CB, "admin@contoso.test", "admin-password-1").await.unwrap();
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    let (status, body) = client_credentials(&server, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["roles"], serde_json::json!(["Calendars.Read"]));

    // Revoke the admin consent (confirmation page first): Bob now needs approval again.
    let revoke_url = link_containing(&perms, "/permissions/grants/");
    let confirm = admin.page(&revoke_url).await;
    assert!(confirm.contains("Revoke permission grant") && confirm.contains("every user of Contoso"), "{confirm}");
    let unconfirmed = admin.post(&revoke_url, &[]).await;
    assert_eq!(unconfirmed.status, 400, "destructive actions need the confirmation");
    let perms = admin.post_ok(&revoke_url, &[("confirm", "yes")]).await;
    assert!(perms.contains("The permission grant was revoked") && perms.contains("No admin consent."), "{perms}");
    let (status, page) =
        user_signs_in(&server, INSIGHTS, INSIGHTS_CB, "bob@contoso.test", "bob-password-1").await.unwrap_err();
    assert_eq!(status, 200);
    assert!(page.contains("Approval required"), "{page}");

    // A Privileged Role Administrator may grant application permissions, so she may remove one
    // too (as in Entra) — but not unassign users and groups.
    let mut priya = Browser::sign_in(&server, "priya@contoso.test", "priya-password-1").await;
    let perms = priya.page(&format!("{app}/permissions")).await;
    let remove_url = link_containing(&perms, "/permissions/application/");
    let confirm = priya.page(&remove_url).await;
    assert!(confirm.contains("Remove application permission"), "{confirm}");
    let perms = priya.post_ok(&remove_url, &[("confirm", "yes")]).await;
    assert!(perms.contains("No application permission."), "{perms}");
    let users = priya.page(&format!("{app}/users-and-groups")).await;
    assert!(!users.contains("/remove\">Remove"), "no Remove offered: {users}");
    let admins_view = admin.page(&format!("{app}/users-and-groups")).await;
    let unassign = link_containing(&admins_view, "/remove\">Remove");
    priya.page(&format!("{app}/users-and-groups")).await;
    let refused = priya.post(&unassign, &[("confirm", "yes")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Remove an assignment.
    let users = admin.page(&format!("{app}/users-and-groups")).await;
    let remove = link_containing(&users, "/remove\">Remove");
    let confirm = admin.page(&remove).await;
    assert!(confirm.contains("Remove assignment"), "{confirm}");
    admin.post_ok(&remove, &[("confirm", "yes")]).await;

    // Activity: this app's audit events; the audit log filters by activity.
    let activity = admin.page(&format!("{app}/activity")).await;
    for action in [
        "enterprise_app.updated",
        "assignment.added",
        "consent.admin.granted",
        "consent.revoked",
        "app_permission.revoked",
        "assignment.removed",
    ] {
        assert!(activity.contains(action), "{action} in {activity}");
    }
    let audit = admin.page("/admin/audit?action=assignment.").await;
    assert!(audit.contains("assignment.added") && !audit.contains("consent.admin.granted"), "{audit}");
    // Readable activity names and details, not raw codes and JSON (issue 18).
    assert!(audit.contains("Add app role assignment</a><br>") && !audit.contains("{&quot;"), "{audit}");
    let audit = admin.page(&format!("/admin/audit?app={INSIGHTS}&action=consent.")).await;
    assert!(audit.contains("consent.revoked") && !audit.contains("assignment.added"), "{audit}");
}

/// Option 2 of the guide: users ask, reviewers find the requests pending approval in the admin
/// center and approve, deny or block them; reviewers without a granting role cannot approve.
#[tokio::test]
async fn admin_consent_requests_approve_deny_block() {
    let server = TestServer::start_with(&fixture());
    let scope = "openid profile User.Read Calendars.Read";
    request_approval(
        &server,
        INSIGHTS,
        INSIGHTS_CB,
        scope,
        "alice@contoso.test",
        "alice-password-1",
        "I need <b>calendar</b> insights",
    )
    .await;

    // Rita reviews without a directory role: she sees the request and its justification, may
    // deny or block, but is offered no Approve (and a forged approval is refused).
    let mut rita = Browser::sign_in(&server, "rita@contoso.test", "rita-password-1").await;
    let home = rita.page("/admin").await;
    assert!(home.contains(">Admin consent requests</a>") && !home.contains(">Users</a>"), "{home}");
    let (status, _) = rita.get("/admin/users").await;
    assert_eq!(status, 403);
    let list = rita.page("/admin/requests").await;
    assert_eq!(crumbs(&list), ["Home", "Enterprise applications", "Admin consent requests"]);
    let request = link(&list, "Meeting Insights");
    assert_eq!(request, format!("/admin/requests/{INSIGHTS}"));
    let page = rita.page(&request).await;
    assert!(page.contains("I need &lt;b&gt;calendar&lt;&#x2f;b&gt; insights"), "justification, escaped: {page}");
    assert!(page.contains("Calendars.Read") && page.contains("Alice Adams"), "{page}");
    assert!(page.contains("You cannot approve this request") && !page.contains("/approve\""), "{page}");
    let request_id = attr_value_after(&page, "name=\"request\"").unwrap();
    let forged =
        rita.post(&format!("{request}/approve"), &[("request", &request_id), ("shown", ""), ("confirm", "yes")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let denied = rita
        .post_ok(&format!("{request}/deny"), &[("request", &request_id), ("justification", "Not <i>now</i>")])
        .await;
    assert!(denied.contains("The request was denied."), "{denied}");
    let history = rita.page("/admin/requests?view=history").await;
    assert!(history.contains("Denied") && history.contains("Not &lt;i&gt;now&lt;&#x2f;i&gt;"), "{history}");

    // An Application Administrator who is no reviewer sees the requests read-only.
    let mut appadmin = Browser::sign_in(&server, "appadmin@contoso.test", "appadmin-password-1").await;
    let list = appadmin.page("/admin/requests?view=history").await;
    assert!(list.contains("You are not a reviewer") && list.contains("Meeting Insights"), "{list}");

    // Alice asks again; the Global Administrator approves; Alice then signs in without a prompt.
    request_approval(
        &server,
        INSIGHTS,
        INSIGHTS_CB,
        scope,
        "alice@contoso.test",
        "alice-password-1",
        "Please, for the sales calls",
    )
    .await;
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let list = admin.page("/admin/enterprise-apps?pending=yes").await;
    assert!(list.contains("Meeting Insights") && !list.contains("Microsoft Graph"), "{list}");
    let page = admin.page(&request).await;
    assert!(page.contains("Please, for the sales calls"), "{page}");
    let shown = attr_value_after(&page, "name=\"shown\"").expect("approve offered to a granting reviewer");
    let request_id = attr_value_after(&page, "name=\"request\"").unwrap();
    // Approve says what it grants and for whom, and needs the box ticked (issue 18).
    assert!(page.contains("id=\"approve-summary\"") && page.contains("for <strong>every user of Contoso</strong>"));
    let unticked = admin.post(&format!("{request}/approve"), &[("request", &request_id), ("shown", &shown)]).await;
    assert_eq!(unticked.status, 400, "{}", unticked.body);
    assert!(unticked.body.contains("confirm the action"), "{}", unticked.body);
    let approved = admin
        .post_ok(&format!("{request}/approve"), &[("request", &request_id), ("shown", &shown), ("confirm", "yes")])
        .await;
    assert!(approved.contains("The request was approved"), "{approved}");
    let loc = user_signs_in(&server, INSIGHTS, INSIGHTS_CB, "alice@contoso.test", "alice-password-1")
        .await
        .expect("no prompt");
    assert!(query_param(&loc, "code").is_some(), "{loc}");

    // Bob asks for the app with a hostile name; everything shows it escaped; it is blocked.
    request_approval(&server, EVIL, EVIL_CB, "openid User.Read", "bob@contoso.test", "bob-password-1", "looks useful")
        .await;
    let list = admin.page("/admin/requests").await;
    assert!(list.contains(EVIL_NAME_ESCAPED) && !list.contains("<script>alert(1)"), "{list}");
    let apps = admin.page("/admin/enterprise-apps").await;
    assert!(apps.contains(EVIL_NAME_ESCAPED) && !apps.contains("<script>alert(1)"), "{apps}");
    let evil = format!("/admin/requests/{EVIL}");
    let page = admin.page(&evil).await;
    assert!(page.contains(EVIL_NAME_ESCAPED) && !page.contains("<script>alert(1)"), "{page}");
    assert_eq!(crumbs(&page)[3], "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;");
    let request_id = attr_value_after(&page, "name=\"request\"").unwrap();
    let unconfirmed = admin.post(&format!("{evil}/block"), &[("request", &request_id), ("justification", "no")]).await;
    assert_eq!(unconfirmed.status, 400, "blocking needs the confirmation box");
    let no_reason = admin
        .post(&format!("{evil}/block"), &[("request", &request_id), ("justification", " "), ("confirm", "yes")])
        .await;
    assert_eq!(no_reason.status, 400, "blocking needs a justification");
    let blocked = admin
        .post_ok(
            &format!("{evil}/block"),
            &[("request", &request_id), ("justification", "Unknown publisher"), ("confirm", "yes")],
        )
        .await;
    assert!(blocked.contains("the application blocked"), "{blocked}");
    let (status, page) = user_signs_in(&server, EVIL, EVIL_CB, "bob@contoso.test", "bob-password-1").await.unwrap_err();
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS7000112"), "{page}");
    let disabled = admin.page("/admin/enterprise-apps?enabled=no").await;
    assert!(disabled.contains(EVIL_NAME_ESCAPED) && !disabled.contains("Meeting Insights"), "{disabled}");
    let audit = admin.page("/admin/audit?action=request.").await;
    for action in ["request.filed", "request.denied", "request.approved", "request.blocked"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(!audit.contains("<script>alert(1)"));
}

/// Consent and permissions, users and groups — and what an Application Administrator may not do.
#[tokio::test]
async fn consent_settings_directory_and_role_gating() {
    let server = TestServer::start_with(&fixture());

    // An Application Administrator sees the user consent setting without a control, and a
    // forged change is refused with a 403 page; a forged CSRF token is a 400.
    let mut appadmin = Browser::sign_in(&server, "appadmin@contoso.test", "appadmin-password-1").await;
    let page = appadmin.page("/admin/consent").await;
    assert!(
        !page.contains("name=\"user_consent\"")
            && page.contains("Only a Global Administrator or Privileged Role Administrator"),
        "{page}"
    );
    assert_eq!(crumbs(&page), ["Home", "Enterprise applications", "Consent and permissions", "User consent settings"]);
    appadmin.page("/admin/consent/classifications").await; // a form it may use: a valid CSRF token
    let refused = appadmin.post("/admin/consent/user-consent", &[("user_consent", "all")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("You don&#x27;t have access") || refused.body.contains("You don't have access"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("does not have a role that allows changing the user consent setting"),
        "{}",
        refused.body
    );
    let forged = appadmin.post_raw("/admin/consent/classifications", &[("csrf", "forged"), ("low", "openid")]).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    let users = appadmin.page("/admin/users").await;
    assert!(!users.contains("New user"), "{users}");
    assert_eq!(appadmin.get("/admin/users/new").await.0, 403);
    let settings = appadmin.page("/admin/consent/admin-consent-settings").await;
    assert!(!settings.contains("name=\"expire_days\""), "{settings}");
    // It may grant admin consent, but not to Microsoft Graph application permissions: the
    // confirmation page says why and offers no Accept.
    let list = appadmin.page("/admin/enterprise-apps").await;
    let app = link(&list, "Meeting Insights");
    let consent = appadmin.page(&format!("{app}/permissions/admin-consent")).await;
    assert!(
        consent.contains("cannot grant Microsoft Graph application permissions") && !consent.contains("name=\"shown\""),
        "{consent}"
    );

    // The Global Administrator changes the user consent setting…
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let page = admin.page("/admin/consent").await;
    assert!(page.contains("name=\"user_consent\" value=\"none\" checked"), "{page}");
    let page = admin.post_ok("/admin/consent/user-consent", &[("user_consent", "low")]).await;
    assert!(page.contains("The user consent setting was saved.") && page.contains("value=\"low\" checked"), "{page}");
    // …classifies Graph permissions low (never one that requires admin consent)…
    admin.page("/admin/consent/classifications").await;
    let page = admin.post_ok("/admin/consent/classifications", &[("low", "openid"), ("low", "User.Read")]).await;
    assert!(page.contains("value=\"User.Read\" checked") && page.contains("value=\"openid\" checked"), "{page}");
    assert!(!page.contains("value=\"profile\" checked"));
    let refused = admin.post("/admin/consent/classifications", &[("low", "User.Read.All")]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("requires admin consent"), "{}", refused.body);
    // …and the request settings: reviewers among users and groups, expiry.
    let page = admin.page("/admin/consent/admin-consent-settings").await;
    let me = value_before(&page, "Contoso Admin<span");
    let reviewers = value_before(&page, "Reviewers<span");
    assert!(me.starts_with("User:") && reviewers.starts_with("Group:"), "{me} {reviewers}");
    let page = admin
        .post_ok(
            "/admin/consent/admin-consent-settings",
            &[("enabled", "yes"), ("reviewer", &me), ("reviewer", &reviewers), ("expire_days", "14")],
        )
        .await;
    assert!(page.contains("value=\"14\"") && page.contains("settings were saved"), "{page}");
    let bad = admin
        .post("/admin/consent/admin-consent-settings", &[("enabled", "yes"), ("reviewer", &me), ("expire_days", "99")])
        .await;
    assert_eq!(bad.status, 400);
    let audit = admin.page("/admin/audit?action=settings.").await;
    assert!(
        audit.contains("settings.user_consent")
            && audit.contains("settings.classification")
            && audit.contains("settings.admin_consent_requests")
    );

    // Users: create, then the new user signs in (and has nothing to manage).
    admin.page("/admin/users/new").await;
    let created = admin
        .post(
            "/admin/users/new",
            &[("upn", "carol@contoso.test"), ("display_name", "Carol <Cook>"), ("password", "carol-password-1")],
        )
        .await;
    assert_eq!(created.status, 302, "{}", created.body);
    let carol_page = created.location.split('?').next().unwrap().to_string();
    let page = admin.page(&created.location).await;
    assert!(page.contains("The user was created.") && page.contains("Carol &lt;Cook&gt;"), "{page}");
    let bad = admin
        .post(
            "/admin/users/new",
            &[("upn", "dave@elsewhere.test"), ("display_name", "Dave"), ("password", "dave-password-1")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("contoso.test"), "{}", bad.body);
    let mut carol = Browser::sign_in(&server, "carol@contoso.test", "carol-password-1").await;
    let home = carol.page("/admin").await;
    assert!(home.contains("holds no administrative role"), "{home}");

    // Groups: create, add a user and a nested group (its members count through it).
    admin.page("/admin/groups").await;
    let created = admin.post("/admin/groups", &[("display_name", "Analysts")]).await;
    assert_eq!(created.status, 302, "{}", created.body);
    let group = created.location.split('?').next().unwrap().to_string();
    let page = admin.page(&format!("{group}?q=carol")).await;
    let carol_id = value_before(&page, "Carol &lt;Cook&gt;<span");
    admin.post_ok(&format!("{group}/members"), &[("member", &carol_id)]).await;
    let page = admin.page(&format!("{group}?q=sales")).await;
    let sales = value_before(&page, "Sales<span");
    let page = admin.post_ok(&format!("{group}/members"), &[("member", &sales)]).await;
    assert!(page.contains("The member was added"), "{page}");
    assert!(page.contains("Bob Brown") && page.contains("Team Leads"), "nested members with their path: {page}");
    let remove = link_containing(&page, &format!("/members/{carol_id}/remove"));
    admin.page(&remove).await;
    let page = admin.post_ok(&remove, &[("confirm", "yes")]).await;
    assert!(page.contains("The member was removed"), "{page}");

    // Reset password, roles, disable (with its confirmation).
    admin.page(&carol_page).await;
    admin.post_ok(&format!("{carol_page}/password"), &[("password", "carol-new-password")]).await;
    assert!(sign_in(
        &server.client(),
        &server,
        &server.url("/portal/signin?return_to=/admin"),
        "carol@contoso.test",
        "carol-password-1"
    )
    .await
    .is_err());
    Browser::sign_in(&server, "carol@contoso.test", "carol-new-password").await;
    let page = admin.page(&carol_page).await;
    let cloud_app_admin = value_before(&page, "Cloud Application Administrator<span");
    let page = admin.post_ok(&format!("{carol_page}/roles"), &[("role", &cloud_app_admin)]).await;
    assert!(
        page.contains("The directory roles were saved.")
            && page.contains("value=\"158c047a-c907-4556-b7ef-446551a6b5f7\" checked"),
        "{page}"
    );
    let unconfirmed = admin.post(&format!("{carol_page}/enabled"), &[("enabled", "no")]).await;
    assert_eq!(unconfirmed.status, 400);
    let page = admin.post_ok(&format!("{carol_page}/enabled"), &[("enabled", "no"), ("confirm", "yes")]).await;
    assert!(page.contains("The account was disabled."), "{page}");
    let (_, refused) = sign_in(
        &server.client(),
        &server,
        &server.url("/portal/signin?return_to=/admin"),
        "carol@contoso.test",
        "carol-new-password",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("Your account has been disabled. Contact your administrator."), "{refused}");

    // Delete (confirmation page first; not one's own account; only a Global Administrator).
    let page = admin.page(&carol_page).await;
    let delete = link(&page, "Delete user");
    assert_eq!(delete, format!("{carol_page}/delete"));
    let confirm = admin.page(&delete).await;
    assert!(confirm.contains("Delete user") && confirm.contains("carol@contoso.test"), "{confirm}");
    assert!(confirm.contains("Cloud Application Administrator"), "what goes is listed: {confirm}");
    assert_eq!(appadmin.get(&delete).await.0, 403);
    let unconfirmed = admin.post(&delete, &[]).await;
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    let deleted = admin.post(&delete, &[("confirm", "yes")]).await;
    assert_eq!(
        (deleted.status, deleted.location.as_str()),
        (302, "/admin/users?done=user_deleted"),
        "{}",
        deleted.body
    );
    let users = admin.page(&deleted.location).await;
    assert!(users.contains("The user was deleted.") && !users.contains("carol@contoso.test"), "{users}");
    assert_eq!(admin.get(&carol_page).await.0, 404);
    let me = link(&users, "Contoso Admin");
    let mine = admin.page(&me).await;
    assert!(!mine.contains("Delete user"), "no deleting oneself: {mine}");

    // Signed out: the admin center sends the browser to sign in and back.
    let res = server.client().get(server.url("/admin/users")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(res.headers()["location"], "/portal/signin?return_to=%2Fadmin%2Fusers");
}

/// App registrations: create one, configure it, add a secret shown once and use it for client
/// credentials after granting admin consent; delete it.
#[tokio::test]
async fn app_registration_with_a_secret_shown_once() {
    let server = TestServer::start_with(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let list = admin.page("/admin/app-registrations").await;
    assert!(list.contains("No app is registered"), "apps of other tenants are not listed: {list}");
    admin.page("/admin/app-registrations/new").await;
    let created = admin
        .post("/admin/app-registrations/new", &[("display_name", "Contoso Reports"), ("audience", "single_org")])
        .await;
    assert_eq!(created.status, 302, "{}", created.body);
    let reg = created.location.split('?').next().unwrap().to_string();
    let app_id = reg.rsplit('/').next().unwrap().to_string();
    let page = admin.page(&created.location).await;
    assert!(page.contains("The app registration was created") && page.contains(&app_id), "{page}");
    assert_eq!(crumbs(&page), ["Home", "App registrations", "Contoso Reports", "Overview and authentication"]);

    // Redirect URIs (validated by the service).
    let page = admin.post_ok(&format!("{reg}/redirect-uris"), &[("uri", "https://reports.contoso.test/cb")]).await;
    assert!(
        unescape(&page).contains("<td class=\"mono\" data-label=\"Redirect URI\">https://reports.contoso.test/cb</td>"),
        "{page}"
    );
    let bad = admin.post(&format!("{reg}/redirect-uris"), &[("uri", "http://reports.contoso.test/cb")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("must use https"), "{}", bad.body);
    // A single-page app's URI is listed with its platform; one URI lives on one platform.
    let spa = [("uri", "https://reports.contoso.test/spa"), ("platform", "spa")];
    let page = unescape(&admin.post_ok(&format!("{reg}/redirect-uris"), &spa).await);
    assert!(
        page.contains("https://reports.contoso.test/spa</td><td data-label=\"Platform\">Single-page application</td>")
    );
    assert!(page.contains("https://reports.contoso.test/cb</td><td data-label=\"Platform\">Web</td>"), "{page}");
    let twice = [("uri", "https://reports.contoso.test/cb"), ("platform", "spa")];
    let bad = admin.post(&format!("{reg}/redirect-uris"), &twice).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("use one platform"), "{}", bad.body);

    // Required permissions on Microsoft Graph.
    admin.page(&format!("{reg}/api-permissions")).await;
    admin.post_ok(&format!("{reg}/api-permissions"), &[("permission", "delegated:User.Read")]).await;
    let page = admin.post_ok(&format!("{reg}/api-permissions"), &[("permission", "application:User.Read.All")]).await;
    assert!(page.contains("User.Read.All") && page.contains("Application"), "{page}");
    let bad = admin.post(&format!("{reg}/api-permissions"), &[("permission", "application:Nope.Read")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Exposed scopes and app roles.
    admin.page(&format!("{reg}/expose-api")).await;
    let page = admin
        .post_ok(
            &format!("{reg}/scopes"),
            &[("value", "Reports.Read"), ("who", "users"), ("admin_name", "Read all reports")],
        )
        .await;
    assert!(page.contains("Reports.Read") && page.contains("Admins and users"), "{page}");
    let page = admin
        .post_ok(
            &format!("{reg}/app-roles"),
            &[("display_name", "Report admin"), ("value", "Reports.Admin"), ("member", "User")],
        )
        .await;
    assert!(page.contains("Reports.Admin") && unescape(&page).contains("Users/Groups"), "{page}");
    let bad = admin.post(&format!("{reg}/app-roles"), &[("display_name", "Nobody"), ("value", "Nobody.Role")]).await;
    assert_eq!(bad.status, 400, "an app role allows some member type: {}", bad.body);

    // Its front end may use Reports.Read without consent (pre-authorized).
    let expose = admin.page(&format!("{reg}/expose-api")).await;
    let scope_id = expose.split("name=\"scope\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let front_end = "bbbbbbbb-0000-4000-8000-0000000000fe";
    let page =
        admin.post_ok(&format!("{reg}/pre-authorized"), &[("client", front_end), ("scope", scope_id.as_str())]).await;
    assert!(page.contains(front_end) && page.contains("client application is authorized"), "{page}");
    let bad = admin.post(&format!("{reg}/pre-authorized"), &[("client", front_end), ("scope", "nope")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Known client applications: consenting to them consents to this API too.
    let page =
        admin.post_ok(&format!("{reg}/known-clients"), &[("clients", &format!("{front_end}\n{front_end},"))]).await;
    assert!(page.contains("known client applications were saved") && page.contains(front_end), "{page}");
    let bad = admin.post(&format!("{reg}/known-clients"), &[("clients", "not-a-guid")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not-a-guid"), "{}", bad.body);

    // Token configuration: groups, an optional claim, v1 tokens; saved and shown checked.
    admin.page(&format!("{reg}/token-configuration")).await;
    let form = [("groups", "SecurityGroup"), ("id_token", "upn"), ("access_token", "email"), ("version", "1")];
    let page = admin.post_ok(&format!("{reg}/token-configuration"), &form).await;
    assert!(page.contains("token configuration was saved"), "{page}");
    assert!(page.contains("value=\"SecurityGroup\" checked") && page.contains("value=\"1\" checked"), "{page}");
    assert!(page.contains("name=\"id_token\" value=\"upn\" aria-label=\"upn in ID tokens\" checked"), "{page}");
    let bad = admin.post(&format!("{reg}/token-configuration"), &[("groups", "Everyone"), ("version", "2")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // A client secret: its value on the result page only.
    admin.page(&format!("{reg}/secrets")).await;
    let created = admin.post(&format!("{reg}/secrets"), &[("description", "ci <pipeline>"), ("days", "180")]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body.contains("shown only this once") && created.body.contains("ci &lt;pipeline&gt;"),
        "{}",
        created.body
    );
    let start = created.body.find("class=\"secret-value\">").unwrap() + "class=\"secret-value\">".len();
    let secret = created.body[start..start + created.body[start..].find('<').unwrap()].to_string();
    assert!(secret.starts_with("acc~") && secret.len() > 20, "{secret}");
    let secrets = admin.page(&format!("{reg}/secrets")).await;
    assert!(!secrets.contains(&secret) && secrets.contains("acc••••••••"), "{secrets}");
    assert!(!server.log().contains(&secret), "the secret is not logged");

    // Grant admin consent on its enterprise application; the secret then gets an app-only token.
    let (status, body) = client_credentials(&server, &app_id, &secret).await;
    assert_eq!(status, 200, "the secret authenticates the app: {body}");
    let roles = jwt_claims(body["access_token"].as_str().unwrap())["roles"].clone();
    assert!(roles.is_null() || roles == serde_json::json!([]), "no application permission granted yet: {roles}");
    let page = admin.page(&reg).await;
    let sp = link(&page, "Enterprise application");
    let confirm = admin.page(&format!("{sp}/permissions/admin-consent")).await;
    assert!(confirm.contains("User.Read.All"), "{confirm}");
    let shown = attr_value_after(&confirm, "name=\"shown\"").unwrap();
    admin.post_ok(&format!("{sp}/permissions/admin-consent"), &[("shown", &shown)]).await;
    let (status, body) = client_credentials(&server, &app_id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["roles"], serde_json::json!(["User.Read.All"]));

    // The app role is offered under "Add user/group".
    let add = admin.page(&format!("{sp}/users-and-groups/add")).await;
    assert!(add.contains("Report admin (Reports.Admin)"), "{add}");

    // Delete the secret (confirmation page); it stops working.
    let secrets = admin.page(&format!("{reg}/secrets")).await;
    let delete = link_containing(&secrets, "/delete");
    let confirm = admin.page(&delete).await;
    assert!(confirm.contains("Delete client secret") && !confirm.contains(&secret), "{confirm}");
    let page = admin.post_ok(&delete, &[("confirm", "yes")]).await;
    assert!(page.contains("The client secret was deleted") && page.contains("No client secret."), "{page}");
    let (status, _) = client_credentials(&server, &app_id, &secret).await;
    assert_eq!(status, 401);

    // Every other list on the registration loses an entry the same way: Remove → a confirmation
    // page (breadcrumbs end in its heading) → the confirmed form, which posts what exactly goes.
    let removals = [
        (
            "",
            "/redirect-uris/remove",
            "Remove redirect URI",
            "https://reports.contoso.test/cb",
            "redirect URI was removed",
        ),
        ("/api-permissions", "/api-permissions/remove", "Remove permission", "User.Read", "permission was removed"),
        (
            "/expose-api",
            "/pre-authorized/",
            "Remove authorized client",
            "bbbbbbbb-0000-4000-8000-0000000000fe",
            "no longer pre-authorized",
        ),
        ("/expose-api", "/scopes/", "Remove scope", "Reports.Read", "scope was removed"),
        ("/app-roles", "/app-roles/", "Remove app role", "Reports.Admin", "app role was removed"),
    ];
    for (tab, remove, heading, what, message) in removals {
        let list = admin.page(&format!("{reg}{tab}")).await;
        let href = link_containing(&list, remove);
        let confirm = admin.page(&href).await;
        assert!(unescape(&confirm).contains(what), "{heading} names what goes: {confirm}");
        assert_eq!(crumbs(&confirm).last().map(String::as_str), Some(heading), "{confirm}");
        let (action, fields) = confirm_form(&confirm);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let unconfirmed: Vec<(&str, &str)> = fields.iter().copied().filter(|(n, _)| *n != "confirm").collect();
        let refused = admin.post(&action, &unconfirmed).await;
        assert_eq!(refused.status, 400, "{heading} needs the confirmation: {}", refused.body);
        let page = admin.post_ok(&action, &fields).await;
        assert!(page.contains(message), "{heading}: {page}");
        let again = admin.post(&action, &fields).await;
        assert_eq!(again.status, 404, "{heading} twice: the entry is gone: {}", again.body);
    }
    let page = admin.page(&reg).await;
    assert!(!unescape(&page).contains("https://reports.contoso.test/cb"), "{page}");
    let page = admin.page(&format!("{reg}/api-permissions")).await;
    assert!(page.contains(">User.Read.All</td>") && !page.contains(">User.Read</td>"), "only it goes: {page}");
    let (status, missing) = admin.get(&format!("{reg}/scopes/00000000-0000-4000-8000-00000000dead/remove")).await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing.contains("No such object"), "{missing}");
}

/// The action of the confirmation form on `html` and the fields it posts (but the CSRF token,
/// which `Browser::post` adds).
fn confirm_form(html: &str) -> (String, Vec<(String, String)>) {
    let form = &html[html.find("<form method=\"post\" action=\"").expect("a form")..];
    let form = &form[..form.find("</form>").unwrap()];
    let action = attr(form, "action").unwrap();
    let fields = form
        .split("<input ")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\"") && !tag.contains("name=\"csrf\""))
        .map(|tag| (attr(tag, "name").unwrap(), attr(tag, "value").unwrap_or_default()))
        .collect();
    (action, fields)
}

/// The unescaped value of attribute `name` in the first tag of `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let tag = &tag[..tag.find('>')?];
    let marker = format!("{name}=\"");
    let v = tag.find(&marker)? + marker.len();
    Some(unescape(&tag[v..v + tag[v..].find('"')?]))
}

/// Time-bound consent and assignments (an Accord extension), in test mode so the clock moves:
/// "Grant admin consent" and "Add user/group" for 30 days; the pages show the end; a week
/// before it the administrators are reminded (once); at the end the app's token has no role
/// left, the permissions and assignment are gone, the audit log says why and so does
/// `accord explain`.
#[tokio::test]
async fn time_bound_consent_and_assignments_end_on_accords_clock() {
    let server = TestServer::start_test_mode(&fixture());
    let advance = |days: i64| server.advance_clock(serde_json::json!({"days": days}));
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let list = admin.page("/admin/enterprise-apps?q=insights").await;
    let app = link(&list, "Meeting Insights");

    // Alice, assigned for 30 days.
    let add = admin.page(&format!("{app}/users-and-groups/add?q=alice")).await;
    assert!(add.contains("How long the assignments last"), "{add}");
    let alice = value_before(&add, "Alice");
    let bad = admin
        .post(&format!("{app}/users-and-groups/add"), &[("principal", &alice), ("role", ""), ("ends_after_days", "0")])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let users = admin
        .post_ok(
            &format!("{app}/users-and-groups/add"),
            &[("principal", &alice), ("role", ""), ("ends_after_days", "30")],
        )
        .await;
    let row = users.split("<tr>").find(|r| r.contains("alice@contoso.test")).unwrap_or_else(|| panic!("{users}"));
    assert!(row.contains(" UTC</td>\n      <td data-label=\"Ends\">") && !row.contains("—"), "an end is shown: {row}");

    // Admin consent for 30 days.
    let confirm_url = format!("{app}/permissions/admin-consent");
    let confirm = admin.page(&confirm_url).await;
    assert!(confirm.contains("How long the consent lasts"), "{confirm}");
    let shown = attr_value_after(&confirm, "name=\"shown\"").unwrap();
    let perms = admin.post_ok(&confirm_url, &[("shown", &shown), ("ends_after_days", "30")]).await;
    assert!(perms.contains("Admin consent was granted") && perms.contains("<th scope=\"col\">Ends</th>"), "{perms}");
    assert!(!perms.contains("data-label=\"Ends\">—</td>"), "every grant shows its end: {perms}");
    let (status, body) = client_credentials(&server, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["roles"], serde_json::json!(["Calendars.Read"]));

    // 24 days later: a week before the end, the administrators are reminded, once.
    let ran = advance(24).await;
    assert_eq!(ran["ran"]["endingsReminded"], 3, "grant, application permission, assignment: {ran}");
    let store = accord_store::SqlStore::connect_sqlite_file(&server.data_dir.join("accord.db")).await.unwrap();
    let contoso: accord_core::ids::TenantId = CONTOSO_ID.parse().unwrap();
    let ending = || {
        let store = &store;
        async move {
            use accord_store::Store;
            store
                .notifications(contoso)
                .await
                .unwrap()
                .into_iter()
                .filter(|n| n.kind == "grant.ending")
                .collect::<Vec<_>>()
        }
    };
    let reminders = ending().await;
    assert!(reminders.iter().any(|n| n.recipient_address == "admin@contoso.test"), "{reminders:#?}");
    assert!(reminders.iter().any(|n| n.recipient_address == "appadmin@contoso.test"), "{reminders:#?}");
    assert!(reminders.iter().all(|n| n.recipient_address != "alice@contoso.test"), "administrators only");
    assert!(reminders
        .iter()
        .any(|n| n.subject.contains("Meeting Insights") && n.body.contains("accord.expiresDateTime")));
    let sent = reminders.len();
    assert_eq!(advance(1).await["ran"]["endingsReminded"], 0);
    assert_eq!(ending().await.len(), sent, "reminded once");

    // Past the end: no role in the app's token, nothing on the pages, the audit log says why.
    let ran = advance(6).await;
    assert_eq!(ran["ran"]["grantsExpired"], 3, "{ran}");
    let (status, body) = client_credentials(&server, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["roles"], Value::Null);
    // (A month on Accord's clock ended the portal session too.)
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let perms = admin.page(&format!("{app}/permissions")).await;
    assert!(perms.contains("No admin consent.") && perms.contains("No application permission."), "{perms}");
    let users = admin.page(&format!("{app}/users-and-groups")).await;
    assert!(!users.contains("alice@contoso.test"), "{users}");
    let activity = admin.page(&format!("{app}/activity")).await;
    assert!(activity.contains("consent.expired") && activity.contains("assignment.expired"), "{activity}");

    // `accord explain` says why Alice would be asked again.
    let data_dir = server.data_dir.to_string_lossy().to_string();
    let (code, out, err) = accord(&[
        "explain",
        "--data-dir",
        &data_dir,
        "--tenant",
        "contoso.test",
        "--user",
        "alice@contoso.test",
        "--app",
        INSIGHTS,
        "--scope",
        "openid User.Read",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("note: the time-bound consent to") && out.contains("consent.expired"), "{out}");

    // Properties > Delete: the enterprise app goes (confirmation first).
    let properties = admin.page(&format!("{app}/properties")).await;
    assert_eq!(link(&properties, "Delete"), format!("{app}/delete"));
    let confirm = admin.page(&format!("{app}/delete")).await;
    assert!(confirm.contains("Delete enterprise application") && confirm.contains(INSIGHTS), "{confirm}");
    let unconfirmed = admin.post(&format!("{app}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, 400, "destructive: needs the confirmation");
    let list = admin.post_ok(&format!("{app}/delete"), &[("confirm", "yes")]).await;
    assert!(list.contains("The enterprise application was deleted"), "{list}");
    let list = admin.page("/admin/enterprise-apps?q=insights").await;
    assert!(list.contains("No application matches."), "{list}");
    let (s, _) = admin.get(&format!("{app}/properties")).await;
    assert_eq!(s, 404);
    let audit = admin.page(&format!("/admin/audit?app={INSIGHTS}")).await;
    assert!(audit.contains("enterprise_app.deleted"), "{audit}");
}

/// The vendor registers, rotates and removes a consent webhook in its admin center: the secret
/// is shown once; a URL the rules refuse is explained; another organisation's administrator
/// cannot touch the vendor's registration.
#[tokio::test]
async fn consent_webhooks_are_managed_in_the_admin_center() {
    let server = TestServer::start_with(&fixture());
    let mut owner = Browser::sign_in(&server, "owner@vendor.test", "owner-password-1").await;
    let hooks = format!("/admin/app-registrations/{INSIGHTS}/webhooks");
    let page = owner.page(&hooks).await;
    assert!(page.contains("This app has no consent webhooks.") && page.contains("Add webhook"), "{page}");

    let refused = owner.post(&hooks, &[("url", "http://vendor.example/hooks")]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("must use https"), "{}", refused.body);

    let created = owner.post(&hooks, &[("url", "https://vendor.example/hooks/consent")]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("shown only this once"), "{}", created.body);
    let secret = created.body.split("<output id=\"secret-value\" class=\"secret-value\">").nth(1).unwrap();
    let secret = secret.split("</output>").next().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let page = owner.page(&hooks).await;
    assert!(page.contains("https:&#x2f;&#x2f;vendor.example&#x2f;hooks&#x2f;consent"), "{page}");
    assert!(!page.contains(&secret), "never shown again");

    // Rotate: a new secret, the previous one still signing.
    let id = page.split("Webhook <span class=\"mono\">").nth(1).and_then(|r| r.split("</span>").next()).unwrap();
    let rotate = format!("{hooks}/{id}/rotate");
    assert!(page.contains(&format!("/webhooks/{id}/rotate\"")), "a rotate form: {page}");
    let rotated = owner.post(&rotate, &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(rotated.body.contains("previous secret keeps signing"), "{}", rotated.body);
    assert!(!rotated.body.contains(&secret), "a new secret");

    // Another organisation's administrator: not found.
    let mut contoso = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    contoso.page("/admin/app-registrations/new").await; // a form, for Contoso's CSRF token
    let foreign = contoso.post(&hooks, &[("url", "https://evil.example/hooks")]).await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);

    // Remove, after the confirmation.
    let remove = rotate.replace("/rotate", "/remove");
    let confirm = owner.page(&remove).await;
    assert!(confirm.contains("Remove consent webhook"), "{confirm}");
    let page = owner.post_ok(&remove, &[("confirm", "yes")]).await;
    assert!(
        page.contains("The consent webhook was removed.") && page.contains("This app has no consent webhooks."),
        "{page}"
    );
}

/// The links to each event's details view on an audit page, in order.
fn event_links(html: &str) -> Vec<String> {
    unescape(html)
        .split("href=\"/admin/audit/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| id.len() == 36)
        .map(|id| format!("/admin/audit/{id}"))
        .collect()
}

/// The audit log as issue 18 asks: a details view per event (who, what, old → new), a date
/// range on Accord's clock, keyset pages that walk every event once, and CSV and JSON downloads
/// of the filtered log — within the administrator's own organisation.
#[tokio::test]
async fn audit_log_has_details_date_range_pages_and_downloads() {
    let server = TestServer::start_test_mode(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let list = admin.page("/admin/enterprise-apps?q=insights").await;
    let app = link(&list, "Meeting Insights");
    admin.page(&format!("{app}/properties")).await;
    admin.post_ok(&format!("{app}/properties"), &[("enabled", "yes"), ("assignment_required", "yes")]).await;
    let filter = "action=enterprise_app.";
    let first = admin.page(&format!("/admin/audit?{filter}")).await;
    let first_event = event_links(&first);
    assert_eq!(first_event.len(), 1, "{first}");
    let day0 = first.split("<td class=\"when\" data-label=\"Date (UTC)\">").nth(1).unwrap()[..10].to_string();

    // The details view: who, what, the changed property old → new.
    let details = admin.page(&first_event[0]).await;
    assert!(details.contains("<h1>Update service principal</h1>"), "{details}");
    assert!(details.contains("admin@contoso.test") && details.contains("Meeting Insights"), "{details}");
    let row = details.split("data-label=\"Property\">app role assignment required</td>").nth(1).expect(&details);
    assert!(row.starts_with("<td data-label=\"Old value\">No</td><td data-label=\"New value\">Yes</td>"), "{row}");
    assert_eq!(crumbs(&details), ["Home", "Audit log", "Update service principal"]);

    // Three days later, 55 more changes: more than a page.
    server.advance_clock(serde_json::json!({"days": 3})).await;
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await; // the session ended
    admin.page(&format!("{app}/properties")).await;
    for i in 0..55 {
        let required = if i % 2 == 0 { "no" } else { "yes" };
        admin.post_ok(&format!("{app}/properties"), &[("enabled", "yes"), ("assignment_required", required)]).await;
    }
    let mut seen = Vec::new();
    let mut page = admin.page(&format!("/admin/audit?{filter}")).await;
    assert!(page.contains("50 events, newest first") && !page.contains("Newest events"), "{page}");
    loop {
        seen.extend(event_links(&page));
        let Some(older) = page.split("rel=\"next\"").next().filter(|_| page.contains("rel=\"next\"")) else { break };
        let href = unescape(&older[older.rfind("href=\"").unwrap() + 6..older.rfind('"').unwrap()]);
        assert!(href.contains("action=enterprise_app.") && href.contains("after="), "filters kept: {href}");
        page = admin.page(&href).await;
        assert!(page.contains("« Newest events"), "{page}");
    }
    assert_eq!(seen.len(), 56, "every event once");
    assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 56);
    assert_eq!(seen.last(), first_event.first(), "oldest last");

    // The date range: the first day holds the first change only; "to" includes its day.
    let day0_only = admin.page(&format!("/admin/audit?{filter}&from={day0}&to={day0}")).await;
    assert_eq!(event_links(&day0_only), first_event, "{day0_only}");
    assert!(day0_only.contains(&format!("value=\"{day0}\"")), "the form keeps the range");
    // Every date here is relative to the day of the first change on Accord's clock.
    let day = |offset: i64| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let d0 = time::Date::parse(&day0, format).unwrap();
        (d0 + time::Duration::days(offset)).format(format).unwrap()
    };
    let until_day0 = admin.page(&format!("/admin/audit?{filter}&from={}&to={day0}", day(-30))).await;
    assert_eq!(event_links(&until_day0), first_event);
    let after_day0 = admin.page(&format!("/admin/audit?{filter}&from={}&to={}", day(1), day(3))).await;
    assert!(after_day0.contains("50 events") && !event_links(&after_day0).contains(&first_event[0]), "{after_day0}");
    let year = &day0[..4];
    for (query, field) in
        [(format!("from={year}-13-45"), "from"), ("to=yesterday".into(), "to"), ("after=nonsense".into(), "after")]
    {
        let (status, body) = admin.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(field), "the message names {field}: {body}");
    }
    let (status, body) = admin.get(&format!("/admin/audit?from={}&to={day0}", day(4))).await;
    assert_eq!(status, 400, "a range that ends before it starts: {body}");

    // Downloads of the filtered log.
    let http = admin.client.clone();
    let download = |format: &'static str, range: String| {
        let client = http.clone();
        let url = server.url(&format!("/admin/audit/export?format={format}&{filter}{range}"));
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let kind = res.headers()["content-type"].to_str().unwrap().to_string();
            let disposition = res.headers()["content-disposition"].to_str().unwrap().to_string();
            assert_eq!(disposition, format!("attachment; filename=\"audit-log.{format}\""));
            (kind, res.text().await.unwrap())
        }
    };
    let (kind, csv) = download("csv", String::new()).await;
    assert_eq!(kind, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 57, "a header and 56 events: {csv}");
    assert!(lines[0].starts_with("Date (UTC),Activity,Action,Initiated by,Application"), "{}", lines[0]);
    assert!(lines[56].contains("\"app role assignment required: No → Yes\""), "{}", lines[56]);
    let (kind, json) = download("json", format!("&from={day0}&to={day0}")).await;
    assert_eq!(kind, "application/json");
    let json: Value = serde_json::from_str(&json).unwrap();
    let rows = json["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(rows[0]["action"], "enterprise_app.updated");
    assert_eq!(rows[0]["appDisplayName"], "Meeting Insights");
    assert_eq!(
        rows[0]["detail"]["appRoleAssignmentRequired"],
        serde_json::json!({"oldValue": false, "newValue": true})
    );
    let (status, body) = admin.get("/admin/audit/export?format=xml").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("format"), "{body}");

    // Another organisation's administrator: neither the event nor it in a download.
    let mut vendor = Browser::sign_in(&server, "owner@vendor.test", "owner-password-1").await;
    let (status, _) = vendor.get(&first_event[0]).await;
    assert_eq!(status, 404);
    let (_, theirs) = vendor.get("/admin/audit/export?format=json").await;
    assert!(!theirs.contains(&first_event[0]["/admin/audit/".len()..]), "{theirs}");
}

/// "Add user/group" takes several users and groups at once; searching again keeps what is
/// ticked; one audit event per assignment.
#[tokio::test]
async fn several_users_and_groups_are_assigned_at_once() {
    let server = TestServer::start_with(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let list = admin.page("/admin/enterprise-apps?q=insights").await;
    let app = link(&list, "Meeting Insights");
    let add_url = format!("{app}/users-and-groups/add");
    let add = admin.page(&format!("{add_url}?q=alice")).await;
    let alice = value_before(&add, "Alice Adams<span");
    // Search again with Alice ticked: she stays ticked, under "Selected".
    let searched = admin.post(&add_url, &[("op", "search"), ("q", "sales"), ("principal", &alice)]).await;
    assert_eq!(searched.status, 200, "{}", searched.body);
    let page = searched.body;
    assert!(page.contains("Selected (1)") && page.contains("Matching “sales”"), "{page}");
    assert!(page.contains(&format!("value=\"{alice}\" id=\"principal-{alice}\" checked")), "{page}");
    let sales = value_before(&page, "Sales<span");
    assert_ne!(sales, alice);
    // A search that posts garbage is refused like an assignment would be.
    let bad = admin.post(&add_url, &[("op", "search"), ("principal", "not-an-id")]).await;
    assert_eq!(bad.status, 400);
    let many: Vec<String> = (0..101).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    let mut fields: Vec<(&str, &str)> = many.iter().map(|id| ("principal", id.as_str())).collect();
    fields.push(("op", "search"));
    let too_many = admin.post(&add_url, &fields).await;
    assert_eq!(too_many.status, 400, "at most 100 at once, even to search: {}", too_many.body);
    let nobody = admin.post(&add_url, &[("op", "assign")]).await;
    assert_eq!(nobody.status, 400, "{}", nobody.body);
    assert!(nobody.body.contains("choose at least one user or group"), "{}", nobody.body);

    let users = admin.post_ok(&add_url, &[("op", "assign"), ("principal", &alice), ("principal", &sales)]).await;
    assert!(users.contains("The users and groups were assigned"), "{users}");
    assert!(users.contains("Alice Adams") && users.contains(">Sales<"), "{users}");
    // Assigning them again changes nothing and logs nothing.
    admin.post_ok(&add_url, &[("op", "assign"), ("principal", &alice), ("principal", &sales)]).await;
    let audit = admin.page(&format!("/admin/audit?app={INSIGHTS}&action=assignment.")).await;
    assert!(audit.contains("2 events, newest first"), "{audit}");
}

/// The reviewer picker: search, tick, search again; nothing is saved until Save.
#[tokio::test]
async fn reviewers_are_picked_by_search() {
    let server = TestServer::start_with(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let settings = "/admin/consent/admin-consent-settings";
    let page = admin.page(settings).await;
    let reviewers_before = page
        .split("<h2 class=\"picker-heading\" id=\"reviewers-heading\">")
        .nth(1)
        .unwrap()
        .split("</h2>")
        .next()
        .unwrap();
    let found = admin.post(settings, &[("op", "search"), ("q", "bob"), ("enabled", "yes"), ("expire_days", "7")]).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("Not saved yet"), "{}", found.body);
    assert!(found.body.contains("Bob Brown") && !found.body.contains("Alice Adams"), "{}", found.body);
    let bob = format!("User:{}", value_before(&found.body, "Bob Brown<span").trim_start_matches("User:"));
    let again = admin
        .post(
            settings,
            &[("op", "search"), ("q", "alice"), ("enabled", "yes"), ("expire_days", "9"), ("reviewer", &bob)],
        )
        .await;
    assert!(again.body.contains("Reviewers (1)") && again.body.contains("Alice Adams"), "{}", again.body);
    assert!(again.body.contains(&format!("value=\"{bob}\" checked")), "Bob stays ticked: {}", again.body);
    assert!(again.body.contains("value=\"9\""), "the other fields are kept: {}", again.body);
    let many: Vec<String> = (0..101).map(|i| format!("User:00000000-0000-4000-8000-{i:012}")).collect();
    let mut fields: Vec<(&str, &str)> = many.iter().map(|r| ("reviewer", r.as_str())).collect();
    fields.push(("op", "search"));
    let too_many = admin.post(settings, &fields).await;
    assert_eq!(too_many.status, 400, "at most 100 reviewers: {}", too_many.body);
    // Nothing was saved by searching.
    let unchanged = admin.page(settings).await;
    assert!(unchanged.contains(&format!("id=\"reviewers-heading\">{reviewers_before}</h2>")), "{unchanged}");
    let saved =
        admin.post_ok(settings, &[("op", "save"), ("enabled", "yes"), ("expire_days", "9"), ("reviewer", &bob)]).await;
    assert!(saved.contains("Reviewers (1)") && saved.contains(&format!("value=\"{bob}\" checked")), "{saved}");
}

/// The hrefs of the rows' first links in a list page's table body.
fn row_links(html: &str, prefix: &str) -> Vec<String> {
    let html = unescape(html);
    let body = html.split("<tbody>").nth(1).unwrap_or_default().split("</tbody>").next().unwrap_or_default();
    body.split(&format!("href=\"{prefix}"))
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(|id| format!("{prefix}{id}"))
        .collect()
}

/// Users and groups are searched by the start of a name or UPN (or an object id) and listed
/// 50 a page, read from the database a page at a time; counts come from the database too.
#[tokio::test]
async fn users_and_groups_are_searched_and_paged_on_the_server() {
    let server = TestServer::start_with(&fixture());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    admin.page("/admin/groups").await;
    for i in 0..55 {
        admin.post_ok("/admin/groups", &[("display_name", &format!("Project {i:02}"))]).await;
    }
    // Page through every group: 50, then the rest; the search is kept in the links.
    let first = admin.page("/admin/groups?q=project").await;
    assert!(first.contains("55 groups matching “project”, 50 a page"), "{first}");
    let mut seen = row_links(&first, "/admin/groups/");
    assert_eq!(seen.len(), 50);
    assert!(unescape(&first).contains(">Project 00</a>") && !unescape(&first).contains(">Project 50</a>"));
    let next = link(&first, "Next page »");
    assert!(next.starts_with("/admin/groups?q=project&after="), "{next}");
    let second = admin.page(&next).await;
    assert!(second.contains("« First page") && !second.contains("Next page"), "{second}");
    seen.extend(row_links(&second, "/admin/groups/"));
    assert_eq!(seen.len(), 55);
    assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 55, "no group twice");
    assert!(unescape(&second).contains(">Project 54</a>"));
    let all = admin.page("/admin/groups").await;
    assert!(all.contains("58 groups, 50 a page"), "three groups in the fixture: {all}");
    let (status, body) = admin.get("/admin/groups?after=not-an-id").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("after"), "{body}");

    // Users: the start of the name or of the UPN, any case, or an object id.
    let found = admin.page("/admin/users?q=BOB").await;
    assert!(found.contains("1 user matching “BOB”") && found.contains("Bob Brown"), "{found}");
    let by_upn = admin.page("/admin/users?q=rita%40").await;
    assert!(by_upn.contains("Rita Reviewer") && by_upn.contains("1 user matching"), "{by_upn}");
    let bob = row_links(&found, "/admin/users/").pop().unwrap();
    let by_id = admin.page(&format!("/admin/users?q={}", &bob["/admin/users/".len()..])).await;
    assert!(by_id.contains("Bob Brown") && by_id.contains("1 user matching"), "{by_id}");
    let none = admin.page("/admin/users?q=rown").await;
    assert!(none.contains("0 users matching") && none.contains("No user matches."), "the start, not any part: {none}");
    let home = admin.page("/admin").await;
    assert!(home.contains(">58<"), "the home page counts groups in the database: {home}");
}

/// `accord import`: users from JSON Lines (a directory's export), every bad line reported with
/// its number and nothing written then; existing users updated, missing groups created, progress
/// on standard error; the imported users exist for the running server, and only those given a
/// password can sign in with one.
#[tokio::test]
async fn users_are_imported_from_json_lines() {
    let server = TestServer::start_with(&fixture());
    let data_dir = server.data_dir.to_string_lossy().to_string();
    let dir = std::env::temp_dir().join(format!("accord-import-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let import = |name: &str, lines: &[&str]| {
        let file = dir.join(name);
        std::fs::write(&file, lines.join("\n")).unwrap();
        let file = file.to_string_lossy().to_string();
        accord(&["import", "--data-dir", &data_dir, "--tenant", "contoso.test", "--as", "admin@contoso.test", &file])
    };

    let (code, _, err) = import(
        "bad.jsonl",
        &[
            r#"{"userPrincipalName": "ivy@contoso.test", "displayName": "Ivy Import", "password": "ivy-password-1"}"#,
            r#"{"userPrincipalName": "eve@elsewhere.test", "displayName": "Eve"}"#,
            r#"{"userPrincipalName": "kim@contoso.test", "displayName": "Kim", "manager": "x"}"#,
            r#"{"userPrincipalName": "IVY@contoso.test", "displayName": "Ivy Again", "password": "short"}"#,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("nothing was imported; 4 problems"), "{err}");
    assert!(err.contains("bad.jsonl:2: ") && err.contains("bad.jsonl:3: ") && err.contains("unknown field"), "{err}");
    assert!(err.contains("bad.jsonl:4: ") && err.contains("the same as user 1 of the import"), "{err}");

    let good = [
        r#"{"userPrincipalName": "ivy@contoso.test", "displayName": "Ivy Import", "password": "ivy-password-1", "groups": ["Sales", "Imported"]}"#,
        r#"{"userPrincipalName": "jon@contoso.test", "displayName": "Jon Import", "groups": ["imported"]}"#,
        r#"{"userPrincipalName": "bob@contoso.test", "displayName": "Bob Renamed"}"#,
    ];
    let (code, out, err) = import("good.jsonl", &good);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "3 users imported into Contoso: 2 created, 1 updated; 1 group created, 3 memberships added",
        "{out}"
    );
    assert!(err.contains("imported 3 of 3 users"), "progress: {err}");

    // The running server sees them: Ivy signs in; Jon, without a password, cannot.
    let client = server.client();
    let portal = server.url("/portal/signin?return_to=/myapps");
    assert!(sign_in(&client, &server, &portal, "ivy@contoso.test", "ivy-password-1").await.is_ok());
    assert!(sign_in(&server.client(), &server, &portal, "jon@contoso.test", "anything-at-all").await.is_err());
    let mut admin = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let users = admin.page("/admin/users?q=bob").await;
    assert!(users.contains("Bob Renamed"), "{users}");
    let groups = admin.page("/admin/groups?q=imported").await;
    let imported = link(&groups, "Imported");
    let group = admin.page(&imported).await;
    assert!(group.contains("Ivy Import") && group.contains("Jon Import"), "{group}");

    // Again: nothing new, nothing doubled.
    let (code, out, _) = import("good.jsonl", &good[1..]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "2 users imported into Contoso: 0 created, 2 updated; 0 groups created, 0 memberships added"
    );

    // CSV, as a spreadsheet or Entra's bulk-create template writes it: the template's version
    // line, bracketed property names, columns in any order, quoted fields with commas, groups
    // separated by ";"; an empty password is none. Bad rows are reported by line.
    let (code, _, err) = import(
        "bad.csv",
        &[
            "version:v1.0",
            "Name [displayName] Required,User name [userPrincipalName] Required,Department [department]",
            "Lee,lee@contoso.test,Sales",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("bad.csv:2: unknown column \"Department [department]\""), "{err}");
    let (code, _, err) = import("headless.csv", &["ann@contoso.test,Ann"]);
    assert_ne!(code, 0);
    assert!(err.contains("headless.csv:1: unknown column \"ann@contoso.test\""), "{err}");
    assert!(err.contains("headless.csv:1: the header has no displayName column"), "{err}");
    let (code, _, err) = import(
        "rows.csv",
        &["userPrincipalName,displayName", "lee@elsewhere.test,Lee", "\"mo@contoso.test\",", "x@contoso.test"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("rows.csv:2: ") && err.contains("rows.csv:3: ") && err.contains("displayName"), "{err}");
    assert!(err.contains("rows.csv:4: "), "a short row: {err}");
    let (code, out, err) = import(
        "entra.csv",
        &[
            "version:v1.0",
            "Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,groups",
            "\"Lee, Lucy\",lee@contoso.test,lee-password-1,Imported; Sales",
            "Mo Import,mo@contoso.test,,Imported",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "2 users imported into Contoso: 2 created, 0 updated; 0 groups created, 3 memberships added",
        "{out}"
    );
    assert!(sign_in(&server.client(), &server, &portal, "lee@contoso.test", "lee-password-1").await.is_ok());
    let group = admin.page(&imported).await;
    assert!(group.contains("Lee, Lucy") && group.contains("Mo Import"), "{group}");
}

/// Tenant isolation in the admin center: a Global Administrator of one tenant who opens another
/// tenant's objects by URL (a user, a group, an enterprise app, an audit event, an app
/// registration) gets "not found" and none of their names, and cannot change them.
#[tokio::test]
async fn another_tenants_objects_are_not_found_by_url() {
    let server = TestServer::start_with(&fixture());
    let mut contoso = Browser::sign_in(&server, "admin@contoso.test", "admin-password-1").await;
    let users = contoso.page("/admin/users?q=bob").await;
    let bob = link(&users, "Bob Brown");
    let groups = contoso.page("/admin/groups?q=sales").await;
    let sales = link(&groups, "Sales");
    let apps = contoso.page("/admin/enterprise-apps").await;
    let insights = link(&apps, "Meeting Insights");
    contoso.page("/admin/groups").await;
    contoso.post_ok("/admin/groups", &[("display_name", "Audited")]).await;
    let audit = unescape(&contoso.page("/admin/audit").await);
    let event = audit
        .match_indices("/admin/audit/")
        .filter_map(|(i, p)| audit.get(i..i + p.len() + 36))
        .find(|l| uuid::Uuid::parse_str(&l["/admin/audit/".len()..]).is_ok())
        .expect("an audit event's link")
        .to_string();
    let mut vendor = Browser::sign_in(&server, "owner@vendor.test", "owner-password-1").await;
    let registrations = vendor.page("/admin/app-registrations").await;
    let registration = link(&registrations, "Meeting Insights");

    for (path, name) in [
        (bob.as_str(), "Bob Brown"),
        (&format!("{bob}/delete"), "Bob Brown"),
        (sales.as_str(), "Team Leads"),
        (insights.as_str(), "Contoso"),
        (&format!("{insights}/users-and-groups"), "Contoso"),
        (event.as_str(), "Contoso"),
    ] {
        let (status, html) = vendor.get(path).await;
        assert_eq!(status, 404, "{path}: {html}");
        assert!(!html.contains(name), "{path} shows nothing of Contoso's: {html}");
    }
    let (status, html) = contoso.get(&registration).await;
    assert_eq!(status, 404, "{registration}: {html}");
    // Nor can it change them, even with a form token of its own: Bob stays and can sign in.
    let own = vendor.page("/admin/users?q=owner").await;
    vendor.page(&link(&own, "Vendor Owner")).await;
    let posted = vendor.post(&format!("{bob}/enabled"), &[("enabled", "no"), ("confirm", "yes")]).await;
    assert_eq!(posted.status, 404, "{}", posted.body);
    let posted = vendor.post(&format!("{bob}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(posted.status, 404, "{}", posted.body);
    let portal = server.url("/portal/signin?return_to=/myapps");
    assert!(sign_in(&server.client(), &server, &portal, "bob@contoso.test", "bob-password-1").await.is_ok());
}
