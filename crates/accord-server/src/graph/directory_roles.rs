//! Directory roles as Graph `directoryRole` objects: `GET /v1.0/directoryRoles`,
//! `GET /v1.0/directoryRoles/{id}` (object or template id) and
//! `directoryRoles(roleTemplateId='…')`, their `members`, and `members/$ref` to add and remove
//! users, and the same assignments read as `roleManagement/directory/roleAssignments`. Accord
//! models four built-in roles, all activated in every tenant; a role's object id is derived from
//! the tenant and the template id, so it is stable and differs per tenant, as in Entra. Who may
//! change roles is the administration service layer's rule.

use super::auth::Caller;
use super::directory::{list_response, with_type, MEMBER_SPEC};
use super::errors::GraphError;
use super::odata::{Prop, PropType, QueryOptions, ResourceSpec};
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};
use super::users::user_json;
use accord_core::ids::{TenantId, UserId};
use accord_core::microsoft_graph::permissions::{
    ROLE_READ as READ_DELEGATED, ROLE_READ_APP as READ_APP, ROLE_WRITE as WRITE,
};

use crate::service::administration;
use crate::state::{AppState, SharedState};
use accord_core::directory::DirectoryRole;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const ROLE_SELECT: &[&str] = &["id", "deletedDateTime", "description", "displayName", "roleTemplateId"];

const ROLE_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "roleTemplateId", ty: PropType::String },
];

const ROLE_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.directoryRole",
    select: ROLE_SELECT,
    filter: ROLE_FILTER,
    orderby: &["displayName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

/// How a request names a role: `/directoryRoles/{id}` takes the object id or the template id;
/// `directoryRoles(roleTemplateId='…')` only the template id.
#[derive(Debug, Clone)]
pub enum RoleKey {
    Id(String),
    TemplateId(String),
}

/// The role's object id in `tenant_id`: stable, and different in every tenant.
fn object_id(tenant_id: TenantId, role: DirectoryRole) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"accord directoryRole")
        .chain_update(tenant_id.as_uuid().as_bytes())
        .chain_update(role.template_id().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Entra's description of each built-in role.
fn description(role: DirectoryRole) -> &'static str {
    match role {
        DirectoryRole::GlobalAdministrator => {
            "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities."
        }
        DirectoryRole::PrivilegedRoleAdministrator => {
            "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management."
        }
        DirectoryRole::CloudApplicationAdministrator => {
            "Can create and manage all aspects of app registrations and enterprise apps except App Proxy."
        }
        DirectoryRole::ApplicationAdministrator => {
            "Can create and manage all aspects of app registrations and enterprise apps."
        }
    }
}

fn role_json(tenant_id: TenantId, role: DirectoryRole) -> Value {
    json!({
        "id": object_id(tenant_id, role),
        "deletedDateTime": null,
        "description": description(role),
        "displayName": role.display_name(),
        "roleTemplateId": role.template_id(),
    })
}

/// The role a key names, or Graph's 400 (not a GUID) / 404 (no such role here).
fn resolve(tenant_id: TenantId, key: &RoleKey) -> Result<DirectoryRole, GraphError> {
    let (raw, template_only) = match key {
        RoleKey::Id(s) => (s, false),
        RoleKey::TemplateId(s) => (s, true),
    };
    let id = Uuid::parse_str(raw).map_err(|_| {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", format!("Invalid object identifier '{raw}'."))
    })?;
    DirectoryRole::ALL
        .into_iter()
        .find(|r| r.template_id() == id || (!template_only && object_id(tenant_id, *r) == id))
        .ok_or_else(|| GraphError::resource_not_found(raw))
}

fn path_key(path: &GraphPath) -> RoleKey {
    RoleKey::Id(path.0.get("role").cloned().unwrap_or_default())
}

fn require_read(caller: &Caller) -> Result<(), GraphError> {
    require(caller, READ_DELEGATED, READ_APP, "RoleManagement.Read.Directory")
}

fn require_write(caller: &Caller) -> Result<(), GraphError> {
    require(caller, WRITE, WRITE, "RoleManagement.ReadWrite.Directory")
}

/// `GET /v1.0/directoryRoles`
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_read(&caller)?;
    let opts = QueryOptions::parse(uri.query(), &ROLE_SPEC)?;
    let mut items: Vec<Value> = DirectoryRole::ALL.into_iter().map(|r| role_json(caller.tenant_id, r)).collect();
    items.sort_by_key(|v| v["displayName"].as_str().unwrap_or_default().to_string());
    Ok(list_response(&state, &opts, items, "directoryRoles", uri.path()))
}

/// `GET /v1.0/directoryRoles/{id}`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    get_by(&state, caller, path_key(&path), &uri).await
}

/// One role, by object or template id.
pub async fn get_by(state: &AppState, caller: Caller, key: RoleKey, uri: &Uri) -> Result<Response, GraphError> {
    require_read(&caller)?;
    let role = resolve(caller.tenant_id, &key)?;
    let opts = QueryOptions::parse(uri.query(), &ROLE_SPEC)?;
    let mut body = opts.project(role_json(caller.tenant_id, role));
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, "directoryRoles"));
        m.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

/// The users holding `role` in the caller's tenant, and each one's roles.
async fn holders(
    state: &AppState,
    caller: &Caller,
    role: DirectoryRole,
) -> Result<Vec<(accord_core::directory::User, Vec<DirectoryRole>)>, GraphError> {
    Ok(administration::directory_role_holders(state.store.as_ref(), caller.tenant_id)
        .await?
        .into_iter()
        .filter(|(_, roles)| roles.contains(&role))
        .collect())
}

/// `GET /v1.0/directoryRoles/{id}/members`
pub async fn members(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    members_by(&state, caller, path_key(&path), &uri).await
}

/// A role's members (users), by display name.
pub async fn members_by(state: &AppState, caller: Caller, key: RoleKey, uri: &Uri) -> Result<Response, GraphError> {
    require_read(&caller)?;
    let role = resolve(caller.tenant_id, &key)?;
    let opts = QueryOptions::parse(uri.query(), &MEMBER_SPEC)?;
    let items = holders(state, &caller, role)
        .await?
        .iter()
        .map(|(u, _)| with_type(user_json(u), "#microsoft.graph.user"))
        .collect();
    Ok(list_response(state, &opts, items, "directoryObjects", uri.path()))
}

/// The object id an `@odata.id` reference names (`…/directoryObjects/{id}`, `…/users/{id}` or
/// `…/groups/{id}`), or Graph's 400 naming the property.
pub(super) fn referenced_id(body: &serde_json::Map<String, Value>) -> Result<Uuid, GraphError> {
    let bad = |why: &str| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid value for property '@odata.id': {why}."),
        )
    };
    let Some(reference) = body.get("@odata.id") else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "A value is required for property '@odata.id'.",
        ));
    };
    let reference = reference.as_str().ok_or_else(|| bad("a URL string is required"))?;
    let trimmed = reference.trim_end_matches('/');
    let (collection, id) = trimmed
        .rsplit_once('/')
        .and_then(|(head, id)| head.rsplit('/').next().map(|c| (c, id)))
        .ok_or_else(|| bad("expected https://graph.microsoft.com/v1.0/directoryObjects/{id}"))?;
    if !["directoryObjects", "users", "groups"].contains(&collection) {
        return Err(bad("expected https://graph.microsoft.com/v1.0/directoryObjects/{id}"));
    }
    Uuid::parse_str(id).map_err(|_| bad(&format!("'{id}' is not an object id")))
}

/// 400 for a reference that already exists, in Graph's words.
pub(super) fn already_member() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
}

/// `POST /v1.0/directoryRoles/{id}/members/$ref`
pub async fn add_member(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    add_member_by(&state, caller, path_key(&path), body).await
}

/// Gives a user the role (through `set_user_roles`, which decides who may). 204.
pub async fn add_member_by(
    state: &AppState,
    caller: Caller,
    key: RoleKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require_write(&caller)?;
    let role = resolve(caller.tenant_id, &key)?;
    let member = referenced_id(&json_object(body)?)?;
    let user = administration::directory_users(state.store.as_ref(), caller.tenant_id)
        .await?
        .into_iter()
        .find(|u| u.id == member)
        .ok_or_else(|| GraphError::resource_not_found(&member.to_string()))?;
    let mut roles = administration::directory_role_holders(state.store.as_ref(), caller.tenant_id)
        .await?
        .into_iter()
        .find(|(u, _)| u.id == user.id)
        .map(|(_, roles)| roles)
        .unwrap_or_default();
    if roles.contains(&role) {
        return Err(already_member());
    }
    roles.push(role);
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    administration::set_user_roles(state.store.as_ref(), &actor, &tenant, user.id, roles).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1.0/directoryRoles/{id}/members/{memberId}/$ref`
pub async fn remove_member(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    let member = path.0.get("member").cloned().unwrap_or_default();
    remove_member_by(&state, caller, path_key(&path), &member).await
}

/// Takes the role from a user. 204; 404 when the user does not hold it.
pub async fn remove_member_by(
    state: &AppState,
    caller: Caller,
    key: RoleKey,
    member: &str,
) -> Result<Response, GraphError> {
    require_write(&caller)?;
    let role = resolve(caller.tenant_id, &key)?;
    let member_id = Uuid::parse_str(member).map_err(|_| {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", format!("Invalid object identifier '{member}'."))
    })?;
    let (user, roles) = holders(state, &caller, role)
        .await?
        .into_iter()
        .find(|(u, _)| u.id == member_id)
        .ok_or_else(|| GraphError::resource_not_found(member))?;
    let roles = roles.into_iter().filter(|r| *r != role).collect();
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    administration::set_user_roles(state.store.as_ref(), &actor, &tenant, user.id, roles).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// roleManagement/directory/roleAssignments (read only)

const ASSIGNMENT_SELECT: &[&str] = &["id", "directoryScopeId", "principalId", "roleDefinitionId"];

const ASSIGNMENT_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "principalId", ty: PropType::String },
    Prop { path: "roleDefinitionId", ty: PropType::String },
    Prop { path: "directoryScopeId", ty: PropType::String },
];

const ASSIGNMENT_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.unifiedRoleAssignment",
    select: ASSIGNMENT_SELECT,
    filter: ASSIGNMENT_FILTER,
    orderby: &["principalId", "roleDefinitionId"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

/// A tenant-wide role assignment as `unifiedRoleAssignment`. Its id follows Entra's pattern
/// (the role definition and principal GUIDs, base64url, then `-1`), so it is stable and says
/// what it assigns.
fn assignment_json(user_id: UserId, role: DirectoryRole) -> Value {
    use base64::Engine;
    let mut bytes = role.template_id().to_bytes_le().to_vec();
    bytes.extend_from_slice(&user_id.as_uuid().to_bytes_le());
    let id = format!("{}-1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    json!({
        "id": id,
        "directoryScopeId": "/",
        "principalId": user_id,
        "roleDefinitionId": role.template_id(),
    })
}

/// `GET /v1.0/roleManagement/directory/roleAssignments` (`$filter=principalId eq '…'`, …).
pub async fn role_assignments(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_read(&caller)?;
    let opts = QueryOptions::parse(uri.query(), &ASSIGNMENT_SPEC)?;
    let items = administration::directory_role_holders(state.store.as_ref(), caller.tenant_id)
        .await?
        .iter()
        .flat_map(|(u, roles)| roles.iter().map(|r| assignment_json(u.id, *r)))
        .collect();
    Ok(list_response(&state, &opts, items, "roleManagement/directory/roleAssignments", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_object_ids_are_stable_and_per_tenant() {
        let (a, b) = (TenantId::random(), TenantId::random());
        let ga = DirectoryRole::GlobalAdministrator;
        assert_eq!(object_id(a, ga), object_id(a, ga));
        assert_ne!(object_id(a, ga), object_id(b, ga));
        assert_ne!(object_id(a, ga), ga.template_id());
        assert_eq!(resolve(a, &RoleKey::Id(object_id(a, ga).to_string())).unwrap(), ga);
        assert_eq!(resolve(a, &RoleKey::Id(ga.template_id().to_string())).unwrap(), ga);
        // Another tenant's role object id names nothing here; template-only keys take no object ids.
        assert!(resolve(a, &RoleKey::Id(object_id(b, ga).to_string())).is_err());
        assert!(resolve(a, &RoleKey::TemplateId(object_id(a, ga).to_string())).is_err());
    }

    #[test]
    fn references_name_directory_objects() {
        let id = Uuid::new_v4();
        let body = |v: Value| json!({ "@odata.id": v }).as_object().unwrap().clone();
        let ok = body(json!(format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")));
        assert_eq!(referenced_id(&ok).unwrap(), id);
        for bad in [json!("https://graph.microsoft.com/v1.0/directoryObjects/xyz"), json!(42), json!("nonsense")] {
            let e = referenced_id(&body(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains("@odata.id"), "{}", e.message);
        }
    }
}
