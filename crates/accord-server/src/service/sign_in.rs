//! Password sign-in with smart lockout: shared by the sign-in page and the ROPC grant.
//!
//! Every attempt, for a real account or not, costs one password check and joins the failure
//! count of its origin (`lockout.rs`): a guesser locks their own address, not the owner's
//! familiar browser, and an unknown name locks exactly like a real one. Each client address
//! has a bounded allowance of password checks (HTTP 429 beyond it), on top of the server-wide
//! bound on password work (`password_work.rs`).

use crate::crypto::dummy_password_hash;
use crate::lockout::{FamiliarDevice, Origin};
use crate::service::ServiceError;
use crate::state::AppState;
use crate::tenancy::TenantPath;
use accord_core::directory::{Tenant, User};
use accord_core::ids::TenantId;
use accord_core::Aadsts;
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// Where a password sign-in comes from.
#[derive(Debug, Clone)]
pub struct SignInOrigin {
    pub address: IpAddr,
    /// The browser's familiar-device note; `None` for the ROPC grant or a new browser.
    pub device: Option<FamiliarDevice>,
}

impl SignInOrigin {
    pub fn address(address: IpAddr) -> Self {
        SignInOrigin { address, device: None }
    }

    /// The lockout origin of an attempt on `user`: their familiar browser, else the address.
    fn for_user(&self, tenant: TenantId, user: Option<&User>) -> Origin {
        match (&self.device, user) {
            (Some(d), Some(u)) if d.knows(tenant, u.id) => Origin::FamiliarBrowser(d.id),
            _ => Origin::Address(self.address),
        }
    }
}

/// Finds the user's tenant from the UPN's domain, enforcing a tenant-specific authority.
pub async fn home_tenant(
    state: &AppState,
    path: &TenantPath,
    upn: &str,
    origin: &SignInOrigin,
) -> Result<Tenant, ServiceError> {
    let domain = upn.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let by_domain = if domain.is_empty() { None } else { state.store.tenant_by_domain(&domain).await? };
    match (path, by_domain) {
        (TenantPath::Tenant(t), Some(home)) if home.id != t.id => {
            Err(Aadsts::user_not_in_tenant(&crate::tenancy::sanitize(upn)).into())
        }
        (TenantPath::Tenant(t), _) => Ok(t.clone()),
        (TenantPath::MultiTenant { .. }, Some(home)) => Ok(home),
        (TenantPath::MultiTenant { .. }, None) => {
            // A name no tenant has: the same answer, cost and lockout as a wrong password.
            let origin = Origin::Address(origin.address);
            let now = accord_core::clock::now();
            match check_password(state, TenantId::NIL, upn, origin, now, None, "").await? {
                Checked::Locked => Err(Aadsts::account_locked().into()),
                _ => Err(Aadsts::invalid_credentials().into()),
            }
        }
    }
}

/// A password check within the server's bound on password work (`password_work`).
async fn verify_blocking(password: String, phc: String) -> Result<bool, ServiceError> {
    crate::password_work::verify(password, phc).await.map_err(ServiceError::busy)
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    Right,
    Wrong,
    /// Refused unchecked, or this failure reached a threshold.
    Locked,
}

/// Counts the attempt, checks the password (against a dummy hash when there is none, at the
/// same cost) and records a failure. `Right` only for the right password of `phc`.
async fn check_password(
    state: &AppState,
    tenant: TenantId,
    name: &str,
    origin: Origin,
    now: OffsetDateTime,
    phc: Option<String>,
    password: &str,
) -> Result<Checked, ServiceError> {
    let lockout = &state.lockout;
    if let Origin::Address(address) = origin {
        lockout.allow_password_check(address, now).map_err(|wait| ServiceError::Refused(Aadsts::throttled(wait)))?;
    }
    if lockout.begin(tenant, name, origin, now).is_err() {
        return Ok(Checked::Locked);
    }
    let known = phc.is_some();
    let right = verify_blocking(password.to_string(), phc.unwrap_or_else(|| dummy_password_hash().to_string())).await?;
    if right && known {
        lockout.succeeded(tenant, name, origin);
        return Ok(Checked::Right);
    }
    let failure = lockout.failed(tenant, name, origin, now);
    tracing::info!(tenant = %tenant, familiar = matches!(origin, Origin::FamiliarBrowser(_)), "failed sign-in");
    if failure.origin_locked || failure.account_locked {
        tracing::warn!(tenant = %tenant, account = failure.account_locked, "sign-ins locked after repeated failures");
        return Ok(Checked::Locked);
    }
    Ok(Checked::Wrong)
}

/// Checks a password. Unknown users and wrong passwords give the same error (AADSTS50126).
pub async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    upn: &str,
    password: &str,
    origin: &SignInOrigin,
) -> Result<User, ServiceError> {
    let store = &*state.store;
    let now = accord_core::clock::now();
    let upn = upn.trim();
    let user = store.user_by_upn(tenant.id, upn).await?;
    let lock_origin = origin.for_user(tenant.id, user.as_ref());
    // A lock written to the user row (by this or another replica) holds for unfamiliar origins.
    let row_locked = user.as_ref().is_some_and(|u| u.locked_until.is_some_and(|t| t > now));
    if row_locked && !matches!(lock_origin, Origin::FamiliarBrowser(_)) {
        return Err(Aadsts::account_locked().into());
    }
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let checked = check_password(state, tenant.id, upn, lock_origin, now, phc, password).await?;
    let user = match (checked, user) {
        (Checked::Right, Some(user)) => user,
        (Checked::Locked, Some(user)) => {
            record_lock(state, &user, lock_origin, now).await?;
            return Err(Aadsts::account_locked().into());
        }
        (Checked::Locked, None) => return Err(Aadsts::account_locked().into()),
        _ => return Err(Aadsts::invalid_credentials().into()),
    };
    if !user.enabled {
        return Err(Aadsts::account_disabled().into());
    }
    // Tidy the row only when there is something to tidy (no write on an ordinary sign-in).
    match user.locked_until {
        // An expired lock goes, with its count.
        Some(until) if until <= now => store.set_locked_until(tenant.id, user.id, None).await?,
        // The owner's familiar browser during an active lock: the lock stays for everyone else.
        Some(_) => {}
        None if user.failed_sign_ins > 0 => store.clear_failed_sign_ins(tenant.id, user.id).await?,
        None => {}
    }
    Ok(user)
}

/// Writes an unfamiliar-origin lock of a real account to its row, where every replica and the
/// admin center see it (and an administrator's password reset clears it).
async fn record_lock(state: &AppState, user: &User, origin: Origin, now: OffsetDateTime) -> Result<(), ServiceError> {
    if matches!(origin, Origin::FamiliarBrowser(_)) || user.locked_until.is_some_and(|t| t > now) {
        return Ok(());
    }
    if state.lockout.account_locked(user.tenant_id, &user.upn, now) {
        let until = now + Duration::seconds(state.settings.lockout_seconds);
        state.store.set_locked_until(user.tenant_id, user.id, Some(until)).await?;
    }
    Ok(())
}
