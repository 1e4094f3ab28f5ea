//! The protocol surface over real HTTPS against a real `accord` process.

mod support;

use serde_json::Value;
use support::*;

async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

fn authorize_url(
    server: &TestServer,
    tenant: &str,
    client_id: &str,
    redirect: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{tenant}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "st-123");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

#[tokio::test]
async fn discovery_documents_and_keys() {
    let server = TestServer::start();
    let c = server.client();
    let (status, doc) =
        json(c.get(server.url(&format!("/{CONTOSO}/v2.0/.well-known/openid-configuration"))).send().await.unwrap())
            .await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], format!("{}/{CONTOSO}/v2.0", server.base));
    assert_eq!(doc["token_endpoint"], format!("{}/{CONTOSO}/oauth2/v2.0/token", server.base));
    assert_eq!(doc["jwks_uri"], format!("{}/{CONTOSO}/discovery/v2.0/keys", server.base));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));

    // A verified domain resolves to the same tenant; common uses the template.
    let (_, by_domain) =
        json(c.get(server.url("/contoso.test/v2.0/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(by_domain["issuer"], doc["issuer"]);
    let (_, common) =
        json(c.get(server.url("/common/v2.0/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(common["issuer"], format!("{}/{{tenantid}}/v2.0", server.base));
    assert_eq!(common["authorization_endpoint"], format!("{}/common/oauth2/v2.0/authorize", server.base));

    let (status, err) = json(
        c.get(server.url("/00000000-1111-4222-8333-444444444444/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error_codes"][0], 90002);
    assert!(err["error_description"].as_str().unwrap().starts_with("AADSTS90002:"));

    let (_, jwks) = json(c.get(server.url(&format!("/{CONTOSO}/discovery/v2.0/keys"))).send().await.unwrap()).await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert!(key["n"].as_str().unwrap().len() > 300, "2048-bit modulus");

    let (status, inst) = json(
        c.get(server.url("/common/discovery/instance"))
            .query(&[
                ("api-version", "1.1"),
                ("authorization_endpoint", &format!("https://localhost/{CONTOSO}/oauth2/v2.0/authorize")),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        inst["tenant_discovery_endpoint"],
        format!("{}/{CONTOSO}/v2.0/.well-known/openid-configuration", server.base)
    );
    assert!(inst["metadata"][0]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a.as_str().unwrap().starts_with("localhost:")));
    let (status, bad) = json(
        c.get(server.url("/common/discovery/instance"))
            .query(&[
                ("api-version", "1.1"),
                ("authorization_endpoint", "https://evil.example/common/oauth2/v2.0/authorize"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "invalid_instance");
    assert_eq!(bad["error_codes"][0], 50049);

    let (_, realm) =
        json(c.get(server.url("/common/userrealm/alice@contoso.test?api-version=1.0")).send().await.unwrap()).await;
    assert_eq!(realm["account_type"], "Managed");
    let (_, realm) =
        json(c.get(server.url("/common/userrealm/x@nowhere.test?api-version=1.0")).send().await.unwrap()).await;
    assert_eq!(realm["account_type"], "Unknown");
}

#[tokio::test]
async fn client_credentials_carry_granted_roles() {
    let server = TestServer::start();
    let c = server.client();
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", WEB_APP),
        ("client_secret", WEB_SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let res = c.post(&token_url).form(&form).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store, no-cache");
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_i64());
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["tid"], CONTOSO);
    assert_eq!(claims["iss"], format!("{}/{CONTOSO}/v2.0", server.base));
    assert_eq!(claims["azp"], WEB_APP);
    assert_eq!(claims["idtyp"], "app");
    let mut roles: Vec<&str> = claims["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    roles.sort();
    assert_eq!(roles, ["Calendars.Read", "User.Read.All"]);

    // client_secret_basic works the same; the secret is form-urlencoded before base64.
    let (status, _) = json(
        c.post(&token_url)
            .basic_auth(WEB_APP, Some(WEB_SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // Fabrikam granted no application permission: a token without roles.
    let (status, body) = json(
        c.post(server.url(&format!("/{FABRIKAM}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["tid"], FABRIKAM);
    assert!(claims.get("roles").is_none());

    // (tenant, form, HTTP status, error, AADSTS code)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, u64);
    let cases: &[Case] = &[
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", "wrong"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            "common",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "invalid_request",
            9001023,
        ),
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("scope", "User.Read"),
            ],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            CONTOSO,
            &[("grant_type", "client_credentials"), ("client_id", WEB_APP), ("client_secret", WEB_SECRET)],
            400,
            "invalid_request",
            900144,
        ),
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "not-a-guid"),
                ("client_secret", "x"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000218,
        ),
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", NATIVE_APP),
                ("client_secret", "x"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            700025,
        ),
        (
            CONTOSO,
            &[("grant_type", "magic"), ("client_id", WEB_APP), ("client_secret", WEB_SECRET)],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("scope", "api://nothing/.default"),
            ],
            400,
            "invalid_resource",
            500011,
        ),
    ];
    for (tenant, form, want_status, want_error, want_code) in cases {
        let (status, body) =
            json(c.post(server.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(form).send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str().unwrap()), (*want_status, *want_error), "{form:?}: {body}");
        assert_eq!(body["error_codes"][0], *want_code, "{form:?}: {body}");
        let desc = body["error_description"].as_str().unwrap();
        assert!(desc.starts_with(&format!("AADSTS{want_code}:")), "{desc}");
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string() && body["timestamp"].is_string());
    }
}

/// A client authenticates one way, as the client it names: two methods at once, or a Basic
/// header for one app and a `client_id` for another, are refused before any is checked
/// (AADSTS900023); an assertion needs its type (issue 20, token.rs's survivors).
#[tokio::test]
async fn a_client_authenticates_one_way_as_the_client_it_names() {
    use base64::Engine;
    let server = TestServer::start();
    let c = server.client();
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let basic = |id: &str, secret: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let send = |authorization: Option<String>, extra: &[(&str, &str)]| {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")];
        form.extend_from_slice(extra);
        let mut request = c.post(&token_url).form(&form);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move { json(request.send().await.unwrap()).await }
    };
    let refused = |(status, body): (u16, Value), code: u64, mentions: &str| {
        assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(code)), "{mentions}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(body["error_description"].as_str().unwrap().contains(mentions), "{body}");
    };

    // Each method alone works: the header (with or without the same client_id) or the body.
    assert_eq!(send(Some(basic(WEB_APP, WEB_SECRET)), &[]).await.0, 200);
    assert_eq!(send(Some(basic(WEB_APP, WEB_SECRET)), &[("client_id", WEB_APP)]).await.0, 200);
    assert_eq!(send(None, &[("client_id", WEB_APP), ("client_secret", WEB_SECRET)]).await.0, 200);

    // Two at once, in any pairing, however right each is.
    let one_method = "Use one client authentication method";
    let header_and_body =
        send(Some(basic(WEB_APP, WEB_SECRET)), &[("client_id", WEB_APP), ("client_secret", WEB_SECRET)]).await;
    refused(header_and_body, 900023, one_method);
    let secret_and_assertion = [
        ("client_id", WEB_APP),
        ("client_secret", WEB_SECRET),
        ("client_assertion", "a.b.c"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
    ];
    refused(send(None, &secret_and_assertion).await, 900023, one_method);
    refused(send(Some(basic(WEB_APP, WEB_SECRET)), &secret_and_assertion[2..]).await, 900023, one_method);

    // The header names one app, the body another.
    let mismatch = send(Some(basic(WEB_APP, WEB_SECRET)), &[("client_id", UNCONSENTED_APP)]).await;
    refused(mismatch, 900023, "does not match the Authorization header");

    // An assertion of another type is refused by its type, before it is read.
    let wrong_type = [
        ("client_id", WEB_APP),
        ("client_assertion", "a.b.c"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
    ];
    refused(send(None, &wrong_type).await, 90014, "client_assertion_type");

    // `claims` at the token endpoint: blank is none, malformed is refused by name, and a
    // challenge newer than the sign-in (ROPC: the sign-in is now) needs a new one.
    let ropc = |claims: String| {
        let form = [
            ("grant_type", "password".to_string()),
            ("client_id", NATIVE_APP.to_string()),
            ("username", "alice@contoso.test".to_string()),
            ("password", "alice-password-1".to_string()),
            ("scope", "openid User.Read".to_string()),
            ("claims", claims),
        ];
        let request = c.post(&token_url).form(&form);
        async move { json(request.send().await.unwrap()).await }
    };
    let (status, body) = ropc("  ".into()).await;
    assert_eq!(status, 200, "blank claims: {body}");
    // The scopes echoed are what the user holds at the resource (Native Tool's grant), Graph's
    // bare as MSAL's cache expects, each once.
    assert_eq!(body["scope"], "openid profile offline_access User.Read", "{body}");
    refused(ropc("{not json".into()).await, 90014, "claims");
    let challenge = |nbf: i64| format!(r#"{{"access_token":{{"nbf":{{"essential":true,"value":"{nbf}"}}}}}}"#);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(ropc(challenge(now - 60)).await.0, 200, "a challenge older than the sign-in");
    let (status, body) = ropc(challenge(now + 3600)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("interaction_required")), "{body}");
    // A sign-in in the challenge's own second answers it (times are whole seconds).
    next_second().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(ropc(challenge(now)).await.0, 200, "a challenge of the sign-in's own second");

    // A parameter sent twice is refused by name (RFC 6749 §3.2), whichever value is right.
    let repeated = [
        ("grant_type", "client_credentials"),
        ("client_id", WEB_APP),
        ("client_secret", "wrong"),
        ("client_secret", WEB_SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (status, body) = json(c.post(&token_url).form(&repeated).send().await.unwrap()).await;
    refused((status, body), 90014, "'client_secret' is not valid: it was sent more than once");
}

#[tokio::test]
async fn malformed_requests_get_protocol_errors_not_500s() {
    let server = TestServer::start();
    let c = server.client();
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let bodies: &[&[u8]] = &[
        b"",
        b"%%%",
        b"grant_type",
        b"grant_type=client_credentials&grant_type=password",
        &[0xff, 0xfe, 0x00],
        b"grant_type=authorization_code&client_id=bbbbbbbb-0000-4000-8000-000000000001&client_secret=web-secret-1",
    ];
    for body in bodies {
        let res = c
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{body:?} gave {status}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string() && v["error_codes"][0].is_u64(), "{v}");
    }
    // Bad Basic header.
    let res = c
        .post(&token_url)
        .header("authorization", "Basic %%%")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Oversized body is refused without a 500.
    let huge = "a".repeat(200_000);
    // (The server may answer 413 before the client finished sending, which reqwest then
    // reports as a send error; either way it must not be a 5xx, and the server stays up.)
    if let Ok(res) = c.post(&token_url).form(&[("grant_type", huge.as_str())]).send().await {
        assert_eq!(res.status().as_u16(), 413);
    }
    // A fresh client: the refused connection may linger in `c`'s pool.
    let c = server.client();
    assert_eq!(c.get(server.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    // Unknown paths are JSON 404s.
    let res = c.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    for path in [
        "/%ff%fe/v2.0/.well-known/openid-configuration",
        "/contoso..test/discovery/v2.0/keys",
        "/common/discovery/instance",
    ] {
        let status = c.get(server.url(path)).send().await.unwrap().status().as_u16();
        assert!((400..500).contains(&status), "{path} gave {status}");
    }
}

#[tokio::test]
async fn authorize_refuses_to_redirect_to_unregistered_uris() {
    let server = TestServer::start();
    let c = server.client();
    let url = authorize_url(&server, CONTOSO, WEB_APP, "https://evil.example/steal", "openid User.Read", &[]);
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.headers().get("location").is_none());
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains("AADSTS50011"), "{html}");

    // Near misses of the registered https://app.example/callback and http://localhost:5000/cb
    // are refused too: matching is exact, not by prefix, host or case (issue 20, gap 3).
    for near in [
        "https://APP.example/callback",
        "https://app.example/Callback",
        "https://app.example/callback/",
        "https://app.example/callback/more",
        "https://app.example/callbackx",
        "https://app.example/callback?next=https://evil.example",
        "https://app.example/callback#x",
        "https://evil@app.example/callback",
        "https://app.example:444/callback",
        "http://app.example/callback",
        "https://app.example.evil.example/callback",
        "https://app.example",
        "http://localhost:5000/cb/",
        "http://localhost:5000/CB",
        "http://127.0.0.1:5000/cb",
    ] {
        let url = authorize_url(&server, CONTOSO, WEB_APP, near, "openid User.Read", &[]);
        let res = c.get(url).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400, "{near}");
        assert!(res.headers().get("location").is_none(), "{near} is never redirected to");
        assert!(res.text().await.unwrap().contains("AADSTS50011"), "{near}");
    }
    // The registered URIs themselves work (the checks above are not a broken endpoint).
    for exact in [WEB_REDIRECT, "http://localhost:5000/cb"] {
        let res = c.get(authorize_url(&server, CONTOSO, WEB_APP, exact, "openid User.Read", &[])).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{exact}: the sign-in page");
    }

    let url = authorize_url(&server, CONTOSO, "cccccccc-0000-4000-8000-000000000009", WEB_REDIRECT, "openid", &[]);
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS700016"));

    // With a registered redirect URI, request errors go back to the app.
    let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid", &[("response_type", "token")]);
    let res = c.get(url.replace("response_type=code&", "")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 302);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(WEB_REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    assert!(query_param(&loc, "error").is_some());

    // Public clients must use PKCE.
    let url = authorize_url(&server, CONTOSO, NATIVE_APP, NATIVE_REDIRECT, "openid User.Read", &[]);
    let loc = c.get(url).send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_request"));
    assert!(query_param(&loc, "error_description").unwrap().starts_with("AADSTS9002325"));

    // prompt=none without a session: login_required, no page.
    let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[("prompt", "none")]);
    let loc = c.get(url).send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"));
}

/// Without `redirect_uri` an app registered with exactly one (and no single-page-app URI) gets
/// that one; with more the parameter is required, on a page (there is nowhere to send the
/// error). And a browser's SSO session serves only its own tenant and a matching login hint.
#[tokio::test]
async fn the_one_registered_redirect_uri_is_the_default_and_sessions_fit_tenant_and_hint() {
    let server = TestServer::start();
    let c = server.client();
    let authorize = |tenant: &str, client_id: &str, params: &[(&str, &str)]| {
        let mut url = reqwest::Url::parse(&server.url(&format!("/{tenant}/oauth2/v2.0/authorize"))).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid User.Read")
            .extend_pairs(params);
        let c = c.clone();
        async move {
            let res = c.get(url).send().await.unwrap();
            let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            (res.status().as_u16(), location, res.text().await.unwrap())
        }
    };
    let (_, challenge) = pkce_pair();
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];

    // Before any session: the native app's one URI is taken (its sign-in page), the web app's
    // two leave the parameter missing.
    let (status, _, html) = authorize(CONTOSO, NATIVE_APP, &pkce).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"passwd\""), "the sign-in page: {html}");
    let (status, location, html) = authorize(CONTOSO, WEB_APP, &pkce).await;
    assert_eq!((status, location), (400, None), "{html}");
    assert!(html.contains("AADSTS900144") && html.contains("redirect_uri"), "{html}");

    // alice signs in once; with her session the native app's code goes to its one URI.
    code_flow(&server, &c, "openid User.Read", "n-1").await;
    let (status, location, _) = authorize(CONTOSO, NATIVE_APP, &pkce).await;
    let location = location.expect("a redirect");
    assert_eq!(status, 302);
    assert!(location.starts_with(&format!("{NATIVE_REDIRECT}?code=")), "{location}");

    // The session fits a matching hint (in any case) and a path naming no tenant...
    for (tenant, hint) in [(CONTOSO, "ALICE@contoso.test"), ("organizations", "alice@contoso.test")] {
        let (status, location, html) =
            authorize(tenant, WEB_APP, &[("redirect_uri", WEB_REDIRECT), ("login_hint", hint)]).await;
        assert_eq!(status, 302, "{tenant} {hint}: {html}");
        assert!(location.unwrap().starts_with(&format!("{WEB_REDIRECT}?code=")), "{tenant} {hint}");
    }
    // ...but not another user's hint, nor another tenant's path: the sign-in page, no code.
    for (tenant, hint) in [(CONTOSO, Some("bob@contoso.test")), (FABRIKAM, None)] {
        let mut params = vec![("redirect_uri", WEB_REDIRECT)];
        params.extend(hint.map(|h| ("login_hint", h)));
        let (status, location, html) = authorize(tenant, WEB_APP, &params).await;
        assert_eq!((status, location), (200, None), "{tenant} {hint:?}");
        assert!(html.contains("name=\"passwd\""), "{tenant} {hint:?}: the sign-in page");
    }
}

/// What an authorize request led to: the sign-in page, or an error at the (web) app's URI.
async fn authorize_outcome(res: reqwest::Response) -> Result<(), (String, String, String)> {
    match res.status().as_u16() {
        200 => {
            let html = res.text().await.unwrap();
            assert!(html.contains("name=\"passwd\""), "the sign-in page: {html}");
            Ok(())
        }
        302 => {
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            assert!(loc.starts_with(&format!("{WEB_REDIRECT}?")), "{loc}");
            let description = query_param(&loc, "error_description").unwrap();
            let code = query_param(&loc, "error_codes").unwrap();
            assert!(description.starts_with(&format!("AADSTS{code}:")), "{description}");
            Err((query_param(&loc, "error").unwrap(), code, description))
        }
        other => panic!("{other}: {}", res.text().await.unwrap()),
    }
}

/// Each parameter of an authorize request is checked on its own, at its limit: one character
/// over is refused with the parameter named and the error sent back to the app; at the limit,
/// or a value Entra takes, the sign-in page follows; by GET and POST alike (issue 20, runs K and L).
#[tokio::test]
async fn authorize_parameters_are_checked_one_by_one_at_their_limits() {
    let server = TestServer::start();
    let c = server.client();
    // `Ok(())` is the sign-in page; `Err((error, code, description))` the error at the app.
    // Each request goes by GET (query) and by POST (form): both must answer alike.
    let outcome = |params: Vec<(&'static str, String)>| {
        let url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"));
        let defaults = [
            ("client_id", WEB_APP),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid User.Read"),
            ("state", "st-1"),
            ("response_type", "code"),
        ];
        let given = |name: &str| params.iter().any(|(k, _)| *k == name);
        let pairs: Vec<(String, String)> = defaults
            .into_iter()
            .filter(|(k, _)| !given(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(params.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .collect();
        let (get, post) = (c.get(&url).query(&pairs), c.post(&url).form(&pairs));
        async move {
            let by_get = authorize_outcome(get.send().await.unwrap()).await;
            let by_post = authorize_outcome(post.send().await.unwrap()).await;
            let kind = |r: &Result<(), (String, String, String)>| {
                r.as_ref().map_err(|(e, code, _)| (e.clone(), code.clone())).err()
            };
            assert_eq!(kind(&by_get), kind(&by_post), "GET and POST differ: {by_post:?}");
            by_get
        }
    };
    let invalid = |name: &str, r: Result<(), (String, String, String)>| {
        let Err((error, code, description)) = r else { panic!("{name} was accepted") };
        assert_eq!((error.as_str(), code.as_str()), ("invalid_request", "90014"), "{name}: {description}");
        assert!(description.contains(&format!("parameter '{name}'")), "{name}: {description}");
    };

    // Length limits: 2,048 characters is the most `state`, `nonce` and the hints may carry.
    for name in ["state", "nonce", "login_hint", "domain_hint"] {
        assert_eq!(outcome(vec![(name, "s".repeat(2048))]).await, Ok(()), "{name} at the limit");
        invalid(name, outcome(vec![(name, "s".repeat(2049))]).await);
    }

    // The implicit flow is off for every app (AADSTS700054); anything else is unsupported.
    for rt in ["id_token", "token", "code id_token", "id_token token", "code token"] {
        let (error, code, _) = outcome(vec![("response_type", rt.into())]).await.expect_err(rt);
        assert_eq!((error.as_str(), code.as_str()), ("unsupported_response_type", "700054"), "{rt}");
    }
    for rt in ["bogus", "code code2", "id_tokens"] {
        let (error, code, description) = outcome(vec![("response_type", rt.into())]).await.expect_err(rt);
        assert_eq!((error.as_str(), code.as_str()), ("unsupported_response_type", "70005"), "{rt}");
        // (Named as sent, less what could not be shown safely: here the space.)
        assert!(description.contains(&format!("'{}'", rt.replace(' ', ""))), "{description}");
    }

    // A blank `claims` is no claims request; a malformed one is refused.
    assert_eq!(outcome(vec![("claims", "  ".into())]).await, Ok(()));
    assert_eq!(outcome(vec![("claims", r#"{"access_token":{}}"#.into())]).await, Ok(()));
    invalid("claims", outcome(vec![("claims", "{not json".into())]).await);

    // PKCE: S256 and plain are the methods; the challenge is 43 to 128 unreserved characters.
    let ok = "a".repeat(43);
    for method in ["S256", "plain"] {
        let r = outcome(vec![("code_challenge", ok.clone()), ("code_challenge_method", method.into())]).await;
        assert_eq!(r, Ok(()), "{method}");
    }
    assert_eq!(outcome(vec![("code_challenge", ok.clone())]).await, Ok(()), "plain by default");
    for method in ["S512", "s256", ""] {
        let r = outcome(vec![("code_challenge", ok.clone()), ("code_challenge_method", method.into())]).await;
        invalid("code_challenge_method", r);
    }
    assert_eq!(outcome(vec![("code_challenge", "-._~".repeat(32))]).await, Ok(()), "128 unreserved");
    for bad in ["a".repeat(42), "a".repeat(129), format!("{}+", "a".repeat(42)), format!("{} ", "a".repeat(50))] {
        invalid("code_challenge", outcome(vec![("code_challenge", bad)]).await);
    }
    let (_, code, _) = outcome(vec![("code_challenge_method", "S256".into())]).await.expect_err("no challenge");
    assert_eq!(code, "900144");
}

/// A browser with a session gets its code without a page, unless the request asks for a fresh
/// sign-in: `prompt=login` or `select_account`, or a claims challenge newer than the sign-in.
#[tokio::test]
async fn a_session_is_asked_again_only_when_the_request_says_so() {
    let server = TestServer::start();
    let c = server.client();
    code_flow(&server, &c, "openid User.Read", "n-1").await;
    let goes_straight_to_the_app = |extra: Vec<(&'static str, String)>| {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &extra);
        let c = c.clone();
        async move {
            let res = c.get(url).send().await.unwrap();
            match res.status().as_u16() {
                302 => {
                    let loc = res.headers()["location"].to_str().unwrap().to_string();
                    assert!(query_param(&loc, "code").is_some(), "{loc}");
                    true
                }
                200 => {
                    assert!(res.text().await.unwrap().contains("name=\"passwd\""), "the sign-in page");
                    false
                }
                other => panic!("{other}"),
            }
        }
    };
    assert!(goes_straight_to_the_app(vec![]).await);
    assert!(goes_straight_to_the_app(vec![("prompt", "none".into())]).await);
    for prompt in ["login", "select_account"] {
        assert!(!goes_straight_to_the_app(vec![("prompt", prompt.into())]).await, "{prompt}");
    }
    let challenge =
        |nbf: i64| vec![("claims", format!(r#"{{"access_token":{{"nbf":{{"essential":true,"value":"{nbf}"}}}}}}"#))];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(goes_straight_to_the_app(challenge(now - 3600)).await, "a challenge older than the sign-in");
    assert!(!goes_straight_to_the_app(challenge(now + 3600)).await, "a challenge newer than the sign-in");
}

/// The sign-in form is bound to the browser that fetched it (its CSRF cookie), to the tenant
/// whose page it came from, and to an hour.
#[tokio::test]
async fn the_sign_in_form_is_bound_to_its_browser_tenant_and_hour() {
    let server = TestServer::start_test_mode(&world());
    let c = server.client();
    let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[]);
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let (action, mut fields) = form_fields(&page);
    assert_eq!(action, format!("/{CONTOSO}/login"));
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.push(("login".into(), "alice@contoso.test".into()));
    fields.push(("passwd".into(), "alice-password-1".into()));
    let post = |c: &reqwest::Client, path: String, fields: Vec<(String, String)>| {
        let request = c.post(server.url(&path)).form(&fields);
        async move {
            let res = request.send().await.unwrap();
            let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            (res.status().as_u16(), location, res.text().await.unwrap())
        }
    };
    let refused = |(status, location, html): (u16, Option<String>, String), why: &str| {
        assert_eq!((status, location), (400, None), "{html}");
        assert!(html.contains("AADSTS90014") && html.contains(why), "{why}: {html}");
    };

    // Another browser (its own CSRF cookie) cannot post this browser's form.
    let other = server.client();
    other.get(&url).send().await.unwrap();
    refused(post(&other, action.clone(), fields.clone()).await, "did not come from this site");
    // The form names Contoso: posted at Fabrikam's sign-in it is refused.
    refused(post(&c, format!("/{FABRIKAM}/login"), fields.clone()).await, "The sign-in request expired.");
    // A form altered in transit does not open.
    let mut altered = fields.clone();
    for (k, v) in altered.iter_mut() {
        if k == "flow" {
            v.replace_range(10..11, if &v[10..11] == "A" { "B" } else { "A" });
        }
    }
    refused(post(&c, action.clone(), altered).await, "The sign-in request expired.");

    // Within the hour it signs in (twice: a form is not single-use, the password is the gate),
    // and the browser's session lasts a day...
    server.advance_clock(serde_json::json!({"minutes": 59})).await;
    for _ in 0..2 {
        let res = c.post(server.url(&action)).form(&fields).send().await.unwrap();
        assert_eq!(res.status(), 302);
        assert!(res.headers()["location"].to_str().unwrap().starts_with(&format!("{WEB_REDIRECT}?code=")));
        let session = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|v| v.starts_with("__Host-accord_session="));
        assert!(session.as_deref().is_some_and(|v| v.contains("; Max-Age=86400;")), "{session:?}");
    }
    // ...but an hour after the page was served, its form is not taken: fetched just after a
    // second began and posted at once, the form is exactly an hour old (a stalled machine makes
    // it older, which is refused as well).
    let fresh = server.client();
    next_second().await;
    let page = fresh.get(&url).send().await.unwrap().text().await.unwrap();
    let (_, mut fields) = form_fields(&page);
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.extend([("login".into(), "alice@contoso.test".into()), ("passwd".into(), "alice-password-1".into())]);
    server.advance_clock(serde_json::json!({"hours": 1})).await;
    refused(post(&fresh, action, fields).await, "The sign-in request expired.");
}

async fn code_flow(server: &TestServer, c: &reqwest::Client, scope: &str, nonce: &str) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let url = authorize_url(
        server,
        CONTOSO,
        WEB_APP,
        WEB_REDIRECT,
        scope,
        &[("code_challenge", &challenge), ("code_challenge_method", "S256"), ("nonce", nonce)],
    );
    let loc = sign_in(c, server, &url, "alice@contoso.test", "alice-password-1").await.expect("signed in");
    assert!(loc.starts_with(WEB_REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    (query_param(&loc, "code").expect("code in redirect"), verifier)
}

#[tokio::test]
async fn auth_code_flow_with_pkce_refresh_rotation_and_reuse_detection() {
    let server = TestServer::start();
    let c = server.client();
    let scope = "openid profile email offline_access User.Read Calendars.Read";
    let (code, verifier) = code_flow(&server, &c, scope, "nonce-1").await;
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let redeem = |code: String, verifier: String| {
        let c = c.clone();
        let token_url = token_url.clone();
        async move {
            json(
                c.post(&token_url)
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("client_id", WEB_APP),
                        ("client_secret", WEB_SECRET),
                        ("code", &code),
                        ("redirect_uri", WEB_REDIRECT),
                        ("code_verifier", &verifier),
                    ])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) = redeem(code.clone(), verifier.clone()).await;
    assert_eq!(status, 200, "{body}");
    for field in ["access_token", "refresh_token", "id_token", "client_info", "scope"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
    let access = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], "https://graph.microsoft.com");
    assert_eq!(access["oid"], "aaaaaaaa-0000-4000-8000-0000000000a1");
    assert_eq!(access["preferred_username"], "alice@contoso.test");
    assert!(access["scp"].as_str().unwrap().split(' ').any(|s| s == "Calendars.Read"));
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], WEB_APP);
    assert_eq!(id["nonce"], "nonce-1");
    assert_eq!(id["tid"], CONTOSO);
    assert_eq!(id["ver"], "2.0");
    assert_ne!(id["sub"], id["oid"], "sub is pairwise");
    let info: Value = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body["client_info"].as_str().unwrap()).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(info["uid"], "aaaaaaaa-0000-4000-8000-0000000000a1");
    assert_eq!(info["utid"], CONTOSO);

    // Codes are single use.
    let (status, again) = redeem(code, verifier).await;
    assert_eq!(status, 400);
    assert_eq!(again["error_codes"][0], 54005);

    // The refresh token from the replayed code's family is now revoked.
    let rt0 = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let c = c.clone();
        let token_url = token_url.clone();
        async move {
            json(
                c.post(&token_url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", WEB_APP),
                        ("client_secret", WEB_SECRET),
                        ("refresh_token", &rt),
                    ])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, revoked) = refresh(rt0).await;
    assert_eq!(status, 400);
    assert_eq!(revoked["error"], "invalid_grant");

    // A fresh flow: rotation works, and presenting a rotated token revokes the family.
    let (code, verifier) = code_flow(&server, &c, scope, "nonce-2").await;
    let (_, body) = redeem(code, verifier).await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_string();
    let (status, r2) = refresh(rt1.clone()).await;
    assert_eq!(status, 200, "{r2}");
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let (status, r3) = refresh(rt2.clone()).await;
    assert_eq!(status, 200, "{r3}");
    let rt3 = r3["refresh_token"].as_str().unwrap().to_string();
    let (status, reuse) = refresh(rt1).await;
    assert_eq!((status, reuse["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (status, after) = refresh(rt3).await;
    assert_eq!(status, 400, "the family is revoked after reuse: {after}");

    // Incremental consent: a refresh asking for a scope nobody consented to fails alone
    // (65001); the token still refreshes what it was issued for, as in Entra (MSAL relies on it).
    let (code, verifier) = code_flow(&server, &c, scope, "nonce-3").await;
    let (_, body) = redeem(code, verifier).await;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let (status, more) = json(
        c.post(&token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("refresh_token", &rt),
                ("scope", "https://graph.microsoft.com/Calendars.ReadWrite offline_access"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, more["error_codes"][0].as_u64()), (400, Some(65001)), "{more}");
    let (status, again) = refresh(rt).await;
    assert_eq!(status, 200, "the family survives a refused incremental request: {again}");
}

#[tokio::test]
async fn pkce_mismatch_wrong_redirect_and_missing_consent() {
    let server = TestServer::start();
    let c = server.client();
    let token_url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let (code, _) = code_flow(&server, &c, "openid User.Read", "n").await;
    let (status, body) = json(
        c.post(&token_url)
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", "x".repeat(50).as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(501481)));

    // The SSO session is reused: the second authorize needs no password.
    let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[]);
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 302, "SSO session reused");
    // A code issued without code_challenge, redeemed with a code_verifier: a PKCE downgrade,
    // refused (RFC 9700 §4.8.2).
    let code = query_param(res.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (status, body) = json(
        c.post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", "an-attacker-chosen-verifier-of-sufficient-length-0123456789"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_codes"][0].as_u64()),
        (400, Some("invalid_grant"), Some(501481)),
        "{body}"
    );
    assert!(body["error_description"].as_str().unwrap().contains("no code_challenge"), "{body}");
    // response_mode=form_post: an auto-submitting form to the redirect URI, allowed by the CSP.
    let url =
        authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[("response_mode", "form_post")]);
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    let (action, fields) = form_fields(&html);
    assert_eq!(action, WEB_REDIRECT);
    assert!(fields.iter().any(|(k, v)| k == "code" && !v.is_empty()), "{html}");
    assert!(fields.iter().any(|(k, v)| k == "state" && v == "st-123"));
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    // response_mode=fragment: the code travels after '#'.
    let url =
        authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[("response_mode", "fragment")]);
    let loc = c.get(url).send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(&format!("{WEB_REDIRECT}#code=")), "{loc}");

    // No grant for this app: the consent prompt (user consent is allowed in Contoso)...
    let url = authorize_url(&server, CONTOSO, UNCONSENTED_APP, "https://other.example/cb", "openid User.Read", &[]);
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("Permissions requested"));
    // ...and with prompt=none, the app hears consent_required.
    let url = authorize_url(
        &server,
        CONTOSO,
        UNCONSENTED_APP,
        "https://other.example/cb",
        "openid User.Read",
        &[("prompt", "none")],
    );
    let loc = c.get(url).send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("interaction_required"));
    assert_eq!(query_param(&loc, "error_subcode").as_deref(), Some("consent_required"));
}

#[tokio::test]
async fn sign_in_errors_lockout_and_tenant_rules() {
    let server = TestServer::start();
    let c = server.client();
    let url = authorize_url(&server, CONTOSO, WEB_APP, WEB_REDIRECT, "openid User.Read", &[]);
    // Wrong password and unknown user read the same.
    let (_, page) = sign_in(&c, &server, &url, "alice@contoso.test", "nope").await.unwrap_err();
    assert!(page.contains("Your account or password is incorrect"));
    let (_, page) = sign_in(&c, &server, &url, "ghost@contoso.test", "nope").await.unwrap_err();
    assert!(page.contains("Your account or password is incorrect"));
    // A Fabrikam user cannot sign in at Contoso's authority.
    let (_, page) = sign_in(&c, &server, &url, "frank@fabrikam.test", "frank-password-1").await.unwrap_err();
    assert!(page.contains("AADSTS50020"), "{page}");
    // Ten failures lock the account, even for the right password.
    for _ in 0..10 {
        let _ = sign_in(&c, &server, &url, "bob@contoso.test", "wrong").await;
    }
    let (_, page) = sign_in(&c, &server, &url, "bob@contoso.test", "bob-password-1").await.unwrap_err();
    assert!(page.contains("locked"), "{page}");

    // `organizations` finds the home tenant from the UPN; Fabrikam requires assignment.
    let url = authorize_url(&server, "organizations", WEB_APP, WEB_REDIRECT, "openid User.Read", &[]);
    let fresh = server.client();
    let (status, page) = sign_in(&fresh, &server, &url, "frank@fabrikam.test", "frank-password-1").await.unwrap_err();
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS50105"), "{page}");

    // A forged sign-in form (no CSRF cookie) is refused.
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/login")))
        .form(&[("flow", "x"), ("csrf", "y"), ("login", "a"), ("passwd", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn password_grant_and_userinfo_and_logout() {
    let server = TestServer::start();
    let c = server.client();
    let token_url = server.url("/organizations/oauth2/v2.0/token");
    let (status, body) = json(
        c.post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", NATIVE_APP),
                ("username", "alice@contoso.test"),
                ("password", "alice-password-1"),
                ("scope", "openid User.Read"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["azpacr"], "0");
    let (status, info) = json(c.get(server.url("/oidc/userinfo")).bearer_auth(at).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["email"], "alice@contoso.test");
    let status = c.get(server.url("/oidc/userinfo")).bearer_auth(format!("{at}x")).send().await.unwrap().status();
    assert_eq!(status.as_u16(), 401);
    // A user's token for another resource (here the app's own) is not a token for userinfo.
    let (status, body) = json(
        c.post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("username", "alice@contoso.test"),
                ("password", "alice-password-1"),
                ("scope", &format!("openid {WEB_APP}/.default")),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let own = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(own)["aud"], WEB_APP, "{}", jwt_claims(own));
    let status = c.get(server.url("/oidc/userinfo")).bearer_auth(own).send().await.unwrap().status();
    assert_eq!(status.as_u16(), 401, "userinfo needs a token for Graph");

    let (status, body) = json(
        c.post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", NATIVE_APP),
                ("username", "alice@contoso.test"),
                ("password", "bad"),
                ("scope", "User.Read"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap(), body["error_codes"][0].as_u64().unwrap()),
        (400, "invalid_grant", 50126)
    );

    // Logout redirects only to registered URIs.
    let res = c.get(server.url(&format!("/{CONTOSO}/oauth2/v2.0/logout?post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&client_id={WEB_APP}"))).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 302);
    let res = c
        .get(server.url(&format!(
            "/{CONTOSO}/oauth2/v2.0/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example&client_id={WEB_APP}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("signed out"));
}

#[tokio::test]
async fn health_metrics_and_security_headers() {
    let server = TestServer::start();
    let c = server.client();
    assert_eq!(c.get(server.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(c.get(server.url("/readyz")).send().await.unwrap().status().as_u16(), 200);
    let _ = c
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let metrics = c.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_tokens_issued_total{grant_type=\"client_credentials\"} 1"), "{metrics}");
    assert!(metrics.contains("accord_http_requests_total"));
    let res = c.get(server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize?client_id={WEB_APP}&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid"))).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"));
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let (value, attributes) = cookie.split_once(';').unwrap();
    assert!(value.starts_with("__Host-accord_csrf=") && value.len() > 40, "{cookie}");
    assert_eq!(
        attributes, " Path=/; HttpOnly; SameSite=Lax; Max-Age=86400; Secure",
        "a day, never readable by scripts"
    );
    // A CSRF cookie that is empty or longer than any Accord sets is not this site's: a fresh
    // one is set (a client without a cookie jar, so that only the planted one is sent).
    let bare = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&server.ca_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!("/{CONTOSO}/oauth2/v2.0/authorize?client_id={WEB_APP}&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid");
    for planted in [String::new(), "a".repeat(513)] {
        let res = bare
            .get(server.url(&authorize))
            .header("cookie", format!("__Host-accord_csrf={planted}"))
            .send()
            .await
            .unwrap();
        let fresh = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        assert!(
            fresh
                .as_deref()
                .is_some_and(|c| c.starts_with("__Host-accord_csrf=") && !c.contains(&format!("={planted};"))),
            "a planted cookie of {} bytes was taken: {fresh:?}",
            planted.len()
        );
    }
    assert!(!server.log().contains("alice-password-1"), "no secrets in logs");
}

/// Issue 12, finding 11: at `ACCORD_LOG=debug`, request URIs with tokens or hints in their query
/// reached the log. No token, code, password or hint at any level.
#[tokio::test]
async fn debug_logs_hold_no_token_code_or_hint() {
    let data_dir = std::env::temp_dir().join(format!("accord-test-{}", uuid_like()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let server = TestServer::launch_with_env(data_dir, &world(), &[], &[("ACCORD_LOG", "debug")]);
    let c = server.client();
    let url = authorize_url(
        &server,
        CONTOSO,
        WEB_APP,
        WEB_REDIRECT,
        "openid User.Read",
        &[("login_hint", "hint-marker@contoso.test")],
    );
    let loc = sign_in(&c, &server, &url, "alice@contoso.test", "alice-password-1").await.expect("signed in");
    let code = query_param(&loc, "code").unwrap();
    let (status, body) = json(
        c.post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap().to_string();
    let logout = format!("/{CONTOSO}/oauth2/v2.0/logout?id_token_hint={id_token}&client_id={WEB_APP}");
    c.get(server.url(&logout)).send().await.unwrap();
    let log = server.log();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    for secret in [
        id_token.as_str(),
        &code,
        "hint-marker",
        "alice-password-1",
        WEB_SECRET,
        body["access_token"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "the log holds {secret:.20}…");
    }
}

/// Graph refuses a token signed by us but expired (on Accord's clock) or not yet valid (`nbf`
/// beyond the skew), and one of our keys but another deployment's issuer (two servers over one
/// database share the keys but not the URL): each with its own `InvalidAuthenticationToken`
/// message (issue 20, gap 1; the `nbf` case closes the survivors at `bearer.rs:53`).
#[tokio::test]
async fn bearer_tokens_expire_and_belong_to_one_issuer() {
    let dir = std::env::temp_dir().join(format!("accord-bearer-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::launch_with_env(dir.clone(), &world(), &["--test-mode"], &[]);
    let token_for = |server: &TestServer| {
        let (c, url) = (server.client(), server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")));
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", WEB_APP),
                ("client_secret", WEB_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            let (status, body) = json(c.post(url).form(&form).send().await.unwrap()).await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let graph = |server: &TestServer, token: String| {
        let (c, url) = (server.client(), server.url("/v1.0/users?$top=1"));
        async move {
            let (status, body) = json(c.get(url).bearer_auth(token).send().await.unwrap()).await;
            (status, body["error"]["code"].as_str().unwrap_or("").to_string(), body["error"]["message"].clone())
        }
    };
    let token = token_for(&server).await;
    assert_eq!(graph(&server, token.clone()).await.0, 200);

    // Another server over the same data: the same keys, another issuer.
    let other = TestServer::start_in(dir.clone(), &[]);
    let (status, code, message) = graph(&other, token.clone()).await;
    assert_eq!((status, code.as_str()), (401, "InvalidAuthenticationToken"));
    assert_eq!(message, "Access token validation failure. Invalid issuer.");
    assert_eq!(graph(&other, token_for(&other).await).await.0, 200, "its own tokens work");

    // A twin under the same name (a replica: same keys, same issuer) takes the token, but not
    // one whose `nbf` lies beyond its clock's five minutes of skew: one issued after the first
    // server's clock moved an hour on.
    let twin = TestServer::start_as(dir.clone(), &server.base, &[]);
    assert_eq!(graph(&twin, token.clone()).await.0, 200, "the twin shares keys and issuer");
    server.advance_clock(serde_json::json!({"hours": 1})).await;
    let early = token_for(&server).await;
    assert_eq!(graph(&server, early.clone()).await.0, 200, "valid on its issuer's clock");
    let (status, code, message) = graph(&twin, early).await;
    assert_eq!((status, code.as_str()), (401, "InvalidAuthenticationToken"), "nbf an hour ahead");
    assert_eq!(message, "Lifetime validation failed, the token is expired.");
    drop(twin);

    // Two hours later on Accord's clock the token has expired.
    server.advance_clock(serde_json::json!({"hours": 1})).await;
    let (status, code, message) = graph(&server, token).await;
    assert_eq!((status, code.as_str()), (401, "InvalidAuthenticationToken"));
    assert_eq!(message, "Lifetime validation failed, the token is expired.");
}

/// A code is bound at redemption to its client, tenant, redirect URI, PKCE verifier and
/// lifetime; each refusal has Entra's code (issue 20, gap 2). The same browser signs in once;
/// each case gets a fresh code through SSO.
#[tokio::test]
async fn a_code_is_bound_to_its_client_tenant_redirect_verifier_and_lifetime() {
    let server = TestServer::start_test_mode(&world());
    let c = server.client();
    let redeem = |tenant: &'static str, fields: Vec<(&'static str, String)>| {
        let (client, url) = (server.client(), server.url(&format!("/{tenant}/oauth2/v2.0/token")));
        async move {
            let mut form = vec![("grant_type", "authorization_code".to_string())];
            form.extend(fields);
            json(client.post(url).form(&form).send().await.unwrap()).await
        }
    };
    let base = |code: &str, verifier: &str| {
        vec![
            ("client_id", WEB_APP.to_string()),
            ("client_secret", WEB_SECRET.to_string()),
            ("code", code.to_string()),
            ("redirect_uri", WEB_REDIRECT.to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let refused = |(status, body): (u16, Value), code: i64, error: &str| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_codes"][0], code, "{body}");
    };
    let with = |mut fields: Vec<(&'static str, String)>, key: &'static str, value: Option<&str>| {
        fields.retain(|(k, _)| *k != key);
        if let Some(v) = value {
            fields.push((key, v.to_string()));
        }
        fields
    };

    // The redirect URI must be the authorization request's, exactly (a trailing slash is not).
    let (code, verifier) = code_flow(&server, &c, "openid", "n1").await;
    let wrong = with(base(&code, &verifier), "redirect_uri", Some("https://app.example/callback/"));
    refused(redeem(CONTOSO, wrong).await, 70002, "invalid_grant");
    // Another registered redirect URI of the same app is not it either.
    let (code, verifier) = code_flow(&server, &c, "openid", "n2").await;
    let other = with(base(&code, &verifier), "redirect_uri", Some("http://localhost:5000/cb"));
    refused(redeem(CONTOSO, other).await, 70002, "invalid_grant");
    // Another client, with its own valid secret.
    let (code, verifier) = code_flow(&server, &c, "openid", "n3").await;
    let fields =
        with(with(base(&code, &verifier), "client_id", Some(UNCONSENTED_APP)), "client_secret", Some("other-secret-1"));
    refused(
        redeem(CONTOSO, with(fields, "redirect_uri", Some("https://other.example/cb"))).await,
        70000,
        "invalid_grant",
    );
    // Another tenant's token endpoint.
    let (code, verifier) = code_flow(&server, &c, "openid", "n4").await;
    refused(redeem(FABRIKAM, base(&code, &verifier)).await, 700005, "invalid_grant");
    // A PKCE code without its verifier, and with another verifier.
    let (code, verifier) = code_flow(&server, &c, "openid", "n5").await;
    refused(redeem(CONTOSO, with(base(&code, &verifier), "code_verifier", None)).await, 900144, "invalid_request");
    let (code, verifier) = code_flow(&server, &c, "openid", "n6").await;
    let (other_verifier, _) = pkce_pair();
    refused(
        redeem(CONTOSO, with(base(&code, &verifier), "code_verifier", Some(&other_verifier))).await,
        501481,
        "invalid_grant",
    );
    // The verifier is compared byte for byte: a plain challenge and a verifier differing in
    // two places by the same bits (which an XOR-folded comparison would let cancel out).
    let plain_challenge = "A".repeat(43);
    let url = authorize_url(
        &server,
        CONTOSO,
        WEB_APP,
        WEB_REDIRECT,
        "openid",
        &[("code_challenge", &plain_challenge), ("code_challenge_method", "plain")],
    );
    let loc = sign_in(&c, &server, &url, "alice@contoso.test", "alice-password-1").await.unwrap();
    let code = query_param(&loc, "code").expect("a code");
    let twice_flipped = format!("BB{}", "A".repeat(41));
    refused(redeem(CONTOSO, base(&code, &twice_flipped)).await, 501481, "invalid_grant");
    // Eleven minutes later (Accord's clock) a code has expired.
    let (code, verifier) = code_flow(&server, &c, "openid", "n7").await;
    server.advance_clock(serde_json::json!({"minutes": 11})).await;
    refused(redeem(CONTOSO, base(&code, &verifier)).await, 70008, "invalid_grant");
    // A redeemed code stays spent after the sweep of expired state (the marker outlives the
    // code): replayed a second later it is refused as redeemed (AADSTS54005).
    let (code, verifier) = code_flow(&server, &c, "openid", "n9").await;
    assert_eq!(redeem(CONTOSO, base(&code, &verifier)).await.0, 200);
    server.advance_clock(serde_json::json!({"seconds": 1})).await;
    refused(redeem(CONTOSO, base(&code, &verifier)).await, 54005, "invalid_grant");
    // And an intact code still works (the refusals above are not a broken server), redeemed
    // five minutes after it was issued.
    let (code, verifier) = code_flow(&server, &c, "openid offline_access", "n8").await;
    server.advance_clock(serde_json::json!({"minutes": 5})).await;
    let (status, body) = redeem(CONTOSO, base(&code, &verifier)).await;
    assert_eq!(status, 200, "{body}");
    let auth_time = |body: &Value| jwt_claims(body["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
    let signed_in_at = auth_time(&body);
    let redeemed_at = jwt_claims(body["id_token"].as_str().unwrap())["iat"].as_i64().unwrap();
    assert!(redeemed_at - signed_in_at >= 300, "auth_time is the sign-in's: {signed_in_at} vs {redeemed_at}");

    // Its refresh token is bound the same way: another client (70000, client_mismatch), another
    // tenant (700005), a made-up token (9002313) — and it still works for its own client after.
    let refresh = body["refresh_token"].as_str().expect("offline_access gives a refresh token").to_string();
    let use_refresh = |tenant: &'static str, client_id: &'static str, secret: &'static str, token: String| {
        let (client, url) = (server.client(), server.url(&format!("/{tenant}/oauth2/v2.0/token")));
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("refresh_token", token.as_str()),
            ];
            json(client.post(url).form(&form).send().await.unwrap()).await
        }
    };
    let other_client = use_refresh(CONTOSO, UNCONSENTED_APP, "other-secret-1", refresh.clone()).await;
    assert_eq!(other_client.1["suberror"], "client_mismatch", "{}", other_client.1);
    refused(other_client, 70000, "invalid_grant");
    refused(use_refresh(FABRIKAM, WEB_APP, WEB_SECRET, refresh.clone()).await, 700005, "invalid_grant");
    refused(use_refresh(CONTOSO, WEB_APP, WEB_SECRET, format!("{refresh}x")).await, 9002313, "invalid_grant");
    let (status, body) = use_refresh(CONTOSO, WEB_APP, WEB_SECRET, refresh).await;
    assert_eq!(status, 200, "{body}");
    // A refreshed ID token still says when the user signed in, not when the code was redeemed.
    assert_eq!(auth_time(&body), signed_in_at, "{body}");

    // Each rotation gives the new token its own 90 days: used every 60 days the family never
    // lapses; left unused for 91, the last token has (AADSTS70008).
    let mut refresh = body["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        server.advance_clock(serde_json::json!({"days": 60})).await;
        let (status, body) = use_refresh(CONTOSO, WEB_APP, WEB_SECRET, refresh).await;
        assert_eq!(status, 200, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_string();
    }
    server.advance_clock(serde_json::json!({"days": 91})).await;
    refused(use_refresh(CONTOSO, WEB_APP, WEB_SECRET, refresh).await, 70008, "invalid_grant");

    // The codes' single-use markers and the new refresh token went through the store's group
    // commit (three markers, a token; one at a time here, so a batch each), and /metrics says so.
    let grouped = server.metric("accord_store_grouped_writes_total").await;
    let batches = server.metric("accord_store_write_batches_total").await;
    assert!(grouped >= 4 && (1..=grouped).contains(&batches), "{grouped} writes in {batches} batches");
}
