//! Outlook's throttling, as Graph applies it to mailbox data: per application and mailbox pair,
//! at most `requests_per_10_minutes` requests in ten minutes and `concurrent` at once
//! (Microsoft's documented defaults: 10,000 and 4). Over either, Graph answers 429
//! `ApplicationThrottled` with `Retry-After`; SDKs retry on their own. The counters live in this
//! process's memory, bounded in size; a limit of 0 turns its check off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::ids::{AppId, TenantId};

/// The limits (`accord serve --graph-requests-per-10-minutes`, `--graph-concurrent-per-mailbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    pub requests_per_10_minutes: u32,
    pub concurrent: u32,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits { requests_per_10_minutes: 10_000, concurrent: 4 }
    }
}

const WINDOW: Duration = Duration::from_secs(600);
/// Pairs remembered at most; beyond, idle ones are forgotten first.
const MAX_PAIRS: usize = 100_000;

/// An application and a mailbox (a user, by object id or lower-case UPN as the path names it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxKey {
    pub tenant: TenantId,
    pub app: Option<AppId>,
    pub mailbox: String,
}

#[derive(Debug)]
struct Pair {
    /// A token bucket holding up to the 10-minute allowance, refilled continuously.
    tokens: f64,
    at: Instant,
    in_flight: u32,
}

/// Why a request was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
    /// Too many at once (else: too many in ten minutes).
    pub concurrency: bool,
}

/// Counters for every (app, mailbox) pair.
#[derive(Debug, Default)]
pub struct MailboxThrottle {
    limits: MailboxLimits,
    pairs: Mutex<HashMap<MailboxKey, Pair>>,
}

/// A request in flight for a pair; dropping it frees the concurrency slot.
#[derive(Debug)]
pub struct Slot {
    throttle: Arc<MailboxThrottle>,
    key: MailboxKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut pairs = self.throttle.pairs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pairs.get_mut(&self.key) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }
}

impl MailboxThrottle {
    pub fn new(limits: MailboxLimits) -> Arc<Self> {
        Arc::new(MailboxThrottle { limits, pairs: Mutex::new(HashMap::new()) })
    }

    /// Admits one request for `key` at `now`, or says which limit it hit and how many seconds
    /// to wait.
    pub fn admit(self: &Arc<Self>, key: MailboxKey, now: Instant) -> Result<Option<Slot>, Throttled> {
        let MailboxLimits { requests_per_10_minutes: rate, concurrent } = self.limits;
        if rate == 0 && concurrent == 0 {
            return Ok(None);
        }
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        if !pairs.contains_key(&key) && pairs.len() >= MAX_PAIRS {
            pairs.retain(|_, p| p.in_flight > 0 || now.duration_since(p.at) < WINDOW);
            if pairs.len() >= MAX_PAIRS {
                return Err(Throttled { retry_after: 1, concurrency: true });
            }
        }
        let capacity = f64::from(rate);
        let pair = pairs.entry(key.clone()).or_insert(Pair { tokens: capacity, at: now, in_flight: 0 });
        if rate > 0 {
            let refill = now.duration_since(pair.at).as_secs_f64() * capacity / WINDOW.as_secs_f64();
            pair.tokens = (pair.tokens + refill).min(capacity);
            pair.at = now;
            if pair.tokens < 1.0 {
                let wait = (1.0 - pair.tokens) * WINDOW.as_secs_f64() / capacity;
                return Err(Throttled { retry_after: wait.ceil().max(1.0) as u64, concurrency: false });
            }
        }
        if concurrent > 0 && pair.in_flight >= concurrent {
            return Err(Throttled { retry_after: 1, concurrency: true });
        }
        if rate > 0 {
            pair.tokens -= 1.0;
        }
        pair.in_flight += 1;
        Ok(Some(Slot { throttle: self.clone(), key }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(mailbox: &str) -> MailboxKey {
        MailboxKey { tenant: TenantId::NIL, app: None, mailbox: mailbox.into() }
    }

    #[test]
    fn the_ten_minute_allowance_refills_and_says_how_long_to_wait() {
        let t = MailboxThrottle::new(MailboxLimits { requests_per_10_minutes: 3, concurrent: 0 });
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(t.admit(key("a"), t0).unwrap());
        }
        let wait = t.admit(key("a"), t0).unwrap_err();
        assert_eq!(wait, Throttled { retry_after: 200, concurrency: false }, "one back every 200 s at 3 per 600 s");
        assert!(t.admit(key("b"), t0).is_ok(), "another mailbox has its own allowance");
        assert!(t.admit(key("a"), t0 + Duration::from_secs(200)).is_ok());
    }

    #[test]
    fn concurrency_is_counted_until_the_slot_is_dropped() {
        let t = MailboxThrottle::new(MailboxLimits { requests_per_10_minutes: 0, concurrent: 2 });
        let now = Instant::now();
        let (a, b) = (t.admit(key("m"), now).unwrap(), t.admit(key("m"), now).unwrap());
        assert_eq!(t.admit(key("m"), now).unwrap_err(), Throttled { retry_after: 1, concurrency: true });
        drop(a);
        assert!(t.admit(key("m"), now).is_ok());
        drop(b);
        let off = MailboxThrottle::new(MailboxLimits { requests_per_10_minutes: 0, concurrent: 0 });
        assert!(off.admit(key("m"), now).unwrap().is_none(), "both limits off");
    }
}
