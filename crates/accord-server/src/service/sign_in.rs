//! Password sign-in with lockout: shared by the sign-in page and the ROPC grant.

use crate::crypto::dummy_password_hash;
use crate::service::ServiceError;
use crate::state::AppState;
use crate::tenancy::TenantPath;
use accord_core::directory::{Tenant, User};
use accord_core::Aadsts;
use time::{Duration, OffsetDateTime};

/// Finds the user's tenant from the UPN's domain, enforcing a tenant-specific authority.
pub async fn home_tenant(state: &AppState, path: &TenantPath, upn: &str) -> Result<Tenant, ServiceError> {
    let domain = upn.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let by_domain = if domain.is_empty() { None } else { state.store.tenant_by_domain(&domain).await? };
    match (path, by_domain) {
        (TenantPath::Tenant(t), Some(home)) if home.id != t.id => {
            Err(Aadsts::user_not_in_tenant(&crate::tenancy::sanitize(upn)).into())
        }
        (TenantPath::Tenant(t), _) => Ok(t.clone()),
        (TenantPath::MultiTenant { .. }, Some(home)) => Ok(home),
        (TenantPath::MultiTenant { .. }, None) => {
            // Same answer and cost as a wrong password: do not reveal which accounts exist.
            verify_blocking(String::new(), dummy_password_hash().to_string()).await?;
            Err(Aadsts::invalid_credentials().into())
        }
    }
}

/// A password check within the server's bound on password work (`password_work`).
async fn verify_blocking(password: String, phc: String) -> Result<bool, ServiceError> {
    crate::password_work::verify(password, phc).await.map_err(ServiceError::busy)
}

/// Checks a password. Unknown users and wrong passwords give the same error (AADSTS50126).
pub async fn authenticate(state: &AppState, tenant: &Tenant, upn: &str, password: &str) -> Result<User, ServiceError> {
    let store = &*state.store;
    let now = OffsetDateTime::now_utc();
    let Some(user) = store.user_by_upn(tenant.id, upn.trim()).await? else {
        verify_blocking(password.to_string(), dummy_password_hash().to_string()).await?;
        return Err(Aadsts::invalid_credentials().into());
    };
    if user.locked_until.is_some_and(|t| t > now) {
        return Err(Aadsts::account_locked().into());
    }
    let Some(phc) = user.password_hash.clone() else {
        return Err(Aadsts::invalid_credentials().into());
    };
    // Each attempt is counted (atomically) before its password is checked, and the lock is read
    // again after counting: concurrent guesses cannot all slip past the threshold between one
    // read of the lock and the next (at most `lockout_threshold` checks per lock period).
    let threshold = state.settings.lockout_threshold;
    let attempts = store.record_failed_sign_in(tenant.id, user.id).await?;
    let locked_meanwhile =
        store.user(tenant.id, user.id).await?.is_some_and(|u| u.locked_until.is_some_and(|t| t > now));
    if locked_meanwhile {
        return Err(Aadsts::account_locked().into());
    }
    if attempts > threshold {
        store
            .set_locked_until(tenant.id, user.id, Some(now + Duration::seconds(state.settings.lockout_seconds)))
            .await?;
        tracing::warn!(tenant = %tenant.id, user = %user.id, "account locked after repeated failures");
        return Err(Aadsts::account_locked().into());
    }
    if !verify_blocking(password.to_string(), phc).await? {
        let failures = attempts;
        tracing::info!(tenant = %tenant.id, user = %user.id, failures, "failed sign-in");
        if failures >= threshold {
            store
                .set_locked_until(tenant.id, user.id, Some(now + Duration::seconds(state.settings.lockout_seconds)))
                .await?;
            tracing::warn!(tenant = %tenant.id, user = %user.id, "account locked after repeated failures");
            return Err(Aadsts::account_locked().into());
        }
        return Err(Aadsts::invalid_credentials().into());
    }
    if !user.enabled {
        return Err(Aadsts::account_disabled().into());
    }
    // The attempt counted above was a success after all.
    store.clear_failed_sign_ins(tenant.id, user.id).await?;
    Ok(user)
}
