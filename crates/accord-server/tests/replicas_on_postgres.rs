//! Two `accord serve` processes over one PostgreSQL database behave as one server: a code
//! minted by one is redeemed at the other, and refresh tokens rotate across them.
//! Needs ACCORD_TEST_DATABASE_URL (scripts/test-all sets it); skipped otherwise.

mod support;

use std::process::Command;
use support::*;

fn psql(url: &str, sql: &str) {
    let out =
        Command::new("psql").arg(url).arg("-v").arg("ON_ERROR_STOP=1").arg("-c").arg(sql).output().expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
#[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
async fn two_replicas_share_codes_sessions_and_refresh_tokens() {
    let base = postgres_url();
    let schema = format!("replicas_{}", uuid_like().replace('-', "_"));
    psql(&base, &format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes, test only
    let env = [("ACCORD_MASTER_KEY", master)];
    let dir = |n: &str| {
        let d = std::env::temp_dir().join(format!("accord-replica-{n}-{}", uuid_like()));
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let a = TestServer::launch_with_env(dir("a"), &world(), &["--database-url", &url], &env);
    let b = TestServer::launch_with_env(dir("b"), &world(), &["--database-url", &url], &env);

    // Sign in at A.
    let browser = a.client();
    let (verifier, challenge) = pkce_pair();
    let mut authorize = reqwest::Url::parse(&a.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", WEB_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", WEB_REDIRECT)
        .append_pair("scope", "openid offline_access User.Read")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let loc = sign_in(&browser, &a, authorize.as_str(), "alice@contoso.test", "alice-password-1").await.unwrap();
    let code = query_param(&loc, "code").unwrap();

    // Redeem at B.
    let client = a.client_trusting(&[&b]);
    let body: serde_json::Value = client
        .post(b.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
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
        .unwrap()
        .json()
        .await
        .unwrap();
    let rt = body["refresh_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
    let kid_a = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(kid_a["tid"], CONTOSO);

    // Refresh at A, then replaying the first token at B is detected.
    let refresh = |server: &TestServer, token: String| {
        let client = client.clone();
        let url = server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
        async move {
            let res = client
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", WEB_APP),
                    ("client_secret", WEB_SECRET),
                    ("refresh_token", &token),
                ])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, next) = refresh(&a, rt.clone()).await;
    assert_eq!(status, 200, "{next}");
    let (status, body) = refresh(&b, rt).await;
    assert_eq!(
        (status, &body["error_codes"]),
        (400, &serde_json::json!([50173])),
        "reuse detected across replicas: {body}"
    );
    // Reuse revokes the whole family: the token A just issued is dead too, at either replica.
    let rotated = next["refresh_token"].as_str().unwrap().to_string();
    for server in [&a, &b] {
        let (status, body) = refresh(server, rotated.clone()).await;
        assert_eq!((status, &body["error_codes"]), (400, &serde_json::json!([50173])), "the family is gone: {body}");
    }

    // Both publish the same signing key.
    let jwks_a: serde_json::Value =
        client.get(a.url(&format!("/{CONTOSO}/discovery/v2.0/keys"))).send().await.unwrap().json().await.unwrap();
    let jwks_b: serde_json::Value =
        client.get(b.url(&format!("/{CONTOSO}/discovery/v2.0/keys"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks_a, jwks_b);
    drop((a, b));
    psql(&base, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// A revocation on one replica bites on the other at once: the write's notification
/// (PostgreSQL `NOTIFY`) empties the other replica's directory cache for that tenant, though
/// its periodic check runs only once a minute here. World: calendar_sync_world.toml (an
/// administrator's daemon revokes the sync daemon's application permission).
#[tokio::test]
#[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
async fn a_revocation_on_one_replica_bites_on_the_other_at_once() {
    let base = postgres_url();
    const TENANT: &str = "eeeeeeee-5000-4000-8000-000000000001";
    const DAEMON: (&str, &str) = ("ffffffff-5000-4000-8000-000000000003", "sync-daemon-secret-1");
    const ADMIN: (&str, &str) = ("ffffffff-5000-4000-8000-000000000004", "admin-daemon-secret-1");
    let schema = format!("replicas_{}", uuid_like().replace('-', "_"));
    psql(&base, &format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let env = [("ACCORD_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")];
    let dir = |n: &str| {
        let d = std::env::temp_dir().join(format!("accord-replica-{n}-{}", uuid_like()));
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_sync_world.toml");
    let flags = ["--database-url", &url, "--directory-cache", "60000"];
    let a = TestServer::launch_with_env(dir("a"), &world, &flags, &env);
    let b = TestServer::launch_with_env(dir("b"), &world, &flags, &env);
    let client = a.client_trusting(&[&b]);
    let token = |server: &TestServer, (app, secret): (&str, &str)| {
        let client = client.clone();
        let url = server.url(&format!("/{TENANT}/oauth2/v2.0/token"));
        let (app, secret) = (app.to_string(), secret.to_string());
        async move {
            let body: serde_json::Value = client
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", app.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", "https://graph.microsoft.com/.default"),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
        }
    };
    // B has the daemon's permission in its cache.
    assert_eq!(jwt_claims(&token(&b, DAEMON).await)["roles"], serde_json::json!(["Calendars.Read"]));

    // The administrator revokes it at A.
    let admin = token(&a, ADMIN).await;
    let get = |path: String| {
        let (client, admin, url) = (client.clone(), admin.clone(), a.url(&path));
        async move { client.get(url).bearer_auth(admin).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let sps = get(format!("/v1.0/servicePrincipals?$filter=appId eq '{}'", DAEMON.0)).await;
    let daemon_sp = sps["value"][0]["id"].as_str().unwrap().to_string();
    let held = get(format!("/v1.0/servicePrincipals/{daemon_sp}/appRoleAssignments")).await;
    let (resource, assignment) =
        (held["value"][0]["resourceId"].as_str().unwrap(), held["value"][0]["id"].as_str().unwrap());
    let revoked = client
        .delete(a.url(&format!("/v1.0/servicePrincipals/{resource}/appRoleAssignedTo/{assignment}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let at = std::time::Instant::now();

    // B stops issuing it well before its check would run (a minute).
    loop {
        if jwt_claims(&token(&b, DAEMON).await)["roles"].is_null() {
            break;
        }
        assert!(at.elapsed() < std::time::Duration::from_secs(5), "B still honours the revoked permission");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!("revocation seen by the other replica after {} ms", at.elapsed().as_millis());
}
