//! Delegated permission grants: `/v1.0/oauth2PermissionGrants` — list (with `$filter`), get,
//! create, update `scope`, delete. Every rule (who may, which scopes exist, duplicates) is the
//! administration service layer's; this module checks the token's permission and speaks Graph.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};

use super::directory::object_id;
use super::errors::GraphError;
use super::odata::{self, Prop, PropType, QueryOptions, ResourceSpec};
use accord_core::microsoft_graph::permissions::{
    GRANT_READ as READ_DELEGATED, GRANT_READ_APP as READ_APP, GRANT_WRITE as WRITE,
};

use crate::service::administration;
use crate::state::SharedState;
use accord_core::directory::{ConsentType, DelegatedGrant};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const GRANT_SELECT: &[&str] = &["id", "clientId", "consentType", "principalId", "resourceId", "scope"];

const GRANT_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "clientId", ty: PropType::String },
    Prop { path: "consentType", ty: PropType::String },
    Prop { path: "principalId", ty: PropType::String },
    Prop { path: "resourceId", ty: PropType::String },
    Prop { path: "scope", ty: PropType::String },
];

const GRANT_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.oAuth2PermissionGrant",
    select: GRANT_SELECT,
    filter: GRANT_FILTER,
    orderby: &[],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

fn grant_json(g: &DelegatedGrant) -> Value {
    json!({
        "clientId": g.client_sp_id,
        "consentType": g.consent_type.as_str(),
        "id": g.id,
        "principalId": g.principal_id,
        "resourceId": g.resource_sp_id,
        "scope": g.scopes.join(" "),
        "accord.expiresDateTime": g.expires_at.map(odata::format_utc),
    })
}

fn entity(state: &SharedState, g: &DelegatedGrant, opts: Option<&QueryOptions>) -> Value {
    let mut v = match opts {
        Some(o) => o.project(grant_json(g)),
        None => grant_json(g),
    };
    let set = match opts {
        Some(o) => o.context(&state.settings.public_url, "oauth2PermissionGrants"),
        None => format!("{}/v1.0/$metadata#oauth2PermissionGrants", state.settings.public_url),
    };
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(format!("{set}/$entity")));
    }
    v
}

async fn find(state: &SharedState, caller: &Caller, id: Uuid) -> Result<DelegatedGrant, GraphError> {
    state
        .store
        .delegated_grant(caller.tenant_id, id)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))
}

/// `GET /v1.0/oauth2PermissionGrants`
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Directory.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &GRANT_SPEC)?;
    let mut grants = state.store.delegated_grants(caller.tenant_id).await?;
    grants.sort_by_key(|g| (g.created_at, g.id));
    let page = opts.apply(grants.iter().map(grant_json).collect());
    let value = page.items.iter().map(|v| opts.project(v.clone())).collect();
    let public_url = &state.settings.public_url;
    let body =
        opts.collection(opts.context(public_url, "oauth2PermissionGrants"), &page, value, public_url, uri.path());
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/oauth2PermissionGrants/{id}`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Directory.Read.All")?;
    let id = object_id(&path, "grant")?;
    let opts = QueryOptions::parse(uri.query(), &GRANT_SPEC)?;
    let grant = find(&state, &caller, id).await?;
    Ok(json_response(StatusCode::OK, entity(&state, &grant, Some(&opts)), None))
}

fn field_error(message: String) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn guid_field<T: From<Uuid>>(m: &Map<String, Value>, name: &str) -> Result<Option<T>, GraphError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(s)
            .map(|id| Some(T::from(id)))
            .map_err(|_| field_error(format!("Invalid value specified for property '{name}': '{s}' is not a GUID."))),
        Some(_) => {
            Err(field_error(format!("Invalid value specified for property '{name}': a GUID string is required.")))
        }
    }
}

fn scope_field(m: &Map<String, Value>) -> Result<String, GraphError> {
    match m.get("scope") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(field_error("Property 'scope' is required: the space-separated permission values.".into())),
    }
}

const FIELDS: &[&str] = &[
    "clientId",
    "consentType",
    "principalId",
    "resourceId",
    "scope",
    "id",
    "startTime",
    "expiryTime",
    "accord.expiresDateTime",
];

/// `POST /v1.0/oauth2PermissionGrants`: 201 with the grant.
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "DelegatedPermissionGrant.ReadWrite.All")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(field_error(format!(
            "Property '{k}' does not exist on type 'microsoft.graph.oAuth2PermissionGrant'."
        )));
    }
    let client = guid_field(&m, "clientId")?.ok_or_else(|| field_error("Property 'clientId' is required.".into()))?;
    let resource =
        guid_field(&m, "resourceId")?.ok_or_else(|| field_error("Property 'resourceId' is required.".into()))?;
    let principal = guid_field(&m, "principalId")?;
    let consent = match m.get("consentType").and_then(Value::as_str) {
        Some(c) if c.eq_ignore_ascii_case(ConsentType::AllPrincipals.as_str()) => ConsentType::AllPrincipals,
        Some(c) if c.eq_ignore_ascii_case(ConsentType::Principal.as_str()) => ConsentType::Principal,
        _ => {
            return Err(field_error("Property 'consentType' must be 'AllPrincipals' or 'Principal'.".into()));
        }
    };
    match (consent, principal) {
        (ConsentType::AllPrincipals, Some(_)) => {
            return Err(field_error("A grant with consentType 'AllPrincipals' has no principalId.".into()))
        }
        (ConsentType::Principal, None) => {
            return Err(field_error("A grant with consentType 'Principal' needs a principalId.".into()))
        }
        _ => {}
    }
    let scope = scope_field(&m)?;
    // Time-bound consent, an Accord extension (Graph ignores `expiryTime`, and so does Accord).
    let expires_at = super::request::expires_field(&m)?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    let new = administration::NewGrant {
        client_sp_id: client,
        resource_sp_id: resource,
        principal_id: principal,
        scopes: &scope,
        expires_at,
    };
    let grant = administration::create_grant(state.store.as_ref(), &actor, &tenant, new).await?;
    Ok(json_response(StatusCode::CREATED, entity(&state, &grant, None), None))
}

/// `PATCH /v1.0/oauth2PermissionGrants/{id}`: replaces `scope`; 204.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "DelegatedPermissionGrant.ReadWrite.All")?;
    let id = object_id(&path, "grant")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "scope" && !k.starts_with("@odata.")) {
        return Err(field_error(format!("Property '{k}' cannot be changed; only 'scope' can.")));
    }
    let scope = scope_field(&m)?;
    find(&state, &caller, id).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::update_grant_scopes(state.store.as_ref(), &actor, &tenant, id, &scope).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1.0/oauth2PermissionGrants/{id}`: 204.
pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "DelegatedPermissionGrant.ReadWrite.All")?;
    let id = object_id(&path, "grant")?;
    find(&state, &caller, id).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::revoke_grant(state.store.as_ref(), &actor, &tenant, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
