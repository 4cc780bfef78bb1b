//! Event time: milliseconds since the Unix epoch, read from JSON as a number
//! or an RFC 3339 string, and from Avro as `timestamp-millis`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// When something happened, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(i64);

impl EventTime {
    /// Earliest event time Reactor accepts: 2000-01-01T00:00:00Z.
    pub const MIN_PLAUSIBLE: EventTime = EventTime(946_684_800_000);
    /// First event time Reactor rejects: 2100-01-01T00:00:00Z.
    pub const MAX_PLAUSIBLE: EventTime = EventTime(4_102_444_800_000);

    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        EventTime(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whether this time lies in [`Self::MIN_PLAUSIBLE`], [`Self::MAX_PLAUSIBLE`]).
    /// Anything else is a producer bug (seconds sent as milliseconds, a zero
    /// default), and would otherwise open a window decades away.
    pub fn is_plausible(self) -> bool {
        (Self::MIN_PLAUSIBLE..Self::MAX_PLAUSIBLE).contains(&self)
    }

    /// RFC 3339 with milliseconds, e.g. `2026-11-23T09:30:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("{}ms", self.0))
    }

    /// Parses RFC 3339 (any offset) into milliseconds, truncating below.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        if let Some(time) = parse_utc_fast(text.as_bytes()) {
            return Some(time);
        }
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis).ok().map(EventTime)
    }
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what producers and
/// `to_rfc3339` write), without a general parser; `None` for anything else,
/// which the general parser then reads (or rejects).
fn parse_utc_fast(b: &[u8]) -> Option<EventTime> {
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let fraction = &b[19..b.len() - 1];
    let millis = match fraction {
        [] => 0,
        [b'.', rest @ ..] if !rest.is_empty() && rest.len() <= 9 => {
            digits(rest)? * 10i64.pow(9 - rest.len() as u32) / 1_000_000
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        // Leap seconds and invalid dates: left to the general parser.
        return None;
    }
    // Days since the epoch of a proleptic Gregorian date (Howard Hinnant's
    // `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(EventTime(seconds * 1_000 + millis))
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for EventTime {
    /// As a number of milliseconds: compact, and what Avro's
    /// `timestamp-millis` expects.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

struct EventTimeVisitor;

impl Visitor<'_> for EventTimeVisitor {
    type Value = EventTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("milliseconds since the epoch or an RFC 3339 timestamp")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventTime, E> {
        Ok(EventTime(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventTime, E> {
        i64::try_from(v)
            .map(EventTime)
            .map_err(|_| E::custom(format!("timestamp {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<EventTime, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(EventTime(v as i64))
        } else {
            Err(E::custom(format!(
                "timestamp {v} is not a whole number of milliseconds"
            )))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<EventTime, E> {
        EventTime::parse_rfc3339(v).ok_or_else(|| {
            E::custom(format!(
                "timestamp {v:?} is not RFC 3339 (e.g. 2026-11-23T09:30:00Z)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_offsets_and_fractions() {
        let utc = EventTime::parse_rfc3339("2026-11-23T09:30:00.123Z").unwrap();
        let plus_one = EventTime::parse_rfc3339("2026-11-23T10:30:00.123+01:00").unwrap();
        assert_eq!(utc, plus_one);
        assert_eq!(utc.as_millis() % 1000, 123);
        assert_eq!(utc.to_rfc3339(), "2026-11-23T09:30:00.123Z");
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        let general = |text: &str| {
            let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
            i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
                .ok()
                .map(EventTime)
        };
        for text in [
            "2026-11-23T09:30:00Z",
            "2026-11-23T09:30:00.1Z",
            "2026-11-23T09:30:00.123Z",
            "2026-11-23T09:30:00.123456789Z",
            "2000-02-29T23:59:59.999Z",
            "2100-03-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
            "2024-12-31T12:00:00Z",
        ] {
            assert_eq!(parse_utc_fast(text.as_bytes()), general(text), "{text}");
            assert!(parse_utc_fast(text.as_bytes()).is_some(), "{text}");
        }
        for text in [
            "2026-11-23T09:30:00+01:00",
            "2026-02-29T09:30:00Z",
            "2026-11-23t09:30:00Z",
            "2026-11-23T09:30:00.Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T09:30:60Z",
            "2026-11-23T09:30:00.1234567890Z",
            "+026-11-23T09:30:00Z",
        ] {
            assert_eq!(parse_utc_fast(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn reads_numbers_and_strings_from_json() {
        let n: EventTime = serde_json::from_str("1763890200000").unwrap();
        let s: EventTime = serde_json::from_str("\"2025-11-23T09:30:00Z\"").unwrap();
        assert_eq!(n, s);
        assert!(serde_json::from_str::<EventTime>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<EventTime>("1.5").is_err());
    }

    #[test]
    fn plausibility_bounds() {
        assert!(EventTime::from_millis(1_763_890_200_000).is_plausible());
        assert!(!EventTime::from_millis(1_763_890_200).is_plausible()); // seconds, not ms
        assert!(!EventTime::MAX_PLAUSIBLE.is_plausible());
        assert!(EventTime::MIN_PLAUSIBLE.is_plausible());
    }
}
