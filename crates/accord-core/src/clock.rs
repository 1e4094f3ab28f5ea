//! The time Accord runs on: the wall clock, moved forward by a test's `advance` (`accord serve
//! --test-mode` only). Every expiry — codes, tokens, sessions, requests, grants, certificates,
//! delta tokens, subscriptions — is read against [`now`], so a test makes days pass in a call
//! instead of sleeping. The offset only grows: time never runs backwards, so nothing that
//! counts on order (the calendar journal, refresh rotation) sees it do so.

use std::sync::atomic::{AtomicI64, Ordering};
use time::{Duration, OffsetDateTime};

/// Microseconds added to the wall clock.
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

/// The current time.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + offset()
}

/// How far the clock was advanced.
pub fn offset() -> Duration {
    Duration::microseconds(OFFSET_MICROS.load(Ordering::Relaxed))
}

/// Moves the clock forward by `by` (negative or zero: no change); the new time.
pub fn advance(by: Duration) -> OffsetDateTime {
    let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX).max(0);
    let _ = OFFSET_MICROS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(o.saturating_add(micros)));
    now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_only_moves_forward() {
        let before = now();
        let start = offset();
        let moved = advance(Duration::days(2));
        assert!(moved - before >= Duration::days(2));
        assert_eq!(offset() - start, Duration::days(2));
        advance(Duration::days(-5));
        assert_eq!(offset() - start, Duration::days(2), "never backwards");
    }
}
