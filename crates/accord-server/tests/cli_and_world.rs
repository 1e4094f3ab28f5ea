//! The CLI (`scenario check`, `keys rotate`) and loading worlds: idempotent, whole or nothing.

mod support;

use accord_core::ids::{TenantId, UserId};
use accord_server::crypto::Keyring;
use accord_server::service::scenario_loader;
use accord_store::{SqlStore, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use support::*;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("accord-{name}-{}", uuid_like()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn scenario_check_names_file_line_and_key() {
    let (code, out, _) = accord(&["scenario", "check", world().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("valid (2 tenants"), "{out}");

    let dir = temp_dir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\"]\n\n[[tenant.user]]\nupn = \"bob\"\ndisplay_name = \"Bob\"\npassword = \"pw\"\n").unwrap();
    let (code, _, err) = accord(&["scenario", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml:6: tenant.user.upn"), "{err}");

    std::fs::write(&bad, "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\"]\ncolour = \"blue\"\n").unwrap();
    let (code, _, err) = accord(&["scenario", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml:4") && err.contains("colour"), "{err}");

    let (code, _, err) = accord(&["scenario", "check", "/nonexistent/world.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/world.toml"), "{err}");
}

/// `accord scenario check <(…)` or `/dev/stdin`: a file that cannot be read a second time is
/// kept as text (a regular file's users and groups are read again from the file).
#[cfg(unix)]
#[test]
fn scenario_check_reads_a_pipe() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let text = std::fs::read(world()).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("[[tenant.user]]"), "entries, read in batches");
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["scenario", "check", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    let (_, file_out, _) = accord(&["scenario", "check", world().to_str().unwrap()]);
    let counts = |s: &str| s.split_once(": valid").map(|(_, c)| c.to_string());
    assert_eq!(counts(&stdout), counts(&file_out), "the same tenants, users and apps");
}

#[test]
fn every_subcommand_has_help() {
    for args in [&["--help"][..], &["serve", "--help"], &["scenario", "check", "--help"], &["keys", "rotate", "--help"]]
    {
        let (code, out, _) = accord(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
}

async fn app_token(server: &TestServer) -> String {
    let body: serde_json::Value = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().expect("token").to_string()
}

fn kid_of(token: &str) -> String {
    let header: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

/// Checks an RS256 signature against the JWKS the server publishes.
fn verifies_with(jwks: &serde_json::Value, token: &str) -> bool {
    use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
    let kid = kid_of(token);
    let Some(key) = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()) else { return false };
    let n = B64URL.decode(key["n"].as_str().unwrap()).unwrap();
    let e = B64URL.decode(key["e"].as_str().unwrap()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = B64URL.decode(sig).unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }.verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig).is_ok()
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_verifiable_and_reloading_the_world_is_idempotent() {
    let server = TestServer::start();
    let old_token = app_token(&server).await;
    let data_dir = server.stop();

    let (code, out, err) = accord(&["keys", "rotate", "--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("new signing key"), "{out}");

    // Same data dir, same scenario loaded again.
    let server = TestServer::start_in(data_dir.clone(), &[]);
    let jwks: serde_json::Value = server
        .client()
        .get(server.url(&format!("/{CONTOSO}/discovery/v2.0/keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "new and previous key published");
    let new_token = app_token(&server).await;
    assert_ne!(kid_of(&old_token), kid_of(&new_token));
    assert!(verifies_with(&jwks, &old_token), "a token signed before rotation still verifies");
    assert!(verifies_with(&jwks, &new_token));
    let mut forged = new_token.clone();
    forged.push('A');
    assert!(!verifies_with(&jwks, &forged));
    let data_dir = server.stop();

    // Loading the world twice did not duplicate anything.
    let store = SqlStore::connect_sqlite_file(&data_dir.join("accord.db")).await.unwrap();
    let contoso: TenantId = CONTOSO.parse().unwrap();
    assert_eq!(store.users(contoso).await.unwrap().len(), 3);
    assert_eq!(store.groups(contoso).await.unwrap().len(), 2);
    assert_eq!(store.delegated_grants(contoso).await.unwrap().len(), 2);
    let sps = store.service_principals(contoso).await.unwrap();
    assert_eq!(sps.len(), 3, "Graph, the web app and the native app: {sps:?}");
    let web_sp = sps.iter().find(|s| s.app_id.to_string() == WEB_APP).unwrap();
    assert_eq!(store.app_role_assignments_of(contoso, web_sp.id.into()).await.unwrap().len(), 2);
    let alice: UserId = "aaaaaaaa-0000-4000-8000-0000000000a1".parse().unwrap();
    assert_eq!(store.events_of(contoso, alice, None, None).await.unwrap().len(), 1);

    // A third rotation retires the oldest key.
    let (code, _, err) = accord(&["keys", "rotate", "--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let server = TestServer::start_in(data_dir, &[]);
    let jwks: serde_json::Value = server
        .client()
        .get(server.url(&format!("/{CONTOSO}/discovery/v2.0/keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(!verifies_with(&jwks, &old_token), "the key two rotations back is retired");
}

#[test]
fn scenario_check_takes_variables_and_relative_times() {
    let dir = temp_dir("vars");
    let file = dir.join("vars.toml");
    std::fs::write(
        &file,
        "[variables]\napp_url = \"https://localhost:9443\"\n\n[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\"]\n\n[[tenant.user]]\nupn = \"u@x.test\"\ndisplay_name = \"U\"\npassword = \"pw\"\n\n[[tenant.app]]\napp_id = \"11111111-1111-4111-8111-111111111111\"\ndisplay_name = \"App\"\nredirect_uris = [\"${app_url}/cb\"]\n\n[[tenant.event]]\nowner = \"u@x.test\"\nsubject = \"Stand-up\"\nstart = \"monday 09:00\"\nend = \"monday 09:15\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = accord(&["scenario", "check", path, "--var", "app_url=https://localhost:50123"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid (1 tenants"), "{out}");
    let (code, _, err) = accord(&["scenario", "check", path, "--var", "app_url=ftp://nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("vars.toml:16: tenant.app.redirect_uris"), "{err}");
    let (code, _, err) = accord(&["scenario", "check", path, "--var", "port=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("the scenario declares no variable \"port\" (declared: app_url)"), "{err}");
    let (code, _, err) = accord(&["scenario", "check", path, "--var", "nonsense"]);
    assert_eq!(code, 2, "clap refuses it: {err}");
    assert!(err.contains("NAME=VALUE"), "{err}");
}

#[tokio::test]
async fn a_scenario_that_fails_to_apply_loads_nothing() {
    let dir = temp_dir("whole");
    let store = SqlStore::connect_sqlite_file(&dir.join("accord.db")).await.unwrap();
    let keyring = Keyring::from_master(&[9; 32]);
    let first = accord_core::scenario::parse(
        "first.toml",
        "[[tenant]]\nid = \"11111111-0000-4000-8000-000000000001\"\ndisplay_name = \"First\"\ndomains = [\"first.test\"]\n",
    )
    .unwrap();
    scenario_loader::load(&store, &keyring, &first).await.unwrap();

    // Valid on its own, but its domain is already verified by another tenant in the store.
    let second = accord_core::scenario::parse(
        "second.toml",
        "[[tenant]]\nid = \"22222222-0000-4000-8000-000000000002\"\ndisplay_name = \"Second\"\ndomains = [\"second.test\"]\n\n[[tenant.user]]\nupn = \"u@second.test\"\ndisplay_name = \"U\"\npassword = \"pw\"\n\n[[tenant]]\nid = \"33333333-0000-4000-8000-000000000003\"\ndisplay_name = \"Thief\"\ndomains = [\"first.test\"]\n",
    )
    .unwrap();
    let err = scenario_loader::load(&store, &keyring, &second).await.unwrap_err();
    assert!(format!("{err:#}").contains("first.test"), "{err:#}");
    let second_id: TenantId = "22222222-0000-4000-8000-000000000002".parse().unwrap();
    assert!(store.tenant(second_id).await.unwrap().is_none(), "nothing of the failed file was loaded");
    assert!(store.users(second_id).await.unwrap().is_empty());
    assert_eq!(store.tenants().await.unwrap().len(), 1);
}
