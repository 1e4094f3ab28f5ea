//! The kit against a real Accord server over HTTPS: admin consent (accepted, declined, not an
//! administrator, a role that cannot grant, forged state, forged tenant), user sign-in with id
//! token validation, refresh with rotation, revocation, and the Graph-compatible calendar API.
//!
//! Needs the server binary: `cargo build -p accord-server` first (scripts/test-all does).

mod support;

use accord_connect::*;
use accord_store::{Change, SqlStore, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Duration;
use support::*;

const APP: &str = "f0000000-0000-4000-8000-000000000001";
const SECRET: &str = "kit-secret-1";
const SIGN_IN_CB: &str = "https://vendor.example/auth/callback";
const CONSENT_CB: &str = "https://vendor.example/onboarding/consent";
const TAILWIND: &str = "e0000000-0000-4000-8000-000000000002";
const LITWARE: &str = "e0000000-0000-4000-8000-000000000003";
const ERIN: &str = "e0000000-0000-4000-8000-0000000000e1";

fn kit(server: &TestServer) -> ConnectClient {
    let mut config = Config::accord(&server.base, APP, SECRET, SIGN_IN_CB, CONSENT_CB)
        .with_extra_root_ca(server.ca_pem.clone())
        .with_scopes(vec![
            ScopePurpose::delegated("User.Read", "Sign you in and show your name"),
            ScopePurpose::delegated("Calendars.Read", "Show your upcoming meetings"),
            ScopePurpose::application("Calendars.Read", "Sync the meetings of everyone in your organisation"),
            ScopePurpose::application("User.Read.All", "List the people whose meetings we sync"),
        ]);
    config.confirm_retry =
        RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(50), max_delay: Duration::from_millis(200) };
    ConnectClient::new(config).unwrap()
}

fn tenant(s: &str) -> TenantHint {
    s.parse().unwrap()
}

/// Opens an admin-consent link as `upn` and presses `decision` on the consent page.
async fn admin_consents(server: &TestServer, link: &url::Url, upn: &str, pw: &str, decision: &str) -> String {
    let browser = server.browser();
    let page = open_and_sign_in(&browser, server, link.as_str(), upn, pw).await.page();
    assert!(page.contains("Accept for your organisation"), "{page}");
    let loc = submit(&browser, server, &page, &[("decision", decision)]).await.redirect();
    assert!(loc.starts_with(CONSENT_CB), "{loc}");
    loc
}

/// Replaces one claim of a JWT, keeping its header and signature.
fn tamper(token: &str, claim: &str, value: serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims[claim] = value;
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}

#[tokio::test]
async fn admin_consent_confirms_the_tenant_then_users_sign_in() {
    let server = TestServer::start_with(&fixture("connect_world.toml"));
    let kit = kit(&server);

    // The onboarding page's link, for the customer instance "customer-tailwind".
    let link = kit
        .admin_consent_link("customer-tailwind", &tenant("tailwind.test"), &ScopeChoice::StaticDefault)
        .await
        .unwrap();
    assert!(link.as_str().starts_with(&server.url("/tailwind.test/v2.0/adminconsent?")), "{link}");
    let loc = admin_consents(&server, &link, "admin@tailwind.test", "admin-password-1", "accept").await;
    let consented = kit.handle_admin_consent_callback(&loc).await.unwrap();
    assert_eq!(consented.customer, "customer-tailwind");
    assert_eq!(consented.tenant_id.to_string(), TAILWIND);
    assert!(consented.roles.iter().any(|r| r == "Calendars.Read"), "{consented:?}");
    assert!(consented.roles.iter().any(|r| r == "User.Read.All"), "{consented:?}");
    assert!(consented.reported_scopes.iter().any(|s| s.ends_with("/Calendars.Read")), "{consented:?}");
    // The redirect cannot be replayed: the state was single use.
    assert!(matches!(kit.handle_admin_consent_callback(&loc).await, Err(ConnectError::StateInvalid)));

    // App-only tokens are cached until near expiry.
    let a = kit.app_token(TAILWIND).await.unwrap();
    let b = kit.app_token(TAILWIND).await.unwrap();
    assert_eq!(a.access_token, b.access_token);
    assert_eq!(a.tenant_id, TAILWIND);

    // Erin signs in without any prompt: the administrator pre-authorized the app.
    let (url, pending) = kit.begin_sign_in(&TenantHint::Organizations, &[]);
    let erin = server.browser();
    let loc = open_and_sign_in(&erin, &server, url.as_str(), "erin@tailwind.test", "erin-password-1").await.redirect();
    assert!(loc.starts_with(SIGN_IN_CB), "{loc}");
    let user = kit.complete_sign_in(&pending, &loc).await.unwrap();
    assert_eq!(user.tenant_id, TAILWIND);
    assert_eq!(user.object_id, ERIN);
    assert_eq!(user.upn.as_deref(), Some("erin@tailwind.test"));
    assert_eq!(user.name.as_deref(), Some("Erin Example"));
    assert_eq!(user.claims.nonce.as_deref(), Some(pending.nonce.as_str()));
    assert!(user.claims.iss.starts_with(&server.base) && user.claims.iss.contains(TAILWIND), "{}", user.claims.iss);
    assert!(user.tokens.refresh_token.is_some());

    // A callback whose state is not the pending sign-in's.
    let (_, other) = kit.begin_sign_in(&TenantHint::Organizations, &[]);
    assert!(matches!(kit.complete_sign_in(&other, &loc).await, Err(ConnectError::StateInvalid)));

    // Id token validation: the genuine token passes; tampered ones do not.
    let id_token = user.tokens.id_token.clone().unwrap();
    kit.validate_id_token(&id_token, Some(&pending.nonce), Some(&tenant(TAILWIND))).await.unwrap();
    for (claim, value) in [
        ("oid", serde_json::json!("e0000000-0000-4000-8000-00000000ffff")),
        ("name", serde_json::json!("Mallory")),
        ("exp", serde_json::json!(4_000_000_000i64)),
    ] {
        let e = kit.validate_id_token(&tamper(&id_token, claim, value), Some(&pending.nonce), None).await.unwrap_err();
        assert!(matches!(&e, ConnectError::IdTokenRejected(why) if why.contains("signature")), "{claim}: {e:?}");
    }
    let e = kit.validate_id_token(&id_token, Some("another-nonce"), None).await.unwrap_err();
    assert!(matches!(&e, ConnectError::IdTokenRejected(why) if why.contains("nonce")), "{e:?}");
    let e = kit.validate_id_token(&id_token, None, Some(&tenant(LITWARE))).await.unwrap_err();
    assert!(matches!(&e, ConnectError::IdTokenRejected(why) if why.contains("tenant")), "{e:?}");
    let unknown_kid = {
        let parts: Vec<&str> = id_token.split('.').collect();
        let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256","kid":"no-such-key"}"#);
        format!("{header}.{}.{}", parts[1], parts[2])
    };
    let e = kit.validate_id_token(&unknown_kid, None, None).await.unwrap_err();
    assert!(matches!(&e, ConnectError::IdTokenRejected(why) if why.contains("no-such-key")), "{e:?}");
    // Another app's audience: a token for this app is checked against the configured client id.
    let mut other_config = kit.config().clone();
    other_config.client_id = "f0000000-0000-4000-8000-0000000000ff".into();
    let other_app = ConnectClient::new(other_config).unwrap();
    let e = other_app.validate_id_token(&id_token, None, None).await.unwrap_err();
    assert!(matches!(&e, ConnectError::IdTokenRejected(why) if why.contains("audience")), "{e:?}");

    // Refresh rotates the refresh token; the stored connection follows.
    let key = user.key();
    let before = kit.connection(&key).await.unwrap().unwrap();
    assert!(before.state.is_connected());
    let fresh = kit.refresh_now(&key).await.unwrap();
    let after = kit.connection(&key).await.unwrap().unwrap();
    assert_ne!(after.tokens.refresh_token, before.tokens.refresh_token, "refresh token rotated");
    assert_eq!(after.tokens.access_token, fresh);
    assert_eq!(kit.access_token_for(&key).await.unwrap(), fresh, "a fresh token is not refreshed again");
    kit.refresh_now(&key).await.unwrap();

    calendar_against_the_real_server(&server, &kit, &key, &a).await;

    // The same redirect again: the code was redeemed already, and the platform revokes what
    // the first redemption produced (a replayed code may be stolen). The next refresh says so.
    let e = kit.complete_sign_in(&pending, &loc).await.unwrap_err();
    assert_eq!(e.code(), Some(54005), "{e:?}");
    let e = kit.refresh_now(&key).await.unwrap_err();
    assert!(
        matches!(e, ConnectError::Revoked { reason: RevocationReason::GrantRevoked, code: Some(50173), .. }),
        "{e:?}"
    );
}

/// The Graph-compatible calendar API of the same server: delegated `/me/events`, paging through
/// the server's own `@odata.nextLink`, and a tenant-wide calendar view with the app-only token.
async fn calendar_against_the_real_server(server: &TestServer, kit: &ConnectClient, erin: &UserKey, app: &AppToken) {
    let token = kit.access_token_for(erin).await.unwrap();
    let calendar = kit.calendar();
    let mine = calendar.list_events(&token, &CalendarUser::Me).await.unwrap();
    let planning = mine.iter().find(|e| e.subject.as_deref() == Some("Tailwind planning")).expect("Erin's meeting");
    assert_eq!(planning.join_url(), Some("https://meet.example/tailwind-planning"));
    assert_eq!(
        planning.start.as_ref().and_then(|s| s.to_utc()),
        Some(time::macros::datetime!(2026-12-01 09:00 UTC)),
        "{planning:?}"
    );
    // One event per page: the server's next links are followed to the end.
    let paged: Vec<Event> =
        calendar.get_all(&token, url::Url::parse(&server.url("/v1.0/me/events?$top=1")).unwrap()).await.unwrap();
    assert_eq!(paged.len(), mine.len());
    assert!(mine.len() >= 2);
    // Tenant-wide with the application permission, by user id.
    let view = calendar
        .calendar_view(
            &app.access_token,
            &CalendarUser::UserId(ERIN.into()),
            time::macros::datetime!(2026-11-30 00:00 UTC),
            time::macros::datetime!(2026-12-05 00:00 UTC),
        )
        .await
        .unwrap();
    let mut subjects: Vec<_> = view.iter().filter_map(|e| e.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Customer call", "Tailwind planning"]);
}

#[tokio::test]
async fn admin_consent_refusals_are_typed() {
    let server = TestServer::start_with(&fixture("connect_world.toml"));
    let kit = kit(&server);
    let tailwind = tenant("tailwind.test");

    // The administrator presses Cancel.
    let link = kit.admin_consent_link("c-declined", &tailwind, &ScopeChoice::StaticDefault).await.unwrap();
    let loc = admin_consents(&server, &link, "admin@tailwind.test", "admin-password-1", "cancel").await;
    let out = kit.process_admin_consent_callback(&loc).await;
    assert_eq!(out.customer.as_deref(), Some("c-declined"));
    let e = out.result.unwrap_err();
    assert!(matches!(e, ConnectError::Declined { code: Some(65004), .. }), "{e:?}");
    assert!(e.human().contains("AADSTS65004"), "{}", e.human());

    // Someone who is not an administrator opens the link.
    let link = kit.admin_consent_link("c-user", &tailwind, &ScopeChoice::StaticDefault).await.unwrap();
    let loc = open_and_sign_in(&server.browser(), &server, link.as_str(), "erin@tailwind.test", "erin-password-1")
        .await
        .redirect();
    let e = kit.handle_admin_consent_callback(&loc).await.unwrap_err();
    assert!(matches!(e, ConnectError::NotAdmin { code: Some(90094), .. }), "{e:?}");
    assert!(e.human().contains("Global Administrator"), "{}", e.human());

    // A Cloud Application Administrator cannot grant Graph application permissions (.default) …
    let link = kit.admin_consent_link("c-appadmin", &tailwind, &ScopeChoice::StaticDefault).await.unwrap();
    let appadmin = server.browser();
    let loc = open_and_sign_in(&appadmin, &server, link.as_str(), "appadmin@tailwind.test", "appadmin-password-1")
        .await
        .redirect();
    let e = kit.handle_admin_consent_callback(&loc).await.unwrap_err();
    assert!(matches!(e, ConnectError::RoleCannotGrant { code: Some(90094), .. }), "{e:?}");

    // … a forged state is refused before anything else …
    let forged = format!("{CONSENT_CB}?admin_consent=True&tenant={TAILWIND}&state=forged");
    assert!(matches!(kit.handle_admin_consent_callback(&forged).await, Err(ConnectError::StateInvalid)));

    // … a genuine state with a forged tenant: no app-only token there, so not confirmed.
    let state = kit.state_store().new_state("c-forged-tenant").await.unwrap();
    let forged = format!("{CONSENT_CB}?admin_consent=True&tenant={LITWARE}&state={state}");
    let e = kit.handle_admin_consent_callback(&forged).await.unwrap_err();
    assert!(matches!(&e, ConnectError::TenantNotConfirmed { tenant, .. } if tenant == LITWARE), "{e:?}");

    // … but the Cloud Application Administrator may grant the delegated permissions by name;
    // the tenant is then confirmed with no application permissions.
    let named = ScopeChoice::Named(
        ["openid", "profile", "offline_access"]
            .iter()
            .map(|s| s.to_string())
            .chain(kit.config().delegated_scopes())
            .collect(),
    );
    let link = kit.admin_consent_link("c-delegated", &tailwind, &named).await.unwrap();
    let page = appadmin.get(link.as_str()).send().await.unwrap().text().await.unwrap();
    let loc = submit(&appadmin, &server, &page, &[("decision", "accept")]).await.redirect();
    let consented = kit.handle_admin_consent_callback(&loc).await.unwrap();
    assert_eq!(consented.tenant_id.to_string(), TAILWIND);
    assert!(consented.roles.is_empty(), "{consented:?}");
    // Without application permissions, a tenant-wide read is a Graph 403 naming what is missing.
    let app = kit.app_token(TAILWIND).await.unwrap();
    let e = kit
        .calendar()
        .calendar_view(
            &app.access_token,
            &CalendarUser::UserId(ERIN.into()),
            time::macros::datetime!(2026-11-30 00:00 UTC),
            time::macros::datetime!(2026-12-05 00:00 UTC),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectError::Graph { status: 403, message, .. } if message.contains("Calendars.Read")),
        "{e:?}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn user_consent_then_revocation_marks_the_connection_revoked() {
    let server = TestServer::start_with(&fixture("connect_world.toml"));
    let kit = kit(&server);
    let litware = tenant("litware.test");

    // Lee cancels the consent prompt.
    let lee = server.browser();
    let (url, pending) = kit.begin_sign_in(&litware, &[]);
    let page = open_and_sign_in(&lee, &server, url.as_str(), "lee@litware.test", "lee-password-1").await.page();
    assert!(page.contains("Permissions requested"), "{page}");
    let loc = submit(&lee, &server, &page, &[("decision", "cancel")]).await.redirect();
    let e = kit.complete_sign_in(&pending, &loc).await.unwrap_err();
    assert!(matches!(e, ConnectError::Declined { code: Some(65004), .. }), "{e:?}");

    // prompt=none with no consent: consent_required comes back instead of a page.
    let (url, pending) =
        kit.begin_sign_in_with(&litware, &[], &SignInOptions { prompt: Some("none".into()), ..Default::default() });
    let loc = lee.get(url.as_str()).send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    let e = kit.complete_sign_in(&pending, &loc).await.unwrap_err();
    assert!(matches!(e, ConnectError::ConsentRequired { .. }), "{e:?}");

    // Lee accepts.
    let (url, pending) = kit.begin_sign_in(&litware, &[]);
    let page = lee.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let loc = submit(&lee, &server, &page, &[("decision", "accept")]).await.redirect();
    let user = kit.complete_sign_in(&pending, &loc).await.unwrap();
    assert_eq!(user.tenant_id, LITWARE);
    let key = user.key();
    kit.refresh_now(&key).await.unwrap();
    let connections = kit.token_store().list(Some(LITWARE)).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert!(connections[0].state.is_connected());

    // Litware withdraws the consent (the admin center's "revoke"): delete the grants.
    let store = SqlStore::connect_sqlite_file(&server.data_dir.join("accord.db")).await.unwrap();
    let tid: accord_core::ids::TenantId = LITWARE.parse().unwrap();
    let grants = store.delegated_grants(tid).await.unwrap();
    assert!(!grants.is_empty());
    let changes: Vec<Change> =
        grants.iter().map(|g| Change::DeleteDelegatedGrant { tenant_id: tid, grant_id: g.id }).collect();
    store.apply(&changes).await.unwrap();
    // This test wrote from another process: the server's directory cache notices within its
    // 1 s generation check (accord-store's sql/cache.rs); a write through the server is seen at once.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // The next refresh is refused for a consent reason: the connection is revoked.
    let e = kit.refresh_now(&key).await.unwrap_err();
    assert!(
        matches!(e, ConnectError::Revoked { reason: RevocationReason::ConsentRevoked, code: Some(65001), .. }),
        "{e:?}"
    );
    assert!(e.human().contains("withdrew its consent"), "{}", e.human());
    let conn = kit.connection(&key).await.unwrap().unwrap();
    assert!(
        matches!(
            conn.state,
            ConnectionState::Revoked { reason: RevocationReason::ConsentRevoked, code: Some(65001), .. }
        ),
        "{:?}",
        conn.state
    );
    assert!(conn.state.human().contains("AADSTS65001"));
    // A revoked connection is not retried: the error comes from the store.
    let e = kit.access_token_for(&key).await.unwrap_err();
    assert!(matches!(e, ConnectError::Revoked { .. }), "{e:?}");
    // Unknown users are not connected.
    let e = kit.access_token_for(&UserKey::new(LITWARE, "nobody")).await.unwrap_err();
    assert!(matches!(e, ConnectError::NotConnected));
}

/// A certificate and its key in PEM, made with the openssl command.
fn make_certificate(dir: &std::path::Path, name: &str) -> (String, String) {
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pem")));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl req");
    (std::fs::read_to_string(key).unwrap(), std::fs::read_to_string(cert).unwrap())
}

/// The vendor's production configuration with a certificate instead of the secret: every grant
/// the kit makes (admin-consent confirmation, sign-in, refresh) authenticates with an assertion
/// signed by the certificate's key, and a certificate the app does not have is refused.
#[tokio::test]
async fn the_kit_authenticates_with_a_certificate() {
    let dir = std::env::temp_dir().join(format!("accord-connect-cert-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, cert) = make_certificate(&dir, "calendar-sync");
    let text = std::fs::read_to_string(fixture("connect_world.toml")).unwrap();
    let anchor = format!("app_id = \"{APP}\"");
    let world = dir.join("world.toml");
    std::fs::write(&world, text.replacen(&anchor, &format!("{anchor}\ncertificates = ['''\n{}''']", cert.trim()), 1))
        .unwrap();
    let server = TestServer::start_with(&world);
    let with_certificate = |key: &str, cert: &str| {
        let mut config = kit(&server).config().clone();
        config = config.with_certificate(CertificateCredential::from_pem(key, cert).unwrap());
        assert!(!format!("{config:?}").contains("kit-secret-1"));
        ConnectClient::new(config).unwrap()
    };
    let kit = with_certificate(&key, &cert);

    let link = kit.admin_consent_link("tailwind", &tenant("tailwind.test"), &ScopeChoice::StaticDefault).await.unwrap();
    let loc = admin_consents(&server, &link, "admin@tailwind.test", "admin-password-1", "accept").await;
    kit.handle_admin_consent_callback(&loc).await.unwrap();
    let app = kit.app_token(TAILWIND).await.unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(app.access_token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["azpacr"], "2", "a certificate, not the secret: {claims}");

    let (url, pending) = kit.begin_sign_in(&TenantHint::Organizations, &[]);
    let loc = open_and_sign_in(&server.browser(), &server, url.as_str(), "erin@tailwind.test", "erin-password-1")
        .await
        .redirect();
    let user = kit.complete_sign_in(&pending, &loc).await.unwrap();
    kit.refresh_now(&user.key()).await.unwrap();

    // A certificate the app does not have: AADSTS700027, not retried as transient.
    let (stranger_key, stranger_cert) = make_certificate(&dir, "stranger");
    let e = with_certificate(&stranger_key, &stranger_cert).app_token(TAILWIND).await.unwrap_err();
    assert_eq!(e.code(), Some(700027), "{e:?}");
}
