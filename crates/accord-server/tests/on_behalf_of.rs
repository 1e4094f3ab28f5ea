//! On-behalf-of (issue 14, part 2): the Notes API exchanges the token its user's client sent it
//! for a Graph token as that user — only where the API holds consent, only for users it may
//! serve, only with a user's token issued for the API itself.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::*;

const DESKTOP: &str = "0b0b0b0b-1111-4000-8000-000000000001";
const DESKTOP_REDIRECT: &str = "http://localhost:5001/cb";
const API: &str = "0b0b0b0b-1111-4000-8000-000000000002";
const API_SECRET: &str = "notes-api-secret-1";
const SYNC: &str = "0b0b0b0b-1111-4000-8000-000000000003";
const TENANT: &str = "contoso.test";

fn obo_world() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/obo_world.toml")
}

async fn post_token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let res =
        server.client().post(server.url(&format!("/{TENANT}/oauth2/v2.0/token"))).form(form).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The desktop client signs `upn` in for `scope` (code + PKCE) and returns the access token.
async fn user_token(server: &TestServer, upn: &str, password: &str, scope: &str) -> String {
    let (verifier, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&server.url(&format!("/{TENANT}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", DESKTOP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", DESKTOP_REDIRECT)
        .append_pair("scope", scope)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let loc = sign_in(&server.client(), server, url.as_str(), upn, password).await.expect("signed in");
    let code = query_param(&loc, "code").unwrap_or_else(|| panic!("no code: {loc}"));
    let (status, body) = post_token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DESKTOP),
            ("code", &code),
            ("redirect_uri", DESKTOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn obo(server: &TestServer, assertion: &str, scope: &str) -> (u16, Value) {
    post_token(
        server,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", API),
            ("client_secret", API_SECRET),
            ("assertion", assertion),
            ("scope", scope),
            ("requested_token_use", "on_behalf_of"),
        ],
    )
    .await
}

fn code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test]
async fn the_api_calls_graph_as_its_user_where_it_holds_consent() {
    let server = TestServer::start_with(&obo_world());
    let alice = user_token(&server, "alice@contoso.test", "alice-password-1", "api://notes-api/Notes.Read").await;
    assert_eq!(jwt_claims(&alice)["aud"], API, "a v2 token names the API by its client id");

    // Graph as Alice, with a refresh token when offline_access is asked for.
    let (status, body) = obo(&server, &alice, "https://graph.microsoft.com/User.Read offline_access").await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["preferred_username"], "alice@contoso.test");
    assert_eq!(claims["azp"], API, "the API is the client now");
    let scp = claims["scp"].as_str().unwrap();
    assert!(scp.split(' ').any(|s| s == "User.Read") && !scp.contains("Calendars"), "{scp}");
    assert!(body["refresh_token"].is_string(), "{body}");
    let me = server
        .client()
        .get(server.url("/v1.0/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.json::<Value>().await.unwrap()["userPrincipalName"], "alice@contoso.test");
    // Without offline_access: no refresh token.
    let (_, body) = obo(&server, &alice, "https://graph.microsoft.com/User.Read").await;
    assert!(body.get("refresh_token").is_none(), "{body}");

    // Downstream consent the API does not hold: 65001 consent_required, for the API to pass back.
    let (status, body) = obo(&server, &alice, "https://graph.microsoft.com/Calendars.Read").await;
    assert_eq!((status, code(&body)), (400, 65001), "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["suberror"], "consent_required");

    // Bob may use the desktop client, but the API is for assigned users only: 50105.
    let bob = user_token(&server, "bob@contoso.test", "bob-password-1", "api://notes-api/Notes.Read").await;
    let (_, body) = obo(&server, &bob, "https://graph.microsoft.com/User.Read").await;
    assert_eq!(code(&body), 50105, "{body}");
}

#[tokio::test]
async fn only_a_users_token_for_the_api_itself_is_an_assertion() {
    let server = TestServer::start_with(&obo_world());

    // A token for Graph (not for the API): 500131.
    let graph = user_token(&server, "alice@contoso.test", "alice-password-1", "User.Read").await;
    let (status, body) = obo(&server, &graph, "https://graph.microsoft.com/User.Read").await;
    assert_eq!((status, code(&body)), (400, 500131), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(API), "{body}");

    // An app-only token for the API (a daemon's): refused, OBO acts for users only.
    let (status, body) = post_token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SYNC),
            ("client_secret", "notes-sync-secret-1"),
            ("scope", "api://notes-api/.default"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let app_only = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&app_only)["aud"], API);
    let (_, body) = obo(&server, &app_only, "https://graph.microsoft.com/User.Read").await;
    assert_eq!(code(&body), 50013, "{body}");

    // A forged assertion (another claim, same signature): 50013.
    let alice = user_token(&server, "alice@contoso.test", "alice-password-1", "api://notes-api/Notes.Read").await;
    let parts: Vec<&str> = alice.split('.').collect();
    let mut claims = jwt_claims(&alice);
    claims["preferred_username"] = "admin@contoso.test".into();
    use base64::Engine;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let (_, body) = obo(&server, &forged, "https://graph.microsoft.com/User.Read").await;
    assert_eq!(code(&body), 50013, "{body}");

    // The API must authenticate (a public client cannot do OBO), and say what it is doing.
    let (status, body) = post_token(
        &server,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", DESKTOP),
            ("assertion", &alice),
            ("scope", "https://graph.microsoft.com/User.Read"),
            ("requested_token_use", "on_behalf_of"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post_token(
        &server,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", API),
            ("client_secret", API_SECRET),
            ("assertion", &alice),
            ("scope", "https://graph.microsoft.com/User.Read"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("requested_token_use"), "{body}");
}

/// The Notes API pre-authorizes the desktop client for Notes.Read (no grant exists for it) and
/// takes v1 access tokens: the desktop still gets a token for it without any consent, shaped as
/// v1 (App ID URI audience, appid, upn, the v1 issuer), and the API can use it on-behalf-of.
#[tokio::test]
async fn a_pre_authorized_client_and_v1_tokens() {
    let text = std::fs::read_to_string(obo_world()).unwrap();
    let desktop_grant = format!(
        "[[tenant.grant]]\napp = \"{DESKTOP}\"\nresource = \"api://notes-api\"\ndelegated = [\"Notes.Read\"]\nfor = \"all\"\n"
    );
    assert!(text.contains(&desktop_grant));
    let api_anchor = "identifier_uri = \"api://notes-api\"\n";
    let settings = format!(
        "{api_anchor}access_token_version = 1\n\n  [[tenant.app.pre_authorized]]\n  app = \"{DESKTOP}\"\n  scopes = [\"Notes.Read\"]\n"
    );
    let world = text.replacen(&desktop_grant, "", 1).replacen(api_anchor, &settings, 1);
    let dir = std::env::temp_dir().join(format!("accord-preauth-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("world.toml"), world).unwrap();
    let server = TestServer::start_with(&dir.join("world.toml"));

    let token = user_token(&server, "alice@contoso.test", "alice-password-1", "api://notes-api/Notes.Read").await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], "api://notes-api", "v1: the App ID URI");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["appid"], DESKTOP);
    assert!(claims.get("azp").is_none() && claims.get("preferred_username").is_none(), "{claims}");
    assert_eq!(claims["upn"], "alice@contoso.test");
    assert_eq!(claims["scp"], "Notes.Read");
    assert!(claims["iss"].as_str().unwrap().ends_with(&format!("/{}/", claims["tid"].as_str().unwrap())), "{claims}");

    // The API accepts it as an on-behalf-of assertion.
    let (status, body) = obo(&server, &token, "https://graph.microsoft.com/User.Read").await;
    assert_eq!(status, 200, "{body}");
}

/// Combined consent (knownClientApplications): the Notes API lists the desktop client as a known
/// client; an administrator's consent to the desktop client also consents to the API — one page
/// listing both, both service principals' grants written — so the API can call Graph for its
/// users at once.
#[tokio::test]
async fn consenting_to_a_known_client_consents_to_its_api() {
    let text = std::fs::read_to_string(obo_world()).unwrap();
    // No grant at all; an administrator; the API knows its client.
    let mut world = String::new();
    for block in text.split("\n[[").enumerate().map(|(i, b)| if i == 0 { b.to_string() } else { format!("[[{b}") }) {
        if !block.starts_with("[[tenant.grant]]") {
            world.push_str(&block);
            world.push('\n');
        }
    }
    let world = world
        .replacen(
            "[[tenant.user]]",
            "[[tenant.user]]\nupn = \"admin@contoso.test\"\ndisplay_name = \"Admin\"\npassword = \"admin-password-1\"\nroles = [\"Global Administrator\"]\n\n[[tenant.user]]",
            1,
        )
        .replacen(
            "identifier_uri = \"api://notes-api\"\n",
            &format!("identifier_uri = \"api://notes-api\"\nknown_client_applications = [\"{DESKTOP}\"]\n"),
            1,
        );
    let dir = std::env::temp_dir().join(format!("accord-known-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("world.toml"), &world).unwrap();
    let server = TestServer::start_with(&dir.join("world.toml"));

    let mut url = reqwest::Url::parse(&server.url(&format!("/{TENANT}/adminconsent"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", DESKTOP)
        .append_pair("redirect_uri", DESKTOP_REDIRECT)
        .append_pair("state", "ac");
    let admin = server.client();
    let (_, page) = sign_in(&admin, &server, url.as_str(), "admin@contoso.test", "admin-password-1").await.unwrap_err();
    assert!(page.contains("Also for Notes API"), "one page lists the API's permissions too: {page}");
    assert!(page.contains("Read your calendars") || page.contains("Calendars.Read"), "{page}");
    let res = submit(&admin, &server, &page, &[("decision", "accept")]).await;
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(DESKTOP_REDIRECT) && loc.contains("admin_consent=True"), "{loc}");

    // Alice signs in to the desktop app (consented) and its API calls Graph for her (consented
    // along with it), Calendars.Read included (the API's static list).
    let alice = user_token(&server, "alice@contoso.test", "alice-password-1", "api://notes-api/Notes.Read").await;
    let (status, body) = obo(&server, &alice, "https://graph.microsoft.com/Calendars.Read").await;
    assert_eq!(status, 200, "{body}");
}

/// The same for a user consenting for herself: the consent page lists the API's permissions
/// under the desktop client's, and accepting grants both for her alone.
#[tokio::test]
async fn a_users_consent_to_a_known_client_covers_its_api_for_her() {
    let text = std::fs::read_to_string(obo_world()).unwrap();
    let mut world = String::new();
    for block in text.split("\n[[").enumerate().map(|(i, b)| if i == 0 { b.to_string() } else { format!("[[{b}") }) {
        if !block.starts_with("[[tenant.grant]]") {
            world.push_str(&block);
            world.push('\n');
        }
    }
    // Users may consent (and to the API too: assignment required would keep that for admins).
    let world = world.replacen("assignment_required = true", "assignment_required = false", 1);
    let world = world.replacen("user_consent = \"none\"", "user_consent = \"all\"", 1).replacen(
        "identifier_uri = \"api://notes-api\"\n",
        &format!("identifier_uri = \"api://notes-api\"\nknown_client_applications = [\"{DESKTOP}\"]\n"),
        1,
    );
    let dir = std::env::temp_dir().join(format!("accord-known-user-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("world.toml"), &world).unwrap();
    let server = TestServer::start_with(&dir.join("world.toml"));

    let (verifier, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&server.url(&format!("/{TENANT}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", DESKTOP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", DESKTOP_REDIRECT)
        .append_pair("scope", "api://notes-api/.default")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let browser = server.client();
    let (_, page) =
        sign_in(&browser, &server, url.as_str(), "alice@contoso.test", "alice-password-1").await.unwrap_err();
    assert!(page.contains("Also for Notes API"), "{page}");
    let res = submit(&browser, &server, &page, &[("decision", "accept")]).await;
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
    let (status, body) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DESKTOP),
            ("code", &code),
            ("redirect_uri", DESKTOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        obo(&server, body["access_token"].as_str().unwrap(), "https://graph.microsoft.com/Calendars.Read").await;
    assert_eq!(status, 200, "her consent covered the API's Graph permissions: {body}");
}
