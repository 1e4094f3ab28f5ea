//! The demo vendor app against a real Accord server, both over HTTPS, driven like a browser
//! without JavaScript (cookies kept, redirects not followed, forms posted with their fields).
//!
//! Accord is the real `accord` binary: run `cargo build -p accord-server` first
//! (`scripts/test-all` builds the workspace first), or name another binary with `ACCORD_BIN`.
//! It loads the built-in demo world (crates/accord-server/src/demo_world.toml), whose meetings
//! are placed relative to the day it is loaded, with the app's redirect URIs on this test's port
//! (`--var vendor_url=…`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APP_ID: &str = "3bcad3f8-39bc-495b-b118-04d692e0bb31";
const CONTOSO: &str = "6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10";
const SUPPORT_PASSWORD: &str = "support-test-password";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `ACCORD_BIN`, else `{CARGO_TARGET_DIR or workspace/target}/debug/accord`.
fn accord_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ACCORD_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_relative() { workspace().join(target) } else { target };
    target.join("debug/accord")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Unique across parallel test threads too: two threads can read the same clock value.
fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("demo-vendor-test-{what}-{nanos:x}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Server {
    child: Child,
    base: String,
    data_dir: PathBuf,
    ca_pem: Vec<u8>,
    log: PathBuf,
}

impl Server {
    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        } else {
            eprintln!("kept {} (log: {})", self.data_dir.display(), self.log.display());
        }
    }
}

/// Starts `command`, waits for the stdout line starting with `ready` (returned), and keeps
/// draining stdout; `Err` with the log when it exits first.
fn spawn_until(mut command: Command, ready: &str, log: &Path, what: &str) -> Result<(Child, String), String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(90);
    let announced = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with(ready) => break line,
            Some(Ok(_)) => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default()));
            }
        }
        assert!(Instant::now() < deadline, "{what} start timed out");
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, announced))
}

/// Accord with its built-in demo world, on a port the kernel picks, with Meeting Insights'
/// redirect URIs under `https://localhost:{vendor_port}` (the world's `vendor_url` variable).
fn start_accord(vendor_port: u16, extra: &[&str]) -> Server {
    let bin = accord_bin();
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p accord-server` first (scripts/test-all does), or set ACCORD_BIN",
        bin.display()
    );
    let data_dir = temp_dir("accord");
    let log = data_dir.join("accord.log");
    let mut command = Command::new(&bin);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--public-url")
        .arg("https://localhost:0")
        .arg("--var")
        .arg(format!("vendor_url=https://localhost:{vendor_port}"))
        .args(extra)
        .env("ACCORD_LOG", "info");
    let (child, announced) = spawn_until(command, "accord listening", &log, "accord").unwrap_or_else(|e| panic!("{e}"));
    // "accord listening on 127.0.0.1:PORT as https://localhost:PORT"
    let base = announced.rsplit(' ').next().unwrap_or_default().to_string();
    assert!(base.starts_with("https://localhost:"), "{announced}");
    let ca_pem = std::fs::read(data_dir.join("tls/ca.pem")).unwrap();
    Server { child, base, data_dir, ca_pem, log }
}

/// The app on `port`; `Err` when it could not start (for example, the port was taken).
fn start_vendor(port: u16, accord: &Server, extra: &[&str]) -> Result<Server, String> {
    let data_dir = temp_dir("vendor");
    let base = format!("https://localhost:{port}");
    let log = data_dir.join("vendor.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo-vendor"));
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--public-url")
        .arg(&base)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--accord-url")
        .arg(&accord.base)
        .arg("--accord-ca")
        .arg(accord.data_dir.join("tls/ca.pem"))
        .arg("--support-password")
        .arg(SUPPORT_PASSWORD)
        .arg("--sync-interval")
        .arg("0")
        .arg("--sync-days")
        .arg("60")
        .args(extra)
        .env("DEMO_VENDOR_LOG", "info,demo_vendor=debug");
    let (child, _) = spawn_until(command, "demo-vendor listening", &log, "demo-vendor")?;
    let ca_pem = std::fs::read(data_dir.join("tls/ca.pem")).unwrap();
    Ok(Server { child, base, data_dir, ca_pem, log })
}

struct World {
    accord: Server,
    vendor: Server,
}

impl World {
    /// Accord must know the app's URL before the app can start (the demo world's redirect URIs
    /// name it), so the app's port is one the kernel just gave out and released; should another
    /// process take it in between, the pair starts again on a new one.
    fn start() -> World {
        World::start_with(&[], &[])
    }

    /// Both sides of sync by push, as `demo-vendor demo` runs them: Accord accepts loopback
    /// notification URLs (and reviews subscribers' access often), the app listens for Graph's
    /// notifications on loopback HTTP.
    fn start_with_push() -> World {
        World::start_with(
            &["--allow-http-notification-urls", "--subscription-review-ms", "300"],
            &["--webhook-listen", "127.0.0.1:0"],
        )
    }

    /// Consent webhooks, as `demo-vendor demo` runs them: the demo world's webhook for Meeting
    /// Insights points at the app's loopback listener. Accord reviews subscribers' access only
    /// every ten minutes here, so what the app learns quickly it learns from the webhook.
    fn start_with_consent_webhooks() -> (World, String) {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let (vendor_port, hook) = (free_port(), format!("127.0.0.1:{}", free_port()));
            let hook_url = format!("vendor_webhook_url=http://{hook}/webhooks/consent");
            let accord_extra =
                ["--allow-http-notification-urls", "--subscription-review-ms", "600000", "--var", &hook_url];
            let accord = start_accord(vendor_port, &accord_extra);
            match start_vendor(vendor_port, &accord, &["--webhook-listen", &hook]) {
                Ok(vendor) => return (World { accord, vendor }, format!("http://{hook}/webhooks/consent")),
                Err(e) => failures.push(e),
            }
        }
        panic!("the demo vendor did not start in three tries:\n{}", failures.join("\n"));
    }

    fn start_with(accord_extra: &[&str], vendor_extra: &[&str]) -> World {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let vendor_port = free_port();
            let accord = start_accord(vendor_port, accord_extra);
            match start_vendor(vendor_port, &accord, vendor_extra) {
                Ok(vendor) => return World { accord, vendor },
                Err(e) => failures.push(e),
            }
        }
        panic!("the demo vendor did not start in three tries:\n{}", failures.join("\n"));
    }

    /// A browser: trusts both development CAs, keeps cookies, never follows redirects.
    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.accord.ca_pem).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(&self.vendor.ca_pem).unwrap())
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    fn logs(&self) -> String {
        format!("--- accord ---\n{}\n--- demo-vendor ---\n{}", self.accord.log(), self.vendor.log())
    }
}

/// Where a request ended: a redirect or a page.
#[derive(Debug)]
enum Landing {
    Redirect(String),
    Page(u16, String),
}

impl Landing {
    fn redirect(self) -> String {
        match self {
            Landing::Redirect(l) => l,
            Landing::Page(s, html) => panic!("expected a redirect, got a {s} page:\n{html}"),
        }
    }

    fn page(self) -> String {
        match self {
            Landing::Page(_, html) => html,
            Landing::Redirect(l) => panic!("expected a page, got a redirect to {l}"),
        }
    }
}

async fn land(res: reqwest::Response) -> Landing {
    if res.status().is_redirection() {
        Landing::Redirect(res.headers()["location"].to_str().unwrap().to_string())
    } else {
        let status = res.status().as_u16();
        Landing::Page(status, res.text().await.unwrap())
    }
}

async fn get(browser: &reqwest::Client, url: &str) -> Landing {
    land(browser.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))).await
}

/// Follows redirects that stay on `server`'s origin (relative ones included).
async fn follow_on(browser: &reqwest::Client, server: &Server, mut landing: Landing) -> Landing {
    for _ in 0..10 {
        match landing {
            Landing::Redirect(ref to) if to.starts_with('/') || to.starts_with(&format!("{}/", server.base)) => {
                landing = get(browser, &server.url(to)).await;
            }
            other => return other,
        }
    }
    panic!("too many redirects")
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The opening tag of the element with `id`.
fn tag_with_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element with id {id} in:\n{html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..end]
}

fn href_of(html: &str, id: &str) -> String {
    attr(tag_with_id(html, id), "href").unwrap_or_else(|| panic!("#{id} has no href"))
}

/// The `href` of the last link that starts before `marker`.
fn href_before(html: &str, marker: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in:\n{html}"));
    let start = html[..at].rfind("href=\"").unwrap() + 6;
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

/// The text inside the element with `id` (up to the next tag).
fn text_of(html: &str, id: &str) -> String {
    let tag = tag_with_id(html, id);
    let start = html.find(tag).unwrap() + tag.len() + 1;
    let end = start + html[start..].find('<').unwrap();
    unescape(html[start..end].trim())
}

/// The first form whose opening tag contains `pick` (any form when empty): its action and the
/// names and values of its inputs.
fn form(html: &str, pick: &str) -> (String, Vec<(String, String)>) {
    let mut rest = html;
    while let Some(i) = rest.find("<form") {
        let open_end = i + rest[i..].find('>').unwrap();
        let open = &rest[i..open_end];
        let close = open_end + rest[open_end..].find("</form>").unwrap();
        if pick.is_empty() || open.contains(pick) {
            let body = &rest[open_end..close];
            let mut fields = Vec::new();
            let mut inputs = body;
            while let Some(j) = inputs.find("<input") {
                let end = j + inputs[j..].find('>').unwrap();
                let tag = &inputs[j..end];
                if let Some(name) = attr(tag, "name") {
                    fields.push((name, attr(tag, "value").unwrap_or_default()));
                }
                inputs = &inputs[end..];
            }
            return (attr(open, "action").unwrap_or_default(), fields);
        }
        rest = &rest[close..];
    }
    panic!("no form matching {pick:?} in:\n{html}")
}

/// Posts the form picked by `pick` on `server`, with its fields replaced or added by `extra`.
async fn submit(browser: &reqwest::Client, server: &Server, html: &str, pick: &str, extra: &[(&str, &str)]) -> Landing {
    let (action, mut fields) = form(html, pick);
    fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let url = server.url(&action);
    land(browser.post(&url).form(&fields).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"))).await
}

/// Opens `url` at Accord and, when it shows the sign-in page, signs in; follows Accord's own
/// redirects and returns where Accord let go (a redirect elsewhere, or a page).
async fn at_accord(browser: &reqwest::Client, w: &World, url: &str, upn: &str) -> Landing {
    let landing = follow_on(browser, &w.accord, get(browser, url).await).await;
    let html = match landing {
        Landing::Page(_, ref html) if html.contains("name=\"passwd\"") => html.clone(),
        other => return other,
    };
    let password = password_of(upn);
    let landing = submit(browser, &w.accord, &html, "", &[("login", upn), ("passwd", &password)]).await;
    follow_on(browser, &w.accord, landing).await
}

/// The demo world's scheme: `Passw0rd!<tenant>-<name before the @>`.
fn password_of(upn: &str) -> String {
    let (name, domain) = upn.split_once('@').unwrap();
    format!("Passw0rd!{}-{name}", domain.split('.').next().unwrap())
}

/// The support page, signed in.
async fn support_signed_in(w: &World) -> reqwest::Client {
    let staff = w.browser();
    let login = get(&staff, &w.vendor.url("/support")).await.page();
    let wrong = submit(&staff, &w.vendor, &login, "id=\"support-login\"", &[("password", "guess")]).await.redirect();
    assert_eq!(wrong, "/support?failed=1");
    let login = get(&staff, &w.vendor.url(&wrong)).await.page();
    assert!(login.contains("id=\"login-error\""), "{login}");
    let to =
        submit(&staff, &w.vendor, &login, "id=\"support-login\"", &[("password", SUPPORT_PASSWORD)]).await.redirect();
    assert_eq!(to, "/support");
    staff
}

async fn switch_mode(w: &World, staff: &reqwest::Client, instance: &str, mode: &str, label: &str) {
    let page = get(staff, &w.vendor.url("/support")).await.page();
    let to =
        submit(staff, &w.vendor, &page, &format!("id=\"mode-form-{instance}\""), &[("mode", mode)]).await.redirect();
    assert_eq!(to, format!("/support?done=mode-{instance}"));
    let page = get(staff, &w.vendor.url(&to)).await.page();
    assert_eq!(text_of(&page, &format!("instance-{instance}-mode")), label, "{page}");
    // The notice names the instance and its new mode in words (issue 18), not the form's key.
    let notice = text_of(&page, "support-notice");
    assert!(notice.starts_with("Saved: ") && notice.ends_with(&format!(" now uses {label}.")), "{notice}");
}

/// A user signs in to the vendor app from its sign-in page; returns the meetings page.
async fn user_signs_in(w: &World, browser: &reqwest::Client, instance: &str, upn: &str) -> String {
    let page = get(browser, &w.vendor.url(&format!("/signin/{instance}"))).await.page();
    let start = get(browser, &w.vendor.url(&href_of(&page, "start-sign-in"))).await.redirect();
    assert!(start.starts_with(&w.accord.url("/")), "{start}");
    assert!(start.contains("code_challenge_method=S256") && start.contains("nonce="), "{start}");
    let callback = at_accord(browser, w, &start, upn).await.redirect();
    finish_sign_in(w, browser, instance, &callback).await
}

async fn finish_sign_in(w: &World, browser: &reqwest::Client, instance: &str, callback: &str) -> String {
    assert!(callback.starts_with(&w.vendor.url("/auth/callback?")), "{callback}");
    let to = get(browser, callback).await.redirect();
    assert_eq!(to, format!("/meetings/{instance}"), "{}", w.logs());
    get(browser, &w.vendor.url(&to)).await.page()
}

#[tokio::test]
async fn option_1_admin_consent_then_users_sign_in_without_a_prompt() {
    let w = World::start();

    // The customer's administrator opens the onboarding page and its admin-consent link.
    let admin = w.browser();
    let onboarding = get(&admin, &w.vendor.url("/onboarding/contoso")).await.page();
    assert_eq!(text_of(&onboarding, "client-id"), APP_ID);
    assert_eq!(text_of(&onboarding, "consent-mode"), "Pre-authorization");
    let users_and_groups = href_of(&onboarding, "enterprise-app-link");
    assert_eq!(users_and_groups, w.accord.url(&format!("/admin/enterprise-apps?q={APP_ID}")));
    assert!(onboarding.contains("Users and groups &gt; Add user/group"), "{onboarding}");
    let link = href_of(&onboarding, "admin-consent-link");
    assert!(link.starts_with(&w.accord.url("/organizations/v2.0/adminconsent?")), "{link}");
    assert!(link.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default") && link.contains("state="), "{link}");

    let consent = at_accord(&admin, &w, &link, "admin@contoso.test").await.page();
    assert!(consent.contains("Accept for your organisation"), "{consent}");
    let callback = submit(&admin, &w.accord, &consent, "", &[("decision", "accept")]).await.redirect();
    assert!(callback.starts_with(&w.vendor.url("/admin-consent/callback?")), "{callback}");
    let result = get(&admin, &callback).await.page();
    assert_eq!(text_of(&result, "result-title"), "Connected", "{result}\n{}", w.logs());
    assert_eq!(text_of(&result, "tenant-id"), CONTOSO);
    assert!(text_of(&result, "granted-roles").contains("Calendars.Read"), "{result}");
    // The redirect cannot be replayed: its state was single use.
    let replay = get(&admin, &callback).await;
    assert!(matches!(&replay, Landing::Page(400, html) if html.contains("expired or was already used")), "{replay:?}");

    // Alice signs in: no consent prompt, and her meetings are synced with the application permission.
    let alice = w.browser();
    let meetings = user_signs_in(&w, &alice, "contoso", "alice@contoso.test").await;
    // Recurring meetings come back next week, so they are listed whatever day it is.
    assert!(meetings.contains("Weekly sales pipeline review"), "{meetings}\n{}", w.logs());
    assert!(meetings.contains("Sales team retro"), "{meetings}");
    assert!(meetings.contains("data-state=\"admin_consent\""), "{meetings}");
    assert!(meetings.contains("data-upn=\"alice@contoso.test\" data-state=\"connected\""), "{meetings}");
    assert!(meetings.contains("organisation-wide"), "{meetings}");
    // "Sync now" (a form with the session's CSRF token) checks and syncs again.
    let synced = submit(&alice, &w.vendor, &meetings, "id=\"sync-form\"", &[]).await.redirect();
    assert!(synced.starts_with("/meetings/contoso?synced=1"), "{synced}");
    let page = get(&alice, &w.vendor.url(&synced)).await.page();
    assert!(page.contains("id=\"sync-result\""), "{page}");
    assert!(page.contains("Weekly sales pipeline review"), "{page}");
    // Why everyone's meetings are listed with an application permission, whatever the
    // assignments (issue 18).
    assert!(text_of(&page, "tenant-wide-note").contains("reads the calendars of everyone"), "{page}");
    // Counts in words (issue 18): "Synced 4 meetings of 2 users", never "meeting(s)".
    assert!(!page.contains("(s)") && page.contains(" meetings of "), "{page}");
    // Without the token the form is refused.
    let forged = alice.post(w.vendor.url("/meetings/contoso/sync")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    // Colleagues' connections are for administrators (issue 18): Bob sees his own and a count;
    // the administrator, whose ID token names her role (wids), sees everyone's.
    let bob = w.browser();
    let bobs = user_signs_in(&w, &bob, "contoso", "bob@contoso.test").await;
    assert!(bobs.contains("data-upn=\"bob@contoso.test\""), "{bobs}");
    assert!(!bobs.contains("data-upn=\"alice@contoso.test\""), "Bob does not see Alice's connection: {bobs}");
    assert!(text_of(&bobs, "colleagues-note").contains("Only administrators of Contoso"), "{bobs}");
    // The application permission syncs everyone in the directory: all of them count.
    assert!(text_of(&bobs, "colleagues-note").starts_with("6 of 6 colleagues of Contoso are connected."), "{bobs}");
    let admins = user_signs_in(&w, &w.browser(), "contoso", "admin@contoso.test").await;
    for upn in ["alice@contoso.test", "bob@contoso.test", "admin@contoso.test"] {
        assert!(admins.contains(&format!("data-upn=\"{upn}\"")), "the administrator sees {upn}: {admins}");
    }
    assert!(!admins.contains("id=\"colleagues-note\""), "{admins}");
    // Someone who is not signed in sees no meetings.
    let anonymous = get(&w.browser(), &w.vendor.url("/meetings/contoso")).await.page();
    assert!(!anonymous.contains("Weekly sales pipeline review"), "{anonymous}");

    // "Only some users or groups": the administrator makes assignment required in Accord's admin
    // center and assigns nobody. At the next check Alice's connection is refused: revoked.
    let portal = w.accord.url(&format!("/portal/signin?return_to=%2Fadmin%2Fenterprise-apps%3Fq%3D{APP_ID}"));
    let apps = at_accord(&admin, &w, &portal, "admin@contoso.test").await.page();
    let app = href_before(&apps, ">Meeting Insights</a>");
    let properties = get(&admin, &w.accord.url(&format!("{app}/properties"))).await.page();
    let saved =
        submit(&admin, &w.accord, &properties, "/properties\"", &[("enabled", "yes"), ("assignment_required", "yes")])
            .await
            .redirect();
    assert!(saved.contains("/properties"), "{saved}");
    let synced = submit(&alice, &w.vendor, &page, "id=\"sync-form\"", &[]).await.redirect();
    let page = get(&alice, &w.vendor.url(&synced)).await.page();
    assert!(page.contains("data-upn=\"alice@contoso.test\" data-state=\"revoked\""), "{page}\n{}", w.logs());
    assert!(page.contains("Revoked (user not assigned)") && page.contains("AADSTS50105"), "{page}");
    assert!(page.contains("id=\"reconnect\""), "{page}");
    assert!(!page.contains("Weekly sales pipeline review"), "her meetings are no longer shown: {page}");

    // Vendor support switches the instance to user consent (Option 2).
    let staff = support_signed_in(&w).await;
    switch_mode(&w, &staff, "contoso", "user_consent", "User consent").await;
    let onboarding = get(&admin, &w.vendor.url("/onboarding/contoso")).await.page();
    assert_eq!(text_of(&onboarding, "consent-mode"), "User consent");
    assert!(onboarding.contains("id=\"user-consent-active\""), "{onboarding}");
}

#[tokio::test]
async fn admin_consent_failures_are_explained_with_their_code() {
    let w = World::start();

    // The administrator presses Cancel.
    let admin = w.browser();
    let onboarding = get(&admin, &w.vendor.url("/onboarding/contoso")).await.page();
    let consent = at_accord(&admin, &w, &href_of(&onboarding, "admin-consent-link"), "admin@contoso.test").await.page();
    let callback = submit(&admin, &w.accord, &consent, "", &[("decision", "cancel")]).await.redirect();
    assert!(callback.starts_with(&w.vendor.url("/admin-consent/callback?")), "{callback}");
    let page = get(&admin, &callback).await.page();
    assert_eq!(text_of(&page, "result-title"), "The consent was cancelled", "{page}");
    assert_eq!(page.matches("AADSTS65004").count(), 1, "the code, once: {page}");
    assert!(text_of(&page, "error-text").contains("nothing was granted"), "{page}");
    assert!(page.contains("id=\"back-to-onboarding\""), "{page}");

    // A user who is not an administrator opens the link.
    let alice = w.browser();
    let onboarding = get(&alice, &w.vendor.url("/onboarding/contoso")).await.page();
    let callback =
        at_accord(&alice, &w, &href_of(&onboarding, "admin-consent-link"), "alice@contoso.test").await.redirect();
    assert!(callback.starts_with(&w.vendor.url("/admin-consent/callback?")), "{callback}");
    let page = get(&alice, &callback).await.page();
    assert_eq!(text_of(&page, "result-title"), "Only an administrator can grant this consent", "{page}");
    assert_eq!(page.matches("AADSTS90094").count(), 1, "the code, once: {page}");
    assert!(text_of(&page, "error-text").contains("Global Administrator"), "{page}");

    // Neither connected the instance.
    let home = get(&admin, &w.vendor.url("/")).await.page();
    let contoso = &home[home.find("id=\"instance-contoso\"").unwrap()..];
    assert!(contoso[..contoso.find("</tr>").unwrap()].contains("Not connected"), "{home}");

    // Fabrikam gave admin consent for delegated permissions outside the app: Frank signs in
    // without a prompt, the instance learns its tenant, and his meetings come from his own token.
    let frank = w.browser();
    let meetings = user_signs_in(&w, &frank, "fabrikam", "frank@fabrikam.test").await;
    assert!(meetings.contains("Prospect call: Wide World Importers"), "{meetings}\n{}", w.logs());
    assert!(meetings.contains("data-state=\"delegated\""), "{meetings}");
    assert!(meetings.contains("own connection"), "{meetings}");
}

#[tokio::test]
async fn option_2_approval_required_then_try_again_after_approval() {
    let w = World::start();
    let staff = support_signed_in(&w).await;
    switch_mode(&w, &staff, "contoso", "user_consent", "User consent").await;

    // Bob connects his calendar; Contoso's policy needs an administrator's approval.
    let bob = w.browser();
    let page = get(&bob, &w.vendor.url("/signin/contoso")).await.page();
    assert!(text_of(&page, "approval-note").starts_with("If your organisation requires approval"), "{page}");
    assert_eq!(text_of(&page, "start-sign-in"), "Connect my calendar");
    let start = get(&bob, &w.vendor.url(&href_of(&page, "start-sign-in"))).await.redirect();
    let approval = at_accord(&bob, &w, &start, "bob@contoso.test").await.page();
    assert!(approval.contains("Approval required"), "{approval}");
    let sent = submit(&bob, &w.accord, &approval, "", &[("reason", "I want my meetings in Meeting Insights")]).await;
    let sent = follow_on(&bob, &w.accord, sent).await.page();
    assert!(sent.contains("Request sent"), "{sent}");

    // He never came back to the callback: the sign-in page offers "Try again".
    let page = get(&bob, &w.vendor.url("/signin/contoso")).await.page();
    assert!(page.contains("id=\"waiting-for-approval\""), "{page}");
    // Why two buttons lead to the same place is said (issue 18).
    assert!(page.contains("it is the same sign-in as"), "{page}");
    let try_again = href_of(&page, "try-again");

    // Contoso's administrator approves the request in Accord's admin center.
    let admin = w.browser();
    let requests = format!("/admin/requests/{APP_ID}");
    let portal = w.accord.url(&format!("/portal/signin?return_to={requests}"));
    let landing = at_accord(&admin, &w, &portal, "admin@contoso.test").await;
    let request_page = match landing {
        Landing::Page(_, html) if html.contains("/approve\"") => html,
        other => panic!("expected the request page, got {other:?}"),
    };
    let approved = submit(&admin, &w.accord, &request_page, "/approve\"", &[]).await;
    let approved = follow_on(&admin, &w.accord, approved).await.page();
    assert!(!approved.contains(&format!("action=\"/admin/requests/{APP_ID}/approve\"")), "{approved}");

    // Picking up after approval: "Try again" now connects Bob without any prompt.
    let start = get(&bob, &w.vendor.url(&try_again)).await.redirect();
    let callback = at_accord(&bob, &w, &start, "bob@contoso.test").await.redirect();
    let meetings = finish_sign_in(&w, &bob, "contoso", &callback).await;
    assert!(meetings.contains("Discovery call: Tailspin Toys"), "{meetings}\n{}", w.logs());
    assert!(meetings.contains("data-upn=\"bob@contoso.test\" data-state=\"connected\""), "{meetings}");
    assert!(meetings.contains("own connection"), "{meetings}");
    let page = get(&bob, &w.vendor.url("/signin/contoso")).await.page();
    assert!(!page.contains("id=\"waiting-for-approval\""), "{page}");
}

/// Sync by push: after the administrator's consent and Alice's sign-in, a meeting Contoso's
/// room-booking service books into Alice's calendar through Graph shows on the meetings page by
/// change notification, and disabling the app in Accord's admin center turns Alice's connection
/// to "revoked" by lifecycle notification — neither needs "Sync now".
#[tokio::test]
async fn push_sync_shows_booked_meetings_and_revocations_without_sync_now() {
    const BOOKING: (&str, &str) = ("5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a72", "contoso-booking-secret-change-me");
    let w = World::start_with_push();

    // Option 1: the administrator consents for the organisation; Alice signs in.
    let admin = w.browser();
    let onboarding = get(&admin, &w.vendor.url("/onboarding/contoso")).await.page();
    let link = href_of(&onboarding, "admin-consent-link");
    let consent = at_accord(&admin, &w, &link, "admin@contoso.test").await.page();
    let callback = submit(&admin, &w.accord, &consent, "", &[("decision", "accept")]).await.redirect();
    let result = get(&admin, &callback).await.page();
    assert_eq!(text_of(&result, "result-title"), "Connected", "{result}\n{}", w.logs());
    let alice = w.browser();
    let meetings = user_signs_in(&w, &alice, "contoso", "alice@contoso.test").await;
    assert!(meetings.contains("Weekly sales pipeline review"), "{meetings}\n{}", w.logs());

    // The booking service books a meeting into Alice's calendar through Graph.
    let graph = w.browser();
    let token: serde_json::Value = graph
        .post(w.accord.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", BOOKING.0),
            ("client_secret", BOOKING.1),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap_or_else(|| panic!("{token}")).to_string();
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(2)).date();
    let at = |hour: u8| format!("{day}T{hour:02}:00:00");
    let booked = graph
        .post(w.accord.url("/v1.0/users/alice@contoso.test/events"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "subject": "Booked by push: Northwind boardroom",
            "start": {"dateTime": at(15), "timeZone": "UTC"},
            "end": {"dateTime": at(16), "timeZone": "UTC"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status().as_u16(), 201, "{}", booked.text().await.unwrap());

    // The meetings page shows it within seconds, without "Sync now".
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = get(&alice, &w.vendor.url("/meetings/contoso")).await.page();
        if page.contains("Booked by push: Northwind boardroom") {
            break;
        }
        assert!(Instant::now() < deadline, "the booked meeting never showed:\n{page}\n{}", w.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The administrator disables Meeting Insights in Accord's admin center.
    let portal = w.accord.url(&format!("/portal/signin?return_to=%2Fadmin%2Fenterprise-apps%3Fq%3D{APP_ID}"));
    let apps = at_accord(&admin, &w, &portal, "admin@contoso.test").await.page();
    let app = href_before(&apps, ">Meeting Insights</a>");
    let properties = get(&admin, &w.accord.url(&format!("{app}/properties"))).await.page();
    let saved =
        submit(&admin, &w.accord, &properties, "/properties\"", &[("enabled", "no"), ("assignment_required", "no")])
            .await
            .redirect();
    assert!(saved.contains("/properties"), "{saved}");

    // Alice's connection turns to "revoked", with the reason, without "Sync now".
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = get(&alice, &w.vendor.url("/meetings/contoso")).await.page();
        if page.contains("data-upn=\"alice@contoso.test\" data-state=\"revoked\"") {
            assert!(page.contains("AADSTS7000112"), "the reason is shown: {page}");
            assert!(!page.contains("Booked by push: Northwind boardroom"), "her meetings are no longer shown: {page}");
            break;
        }
        assert!(Instant::now() < deadline, "the revocation never showed:\n{page}\n{}", w.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = w.vendor.log();
    assert!(log.contains("subscribed to calendar changes"), "{log}");
    assert!(log.contains("synced on a change notification"), "{log}");
}

/// Consent webhooks: the administrator disables Meeting Insights in Accord's admin center and
/// Accord pushes `app.disabled`, signed, to the app, which re-checks the connection at once:
/// Alice's turns to "revoked" with Accord's reason, with no sync and no Graph lifecycle event.
/// A webhook that is not signed with the secret is refused.
#[tokio::test]
async fn a_consent_webhook_turns_the_connection_at_once() {
    let (w, hook) = World::start_with_consent_webhooks();
    let admin = w.browser();
    let onboarding = get(&admin, &w.vendor.url("/onboarding/contoso")).await.page();
    let link = href_of(&onboarding, "admin-consent-link");
    let consent = at_accord(&admin, &w, &link, "admin@contoso.test").await.page();
    let callback = submit(&admin, &w.accord, &consent, "", &[("decision", "accept")]).await.redirect();
    let result = get(&admin, &callback).await.page();
    assert_eq!(text_of(&result, "result-title"), "Connected", "{result}\n{}", w.logs());
    let alice = w.browser();
    let meetings = user_signs_in(&w, &alice, "contoso", "alice@contoso.test").await;
    assert!(meetings.contains("data-upn=\"alice@contoso.test\" data-state=\"connected\""), "{meetings}");

    // A forged event: refused, nothing re-checked.
    let forged = reqwest::Client::new()
        .post(&hook)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", time::OffsetDateTime::now_utc().unix_timestamp().to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(format!(r#"{{"type":"app.disabled","data":{{"tenantId":"{CONTOSO}"}}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    // The administrator disables Meeting Insights in Accord's admin center.
    let portal = w.accord.url(&format!("/portal/signin?return_to=%2Fadmin%2Fenterprise-apps%3Fq%3D{APP_ID}"));
    let apps = at_accord(&admin, &w, &portal, "admin@contoso.test").await.page();
    let app = href_before(&apps, ">Meeting Insights</a>");
    let properties = get(&admin, &w.accord.url(&format!("{app}/properties"))).await.page();
    submit(&admin, &w.accord, &properties, "/properties\"", &[("enabled", "no"), ("assignment_required", "no")]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = get(&alice, &w.vendor.url("/meetings/contoso")).await.page();
        if page.contains("data-upn=\"alice@contoso.test\" data-state=\"revoked\"") {
            assert!(page.contains("AADSTS7000112"), "Accord's reason is shown: {page}");
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never turned the connection:\n{page}\n{}", w.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = w.vendor.log();
    assert!(log.contains("consent webhook received") && log.contains("app.disabled"), "{log}");
    assert!(log.contains("consent webhook refused"), "the forged one: {log}");
    assert!(!log.contains("access is gone"), "no lifecycle event did it: {log}");
}
