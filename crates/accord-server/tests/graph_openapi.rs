//! The served OpenAPI document of the Graph-compatible API matches what the server does: every
//! documented operation answers (a 401 asking for a token, not Graph's unknown-segment 400 or a
//! 405), and every other method on a documented path is a 405. Together with the unit test in
//! `graph/openapi.rs` (every registered route is documented), the document cannot drift.

mod support;

use serde_json::Value;
use support::*;

const METHODS: [&str; 5] = ["get", "post", "patch", "put", "delete"];
const SOME_ID: &str = "0e0e0e0e-0000-4000-8000-000000000001";

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let server = TestServer::start();
    let c = server.client();
    let res = c.get(server.url("/openapi/graph-v1.0.json")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["servers"][0]["url"], server.url("/v1.0"));
    let flows = &doc["components"]["securitySchemes"]["accord"]["flows"];
    assert_eq!(flows["authorizationCode"]["tokenUrl"], server.url("/organizations/oauth2/v2.0/token"));
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 40, "{} paths", paths.len());

    let mut probed = 0;
    for (path, item) in paths {
        let url = server.url(&format!("/v1.0{}", concrete(path)));
        // A key inside a segment (`applications(appId='…')`) is matched by one handler that asks
        // for a token before it looks at the method.
        let keyed = path.trim_start_matches('/').split('/').next().unwrap_or_default().contains('(');
        for method in METHODS {
            let documented = item.get(method).is_some();
            if !documented && keyed {
                continue;
            }
            let status = request(&c, method, &url).await;
            let (want, what) = if documented {
                (401, "a documented operation asks for a token")
            } else {
                (405, "an undocumented method is refused")
            };
            assert_eq!(status.0, want, "{method} {path}: {what}; got {} {}", status.0, status.1);
            if !documented {
                // RFC 9110: a 405 names what the resource does serve.
                let mut allow: Vec<String> = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .flat_map(|m| if *m == "get" { vec!["GET".into(), "HEAD".into()] } else { vec![m.to_uppercase()] })
                    .collect();
                let mut got: Vec<String> = status.2.split(", ").map(str::to_string).collect();
                allow.sort();
                got.sort();
                assert_eq!(got, allow, "{method} {path}: the Allow header");
            }
            probed += 1;
            if documented {
                let op = &item[method];
                assert!(op["operationId"].is_string() && op["summary"].is_string(), "{method} {path}");
                assert!(op["x-permissions"]["delegated"].as_array().is_some_and(|a| !a.is_empty()), "{method} {path}");
                let params: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                for p in &params {
                    assert!(path.contains(&format!("{{{p}}}")), "{method} {path}: parameter {p}");
                }
            }
        }
    }
    assert!(probed >= 150, "{probed} probes");

    // And a path that is not documented is not served either.
    let status = request(&c, "get", &server.url("/v1.0/contacts")).await;
    assert_eq!(status.0, 400, "{}", status.1);
    assert!(status.1.contains("Resource not found for the segment 'contacts'"), "{}", status.1);
}

/// The path with every `{parameter}` replaced by a GUID.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(SOME_ID);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Status, body and `Allow` header.
async fn request(c: &reqwest::Client, method: &str, url: &str) -> (u16, String, String) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let res = c.request(method, url).header("content-type", "application/json").body("{}").send().await.unwrap();
    let status = res.status().as_u16();
    let allow = res.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, res.text().await.unwrap(), allow)
}
