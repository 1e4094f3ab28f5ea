//! Time zones: Windows zone names (as Outlook uses) and IANA names, converted with the IANA
//! rules (daylight saving included) of the `chrono-tz` database. Graph's `Prefer:
//! outlook.timezone` and `dateTimeTimeZone` values use them, and so do the relative times of
//! scenario files.

use chrono::{Datelike, LocalResult, NaiveDate, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A zone as the caller named it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedZone {
    /// The name to echo (`timeZone`, `Preference-Applied`).
    pub name: String,
    tz: Tz,
}

impl NamedZone {
    pub fn utc() -> NamedZone {
        NamedZone { name: "UTC".into(), tz: Tz::UTC }
    }

    /// A Windows zone name (`Pacific Standard Time`) or an IANA name (`Europe/Paris`),
    /// case-insensitive; `None` when neither.
    pub fn resolve(name: &str) -> Option<NamedZone> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let iana = WINDOWS_ZONES.iter().find(|(w, _)| w.eq_ignore_ascii_case(name)).map(|(_, i)| *i);
        let tz = match iana {
            Some(iana) => iana.parse::<Tz>().ok()?,
            None => name
                .parse::<Tz>()
                .ok()
                .or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name)))?,
        };
        Some(NamedZone { name: name.to_string(), tz })
    }

    pub fn is_utc(&self) -> bool {
        self.tz == Tz::UTC || self.tz == Tz::Etc__UTC
    }

    /// The wall-clock time in this zone at instant `t`.
    pub fn wall_clock(&self, t: OffsetDateTime) -> PrimitiveDateTime {
        let utc = t.to_offset(UtcOffset::UTC);
        let fallback = PrimitiveDateTime::new(utc.date(), utc.time());
        let Some(local) = self.tz.timestamp_opt(t.unix_timestamp(), t.nanosecond()).single() else {
            return fallback;
        };
        let n = local.naive_local();
        primitive(n.year(), n.month(), n.day(), n.hour(), n.minute(), n.second(), n.nanosecond()).unwrap_or(fallback)
    }

    /// The instant of wall-clock time `local` in this zone. An ambiguous time (clocks going back)
    /// is the earlier instant; a skipped time (clocks going forward) is read with the offset in
    /// force before the change, as calendar clients do.
    pub fn instant(&self, local: PrimitiveDateTime) -> Option<OffsetDateTime> {
        let naive = NaiveDate::from_ymd_opt(local.year(), u8::from(local.month()).into(), local.day().into())?
            .and_hms_nano_opt(local.hour().into(), local.minute().into(), local.second().into(), local.nanosecond())?;
        let offset_seconds = match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => dt.offset().fix().local_minus_utc(),
            LocalResult::Ambiguous(a, b) => a.offset().fix().local_minus_utc().max(b.offset().fix().local_minus_utc()),
            LocalResult::None => {
                let before = naive.checked_sub_signed(TimeDelta::try_days(1)?)?;
                self.tz.offset_from_utc_datetime(&before).fix().local_minus_utc()
            }
        };
        Some(local.assume_offset(UtcOffset::from_whole_seconds(offset_seconds).ok()?))
    }
}

fn primitive(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ns: u32) -> Option<PrimitiveDateTime> {
    let date = Date::from_calendar_date(y, Month::try_from(mo as u8).ok()?, d as u8).ok()?;
    let time = Time::from_hms_nano(h as u8, mi as u8, s as u8, ns.min(999_999_999)).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// Windows time zone names → IANA zones (CLDR windowsZones.xml, territory "001").
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Aleutian Standard Time", "America/Adak"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Marquesas Standard Time", "Pacific/Marquesas"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("UTC-09", "Etc/GMT+9"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("UTC-08", "Etc/GMT+8"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Mountain Standard Time", "America/Denver"),
    ("British Columbia Standard Time", "America/Vancouver"),
    ("Yukon Standard Time", "America/Whitehorse"),
    ("Alberta Standard Time", "America/Edmonton"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Easter Island Standard Time", "Pacific/Easter"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("Manitoba Standard Time", "America/Winnipeg"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("Eastern Standard Time", "America/New_York"),
    ("Haiti Standard Time", "America/Port-au-Prince"),
    ("Cuba Standard Time", "America/Havana"),
    ("US Eastern Standard Time", "America/Indianapolis"),
    ("Turks And Caicos Standard Time", "America/Grand_Turk"),
    ("Paraguay Standard Time", "America/Asuncion"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Central Brazilian Standard Time", "America/Cuiaba"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("Tocantins Standard Time", "America/Araguaina"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("Greenland Standard Time", "America/Godthab"),
    ("Montevideo Standard Time", "America/Montevideo"),
    ("Magallanes Standard Time", "America/Punta_Arenas"),
    ("Saint Pierre Standard Time", "America/Miquelon"),
    ("Bahia Standard Time", "America/Bahia"),
    ("UTC-02", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("UTC", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Sao Tome Standard Time", "Africa/Sao_Tome"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Middle East Standard Time", "Asia/Beirut"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("West Bank Standard Time", "Asia/Hebron"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Sudan Standard Time", "Africa/Juba"),
    ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
    ("Sudan Standard Time", "Africa/Khartoum"),
    ("Libya Standard Time", "Africa/Tripoli"),
    ("Namibia Standard Time", "Africa/Windhoek"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Belarus Standard Time", "Europe/Minsk"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Astrakhan Standard Time", "Europe/Astrakhan"),
    ("Azerbaijan Standard Time", "Asia/Baku"),
    ("Russia Time Zone 3", "Europe/Samara"),
    ("Mauritius Standard Time", "Indian/Mauritius"),
    ("Saratov Standard Time", "Europe/Saratov"),
    ("Georgian Standard Time", "Asia/Tbilisi"),
    ("Volgograd Standard Time", "Europe/Volgograd"),
    ("Caucasus Standard Time", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("Qyzylorda Standard Time", "Asia/Qyzylorda"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Katmandu"),
    ("Central Asia Standard Time", "Asia/Bishkek"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Omsk Standard Time", "Asia/Omsk"),
    ("Myanmar Standard Time", "Asia/Rangoon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("Altai Standard Time", "Asia/Barnaul"),
    ("W. Mongolia Standard Time", "Asia/Hovd"),
    ("North Asia Standard Time", "Asia/Krasnoyarsk"),
    ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
    ("Tomsk Standard Time", "Asia/Tomsk"),
    ("China Standard Time", "Asia/Shanghai"),
    ("North Asia East Standard Time", "Asia/Irkutsk"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"),
    ("Aus Central W. Standard Time", "Australia/Eucla"),
    ("Transbaikal Standard Time", "Asia/Chita"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("North Korea Standard Time", "Asia/Pyongyang"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Yakutsk Standard Time", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("Vladivostok Standard Time", "Asia/Vladivostok"),
    ("Lord Howe Standard Time", "Australia/Lord_Howe"),
    ("Bougainville Standard Time", "Pacific/Bougainville"),
    ("Russia Time Zone 10", "Asia/Srednekolymsk"),
    ("Magadan Standard Time", "Asia/Magadan"),
    ("Norfolk Standard Time", "Pacific/Norfolk"),
    ("Sakhalin Standard Time", "Asia/Sakhalin"),
    ("Central Pacific Standard Time", "Pacific/Guadalcanal"),
    ("Russia Time Zone 11", "Asia/Kamchatka"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("UTC+12", "Etc/GMT-12"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Chatham Islands Standard Time", "Pacific/Chatham"),
    ("UTC+13", "Etc/GMT-13"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
    ("Line Islands Standard Time", "Pacific/Kiritimati"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_windows_zone_maps_to_a_known_iana_zone() {
        for (w, _) in WINDOWS_ZONES {
            assert!(NamedZone::resolve(w).is_some(), "{w}");
        }
    }

    #[test]
    fn daylight_saving_is_applied() {
        let pst = NamedZone::resolve("Pacific Standard Time").unwrap();
        assert_eq!(pst.name, "Pacific Standard Time");
        // Winter: UTC-8; summer: UTC-7.
        assert_eq!(pst.wall_clock(datetime!(2026-12-01 17:00 UTC)), datetime!(2026-12-01 09:00));
        assert_eq!(pst.wall_clock(datetime!(2026-07-01 16:00 UTC)), datetime!(2026-07-01 09:00));
        let paris = NamedZone::resolve("europe/paris").unwrap();
        assert_eq!(paris.name, "europe/paris");
        assert_eq!(paris.wall_clock(datetime!(2026-12-01 08:00 UTC)), datetime!(2026-12-01 09:00));
        assert_eq!(paris.wall_clock(datetime!(2026-07-01 07:00 UTC)), datetime!(2026-07-01 09:00));
        assert_eq!(paris.instant(datetime!(2026-07-01 09:00)), Some(datetime!(2026-07-01 07:00 UTC)));
        // 2026-03-29 02:30 does not exist in Paris; read with the winter offset.
        assert_eq!(paris.instant(datetime!(2026-03-29 02:30)), Some(datetime!(2026-03-29 01:30 UTC)));
        // 2026-10-25 02:30 happens twice; the earlier instant (summer time) is taken.
        assert_eq!(paris.instant(datetime!(2026-10-25 02:30)), Some(datetime!(2026-10-25 00:30 UTC)));
        assert!(NamedZone::resolve("UTC").unwrap().is_utc());
        assert!(NamedZone::resolve("Mars/Olympus_Mons").is_none());
        assert!(NamedZone::resolve("").is_none());
    }
}
