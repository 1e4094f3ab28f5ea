//! Enterprise applications > Admin consent requests: pending requests grouped per app (Graph's
//! `appConsentRequest`), the history, and a request's page with Approve, Deny and Block for
//! reviewers. Whether a reviewer may approve is the workflow's own rule
//! (`admin_consent_requests::approval_preview`); it is asked again when the form comes back.

use super::enterprise_apps::{changed_since_shown, fingerprint};
use super::layout::{
    self, crumbs, done, fmt_time, not_found, parse_id, respond, Caps, Destructive, Form, Page, Section,
};
use crate::portal::PortalUser;
use crate::service::admin_consent_requests;
use crate::service::administration::{self, RequestSummary};
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use accord_core::consent_engine::{PermissionKind, PermissionRef};
use accord_core::consent_records::RequestStatus;
use accord_core::directory::Application;
use accord_core::ids::AppId;
use accord_core::Aadsts;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

fn history_view(r: &RequestSummary) -> Value {
    context! {
        app_id => r.request.client_app_id.to_string(),
        user => format!("{} ({})", r.requester.display_name, r.requester.upn),
        reason => r.request.reason, created => fmt_time(r.request.created_at),
        status => r.request.status.as_str(), result => r.request.result.as_str(),
        reviewer => r.reviewer.as_ref().map(|p| p.upn.clone()).unwrap_or_default(),
        review_justification => r.request.review_justification.clone().unwrap_or_default(),
    }
}

/// `GET /admin/requests[?view=history]`
pub async fn list(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let apps = administration::app_consent_requests(&*state.store, &portal.actor, &portal.tenant, None).await?;
        let history_view_selected = q.get("view").map(String::as_str) == Some("history");
        let pending: Vec<Value> = apps
            .iter()
            .filter(|a| a.pending().next().is_some())
            .map(|a| {
                context! {
                    app_id => a.app_id.to_string(), name => a.display_name, publisher => a.publisher,
                    verified => a.verified_publisher,
                    permissions => a.permissions.iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
                    pending => a.pending().count(),
                    latest => a.pending().map(|r| r.request.created_at).max().map(fmt_time),
                    expires => a.pending().map(|r| r.request.expires_at).min().map(fmt_time),
                }
            })
            .collect();
        let mut history: Vec<(time::OffsetDateTime, Value)> = Vec::new();
        for a in &apps {
            for r in a.requests.iter().filter(|r| r.request.status != RequestStatus::InProgress) {
                let mut v = history_view(r);
                v = context! { app => a.display_name, ..v };
                history.push((r.request.reviewed_at.or(r.request.completed_at).unwrap_or(r.request.created_at), v));
            }
        }
        history.sort_by_key(|h| std::cmp::Reverse(h.0));
        let history: Vec<Value> = history.into_iter().map(|(_, v)| v).collect();
        let (pending, history, paging) = if history_view_selected {
            let (history, paging) = layout::in_pages(history, "/admin/requests", &q)?;
            (pending, history, paging)
        } else {
            let (pending, paging) = layout::in_pages(pending, "/admin/requests", &q)?;
            (pending, history, paging)
        };
        let ctx = context! {
            view => if history_view_selected { "history" } else { "pending" },
            apps => pending, history, paging,
        };
        let crumbs = crumbs([
            ("Enterprise applications", "/admin/enterprise-apps"),
            ("Admin consent requests", "/admin/requests"),
        ]);
        let page = Page { section: Section::Requests, crumbs, template: "admin/requests.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

async fn client_app(state: &AppState, app_id: AppId) -> Result<Application, ServiceError> {
    state.store.application_by_app_id(app_id).await?.ok_or_else(not_found)
}

/// `GET /admin/requests/{app id}`: the app, what is asked, every requester's justification.
pub async fn show(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let app_id = parse_id(&app)?;
        let store = &*state.store;
        let group = administration::app_consent_requests(store, &portal.actor, &portal.tenant, Some(app_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(not_found)?;
        let pending: Vec<&RequestSummary> = group.pending().collect();
        let caps = Caps::of(&state, &portal).await;
        let (mut approve, mut approve_refusal) = (None, None);
        if caps.reviewer && !pending.is_empty() {
            let client = client_app(&state, app_id).await?;
            match admin_consent_requests::approval_preview(store, &portal.tenant, &client, &portal.user).await {
                Ok(perms) => {
                    // What Approve grants, said before it is pressed (issue 18: it needs the same
                    // deliberate confirmation as Block).
                    let names = |kind: PermissionKind| -> Vec<String> {
                        perms.iter().filter(|p| p.kind == kind).map(PermissionRef::name).collect()
                    };
                    approve = Some(context! {
                        shown => fingerprint(&perms),
                        delegated => names(PermissionKind::Delegated),
                        application => names(PermissionKind::Application),
                    })
                }
                Err(
                    ServiceError::Refused(e)
                    | ServiceError::Forbidden(e)
                    | ServiceError::Conflict(e)
                    | ServiceError::NotFound(e),
                ) => approve_refusal = Some(e.message),
                Err(other) => return Err(other),
            }
        }
        let permissions: Vec<Value> = group
            .permissions
            .iter()
            .map(|p| {
                context! {
                    resource => p.resource, value => p.value, display_name => p.display_name,
                    description => p.description, admin_only => p.admin_consent_required,
                }
            })
            .collect();
        let pending_rows: Vec<Value> = pending
            .iter()
            .map(|r| {
                context! {
                    user => r.requester.display_name, upn => r.requester.upn, reason => r.request.reason,
                    created => fmt_time(r.request.created_at), expires => fmt_time(r.request.expires_at),
                }
            })
            .collect();
        let history: Vec<Value> =
            group.requests.iter().filter(|r| r.request.status != RequestStatus::InProgress).map(history_view).collect();
        let ctx = context! {
            app => context! {
                name => group.display_name, app_id => group.app_id.to_string(), publisher => group.publisher,
                verified => group.verified_publisher,
                sp_href => group.sp_id.filter(|_| caps.read_directory).map(|id| format!("/admin/enterprise-apps/{id}")),
            },
            permissions, pending => pending_rows, history, approve, approve_refusal,
            request_id => pending.first().map(|r| r.request.id.to_string()),
        };
        let crumbs = crumbs([
            ("Enterprise applications".to_string(), "/admin/enterprise-apps".to_string()),
            ("Admin consent requests".to_string(), "/admin/requests".to_string()),
            (group.display_name.clone(), format!("/admin/requests/{app_id}")),
        ]);
        let page = Page { section: Section::Requests, crumbs, template: "admin/request.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// The request a review form names, which must be one of the app's.
async fn request_of_app(
    state: &AppState,
    portal: &PortalUser,
    app_id: AppId,
    form: &Form,
) -> Result<Uuid, ServiceError> {
    let id = Uuid::parse_str(form.get("request"))
        .map_err(|_| Aadsts::invalid_parameter("request", "no request was named"))?;
    match state.store.consent_request(portal.tenant.id, id).await? {
        Some(r) if r.client_app_id == app_id => Ok(id),
        _ => Err(not_found()),
    }
}

/// `POST /admin/requests/{app id}/approve`
pub async fn approve_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    // Tenant-wide consent in one click is as weighty as a block: it needs the confirmation box.
    layout::post(state, portal, &headers, &body, Destructive::Yes, |form| async move {
        let app_id = parse_id(&app)?;
        let request = request_of_app(state, portal, app_id, &form).await?;
        let client = client_app(state, app_id).await?;
        let store = &*state.store;
        // Grant nothing beyond what the page showed (new requests may have arrived since).
        let now = admin_consent_requests::approval_preview(store, &portal.tenant, &client, &portal.user).await?;
        if fingerprint(&now) != form.get("shown") {
            return Err(changed_since_shown());
        }
        admin_consent_requests::approve(store, &portal.tenant, request, &portal.user).await?;
        Ok(done(&format!("/admin/requests/{app_id}"), "approved"))
    })
    .await
}

/// `POST /admin/requests/{app id}/deny` (justification required)
pub async fn deny_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let app_id = parse_id(&app)?;
        let request = request_of_app(state, portal, app_id, &form).await?;
        admin_consent_requests::deny(&*state.store, &portal.tenant, request, &portal.user, form.get("justification"))
            .await?;
        Ok(done(&format!("/admin/requests/{app_id}"), "denied"))
    })
    .await
}

/// `POST /admin/requests/{app id}/block` (justification and confirmation required)
pub async fn block_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |form| async move {
        let app_id = parse_id(&app)?;
        let request = request_of_app(state, portal, app_id, &form).await?;
        admin_consent_requests::block(&*state.store, &portal.tenant, request, &portal.user, form.get("justification"))
            .await?;
        Ok(done(&format!("/admin/requests/{app_id}"), "blocked"))
    })
    .await
}
