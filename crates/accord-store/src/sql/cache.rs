//! The directory cache: the configuration rows every token request reads (tenants, app
//! registrations, client secrets, service principals, app role assignments, delegated grants,
//! permission classifications)
//! kept in memory, so that issuing a token costs an RSA signature and no SQL round trip.
//!
//! Why it is safe:
//! - Every write to a cached table goes through [`crate::Store::apply`]. A batch that touches
//!   one ([`Change::touches_directory_cache`]) empties this process's cache after its commit
//!   and before `apply` returns, so this process reads its own writes at once.
//! - The same batch bumps the database's `store_generation` row in its transaction. Another
//!   process on the same database (a second replica, or the `accord` CLI writing to the data dir
//!   while the server runs) notices the new generation at its next check and empties its cache:
//!   those writes are seen within [`CacheSettings::check_interval`] (1 s by default) — the
//!   bounded staleness Entra ID itself has between its replicas, and far below a token's life.
//! - A value read from the database while a write was committing is not cached: every insert is
//!   tagged with the cache epoch seen before the read, and an emptying bumps the epoch.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use accord_core::ids::{AppId, AppObjectId, ServicePrincipalId, TenantId};
use uuid::Uuid;

use crate::{Change, StoreResult};

/// How the directory cache behaves; [`CacheSettings::default`] is what `accord serve` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Off: every read goes to the database.
    pub enabled: bool,
    /// How often the database's write generation is compared with this process's: the longest
    /// time a write made by another process can stay unseen here.
    pub check_interval: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { enabled: true, check_interval: Duration::from_secs(1) }
    }
}

/// What a cached read was looked up by. One variant per cached [`crate::Store`] read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    Tenant(TenantId),
    TenantByDomain(String),
    ApplicationByAppId(AppId),
    ApplicationByIdentifierUri(String),
    ClientSecrets(AppObjectId),
    ServicePrincipal(TenantId, ServicePrincipalId),
    ServicePrincipalByAppId(TenantId, AppId),
    AppRoleAssignmentsOf(TenantId, Uuid),
    AppRoleAssignmentsTo(TenantId, ServicePrincipalId),
    DelegatedGrantsOfClient(TenantId, ServicePrincipalId),
    PermissionClassifications(TenantId, ServicePrincipalId),
}

type Entry = Arc<dyn Any + Send + Sync>;

pub(crate) struct DirectoryCache {
    settings: CacheSettings,
    entries: RwLock<HashMap<CacheKey, Entry>>,
    /// Bumped by every emptying; a read that started under an older epoch is not inserted.
    epoch: AtomicU64,
    /// The database write generation the entries were read under.
    generation: AtomicU64,
    /// Milliseconds since `started` of the last generation check.
    checked_at_ms: AtomicU64,
    started: Instant,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DirectoryCache {
    pub(crate) fn new(settings: CacheSettings, generation: u64) -> DirectoryCache {
        DirectoryCache {
            settings,
            entries: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            generation: AtomicU64::new(generation),
            checked_at_ms: AtomicU64::new(0),
            started: Instant::now(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// True when the generation is due for a check. Only one caller per interval gets `true`:
    /// the others keep serving the entries they have, which are at most one interval old.
    pub(crate) fn claim_generation_check(&self) -> bool {
        let now = self.now_ms();
        let last = self.checked_at_ms.load(Ordering::Acquire);
        let interval = self.settings.check_interval.as_millis() as u64;
        now.saturating_sub(last) >= interval
            && self.checked_at_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Records the database's current generation; empties the cache when another process wrote.
    pub(crate) fn observe_generation(&self, generation: u64) {
        if self.generation.swap(generation, Ordering::AcqRel) != generation {
            self.clear();
        }
    }

    /// After a local write that touched cached rows, committed at `generation`.
    pub(crate) fn after_local_write(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
        self.clear();
    }

    /// A cached value, or `load`'s result (cached unless the cache was emptied meanwhile).
    pub(crate) async fn get_or_load<T, F>(&self, key: CacheKey, load: F) -> StoreResult<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = StoreResult<T>>,
    {
        if let Some(hit) = self.lookup::<T>(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let value = load.await?;
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Under the write lock: `clear` bumps the epoch while holding it, so this comparison
        // cannot pass for a value read before an emptying that has already happened.
        if self.epoch.load(Ordering::Acquire) == epoch {
            entries.insert(key, Arc::new(value.clone()));
        }
        Ok(value)
    }

    /// (hits, misses) since start, for `/metrics`.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    fn lookup<T: Clone + 'static>(&self, key: &CacheKey) -> Option<T> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(key).and_then(|entry| entry.downcast_ref::<T>()).cloned()
    }

    fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    fn now_ms(&self) -> u64 {
        // +1 so that a check is due at once when the interval is zero and no time has passed.
        self.started.elapsed().as_millis() as u64 + 1
    }
}

impl Change {
    /// Whether this change writes a row the directory cache may hold.
    pub fn touches_directory_cache(&self) -> bool {
        matches!(
            self,
            Change::PutTenant(_)
                | Change::PutApplication(_)
                | Change::PutClientSecret(_)
                | Change::DeleteClientSecret { .. }
                | Change::DeleteApplication { .. }
                | Change::DeleteUser { .. }
                | Change::PutServicePrincipal(_)
                | Change::DeleteServicePrincipal { .. }
                | Change::PutDelegatedGrant(_)
                | Change::DeleteDelegatedGrant { .. }
                | Change::PutAppRoleAssignment(_)
                | Change::DeleteAppRoleAssignment { .. }
                | Change::PutPermissionClassification(_)
                | Change::DeletePermissionClassification { .. }
        )
    }
}
