//! Users: `/v1.0/me` and `/v1.0/users/{id|upn}`, read with exactly the permissions the token
//! carries, and the user JSON the directory endpoints share.

use super::auth::Caller;
use super::errors::GraphError;
use super::odata::{QueryOptions, ResourceSpec};
use super::request::{denied as directory_denied, json_response, GraphPath};
use crate::state::{AppState, SharedState};
use accord_core::directory::User;
use accord_core::ids::{TenantId, UserId};
use accord_core::microsoft_graph::permissions::{
    ME as USER_SELF, USER_READ_ANY as USER_OTHERS_DELEGATED, USER_READ_APP as USER_OTHERS_APP,
};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

pub(super) const USER_SELECT: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

pub(super) const USER_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.user",
    select: USER_SELECT,
    filter: &[],
    orderby: &[],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

/// The tenant's user named by object id or UPN (one indexed read, no scan).
pub(super) async fn find_user(state: &AppState, tenant_id: TenantId, key: &str) -> Result<Option<User>, GraphError> {
    Ok(match key.parse::<UserId>() {
        Ok(id) => state.store.user(tenant_id, id).await?,
        Err(_) => state.store.user_by_upn(tenant_id, key).await?,
    })
}

pub(super) fn invalid_user(key: &str) -> GraphError {
    GraphError::new(StatusCode::NOT_FOUND, "ErrorInvalidUser", format!("The requested user '{key}' is invalid."))
}

pub(super) fn split_name(display_name: &str) -> (Value, Value) {
    match display_name.trim().split_once(' ') {
        Some((given, family)) => (json!(given), json!(family.trim())),
        None => (json!(display_name), Value::Null),
    }
}

pub(super) fn user_json(user: &User) -> Value {
    let (given, surname) = split_name(&user.display_name);
    json!({
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given,
        "jobTitle": null,
        "mail": user.upn,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": surname,
        "userPrincipalName": user.upn,
    })
}

pub(super) fn user_response(state: &AppState, user: &User, query: Option<&str>) -> Result<Response, GraphError> {
    let opts = QueryOptions::parse(query, &USER_SPEC)?;
    let mut body = opts.project(user_json(user));
    if let Value::Object(m) = &mut body {
        m.insert(
            "@odata.context".into(),
            json!(format!("{}/$entity", opts.context(&state.settings.public_url, "users"))),
        );
    }
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/me`
pub async fn me(
    State(state): State<SharedState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    let Some(me) = caller.user_id() else {
        return Err(GraphError::bad_request("/me request is only valid with delegated authentication flow."));
    };
    if caller.first_of(USER_SELF).is_none() {
        return Err(directory_denied("User.Read", &caller));
    }
    let user =
        state.store.user(caller.tenant_id, me).await?.ok_or_else(|| GraphError::resource_not_found(&me.to_string()))?;
    user_response(&state, &user, query.as_deref())
}

/// `GET /v1.0/users/{id|upn}`
pub async fn user(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    let key = path.0.get("user").cloned().unwrap_or_default();
    let others = if caller.is_app() { USER_OTHERS_APP } else { USER_OTHERS_DELEGATED };
    let self_ok = !caller.is_app() && caller.first_of(USER_SELF).is_some();
    if !self_ok && caller.first_of(others).is_none() {
        return Err(directory_denied(
            if caller.is_app() { "User.Read.All" } else { "User.ReadBasic.All or User.Read.All" },
            &caller,
        ));
    }
    let user = find_user(&state, caller.tenant_id, &key).await?.ok_or_else(|| GraphError::resource_not_found(&key))?;
    if caller.user_id() != Some(user.id) && caller.first_of(others).is_none() {
        return Err(directory_denied(
            if caller.is_app() { "User.Read.All" } else { "User.ReadBasic.All or User.Read.All" },
            &caller,
        ));
    }
    user_response(&state, &user, query.as_deref())
}
