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

pub fn event_views(events: &[AuditEvent], app_names: &HashMap<AppId, String>) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let app = e.app_id.map(|id| app_names.get(&id).cloned().unwrap_or_else(|| id.to_string()));
            context! { at => fmt_time(e.at), actor => e.actor, action => e.action, app, detail => e.detail.to_string() }
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
