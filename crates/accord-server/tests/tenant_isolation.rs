//! The tenant-isolation matrix (issue 12): every operation of the served OpenAPI document,
//! called with Contoso's object ids by Fabrikam's app that holds every Graph application
//! permission and by Fabrikam's Global Administrator through a console holding every delegated
//! one, answers 4xx (or, for an operation on the caller's own tenant, nothing of Contoso), never
//! 5xx; and afterwards every Contoso object reads exactly as before. Generated from the document,
//! so a new operation is covered the day it is published.

mod support;

use serde_json::{json, Value};
use support::graph_api::GraphApi;

const CONTOSO: &str = "c0000000-0000-4000-8000-000000000001";
const FABRIKAM: &str = "f0000000-0000-4000-8000-000000000002";
const ALICE: &str = "c0000000-0000-4000-8000-0000000000a2";
const NOTES_APP_ID: &str = "c0000000-1111-4000-8000-000000000001";
const AUDITOR: (&str, &str) = ("c0000000-1111-4000-8000-000000000002", "contoso-auditor-secret-1");
const EVERYTHING: (&str, &str) = ("f0000000-1111-4000-8000-000000000001", "fabrikam-everything-secret-1");
const CONSOLE: &str = "f0000000-1111-4000-8000-000000000002";

/// Contoso's objects: what a path parameter names, by the segment before it.
struct Targets {
    by_segment: Vec<(&'static str, String)>,
    /// Strings that would betray Contoso data in an answer to Fabrikam.
    tells: Vec<String>,
}

impl Targets {
    fn id_after(&self, segment: &str) -> String {
        self.by_segment.iter().find(|(s, _)| *s == segment).map(|(_, id)| id.clone()).unwrap_or_else(|| ALICE.into())
    }

    /// `path` with every `{param}` replaced by the Contoso object its place names.
    fn fill(&self, path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let end = start + rest[start..].find('}').unwrap();
            let before = &rest[..start];
            out.push_str(before);
            let name = &rest[start + 1..end];
            let segment = out.trim_end_matches(['/', '(', '\'', '=']).rsplit(['/', '(']).next().unwrap_or("");
            let value = match name {
                "appId" => NOTES_APP_ID.to_string(),
                "user" | "member" => ALICE.to_string(),
                _ => self.id_after(segment.trim_end_matches("appId")),
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

async fn first_id(g: &GraphApi, token: &str, path: &str) -> String {
    let (status, body) = g.get(token, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["value"][0]["id"].as_str().unwrap_or_else(|| panic!("{path}: no object: {body}")).to_string()
}

/// Everything of Contoso the auditor can read, to compare before and after.
async fn snapshot(g: &GraphApi, token: &str, t: &Targets) -> Vec<(String, u16, Value)> {
    let mut out = Vec::new();
    for path in [
        "/v1.0/users".to_string(),
        "/v1.0/groups".into(),
        "/v1.0/applications".into(),
        "/v1.0/servicePrincipals".into(),
        "/v1.0/oauth2PermissionGrants".into(),
        "/v1.0/directoryRoles".into(),
        "/v1.0/policies/authorizationPolicy".into(),
        format!("/v1.0/users/{ALICE}/events"),
        format!("/v1.0/groups/{}/members", t.id_after("groups")),
        format!("/v1.0/servicePrincipals/{}/appRoleAssignedTo", t.id_after("servicePrincipals")),
        format!("/v1.0/applications/{}", t.id_after("applications")),
    ] {
        let (status, body) = g.get(token, &path).await;
        out.push((path, status, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_operation_reaches_another_tenant() {
    let g = GraphApi::with_world("isolation_world.toml");
    let auditor = g.app_token(CONTOSO, AUDITOR).await;
    let notes_sp = first_id(&g, &auditor, &format!("/v1.0/servicePrincipals?$filter=appId eq '{NOTES_APP_ID}'")).await;
    let targets = Targets {
        by_segment: vec![
            ("groups", first_id(&g, &auditor, "/v1.0/groups").await),
            (
                "applications",
                first_id(&g, &auditor, &format!("/v1.0/applications?$filter=appId eq '{NOTES_APP_ID}'")).await,
            ),
            ("servicePrincipals", notes_sp.clone()),
            ("directoryRoles", first_id(&g, &auditor, "/v1.0/directoryRoles").await),
            ("events", first_id(&g, &auditor, &format!("/v1.0/users/{ALICE}/events")).await),
            ("oauth2PermissionGrants", first_id(&g, &auditor, "/v1.0/oauth2PermissionGrants").await),
            (
                "appRoleAssignedTo",
                first_id(&g, &auditor, &format!("/v1.0/servicePrincipals/{notes_sp}/appRoleAssignedTo")).await,
            ),
            (
                "appRoleAssignments",
                first_id(&g, &auditor, &format!("/v1.0/servicePrincipals/{notes_sp}/appRoleAssignedTo")).await,
            ),
        ],
        tells: vec![
            "contoso.test".into(),
            "Alice Contoso".into(),
            "Contoso Notes".into(),
            "Contoso board meeting".into(),
        ],
    };
    let before = snapshot(&g, &auditor, &targets).await;

    let doc: Value = g.c.get(g.url("/openapi/graph-v1.0.json")).send().await.unwrap().json().await.unwrap();
    let app_only = g.app_token(FABRIKAM, EVERYTHING).await;
    let delegated = g.ropc_token(FABRIKAM, CONSOLE, "frank@fabrikam.test", "fabrikam-frank-password-1").await;
    let mut calls = 0;
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let url = format!("/v1.0{}", targets.fill(path));
            for (who, token) in [("app-only", &app_only), ("delegated", &delegated)] {
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut req = g.c.request(m, g.url(&url)).bearer_auth(token);
                if matches!(method, "post" | "patch" | "put") {
                    req = req.json(&json!({}));
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                calls += 1;
                let names_contoso_object = path.contains('{');
                if status >= 500 || (names_contoso_object && (200..300).contains(&status)) {
                    problems.push(format!("{who} {} {url} -> {status}: {text:.200}", method.to_uppercase()));
                }
                if let Some(tell) = targets.tells.iter().find(|t| text.contains(t.as_str())) {
                    problems
                        .push(format!("{who} {} {url} -> {status} shows {tell:?}: {text:.200}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(calls >= 100, "only {calls} calls: is the document served whole?");
    assert!(problems.is_empty(), "{} of {calls} calls crossed tenants:\n{}", problems.len(), problems.join("\n"));
    let after = snapshot(&g, &auditor, &targets).await;
    for ((path, s1, b1), (_, s2, b2)) in before.iter().zip(&after) {
        assert_eq!((s1, b1), (s2, b2), "{path} changed");
        assert_eq!(*s1, 200, "{path}: {b1}");
    }
}
