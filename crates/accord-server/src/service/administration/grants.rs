//! Delegated permission grants, and admin consent given from the admin center.

use super::*;
use accord_core::ids::{ServicePrincipalId, UserId};

pub async fn revoke_grant(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    grant_id: Uuid,
) -> Result<(), ServiceError> {
    let grant = store.delegated_grant(tenant.id, grant_id).await?.ok_or_else(|| not_found("The permission grant"))?;
    let own = matches!(actor, Actor::User { user, .. } if grant.principal_id == Some(user.id));
    if !own {
        authorize(actor, Operation::ManageGrants)?;
    }
    let client = store.service_principal(tenant.id, grant.client_sp_id).await?;
    let detail = json!({ "consentType": grant.consent_type.as_str(), "principalId": grant.principal_id, "scope": grant.scopes.join(" ") });
    apply(
        store,
        vec![
            Change::DeleteDelegatedGrant { tenant_id: tenant.id, grant_id },
            actor.audit(tenant.id, "consent.revoked", client.map(|c| c.app_id), detail),
        ],
    )
    .await
}

/// Replaces a grant's scopes (Graph `PATCH /oauth2PermissionGrants/{id}`).
pub async fn update_grant_scopes(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    grant_id: Uuid,
    scopes: &str,
) -> Result<DelegatedGrant, ServiceError> {
    authorize(actor, Operation::ManageGrants)?;
    let mut grant =
        store.delegated_grant(tenant.id, grant_id).await?.ok_or_else(|| not_found("The permission grant"))?;
    let resource_sp = service_principal(store, tenant, grant.resource_sp_id).await?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    let before = grant.scopes.join(" ");
    grant.scopes = validate_scopes(&resource, scopes)?;
    let client = store.service_principal(tenant.id, grant.client_sp_id).await?;
    let detail = json!({ "scope": super::modified(before, grant.scopes.join(" ")) });
    apply(
        store,
        vec![
            Change::PutDelegatedGrant(grant.clone()),
            actor.audit(tenant.id, "consent.updated", client.map(|c| c.app_id), detail),
        ],
    )
    .await?;
    Ok(grant)
}

/// What a new delegated grant gives: to which client, on which resource, for whom (`None`: the
/// whole organisation), which scopes (space-separated), until when (`None`: no end).
pub struct NewGrant<'a> {
    pub client_sp_id: ServicePrincipalId,
    pub resource_sp_id: ServicePrincipalId,
    pub principal_id: Option<UserId>,
    pub scopes: &'a str,
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Creates a delegated grant (Graph `POST /oauth2PermissionGrants`).
pub async fn create_grant(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    new: NewGrant<'_>,
) -> Result<DelegatedGrant, ServiceError> {
    let NewGrant { client_sp_id, resource_sp_id, principal_id, scopes, expires_at } = new;
    authorize(actor, Operation::ManageGrants)?;
    if expires_at.is_some_and(|t| t <= accord_core::clock::now()) {
        return Err(invalid("accord.expiresDateTime", "the end of a time-bound grant must be in the future"));
    }
    let client = service_principal(store, tenant, client_sp_id)
        .await
        .map_err(|_| invalid("clientId", "no service principal with this id"))?;
    let resource_sp = service_principal(store, tenant, resource_sp_id)
        .await
        .map_err(|_| invalid("resourceId", "no service principal with this id"))?;
    let resource = store.application_by_app_id(resource_sp.app_id).await?.ok_or_else(|| not_found("The resource"))?;
    if let Some(p) = principal_id {
        store.user(tenant.id, p).await?.ok_or_else(|| invalid("principalId", "no user with this id"))?;
    }
    let scopes = validate_scopes(&resource, scopes)?;
    let consent_type = if principal_id.is_some() { ConsentType::Principal } else { ConsentType::AllPrincipals };
    let existing = store.delegated_grants_of_client(tenant.id, client.id).await?;
    if existing
        .iter()
        .any(|g| g.resource_sp_id == resource_sp.id && g.consent_type == consent_type && g.principal_id == principal_id)
    {
        return Err(ServiceError::conflict(
            "A permission grant already exists for this client, resource and principal; update its scope instead.",
        ));
    }
    let grant = DelegatedGrant {
        tenant_id: tenant.id,
        id: Uuid::new_v4(),
        client_sp_id: client.id,
        resource_sp_id: resource_sp.id,
        consent_type,
        principal_id,
        scopes,
        created_at: accord_core::clock::now(),
        expires_at,
    };
    let detail = json!({
        "consentType": consent_type.as_str(), "principalId": principal_id, "scope": grant.scopes.join(" "),
        "expires": expires_at.map(|t| t.unix_timestamp()),
    });
    apply(
        store,
        vec![
            Change::PutDelegatedGrant(grant.clone()),
            actor.audit(tenant.id, "consent.created", Some(client.app_id), detail),
        ],
    )
    .await?;
    Ok(grant)
}

fn validate_scopes(resource: &Application, scopes: &str) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.split_whitespace() {
        let scope = resource.scope(s).ok_or_else(|| {
            invalid("scope", &format!("'{s}' is not a delegated permission of {}", resource.display_name))
        })?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&scope.value)) {
            out.push(scope.value.clone());
        }
    }
    if out.is_empty() {
        return Err(invalid("scope", "at least one permission is required"));
    }
    Ok(out)
}

/// "Grant admin consent for <tenant>": what the app's static list would grant (for the
/// confirmation page), decided by the engine for this administrator.
pub async fn admin_consent_preview(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: &Application,
) -> Result<Vec<PermissionRef>, ServiceError> {
    let Actor::User { user, .. } = actor else {
        return Err(forbidden(actor, "granting admin consent (it needs a signed-in administrator)"));
    };
    let scope = ScopeRequest::default();
    let world = ConsentWorld::load(store, tenant, app, user, &scope).await?;
    match world.decide_admin_consent(&scope, true).decision {
        Decision::PromptAdminConsent { delegated, application } => {
            Ok(delegated.into_iter().chain(application).collect())
        }
        Decision::NotPermitted(e) => Err(ServiceError::Forbidden(e)),
        Decision::Refuse(e) => Err(ServiceError::Refused(e)),
        other => Err(ServiceError::Internal(format!("admin consent produced {}", other.kind()))),
    }
}

/// Grants admin consent for the app's static permissions, completing pending requests.
pub async fn grant_admin_consent(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: &Application,
    until: Option<time::OffsetDateTime>,
) -> Result<(), ServiceError> {
    let permissions = admin_consent_preview(store, actor, tenant, app).await?;
    let Actor::User { user, .. } = actor else {
        return Err(forbidden(actor, "granting admin consent (it needs a signed-in administrator)"));
    };
    if until.is_some_and(|end| end <= accord_core::clock::now()) {
        return Err(ServiceError::Refused(accord_core::Aadsts::invalid_parameter(
            "until",
            "the end must be in the future",
        )));
    }
    crate::service::admin_consent_requests::grant_for_organisation(
        store,
        tenant,
        app,
        user,
        &permissions,
        until,
        Vec::new(),
    )
    .await
}
