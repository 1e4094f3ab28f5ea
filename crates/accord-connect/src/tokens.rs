//! Stored user connections: tokens per (tenant, user), their state, and the store trait.
//!
//! ## A vendor database implementation
//!
//! One row per connection keyed by `(tenant_id, object_id)`, with the serialised
//! [`UserConnection`] (it is `Serialize`/`Deserialize`) or its fields as columns. Refresh tokens
//! are credentials: encrypt them at rest. With several replicas, serialise refreshes of one
//! user (e.g. `SELECT … FOR UPDATE` around [`crate::ConnectClient::access_token_for`]'s refresh):
//! refresh tokens rotate, and presenting an already-rotated one can revoke the whole family.

use crate::error::{ConnectError, RevocationReason};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

/// A user of a customer tenant: the tenant id and the user's object id (`oid`, the same for
/// every app; `sub` is per app).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserKey {
    pub tenant_id: String,
    pub object_id: String,
}

impl UserKey {
    pub fn new(tenant_id: impl Into<String>, object_id: impl Into<String>) -> Self {
        UserKey { tenant_id: tenant_id.into(), object_id: object_id.into() }
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant_id, self.object_id)
    }
}

/// Delegated tokens of one user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Present when `offline_access` was granted; replaced at every refresh (rotation).
    pub refresh_token: Option<String>,
    /// The scopes the tokens were requested with (sent again on refresh).
    pub requested_scope: String,
    /// The scopes the platform says it granted, when it said.
    pub granted_scope: Option<String>,
    /// The id token of the sign-in, if any.
    pub id_token: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("requested_scope", &self.requested_scope)
            .field("granted_scope", &self.granted_scope)
            .finish_non_exhaustive()
    }
}

/// Whether a user's connection still works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Connected,
    /// A refresh was refused for a consent reason; nothing is retried until the user signs in again.
    Revoked {
        reason: RevocationReason,
        code: Option<u32>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The refresh token expired or was refused for another reason; the user must sign in again.
    SignInRequired {
        code: Option<u32>,
    },
}

impl ConnectionState {
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected)
    }

    /// A sentence for a status page.
    pub fn human(&self) -> String {
        match self {
            ConnectionState::Connected => "Connected.".into(),
            ConnectionState::Revoked { reason, code, .. } => match code {
                Some(c) => format!("Revoked: {} (AADSTS{c})", reason.human()),
                None => format!("Revoked: {}", reason.human()),
            },
            ConnectionState::SignInRequired { .. } => "Sign-in expired: the user must sign in again.".into(),
        }
    }
}

/// A user's connection: who, the tokens, and whether it still works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConnection {
    pub key: UserKey,
    pub upn: Option<String>,
    pub name: Option<String>,
    pub tokens: TokenSet,
    pub state: ConnectionState,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Where user connections live. Implement it over the vendor's database; see the module docs.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self, key: &UserKey) -> Result<Option<UserConnection>, ConnectError>;
    /// Inserts or replaces the connection of `connection.key`.
    async fn save(&self, connection: &UserConnection) -> Result<(), ConnectError>;
    /// Every connection, or those of one tenant (for status pages and tenant-wide syncs).
    async fn list(&self, tenant_id: Option<&str>) -> Result<Vec<UserConnection>, ConnectError>;
    async fn remove(&self, key: &UserKey) -> Result<(), ConnectError>;
}

/// An in-process [`TokenStore`]; connections are lost on restart.
#[derive(Default)]
pub struct MemoryTokenStore {
    entries: Mutex<HashMap<UserKey, UserConnection>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<UserKey, UserConnection>>, ConnectError> {
        self.entries.lock().map_err(|_| ConnectError::Storage("token store poisoned".into()))
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, key: &UserKey) -> Result<Option<UserConnection>, ConnectError> {
        Ok(self.lock()?.get(key).cloned())
    }

    async fn save(&self, connection: &UserConnection) -> Result<(), ConnectError> {
        self.lock()?.insert(connection.key.clone(), connection.clone());
        Ok(())
    }

    async fn list(&self, tenant_id: Option<&str>) -> Result<Vec<UserConnection>, ConnectError> {
        let mut all: Vec<UserConnection> = self
            .lock()?
            .values()
            .filter(|c| tenant_id.is_none_or(|t| c.key.tenant_id.eq_ignore_ascii_case(t)))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    async fn remove(&self, key: &UserKey) -> Result<(), ConnectError> {
        self.lock()?.remove(key);
        Ok(())
    }
}

/// An app-only (client credentials) token for one tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct AppToken {
    pub tenant_id: String,
    pub access_token: String,
    pub expires_at: OffsetDateTime,
    /// The application permissions the token carries (`roles`).
    pub roles: Vec<String>,
}

impl fmt::Debug for AppToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppToken")
            .field("tenant_id", &self.tenant_id)
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("roles", &self.roles)
            .finish()
    }
}
