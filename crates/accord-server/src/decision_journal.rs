//! The journal of consent decisions, for test mode: who asked for what, which rule decided, and
//! what came out (the AADSTS code of a refusal). Kept in this process's memory, the newest
//! 10,000, and only when test mode turned it on: production pays nothing for it.

use accord_core::aadsts::Aadsts;
use accord_core::consent_engine::{AppOnlyOutcome, Decision, Outcome, Rule, Verdict};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use time::OffsetDateTime;

const CAPACITY: usize = 10_000;

static ENABLED: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicU64 = AtomicU64::new(1);
static ENTRIES: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

/// One decision.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, on Accord's clock.
    pub at: String,
    /// `sign_in` (the authorize endpoint's pages), `token` (the token endpoint's and Graph's
    /// delegated answers), `admin_consent`, `app_only`, or `fault` (an injected fault).
    pub kind: &'static str,
    pub tenant_id: String,
    pub client_app_id: String,
    /// The signed-in user's UPN (none for app-only).
    pub user: Option<String>,
    /// What was asked for (scopes, or the resource of `.default`).
    pub asked: String,
    /// `issue`, `prompt_consent`, `refuse`, …
    pub decision: &'static str,
    /// The rule that decided (the first that failed; else the last).
    pub rule: String,
    pub rule_text: String,
    /// A refusal's AADSTS code and message.
    pub aadsts: Option<u32>,
    pub message: Option<String>,
}

/// Starts recording (test mode).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What a decision is about.
pub struct Subject<'a> {
    pub kind: &'static str,
    pub tenant_id: String,
    pub client_app_id: String,
    pub user: Option<&'a str>,
    pub asked: String,
}

/// A fault test mode injected, for the journal.
pub struct Fault<'a> {
    /// The rule's id.
    pub rule: &'a str,
    /// `METHOD path`.
    pub request: String,
    /// What the rule did, in words.
    pub what: String,
    pub tenant: Option<String>,
    pub app: Option<String>,
    pub user: Option<String>,
    pub aadsts: Option<u32>,
}

/// Records a fault test mode injected (`kind: "fault"`).
pub fn record_fault(f: Fault<'_>) {
    if !enabled() {
        return;
    }
    push(Entry {
        seq: 0,
        at: rfc3339(accord_core::clock::now()),
        kind: "fault",
        tenant_id: f.tenant.unwrap_or_default(),
        client_app_id: f.app.unwrap_or_default(),
        user: f.user,
        asked: f.request,
        decision: "injected",
        rule: f.rule.to_string(),
        rule_text: f.what,
        aadsts: f.aadsts,
        message: None,
    });
}

/// Records an outcome of the consent engine (sign-in, admin consent).
pub fn record(subject: Subject<'_>, outcome: &Outcome) {
    let refusal = match &outcome.decision {
        Decision::Refuse(e) | Decision::NotPermitted(e) => Some(e),
        _ => None,
    };
    record_rules(subject, outcome.decision.kind(), &outcome.rules, refusal);
}

/// Records an app-only decision (client credentials).
pub fn record_app_only(subject: Subject<'_>, outcome: &AppOnlyOutcome) {
    let (kind, refusal) = match &outcome.decision {
        Ok(_) => ("issue", None),
        Err(e) => ("refuse", Some(e)),
    };
    record_rules(subject, kind, &outcome.rules, refusal);
}

/// Records the answer a client got after the engine's rules ran: `refusal` when it was one
/// (the token endpoint turns a prompt into AADSTS65001), else an issue.
pub fn record_answer(subject: Subject<'_>, rules: &[Rule], refusal: Option<&Aadsts>) {
    record_rules(subject, if refusal.is_some() { "refuse" } else { "issue" }, rules, refusal);
}

fn record_rules(subject: Subject<'_>, decision: &'static str, rules: &[Rule], refusal: Option<&Aadsts>) {
    if !enabled() {
        return;
    }
    let deciding = rules.iter().find(|r| r.verdict == Verdict::Fail).or(rules.last());
    push(Entry {
        seq: 0,
        at: rfc3339(accord_core::clock::now()),
        kind: subject.kind,
        tenant_id: subject.tenant_id,
        client_app_id: subject.client_app_id,
        user: subject.user.map(str::to_string),
        asked: subject.asked,
        decision,
        rule: deciding.map(|r| r.id.to_string()).unwrap_or_default(),
        rule_text: deciding.map(|r| r.text.clone()).unwrap_or_default(),
        aadsts: refusal.map(|e| e.code),
        message: refusal.map(|e| e.message.clone()),
    });
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn push(mut entry: Entry) {
    entry.seq = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut entries = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    if entries.len() == CAPACITY {
        entries.pop_front();
    }
    entries.push_back(entry);
}

/// The entries numbered after `after`, oldest first.
pub fn since(after: u64) -> Vec<Entry> {
    let entries = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    entries.iter().filter(|e| e.seq > after).cloned().collect()
}

/// Forgets every entry (a test-mode reset).
pub fn clear() {
    ENTRIES.lock().unwrap_or_else(|p| p.into_inner()).clear();
}
