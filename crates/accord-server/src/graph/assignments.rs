//! App role assignments of a service principal: `appRoleAssignedTo` (users and groups assigned to
//! the enterprise application: list, create, delete) and `appRoleAssignments` (the application
//! permissions the service principal holds on other resources: list). Rules are the
//! administration service layer's.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};

use super::directory::object_id;
use super::errors::GraphError;
use super::odata::{format_utc, Prop, PropType, QueryOptions, ResourceSpec};
use accord_core::microsoft_graph::permissions::{
    ASSIGNMENT_READ as READ_DELEGATED, ASSIGNMENT_READ_APP as READ_APP, ASSIGNMENT_WRITE as WRITE,
};

use crate::service::administration;
use crate::state::{AppState, SharedState};
use accord_core::directory::{AppRoleAssignment, ServicePrincipal, Tenant};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

const ASSIGNMENT_SELECT: &[&str] = &[
    "id",
    "appRoleId",
    "createdDateTime",
    "deletedDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
];

const ASSIGNMENT_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "appRoleId", ty: PropType::String },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
    Prop { path: "principalDisplayName", ty: PropType::String },
    Prop { path: "principalId", ty: PropType::String },
    Prop { path: "principalType", ty: PropType::String },
    Prop { path: "resourceDisplayName", ty: PropType::String },
    Prop { path: "resourceId", ty: PropType::String },
];

const ASSIGNMENT_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.appRoleAssignment",
    select: ASSIGNMENT_SELECT,
    filter: ASSIGNMENT_FILTER,
    orderby: &[],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

async fn assignment_json(state: &AppState, tenant: &Tenant, a: &AppRoleAssignment) -> Result<Value, GraphError> {
    let principal = administration::principal(state.store.as_ref(), tenant, a.principal_id).await?;
    let resource = state.store.service_principal(tenant.id, a.resource_sp_id).await?;
    Ok(json!({
        "id": a.id,
        "appRoleId": a.app_role_id,
        "createdDateTime": format_utc(a.created_at),
        "deletedDateTime": null,
        "principalDisplayName": principal.map(|p| p.display_name),
        "principalId": a.principal_id,
        "principalType": a.principal_type.as_str(),
        "resourceDisplayName": resource.map(|r| r.display_name),
        "resourceId": a.resource_sp_id,
        "accord.expiresDateTime": a.expires_at.map(format_utc),
    }))
}

async fn the_sp(state: &AppState, caller: &Caller, path: &GraphPath) -> Result<ServicePrincipal, GraphError> {
    let id = object_id(path, "sp")?;
    state
        .store
        .service_principal(caller.tenant_id, id)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))
}

async fn list(
    state: SharedState,
    caller: Caller,
    path: GraphPath,
    uri: axum::http::Uri,
    assigned_to: bool,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &ASSIGNMENT_SPEC)?;
    let sp = the_sp(&state, &caller, &path).await?;
    let tenant = tenant(&state, &caller).await?;
    let mut assignments = if assigned_to {
        state.store.app_role_assignments_to(tenant.id, sp.id).await?
    } else {
        state.store.app_role_assignments_of(tenant.id, sp.id.into()).await?
    };
    assignments.sort_by_key(|a| (a.created_at, a.id));
    let mut items = Vec::new();
    for a in &assignments {
        items.push(assignment_json(&state, &tenant, a).await?);
    }
    let page = opts.apply(items);
    let value = page.items.iter().map(|v| opts.project(v.clone())).collect();
    let public_url = &state.settings.public_url;
    let segment = if assigned_to { "appRoleAssignedTo" } else { "appRoleAssignments" };
    let context = opts.context(public_url, &format!("servicePrincipals('{}')/{segment}", sp.id));
    Ok(json_response(StatusCode::OK, opts.collection(context, &page, value, public_url, uri.path()), None))
}

/// `GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo`
pub async fn list_assigned_to(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    list(state, caller, path, uri, true).await
}

/// `GET /v1.0/servicePrincipals/{id}/appRoleAssignments`
pub async fn list_assignments(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    list(state, caller, path, uri, false).await
}

fn field_error(message: String) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn guid(m: &serde_json::Map<String, Value>, name: &str) -> Result<Option<Uuid>, GraphError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(s)
            .map(Some)
            .map_err(|_| field_error(format!("Invalid value specified for property '{name}': '{s}' is not a GUID."))),
        Some(_) => {
            Err(field_error(format!("Invalid value specified for property '{name}': a GUID string is required.")))
        }
    }
}

/// `POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo`: assigns a user or group; 201.
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "AppRoleAssignment.ReadWrite.All")?;
    let sp = the_sp(&state, &caller, &path).await?;
    let m = json_object(body)?;
    const FIELDS: &[&str] =
        &["principalId", "resourceId", "appRoleId", "principalType", "principalDisplayName", "accord.expiresDateTime"];
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(field_error(format!("Property '{k}' does not exist on type 'microsoft.graph.appRoleAssignment'.")));
    }
    let principal =
        guid(&m, "principalId")?.ok_or_else(|| field_error("Property 'principalId' is required.".into()))?;
    let resource = guid(&m, "resourceId")?.ok_or_else(|| field_error("Property 'resourceId' is required.".into()))?;
    if resource != sp.id {
        return Err(field_error(format!(
            "Property 'resourceId' must be the id of the service principal in the URL ({}).",
            sp.id
        )));
    }
    let role = guid(&m, "appRoleId")?;
    // Time-bound assignment, an Accord extension.
    let expires_at = super::request::expires_field(&m)?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    let a = administration::add_assignment(state.store.as_ref(), &actor, &tenant, sp.id, principal, role, expires_at)
        .await?;
    let mut v = assignment_json(&state, &tenant, &a).await?;
    if let Value::Object(o) = &mut v {
        let context = format!(
            "{}/v1.0/$metadata#servicePrincipals('{}')/appRoleAssignedTo/$entity",
            state.settings.public_url, sp.id
        );
        o.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::CREATED, v, None))
}

/// `DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`: 204.
pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "AppRoleAssignment.ReadWrite.All")?;
    let sp = the_sp(&state, &caller, &path).await?;
    let raw = path.0.get("assignment").cloned().unwrap_or_default();
    let id = Uuid::parse_str(&raw).map_err(|_| field_error(format!("Invalid object identifier '{raw}'.")))?;
    if !state.store.app_role_assignments_to(caller.tenant_id, sp.id).await?.iter().any(|a| a.id == id) {
        return Err(GraphError::resource_not_found(&raw));
    }
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::remove_app_role_assignment(state.store.as_ref(), &actor, &tenant, sp.id, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
