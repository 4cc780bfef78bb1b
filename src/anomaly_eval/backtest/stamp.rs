//! The timestamps of a backtest's rows: read in any of the forms people
//! export series in, as epoch milliseconds, and written back in the form
//! they came in, for the windows filled in between two rows.

use crate::event::EventTime;

/// How a row's timestamp was written, so that the windows filled in
/// between two rows are written the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// RFC 3339, with a zone: `2026-01-01T00:01:00Z`.
    Rfc3339,
    /// A date and time without a zone, read as UTC, with `T` or a space
    /// between them: `2026-01-01 00:01:00` (NAB, spreadsheets).
    Naive(char),
    /// A date alone, midnight UTC: `2026-01-01`.
    Date,
    /// A number below [`SECONDS_BELOW`]: epoch seconds.
    Seconds,
    /// A larger number: epoch milliseconds.
    Millis,
}

/// Numbers below this are epoch seconds (1e11 s is in the year 5138), the
/// others epoch milliseconds (1e11 ms is in 1973).
const SECONDS_BELOW: f64 = 1e11;

/// A row's timestamp: epoch milliseconds, and how it was written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    /// Epoch milliseconds.
    pub millis: f64,
    /// How it was written.
    pub style: Style,
}

/// `text` read as a time, `None` if it is none of the forms [`Style`]
/// names.
pub(super) fn parse_time(text: &str) -> Option<Stamp> {
    use time::macros::format_description;
    use time::{Date, PrimitiveDateTime};
    let text = text.trim();
    if let Some(n) = text.parse::<f64>().ok().filter(|n| n.is_finite()) {
        let (millis, style) = if n.abs() < SECONDS_BELOW {
            (n * 1_000.0, Style::Seconds)
        } else {
            (n, Style::Millis)
        };
        return Some(Stamp { millis, style });
    }
    let millis = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as f64;
    if let Some(t) = EventTime::parse_rfc3339(text) {
        let (millis, style) = (t.as_millis() as f64, Style::Rfc3339);
        return Some(Stamp { millis, style });
    }
    // A date and a time, `T` or a space between them, seconds and their
    // fraction optional.
    let naive = format_description!(
        "[year]-[month]-[day][first [T][ ]][hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(t) = PrimitiveDateTime::parse(text, naive) {
        let separator = text.chars().nth(10).unwrap_or(' ');
        let (millis, style) = (millis(t.assume_utc()), Style::Naive(separator));
        return Some(Stamp { millis, style });
    }
    let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    let (millis, style) = (millis(date.midnight().assume_utc()), Style::Date);
    Some(Stamp { millis, style })
}

/// `millis` written in `style`.
pub(super) fn format_time(millis: f64, style: Style) -> String {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let time = (millis as i128)
        .checked_mul(1_000_000)
        .and_then(|nanos| time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok());
    let written = match style {
        Style::Seconds => return format!("{}", millis / 1_000.0),
        Style::Millis => return format!("{millis}"),
        Style::Rfc3339 => time.and_then(|t| t.format(&Rfc3339).ok()),
        Style::Naive(separator) => time.and_then(|t| {
            let date = t.format(format_description!("[year]-[month]-[day]")).ok()?;
            let clock = if t.millisecond() == 0 {
                t.format(format_description!("[hour]:[minute]:[second]"))
            } else {
                t.format(format_description!(
                    "[hour]:[minute]:[second].[subsecond digits:3]"
                ))
            };
            Some(format!("{date}{separator}{}", clock.ok()?))
        }),
        Style::Date => {
            time.and_then(|t| t.format(format_description!("[year]-[month]-[day]")).ok())
        }
    };
    written.unwrap_or_else(|| format!("{millis}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_form_and_writes_it_back() {
        const MIDNIGHT_MS: f64 = 1_764_547_200_000.0; // 2025-12-01T00:00:00Z
        let minute = MIDNIGHT_MS + 90_000.0;
        for (text, millis, style) in [
            ("2025-12-01T00:01:30Z", minute, Style::Rfc3339),
            ("2025-12-01T01:01:30+01:00", minute, Style::Rfc3339),
            ("2025-12-01 00:01:30", minute, Style::Naive(' ')),
            ("2025-12-01T00:01:30", minute, Style::Naive('T')),
            ("2025-12-01 00:01:30.250", minute + 250.0, Style::Naive(' ')),
            (
                "2025-12-01 00:01",
                MIDNIGHT_MS + 60_000.0,
                Style::Naive(' '),
            ),
            ("2025-12-01", MIDNIGHT_MS, Style::Date),
            ("1764547290", minute, Style::Seconds),
            ("1764547290.5", minute + 500.0, Style::Seconds),
            ("1764547290000", minute, Style::Millis),
        ] {
            let stamp = parse_time(text).unwrap_or(Stamp {
                millis: f64::NAN,
                style: Style::Millis,
            });
            assert_eq!((stamp.millis, stamp.style), (millis, style), "{text}");
            if !text.contains('+') && text.len() != 16 {
                assert_eq!(format_time(stamp.millis, stamp.style), text, "{text}");
            }
        }
        for text in [
            "",
            "yesterday",
            "2025-13-01 00:00:00",
            "2025-12-01 25:00",
            "NaN",
            "inf",
        ] {
            assert!(parse_time(text).is_none(), "{text}");
        }
    }
}
