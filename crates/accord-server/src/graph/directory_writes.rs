//! Writes to users and groups: `POST /v1.0/users`, `PATCH /v1.0/users/{id}`, `POST /v1.0/groups`,
//! `POST /v1.0/groups/{id}/members/$ref` and `DELETE /v1.0/groups/{id}/members/{memberId}/$ref`.
//! The token needs the Graph permission; who may change the directory (a Global Administrator,
//! or an app with the application permission) and every value rule is the administration
//! service layer's. There is no `DELETE /v1.0/users/{id}`: the store cannot delete users.

use super::auth::Caller;
use super::directory::{group_json, object_id, GROUP_SPEC, USER_LIST_SPEC};
use super::directory_roles::{already_member, referenced_id};
use super::errors::GraphError;
use super::odata::QueryOptions;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};
use super::users::user_json;
use accord_core::ids::TenantId;
use accord_core::microsoft_graph::permissions::{
    GROUP_WRITE as GROUP_WRITE_DELEGATED, GROUP_WRITE_APP, USER_WRITE as USER_WRITE_DELEGATED, USER_WRITE_APP,
};

use crate::service::administration::{self, Operation};
use crate::state::{AppState, SharedState};
use accord_core::directory::User;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn invalid_value(property: &str, resource: &str) -> GraphError {
    bad(format!("Invalid value specified for property '{property}' of resource '{resource}'."))
}

fn required(property: &str, resource: &str) -> GraphError {
    bad(format!("A value is required for property '{property}' of resource '{resource}'."))
}

/// Refuses properties this API does not write, naming the first.
fn only(m: &Map<String, Value>, allowed: &[&str], resource: &str) -> Result<(), GraphError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        Some(k) => Err(bad(format!(
            "Property '{k}' of resource '{resource}' cannot be set through this API (only {}).",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn opt_string(m: &Map<String, Value>, name: &str, resource: &str) -> Result<Option<String>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_value(name, resource)),
    }
}

fn opt_bool(m: &Map<String, Value>, name: &str, resource: &str) -> Result<Option<bool>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid_value(name, resource)),
    }
}

/// `mailNickname`: Graph's rule (1 to 64 characters, none of `@ ( ) \ [ ] " ; : < > ,` or
/// spaces, ASCII only). Accord does not keep it: a group's is derived from its name.
fn valid_mail_nickname(value: &str, resource: &str) -> Result<(), GraphError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid_value("mailNickname", resource))
    }
}

/// The new password of a `passwordProfile`; `forceChangePasswordNextSignIn` is not modelled, so
/// only `false` is accepted.
fn password(m: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    let profile = match m.get("passwordProfile") {
        None => return Ok(None),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid_value("passwordProfile", "User")),
    };
    if let Some(k) = profile.keys().find(|k| *k != "password" && *k != "forceChangePasswordNextSignIn") {
        return Err(bad(format!("Property 'passwordProfile.{k}' of resource 'User' is not supported.")));
    }
    match profile.get("forceChangePasswordNextSignIn") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            return Err(bad(
                "Property 'passwordProfile.forceChangePasswordNextSignIn' of resource 'User' cannot be true: Accord does not model forced password changes.",
            ))
        }
        Some(_) => return Err(invalid_value("passwordProfile.forceChangePasswordNextSignIn", "User")),
    }
    match profile.get("password") {
        Some(Value::String(p)) => Ok(Some(p.clone())),
        None => Err(required("passwordProfile.password", "User")),
        Some(_) => Err(invalid_value("passwordProfile.password", "User")),
    }
}

fn entity(
    state: &AppState,
    status: StatusCode,
    v: Value,
    entity_set: &str,
    spec: &super::odata::ResourceSpec,
) -> Result<Response, GraphError> {
    let opts = QueryOptions::parse(None, spec)?;
    let mut body = opts.project(v);
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, entity_set));
        m.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(status, body, None))
}

// ---------------------------------------------------------------------------------------------
// Users

/// `POST /v1.0/users`: 201 with the user.
pub async fn create_user(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, USER_WRITE_DELEGATED, USER_WRITE_APP, "User.ReadWrite.All")?;
    let m = json_object(body)?;
    only(&m, &["accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName"], "User")?;
    let enabled = opt_bool(&m, "accountEnabled", "User")?.ok_or_else(|| required("accountEnabled", "User"))?;
    let name = opt_string(&m, "displayName", "User")?.ok_or_else(|| required("displayName", "User"))?;
    let nickname = opt_string(&m, "mailNickname", "User")?.ok_or_else(|| required("mailNickname", "User"))?;
    valid_mail_nickname(&nickname, "User")?;
    let upn = opt_string(&m, "userPrincipalName", "User")?.ok_or_else(|| required("userPrincipalName", "User"))?;
    let password = password(&m)?.ok_or_else(|| required("passwordProfile", "User"))?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    let store = state.store.as_ref();
    let mut user = administration::create_user(store, &actor, &tenant, &upn, &name, &password).await?;
    if !enabled {
        user = administration::set_user_enabled(store, &actor, &tenant, user.id, false).await?;
    }
    entity(&state, StatusCode::CREATED, user_json(&user), "users", &USER_LIST_SPEC)
}

/// `PATCH /v1.0/users/{id or UPN}`: `accountEnabled`, `displayName`, `passwordProfile`. 204.
pub async fn update_user(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let key = path.0.get("user").cloned().unwrap_or_default();
    let m = match require(&caller, USER_WRITE_DELEGATED, USER_WRITE_APP, "User.ReadWrite.All") {
        Ok(()) => json_object(body)?,
        // As in Graph, User-PasswordProfile.ReadWrite.All alone sets a password, nothing else.
        Err(denied) if caller.first_of(accord_core::microsoft_graph::permissions::PASSWORD_RESET_APP).is_some() => {
            let m = json_object(body)?;
            if m.keys().any(|k| k != "passwordProfile") {
                return Err(denied);
            }
            m
        }
        Err(denied) => return Err(denied),
    };
    only(&m, &["accountEnabled", "displayName", "passwordProfile"], "User")?;
    let enabled = opt_bool(&m, "accountEnabled", "User")?;
    let name = opt_string(&m, "displayName", "User")?;
    let password = password(&m)?;
    let user = user_by_key(&state, &caller, &key).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    // Refuse an unauthorised caller before anything is written (each change below is its own
    // transaction in the service layer).
    if password.is_some() {
        administration::authorize(&actor, Operation::ResetPasswords)?;
    }
    if name.is_some() || enabled.is_some() {
        administration::authorize(&actor, Operation::ManageUsers)?;
    }
    let store = state.store.as_ref();
    if let Some(p) = password {
        administration::reset_password(store, &actor, &tenant, user.id, &p).await?;
    }
    if let Some(n) = name {
        administration::rename_user(store, &actor, &tenant, user.id, &n).await?;
    }
    if let Some(e) = enabled {
        administration::set_user_enabled(store, &actor, &tenant, user.id, e).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1.0/users/{id or UPN}`: the user and what exists only through them
/// (`administration::delete_user`). 204.
pub async fn delete_user(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    let (user, tenant, actor) = user_write_target(&state, &caller, &path).await?;
    administration::delete_user(state.store.as_ref(), &actor, &tenant, user.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's tenant's user named by object id or UPN; Graph's directory "not found" otherwise.
async fn user_by_key(state: &AppState, caller: &Caller, key: &str) -> Result<User, GraphError> {
    super::users::find_user(state, caller.tenant_id, key).await?.ok_or_else(|| GraphError::resource_not_found(key))
}

// ---------------------------------------------------------------------------------------------
// Groups

/// `POST /v1.0/groups`: a security group (Accord's only kind). 201 with the group.
pub async fn create_group(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, GROUP_WRITE_DELEGATED, GROUP_WRITE_APP, "Group.ReadWrite.All")?;
    let m = json_object(body)?;
    only(&m, &["description", "displayName", "groupTypes", "mailEnabled", "mailNickname", "securityEnabled"], "Group")?;
    let name = opt_string(&m, "displayName", "Group")?.ok_or_else(|| required("displayName", "Group"))?;
    let nickname = opt_string(&m, "mailNickname", "Group")?.ok_or_else(|| required("mailNickname", "Group"))?;
    valid_mail_nickname(&nickname, "Group")?;
    match opt_bool(&m, "mailEnabled", "Group")? {
        None => return Err(required("mailEnabled", "Group")),
        Some(true) => {
            return Err(bad(
                "Property 'mailEnabled' of resource 'Group' must be false: Accord has no mail-enabled groups.",
            ))
        }
        Some(false) => {}
    }
    match opt_bool(&m, "securityEnabled", "Group")? {
        None => return Err(required("securityEnabled", "Group")),
        Some(false) => {
            return Err(bad(
                "Property 'securityEnabled' of resource 'Group' must be true: Accord's groups are security groups.",
            ))
        }
        Some(true) => {}
    }
    match m.get("groupTypes") {
        None => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(bad("Property 'groupTypes' of resource 'Group' must be empty: Microsoft 365 and dynamic groups are not supported."))
        }
        Some(_) => return Err(invalid_value("groupTypes", "Group")),
    }
    match m.get("description") {
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(bad(
                "Property 'description' of resource 'Group' is not supported: Accord keeps no group descriptions.",
            ))
        }
    }
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    let group = administration::create_group(state.store.as_ref(), &actor, &tenant, &name).await?;
    entity(&state, StatusCode::CREATED, group_json(&group), "groups", &GROUP_SPEC)
}

/// Whether `id` is a user or a group of the caller's tenant.
async fn directory_object_exists(state: &AppState, tenant_id: TenantId, id: Uuid) -> Result<bool, GraphError> {
    let store = state.store.as_ref();
    Ok(administration::directory_users(store, tenant_id).await?.iter().any(|u| u.id == id)
        || administration::directory_groups(store, tenant_id).await?.iter().any(|g| g.id == id))
}

/// `POST /v1.0/groups/{id}/members/$ref`: adds a user or a group. 204.
pub async fn add_group_member(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, GROUP_WRITE_DELEGATED, GROUP_WRITE_APP, "Group.ReadWrite.All")?;
    let group_id = object_id(&path, "group")?;
    let member = referenced_id(&json_object(body)?)?;
    let store = state.store.as_ref();
    let (users, groups) = administration::directory_group_members(store, caller.tenant_id, group_id, false)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&group_id.to_string()))?;
    if !directory_object_exists(&state, caller.tenant_id, member).await? {
        return Err(GraphError::resource_not_found(&member.to_string()));
    }
    if users.iter().any(|u| u.id == member) || groups.iter().any(|g| g.id == member) {
        return Err(already_member());
    }
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::add_group_member(store, &actor, &tenant, group_id, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1.0/groups/{id}/members/{memberId}/$ref`. 204; 404 when it is not a member.
pub async fn remove_group_member(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    require(&caller, GROUP_WRITE_DELEGATED, GROUP_WRITE_APP, "Group.ReadWrite.All")?;
    let group_id = object_id(&path, "group")?;
    let member: Uuid = object_id(&path, "member")?;
    let store = state.store.as_ref();
    let (users, groups) = administration::directory_group_members(store, caller.tenant_id, group_id, false)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&group_id.to_string()))?;
    if !users.iter().any(|u| u.id == member) && !groups.iter().any(|g| g.id == member) {
        return Err(GraphError::resource_not_found(&member.to_string()));
    }
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::remove_group_member(store, &actor, &tenant, group_id, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1.0/users/{id or UPN}/revokeSignInSessions`: ends the user's SSO sessions and revokes
/// their refresh tokens; `200 {"value": true}`, as Graph answers.
pub async fn revoke_sign_in_sessions(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    // The action takes no parameters: no body, or a JSON object (its members ignored); anything else is a
    // malformed request, not something to ignore.
    if !matches!(&body, Ok(b) if b.iter().all(u8::is_ascii_whitespace)) {
        json_object(body)?;
    }
    let (user, tenant, actor) = user_write_target(&state, &caller, &path).await?;
    administration::revoke_sign_in_sessions(state.store.as_ref(), &actor, &tenant, user.id).await?;
    let context = format!("{}/v1.0/$metadata#Edm.Boolean", state.settings.public_url);
    Ok(json_response(StatusCode::OK, serde_json::json!({"@odata.context": context, "value": true}), None))
}

/// What a write to `/users/{id or UPN}/…` acts on: the token's user-write permission checked,
/// the user of the caller's tenant, the tenant and the administration actor.
async fn user_write_target(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
) -> Result<(accord_core::directory::User, accord_core::directory::Tenant, administration::Actor), GraphError> {
    require(caller, USER_WRITE_DELEGATED, USER_WRITE_APP, "User.ReadWrite.All")?;
    let key = path.0.get("user").cloned().unwrap_or_default();
    let user = user_by_key(state, caller, &key).await?;
    let tenant = tenant(state, caller).await?;
    let actor = actor(state, caller, &tenant).await?;
    Ok((user, tenant, actor))
}
