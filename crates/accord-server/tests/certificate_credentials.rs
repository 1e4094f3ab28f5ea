//! Certificate credentials (issue 13, part 1): an app registered with a certificate in the
//! scenario authenticates at the token endpoint with a client assertion (`private_key_jwt`)
//! shaped the way real clients build it — MSAL Python (RS256, padded `x5t`, float times, no
//! `nbf`), azure-identity's async credential (PS256, `x5t#S256`, every segment padded), msal-node
//! (PS256, unpadded) — and is refused with Entra's codes for everything else.

mod support;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};
use support::*;

/// A certificate and its PKCS#8 key, made with the openssl command.
struct Cert {
    pem: String,
    der: Vec<u8>,
    key: RsaKeyPair,
}

fn make_cert(dir: &Path, name: &str) -> Cert {
    let (key_pem, cert_pem, key_der) =
        (dir.join(format!("{name}.key")), dir.join(format!("{name}.pem")), dir.join(format!("{name}.der")));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key_pem)
        .arg("-out")
        .arg(&cert_pem)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl req");
    let ok = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&key_pem)
        .arg("-out")
        .arg(&key_der)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkcs8");
    let pem = std::fs::read_to_string(&cert_pem).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Cert {
        der: STANDARD.decode(body).unwrap(),
        pem,
        key: RsaKeyPair::from_pkcs8(&std::fs::read(key_der).unwrap()).unwrap(),
    }
}

/// The test world with `cert` registered on the web app.
fn world_with(dir: &Path, cert: &Cert) -> PathBuf {
    let text = std::fs::read_to_string(world()).unwrap();
    let anchor = format!("app_id = \"{WEB_APP}\"");
    assert!(text.contains(&anchor));
    let with = text.replacen(&anchor, &format!("{anchor}\ncertificates = ['''\n{}''']", cert.pem.trim()), 1);
    let path = dir.join("world.toml");
    std::fs::write(&path, with).unwrap();
    path
}

#[derive(Clone, Copy)]
enum Style {
    /// MSAL Python with a PEM key and a SHA-1 thumbprint.
    MsalPython,
    /// azure-identity's async CertificateCredential.
    AzureIdentityAsync,
    /// msal-node with `thumbprintSha256`.
    MsalNode,
}

fn assertion(cert: &Cert, style: Style, claims: Value) -> String {
    let sha1 = sha1::Sha1::digest(&cert.der);
    let sha256 = sha2::Sha256::digest(&cert.der);
    let (header, pad_all) = match style {
        Style::MsalPython => (json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE.encode(sha1)}), false),
        Style::AzureIdentityAsync => (json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE.encode(sha256)}), true),
        Style::MsalNode => (
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(sha256), "x5c": [STANDARD.encode(&cert.der)]}),
            false,
        ),
    };
    let enc = |b: &[u8]| if pad_all { URL_SAFE.encode(b) } else { URL_SAFE_NO_PAD.encode(b) };
    let signing_input = format!("{}.{}", enc(header.to_string().as_bytes()), enc(claims.to_string().as_bytes()));
    let mut sig = vec![0; cert.key.public_modulus_len()];
    let scheme: &dyn aws_lc_rs::signature::RsaEncoding =
        if header["alg"] == "RS256" { &RSA_PKCS1_SHA256 } else { &RSA_PSS_SHA256 };
    cert.key.sign(scheme, &SystemRandom::new(), signing_input.as_bytes(), &mut sig).unwrap();
    format!("{signing_input}.{}", enc(&sig))
}

async fn token(server: &TestServer, c: &reqwest::Client, assertion: &str) -> (u16, Value) {
    let res = c
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

#[tokio::test]
async fn clients_authenticate_with_a_registered_certificate_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("accord-certs-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, stranger) = (make_cert(&dir, "vendor-ci"), make_cert(&dir, "stranger"));
    let server = TestServer::start_with(&world_with(&dir, &cert));
    let c = server.client();
    let aud = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let claims = |extra: Value| {
        let mut base = json!({"aud": aud, "iss": WEB_APP, "sub": WEB_APP, "jti": uuid_like(), "exp": now() + 600});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    };

    // Discovery says so.
    let config: Value = c
        .get(server.url(&format!("/{CONTOSO}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(config["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));

    // Each client's shape is accepted; the token says a certificate authenticated it.
    let python =
        assertion(&cert, Style::MsalPython, claims(json!({"exp": now() as f64 + 600.5, "iat": now() as f64 + 0.25})));
    let azure = assertion(&cert, Style::AzureIdentityAsync, claims(json!({"nbf": now()})));
    let node = assertion(&cert, Style::MsalNode, claims(json!({"nbf": now(), "iat": now()})));
    for (who, a) in [("msal-python", &python), ("azure-identity aio", &azure), ("msal-node", &node)] {
        let (status, body) = token(&server, &c, a).await;
        assert_eq!(status, 200, "{who}: {body}");
        let access = jwt_claims(body["access_token"].as_str().unwrap());
        assert_eq!(access["azpacr"], "2", "{who}: {access}");
        assert_eq!(access["azp"], WEB_APP);
    }
    // MSAL reuses an assertion until it expires: not single-use.
    assert_eq!(token(&server, &c, &python).await.0, 200);

    // Refusals, with Entra's codes, all invalid_client.
    let refused = |code: u64| {
        move |(status, body): (u16, Value)| {
            assert_eq!(body["error_codes"][0], code, "{body}");
            assert_eq!(body["error"], "invalid_client", "{body}");
            assert!(status == 400 || status == 401, "{status}");
        }
    };
    // A certificate the app does not have.
    refused(700027)(token(&server, &c, &assertion(&stranger, Style::MsalNode, claims(json!({})))).await);
    // Another key claiming the registered thumbprint.
    let forged = {
        let signed_by_stranger = assertion(&stranger, Style::MsalPython, claims(json!({})));
        let (_, rest) = signed_by_stranger.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD
            .encode(json!({"alg": "RS256", "x5t": URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&cert.der))}).to_string());
        format!("{header}.{rest}")
    };
    refused(700027)(token(&server, &c, &forged).await);
    // x5c naming another certificate than the thumbprint.
    let mut mixed = claims(json!({}));
    mixed["jti"] = json!("x5c");
    let lying_chain = {
        let sha256 = sha2::Sha256::digest(&cert.der);
        let header = json!({"alg": "PS256", "x5t#S256": URL_SAFE_NO_PAD.encode(sha256), "x5c": [STANDARD.encode(&stranger.der)]});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(mixed.to_string()));
        let mut sig = vec![0; cert.key.public_modulus_len()];
        cert.key.sign(&RSA_PSS_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    refused(700027)(token(&server, &c, &lying_chain).await);
    // Two audiences; another audience; expired; not yet valid; sub ≠ iss.
    refused(5002741)(
        token(
            &server,
            &c,
            &assertion(&cert, Style::MsalNode, claims(json!({"aud": [aud, "https://other.example/token"]}))),
        )
        .await,
    );
    refused(700023)(
        token(
            &server,
            &c,
            &assertion(
                &cert,
                Style::MsalNode,
                claims(json!({"aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"})),
            ),
        )
        .await,
    );
    refused(700024)(token(&server, &c, &assertion(&cert, Style::MsalNode, claims(json!({"exp": now() - 3600})))).await);
    refused(700024)(
        token(
            &server,
            &c,
            &assertion(&cert, Style::MsalNode, claims(json!({"nbf": now() + 3600, "exp": now() + 4000}))),
        )
        .await,
    );
    refused(50048)(
        token(&server, &c, &assertion(&cert, Style::MsalNode, claims(json!({"sub": UNCONSENTED_APP})))).await,
    );
    // Not a JWT at all.
    refused(50027)(token(&server, &c, "not-a-jwt").await);
    // A public client may not present one.
    let res = c
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", NATIVE_APP),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", node.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 700025, "{body}");

    // The admin center lists the certificate with its thumbprint and validity.
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
    let page = browser
        .get(server.url(&format!("/admin/app-registrations/{WEB_APP}/secrets")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let thumbprint: String = sha1::Sha1::digest(&cert.der).iter().map(|b| format!("{b:02X}")).collect();
    assert!(page.contains(&thumbprint), "{page}");
    assert!(
        page.contains("Expires in 1 day<") || page.contains("Expires in 2 days"),
        "a two-day certificate is flagged: {page}"
    );

    // Upload a second certificate in the admin center: the stranger's key now works too.
    let csrf = form_fields(&page).1.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).expect("a CSRF token");
    // As the bare base64 of its DER (a "Base64 .cer" without armour); PEM works as well.
    let bare = STANDARD.encode(&stranger.der);
    let form = [("csrf", csrf.as_str()), ("certificate", bare.as_str()), ("description", "second key")];
    let res = browser
        .post(server.url(&format!("/admin/app-registrations/{WEB_APP}/certificates")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302, "{}", res.text().await.unwrap());
    let fresh_claims = claims(json!({}));
    assert_eq!(token(&server, &c, &assertion(&stranger, Style::MsalNode, fresh_claims)).await.0, 200);
    // A binary .cer (DER) uploaded as a file, as the form's file input sends it.
    let windows = make_cert(&dir, "windows-export");
    let boundary = "----accord-test-boundary";
    let mut body = Vec::new();
    for (name, value) in [("csrf", csrf.as_bytes()), ("description", b"exported from Windows".as_slice())] {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
        body.extend(value);
        body.extend(b"\r\n");
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.cer\"\r\nContent-Type: application/pkix-cert\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(&windows.der);
    body.extend(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"certificate\"\r\n\r\n\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let res = browser
        .post(server.url(&format!("/admin/app-registrations/{WEB_APP}/certificates")))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302, "{}", res.text().await.unwrap());
    assert_eq!(token(&server, &c, &assertion(&windows, Style::MsalNode, claims(json!({})))).await.0, 200);
    // A file that is no certificate is refused, naming the field.
    let junk = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.cer\"\r\n\r\n\x01\x02junk\r\n--{boundary}--\r\n"
    );
    let res = browser
        .post(server.url(&format!("/admin/app-registrations/{WEB_APP}/certificates")))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(junk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("certificate"));
    // Delete it again (with confirmation): refused from then on.
    let page = browser
        .get(server.url(&format!("/admin/app-registrations/{WEB_APP}/secrets")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Templates escape '/' in attributes (`&#x2f;`).
    let page = page.replace("&#x2f;", "/");
    let paths: Vec<String> = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.contains("/certificates/") && h.ends_with("/delete"))
        .map(str::to_string)
        .collect();
    assert_eq!(paths.len(), 3, "three certificates listed: {page}");
    let stranger_thumb: String = sha1::Sha1::digest(&stranger.der).iter().map(|b| format!("{b:02X}")).collect();
    let mut deleted = false;
    for path in paths {
        let confirm = browser.get(server.url(&path)).send().await.unwrap().text().await.unwrap();
        if !confirm.contains(&stranger_thumb) {
            continue;
        }
        let csrf = form_fields(&confirm).1.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).unwrap();
        let res =
            browser.post(server.url(&path)).form(&[("csrf", csrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 302);
        deleted = true;
    }
    assert!(deleted, "the stranger's certificate had a delete page naming its thumbprint");
    refused(700027)(token(&server, &c, &assertion(&stranger, Style::MsalNode, claims(json!({})))).await);
    assert_eq!(token(&server, &c, &python).await.0, 200, "the first certificate still works");

    // The operator's expiry listing: the two-day certificate is flagged, the secret never expires.
    let data = server.stop();
    let data = data.to_string_lossy().to_string();
    let (code, out, err) = accord(&["credentials", "--data-dir", &data, "--tenant", "contoso.test"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.contains("certificate")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.ends_with("EXPIRES in 1 day") || row.ends_with("EXPIRES in 2 days"), "{out}");
    assert!(out.lines().any(|l| l.contains("secret") && l.contains("never expires")), "{out}");
    let (_, calm, _) = accord(&["credentials", "--data-dir", &data, "--tenant", "contoso.test", "--within-days", "1"]);
    assert!(calm.lines().any(|l| l.contains("certificate") && l.ends_with(" ok")), "{calm}");
}

/// Graph shows a registered certificate as `keyCredentials`: its SHA-1 thumbprint as
/// `customKeyIdentifier`, its validity and key id, never the key. The app reads its own
/// registration with a token it got with that very certificate.
#[tokio::test]
async fn graph_shows_registered_certificates_without_their_keys() {
    const DAEMON: &str = "eeeeeeee-1111-4000-8000-000000000003"; // Application.ReadWrite.All
    const TENANT: &str = "eeeeeeee-0000-4000-8000-000000000001";
    let dir = std::env::temp_dir().join(format!("accord-certs-graph-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = make_cert(&dir, "daemon");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/directory_writes_world.toml");
    let text = std::fs::read_to_string(fixture).unwrap();
    let anchor = format!("app_id = \"{DAEMON}\"");
    let world = dir.join("world.toml");
    std::fs::write(
        &world,
        text.replacen(&anchor, &format!("{anchor}\ncertificates = ['''\n{}''']", cert.pem.trim()), 1),
    )
    .unwrap();
    let server = TestServer::start_with(&world);
    let c = server.client();
    let token_url = server.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let claims = json!({"aud": token_url, "iss": DAEMON, "sub": DAEMON, "jti": uuid_like(), "exp": now() + 600});
    let res = c
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", &assertion(&cert, Style::MsalNode, claims)),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap_or_else(|| panic!("{body}"));
    let res =
        c.get(server.url(&format!("/v1.0/applications(appId='{DAEMON}')"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let app: Value = res.json().await.unwrap();
    let keys = app["keyCredentials"].as_array().unwrap_or_else(|| panic!("{app}"));
    assert_eq!(keys.len(), 1, "{app}");
    let k = &keys[0];
    assert_eq!(k["customKeyIdentifier"], STANDARD.encode(sha1::Sha1::digest(&cert.der)), "{k}");
    assert_eq!((k["type"].as_str(), k["usage"].as_str()), (Some("AsymmetricX509Cert"), Some("Verify")));
    assert!(k["key"].is_null(), "the key is never shown: {k}");
    assert!(
        k["keyId"].as_str().is_some() && k["startDateTime"].as_str().is_some() && k["endDateTime"].as_str().is_some()
    );
    let old_key_id = k["keyId"].as_str().unwrap().to_string();

    // Rotation through Graph: a second certificate next to the first.
    let next = make_cert(&dir, "daemon-next");
    let both = json!({"keyCredentials": [
        {"keyId": old_key_id},
        {"type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "next", "key": STANDARD.encode(&next.der)},
    ]});
    let app_url = server.url(&format!("/v1.0/applications(appId='{DAEMON}')"));
    // The app itself may not: it holds privileged permissions, so adding its credential is a
    // Global Administrator's act (issue 12, finding 2).
    let res = c.patch(&app_url).bearer_auth(token).json(&both).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let admin = {
        let res = c
            .post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "eeeeeeee-1111-4000-8000-000000000001"),
                ("username", "admin@contoso.test"),
                ("password", "admin-password-1"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
    };
    let res = c.patch(&app_url).bearer_auth(&admin).json(&both).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 204, "{}", res.text().await.unwrap());
    let authenticates = |cert: &Cert| {
        let claims = json!({"aud": token_url, "iss": DAEMON, "sub": DAEMON, "jti": uuid_like(), "exp": now() + 600});
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", DAEMON.to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
            ("client_assertion", assertion(cert, Style::MsalPython, claims)),
        ];
        let (c, url) = (c.clone(), token_url.clone());
        async move { c.post(&url).form(&form).send().await.unwrap().status().as_u16() }
    };
    assert_eq!((authenticates(&cert).await, authenticates(&next).await), (200, 200), "both valid during the overlap");
    // The old one retired: only the new one remains.
    let only_next = json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&next.der)}]});
    assert_eq!(c.patch(&app_url).bearer_auth(&admin).json(&only_next).send().await.unwrap().status().as_u16(), 204);
    assert_eq!((authenticates(&cert).await, authenticates(&next).await), (401, 200));
    // The app rolls its own key with Graph's addKey / removeKey, proving possession of its
    // current certificate (no permission needed, so none of the privileged-app rule either).
    let object_id = app["id"].as_str().unwrap().to_string();
    let proof = |cert: &Cert, iss: &str, lifetime: i64| {
        let claims =
            json!({"aud": "00000002-0000-0000-c000-000000000000", "iss": iss, "nbf": now(), "exp": now() + lifetime});
        assertion(cert, Style::MsalNode, claims)
    };
    let third = make_cert(&dir, "daemon-third");
    let add = |p: String| json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&third.der)}, "passwordCredential": null, "proof": p});
    let add_url = server.url(&format!("/v1.0/applications/{object_id}/addKey"));
    for (why, bad_proof) in [
        ("signed by a certificate the app no longer has", proof(&cert, &object_id, 600)),
        ("naming the appId, not the object id", proof(&next, DAEMON, 600)),
        ("valid for longer than 10 minutes", proof(&next, &object_id, 3600)),
    ] {
        let res = c.post(&add_url).bearer_auth(token).json(&add(bad_proof)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400, "{why}");
    }
    let res = c.post(&add_url).bearer_auth(token).json(&add(proof(&next, &object_id, 600))).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let added: Value = res.json().await.unwrap();
    assert!(added["key"].is_null() && added["customKeyIdentifier"].is_string(), "{added}");
    assert_eq!(authenticates(&third).await, 200);
    let remove = json!({"keyId": added["keyId"], "proof": proof(&next, &object_id, 600)});
    let res = c
        .post(server.url(&format!("/v1.0/applications(appId='{DAEMON}')/removeKey")))
        .bearer_auth(token)
        .json(&remove)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(authenticates(&third).await, 401);

    // Not a certificate: refused with the property named.
    let junk =
        json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydA=="}]});
    let res = c.patch(&app_url).bearer_auth(&admin).json(&junk).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("keyCredentials"));
}

/// Test mode's replication lag covers certificates: one registered while a lag rule is in
/// force is refused (AADSTS700027) until the clock passes the lag, while the one registered
/// before keeps working — a reload of the world does not make it new.
#[tokio::test]
async fn a_certificate_added_within_replication_lag_is_refused_until_it_arrives() {
    let dir = std::env::temp_dir().join(format!("accord-certs-lag-{}", uuid_like()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let (old, new) = (make_cert(&dir, "registered-before"), make_cert(&dir, "registered-within"));
    let world = world_with(&dir, &old);
    let server = TestServer::launch_with_env(dir.join("data"), &world, &["--test-mode"], &[]);
    let c = server.client();
    let aud = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let signed = |cert: &Cert| {
        assertion(
            cert,
            Style::MsalNode,
            json!({"aud": aud, "iss": WEB_APP, "sub": WEB_APP, "jti": uuid_like(), "exp": now() + 600}),
        )
    };
    let control =
        |path: &str, body: reqwest::Body| c.post(server.url(&format!("/_accord/test{path}"))).body(body).send();
    assert_eq!(token(&server, &c, &signed(&old)).await.0, 200);

    let rule = control(
        "/faults",
        json!({"match": {"app": WEB_APP}, "action": {"replicationLagSeconds": 30}}).to_string().into(),
    )
    .await
    .unwrap();
    assert_eq!(rule.status(), 201);
    // Register the second certificate: the world again, with both.
    let text = std::fs::read_to_string(&world).unwrap();
    let both = text.replacen("''']", &format!("''', '''\n{}''']", new.pem.trim()), 1);
    let loaded = control("/scenario", both.into()).await.unwrap();
    assert_eq!(loaded.status(), 200, "{}", loaded.text().await.unwrap());

    let (s, body) = token(&server, &c, &signed(&new)).await;
    assert_eq!((s, body["error_codes"][0].as_u64()), (401, Some(700027)), "not replicated yet: {body}");
    assert_eq!(token(&server, &c, &signed(&old)).await.0, 200, "the first one was registered before the lag");
    let advanced = control("/clock/advance", json!({"seconds": 31}).to_string().into()).await.unwrap();
    assert_eq!(advanced.status(), 200);
    assert_eq!(token(&server, &c, &signed(&new)).await.0, 200, "replicated");
}
