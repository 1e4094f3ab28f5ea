//! A real `accord` server for the kit's tests, and a "browser" that fills in its pages.
//!
//! The binary is not built by this crate (Cargo's `CARGO_BIN_EXE_*` works only within the
//! server's own package): run `cargo build -p accord-server` first, as `scripts/test-all` does.
//! `ACCORD_BIN` names another binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub ca_pem: Vec<u8>,
    log: PathBuf,
}

/// `ACCORD_BIN`, else `{CARGO_TARGET_DIR or workspace/target}/debug/accord`.
pub fn accord_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ACCORD_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let target = if target.is_relative() { workspace.join(target) } else { target };
    target.join("debug/accord")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Unique across parallel test threads too: two threads can read the same clock value.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{nanos:x}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl TestServer {
    /// A fresh server with its own data dir, loading `scenario`.
    pub fn start_with(scenario: &Path) -> TestServer {
        TestServer::start_with_args(scenario, &[])
    }

    /// [`TestServer::start_with`] with extra `accord serve` flags.
    pub fn start_with_args(scenario: &Path, extra: &[&str]) -> TestServer {
        let bin = accord_bin();
        assert!(
            bin.exists(),
            "{} not found: run `cargo build -p accord-server` first (scripts/test-all does), or set ACCORD_BIN",
            bin.display()
        );
        let data_dir = std::env::temp_dir().join(format!("accord-connect-test-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = data_dir.join("server.log");
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--public-url")
            .arg("https://localhost:0")
            .arg("--scenario")
            .arg(scenario)
            .args(extra)
            .env("ACCORD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("accord binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        // The kernel picks the port; the server names it: "accord listening on ADDR as URL".
        let base = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("accord listening") => {
                    break line.rsplit(" as ").next().unwrap_or_default().to_string();
                }
                Some(Ok(_)) => {}
                _ => {
                    let _ = child.kill();
                    panic!("server did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
            assert!(Instant::now() < deadline, "server start timed out");
        };
        std::thread::spawn(move || for _ in lines {});
        let ca_pem = std::fs::read(data_dir.join("tls/ca.pem")).unwrap();
        TestServer { child, base, data_dir, ca_pem, log }
    }

    /// A browser: trusts the dev CA, keeps cookies, never follows redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem).unwrap())
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
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// What the browser ended on: a redirect (to the app's redirect URI) or a page.
#[derive(Debug)]
pub enum Landing {
    Redirect(String),
    Page(u16, String),
}

impl Landing {
    pub fn redirect(self) -> String {
        match self {
            Landing::Redirect(l) => l,
            Landing::Page(s, html) => panic!("expected a redirect, got a {s} page:\n{html}"),
        }
    }

    pub fn page(self) -> String {
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

/// Opens `url` and, on a sign-in page, signs in as `upn`.
pub async fn open_and_sign_in(
    browser: &reqwest::Client,
    server: &TestServer,
    url: &str,
    upn: &str,
    pw: &str,
) -> Landing {
    let first = land(browser.get(url).send().await.unwrap()).await;
    let html = match first {
        Landing::Page(_, ref html) if html.contains("name=\"passwd\"") => html.clone(),
        other => return other,
    };
    let (action, mut fields) = form_fields(&html);
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.push(("login".into(), upn.into()));
    fields.push(("passwd".into(), pw.into()));
    land(browser.post(server.url(&action)).form(&fields).send().await.unwrap()).await
}

/// Submits the page's first form with its fields plus `extra`.
pub async fn submit(browser: &reqwest::Client, server: &TestServer, html: &str, extra: &[(&str, &str)]) -> Landing {
    let (action, mut fields) = form_fields(html);
    fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    for (k, v) in extra {
        fields.push((k.to_string(), v.to_string()));
    }
    land(browser.post(server.url(&action)).form(&fields).send().await.unwrap()).await
}

/// The first form's action and its inputs' names and values.
pub fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let action = html
        .find("<form")
        .and_then(|i| html[i..].find('>').map(|e| &html[i..i + e]))
        .and_then(|tag| attr(tag, "action"))
        .unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>').map(|e| i + e).unwrap_or(rest.len());
        let tag = &rest[i..end];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[end..];
    }
    (unescape(&action), fields.into_iter().map(|(k, v)| (k, unescape(&v))).collect())
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_string())
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
