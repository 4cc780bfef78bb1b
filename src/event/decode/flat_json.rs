//! A fast path for the JSON events producers write: one flat object of the
//! event's own fields, each once, strings without escapes, values that are
//! strings, numbers or `null`. It reads such a payload in one pass, into
//! the event's existing buffers, without serde's generic machinery (which
//! is most of the cost of decoding a JSON event: BENCHMARKS.md).
//!
//! Anything else (an escape, an unknown or repeated key, a missing field,
//! a nested value, a boolean, a number serde_json would read otherwise)
//! returns `None`, and serde_json decodes the payload as before, errors
//! and all. So the fast path decides nothing that serde_json would decide
//! differently: a differential fuzz test (`decode::fuzz`) holds it to
//! that on valid and mutated payloads.

use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::Deserialize;

use crate::event::{ContentEvent, ConversionEvent, EngagementEvent, Event, EventTime};

/// Overwrites `event` with the flat JSON object `json`, or returns `None`
/// (leaving `event` partly overwritten) if `json` is not one the fast path
/// reads.
pub(super) fn decode_into(json: &str, event: &mut Event) -> Option<()> {
    match event {
        Event::Engagement(e) => engagement(json, e),
        Event::Content(e) => content(json, e),
        Event::Conversion(e) => conversion(json, e),
    }
}

fn engagement(json: &str, e: &mut EngagementEvent) -> Option<()> {
    let mut seen = Seen::default();
    let mut dwell_ms = None;
    members(json, |key, value| match key {
        "event_id" => seen.once(0).and_then(|()| string(&mut e.event_id, value)),
        "occurred_at" => seen.once(1).and_then(|()| time(&mut e.occurred_at, value)),
        "content_id" => seen.once(2).and_then(|()| string(&mut e.content_id, value)),
        "campaign_id" => seen
            .once(3)
            .and_then(|()| string(&mut e.campaign_id, value)),
        "channel" => seen.once(4).and_then(|()| string(&mut e.channel, value)),
        "user_id" => seen.once(5).and_then(|()| string(&mut e.user_id, value)),
        "kind" => seen.once(6).and_then(|()| {
            let Raw::Str(name) = value else { return None };
            e.kind = Deserialize::deserialize(StrDeserializer::<ValueError>::new(name)).ok()?;
            Some(())
        }),
        "dwell_ms" => seen.once(7).and_then(|()| {
            dwell_ms = optional(value, integer)?;
            Some(())
        }),
        _ => None,
    })?;
    seen.all(0b0111_1111)?;
    e.dwell_ms = dwell_ms;
    Some(())
}

fn content(json: &str, e: &mut ContentEvent) -> Option<()> {
    let mut seen = Seen::default();
    let (mut sentiment, mut seo_score) = (None, None);
    members(json, |key, value| match key {
        "event_id" => seen.once(0).and_then(|()| string(&mut e.event_id, value)),
        "occurred_at" => seen.once(1).and_then(|()| time(&mut e.occurred_at, value)),
        "content_id" => seen.once(2).and_then(|()| string(&mut e.content_id, value)),
        "campaign_id" => seen
            .once(3)
            .and_then(|()| string(&mut e.campaign_id, value)),
        "channel" => seen.once(4).and_then(|()| string(&mut e.channel, value)),
        "content_type" => seen
            .once(5)
            .and_then(|()| string(&mut e.content_type, value)),
        "sentiment" => seen.once(6).and_then(|()| {
            sentiment = optional(value, float)?;
            Some(())
        }),
        "seo_score" => seen.once(7).and_then(|()| {
            seo_score = optional(value, float)?;
            Some(())
        }),
        _ => None,
    })?;
    seen.all(0b0011_1111)?;
    (e.sentiment, e.seo_score) = (sentiment, seo_score);
    Some(())
}

fn conversion(json: &str, e: &mut ConversionEvent) -> Option<()> {
    let mut seen = Seen::default();
    let (mut revenue, mut cost) = (None, None);
    let (mut content_id, mut channel, mut currency) = (false, false, false);
    members(json, |key, value| match key {
        "event_id" => seen.once(0).and_then(|()| string(&mut e.event_id, value)),
        "occurred_at" => seen.once(1).and_then(|()| time(&mut e.occurred_at, value)),
        "campaign_id" => seen
            .once(2)
            .and_then(|()| string(&mut e.campaign_id, value)),
        "user_id" => seen.once(3).and_then(|()| string(&mut e.user_id, value)),
        "kind" => seen.once(4).and_then(|()| string(&mut e.kind, value)),
        "content_id" => seen.once(5).and_then(|()| {
            content_id = true;
            optional_string(&mut e.content_id, value)
        }),
        "channel" => seen.once(6).and_then(|()| {
            channel = true;
            optional_string(&mut e.channel, value)
        }),
        "currency" => seen.once(7).and_then(|()| {
            currency = true;
            optional_string(&mut e.currency, value)
        }),
        "revenue" => seen.once(8).and_then(|()| {
            revenue = optional(value, float)?;
            Some(())
        }),
        "cost" => seen.once(9).and_then(|()| {
            cost = optional(value, float)?;
            Some(())
        }),
        _ => None,
    })?;
    seen.all(0b1_1111)?;
    for (given, place) in [
        (content_id, &mut e.content_id),
        (channel, &mut e.channel),
        (currency, &mut e.currency),
    ] {
        if !given {
            *place = None;
        }
    }
    (e.revenue, e.cost) = (revenue, cost);
    Some(())
}

/// Which fields a payload has named, by bit.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Marks field `bit`; `None` if it was named before.
    fn once(&mut self, bit: u32) -> Option<()> {
        let mask = 1 << bit;
        (self.0 & mask == 0).then(|| self.0 |= mask)
    }

    /// `None` unless every field of `required` was named.
    fn all(&self, required: u32) -> Option<()> {
        (self.0 & required == required).then_some(())
    }
}

/// One member's value, as written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Raw<'a> {
    /// A string without escapes, its quotes left out.
    Str(&'a str),
    /// A number, in JSON's grammar.
    Num(&'a str),
    /// `null`.
    Null,
}

fn string(place: &mut String, value: Raw<'_>) -> Option<()> {
    let Raw::Str(text) = value else { return None };
    place.clear();
    place.push_str(text);
    Some(())
}

fn optional_string(place: &mut Option<String>, value: Raw<'_>) -> Option<()> {
    match value {
        Raw::Null => *place = None,
        Raw::Str(text) => {
            let place = place.get_or_insert_with(String::new);
            place.clear();
            place.push_str(text);
        }
        Raw::Num(_) => return None,
    }
    Some(())
}

/// `null` as `Some(None)`, anything else through `read`.
fn optional<T>(value: Raw<'_>, read: fn(Raw<'_>) -> Option<T>) -> Option<Option<T>> {
    match value {
        Raw::Null => Some(None),
        value => read(value).map(Some),
    }
}

/// An event time as [`EventTime`]'s serde reads it: an RFC 3339 string or
/// whole epoch milliseconds (a fractional or exponent form is left to
/// serde_json).
fn time(place: &mut EventTime, value: Raw<'_>) -> Option<()> {
    *place = match value {
        Raw::Str(text) => EventTime::parse_rfc3339(text)?,
        Raw::Num(_) => EventTime::from_millis(integer(value)?),
        Raw::Null => return None,
    };
    Some(())
}

/// A number without a fraction or exponent that fits an `i64`, but `-0`
/// (serde_json reads it as the float -0.0).
fn integer(value: Raw<'_>) -> Option<i64> {
    let Raw::Num(text) = value else { return None };
    if text == "-0" || text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return None;
    }
    text.parse().ok()
}

/// A number as serde_json reads it into an `f64` (with `float_roundtrip`:
/// correctly rounded, as Rust's own parser). Integers are left to
/// serde_json unless they are exact in an `f64`, and so is anything out of
/// range.
fn float(value: Raw<'_>) -> Option<f64> {
    let Raw::Num(text) = value else { return None };
    let number = if text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        text.parse::<f64>().ok()?
    } else {
        let integer = integer(value)?;
        if integer.unsigned_abs() > 1 << 53 {
            return None;
        }
        integer as f64
    };
    number.is_finite().then_some(number)
}

/// Calls `member` with each key and value of the flat JSON object `json`,
/// in order; `None` if `json` is not such an object, or as soon as
/// `member` returns `None`.
fn members<'a>(
    json: &'a str,
    mut member: impl FnMut(&'a str, Raw<'a>) -> Option<()>,
) -> Option<()> {
    let b = json.as_bytes();
    let mut i = whitespace(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = whitespace(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (whitespace(b, i + 1) == b.len()).then_some(());
    }
    loop {
        let (key, after) = quoted(json, i)?;
        i = whitespace(b, after);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = whitespace(b, i + 1);
        let (value, after) = match b.get(i)? {
            b'"' => quoted(json, i).map(|(text, after)| (Raw::Str(text), after))?,
            b'n' if b[i..].starts_with(b"null") => (Raw::Null, i + 4),
            b'-' | b'0'..=b'9' => {
                let end = number_end(b, i)?;
                (Raw::Num(&json[i..end]), end)
            }
            _ => return None,
        };
        member(key, value)?;
        i = whitespace(b, after);
        match b.get(i)? {
            b',' => i = whitespace(b, i + 1),
            b'}' => return (whitespace(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

fn whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string whose opening quote is at `i`, if it has no escape and no
/// control character, and the index after its closing quote.
fn quoted(json: &str, i: usize) -> Option<(&str, usize)> {
    let b = json.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let length = b[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = start + length;
    // Quotes are ASCII, so `start` and `end` are character boundaries.
    (b[end] == b'"').then(|| (&json[start..end], end + 1))
}

/// The end of the number starting at `i`, in JSON's grammar:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    fn digits(b: &[u8], i: usize) -> usize {
        i + b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    }
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(json: &str) -> Option<Vec<(String, Raw<'_>)>> {
        let mut out = Vec::new();
        members(json, |k, v| {
            out.push((k.to_owned(), v));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn reads_flat_objects_and_leaves_everything_else_to_serde_json() {
        let read = all(r#" { "a" : "x y" ,"b":-1.5e3, "c":null,"d":0 } "#).unwrap();
        assert_eq!(
            read,
            vec![
                ("a".to_owned(), Raw::Str("x y")),
                ("b".to_owned(), Raw::Num("-1.5e3")),
                ("c".to_owned(), Raw::Null),
                ("d".to_owned(), Raw::Num("0")),
            ]
        );
        assert_eq!(all("{}"), Some(Vec::new()));
        for other in [
            r#"{"a":"x\"y"}"#,
            r#"{"a":"tab	here"}"#,
            r#"{"a":true}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":nul}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"["a"]"#,
            "",
        ] {
            assert_eq!(all(other), None, "{other}");
        }
    }

    #[test]
    fn floats_and_integers_as_serde_json_reads_them() {
        assert_eq!(float(Raw::Num("-0")), None);
        assert_eq!(integer(Raw::Num("-0")), None);
        assert_eq!(
            float(Raw::Num("0")).map(f64::to_bits),
            Some(0.0f64.to_bits())
        );
        assert_eq!(
            float(Raw::Num("-0.0")).map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(float(Raw::Num("12")), Some(12.0));
        assert_eq!(float(Raw::Num("9007199254740993")), None);
        assert_eq!(float(Raw::Num("1e400")), None);
        assert_eq!(integer(Raw::Num("1.0")), None);
        assert_eq!(integer(Raw::Num("-12")), Some(-12));
        assert_eq!(integer(Raw::Num("9223372036854775808")), None);
    }
}
