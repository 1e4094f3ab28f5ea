//! The scenario's `[throttling]` and the flags that override it: a tenant's Graph traffic per
//! app (429 `TooManyRequests`), and the token endpoint per client and address (429 with
//! AADSTS's `temporarily_unavailable`, before any credential is checked). Mailbox limits are in
//! graph_batch.rs.

mod support;

use serde_json::Value;
use support::graph_api::GraphApi;
use support::TestServer;

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const DAEMON_READ: (&str, &str) = ("ffffffff-0000-4000-8000-000000000005", "reader-secret-1");
const DAEMON_DIRECTORY: (&str, &str) = ("ffffffff-0000-4000-8000-000000000007", "directory-secret-1");

/// calendar_world.toml with `[throttling]` appended; the server's flag sets the token limit to 3
/// over the scenario's 4.
fn start() -> GraphApi {
    let dir = std::env::temp_dir().join(format!("accord-throttling-{}", support::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calendar_world.toml");
    let mut text = std::fs::read_to_string(world).unwrap();
    text.push_str("\n[throttling]\ntenant_requests_per_10_seconds = 5\ntoken_requests_per_minute = 4\n");
    let scenario = dir.join("world.toml");
    std::fs::write(&scenario, text).unwrap();
    let server = TestServer::launch_with_env(dir, &scenario, &["--token-requests-per-minute", "3"], &[]);
    GraphApi { c: server.client(), server }
}

fn credentials((app, secret): (&str, &str)) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".to_string()),
        ("client_id", app.to_string()),
        ("client_secret", secret.to_string()),
        ("scope", "https://graph.microsoft.com/.default".to_string()),
    ]
}

#[tokio::test]
async fn token_requests_and_a_tenants_graph_traffic_are_limited() {
    let g = start();
    let token_url = g.server.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));

    // Three requests a minute for this client from this address (the flag's 3, not the
    // scenario's 4); a wrong secret counts too, the limit comes first.
    let mut wrong = credentials(DAEMON_READ);
    wrong[2].1 = "wrong".into();
    assert_eq!(g.c.post(&token_url).form(&wrong).send().await.unwrap().status(), 401);
    let ok = g.c.post(&token_url).form(&credentials(DAEMON_READ)).send().await.unwrap();
    let token = ok.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    assert_eq!(g.c.post(&token_url).form(&credentials(DAEMON_READ)).send().await.unwrap().status(), 200);
    let res = g.c.post(&token_url).form(&credentials(DAEMON_READ)).send().await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // Another client is not this one's budget.
    assert_eq!(g.c.post(&token_url).form(&credentials(DAEMON_DIRECTORY)).send().await.unwrap().status(), 200);

    // Five Graph requests per ten seconds for this app in this tenant, whatever they read.
    for path in ["/v1.0/users", "/v1.0/users/alice@contoso.test", "/v1.0/users", "/v1.0/groups", "/v1.0/users"] {
        let (status, _) = g.get(&token, path).await;
        assert_ne!(status, 429, "{path}");
    }
    let res = g.c.get(g.url("/v1.0/users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    let metrics = g.c.get(g.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("accord_graph_throttled_total{limit=\"tenant\"}"), "{metrics}");
    assert!(metrics.contains("accord_token_requests_throttled_total"), "{metrics}");
}
