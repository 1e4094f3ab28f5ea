//! Users, their directory roles, and groups.

use super::*;
use accord_core::ids::{GroupId, UserId};

fn valid_upn(tenant: &Tenant, upn: &str) -> Result<String, ServiceError> {
    let upn = upn.trim().to_ascii_lowercase();
    let Some((name, domain)) = upn.split_once('@') else {
        return Err(invalid("userPrincipalName", "expected name@domain"));
    };
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c)) {
        return Err(invalid("userPrincipalName", "the part before @ may use letters, digits and . _ - + '"));
    }
    if !tenant.domains.iter().any(|d| d == domain) {
        return Err(invalid(
            "userPrincipalName",
            &format!("the domain must be one of the organisation's: {}", tenant.domains.join(", ")),
        ));
    }
    Ok(upn)
}

fn valid_password(password: &str) -> Result<(), ServiceError> {
    if password.chars().count() < 8 || password.len() > 256 {
        return Err(invalid("password", "it must be 8 to 256 characters"));
    }
    Ok(())
}

/// A new, enabled account of the tenant (a fresh object id, no failed sign-ins).
fn new_user(tenant: &Tenant, upn: String, display_name: String, password_hash: Option<String>) -> User {
    User {
        tenant_id: tenant.id,
        id: UserId::random(),
        upn,
        display_name,
        password_hash,
        enabled: true,
        failed_sign_ins: 0,
        locked_until: None,
        sign_ins_valid_from: None,
    }
}

pub async fn create_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    upn: &str,
    display_name: &str,
    password: &str,
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let upn = valid_upn(tenant, upn)?;
    let display_name = valid_name("displayName", display_name)?;
    valid_password(password)?;
    if store.user_by_upn(tenant.id, &upn).await?.is_some() {
        return Err(ServiceError::conflict(format!("Another user already has the user principal name {upn}.")));
    }
    let hash = crate::password_work::hash(password.to_string()).await.map_err(ServiceError::busy)?;
    let user = new_user(tenant, upn.clone(), display_name, Some(hash));
    apply(
        store,
        vec![Change::PutUser(user.clone()), actor.audit(tenant.id, "user.created", None, json!({ "user": upn }))],
    )
    .await?;
    Ok(user)
}

pub async fn set_user_enabled(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
    enabled: bool,
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    if !enabled && actor.user_ref().is_some_and(|a| a.id == user.id) {
        return Err(invalid("accountEnabled", "you cannot disable your own account"));
    }
    guard_privileged_target(store, actor, tenant, &user, if enabled { "enable" } else { "disable" }).await?;
    user.enabled = enabled;
    let action = if enabled { "user.enabled" } else { "user.disabled" };
    let mut changes =
        vec![Change::PutUser(user.clone()), actor.audit(tenant.id, action, None, json!({ "user": user.upn }))];
    if !enabled {
        // A disabled account keeps no session or refresh token (as in Entra).
        changes.push(Change::EndSignIns { tenant_id: tenant.id, user_id: user.id, at: accord_core::clock::now() });
    }
    apply(store, changes).await?;
    Ok(user)
}

/// Deletes a user, as Graph's `DELETE /users/{id}`, with what exists only through them (their
/// roles, memberships, own consent, assignments, calendar, requests, sessions and tokens; see
/// the store's `DeleteUser`), and takes them off the admin-consent reviewers. Accord keeps no
/// deleted-items bin to restore them from; the audit log keeps their UPN. Nobody deletes their
/// own account.
pub async fn delete_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    if actor.user_ref().is_some_and(|a| a.id == user.id) {
        return Err(invalid("id", "you cannot delete your own account"));
    }
    guard_privileged_target(store, actor, tenant, &user, "delete").await?;
    let reviewer = ReviewerRef::User(user_id);
    let deletion = || {
        vec![
            Change::DeleteUser { tenant_id: tenant.id, user_id },
            actor.audit(tenant.id, "user.deleted", None, json!({ "user": user.upn, "id": user.id })),
        ]
    };
    if !tenant.admin_consent_requests.reviewers.contains(&reviewer) {
        return apply(store, deletion()).await;
    }
    // A reviewer leaves the request policy in the same write (and with the same care for a
    // concurrent edit of the policy).
    update_tenant(store, tenant, |t| {
        t.admin_consent_requests.reviewers.retain(|r| *r != reviewer);
        t.admin_consent_requests.version += 1;
        Ok(deletion())
    })
    .await
    .map(|_| ())
}

pub async fn rename_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
    display_name: &str,
) -> Result<User, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    let display_name = valid_name("displayName", display_name)?;
    let mut user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    let renamed = super::modified(&user.display_name, &display_name);
    user.display_name = display_name;
    apply(
        store,
        vec![
            Change::PutUser(user.clone()),
            actor.audit(tenant.id, "user.renamed", None, json!({ "user": user.upn, "displayName": renamed })),
        ],
    )
    .await?;
    Ok(user)
}

pub async fn reset_password(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
    password: &str,
) -> Result<(), ServiceError> {
    valid_password(password)?;
    let mut user =
        target_user(store, actor, tenant, user_id, Operation::ResetPasswords, "reset the password of").await?;
    user.password_hash = Some(crate::password_work::hash(password.to_string()).await.map_err(ServiceError::busy)?);
    user.failed_sign_ins = 0;
    user.locked_until = None;
    apply(
        store,
        vec![
            Change::PutUser(user.clone()),
            // Whoever signed in with the old password is signed out (as in Entra).
            Change::EndSignIns { tenant_id: tenant.id, user_id: user.id, at: accord_core::clock::now() },
            actor.audit(tenant.id, "user.password_reset", None, json!({ "user": user.upn })),
        ],
    )
    .await
}

/// Graph's `revokeSignInSessions`: ends the user's SSO sessions and revokes their refresh
/// tokens, so every app must sign them in again. Who may disable a user may do this.
pub async fn revoke_sign_in_sessions(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
) -> Result<(), ServiceError> {
    let user = target_user(store, actor, tenant, user_id, Operation::ManageUsers, "sign out").await?;
    apply(
        store,
        vec![
            Change::EndSignIns { tenant_id: tenant.id, user_id: user.id, at: accord_core::clock::now() },
            actor.audit(tenant.id, "user.sessions_revoked", None, json!({ "user": user.upn })),
        ],
    )
    .await
}

pub async fn set_user_roles(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
    roles: Vec<DirectoryRole>,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageRoles)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    // A Privileged Role Administrator cannot make anyone a Global Administrator.
    if roles.contains(&GlobalAdministrator)
        && !actor.roles().contains(&GlobalAdministrator)
        && matches!(actor, Actor::User { .. })
    {
        return Err(forbidden(actor, "assigning the Global Administrator role"));
    }
    if actor.user_ref().is_some_and(|a| a.id == user.id)
        && !roles.contains(&GlobalAdministrator)
        && actor.roles().contains(&GlobalAdministrator)
    {
        return Err(invalid("roles", "you cannot remove your own Global Administrator role"));
    }
    let names = |roles: &[DirectoryRole]| roles.iter().map(|r| r.display_name()).collect::<Vec<_>>();
    let before = store.user_roles(tenant.id, user_id).await?;
    let detail = json!({ "user": user.upn, "roles": super::modified(names(&before), names(&roles)) });
    apply(
        store,
        vec![
            Change::SetUserRoles { tenant_id: tenant.id, user_id, roles: roles.clone() },
            actor.audit(tenant.id, "user.roles", None, detail),
        ],
    )
    .await
}

pub async fn create_group(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    display_name: &str,
) -> Result<Group, ServiceError> {
    authorize(actor, Operation::ManageGroups)?;
    let display_name = valid_name("displayName", display_name)?;
    if store.group_by_name(tenant.id, &display_name).await?.is_some() {
        return Err(ServiceError::conflict(format!("A group named '{display_name}' already exists.")));
    }
    let group = Group { tenant_id: tenant.id, id: GroupId::random(), display_name };
    apply(
        store,
        vec![
            Change::PutGroup(group.clone()),
            actor.audit(tenant.id, "group.created", None, json!({ "group": group.display_name })),
        ],
    )
    .await?;
    Ok(group)
}

/// Adds a user or a group (nesting) to a group; refuses membership cycles.
pub async fn add_group_member(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
    member_id: Uuid,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageGroups)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let kind = if store.user(tenant.id, UserId::from(member_id)).await?.is_some() {
        MemberKind::User
    } else if store.group(tenant.id, GroupId::from(member_id)).await?.is_some() {
        if member_id == group_id
            || store.transitive_groups_of(tenant.id, group_id.into()).await?.contains(&member_id.into())
        {
            return Err(invalid("member", "adding this group would make a membership cycle"));
        }
        MemberKind::Group
    } else {
        return Err(invalid("member", "no user or group with this id in the organisation"));
    };
    let mut members = store.group_members(tenant.id, group_id).await?;
    if members.iter().any(|m| m.member_id == member_id) {
        return Ok(());
    }
    members.push(GroupMember { group_id, member_id, kind });
    apply(
        store,
        vec![
            Change::SetGroupMembers { tenant_id: tenant.id, group_id, members },
            actor.audit(
                tenant.id,
                "group.member_added",
                None,
                json!({ "group": group.display_name, "member": member_id }),
            ),
        ],
    )
    .await
}

pub async fn remove_group_member(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    group_id: GroupId,
    member_id: Uuid,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageGroups)?;
    let group = store.group(tenant.id, group_id).await?.ok_or_else(|| not_found("The group"))?;
    let mut members = store.group_members(tenant.id, group_id).await?;
    let before = members.len();
    members.retain(|m| m.member_id != member_id);
    if members.len() == before {
        return Err(not_found("The member"));
    }
    apply(
        store,
        vec![
            Change::SetGroupMembers { tenant_id: tenant.id, group_id, members },
            actor.audit(
                tenant.id,
                "group.member_removed",
                None,
                json!({ "group": group.display_name, "member": member_id }),
            ),
        ],
    )
    .await
}

/// The user an operation on another user is about: `op` authorised, the user found in the
/// tenant, and the privileged-target rule applied (`verb`: what is done to them).
async fn target_user(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    user_id: UserId,
    op: Operation,
    verb: &str,
) -> Result<User, ServiceError> {
    authorize(actor, op)?;
    let user = store.user(tenant.id, user_id).await?.ok_or_else(|| not_found("The user"))?;
    guard_privileged_target(store, actor, tenant, &user, verb).await?;
    Ok(user)
}

/// One user of a bulk import (a line of JSON Lines, as Graph names the properties): created, or
/// updated when the UPN exists; `password` optional (without one the user cannot sign in with a
/// password, and no slow hash is computed); `groups` by display name, created when missing.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportedUser {
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub groups_created: usize,
    pub memberships_added: usize,
}

/// Users written per transaction by [`import_users`].
pub const IMPORT_BATCH: usize = 500;

/// Every problem of an import, by the index of the user it concerns; empty when all is well.
/// The UPNs must be unique in the import (letter case ignored).
pub fn check_import(tenant: &Tenant, users: &[ImportedUser]) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, u) in users.iter().enumerate() {
        let checks = [
            valid_upn(tenant, &u.user_principal_name).map(|_| ()),
            valid_name("displayName", &u.display_name).map(|_| ()),
            u.password.as_deref().map_or(Ok(()), valid_password),
        ];
        for group in &u.groups {
            if let Err(e) = valid_name("groups", group) {
                problems.push((i, e.to_string()));
            }
        }
        problems.extend(checks.into_iter().filter_map(|c| c.err()).map(|e| (i, e.to_string())));
        if let Some(first) = seen.insert(u.user_principal_name.trim().to_ascii_lowercase(), i) {
            problems.push((i, format!("userPrincipalName: the same as user {} of the import", first + 1)));
        }
    }
    problems
}

/// Imports users (a real directory's export, or a large fixture) in batches of
/// [`IMPORT_BATCH`], one transaction and one audit event per user each, calling
/// `progress(done, total)` after every batch. Nothing is written when [`check_import`] finds a
/// problem; a batch that fails leaves the earlier ones written (the import can be run again:
/// existing users are updated, memberships are not doubled).
pub async fn import_users(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    users: &[ImportedUser],
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<ImportSummary, ServiceError> {
    authorize(actor, Operation::ManageUsers)?;
    authorize(actor, Operation::ManageGroups)?;
    if let Some((i, problem)) = check_import(tenant, users).into_iter().next() {
        return Err(invalid("users", &format!("user {} of the import: {problem}", i + 1)));
    }
    let mut summary = ImportSummary::default();
    for (n, batch) in users.chunks(IMPORT_BATCH).enumerate() {
        import_batch(store, actor, tenant, batch, &mut summary).await?;
        progress((n * IMPORT_BATCH + batch.len()).min(users.len()), users.len());
    }
    Ok(summary)
}

async fn import_batch(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    batch: &[ImportedUser],
    summary: &mut ImportSummary,
) -> Result<(), ServiceError> {
    let mut changes = Vec::new();
    let mut joins: Vec<(String, UserId)> = Vec::new();
    for u in batch {
        let upn = valid_upn(tenant, &u.user_principal_name)?;
        let display_name = valid_name("displayName", &u.display_name)?;
        let existing = store.user_by_upn(tenant.id, &upn).await?;
        let password_hash = match &u.password {
            Some(p) => Some(crate::password_work::hash(p.clone()).await.map_err(ServiceError::busy)?),
            None => existing.as_ref().and_then(|e| e.password_hash.clone()),
        };
        let user = match existing {
            Some(e) => {
                // Only real changes are written and logged: an import run twice changes nothing.
                if e.display_name != display_name {
                    let detail = json!({ "user": upn, "displayName": modified(&e.display_name, &display_name) });
                    changes.push(actor.audit(tenant.id, "user.renamed", None, detail));
                }
                if u.password.is_some() {
                    // A new password signs the user out everywhere, as a reset does.
                    let at = accord_core::clock::now();
                    changes.push(Change::EndSignIns { tenant_id: tenant.id, user_id: e.id, at });
                    changes.push(actor.audit(tenant.id, "user.password_reset", None, json!({ "user": upn })));
                }
                summary.updated += 1;
                User { display_name, password_hash, ..e }
            }
            None => {
                summary.created += 1;
                changes.push(actor.audit(tenant.id, "user.created", None, json!({ "user": upn, "imported": true })));
                new_user(tenant, upn, display_name, password_hash)
            }
        };
        joins.extend(u.groups.iter().map(|g| (g.trim().to_string(), user.id)));
        changes.push(Change::PutUser(user));
    }
    // Memberships, group by group: the group's list with the newcomers appended once.
    let mut by_group: Vec<(String, Vec<UserId>)> = Vec::new();
    for (name, user) in joins {
        match by_group.iter_mut().find(|(n, _)| n.to_lowercase() == name.to_lowercase()) {
            Some((_, ids)) => ids.push(user),
            None => by_group.push((name, vec![user])),
        }
    }
    for (name, ids) in by_group {
        let (group, mut members) = match store.group_by_name(tenant.id, &name).await? {
            Some(g) => {
                let members = store.group_members(tenant.id, g.id).await?;
                (g, members)
            }
            None => {
                let g = Group { tenant_id: tenant.id, id: GroupId::random(), display_name: name.clone() };
                summary.groups_created += 1;
                changes.push(Change::PutGroup(g.clone()));
                changes.push(actor.audit(tenant.id, "group.created", None, json!({ "group": name, "imported": true })));
                (g, Vec::new())
            }
        };
        for id in ids {
            if !members.iter().any(|m| m.member_id == Uuid::from(id)) {
                members.push(GroupMember { group_id: group.id, member_id: id.into(), kind: MemberKind::User });
                summary.memberships_added += 1;
            }
        }
        changes.push(Change::SetGroupMembers { tenant_id: tenant.id, group_id: group.id, members });
    }
    apply(store, changes).await
}
