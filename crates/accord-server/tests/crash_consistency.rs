//! Crash consistency (issue 12's suites): `kill -9` the server in the middle of a storm of
//! directory and consent writes, start it again on the same data, and every write that was
//! acknowledged is there, whole; nothing half-written is; the server starts clean. On SQLite and,
//! with `ACCORD_TEST_DATABASE_URL`, on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use support::*;

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const BOB: &str = "eeeeeeee-0000-4000-8000-0000000000b1";
const WRITES_DAEMON: (&str, &str) = ("eeeeeeee-1111-4000-8000-000000000003", "writes-secret-1");
const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes, test only

fn world() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/directory_writes_world.toml")
}

fn launch(data_dir: &std::path::Path, extra: &[&str]) -> TestServer {
    TestServer::launch_with_env(data_dir.to_path_buf(), &world(), extra, &[("ACCORD_MASTER_KEY", MASTER)])
}

async fn app_token(server: &TestServer, c: &reqwest::Client) -> String {
    let res = c
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", WRITES_DAEMON.0),
            ("client_secret", WRITES_DAEMON.1),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
}

/// What the storm got acknowledged: groups created (id, name) and memberships added.
#[derive(Default)]
struct Acknowledged {
    groups: Vec<(String, String)>,
    members: Vec<String>,
}

/// Writers create groups and add Bob to each, until `stop`; every 2xx is recorded.
async fn storm(
    server: &TestServer,
    token: &str,
    writers: usize,
    until_acknowledged: usize,
) -> Arc<Mutex<Acknowledged>> {
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (c, base, token, ack) = (server.client(), server.url(""), token.to_string(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("crash-{w}-{i}");
                let res = c
                    .post(format!("{base}/v1.0/groups"))
                    .bearer_auth(&token)
                    .json(&json!({"displayName": name, "mailNickname": name, "mailEnabled": false, "securityEnabled": true}))
                    .send()
                    .await;
                let Ok(res) = res else { return };
                if res.status().as_u16() != 201 {
                    return;
                }
                let Ok(group) = res.json::<Value>().await else { return };
                let id = group["id"].as_str().unwrap().to_string();
                ack.lock().unwrap().groups.push((id.clone(), name));
                let member = json!({"@odata.id": format!("{base}/v1.0/directoryObjects/{BOB}")});
                let res = c
                    .post(format!("{base}/v1.0/groups/{id}/members/$ref"))
                    .bearer_auth(&token)
                    .json(&member)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().as_u16() == 204 => ack.lock().unwrap().members.push(id),
                    _ => return,
                }
            }
        }));
    }
    // Let the storm run until enough is acknowledged; the kill comes while writers are mid-flight.
    while acknowledged.lock().unwrap().groups.len() < until_acknowledged {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if tasks.iter().all(|t| t.is_finished()) {
            panic!("the writers stopped before the crash: {}", server.log());
        }
    }
    acknowledged
}

async fn crash_and_recover(data_dir: PathBuf, extra: &[&str]) {
    let server = launch(&data_dir, extra);
    let c = server.client();
    let token = app_token(&server, &c).await;
    let acknowledged = storm(&server, &token, 4, 40).await;
    let data_dir = server.stop(); // SIGKILL, writers still going
    let (groups, members) = {
        let a = acknowledged.lock().unwrap();
        (a.groups.clone(), a.members.clone())
    };

    // Restart on the same data (and load the world again, as `serve --scenario` does).
    let server = launch(&data_dir, extra);
    let c = server.client();
    assert_eq!(c.get(server.url("/readyz")).send().await.unwrap().status().as_u16(), 200);
    let token = app_token(&server, &c).await;
    for (id, name) in &groups {
        let res = c.get(server.url(&format!("/v1.0/groups/{id}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "acknowledged group {name} is gone");
        let group: Value = res.json().await.unwrap();
        assert_eq!(group["displayName"], name.as_str());
    }
    for id in &members {
        let res = c.get(server.url(&format!("/v1.0/groups/{id}/members"))).bearer_auth(&token).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        let ids: Vec<&str> = body["value"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
        assert_eq!(ids, [BOB], "acknowledged membership of {id} is gone: {body}");
    }
    // Whatever the crash interrupted is there whole or not at all: every crash-* group reads.
    let res = c
        .get(server.url("/v1.0/groups?$filter=startswith(displayName,'crash-')&$top=999"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let found = body["value"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(
        found.len() >= groups.len() && found.len() <= groups.len() + 4,
        "{} found, {} acknowledged",
        found.len(),
        groups.len()
    );
    for g in found {
        let id = g["id"].as_str().unwrap();
        let res = c.get(server.url(&format!("/v1.0/groups/{id}/members"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }
    // And the server works as before: a new write lands.
    let res = c
        .post(server.url("/v1.0/groups"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "after-crash", "mailNickname": "after", "mailEnabled": false, "securityEnabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert!(!server.log().contains("panicked"), "{}", server.log());
    println!(
        "{} groups and {} memberships acknowledged before the kill; {} found after",
        groups.len(),
        members.len(),
        found.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_every_acknowledged_write_across_a_kill() {
    let data_dir = std::env::temp_dir().join(format!("accord-crash-{}", uuid_like()));
    std::fs::create_dir_all(&data_dir).unwrap();
    crash_and_recover(data_dir.clone(), &[]).await;
    // The database file itself is sound.
    let out =
        std::process::Command::new("sqlite3").arg(data_dir.join("accord.db")).arg("PRAGMA integrity_check;").output();
    if let Ok(out) = out {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
async fn postgres_keeps_every_acknowledged_write_across_a_kill() {
    let base = postgres_url();
    let schema = format!("crash_{}", uuid_like().replace('-', "_"));
    let psql = |sql: &str| {
        let ok = std::process::Command::new("psql")
            .env("PGOPTIONS", "--client-min-messages=warning")
            .args([base.as_str(), "-qc", sql])
            .status()
            .unwrap()
            .success();
        assert!(ok, "psql {sql}");
    };
    psql(&format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let data_dir = std::env::temp_dir().join(format!("accord-crash-pg-{}", uuid_like()));
    std::fs::create_dir_all(&data_dir).unwrap();
    crash_and_recover(data_dir, &["--database-url", &url]).await;
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
