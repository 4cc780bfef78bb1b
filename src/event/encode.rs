//! Writing events in the formats Reactor reads: JSON and Confluent-framed
//! Avro. Used by the load generator and by tests; Reactor itself only decodes.

use apache_avro::Schema;
use serde::Serialize;

use super::{Event, EventTime};

/// Encodes an event as a JSON object with `occurred_at` as an RFC 3339
/// string, the way most producers write timestamps.
pub fn to_json(event: &Event) -> Result<Vec<u8>, serde_json::Error> {
    fn with_text_time<T: Serialize>(
        inner: &T,
        time: EventTime,
    ) -> Result<Vec<u8>, serde_json::Error> {
        let mut value = serde_json::to_value(inner)?;
        if let Some(object) = value.as_object_mut() {
            let _previous = object.insert("occurred_at".into(), time.to_rfc3339().into());
        }
        serde_json::to_vec(&value)
    }
    match event {
        Event::Content(e) => with_text_time(e, e.occurred_at),
        Event::Engagement(e) => with_text_time(e, e.occurred_at),
        Event::Conversion(e) => with_text_time(e, e.occurred_at),
    }
}

/// Encodes an event as Avro with `schema`, framed the Confluent way: magic
/// byte 0, the 4-byte big-endian `schema_id`, then the Avro binary body.
pub fn to_confluent_avro(
    event: &Event,
    schema: &Schema,
    schema_id: u32,
) -> Result<Vec<u8>, apache_avro::Error> {
    let value = match event {
        Event::Content(e) => apache_avro::to_value(e)?,
        Event::Engagement(e) => apache_avro::to_value(e)?,
        Event::Conversion(e) => apache_avro::to_value(e)?,
    }
    .resolve(schema)?;
    let body = apache_avro::to_avro_datum(schema, value)?;
    Ok(super::framing::confluent(schema_id, &body))
}
