//! Directory objects: `/v1.0/users` (list), `/v1.0/groups`, `/v1.0/groups/{id}`,
//! `/v1.0/groups/{id}/members` and `/v1.0/groups/{id}/transitiveMembers`. Reads go through the
//! administration service layer; the permission is the token's (`scp` or `roles`), and only
//! objects of the token's tenant exist for the caller.

use super::auth::Caller;
use super::errors::GraphError;
use super::odata::{KeysetPosition, Prop, PropType, QueryOptions, ResourceSpec};
use super::request::{denied, json_response, GraphPath};
use super::users::user_json;
use crate::service::administration;
use crate::state::SharedState;
use accord_core::directory::{Group, MemberKind};
use accord_core::ids::GroupId;
use accord_core::microsoft_graph::permissions::{GROUP_READ as GROUP_DELEGATED, GROUP_READ_APP as GROUP_APP};
use accord_core::microsoft_graph::permissions::{
    USER_READ_ANY as USER_OTHERS_DELEGATED, USER_READ_APP as USER_OTHERS_APP,
};
use accord_store::{DirectoryObject, MemberPosition, MemberQuery, NameField, NamePosition, NameQuery};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

const USER_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "givenName", ty: PropType::String },
    Prop { path: "surname", ty: PropType::String },
    Prop { path: "mail", ty: PropType::String },
    Prop { path: "userPrincipalName", ty: PropType::String },
];

pub(super) const USER_LIST_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.user",
    select: super::users::USER_SELECT,
    filter: USER_FILTER,
    orderby: &["displayName", "userPrincipalName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

const GROUP_SELECT: &[&str] = &[
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "visibility",
];

const GROUP_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "mailNickname", ty: PropType::String },
    Prop { path: "securityEnabled", ty: PropType::Bool },
    Prop { path: "mailEnabled", ty: PropType::Bool },
];

pub(super) const GROUP_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.group",
    select: GROUP_SELECT,
    filter: GROUP_FILTER,
    orderby: &["displayName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

const MEMBER_SELECT: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "mailNickname",
    "securityEnabled",
    "mailEnabled",
];

const MEMBER_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "userPrincipalName", ty: PropType::String },
    Prop { path: "mail", ty: PropType::String },
];

pub(super) const MEMBER_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.directoryObject",
    select: MEMBER_SELECT,
    filter: MEMBER_FILTER,
    orderby: &["displayName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

fn require_users(caller: &Caller) -> Result<(), GraphError> {
    let (held, needed) = if caller.is_app() {
        (USER_OTHERS_APP, "User.Read.All")
    } else {
        (USER_OTHERS_DELEGATED, "User.ReadBasic.All or User.Read.All")
    };
    match caller.first_of(held) {
        Some(_) => Ok(()),
        None => Err(denied(needed, caller)),
    }
}

fn require_groups(caller: &Caller) -> Result<(), GraphError> {
    let held = if caller.is_app() { GROUP_APP } else { GROUP_DELEGATED };
    match caller.first_of(held) {
        Some(_) => Ok(()),
        None => Err(denied("GroupMember.Read.All or Group.Read.All", caller)),
    }
}

pub(super) fn group_json(g: &Group) -> Value {
    let nickname: String = g.display_name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    json!({
        "id": g.id,
        "createdDateTime": null,
        "description": null,
        "displayName": g.display_name,
        "groupTypes": [],
        "mail": null,
        "mailEnabled": false,
        "mailNickname": nickname,
        "securityEnabled": true,
        "visibility": null,
    })
}

/// A directory object id from the path: 400 when it is not a GUID, as Graph answers.
pub(super) fn object_id<T: From<Uuid>>(path: &GraphPath, name: &str) -> Result<T, GraphError> {
    let raw = path.0.get(name).map(String::as_str).unwrap_or_default();
    Uuid::parse_str(raw).map(T::from).map_err(|_| {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", format!("Invalid object identifier '{raw}'."))
    })
}

pub(super) fn with_type(mut v: Value, odata_type: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("@odata.type".into(), json!(odata_type));
    }
    v
}

pub(super) fn list_response(
    state: &crate::state::AppState,
    opts: &QueryOptions,
    items: Vec<Value>,
    entity_set: &str,
    path: &str,
) -> Response {
    if opts.after.is_some() {
        // A keyset token belongs to a collection read from an index (users); here it would
        // silently restart at the first page.
        let bad = GraphError::bad_request("The '$skiptoken' value is not valid. Use the @odata.nextLink as returned.");
        return bad.into_response();
    }
    let page = opts.apply(items);
    let value: Vec<Value> = page
        .items
        .iter()
        .map(|v| {
            let t = v.get("@odata.type").cloned();
            let mut p = opts.project(v.clone());
            if let (Some(t), Value::Object(m)) = (t, &mut p) {
                m.insert("@odata.type".into(), t);
            }
            p
        })
        .collect();
    let public_url = &state.settings.public_url;
    let body = opts.collection(opts.context(public_url, entity_set), &page, value, public_url, path);
    json_response(StatusCode::OK, body, None)
}

/// Graph counts directory objects only in an "advanced query": `$count=true`, and the `/$count`
/// segment, need the `ConsistencyLevel: eventual` header, and are refused without it.
pub(super) fn require_advanced_count(counting: bool, headers: &HeaderMap) -> Result<(), GraphError> {
    let eventual = headers
        .get_all("consistencylevel")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("eventual")));
    if counting && !eventual {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "$count is not currently supported.",
        ));
    }
    Ok(())
}

/// A `$count` segment's answer: the number alone, as text.
fn count_response(total: u64) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], total.to_string()).into_response()
}

/// The index query for a listing `indexed_listing` accepted: the prefix of `startswith` on a
/// display name, or on a user's UPN (`mail` is the UPN in Accord's directory).
fn name_query(prefix: Option<(&'static str, String)>) -> NameQuery {
    match prefix {
        None => NameQuery::default(),
        Some(("userPrincipalName" | "mail", text)) => {
            NameQuery { prefix: text, field: NameField::Upn, ..Default::default() }
        }
        Some((_, text)) => NameQuery { prefix: text, field: NameField::DisplayName, ..Default::default() },
    }
}

/// `GET /v1.0/users`
pub async fn list_users(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_users(&caller)?;
    let opts = QueryOptions::parse(uri.query(), &USER_LIST_SPEC)?;
    require_advanced_count(opts.count, &headers)?;
    if let Some((key, value)) = opts.key_lookup(&["id", "userPrincipalName", "mail"]) {
        // One user by its key (how apps look a user up): no directory scan.
        let store = state.store.as_ref();
        let user = match key {
            "id" => match value.trim().parse::<uuid::Uuid>() {
                Ok(id) => store.user(caller.tenant_id, id.into()).await?,
                Err(_) => None,
            },
            _ => store.user_by_upn(caller.tenant_id, value.trim()).await?,
        };
        let items = user.iter().map(user_json).collect();
        return Ok(list_response(&state, &opts, items, "users", uri.path()));
    }
    if let Some(prefix) = opts.indexed_listing(&["displayName", "userPrincipalName", "mail"]) {
        let mut query = name_query(prefix);
        query.after = keyset_after(&opts);
        let (users, next, total) =
            administration::directory_users_page(state.store.as_ref(), caller.tenant_id, query, opts.top, opts.count)
                .await?;
        let value = users.iter().map(|u| opts.project(user_json(u))).collect();
        return Ok(keyset_page(&state, &opts, "users", uri.path(), value, next, total));
    }
    let users = administration::directory_users(state.store.as_ref(), caller.tenant_id).await?;
    let items = users.iter().map(user_json).collect();
    Ok(list_response(&state, &opts, items, "users", uri.path()))
}

/// `GET /v1.0/users/$count` (with `ConsistencyLevel: eventual`; a `startswith` filter on an
/// indexed property is counted from the index).
pub async fn count_users(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_users(&caller)?;
    require_advanced_count(true, &headers)?;
    count_of(&state, &caller, uri.query(), Directory::Users).await
}

/// The two directory collections a `$count` segment counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Directory {
    Users,
    Groups,
}

/// A `$count` segment's answer: an indexed listing counted in the database, any other filter
/// over the collection in memory.
async fn count_of(
    state: &crate::state::AppState,
    caller: &Caller,
    query: Option<&str>,
    of: Directory,
) -> Result<Response, GraphError> {
    let (spec, indexed): (&ResourceSpec, &[&'static str]) = match of {
        Directory::Users => (&USER_LIST_SPEC, &["displayName", "userPrincipalName", "mail"]),
        Directory::Groups => (&GROUP_SPEC, &["displayName"]),
    };
    let opts = QueryOptions::parse(query, spec)?;
    let (store, tenant_id) = (state.store.as_ref(), caller.tenant_id);
    let total = match (opts.indexed_listing(indexed), of) {
        (Some(prefix), Directory::Users) => store.count_users(tenant_id, &name_query(prefix)).await?,
        (Some(prefix), Directory::Groups) => store.count_groups(tenant_id, &name_query(prefix)).await?,
        (None, Directory::Users) => {
            let users = administration::directory_users(store, tenant_id).await?;
            opts.apply(users.iter().map(user_json).collect()).total as u64
        }
        (None, Directory::Groups) => {
            let groups = administration::directory_groups(store, tenant_id).await?;
            opts.apply(groups.iter().map(group_json).collect()).total as u64
        }
    };
    Ok(count_response(total))
}

fn keyset_after(opts: &QueryOptions) -> Option<NamePosition> {
    opts.after.as_ref().map(|p| NamePosition { name_key: p.key.clone(), id: p.id })
}

/// A page read from an index (users or groups with nothing but `$top`, `$select`, `$count` and
/// at most a `startswith` on an indexed property), in the order the in-memory path sorts by,
/// continued by a keyset `$skiptoken`: paging through 100,000 users costs the same per page
/// throughout.
fn keyset_page(
    state: &crate::state::AppState,
    opts: &QueryOptions,
    entity_set: &str,
    path: &str,
    value: Vec<Value>,
    next: Option<NamePosition>,
    total: Option<u64>,
) -> Response {
    let public_url = &state.settings.public_url;
    let next = next.map(|n| opts.next_link_after(public_url, path, &KeysetPosition { key: n.name_key, id: n.id }));
    let body = opts.collection_body(opts.context(public_url, entity_set), total.unwrap_or_default(), value, next);
    json_response(StatusCode::OK, body, None)
}

/// `GET /v1.0/groups`
pub async fn list_groups(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_groups(&caller)?;
    let opts = QueryOptions::parse(uri.query(), &GROUP_SPEC)?;
    require_advanced_count(opts.count, &headers)?;
    if let Some(("id", value)) = opts.key_lookup(&["id"]) {
        let group = match value.trim().parse::<GroupId>() {
            Ok(id) => state.store.group(caller.tenant_id, id).await?,
            Err(_) => None,
        };
        let items = group.iter().map(group_json).collect();
        return Ok(list_response(&state, &opts, items, "groups", uri.path()));
    }
    if let Some(prefix) = opts.indexed_listing(&["displayName"]) {
        let mut query = name_query(prefix);
        query.after = keyset_after(&opts);
        let (groups, next, total) =
            administration::directory_groups_page(state.store.as_ref(), caller.tenant_id, query, opts.top, opts.count)
                .await?;
        let value = groups.iter().map(|g| opts.project(group_json(g))).collect();
        return Ok(keyset_page(&state, &opts, "groups", uri.path(), value, next, total));
    }
    let groups = administration::directory_groups(state.store.as_ref(), caller.tenant_id).await?;
    let items = groups.iter().map(group_json).collect();
    Ok(list_response(&state, &opts, items, "groups", uri.path()))
}

/// `GET /v1.0/groups/$count` (with `ConsistencyLevel: eventual`).
pub async fn count_groups(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_groups(&caller)?;
    require_advanced_count(true, &headers)?;
    count_of(&state, &caller, uri.query(), Directory::Groups).await
}

/// `GET /v1.0/groups/{id}`
pub async fn get_group(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require_groups(&caller)?;
    let id: GroupId = object_id(&path, "group")?;
    let opts = QueryOptions::parse(uri.query(), &GROUP_SPEC)?;
    let group = state
        .store
        .group(caller.tenant_id, id)
        .await?
        .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))?;
    let mut body = opts.project(group_json(&group));
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, "groups"));
        m.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

async fn members(
    state: SharedState,
    caller: Caller,
    path: GraphPath,
    (headers, uri): (HeaderMap, axum::http::Uri),
    transitive: bool,
) -> Result<Response, GraphError> {
    require_groups(&caller)?;
    let id: GroupId = object_id(&path, "group")?;
    let opts = QueryOptions::parse(uri.query(), &MEMBER_SPEC)?;
    require_advanced_count(opts.count, &headers)?;
    if opts.indexed_listing(&[]) == Some(None) && !opts.count {
        // The plain list (only $top, $select, a $skiptoken): a page read by position, however
        // large the group or deep its nesting.
        return members_by_pages(&state, &caller, id, &opts, transitive, uri.path()).await;
    }
    let (users, groups) =
        administration::directory_group_members(state.store.as_ref(), caller.tenant_id, id, transitive)
            .await?
            .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))?;
    let items = users
        .iter()
        .map(|u| with_type(user_json(u), "#microsoft.graph.user"))
        .chain(groups.iter().map(|g| with_type(group_json(g), "#microsoft.graph.group")))
        .collect();
    Ok(list_response(&state, &opts, items, "directoryObjects", uri.path()))
}

/// A keyset position in a member list: the member's kind travels in the key ("u:" or "g:").
fn member_key(p: &MemberPosition) -> KeysetPosition {
    let kind = if p.kind == MemberKind::User { "u" } else { "g" };
    KeysetPosition { key: format!("{kind}:{}", p.name_key), id: p.id }
}

fn member_after(opts: &QueryOptions) -> Result<Option<MemberPosition>, GraphError> {
    let Some(p) = &opts.after else { return Ok(None) };
    let bad = || GraphError::bad_request("The '$skiptoken' value is not valid. Use the @odata.nextLink as returned.");
    let (kind, name_key) = match p.key.split_once(':').ok_or_else(bad)? {
        ("u", rest) => (MemberKind::User, rest),
        ("g", rest) => (MemberKind::Group, rest),
        _ => return Err(bad()),
    };
    Ok(Some(MemberPosition { kind, name_key: name_key.to_string(), id: p.id }))
}

async fn members_by_pages(
    state: &crate::state::AppState,
    caller: &Caller,
    group_id: GroupId,
    opts: &QueryOptions,
    transitive: bool,
    path: &str,
) -> Result<Response, GraphError> {
    if state.store.group(caller.tenant_id, group_id).await?.is_none() {
        return Err(GraphError::resource_not_found(&group_id.to_string()));
    }
    let query = MemberQuery { transitive, nested_users_only: false, after: member_after(opts)?, limit: 0 };
    let (page, next) =
        administration::directory_members_page(state.store.as_ref(), caller.tenant_id, group_id, query, opts.top)
            .await?;
    let value = page
        .iter()
        .map(|o| {
            let (v, t) = match o {
                DirectoryObject::User(u) => (user_json(u), "#microsoft.graph.user"),
                DirectoryObject::Group(g) => (group_json(g), "#microsoft.graph.group"),
            };
            with_type(opts.project(v), t)
        })
        .collect();
    let public_url = &state.settings.public_url;
    let next = next.map(|p| opts.next_link_after(public_url, path, &member_key(&p)));
    let body = opts.collection_body(opts.context(public_url, "directoryObjects"), 0, value, next);
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/groups/{id}/members`
pub async fn group_members(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    members(state, caller, path, (headers, uri), false).await
}

/// `GET /v1.0/groups/{id}/transitiveMembers`
pub async fn group_transitive_members(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    members(state, caller, path, (headers, uri), true).await
}
