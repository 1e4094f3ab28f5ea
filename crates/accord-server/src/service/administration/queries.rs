//! What the admin center's pages, My Apps and the Graph API read, checked like the writes
//! (reading needs `ReadDirectory`, the audit log `ReadAudit`, requests a reviewer or
//! `ReadDirectory`), so pages never assemble store reads of their own.

use super::*;
use accord_core::ids::{AppId, GroupId, ServicePrincipalId, TenantId, UserId};
use std::collections::HashMap;

use accord_core::consent_records::{AuditEvent, ConsentRequest, RequestStatus};
use accord_core::well_known::{GRAPH_APP_ID, MICROSOFT_SERVICES_TENANT_ID};

/// The organisation that publishes an app: Microsoft for first-party apps, else its home tenant.
pub async fn publisher_name(store: &dyn Store, owner_tenant_id: TenantId) -> Result<String, ServiceError> {
    if owner_tenant_id == MICROSOFT_SERVICES_TENANT_ID {
        return Ok("Microsoft".into());
    }
    Ok(store.tenant(owner_tenant_id).await?.map(|t| t.display_name).unwrap_or_else(|| "another organisation".into()))
}

/// A user, group or service principal of the tenant, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSummary {
    pub id: Uuid,
    pub kind: PrincipalType,
    pub display_name: String,
    /// The UPN of a user; empty otherwise.
    pub upn: String,
    pub enabled: bool,
}

impl PrincipalSummary {
    fn of_user(u: &User) -> Self {
        Self {
            id: u.id.into(),
            kind: PrincipalType::User,
            display_name: u.display_name.clone(),
            upn: u.upn.clone(),
            enabled: u.enabled,
        }
    }

    fn of_group(g: &Group) -> Self {
        Self {
            id: g.id.into(),
            kind: PrincipalType::Group,
            display_name: g.display_name.clone(),
            upn: String::new(),
            enabled: true,
        }
    }
}

/// Looks a principal up by object id (users, then groups, then service principals).
pub async fn principal(store: &dyn Store, tenant: &Tenant, id: Uuid) -> Result<Option<PrincipalSummary>, ServiceError> {
    if let Some(u) = store.user(tenant.id, UserId::from(id)).await? {
        return Ok(Some(PrincipalSummary::of_user(&u)));
    }
    if let Some(g) = store.group(tenant.id, GroupId::from(id)).await? {
        return Ok(Some(PrincipalSummary::of_group(&g)));
    }
    Ok(store.service_principal(tenant.id, ServicePrincipalId::from(id)).await?.map(|sp| PrincipalSummary {
        id: sp.id.into(),
        kind: PrincipalType::ServicePrincipal,
        display_name: sp.display_name,
        upn: String::new(),
        enabled: sp.enabled,
    }))
}

async fn principal_or_deleted(
    store: &dyn Store,
    tenant: &Tenant,
    id: Uuid,
    kind: PrincipalType,
) -> Result<PrincipalSummary, ServiceError> {
    Ok(principal(store, tenant, id).await?.unwrap_or(PrincipalSummary {
        id,
        kind,
        display_name: format!("(deleted {id})"),
        upn: String::new(),
        enabled: false,
    }))
}

/// How many app registrations the tenant homes (one read).
pub async fn app_registration_count(store: &dyn Store, actor: &Actor, tenant: &Tenant) -> Result<usize, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    Ok(store.applications_homed_in(tenant.id).await?.len())
}

/// Users and (optionally) groups whose display name or UPN starts with `query` (any case), or
/// whose object id it is; everyone when `query` is blank. Users first, each kind by display
/// name; at most `limit`. Read a page at a time from the store's indexes, whatever the size of
/// the directory.
pub async fn find_principals(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &str,
    include_groups: bool,
    limit: usize,
) -> Result<Vec<PrincipalSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let page = NameQuery { prefix: query.trim().to_string(), limit: limit.min(1000) as u32, ..Default::default() };
    let mut found: Vec<PrincipalSummary> =
        store.users_page(tenant.id, &page).await?.iter().map(PrincipalSummary::of_user).collect();
    if include_groups && found.len() < limit {
        let groups = store.groups_page(tenant.id, &page).await?;
        found.extend(groups.iter().map(PrincipalSummary::of_group));
    }
    found.truncate(limit);
    Ok(found)
}

/// The users and groups of the tenant with these ids, in the order given; ids that name
/// neither are left out.
pub async fn principals_by_ids(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<Vec<PrincipalSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(u) = store.user(tenant.id, UserId::from(id)).await? {
            out.push(PrincipalSummary::of_user(&u));
        } else if let Some(g) = store.group(tenant.id, GroupId::from(id)).await? {
            out.push(PrincipalSummary::of_group(&g));
        }
    }
    Ok(out)
}

/// Where a directory page that ended with this user or group continues.
pub async fn position_after(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    id: Uuid,
) -> Result<NamePosition, ServiceError> {
    let MemberPosition { name_key, id, .. } = member_position(store, actor, tenant, id, "after").await?;
    Ok(NamePosition { name_key, id })
}

/// One enterprise application of the tenant, as "All applications" lists it.
#[derive(Debug, Clone)]
pub struct EnterpriseAppSummary {
    pub sp: ServicePrincipal,
    /// In-progress admin consent requests for the app.
    pub pending_requests: usize,
}

/// Who publishes an enterprise app, for the rows a page shows.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub name: String,
    pub verified: bool,
}

/// "All applications" search and filters; `None` means either.
#[derive(Debug, Clone, Default)]
pub struct EnterpriseAppFilter {
    /// Part of the display name (any case) or of the application (client) id.
    pub search: String,
    pub enabled: Option<bool>,
    pub assignment_required: Option<bool>,
    pub has_pending_requests: Option<bool>,
}

/// The tenant's enterprise applications matching `filter`, by display name.
pub async fn enterprise_apps(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    filter: &EnterpriseAppFilter,
) -> Result<Vec<EnterpriseAppSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let pending: Vec<AppId> = store
        .consent_requests(tenant.id, None)
        .await?
        .into_iter()
        .filter(|r| r.status == RequestStatus::InProgress)
        .map(|r| r.client_app_id)
        .collect();
    let needle = filter.search.trim().to_lowercase();
    let mut out = Vec::new();
    for sp in store.service_principals(tenant.id).await? {
        let pending_requests = pending.iter().filter(|a| **a == sp.app_id).count();
        let found = needle.is_empty()
            || sp.display_name.to_lowercase().contains(&needle)
            || sp.app_id.to_string().contains(&needle);
        let keep = found
            && filter.enabled.is_none_or(|e| e == sp.enabled)
            && filter.assignment_required.is_none_or(|a| a == sp.assignment_required)
            && filter.has_pending_requests.is_none_or(|p| p == (pending_requests > 0));
        if !keep {
            continue;
        }
        out.push(EnterpriseAppSummary { sp, pending_requests });
    }
    out.sort_by_key(|a| (a.sp.display_name.to_lowercase(), a.sp.id));
    Ok(out)
}

/// The publishers of the apps a page shows (two reads an app, so only for the page's rows).
pub async fn publishers(store: &dyn Store, apps: &[EnterpriseAppSummary]) -> Result<Vec<Publisher>, ServiceError> {
    let mut out = Vec::with_capacity(apps.len());
    for a in apps {
        let verified = store.application_by_app_id(a.sp.app_id).await?.is_some_and(|app| app.verified_publisher);
        out.push(Publisher { name: publisher_name(store, a.sp.app_owner_tenant_id).await?, verified });
    }
    Ok(out)
}

/// An app role's name for lists: "Default Access" for the default role.
pub fn app_role_name(app: Option<&Application>, app_role_id: Uuid) -> String {
    if app_role_id == DEFAULT_ACCESS_ROLE_ID {
        return "Default Access".into();
    }
    match app.and_then(|a| a.app_role_by_id(app_role_id)) {
        Some(r) if !r.display_name.is_empty() && r.display_name != r.value => {
            format!("{} ({})", r.display_name, r.value)
        }
        Some(r) => r.value.clone(),
        None => format!("(removed role {app_role_id})"),
    }
}

/// A user or group assigned to an enterprise application ("Users and groups").
#[derive(Debug, Clone)]
pub struct AssignmentSummary {
    pub assignment: AppRoleAssignment,
    pub principal: PrincipalSummary,
    pub role: String,
}

/// The users and groups assigned to an enterprise application, by name.
pub async fn app_assignments(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
) -> Result<Vec<AssignmentSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    let app = store.application_by_app_id(sp.app_id).await?;
    let mut out = Vec::new();
    for a in store.app_role_assignments_to(tenant.id, sp.id).await? {
        if a.principal_type == PrincipalType::ServicePrincipal {
            continue; // an application permission on this app as an API, not a user or group
        }
        let principal = principal_or_deleted(store, tenant, a.principal_id, a.principal_type).await?;
        let role = app_role_name(app.as_ref(), a.app_role_id);
        out.push(AssignmentSummary { assignment: a, principal, role });
    }
    out.sort_by_key(|a| (a.principal.display_name.to_lowercase(), a.assignment.id));
    Ok(out)
}

/// A delegated grant with the names a page shows.
#[derive(Debug, Clone)]
pub struct GrantSummary {
    pub grant: DelegatedGrant,
    pub resource: String,
    /// The consenting user of a `Principal` grant.
    pub principal: Option<PrincipalSummary>,
}

/// An application permission held by a client (an app role assignment to its service principal).
#[derive(Debug, Clone)]
pub struct AppPermissionSummary {
    pub assignment: AppRoleAssignment,
    pub resource: String,
    pub value: String,
    pub display_name: String,
}

/// What an enterprise application holds: the organisation's and users' delegated grants, and
/// its application permissions.
#[derive(Debug, Clone, Default)]
pub struct AppPermissions {
    pub admin_consented: Vec<GrantSummary>,
    pub user_consented: Vec<GrantSummary>,
    pub application: Vec<AppPermissionSummary>,
}

pub async fn app_permissions(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    sp_id: ServicePrincipalId,
) -> Result<AppPermissions, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = service_principal(store, tenant, sp_id).await?;
    let mut out = AppPermissions::default();
    for grant in store.delegated_grants_of_client(tenant.id, sp.id).await? {
        let resource =
            store.service_principal(tenant.id, grant.resource_sp_id).await?.map(|r| r.display_name).unwrap_or_default();
        match (grant.consent_type, grant.principal_id) {
            (ConsentType::Principal, Some(p)) => {
                let principal = Some(principal_or_deleted(store, tenant, p.into(), PrincipalType::User).await?);
                out.user_consented.push(GrantSummary { grant, resource, principal });
            }
            _ => out.admin_consented.push(GrantSummary { grant, resource, principal: None }),
        }
    }
    for assignment in store.app_role_assignments_of(tenant.id, sp.id.into()).await? {
        let resource_sp = store.service_principal(tenant.id, assignment.resource_sp_id).await?;
        let resource_app = match &resource_sp {
            Some(r) => store.application_by_app_id(r.app_id).await?,
            None => None,
        };
        let role = resource_app.as_ref().and_then(|a| a.app_role_by_id(assignment.app_role_id));
        out.application.push(AppPermissionSummary {
            resource: resource_sp.map(|r| r.display_name).unwrap_or_default(),
            value: role.map(|r| r.value.clone()).unwrap_or_else(|| assignment.app_role_id.to_string()),
            display_name: role.map(|r| r.display_name.clone()).unwrap_or_default(),
            assignment,
        });
    }
    out.user_consented.sort_by_key(|g| (g.principal.as_ref().map(|p| p.upn.clone()), g.grant.id));
    Ok(out)
}

/// A user with their directory roles.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub user: User,
    pub roles: Vec<DirectoryRole>,
}

/// The tenant's users whose name or UPN contains `query` (any case), by display name.
/// One page of a directory list: the items, how many match in all, and where the next page
/// starts (none on the last page).
#[derive(Debug, Clone)]
pub struct DirectoryPage<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub next: Option<NamePosition>,
}

/// The most items a directory page holds.
pub const MAX_PAGE: u32 = 200;

/// Reads `query.limit` items and one more, to know whether a next page exists.
fn split_page<T, P>(mut items: Vec<T>, limit: u32, position: impl Fn(&T) -> P) -> (Vec<T>, Option<P>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(position) } else { None };
    (items, next)
}

/// The tenant's users, a page at a time (see [`NameQuery`]), each with their directory roles.
pub async fn users(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &NameQuery,
) -> Result<DirectoryPage<UserSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let limit = query.limit.clamp(1, MAX_PAGE) as usize;
    let (users, next, total) = directory_users_page(store, tenant.id, query.clone(), limit, true).await?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let mut roles = store.roles_of_users(tenant.id, &ids).await?;
    let items =
        users.into_iter().map(|user| UserSummary { roles: roles.remove(&user.id).unwrap_or_default(), user }).collect();
    Ok(DirectoryPage { items, total: total.unwrap_or_default(), next })
}

/// How many users and groups the tenant has (counted by the database).
pub async fn directory_counts(store: &dyn Store, actor: &Actor, tenant: &Tenant) -> Result<(u64, u64), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let all = NameQuery::default();
    Ok((store.count_users(tenant.id, &all).await?, store.count_groups(tenant.id, &all).await?))
}

/// One user with roles and the groups they belong to (transitively).
pub async fn user_details(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
) -> Result<(UserSummary, Vec<Group>), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    let roles = store.user_roles(tenant.id, user.id).await?;
    // The user's groups with their names in one walk, not a read of every group of the tenant.
    let mut groups: Vec<Group> = store
        .memberships_of(tenant.id, user.id.into())
        .await?
        .into_iter()
        .map(|m| Group { tenant_id: tenant.id, id: m.group_id, display_name: m.group_name })
        .collect();
    groups.sort_by_key(|g| (g.display_name.to_lowercase(), g.id));
    Ok((UserSummary { user, roles }, groups))
}

/// A group and the groups it belongs to, with its number of direct members; the members
/// themselves are read a page at a time ([`group_members_page`]).
#[derive(Debug, Clone)]
pub struct GroupDetails {
    pub group: Group,
    pub member_of: Vec<Group>,
    pub direct_count: u64,
}

/// The tenant's groups, a page at a time (see [`NameQuery`]), each with its number of direct
/// members.
pub async fn groups(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &NameQuery,
) -> Result<DirectoryPage<(Group, usize)>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let limit = query.limit.clamp(1, MAX_PAGE);
    let read = NameQuery { limit: limit + 1, ..query.clone() };
    let (groups, next) =
        split_page(store.groups_page(tenant.id, &read).await?, limit, |g| NamePosition::of(&g.display_name, g.id));
    let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
    let counts = store.member_counts(tenant.id, &ids).await?;
    let items = groups
        .into_iter()
        .map(|g| {
            let members = counts.get(&g.id).copied().unwrap_or(0) as usize;
            (g, members)
        })
        .collect();
    Ok(DirectoryPage { items, total: store.count_groups(tenant.id, query).await?, next })
}

pub async fn group_details(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
) -> Result<GroupDetails, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let mut member_of: Vec<Group> = store
        .memberships_of(tenant.id, group.id.into())
        .await?
        .into_iter()
        .filter(|m| m.group_id != group.id)
        .map(|m| Group { tenant_id: tenant.id, id: m.group_id, display_name: m.group_name })
        .collect();
    member_of.sort_by_key(|g| (g.display_name.to_lowercase(), g.id));
    let direct_count = store.member_counts(tenant.id, &[group.id]).await?.get(&group.id).copied().unwrap_or(0);
    Ok(GroupDetails { group, member_of, direct_count })
}

/// One page of a group's members for the admin center (see [`MemberQuery`]: direct or
/// transitive, users then groups, each by name), and where the next page starts when there is
/// one.
pub async fn group_members_page(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
    query: MemberQuery,
) -> Result<(Vec<PrincipalSummary>, Option<MemberPosition>), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let top = query.limit.clamp(1, MAX_PAGE) as usize;
    let (page, next) = directory_members_page(store, tenant.id, group_id, query, top).await?;
    let members = page
        .iter()
        .map(|o| match o {
            DirectoryObject::User(u) => PrincipalSummary::of_user(u),
            DirectoryObject::Group(g) => PrincipalSummary::of_group(g),
        })
        .collect();
    Ok((members, next))
}

/// One page of `top` (1 to 999) of a group's members, read by position, and where the next
/// page starts: a few statements whatever the size of the group or the depth of its nesting.
/// Graph's member lists and the admin center's both read it; callers check the permission
/// and that the group is the tenant's.
pub async fn directory_members_page(
    store: &dyn Store,
    tenant_id: TenantId,
    group_id: GroupId,
    query: MemberQuery,
    top: usize,
) -> Result<(Vec<DirectoryObject>, Option<MemberPosition>), ServiceError> {
    let limit = top.clamp(1, 999) as u32;
    let page = store.group_members_page(tenant_id, group_id, &MemberQuery { limit: limit + 1, ..query }).await?;
    Ok(split_page(page, limit, DirectoryObject::position))
}

/// A direct member of the group, by id: `None` when it is not one.
pub async fn direct_member(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
    member_id: Uuid,
) -> Result<Option<PrincipalSummary>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    if !store.group_members(tenant.id, group_id).await?.iter().any(|m| m.member_id == member_id) {
        return Ok(None);
    }
    principal(store, tenant, member_id).await
}

/// The position in a member list just after the user or group `id` of the tenant (a page's
/// `after` link names the last member it showed).
pub async fn member_position(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    id: Uuid,
    field: &str,
) -> Result<MemberPosition, ServiceError> {
    let found = principals_by_ids(store, actor, tenant, &[id]).await?;
    let p = found.first().ok_or_else(|| invalid(field, "names no user or group of this organisation"))?;
    let kind = if p.kind == PrincipalType::User { MemberKind::User } else { MemberKind::Group };
    let NamePosition { name_key, id } = NamePosition::of(&p.display_name, p.id);
    Ok(MemberPosition { kind, name_key, id })
}

/// For each of `users` (some of a group's nested members, a page of them): the name of the
/// group below `group_id` that has them as a direct member — the way they belong, following
/// the user's memberships up (one cached read a user).
pub async fn through_groups(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
    users: &[PrincipalSummary],
) -> Result<Vec<String>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let mut names = Vec::with_capacity(users.len());
    for u in users {
        let memberships = store.memberships_of(tenant.id, u.id).await?;
        let by_group: HashMap<GroupId, &Membership> = memberships.iter().map(|m| (m.group_id, m)).collect();
        // Down from the group along the way the walk up came, to a group with no way below:
        // the user's direct group. Bounded by the groups (a cycle cannot loop here for ever).
        let mut at = by_group.get(&group_id).copied();
        let mut name = String::new();
        for _ in 0..=by_group.len() {
            match at {
                Some(m) => match m.via {
                    Some(below) => at = by_group.get(&below).copied(),
                    None => {
                        name = m.group_name.clone();
                        break;
                    }
                },
                None => break,
            }
        }
        names.push(name);
    }
    Ok(names)
}

/// The tenant's users, by display name, for Graph directory reads. The caller has checked the
/// token's permission (Graph lets any delegated caller with a directory-read scope read users,
/// without a directory role); only the tenant's own objects are ever returned.
pub async fn directory_users(store: &dyn Store, tenant_id: TenantId) -> Result<Vec<User>, ServiceError> {
    let mut users = store.users(tenant_id).await?;
    users.sort_by_key(|u| (u.display_name.to_lowercase(), u.id));
    Ok(users)
}

/// One page of the tenant's users in the order of [`directory_users`], read from the index
/// (narrowed by the query's prefix):
/// the users, where the next page starts (if more remain) and, when asked, how many in all.
pub async fn directory_users_page(
    store: &dyn Store,
    tenant_id: TenantId,
    query: NameQuery,
    top: usize,
    with_total: bool,
) -> Result<(Vec<User>, Option<NamePosition>, Option<u64>), ServiceError> {
    let (read, limit) = page_read(&query, top);
    let page = store.users_page(tenant_id, &read).await?;
    let total = if with_total { Some(store.count_users(tenant_id, &query).await?) } else { None };
    let (users, next) = split_page(page, limit, |u| NamePosition::of(&u.display_name, u.id));
    Ok((users, next, total))
}

/// One page of the tenant's groups for Graph, read from the index (see [`directory_users_page`]).
pub async fn directory_groups_page(
    store: &dyn Store,
    tenant_id: TenantId,
    query: NameQuery,
    top: usize,
    with_total: bool,
) -> Result<(Vec<Group>, Option<NamePosition>, Option<u64>), ServiceError> {
    let (read, limit) = page_read(&query, top);
    let page = store.groups_page(tenant_id, &read).await?;
    let total = if with_total { Some(store.count_groups(tenant_id, &query).await?) } else { None };
    let (groups, next) = split_page(page, limit, |g| NamePosition::of(&g.display_name, g.id));
    Ok((groups, next, total))
}

/// A Graph page's read: `$top` within Graph's 1 to 999, and one more row than shown, which
/// tells whether another page follows.
fn page_read(query: &NameQuery, top: usize) -> (NameQuery, u32) {
    let limit = top.clamp(1, 999) as u32;
    (NameQuery { limit: limit + 1, ..query.clone() }, limit)
}

/// The tenant's groups, by display name (Graph directory reads; see [`directory_users`]).
pub async fn directory_groups(store: &dyn Store, tenant_id: TenantId) -> Result<Vec<Group>, ServiceError> {
    let mut groups = store.groups(tenant_id).await?;
    groups.sort_by_key(|g| (g.display_name.to_lowercase(), g.id));
    Ok(groups)
}

/// A group's members as Graph lists them: users and groups, direct only or transitive (through
/// nested groups, each group once even in a cycle, never the group itself). `None` when the
/// group is not one of the tenant's.
pub async fn directory_group_members(
    store: &dyn Store,
    tenant_id: TenantId,
    group_id: GroupId,
    transitive: bool,
) -> Result<Option<(Vec<User>, Vec<Group>)>, ServiceError> {
    if store.group(tenant_id, group_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(store.group_closure(tenant_id, group_id, transitive).await?))
}

/// One of the tenant's own app registrations as Graph reads it: with its client secrets (hashes
/// stay inside the server) and when its home service principal was created.
#[derive(Debug, Clone)]
pub struct DirectoryApplication {
    pub app: Application,
    pub secrets: Vec<ClientSecret>,
    pub created_at: Option<OffsetDateTime>,
}

/// The tenant's own app registrations, by display name (Graph directory reads; see
/// [`directory_users`]). Apps homed in other tenants are never returned: there they are only
/// service principals.
pub async fn directory_applications(
    store: &dyn Store,
    tenant_id: TenantId,
) -> Result<Vec<DirectoryApplication>, ServiceError> {
    let mut out = Vec::new();
    for app in store.applications_homed_in(tenant_id).await? {
        let mut secrets = store.client_secrets(app.id).await?;
        secrets.sort_by_key(|s| (s.created_at, s.id));
        let created_at = store.service_principal_by_app_id(tenant_id, app.app_id).await?.map(|sp| sp.created_at);
        out.push(DirectoryApplication { app, secrets, created_at });
    }
    out.sort_by_key(|a| (a.app.display_name.to_lowercase(), a.app.id));
    Ok(out)
}

/// The tenant's users who hold a directory role, with their roles, by display name (Graph
/// `directoryRoles` reads; see [`directory_users`]).
pub async fn directory_role_holders(
    store: &dyn Store,
    tenant_id: TenantId,
) -> Result<Vec<(User, Vec<DirectoryRole>)>, ServiceError> {
    let mut out = Vec::new();
    for user in directory_users(store, tenant_id).await? {
        let roles = store.user_roles(tenant_id, user.id).await?;
        if !roles.is_empty() {
            out.push((user, roles));
        }
    }
    Ok(out)
}

/// The tenant's service principals with their applications, by display name (Graph directory
/// reads; see [`directory_users`]).
pub async fn directory_service_principals(
    store: &dyn Store,
    tenant_id: TenantId,
) -> Result<Vec<(ServicePrincipal, Option<Application>)>, ServiceError> {
    let mut out = Vec::new();
    for sp in store.service_principals(tenant_id).await? {
        let app = store.application_by_app_id(sp.app_id).await?;
        out.push((sp, app));
    }
    out.sort_by_key(|(sp, _)| (sp.display_name.to_lowercase(), sp.id));
    Ok(out)
}

/// The actor behind a Graph token of `tenant`: the signed-in user with their directory roles, or
/// the calling application (its service principal in the tenant) with its Graph app roles.
pub async fn graph_actor(
    store: &dyn Store,
    tenant: &Tenant,
    user_id: Option<UserId>,
    client_app_id: Option<AppId>,
    app_roles: &[String],
) -> Result<Actor, ServiceError> {
    match user_id {
        Some(id) => {
            let user = store.user(tenant.id, id).await?.ok_or_else(|| not_found("The signed-in user"))?;
            Actor::user(store, user).await
        }
        None => {
            let app_id = client_app_id.ok_or_else(|| invalid("azp", "the token names no application"))?;
            let sp = store
                .service_principal_by_app_id(tenant.id, app_id)
                .await?
                .ok_or_else(|| not_found("The calling application"))?;
            Ok(Actor::App { app_id, sp_id: sp.id, permissions: app_roles.to_vec() })
        }
    }
}

/// The audit log, newest first, as the query narrows and pages it (at most 1,000 a page).
pub async fn audit_log(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, ServiceError> {
    authorize(actor, Operation::ReadAudit)?;
    let query = AuditQuery {
        action_prefix: query.action_prefix.trim().to_string(),
        limit: query.limit.min(1000),
        ..query.clone()
    };
    Ok(store.audit_events(tenant.id, &query).await?)
}

/// One audit event of the tenant, for its details view.
pub async fn audit_event(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    id: Uuid,
) -> Result<AuditEvent, ServiceError> {
    authorize(actor, Operation::ReadAudit)?;
    store.audit_event(tenant.id, id).await?.ok_or_else(|| not_found("The audit event"))
}

/// How the signed-in person may see admin consent requests: as a reviewer (approve, deny and
/// block, subject to the workflow's own checks) and/or as a directory reader (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestAccess {
    pub reviewer: bool,
    pub read_directory: bool,
}

impl RequestAccess {
    pub fn may_view(self) -> bool {
        self.reviewer || self.read_directory
    }
}

pub async fn request_access(store: &dyn Store, actor: &Actor, tenant: &Tenant) -> Result<RequestAccess, ServiceError> {
    let reviewer = match actor.user_ref() {
        Some(u) => crate::service::admin_consent_requests::reviewers(store, tenant).await?.iter().any(|r| r.id == u.id),
        None => false,
    };
    // Graph lets an app holding a ConsentRequest permission read the requests without a
    // directory-reading one; a person still needs a role that reads the directory.
    let read_directory = may(actor, Operation::ReadDirectory)
        || matches!(actor, Actor::App { permissions, .. } if permissions.iter().any(|p| {
            p.eq_ignore_ascii_case("ConsentRequest.Read.All") || p.eq_ignore_ascii_case("ConsentRequest.ReadWrite.All")
        }));
    Ok(RequestAccess { reviewer, read_directory })
}

/// A permission a request asks for, with its texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPermission {
    pub resource: String,
    pub value: String,
    pub display_name: String,
    pub description: String,
    pub admin_consent_required: bool,
}

/// One user's request with the requester's and reviewer's names.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    pub request: ConsentRequest,
    pub requester: PrincipalSummary,
    pub reviewer: Option<PrincipalSummary>,
}

/// Graph's `appConsentRequest`: one app's requests, with what the pending ones ask for (or, with
/// none pending, what the requests asked for).
#[derive(Debug, Clone)]
pub struct AppConsentRequests {
    pub app_id: AppId,
    pub display_name: String,
    pub publisher: String,
    pub verified_publisher: bool,
    /// The app's enterprise application here, if it has one.
    pub sp_id: Option<ServicePrincipalId>,
    pub permissions: Vec<RequestedPermission>,
    /// Newest first.
    pub requests: Vec<RequestSummary>,
}

impl AppConsentRequests {
    pub fn pending(&self) -> impl Iterator<Item = &RequestSummary> {
        self.requests.iter().filter(|r| r.request.status == RequestStatus::InProgress)
    }
}

/// The tenant's admin consent requests grouped per app (apps with pending requests first, then
/// by latest request), or one app's when `app_id` is given. For reviewers and directory readers.
pub async fn app_consent_requests(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: Option<AppId>,
) -> Result<Vec<AppConsentRequests>, ServiceError> {
    if !request_access(store, actor, tenant).await?.may_view() {
        return Err(forbidden(actor, "viewing admin consent requests (it needs a reviewer or a directory role)"));
    }
    grouped_requests(store, tenant, app_id).await
}

/// The same listing for the machine's operator (the `accord requests` CLI). Whoever runs the
/// CLI holds the store itself, so no directory role is asked; reviews still go through
/// `admin_consent_requests`, which checks the reviewer named on the command line.
pub async fn consent_requests_for_operator(
    store: &dyn Store,
    tenant: &Tenant,
) -> Result<Vec<AppConsentRequests>, ServiceError> {
    grouped_requests(store, tenant, None).await
}

/// A credential of one of the tenant's app registrations, for the expiry listing.
#[derive(Debug, Clone)]
pub struct CredentialSummary {
    pub app_name: String,
    pub app_id: AppId,
    /// `certificate` or `secret`.
    pub kind: &'static str,
    pub name: String,
    pub id: Uuid,
    /// `None`: a secret that never expires.
    pub expires: Option<OffsetDateTime>,
}

/// Every certificate and client secret of the tenant's app registrations, soonest to expire
/// first, for the machine's operator (`accord credentials`; no directory role asked, as for
/// `consent_requests_for_operator`).
pub async fn credentials_for_operator(
    store: &dyn Store,
    tenant: &Tenant,
) -> Result<Vec<CredentialSummary>, ServiceError> {
    let mut out = Vec::new();
    for app in store.applications_homed_in(tenant.id).await? {
        for k in &app.key_credentials {
            out.push(CredentialSummary {
                app_name: app.display_name.clone(),
                app_id: app.app_id,
                kind: "certificate",
                name: k.display_name.clone(),
                id: k.key_id,
                expires: Some(k.end),
            });
        }
        for s in store.client_secrets(app.id).await? {
            out.push(CredentialSummary {
                app_name: app.display_name.clone(),
                app_id: app.app_id,
                kind: "secret",
                name: s.display_name.clone(),
                id: s.id,
                expires: s.expires_at,
            });
        }
    }
    out.sort_by_key(|c| (c.expires.is_none(), c.expires));
    Ok(out)
}

async fn grouped_requests(
    store: &dyn Store,
    tenant: &Tenant,
    app_id: Option<AppId>,
) -> Result<Vec<AppConsentRequests>, ServiceError> {
    let mut groups: Vec<AppConsentRequests> = Vec::new();
    for request in store.consent_requests(tenant.id, app_id).await? {
        let index = match groups.iter().position(|g| g.app_id == request.client_app_id) {
            Some(i) => i,
            None => {
                let app = store.application_by_app_id(request.client_app_id).await?;
                let sp = store.service_principal_by_app_id(tenant.id, request.client_app_id).await?;
                let publisher = match &app {
                    Some(a) => publisher_name(store, a.home_tenant_id).await?,
                    None => String::new(),
                };
                groups.push(AppConsentRequests {
                    app_id: request.client_app_id,
                    display_name: app
                        .as_ref()
                        .map(|a| a.display_name.clone())
                        .unwrap_or_else(|| request.client_app_id.to_string()),
                    publisher,
                    verified_publisher: app.as_ref().is_some_and(|a| a.verified_publisher),
                    sp_id: sp.map(|s| s.id),
                    permissions: Vec::new(),
                    requests: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let requester = principal_or_deleted(store, tenant, request.user_id.into(), PrincipalType::User).await?;
        let reviewer = match request.reviewed_by {
            Some(r) => Some(principal_or_deleted(store, tenant, r.into(), PrincipalType::User).await?),
            None => None,
        };
        groups[index].requests.push(RequestSummary { request, requester, reviewer });
    }
    for g in &mut groups {
        let any_pending = g.pending().next().is_some();
        let mut keys: Vec<accord_core::consent_records::PermissionKey> = Vec::new();
        for r in g.requests.iter().filter(|r| !any_pending || r.request.status == RequestStatus::InProgress) {
            for p in &r.request.permissions {
                if !keys.contains(p) {
                    keys.push(p.clone());
                }
            }
        }
        for key in keys {
            let resource = store.application_by_app_id(key.resource_app_id).await?;
            let scope = resource.as_ref().and_then(|r| r.scope(&key.value));
            g.permissions.push(RequestedPermission {
                resource: resource.as_ref().map(|r| r.display_name.clone()).unwrap_or_default(),
                value: key.value.clone(),
                display_name: scope
                    .map(|s| s.admin_consent_display_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or(key.value.clone()),
                description: scope.map(|s| s.admin_consent_description.clone()).unwrap_or_default(),
                admin_consent_required: scope.is_some_and(|s| s.admin_consent_required),
            });
        }
    }
    let latest = |g: &AppConsentRequests| g.requests.iter().map(|r| r.request.created_at).max();
    groups.sort_by(|a, b| {
        let pa = a.pending().next().is_some();
        let pb = b.pending().next().is_some();
        pb.cmp(&pa).then_with(|| latest(b).cmp(&latest(a)))
    });
    Ok(groups)
}

/// The delegated permissions of Microsoft Graph users could consent to (so may be classified
/// low impact), with whether this tenant classified each low.
pub async fn graph_classifications(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
) -> Result<(ServicePrincipalId, Vec<(PermissionScope, bool)>), ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let sp = store
        .service_principal_by_app_id(tenant.id, GRAPH_APP_ID)
        .await?
        .ok_or_else(|| not_found("Microsoft Graph"))?;
    let graph = store.application_by_app_id(GRAPH_APP_ID).await?.ok_or_else(|| not_found("Microsoft Graph"))?;
    let low: Vec<Uuid> = store
        .permission_classifications(tenant.id, sp.id)
        .await?
        .into_iter()
        .filter(|c| c.classification.eq_ignore_ascii_case("low"))
        .map(|c| c.permission_id)
        .collect();
    let list = graph.scopes.into_iter().filter(|s| !s.admin_consent_required).map(|s| {
        let is_low = low.contains(&s.id);
        (s, is_low)
    });
    Ok((sp.id, list.collect()))
}

/// The tenant's own app registrations with how many client secrets each has, by name.
pub async fn app_registrations(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
) -> Result<Vec<(Application, usize)>, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    let mut out = Vec::new();
    for app in store.applications_homed_in(tenant.id).await? {
        let secrets = store.client_secrets(app.id).await?.len();
        out.push((app, secrets));
    }
    out.sort_by_key(|(a, _)| (a.display_name.to_lowercase(), a.app_id));
    Ok(out)
}

/// One of the tenant's own app registrations, for reading.
pub async fn app_registration(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
) -> Result<Application, ServiceError> {
    authorize(actor, Operation::ReadDirectory)?;
    own_application(store, tenant, app_id).await
}

/// The client secrets of one of the tenant's apps (their keyed hashes stay inside), newest first.
pub async fn client_secrets(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
) -> Result<Vec<ClientSecret>, ServiceError> {
    let app = app_registration(store, actor, tenant, app_id).await?;
    let mut secrets = store.client_secrets(app.id).await?;
    secrets.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(secrets)
}
