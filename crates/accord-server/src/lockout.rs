//! Smart lockout's memory, and each client address's allowance of password checks.
//!
//! Failed password attempts are counted per sign-in name and *origin*: a client address, or a
//! familiar browser (one that signed in as that user before and holds the device cookie). A
//! guesser locks only their own origin; the owner's familiar browser keeps working. Across all
//! unfamiliar origins a larger count (`ACCOUNT_FACTOR` × the threshold) locks the name for every
//! unfamiliar origin, so many addresses cannot guess without bound either. Names are counted
//! whether or not an account has them, so a locked account and an unknown one answer alike.
//!
//! Attempts are counted *before* their password is checked, under one lock: concurrent guesses
//! cannot slip past the threshold. The tables live in this process's memory, bounded in size
//! (oldest entries go first when full); with several replicas each counts its own attempts,
//! and a lock of a real account is also written to its user row, which every replica reads.

use accord_core::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Unfamiliar origins together may fail this many times the per-origin threshold.
pub const ACCOUNT_FACTOR: u32 = 3;
/// Password checks one client address may start at once, then per second.
const ADDRESS_BURST: f64 = 30.0;
const ADDRESS_PER_SECOND: f64 = 5.0;
/// Most entries each table keeps.
const MAX_ENTRIES: usize = 100_000;

/// A browser that has signed in before: the device cookie's random id and the users it signed
/// in as (most recent first, a few at most).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamiliarDevice {
    pub id: [u8; 16],
    pub users: Vec<(TenantId, UserId)>,
}

impl FamiliarDevice {
    /// Users one browser is remembered for.
    pub const MAX_USERS: usize = 4;

    pub fn new() -> Self {
        FamiliarDevice { id: crate::crypto::random_bytes::<16>(), users: Vec::new() }
    }

    pub fn knows(&self, tenant: TenantId, user: UserId) -> bool {
        self.users.contains(&(tenant, user))
    }

    /// Remembers `user` as signed in from this browser.
    pub fn remember(&mut self, tenant: TenantId, user: UserId) {
        self.users.retain(|u| *u != (tenant, user));
        self.users.insert(0, (tenant, user));
        self.users.truncate(Self::MAX_USERS);
    }
}

impl Default for FamiliarDevice {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an attempt comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A client address, for browsers the name has not signed in from and for the ROPC grant.
    Address(IpAddr),
    /// A browser that signed in as this user before (the id in its device cookie).
    FamiliarBrowser([u8; 16]),
}

impl Origin {
    fn is_familiar(self) -> bool {
        matches!(self, Origin::FamiliarBrowser(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Origin(Origin),
    /// Every origin that is not a familiar browser.
    Unfamiliar,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    /// The sign-in name, folded.
    name: String,
    scope: Scope,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    locked_until: Option<OffsetDateTime>,
    touched: OffsetDateTime,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// What a failed attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The origin is locked now.
    pub origin_locked: bool,
    /// The name is locked for every unfamiliar origin now.
    pub account_locked: bool,
}

#[derive(Debug, Default)]
struct Tables {
    counts: HashMap<Key, Count>,
    addresses: HashMap<IpAddr, Bucket>,
}

#[derive(Debug)]
pub struct Lockout {
    threshold: u32,
    period: Duration,
    tables: Mutex<Tables>,
}

impl Lockout {
    pub fn new(threshold: u32, lock_seconds: i64) -> Self {
        Lockout { threshold: threshold.max(1), period: Duration::seconds(lock_seconds), tables: Mutex::default() }
    }

    fn keys(tenant: TenantId, name: &str, origin: Origin) -> (Key, Option<Key>) {
        let name = name.trim().to_lowercase();
        let own = Key { tenant, name: name.clone(), scope: Scope::Origin(origin) };
        let all = (!origin.is_familiar()).then_some(Key { tenant, name, scope: Scope::Unfamiliar });
        (own, all)
    }

    /// Counts an attempt about to check a password. `Err(())` when the origin, or (for an
    /// unfamiliar origin) the name, is locked: the password must not be checked.
    #[allow(clippy::result_unit_err)]
    pub fn begin(&self, tenant: TenantId, name: &str, origin: Origin, now: OffsetDateTime) -> Result<(), ()> {
        let (own, all) = Self::keys(tenant, name, origin);
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let locked = |t: &Tables, k: &Key| t.counts.get(k).and_then(|c| c.locked_until).is_some_and(|u| u > now);
        if locked(&t, &own) || all.as_ref().is_some_and(|k| locked(&t, k)) {
            return Err(());
        }
        let limits = [(own, self.threshold)].into_iter().chain(all.map(|k| (k, self.threshold * ACCOUNT_FACTOR)));
        let mut over = false;
        for (key, limit) in limits {
            let c = count_entry(&mut t.counts, key, now, self.period);
            // A lock that ran out, or failures a whole period old, start the count over.
            if c.locked_until.is_some_and(|u| u <= now) || (c.locked_until.is_none() && now - c.touched >= self.period)
            {
                c.failures = 0;
                c.locked_until = None;
            }
            c.failures += 1;
            c.touched = now;
            if c.failures > limit {
                c.locked_until = Some(now + self.period);
                over = true;
            }
        }
        if over {
            Err(())
        } else {
            Ok(())
        }
    }

    /// The checked password was wrong: the attempt counted by `begin` stands, and locks what
    /// reached its threshold.
    pub fn failed(&self, tenant: TenantId, name: &str, origin: Origin, now: OffsetDateTime) -> Failure {
        let (own, all) = Self::keys(tenant, name, origin);
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut lock_at = |key: &Key, limit: u32| match t.counts.get_mut(key) {
            Some(c) if c.failures >= limit => {
                c.locked_until = Some(now + self.period);
                true
            }
            _ => false,
        };
        Failure {
            origin_locked: lock_at(&own, self.threshold),
            account_locked: all.is_some_and(|k| lock_at(&k, self.threshold * ACCOUNT_FACTOR)),
        }
    }

    /// The password was right: this origin's count starts over, and so does the unfamiliar
    /// count (the owner is back).
    pub fn succeeded(&self, tenant: TenantId, name: &str, origin: Origin) {
        let (own, _) = Self::keys(tenant, name, origin);
        let all = Key { tenant, name: own.name.clone(), scope: Scope::Unfamiliar };
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        t.counts.remove(&own);
        if let Some(c) = t.counts.get_mut(&all) {
            if c.locked_until.is_none() {
                c.failures = 0;
            }
        }
    }

    /// Whether the name is locked for every unfamiliar origin.
    pub fn account_locked(&self, tenant: TenantId, name: &str, now: OffsetDateTime) -> bool {
        let key = Key { tenant, name: name.trim().to_lowercase(), scope: Scope::Unfamiliar };
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        t.counts.get(&key).and_then(|c| c.locked_until).is_some_and(|u| u > now)
    }

    /// Takes one password check from the address's allowance; `Err(seconds)` to wait when it
    /// has none left.
    pub fn allow_password_check(&self, address: IpAddr, now: OffsetDateTime) -> Result<(), u64> {
        let address = network_of(address);
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if !t.addresses.contains_key(&address) && t.addresses.len() >= MAX_ENTRIES {
            let full = ADDRESS_BURST / ADDRESS_PER_SECOND;
            t.addresses.retain(|_, b| (now - b.at).as_seconds_f64() < full);
            evict_oldest(&mut t.addresses, |b| b.at);
        }
        let b = t.addresses.entry(address).or_insert(Bucket { tokens: ADDRESS_BURST, at: now });
        let elapsed = (now - b.at).as_seconds_f64().max(0.0);
        b.tokens = (b.tokens + elapsed * ADDRESS_PER_SECOND).min(ADDRESS_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / ADDRESS_PER_SECOND).ceil().max(1.0) as u64)
        }
    }

    /// Entries in the count and address tables.
    #[cfg(test)]
    fn lens(&self) -> (usize, usize) {
        let t = self.tables.lock().unwrap();
        (t.counts.len(), t.addresses.len())
    }
}

/// An IPv6 client is its /64 (one host is given a whole /64); an IPv4 client its address.
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The entry for `key`, making room when the table is full: first what no longer matters (not
/// locked, untouched for a lock period), then the least recently touched.
fn count_entry(counts: &mut HashMap<Key, Count>, key: Key, now: OffsetDateTime, period: Duration) -> &mut Count {
    if !counts.contains_key(&key) && counts.len() >= MAX_ENTRIES {
        counts.retain(|_, c| c.locked_until.is_some_and(|u| u > now) || now - c.touched < period);
        evict_oldest(counts, |c| c.touched);
    }
    counts.entry(key).or_insert(Count { failures: 0, locked_until: None, touched: now })
}

/// Drops the least recently touched tenth of a full table at once, so that making room costs
/// one pass per many inserts rather than one per insert.
fn evict_oldest<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, at: impl Fn(&V) -> OffsetDateTime) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    let mut times: Vec<OffsetDateTime> = map.values().map(&at).collect();
    let nth = times.len() / 10;
    let (_, cutoff, _) = times.select_nth_unstable(nth);
    let cutoff = *cutoff;
    map.retain(|_, v| at(v) > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const T: TenantId = TenantId::NIL;
    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
    }
    fn addr(n: u8) -> Origin {
        Origin::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
    }
    /// One wrong guess, as the service makes it; true when the guess was refused unchecked.
    fn guess(l: &Lockout, name: &str, origin: Origin, now: OffsetDateTime) -> bool {
        if l.begin(T, name, origin, now).is_err() {
            return true;
        }
        l.failed(T, name, origin, now);
        false
    }

    #[test]
    fn a_guesser_locks_its_own_origin_not_the_familiar_browser() {
        let l = Lockout::new(10, 60);
        for _ in 0..10 {
            assert!(!guess(&l, "bob@contoso.test", addr(1), at(0)));
        }
        assert!(l.begin(T, "BOB@contoso.test", addr(1), at(1)).is_err(), "locked, in any letter case");
        assert!(l.begin(T, "bob@contoso.test", addr(2), at(1)).is_ok(), "another address is not");
        let familiar = Origin::FamiliarBrowser([7; 16]);
        assert!(l.begin(T, "bob@contoso.test", familiar, at(1)).is_ok(), "nor the owner's browser");
        l.succeeded(T, "bob@contoso.test", familiar);
        // The lock ends with its period, and the count starts over.
        for _ in 0..9 {
            assert!(!guess(&l, "bob@contoso.test", addr(1), at(61)));
        }
        assert!(l.begin(T, "bob@contoso.test", addr(1), at(61)).is_ok());
        assert!(l.begin(T, "bob@contoso.test", addr(1), at(61)).is_err());
    }

    #[test]
    fn many_addresses_lock_the_name_for_unfamiliar_origins_only() {
        let l = Lockout::new(10, 60);
        let mut refused_unchecked = 0;
        for n in 0..10u8 {
            for _ in 0..10 {
                refused_unchecked += u32::from(guess(&l, "ga@contoso.test", addr(n), at(0)));
            }
        }
        // 30 checks in all (3 × 10), then every unfamiliar origin is refused unchecked.
        assert_eq!(100 - refused_unchecked, 30);
        assert!(l.begin(T, "ga@contoso.test", addr(200), at(1)).is_err());
        assert!(l.begin(T, "ga@contoso.test", Origin::FamiliarBrowser([1; 16]), at(1)).is_ok());
    }

    #[test]
    fn unknown_names_lock_like_real_ones() {
        // The ledger never asks whether an account exists: the same count, the same lock.
        let l = Lockout::new(3, 60);
        for name in ["real@contoso.test", "ghost@contoso.test"] {
            let refused: Vec<bool> = (0..5).map(|_| guess(&l, name, addr(1), at(0))).collect();
            assert_eq!(refused, [false, false, false, true, true], "{name}");
        }
    }

    #[test]
    fn concurrent_guesses_are_counted_before_they_are_checked() {
        let l = std::sync::Arc::new(Lockout::new(10, 60));
        let checked = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        if l.begin(T, "bob@contoso.test", addr(1), at(0)).is_ok() {
                            checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(checked.into_inner(), 10);
    }

    #[test]
    fn a_success_starts_the_origin_over() {
        let l = Lockout::new(3, 60);
        for _ in 0..2 {
            guess(&l, "bob@contoso.test", addr(1), at(0));
        }
        l.begin(T, "bob@contoso.test", addr(1), at(0)).unwrap();
        l.succeeded(T, "bob@contoso.test", addr(1));
        for _ in 0..3 {
            assert!(!guess(&l, "bob@contoso.test", addr(1), at(0)));
        }
    }

    #[test]
    fn each_address_has_a_bounded_allowance_that_refills() {
        let l = Lockout::new(10, 60);
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let allowed = (0..100).filter(|_| l.allow_password_check(a, at(0)).is_ok()).count();
        assert_eq!(allowed, ADDRESS_BURST as usize);
        assert_eq!(l.allow_password_check(a, at(0)), Err(1));
        assert!(l.allow_password_check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), at(0)).is_ok(), "per address");
        assert!(l.allow_password_check(a, at(1)).is_ok(), "refilled after a second");
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64() {
        let l = Lockout::new(10, 60);
        let host = |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        let allowed = (0..100).filter(|n| l.allow_password_check(host(*n as u16), at(0)).is_ok()).count();
        assert_eq!(allowed, ADDRESS_BURST as usize, "rotating the interface id gains nothing");
    }

    #[test]
    fn the_tables_stay_bounded() {
        let l = Lockout::new(10, 60);
        for n in 0..(MAX_ENTRIES + 500) {
            let _ = l.begin(T, &format!("user{n}@contoso.test"), addr(1), at(0));
        }
        assert!(l.lens().0 <= MAX_ENTRIES, "{}", l.lens().0);
    }

    #[test]
    fn a_lock_lasts_its_period_from_the_failure_that_set_it() {
        // The third wrong password locks the origin for 60 s; attempts during the lock are
        // refused unchecked and do not move its end.
        let l = Lockout::new(3, 60);
        for _ in 0..3 {
            assert!(!guess(&l, "bob@contoso.test", addr(1), at(0)));
        }
        for s in [1, 30, 59] {
            assert!(l.begin(T, "bob@contoso.test", addr(1), at(s)).is_err(), "locked at {s} s");
        }
        assert!(l.begin(T, "bob@contoso.test", addr(1), at(60)).is_ok(), "open at 60 s, however often it was tried");
    }

    #[test]
    fn the_failure_that_reaches_a_threshold_says_what_it_locked() {
        let l = Lockout::new(2, 60);
        let fail = |n: u8| {
            l.begin(T, "bob@contoso.test", addr(n), at(0)).unwrap();
            l.failed(T, "bob@contoso.test", addr(n), at(0))
        };
        let failure = |origin_locked, account_locked| Failure { origin_locked, account_locked };
        // Each address locks at 2; unfamiliar addresses together at 2 × ACCOUNT_FACTOR = 6.
        let seen: Vec<Failure> = [1, 1, 2, 2, 3, 3].into_iter().map(fail).collect();
        let f = failure;
        assert_eq!(
            seen,
            [f(false, false), f(true, false), f(false, false), f(true, false), f(false, false), f(true, true)]
        );
        for (s, locked) in [(0, true), (59, true), (60, false)] {
            assert_eq!(l.account_locked(T, " BOB@contoso.test ", at(s)), locked, "at {s} s");
        }
        assert!(!l.account_locked(T, "alice@contoso.test", at(0)), "only that name");
        assert!(
            l.begin(T, "bob@contoso.test", Origin::FamiliarBrowser([1; 16]), at(1)).is_ok(),
            "not the owner's browser"
        );
    }

    #[test]
    fn a_familiar_browser_remembers_its_latest_users_first() {
        let user = |n: u128| UserId::from(uuid::Uuid::from_u128(n));
        let mut device = FamiliarDevice::new();
        assert!(!device.knows(T, user(1)));
        for n in 1..=5 {
            device.remember(T, user(n));
        }
        device.remember(T, user(3));
        // The latest first, each once, at most MAX_USERS: the oldest is forgotten.
        assert_eq!(device.users, [3, 5, 4, 2].map(|n| (T, user(n))));
        assert!(device.knows(T, user(2)) && !device.knows(T, user(1)));
        let other_tenant = TenantId::from(uuid::Uuid::from_u128(9));
        assert!(!device.knows(other_tenant, user(2)), "a user of that id in another tenant");
    }

    #[test]
    fn a_full_table_first_drops_counts_that_no_longer_matter() {
        // Filled with stale counts (touched 70 s ago, a 60 s period; dave's lock ran out at
        // 60 s), the table makes room by dropping those, and keeps a count still running:
        // bob's third failure still locks.
        let l = Lockout::new(3, 60);
        for _ in 0..3 {
            assert!(!guess(&l, "dave@contoso.test", addr(3), at(0)));
        }
        for n in 0..MAX_ENTRIES - 4 {
            let _ = l.begin(T, &format!("user{n}@contoso.test"), Origin::FamiliarBrowser([0; 16]), at(0));
        }
        for _ in 0..2 {
            assert!(!guess(&l, "bob@contoso.test", addr(1), at(50)));
        }
        assert_eq!(l.lens().0, MAX_ENTRIES, "full");
        let _ = l.begin(T, "carol@contoso.test", addr(2), at(70));
        assert_eq!(l.lens().0, 4, "bob's and carol's own and unfamiliar counts, nothing stale");
        assert!(!guess(&l, "bob@contoso.test", addr(1), at(71)));
        assert!(l.begin(T, "bob@contoso.test", addr(1), at(72)).is_err(), "the third failure locked");
    }

    #[test]
    fn a_full_table_of_live_counts_drops_its_oldest_tenth_at_once() {
        // Nothing is stale (a long period), each count touched at its own second: one pass
        // drops the least recently touched tenth, leaving room for many inserts.
        let l = Lockout::new(3, 1_000_000);
        for n in 0..=MAX_ENTRIES {
            let _ = l.begin(T, &format!("user{n}@contoso.test"), Origin::FamiliarBrowser([0; 16]), at(n as i64));
            assert!(l.lens().0 <= MAX_ENTRIES, "over the bound after {n} inserts");
        }
        assert_eq!(l.lens().0, MAX_ENTRIES - MAX_ENTRIES / 10);
    }

    #[test]
    fn a_full_address_table_keeps_what_is_still_draining() {
        let l = Lockout::new(10, 60);
        let v4 = |n: usize| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n as u32));
        let check = |address: IpAddr, s: i64| {
            let allowed = l.allow_password_check(address, at(s)).is_ok();
            assert!(l.lens().1 <= MAX_ENTRIES, "over the bound at {address}");
            allowed
        };
        for n in 0..MAX_ENTRIES - 1 {
            check(v4(n), 0);
        }
        // A guesser spends its allowance, then another address fills the table within the
        // refill time (6 s): the oldest go, the guesser's bucket stays (dropping it would give
        // it a fresh burst).
        let guesser = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        while check(guesser, 1) {}
        check(v4(MAX_ENTRIES), 2);
        assert_eq!(l.lens().1, 2, "the guesser and the newcomer");
        let allowed = (0..100).filter(|_| check(guesser, 2)).count();
        assert_eq!(allowed, ADDRESS_PER_SECOND as usize, "one second's refill, not a fresh burst");
        // Buckets untouched for the refill time are full again: when the table is full, all
        // of those go at once (not only the oldest tenth: they were touched at 3 to 5 s).
        for n in 0..MAX_ENTRIES - 2 {
            check(v4(MAX_ENTRIES + 1 + n), 3 + (n % 3) as i64);
        }
        check(v4(3 * MAX_ENTRIES), 20);
        assert_eq!(l.lens().1, 1, "only the newcomer");
    }
}
