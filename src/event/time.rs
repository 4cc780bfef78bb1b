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
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis).ok().map(EventTime)
    }
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
