//! Replication lag, as test mode injects it: for a while after a change, the token endpoint of
//! the Microsoft cloud still answers from a replica that has not seen it — AADSTS65001 or
//! 700016 just after an admin consented, a new secret or certificate refused, a revoked grant
//! still honoured. A rule names how long the lag lasts (seconds on Accord's clock) and, if it
//! likes, the tenant and the client app it applies to. Only changes made after the rule was
//! added lag: "from now on, changes take 20 seconds to arrive".
//!
//! This module only holds the rules and counts what they did; the service layer rewinds the
//! consent world by the journal of consent changes (`service::replication`), and client
//! authentication hides credentials added within the lag. Rules exist only in test mode (the
//! control API adds them), so production never looks further than [`active`].

use accord_core::ids::AppId;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static RULES: Mutex<Vec<LagRule>> = Mutex::new(Vec::new());

/// One lag rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LagRule {
    /// The fault rule's id (`fault-N`).
    pub id: String,
    /// A tenant id or one of its domains; any tenant when absent.
    pub tenant: Option<String>,
    /// A client app id; any app when absent.
    pub app: Option<String>,
    pub seconds: u64,
    /// When the rule was added (Accord's clock): changes made before it have all arrived, so
    /// a world loaded just before is not hidden.
    #[serde(skip)]
    pub since: OffsetDateTime,
    /// Answers it changed so far.
    pub injected: u32,
}

/// The lag in force for one tenant and client: changes made after `horizon` are not seen yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    pub rule: String,
    pub seconds: u64,
    pub horizon: OffsetDateTime,
}

/// Whether any lag rule exists (one atomic load: the price production pays).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

pub fn add(rule: LagRule) {
    let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    rules.push(rule);
    ACTIVE.store(true, Ordering::Relaxed);
}

pub fn clear() {
    RULES.lock().unwrap_or_else(|p| p.into_inner()).clear();
    ACTIVE.store(false, Ordering::Relaxed);
}

/// How many answers the rule `id` changed.
pub fn injected(id: &str) -> u32 {
    RULES.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|r| r.id == id).map(|r| r.injected).unwrap_or(0)
}

/// The first rule for a request of `app` to a tenant known by `tenant_names` (its id and
/// domains), with its horizon on Accord's clock.
pub fn lag_for(tenant_names: &[String], app: AppId) -> Option<Lag> {
    if !active() {
        return None;
    }
    let rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    let app = app.to_string();
    let rule = rules.iter().find(|r| {
        r.tenant.as_deref().is_none_or(|t| tenant_names.iter().any(|n| n.eq_ignore_ascii_case(t)))
            && r.app.as_deref().is_none_or(|a| a.eq_ignore_ascii_case(&app))
    })?;
    let seconds = i64::try_from(rule.seconds).unwrap_or(i64::MAX);
    let horizon = (accord_core::clock::now() - Duration::seconds(seconds)).max(rule.since);
    Some(Lag { rule: rule.id.clone(), seconds: rule.seconds, horizon })
}

/// Counts an answer the lag changed, in `/metrics` and the decision journal.
pub fn record(lag: &Lag, tenant: &str, app: AppId, user: Option<&str>, request: &str, what: String) {
    if let Some(rule) = RULES.lock().unwrap_or_else(|p| p.into_inner()).iter_mut().find(|r| r.id == lag.rule) {
        rule.injected = rule.injected.saturating_add(1);
    }
    metrics::counter!("accord_faults_injected_total", "action" => "replication_lag").increment(1);
    tracing::warn!(rule = %lag.rule, tenant, app = %app, "test mode: replication lag changed an answer");
    crate::decision_journal::record_fault(crate::decision_journal::Fault {
        rule: &lag.rule,
        request: request.to_string(),
        what,
        tenant: Some(tenant.to_string()),
        app: Some(app.to_string()),
        user: user.map(str::to_string),
        aadsts: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_tenant_name_and_app() {
        let app: AppId = "11111111-2222-3333-4444-555555555555".parse().unwrap();
        let other: AppId = "11111111-2222-3333-4444-666666666666".parse().unwrap();
        clear();
        assert!(lag_for(&["contoso.test".into()], app).is_none(), "no rule, no lag");
        add(LagRule {
            id: "fault-1".into(),
            tenant: Some("Contoso.test".into()),
            app: Some(app.to_string()),
            seconds: 20,
            since: accord_core::clock::now() - Duration::minutes(5),
            injected: 0,
        });
        let lag = lag_for(&["00000000-0000-0000-0000-000000000001".into(), "contoso.test".into()], app).unwrap();
        assert_eq!((lag.rule.as_str(), lag.seconds), ("fault-1", 20));
        let behind = accord_core::clock::now() - lag.horizon;
        assert!(behind >= Duration::seconds(20) && behind < Duration::seconds(21), "{behind}");
        assert!(lag_for(&["fabrikam.test".into()], app).is_none(), "another tenant");
        assert!(lag_for(&["contoso.test".into()], other).is_none(), "another app");
        record(&lag, "contoso.test", app, None, "POST /token", "test".into());
        assert_eq!(injected("fault-1"), 1);
        clear();
        assert!(!active());
    }
}
