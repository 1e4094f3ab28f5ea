//! A real `accord` server for integration tests: the release-independent binary Cargo built,
//! started on a free port with its own data dir and the test world, spoken to over HTTPS.
#![allow(dead_code)]

pub mod graph_api;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CONTOSO: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const FABRIKAM: &str = "aaaaaaaa-0000-4000-8000-000000000002";
pub const WEB_APP: &str = "bbbbbbbb-0000-4000-8000-000000000001";
pub const WEB_SECRET: &str = "web-secret-1";
pub const WEB_REDIRECT: &str = "https://app.example/callback";
pub const NATIVE_APP: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const NATIVE_REDIRECT: &str = "http://localhost:5001/cb";
pub const UNCONSENTED_APP: &str = "bbbbbbbb-0000-4000-8000-000000000003";

pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub ca_pem: Vec<u8>,
    log: PathBuf,
}

pub fn world() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/world.toml")
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&world())
    }

    /// A fresh server loading `scenario`.
    pub fn start_with(scenario: &Path) -> TestServer {
        Self::start_with_args(scenario, &[])
    }

    /// A fresh server loading `scenario`, with extra `accord serve` arguments.
    pub fn start_with_args(scenario: &Path, extra: &[&str]) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!("accord-test-{}", uuid_like()));
        std::fs::create_dir_all(&data_dir).unwrap();
        Self::launch(data_dir, scenario, extra)
    }

    /// A server over an existing data dir, loading the default test world again.
    /// For tests that write to the server's database from another process (the `accord` CLI,
    /// a second store): the server's directory cache compares the store's write generation on
    /// every read (`--directory-cache 0`) instead of once a second, so those writes are seen at
    /// once.
    pub fn start_sharing_store(scenario: &Path) -> TestServer {
        Self::start_with_args(scenario, &["--directory-cache", "0"])
    }

    /// A fresh `--test-mode` server loading `scenario`: its clock can be moved, its control API
    /// is served.
    pub fn start_test_mode(scenario: &Path) -> TestServer {
        Self::start_with_args(scenario, &["--test-mode"])
    }

    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> TestServer {
        Self::launch(data_dir, &world(), extra)
    }

    fn launch(data_dir: PathBuf, scenario: &Path, extra: &[&str]) -> TestServer {
        Self::launch_with_env(data_dir, scenario, extra, &[])
    }

    /// A server with extra arguments and environment (e.g. a shared database and master key).
    pub fn launch_with_env(data_dir: PathBuf, scenario: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::launch_as(data_dir, scenario, "https://localhost:0", extra, env)
    }

    /// Another server over `data_dir` that calls itself `public_url` (e.g. another server's
    /// base): it issues and accepts tokens under that server's issuer, as a replica behind one
    /// name would, while listening on its own port.
    pub fn start_as(data_dir: PathBuf, public_url: &str, extra: &[&str]) -> TestServer {
        Self::launch_as(data_dir, &world(), public_url, extra, &[])
    }

    fn launch_as(
        data_dir: PathBuf,
        scenario: &Path,
        public_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestServer {
        // Several servers may share a data dir: each logs to its own file.
        let log = (0..).map(|n| data_dir.join(format!("server{n}.log"))).find(|p| !p.exists()).unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--public-url")
            .arg(public_url)
            .arg("--scenario")
            .arg(scenario)
            .args(extra)
            .env("ACCORD_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("accord binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        // The kernel picks the port; the server names it: "accord listening on ADDR as URL".
        // Requests go to ADDR's port (the URL may be another server's, see `start_as`).
        let base = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("accord listening") => {
                    let addr = line.trim_start_matches("accord listening on ").split(' ').next().unwrap_or_default();
                    let port = addr.rsplit(':').next().unwrap_or_default();
                    break format!("https://localhost:{port}");
                }
                Some(Ok(_)) => {}
                _ => {
                    let _ = child.kill();
                    panic!("server did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
            assert!(Instant::now() < deadline, "server start timed out");
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let ca_pem = std::fs::read(data_dir.join("tls/ca.pem")).unwrap();
        TestServer { child, base, data_dir, ca_pem, log }
    }

    /// The server's process id (for reading its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An HTTP client that trusts the dev CA, keeps cookies and never follows redirects.
    pub fn client(&self) -> reqwest::Client {
        self.client_trusting(&[])
    }

    /// Like `client`, also trusting other servers' development CAs.
    pub fn client_trusting(&self, others: &[&TestServer]) -> reqwest::Client {
        let mut b = reqwest::Client::builder();
        for pem in std::iter::once(&self.ca_pem).chain(others.iter().map(|o| &o.ca_pem)) {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        b.cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    /// Like `client`, connecting from another loopback address (127.0.0.0/8), so the server
    /// sees a different client.
    pub fn client_from(&self, local: std::net::IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem).unwrap())
            .local_address(local)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A counter's value on `/metrics` (0 when it has not counted yet).
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.client().get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .map(|v| v.parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    }

    /// Moves a `--test-mode` server's clock on (`{"days": 3}`, `{"minutes": 11}`); the control
    /// API's answer.
    pub async fn advance_clock(&self, by: serde_json::Value) -> serde_json::Value {
        let res = self.client().post(self.url("/_accord/test/clock/advance")).json(&by).send().await.unwrap();
        assert_eq!(res.status(), 200, "advancing the clock by {by}");
        res.json().await.unwrap()
    }

    pub fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn consent_world() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/consent_world.toml")
}

/// Runs `accord` with arguments; returns (exit code, stdout, stderr).
pub fn accord(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_accord")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Submits the page's first form with its hidden fields plus `extra`; returns the response.
pub async fn submit(
    client: &reqwest::Client,
    server: &TestServer,
    html: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (action, mut fields) = form_fields(html);
    fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    for (k, v) in extra {
        fields.push((k.to_string(), v.to_string()));
    }
    client.post(server.url(&action)).form(&fields).send().await.unwrap()
}

/// The PostgreSQL database of the PostgreSQL tests. They are ignored unless
/// `ACCORD_TEST_DATABASE_URL` was set when they were built (`build.rs`); then it must be set.
pub fn postgres_url() -> String {
    std::env::var("ACCORD_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("ACCORD_TEST_DATABASE_URL was set when these tests were built, and is not now")
}

/// A name no other test of any run shares: tests of one binary run on parallel threads, and two
/// of them can read the same clock value (the clock's step is coarser than a test's start), so a
/// per-process counter tells them apart — a shared data dir made two servers race to migrate it.
pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{}-{n}", std::process::id())
}

/// Unix seconds now: the times of assertions the tests sign (never compared with a fixed date).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Decodes a JWT's payload without verifying it (tests verify signatures separately).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Extracts `name="..." value="..."` of hidden inputs and the form action from a page.
pub fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let action = attr_after(html, "<form", "action").unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|e| i + e).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    (html_unescape(&action), fields.into_iter().map(|(k, v)| (k, html_unescape(&v))).collect())
}

fn attr_after(html: &str, tag: &str, name: &str) -> Option<String> {
    let i = html.find(tag)?;
    let end = html[i..].find('>')? + i;
    attr(&html[i..end], name)
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_string())
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Waits until the wall clock enters its next second (and 5 ms more): token times and the
/// server's records are whole seconds, so what happens next is strictly after what came before
/// the wait, and the next few milliseconds share one second.
pub async fn next_second() {
    let now = time::OffsetDateTime::now_utc();
    let left = 1_000_000_000 - u64::from(now.nanosecond()) + 5_000_000;
    tokio::time::sleep(Duration::from_nanos(left)).await;
}

pub fn query_param(location: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("verifier-{}-{}", uuid_like(), "x".repeat(30));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Runs the browser part of an auth-code flow: authorize → sign-in form → redirect.
/// Returns the final `Location` (the app's redirect URI with code or error) or the last page.
pub async fn sign_in(
    client: &reqwest::Client,
    server: &TestServer,
    authorize_url: &str,
    upn: &str,
    password: &str,
) -> Result<String, (u16, String)> {
    let res = client.get(authorize_url).send().await.unwrap();
    if res.status().is_redirection() {
        return Ok(res.headers()["location"].to_str().unwrap().to_string());
    }
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    if !html.contains("name=\"passwd\"") {
        return Err((status, html));
    }
    let (action, mut fields) = form_fields(&html);
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.push(("login".into(), upn.into()));
    fields.push(("passwd".into(), password.into()));
    let res = client.post(server.url(&action)).form(&fields).send().await.unwrap();
    if res.status().is_redirection() {
        Ok(res.headers()["location"].to_str().unwrap().to_string())
    } else {
        let status = res.status().as_u16();
        Err((status, res.text().await.unwrap()))
    }
}
