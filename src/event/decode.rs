//! Turning Kafka payloads into [`Event`]s.
//!
//! One topic accepts both formats, told apart by the first byte:
//! - `0x00`: Avro in the Confluent wire format (magic byte, 4-byte big-endian
//!   schema id, Avro binary body written with that registered schema);
//! - `{` (after optional whitespace): a JSON object.
//!
//! Decoding is synchronous and does no I/O. Writer schemas for Avro come from
//! the schema registry; the caller asks [`Decoder::missing_schema`] which ids
//! it must fetch first and hands the answers to [`Decoder::add_writer_schema`].

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::avro_plan::AvroPlan;
use super::{
    ContentEvent, ConversionEvent, EngagementEvent, EngagementKind, Event, EventTime, TopicKind,
};
use crate::error::Disposition;
use crate::rollup::Metric;

/// The Avro schemas Reactor reads with (`schemas/avro/*.avsc`), embedded.
pub const AVRO_SCHEMAS: [(TopicKind, &str); 3] = [
    (
        TopicKind::Content,
        include_str!("../../schemas/avro/content.avsc"),
    ),
    (
        TopicKind::Engagement,
        include_str!("../../schemas/avro/engagement.avsc"),
    ),
    (
        TopicKind::Conversion,
        include_str!("../../schemas/avro/conversion.avsc"),
    ),
];

/// The reader schema for a topic kind, parsed.
pub fn reader_schema(kind: TopicKind) -> Result<Schema, apache_avro::Error> {
    let text = AVRO_SCHEMAS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, text)| *text);
    Schema::parse_str(text)
}

/// The wire format a message was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A JSON object.
    Json,
    /// Confluent-framed Avro.
    Avro,
}

impl Format {
    /// Lower-case label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Avro => "avro",
        }
    }
}

/// What the registry said about a schema id.
#[derive(Debug, Clone)]
pub enum WriterSchema {
    /// Found, parsed, and readable with our reader schema; with a compiled
    /// fast decoder when the schema allows one.
    Usable(Arc<Schema>, Option<Arc<AvroPlan>>),
    /// The registry does not know the id.
    NotFound,
    /// Found but unusable (unparseable, not Avro, or incompatible with the
    /// reader schema); the text says why.
    Unusable(String),
}

/// Why a payload is not a valid event. Every variant is a bad record
/// ([`Disposition::Skip`]): it goes to the dead-letter topic with this text
/// as its reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all (a tombstone or empty message).
    #[error("empty payload")]
    EmptyPayload,
    /// Neither framing matches.
    #[error("unrecognised payload: first byte {first_byte:#04x} is neither 0x00 (Confluent Avro) nor '{{' (JSON)")]
    UnknownFormat {
        /// The offending byte.
        first_byte: u8,
    },
    /// Shorter than the 5-byte Confluent header.
    #[error("truncated Confluent header: {len} bytes, need at least 5")]
    Truncated {
        /// Payload length.
        len: usize,
    },
    /// An Avro message arrived but no registry is configured.
    #[error("Avro message with schema id {schema_id}, but no schema_registry.url is configured")]
    NoSchemaRegistry {
        /// Id from the header.
        schema_id: u32,
    },
    /// The registry does not know this id.
    #[error("unknown schema id {schema_id}: the schema registry does not have it")]
    UnknownSchemaId {
        /// Id from the header.
        schema_id: u32,
    },
    /// The registered schema cannot be used to read this topic.
    #[error("schema id {schema_id} cannot be used: {reason}")]
    UnusableSchema {
        /// Id from the header.
        schema_id: u32,
        /// Why.
        reason: String,
    },
    /// The Avro body does not decode with its writer schema.
    #[error("invalid Avro (schema id {schema_id}): {message}")]
    Avro {
        /// Id from the header.
        schema_id: u32,
        /// The decoder's message.
        message: String,
    },
    /// Not valid JSON, or not an object of the expected shape (this includes
    /// missing required fields, which serde names).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// `occurred_at` outside 2000-01-01..2100-01-01.
    #[error(
        "absurd timestamp: occurred_at {millis} ms ({time}) is outside 2000-01-01..2100-01-01"
    )]
    AbsurdTimestamp {
        /// The value received.
        millis: i64,
        /// The same, readable.
        time: String,
    },
    /// `occurred_at` too far ahead of the partition's watermark: a producer
    /// clock or time-zone bug that would otherwise close every open window.
    #[error(
        "timestamp too far in the future: occurred_at {time} is {ahead_ms} ms ahead of the partition's watermark {watermark}, more than windows.max_future_skew ({max_skew_ms} ms); fix the producer's clock, or raise windows.max_future_skew if the stream really jumped ahead"
    )]
    FutureTimestamp {
        /// The event time, readable.
        time: String,
        /// The watermark, readable.
        watermark: String,
        /// How far ahead.
        ahead_ms: i64,
        /// The limit.
        max_skew_ms: i64,
    },
    /// A field has a value that cannot be right.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Internal: the caller did not resolve this schema id before decoding.
    #[error("schema id {schema_id} was not fetched before decoding")]
    SchemaNotFetched {
        /// Id from the header.
        schema_id: u32,
    },
}

impl DecodeError {
    /// A short, fixed label for metrics and the `reactor.error.kind` header.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::EmptyPayload => "empty_payload",
            DecodeError::UnknownFormat { .. } | DecodeError::Truncated { .. } => {
                "unrecognised_format"
            }
            DecodeError::NoSchemaRegistry { .. }
            | DecodeError::UnknownSchemaId { .. }
            | DecodeError::UnusableSchema { .. } => "unknown_schema",
            DecodeError::Avro { message, .. } | DecodeError::Json(message)
                if message.contains("missing field") =>
            {
                "missing_field"
            }
            DecodeError::Avro { .. } => "invalid_avro",
            DecodeError::Json(_) => "invalid_json",
            DecodeError::AbsurdTimestamp { .. } => "absurd_timestamp",
            DecodeError::FutureTimestamp { .. } => "future_timestamp",
            DecodeError::InvalidField { .. } => "invalid_field",
            DecodeError::SchemaNotFetched { .. } => "internal",
        }
    }

    /// What to do about it: a bad record is skipped (dead-lettered); an
    /// unfetched schema is a bug in the caller.
    pub fn disposition(&self) -> Disposition {
        match self {
            DecodeError::SchemaNotFetched { .. } => Disposition::Fatal,
            _ => Disposition::Skip,
        }
    }
}

/// A payload split by its framing, before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A JSON document.
    Json(&'a [u8]),
    /// Confluent Avro: schema id and body.
    Avro {
        /// Registry id of the writer schema.
        schema_id: u32,
        /// Avro binary body.
        body: &'a [u8],
    },
}

impl<'a> Framed<'a> {
    /// Recognises the framing without decoding anything.
    pub fn of(payload: Option<&'a [u8]>) -> Result<Self, DecodeError> {
        let payload = payload.unwrap_or_default();
        match payload.first() {
            None => Err(DecodeError::EmptyPayload),
            Some(0) => match payload.split_first_chunk::<5>() {
                Some(([_, id @ ..], body)) => Ok(Framed::Avro {
                    schema_id: u32::from_be_bytes(*id),
                    body,
                }),
                None => Err(DecodeError::Truncated { len: payload.len() }),
            },
            Some(_) => match payload.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => Ok(Framed::Json(payload)),
                Some(&first_byte) => Err(DecodeError::UnknownFormat { first_byte }),
                None => Err(DecodeError::EmptyPayload),
            },
        }
    }
}

/// Decodes the payloads of one input topic. Holds the writer schemas seen so
/// far, so each schema id is fetched once per partition.
#[derive(Debug)]
pub struct Decoder {
    kind: TopicKind,
    reader: Arc<Schema>,
    writers: HashMap<u32, WriterSchema>,
    registry_configured: bool,
}

impl Decoder {
    /// A decoder for `kind`. Without a registry, Avro messages are rejected
    /// with [`DecodeError::NoSchemaRegistry`].
    pub fn new(kind: TopicKind, registry_configured: bool) -> Result<Self, apache_avro::Error> {
        Ok(Decoder {
            kind,
            reader: Arc::new(reader_schema(kind)?),
            writers: HashMap::new(),
            registry_configured,
        })
    }

    /// The schema id this payload needs that has not been fetched yet, if any.
    pub fn missing_schema(&self, payload: Option<&[u8]>) -> Option<u32> {
        match Framed::of(payload) {
            Ok(Framed::Avro { schema_id, .. })
                if self.registry_configured && !self.writers.contains_key(&schema_id) =>
            {
                Some(schema_id)
            }
            _ => None,
        }
    }

    /// Records what the registry answered for `schema_id`. A found schema is
    /// parsed and checked against the reader schema here, once.
    pub fn add_writer_schema(&mut self, schema_id: u32, schema_text: Option<&str>) {
        let entry = match schema_text {
            None => WriterSchema::NotFound,
            Some(text) => match Schema::parse_str(text) {
                Err(e) => WriterSchema::Unusable(format!("not a valid Avro schema: {e}")),
                Ok(writer) => match SchemaCompatibility::can_read(&writer, &self.reader) {
                    Ok(()) => {
                        let plan = AvroPlan::compile(&writer, self.kind).map(Arc::new);
                        WriterSchema::Usable(Arc::new(writer), plan)
                    }
                    Err(e) => WriterSchema::Unusable(format!(
                        "cannot be read as a {} event: {e}",
                        self.kind.as_str()
                    )),
                },
            },
        };
        let _previous = self.writers.insert(schema_id, entry);
    }

    /// Decodes and validates one payload.
    pub fn decode(&self, payload: Option<&[u8]>) -> Result<(Event, Format), DecodeError> {
        let (event, format) = match Framed::of(payload)? {
            Framed::Json(json) => (self.decode_json(json)?, Format::Json),
            Framed::Avro { schema_id, body } => (self.decode_avro(schema_id, body)?, Format::Avro),
        };
        validate(&event)?;
        Ok((event, format))
    }

    /// [`Self::decode`] into `slot`, reusing the buffers of the event
    /// decoded there before: JSON strings are copied into the previous
    /// event's `String`s rather than allocated (serde's in-place
    /// deserialisation), which is most of the cost of a JSON event after
    /// parsing itself. Same result, same errors as [`Self::decode`].
    pub fn decode_reusing<'e>(
        &self,
        payload: Option<&[u8]>,
        slot: &'e mut Option<Event>,
    ) -> Result<(&'e Event, Format), DecodeError> {
        let (event, format) = match Framed::of(payload)? {
            Framed::Json(json) => {
                let event = slot.get_or_insert_with(|| blank(self.kind));
                if event.topic_kind() != self.kind {
                    *event = blank(self.kind);
                }
                decode_json_into(json, event)?;
                (event, Format::Json)
            }
            Framed::Avro { schema_id, body } => match self.writers.get(&schema_id) {
                Some(WriterSchema::Usable(_, Some(plan))) => {
                    let event = slot.get_or_insert_with(|| blank(self.kind));
                    plan.decode_into(body, event)
                        .map_err(|message| DecodeError::Avro { schema_id, message })?;
                    (event, Format::Avro)
                }
                _ => (
                    slot.insert(self.decode_avro(schema_id, body)?),
                    Format::Avro,
                ),
            },
        };
        validate(event)?;
        Ok((event, format))
    }

    fn decode_json(&self, json: &[u8]) -> Result<Event, DecodeError> {
        fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, DecodeError> {
            serde_json::from_slice(json).map_err(|e| DecodeError::Json(e.to_string()))
        }
        Ok(match self.kind {
            TopicKind::Content => Event::Content(parse(json)?),
            TopicKind::Engagement => Event::Engagement(parse(json)?),
            TopicKind::Conversion => Event::Conversion(parse(json)?),
        })
    }

    fn decode_avro(&self, schema_id: u32, mut body: &[u8]) -> Result<Event, DecodeError> {
        let writer = match self.writers.get(&schema_id) {
            Some(WriterSchema::Usable(_, Some(plan))) => {
                return plan
                    .decode(body)
                    .map_err(|message| DecodeError::Avro { schema_id, message });
            }
            Some(WriterSchema::Usable(schema, None)) => schema,
            Some(WriterSchema::NotFound) => return Err(DecodeError::UnknownSchemaId { schema_id }),
            Some(WriterSchema::Unusable(reason)) => {
                return Err(DecodeError::UnusableSchema {
                    schema_id,
                    reason: reason.clone(),
                })
            }
            None if !self.registry_configured => {
                return Err(DecodeError::NoSchemaRegistry { schema_id })
            }
            None => return Err(DecodeError::SchemaNotFetched { schema_id }),
        };
        let avro_error = |e: apache_avro::Error| DecodeError::Avro {
            schema_id,
            message: e.to_string(),
        };
        let value = apache_avro::from_avro_datum(writer, &mut body, Some(&self.reader))
            .map_err(avro_error)?;
        Ok(match self.kind {
            TopicKind::Content => {
                Event::Content(apache_avro::from_value(&value).map_err(avro_error)?)
            }
            TopicKind::Engagement => {
                Event::Engagement(apache_avro::from_value(&value).map_err(avro_error)?)
            }
            TopicKind::Conversion => {
                Event::Conversion(apache_avro::from_value(&value).map_err(avro_error)?)
            }
        })
    }
}

/// Overwrites `event` (of the topic's kind) with the JSON object `json`.
fn decode_json_into(json: &[u8], event: &mut Event) -> Result<(), DecodeError> {
    fn parse_into<'de, T: Deserialize<'de>>(
        json: &'de [u8],
        place: &mut T,
    ) -> Result<(), DecodeError> {
        // As `serde_json::from_slice`, in place.
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        T::deserialize_in_place(&mut deserializer, place)
            .and_then(|()| deserializer.end())
            .map_err(|e| DecodeError::Json(e.to_string()))
    }
    match event {
        Event::Content(e) => parse_into(json, e),
        Event::Engagement(e) => parse_into(json, e),
        Event::Conversion(e) => parse_into(json, e),
    }
}

/// An empty event of a kind, to decode into.
pub(super) fn blank(kind: TopicKind) -> Event {
    match kind {
        TopicKind::Content => Event::Content(ContentEvent {
            event_id: String::new(),
            occurred_at: EventTime::default(),
            content_id: String::new(),
            campaign_id: String::new(),
            channel: String::new(),
            content_type: String::new(),
            sentiment: None,
            seo_score: None,
        }),
        TopicKind::Engagement => Event::Engagement(EngagementEvent {
            event_id: String::new(),
            occurred_at: EventTime::default(),
            content_id: String::new(),
            campaign_id: String::new(),
            channel: String::new(),
            user_id: String::new(),
            kind: EngagementKind::Impression,
            dwell_ms: None,
        }),
        TopicKind::Conversion => Event::Conversion(ConversionEvent {
            event_id: String::new(),
            occurred_at: EventTime::default(),
            campaign_id: String::new(),
            content_id: None,
            channel: None,
            user_id: String::new(),
            kind: String::new(),
            revenue: None,
            cost: None,
            currency: None,
        }),
    }
}

/// Checks what the schema cannot express.
fn validate(event: &Event) -> Result<(), DecodeError> {
    let time = event.occurred_at();
    if !time.is_plausible() {
        return Err(DecodeError::AbsurdTimestamp {
            millis: time.as_millis(),
            time: time.to_rfc3339(),
        });
    }
    match event {
        Event::Content(ContentEvent {
            event_id,
            content_id,
            campaign_id,
            channel,
            sentiment,
            seo_score,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            non_empty("content_id", content_id)?;
            non_empty("channel", channel)?;
            finite("sentiment", *sentiment)?;
            finite("seo_score", *seo_score)?;
        }
        Event::Engagement(EngagementEvent {
            event_id,
            content_id,
            campaign_id,
            channel,
            dwell_ms,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            non_empty("content_id", content_id)?;
            non_empty("channel", channel)?;
            if let Some(dwell) = *dwell_ms {
                if dwell < 0 {
                    return Err(invalid("dwell_ms", format!("{dwell} is negative")));
                }
            }
        }
        Event::Conversion(ConversionEvent {
            event_id,
            campaign_id,
            kind,
            revenue,
            cost,
            currency,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            let valid_kind = !kind.is_empty()
                && kind.len() <= 32
                && kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_kind {
                return Err(invalid(
                    "kind",
                    format!("{kind:?} must be 1-32 lower-case letters, digits or _, starting with a letter"),
                ));
            }
            if Metric::RESERVED_CONVERSION_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    "kind",
                    format!("{kind:?} is reserved: conversion.{kind} is the measured metric"),
                ));
            }
            finite("revenue", *revenue)?;
            finite("cost", *cost)?;
            if let Some(code) = currency {
                if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(invalid(
                        "currency",
                        format!("{code:?} is not an ISO 4217 code such as \"EUR\""),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn invalid(field: &'static str, reason: String) -> DecodeError {
    DecodeError::InvalidField { field, reason }
}

fn non_empty(field: &'static str, value: &str) -> Result<(), DecodeError> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty".into()))
    } else {
        Ok(())
    }
}

fn finite(field: &'static str, value: Option<f64>) -> Result<(), DecodeError> {
    match value {
        Some(v) if !v.is_finite() => Err(invalid(field, format!("{v} is not a finite number"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
