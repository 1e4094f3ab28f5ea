//! Date-times as Graph reads and writes them.

use super::*;

/// Parses ISO 8601 date-times as Graph accepts them: `2026-12-01`, `2026-12-01T09:00`,
/// `2026-12-01T09:00:00`, with up to 9 fraction digits, and `Z`, `±hh:mm`, `±hhmm` or no offset
/// (UTC). A space in place of the `+` of an offset is accepted (an unencoded `+` in a URL).
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    parse_datetime_parts(s).map(|(t, offset)| t.assume_offset(offset.unwrap_or(UtcOffset::UTC)))
}

/// Like [`parse_datetime`], keeping the wall-clock time and the offset (if one was written) apart.
pub fn parse_datetime_parts(s: &str) -> Option<(PrimitiveDateTime, Option<UtcOffset>)> {
    let s = s.trim_start();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date =
        Date::from_calendar_date(num(0, 4)? as i32, Month::try_from(num(5, 2)? as u8).ok()?, num(8, 2)? as u8).ok()?;
    if b.len() == 10 {
        return Some((PrimitiveDateTime::new(date, Time::MIDNIGHT), None));
    }
    if !matches!(b[10], b'T' | b't') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        second = num(i + 1, 2)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let digits = end - start;
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = num(start, digits)? * 10u32.pow(9 - digits as u32);
            i = end;
        }
    }
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    let rest = &s[i..];
    let offset = match rest {
        "" => None,
        "Z" | "z" => Some(UtcOffset::UTC),
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' | b' ' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest.as_bytes()[1..];
            let (h, m) = match r.len() {
                5 if r[2] == b':' => (num_slice(&r[0..2])?, num_slice(&r[3..5])?),
                4 => (num_slice(&r[0..2])?, num_slice(&r[2..4])?),
                2 => (num_slice(r)?, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some(UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()?)
        }
    };
    Some((PrimitiveDateTime::new(date, time), offset))
}

pub(super) fn num_slice(b: &[u8]) -> Option<u32> {
    (!b.is_empty() && b.iter().all(u8::is_ascii_digit)).then(|| std::str::from_utf8(b).ok()?.parse().ok())?
}

/// `2026-12-01T09:00:00.0000000`: a wall-clock time with 7 fraction digits, as in Graph's
/// `dateTimeTimeZone.dateTime`.
pub fn format_wall_clock(t: PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// `2026-12-01T09:00:00.0000000Z`, as Graph's `Edm.DateTimeOffset` values.
pub fn format_utc(t: OffsetDateTime) -> String {
    let u = t.to_offset(UtcOffset::UTC);
    format!("{}Z", format_wall_clock(PrimitiveDateTime::new(u.date(), u.time())))
}
