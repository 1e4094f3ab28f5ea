//! A Graph API client for integration tests: tokens by ROPC or client credentials from the test
//! server, and requests that answer `(status, JSON body)`. Test files add their world's own
//! shortcuts (`alice()`, `admin()`, …) in an `impl GraphApi` of their own.

use super::TestServer;
use serde_json::Value;
use std::path::Path;

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

pub struct GraphApi {
    pub server: TestServer,
    pub c: reqwest::Client,
}

impl GraphApi {
    /// A server with `tests/fixtures/{world}` loaded.
    pub fn with_world(world: &str) -> GraphApi {
        let server = TestServer::start_with(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(world));
        let c = server.client();
        GraphApi { server, c }
    }

    /// The token endpoint's status and body.
    pub async fn try_token(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res =
            self.c.post(self.server.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(form).send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// An access token, or a panic showing the error body.
    pub async fn token(&self, tenant: &str, form: &[(&str, &str)]) -> String {
        let (_, body) = self.try_token(tenant, form).await;
        body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
    }

    /// A delegated Graph token by ROPC through the public client `app`.
    pub async fn ropc_token(&self, tenant: &str, app: &str, upn: &str, password: &str) -> String {
        self.token(tenant, &ropc_form(app, upn, password)).await
    }

    /// An app-only Graph token by client credentials.
    pub async fn app_token(&self, tenant: &str, (app, secret): (&str, &str)) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app),
            ("client_secret", secret),
            ("scope", GRAPH_DEFAULT),
        ];
        self.token(tenant, &form).await
    }

    /// Absolute URLs (`@odata.nextLink`) as they are; paths on the test server.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            self.server.url(path)
        }
    }

    /// Sends; an empty body reads as `Value::Null`.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect(&text) };
        (status, body)
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(self.c.get(self.url(path)).bearer_auth(token)).await
    }

    /// A GET as an advanced directory query: with `ConsistencyLevel: eventual`, which Graph
    /// requires for `$count` on directory objects.
    pub async fn get_eventual(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(self.c.get(self.url(path)).bearer_auth(token).header("ConsistencyLevel", "eventual")).await
    }

    /// A GET whose answer is text (a `/$count` segment): status, content type and body.
    pub async fn get_text(&self, token: &str, path: &str, eventual: bool) -> (u16, String, String) {
        let mut req = self.c.get(self.url(path)).bearer_auth(token);
        if eventual {
            req = req.header("ConsistencyLevel", "eventual");
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, kind, res.text().await.unwrap())
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(self.c.post(self.url(path)).bearer_auth(token).json(&body)).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(self.c.patch(self.url(path)).bearer_auth(token).json(&body)).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(self.c.delete(self.url(path)).bearer_auth(token)).await
    }

    /// Follows `@odata.nextLink` from `path`; the values of every page, and the page sizes.
    pub async fn all_pages(&self, token: &str, path: &str) -> (Vec<Value>, Vec<usize>) {
        self.all_pages_as(token, path, false).await
    }

    /// [`Self::all_pages`], each page as an advanced query when `eventual`.
    pub async fn all_pages_as(&self, token: &str, path: &str, eventual: bool) -> (Vec<Value>, Vec<usize>) {
        let (mut values, mut sizes) = (Vec::new(), Vec::new());
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let (status, body) = if eventual { self.get_eventual(token, &p).await } else { self.get(token, &p).await };
            assert_eq!(status, 200, "{body}");
            let page = body["value"].as_array().unwrap().clone();
            sizes.push(page.len());
            values.extend(page);
            next = body["@odata.nextLink"].as_str().map(String::from);
            assert!(sizes.len() < 20, "paging does not end");
        }
        (values, sizes)
    }
}

/// The form of an ROPC request for a Graph token.
pub fn ropc_form<'a>(app: &'a str, upn: &'a str, password: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "password"),
        ("client_id", app),
        ("username", upn),
        ("password", password),
        ("scope", GRAPH_DEFAULT),
    ]
}
