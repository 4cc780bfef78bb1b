//! Turning Kafka payloads into [`Event`]s: JSON, or Confluent-framed Avro
//! (see [`super::framing`]), then [validated](super::validate).
//!
//! Decoding is synchronous and does no I/O. Writer schemas for Avro come from
//! the schema registry: the caller asks [`Decoder::missing_schema`] which ids
//! it must fetch first (the shell's `registry` module does the fetching) and
//! hands the answers to [`Decoder::add_writer_schema`], so the decoder is
//! tested with plain schema texts and no runtime. An Avro body is read with
//! its writer schema straight into the event struct (`serde_avro_fast`);
//! schema evolution works as serde does: fields matched by name, unknown
//! writer fields skipped, optional fields the writer lacks left empty.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::Deserialize;

use super::framing::{Framed, FramingError};
use super::validate::{validate, Invalid, Limits};
use super::{Event, TopicKind};
use crate::error::{Classified, Disposition};

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
    Schema::parse_str(reader_schema_text(kind))
}

fn reader_schema_text(kind: TopicKind) -> &'static str {
    AVRO_SCHEMAS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, text)| *text)
}

/// Most writer schemas a decoder remembers before it forgets unknown ids.
const MAX_WRITER_SCHEMAS: usize = 4_096;

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
    /// Found, parsed, and readable with our reader schema.
    Usable(Arc<serde_avro_fast::Schema>),
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
    /// Neither JSON nor Confluent Avro.
    #[error(transparent)]
    Framing(#[from] FramingError),
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
    /// Decoded, but not a usable event.
    #[error(transparent)]
    Invalid(#[from] Invalid),
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
            DecodeError::Framing(FramingError::Empty) => "empty_payload",
            DecodeError::Framing(_) => "unrecognised_format",
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
            DecodeError::Invalid(invalid) => invalid.kind(),
            DecodeError::SchemaNotFetched { .. } => "internal",
        }
    }
}

impl Classified for DecodeError {
    /// A bad record is skipped (dead-lettered). An unfetched schema is a bug
    /// in the caller; restarting the partition fetches it again.
    fn disposition(&self) -> Disposition {
        match self {
            DecodeError::SchemaNotFetched { .. } => Disposition::Retry,
            _ => Disposition::Skip,
        }
    }
}

/// Decodes the payloads of one input topic. Holds the writer schemas seen so
/// far, so each schema id is fetched once per partition.
#[derive(Debug, Clone)]
pub struct Decoder {
    kind: TopicKind,
    reader: Arc<Schema>,
    writers: HashMap<u32, WriterSchema>,
    registry_configured: bool,
    limits: Limits,
}

impl Decoder {
    /// A decoder for `kind`, checking events against `limits`. Without a
    /// registry, Avro messages are rejected with
    /// [`DecodeError::NoSchemaRegistry`].
    pub fn new(
        kind: TopicKind,
        registry_configured: bool,
        limits: Limits,
    ) -> Result<Self, apache_avro::Error> {
        Ok(Decoder {
            kind,
            reader: Arc::new(reader_schema(kind)?),
            writers: HashMap::new(),
            registry_configured,
            limits,
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
        self.add_writer_schemas([(schema_id, schema_text)]);
    }

    /// Records the registry's answers for the schema ids a batch needs, all
    /// kept until the batch is decoded: room is made before any is added.
    pub fn add_writer_schemas<'t>(
        &mut self,
        answers: impl IntoIterator<Item = (u32, Option<&'t str>)>,
    ) {
        let answers: Vec<(u32, WriterSchema)> = answers
            .into_iter()
            .map(|(id, text)| match text {
                None => (id, WriterSchema::NotFound),
                Some(text) => (id, self.writer_schema(text)),
            })
            .collect();
        if self.writers.len() + answers.len() > MAX_WRITER_SCHEMAS {
            // Garbage ids (a producer writing random bytes after a zero
            // byte) must not grow this forever: forget the ids that were
            // not found; they are asked again if they come back. Never one
            // of this batch's: it would be missing when the batch is read.
            self.writers
                .retain(|_, w| !matches!(w, WriterSchema::NotFound));
        }
        self.writers.extend(answers);
    }

    fn writer_schema(&self, text: &str) -> WriterSchema {
        let writer = match Schema::parse_str(text) {
            Ok(writer) => writer,
            Err(e) => return WriterSchema::Unusable(format!("not a valid Avro schema: {e}")),
        };
        if let Err(e) = SchemaCompatibility::can_read(&writer, &self.reader) {
            if !self.readable_record_by_record(text, &writer) {
                return WriterSchema::Unusable(format!(
                    "cannot be read as a {} event: {e}",
                    self.kind.as_str()
                ));
            }
        }
        match text.parse::<serde_avro_fast::Schema>() {
            Ok(schema) => WriterSchema::Usable(Arc::new(schema)),
            Err(e) => WriterSchema::Unusable(format!("not a supported Avro schema: {e}")),
        }
    }

    /// Whether the reader schema reads `writer` once its enums hold the
    /// writer's symbols too ([`symbols`]) and its fields take the writer's
    /// unions ([`unions`]): then what differs is resolved record by record,
    /// as Avro's rules say, and only records carrying a new symbol or a
    /// branch the reader cannot read fail to decode.
    fn readable_record_by_record(&self, writer_text: &str, writer: &Schema) -> bool {
        let reader = reader_schema_text(self.kind);
        let with_symbols = symbols::with_writer_symbols(reader, writer_text);
        let relaxed = with_symbols.as_deref().unwrap_or(reader);
        let relaxed = unions::with_writer_unions(relaxed, writer_text).or(with_symbols);
        relaxed
            .and_then(|relaxed| Schema::parse_str(&relaxed).ok())
            .is_some_and(|relaxed| SchemaCompatibility::can_read(writer, &relaxed).is_ok())
    }

    /// Decodes and validates one payload.
    pub fn decode(&self, payload: Option<&[u8]>) -> Result<(Event, Format), DecodeError> {
        let mut slot = None;
        let format = self.decode_in(payload, &mut slot)?;
        slot.map(|event| (event, format))
            .ok_or(DecodeError::Framing(FramingError::Empty))
    }

    /// [`Self::decode`] into `slot`, reusing the buffers of the event
    /// decoded there before: strings are copied into the previous event's
    /// `String`s rather than allocated (serde's in-place deserialisation),
    /// which is most of the cost of an event after parsing itself. Same
    /// result, same errors as [`Self::decode`].
    pub fn decode_reusing<'e>(
        &self,
        payload: Option<&[u8]>,
        slot: &'e mut Option<Event>,
    ) -> Result<(&'e Event, Format), DecodeError> {
        let format = self.decode_in(payload, slot)?;
        slot.as_ref()
            .map(|event| (event, format))
            .ok_or(DecodeError::Framing(FramingError::Empty))
    }

    fn decode_in(
        &self,
        payload: Option<&[u8]>,
        slot: &mut Option<Event>,
    ) -> Result<Format, DecodeError> {
        let framed = Framed::of(payload)?;
        let event = match slot {
            Some(event) if event.topic_kind() == self.kind => event,
            _ => slot.insert(Event::blank(self.kind)),
        };
        let format = match framed {
            Framed::Json(json) => {
                decode_json_into(json, event)?;
                Format::Json
            }
            Framed::Avro { schema_id, body } => {
                let schema = self.usable_writer(schema_id)?;
                decode_avro_into(schema, body, event)
                    .map_err(|message| DecodeError::Avro { schema_id, message })?;
                Format::Avro
            }
        };
        validate(event, &self.limits)?;
        Ok(format)
    }

    fn usable_writer(&self, schema_id: u32) -> Result<&serde_avro_fast::Schema, DecodeError> {
        match self.writers.get(&schema_id) {
            Some(WriterSchema::Usable(schema)) => Ok(schema),
            Some(WriterSchema::NotFound) => Err(DecodeError::UnknownSchemaId { schema_id }),
            Some(WriterSchema::Unusable(reason)) => Err(DecodeError::UnusableSchema {
                schema_id,
                reason: reason.clone(),
            }),
            None if !self.registry_configured => Err(DecodeError::NoSchemaRegistry { schema_id }),
            None => Err(DecodeError::SchemaNotFetched { schema_id }),
        }
    }
}

/// Overwrites `event` (of the topic's kind) with the JSON object `json`.
fn decode_json_into(json: &[u8], event: &mut Event) -> Result<(), DecodeError> {
    fn parse_into<'de, T: Deserialize<'de>>(
        json: &'de [u8],
        place: &mut T,
    ) -> Result<(), DecodeError> {
        // The whole payload is checked for UTF-8 once: serde_json reading
        // from bytes checks every string on its own, at a cost per call
        // that is a tenth of decoding an event.
        let json = std::str::from_utf8(json).map_err(|e| {
            DecodeError::Json(format!(
                "not UTF-8: invalid byte sequence at byte {}",
                e.valid_up_to()
            ))
        })?;
        // As `serde_json::from_str`, in place.
        let mut deserializer = serde_json::Deserializer::from_str(json);
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

/// Overwrites `event` with the Avro `body` written with `writer`.
///
/// The body must be one datum exactly: bytes left after it mean the record
/// was not written with `writer` (or was damaged), and what was read from it
/// cannot be trusted.
fn decode_avro_into(
    writer: &serde_avro_fast::Schema,
    body: &[u8],
    event: &mut Event,
) -> Result<(), String> {
    fn read_into<'de, T: Deserialize<'de>>(
        writer: &serde_avro_fast::Schema,
        body: &'de [u8],
        place: &mut T,
    ) -> Result<(), String> {
        use std::io::BufRead;
        let mut state = serde_avro_fast::de::DeserializerState::from_slice(body, writer);
        let read = T::deserialize_in_place(state.deserializer(), place);
        // A slice reader's buffer is what it has not read.
        let left = state.into_reader().fill_buf().map_or(0, <[u8]>::len);
        if let Err(e) = read {
            let e = e.to_string();
            // serde_avro_fast's words for running out of bytes.
            return Err(if e.contains("end of slice") || e.contains("Reached EOF") {
                format!(
                    "the body ends before the record's last field ({} bytes): it was cut short, or not written with this schema id's schema ({e})",
                    body.len()
                )
            } else {
                format!("{e} (at byte {} of {})", body.len() - left, body.len())
            });
        }
        if left > 0 {
            return Err(format!(
                "{left} bytes left after the record's last field ({} of {} read): the body was not written with this schema id's schema, or is damaged",
                body.len() - left,
                body.len()
            ));
        }
        Ok(())
    }
    match event {
        Event::Content(e) => read_into(writer, body, e),
        Event::Engagement(e) => read_into(writer, body, e),
        Event::Conversion(e) => read_into(writer, body, e),
    }
}

mod symbols;
mod unions;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
