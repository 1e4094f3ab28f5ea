//! What every request handler and service shares: the store, the keys, the signer and the
//! protocol settings. Below the surfaces: nothing here knows of HTTP or pages.

use crate::crypto::Keyring;
use crate::signing::Signer;
use accord_store::Store;
use std::sync::Arc;

/// Lifetimes and switches of the protocol.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL without trailing slash, e.g. `https://localhost:8443`.
    pub public_url: String,
    pub secure_cookies: bool,
    pub allow_ropc: bool,
    pub access_token_seconds: i64,
    /// Access tokens for clients that handle claims challenges (`cp1`) live longer: Graph
    /// revokes them at once when the user's access ends (continuous access evaluation).
    pub cae_access_token_seconds: i64,
    pub code_seconds: i64,
    pub refresh_token_days: i64,
    pub session_hours: i64,
    /// Failed sign-ins before an account locks, and for how long.
    pub lockout_threshold: u32,
    pub lockout_seconds: i64,
    /// Graph change notifications.
    pub notifications: NotificationSettings,
}

/// The switches of change notifications (`accord serve` flags).
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// `http://localhost` / `127.0.0.1` / `[::1]` notification URLs are accepted
    /// (`--allow-http-notification-urls`): for development and tests only.
    pub allow_http_loopback: bool,
    /// How long a notification is retried before it is dropped and `missed` sent.
    pub retry_window: time::Duration,
    /// How often subscribers' access is reviewed.
    pub review_interval: std::time::Duration,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            allow_http_loopback: false,
            retry_window: time::Duration::hours(4),
            review_interval: std::time::Duration::from_secs(5),
        }
    }
}

impl Settings {
    pub fn new(public_url: String, allow_ropc: bool) -> Self {
        Settings {
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            allow_ropc,
            access_token_seconds: 3599,
            cae_access_token_seconds: 24 * 3600,
            code_seconds: 600,
            refresh_token_days: 90,
            session_hours: 24,
            lockout_threshold: 10,
            lockout_seconds: 60,
            notifications: NotificationSettings::default(),
        }
    }

    pub fn issuer(&self, tenant_id: &str) -> String {
        format!("{}/{}/v2.0", self.public_url, tenant_id)
    }

    /// The issuer of v1-shaped access tokens (Entra's `https://sts.windows.net/{tid}/`, here
    /// under Accord's own URL).
    pub fn issuer_v1(&self, tenant_id: &str) -> String {
        format!("{}/{}/", self.public_url, tenant_id)
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub signer: Signer,
    pub settings: Settings,
    /// Failed sign-ins and each address's password checks (smart lockout).
    pub lockout: crate::lockout::Lockout,
    /// Federated issuers' signing keys, fetched on demand.
    pub issuer_keys: crate::federation::IssuerKeys,
    /// The client for the server's own requests, and where they may go (`egress.rs`).
    pub egress: crate::egress::Egress,
    /// Graph's and the token endpoint's limits (`throttle.rs`).
    pub throttles: std::sync::Arc<crate::throttle::Throttles>,
    /// Wakes the Graph notification worker when something was queued.
    pub graph_outbox: std::sync::Arc<tokio::sync::Notify>,
    /// Where the world came from (test mode loads it again on reset).
    pub world: WorldSource,
    /// `accord serve --test-mode`: the control API is served and decisions are journalled.
    pub test_mode: bool,
}

/// The scenario a server loaded (`None`: the built-in demo world) and its variables.
#[derive(Debug, Clone, Default)]
pub struct WorldSource {
    pub scenario: Option<std::path::PathBuf>,
    pub variables: Vec<(String, String)>,
}

pub type SharedState = Arc<AppState>;
