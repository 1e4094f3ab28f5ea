//! Notifications: the outbox delivered by SMTP to a small stand-in mail server (the external
//! system), kept unsent with its error when the server is down, and reviewers reminded of
//! requests about to expire.

mod support;

use accord_core::consent_records::{ConsentRequest, Notification, PermissionKey, RequestStatus, ReviewResult};
use accord_core::ids::TenantId;
use accord_server::crypto::Keyring;
use accord_server::service::admin_consent_requests::remind_expiring;
use accord_server::service::notifications::{Outbox, OutboxRun, SmtpSettings, MAX_ATTEMPTS};
use accord_server::service::scenario_loader;
use accord_store::{Change, SqlStore, Store};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use time::OffsetDateTime;
use uuid::Uuid;

const VENDOR_APP: &str = "dddddddd-0000-4000-8000-000000000001";
const FABRIKAM_ID: &str = "cccccccc-0000-4000-8000-000000000003";
const REVIEWERS: [&str; 3] = ["admin@fabrikam.test", "appadmin@fabrikam.test", "rita@fabrikam.test"];

// --- a stand-in SMTP server: just enough of RFC 5321 to take mail and remember it ---

#[derive(Debug, Clone)]
struct Mail {
    mail_from: String,
    rcpt_to: Vec<String>,
    /// The message as sent after DATA (headers and body, CRLF line ends, dots unstuffed).
    data: String,
}

impl Mail {
    /// A header's value, unfolded.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
        head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body, with quoted-printable undone when the message uses it.
    fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        let qp = self.header("Content-Transfer-Encoding").is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return body.to_string();
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

struct MailServer {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl MailServer {
    /// Listens on 127.0.0.1 (a free port); each connection is served on its own thread.
    fn start() -> MailServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mails = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, &mails);
                });
            }
        });
        MailServer { port, mails }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until at least `n` mails arrived (or panics after 30 s).
    fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < deadline, "expected {n} mails, got {}: {mails:?}", mails.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_smtp(stream: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 mail.test ESMTP stand-in\r\n")?;
    let (mut mail_from, mut rcpt_to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let angle = || command.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(a, _)| a.to_string());
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250 mail.test\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = angle().unwrap_or_default();
            rcpt_to.clear();
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(angle().unwrap_or_default());
            out.write_all(b"250 OK\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let mail = Mail { mail_from: mail_from.clone(), rcpt_to: std::mem::take(&mut rcpt_to), data };
            mails.lock().unwrap().push(mail);
            out.write_all(b"250 OK queued\r\n")?;
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 OK\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 not implemented\r\n")?;
        }
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// --- the real server ---

fn launch(extra: &[&str]) -> TestServer {
    let data_dir = std::env::temp_dir().join(format!("accord-notify-{}", uuid_like()));
    std::fs::create_dir_all(&data_dir).unwrap();
    TestServer::launch_with_env(data_dir, &consent_world(), extra, &[("ACCORD_OUTBOX_INTERVAL_MS", "200")])
}

/// Frank, who may not consent, asks for approval through the pages.
async fn file_request_as_frank(server: &TestServer) {
    let c = server.client();
    let mut url = reqwest::Url::parse(&server.url("/fabrikam.test/oauth2/v2.0/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", VENDOR_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", "https://vendor.example/cb")
        .append_pair("scope", "openid profile User.Read Calendars.Read")
        .append_pair("state", "st");
    let (status, page) = match sign_in(&c, server, url.as_str(), "frank@fabrikam.test", "frank-password-1").await {
        Ok(loc) => panic!("expected the approval page, got a redirect to {loc}"),
        Err(page) => page,
    };
    assert_eq!(status, 200);
    assert!(page.contains("Approval required"), "{page}");
    let res = submit(&c, server, &page, &[("reason", "I need my meetings in Insights")]).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("Request sent"));
}

async fn store_of(server: &TestServer) -> SqlStore {
    SqlStore::connect_sqlite_file(&server.data_dir.join("accord.db")).await.unwrap()
}

fn fabrikam() -> TenantId {
    FABRIKAM_ID.parse().unwrap()
}

/// Polls the tenant's notifications of `kind` until `done` holds for them (or panics after 30 s).
async fn wait_for_notifications(
    store: &SqlStore,
    kind: &str,
    done: impl Fn(&[Notification]) -> bool,
) -> Vec<Notification> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let notes: Vec<Notification> =
            store.notifications(fabrikam()).await.unwrap().into_iter().filter(|n| n.kind == kind).collect();
        if done(&notes) {
            return notes;
        }
        assert!(Instant::now() < deadline, "notifications never got there: {notes:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_new_request_is_mailed_to_each_reviewer() {
    let smtp = MailServer::start();
    let url = smtp.url();
    let server = launch(&["--smtp-url", &url, "--smtp-from", "Accord <noreply@accord.test>"]);
    file_request_as_frank(&server).await;

    let mails = smtp.wait_for(3);
    assert_eq!(mails.len(), 3, "one mail per reviewer: {mails:#?}");
    let recipients: BTreeSet<String> = mails.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    assert_eq!(recipients, REVIEWERS.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>());
    for m in &mails {
        assert_eq!(m.rcpt_to.len(), 1);
        assert_eq!(m.mail_from, "noreply@accord.test");
        assert_eq!(m.header("Subject").as_deref(), Some("Frank Fisher asks for approval of Meeting Insights"));
        assert_eq!(m.header("X-Accord-Notification").as_deref(), Some("request.new"));
        assert!(m.header("From").unwrap().contains("noreply@accord.test"), "{m:?}");
        assert!(m.header("To").unwrap().contains(&m.rcpt_to[0]), "{m:?}");
        let body = m.body();
        assert!(body.contains("I need my meetings in Insights") && body.contains("frank@fabrikam.test"), "{body}");
    }

    // The store marks them sent.
    let store = store_of(&server).await;
    let notes =
        wait_for_notifications(&store, "request.new", |n| n.len() == 3 && n.iter().all(|n| n.sent_at.is_some())).await;
    assert!(notes.iter().all(|n| n.attempts == 0 && n.last_error.is_none()), "{notes:#?}");
    // Each is sent once: later runs leave them alone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.mails().len(), 3);

    let metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_notifications_sent_total{kind=\"request.new\"} 3"), "{metrics}");
    let log = server.log();
    assert!(log.contains("delivering notifications by SMTP"), "{log}");
}

#[tokio::test]
async fn with_the_mail_server_down_notifications_stay_unsent_with_their_error() {
    let port = closed_port();
    let url = format!("smtp://mailer:s3cret-pw@127.0.0.1:{port}");
    let server = launch(&["--smtp-url", &url]);
    file_request_as_frank(&server).await;

    let store = store_of(&server).await;
    let notes = wait_for_notifications(&store, "request.new", |n| {
        n.len() == 3 && n.iter().all(|n| n.attempts >= 1 && n.last_error.is_some())
    })
    .await;
    for n in &notes {
        assert!(n.sent_at.is_none(), "{n:?}");
        assert!(n.attempts < MAX_ATTEMPTS, "retries back off: {n:?}");
        assert!(n.last_error.as_deref().unwrap().to_lowercase().contains("connect"), "{n:?}");
    }
    let metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_notifications_failed_total{kind=\"request.new\"}"), "{metrics}");
    let log = server.log();
    assert!(log.contains("mailer:***@127.0.0.1"), "the URL is logged without its password: {log}");
    assert!(!log.contains("s3cret-pw"), "the password is never logged: {log}");
}

#[tokio::test]
async fn without_smtp_notifications_are_only_kept() {
    let server = launch(&[]);
    file_request_as_frank(&server).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let store = store_of(&server).await;
    let notes = wait_for_notifications(&store, "request.new", |n| n.len() == 3).await;
    assert!(notes.iter().all(|n| n.sent_at.is_none() && n.attempts == 0 && n.last_error.is_none()), "{notes:#?}");
    assert!(server.log().contains("notification delivery is off"), "{}", server.log());
}

// --- in process: the reminder scan and the outbox's backoff ---

/// A store in a temporary directory with the consent world loaded.
async fn consent_world_store() -> SqlStore {
    let dir = std::env::temp_dir().join(format!("accord-notify-unit-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::connect_sqlite_file(&dir.join("accord.db")).await.unwrap();
    let keyring = Keyring::from_master(&[7; 32]);
    scenario_loader::ensure_builtins(&store).await.unwrap();
    let world = scenario_loader::parse_file(&consent_world(), &accord_core::scenario::ParseOptions::now()).unwrap();
    scenario_loader::load(&store, &keyring, &world).await.unwrap();
    store
}

async fn pending_request(store: &SqlStore, upn: &str, expires_at: OffsetDateTime) -> ConsentRequest {
    let user = store.user_by_upn(fabrikam(), upn).await.unwrap().unwrap();
    let request = ConsentRequest {
        tenant_id: fabrikam(),
        id: Uuid::new_v4(),
        client_app_id: VENDOR_APP.parse().unwrap(),
        user_id: user.id,
        reason: format!("{upn} needs it"),
        permissions: vec![PermissionKey {
            resource_app_id: accord_core::well_known::GRAPH_APP_ID,
            value: "Calendars.Read".into(),
        }],
        status: RequestStatus::InProgress,
        result: ReviewResult::NotReviewed,
        reviewed_by: None,
        review_justification: None,
        created_at: OffsetDateTime::now_utc() - time::Duration::days(6),
        reviewed_at: None,
        completed_at: None,
        expires_at,
    };
    store.apply(&[Change::PutConsentRequest(request.clone())]).await.unwrap();
    request
}

#[tokio::test]
async fn reviewers_are_reminded_once_of_a_request_about_to_expire() {
    let store = consent_world_store().await;
    let now = OffsetDateTime::now_utc();
    let soon = pending_request(&store, "frank@fabrikam.test", now + time::Duration::hours(12)).await;
    let later = pending_request(&store, "grace@fabrikam.test", now + time::Duration::days(3)).await;
    // Already past its date: the expiry job's business, not a reminder's.
    pending_request(&store, "admin@fabrikam.test", now - time::Duration::hours(1)).await;

    assert_eq!(remind_expiring(&store, now).await.unwrap(), 1);
    assert_eq!(remind_expiring(&store, now + time::Duration::minutes(1)).await.unwrap(), 0, "scanned twice");
    let reminders: Vec<Notification> =
        store.notifications(fabrikam()).await.unwrap().into_iter().filter(|n| n.kind == "request.expiring").collect();
    assert_eq!(reminders.len(), 3, "exactly one per reviewer: {reminders:#?}");
    let recipients: BTreeSet<&str> = reminders.iter().map(|n| n.recipient_address.as_str()).collect();
    assert_eq!(recipients, REVIEWERS.into_iter().collect::<BTreeSet<_>>());
    for n in &reminders {
        assert!(n.subject.contains("Meeting Insights"), "{n:?}");
        assert!(n.body.contains("Frank Fisher") && n.body.contains(&soon.id.to_string()), "{n:?}");
        assert!(n.sent_at.is_none() && n.attempts == 0);
    }

    // Two days on, the other request is the one about to expire.
    assert_eq!(remind_expiring(&store, now + time::Duration::days(2)).await.unwrap(), 1);
    assert_eq!(remind_expiring(&store, now + time::Duration::days(2)).await.unwrap(), 0);
    let reminders: Vec<Notification> =
        store.notifications(fabrikam()).await.unwrap().into_iter().filter(|n| n.kind == "request.expiring").collect();
    assert_eq!(reminders.len(), 6);
    assert_eq!(reminders.iter().filter(|n| n.body.contains(&later.id.to_string())).count(), 3);
}

async fn enqueue(store: &SqlStore, to: &str, subject: &str) -> Uuid {
    let user = store.user_by_upn(fabrikam(), to).await.unwrap().unwrap();
    let id = Uuid::new_v4();
    let n = Notification {
        tenant_id: fabrikam(),
        id,
        recipient_user_id: user.id,
        recipient_address: user.upn.clone(),
        kind: "request.new".into(),
        subject: subject.into(),
        body: "Please review.".into(),
        created_at: OffsetDateTime::now_utc(),
        sent_at: None,
        attempts: 0,
        last_error: None,
    };
    store.apply(&[Change::EnqueueNotification(n)]).await.unwrap();
    id
}

async fn notification(store: &SqlStore, id: Uuid) -> Notification {
    store.notifications(fabrikam()).await.unwrap().into_iter().find(|n| n.id == id).unwrap()
}

#[tokio::test]
async fn the_outbox_backs_off_gives_up_after_ten_attempts_and_goes_on_with_newer_mail() {
    let store = consent_world_store().await;
    let stuck = enqueue(&store, "rita@fabrikam.test", "stuck").await;
    let down =
        SmtpSettings::parse(&format!("smtp://127.0.0.1:{}", closed_port()), None, "https://accord.test").unwrap();
    let mut outbox = Outbox::new(&down).unwrap();

    let t0 = OffsetDateTime::now_utc();
    assert_eq!(outbox.run_once(&store, t0).await.unwrap(), OutboxRun { sent: 0, failed: 1 });
    assert_eq!(outbox.run_once(&store, t0 + time::Duration::seconds(10)).await.unwrap(), OutboxRun::default());
    assert_eq!(outbox.run_once(&store, t0 + time::Duration::seconds(31)).await.unwrap().failed, 1, "30 s later");
    assert_eq!(notification(&store, stuck).await.attempts, 2);
    // A second run within the (now one minute) backoff does nothing; long after it, one attempt per run.
    assert_eq!(outbox.run_once(&store, t0 + time::Duration::seconds(60)).await.unwrap(), OutboxRun::default());
    let mut at = t0;
    for _ in 2..MAX_ATTEMPTS {
        at += time::Duration::hours(2);
        assert_eq!(outbox.run_once(&store, at).await.unwrap().failed, 1);
    }
    let n = notification(&store, stuck).await;
    assert_eq!(n.attempts, MAX_ATTEMPTS);
    assert!(n.sent_at.is_none() && n.last_error.is_some(), "given up, still visible: {n:?}");
    assert_eq!(outbox.run_once(&store, at + time::Duration::days(1)).await.unwrap(), OutboxRun::default());

    // With a server up, newer mail goes out and the given-up message stays as it was.
    let smtp = MailServer::start();
    let up = SmtpSettings::parse(&smtp.url(), None, "https://accord.test").unwrap();
    let mut outbox = Outbox::new(&up).unwrap();
    let fresh = enqueue(&store, "admin@fabrikam.test", "fresh").await;
    let run = outbox.run_once(&store, OffsetDateTime::now_utc() + time::Duration::days(2)).await.unwrap();
    assert_eq!(run, OutboxRun { sent: 1, failed: 0 });
    assert!(notification(&store, fresh).await.sent_at.is_some());
    assert_eq!(notification(&store, stuck).await.attempts, MAX_ATTEMPTS);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to, vec!["admin@fabrikam.test".to_string()]);
    assert_eq!(mails[0].mail_from, "noreply@accord.test");
    assert_eq!(mails[0].header("Subject").as_deref(), Some("fresh"));
}
