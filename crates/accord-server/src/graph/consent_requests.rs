//! Admin consent requests as Graph shows them, under `/v1.0/identityGovernance/appConsent/`:
//! `appConsentRequests` (one per app, with `filterByCurrentUser(on='reviewer')`) and their
//! `userConsentRequests` (one per requesting user), plus three Accord extensions Graph does not
//! have — `accord.approve`, `accord.deny` and `accord.block` — that act as the signed-in reviewer.
//!
//! Who may see or decide what is the service layer's (`administration::app_consent_requests`,
//! `administration::request_access`, `admin_consent_requests::{approve, deny, block}`); this
//! module checks the token's permission and translates shapes and errors.
//!
//! An appConsentRequest's `id` is the app's `appId`: Accord keeps one user's request per record
//! and groups them per app, so the app is what identifies the group.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};
use accord_core::ids::AppId;

use super::errors::GraphError;
use super::odata::{self, Prop, PropType, QueryOptions, ResourceSpec};
use accord_core::microsoft_graph::permissions::{REQUESTS_READ as READ, REQUESTS_WRITE as WRITE};

use crate::service::admin_consent_requests;
use crate::service::administration::{self, Actor, AppConsentRequests, RequestSummary};
use crate::service::ServiceError;
use crate::state::SharedState;
use accord_core::consent_records::{RequestStatus, ReviewResult};
use accord_core::directory::{Tenant, User};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use serde_json::{json, Value};
use uuid::Uuid;

const SET: &str = "identityGovernance/appConsent/appConsentRequests";

const STATUS_PROPS: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "status", ty: PropType::String },
    Prop { path: "reason", ty: PropType::String },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
    Prop { path: "completedDateTime", ty: PropType::DateTime },
];

const SCOPE_PROPS: &[Prop] = &[Prop { path: "displayName", ty: PropType::String }];

const APP_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "appId", ty: PropType::String },
    Prop { path: "appDisplayName", ty: PropType::String },
    Prop { path: "pendingScopes", ty: PropType::Objects(SCOPE_PROPS) },
    Prop { path: "userConsentRequests", ty: PropType::Objects(STATUS_PROPS) },
];

const APP_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.appConsentRequest",
    select: &["id", "appDisplayName", "appId", "pendingScopes"],
    filter: APP_FILTER,
    orderby: &["appDisplayName", "appId"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

const USER_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "status", ty: PropType::String },
    Prop { path: "reason", ty: PropType::String },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
    Prop { path: "completedDateTime", ty: PropType::DateTime },
    Prop { path: "createdBy/user/id", ty: PropType::String },
    Prop { path: "createdBy/user/displayName", ty: PropType::String },
    Prop { path: "createdBy/user/userPrincipalName", ty: PropType::String },
];

const USER_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.userConsentRequest",
    select: &[
        "id",
        "approvalId",
        "completedDateTime",
        "createdBy",
        "createdDateTime",
        "customData",
        "reason",
        "status",
    ],
    filter: USER_FILTER,
    orderby: &["createdDateTime", "status", "reason"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

fn user_request_json(r: &RequestSummary) -> Value {
    let q = &r.request;
    json!({
        "id": q.id,
        "approvalId": q.id,
        "completedDateTime": q.completed_at.map(odata::format_utc),
        "createdBy": {"user": {
            "id": r.requester.id,
            "displayName": r.requester.display_name,
            "userPrincipalName": r.requester.upn,
        }},
        "createdDateTime": odata::format_utc(q.created_at),
        "customData": null,
        "reason": q.reason,
        "status": q.status.as_str(),
    })
}

/// The appConsentRequest, with its user requests' statuses under `userConsentRequests` so
/// `$filter=userConsentRequests/any(…)` can test them; [`public_app_json`] removes them.
fn app_json(g: &AppConsentRequests) -> Value {
    let pending = g.pending().next().is_some();
    // With nothing pending the service layer lists what was asked; Graph shows no pending scope.
    let scopes: Vec<Value> =
        if pending { g.permissions.iter().map(|p| json!({"displayName": p.value})).collect() } else { Vec::new() };
    let users: Vec<Value> = g
        .requests
        .iter()
        .map(|r| {
            json!({
                "id": r.request.id,
                "status": r.request.status.as_str(),
                "reason": r.request.reason,
                "createdDateTime": odata::format_utc(r.request.created_at),
                "completedDateTime": r.request.completed_at.map(odata::format_utc),
            })
        })
        .collect();
    json!({
        "id": g.app_id,
        "appDisplayName": g.display_name,
        "appId": g.app_id,
        "pendingScopes": scopes,
        "userConsentRequests": users,
    })
}

fn public_app_json(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("userConsentRequests");
    }
    v
}

fn with_context(mut v: Value, context: String) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(context));
    }
    v
}

/// The tenant, the actor and the requests the actor may see (`app` narrows to one app).
async fn visible(
    state: &SharedState,
    caller: &Caller,
    app: Option<AppId>,
) -> Result<(Tenant, Actor, Vec<AppConsentRequests>), GraphError> {
    let tenant = tenant(state, caller).await?;
    let actor = actor(state, caller, &tenant).await?;
    let groups = administration::app_consent_requests(state.store.as_ref(), &actor, &tenant, app).await?;
    Ok((tenant, actor, groups))
}

/// One app's requests, or 404 (unknown id, another tenant's app, or an app nobody asked for).
async fn one_app(
    state: &SharedState,
    caller: &Caller,
    id: AppId,
) -> Result<(Tenant, Actor, AppConsentRequests), GraphError> {
    let (tenant, actor, groups) = visible(state, caller, Some(id)).await?;
    let group =
        groups.into_iter().find(|g| g.app_id == id).ok_or_else(|| GraphError::resource_not_found(&id.to_string()))?;
    Ok((tenant, actor, group))
}

/// Serves one page of `items` (already in Graph's shape) as a collection.
fn collection(
    state: &SharedState,
    opts: &QueryOptions,
    items: Vec<Value>,
    context: String,
    path: &str,
    public: fn(Value) -> Value,
) -> Response {
    let page = opts.apply(items);
    let value = page.items.iter().map(|v| opts.project(public(v.clone()))).collect();
    let public_url = &state.settings.public_url;
    json_response(StatusCode::OK, opts.collection(context, &page, value, public_url, path), None)
}

/// A request id segment: a GUID, or the bound function `filterByCurrentUser(on='reviewer')`.
enum Segment {
    Id(Uuid),
    FilterByReviewer,
}

fn segment(raw: &str) -> Result<Segment, GraphError> {
    if let Ok(id) = Uuid::parse_str(raw) {
        return Ok(Segment::Id(id));
    }
    let Some(args) = raw.strip_prefix("filterByCurrentUser(").and_then(|r| r.strip_suffix(')')) else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid object identifier '{raw}'."),
        ));
    };
    let on = args.split_once('=').filter(|(k, _)| k.trim() == "on").map(|(_, v)| v.trim().trim_matches('\''));
    match on {
        Some("reviewer") => Ok(Segment::FilterByReviewer),
        Some(other) => Err(GraphError::bad_request(format!(
            "Invalid value '{other}' for parameter 'on' of function 'filterByCurrentUser': the only value is 'reviewer'."
        ))),
        None => Err(GraphError::bad_request("Function 'filterByCurrentUser' needs the parameter 'on', as in filterByCurrentUser(on='reviewer').")),
    }
}

fn raw_segment<'a>(path: &'a GraphPath, name: &str) -> &'a str {
    path.0.get(name).map(String::as_str).unwrap_or_default()
}

/// Whether the delegated caller is a reviewer of the workflow; app-only callers have no
/// "current user" (as with `/me`).
async fn caller_reviews(state: &SharedState, caller: &Caller) -> Result<bool, GraphError> {
    if caller.is_app() {
        return Err(GraphError::bad_request("filterByCurrentUser is only valid with delegated authentication flow."));
    }
    let tenant = tenant(state, caller).await?;
    let actor = actor(state, caller, &tenant).await?;
    Ok(administration::request_access(state.store.as_ref(), &actor, &tenant).await?.reviewer)
}

/// `GET …/appConsentRequests`
pub async fn list_apps(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ, READ, "ConsentRequest.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &APP_SPEC)?;
    let (_, _, groups) = visible(&state, &caller, None).await?;
    let items = groups.iter().map(app_json).collect();
    let context = opts.context(&state.settings.public_url, SET);
    Ok(collection(&state, &opts, items, context, uri.path(), public_app_json))
}

/// `GET …/appConsentRequests/{id}` and `GET …/appConsentRequests/filterByCurrentUser(on='reviewer')`
pub async fn get_app(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ, READ, "ConsentRequest.Read.All")?;
    let seg = segment(raw_segment(&path, "request"))?;
    let opts = QueryOptions::parse(uri.query(), &APP_SPEC)?;
    let public_url = &state.settings.public_url;
    match seg {
        Segment::Id(id) => {
            let (_, _, group) = one_app(&state, &caller, id.into()).await?;
            let v = opts.project(public_app_json(app_json(&group)));
            Ok(json_response(
                StatusCode::OK,
                with_context(v, format!("{}/$entity", opts.context(public_url, SET))),
                None,
            ))
        }
        Segment::FilterByReviewer => {
            let items = if caller_reviews(&state, &caller).await? {
                visible(&state, &caller, None).await?.2.iter().map(app_json).collect()
            } else {
                Vec::new()
            };
            let context = opts.context(public_url, "Collection(appConsentRequest)");
            Ok(collection(&state, &opts, items, context, uri.path(), public_app_json))
        }
    }
}

fn user_requests_set(app: AppId) -> String {
    format!("{SET}('{app}')/userConsentRequests")
}

fn app_id(path: &GraphPath) -> Result<AppId, GraphError> {
    match segment(raw_segment(path, "request"))? {
        Segment::Id(id) => Ok(id.into()),
        Segment::FilterByReviewer => Err(not_navigable()),
    }
}

/// `filterByCurrentUser(…)` followed by another segment.
fn not_navigable() -> GraphError {
    GraphError::bad_request(
        "Resource not found for the segment 'filterByCurrentUser': it returns a collection and cannot be navigated.",
    )
}

/// One user's request among an app's.
fn user_request(group: &AppConsentRequests, id: Uuid) -> Result<&RequestSummary, GraphError> {
    group.requests.iter().find(|r| r.request.id == id).ok_or_else(|| GraphError::resource_not_found(&id.to_string()))
}

/// `GET …/appConsentRequests/{id}/userConsentRequests`
pub async fn list_users(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ, READ, "ConsentRequest.Read.All")?;
    let app = app_id(&path)?;
    let opts = QueryOptions::parse(uri.query(), &USER_SPEC)?;
    let (_, _, group) = one_app(&state, &caller, app).await?;
    let items = group.requests.iter().map(user_request_json).collect();
    let context = opts.context(&state.settings.public_url, &user_requests_set(app));
    Ok(collection(&state, &opts, items, context, uri.path(), |v| v))
}

/// `GET …/appConsentRequests/{id}/userConsentRequests/{requestId}` and
/// `…/userConsentRequests/filterByCurrentUser(on='reviewer')`
pub async fn get_user(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ, READ, "ConsentRequest.Read.All")?;
    let app = app_id(&path)?;
    let seg = segment(raw_segment(&path, "user_request"))?;
    let opts = QueryOptions::parse(uri.query(), &USER_SPEC)?;
    let public_url = &state.settings.public_url;
    match seg {
        Segment::Id(id) => {
            let (_, _, group) = one_app(&state, &caller, app).await?;
            let v = opts.project(user_request_json(user_request(&group, id)?));
            let context = format!("{}/$entity", opts.context(public_url, &user_requests_set(app)));
            Ok(json_response(StatusCode::OK, with_context(v, context), None))
        }
        Segment::FilterByReviewer => {
            let reviews = caller_reviews(&state, &caller).await?;
            let items = match one_app(&state, &caller, app).await {
                Ok((_, _, group)) if reviews => group.requests.iter().map(user_request_json).collect(),
                Ok(_) => Vec::new(),
                // An app consent request that is not the caller's tenant's is 404 whoever asks,
                // as in Graph; one the caller may not read shows them nothing to review.
                Err(e) if e.status == StatusCode::NOT_FOUND => return Err(e),
                Err(_) => Vec::new(),
            };
            let context = opts.context(public_url, "Collection(userConsentRequest)");
            Ok(collection(&state, &opts, items, context, uri.path(), |v| v))
        }
    }
}

/// Graph's `approval` of a user's request: one stage, the reviewers' decision. A blocked
/// request reads as denied, as in Graph (blocking is Accord's own name for deny-and-disable).
fn approval_json(r: &RequestSummary, assigned_to_me: bool) -> Value {
    let q = &r.request;
    let result = match q.result {
        ReviewResult::NotReviewed => "NotReviewed",
        ReviewResult::Approved => "Approved",
        ReviewResult::Denied | ReviewResult::Blocked => "Denied",
    };
    json!({
        "id": q.id,
        "stages": [{
            "id": q.id,
            "displayName": null,
            "assignedToMe": assigned_to_me && q.status == RequestStatus::InProgress,
            "justification": q.review_justification,
            "reviewResult": result,
            "reviewedBy": r.reviewer.as_ref().map(|p| json!({"id": p.id, "displayName": p.display_name})),
            "reviewedDateTime": q.reviewed_at.map(odata::format_utc),
            "status": q.status.as_str(),
        }],
    })
}

/// `GET …/appConsentRequests/{id}/userConsentRequests/{requestId}/approval`: who decided, how
/// and why. `assignedToMe` tells a delegated caller whether the decision is theirs to make.
pub async fn get_approval(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    require(&caller, READ, READ, "ConsentRequest.Read.All")?;
    let app = app_id(&path)?;
    let Segment::Id(id) = segment(raw_segment(&path, "user_request"))? else { return Err(not_navigable()) };
    let (_, _, group) = one_app(&state, &caller, app).await?;
    let r = user_request(&group, id)?;
    let reviews = !caller.is_app() && caller_reviews(&state, &caller).await?;
    let context = format!(
        "{}/$metadata#identityGovernance/appConsent/appConsentRequests('{app}')/userConsentRequests('{id}')/approval/$entity",
        state.settings.public_url
    );
    Ok(json_response(StatusCode::OK, with_context(approval_json(r, reviews), context), None))
}

// ------------------------------------------------------------------ Accord extensions

/// What a reviewer does with an app's pending requests (Accord extensions; not in Graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    Block,
}

fn delegated_only() -> GraphError {
    GraphError::directory_denied(
        "Reviewing admin consent requests is done by a signed-in reviewer: this Accord extension needs a delegated token.",
    )
}

/// The signed-in reviewer. The extensions act as a person, so app-only tokens are refused.
fn reviewer(actor: Actor) -> Result<User, GraphError> {
    match actor {
        Actor::User { user, .. } => Ok(user),
        Actor::App { .. } => Err(delegated_only()),
    }
}

/// The justification of a deny or block (empty when absent: the service layer names it as
/// missing); approve takes none, and an empty body or `{}`.
fn justification(decision: Decision, body: Result<Bytes, BytesRejection>) -> Result<String, GraphError> {
    let empty_body = matches!(&body, Ok(b) if b.iter().all(u8::is_ascii_whitespace));
    if decision == Decision::Approve && empty_body {
        return Ok(String::new());
    }
    let m = json_object(body)?;
    let allowed: &[&str] = if decision == Decision::Approve { &[] } else { &["justification"] };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Property '{k}' is not a parameter of this action."),
        ));
    }
    match m.get("justification") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'justification': a string is required.",
        )),
    }
}

/// The request the service layer is asked to decide: a pending one (deciding one decides all of
/// the app's pending requests), else the newest, whose "already decided" answer is the reply.
fn target(group: &AppConsentRequests) -> Option<(Uuid, bool)> {
    let pending = group.pending().next().map(|r| (r.request.id, true));
    pending.or_else(|| group.requests.first().map(|r| (r.request.id, r.request.status == RequestStatus::InProgress)))
}

/// The service layer's refusals in Graph's terms: a reviewer whose role cannot grant is a 403;
/// deciding a decided request a 409, as Graph's approval API answers.
fn decision_error(e: ServiceError, was_pending: bool) -> GraphError {
    match e {
        ServiceError::Conflict(a) if !was_pending => GraphError::new(StatusCode::CONFLICT, "Conflict", a.message),
        other => GraphError::from(other),
    }
}

/// The route of one extension action.
pub fn action(decision: Decision) -> MethodRouter<SharedState> {
    post(
        move |State(state): State<SharedState>,
              caller: Caller,
              path: GraphPath,
              body: Result<Bytes, BytesRejection>| { decide(decision, state, caller, path, body) },
    )
}

/// `POST …/appConsentRequests/{id}/accord.approve|accord.deny|accord.block`: 204.
pub async fn decide(
    decision: Decision,
    state: SharedState,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    if caller.is_app() {
        return Err(delegated_only());
    }
    require(&caller, WRITE, WRITE, "ConsentRequest.ReadWrite.All")?;
    let app = app_id(&path)?;
    let justification = justification(decision, body)?;
    let (tenant, actor, group) = one_app(&state, &caller, app).await?;
    let (request_id, was_pending) = target(&group).ok_or_else(|| GraphError::resource_not_found(&app.to_string()))?;
    let user = reviewer(actor)?;
    let store = state.store.as_ref();
    let result = match decision {
        Decision::Approve => admin_consent_requests::approve(store, &tenant, request_id, &user).await,
        Decision::Deny => admin_consent_requests::deny(store, &tenant, request_id, &user, &justification).await,
        Decision::Block => admin_consent_requests::block(store, &tenant, request_id, &user, &justification).await,
    };
    result.map_err(|f| decision_error(f, was_pending))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_segments() {
        let id = Uuid::new_v4();
        assert!(matches!(segment(&id.to_string()), Ok(Segment::Id(x)) if x == id));
        assert!(matches!(segment("filterByCurrentUser(on='reviewer')"), Ok(Segment::FilterByReviewer)));
        assert!(matches!(segment("filterByCurrentUser(on = 'reviewer')"), Ok(Segment::FilterByReviewer)));
        assert!(segment("filterByCurrentUser(on='owner')").is_err());
        assert!(segment("filterByCurrentUser()").is_err());
        assert!(segment("nope").is_err());
    }

    #[test]
    fn approve_takes_no_justification_and_refusals_need_a_string() {
        let body = |s: &str| Ok(Bytes::from(s.to_string()));
        assert_eq!(justification(Decision::Approve, body("")).unwrap(), "");
        assert_eq!(justification(Decision::Approve, body("{}")).unwrap(), "");
        assert!(justification(Decision::Approve, body(r#"{"justification":"x"}"#)).is_err());
        assert_eq!(justification(Decision::Deny, body(r#"{"justification":"no"}"#)).unwrap(), "no");
        assert!(justification(Decision::Block, body(r#"{"justification":5}"#)).is_err());
        assert!(justification(Decision::Deny, body(r#"{"reason":"x"}"#)).is_err());
        assert!(justification(Decision::Deny, body("not json")).is_err());
    }
}
