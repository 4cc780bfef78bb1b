//! Records the pipeline does not aggregate, and why: undecodable or invalid
//! (decoding said so), too far in the future, or late (the pipeline judged
//! it against the watermark). Each goes to a side topic with its reason.

use crate::event::decode::DecodeError;

/// Why a record is not aggregated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a usable event.
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
    /// `occurred_at` would move the partition's watermark too far: a
    /// producer clock or time-zone bug that would otherwise close every open
    /// window.
    #[error(
        "timestamp too far in the future: occurred_at {time} would move the partition's watermark {watermark} ahead by {ahead_ms} ms, more than windows.max_future_skew ({max_skew_ms} ms); fix the producer's clock, or raise windows.max_future_skew if the stream really jumped ahead"
    )]
    FutureTimestamp {
        /// The event time, readable.
        time: String,
        /// The watermark, readable.
        watermark: String,
        /// How far it would move the watermark (how far it lies ahead of
        /// the watermark plus `allowed_lateness`).
        ahead_ms: i64,
        /// The limit.
        max_skew_ms: i64,
    },
    /// The partition tracks `limits.max_keys_per_partition` keys already.
    #[error("the partition already tracks limits.max_keys_per_partition ({max}) campaign/content/channel keys; raise the limit, or find the producer sending so many distinct ids")]
    KeyLimit {
        /// The limit.
        max: usize,
    },
    /// Every window holding the event has closed.
    #[error(
        "late: occurred_at {time} falls in windows that closed when the partition's watermark passed their end (newest window ends {newest_end}, watermark {watermark}); windows.allowed_lateness is {lateness}"
    )]
    Late {
        /// The event time, readable.
        time: String,
        /// End of the newest window holding it, readable.
        newest_end: String,
        /// The watermark, readable.
        watermark: String,
        /// The allowed lateness, readable.
        lateness: String,
    },
}

impl Rejection {
    /// A short, fixed label for metrics and the side topics' kind header.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Undecodable(e) => e.kind(),
            Rejection::FutureTimestamp { .. } => "future_timestamp",
            Rejection::KeyLimit { .. } => "key_limit",
            Rejection::Late { .. } => "late",
        }
    }
}

/// An input record that is not aggregated and goes to a side topic instead:
/// the dead-letter topic (unusable) or the late-events topic (policy
/// `side-topic`). Its anchor is held until the pipeline hears that the
/// broker has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Offset of the record.
    pub offset: i64,
    /// The offset its forwarding holds (report it back with
    /// `PartitionPipeline::forwarded`).
    pub anchor: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload.
    pub payload: Option<Vec<u8>>,
    /// Why, for people.
    pub reason: String,
    /// Why, as a fixed label ([`Rejection::kind`]).
    pub kind: &'static str,
}
