//! Users (create, disable/enable, reset password, directory roles) and Groups (create, members
//! including nested groups).

use super::layout::{self, crumbs, done, fmt_time, need, parse_id, respond, Caps, Confirm, Destructive, Page, Section};
use crate::portal::PortalUser;
use crate::service::administration::{self, Operation};
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use accord_core::directory::{DirectoryRole, Group, PrincipalType};
use accord_core::Aadsts;
use accord_store::{MemberQuery, NameQuery};
use axum::extract::{Path, Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

fn role_help(role: DirectoryRole) -> &'static str {
    match role {
        DirectoryRole::GlobalAdministrator => "Everything, including users, groups, roles and all consent settings.",
        DirectoryRole::PrivilegedRoleAdministrator => {
            "Directory roles and the user consent setting; may grant any permission, Microsoft Graph \
             application permissions included."
        }
        DirectoryRole::CloudApplicationAdministrator => {
            "Enterprise applications and app registrations; may grant consent except for Microsoft Graph \
             application permissions."
        }
        DirectoryRole::ApplicationAdministrator => {
            "Like Cloud Application Administrator (Accord does not model application proxy)."
        }
    }
}

fn users_crumbs(extra: Option<(String, String)>) -> Vec<layout::Crumb> {
    let mut items =
        vec![("Users".to_string(), "/admin/users".to_string()), ("All users".to_string(), "/admin/users".to_string())];
    items.extend(extra);
    crumbs(items)
}

/// Rows a directory list shows per page.
const LIST_PAGE: u32 = 50;

/// The search and page of a directory list from its query string: `q` (the start of a name or
/// UPN, or an object id) and `after` (the object id the previous page ended with).
struct ListParams {
    q: String,
    after: Option<Uuid>,
}

impl ListParams {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ServiceError> {
        let after = match q.get("after").map(|a| a.trim()).filter(|a| !a.is_empty()) {
            None => None,
            Some(raw) => {
                Some(Uuid::parse_str(raw).map_err(|_| Aadsts::invalid_parameter("after", "is not an object ID"))?)
            }
        };
        Ok(ListParams { q: q.get("q").map(|s| s.trim().to_string()).unwrap_or_default(), after })
    }

    /// Links to the next and first pages, keeping the search.
    fn paging(&self, path: &str, next: Option<Uuid>) -> Value {
        let link = |after: Option<Uuid>| {
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            layout::link(path, [("q", self.q.as_str()), ("after", after.as_str())])
        };
        context! { next => next.map(|n| link(Some(n))), first => self.after.map(|_| link(None)) }
    }

    /// The store's query: the search, and the position after the object the previous page
    /// ended with.
    async fn query(&self, state: &AppState, portal: &PortalUser) -> Result<NameQuery, ServiceError> {
        let after = match self.after {
            None => None,
            Some(id) => Some(administration::position_after(&*state.store, &portal.actor, &portal.tenant, id).await?),
        };
        Ok(NameQuery { prefix: self.q.clone(), after, limit: LIST_PAGE, ..Default::default() })
    }
}

/// `GET /admin/users?q=&after=`
pub async fn users(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let params = ListParams::parse(&q)?;
        let (store, actor, tenant) = (&*state.store, &portal.actor, &portal.tenant);
        let page = administration::users(store, actor, tenant, &params.query(&state, &portal).await?).await?;
        let now = accord_core::clock::now();
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|u| {
                context! {
                    id => u.user.id.to_string(), name => u.user.display_name, upn => u.user.upn,
                    enabled => u.user.enabled,
                    locked => u.user.locked_until.is_some_and(|t| t > now),
                    roles => u.roles.iter().map(|r| r.display_name()).collect::<Vec<_>>(),
                }
            })
            .collect();
        let paging = params.paging("/admin/users", page.next.as_ref().map(|p| p.id));
        let ctx = context! { users => rows, total => page.total, q => params.q, paging };
        let page =
            Page { section: Section::Users, crumbs: users_crumbs(None), template: "admin/users.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `GET /admin/users/new`
pub async fn new_user(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        need(&portal, Operation::ManageUsers)?;
        let ctx = context! { domains => portal.tenant.domains };
        let crumbs = users_crumbs(Some(("New user".into(), "/admin/users/new".into())));
        Ok(layout::page(
            &state,
            &portal,
            Page { section: Section::Users, crumbs, template: "admin/user_new.html", ctx, query: &q },
        )
        .await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn new_user_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let user = administration::create_user(
            &*state.store,
            &portal.actor,
            &portal.tenant,
            form.get("upn"),
            form.get("display_name"),
            form.get("password"),
        )
        .await?;
        Ok(done(&format!("/admin/users/{}", user.id), "user_created"))
    })
    .await
}

/// `GET /admin/users/{id}`
pub async fn user(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let user_id = parse_id(&id)?;
        let (u, groups) = administration::user_details(&*state.store, &portal.actor, &portal.tenant, user_id).await?;
        let now = accord_core::clock::now();
        let roles: Vec<Value> = DirectoryRole::ALL
            .iter()
            .map(|r| {
                context! {
                    key => r.template_id().to_string(), name => r.display_name(), help => role_help(*r),
                    held => u.roles.contains(r),
                }
            })
            .collect();
        let ctx = context! {
            user => context! {
                id => u.user.id.to_string(), name => u.user.display_name, upn => u.user.upn, enabled => u.user.enabled,
                locked => u.user.locked_until.filter(|t| *t > now).map(fmt_time),
                has_password => u.user.password_hash.is_some(),
                roles => u.roles.iter().map(|r| r.display_name()).collect::<Vec<_>>(),
                is_me => u.user.id == portal.user.id,
            },
            groups => groups.iter().map(group_link).collect::<Vec<_>>(),
            roles,
        };
        let crumbs = users_crumbs(Some((u.user.display_name.clone(), format!("/admin/users/{}", u.user.id))));
        let page = Page { section: Section::Users, crumbs, template: "admin/user.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST /admin/users/{id}/enabled` (`enabled=no` needs `confirm=yes`)
pub async fn user_enabled_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let user_id = parse_id(&id)?;
        let enabled = form.yes_no("enabled").ok_or_else(|| Aadsts::invalid_parameter("enabled", "yes or no"))?;
        if !enabled {
            form.require_confirmation()?;
        }
        administration::set_user_enabled(&*state.store, &portal.actor, &portal.tenant, user_id, enabled).await?;
        Ok(done(&format!("/admin/users/{user_id}"), if enabled { "user_enabled" } else { "user_disabled" }))
    })
    .await
}

/// `GET /admin/users/{id}/delete`: confirmation.
pub async fn delete_user(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        need(&portal, Operation::ManageUsers)?;
        let (u, groups) =
            administration::user_details(&*state.store, &portal.actor, &portal.tenant, parse_id(&id)?).await?;
        let confirm = Confirm {
            heading: "Delete user".into(),
            message: format!(
                "{} is deleted for good: they can no longer sign in, and their group memberships, app \
                 assignments, the consent they gave, their calendar and their requests go with them. This \
                 cannot be undone.",
                u.user.upn
            ),
            details: vec![
                ("Name".into(), u.user.display_name.clone()),
                ("User principal name".into(), u.user.upn.clone()),
                ("Directory roles".into(), list_or_none(u.roles.iter().map(|r| r.display_name()))),
                ("Member of".into(), list_or_none(groups.iter().map(|g| g.display_name.as_str()))),
            ],
            action: format!("/admin/users/{}/delete", u.user.id),
            button: "Delete",
            cancel: format!("/admin/users/{}", u.user.id),
            hidden: vec![],
        };
        let crumbs = users_crumbs(Some((u.user.display_name.clone(), format!("/admin/users/{}", u.user.id))));
        Ok(confirm.page(&state, &portal, Section::Users, crumbs, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// "A, B" or "None".
fn list_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = items.collect();
    if list.is_empty() {
        "None".into()
    } else {
        list.join(", ")
    }
}

pub async fn delete_user_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        administration::delete_user(&*state.store, &portal.actor, &portal.tenant, parse_id(&id)?).await?;
        Ok(done("/admin/users", "user_deleted"))
    })
    .await
}

/// `POST /admin/users/{id}/password`
pub async fn password_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let user_id = parse_id(&id)?;
        administration::reset_password(&*state.store, &portal.actor, &portal.tenant, user_id, form.get("password"))
            .await?;
        Ok(done(&format!("/admin/users/{user_id}"), "password_reset"))
    })
    .await
}

/// `POST /admin/users/{id}/roles`: the ticked roles are the user's roles.
pub async fn roles_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let user_id = parse_id(&id)?;
        let mut roles = Vec::new();
        for r in form.all("role") {
            let role = Uuid::parse_str(r)
                .ok()
                .and_then(DirectoryRole::from_template_id)
                .ok_or_else(|| Aadsts::invalid_parameter("role", "not a directory role Accord knows"))?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        administration::set_user_roles(&*state.store, &portal.actor, &portal.tenant, user_id, roles).await?;
        Ok(done(&format!("/admin/users/{user_id}"), "roles_saved"))
    })
    .await
}

fn group_link(g: &Group) -> Value {
    context! { id => g.id.to_string(), name => g.display_name }
}

fn groups_crumbs(extra: Option<(String, String)>) -> Vec<layout::Crumb> {
    let mut items = vec![
        ("Groups".to_string(), "/admin/groups".to_string()),
        ("All groups".to_string(), "/admin/groups".to_string()),
    ];
    items.extend(extra);
    crumbs(items)
}

/// `GET /admin/groups?q=&after=`
pub async fn groups(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let params = ListParams::parse(&q)?;
        let (store, actor, tenant) = (&*state.store, &portal.actor, &portal.tenant);
        let page = administration::groups(store, actor, tenant, &params.query(&state, &portal).await?).await?;
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|(g, members)| context! { id => g.id.to_string(), name => g.display_name, members => *members })
            .collect();
        let paging = params.paging("/admin/groups", page.next.as_ref().map(|p| p.id));
        let page = Page {
            section: Section::Groups,
            crumbs: groups_crumbs(None),
            template: "admin/groups.html",
            ctx: context! { groups => rows, total => page.total, q => params.q, paging },
            query: &q,
        };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST /admin/groups`: a new group.
pub async fn new_group_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let group =
            administration::create_group(&*state.store, &portal.actor, &portal.tenant, form.get("display_name"))
                .await?;
        Ok(done(&format!("/admin/groups/{}", group.id), "group_created"))
    })
    .await
}

/// `GET /admin/groups/{id}?q=`: members, nested members, and (for managers) adding members.
pub async fn group(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let store = &*state.store;
        let d = administration::group_details(store, &portal.actor, &portal.tenant, parse_id(&id)?).await?;
        let member = |p: &administration::PrincipalSummary| {
            context! { id => p.id.to_string(), name => p.display_name, upn => p.upn, kind => p.kind.as_str() }
        };
        // A group of a large tenant has thousands of members: each list is read a page at a
        // time, continuing after the last member shown (`after`, `nested_after`).
        let path = format!("/admin/groups/{}", d.group.id);
        let (direct, direct_paging) = members_page(&state, &portal, &d, &q, MemberList::Direct, &path).await?;
        let (nested, nested_paging) = members_page(&state, &portal, &d, &q, MemberList::Nested, &path).await?;
        let through = administration::through_groups(store, &portal.actor, &portal.tenant, d.group.id, &nested).await?;
        let search = q.get("q").cloned().unwrap_or_default();
        let caps = Caps::of(&state, &portal).await;
        let candidates: Vec<Value> = if caps.manage_groups {
            administration::find_principals(store, &portal.actor, &portal.tenant, &search, true, 50)
                .await?
                .iter()
                .filter(|p| p.id != d.group.id && !direct.iter().any(|m| m.id == p.id))
                .map(member)
                .collect()
        } else {
            Vec::new()
        };
        let ctx = context! {
            group => context! { id => d.group.id.to_string(), name => d.group.display_name },
            direct => direct.iter().map(member).collect::<Vec<_>>(),
            direct_total => d.direct_count, direct_paging,
            nested => nested.iter().zip(through).map(|(u, via)| context! { via, ..member(u) }).collect::<Vec<_>>(),
            nested_paging,
            member_of => d.member_of.iter().map(group_link).collect::<Vec<_>>(),
            candidates, q => search,
        };
        let crumbs = groups_crumbs(Some((d.group.display_name.clone(), format!("/admin/groups/{}", d.group.id))));
        let page = Page { section: Section::Groups, crumbs, template: "admin/group.html", ctx, query: &q };
        Ok(layout::page(&state, &portal, page).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// The two member lists of a group's page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberList {
    /// Its direct members, users and groups.
    Direct,
    /// The users who belong only through nested groups.
    Nested,
}

/// One page of a member list, after the member its parameter names, and the links to the
/// next and first pages (the other list's position kept).
async fn members_page(
    state: &AppState,
    portal: &PortalUser,
    d: &administration::GroupDetails,
    q: &HashMap<String, String>,
    list: MemberList,
    path: &str,
) -> Result<(Vec<administration::PrincipalSummary>, Value), ServiceError> {
    let param = if list == MemberList::Direct { "after" } else { "nested_after" };
    let after = match q.get(param).map(|a| a.trim()).filter(|a| !a.is_empty()) {
        None => None,
        Some(raw) => {
            let id = Uuid::parse_str(raw).map_err(|_| Aadsts::invalid_parameter(param, "is not an object ID"))?;
            Some(administration::member_position(&*state.store, &portal.actor, &portal.tenant, id, param).await?)
        }
    };
    let query = MemberQuery {
        transitive: list == MemberList::Nested,
        nested_users_only: list == MemberList::Nested,
        after,
        limit: layout::PAGE_ROWS as u32,
    };
    let (members, next) =
        administration::group_members_page(&*state.store, &portal.actor, &portal.tenant, d.group.id, query).await?;
    let keep = layout::kept_params(q, param);
    let link = |after: &str| layout::link(path, keep.iter().copied().chain([(param, after)]));
    let next = next.map(|p| link(&p.id.to_string()));
    let first = q.get(param).filter(|a| !a.trim().is_empty()).map(|_| link(""));
    Ok((members, context! { next, first }))
}

/// `POST /admin/groups/{id}/members`: add a user or a (nested) group.
pub async fn add_member_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let group_id = parse_id(&id)?;
        let member = Uuid::parse_str(form.get("member"))
            .map_err(|_| Aadsts::invalid_parameter("member", "choose a user or group"))?;
        administration::add_group_member(&*state.store, &portal.actor, &portal.tenant, group_id, member).await?;
        Ok(done(&format!("/admin/groups/{group_id}"), "member_added"))
    })
    .await
}

/// `GET /admin/groups/{id}/members/{member}/remove`: confirmation.
pub async fn remove_member(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((id, member)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let result = async {
        need(&portal, Operation::ManageGroups)?;
        let d = administration::group_details(&*state.store, &portal.actor, &portal.tenant, parse_id(&id)?).await?;
        let member_id: Uuid = parse_id(&member)?;
        let m = administration::direct_member(&*state.store, &portal.actor, &portal.tenant, d.group.id, member_id)
            .await?
            .ok_or_else(layout::not_found)?;
        let m = &m;
        let consequence =
            if m.kind == PrincipalType::Group { " Its members stop belonging to this group through it." } else { "" };
        let confirm = Confirm {
            heading: "Remove member".into(),
            message: format!(
                "{} will no longer be a member of {}.{consequence} Access that comes from the group (app \
                 assignments, reviewer duty) ends.",
                m.display_name, d.group.display_name
            ),
            details: vec![
                ("Member".into(), m.display_name.clone()),
                ("Type".into(), m.kind.as_str().into()),
                ("Group".into(), d.group.display_name.clone()),
            ],
            action: format!("/admin/groups/{}/members/{member_id}/remove", d.group.id),
            button: "Remove",
            cancel: format!("/admin/groups/{}", d.group.id),
            hidden: vec![],
        };
        let crumbs = groups_crumbs(Some((d.group.display_name.clone(), format!("/admin/groups/{}", d.group.id))));
        Ok(confirm.page(&state, &portal, Section::Groups, crumbs, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn remove_member_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((id, member)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (group_id, member_id) = (parse_id(&id)?, parse_id(&member)?);
        administration::remove_group_member(&*state.store, &portal.actor, &portal.tenant, group_id, member_id).await?;
        Ok(done(&format!("/admin/groups/{group_id}"), "member_removed"))
    })
    .await
}
