//! The Confluent wire format, and telling it apart from JSON.
//!
//! One topic accepts both formats, told apart by the first byte:
//! - `0x00`: Avro in the Confluent wire format (magic byte, 4-byte big-endian
//!   schema id, Avro binary body written with that registered schema);
//! - `{` (after optional whitespace): a JSON object.
//!
//! The same framing is written for the load generator's Avro events and for
//! Reactor's own derived events.

/// The first byte of a Confluent-framed message.
pub const MAGIC: u8 = 0;

/// Bytes before the Avro body: the magic byte and the schema id.
pub const HEADER_LEN: usize = 5;

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

/// Why a payload is in neither format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// No bytes at all (a tombstone or empty message), or only whitespace.
    #[error("empty payload")]
    Empty,
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
}

impl<'a> Framed<'a> {
    /// Recognises the framing without decoding anything.
    pub fn of(payload: Option<&'a [u8]>) -> Result<Self, FramingError> {
        let payload = payload.unwrap_or_default();
        match payload.first() {
            None => Err(FramingError::Empty),
            Some(&MAGIC) => match payload.split_first_chunk::<HEADER_LEN>() {
                Some(([_, id @ ..], body)) => Ok(Framed::Avro {
                    schema_id: u32::from_be_bytes(*id),
                    body,
                }),
                None => Err(FramingError::Truncated { len: payload.len() }),
            },
            Some(_) => match payload.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => Ok(Framed::Json(payload)),
                Some(&first_byte) => Err(FramingError::UnknownFormat { first_byte }),
                None => Err(FramingError::Empty),
            },
        }
    }
}

/// The bytes before an Avro body written with the registered schema
/// `schema_id`.
pub fn confluent_header(schema_id: u32) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = schema_id.to_be_bytes();
    [MAGIC, a, b, c, d]
}

/// Frames an Avro `body` written with the registered schema `schema_id`.
pub fn confluent(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(HEADER_LEN + body.len());
    framed.extend_from_slice(&confluent_header(schema_id));
    framed.extend_from_slice(body);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_formats_and_names_what_is_wrong() {
        let framed = confluent(7, b"body");
        assert_eq!(
            Framed::of(Some(&framed)),
            Ok(Framed::Avro {
                schema_id: 7,
                body: b"body"
            })
        );
        assert_eq!(
            Framed::of(Some(b" \n{\"a\":1}")),
            Ok(Framed::Json(b" \n{\"a\":1}"))
        );
        assert_eq!(Framed::of(None), Err(FramingError::Empty));
        assert_eq!(Framed::of(Some(b"  ")), Err(FramingError::Empty));
        assert_eq!(
            Framed::of(Some(&[0, 0, 1])),
            Err(FramingError::Truncated { len: 3 })
        );
        assert_eq!(
            Framed::of(Some(b"[1]")),
            Err(FramingError::UnknownFormat { first_byte: b'[' })
        );
    }
}
