//! The kit verifying Accord's consent webhooks as a vendor's endpoint would: a real receiver
//! gets the push when the customer's administrator removes the app's application permission,
//! `verify_consent_webhook` accepts it with the registered secret, and refuses it with another
//! secret, a changed body, or an old timestamp. World: tests/fixtures/sync_world.toml.

mod support;

use accord_connect::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{fixture, TestServer};

const TAILWIND: &str = "e5000000-0000-4000-8000-000000000002";
const SYNC: &str = "f5000000-0000-4000-8000-000000000001";
const ADMIN_TOOL: (&str, &str) = ("f5000000-0000-4000-8000-000000000003", "admin-tool-secret-1");

type Inbox = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    inbox.lock().unwrap().push((headers, body.to_vec()));
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn consent_webhooks_verify_with_the_secret_and_nothing_else() {
    let server = TestServer::start_with_args(&fixture("sync_world.toml"), &["--allow-http-notification-urls"]);
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new().route("/consent", axum::routing::post(receive)).with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/consent", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tool = ConnectClient::new(
        Config::accord(&server.base, ADMIN_TOOL.0, ADMIN_TOOL.1, "https://admin.example/cb", "https://admin.example/x")
            .with_extra_root_ca(server.ca_pem.clone()),
    )
    .unwrap();
    let token = tool.app_token(TAILWIND).await.unwrap().access_token;
    let http = server.browser();
    let graph = |path: &str| server.url(&format!("/v1.0{path}"));
    let get = |path: String| {
        let (http, token) = (&http, &token);
        async move { http.get(path).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let apps = get(graph(&format!("/applications?$filter=appId eq '{SYNC}'"))).await;
    let object = apps["value"][0]["id"].as_str().unwrap().to_string();
    let res = http
        .post(graph(&format!("/applications/{object}/accord.consentWebhooks")))
        .bearer_auth(&token)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let secret = res.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();

    // The administrator removes the sync app's application permission.
    let sps = get(graph(&format!("/servicePrincipals?$filter=appId eq '{SYNC}'"))).await;
    let sp = sps["value"][0]["id"].as_str().unwrap().to_string();
    let assignments = get(graph(&format!("/servicePrincipals/{sp}/appRoleAssignments"))).await;
    let a = &assignments["value"][0];
    let path = format!(
        "/servicePrincipals/{}/appRoleAssignedTo/{}",
        a["resourceId"].as_str().unwrap(),
        a["id"].as_str().unwrap()
    );
    assert_eq!(http.delete(graph(&path)).bearer_auth(&token).send().await.unwrap().status().as_u16(), 204);

    let deadline = Instant::now() + Duration::from_secs(20);
    let (headers, body) = loop {
        if let Some(first) = inbox.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(Instant::now() < deadline, "no consent webhook arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let now = time::OffsetDateTime::now_utc();
    let event = verify_consent_webhook(&id, &ts, &sig, &body, std::slice::from_ref(&secret), now).unwrap();
    assert_eq!(event.kind, "consent.revoked");
    assert_eq!(event.tenant_id.as_deref(), Some(TAILWIND));
    assert_eq!(event.app_id.as_deref(), Some(SYNC));
    assert_eq!(event.data["permissionType"], "application");
    assert_eq!(event.id, id);

    // Refused: another secret, a changed body, a replay an hour later.
    let other = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()];
    let e = verify_consent_webhook(&id, &ts, &sig, &body, &other, now).unwrap_err();
    assert!(matches!(e, ConnectError::WebhookRejected(_)), "{e:?}");
    let mut changed = body.clone();
    let at = changed.iter().position(|b| *b == b'r').unwrap();
    changed[at] = b'R';
    assert!(verify_consent_webhook(&id, &ts, &sig, &changed, std::slice::from_ref(&secret), now).is_err());
    let later = now + time::Duration::hours(1);
    assert!(verify_consent_webhook(&id, &ts, &sig, &body, std::slice::from_ref(&secret), later).is_err());
}
