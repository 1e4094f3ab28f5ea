//! PostgreSQL outage (issue 12's suites): the database goes away under load — every connection
//! cut, new ones refused — and comes back. Meanwhile `/readyz` turns unready, requests that need
//! the database fail fast with a clear, retryable error (no hang, no panic, liveness stays up),
//! and the server resumes by itself when the database returns, without a restart.
//!
//! The outage is made by a TCP proxy between the server and PostgreSQL, owned by the test, so
//! the shared PostgreSQL server keeps running for everyone else. Skipped without
//! `ACCORD_TEST_DATABASE_URL`, like the other PostgreSQL tests.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections to PostgreSQL until `cut`, which drops every open connection and refuses
/// new ones until `restore`.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let target = target.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open2.lock().unwrap().push(relay);
            }
        });
        Proxy { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.open.lock().unwrap().drain(..) {
            relay.abort(); // both sockets close
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `host:port` and the rest of a `postgres://user@host:port/db?…` URL.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth_host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (auth, host) = match auth_host.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h.to_string()),
        None => (String::new(), auth_host.to_string()),
    };
    (format!("{scheme}://{auth}"), host, path.to_string())
}

fn psql(url: &str, sql: &str) {
    let status = std::process::Command::new("psql")
        .env("PGOPTIONS", "--client-min-messages=warning")
        .arg(url)
        .arg("-qc")
        .arg(sql)
        .status()
        .unwrap();
    assert!(status.success(), "psql {sql}");
}

/// A request that always reads the database (no cache): redeeming a code that does not exist.
async fn redeem_bogus_code(server: &TestServer, c: &reqwest::Client) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let res = c
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("code", "no-such-code"),
            ("redirect_uri", WEB_REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, started.elapsed())
}

async fn status_of(c: &reqwest::Client, url: &str) -> u16 {
    c.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Polls until `ok` holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, mut ok: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if ok().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
async fn the_server_rides_out_a_database_outage() {
    let base = postgres_url();
    let schema = format!("outage_{}", uuid_like().replace('-', "_"));
    psql(&base, &format!("CREATE SCHEMA {schema}"));
    let (prefix, host, path) = split_url(&base);
    let proxy = Proxy::start(host).await;
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{prefix}127.0.0.1:{}/{path}{sep}options=-c%20search_path%3D{schema}", proxy.port);
    let data_dir = std::env::temp_dir().join(format!("accord-outage-{}", uuid_like()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes, test only
    let server =
        TestServer::launch_with_env(data_dir, &world(), &["--database-url", &url], &[("ACCORD_MASTER_KEY", master)]);
    let c = server.client();

    // Up: ready, and a bogus code is refused as such.
    assert_eq!(status_of(&c, &server.url("/readyz")).await, 200);
    let (status, body, _) = redeem_bogus_code(&server, &c).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // A Graph token from before the outage.
    let res = c
        .post(server.url("/organizations/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", NATIVE_APP),
            ("username", "bob@contoso.test"),
            ("password", "bob-password-1"),
            ("scope", "User.Read"),
        ])
        .send()
        .await
        .unwrap();
    let token: serde_json::Value = res.json().await.unwrap();
    let access = token["access_token"].as_str().expect("a token").to_string();

    // Down.
    proxy.cut();
    let cut_at = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || async { status_of(&c, &server.url("/readyz")).await == 503 }).await,
        "/readyz did not turn unready"
    );
    let unready_after = cut_at.elapsed();
    assert_eq!(status_of(&c, &server.url("/healthz")).await, 200, "the process itself is alive");
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (status, body, took) = redeem_bogus_code(&server, &c).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(took < Duration::from_secs(8), "a request waited {took:?} for the database");
        waits.push(took);
    }
    let me = c.get(server.url("/v1.0/me")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 503);
    assert!(me.headers().contains_key("retry-after"));
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["error"]["code"], "serviceNotAvailable", "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "no connection detail leaks: {body}");

    // Back: the server resumes by itself.
    proxy.restore();
    let restored_at = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || async { status_of(&c, &server.url("/readyz")).await == 200 }).await,
        "/readyz did not come back"
    );
    let ready_after = restored_at.elapsed();
    let (status, body, _) = redeem_bogus_code(&server, &c).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let me = c.get(server.url("/v1.0/me")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);
    println!("unready {unready_after:?} after the cut; requests answered 503 in {waits:?}; ready {ready_after:?} after the restore");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    drop(server);
    psql(&base, &format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn urls_split_around_the_host() {
    assert_eq!(
        split_url("postgres://postgres@127.0.0.1:5432/test"),
        ("postgres://postgres@".into(), "127.0.0.1:5432".into(), "test".into())
    );
    assert_eq!(split_url("postgres://h:1/db?sslmode=disable").1, "h:1");
}
