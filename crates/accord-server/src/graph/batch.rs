//! `POST /v1.0/$batch` (JSON batching): up to 20 requests in one round trip. Each inner request
//! runs through the very same Graph routes as if it had been sent alone — same token, same
//! permission checks, same errors — so a batch can never reach more than its parts could.
//! Requests run in order; one whose `dependsOn` names a failed request is answered 424 (Failed
//! Dependency). The batch itself is 200 once it parses, whatever its parts answer.

use super::errors::GraphError;
use super::request::json_response;
use crate::state::SharedState;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tower::ServiceExt;

/// Graph's limit.
const MAX_REQUESTS: usize = 20;
/// The largest inner answer kept (bodies of Graph's pages are far smaller).
const MAX_INNER_BODY: usize = 4 * 1024 * 1024;

/// One parsed inner request.
struct Inner {
    id: String,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn malformed(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// Reads and checks the batch: ids unique (case-insensitively), relative URLs, a method Graph
/// knows, headers as strings, `dependsOn` naming earlier requests.
fn parse(body: Result<Bytes, BytesRejection>) -> Result<Vec<Inner>, GraphError> {
    let root = super::request::json_object(body)?;
    let Some(Value::Array(list)) = root.get("requests") else {
        return Err(malformed("The batch body must have a 'requests' array."));
    };
    if list.is_empty() || list.len() > MAX_REQUESTS {
        return Err(malformed(format!("A batch holds 1 to {MAX_REQUESTS} requests; this one has {}.", list.len())));
    }
    let mut out: Vec<Inner> = Vec::with_capacity(list.len());
    for (n, r) in list.iter().enumerate() {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let id = text("id").filter(|i| !i.is_empty()).ok_or_else(|| malformed(format!("Request {n} has no 'id'.")))?;
        if out.iter().any(|o| o.id.eq_ignore_ascii_case(&id)) {
            return Err(malformed(format!("The request id '{id}' is used twice in the batch.")));
        }
        let method = text("method")
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .filter(|m| [Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE].contains(m))
            .ok_or_else(|| malformed(format!("Request '{id}' needs a 'method' (GET, POST, PATCH, PUT or DELETE).")))?;
        let url = text("url").ok_or_else(|| malformed(format!("Request '{id}' needs a 'url'.")))?;
        // SDKs strip only the origin of a full URL ("/v1.0/me"), which Graph accepts too.
        let url = match url.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("/v1.0/") => url[5..].to_string(),
            _ => url,
        };
        if !url.starts_with('/') || url.starts_with("//") {
            return Err(malformed(format!("Request '{id}': the url must be relative to /v1.0, e.g. /me/events.")));
        }
        let mut headers = Vec::new();
        if let Some(h) = r.get("headers") {
            let Value::Object(h) = h else {
                return Err(malformed(format!("Request '{id}': headers must be an object.")));
            };
            for (k, v) in h {
                let v =
                    v.as_str().ok_or_else(|| malformed(format!("Request '{id}': header '{k}' must be a string.")))?;
                headers.push((k.clone(), v.to_string()));
            }
        }
        let body = r.get("body").cloned().filter(|b| !b.is_null());
        if body.is_some() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            return Err(malformed(format!("Request '{id}' has a body, so its headers must name its Content-Type.")));
        }
        let depends_on: Vec<String> = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(d)) => d.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(_) => return Err(malformed(format!("Request '{id}': dependsOn must be a list of request ids."))),
        };
        if let Some(missing) = depends_on.iter().find(|d| !out.iter().any(|o| o.id.eq_ignore_ascii_case(d))) {
            return Err(malformed(format!(
                "Request '{id}' depends on '{missing}', which is not an earlier request of the batch."
            )));
        }
        out.push(Inner { id, method, url, headers, body, depends_on });
    }
    Ok(out)
}

/// `POST /v1.0/$batch`
pub async fn batch(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    // The caller must be able to call Graph at all; each part is then authorised on its own.
    super::auth::authenticate(&state, &headers).await?;
    let requests = parse(body)?;
    let routes = super::routes().with_state(state.clone());
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(requests.len());
    for r in &requests {
        let failed_dependency =
            r.depends_on.iter().find(|d| statuses.iter().any(|(id, s)| id.eq_ignore_ascii_case(d) && *s >= 400));
        let answer = match failed_dependency {
            Some(d) => {
                let body = json!({"error": {"code": "FailedDependency", "message": format!("Request '{d}', which this one depends on, failed.")}});
                json!({"id": r.id, "status": 424, "headers": {"Content-Type": "application/json"}, "body": body})
            }
            None => run(&routes, &headers, r).await,
        };
        statuses.insert(r.id.clone(), answer["status"].as_u64().unwrap_or(500) as u16);
        responses.push(answer);
    }
    Ok(json_response(StatusCode::OK, json!({ "responses": responses }), None))
}

/// Runs one inner request through the Graph routes with the batch's token and the request's
/// own headers.
async fn run(routes: &axum::Router, outer: &HeaderMap, r: &Inner) -> Value {
    if r.url.trim_start_matches('/').split(['?', '/']).next().is_some_and(|s| s.eq_ignore_ascii_case("$batch")) {
        let body = json!({"error": {"code": "BadRequest", "message": "A batch cannot contain another batch."}});
        return json!({"id": r.id, "status": 400, "headers": {"Content-Type": "application/json"}, "body": body});
    }
    let mut builder = Request::builder().method(r.method.clone()).uri(format!("/v1.0{}", r.url));
    if let Some(auth) = outer.get(header::AUTHORIZATION) {
        builder = builder.header(header::AUTHORIZATION, auth.clone());
    }
    for (k, v) in &r.headers {
        if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("host") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            builder = builder.header(name, value);
        }
    }
    let body = r.body.as_ref().map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let request = match builder.body(body) {
        Ok(req) => req,
        Err(_) => {
            let body =
                json!({"error": {"code": "BadRequest", "message": "The request's url or headers are not valid."}});
            return json!({"id": r.id, "status": 400, "headers": {"Content-Type": "application/json"}, "body": body});
        }
    };
    let response = match routes.clone().oneshot(request).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    answer_of(&r.id, response).await
}

/// An inner response as the batch reports it: status, headers, body (JSON when it is JSON).
async fn answer_of(id: &str, response: Response) -> Value {
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        if let Ok(v) = value.to_str() {
            let name = match name.as_str() {
                "content-type" => "Content-Type".to_string(),
                "retry-after" => "Retry-After".to_string(),
                "location" => "Location".to_string(),
                "www-authenticate" => "WWW-Authenticate".to_string(),
                other => other.to_string(),
            };
            headers.insert(name, json!(v));
        }
    }
    let bytes = to_bytes(response.into_body(), MAX_INNER_BODY).await.unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    let mut out = json!({"id": id, "status": status, "headers": headers});
    if !body.is_null() {
        out["body"] = body;
    }
    out
}
