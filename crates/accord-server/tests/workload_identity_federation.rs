//! Workload identity federation (issue 13, part 2): an app trusts tokens an external OpenID
//! issuer signs for one subject and audience. A real issuer runs in the test (discovery document
//! and JWKS over HTTP on loopback, counting its fetches) and signs GitHub-Actions-shaped tokens;
//! a second credential pins its issuer's JWKS in the scenario (CI without network). The issuer
//! is on loopback, so the servers run with --allow-private-network-callbacks; without it the
//! issuer is never fetched (the last test).

mod support;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::*;

const GITHUB_SUBJECT: &str = "repo:contoso/meeting-insights:ref:refs/heads/main";
const K8S_ISSUER: &str = "https://oidc.cluster.example/abc";
const K8S_SUBJECT: &str = "system:serviceaccount:sync:worker";
const EXCHANGE: &str = "api://AzureADTokenExchange";
/// The server may fetch an issuer on loopback (egress policy).
const LOOPBACK_ISSUER: &[&str] = &["--allow-private-network-callbacks"];

struct Key {
    pair: RsaKeyPair,
    kid: String,
}

impl Key {
    fn new(kid: &str) -> Key {
        Key { pair: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), kid: kid.into() }
    }

    fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    fn sign(&self, header: Value, claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", enc(&header), enc(&claims));
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn token(&self, claims: Value) -> String {
        self.sign(json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}), claims)
    }
}

/// An OpenID issuer on loopback: its discovery document and its keys, each fetch counted.
struct Issuer {
    url: String,
    discovery_fetches: Arc<AtomicUsize>,
    jwks_fetches: Arc<AtomicUsize>,
}

async fn start_issuer(jwks: Value) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (discovery_fetches, jwks_fetches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (d, j, base) = (discovery_fetches.clone(), jwks_fetches.clone(), url.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move {
                d.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"issuer": base, "jwks_uri": format!("{base}/keys")}))
            }),
        )
        .route(
            "/keys",
            get(move || async move {
                j.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, discovery_fetches, jwks_fetches }
}

/// The test world with two federated credentials on the web app: one for the test issuer
/// (keys fetched), one for a cluster issuer whose JWKS is pinned.
fn world_trusting(issuer: &str, pinned: &Value) -> PathBuf {
    let text = std::fs::read_to_string(world()).unwrap();
    let anchor = format!("app_id = \"{WEB_APP}\"");
    let start = text.find(&anchor).unwrap();
    let end = text[start..].find("\n[[tenant.app]]").map(|i| start + i).unwrap();
    let credentials = format!(
        "\n[[tenant.app.federated_credential]]\nname = \"github-main\"\nissuer = \"{issuer}\"\nsubject = \"{GITHUB_SUBJECT}\"\n\
         description = \"deploys from main\"\n\n[[tenant.app.federated_credential]]\nname = \"cluster-worker\"\n\
         issuer = \"{K8S_ISSUER}\"\nsubject = \"{K8S_SUBJECT}\"\njwks = '{}'\n",
        pinned
    );
    let with = format!("{}{credentials}{}", &text[..end], &text[end..]);
    let dir = std::env::temp_dir().join(format!("accord-wif-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.toml");
    std::fs::write(&path, with).unwrap();
    path
}

/// A GitHub-Actions-shaped token's claims.
fn github(issuer: &str, subject: &str) -> Value {
    json!({
        "iss": issuer, "sub": subject, "aud": EXCHANGE, "jti": uuid_like(),
        "repository": "contoso/meeting-insights", "ref": "refs/heads/main", "job_workflow_ref": "contoso/meeting-insights/.github/workflows/deploy.yml@refs/heads/main",
        "iat": now(), "nbf": now() - 5, "exp": now() + 300,
    })
}

async fn exchange(server: &TestServer, assertion: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB_APP),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test]
async fn an_external_issuers_token_stands_in_for_the_apps_credential() {
    let (key, rotated, stranger, cluster) = (Key::new("k1"), Key::new("k2"), Key::new("k1"), Key::new("c1"));
    let issuer = start_issuer(json!({"keys": [key.jwk()]})).await;
    let server =
        TestServer::start_with_args(&world_trusting(&issuer.url, &json!({"keys": [cluster.jwk()]})), LOOPBACK_ISSUER);

    // The GitHub-shaped token is exchanged for an app-only Graph token: a signed assertion (2).
    let (status, body) = exchange(&server, &key.token(github(&issuer.url, GITHUB_SUBJECT))).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["azp"], WEB_APP);
    assert_eq!(claims["azpacr"], "2");
    assert!(claims["roles"].as_array().unwrap().iter().any(|r| r == "Calendars.Read"), "{claims}");
    assert_eq!(issuer.discovery_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);

    // The same token again (tokens are reusable until they expire), and a fresh one: cached keys.
    let token = key.token(github(&issuer.url, GITHUB_SUBJECT));
    for _ in 0..2 {
        assert_eq!(exchange(&server, &token).await.0, 200);
    }
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1, "keys come from the cache");

    // Matching is exact and each mismatch says which part failed.
    let cases = [
        (github(&issuer.url, "repo:contoso/meeting-insights:ref:refs/heads/dev"), 700213),
        (github(&issuer.url, &GITHUB_SUBJECT.replace("contoso", "Contoso")), 7002138),
    ];
    for (claims, expected) in cases {
        let (status, body) = exchange(&server, &key.token(claims)).await;
        assert_eq!((status, code(&body)), (401, expected), "{body}");
        assert_eq!(body["error"], "invalid_client");
    }
    let mut wrong_audience = github(&issuer.url, GITHUB_SUBJECT);
    wrong_audience["aud"] = json!("api://other");
    let (status, body) = exchange(&server, &key.token(wrong_audience)).await;
    assert_eq!((status, code(&body)), (401, 700212), "{body}");
    let (_, body) =
        exchange(&server, &key.token(github("https://token.actions.githubusercontent.com", GITHUB_SUBJECT))).await;
    assert_eq!(code(&body), 700211, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("token.actions.githubusercontent.com"));
    let mut expired = github(&issuer.url, GITHUB_SUBJECT);
    expired["exp"] = json!(now() - 3600);
    expired["nbf"] = json!(now() - 4000);
    assert_eq!(code(&exchange(&server, &key.token(expired)).await.1), 700024);

    // Forged: another key claiming the issuer's kid; an unsigned token; HS256.
    let (_, body) = exchange(&server, &stranger.token(github(&issuer.url, GITHUB_SUBJECT))).await;
    assert_eq!(code(&body), 700027, "{body}");
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!("{}.{}.", enc(json!({"alg": "none"})), enc(github(&issuer.url, GITHUB_SUBJECT)));
    assert_eq!(code(&exchange(&server, &unsigned).await.1), 700027);
    let hs = format!("{}.{}.c2ln", enc(json!({"alg": "HS256", "kid": "k1"})), enc(github(&issuer.url, GITHUB_SUBJECT)));
    assert_eq!(code(&exchange(&server, &hs).await.1), 700027);

    // A token naming a key the cache lacks fetches the keys again — once a minute at most, so
    // made-up kids cannot make Accord hammer the issuer.
    let before = issuer.jwks_fetches.load(Ordering::SeqCst);
    for _ in 0..3 {
        let (_, body) = exchange(&server, &rotated.token(github(&issuer.url, GITHUB_SUBJECT))).await;
        assert_eq!(code(&body), 700027, "{body}");
    }
    assert!(issuer.jwks_fetches.load(Ordering::SeqCst) <= before + 1, "at most one refetch");

    // The pinned JWKS: no network, the cluster's token works; the issuer's key does not.
    let k8s = json!({"iss": K8S_ISSUER, "sub": K8S_SUBJECT, "aud": [EXCHANGE], "exp": now() + 600, "iat": now()});
    let (status, body) = exchange(&server, &cluster.token(k8s.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&exchange(&server, &key.token(k8s)).await.1), 700027);

    // The app's certificate path is untouched: an assertion naming the app as issuer is a
    // certificate assertion (here: no certificate registered).
    let own = key.token(json!({"iss": WEB_APP, "sub": WEB_APP, "aud": server.url("/x"), "exp": now() + 60}));
    let (status, body) = exchange(&server, &own).await;
    assert_eq!(status, 401, "{body}");
    assert_ne!(code(&body), 700211);
}

/// The admin center lists an app's federated credentials, adds one (whose tokens then work at
/// once) and deletes one after confirmation (whose tokens are refused from then on).
#[tokio::test]
async fn the_admin_center_manages_federated_credentials() {
    let (key, cluster) = (Key::new("k1"), Key::new("c1"));
    let issuer = start_issuer(json!({"keys": [key.jwk()]})).await;
    let server =
        TestServer::start_with_args(&world_trusting(&issuer.url, &json!({"keys": [cluster.jwk()]})), LOOPBACK_ISSUER);
    let browser = server.client();
    let signed_in = sign_in(
        &browser,
        &server,
        &server.url("/portal/signin?return_to=/admin"),
        "admin@contoso.test",
        "admin-password-1",
    )
    .await;
    assert_eq!(signed_in.as_deref(), Ok("/admin"));
    let tab = server.url(&format!("/admin/app-registrations/{WEB_APP}/secrets"));
    let page = browser.get(&tab).send().await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
    for shown in ["github-main", "cluster-worker", GITHUB_SUBJECT, K8S_SUBJECT, "(keys pinned)", "deploys from main"] {
        assert!(page.contains(shown), "{shown} in {page}");
    }

    // Add one for the release environment: its tokens work at once.
    let csrf = form_fields(&page).1.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).unwrap();
    let release = "repo:contoso/meeting-insights:environment:release";
    let add = |name: &'static str, issuer: String| {
        let form = vec![
            ("csrf", csrf.clone()),
            ("name", name.to_string()),
            ("issuer", issuer),
            ("subject", release.to_string()),
            ("audience", EXCHANGE.to_string()),
            ("description", "releases".to_string()),
        ];
        browser
            .post(server.url(&format!("/admin/app-registrations/{WEB_APP}/federated-credentials")))
            .form(&form)
            .send()
    };
    assert_eq!(exchange(&server, &key.token(github(&issuer.url, release))).await.0, 401, "not yet trusted");
    let res = add("github-release", issuer.url.clone()).await.unwrap();
    assert_eq!(res.status().as_u16(), 302, "{}", res.text().await.unwrap());
    let (status, body) = exchange(&server, &key.token(github(&issuer.url, release))).await;
    assert_eq!(status, 200, "{body}");

    // Bad input names the field; the page does not lose the others.
    let res = add("plain-http", "http://issuer.example".into()).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("must use https"));

    // Delete it, confirmed: refused again.
    let page = browser.get(&tab).send().await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
    let mut deleted = false;
    for path in
        page.split("href=\"").filter_map(|s| s.split('"').next()).filter(|h| h.contains("/federated-credentials/"))
    {
        let confirm = browser.get(server.url(path)).send().await.unwrap().text().await.unwrap();
        if !confirm.contains("github-release") {
            continue;
        }
        let csrf = form_fields(&confirm).1.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).unwrap();
        let res =
            browser.post(server.url(path)).form(&[("csrf", csrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 302);
        deleted = true;
    }
    assert!(deleted, "a delete link led to a confirmation naming the credential");
    let (_, body) = exchange(&server, &key.token(github(&issuer.url, release))).await;
    assert_eq!(code(&body), 700213, "{body}");
}

/// By default the server's own requests go to public addresses only: a federated credential
/// naming an issuer on loopback (or 10.x, or a cloud's metadata address) cannot make an
/// anonymous token request fetch from inside the server's network, nor report what answered.
#[tokio::test]
async fn an_issuer_on_a_private_network_is_not_fetched_unless_the_operator_allows_it() {
    let (key, cluster) = (Key::new("k1"), Key::new("c1"));
    let issuer = start_issuer(json!({"keys": [key.jwk()]})).await;
    let server = TestServer::start_with(&world_trusting(&issuer.url, &json!({"keys": [cluster.jwk()]})));
    let (status, body) = exchange(&server, &key.token(github(&issuer.url, GITHUB_SUBJECT))).await;
    assert_eq!((status, code(&body)), (401, 700027), "{body}");
    let why = body["error_description"].as_str().unwrap();
    assert!(why.contains("127.0.0.1 is on a loopback, private or link-local network"), "{why}");
    assert_eq!(issuer.discovery_fetches.load(Ordering::SeqCst), 0, "nothing was sent to the issuer");
    // The pinned credential still works: no fetch is needed.
    let k8s = json!({"iss": K8S_ISSUER, "sub": K8S_SUBJECT, "aud": [EXCHANGE], "exp": now() + 600, "iat": now()});
    assert_eq!(exchange(&server, &cluster.token(k8s)).await.0, 200);
}
