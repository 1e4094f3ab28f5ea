//! Audit log: every change with who made it, filtered by activity and application.

use super::layout::{self, crumbs, fmt_time, need, parse_id, respond, Page, Section};
use crate::portal::PortalUser;
use crate::service::administration::{self, EnterpriseAppFilter, Operation};
use crate::service::ServiceError;
use crate::state::SharedState;
use accord_core::consent_records::AuditEvent;
use accord_core::ids::AppId;
use accord_store::{AuditPosition, AuditQuery};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::{context, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The activity filter: action prefixes as the log writes them.
const ACTIONS: &[(&str, &str)] = &[
    ("", "All activities"),
    ("consent.", "Consent and permission grants"),
    ("request.", "Admin consent requests"),
    ("assignment.", "User and group assignments"),
    ("app_permission.", "Application permissions removed"),
    ("enterprise_app.", "Enterprise application properties"),
    ("settings.", "Consent settings and classifications"),
    ("app.", "App registrations and secrets"),
    ("user.", "Users and roles"),
    ("group.", "Groups"),
];

/// Activity names as a person reads them (Entra's audit log words them so); the code stays
/// beside the name, for filters and scripts.
const ACTIVITY_NAMES: &[(&str, &str)] = &[
    ("consent.admin.granted", "Consent to application for all users"),
    ("consent.user.granted", "Consent to application"),
    ("consent.created", "Add delegated permission grant"),
    ("consent.updated", "Update delegated permission grant"),
    ("consent.revoked", "Remove delegated permission grant"),
    ("consent.expired", "Delegated permission grant ended"),
    ("request.filed", "Request admin consent"),
    ("request.approved", "Approve admin consent request"),
    ("request.denied", "Deny admin consent request"),
    ("request.blocked", "Block application (admin consent request)"),
    ("request.expired", "Admin consent request expired"),
    ("assignment.added", "Add app role assignment"),
    ("assignment.removed", "Remove app role assignment"),
    ("assignment.expired", "App role assignment ended"),
    ("app_permission.revoked", "Remove application permission"),
    ("enterprise_app.updated", "Update service principal"),
    ("enterprise_app.deleted", "Delete service principal"),
    ("settings.user_consent", "Update user consent settings"),
    ("settings.admin_consent_requests", "Update admin consent request settings"),
    ("settings.classification", "Update permission classifications"),
    ("app.created", "Add application"),
    ("app.updated", "Update application"),
    ("app.deleted", "Delete application"),
    ("app.secret_added", "Add client secret"),
    ("app.secret_deleted", "Remove client secret"),
    ("credential.certificate_added", "Add certificate"),
    ("credential.certificate_removed", "Remove certificate"),
    ("credential.federated_added", "Add federated identity credential"),
    ("credential.federated_removed", "Remove federated identity credential"),
    ("user.created", "Add user"),
    ("user.deleted", "Delete user"),
    ("user.renamed", "Update user"),
    ("user.enabled", "Enable account"),
    ("user.disabled", "Disable account"),
    ("user.password_reset", "Reset user password"),
    ("user.roles", "Update directory roles"),
    ("user.sessions_revoked", "Revoke sign-in sessions"),
    ("group.created", "Add group"),
    ("group.member_added", "Add member to group"),
    ("group.member_removed", "Remove member from group"),
];

/// The readable name of an audit action; an action not in the table reads as its words
/// ("widget.turned_on" → "Widget turned on").
pub fn activity_name(action: &str) -> String {
    if let Some((_, name)) = ACTIVITY_NAMES.iter().find(|(code, _)| *code == action) {
        return (*name).to_string();
    }
    capitalised(&action.replace(['.', '_'], " "))
}

fn capitalised(words: &str) -> String {
    let mut chars = words.trim().chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A detail's key as words: `appRoleAssignmentRequired` and `principal_type` read as
/// "app role assignment required" and "principal type".
fn property_words(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c == '_' {
            out.push(' ');
        } else if c.is_uppercase() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.is_empty() => "(none)".into(),
        serde_json::Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Bool(true) => "Yes".into(),
        serde_json::Value::Bool(false) => "No".into(),
        other => other.to_string(),
    }
}

/// `{"oldValue": a, "newValue": b}`: a property the event changed (the service records
/// changes so, as Entra's `modifiedProperties` does).
fn as_change(v: &serde_json::Value) -> Option<(&serde_json::Value, &serde_json::Value)> {
    let fields = v.as_object()?;
    (fields.len() == 2).then_some(())?;
    Some((fields.get("oldValue")?, fields.get("newValue")?))
}

/// An event's details split for its details view: the properties it changed (old → new)
/// and everything else (name, value).
pub struct EventDetail {
    pub modified: Vec<(String, String, String)>,
    pub other: Vec<(String, String)>,
}

pub fn event_detail(detail: &serde_json::Value) -> EventDetail {
    let mut out = EventDetail { modified: Vec::new(), other: Vec::new() };
    match detail {
        serde_json::Value::Object(fields) => {
            for (key, v) in fields {
                match as_change(v) {
                    Some((old, new)) => out.modified.push((property_words(key), value_text(old), value_text(new))),
                    None => out.other.push((property_words(key), value_text(v))),
                }
            }
        }
        serde_json::Value::Null => {}
        other => out.other.push(("details".into(), value_text(other))),
    }
    out
}

/// An event's details on one line: "name: value; name: old → new".
pub fn detail_text(detail: &serde_json::Value) -> String {
    let d = event_detail(detail);
    let changed = d.modified.iter().map(|(k, old, new)| format!("{k}: {old} → {new}"));
    let other = d.other.iter().map(|(k, v)| if k == "details" { v.clone() } else { format!("{k}: {v}") });
    changed.chain(other).collect::<Vec<_>>().join("; ")
}

pub fn event_views(events: &[AuditEvent], app_names: &HashMap<AppId, String>) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let app = e.app_id.map(|id| app_name(app_names, id));
            context! {
                at => fmt_time(e.at), actor => e.actor, action => e.action, activity => activity_name(&e.action),
                app, detail => detail_text(&e.detail), href => format!("/admin/audit/{}", e.id),
            }
        })
        .collect()
}

fn app_name(names: &HashMap<AppId, String>, id: AppId) -> String {
    names.get(&id).cloned().unwrap_or_else(|| id.to_string())
}

/// Events a page shows; one more is read to know whether an older page exists.
const PAGE_SIZE: u32 = 50;
/// The most events one export carries (read in pages of 1,000).
const EXPORT_LIMIT: usize = 10_000;

/// The filters of the log's page and of its export, from the query string.
struct Filter {
    action: String,
    app: Option<AppId>,
    /// As typed (`YYYY-MM-DD`), for the form and the links.
    from: String,
    to: String,
    query: AuditQuery,
}

impl Filter {
    fn parse(q: &HashMap<String, String>) -> Result<Filter, ServiceError> {
        let text = |name: &str| q.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
        let (action, from, to) = (text("action"), text("from"), text("to"));
        let app = match q.get("app").map(String::as_str) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<AppId>().map_err(|_| invalid("app", "is not an application (client) ID"))?),
        };
        let start = day("from", &from)?;
        let end = day("to", &to)?;
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(invalid("from", "is after the date in to"));
            }
        }
        let after = match q.get("after").map(String::as_str) {
            None | Some("") => None,
            Some(raw) => Some(parse_position(raw).ok_or_else(|| invalid("after", "is not a position in the log"))?),
        };
        let query = AuditQuery {
            app_id: app,
            action_prefix: action.clone(),
            from: start.map(|d| d.midnight().assume_utc()),
            // The `to` day is included: events before the next midnight.
            until: end.and_then(|d| d.next_day()).map(|d| d.midnight().assume_utc()),
            after,
            limit: PAGE_SIZE,
        };
        Ok(Filter { action, app, from, to, query })
    }

    /// A link to `path` with these filters (not the page position) and `extra`.
    fn link(&self, path: &str, extra: (&str, &str)) -> String {
        let app = self.app.map(|a| a.to_string()).unwrap_or_default();
        let pairs = [("action", self.action.as_str()), ("app", app.as_str()), ("from", &self.from), ("to", &self.to)];
        layout::link(path, pairs.into_iter().chain([extra]))
    }
}

fn invalid(field: &str, why: &str) -> ServiceError {
    accord_core::Aadsts::invalid_parameter(field, why).into()
}

/// `YYYY-MM-DD` (what a date input sends), or nothing.
fn day(field: &str, raw: &str) -> Result<Option<time::Date>, ServiceError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format).map(Some).map_err(|_| invalid(field, "is not a date (YYYY-MM-DD)"))
}

/// A page position as links carry it: the last event's time (Unix microseconds) and id.
fn position_text(e: &AuditEvent) -> String {
    format!("{}.{}", e.at.unix_timestamp_nanos() / 1000, e.id)
}

fn parse_position(raw: &str) -> Option<AuditPosition> {
    let (micros, id) = raw.split_once('.')?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros.parse::<i128>().ok()?.checked_mul(1000)?).ok()?;
    Some(AuditPosition { at, id: Uuid::parse_str(id).ok()? })
}

/// The tenant's enterprise apps by app id (for names and the application filter), when the
/// signed-in person may read them.
async fn app_names(state: &SharedState, portal: &PortalUser) -> Result<Vec<(AppId, String)>, ServiceError> {
    if !administration::may(&portal.actor, Operation::ReadDirectory) {
        return Ok(Vec::new());
    }
    let apps =
        administration::enterprise_apps(&*state.store, &portal.actor, &portal.tenant, &EnterpriseAppFilter::default())
            .await?;
    Ok(apps.into_iter().map(|a| (a.sp.app_id, a.sp.display_name)).collect())
}

/// `GET /admin/audit?action=consent.&app={app id}&from=2026-12-01&to=2026-12-05&after={position}`
pub async fn log(
    State(state): State<SharedState>,
    portal: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        need(&portal, Operation::ReadAudit)?;
        let filter = Filter::parse(&q)?;
        let query = AuditQuery { limit: PAGE_SIZE + 1, ..filter.query.clone() };
        let mut events = administration::audit_log(&*state.store, &portal.actor, &portal.tenant, &query).await?;
        let more = events.len() > PAGE_SIZE as usize;
        events.truncate(PAGE_SIZE as usize);
        let apps = app_names(&state, &portal).await?;
        let names: HashMap<AppId, String> = apps.iter().cloned().collect();
        let app_options: Vec<Value> =
            apps.iter().map(|(id, name)| context! { app_id => id.to_string(), name }).collect();
        let actions: Vec<Value> = ACTIONS.iter().map(|(value, label)| context! { value, label }).collect();
        let older = events.last().filter(|_| more).map(|e| filter.link("/admin/audit", ("after", &position_text(e))));
        let ctx = context! {
            events => event_views(&events, &names), actions, apps => app_options,
            filter => context! {
                action => filter.action, app => filter.app.map(|a| a.to_string()).unwrap_or_default(),
                from => filter.from, to => filter.to,
            },
            paging => context! {
                older,
                newest => filter.query.after.is_some().then(|| filter.link("/admin/audit", ("after", ""))),
            },
            export => context! {
                csv => filter.link("/admin/audit/export", ("format", "csv")),
                json => filter.link("/admin/audit/export", ("format", "json")),
            },
        };
        let page = Page {
            section: Section::Audit,
            crumbs: crumbs([("Audit log", "/admin/audit")]),
            template: "admin/audit.html",
            ctx,
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `GET /admin/audit/{id}`: one event — who, what, when, the properties it changed
/// (old → new) and its other details.
pub async fn event(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        need(&portal, Operation::ReadAudit)?;
        let id: Uuid = parse_id(&id)?;
        let e = administration::audit_event(&*state.store, &portal.actor, &portal.tenant, id).await?;
        let names: HashMap<AppId, String> = app_names(&state, &portal).await?.into_iter().collect();
        let detail = event_detail(&e.detail);
        let activity = activity_name(&e.action);
        let ctx = context! {
            event => context! {
                id => e.id.to_string(), at => fmt_time(e.at), actor => e.actor,
                actor_id => e.actor_id.map(|a| a.to_string()), action => e.action, activity,
                app => e.app_id.map(|a| app_name(&names, a)), app_id => e.app_id.map(|a| a.to_string()),
                modified => detail.modified.iter().map(|(name, old, new)| context! { name, old, new }).collect::<Vec<_>>(),
                other => detail.other.iter().map(|(name, value)| context! { name, value }).collect::<Vec<_>>(),
            },
        };
        let page = Page {
            section: Section::Audit,
            crumbs: crumbs([("Audit log", "/admin/audit".to_string()), (activity.as_str(), String::new())]),
            template: "admin/audit_event.html",
            ctx,
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `GET /admin/audit/export?format=csv|json&…filters`: the filtered log as a download
/// (newest first, at most 10,000 events).
pub async fn export(
    State(state): State<SharedState>,
    portal: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        need(&portal, Operation::ReadAudit)?;
        let csv = match q.get("format").map(String::as_str) {
            Some("csv") => true,
            Some("json") => false,
            _ => return Err(invalid("format", "must be csv or json")),
        };
        let filter = Filter::parse(&q)?;
        let mut query = AuditQuery { limit: 1000, after: None, ..filter.query };
        let mut events = Vec::new();
        while events.len() < EXPORT_LIMIT {
            let page = administration::audit_log(&*state.store, &portal.actor, &portal.tenant, &query).await?;
            let full = page.len() == query.limit as usize;
            query.after = page.last().map(|e| AuditPosition { at: e.at, id: e.id });
            events.extend(page);
            if !full {
                break;
            }
        }
        events.truncate(EXPORT_LIMIT);
        let names: HashMap<AppId, String> = app_names(&state, &portal).await?.into_iter().collect();
        let (body, kind, ext) = if csv {
            (export_csv(&events, &names), "text/csv; charset=utf-8", "csv")
        } else {
            (export_json(&events, &names), "application/json", "json")
        };
        let disposition = format!("attachment; filename=\"audit-log.{ext}\"");
        Ok(([(header::CONTENT_TYPE, kind.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
            .into_response())
    }
    .await;
    respond(&state, &portal, result).await
}

fn export_json(events: &[AuditEvent], names: &HashMap<AppId, String>) -> String {
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id, "activityDateTime": rfc3339(e.at), "activity": activity_name(&e.action),
                "action": e.action, "initiatedBy": { "id": e.actor_id, "userPrincipalName": e.actor },
                "appId": e.app_id, "appDisplayName": e.app_id.map(|a| app_name(names, a)), "detail": e.detail,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "value": rows })).unwrap_or_default()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn export_csv(events: &[AuditEvent], names: &HashMap<AppId, String>) -> String {
    let mut out =
        String::from("Date (UTC),Activity,Action,Initiated by,Application,Application ID,Details,Event ID\r\n");
    for e in events {
        let app = e.app_id.map(|a| app_name(names, a)).unwrap_or_default();
        let app_id = e.app_id.map(|a| a.to_string()).unwrap_or_default();
        let cells = [
            rfc3339(e.at),
            activity_name(&e.action),
            e.action.clone(),
            e.actor.clone(),
            app,
            app_id,
            detail_text(&e.detail),
            e.id.to_string(),
        ];
        out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field, quoted. App names and justifications are chosen by others: a field that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) is prefixed with `'`.
fn csv_cell(value: &str) -> String {
    let guarded =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activities_and_details_read_as_words() {
        assert_eq!(activity_name("consent.admin.granted"), "Consent to application for all users");
        assert_eq!(activity_name("assignment.added"), "Add app role assignment");
        assert_eq!(activity_name("widget.turned_on"), "Widget turned on");
        let detail =
            serde_json::json!({"permissions": ["User.Read", "Calendars.Read"], "until": "2027-01-01T00:00:00Z"});
        assert_eq!(detail_text(&detail), "permissions: User.Read, Calendars.Read; until: 2027-01-01T00:00:00Z");
        assert_eq!(
            detail_text(&serde_json::json!({"role": null, "principal_type": "User"})),
            "principal type: User; role: —"
        );
        // Changes read old → new, first; keys in camelCase read as words.
        let change = serde_json::json!({
            "user": "bob@contoso.test",
            "roles": {"oldValue": [], "newValue": ["Global Administrator"]},
            "accountEnabled": {"oldValue": true, "newValue": false},
        });
        assert_eq!(
            detail_text(&change),
            "account enabled: Yes → No; roles: (none) → Global Administrator; user: bob@contoso.test"
        );
        let d = event_detail(&change);
        assert_eq!(d.modified.len(), 2);
        assert_eq!(d.other, vec![("user".to_string(), "bob@contoso.test".to_string())]);
        // Only an exact {oldValue, newValue} pair is a change.
        assert_eq!(event_detail(&serde_json::json!({"x": {"oldValue": 1}})).modified.len(), 0);
    }

    #[test]
    fn csv_cells_are_quoted_and_never_run_as_formulas() {
        assert_eq!(csv_cell("plain"), "\"plain\"");
        assert_eq!(csv_cell("say \"hi\", then go"), "\"say \"\"hi\"\", then go\"");
        for formula in ["=HYPERLINK(\"http://evil\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            let cell = csv_cell(formula);
            assert!(cell.starts_with("\"'"), "{formula} is neutralised: {cell}");
        }
        assert_eq!(csv_cell("a\nb"), "\"a\nb\"", "line breaks stay inside the quotes");
    }

    #[test]
    fn positions_and_days_parse_strictly() {
        let e = AuditEvent {
            tenant_id: Uuid::nil().into(),
            id: Uuid::from_u128(7),
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            actor_id: None,
            actor: "system".into(),
            action: "x".into(),
            app_id: None,
            detail: serde_json::Value::Null,
        };
        assert_eq!(parse_position(&position_text(&e)), Some(AuditPosition { at: e.at, id: e.id }));
        for bad in [
            "",
            "1.2",
            "x.00000000-0000-0000-0000-000000000007",
            "99999999999999999999999.00000000-0000-0000-0000-000000000007",
        ] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
        assert!(day("from", "2026-12-05").unwrap().is_some());
        assert!(day("from", "").unwrap().is_none());
        assert!(day("from", "2026-02-30").is_err());
        assert!(day("from", "05/12/2026").is_err());
    }
}
