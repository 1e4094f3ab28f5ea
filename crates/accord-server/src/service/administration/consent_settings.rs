//! The organisation's consent settings: user consent, the admin-consent request policy,
//! permission classifications.

use super::*;
use accord_core::ids::ServicePrincipalId;

pub async fn set_user_consent(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    setting: UserConsent,
) -> Result<Tenant, ServiceError> {
    authorize(actor, Operation::ManageUserConsentSetting)?;
    update_tenant(store, tenant, |t| {
        let detail = json!({ "userConsent": super::modified(t.user_consent.as_str(), setting.as_str()) });
        t.user_consent = setting;
        Ok(vec![actor.audit(tenant.id, "settings.user_consent", None, detail)])
    })
    .await
}

/// The admin consent request settings, for a person who may read the directory or an app
/// holding a Graph permission that reads or manages them (the Graph read of the policy).
pub fn request_policy(actor: &Actor, tenant: &Tenant) -> Result<AdminConsentRequestPolicy, ServiceError> {
    let app_may_read = match actor {
        Actor::App { permissions, .. } => ["Policy.Read.All", "Policy.ReadWrite.ConsentRequest"]
            .iter()
            .any(|p| permissions.iter().any(|q| q.eq_ignore_ascii_case(p))),
        Actor::User { .. } => false,
    };
    if !app_may_read {
        authorize(actor, Operation::ReadDirectory)?;
    }
    Ok(tenant.admin_consent_requests.clone())
}

pub async fn set_request_policy(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    policy: AdminConsentRequestPolicy,
) -> Result<Tenant, ServiceError> {
    authorize(actor, Operation::ManageRequestPolicy)?;
    if !(1..=30).contains(&policy.expire_after_days) {
        return Err(invalid("requestDurationInDays", "it must be between 1 and 30"));
    }
    if policy.enabled && policy.reviewers.is_empty() {
        return Err(invalid("reviewers", "an enabled workflow needs at least one reviewer"));
    }
    for r in &policy.reviewers {
        let exists = match r {
            ReviewerRef::User(id) => store.user(tenant.id, *id).await?.is_some(),
            ReviewerRef::Group(id) => store.group(tenant.id, *id).await?.is_some(),
        };
        if !exists {
            return Err(invalid("reviewers", "a reviewer is not a user or group of this organisation"));
        }
    }
    let detail = json!({ "enabled": policy.enabled, "reviewers": policy.reviewers.len(), "expireAfterDays": policy.expire_after_days });
    update_tenant(store, tenant, |t| {
        // Graph's `version` counts the policy's revisions.
        t.admin_consent_requests =
            AdminConsentRequestPolicy { version: t.admin_consent_requests.version + 1, ..policy.clone() };
        Ok(vec![actor.audit(tenant.id, "settings.admin_consent_requests", None, detail.clone())])
    })
    .await
}

/// Marks a delegated permission of a resource as low impact (or removes the classification).
pub async fn classify(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    resource_sp_id: ServicePrincipalId,
    permission: &str,
    low: bool,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageClassifications)?;
    let sp = service_principal(store, tenant, resource_sp_id).await?;
    let resource = store.application_by_app_id(sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    let scope = resource.scope(permission).ok_or_else(|| {
        invalid("permissionName", &format!("'{permission}' is not a delegated permission of {}", resource.display_name))
    })?;
    // As in Entra (and scenario files): only permissions users could consent to are classified.
    if low && scope.admin_consent_required {
        let why = format!("'{}' requires admin consent and cannot be classified low impact", scope.value);
        return Err(invalid("permissionName", &why));
    }
    let existing = store.permission_classifications(tenant.id, sp.id).await?;
    let found = existing.iter().find(|c| c.permission_id == scope.id);
    let mut changes = Vec::new();
    match (low, found) {
        (true, None) => changes.push(Change::PutPermissionClassification(PermissionClassification {
            tenant_id: tenant.id,
            id: Uuid::new_v4(),
            resource_sp_id: sp.id,
            permission_id: scope.id,
            permission_value: scope.value.clone(),
            classification: "low".into(),
        })),
        (false, Some(c)) => {
            changes.push(Change::DeletePermissionClassification { tenant_id: tenant.id, classification_id: c.id })
        }
        _ => return Ok(()),
    }
    changes.push(actor.audit(
        tenant.id,
        "settings.classification",
        None,
        json!({ "resource": resource.display_name, "permission": scope.value, "low": low }),
    ));
    apply(store, changes).await
}
