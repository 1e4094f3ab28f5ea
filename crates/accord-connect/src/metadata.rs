//! OpenID discovery documents and JWKS, cached per tenant with a TTL.

use crate::error::ConnectError;
use crate::http::get_json;
use crate::jwt::{Jwk, Jwks};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

/// The fields of `/{tenant}/v2.0/.well-known/openid-configuration` the kit uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    /// `https://login.microsoftonline.com/{tid}/v2.0`, or with the literal `{tenantid}` for
    /// `organizations`/`common`.
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub authorization_endpoint: String,
}

/// A forced JWKS refetch (unknown `kid`) happens at most this often per key set.
const MIN_FORCED_REFETCH: Duration = Duration::from_secs(30);

struct Cached<T> {
    value: T,
    fetched: Instant,
}

pub(crate) struct MetadataCache {
    ttl: Duration,
    discovery: Mutex<HashMap<String, Cached<Discovery>>>,
    jwks: Mutex<HashMap<String, Cached<Jwks>>>,
}

impl MetadataCache {
    pub fn new(ttl: Duration) -> Self {
        MetadataCache { ttl, discovery: Mutex::new(HashMap::new()), jwks: Mutex::new(HashMap::new()) }
    }

    /// The discovery document of `tenant` (a path segment), from the cache when fresh.
    pub async fn discovery(
        &self,
        http: &reqwest::Client,
        authority: &Url,
        tenant: &str,
    ) -> Result<Discovery, ConnectError> {
        if let Some(d) = self.discovery.lock().expect("metadata lock").get(tenant) {
            if d.fetched.elapsed() < self.ttl {
                return Ok(d.value.clone());
            }
        }
        let mut url = authority.clone();
        url.path_segments_mut()
            .map_err(|_| ConnectError::Config("authority cannot be a base URL".into()))?
            .clear()
            .extend([tenant, "v2.0", ".well-known", "openid-configuration"]);
        let doc: Discovery = get_json(http, url.as_str()).await?;
        tracing::debug!(tenant, issuer = %doc.issuer, "discovery fetched");
        self.discovery
            .lock()
            .expect("metadata lock")
            .insert(tenant.to_string(), Cached { value: doc.clone(), fetched: Instant::now() });
        Ok(doc)
    }

    /// The key `kid` of the key set at `jwks_uri`. An unknown `kid` (a key rotated in since the
    /// set was cached) forces one refetch; forced refetches are rate-limited per key set.
    pub async fn key(&self, http: &reqwest::Client, jwks_uri: &str, kid: &str) -> Result<Option<Jwk>, ConnectError> {
        let cached = {
            let map = self.jwks.lock().expect("metadata lock");
            map.get(jwks_uri).map(|c| (c.value.find(kid).cloned(), c.fetched.elapsed()))
        };
        match cached {
            Some((Some(key), age)) if age < self.ttl => return Ok(Some(key)),
            Some((None, age)) if age < MIN_FORCED_REFETCH => return Ok(None),
            _ => {}
        }
        let set: Jwks = get_json(http, jwks_uri).await?;
        tracing::debug!(jwks_uri, keys = set.keys.len(), "JWKS fetched");
        let key = set.find(kid).cloned();
        self.jwks
            .lock()
            .expect("metadata lock")
            .insert(jwks_uri.to_string(), Cached { value: set, fetched: Instant::now() });
        Ok(key)
    }
}
