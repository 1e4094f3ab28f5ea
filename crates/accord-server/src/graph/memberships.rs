//! A user's group memberships, nested groups included: `transitiveMemberOf` (the groups as
//! directory objects) and `getMemberObjects` (their ids) — where an app turns when a token's
//! `groups` claim overflowed (`_claim_names`) or was not asked for. One's own memberships need
//! only `User.Read`; another user's a directory or group-membership permission.

use super::auth::Caller;
use super::directory::{group_json, list_response, GROUP_SPEC};
use super::errors::GraphError;
use super::odata::QueryOptions;
use super::request::{denied, json_object, json_response, GraphPath};
use super::users::find_user;
use crate::state::{AppState, SharedState};
use accord_core::directory::{Group, User};
use accord_core::microsoft_graph::permissions::{ME, MEMBERSHIP_READ, MEMBERSHIP_READ_APP};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

/// The user a `/me/…` or `/users/{user}/…` path names, if the caller may read their memberships.
async fn subject(state: &AppState, caller: &Caller, path: Option<&GraphPath>) -> Result<User, GraphError> {
    let others = if caller.is_app() { MEMBERSHIP_READ_APP } else { MEMBERSHIP_READ };
    let key = match path {
        None => {
            let Some(me) = caller.user_id() else {
                return Err(GraphError::bad_request("/me request is only valid with delegated authentication flow."));
            };
            me.to_string()
        }
        Some(p) => p.0.get("user").cloned().unwrap_or_default(),
    };
    let user = find_user(state, caller.tenant_id, &key).await?.ok_or_else(|| GraphError::resource_not_found(&key))?;
    let own = !caller.is_app() && caller.user_id() == Some(user.id) && caller.first_of(ME).is_some();
    if !own && caller.first_of(others).is_none() {
        return Err(denied(
            if caller.is_app() { "GroupMember.Read.All" } else { "GroupMember.Read.All or User.Read (for /me)" },
            caller,
        ));
    }
    Ok(user)
}

/// Every group the user is in, directly or through nested groups, by name.
async fn groups_of(state: &AppState, user: &User) -> Result<Vec<Group>, GraphError> {
    let ids = state.store.transitive_groups_of(user.tenant_id, user.id.into()).await?;
    let mut groups = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(g) = state.store.group(user.tenant_id, id).await? {
            groups.push(g);
        }
    }
    groups.sort_by(|a, b| a.display_name.to_lowercase().cmp(&b.display_name.to_lowercase()).then(a.id.cmp(&b.id)));
    Ok(groups)
}

/// The groups as directory objects, with the OData options group lists take ($select,
/// $filter, $orderby, $top, paging).
async fn transitive_member_of(
    state: &AppState,
    caller: Caller,
    path: Option<&GraphPath>,
    uri: &Uri,
) -> Result<Response, GraphError> {
    let opts = QueryOptions::parse(uri.query(), &GROUP_SPEC)?;
    let user = subject(state, &caller, path).await?;
    let items: Vec<Value> = groups_of(state, &user)
        .await?
        .iter()
        .map(|g| {
            let mut v = group_json(g);
            v["@odata.type"] = json!("#microsoft.graph.group");
            v
        })
        .collect();
    Ok(list_response(state, &opts, items, "directoryObjects", uri.path()))
}

async fn get_member_objects(
    state: &AppState,
    caller: Caller,
    path: Option<&GraphPath>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "securityEnabledOnly") {
        return Err(GraphError::bad_request(format!("Property '{k}' does not exist on the getMemberObjects action.")));
    }
    if !matches!(m.get("securityEnabledOnly"), None | Some(Value::Bool(_))) {
        return Err(GraphError::bad_request(
            "Invalid value for parameter 'securityEnabledOnly': true or false is expected.",
        ));
    }
    let user = subject(state, &caller, path).await?;
    // Every Accord group is a security group: securityEnabledOnly changes nothing.
    let value: Vec<String> = groups_of(state, &user).await?.iter().map(|g| g.id.to_string()).collect();
    let context = format!("{}/v1.0/$metadata#Collection(Edm.String)", state.settings.public_url);
    Ok(json_response(StatusCode::OK, json!({ "@odata.context": context, "value": value }), None))
}

/// `GET /v1.0/me/transitiveMemberOf`
pub async fn my_transitive_member_of(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    transitive_member_of(&state, caller, None, &uri).await
}

/// `GET /v1.0/users/{user}/transitiveMemberOf`
pub async fn user_transitive_member_of(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    transitive_member_of(&state, caller, Some(&path), &uri).await
}

/// `POST /v1.0/me/getMemberObjects`
pub async fn my_member_objects(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    get_member_objects(&state, caller, None, body).await
}

/// `POST /v1.0/users/{user}/getMemberObjects`
pub async fn user_member_objects(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    get_member_objects(&state, caller, Some(&path), body).await
}
