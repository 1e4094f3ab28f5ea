//! The directory cache: the configuration rows every token request reads (tenants, app
//! registrations, client secrets, service principals, app role assignments, delegated grants,
//! permission classifications) and the rows a user's sign-in reads (the user, their directory
//! roles, the groups they are in, directly or not, and those groups' members) kept in memory, so
//! that issuing a token costs an RSA signature and no SQL round trip.
//!
//! Why it is safe:
//! - Every write to a cached table goes through [`crate::Store::apply`]. A batch that touches
//!   one ([`Change::touches_directory_cache`]) empties this process's cache after its commit
//!   and before `apply` returns, so this process reads its own writes at once.
//! - A write empties only what it can have changed ([`CacheScope`]): a grant, an assignment or
//!   an enterprise app of one tenant empties that tenant's entries; a tenant or an app
//!   registration (read by every tenant) empties everything.
//! - The same batch bumps the database's `store_generation` row in its transaction. On
//!   PostgreSQL it also sends `NOTIFY accord_directory` with the new generation and its scopes,
//!   delivered at commit: every other replica listening ([`crate::SqlStore`] starts the
//!   listener) empties the same entries within milliseconds. A replica that missed a
//!   generation (the listener reconnected, a notification was lost) empties everything. The
//!   periodic check stays as the fallback, and is all SQLite has (the `accord` CLI writing to
//!   the data dir while the server runs): a write by another process is seen within
//!   [`CacheSettings::check_interval`] (1 s by default).
//! - A value read from the database while a write was committing is not cached: every insert is
//!   tagged with the cache epoch seen before the read, and an emptying bumps the epoch.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use accord_core::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};
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
    User(TenantId, UserId),
    UserRoles(TenantId, UserId),
    /// The groups a user, group or service principal is in, directly or through others, with
    /// names and the way up.
    Memberships(TenantId, Uuid),
    Group(TenantId, GroupId),
    GroupMembers(TenantId, GroupId),
    /// A group's closure: itself and every group below it.
    GroupClosure(TenantId, GroupId),
}

impl CacheKey {
    /// The tenant whose rows the entry holds; `None` for rows every tenant reads (tenants by
    /// domain, app registrations and their secrets).
    fn tenant(&self) -> Option<TenantId> {
        match self {
            CacheKey::Tenant(t)
            | CacheKey::ServicePrincipal(t, _)
            | CacheKey::ServicePrincipalByAppId(t, _)
            | CacheKey::AppRoleAssignmentsOf(t, _)
            | CacheKey::AppRoleAssignmentsTo(t, _)
            | CacheKey::DelegatedGrantsOfClient(t, _)
            | CacheKey::PermissionClassifications(t, _)
            | CacheKey::User(t, _)
            | CacheKey::UserRoles(t, _)
            | CacheKey::Memberships(t, _)
            | CacheKey::Group(t, _)
            | CacheKey::GroupMembers(t, _)
            | CacheKey::GroupClosure(t, _) => Some(*t),
            CacheKey::TenantByDomain(_)
            | CacheKey::ApplicationByAppId(_)
            | CacheKey::ApplicationByIdentifierUri(_)
            | CacheKey::ClientSecrets(_) => None,
        }
    }
}

/// What a write may have changed in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// Rows of one tenant only.
    Tenant(TenantId),
    /// Rows any tenant reads: everything goes.
    All,
}

/// The scopes of a batch, folded: `[All]` when any change reaches beyond one tenant.
pub(crate) fn scopes_of(changes: &[Change]) -> Vec<CacheScope> {
    let mut out: Vec<CacheScope> = Vec::new();
    for scope in changes.iter().filter_map(Change::cache_scope) {
        if scope == CacheScope::All {
            return vec![CacheScope::All];
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

/// The payload of a `NOTIFY accord_directory`: `"<generation> <scope>[,<scope>…]"`, a scope
/// being a tenant id or `*`. Many tenants at once (a scenario load) are sent as `*`: a
/// notification holds at most 8000 bytes.
pub(crate) fn notification_payload(generation: u64, scopes: &[CacheScope]) -> String {
    const MAX_TENANTS: usize = 100;
    let listed: Vec<String> = if scopes.len() > MAX_TENANTS {
        vec!["*".into()]
    } else {
        scopes
            .iter()
            .map(|s| match s {
                CacheScope::Tenant(t) => t.to_string(),
                CacheScope::All => "*".into(),
            })
            .collect()
    };
    format!("{generation} {}", listed.join(","))
}

/// Reads a payload back; `None` when it is not one of ours.
pub(crate) fn parse_notification(payload: &str) -> Option<(u64, Vec<CacheScope>)> {
    let (generation, scopes) = payload.split_once(' ')?;
    let generation = generation.parse().ok()?;
    let scopes = scopes
        .split(',')
        .map(|s| if s == "*" { Some(CacheScope::All) } else { s.parse().ok().map(CacheScope::Tenant) })
        .collect::<Option<Vec<_>>>()?;
    Some((generation, scopes))
}

/// What a cached value weighs: the rows (or ids) it holds, at least one. The cache's bound is
/// in these units, so that a list of ten thousand memberships counts as what it holds, not as
/// one entry like a single user.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

impl<T> Weigh for Option<T> {
    fn weight(&self) -> usize {
        1
    }
}

impl<T> Weigh for Vec<T> {
    fn weight(&self) -> usize {
        self.len().max(1)
    }
}

impl<T> Weigh for Arc<[T]> {
    fn weight(&self) -> usize {
        self.len().max(1)
    }
}

struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    weight: usize,
}

#[derive(Default)]
struct Held {
    entries: HashMap<CacheKey, Entry>,
    /// The sum of the entries' weights.
    weight: usize,
}

/// The weight (rows and ids, see [`Weigh`]) held at most: a directory of any size costs
/// bounded memory — a row is a few hundred bytes, so some tens of MB at most. A full cache drops
/// entries, whichever, until an eighth of it is free before taking a new one (they are read
/// again on demand); a value heavier than that eighth is not kept at all.
const MAX_WEIGHT: usize = 200_000;

pub(crate) struct DirectoryCache {
    settings: CacheSettings,
    capacity: usize,
    held: RwLock<Held>,
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
        DirectoryCache::with_capacity(settings, generation, MAX_WEIGHT)
    }

    fn with_capacity(settings: CacheSettings, generation: u64, capacity: usize) -> DirectoryCache {
        DirectoryCache {
            settings,
            capacity: capacity.max(8),
            held: RwLock::new(Held::default()),
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

    /// After a local write that touched cached rows in `scopes`, committed at `generation`.
    /// Its own entries go in any case; when writes of others came between the last generation
    /// seen and this one, everything goes (their scopes are not known here).
    pub(crate) fn after_local_write(&self, generation: u64, scopes: &[CacheScope]) {
        let previous = self.generation.fetch_max(generation, Ordering::AcqRel);
        if generation > previous.saturating_add(1) {
            self.clear();
        } else {
            self.clear_scopes(scopes);
        }
    }

    /// A write another replica committed at `generation` (PostgreSQL's notification). One this
    /// process has seen already (its own, or one a check covered) changes nothing; the next
    /// one empties its scopes; a gap empties everything.
    pub(crate) fn after_remote_write(&self, generation: u64, scopes: &[CacheScope]) {
        let previous = self.generation.fetch_max(generation, Ordering::AcqRel);
        if generation <= previous {
            return;
        }
        if generation == previous + 1 {
            self.clear_scopes(scopes);
        } else {
            self.clear();
        }
    }

    /// Empties the entries of `scopes` (everything for [`CacheScope::All`]).
    pub(crate) fn clear_scopes(&self, scopes: &[CacheScope]) {
        if scopes.contains(&CacheScope::All) {
            return self.clear();
        }
        let mut held = self.held.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bumped for any emptying, partial or not: a read that started before it is not kept.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut dropped = 0;
        held.entries.retain(|key, entry| {
            let keep = key.tenant().is_none_or(|t| !scopes.contains(&CacheScope::Tenant(t)));
            if !keep {
                dropped += entry.weight;
            }
            keep
        });
        held.weight -= dropped;
    }

    /// Empties everything (the notification listener lost its connection: writes may have
    /// gone unseen).
    pub(crate) fn clear_all(&self) {
        self.clear();
    }

    /// A cached value, or `load`'s result (cached unless the cache was emptied meanwhile).
    pub(crate) async fn get_or_load<T, F>(&self, key: CacheKey, load: F) -> StoreResult<T>
    where
        T: Weigh + Clone + Send + Sync + 'static,
        F: Future<Output = StoreResult<T>>,
    {
        if let Some(hit) = self.lookup::<T>(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let value = load.await?;
        let weight = value.weight();
        let room = self.capacity - self.capacity / 8;
        if weight > self.capacity / 8 {
            return Ok(value);
        }
        let mut held = self.held.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Under the write lock: `clear` bumps the epoch while holding it, so this comparison
        // cannot pass for a value read before an emptying that has already happened.
        if self.epoch.load(Ordering::Acquire) == epoch {
            if let Some(old) = held.entries.remove(&key) {
                held.weight -= old.weight;
            }
            if held.weight + weight > self.capacity {
                // Dropping entries never serves a stale value: no epoch bump needed.
                let mut drop = Vec::new();
                let mut freed = 0;
                for (k, entry) in &held.entries {
                    if held.weight - freed + weight <= room {
                        break;
                    }
                    freed += entry.weight;
                    drop.push(k.clone());
                }
                for k in drop {
                    held.entries.remove(&k);
                }
                held.weight -= freed;
            }
            held.weight += weight;
            held.entries.insert(key, Entry { value: Arc::new(value.clone()), weight });
        }
        Ok(value)
    }

    /// (hits, misses) since start, for `/metrics`.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    fn lookup<T: Clone + 'static>(&self, key: &CacheKey) -> Option<T> {
        let held = self.held.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.entries.get(key).and_then(|entry| entry.value.downcast_ref::<T>()).cloned()
    }

    fn clear(&self) {
        let mut held = self.held.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *held = Held::default();
    }

    fn now_ms(&self) -> u64 {
        // +1 so that a check is due at once when the interval is zero and no time has passed.
        self.started.elapsed().as_millis() as u64 + 1
    }
}

impl Change {
    /// What this change may alter in the directory cache: `None` when it writes no cached row.
    pub fn cache_scope(&self) -> Option<CacheScope> {
        if !self.touches_directory_cache() {
            return None;
        }
        Some(match self {
            Change::DeleteUser { tenant_id, .. }
            | Change::EndSignIns { tenant_id, .. }
            | Change::SetUserRoles { tenant_id, .. }
            | Change::SetGroupMembers { tenant_id, .. }
            | Change::DeleteServicePrincipal { tenant_id, .. } => CacheScope::Tenant(*tenant_id),
            Change::PutUser(u) => CacheScope::Tenant(u.tenant_id),
            Change::PutGroup(g) => CacheScope::Tenant(g.tenant_id),
            Change::PutServicePrincipal(sp) => CacheScope::Tenant(sp.tenant_id),
            Change::PutDelegatedGrant(g) => CacheScope::Tenant(g.tenant_id),
            Change::DeleteDelegatedGrant { tenant_id, .. } => CacheScope::Tenant(*tenant_id),
            Change::PutAppRoleAssignment(a) => CacheScope::Tenant(a.tenant_id),
            Change::DeleteAppRoleAssignment { tenant_id, .. } => CacheScope::Tenant(*tenant_id),
            Change::PutPermissionClassification(c) => CacheScope::Tenant(c.tenant_id),
            Change::DeletePermissionClassification { tenant_id, .. } => CacheScope::Tenant(*tenant_id),
            // Tenants (their domains) and app registrations are read across tenants.
            _ => CacheScope::All,
        })
    }

    /// Whether this change writes a row the directory cache may hold.
    pub fn touches_directory_cache(&self) -> bool {
        matches!(
            self,
            Change::PutTenant(_)
                | Change::PutApplication(_)
                | Change::PutClientSecret(_)
                | Change::DeleteClientSecret { .. }
                | Change::DeleteApplication { .. }
                | Change::PutUser(_)
                | Change::DeleteUser { .. }
                | Change::EndSignIns { .. }
                | Change::SetUserRoles { .. }
                | Change::PutGroup(_)
                | Change::SetGroupMembers { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::from(Uuid::from_u128(n))
    }

    async fn fill(cache: &DirectoryCache) {
        for key in [
            CacheKey::Tenant(tenant(1)),
            CacheKey::ServicePrincipal(tenant(1), ServicePrincipalId::from(Uuid::from_u128(10))),
            CacheKey::Tenant(tenant(2)),
            CacheKey::DelegatedGrantsOfClient(tenant(2), ServicePrincipalId::from(Uuid::from_u128(20))),
            CacheKey::ApplicationByAppId(AppId::from(Uuid::from_u128(30))),
        ] {
            cache.get_or_load(key, async { Ok(Some(1u8)) }).await.unwrap();
        }
    }

    fn held(cache: &DirectoryCache) -> usize {
        cache.held.read().unwrap().entries.len()
    }

    #[tokio::test]
    async fn a_tenants_write_empties_that_tenant_only() {
        let cache = DirectoryCache::new(CacheSettings::default(), 7);
        fill(&cache).await;
        assert_eq!(held(&cache), 5);
        cache.after_local_write(8, &[CacheScope::Tenant(tenant(1))]);
        assert_eq!(held(&cache), 3, "tenant 2 and the app registration stay");
        assert!(cache.lookup::<Option<u8>>(&CacheKey::Tenant(tenant(2))).is_some());
        assert!(cache.lookup::<Option<u8>>(&CacheKey::Tenant(tenant(1))).is_none());
        cache.after_local_write(9, &[CacheScope::All]);
        assert_eq!(held(&cache), 0);
    }

    #[tokio::test]
    async fn remote_writes_in_order_empty_their_scope_and_a_gap_empties_everything() {
        let cache = DirectoryCache::new(CacheSettings::default(), 7);
        fill(&cache).await;
        cache.after_remote_write(7, &[CacheScope::All]);
        assert_eq!(held(&cache), 5, "already seen: nothing to do");
        cache.after_remote_write(8, &[CacheScope::Tenant(tenant(2))]);
        assert_eq!(held(&cache), 3);
        cache.after_remote_write(10, &[CacheScope::Tenant(tenant(2))]);
        assert_eq!(held(&cache), 0, "generation 9 was missed: its scope is unknown");
        // A local write that skips another process's generation empties everything too.
        fill(&cache).await;
        cache.after_local_write(12, &[CacheScope::Tenant(tenant(1))]);
        assert_eq!(held(&cache), 0);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_capacity() {
        let cache = DirectoryCache::with_capacity(CacheSettings::default(), 1, 64);
        for n in 0..1_000u128 {
            let key = CacheKey::Tenant(tenant(n));
            assert_eq!(cache.get_or_load(key, async { Ok(Some(n)) }).await.unwrap(), Some(n));
            assert!(held(&cache) <= 64, "{} entries", held(&cache));
        }
        // The newest is kept, and a dropped one is read again.
        assert_eq!(cache.lookup::<Option<u128>>(&CacheKey::Tenant(tenant(999))), Some(Some(999)));
        assert_eq!(cache.get_or_load(CacheKey::Tenant(tenant(0)), async { Ok(Some(0u128)) }).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn lists_weigh_what_they_hold_and_the_bound_is_in_weight() {
        let cache = DirectoryCache::with_capacity(CacheSettings::default(), 1, 800);
        let weight = |cache: &DirectoryCache| cache.held.read().unwrap().weight;
        let list = |n: usize| -> Arc<[u32]> { (0..n as u32).collect() };
        for n in 0..100u128 {
            let key = CacheKey::Memberships(tenant(1), Uuid::from_u128(n));
            cache.get_or_load(key, async { Ok(list(90)) }).await.unwrap();
            assert!(weight(&cache) <= 800, "weight {}", weight(&cache));
            // 90 rows each: at most 8 such lists fit, never 800 as entries would.
            assert!(held(&cache) <= 8, "{} lists held", held(&cache));
        }
        let sum: usize = cache.held.read().unwrap().entries.values().map(|e| e.weight).sum();
        assert_eq!(sum, weight(&cache), "the running total is the entries' sum");
        // A value over an eighth of the capacity is served, never kept.
        let key = CacheKey::Memberships(tenant(2), Uuid::nil());
        assert_eq!(cache.get_or_load(key.clone(), async { Ok(list(101)) }).await.unwrap().len(), 101);
        assert!(cache.lookup::<Arc<[u32]>>(&key).is_none());
        // Emptying a tenant takes its weight with it; an empty list still weighs one.
        cache.get_or_load(CacheKey::Tenant(tenant(3)), async { Ok(Vec::<u8>::new()) }).await.unwrap();
        cache.clear_scopes(&[CacheScope::Tenant(tenant(1))]);
        assert_eq!((held(&cache), weight(&cache)), (1, 1));
        // A key loaded again (here: read as another type, a miss) replaces its weight.
        cache.get_or_load(CacheKey::Tenant(tenant(3)), async { Ok(list(5)) }).await.unwrap();
        assert_eq!((held(&cache), weight(&cache)), (1, 5));
    }

    #[test]
    fn batches_fold_to_their_scopes_and_travel_in_notifications() {
        let grant = Change::DeleteDelegatedGrant { tenant_id: tenant(1), grant_id: Uuid::nil() };
        let other = Change::DeleteAppRoleAssignment { tenant_id: tenant(2), assignment_id: Uuid::nil() };
        assert_eq!(
            scopes_of(&[grant.clone(), other.clone(), grant.clone()]),
            [CacheScope::Tenant(tenant(1)), CacheScope::Tenant(tenant(2))]
        );
        let app = Change::DeleteApplication { app_object_id: AppObjectId::from(Uuid::nil()) };
        assert_eq!(scopes_of(&[grant.clone(), app]), [CacheScope::All]);
        let event = Change::DeleteEvent { tenant_id: tenant(1), event_id: Uuid::nil() };
        assert!(scopes_of(&[event]).is_empty(), "no cached row");

        let payload = notification_payload(42, &[CacheScope::Tenant(tenant(1)), CacheScope::Tenant(tenant(2))]);
        assert_eq!(
            parse_notification(&payload),
            Some((42, vec![CacheScope::Tenant(tenant(1)), CacheScope::Tenant(tenant(2))]))
        );
        assert_eq!(parse_notification(&notification_payload(5, &[CacheScope::All])), Some((5, vec![CacheScope::All])));
        let many: Vec<CacheScope> = (0..500).map(|n| CacheScope::Tenant(tenant(n))).collect();
        let big = notification_payload(6, &many);
        assert!(big.len() < 8000 && parse_notification(&big) == Some((6, vec![CacheScope::All])));
        assert_eq!(parse_notification("hello"), None);
        assert_eq!(parse_notification("3 not-a-tenant"), None);
    }
}
