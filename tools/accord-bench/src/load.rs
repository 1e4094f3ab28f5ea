//! The two workloads and the closed-loop driver that runs them: N workers, each with its own
//! HTTPS keep-alive connection (and cookie jar), looping until the time or count bound.

use crate::raw_http::RawClient;
use anyhow::{bail, ensure, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the benchmark talks to and as whom.
pub struct Target {
    pub base: String,
    pub ca_pem: Vec<u8>,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub user: String,
    pub password: String,
    /// Scope of the auth-code flow; with `openid` the response carries an ID token too.
    pub flow_scope: String,
    /// The token endpoint's path when it is not Accord's `/{tenant}/oauth2/v2.0/token` (the peer).
    pub token_path: Option<String>,
    /// The `scope` of a client-credentials request.
    pub client_credentials_scope: String,
    /// Single-request workloads use the lean client (raw_http.rs) rather than reqwest.
    pub lean_client: bool,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token_url(&self) -> String {
        match &self.token_path {
            Some(path) => self.url(path),
            None => self.url(&format!("/{}/oauth2/v2.0/token", self.tenant)),
        }
    }

    /// The body of a client-credentials request, for either client.
    fn client_credentials_form(&self) -> [(&str, &str); 4] {
        [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", self.client_credentials_scope.as_str()),
        ]
    }

    /// The lean client's request for a single-request workload; `None` for the flow.
    fn lean_request(&self, workload: Workload) -> anyhow::Result<Option<RawClient>> {
        let (url, form) = match workload {
            Workload::AuthCodeFlow => return Ok(None),
            Workload::Healthz => (self.url("/healthz"), None),
            Workload::Readyz => (self.url("/readyz"), None),
            Workload::ClientCredentials => (self.token_url(), Some(self.client_credentials_form())),
        };
        let method = if form.is_some() { "POST" } else { "GET" };
        Ok(Some(RawClient::new(&url::Url::parse(&url)?, &self.ca_pem, method, form.as_ref().map(|f| &f[..]))?))
    }

    /// A browser-like client: trusts only the dev CA, keeps cookies, never follows redirects.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem)?)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One `client_credentials` token request.
    ClientCredentials,
    /// GET authorize (SSO session) → 302 with code → POST token with the PKCE verifier.
    AuthCodeFlow,
    /// Baseline: `GET /healthz` (HTTPS and routing only, no SQL, no signature).
    Healthz,
    /// Baseline: `GET /readyz` (one SQL statement, no signature).
    Readyz,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::ClientCredentials => "client credentials (token)",
            Workload::AuthCodeFlow => "auth code + PKCE, SSO (flow)",
            Workload::Healthz => "baseline: GET /healthz",
            Workload::Readyz => "baseline: GET /readyz",
        }
    }

    pub fn issues_tokens(self) -> bool {
        matches!(self, Workload::ClientCredentials | Workload::AuthCodeFlow)
    }
}

/// One simulated client. For the auth-code workload it holds a signed-in browser session.
pub struct Worker {
    target: Arc<Target>,
    client: reqwest::Client,
    /// The lean client for single-request workloads, when the target asks for it.
    lean: Option<RawClient>,
    workload: Workload,
    id: usize,
    seq: u64,
}

impl Worker {
    pub async fn new(target: Arc<Target>, workload: Workload, id: usize) -> anyhow::Result<Worker> {
        let client = target.client()?;
        let lean = if target.lean_client { target.lean_request(workload)? } else { None };
        let mut worker = Worker { target, client, lean, workload, id, seq: 0 };
        if workload == Workload::AuthCodeFlow {
            worker.sign_in().await.with_context(|| format!("worker {id} signing in"))?;
        }
        Ok(worker)
    }

    /// One operation of the workload; an error means it did not produce a token.
    pub async fn once(&mut self) -> anyhow::Result<String> {
        self.seq += 1;
        if let Some(lean) = &mut self.lean {
            let response = lean.send().await?;
            let issued = !self.workload.issues_tokens() || response.body.contains("\"access_token\"");
            ensure!(
                response.status == 200 && issued,
                "{} answered {}: {}",
                self.workload.name(),
                response.status,
                response.body
            );
            return Ok(response.body);
        }
        match self.workload {
            Workload::ClientCredentials => self.client_credentials().await,
            Workload::AuthCodeFlow => {
                let (verifier, challenge) = pkce_pair(self.id, self.seq);
                let res = self.client.get(self.authorize_url(&challenge)?).send().await?;
                ensure!(res.status().as_u16() == 302, "authorize answered {} (SSO session lost?)", res.status());
                let code = self.code_from(&res)?;
                self.redeem(&code, &verifier).await
            }
            Workload::Healthz => self.get("/healthz").await,
            Workload::Readyz => self.get("/readyz").await,
        }
    }

    /// One SSO flow, timed in its two halves: authorize → code, and code → token.
    pub async fn timed_flow(&mut self) -> anyhow::Result<(Duration, Duration)> {
        self.seq += 1;
        let (verifier, challenge) = pkce_pair(self.id, self.seq);
        let start = Instant::now();
        let res = self.client.get(self.authorize_url(&challenge)?).send().await?;
        ensure!(res.status().as_u16() == 302, "authorize answered {} (SSO session lost?)", res.status());
        let code = self.code_from(&res)?;
        let authorized = start.elapsed();
        let start = Instant::now();
        self.redeem(&code, &verifier).await?;
        Ok((authorized, start.elapsed()))
    }

    /// One SSO flow; the access token it gave.
    pub async fn access_token(&mut self) -> anyhow::Result<String> {
        self.seq += 1;
        let (verifier, challenge) = pkce_pair(self.id, self.seq);
        let res = self.client.get(self.authorize_url(&challenge)?).send().await?;
        let code = self.code_from(&res)?;
        let body: serde_json::Value = serde_json::from_str(&self.redeem(&code, &verifier).await?)?;
        Ok(body["access_token"].as_str().context("no access_token")?.to_string())
    }

    /// GET a Graph URL (absolute, or a path) with a bearer token, timed; the JSON body.
    pub async fn timed_graph(&self, url: &str, token: &str) -> anyhow::Result<(Duration, serde_json::Value)> {
        let url = if url.starts_with("https://") { url.to_string() } else { self.target.url(url) };
        let start = Instant::now();
        let res = self.client.get(&url).bearer_auth(token).send().await?;
        ensure!(res.status().as_u16() == 200, "GET {url} answered {}", res.status());
        let body = res.json().await?;
        Ok((start.elapsed(), body))
    }

    /// The worker's HTTP client (its cookie jar).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GET a page as this worker (its cookies), timed; anything but 200 is an error.
    pub async fn timed_get(&self, path: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let res = self.client.get(self.target.url(path)).send().await?;
        ensure!(res.status().as_u16() == 200, "GET {path} answered {}", res.status());
        res.bytes().await?;
        Ok(start.elapsed())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        Ok(self.client.get(self.target.url(path)).send().await?.error_for_status()?.text().await?)
    }

    async fn client_credentials(&self) -> anyhow::Result<String> {
        let t = &self.target;
        token_body(self.client.post(t.token_url()).form(&t.client_credentials_form()).send().await?).await
    }

    async fn redeem(&self, code: &str, verifier: &str) -> anyhow::Result<String> {
        let t = &self.target;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.client_secret.as_str()),
            ("code", code),
            ("redirect_uri", t.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        token_body(self.client.post(t.token_url()).form(&form).send().await?).await
    }

    fn authorize_url(&self, challenge: &str) -> anyhow::Result<url::Url> {
        let t = &self.target;
        Ok(url::Url::parse_with_params(
            &t.url(&format!("/{}/oauth2/v2.0/authorize", t.tenant)),
            [
                ("client_id", t.client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", t.redirect_uri.as_str()),
                ("scope", t.flow_scope.as_str()),
                ("state", "bench"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
        )?)
    }

    fn code_from(&self, res: &reqwest::Response) -> anyhow::Result<String> {
        let location = res.headers().get("location").context("302 without Location")?.to_str()?;
        ensure!(location.starts_with(&self.target.redirect_uri), "redirected elsewhere: {location}");
        let url = url::Url::parse(location)?;
        match url.query_pairs().find(|(k, _)| k == "code") {
            Some((_, code)) => Ok(code.into_owned()),
            None => bail!("no code in the redirect: {location}"),
        }
    }

    /// The interactive part, once per worker: authorize shows the sign-in form; posting it
    /// sets the SSO session cookie and redirects with a code (redeemed, to check the flow).
    async fn sign_in(&mut self) -> anyhow::Result<()> {
        let (verifier, challenge) = pkce_pair(self.id, 0);
        let res = self.client.get(self.authorize_url(&challenge)?).send().await?;
        ensure!(res.status().is_success(), "authorize without a session answered {}", res.status());
        let html = res.text().await?;
        let flow = input_value(&html, "flow").context("no hidden `flow` input in the sign-in page")?;
        let csrf = input_value(&html, "csrf").context("no hidden `csrf` input in the sign-in page")?;
        let action = form_action(&html).unwrap_or_else(|| format!("/{}/login", self.target.tenant));
        let t = &self.target;
        let form = [
            ("flow", flow.as_str()),
            ("csrf", csrf.as_str()),
            ("login", t.user.as_str()),
            ("passwd", t.password.as_str()),
        ];
        let res = self.client.post(t.url(&action)).form(&form).send().await?;
        ensure!(res.status().as_u16() == 302, "sign-in answered {} (wrong password?)", res.status());
        let code = self.code_from(&res)?;
        self.redeem(&code, &verifier).await?;
        Ok(())
    }
}

/// Reads a token response; anything but 200 with an access token is an error.
async fn token_body(res: reqwest::Response) -> anyhow::Result<String> {
    let status = res.status();
    let body = res.text().await?;
    ensure!(status.as_u16() == 200 && body.contains("\"access_token\""), "token endpoint answered {status}: {body}");
    Ok(body)
}

/// RFC 7636 S256: a 43-character verifier (unique per worker and flow) and its challenge.
fn pkce_pair(worker: usize, seq: u64) -> (String, String) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let verifier = B64URL.encode(Sha256::digest(format!("accord-bench/{worker}/{seq}/{nanos}")));
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[html[..at].rfind('<')?..at + html[at..].find('>')?];
    attr(tag, "value")
}

pub(crate) fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    attr(&html[start..start + html[start..].find('>')?], "action")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(value.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&"))
}

/// The outcome of one timed run.
pub struct Sample {
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of every successful operation, sorted.
    pub latencies: Vec<Duration>,
    pub first_error: Option<String>,
}

impl Sample {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile of the recorded latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// Runs every worker in a closed loop for `duration` (or `max_ops` operations each, whichever
/// comes first) and hands the workers back so their sessions and connections are reused.
pub async fn run(workers: Vec<Worker>, duration: Duration, max_ops: u64) -> (Vec<Worker>, Sample) {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let (mut errors, mut first_error) = (0u64, None);
                while Instant::now() < deadline && (latencies.len() as u64) + errors < max_ops {
                    let t0 = Instant::now();
                    match w.once().await {
                        Ok(_) => latencies.push(t0.elapsed()),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                (w, latencies, errors, first_error, Instant::now())
            })
        })
        .collect();
    let mut workers = Vec::new();
    let mut sample = Sample { ops: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new(), first_error: None };
    for task in tasks {
        let (w, latencies, errors, first_error, end) = task.await.expect("worker task panicked");
        workers.push(w);
        sample.ops += latencies.len() as u64;
        sample.latencies.extend(latencies);
        sample.errors += errors;
        sample.first_error = sample.first_error.or(first_error);
        sample.elapsed = sample.elapsed.max(end - start);
    }
    sample.latencies.sort_unstable();
    (workers, sample)
}

/// An open-loop run at a fixed rate: operation `i` is due at `start + i / rate`, taken by
/// whichever worker is free, and its latency counts from when it was due, not from when a worker
/// got to it (so a server that falls behind shows it, rather than slowing the load down as a
/// closed loop does: "coordinated omission"). Returns the latencies from the due time and from
/// the actual send, in that order. Tokio's timer wakes on whole milliseconds, so the first
/// includes up to a millisecond of the bench's own lateness: it can only overstate.
pub async fn run_paced(workers: Vec<Worker>, rate: f64, duration: Duration) -> (Vec<Worker>, Sample, Sample) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = Instant::now() + Duration::from_millis(10);
    let deadline = start + duration;
    let next = Arc::new(AtomicU64::new(0));
    let due = move |i: u64| due_at(start, i, rate);
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let next = next.clone();
            tokio::spawn(async move {
                let (mut from_due, mut from_send) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
                let (mut errors, mut first_error) = (0u64, None);
                loop {
                    let at = due(next.fetch_add(1, Ordering::Relaxed));
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                    let sent = Instant::now();
                    match w.once().await {
                        Ok(_) => {
                            from_due.push(at.elapsed());
                            from_send.push(sent.elapsed());
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                (w, from_due, from_send, errors, first_error)
            })
        })
        .collect();
    let mut workers = Vec::new();
    let empty = || Sample { ops: 0, errors: 0, elapsed: duration, latencies: Vec::new(), first_error: None };
    let (mut due_sample, mut send_sample) = (empty(), empty());
    for task in tasks {
        let (w, from_due, from_send, errors, first_error) = task.await.expect("worker task panicked");
        workers.push(w);
        for (sample, latencies) in [(&mut due_sample, from_due), (&mut send_sample, from_send)] {
            sample.ops += latencies.len() as u64;
            sample.latencies.extend(latencies);
            sample.errors += errors;
            sample.first_error = sample.first_error.take().or(first_error.clone());
        }
    }
    due_sample.latencies.sort_unstable();
    send_sample.latencies.sort_unstable();
    (workers, due_sample, send_sample)
}

/// When operation `i` of a paced run is due: `i / rate` seconds after `start` (a rate below
/// one a second counts as one).
fn due_at(start: Instant, i: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(i as f64 / rate.max(1.0))
}

/// The store's statement counter, as `/metrics` reports it.
pub async fn statements_executed(target: &Target, client: &reqwest::Client) -> anyhow::Result<f64> {
    let text = client.get(target.url("/metrics")).send().await?.error_for_status()?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix("accord_store_statements_total "))
        .context("/metrics has no accord_store_statements_total")?
        .trim()
        .parse()
        .context("accord_store_statements_total is not a number")
}

/// SQL statements per operation: the counter before and after `count` sequential operations
/// by one worker while nothing else runs.
pub async fn statements_per_op(target: &Target, worker: &mut Worker, count: u64) -> anyhow::Result<f64> {
    let probe = target.client()?;
    let before = statements_executed(target, &probe).await?;
    for _ in 0..count {
        worker.once().await?;
    }
    let after = statements_executed(target, &probe).await?;
    Ok((after - before) / count as f64)
}

/// How many JWTs (RSA signatures) one response of the workload carries.
pub fn signatures_in(token_response: &str) -> anyhow::Result<u32> {
    let body: serde_json::Value = serde_json::from_str(token_response)?;
    Ok(["access_token", "id_token"]
        .iter()
        .filter(|k| body[**k].as_str().is_some_and(|t| t.split('.').count() == 3))
        .count() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hidden_inputs_and_escaped_action() {
        let html = r#"<form method="post" action="&#x2f;t&#x2f;login">
          <input type="hidden" name="flow" value="abc-_1">
          <input type="hidden" name="csrf" value="xyz"></form>"#;
        assert_eq!(input_value(html, "flow").as_deref(), Some("abc-_1"));
        assert_eq!(input_value(html, "csrf").as_deref(), Some("xyz"));
        assert_eq!(form_action(html).as_deref(), Some("/t/login"));
        assert_eq!(input_value(html, "passwd"), None);
    }

    #[test]
    fn pkce_verifier_is_43_unreserved_chars() {
        let (v, c) = pkce_pair(3, 7);
        assert_eq!(v.len(), 43);
        assert!(v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(c, B64URL.encode(Sha256::digest(v.as_bytes())));
    }

    #[test]
    fn paced_operations_fall_due_at_even_intervals() {
        let start = Instant::now();
        assert_eq!(due_at(start, 0, 2000.0), start);
        assert_eq!(due_at(start, 1, 2000.0), start + Duration::from_micros(500));
        assert_eq!(due_at(start, 4000, 2000.0), start + Duration::from_secs(2));
        assert_eq!(due_at(start, 3, 0.0), start + Duration::from_secs(3), "a zero rate must not divide by zero");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Sample { ops: 100, errors: 0, elapsed: Duration::from_secs(1), latencies, first_error: None };
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.per_second(), 100.0);
    }
}
