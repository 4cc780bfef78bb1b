//! Side topics: input records Reactor did not aggregate, forwarded with the
//! reason, so nothing is silently dropped.
//!
//! - The dead-letter topic gets records that cannot be used (undecodable,
//!   invalid, too far in the future), with headers `reactor.error` (the
//!   reason, for people) and `reactor.error.kind` (a fixed label).
//! - The late-events topic (`windows.late_policy = "side-topic"`) gets
//!   records whose windows had all closed, with `reactor.late.reason`.
//!
//! Both keep the original key and payload and add `reactor.source.topic`,
//! `reactor.source.partition` and `reactor.source.offset`. A record re-read
//! after a restart may be forwarded twice; the source headers identify
//! duplicates.
//!
//! A record too large for the broker once the headers are added is
//! forwarded with its payload cut (halved until it fits) and the header
//! `reactor.truncated` holding the original payload length. An
//! authorization error stops the partition with what to do; transient
//! errors are retried for as long as it takes.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::warn;

use crate::error::{Classified, Disposition};
use crate::kafka::producer::{broken_producer_remedy, classify, ProduceFailure};
use crate::retry::{pause, Backoff};
use crate::telemetry::metrics;

/// A record that cannot be forwarded, whatever the retries.
#[derive(Debug, thiserror::Error)]
#[error("cannot produce to {topic}: {source}")]
pub struct SideTopicError {
    topic: String,
    #[source]
    source: rdkafka::error::KafkaError,
}

impl Classified for SideTopicError {
    fn disposition(&self) -> Disposition {
        Disposition::Fatal
    }

    fn remedy(&self) -> Option<std::borrow::Cow<'static, str>> {
        if let Some(remedy) = broken_producer_remedy(&self.source) {
            return Some(remedy.into());
        }
        Some(format!("grant Reactor's Kafka principal WRITE (and DESCRIBE) on {} (topics.dead_letter, topics.late), or check that the topic exists and is valid", self.topic).into())
    }
}

/// Which side topic a sink writes, which decides its header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideTopic {
    /// Unusable records.
    DeadLetter,
    /// Late records.
    Late,
}

impl SideTopic {
    fn reason_header(self) -> &'static str {
        match self {
            SideTopic::DeadLetter => "reactor.error",
            SideTopic::Late => "reactor.late.reason",
        }
    }

    fn kind_header(self) -> &'static str {
        match self {
            SideTopic::DeadLetter => "reactor.error.kind",
            SideTopic::Late => "reactor.late.kind",
        }
    }
}

/// A record to forward.
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    /// Where it came from.
    pub source_topic: &'a str,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its payload.
    pub payload: Option<&'a [u8]>,
    /// Why it is forwarded.
    pub reason: &'a str,
    /// A fixed label for the reason.
    pub kind: &'a str,
}

/// Produces to one side topic. Cheap to clone.
#[derive(Clone)]
pub struct SideTopicSink {
    producer: FutureProducer,
    topic: Arc<str>,
    side: SideTopic,
}

impl std::fmt::Debug for SideTopicSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideTopicSink")
            .field("topic", &self.topic)
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl SideTopicSink {
    /// A sink producing to `topic`.
    pub fn new(producer: FutureProducer, topic: &str, side: SideTopic) -> Self {
        SideTopicSink {
            producer,
            topic: topic.into(),
            side,
        }
    }

    /// Produces `record` and waits until the broker has it, retrying
    /// transient errors with back-off for as long as it takes (see the
    /// module docs for records too large). `Ok(false)`: `stop` resolved
    /// first.
    pub async fn deliver(
        &self,
        record: Forward<'_>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<bool, SideTopicError> {
        let partition = record.source_partition.to_string();
        let offset = record.offset.to_string();
        tokio::pin!(stop);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let original = record.payload.map_or(0, <[u8]>::len);
        let mut payload = record.payload;
        let mut key = record.key;
        loop {
            let length = original.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: self.side.reason_header(),
                    value: Some(record.reason.as_bytes()),
                })
                .insert(Header {
                    key: self.side.kind_header(),
                    value: Some(record.kind.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.topic",
                    value: Some(record.source_topic.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.partition",
                    value: Some(partition.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.offset",
                    value: Some(offset.as_bytes()),
                });
            let truncated = payload.map_or(0, <[u8]>::len) < original || key != record.key;
            let headers = if truncated {
                headers.insert(Header {
                    key: "reactor.truncated",
                    value: Some(length.as_bytes()),
                })
            } else {
                headers
            };
            let mut message: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(headers);
            if let Some(key) = key {
                message = message.key(key);
            }
            if let Some(payload) = payload {
                message = message.payload(payload);
            }
            let result = tokio::select! {
                result = self.producer.send(message, Timeout::After(Duration::from_secs(5))) => result,
                () = &mut stop => return Ok(false),
            };
            let Err((e, _)) = result else {
                return Ok(true);
            };
            metrics::side_topic_failure(&self.topic);
            match classify(&e) {
                ProduceFailure::TooLarge if payload.is_some_and(|p| !p.is_empty()) => {
                    if !truncated {
                        warn!(topic = %self.topic, offset = record.offset, bytes = original, error = %e, "a forwarded record is too large for the broker (the topic's max.message.bytes); forwarding it with its payload cut (header reactor.truncated)");
                    }
                    payload = payload.map(|p| &p[..p.len() / 2]);
                }
                ProduceFailure::TooLarge if key.is_some_and(|k| !k.is_empty()) => key = Some(&[]),
                ProduceFailure::TooLarge | ProduceFailure::Fatal => {
                    return Err(SideTopicError {
                        topic: self.topic.to_string(),
                        source: e,
                    })
                }
                ProduceFailure::Retry => {
                    let delay = backoff.next_delay();
                    warn!(topic = %self.topic, error = %e, retry_in = ?delay, "forwarding a record failed; retrying");
                    if !pause(delay, stop.as_mut()).await {
                        return Ok(false);
                    }
                }
            }
        }
    }
}
