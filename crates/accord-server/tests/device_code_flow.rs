//! The device code flow (issue 14, part 1) through the consent engine: a device asks for codes,
//! a person types the user code on the verification page, signs in and meets the same consent
//! pages as any sign-in, and the device's poll gets tokens once — or Entra's error: pending,
//! declined, approval required (user consent off, the workflow on), not assigned (50105), replay.

mod support;

use serde_json::Value;
use support::*;

const VENDOR_APP: &str = "dddddddd-0000-4000-8000-000000000001"; // Meeting Insights, confidential
const VENDOR_SECRET: &str = "vendor-secret-1";
const SCOPE: &str = "openid profile offline_access User.Read Calendars.Read";

struct Device {
    device_code: String,
    user_code: String,
}

async fn start(server: &TestServer, tenant: &str) -> (Device, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/devicecode")))
        .form(&[("client_id", VENDOR_APP), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let device = Device {
        device_code: body["device_code"].as_str().unwrap().into(),
        user_code: body["user_code"].as_str().unwrap().into(),
    };
    (device, body)
}

async fn poll(server: &TestServer, tenant: &str, device: &Device) -> (u16, Value) {
    poll_as(server, tenant, device, "urn:ietf:params:oauth:grant-type:device_code").await
}

/// `grant_type` as MSAL Python sends it (the URN) or as msal-node does (`device_code`).
async fn poll_as(server: &TestServer, tenant: &str, device: &Device, grant_type: &str) -> (u16, Value) {
    let res = server
        .client()
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", grant_type),
            ("client_id", VENDOR_APP),
            ("client_secret", VENDOR_SECRET),
            ("device_code", device.device_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn error(body: &Value) -> (&str, u64) {
    (body["error"].as_str().unwrap_or_default(), body["error_codes"][0].as_u64().unwrap_or_default())
}

/// A person on the verification page: types the code (as people do: lower case, a dash) and
/// returns the confirmation page.
async fn enter_code(server: &TestServer, browser: &reqwest::Client, typed: &str) -> (u16, String) {
    let page = browser.get(server.url("/devicelogin")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Enter code"), "{page}");
    let res = submit(browser, server, &page, &[("otc", typed)]).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Enters the code, continues, signs in as `upn`; returns the page the flow ends on.
async fn approve_as(server: &TestServer, device: &Device, upn: &str, password: &str) -> (reqwest::Client, String) {
    let browser = server.client();
    let typed = format!("{}-{}", &device.user_code[..4], &device.user_code[4..]).to_lowercase();
    let (status, confirm) = enter_code(server, &browser, &typed).await;
    assert_eq!(status, 200, "{confirm}");
    assert!(confirm.contains("Are you trying to sign in to Meeting Insights?"), "{confirm}");
    let res = submit(&browser, server, &confirm, &[("decision", "continue")]).await;
    let sign_in_page = res.text().await.unwrap();
    assert!(sign_in_page.contains("name=\"passwd\""), "{sign_in_page}");
    let res = submit(&browser, server, &sign_in_page, &[("login", upn), ("passwd", password)]).await;
    let page = res.text().await.unwrap();
    (browser, page)
}

#[tokio::test]
async fn a_device_signs_in_once_through_the_consent_pages() {
    let server = TestServer::start_with(&consent_world());

    // Discovery names the endpoint (MSAL Python requires it).
    let config: Value = server
        .client()
        .get(server.url("/contoso.test/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = config["device_authorization_endpoint"].as_str().unwrap();
    assert!(endpoint.ends_with("/oauth2/v2.0/devicecode"), "{endpoint}");
    // msal-node derives it from the token endpoint by replacing "/token" once.
    assert_eq!(config["token_endpoint"].as_str().unwrap().replacen("/token", "/devicecode", 1), endpoint);

    let (device, body) = start(&server, "organizations").await;
    assert_eq!(body["verification_uri"], server.url("/devicelogin"));
    assert_eq!((body["expires_in"].as_i64(), body["interval"].as_i64()), (Some(900), Some(5)));
    assert_eq!(device.user_code.len(), 9);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&server.url("/devicelogin")) && message.contains(&device.user_code), "{message}");
    assert!(body.get("verification_uri_complete").is_none(), "Entra sends none");

    // Nobody has answered: keep polling (never slow_down, which msal-node would die on).
    let (status, body) = poll(&server, "organizations", &device).await;
    assert_eq!((status, error(&body)), (400, ("authorization_pending", 70016)), "{body}");
    let (status, body) = poll_as(&server, "organizations", &device, "device_code").await;
    assert_eq!((status, error(&body).0), (400, "authorization_pending"), "msal-node's short grant name: {body}");

    // A wrong code reads as a wrong code.
    let (status, page) = enter_code(&server, &server.client(), "ABCD-EFGHJ").await;
    assert_eq!(status, 400);
    assert!(page.contains("Check the code and try again"), "{page}");

    // Alice (Contoso lets users consent) approves on the consent page.
    let (browser, page) = approve_as(&server, &device, "alice@contoso.test", "alice-password-1").await;
    assert!(page.contains("Meeting Insights") && page.contains("Accept"), "the consent prompt: {page}");
    let res = submit(&browser, &server, &page, &[("decision", "accept")]).await;
    let done = res.text().await.unwrap();
    assert!(done.contains("You have signed in to the Meeting Insights application on your device"), "{done}");

    // The device gets Alice's tokens, once.
    let (status, tokens) = poll(&server, "organizations", &device).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["preferred_username"], "alice@contoso.test");
    assert!(claims["scp"].as_str().unwrap().contains("Calendars.Read"), "{claims}");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string(), "{tokens}");
    let (status, body) = poll(&server, "organizations", &device).await;
    assert_eq!((status, error(&body).1), (400, 90120), "{body}");
    // The replay revoked what the first redemption produced.
    let res = server
        .client()
        .post(server.url("/organizations/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", VENDOR_APP),
            ("client_secret", VENDOR_SECRET),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(error(&body).1, 50173, "{body}");

    // An unknown device code, and the code entered again once used.
    let stranger = Device { device_code: "not-a-device-code".into(), user_code: String::new() };
    let (_, body) = poll(&server, "organizations", &stranger).await;
    assert_eq!(error(&body), ("bad_verification_code", 70018), "{body}");
    let (status, _) = enter_code(&server, &server.client(), &device.user_code).await;
    assert_eq!(status, 400, "an answered code is not offered again");
}

#[tokio::test]
async fn declined_refused_and_waiting_on_approval_reach_the_device() {
    let server = TestServer::start_with(&consent_world());

    // Cancel on the confirmation page: declined.
    let (device, _) = start(&server, "organizations").await;
    let browser = server.client();
    let (_, confirm) = enter_code(&server, &browser, &device.user_code).await;
    let res = submit(&browser, &server, &confirm, &[("decision", "cancel")]).await;
    assert!(res.text().await.unwrap().contains("Sign-in cancelled"));
    let (_, body) = poll(&server, "organizations", &device).await;
    assert_eq!(error(&body).0, "authorization_declined", "{body}");

    // Cancel on the consent prompt: declined as well.
    let (device, _) = start(&server, "organizations").await;
    let (browser, page) = approve_as(&server, &device, "bob@contoso.test", "bob-password-1").await;
    let res = submit(&browser, &server, &page, &[("decision", "cancel")]).await;
    assert!(res.text().await.unwrap().contains("Sign-in cancelled"));
    let (_, body) = poll(&server, "organizations", &device).await;
    assert_eq!(error(&body).0, "authorization_declined", "{body}");

    // Northwind requires assignment and Oscar has none: 50105 on the page and at the device.
    let (device, _) = start(&server, "northwind.test").await;
    let (_, page) = approve_as(&server, &device, "oscar@northwind.test", "oscar-password-1").await;
    assert!(page.contains("50105"), "{page}");
    let (_, body) = poll(&server, "northwind.test", &device).await;
    assert_eq!(error(&body).1, 50105, "{body}");
    // Nina is assigned through her group: tokens.
    let (device, _) = start(&server, "northwind.test").await;
    let (_, page) = approve_as(&server, &device, "nina@northwind.test", "nina-password-1").await;
    assert!(page.contains("You have signed in"), "{page}");
    assert_eq!(poll(&server, "northwind.test", &device).await.0, 200);

    // Fabrikam: no user consent, the workflow on. Frank asks for approval; the device is told.
    let (device, _) = start(&server, "fabrikam.test").await;
    let (browser, page) = approve_as(&server, &device, "frank@fabrikam.test", "frank-password-1").await;
    assert!(page.contains("Approval required"), "{page}");
    let res = submit(&browser, &server, &page, &[("reason", "I run the sync agent")]).await;
    let sent = res.text().await.unwrap();
    assert!(sent.contains("Request sent") && sent.contains("Your device has been told"), "{sent}");
    let (_, body) = poll(&server, "fabrikam.test", &device).await;
    assert_eq!(error(&body).1, 90094, "{body}");

    // A device code of one tenant cannot be redeemed at another tenant's authority.
    let (device, _) = start(&server, "organizations").await;
    let (browser, page) = approve_as(&server, &device, "alice@contoso.test", "alice-password-1").await;
    if page.contains("Accept") {
        submit(&browser, &server, &page, &[("decision", "accept")]).await;
    }
    let (status, body) = poll(&server, "northwind.test", &device).await;
    assert_eq!(status, 400, "{body}");
}
