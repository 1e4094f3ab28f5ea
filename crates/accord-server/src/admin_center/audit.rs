//! Audit log: every change with who made it, filtered by activity and application.

use super::layout::{self, crumbs, fmt_time, need, respond, Page, Section};
use crate::portal::PortalUser;
use crate::service::administration::{self, EnterpriseAppFilter, Operation};
use crate::state::SharedState;
use accord_core::consent_records::AuditEvent;
use accord_core::ids::AppId;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;

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
    let words = action.replace(['.', '_'], " ");
    let mut chars = words.trim().chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// An event's details as short "name: value" lines instead of raw JSON.
pub fn detail_text(detail: &serde_json::Value) -> String {
    fn value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items.iter().map(value).collect::<Vec<_>>().join(", "),
            serde_json::Value::Null => "—".into(),
            other => other.to_string(),
        }
    }
    match detail {
        serde_json::Value::Object(fields) => {
            fields.iter().map(|(k, v)| format!("{}: {}", k.replace('_', " "), value(v))).collect::<Vec<_>>().join("; ")
        }
        serde_json::Value::Null => String::new(),
        other => value(other),
    }
}

pub fn event_views(events: &[AuditEvent], app_names: &HashMap<AppId, String>) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let app = e.app_id.map(|id| app_names.get(&id).cloned().unwrap_or_else(|| id.to_string()));
            context! {
                at => fmt_time(e.at), actor => e.actor, action => e.action, activity => activity_name(&e.action),
                app, detail => detail_text(&e.detail),
            }
        })
        .collect()
}

/// `GET /admin/audit?action=consent.&app={app id}`
pub async fn log(
    State(state): State<SharedState>,
    portal: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        need(&portal, Operation::ReadAudit)?;
        let store = &*state.store;
        let action = q.get("action").cloned().unwrap_or_default();
        let app = q.get("app").and_then(|a| a.parse::<AppId>().ok());
        let events = administration::audit_log(store, &portal.actor, &portal.tenant, app, &action, 200).await?;
        let apps = if administration::may(&portal.actor, Operation::ReadDirectory) {
            administration::enterprise_apps(store, &portal.actor, &portal.tenant, &EnterpriseAppFilter::default())
                .await?
        } else {
            Vec::new()
        };
        let names: HashMap<AppId, String> = apps.iter().map(|a| (a.sp.app_id, a.sp.display_name.clone())).collect();
        let app_options: Vec<Value> =
            apps.iter().map(|a| context! { app_id => a.sp.app_id.to_string(), name => a.sp.display_name }).collect();
        let actions: Vec<Value> = ACTIONS.iter().map(|(value, label)| context! { value, label }).collect();
        let ctx = context! {
            events => event_views(&events, &names), actions, apps => app_options,
            filter => context! { action, app => app.map(|a| a.to_string()).unwrap_or_default() },
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
    }
}
