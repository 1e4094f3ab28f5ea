//! Restarting with the same scenario (issue 19's reliability bug): every password used to be
//! checked again with argon2 — as slow as hashing, user after user, with memory growing until
//! the process was killed. The load now recognises the hashes it stored itself by a keyed
//! fingerprint and runs no password work; a password changed since, in the file or at run time,
//! is still checked and the file's password restored. Counted with `accord_password_checks_total`
//! (every argon2 hash or check the server runs), not timed.

mod support;

use std::path::Path;
use support::*;

fn scenario(carol_password: &str) -> String {
    format!(
        r#"[[tenant]]
id = "eeeeeeee-0000-4000-8000-0000000000aa"
display_name = "Reload"
domains = ["reload.test"]

[[tenant.user]]
upn = "admin@reload.test"
display_name = "Admin"
password = "admin-password-1"
roles = ["Global Administrator"]

[[tenant.user]]
upn = "bob@reload.test"
display_name = "Bob"
password = "bob-password-1"

[[tenant.user]]
upn = "carol@reload.test"
display_name = "Carol"
password = "{carol_password}"

[[tenant.user]]
upn = "dan@reload.test"
display_name = "Dan (no password)"
"#
    )
}

async fn password_checks(server: &TestServer) -> u64 {
    server.metric("accord_password_checks_total").await
}

async fn signs_in(server: &TestServer, upn: &str, password: &str) -> bool {
    let portal = server.url("/portal/signin?return_to=/myapps");
    sign_in(&server.client(), server, &portal, upn, password).await.is_ok()
}

fn start(dir: &Path, file: &Path) -> TestServer {
    TestServer::launch_with_env(dir.to_path_buf(), file, &[], &[])
}

#[tokio::test]
async fn a_restart_with_the_same_scenario_runs_no_password_work() {
    let dir = std::env::temp_dir().join(format!("accord-reload-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("world.toml");
    std::fs::write(&file, scenario("carol-password-1")).unwrap();

    // First start: three passwords hashed; Dan has none.
    let server = start(&dir, &file);
    assert_eq!(password_checks(&server).await, 3);
    server.stop();

    // Same scenario: nothing hashed or checked, and the passwords still work.
    let server = start(&dir, &file);
    assert_eq!(password_checks(&server).await, 0, "{}", server.log());
    assert!(signs_in(&server, "bob@reload.test", "bob-password-1").await);
    assert!(!signs_in(&server, "dan@reload.test", "anything-at-all").await, "no password, no sign-in");
    // At run time Bob's password changes (an import sets it, as a reset would).
    let users = dir.join("bob.jsonl");
    std::fs::write(
        &users,
        r#"{"userPrincipalName": "bob@reload.test", "displayName": "Bob", "password": "changed-at-run-time"}"#,
    )
    .unwrap();
    let data = dir.to_string_lossy().to_string();
    let (code, _, err) = accord(&[
        "import",
        "--data-dir",
        &data,
        "--tenant",
        "reload.test",
        "--as",
        "admin@reload.test",
        users.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    server.stop();

    // The file is authoritative at every start: Bob's changed hash is checked (and fails) and
    // the file's password hashed again; Carol's password changed in the file: the same.
    std::fs::write(&file, scenario("carol-password-2")).unwrap();
    let server = start(&dir, &file);
    assert_eq!(password_checks(&server).await, 4, "a check and a hash for each of Bob and Carol");
    assert!(signs_in(&server, "bob@reload.test", "bob-password-1").await);
    assert!(!signs_in(&server, "bob@reload.test", "changed-at-run-time").await);
    assert!(signs_in(&server, "carol@reload.test", "carol-password-2").await);
    server.stop();

    // And the next restart is free again.
    let server = start(&dir, &file);
    assert_eq!(password_checks(&server).await, 0);
    assert!(signs_in(&server, "carol@reload.test", "carol-password-2").await);
}
