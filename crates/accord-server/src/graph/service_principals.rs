//! Enterprise applications as Graph service principals: `GET /v1.0/servicePrincipals` (with
//! `$filter=appId eq '…'`), `GET /v1.0/servicePrincipals/{id}` and `PATCH` of `accountEnabled`
//! and `appRoleAssignmentRequired`. Rules live in the administration service layer.

use super::auth::Caller;
use super::request::{actor, json_object, require, tenant};
use super::request::{json_response, GraphPath};
use accord_core::ids::{ServicePrincipalId, TenantId};

use super::directory::object_id;
use super::errors::GraphError;
use super::odata::{Prop, PropType, QueryOptions, ResourceSpec};
use crate::service::administration;
use crate::state::{AppState, SharedState};
use accord_core::directory::{AppRoleMemberType, Application, ServicePrincipal};
use accord_core::microsoft_graph::permissions::{
    APP_READ as READ_DELEGATED, APP_READ_APP as READ_APP, APP_WRITE as WRITE_DELEGATED, APP_WRITE_APP as WRITE_APP,
};
use accord_core::well_known::MICROSOFT_SERVICES_TENANT_ID;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const SP_SELECT: &[&str] = &[
    "id",
    "accountEnabled",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "displayName",
    "oauth2PermissionScopes",
    "publisherName",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "verifiedPublisher",
];

const SP_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "appId", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "appOwnerOrganizationId", ty: PropType::String },
    Prop { path: "accountEnabled", ty: PropType::Bool },
    Prop { path: "appRoleAssignmentRequired", ty: PropType::Bool },
    Prop { path: "servicePrincipalType", ty: PropType::String },
    Prop { path: "publisherName", ty: PropType::String },
    Prop { path: "servicePrincipalNames", ty: PropType::Strings },
    Prop { path: "tags", ty: PropType::Strings },
];

pub(super) const SP_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.servicePrincipal",
    select: SP_SELECT,
    filter: SP_FILTER,
    orderby: &["displayName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

fn member_types(types: &[AppRoleMemberType]) -> Vec<&'static str> {
    types
        .iter()
        .map(|t| match t {
            AppRoleMemberType::User => "User",
            AppRoleMemberType::Application => "Application",
        })
        .collect()
}

pub(super) fn sp_json(sp: &ServicePrincipal, app: Option<&Application>, publisher: &str) -> Value {
    let verified = app.is_some_and(|a| a.verified_publisher);
    let mut names = vec![sp.app_id.to_string()];
    if let Some(uri) = app.and_then(|a| a.identifier_uri.clone()) {
        names.push(uri);
    }
    let app_roles: Vec<Value> = app
        .map(|a| {
            a.app_roles
                .iter()
                .map(|r| {
                    json!({
                        "allowedMemberTypes": member_types(&r.allowed_member_types),
                        "description": r.description,
                        "displayName": r.display_name,
                        "id": r.id,
                        "isEnabled": true,
                        "origin": "Application",
                        "value": r.value,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let scopes: Vec<Value> = app
        .map(|a| {
            a.scopes
                .iter()
                .map(|s| {
                    json!({
                        "adminConsentDescription": s.admin_consent_description,
                        "adminConsentDisplayName": s.admin_consent_display_name,
                        "id": s.id,
                        "isEnabled": true,
                        "type": if s.admin_consent_required { "Admin" } else { "User" },
                        "userConsentDescription": s.user_consent_description,
                        "userConsentDisplayName": s.user_consent_display_name,
                        "value": s.value,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": sp.id,
        "accountEnabled": sp.enabled,
        "appDisplayName": app.map(|a| a.display_name.clone()).unwrap_or_else(|| sp.display_name.clone()),
        "appId": sp.app_id,
        "appOwnerOrganizationId": sp.app_owner_tenant_id,
        "appRoleAssignmentRequired": sp.assignment_required,
        "appRoles": app_roles,
        "displayName": sp.display_name,
        "oauth2PermissionScopes": scopes,
        "publisherName": publisher,
        "servicePrincipalNames": names,
        "servicePrincipalType": "Application",
        "signInAudience": app.map(|a| if a.sign_in_audience == accord_core::directory::SignInAudience::MultipleOrgs { "AzureADMultipleOrgs" } else { "AzureADMyOrg" }),
        "tags": [],
        "verifiedPublisher": if verified {
            json!({"displayName": publisher, "verifiedPublisherId": sp.app_owner_tenant_id.as_uuid().simple().to_string()[..7].to_string(), "addedDateTime": null})
        } else {
            json!({"displayName": null, "verifiedPublisherId": null, "addedDateTime": null})
        },
    })
}

async fn publisher(state: &AppState, owner: TenantId) -> Result<String, GraphError> {
    if owner == MICROSOFT_SERVICES_TENANT_ID {
        return Ok("Microsoft Services".into());
    }
    Ok(administration::publisher_name(state.store.as_ref(), owner).await?)
}

/// All of the tenant's service principals as Graph shows them.
pub(super) async fn all_sps(
    state: &AppState,
    tenant_id: TenantId,
) -> Result<Vec<(ServicePrincipal, Value)>, GraphError> {
    let mut out = Vec::new();
    for (sp, app) in administration::directory_service_principals(state.store.as_ref(), tenant_id).await? {
        let p = publisher(state, sp.app_owner_tenant_id).await?;
        let v = sp_json(&sp, app.as_ref(), &p);
        out.push((sp, v));
    }
    Ok(out)
}

/// One service principal of the caller's tenant, or 404.
pub(super) async fn one_sp(
    state: &AppState,
    caller: &Caller,
    id: ServicePrincipalId,
) -> Result<(ServicePrincipal, Value), GraphError> {
    let sp = state
        .store
        .service_principal(caller.tenant_id, id)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))?;
    shown(state, sp).await
}

/// A service principal with the JSON Graph shows of it.
async fn shown(state: &AppState, sp: ServicePrincipal) -> Result<(ServicePrincipal, Value), GraphError> {
    let app = state.store.application_by_app_id(sp.app_id).await?;
    let p = publisher(state, sp.app_owner_tenant_id).await?;
    let v = sp_json(&sp, app.as_ref(), &p);
    Ok((sp, v))
}

/// The service principal a `$filter` of `appId eq '…'` or `id eq '…'` names, read by its key
/// (how apps find an API's service principal): `Some` of at most one, `None` for other filters.
async fn by_key(state: &AppState, caller: &Caller, opts: &QueryOptions) -> Result<Option<Vec<Value>>, GraphError> {
    let Some((key, value)) = opts.key_lookup(&["appId", "id"]) else { return Ok(None) };
    let Ok(uuid) = value.trim().parse::<uuid::Uuid>() else { return Ok(Some(Vec::new())) };
    let sp = match key {
        "appId" => state.store.service_principal_by_app_id(caller.tenant_id, uuid.into()).await?,
        _ => state.store.service_principal(caller.tenant_id, uuid.into()).await?,
    };
    let mut found = Vec::new();
    if let Some(sp) = sp {
        found.push(shown(state, sp).await?.1);
    }
    Ok(Some(found))
}

fn entity_response(state: &AppState, opts: &QueryOptions, v: Value, entity_set: &str) -> Response {
    let mut body = opts.project(v);
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, entity_set));
        m.insert("@odata.context".into(), json!(context));
    }
    json_response(StatusCode::OK, body, None)
}

/// `GET /v1.0/servicePrincipals`
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &SP_SPEC)?;
    super::directory::require_advanced_count(opts.count, &headers)?;
    let items: Vec<Value> = match by_key(&state, &caller, &opts).await? {
        Some(found) => found,
        None => all_sps(&state, caller.tenant_id).await?.into_iter().map(|(_, v)| v).collect(),
    };
    let page = opts.apply(items);
    let value = page.items.iter().map(|v| opts.project(v.clone())).collect();
    let public_url = &state.settings.public_url;
    let body = opts.collection(opts.context(public_url, "servicePrincipals"), &page, value, public_url, uri.path());
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/servicePrincipals/{id}`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let id = object_id(&path, "sp")?;
    let opts = QueryOptions::parse(uri.query(), &SP_SPEC)?;
    let (_, v) = one_sp(&state, &caller, id).await?;
    Ok(entity_response(&state, &opts, v, "servicePrincipals"))
}

fn bool_field(m: &serde_json::Map<String, Value>, name: &str) -> Result<Option<bool>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(GraphError::invalid_request(format!("Property '{name}' must be a Boolean."))),
    }
}

/// `PATCH /v1.0/servicePrincipals/{id}`: `accountEnabled`, `appRoleAssignmentRequired`. 204.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let id = object_id(&path, "sp")?;
    let m = json_object(body)?;
    for k in m.keys() {
        if k != "accountEnabled" && k != "appRoleAssignmentRequired" && !k.starts_with("@odata.") {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Property '{k}' cannot be changed through this API (only accountEnabled and appRoleAssignmentRequired)."),
            ));
        }
    }
    let enabled = bool_field(&m, "accountEnabled")?;
    let required = bool_field(&m, "appRoleAssignmentRequired")?;
    // Unknown ids are 404 before any role question.
    one_sp(&state, &caller, id).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::set_service_principal(state.store.as_ref(), &actor, &tenant, id, enabled, required).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1.0/servicePrincipals/{id}`: the organisation removes an enterprise app, with its
/// grants and assignments (`service::administration::delete_service_principal`); 204.
pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let id = object_id(&path, "sp")?;
    one_sp(&state, &caller, id).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::delete_service_principal(state.store.as_ref(), &actor, &tenant, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
