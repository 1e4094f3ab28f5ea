//! Throttling, in one place: the token bucket every limit uses ([`Bucket`]), and the limits
//! Accord applies.
//!
//! * **Mailbox data** (Outlook's limits, as Graph applies them): per application and mailbox
//!   pair, at most `mailbox_requests_per_10_minutes` in ten minutes and `mailbox_concurrent` at
//!   once (Microsoft's documented defaults: 10,000 and 4). Graph answers 429
//!   `ApplicationThrottled` with `Retry-After`.
//! * **A tenant's Graph traffic**: per application and tenant, at most
//!   `tenant_requests_per_10_seconds` requests of any kind in ten seconds (off by default);
//!   429 `TooManyRequests`.
//! * **The token endpoint**: per client id and network address, at most
//!   `token_requests_per_minute` requests in a minute, checked before any credential is (an
//!   abusive client costs a map look-up); 429 with AADSTS's `temporarily_unavailable`.
//!
//! The counters live in this process's memory, bounded in size; a limit of 0 turns it off.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::ids::{AppId, TenantId};

/// The limits (`accord serve` flags, or the scenario's `[graph_throttling]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub mailbox_requests_per_10_minutes: u32,
    pub mailbox_concurrent: u32,
    pub tenant_requests_per_10_seconds: u32,
    pub token_requests_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            mailbox_requests_per_10_minutes: 10_000,
            mailbox_concurrent: 4,
            tenant_requests_per_10_seconds: 0,
            token_requests_per_minute: 6_000,
        }
    }
}

/// Keys remembered at most per limit; beyond, idle ones are forgotten first.
const MAX_KEYS: usize = 100_000;

/// A token bucket holding up to `capacity` requests, refilled continuously over `window`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Bucket {
        Bucket { tokens: f64::from(capacity), at: now }
    }

    /// Refills, then takes one token; or says how many whole seconds until one is back.
    fn take(&mut self, capacity: u32, window: Duration, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(capacity);
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * capacity / window.as_secs_f64();
        self.tokens = (self.tokens + refill).min(capacity);
        self.at = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) * window.as_secs_f64() / capacity;
            return Err(wait.ceil().max(1.0) as u64);
        }
        self.tokens -= 1.0;
        Ok(())
    }

    fn idle(&self, window: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.at) >= window
    }
}

/// `capacity` requests per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    capacity: u32,
    window: Duration,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(capacity: u32, window: Duration) -> Self {
        RateLimiter { capacity, window, buckets: Mutex::new(HashMap::new()) }
    }

    /// Admits one request for `key`, or says how many seconds to wait.
    pub fn admit(&self, key: &K, now: Instant) -> Result<(), u64> {
        if self.capacity == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, b| !b.idle(self.window, now));
            if buckets.len() >= MAX_KEYS {
                return Err(1);
            }
        }
        buckets.entry(key.clone()).or_insert_with(|| Bucket::full(self.capacity, now)).take(
            self.capacity,
            self.window,
            now,
        )
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many requests to one mailbox in ten minutes.
    MailboxRate,
    /// Too many requests to one mailbox at once.
    MailboxConcurrency,
    /// Too many Graph requests to one tenant in ten seconds.
    Tenant,
}

impl Limit {
    /// For `/metrics` (bounded).
    pub fn label(self) -> &'static str {
        match self {
            Limit::MailboxRate => "rate",
            Limit::MailboxConcurrency => "concurrency",
            Limit::Tenant => "tenant",
        }
    }
}

/// Why a request was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
    pub limit: Limit,
}

/// An application and a mailbox (a user, by object id or lower-case UPN as the path names it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxKey {
    pub tenant: TenantId,
    pub app: Option<AppId>,
    pub mailbox: String,
}

#[derive(Debug)]
struct Pair {
    bucket: Bucket,
    in_flight: u32,
}

const MAILBOX_WINDOW: Duration = Duration::from_secs(600);

/// Every limit, with its counters.
#[derive(Debug)]
pub struct Throttles {
    limits: Limits,
    pairs: Mutex<HashMap<MailboxKey, Pair>>,
    tenants: RateLimiter<(TenantId, Option<AppId>)>,
    token: RateLimiter<(String, IpAddr)>,
}

/// A request in flight for a mailbox pair; dropping it frees the concurrency slot.
#[derive(Debug)]
pub struct Slot {
    throttles: Arc<Throttles>,
    key: MailboxKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut pairs = self.throttles.pairs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pairs.get_mut(&self.key) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }
}

impl Throttles {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Throttles {
            limits,
            pairs: Mutex::new(HashMap::new()),
            tenants: RateLimiter::new(limits.tenant_requests_per_10_seconds, Duration::from_secs(10)),
            token: RateLimiter::new(limits.token_requests_per_minute, Duration::from_secs(60)),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A Graph request of `app` in `tenant`.
    pub fn admit_tenant(&self, tenant: TenantId, app: Option<AppId>, now: Instant) -> Result<(), Throttled> {
        self.tenants.admit(&(tenant, app), now).map_err(|retry_after| Throttled { retry_after, limit: Limit::Tenant })
    }

    /// A token request naming `client_id` from `address`; the seconds to wait when refused.
    pub fn admit_token_request(&self, client_id: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        // Client ids are GUIDs or URIs; an oversized one counts under its prefix.
        let client: String = client_id.chars().take(100).collect::<String>().to_ascii_lowercase();
        self.token.admit(&(client, address), now)
    }

    /// A request for mailbox data; the slot it holds is released when dropped.
    pub fn admit_mailbox(self: &Arc<Self>, key: MailboxKey, now: Instant) -> Result<Option<Slot>, Throttled> {
        let (rate, concurrent) = (self.limits.mailbox_requests_per_10_minutes, self.limits.mailbox_concurrent);
        if rate == 0 && concurrent == 0 {
            return Ok(None);
        }
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        if !pairs.contains_key(&key) && pairs.len() >= MAX_KEYS {
            pairs.retain(|_, p| p.in_flight > 0 || !p.bucket.idle(MAILBOX_WINDOW, now));
            if pairs.len() >= MAX_KEYS {
                return Err(Throttled { retry_after: 1, limit: Limit::MailboxConcurrency });
            }
        }
        let pair = pairs.entry(key.clone()).or_insert(Pair { bucket: Bucket::full(rate, now), in_flight: 0 });
        if concurrent > 0 && pair.in_flight >= concurrent {
            return Err(Throttled { retry_after: 1, limit: Limit::MailboxConcurrency });
        }
        if rate > 0 {
            pair.bucket
                .take(rate, MAILBOX_WINDOW, now)
                .map_err(|retry_after| Throttled { retry_after, limit: Limit::MailboxRate })?;
        }
        pair.in_flight += 1;
        Ok(Some(Slot { throttles: self.clone(), key }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(mailbox: &str) -> MailboxKey {
        MailboxKey { tenant: TenantId::NIL, app: None, mailbox: mailbox.into() }
    }

    fn limits(rate: u32, concurrent: u32) -> Limits {
        Limits { mailbox_requests_per_10_minutes: rate, mailbox_concurrent: concurrent, ..Limits::default() }
    }

    #[test]
    fn the_ten_minute_allowance_refills_and_says_how_long_to_wait() {
        let t = Throttles::new(limits(3, 0));
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(t.admit_mailbox(key("a"), t0).unwrap());
        }
        let wait = t.admit_mailbox(key("a"), t0).unwrap_err();
        assert_eq!(
            wait,
            Throttled { retry_after: 200, limit: Limit::MailboxRate },
            "one back every 200 s at 3 per 600 s"
        );
        assert!(t.admit_mailbox(key("b"), t0).is_ok(), "another mailbox has its own allowance");
        assert!(t.admit_mailbox(key("a"), t0 + Duration::from_secs(200)).is_ok());
    }

    #[test]
    fn concurrency_is_counted_until_the_slot_is_dropped() {
        let t = Throttles::new(limits(0, 2));
        let now = Instant::now();
        let (a, b) = (t.admit_mailbox(key("m"), now).unwrap(), t.admit_mailbox(key("m"), now).unwrap());
        assert_eq!(
            t.admit_mailbox(key("m"), now).unwrap_err(),
            Throttled { retry_after: 1, limit: Limit::MailboxConcurrency }
        );
        drop(a);
        assert!(t.admit_mailbox(key("m"), now).is_ok());
        drop(b);
        let off = Throttles::new(limits(0, 0));
        assert!(off.admit_mailbox(key("m"), now).unwrap().is_none(), "both limits off");
    }

    #[test]
    fn a_request_refused_for_concurrency_spends_no_allowance() {
        let t = Throttles::new(limits(2, 1));
        let now = Instant::now();
        let held = t.admit_mailbox(key("m"), now).unwrap();
        assert_eq!(t.admit_mailbox(key("m"), now).unwrap_err().limit, Limit::MailboxConcurrency);
        drop(held);
        assert!(t.admit_mailbox(key("m"), now).is_ok(), "the refused request did not count");
    }

    #[test]
    fn tenants_and_token_requests_have_their_own_buckets() {
        let t = Throttles::new(Limits {
            tenant_requests_per_10_seconds: 2,
            token_requests_per_minute: 3,
            ..Limits::default()
        });
        let now = Instant::now();
        let (tenant, other) = (TenantId::NIL, TenantId::from(uuid::Uuid::from_u128(7)));
        assert!(t.admit_tenant(tenant, None, now).is_ok() && t.admit_tenant(tenant, None, now).is_ok());
        assert_eq!(t.admit_tenant(tenant, None, now), Err(Throttled { retry_after: 5, limit: Limit::Tenant }));
        assert!(t.admit_tenant(other, None, now).is_ok());
        assert!(t.admit_tenant(tenant, None, now + Duration::from_secs(5)).is_ok());

        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.admit_token_request("App-1", here, now).is_ok());
        }
        assert_eq!(t.admit_token_request("app-1", here, now), Err(20), "ids compare without case");
        assert!(t.admit_token_request("app-1", there, now).is_ok(), "another address");
        assert!(t.admit_token_request("app-2", here, now).is_ok(), "another client");
        let off = Throttles::new(Limits { token_requests_per_minute: 0, ..Limits::default() });
        for _ in 0..1000 {
            assert!(off.admit_token_request("app-1", here, now).is_ok());
        }
    }
}
