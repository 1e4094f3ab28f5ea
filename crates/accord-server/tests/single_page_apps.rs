//! Single-page apps (issue 13, part 3): `spa` redirect URIs, the cross-origin rules Entra
//! applies to their codes and refresh tokens (AADSTS9002325/9002326/9002327), and CORS on the
//! endpoints a browser app fetches — for registered origins only, while Graph answers any.

mod support;

use reqwest::header::{HeaderMap, ORIGIN};
use serde_json::Value;
use std::path::PathBuf;
use support::*;

const SPA_ORIGIN: &str = "http://localhost:5173";
const SPA_REDIRECT: &str = "http://localhost:5173/";
const STRANGER: &str = "https://evil.example";

/// The test world with single-page-app redirect URIs on the (otherwise confidential) web app.
fn world_with_spa() -> PathBuf {
    let text = std::fs::read_to_string(world()).unwrap();
    let anchor = format!("app_id = \"{WEB_APP}\"");
    assert!(text.contains(&anchor));
    let with = text.replacen(
        &anchor,
        &format!("{anchor}\nspa_redirect_uris = [\"{SPA_REDIRECT}\", \"https://spa.example/auth\"]"),
        1,
    );
    let dir = std::env::temp_dir().join(format!("accord-spa-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.toml");
    std::fs::write(&path, with).unwrap();
    path
}

fn authorize_url(server: &TestServer, redirect: &str, challenge: Option<&str>) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", WEB_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid offline_access User.Read")
        .append_pair("response_mode", "fragment")
        .append_pair("state", "st");
    if let Some(c) = challenge {
        url.query_pairs_mut().append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
    }
    url.to_string()
}

/// Signs Alice in for a code sent to `redirect` (fragment response mode).
async fn code_for(server: &TestServer, redirect: &str, challenge: &str) -> String {
    let c = server.client();
    let loc = sign_in(
        &c,
        server,
        &authorize_url(server, redirect, Some(challenge)),
        "alice@contoso.test",
        "alice-password-1",
    )
    .await
    .expect("signed in");
    let fragment = reqwest::Url::parse(&loc).unwrap().fragment().unwrap_or_default().to_string();
    form_urlencoded::parse(fragment.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {loc}"))
}

async fn token(server: &TestServer, origin: Option<&str>, form: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    let mut req = server.client().post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"))).form(form);
    if let Some(o) = origin {
        req = req.header(ORIGIN, o);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap())
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no error code in {body}"))
}

fn allowed_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_spa_code_is_redeemed_only_by_the_browser_and_its_family_only_cross_origin() {
    let server = TestServer::start_with(&world_with_spa());

    // PKCE is required for a SPA redirect URI (the error goes back to the registered URI).
    let res = server.client().get(authorize_url(&server, SPA_REDIRECT, None)).send().await.unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(SPA_REDIRECT) && loc.contains("9002325"), "{loc}");

    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, SPA_REDIRECT, &challenge).await;
    let redeem = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", WEB_APP.to_string()),
            ("redirect_uri", SPA_REDIRECT.to_string()),
            ("code", code.to_string()),
            ("code_verifier", verifier.clone()),
        ]
    };
    let form = redeem(&code);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // A browser request must not carry the app's secret (checked before the code is spent).
    let with_secret = [form.clone(), vec![("client_secret", WEB_SECRET)]].concat();
    let (status, headers, body) = token(&server, Some(SPA_ORIGIN), &with_secret).await;
    assert_eq!((status, aadsts(&body)), (401, 700025), "{body}");
    assert_eq!(allowed_origin(&headers), Some(SPA_ORIGIN), "the browser app may read the error");

    // The browser redeems it: no secret, the verifier, an Origin; the answer is readable there.
    let (status, headers, body) = token(&server, Some(SPA_ORIGIN), &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(allowed_origin(&headers), Some(SPA_ORIGIN));
    assert!(headers["vary"].to_str().unwrap().contains("Origin"));
    assert!(headers.get("access-control-allow-credentials").is_none(), "never with cookies");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["azpacr"], "0", "a public client");
    let refresh = body["refresh_token"].as_str().expect("offline_access gives a refresh token").to_string();

    // Its refresh token: cross-origin only, with or without the secret server-side.
    let refresh_form = [("grant_type", "refresh_token"), ("client_id", WEB_APP), ("refresh_token", refresh.as_str())];
    let server_side = [refresh_form.to_vec(), vec![("client_secret", WEB_SECRET)]].concat();
    let (status, _, body) = token(&server, None, &server_side).await;
    assert_eq!((status, aadsts(&body)), (400, 9002327), "{body}");
    let (status, headers, body) = token(&server, Some(SPA_ORIGIN), &refresh_form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(allowed_origin(&headers), Some(SPA_ORIGIN));
    assert_ne!(body["refresh_token"].as_str().unwrap(), refresh, "rotated");

    // A SPA code redeemed server-side (no Origin), even with the secret, is refused.
    let code = code_for(&server, SPA_REDIRECT, &challenge).await;
    let form = redeem(&code);
    let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("client_secret", WEB_SECRET));
    let (status, _, body) = token(&server, None, &form).await;
    assert_eq!((status, aadsts(&body)), (400, 9002327), "{body}");
}

#[tokio::test]
async fn cross_origin_redemption_is_for_single_page_apps_only() {
    let server = TestServer::start_with(&world_with_spa());
    let (verifier, challenge) = pkce_pair();

    // A web redirect URI's code, redeemed from a browser: 9002326 naming the origin.
    let code = code_for(&server, WEB_REDIRECT, &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", WEB_APP),
        ("redirect_uri", WEB_REDIRECT),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, _, body) = token(&server, Some(SPA_ORIGIN), &form).await;
    assert_eq!((status, aadsts(&body)), (400, 9002326), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(SPA_ORIGIN));

    // No other grant comes from a browser; and never with a secret.
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", WEB_APP),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (status, _, body) = token(&server, Some(SPA_ORIGIN), &cc).await;
    assert_eq!((status, aadsts(&body)), (400, 9002326), "{body}");
    let with_secret = [cc.to_vec(), vec![("client_secret", WEB_SECRET)]].concat();
    let (status, _, body) = token(&server, Some(SPA_ORIGIN), &with_secret).await;
    assert_eq!((status, aadsts(&body)), (401, 700025), "{body}");
    // Server-side, the same request is fine.
    let (status, headers, body) = token(&server, None, &with_secret).await;
    assert_eq!(status, 200, "{body}");
    assert!(allowed_origin(&headers).is_none());
}

#[tokio::test]
async fn cors_answers_registered_origins_on_identity_endpoints_and_any_on_graph() {
    let server = TestServer::start_with(&world_with_spa());
    let c = server.client();
    let discovery = server.url(&format!("/{CONTOSO}/v2.0/.well-known/openid-configuration"));
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));

    for (origin, allowed) in [
        (SPA_ORIGIN, true),
        ("https://spa.example", true),
        (STRANGER, false),
        ("http://localhost:5174", false),
        ("https://spa.example/auth", false),
        ("null", false),
    ] {
        // Public metadata is anyone's to read.
        let res = c.get(&discovery).header(ORIGIN, origin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(allowed_origin(res.headers()), Some("*"), "discovery for {origin}");
        let keys = c.get(server.url(&format!("/{CONTOSO}/discovery/v2.0/keys"))).header(ORIGIN, origin);
        assert_eq!(allowed_origin(keys.send().await.unwrap().headers()), Some("*"), "keys for {origin}");
        // Tokens and claims only for registered single-page-app origins.
        let expected = allowed.then_some(origin);
        let userinfo = c.get(server.url("/oidc/userinfo")).header(ORIGIN, origin).send().await.unwrap();
        assert_eq!(userinfo.status(), 401);
        assert_eq!(allowed_origin(userinfo.headers()), expected, "userinfo for {origin}");

        let preflight = c
            .request(reqwest::Method::OPTIONS, &token_url)
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        if allowed {
            assert_eq!(preflight.status(), 204, "{origin}");
            assert_eq!(allowed_origin(preflight.headers()), Some(origin));
            let methods = preflight.headers()["access-control-allow-methods"].to_str().unwrap();
            assert!(methods.contains("POST"), "{methods}");
            let headers = preflight.headers()["access-control-allow-headers"].to_str().unwrap();
            assert!(headers.contains("content-type"), "{headers}");
        } else {
            assert_eq!(preflight.status(), 403, "{origin}");
            assert!(allowed_origin(preflight.headers()).is_none());
        }
    }

    // A preflight is an OPTIONS with Access-Control-Request-Method, nothing less: a POST that
    // carries the header reaches the endpoint, and a bare OPTIONS is not answered as one.
    let res = c
        .post(&token_url)
        .header(ORIGIN, STRANGER)
        .header("access-control-request-method", "POST")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the token endpoint answered");
    let bare = c.request(reqwest::Method::OPTIONS, &token_url).header(ORIGIN, SPA_ORIGIN).send().await.unwrap();
    assert_ne!(bare.status(), 204);
    assert!(bare.headers().get("access-control-allow-methods").is_none());

    // The authorize page is a top-level navigation: no CORS there.
    let res = c.get(authorize_url(&server, SPA_REDIRECT, Some(&pkce_pair().1))).header(ORIGIN, SPA_ORIGIN);
    assert!(allowed_origin(res.send().await.unwrap().headers()).is_none());

    // Graph: any origin (bearer tokens only, no cookies); preflight allows the Authorization header.
    let preflight = c
        .request(reqwest::Method::OPTIONS, server.url("/v1.0/me"))
        .header(ORIGIN, STRANGER)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(allowed_origin(preflight.headers()), Some(STRANGER));
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let res = c.get(server.url("/v1.0/me")).header(ORIGIN, STRANGER).send().await.unwrap();
    assert_eq!(res.status(), 401, "CORS lets the browser read the answer, not in without a token");
    assert_eq!(allowed_origin(res.headers()), Some(STRANGER));
    let exposed = res.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("retry-after") && exposed.contains("www-authenticate"), "{exposed}");
}

/// A single-page app's refresh tokens end a day after the sign-in, however often they rotate:
/// then AADSTS700084, naming when the family began (Entra's fixed SPA lifetime).
#[tokio::test]
async fn a_spa_refresh_token_family_ends_a_day_after_its_sign_in() {
    let server = TestServer::start_test_mode(&world_with_spa());
    let clock = || async {
        let body: Value =
            server.client().get(server.url("/_accord/test/clock")).send().await.unwrap().json().await.unwrap();
        time::OffsetDateTime::parse(body["now"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let before = clock().await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, SPA_REDIRECT, &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", WEB_APP),
        ("redirect_uri", SPA_REDIRECT),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, _, body) = token(&server, Some(SPA_ORIGIN), &form).await;
    assert_eq!(status, 200, "{body}");
    let signed_in = clock().await;
    let refresh_with = |refresh: String| {
        let server = &server;
        async move {
            let form = [("grant_type", "refresh_token"), ("client_id", WEB_APP), ("refresh_token", refresh.as_str())];
            let (status, _, body) = token(server, Some(SPA_ORIGIN), &form).await;
            (status, body)
        }
    };
    // Twelve hours on it rotates; the new token does not start a new day.
    server.advance_clock(serde_json::json!({"hours": 12})).await;
    let (status, body) = refresh_with(body["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 200, "{body}");
    server.advance_clock(serde_json::json!({"hours": 12, "minutes": 1})).await;
    let (status, body) = refresh_with(body["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!((status, aadsts(&body), body["error"].as_str()), (400, 700084, Some("invalid_grant")), "{body}");
    let description = body["error_description"].as_str().unwrap();
    let issued = description.split("The token was issued on ").nth(1).and_then(|r| r.split(".\r\n").next()).unwrap();
    let issued = time::OffsetDateTime::parse(issued, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{issued}: {e}"));
    assert!(
        before.replace_nanosecond(0).unwrap() <= issued && issued <= signed_in,
        "issued {issued}, signed in between {before} and {signed_in}"
    );
}
