//! Backoff and `Retry-After`.

use crate::config::RetryPolicy;
use rand::Rng;
use std::time::Duration;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// The wait before attempt `attempt + 1` when the server said nothing: `base * 2^(attempt-1)`
/// with ±20 % jitter, at most `max_delay`.
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    exp.mul_f64(jitter).min(policy.max_delay)
}

/// `Retry-After` as delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`),
/// relative to `now`. A date in the past means no wait.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok().or_else(|| {
        // RFC 2822 parsing wants a numeric zone or a named one it knows; HTTP dates end in "GMT".
        let replaced = value.strip_suffix("GMT").map(|v| format!("{v}+0000"))?;
        OffsetDateTime::parse(&replaced, &Rfc2822).ok()
    })?;
    let wait = at - now;
    Some(if wait.is_negative() { Duration::ZERO } else { Duration::try_from(wait).unwrap_or(Duration::ZERO) })
}

/// The wait before retrying: the server's `Retry-After` if any, else the backoff; never more
/// than `max_delay`.
pub(crate) fn delay_for(policy: &RetryPolicy, attempt: u32, retry_after: Option<&str>) -> Duration {
    match retry_after.and_then(|v| parse_retry_after(v, OffsetDateTime::now_utc())) {
        Some(d) => d.min(policy.max_delay),
        None => backoff(policy, attempt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = datetime!(2026-10-21 07:27:00 UTC);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 +0000", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now), Some(Duration::ZERO), "past");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn delays_are_bounded() {
        let p =
            RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        assert_eq!(delay_for(&p, 1, Some("3600")), Duration::from_secs(1));
        assert_eq!(delay_for(&p, 1, Some("0")), Duration::ZERO);
        let first = delay_for(&p, 1, None);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120), "{first:?}");
        let third = backoff(&p, 3);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480), "{third:?}");
        assert_eq!(backoff(&p, 30), Duration::from_secs(1));
    }
}
