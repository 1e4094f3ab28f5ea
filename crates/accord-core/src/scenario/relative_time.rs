//! Instants in a scenario file: RFC 3339, or relative to the moment the scenario is loaded.
//!
//! The grammar (docs/scenarios.md, "Relative times"), case-insensitive:
//!
//! ```text
//! time      = rfc3339 | day [ " " clock ] | "now" *shift
//! day       = ( "today" | weekday ) *day-shift
//! weekday   = "monday" | "tuesday" | … | "sunday"   ; that day of the current week (Monday first)
//! day-shift = ( "+" | "-" ) digits ( "d" | "w" )
//! shift     = ( "+" | "-" ) digits ( "m" | "h" | "d" | "w" )
//! clock     = HH ":" MM                             ; 24-hour wall clock, default 00:00
//! ```
//!
//! Days and clocks are read in a time zone (the tenant's or the scenario's `time_zone`, default
//! UTC), with its daylight-saving rules: `"monday 09:00"` in Europe/Paris is 08:00 UTC in winter
//! and 07:00 UTC in summer. `now` shifts are exact durations, whatever the zone.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time};

use crate::time_zone::NamedZone;

/// The most a relative time may reach from the load time (about ten years), so that every
/// result stays a representable, sensible date.
const MAX_DAYS: i64 = 3_660;

/// What a written time turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Absolute(OffsetDateTime),
    Relative(OffsetDateTime),
}

impl Written {
    pub(super) fn instant(self) -> OffsetDateTime {
        match self {
            Written::Absolute(t) | Written::Relative(t) => t,
        }
    }
}

/// Reads `text` as an RFC 3339 instant or a relative time, resolved against `loaded_at` in `zone`.
/// The error is a complete message for a diagnostic.
pub(super) fn read(text: &str, loaded_at: OffsetDateTime, zone: &NamedZone) -> Result<Written, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Written::Absolute(t));
    }
    relative(text, loaded_at, zone).map(Written::Relative).map_err(|why| {
        format!(
            "{text:?} is neither an RFC 3339 date-time with a UTC offset (2026-12-01T09:00:00Z) nor a \
             relative time (\"monday 09:00\", \"today+2d 14:30\", \"now+1h\"): {why}"
        )
    })
}

fn relative(text: &str, loaded_at: OffsetDateTime, zone: &NamedZone) -> Result<OffsetDateTime, String> {
    let lower = text.trim().to_ascii_lowercase();
    let mut words = lower.split_whitespace();
    let day = words.next().ok_or("it is empty")?;
    let clock = words.next();
    if words.next().is_some() {
        return Err("expected at most a day and a clock time, separated by a space".into());
    }
    if let Some(shifts) = day.strip_prefix("now") {
        if clock.is_some() {
            return Err("\"now\" takes no clock time (write \"today 14:30\" for a time of day)".into());
        }
        let total = shifts_of(shifts, &['m', 'h', 'd', 'w'])?;
        return checked_add(loaded_at, total);
    }
    let (base, shifts) = split_base(day)?;
    let days = shifts_of(shifts, &['d', 'w'])?;
    let today = zone.wall_clock(loaded_at).date();
    let date = match base {
        Base::Today => today,
        Base::Weekday(n) => {
            today - Duration::days(i64::from(today.weekday().number_days_from_monday())) + Duration::days(n)
        }
    };
    let date = date.checked_add(days).ok_or("that date is out of range")?;
    let time = match clock {
        Some(c) => clock_time(c)?,
        None => Time::MIDNIGHT,
    };
    zone.instant(PrimitiveDateTime::new(date, time)).ok_or_else(|| "that date is out of range".to_string())
}

enum Base {
    Today,
    /// Days after this week's Monday (0 = Monday).
    Weekday(i64),
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// `today+2d` → (Today, "+2d").
fn split_base(day: &str) -> Result<(Base, &str), String> {
    let end = day.find(['+', '-']).unwrap_or(day.len());
    let (name, shifts) = day.split_at(end);
    if name == "today" {
        return Ok((Base::Today, shifts));
    }
    match WEEKDAYS.iter().position(|w| *w == name) {
        Some(n) => Ok((Base::Weekday(n as i64), shifts)),
        None => Err(format!("{name:?} is not \"now\", \"today\" or a weekday name (monday … sunday)")),
    }
}

/// `+1w-2d` → 5 days; units limited to `units`.
fn shifts_of(mut s: &str, units: &[char]) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    while !s.is_empty() {
        let sign = match s.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(format!("expected + or - before {s:?}")),
        };
        let rest = &s[1..];
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number after {:?}", &s[..1]));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| "that number is too large".to_string())?;
        let unit = rest[digits..].chars().next().ok_or_else(|| format!("{:?} needs a unit", &s[..=digits]))?;
        if !units.contains(&unit) {
            let allowed: Vec<String> = units.iter().map(char::to_string).collect();
            let hint = if units.len() == 2 {
                " (a day takes days and weeks; write the time of day after a space)"
            } else {
                ""
            };
            return Err(format!("{unit:?} is not a unit here; use {}{hint}", allowed.join(", ")));
        }
        let step = match unit {
            'm' => Duration::minutes(n.min(MAX_DAYS * 1_440 + 1)),
            'h' => Duration::hours(n.min(MAX_DAYS * 24 + 1)),
            'd' => Duration::days(n.min(MAX_DAYS + 1)),
            _ => Duration::weeks(n.min(MAX_DAYS / 7 + 1)),
        };
        total += step * sign;
        if total.abs() > Duration::days(MAX_DAYS) {
            return Err(format!("it reaches more than {MAX_DAYS} days from the load time"));
        }
        s = &rest[digits + unit.len_utf8()..];
    }
    Ok(total)
}

fn checked_add(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, String> {
    t.checked_add(d).ok_or_else(|| "that date is out of range".to_string())
}

/// `09:00` → 09:00.
fn clock_time(c: &str) -> Result<Time, String> {
    let bad = || format!("{c:?} is not a 24-hour clock time (expected HH:MM, e.g. 09:00 or 14:30)");
    let (h, m) = c.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::from_hms(h, m, 0).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn utc() -> NamedZone {
        NamedZone::utc()
    }

    fn at(text: &str, now: OffsetDateTime, zone: &NamedZone) -> OffsetDateTime {
        match read(text, now, zone) {
            Ok(Written::Relative(t)) => t,
            other => panic!("{text}: {other:?}"),
        }
    }

    // Thursday 3 December 2026, 15:20 UTC.
    const THU: OffsetDateTime = datetime!(2026-12-03 15:20:07 UTC);

    #[test]
    fn weekdays_are_days_of_the_current_week() {
        assert_eq!(at("monday 09:00", THU, &utc()), datetime!(2026-11-30 09:00 UTC));
        assert_eq!(at("Thursday 08:00", THU, &utc()), datetime!(2026-12-03 08:00 UTC));
        assert_eq!(at("sunday 23:59", THU, &utc()), datetime!(2026-12-06 23:59 UTC));
        assert_eq!(at("monday+1w 09:00", THU, &utc()), datetime!(2026-12-07 09:00 UTC));
        assert_eq!(at("friday-1w+2d", THU, &utc()), datetime!(2026-11-29 00:00 UTC));
        // On a Monday, "monday" is today; on a Sunday, still the Monday six days before.
        assert_eq!(at("monday 10:00", datetime!(2026-11-30 00:00 UTC), &utc()), datetime!(2026-11-30 10:00 UTC));
        assert_eq!(at("monday 10:00", datetime!(2026-12-06 23:00 UTC), &utc()), datetime!(2026-11-30 10:00 UTC));
    }

    #[test]
    fn today_and_now() {
        assert_eq!(at("today", THU, &utc()), datetime!(2026-12-03 00:00 UTC));
        assert_eq!(at("today+2d 14:30", THU, &utc()), datetime!(2026-12-05 14:30 UTC));
        assert_eq!(at("TODAY-1d 00:15", THU, &utc()), datetime!(2026-12-02 00:15 UTC));
        assert_eq!(at("now", THU, &utc()), THU);
        assert_eq!(at("now+1h", THU, &utc()), datetime!(2026-12-03 16:20:07 UTC));
        assert_eq!(at("now-30m", THU, &utc()), datetime!(2026-12-03 14:50:07 UTC));
        assert_eq!(at("now+1w+1d-2h", THU, &utc()), datetime!(2026-12-11 13:20:07 UTC));
    }

    #[test]
    fn days_and_clocks_follow_the_zone_and_its_daylight_saving() {
        let paris = NamedZone::resolve("Europe/Paris").unwrap();
        assert_eq!(at("monday 09:00", THU, &paris), datetime!(2026-11-30 08:00 UTC));
        // The week of 29 June 2026 is summer time.
        assert_eq!(at("monday 09:00", datetime!(2026-07-02 12:00 UTC), &paris), datetime!(2026-06-29 07:00 UTC));
        // 23:30 UTC on Sunday 6 December is already Monday 7 December in Auckland.
        let auckland = NamedZone::resolve("Pacific/Auckland").unwrap();
        assert_eq!(at("today 09:00", datetime!(2026-12-06 23:30 UTC), &auckland), datetime!(2026-12-07 09:00 +13:00));
        // Across the change to summer time (29 March 2026), a day shift keeps the wall clock.
        assert_eq!(at("today+1d 09:00", datetime!(2026-03-28 12:00 UTC), &paris), datetime!(2026-03-29 07:00 UTC));
        // "now" shifts are durations, not wall-clock arithmetic.
        assert_eq!(at("now+1d", datetime!(2026-03-28 12:00 UTC), &paris), datetime!(2026-03-29 12:00 UTC));
    }

    #[test]
    fn absolute_times_stay_absolute() {
        assert_eq!(
            read("2026-12-01T10:00:00+01:00", THU, &utc()),
            Ok(Written::Absolute(datetime!(2026-12-01 09:00 UTC)))
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            ("", "it is empty"),
            ("tomorrow 09:00", "\"tomorrow\" is not \"now\", \"today\" or a weekday name"),
            ("monday 9:00", "\"9:00\" is not a 24-hour clock time"),
            ("monday 24:00", "\"24:00\" is not a 24-hour clock time"),
            ("monday+1h 09:00", "'h' is not a unit here; use d, w (a day takes days and weeks"),
            ("now 09:00", "\"now\" takes no clock time"),
            ("now+", "expected a number after \"+\""),
            ("now+5", "\"+5\" needs a unit"),
            ("now*2h", "expected + or - before \"*2h\""),
            ("now+1y", "'y' is not a unit here; use m, h, d, w"),
            ("today+99999d", "more than 3660 days"),
            ("now+99999999999999999999m", "that number is too large"),
            ("monday 09:00 utc", "at most a day and a clock time"),
            ("2026-12-01T09:00:00", "neither an RFC 3339 date-time"),
        ];
        for (text, want) in cases {
            let err = read(text, THU, &utc()).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("neither an RFC 3339"), "{text:?}: {err}");
        }
    }

    proptest::proptest! {
        /// Whatever the day and zone, "monday" is a Monday within the six days up to today, and
        /// "monday+1w" is a week later.
        #[test]
        fn monday_is_this_weeks_monday(secs in 0i64..4_000_000_000, zone in 0usize..4) {
            let zone = NamedZone::resolve(["UTC", "Europe/Paris", "Pacific/Auckland", "America/Los_Angeles"][zone]).unwrap();
            let now = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let monday = at("monday 12:00", now, &zone);
            let local_monday = zone.wall_clock(monday);
            let local_now = zone.wall_clock(now);
            proptest::prop_assert_eq!(local_monday.weekday(), time::Weekday::Monday);
            proptest::prop_assert_eq!(local_monday.time(), Time::from_hms(12, 0, 0).unwrap());
            let days_back = (local_now.date() - local_monday.date()).whole_days();
            proptest::prop_assert!((0..7).contains(&days_back));
            let next = zone.wall_clock(at("monday+1w 12:00", now, &zone));
            proptest::prop_assert_eq!(next.date() - local_monday.date(), Duration::days(7));
        }
    }
}
