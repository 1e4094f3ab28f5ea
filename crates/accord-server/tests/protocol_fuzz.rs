//! Protocol fuzzing (issue 12's suites): generated and malformed input at every browser and
//! protocol endpoint — authorize, token, adminconsent, logout, the sign-in and consent forms,
//! the portal — must never get a 5xx, never a redirect anywhere but a registered redirect URI
//! or one of Accord's own pages, and never an injected marker echoed unescaped.
//!
//! The generator is seeded (`ACCORD_FUZZ_SEED`, default fixed; `ACCORD_FUZZ_CASES` per run), so
//! a failure names the seed and case that reproduce it.

mod support;

use support::*;

/// Redirect URIs registered in the test world; a redirect may go to these (exactly, followed by
/// the response's `?`/`#`) or to a path of Accord's own.
const REGISTERED: &[&str] = &[
    "https://app.example/callback",
    "http://localhost:5000/cb",
    "http://localhost:5001/cb",
    "https://other.example/cb",
];
const MARKER: &str = "<script>fuzz()</script>";
/// The server's request body limit (`app.rs`).
const BODY_LIMIT: usize = 64 * 1024;

/// xorshift64*: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
    /// A value from the dictionary, or something hostile.
    fn value(&mut self, dictionary: &[&str]) -> String {
        match self.below(10) {
            0 => MARKER.to_string(),
            1 => "x".repeat(1 + self.below(4_000)),
            2 => ["\u{0}", "\r\n", "%00", "%0d%0a", "\u{7f}", "é\u{202e}", "'\"><", "../../etc/passwd", ""]
                [self.below(9)]
            .to_string(),
            3 => format!("{:08x}-0000-4000-8000-{:012x}", self.next() as u32, self.next() & 0xffff_ffff_ffff),
            _ => self.pick(dictionary).to_string(),
        }
    }
}

const TENANTS: &[&str] =
    &[CONTOSO, "common", "organizations", "consumers", "contoso.test", "fabrikam.test", "nowhere.example", "%2e%2e"];
const CLIENTS: &[&str] = &[WEB_APP, NATIVE_APP, UNCONSENTED_APP];
const REDIRECTS: &[&str] = &[
    "https://app.example/callback",
    "http://localhost:5000/cb",
    "http://localhost:5001/cb",
    "https://app.example/callback/",
    "https://APP.example/callback",
    "https://app.example/callback?x=1",
    "https://app.example/callback#frag",
    "https://evil.example/cb",
    "//evil.example/cb",
    "javascript:alert(1)",
    "http://localhost:5000/cb/../evil",
];
const SCOPES: &[&str] = &[
    "openid",
    "openid profile email offline_access User.Read",
    "https://graph.microsoft.com/.default",
    "User.Read Calendars.Read",
    "api://notes/.default",
    "https://graph.microsoft.com/.default User.Read",
    "openid openid",
    "Directory.ReadWrite.All",
];

/// (name, dictionary) of the parameters an endpoint reads.
type Params = &'static [(&'static str, &'static [&'static str])];

const AUTHORIZE: Params = &[
    ("client_id", CLIENTS),
    ("redirect_uri", REDIRECTS),
    ("response_type", &["code", "token", "id_token", "code id_token", "none"]),
    ("response_mode", &["query", "fragment", "form_post", "web_message"]),
    ("scope", SCOPES),
    ("state", &["s", "state-1"]),
    ("nonce", &["n"]),
    ("prompt", &["login", "none", "consent", "select_account", "admin_consent"]),
    ("login_hint", &["alice@contoso.test", "nobody@nowhere.example"]),
    ("code_challenge", &["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "short"]),
    ("code_challenge_method", &["S256", "plain", "S512"]),
    ("domain_hint", &["contoso.test"]),
];
const TOKEN: Params = &[
    (
        "grant_type",
        &[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ],
    ),
    ("client_id", CLIENTS),
    ("client_secret", &[WEB_SECRET, "wrong"]),
    ("code", &["not-a-code"]),
    ("redirect_uri", REDIRECTS),
    ("refresh_token", &["not-a-token"]),
    ("code_verifier", &["v"]),
    ("scope", SCOPES),
    ("username", &["alice@contoso.test", "nobody@contoso.test"]),
    ("password", &["wrong"]),
    ("client_assertion_type", &["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]),
    ("client_assertion", &["a.b.c", "eyJhbGciOiJub25lIn0.e30."]),
    ("requested_token_use", &["on_behalf_of"]),
    ("assertion", &["a.b.c"]),
];
const ADMIN_CONSENT: Params = &[
    ("client_id", CLIENTS),
    ("redirect_uri", REDIRECTS),
    ("scope", SCOPES),
    ("state", &["s"]),
    ("prompt", &["login"]),
];
const LOGOUT: Params = &[
    ("post_logout_redirect_uri", REDIRECTS),
    ("id_token_hint", &["a.b.c", "eyJhbGciOiJub25lIn0.e30."]),
    ("client_id", CLIENTS),
    ("state", &["s"]),
    ("logout_hint", &["alice@contoso.test"]),
];
const FORMS: Params = &[
    ("flow", &["sealed", ""]),
    ("csrf", &["token", ""]),
    ("login", &["alice@contoso.test"]),
    ("passwd", &["wrong"]),
    ("form", &["sealed"]),
    ("decision", &["accept", "decline", "organisation"]),
    ("consent_for_org", &["on"]),
    ("justification", &["please"]),
];
const PORTAL: Params =
    &[("return_to", &["/admin", "/myapps", "//evil.example", "https://evil.example", "/admin/../x"])];

fn params(rng: &mut Rng, spec: Params) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, dictionary) in spec {
        if rng.chance(60) {
            out.push((name.to_string(), rng.value(dictionary)));
            if rng.chance(5) {
                out.push((name.to_string(), rng.value(dictionary))); // repeated
            }
        }
    }
    if rng.chance(10) {
        out.push((format!("x-{}", rng.below(100)), MARKER.into()));
    }
    out
}

fn redirect_allowed(location: &str) -> bool {
    if location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\") {
        return true;
    }
    REGISTERED.iter().any(|uri| {
        location.strip_prefix(uri).is_some_and(|rest| rest.is_empty() || rest.starts_with('?') || rest.starts_with('#'))
    })
}

struct Case {
    method: reqwest::Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn generate(rng: &mut Rng) -> Case {
    let tenant = if rng.chance(85) { rng.pick(TENANTS).to_string() } else { rng.value(TENANTS) };
    let tenant = url_segment(&tenant);
    let form = |rng: &mut Rng, spec: Params| -> Vec<u8> {
        match rng.below(8) {
            0 => (0..rng.below(4096)).map(|_| rng.next() as u8).collect(), // not even UTF-8
            1 => vec![b'a'; 1 + rng.below(2_000_000)],                     // large
            _ => form_urlencoded::Serializer::new(String::new()).extend_pairs(params(rng, spec)).finish().into_bytes(),
        }
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    match rng.below(9) {
        0 | 1 => Case {
            method: get,
            path: format!("/{tenant}/oauth2/v2.0/authorize"),
            query: params(rng, AUTHORIZE),
            body: None,
        },
        2 => Case {
            method: post,
            path: format!("/{tenant}/oauth2/v2.0/authorize"),
            query: vec![],
            body: Some(form(rng, AUTHORIZE)),
        },
        3 | 4 => Case {
            method: post,
            path: format!("/{tenant}/oauth2/v2.0/token"),
            query: vec![],
            body: Some(form(rng, TOKEN)),
        },
        5 => {
            let path =
                if rng.chance(50) { format!("/{tenant}/v2.0/adminconsent") } else { format!("/{tenant}/adminconsent") };
            Case { method: get, path, query: params(rng, ADMIN_CONSENT), body: None }
        }
        6 => {
            Case { method: get, path: format!("/{tenant}/oauth2/v2.0/logout"), query: params(rng, LOGOUT), body: None }
        }
        7 => {
            let form_path = rng.pick(&["login", "consent", "consent/request", "adminconsent/decide"]);
            Case { method: post, path: format!("/{tenant}/{form_path}"), query: vec![], body: Some(form(rng, FORMS)) }
        }
        _ => Case { method: get, path: "/portal/signin".into(), query: params(rng, PORTAL), body: None },
    }
}

fn url_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_and_malformed_input_never_breaks_the_protocol_surface() {
    let seed: u64 = std::env::var("ACCORD_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_acc0_12d5);
    let cases: usize = std::env::var("ACCORD_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let server = TestServer::start();
    // A connection per request: a refused oversized request may close its connection, and the
    // next case must not fail for having reused it.
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&server.ca_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut rng = Rng(seed | 1);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..cases {
        let case = generate(&mut rng);
        let mut req = c.request(case.method.clone(), server.url(&case.path)).query(&case.query);
        if let Some(body) = case.body.clone() {
            req = req.header("content-type", "application/x-www-form-urlencoded").body(body);
        }
        let large = case.body.as_ref().is_some_and(|b| b.len() > BODY_LIMIT);
        let res = match req.send().await {
            Ok(res) => res,
            // A body over the limit may be refused before it is read: the connection closes.
            Err(_) if large => {
                *by_status.entry(413).or_default() += 1;
                continue;
            }
            Err(e) => panic!("seed {seed:#x} case {n}: {} {}: {e:.200}", case.method, case.path),
        };
        let status = res.status().as_u16();
        *by_status.entry(status).or_default() += 1;
        let location = res.headers().get("location").map(|v| v.to_str().unwrap_or("<not text>").to_string());
        let body = res.text().await.unwrap_or_default();
        let what = || {
            let query = format!("{:?}", case.query);
            format!(
                "seed {seed:#x} case {n}: {} {} {} → {status}",
                case.method,
                case.path,
                &query[..query.len().min(300)]
            )
        };
        assert!(status < 500, "{}\n{}", what(), body.chars().take(400).collect::<String>());
        if large {
            assert_eq!(status, 413, "{}", what());
        }
        if let Some(location) = location {
            assert!(redirect_allowed(&location), "{}: redirect to {location}", what());
            assert!(!location.contains("<script>"), "{}: {location}", what());
        }
        assert!(!body.contains(MARKER), "{}: the marker came back unescaped", what());
    }
    println!("{cases} cases, statuses {by_status:?}");
    // The generator reached past the front doors: errors, redirects and pages all occurred.
    assert!(by_status.keys().any(|s| (300..400).contains(s)), "{by_status:?}");
    assert!(by_status.contains_key(&200) && by_status.contains_key(&400), "{by_status:?}");
    let health = c.get(server.url("/healthz")).send().await.unwrap().status();
    assert_eq!(health.as_u16(), 200);
}

/// Past the CSRF check: a real sign-in form (valid CSRF token, sealed request), its fields then
/// mutated — flipped bytes in the sealed request, hostile names and passwords, another tenant.
#[tokio::test]
async fn mutated_sign_in_forms_are_refused_cleanly() {
    let server = TestServer::start();
    let mut rng = Rng(0x0516_71f0 | 1);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..60 {
        let c = server.client_from(std::net::IpAddr::from([127, 0, 0, 30 + (n % 20) as u8]));
        let mut url = reqwest::Url::parse(&server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", WEB_APP)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", WEB_REDIRECT)
            .append_pair("scope", "openid User.Read");
        let html = c.get(url).send().await.unwrap().text().await.unwrap();
        let (action, mut fields) = form_fields(&html);
        for (name, value) in fields.iter_mut() {
            match name.as_str() {
                "flow" if rng.chance(50) => {
                    let mut bytes = value.clone().into_bytes();
                    let at = rng.below(bytes.len().max(1));
                    if let Some(b) = bytes.get_mut(at) {
                        *b = b"ABCxyz-_09"[rng.below(10)];
                    }
                    *value = String::from_utf8(bytes).unwrap();
                }
                "csrf" if rng.chance(20) => *value = rng.value(&["x"]),
                _ => {}
            }
        }
        fields.retain(|(k, _)| k != "login" && k != "passwd");
        fields.push(("login".into(), rng.value(&["alice@contoso.test", "frank@fabrikam.test", "@", "alice@"])));
        fields.push(("passwd".into(), rng.value(&["wrong", "alice-password-1"])));
        let action = if rng.chance(20) { action.replace(CONTOSO, "organizations") } else { action };
        let res = c.post(server.url(&action)).form(&fields).send().await.unwrap();
        let status = res.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        let body = res.text().await.unwrap();
        assert!(status < 500, "case {n}: {status} {}", body.chars().take(300).collect::<String>());
        if let Some(location) = location {
            assert!(redirect_allowed(&location), "case {n}: redirect to {location}");
        }
        assert!(!body.contains(MARKER), "case {n}: the marker came back unescaped");
    }
    println!("statuses {statuses:?}");
    assert!(statuses.len() > 1, "{statuses:?}");
}

#[tokio::test]
async fn oversized_requests_are_refused_and_the_server_carries_on() {
    let server = TestServer::start();
    let c = server.client();
    // A query far past what any client sends, and a body over the limit: refused (or the
    // connection closed) without a 5xx, and the server answers the next request.
    let url = format!("{}?state={}", server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize")), "x".repeat(200_000));
    if let Ok(res) = c.get(&url).send().await {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let body = vec![b'a'; 10 * BODY_LIMIT];
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let post = c.post(token_url).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Ok(res) = post.send().await {
        assert_eq!(res.status().as_u16(), 413);
    }
    // A new connection: the refused one may have been closed under the client.
    let fresh = server.client();
    assert_eq!(fresh.get(server.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
}

#[test]
fn the_redirect_rule_is_strict() {
    assert!(redirect_allowed("https://app.example/callback?code=x"));
    assert!(redirect_allowed("https://app.example/callback#code=x"));
    assert!(redirect_allowed("/myapps"));
    assert!(!redirect_allowed("https://app.example/callbackx"));
    assert!(!redirect_allowed("//evil.example"));
    assert!(!redirect_allowed("/\\evil.example"));
    assert!(!redirect_allowed("https://evil.example/cb"));
}
