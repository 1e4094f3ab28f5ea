//! Protocol state records: signing keys, browser sessions, authorization codes and refresh
//! tokens. Secrets never appear here in clear: codes, sessions and refresh tokens are stored by
//! a keyed hash, and private keys are sealed with the server's master key.

use accord_core::ids::{AppId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Still published in the JWKS so tokens it signed keep verifying.
    Previous,
    /// No longer published.
    Retired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Previous => "previous",
            KeyStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "previous" => Some(KeyStatus::Previous),
            "retired" => Some(KeyStatus::Retired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER of the RSA private key, sealed (AES-256-GCM, nonce prefixed).
    pub sealed_private_key: Vec<u8>,
    pub status: KeyStatus,
    pub created_at: OffsetDateTime,
}

/// A browser's single sign-on session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub auth_time: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What an authorization code stands for. Stored by hash; redeemable once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCodeRecord {
    pub code_hash: String,
    pub tenant_id: TenantId,
    pub client_app_id: AppId,
    pub user_id: UserId,
    pub redirect_uri: String,
    /// The scope parameter as requested on /authorize (re-evaluated at redemption).
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The refresh-token family created at redemption, so a replayed code can revoke it.
    pub family_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    Redeemed(AuthCodeRecord),
    AlreadyRedeemed(AuthCodeRecord),
    NotFound,
}

/// A device's pending sign-in (RFC 8628). Stored by the hashes of its device code (which the
/// device polls with) and its user code (which a person types on the verification page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationRecord {
    pub device_code_hash: String,
    pub user_code_hash: String,
    /// The authority segment the device asked at (a tenant, `organizations` or `common`).
    pub tenant_segment: String,
    pub client_app_id: AppId,
    pub scope: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: DeviceStatus,
    /// The refresh-token family its redemption starts (revoked if the code is replayed).
    pub family_id: Uuid,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Nobody has answered yet.
    Pending,
    /// A user signed in and consent allows the sign-in.
    Approved { tenant_id: TenantId, user_id: UserId, auth_time: OffsetDateTime },
    /// The user declined, or the sign-in was refused (not assigned, consent required, …).
    Refused(DeviceRefusal),
    /// The device has its tokens.
    Redeemed,
}

/// Why a device authorization was refused: the protocol error the device's poll receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRefusal {
    pub code: u32,
    pub error: String,
    pub message: String,
}

/// What polling with a device code finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRedemption {
    /// Approved: now redeemed, once.
    Approved(DeviceAuthorizationRecord),
    Pending,
    Refused(DeviceRefusal),
    /// Redeemed before: a replay.
    AlreadyRedeemed(DeviceAuthorizationRecord),
    Expired,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: Uuid,
    pub tenant_id: TenantId,
    pub client_app_id: AppId,
    pub user_id: UserId,
    /// The scope the family was granted (space-separated, full values).
    pub scope: String,
    pub auth_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Set when the token was exchanged for a successor.
    pub used_at: Option<OffsetDateTime>,
    /// Set when the whole family was revoked (reuse detected, sign-out, consent revoked).
    pub revoked: bool,
    /// Issued to a single-page app: redeemable only cross-origin, never extended.
    pub spa: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// The old token had already been used: the family is now revoked.
    ReuseDetected,
    /// The family was revoked earlier.
    Revoked,
    NotFound,
}
