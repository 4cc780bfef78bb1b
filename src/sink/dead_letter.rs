//! The dead-letter topic: records Reactor could not use, with the reason.
//!
//! Each dead letter keeps the original key and payload and carries headers:
//! `reactor.error` (the reason, for people), `reactor.error.kind` (a fixed
//! label), `reactor.source.topic`, `reactor.source.partition` and
//! `reactor.source.offset`. A record re-read after a restart may be
//! dead-lettered twice; the source headers identify duplicates.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::warn;

use crate::pipeline::DeadLetter;
use crate::telemetry::metrics;

/// Produces dead letters. Cheap to clone.
#[derive(Clone)]
pub struct DeadLetterSink {
    producer: FutureProducer,
    topic: std::sync::Arc<str>,
}

impl std::fmt::Debug for DeadLetterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterSink")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterSink {
    /// A sink producing to `topic`.
    pub fn new(producer: FutureProducer, topic: &str) -> Self {
        DeadLetterSink {
            producer,
            topic: topic.into(),
        }
    }

    /// Produces `letter` and waits until the broker has it, retrying with
    /// back-off for as long as it takes. Returns early, without delivering,
    /// only if `stop` resolves first.
    pub async fn deliver(
        &self,
        source_topic: &str,
        source_partition: i32,
        letter: &DeadLetter,
        stop: impl std::future::Future<Output = ()>,
    ) -> bool {
        let reason = letter.error.to_string();
        let partition = source_partition.to_string();
        let offset = letter.offset.to_string();
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(100);
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reactor.error",
                    value: Some(reason.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.error.kind",
                    value: Some(letter.error.kind().as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.topic",
                    value: Some(source_topic.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.partition",
                    value: Some(partition.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.offset",
                    value: Some(offset.as_bytes()),
                });
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &letter.payload {
                record = record.payload(payload.as_slice());
            }
            tokio::select! {
                result = self.producer.send(record, Timeout::After(Duration::from_secs(5))) => match result {
                    Ok(_) => return true,
                    Err((e, _)) => {
                        metrics::dead_letter_failure(source_topic);
                        warn!(topic = %self.topic, error = %e, retry_in = ?backoff, "producing a dead letter failed; retrying");
                    }
                },
                () = &mut stop => return false,
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {},
                () = &mut stop => return false,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
