//! The `state` of admin-consent links: bound to a customer instance, single use, expiring.
//!
//! The identity platform echoes `state` back on the redirect. It is the only thing that ties a
//! redirect to the onboarding page the vendor showed, so it must be unguessable, remembered by
//! the vendor, usable once and short-lived.
//!
//! ## A vendor database implementation
//!
//! [`MemoryStateStore`] is enough for one process. Several replicas need a shared table, e.g.
//!
//! ```sql
//! CREATE TABLE consent_state (state TEXT PRIMARY KEY, customer TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
//! -- new_state:  INSERT INTO consent_state VALUES ($1, $2, now() + interval '10 minutes')
//! -- take_state: DELETE FROM consent_state WHERE state = $1 RETURNING customer, expires_at
//! --             (single use by construction; treat an expired row as absent)
//! -- housekeeping: DELETE FROM consent_state WHERE expires_at < now()
//! ```
//!
//! Generate the value with [`random_token`] (256 bits). The `DELETE … RETURNING` makes taking
//! atomic, so two redirects racing with the same state cannot both succeed.

use crate::error::ConnectError;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 32 random bytes, base64url: for `state`, `nonce` and PKCE verifiers.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Remembers which customer instance an admin-consent link was made for.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A new state value bound to `customer` (the vendor's customer instance id).
    async fn new_state(&self, customer: &str) -> Result<String, ConnectError>;
    /// The customer the state was made for, consuming it; `None` if unknown, used or expired.
    async fn take_state(&self, state: &str) -> Result<Option<String>, ConnectError>;
}

/// An in-process [`StateStore`]; states are lost on restart.
pub struct MemoryStateStore {
    ttl: Duration,
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryStateStore {
    /// States that expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        MemoryStateStore { ttl, entries: Mutex::new(HashMap::new()) }
    }
}

impl Default for MemoryStateStore {
    /// Ten minutes: long enough to sign in and read a consent page, short enough to limit replay.
    fn default() -> Self {
        Self::new(Duration::from_secs(600))
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn new_state(&self, customer: &str) -> Result<String, ConnectError> {
        let state = random_token();
        let now = Instant::now();
        let mut entries = self.entries.lock().map_err(|_| ConnectError::Storage("state store poisoned".into()))?;
        entries.retain(|_, (_, expires)| *expires > now);
        entries.insert(state.clone(), (customer.to_string(), now + self.ttl));
        Ok(state)
    }

    async fn take_state(&self, state: &str) -> Result<Option<String>, ConnectError> {
        let mut entries = self.entries.lock().map_err(|_| ConnectError::Storage("state store poisoned".into()))?;
        Ok(match entries.remove(state) {
            Some((customer, expires)) if expires > Instant::now() => Some(customer),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn states_are_bound_single_use_and_expire() {
        let store = MemoryStateStore::default();
        let a = store.new_state("customer-a").await.unwrap();
        let b = store.new_state("customer-b").await.unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_eq!(store.take_state(&b).await.unwrap().as_deref(), Some("customer-b"));
        assert_eq!(store.take_state(&b).await.unwrap(), None, "single use");
        assert_eq!(store.take_state("forged").await.unwrap(), None);
        assert_eq!(store.take_state(&a).await.unwrap().as_deref(), Some("customer-a"));

        let short = MemoryStateStore::new(Duration::from_millis(20));
        let s = short.new_state("c").await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(short.take_state(&s).await.unwrap(), None, "expired");
    }
}
