//! Smart lockout (issue 12, finding 6): a guesser locks the address they guess from, not the
//! owner's familiar browser nor the owner at another address; many addresses together lock the
//! name for unfamiliar origins only; an unknown name locks exactly like a real one; a real
//! account's lock is written to its row, where the admin center shows it.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use support::*;

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A password grant from `c`: the HTTP status and the AADSTS code (0 when tokens were issued).
async fn ropc(server: &TestServer, c: &reqwest::Client, upn: &str, password: &str) -> (u16, u64) {
    let res = c
        .post(server.url("/organizations/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", NATIVE_APP),
            ("username", upn),
            ("password", password),
            ("scope", "User.Read"),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (status, body["error_codes"][0].as_u64().unwrap_or(0))
}

fn login_url(server: &TestServer) -> String {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", WEB_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", WEB_REDIRECT)
        .append_pair("scope", "openid User.Read")
        .append_pair("prompt", "login")
        .append_pair("state", "s");
    url.to_string()
}

/// A browser sign-in with `prompt=login`: true when it reached the app with a code.
async fn browser_signs_in(server: &TestServer, browser: &reqwest::Client, upn: &str, password: &str) -> bool {
    match sign_in(browser, server, &login_url(server), upn, password).await {
        Ok(location) => query_param(&location, "code").is_some(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_guesser_locks_their_address_not_the_owner() {
    let server = TestServer::start();
    // Bob's own browser signed in once: it is familiar from now on.
    let bobs_browser = server.client_from(loopback(1));
    assert!(browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await);

    // A guesser at another address: the tenth wrong guess locks them out, even with the password.
    // An unknown name answers exactly the same, count for count.
    let guesser = server.client_from(loopback(2));
    for name in ["bob@contoso.test", "ghost@contoso.test"] {
        for _ in 0..9 {
            assert_eq!(ropc(&server, &guesser, name, "wrong").await, (400, 50126), "{name}");
        }
        assert_eq!(ropc(&server, &guesser, name, "wrong").await, (400, 50053), "{name}");
        assert_eq!(ropc(&server, &guesser, name, "bob-password-1").await, (400, 50053), "{name}");
    }

    // Bob is not locked: not at another address, not in his browser.
    let elsewhere = server.client_from(loopback(3));
    assert_eq!(ropc(&server, &elsewhere, "bob@contoso.test", "bob-password-1").await, (200, 0));
    assert!(browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await);
}

#[tokio::test]
async fn many_addresses_lock_the_account_for_unfamiliar_origins_only() {
    let server = TestServer::start();
    let bobs_browser = server.client_from(loopback(1));
    assert!(browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await);

    // Three addresses, ten guesses each: the account locks for every unfamiliar origin.
    for n in 10..13 {
        let guesser = server.client_from(loopback(n));
        for _ in 0..10 {
            let (status, code) = ropc(&server, &guesser, "bob@contoso.test", "wrong").await;
            assert!(status == 400 && [50126, 50053].contains(&code), "{status} {code}");
        }
    }
    let new_place = server.client_from(loopback(20));
    assert_eq!(ropc(&server, &new_place, "bob@contoso.test", "bob-password-1").await, (400, 50053));
    let new_browser = server.client_from(loopback(21));
    assert!(!browser_signs_in(&server, &new_browser, "bob@contoso.test", "bob-password-1").await);
    // The browser Bob used before still signs him in.
    assert!(browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await);

    // The lock is on Bob's row, where every replica and the admin center read it.
    let data_dir = server.stop();
    let store = accord_store::SqlStore::connect_sqlite_file(&data_dir.join("accord.db")).await.unwrap();
    let tenant: accord_core::ids::TenantId = CONTOSO.parse().unwrap();
    let bob = accord_store::Store::user_by_upn(&store, tenant, "bob@contoso.test").await.unwrap().unwrap();
    assert!(bob.locked_until.is_some(), "{bob:?}");
}

#[tokio::test]
async fn a_stolen_device_cookie_is_bound_by_the_same_threshold() {
    let server = TestServer::start();
    let bobs_browser = server.client_from(loopback(1));
    assert!(browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await);
    // Whoever holds the browser's cookie still gets ten guesses per lock period, no more.
    let mut refused = 0;
    for _ in 0..12 {
        if !browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "wrong").await {
            refused += 1;
        }
    }
    assert_eq!(refused, 12);
    assert!(!browser_signs_in(&server, &bobs_browser, "bob@contoso.test", "bob-password-1").await, "locked");
    // Another address is unaffected.
    let elsewhere = server.client_from(loopback(3));
    assert_eq!(ropc(&server, &elsewhere, "bob@contoso.test", "bob-password-1").await, (200, 0));
}

/// A lock lasts its minute (on Accord's clock, advanced in test mode) and then ends; a correct
/// password starts the count over, so nine wrong guesses after it lock nothing.
#[tokio::test]
async fn a_lock_ends_with_its_time_and_a_success_starts_the_count_over() {
    let dir = std::env::temp_dir().join(format!("accord-lockout-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::start_in(dir, &["--test-mode"]);
    let guesser = server.client_from(loopback(4));
    let bob = "bob@contoso.test";
    for _ in 0..9 {
        assert_eq!(ropc(&server, &guesser, bob, "wrong").await, (400, 50126));
    }
    assert_eq!(ropc(&server, &guesser, bob, "bob-password-1").await, (200, 0), "the ninth was not the tenth");
    for _ in 0..9 {
        assert_eq!(ropc(&server, &guesser, bob, "wrong").await, (400, 50126), "the count started over");
    }
    assert_eq!(ropc(&server, &guesser, bob, "wrong").await, (400, 50053), "the tenth in a row locks");
    assert_eq!(ropc(&server, &guesser, bob, "bob-password-1").await, (400, 50053), "locked, even with the password");
    server.advance_clock(serde_json::json!({"seconds": 30})).await;
    assert_eq!(ropc(&server, &guesser, bob, "bob-password-1").await, (400, 50053), "half the lock later: still locked");
    server.advance_clock(serde_json::json!({"seconds": 31})).await;
    assert_eq!(ropc(&server, &guesser, bob, "bob-password-1").await, (200, 0), "the lock has ended");
}

/// `--disable-ropc`: the password grant is refused before any password is looked at (so it
/// counts toward no lock), while browser sign-in still works.
#[tokio::test]
async fn disabling_ropc_refuses_the_password_grant_only() {
    let dir = std::env::temp_dir().join(format!("accord-no-ropc-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::start_in(dir, &["--disable-ropc"]);
    let c = server.client_from(loopback(5));
    for password in ["bob-password-1", "wrong", "wrong", "wrong", "wrong", "wrong", "wrong", "wrong", "wrong", "wrong"]
    {
        assert_eq!(ropc(&server, &c, "bob@contoso.test", password).await, (400, 7000218), "{password}");
    }
    assert!(browser_signs_in(&server, &server.client_from(loopback(5)), "bob@contoso.test", "bob-password-1").await);
}

#[tokio::test]
async fn the_familiar_device_cookie_is_remembered_for_180_days_and_unreadable_by_scripts() {
    let server = TestServer::start();
    let browser = server.client_from(loopback(4));
    let html = browser.get(login_url(&server)).send().await.unwrap().text().await.unwrap();
    let (action, mut fields) = form_fields(&html);
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.push(("login".into(), "bob@contoso.test".into()));
    fields.push(("passwd".into(), "bob-password-1".into()));
    let res = browser.post(server.url(&action)).form(&fields).send().await.unwrap();
    assert!(res.status().is_redirection(), "signed in: {}", res.status());
    let device = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-accord_device="))
        .expect("a sign-in remembers the browser");
    let (value, attributes) = device.split_once(';').unwrap();
    assert!(value.len() > 60, "a sealed note: {value}");
    assert_eq!(attributes, " Path=/; HttpOnly; SameSite=Lax; Max-Age=15552000; Secure", "180 days");
}
