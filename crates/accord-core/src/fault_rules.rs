//! Fault rules of test mode, as written in a scenario (`[[fault]]`) or sent to the control API
//! (`POST /_accord/test/faults`): one schema, checked here for both. The server applies them
//! (`accord-server`'s `test_control/faults.rs` and `replication_lag.rs`).
//!
//! A rule matches by endpoint (`token`, `authorize`, `devicecode`, `graph`, `discovery`,
//! `any`), method, tenant, app, user and path prefix; it skips its first `after` matches, then
//! acts on every `every`-th one, at most `times` times. Actions: an AADSTS error, an HTTP status
//! with `Retry-After`, a delay, a dropped connection, or replication lag.

use serde::{Deserialize, Serialize};

/// The longest delay a rule may add.
pub const MAX_DELAY_MS: u64 = 60_000;
/// The longest replication lag a rule may ask for (an hour: Entra's worst is minutes).
pub const MAX_LAG_SECONDS: u64 = 3_600;
pub const ENDPOINTS: &[&str] = &["token", "authorize", "devicecode", "graph", "discovery", "any"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Action {
    /// An AADSTS error (token and device-code endpoints).
    #[serde(default)]
    pub aadsts: Option<u32>,
    /// An HTTP status (429, 500, 503, …).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Graph's error code for a status on Graph (default by status).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default)]
    pub drop: bool,
    /// Replication lag: for this many seconds after each consent change (consent, assignment,
    /// revocation, an enterprise app created or disabled, a new secret or certificate), the
    /// token endpoint still answers as before it.
    #[serde(default)]
    pub replication_lag_seconds: Option<u64>,
}

/// A rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSpec {
    #[serde(default, rename = "match")]
    pub matching: Match,
    #[serde(default)]
    pub after: u32,
    #[serde(default)]
    pub times: Option<u32>,
    #[serde(default)]
    pub every: Option<u32>,
    pub action: Action,
}

impl RuleSpec {
    /// A rule that can act: its endpoint is known, it does one thing, and AADSTS errors go
    /// only where a client expects them.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = &self.matching.endpoint {
            if !ENDPOINTS.contains(&e.as_str()) {
                return Err(format!("match.endpoint '{e}' is not one of {}", ENDPOINTS.join(", ")));
            }
        }
        let a = &self.action;
        let kinds =
            [a.aadsts.is_some(), a.status.is_some(), a.delay_ms.is_some(), a.drop, a.replication_lag_seconds.is_some()]
                .iter()
                .filter(|k| **k)
                .count();
        if kinds != 1 {
            return Err("the action must be exactly one of aadsts, status (with retryAfter, code), delayMs, drop, \
                 replicationLagSeconds"
                .into());
        }
        if let Some(seconds) = a.replication_lag_seconds {
            return self.check_lag(seconds);
        }
        if a.aadsts.is_some() && !matches!(self.matching.endpoint.as_deref(), Some("token") | Some("devicecode")) {
            return Err("an aadsts action needs match.endpoint \"token\" or \"devicecode\"".into());
        }
        if let Some(s) = a.status {
            if !(400..=599).contains(&s) {
                return Err(format!("status {s} is not an error status (400–599)"));
            }
        }
        if a.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
            return Err(format!("delayMs may be at most {MAX_DELAY_MS}"));
        }
        if self.every == Some(0) || self.times == Some(0) {
            return Err("every and times count from 1".into());
        }
        Ok(())
    }

    /// A lag rule: matched by tenant and app only (it acts on what the token endpoint sees, not
    /// on one request), for every request while it lasts.
    fn check_lag(&self, seconds: u64) -> Result<(), String> {
        let m = &self.matching;
        if m.endpoint.as_deref().is_some_and(|e| e != "token")
            || m.method.is_some()
            || m.user.is_some()
            || m.path.is_some()
        {
            return Err("a replicationLagSeconds rule matches by tenant and app only (the token endpoint)".into());
        }
        if self.after != 0 || self.every.is_some() || self.times.is_some() {
            return Err(
                "a replicationLagSeconds rule lasts until it is removed: after, every and times do not apply".into()
            );
        }
        if !(1..=MAX_LAG_SECONDS).contains(&seconds) {
            return Err(format!("replicationLagSeconds must be 1 to {MAX_LAG_SECONDS}"));
        }
        Ok(())
    }

    pub fn is_lag(&self) -> bool {
        self.action.replication_lag_seconds.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spec(json: Value) -> RuleSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn rules_are_checked() {
        assert!(spec(json!({"action": {"status": 429, "retryAfter": 2}})).check().is_ok());
        assert!(spec(json!({"action": {}})).check().is_err(), "no action");
        assert!(spec(json!({"action": {"status": 429, "drop": true}})).check().is_err(), "two actions");
        assert!(spec(json!({"action": {"aadsts": 65001}})).check().unwrap_err().contains("token"));
        assert!(spec(json!({"match": {"endpoint": "token"}, "action": {"aadsts": 65001}})).check().is_ok());
        assert!(spec(json!({"match": {"endpoint": "mail"}, "action": {"drop": true}})).check().is_err());
        assert!(spec(json!({"action": {"status": 200}})).check().is_err());
        assert!(spec(json!({"every": 0, "action": {"drop": true}})).check().is_err());
        assert!(spec(json!({"action": {"delayMs": 60_001}})).check().is_err());
        assert!(serde_json::from_value::<RuleSpec>(json!({"action": {"drop": true}, "often": 1})).is_err());
    }

    #[test]
    fn lag_rules_match_by_tenant_and_app_and_last() {
        let lag = |extra: Value| {
            let mut rule = json!({"action": {"replicationLagSeconds": 20}});
            rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            spec(rule).check()
        };
        assert!(lag(json!({})).is_ok());
        assert!(lag(json!({"match": {"tenant": "contoso.test", "app": "x", "endpoint": "token"}})).is_ok());
        assert!(lag(json!({"match": {"user": "alice"}})).unwrap_err().contains("tenant and app only"));
        assert!(lag(json!({"match": {"endpoint": "graph"}})).is_err());
        assert!(lag(json!({"times": 2})).unwrap_err().contains("lasts until"));
        assert!(spec(json!({"action": {"replicationLagSeconds": 0}})).check().is_err());
        assert!(spec(json!({"action": {"replicationLagSeconds": 3_601}})).check().is_err());
    }
}
