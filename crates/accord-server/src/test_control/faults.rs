//! Fault injection (test mode): rules that make the platform fail the way the Microsoft cloud
//! fails, for the requests they match.
//!
//! A rule matches by endpoint (`token`, `authorize`, `devicecode`, `graph`, `discovery`,
//! `any`), method, tenant (the path's tenant segment, or a Graph token's `tid`), app (the token
//! request's `client_id`, or a Graph token's `appid`/`azp`), user (the token request's
//! `username`, or a Graph token's `upn`/`preferred_username`/`oid`) and path prefix; it skips its
//! first `after` matches, then acts on every `every`-th one, at most `times` times. Actions: an
//! AADSTS error (token and device-code endpoints), an HTTP status with `Retry-After` (Graph's
//! error body on Graph, AADSTS's elsewhere), a delay, a dropped connection, or replication lag
//! (matched by tenant and app; the service layer applies it, `crate::replication_lag`). Every injected
//! fault is counted in `/metrics` (`accord_faults_injected_total{action}`) and written to the
//! decision journal (`kind: "fault"`). The matching reads tokens without verifying them: it only
//! decides which requests fail, never what a request may do.

use crate::protocol::errors::JsonFailure;
use accord_core::aadsts::{Aadsts, OAuthError};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Rules at most.
pub const MAX_RULES: usize = 100;
/// Bodies read for matching (the app and user of a token request), at most.
const MAX_BODY: usize = 64 * 1024;

pub use accord_core::fault_rules::{Action, Match, RuleSpec};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Requests matched, and faults injected, so far.
    pub matched: u32,
    pub injected: u32,
}

/// The rules in force, in order; the first that acts on a request wins.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    next: Mutex<u64>,
}

impl Faults {
    pub fn add(&self, spec: RuleSpec) -> Result<Rule, String> {
        spec.check()?;
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if rules.len() >= MAX_RULES {
            return Err(format!("at most {MAX_RULES} rules"));
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let rule = Rule { id: format!("fault-{next}"), spec, matched: 0, injected: 0 };
        if let Some(seconds) = rule.spec.action.replication_lag_seconds {
            crate::replication_lag::add(crate::replication_lag::LagRule {
                id: rule.id.clone(),
                tenant: rule.spec.matching.tenant.clone(),
                app: rule.spec.matching.app.clone(),
                seconds,
                since: accord_core::clock::now(),
                injected: 0,
            });
        }
        rules.push(rule.clone());
        Ok(rule)
    }

    /// A scenario's rules, added in order; their ids.
    pub fn install(&self, specs: Vec<RuleSpec>) -> Result<Vec<String>, String> {
        specs.into_iter().map(|spec| self.add(spec).map(|r| r.id)).collect()
    }

    pub fn list(&self) -> Vec<Rule> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for rule in rules.iter_mut().filter(|r| r.spec.is_lag()) {
            rule.injected = crate::replication_lag::injected(&rule.id);
            rule.matched = rule.injected;
        }
        rules
    }

    /// Removes every rule; numbering starts again at `fault-1`.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = 0;
        crate::replication_lag::clear();
    }

    fn is_empty(&self) -> bool {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Counts the request against every matching rule; the action of the first that fires.
    fn fire(&self, facts: &Facts) -> Option<(String, Action)> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let mut fired = None;
        for rule in rules.iter_mut() {
            if rule.spec.is_lag() || !facts.matches(&rule.spec.matching) {
                continue;
            }
            rule.matched += 1;
            let n = rule.matched;
            let spec = &rule.spec;
            let eligible = n > spec.after
                && (n - spec.after - 1) % spec.every.unwrap_or(1) == 0
                && spec.times.is_none_or(|t| rule.injected < t);
            if eligible && fired.is_none() {
                rule.injected += 1;
                fired = Some((rule.id.clone(), spec.action.clone()));
            }
        }
        fired
    }
}

/// What a request is, for matching.
#[derive(Debug, Default)]
struct Facts {
    endpoint: &'static str,
    method: String,
    path: String,
    tenants: Vec<String>,
    app: Option<String>,
    user: Vec<String>,
}

impl Facts {
    fn matches(&self, m: &Match) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        m.endpoint.as_deref().is_none_or(|e| e == "any" || e == self.endpoint)
            && m.method.as_deref().is_none_or(|x| eq(x, &self.method))
            && m.path.as_deref().is_none_or(|p| self.path.starts_with(p))
            && m.tenant.as_deref().is_none_or(|t| self.tenants.iter().any(|x| eq(x, t)))
            && m.app.as_deref().is_none_or(|a| self.app.as_deref().is_some_and(|x| eq(x, a)))
            && m.user.as_deref().is_none_or(|u| self.user.iter().any(|x| eq(x, u)))
    }
}

fn endpoint_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1.0", ..] => "graph",
        [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] => "token",
        [_, "oauth2", "v2.0", "authorize"] | [_, "oauth2", "authorize"] => "authorize",
        [_, "oauth2", "v2.0", "devicecode"] | [_, "oauth2", "devicecode"] => "devicecode",
        [_, "v2.0", ".well-known", ..] | [_, "discovery", ..] => "discovery",
        _ => "other",
    }
}

/// A bearer token's claims, read without verification (matching only).
fn unverified_claims(req: &Request) -> Option<Value> {
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The rules of this process (one server per process).
pub static FAULTS: std::sync::LazyLock<Faults> = std::sync::LazyLock::new(Faults::default);

/// The middleware (installed in test mode only).
pub async fn inject(req: Request, next: Next) -> Response {
    let faults = &*FAULTS;
    if faults.is_empty() || req.uri().path().starts_with("/_accord/") {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let endpoint = endpoint_of(&path);
    let mut facts = Facts { endpoint, method: req.method().to_string(), path: path.clone(), ..Facts::default() };
    if endpoint != "graph" {
        if let Some(first) = path.trim_start_matches('/').split('/').next() {
            facts.tenants.push(first.to_string());
        }
    }
    if let Some(claims) = unverified_claims(&req) {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        facts.tenants.extend(text("tid"));
        facts.app = text("appid").or_else(|| text("azp"));
        facts.user.extend(["upn", "preferred_username", "oid"].iter().filter_map(|k| text(k)));
    }
    // A form body names the client and user of a token request: read it, then put it back.
    let req = if endpoint == "token" || endpoint == "devicecode" {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        for (k, v) in form_urlencoded::parse(&bytes) {
            match k.as_ref() {
                "client_id" => facts.app = Some(v.into_owned()),
                "username" => facts.user.push(v.into_owned()),
                _ => {}
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let Some((rule, action)) = faults.fire(&facts) else {
        return next.run(req).await;
    };
    let label = if action.drop {
        "drop"
    } else if action.delay_ms.is_some() {
        "delay"
    } else if action.aadsts.is_some() {
        "aadsts"
    } else {
        "status"
    };
    metrics::counter!("accord_faults_injected_total", "action" => label).increment(1);
    crate::decision_journal::record_fault(crate::decision_journal::Fault {
        rule: &rule,
        request: format!("{} {path}", facts.method),
        what: describe(&action),
        tenant: facts.tenants.last().cloned(),
        app: facts.app.clone(),
        user: facts.user.first().cloned(),
        aadsts: action.aadsts,
    });
    tracing::warn!(rule, endpoint, path, action = label, "test mode: fault injected");
    if let Some(ms) = action.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return next.run(req).await;
    }
    if action.drop {
        // A body that fails at once: the connection closes without an answer.
        let failing = futures_util::stream::once(async {
            Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("dropped by a fault rule"))
        });
        return Response::new(Body::from_stream(failing));
    }
    if let Some(code) = action.aadsts {
        return JsonFailure::from(injected_aadsts(code)).into_response();
    }
    let status = StatusCode::from_u16(action.status.unwrap_or(503)).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    status_response(endpoint, status, &action)
}

fn describe(a: &Action) -> String {
    if let Some(ms) = a.delay_ms {
        format!("delayed {ms} ms")
    } else if a.drop {
        "dropped the connection".into()
    } else if let Some(code) = a.aadsts {
        format!("answered AADSTS{code}")
    } else {
        format!("answered HTTP {}", a.status.unwrap_or(503))
    }
}

/// An AADSTS error as Entra sends it for this code (the OAuth error and sub-error clients act on).
fn injected_aadsts(code: u32) -> Aadsts {
    let error = match code {
        65001 | 50105 | 50173 | 70008 | 700084 | 50053 | 50126 | 50076 | 50079 => OAuthError::InvalidGrant,
        700016 | 7000112 | 700024 => OAuthError::UnauthorizedClient,
        7000215 | 700027 | 7000222 => OAuthError::InvalidClient,
        70011 | 65005 => OAuthError::InvalidScope,
        90055 | 90033 => OAuthError::TemporarilyUnavailable,
        _ => OAuthError::InvalidRequest,
    };
    let mut e = Aadsts::new(code, error, "This error was injected by a test-mode fault rule.");
    if code == 65001 {
        e = e.with_suberror("consent_required");
    }
    if matches!(code, 90055 | 90033) {
        e.retry_after = Some(5);
    }
    e
}

fn status_response(endpoint: &str, status: StatusCode, a: &Action) -> Response {
    let mut res = if endpoint == "graph" {
        let code = a.code.clone().unwrap_or_else(|| {
            match status.as_u16() {
                429 => "TooManyRequests",
                503 => "serviceNotAvailable",
                500 => "generalException",
                403 => "ErrorAccessDenied",
                404 => "ErrorItemNotFound",
                _ => "BadRequest",
            }
            .to_string()
        });
        crate::graph::errors::GraphError::new(status, code, "This error was injected by a test-mode fault rule.")
            .into_response()
    } else {
        let error = match status.as_u16() {
            429 | 503 => "temporarily_unavailable",
            s if s >= 500 => "server_error",
            _ => "invalid_request",
        };
        (
            status,
            axum::Json(
                json!({"error": error, "error_description": "This error was injected by a test-mode fault rule."}),
            ),
        )
            .into_response()
    };
    if let Some(s) = a.retry_after {
        res.headers_mut().insert("retry-after", HeaderValue::from(s));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: Value) -> RuleSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn after_every_and_times_pick_the_calls() {
        let faults = Faults::default();
        faults
            .add(spec(
                json!({"match": {"endpoint": "graph"}, "after": 1, "every": 2, "times": 2, "action": {"status": 503}}),
            ))
            .unwrap();
        let graph = Facts { endpoint: "graph", ..Facts::default() };
        let fired: Vec<bool> = (0..8).map(|_| faults.fire(&graph).is_some()).collect();
        assert_eq!(fired, [false, true, false, true, false, false, false, false]);
        let token = Facts { endpoint: "token", ..Facts::default() };
        assert!(faults.fire(&token).is_none(), "another endpoint");
        assert_eq!(faults.list()[0].matched, 8);
        assert_eq!(faults.list()[0].injected, 2);
    }

    #[test]
    fn endpoints_by_path() {
        assert_eq!(endpoint_of("/contoso.test/oauth2/v2.0/token"), "token");
        assert_eq!(endpoint_of("/common/oauth2/v2.0/authorize"), "authorize");
        assert_eq!(endpoint_of("/v1.0/me/events"), "graph");
        assert_eq!(endpoint_of("/organizations/v2.0/.well-known/openid-configuration"), "discovery");
        assert_eq!(endpoint_of("/admin"), "other");
    }
}
