//! The device authorization grant (RFC 8628) as Entra runs it: a device (a CLI, an agent, a TV)
//! asks for a code pair, a person types the short user code on the verification page and signs
//! in through the ordinary sign-in and consent pages, and the device's poll redeems the approval
//! once. The consent engine decides exactly as for any other sign-in: assignment, user-consent
//! policy, approval requests and revocation all apply (the pages call the same engine, and the
//! redemption asks it again).
//!
//! The user code is short by design, so it is drawn from 28 unambiguous characters (no 0/O,
//! 1/I/L, U/V), nine of them (~43 bits), lives 15 minutes, and the verification page takes it
//! from each address only at the password-check pace (smart lockout's allowance).

use super::ServiceError;
use crate::crypto::{random_token, Keyring};
use accord_core::directory::{Application, Tenant, User};
use accord_core::ids::{TenantId, UserId};
use accord_core::{Aadsts, OAuthError};
use accord_store::{DeviceAuthorizationRecord, DeviceRedemption, DeviceRefusal, DeviceStatus, Store, StoreError};
use rand::Rng;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long a person has to enter the code (Entra: 15 minutes).
pub const LIFETIME: Duration = Duration::minutes(15);
/// Seconds a device waits between polls.
pub const POLL_INTERVAL_SECONDS: i64 = 5;
/// The user code's alphabet: letters and digits nobody confuses when reading them aloud.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTWXYZ2345679";
const USER_CODE_LEN: usize = 9;

/// What a device receives: its secret device code and the code a person types.
pub struct Started {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: i64,
}

/// A new user code.
fn user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..USER_CODE_LEN).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// A typed user code as stored: upper case, without the spaces and dashes people add.
pub fn normalize_user_code(typed: &str) -> String {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).take(32).collect()
}

fn user_code_hash(keyring: &Keyring, code: &str) -> String {
    keyring.secret_hash(&format!("user-code:{}", normalize_user_code(code)))
}

pub fn device_code_hash(keyring: &Keyring, device_code: &str) -> String {
    keyring.secret_hash(&format!("device-code:{device_code}"))
}

/// Starts a device authorization for `client` at the authority `tenant_segment`.
pub async fn start(
    store: &dyn Store,
    keyring: &Keyring,
    tenant_segment: &str,
    client: &Application,
    scope: &str,
    now: OffsetDateTime,
) -> Result<Started, ServiceError> {
    // A user code may collide with a live (or not yet purged) one: draw again.
    for _ in 0..4 {
        let (device_code, user_code) = (random_token(), user_code());
        let record = DeviceAuthorizationRecord {
            device_code_hash: device_code_hash(keyring, &device_code),
            user_code_hash: user_code_hash(keyring, &user_code),
            tenant_segment: tenant_segment.to_string(),
            client_app_id: client.app_id,
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + LIFETIME,
            status: DeviceStatus::Pending,
            family_id: Uuid::new_v4(),
        };
        match store.put_device_authorization(&record).await {
            Ok(()) => return Ok(Started { device_code, user_code, expires_in: LIFETIME.whole_seconds() }),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Internal("no free user code after four draws".into()))
}

/// The pending, unexpired authorization a typed user code names.
pub async fn pending(
    store: &dyn Store,
    keyring: &Keyring,
    typed: &str,
    now: OffsetDateTime,
) -> Result<Option<DeviceAuthorizationRecord>, ServiceError> {
    if normalize_user_code(typed).len() != USER_CODE_LEN {
        return Ok(None);
    }
    let found = store.device_authorization_by_user_code(&user_code_hash(keyring, typed)).await?;
    Ok(found.filter(|d| d.status == DeviceStatus::Pending && d.expires_at > now))
}

/// The person signed in and the consent engine let the sign-in through: the device may
/// redeem. `false` when the authorization was answered already or has expired.
pub async fn approve(
    store: &dyn Store,
    device_code_hash: &str,
    tenant: &Tenant,
    user: &User,
    auth_time: OffsetDateTime,
) -> Result<bool, ServiceError> {
    let approval = DeviceStatus::Approved { tenant_id: tenant.id, user_id: user.id, auth_time };
    Ok(store.decide_device_authorization(device_code_hash, &approval, accord_core::clock::now()).await?)
}

/// The person declined, or the sign-in was refused: the device's next poll gets `e`.
pub async fn refuse(store: &dyn Store, device_code_hash: &str, e: &Aadsts) -> Result<bool, ServiceError> {
    let refusal = DeviceStatus::Refused(DeviceRefusal {
        code: e.code,
        error: e.error.as_str().to_string(),
        message: e.message.clone(),
    });
    Ok(store.decide_device_authorization(device_code_hash, &refusal, accord_core::clock::now()).await?)
}

/// What the device's poll gets: the approval to turn into tokens, or Entra's device-flow error.
pub enum Poll {
    Approved { record: DeviceAuthorizationRecord, tenant_id: TenantId, user_id: UserId, auth_time: OffsetDateTime },
    Refused(Aadsts),
}

/// Redeems the device code for `client`, once. A replayed device code revokes what its first
/// redemption started (a replay may be a thief).
pub async fn poll(
    store: &dyn Store,
    keyring: &Keyring,
    client: &Application,
    device_code: &str,
    now: OffsetDateTime,
) -> Result<Poll, ServiceError> {
    let outcome =
        store.redeem_device_authorization(&device_code_hash(keyring, device_code), client.app_id, now).await?;
    Ok(match outcome {
        DeviceRedemption::Approved(record) => match record.status {
            DeviceStatus::Approved { tenant_id, user_id, auth_time } => {
                Poll::Approved { tenant_id, user_id, auth_time, record }
            }
            _ => return Err(ServiceError::Internal("a redeemed device authorization without its approval".into())),
        },
        // Another client's device code is as unknown to this one as a made-up one.
        DeviceRedemption::NotFound => Poll::Refused(Aadsts::device_code_unknown()),
        DeviceRedemption::Pending => Poll::Refused(Aadsts::device_authorization_pending()),
        DeviceRedemption::Expired => Poll::Refused(Aadsts::device_code_expired()),
        DeviceRedemption::Refused(r) => {
            let error = OAuthError::parse(&r.error).unwrap_or(OAuthError::InvalidGrant);
            Poll::Refused(Aadsts::new(r.code, error, r.message))
        }
        DeviceRedemption::AlreadyRedeemed(record) => {
            store.revoke_refresh_family(record.family_id).await?;
            tracing::warn!(client = %record.client_app_id, "device code replayed; token family revoked");
            Poll::Refused(Aadsts::device_code_already_redeemed())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_store::SqlStore;

    /// A fresh SQLite store in a temporary file.
    async fn store() -> (SqlStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("accord-device-test-{}.db", Uuid::new_v4().simple()));
        (SqlStore::connect_sqlite_file(&path).await.unwrap(), path)
    }

    /// What the device's poll answers over the life of a code: pending while nobody answers,
    /// `expired_token` once its 15 minutes are up (here by polling at a later instant), and
    /// `bad_verification_code` for another client's code.
    #[tokio::test]
    async fn a_poll_answers_pending_then_expired_and_never_another_clients_code() {
        let (store, path) = store().await;
        let keyring = Keyring::from_master(&[7; 32]);
        let client = accord_core::microsoft_graph::application();
        let now = accord_core::clock::now();
        let started = start(&store, &keyring, "organizations", &client, "openid", now).await.unwrap();
        let code = |p: Poll| match p {
            Poll::Refused(e) => (e.error.as_str(), e.code),
            Poll::Approved { .. } => ("approved", 0),
        };
        let at = |minutes| now + Duration::minutes(minutes);
        let pending = poll(&store, &keyring, &client, &started.device_code, at(1)).await.unwrap();
        assert_eq!(code(pending), ("authorization_pending", 70016));
        let expired = poll(&store, &keyring, &client, &started.device_code, at(16)).await.unwrap();
        assert_eq!(code(expired), ("expired_token", 70019));
        // The typed code is no longer offered once expired.
        assert!(super::pending(&store, &keyring, &started.user_code, at(16)).await.unwrap().is_none());
        assert!(super::pending(&store, &keyring, &started.user_code.to_lowercase(), at(1)).await.unwrap().is_some());
        let mut other = client.clone();
        other.app_id = accord_core::ids::AppId::random();
        let stranger = poll(&store, &keyring, &other, &started.device_code, at(1)).await.unwrap();
        assert_eq!(code(stranger), ("bad_verification_code", 70018));
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn user_codes_are_unambiguous_and_typed_codes_forgiving() {
        for _ in 0..200 {
            let code = user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L', 'U', 'V']), "{code}");
        }
        assert_eq!(normalize_user_code(" abc-def ghj\n"), "ABCDEFGHJ");
        assert_eq!(normalize_user_code(&"x".repeat(100)).len(), 32, "bounded");
    }
}
