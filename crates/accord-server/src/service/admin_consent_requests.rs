//! The admin-consent request workflow: users who may not consent file requests; reviewers
//! approve (granting admin consent), deny, or block; requests expire. The pages, the CLI and
//! (later) the admin center and Graph API all call these functions.

use crate::service::consent::{self, audit, ConsentWorld, Grantee};
use crate::service::ServiceError;
use accord_core::consent_engine::{can_grant_for_org, Decision, PermissionRef};
use accord_core::consent_records::{ConsentRequest, Notification, PermissionKey, RequestStatus, ReviewResult};
use accord_core::directory::{Application, ReviewerRef, ServicePrincipal, Tenant, User};
use accord_core::ids::{AppId, GroupId, ServicePrincipalId, TenantId, UserId};
use accord_core::scope::qualified_scope;
use accord_core::scope::ScopeRequest;
use accord_core::Aadsts;
use accord_store::{Change, Store};
use serde_json::json;
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Files a request, or returns the user's pending one for the app (no duplicates).
pub async fn file(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    user: &User,
    permissions: &[PermissionRef],
    reason: &str,
) -> Result<ConsentRequest, ServiceError> {
    let existing = store.consent_requests(tenant.id, Some(client.app_id)).await?;
    if let Some(r) = existing.into_iter().find(|r| r.user_id == user.id && r.status == RequestStatus::InProgress) {
        return Ok(r);
    }
    let policy = &tenant.admin_consent_requests;
    if !policy.enabled {
        return Err(Aadsts::admin_consent_required(&client.display_name).into());
    }
    let now = accord_core::clock::now();
    let request = ConsentRequest {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        client_app_id: client.app_id,
        user_id: user.id,
        reason: reason.to_string(),
        permissions: permissions
            .iter()
            .map(|p| PermissionKey { resource_app_id: p.resource_app_id, value: p.value.clone() })
            .collect(),
        status: RequestStatus::InProgress,
        result: ReviewResult::NotReviewed,
        reviewed_by: None,
        review_justification: None,
        created_at: now,
        reviewed_at: None,
        completed_at: None,
        expires_at: now + Duration::days(i64::from(policy.expire_after_days.max(1))),
    };
    let mut changes = vec![
        Change::PutConsentRequest(request.clone()),
        audit(
            tenant.id,
            Some(user),
            "request.filed",
            Some(client.app_id),
            json!({ "request": request.id, "reason": reason, "permissions": labels(permissions) }),
        ),
    ];
    if policy.notify_reviewers {
        for reviewer in reviewers(store, tenant).await? {
            changes.push(notification(
                tenant.id,
                &reviewer,
                "request.new",
                format!("{} asks for approval of {}", user.display_name, client.display_name),
                format!(
                    "{} ({}) asked you to approve {} for {}.\n\nJustification: {reason}\n\nPermissions: {}\n\nReview it in the admin center, or with `accord requests show {}`.",
                    user.display_name, user.upn, client.display_name, tenant.display_name, labels(permissions).join(", "), request.id
                ),
            ));
        }
    }
    store.apply(&changes).await?;
    tracing::info!(tenant = %tenant.id, client = %client.app_id, user = %user.id, request = %request.id, "admin consent request filed");
    Ok(request)
}

fn labels(permissions: &[PermissionRef]) -> Vec<String> {
    permissions.iter().map(|p| p.label()).collect()
}

pub(crate) fn notification(tenant_id: TenantId, to: &User, kind: &str, subject: String, body: String) -> Change {
    Change::EnqueueNotification(Notification {
        tenant_id,
        id: Uuid::new_v4(),
        recipient_user_id: to.id,
        recipient_address: to.upn.clone(),
        kind: kind.to_string(),
        subject,
        body,
        created_at: accord_core::clock::now(),
        sent_at: None,
        attempts: 0,
        last_error: None,
    })
}

/// The user's most recent request for `app` that a reviewer denied, with who denied it (when
/// they still exist): what the approval page tells them before they ask again. A request
/// approved, expired or still in progress since then hides it.
pub async fn last_denial(
    store: &dyn Store,
    tenant_id: TenantId,
    app: AppId,
    user_id: UserId,
) -> Result<Option<(ConsentRequest, Option<User>)>, ServiceError> {
    let latest = store
        .consent_requests(tenant_id, Some(app))
        .await?
        .into_iter()
        .filter(|r| r.user_id == user_id)
        .max_by_key(|r| (r.created_at, r.id));
    let Some(denied) = latest.filter(|r| r.result == ReviewResult::Denied) else {
        return Ok(None);
    };
    let reviewer = match denied.reviewed_by {
        Some(id) => store.user(tenant_id, id).await?,
        None => None,
    };
    Ok(Some((denied, reviewer)))
}

/// The tenant's reviewers as users (groups expanded through nesting).
pub async fn reviewers(store: &dyn Store, tenant: &Tenant) -> Result<Vec<User>, ServiceError> {
    let mut ids: Vec<UserId> = Vec::new();
    let mut seen_groups = HashSet::new();
    let mut groups: Vec<GroupId> = Vec::new();
    for r in &tenant.admin_consent_requests.reviewers {
        match r {
            ReviewerRef::User(id) => ids.push(*id),
            ReviewerRef::Group(id) => groups.push(*id),
        }
    }
    while let Some(g) = groups.pop() {
        if !seen_groups.insert(g) {
            continue;
        }
        for m in store.group_members(tenant.id, g).await? {
            match m.kind {
                accord_core::directory::MemberKind::User => ids.push(m.member_id.into()),
                accord_core::directory::MemberKind::Group => groups.push(m.member_id.into()),
            }
        }
    }
    let mut users = Vec::new();
    for id in ids {
        if users.iter().any(|u: &User| u.id == id) {
            continue;
        }
        if let Some(u) = store.user(tenant.id, id).await?.filter(|u| u.enabled) {
            users.push(u);
        }
    }
    Ok(users)
}

async fn is_reviewer(store: &dyn Store, tenant: &Tenant, user: &User) -> Result<bool, ServiceError> {
    Ok(reviewers(store, tenant).await?.iter().any(|r| r.id == user.id))
}

fn not_reviewer(user: &User) -> ServiceError {
    ServiceError::forbidden(format!("{} is not a reviewer of admin consent requests in this organisation.", user.upn))
}

/// One app's pending requests (the `appConsentRequest` view).
pub async fn pending_for_app(
    store: &dyn Store,
    tenant_id: TenantId,
    app_id: AppId,
) -> Result<Vec<ConsentRequest>, ServiceError> {
    Ok(store
        .consent_requests(tenant_id, Some(app_id))
        .await?
        .into_iter()
        .filter(|r| r.status == RequestStatus::InProgress)
        .collect())
}

async fn load_request(
    store: &dyn Store,
    tenant: &Tenant,
    id: Uuid,
) -> Result<(ConsentRequest, Application), ServiceError> {
    let request = store
        .consent_request(tenant.id, id)
        .await?
        .ok_or_else(|| Aadsts::invalid_parameter("request", "no such admin consent request in this organisation"))?;
    let app = store
        .application_by_app_id(request.client_app_id)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("request {id} names an unknown app")))?;
    Ok((request, app))
}

fn already_decided(request: &ConsentRequest) -> ServiceError {
    ServiceError::Conflict(Aadsts::request_already_decided(request.status.as_str(), request.result.as_str()))
}

/// Consent for the organisation, however an administrator gives it — the admin-consent page,
/// the admin center's "Grant admin consent", approving a request: grants `permissions`
/// (`AllPrincipals` grants and app role assignments) and completes every pending request for
/// the app as approved by `admin`, notifying the requesters; `extra` changes (an audit event)
/// go into the same transaction. With `until`, what it grants ends then.
pub async fn grant_for_organisation(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    admin: &User,
    permissions: &[PermissionRef],
    until: Option<OffsetDateTime>,
    extra: Vec<Change>,
) -> Result<(), ServiceError> {
    let grantee = Grantee::Organisation { admin, until };
    grant_deciding(store, tenant, client, grantee, permissions, extra, None).await
}

/// [`grant_for_organisation`], refused as already decided when `deciding` (the request being
/// approved) is no longer pending: a reviewer who lost a race must not grant anyway.
async fn grant_deciding(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    grantee: Grantee<'_>,
    permissions: &[PermissionRef],
    extra: Vec<Change>,
    deciding: Option<Uuid>,
) -> Result<(), ServiceError> {
    let (Grantee::Organisation { admin, .. } | Grantee::User(admin)) = grantee;
    let mut changes = decide_all(store, tenant, client, admin, ReviewResult::Approved, None, deciding).await?;
    changes.extend(extra);
    consent::grant(store, tenant, client, grantee, permissions, changes).await
}

/// Completes every pending request for the app with `result`. When a reviewer decides one
/// request (`deciding`) and it is no longer pending, that reviewer lost a race: already decided.
async fn decide_all(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    reviewer: &User,
    result: ReviewResult,
    justification: Option<&str>,
    deciding: Option<Uuid>,
) -> Result<Vec<Change>, ServiceError> {
    let now = accord_core::clock::now();
    let mut changes = Vec::new();
    for mut r in pending_for_app(store, tenant.id, client.app_id).await? {
        r.status = RequestStatus::Completed;
        r.result = result;
        r.reviewed_by = Some(reviewer.id);
        r.review_justification = justification.map(str::to_string);
        r.reviewed_at = Some(now);
        r.completed_at = Some(now);
        if let Some(requester) = store.user(tenant.id, r.user_id).await? {
            let (kind, verb) = match result {
                ReviewResult::Approved => ("request.approved", "approved"),
                ReviewResult::Blocked => ("request.denied", "denied and blocked"),
                _ => ("request.denied", "denied"),
            };
            let why = justification.map(|j| format!("\n\nReviewer's justification: {j}")).unwrap_or_default();
            changes.push(notification(
                tenant.id,
                &requester,
                kind,
                format!("Your request for {} was {verb}", client.display_name),
                format!("{} {verb} your request to use {}.{why}", reviewer.display_name, client.display_name),
            ));
        }
        changes.push(Change::DecideConsentRequest(r));
    }
    if let Some(id) = deciding {
        if !changes.iter().any(|c| matches!(c, Change::DecideConsentRequest(r) if r.id == id)) {
            return Err(already_decided(&load_request(store, tenant, id).await?.0));
        }
    }
    Ok(changes)
}

/// What approving `client`'s pending requests would grant, if `reviewer` may approve them: a
/// reviewer whose roles may grant every one of those permissions for the organisation (the
/// engine's admin-consent decision and `can_grant_for_org`). The admin center asks this to
/// decide whether to offer "Approve"; [`approve`] asks it again before granting.
pub async fn approval_preview(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    reviewer: &User,
) -> Result<Vec<PermissionRef>, ServiceError> {
    if !is_reviewer(store, tenant, reviewer).await? {
        return Err(not_reviewer(reviewer));
    }
    let mut wanted: Vec<PermissionKey> = Vec::new();
    for r in pending_for_app(store, tenant.id, client.app_id).await? {
        for p in r.permissions {
            if !wanted.contains(&p) {
                wanted.push(p);
            }
        }
    }
    if wanted.is_empty() {
        return Err(Aadsts::invalid_parameter("request", "the app has no pending admin consent request").into());
    }
    let scope_text = wanted.iter().map(|p| qualified_scope(p.resource_app_id, &p.value)).collect::<Vec<_>>().join(" ");
    let scope = ScopeRequest::parse(&scope_text)?;
    let world = ConsentWorld::load(store, tenant, client, reviewer, &scope).await?;
    let outcome = world.decide_admin_consent(&scope, false);
    let permissions = match outcome.decision {
        Decision::PromptAdminConsent { delegated, application } => {
            delegated.into_iter().chain(application).collect::<Vec<_>>()
        }
        Decision::NotPermitted(e) => return Err(ServiceError::Forbidden(e)),
        Decision::Refuse(e) => return Err(ServiceError::Refused(e)),
        other => return Err(ServiceError::Internal(format!("approval produced {}", other.kind()))),
    };
    if let Some(p) = permissions.iter().find(|p| !can_grant_for_org(&world.roles, p)) {
        let roles = world.roles.iter().map(|r| r.display_name()).collect::<Vec<_>>().join(" and ");
        return Err(ServiceError::Forbidden(Aadsts::role_cannot_grant(
            &client.display_name,
            &reviewer.upn,
            &roles,
            &p.label(),
        )));
    }
    Ok(permissions)
}

/// Approve: grants admin consent for everything the app's pending requests ask for and
/// completes them all. Only reviewers who hold a role that may grant those permissions can.
pub async fn approve(
    store: &dyn Store,
    tenant: &Tenant,
    request_id: Uuid,
    reviewer: &User,
) -> Result<(), ServiceError> {
    let (request, client) = load_request(store, tenant, request_id).await?;
    if request.status != RequestStatus::InProgress {
        return Err(already_decided(&request));
    }
    let permissions = match approval_preview(store, tenant, &client, reviewer).await {
        Ok(permissions) => permissions,
        // Another reviewer decided it meanwhile: say so, rather than "nothing is pending".
        Err(e) => match load_request(store, tenant, request_id).await?.0 {
            now if now.status != RequestStatus::InProgress => return Err(already_decided(&now)),
            _ => return Err(e),
        },
    };
    let approved =
        audit(tenant.id, Some(reviewer), "request.approved", Some(client.app_id), json!({ "request": request_id }));
    let grantee = Grantee::Organisation { admin: reviewer, until: None };
    grant_deciding(store, tenant, &client, grantee, &permissions, vec![approved], Some(request_id)).await
}

/// Deny (justification required): the requests complete as denied; users may ask again.
pub async fn deny(
    store: &dyn Store,
    tenant: &Tenant,
    request_id: Uuid,
    reviewer: &User,
    justification: &str,
) -> Result<(), ServiceError> {
    review_refusal(store, tenant, request_id, reviewer, justification, ReviewResult::Denied).await
}

/// Block (justification required): deny, and disable the app's service principal in the
/// tenant (creating it disabled if needed) so users are refused and no new requests arrive.
pub async fn block(
    store: &dyn Store,
    tenant: &Tenant,
    request_id: Uuid,
    reviewer: &User,
    justification: &str,
) -> Result<(), ServiceError> {
    review_refusal(store, tenant, request_id, reviewer, justification, ReviewResult::Blocked).await
}

async fn review_refusal(
    store: &dyn Store,
    tenant: &Tenant,
    request_id: Uuid,
    reviewer: &User,
    justification: &str,
    result: ReviewResult,
) -> Result<(), ServiceError> {
    let justification = justification.trim();
    if justification.is_empty() {
        return Err(Aadsts::missing_parameter("justification").into());
    }
    let (request, client) = load_request(store, tenant, request_id).await?;
    if request.status != RequestStatus::InProgress {
        return Err(already_decided(&request));
    }
    if !is_reviewer(store, tenant, reviewer).await? {
        return Err(not_reviewer(reviewer));
    }
    let mut changes =
        decide_all(store, tenant, &client, reviewer, result, Some(justification), Some(request_id)).await?;
    let action = if result == ReviewResult::Blocked { "request.blocked" } else { "request.denied" };
    changes.push(audit(
        tenant.id,
        Some(reviewer),
        action,
        Some(client.app_id),
        json!({ "request": request_id, "justification": justification }),
    ));
    if result == ReviewResult::Blocked {
        let sp = match store.service_principal_by_app_id(tenant.id, client.app_id).await? {
            Some(sp) => ServicePrincipal { enabled: false, ..sp },
            None => ServicePrincipal {
                tenant_id: tenant.id,
                id: ServicePrincipalId::random(),
                app_id: client.app_id,
                display_name: client.display_name.clone(),
                app_owner_tenant_id: client.home_tenant_id,
                enabled: false,
                assignment_required: false,
                created_at: accord_core::clock::now(),
            },
        };
        changes.push(Change::PutServicePrincipal(sp));
    }
    store.apply(&changes).await?;
    tracing::info!(tenant = %tenant.id, client = %client.app_id, reviewer = %reviewer.id, action, "admin consent request decided");
    Ok(())
}

/// Expires every in-progress request past its date (the background job); returns how many.
pub async fn expire_due(store: &dyn Store, now: OffsetDateTime) -> Result<usize, ServiceError> {
    let due = store.expired_consent_requests(now).await?;
    let mut count = 0;
    for mut r in due {
        r.status = RequestStatus::Expired;
        r.completed_at = Some(now);
        let mut changes = Vec::new();
        if let Some(requester) = store.user(r.tenant_id, r.user_id).await? {
            let app = store.application_by_app_id(r.client_app_id).await?.map(|a| a.display_name).unwrap_or_default();
            changes.push(notification(
                r.tenant_id,
                &requester,
                "request.expired",
                format!("Your request for {app} expired"),
                format!("No administrator reviewed your request to use {app} in time. You can ask again."),
            ));
        }
        changes.push(audit(r.tenant_id, None, "request.expired", Some(r.client_app_id), json!({ "request": r.id })));
        changes.push(Change::DecideConsentRequest(r));
        match store.apply(&changes).await {
            // Decided by a reviewer since it was read: nothing to expire.
            Err(accord_store::StoreError::Stale(_)) => continue,
            done => done?,
        }
        count += 1;
    }
    Ok(count)
}

/// Reminds the reviewers, once per request, of every in-progress request that expires within
/// 24 hours (the background job); returns how many requests were reminded about.
pub async fn remind_expiring(store: &dyn Store, now: OffsetDateTime) -> Result<usize, ServiceError> {
    use sha2::Digest;
    let soon = store.expired_consent_requests(now + Duration::hours(24)).await?;
    let mut count = 0;
    for r in soon.into_iter().filter(|r| r.expires_at > now) {
        let Some(tenant) = store.tenant(r.tenant_id).await? else { continue };
        if !tenant.admin_consent_requests.notify_reviewers {
            continue;
        }
        let digest = sha2::Sha256::digest(format!("remind:{}", r.id).as_bytes());
        let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        // Claimed before the reminder goes in: one reminder per request, whichever replica runs.
        if !store.consume_once(&key, r.expires_at + Duration::days(1)).await? {
            continue;
        }
        let app = store.application_by_app_id(r.client_app_id).await?.map(|a| a.display_name).unwrap_or_default();
        let requester = store.user(r.tenant_id, r.user_id).await?;
        let who = requester.map(|u| format!("{} ({})", u.display_name, u.upn)).unwrap_or_else(|| "A user".into());
        let when = r
            .expires_at
            .to_offset(time::UtcOffset::UTC)
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
            .unwrap_or_default();
        let mut changes = Vec::new();
        for reviewer in reviewers(store, &tenant).await? {
            changes.push(notification(
                r.tenant_id,
                &reviewer,
                "request.expiring",
                format!("Reminder: the request for {app} expires at {when}"),
                format!(
                    "{who} asked to use {app} in {}, and no one has reviewed it yet. The request expires at {when}.\n\nJustification: {}\n\nReview it in the admin center, or with `accord requests show {}`.",
                    tenant.display_name, r.reason, r.id
                ),
            ));
        }
        if !changes.is_empty() {
            store.apply(&changes).await?;
        }
        count += 1;
    }
    Ok(count)
}
